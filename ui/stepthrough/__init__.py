"""Train > Step through…: one training step walked node by node (issue 16).

:class:`~bplab.ui.stepthrough.panel.StepPanel` is the dock's contents;
:class:`~bplab.ui.stepthrough.controller.StepThroughController` owns the engine's
:class:`~bplab.stepthrough.StepThrough` and draws its stages on the canvas and the panel.
"""
