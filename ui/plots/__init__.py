"""Live pyqtgraph views of a training run: loss, metrics, gradient health, decision boundary,
gradients through time.

Every view follows the same protocol (see :mod:`bplab.ui.plots.base`): ``set_context(ctx)`` when a
trainer is built, ``add_update(upd)`` per worker update (cheap), ``refresh()`` on the frame
timer, ``reset()``, ``data()``, ``export_image(path)`` and ``export_csv(path)``.
:data:`PLOTS` lists the views the window shows, in order, with their titles and tooltips.
"""

from bplab.ui.plots.activations import ActivationPlot
from bplab.ui.plots.base import PlotPanel
from bplab.ui.plots.boundary import DecisionBoundaryView
from bplab.ui.plots.confusion import ConfusionView
from bplab.ui.plots.gallery import MistakeGallery
from bplab.ui.plots.gradients import GradientFlowBar, GradientNormPlot, UpdateRatioPlot
from bplab.ui.plots.histograms import HistogramView
from bplab.ui.plots.history import History
from bplab.ui.plots.loss import LossPlot, MetricPlot
from bplab.ui.plots.time_gradients import TimeGradientPlot
from PySide6.QtWidgets import QWidget

__all__ = [
    "PLOTS",
    "ActivationPlot",
    "ConfusionView",
    "DecisionBoundaryView",
    "GradientFlowBar",
    "GradientNormPlot",
    "HistogramView",
    "History",
    "LossPlot",
    "MetricPlot",
    "MistakeGallery",
    "PlotPanel",
    "TimeGradientPlot",
    "UpdateRatioPlot",
    "make_plots",
]

# (object name, title, class, tooltip)
PLOTS = (
    ("loss", "Loss", LossPlot, "Training and validation loss"),
    ("metrics", "Accuracy", MetricPlot, "Accuracy (or R²) per epoch"),
    ("boundary", "Decision boundary", DecisionBoundaryView,
     "What the network predicts over the input plane (2-D data); click a point to probe it"),
    ("confusion", "Confusion", ConfusionView,
     "Validation set: true against predicted class (or value, for regression)"),
    ("mistakes", "Mistakes", MistakeGallery,
     "The validation samples misclassified with the most confidence; click one to probe it"),
    ("gradient_norms", "Gradient norms", GradientNormPlot, "Gradient norm of each layer"),
    ("gradient_flow", "Gradient flow", GradientFlowBar, "Gradient size by depth, now"),
    ("update_ratio", "Update ratio", UpdateRatioPlot,
     "Size of each step relative to the weights (about 1e-3 is healthy)"),
    ("histograms", "Histograms", HistogramView, "Weight and gradient distributions over time"),
    ("activations", "Activations", ActivationPlot,
     "Saturated and dead units of each activation layer"),
    ("time_gradients", "Through time", TimeGradientPlot,
     "Gradient norm at each time step of the recurrent layers (backpropagation through time)"),
)


def make_plots(parent: QWidget | None = None) -> dict[str, QWidget]:
    """One of each view in :data:`PLOTS`, by object name, each with its tooltip."""
    plots = {}
    for name, _, cls, tip in PLOTS:
        plot = cls(parent)
        plot.setToolTip(tip)
        plots[name] = plot
    return plots
