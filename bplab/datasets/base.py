"""The Dataset record, the catalogue entry, spec checking, the seeded split and standardization.

Every source (generators, bundled files, user files) produces full arrays ``x, y`` plus names;
:func:`finish` turns them into a :class:`Dataset` the same way for all: optional seeded
subsample, stratified train/validation split, then standardization by training statistics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bplab.errors import ConfigError
from bplab.settings import DATASET, DATASET_OPTIONS

__all__ = ["Dataset", "DatasetInfo", "Spec", "check_spec", "finish", "format_shape",
           "picture_shape", "raw_inputs", "standardization_axes", "step_features"]

# Keys every dataset takes, and those that only make sense for {"name": "file"}.
COMMON_KEYS = tuple(o.name for o in DATASET_OPTIONS if not o.file_only)
FILE_KEYS = tuple(o.name for o in DATASET_OPTIONS if o.file_only)


def format_shape(shape: tuple[int, ...]) -> str:
    """``2`` for flat inputs, ``1×28×28`` for images: how sizes read in listings."""
    return "×".join(str(d) for d in shape)


_STEP_NAME = re.compile(r"(.+)\[(\d+)\]")


def step_features(input_shape: tuple[int, ...],
                  feature_names: list[str] | None) -> list[str] | None:
    """The per-step feature names of sequence samples (see :attr:`Dataset.step_features`).

    >>> step_features((2, 2), ["value[0]", "marker[0]", "value[1]", "marker[1]"])
    ['value', 'marker']
    >>> step_features((2, 2), ["a", "b", "c", "d"]) is None
    True
    """
    names = list(feature_names or ())
    if len(input_shape) != 2 or len(names) != input_shape[0] * input_shape[1]:
        return None
    steps, width = input_shape
    parts = [_STEP_NAME.fullmatch(n) for n in names]
    if not all(parts):
        return None
    features = [m.group(1) for m in parts[:width]]
    want = [(features[i % width], i // width) for i in range(len(names))]
    return features if [(m.group(1), int(m.group(2))) for m in parts] == want else None


_PIXEL_GRID = re.compile(r"pixel_?(\d+)_(\d+)", re.IGNORECASE)
_PIXEL_INDEX = re.compile(r"pixel_?(\d+)", re.IGNORECASE)


def picture_shape(input_shape: tuple[int, ...],
                  feature_names: list[str] | None) -> tuple[int, int] | None:
    """``(rows, cols)`` to draw one flat sample as an image, when its features are pixels;
    None otherwise (and for inputs that already are images, (H, W) or (C, H, W)).

    Pixels are recognised by their names, in order, row by row: ``pixel_R_C`` over a whole
    grid (the bundled flat digits), or ``pixelN`` / ``pixel_N`` counting from 0 or 1 over
    a square of at least 4×4 (Kaggle's MNIST CSV: ``pixel0`` … ``pixel783``).

    >>> picture_shape((4,), ["pixel_0_0", "pixel_0_1", "pixel_1_0", "pixel_1_1"])
    (2, 2)
    >>> picture_shape((784,), [f"pixel{i}" for i in range(784)])
    (28, 28)
    >>> picture_shape((3,), ["age", "height", "weight"]) is None
    True
    """
    names = list(feature_names or ())
    n = len(names)
    if len(input_shape) != 1 or n != input_shape[0] or n < 4:
        return None
    grid = [_PIXEL_GRID.fullmatch(name) for name in names]
    if all(grid):
        cells = [(int(m.group(1)), int(m.group(2))) for m in grid]
        rows, cols = cells[-1][0] + 1, cells[-1][1] + 1
        if rows * cols == n and cells == [divmod(i, cols) for i in range(n)]:
            return rows, cols
        return None
    side = math.isqrt(n)
    index = [_PIXEL_INDEX.fullmatch(name) for name in names]
    if side * side != n or side < 4 or not all(index):
        return None
    first = int(index[0].group(1))
    if first in (0, 1) and [int(m.group(1)) for m in index] == list(range(first, first + n)):
        return side, side
    return None


@dataclass(frozen=True)
class DatasetInfo:
    """One line of the catalogue (``bplab datasets``): what a built-in set is, without loading it.

    ``samples`` is the default sample count (for real data: all of them), ``noise`` the default
    noise of a generated set, ``size`` the sample count as text (``"1,797"``).
    """

    name: str
    title: str
    task: str  # "classification" | "regression"
    kind: str  # "generated" | "real"
    samples: int
    description: str
    input_shape: tuple[int, ...]
    n_classes: int | None
    noise: float = 0.0
    source: str = ""
    seq_len: int | None = None  # sequence sets: the default length (input (seq_len, features))

    @property
    def size(self) -> str:
        """The sample count as ``bplab datasets`` lists it: ``"1,797"`` (generated: default)."""
        return f"{self.samples:,}"

    @property
    def shape_text(self) -> str:
        """``"2"``, ``"64"``, ``"1×28×28"``."""
        return format_shape(self.input_shape)

    @property
    def is_2d(self) -> bool:
        return self.input_shape == (2,)


@dataclass(frozen=True)
class Spec:
    """A checked dataset spec with every default filled in (``as_dict`` gives it back)."""

    name: str
    samples: int | None = None  # None: the set's default (all rows for real data)
    noise: float | None = None  # None: the set's default; ignored by real data and files
    seq_len: int | None = None  # None: the set's default; sequence sets only
    val_fraction: float = 0.2
    seed: int = 0
    standardize: bool = False
    target_divisor: float | None = None  # a regression's targets divided by this
    path: str | None = None
    target: str | tuple[str, ...] | None = None
    ignore: str | tuple[str, ...] | None = None  # a CSV's columns that are not features
    task: str | None = None
    window: int | None = None  # a time series file: steps per input window
    horizon: int = 1  # ... and how far ahead of the window's last row the target is

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        keys = ("samples", "noise", "seq_len", "val_fraction", "seed", "standardize",
                "target_divisor")
        for key in keys + (FILE_KEYS if self.name == "file" else ()):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(eq=False)
class Dataset:
    """Training and validation arrays with what the app and the trainer need to know of them.

    ``x_*`` are float32 of shape ``(N, *input_shape)``; ``y_*`` are int64 class ids ``(N,)``
    for classification and float32 ``(N, n_outputs)`` for regression. When ``standardize``
    was asked for, ``x = (x_raw - mean) / scale`` with ``mean`` and ``scale`` taken from the
    training rows only (per feature; per channel for images); :meth:`transform` applies the
    same map to new raw inputs.

    >>> from bplab.datasets import load_dataset
    >>> ds = load_dataset({"name": "xor", "samples": 100})
    >>> ds.x_train.shape, ds.x_val.shape, ds.n_classes
    ((80, 2), (20, 2), 2)
    """

    name: str
    title: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    input_shape: tuple[int, ...]
    n_classes: int | None
    feature_names: list[str]
    class_names: list[str] | None
    description: str
    target_names: list[str] | None = None  # regression: one name per output column
    bounds: tuple[tuple[float, float], ...] | None = None  # 1-D and 2-D inputs only
    mean: np.ndarray | None = None  # standardization, broadcastable to input_shape
    scale: np.ndarray | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    # what reading a file changed, in words: "one-hot: sex (2 values)", "left out: name (...)"
    notes: tuple[str, ...] = ()

    @property
    def is_2d(self) -> bool:
        return self.input_shape == (2,)

    @property
    def is_1d(self) -> bool:
        """One input number per sample: the network is a function of x, drawn as a curve."""
        return self.input_shape == (1,)

    @property
    def pictured(self) -> bool:
        """Whether the network's output can be drawn over its inputs, with the data: the
        plane (2-D) or the line (1-D); what the decision boundary and unit maps need."""
        return self.is_2d or self.is_1d

    @property
    def step_features(self) -> list[str] | None:
        """The features of one time step when the samples are sequences (time, features)
        named ``feature[t]`` step by step, as the built-in sequence sets are (``value``,
        ``marker`` for the adding problem); None for other data."""
        return step_features(tuple(self.input_shape), self.feature_names)

    @property
    def picture_shape(self) -> tuple[int, int] | None:
        """How one flat sample is drawn as an image (its features are pixels; see
        :func:`picture_shape`), or None."""
        return picture_shape(tuple(self.input_shape), self.feature_names)

    @property
    def n_outputs(self) -> int:
        """Units of the last layer: classes for classification, target columns for regression."""
        if self.task == "classification":
            return int(self.n_classes)
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def n_val(self) -> int:
        return len(self.x_val)

    def transform(self, x_raw: np.ndarray) -> np.ndarray:
        """Raw inputs in the dataset's original units -> what the network sees (float32)."""
        x = np.asarray(x_raw, dtype=np.float32)
        if self.mean is None:
            return x
        return (x - self.mean) / self.scale

    def untransform(self, x: np.ndarray) -> np.ndarray:
        """What the network sees -> the dataset's original units (:meth:`transform` undone):
        a standardized digit drawn as it is looks like noise."""
        return raw_inputs(x, self.mean, self.scale)

    def __repr__(self) -> str:
        classes = f", n_classes={self.n_classes}" if self.n_classes else ""
        return (
            f"Dataset({self.name!r}, {self.task}, train={self.n_train}, val={self.n_val}, "
            f"input_shape={self.input_shape}{classes})"
        )


# ---------------------------------------------------------------------------------------------
# spec checking


def check_spec(spec: Any, valid_names: list[str]) -> Spec:
    """Validate a spec dict against :data:`bplab.settings.DATASET_OPTIONS`, raising
    ConfigError with the bad value quoted; fill defaults."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"a dataset spec must be a mapping such as {{'name': 'spiral'}}, received {spec!r}"
        )
    name = spec.get("name")
    choices = ", ".join([*valid_names, "file"])
    if name is None:
        raise ConfigError(f"the dataset spec has no 'name': choose one of {choices}")
    if not isinstance(name, str) or (name not in valid_names and name != "file"):
        raise ConfigError(f"unknown dataset {name!r}: choose one of {choices}")

    allowed = COMMON_KEYS + (FILE_KEYS if name == "file" else ())
    unknown = [key for key in spec if key not in allowed]
    if unknown:
        extra = "" if name == "file" else f" ({', '.join(FILE_KEYS)} are for name 'file')"
        raise ConfigError(
            f"dataset {name!r} does not take {', '.join(map(repr, unknown))}: "
            f"valid keys are {', '.join(allowed)}{extra}"
        )
    if name == "file" and not DATASET["path"].accepts(spec.get("path")):
        raise ConfigError(
            f"dataset 'file' needs a 'path' to a .csv or .npz file, received {spec.get('path')!r}"
        )
    checked = {
        opt.name: opt.check("dataset", spec.get(opt.name, opt.default))
        for opt in DATASET_OPTIONS
        if opt.name != "name" and (name == "file" or not opt.file_only)
    }
    return Spec(name=name, **checked)


# ---------------------------------------------------------------------------------------------
# seeded selection, split and standardization


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for drawing the data and for subsampling/splitting it.

    Separate streams keep the points of a generated set the same when only val_fraction
    changes.
    """
    data, split = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(data), np.random.default_rng(split)


def take_stratified(
    y: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` row indices at random (class proportions kept when ``y`` holds class ids).

    Returns ``(picked, rest)``, each in random order. Per-class quotas are rounded by largest
    remainder so they add up to exactly ``k``; a class keeps at least one row in ``rest``
    wherever the quotas allow it.
    """
    if k == 0:
        return np.zeros(0, dtype=np.int64), rng.permutation(len(y))
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * (k / len(y))
    quota = np.floor(exact).astype(np.int64)
    short = k - int(quota.sum())
    if short:
        # largest fractional parts first; classes that would lose their last row go last
        room = quota < counts - 1
        order = np.lexsort((-(exact - quota), ~room))
        for c in order:
            if short == 0:
                break
            if quota[c] < counts[c]:
                quota[c] += 1
                short -= 1
    picked, rest = [], []
    for c, q in zip(classes, quota):
        idx = rng.permutation(np.flatnonzero(y == c))
        picked.append(idx[:q])
        rest.append(idx[q:])
    return rng.permutation(np.concatenate(picked)), rng.permutation(np.concatenate(rest))


def take_random(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    return perm[:k], perm[k:]


def _take(y, task, k, rng):
    if task == "classification":
        return take_stratified(y, k, rng)
    return take_random(len(y), k, rng)


def standardization_axes(ndim: int) -> tuple[int, ...]:
    """The axes of a batch of ``ndim`` dimensions that one standardized "feature" spans: the
    batch for flat rows ``(N, F)``; batch and time for sequences ``(N, T, F)``; batch and
    pixels for images ``(N, C, H, W)``, one feature a channel."""
    if ndim == 3:  # sequences: one feature is one column at every step
        return (0, 1)
    return (0,) if ndim <= 2 else (0, *range(2, ndim))


def _divide_targets(spec: Spec, task: str, y_train, y_val, target_names, notes):
    """A regression's targets divided by ``spec.target_divisor``, their names saying so
    ("price / 100,000") and a note; a classification refuses it."""
    d = spec.target_divisor
    if task != "regression":
        raise ConfigError(
            f"dataset {spec.name!r} is a classification: target_divisor divides a regression's "
            "targets (leave it empty)")
    unit = f"{d:,g}"
    k = y_train.shape[1]
    names = [f"{n} / {unit}" for n in (target_names or (["y"] if k == 1 else
                                                        [f"y{i + 1}" for i in range(k)]))]
    note = f"target divided by {unit}: {', '.join(names)}"
    return (y_train / np.float32(d), y_val / np.float32(d), names, (*notes, note))


def raw_inputs(x: Any, mean: np.ndarray | None, scale: np.ndarray | None) -> Any:
    """Inputs standardized by ``mean`` and ``scale`` (:func:`standardization`; None: not
    standardized) back in their own units; samples or batches alike."""
    return x if mean is None else x * scale + mean


def standardization(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale per feature (per channel for ``(N, C, H, W)`` images, per feature over
    every step for ``(N, time, features)`` sequences), from x_train.

    Computed in float64 and returned as float32 shaped for one sample (``(F,)``, ``(C, 1,
    1)``, ``(1, F)``): they broadcast against a sample and against ``(N, *input_shape)``
    alike. A constant feature gets scale 1 so it maps to 0, not NaN.
    """
    axes = standardization_axes(x_train.ndim)
    mean = x_train.mean(axis=axes, dtype=np.float64, keepdims=True)
    std = x_train.std(axis=axes, dtype=np.float64, keepdims=True)
    std[std < 1e-12] = 1.0
    return mean[0].astype(np.float32), std[0].astype(np.float32)


def finish(
    spec: Spec,
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    title: str,
    description: str,
    feature_names: list[str],
    class_names: list[str] | None = None,
    target_names: list[str] | None = None,
    bounds: tuple[tuple[float, float], ...] | None = None,
    n_classes: int | None = None,
    split_rng: np.random.Generator | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    subsample: bool = False,
    notes: Sequence[str] = (),
) -> Dataset:
    """Split ``x, y`` (or take the given ``validation``), standardize, and build the Dataset.

    ``subsample`` keeps ``spec.samples`` rows of a fixed-size source (real data, files).
    ``bounds`` are in raw units; they follow the standardization. Without given bounds, 1-D
    and 2-D inputs get the data range with a 10 % margin.
    """
    rng = split_rng if split_rng is not None else streams(spec.seed)[1]
    x = np.asarray(x, dtype=np.float32)
    if task == "classification":
        y = np.asarray(y, dtype=np.int64)
        if n_classes is None:
            n_classes = int(y.max()) + 1 if len(y) else 0
    else:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 1:
            y = y[:, None]
        n_classes = None

    if subsample and spec.samples is not None:
        if spec.samples > len(x):
            raise ConfigError(
                f"samples must be at most {len(x):,} for dataset {spec.name!r}, "
                f"received {spec.samples:,}"
            )
        keep, _ = _take(y, task, spec.samples, rng)
        kind = "a seeded, stratified" if task == "classification" else "a seeded"
        notes = (*notes, f"{kind} subsample: {spec.samples:,} of its {len(x):,} rows")
        x, y = x[keep], y[keep]

    if validation is None:
        n_val = round(len(x) * spec.val_fraction)
        val_idx, train_idx = _take(y, task, n_val, rng)
        x_train, y_train, x_val, y_val = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    else:
        # the file brought its own validation rows: shuffle the training rows only
        order = rng.permutation(len(x))
        x_train, y_train = x[order], y[order]
        x_val = np.asarray(validation[0], dtype=np.float32)
        y_val = np.asarray(validation[1], dtype=y.dtype)
        if y_val.ndim == 1 and task == "regression":
            y_val = y_val[:, None]

    if spec.target_divisor is not None:
        y_train, y_val, target_names, notes = _divide_targets(
            spec, task, y_train, y_val, target_names, notes)

    if len(x_train) == 0:
        raise ConfigError(
            f"dataset {spec.name!r} leaves no training rows (samples={len(x)}, "
            f"val_fraction={spec.val_fraction}): add samples or lower val_fraction"
        )

    input_shape = tuple(int(d) for d in x_train.shape[1:])
    if bounds is None and input_shape in ((1,), (2,)):
        both = np.concatenate([x_train, x_val])
        lo, hi = both.min(axis=0).astype(np.float64), both.max(axis=0).astype(np.float64)
        margin = np.maximum(0.1 * (hi - lo), 0.5)
        bounds = tuple((float(a - m), float(b + m)) for a, b, m in zip(lo, hi, margin))

    mean = scale = None
    if spec.standardize:
        mean, scale = standardization(x_train)
        x_train = (x_train - mean) / scale
        x_val = (x_val - mean) / scale
        if bounds is not None:
            m, s = mean.reshape(-1), scale.reshape(-1)
            bounds = tuple(
                (float((lo - m[i]) / s[i]), float((hi - m[i]) / s[i]))
                for i, (lo, hi) in enumerate(bounds)
            )

    return Dataset(
        name=spec.name, title=title, task=task,
        x_train=np.ascontiguousarray(x_train), y_train=np.ascontiguousarray(y_train),
        x_val=np.ascontiguousarray(x_val), y_val=np.ascontiguousarray(y_val),
        input_shape=input_shape, n_classes=n_classes,
        feature_names=list(feature_names), class_names=None if class_names is None
        else list(class_names), description=description,
        target_names=None if target_names is None else list(target_names),
        bounds=bounds, mean=mean, scale=scale, spec=spec.as_dict(), notes=tuple(notes),
    )
