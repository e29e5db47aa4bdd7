"""What the ``training`` and ``dataset`` sections of a project may hold, as tables.

Each :class:`Setting` says a key's kind, default, range and help, as :class:`~bplab.layers.Option`
does for layers and :class:`~bplab.optimizers.Hyper` for optimisers: the loader validates
against it (:func:`bplab.training.training_config`, :func:`bplab.datasets.base.check_spec`) and
the app builds its editors, ranges and tooltips from it, so the two cannot drift apart.

>>> TRAINING["batch_size"].check("training", -3)
Traceback (most recent call last):
...
bplab.errors.ConfigError: training: batch_size must be a positive integer or "full", received -3
>>> DATASET["val_fraction"].accepts(0.95), DATASET["val_fraction"].accepts(1.0)
(True, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bplab.amp import AMP_CHOICES
from bplab.backend import BACKEND_CHOICES
from bplab.errors import ConfigError
from bplab.graph.network import DTYPES

__all__ = [
    "DATASET",
    "DATASET_OPTIONS",
    "EARLY_STOPPING_OPTIONS",
    "MAX_SAMPLES",
    "SPEED_PRESETS",
    "TASKS",
    "TRAINING",
    "TRAINING_DEFAULTS",
    "TRAINING_OPTIONS",
    "Setting",
    "check_section",
    "mixed_precision_unavailable",
]

MAX_SAMPLES = 1_000_000
TASKS = ("classification", "regression")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, (float, np.floating))) and math.isfinite(value)


def _num(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"


@dataclass(frozen=True)
class Setting:
    """One key of a project section: enough to check it, fill its default and build an editor.

    ``kind`` is ``int``, ``float``, ``bool``, ``choice``, ``text``, ``batch`` (a positive
    integer or ``"full"``), ``names`` (a column name or a list of them), ``schedule`` (a
    learning-rate schedule spec, checked by :mod:`bplab.schedules` when the run is built) or
    ``object`` (a nested table in ``fields``). ``low``/``high`` bound numbers (``*_open``:
    exclusive); ``nullable`` accepts ``None`` (off, or "the data set's default").
    ``expect`` overrides how messages word a valid value; ``file_only`` keys belong to
    ``{"name": "file"}`` data sets.
    """

    name: str
    kind: str
    default: Any = None
    doc: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False
    choices: tuple = ()
    fields: tuple[Setting, ...] = ()
    title: str = ""
    expect: str = ""
    file_only: bool = False

    # -- describing ------------------------------------------------------------------------
    def range_text(self) -> str:
        """The bounds as an interval (``"[0, 1)"``, ``"[1, ∞)"``), or ``""`` without bounds."""
        if self.low is None and self.high is None:
            return ""
        lo = "-∞" if self.low is None else _num(self.low)
        hi = "∞" if self.high is None else _num(self.high)
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f"{left}{lo}, {hi}{right}"

    def words(self) -> str:
        """What a valid value is, as error messages and tooltips say it."""
        if self.expect:
            return self.expect
        k = self.kind
        if k == "int":
            text = self._int_words()
        elif k == "batch":
            text = 'a positive integer or "full"'
        elif k == "float":
            text = self._float_words()
        elif k == "bool":
            text = "true or false"
        elif k == "choice":
            names = [str(c) for c in self.choices]
            text = (" or ".join(names) if len(names) == 2 and not self.nullable
                    else "one of " + ", ".join(names))
        elif k == "names":
            text = "a column name or a list of names"
        elif k == "schedule":
            text = 'a schedule such as {"type": "step_lr"}'
        elif k == "object":
            text = "an object"
        else:
            text = "text"
        return text + (" or null" if self.nullable else "")

    def _int_words(self) -> str:
        if self.low == 1 and self.high is None:
            return "a positive integer"
        if self.low == 0 and self.high is None:
            return "a non-negative integer"
        return f"an integer in {self.range_text()}" if self.range_text() else "an integer"

    def _float_words(self) -> str:
        if self.high is None and self.low is not None:
            if self.low == 0 and self.low_open:
                return "a positive number"
            return f"a number {'>' if self.low_open else '>='} {_num(self.low)}"
        return f"a number in {self.range_text()}" if self.range_text() else "a number"

    @property
    def tooltip(self) -> str:
        """The help text with the accepted values: ``"... (a number >= 0)"``."""
        return f"{self.doc} ({self.words()})" if self.doc else self.words()

    # -- checking ----------------------------------------------------------------------------
    def accepts(self, value: Any) -> bool:
        try:
            self.check("", value)
        except ConfigError:
            return False
        return True

    def check(self, section: str, value: Any, key: str | None = None) -> Any:
        """Return ``value`` normalised, or raise ConfigError naming the section and quoting it.

        ``key`` is the name messages use (``early_stopping.patience`` for a nested field).
        """
        key = key or self.name

        def bad() -> ConfigError:
            where = f"{section}: " if section else ""
            return ConfigError(f"{where}{key} must be {self.words()}, received {value!r}")

        if value is None and self.nullable:
            return None
        k = self.kind
        if k == "batch" and value == "full":
            return value
        if k in ("int", "batch"):
            if not _is_int(value) or not self._in_bounds(value):
                raise bad()
            return int(value)
        if k == "float":
            if not _is_number(value) or not self._in_bounds(value):
                raise bad()
            return float(value)
        if k == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise bad()
            return bool(value)
        if k == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise bad()
            return value
        if k == "text":
            if not isinstance(value, str) or not value.strip():
                raise bad()
            return value
        if k == "names":
            return self._check_names(value, bad)
        if k == "schedule":
            if not isinstance(value, (str, dict)):
                raise bad()
            return value
        if k == "object":
            if not isinstance(value, dict):
                raise bad()
            out = {**{f.name: f.default for f in self.fields}, **value}
            for f in self.fields:
                out[f.name] = f.check(section, out[f.name], f"{key}.{f.name}")
            return out
        raise AssertionError(f"unknown setting kind {k!r}")

    def _in_bounds(self, v: float) -> bool:
        lo, hi = self.low, self.high
        if lo is not None and (v < lo or (self.low_open and v == lo)):
            return False
        return not (hi is not None and (v > hi or (self.high_open and v == hi)))

    @staticmethod
    def _check_names(value: Any, bad) -> str | tuple[str, ...]:
        if isinstance(value, (list, tuple)):
            if not value or not all(isinstance(t, str) for t in value):
                raise bad()
            return value[0] if len(value) == 1 else tuple(value)
        if not isinstance(value, str):
            raise bad()
        return value


def check_section(section: str, options: tuple[Setting, ...], values: dict[str, Any]):
    """``values`` with every option's default filled and checked; other keys kept as given."""
    out = dict(values)
    for opt in options:
        out[opt.name] = opt.check(section, values.get(opt.name, opt.default))
    return out


EARLY_STOPPING_OPTIONS: tuple[Setting, ...] = (
    Setting("patience", "int", 10, "epochs without improvement before the run stops", low=1),
    Setting("min_delta", "float", 0.0, "the smallest drop of the validation loss that counts "
            "as an improvement", low=0),
    Setting("restore_best", "bool", True, "load the best epoch's weights when stopping"),
)

TRAINING_OPTIONS: tuple[Setting, ...] = (
    Setting("epochs", "int", 100, "Passes over the training data in one run", low=0,
            nullable=True, title="Epochs"),
    Setting("steps", "int", None, "Train this many optimiser steps instead of epochs", low=0,
            nullable=True, title="Steps"),
    Setting("batch_size", "batch", 32, "Samples per optimiser step", low=1, title="Batch size"),
    Setting("shuffle", "bool", True, "Shuffle the training rows before every epoch",
            title="Shuffle"),
    Setting("seed", "int", 0, "Seed of the initial weights and the data order: the same seed "
            "trains to the same weights", low=0, title="Seed"),
    Setting("dtype", "choice", "float32", "Floating-point precision of weights and activations",
            choices=DTYPES, title="Precision"),
    Setting("backend", "choice", "auto", "Where training runs", choices=BACKEND_CHOICES,
            title="Backend"),
    Setting("clip_grad_norm", "float", None, "Rescale all gradients so their global norm is "
            "at most this (empty: no clipping)", low=0, low_open=True, nullable=True,
            title="Clip grad norm"),
    Setting("clip_grad_value", "float", None, "Clamp each gradient entry to [-v, v] "
            "(empty: off)", low=0, low_open=True, nullable=True, title="Clip grad value"),
    Setting("lr_schedule", "schedule", None, "How the learning rate changes during training",
            nullable=True, title="Schedule"),
    Setting("early_stopping", "object", None, "Stop when the validation loss stops improving",
            nullable=True, fields=EARLY_STOPPING_OPTIONS, title="Early stopping"),
    Setting("l1", "float", 0.0, "L1 penalty on the weights (adds l1 * sign(w) to their "
            "gradient)", low=0, title="L1"),
    Setting("l2", "float", 0.0, "L2 penalty on the weights (adds 2 * l2 * w to their "
            "gradient)", low=0, title="L2"),
    Setting("diagnostics_every", "int", 100, "Steps between gradient diagnostics (0: never)",
            low=0, nullable=True, title="Diagnostics every"),
    Setting("checkpoint_segments", "int", 0, "Gradient checkpointing: recompute activations "
            "in this many segments (0: off)", low=0, nullable=True, title="Checkpoint segments"),
    Setting("mixed_precision", "choice", None, "float16 compute with float32 master weights "
            "and loss scaling (empty: off)", choices=AMP_CHOICES, nullable=True,
            title="Mixed precision"),
    Setting("bptt_steps", "int", None, "Truncated backpropagation through time: recurrent "
            "gradients flow back at most this many steps (empty: the whole sequence)", low=1,
            nullable=True, title="BPTT steps"),
    Setting("speed", "float", None, "Optimiser steps per second the app trains at, so every "
            "update can be watched (empty: as fast as possible; changes apply at the next "
            "step; the command line ignores it)", low=0, low_open=True, nullable=True,
            title="Speed"),
)

# The speeds the training panel offers, steps per second (None: as fast as possible).
SPEED_PRESETS: tuple[float | None, ...] = (None, 1000.0, 300.0, 100.0, 30.0, 10.0, 5.0, 2.0,
                                           1.0)


def mixed_precision_unavailable(config: dict[str, Any]) -> str | None:
    """Why mixed precision cannot train with this ``training`` config, or None if it can.

    It computes in float16 against float32 master weights, so it needs float32 weights.
    (On the CPU it runs, slowly: numpy has no float16 matrix kernels.)
    """
    dtype = config.get("dtype", TRAINING_DEFAULTS["dtype"])
    if dtype != "float32":
        return (f"mixed precision keeps float32 master weights; the precision is {dtype}: "
                "set it to float32")
    return None

DATASET_OPTIONS: tuple[Setting, ...] = (
    Setting("name", "text", None, "Which data set to train on: a built-in name or 'file'",
            title="Data set"),
    Setting("samples", "int", None, "How many samples: the points a generated set draws, "
            "or a seeded subsample (stratified by class) of real data and of a file that is "
            "not a time series; empty: the set's default, all the rows of real data",
            low=1, high=MAX_SAMPLES, nullable=True, title="Samples"),
    Setting("noise", "float", None, "How much noise the generator adds (generated sets only)",
            low=0, high=1, nullable=True, title="Noise",
            expect="a fraction in [0, 1] (Playground's 10 % is 0.1)"),
    Setting("seq_len", "int", None, "Steps per sequence: how far back the network must "
            "remember (sequence sets only)", low=1, high=10_000, nullable=True,
            title="Sequence length"),
    Setting("val_fraction", "float", 0.2, "Fraction of the samples held out for validation",
            low=0, high=1, high_open=True, title="Validation split", expect="in [0, 1)"),
    Setting("seed", "int", 0, "Seed of the generated points and of the split", low=0,
            title="Seed"),
    Setting("standardize", "bool", False, "Shift and scale every feature to mean 0, "
            "standard deviation 1 (statistics of the training rows)", title="Standardize"),
    Setting("target_divisor", "float", None, "A regression's targets divided by this number "
            "(every target column): house prices near 175,000 divided by 100,000 start where "
            "an untrained network's outputs are, near 0; the loss, metrics, plots and exports "
            "are then in these units (empty: the targets as they are)", low=0, low_open=True,
            nullable=True, title="Divide target by"),
    Setting("path", "text", None, "The .csv or .npz file, relative to the project's folder",
            file_only=True, title="File"),
    Setting("target", "names", None, "The label column (default: the last one); a list "
            "makes a multi-output regression", nullable=True, file_only=True, title="Target"),
    Setting("ignore", "names", None, "Columns of the CSV that are not features (an id, a "
            "date, a free-text note): left out of the inputs", nullable=True, file_only=True,
            title="Leave out"),
    Setting("task", "choice", None, "classification or regression (default: guessed from "
            "the labels)", choices=TASKS, nullable=True, file_only=True, title="Task",
            expect="'classification' or 'regression'"),
    Setting("window", "int", None, "A time series: each sample is this many consecutive rows "
            "of every column (empty: one row per sample)", low=1, nullable=True,
            file_only=True, title="Window"),
    Setting("horizon", "int", 1, "A time series: the target is the target column this many "
            "rows after the window's last one", low=1, file_only=True, title="Horizon"),
)

TRAINING: dict[str, Setting] = {o.name: o for o in TRAINING_OPTIONS}
DATASET: dict[str, Setting] = {o.name: o for o in DATASET_OPTIONS}
TRAINING_DEFAULTS: dict[str, Any] = {o.name: o.default for o in TRAINING_OPTIONS}
