"""What the training worker sends to the GUI thread: plain numpy, coalesced.

The worker drives :class:`bplab.training.Trainer` and, at most ~10 times a second, emits one
``TrainingUpdate`` summarising every step since the previous one. Widgets read it on the
GUI thread only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bplab.datasets.base import raw_inputs
from bplab.diagnostics import Histogram
from bplab.training import Report
from bplab.unitmaps import UnitMaps

MAX_SAMPLES = 64  # diagnostic samples carried by one update


@dataclass(frozen=True)
class TrainingUpdate:
    steps: np.ndarray  # int64 step numbers of the step losses below
    losses: np.ndarray  # float64 batch losses at those steps (NaN where not synced)
    # reports with metrics (event epoch/done/early_stop), in order
    epoch_reports: tuple[Report, ...]
    latest: Report  # the most recent report
    diagnostics: Report | None = None  # most recent report carrying layers/activations/findings
    # Every report with layer or activation statistics since the previous update, oldest
    # first (evenly thinned to at most MAX_SAMPLES), so curves over time miss no sample.
    samples: tuple[Report, ...] = ()
    boundary: np.ndarray | None = None  # decision-boundary grid (res x res) for 2-D data
    boundary_bounds: tuple | None = None  # ((xmin, xmax), (ymin, ymax))
    # the validation set's confusion matrix, worst mistakes or regression pairs
    # (bplab.evaluation.Evaluation), at epoch ends at a bounded cadence and at a job's end
    evaluation: object | None = None
    # 2-D data with the canvas' unit maps on: every unit's output over the input plane
    unit_maps: UnitMaps | None = None
    # while a hover card is shown: node id -> histogram of its output on a training batch
    node_histograms: dict[str, Histogram] | None = None
    extra: dict = field(default_factory=dict)

    def newest(self, attr: str = "layers") -> Report | None:
        """The most recent report of this update that carries ``attr`` (``layers``,
        ``activations`` or ``findings``). ``diagnostics`` alone is not it: an epoch end
        after the last sample brings findings without layer statistics, and a plot of the
        latest sample read nothing (the residual example's gradient flow stayed empty)."""
        d = self.diagnostics
        if d is not None and getattr(d, attr):
            return d
        return next((r for r in reversed(self.samples) if getattr(r, attr)), None)


@dataclass(frozen=True)
class TrainingContext:
    """Sent once when a trainer is (re)built, so plots can set up their items."""

    task: str  # "classification" | "regression"
    layer_names: tuple[str, ...]  # parameterised layers, input side first
    layer_types: tuple[str, ...]
    activation_layers: tuple[str, ...]  # node ids of activation layers (for activation stats)
    dataset_name: str
    is_2d: bool
    x_train: np.ndarray | None = None  # 1-D and 2-D data only: points drawn with the output
    y_train: np.ndarray | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    n_classes: int | None = None
    # "relu", "sigmoid", "tanh" or None for each of activation_layers (() if not known)
    activation_kinds: tuple[str | None, ...] = ()
    bounds: tuple | None = None  # 2-D data: ((x0, x1), (y0, y1)), the decision grid's extent
    total_steps: int = 0
    steps_per_epoch: int = 1
    # recurrent layers (input side first): whose gradients through time the reports carry
    time_layers: tuple[str, ...] = ()
    sample_shape: tuple[int, ...] = ()  # one input sample's shape (images: (C, H, W))
    # flat samples whose features are pixels (Dataset.picture_shape): drawn as (rows, cols)
    picture_shape: tuple[int, int] | None = None
    class_names: tuple[str, ...] | None = None  # classification: the data set's names
    is_1d: bool = False  # one input number: the network's output is drawn as a curve of x
    # the validation inputs (the data set's own array): a view that shows validation samples
    # by index (the predicted-against-true scatter) probes the one clicked
    val_inputs: np.ndarray | None = None
    # standardization (Dataset.mean, .scale: shaped for one sample): what raw() undoes
    input_mean: np.ndarray | None = None
    input_scale: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None  # one per input value (tabular rows)

    @property
    def pictured(self) -> bool:
        """Whether the network's output is drawn over its inputs (a plane or a line)."""
        return self.is_2d or self.is_1d

    def raw(self, sample: np.ndarray) -> np.ndarray:
        """One network input (no batch axis) in the data's own units: standardization
        undone, so a digit looks like a digit and a row reads as the file's values."""
        return raw_inputs(sample, self.input_mean, self.input_scale)

    def class_label(self, i: int, width: int | None = None) -> str:
        """Class ``i`` by its name ("malignant"), or its id where the data set names none;
        cut to ``width`` characters with an ellipsis when given."""
        names = self.class_names
        text = names[i] if names and 0 <= i < len(names) else str(i)
        return text if width is None or len(text) <= width else text[: width - 1] + "…"
