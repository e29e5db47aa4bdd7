"""Live pyqtgraph views of a training run: loss, metrics, gradient health, decision boundary.

Every view follows the same protocol (see :mod:`bplab.ui.plots.base`): ``set_context(ctx)`` when a
trainer is built, ``add_update(upd)`` per worker update (cheap), ``refresh()`` on the frame
timer, ``reset()``, ``data()``, ``export_image(path)`` and ``export_csv(path)``.
"""

from bplab.ui.plots.activations import ActivationPlot
from bplab.ui.plots.base import PlotPanel
from bplab.ui.plots.boundary import DecisionBoundaryView
from bplab.ui.plots.gradients import GradientFlowBar, GradientNormPlot, UpdateRatioPlot
from bplab.ui.plots.histograms import HistogramView
from bplab.ui.plots.history import History
from bplab.ui.plots.loss import LossPlot, MetricPlot

__all__ = [
    "ActivationPlot",
    "DecisionBoundaryView",
    "GradientFlowBar",
    "GradientNormPlot",
    "HistogramView",
    "History",
    "LossPlot",
    "MetricPlot",
    "PlotPanel",
    "UpdateRatioPlot",
]
