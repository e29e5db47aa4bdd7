"""Gradient health: per-layer statistics, histograms and a rule-based diagnosis.

Per parameterised layer and reported step: gradient L2 norm, weight norm, update-to-weight
ratio ``||dW|| / ||W||`` and fixed-bin histograms of weights and gradients (NaN/Inf counted,
never binned). Per activation layer: mean, std, fraction of dead ReLU units (zero for
every sample of the batch) and of saturated sigmoid/tanh units (|tanh| > 0.99,
sigmoid < 0.01 or > 0.99 on average over the batch).

:func:`diagnose` turns a history of these into :class:`Finding` objects: a severity, the
layers concerned, the evidence in numbers and suggested fixes, some mechanical enough for
the app to apply with one click.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from bplab.backend import get_array_module, summer, to_host
from bplab.datasets.base import standardization_axes
from bplab.layers import has_trait, layer_class

__all__ = [
    "DIAGNOSIS_WINDOW",
    "ActivationStats",
    "FlatLayout",
    "Finding",
    "Fix",
    "Histogram",
    "LayerStats",
    "activation_stats",
    "diagnose",
    "flat_layer_stats",
    "flat_layout",
    "histogram",
]

HIST_BINS = 32
HIST_CHUNK = 1 << 20  # values binned at once by histogram (8 MiB of int64 indices)
# How many of the latest diagnostic samples :func:`diagnose` looks at (the app quotes it).
DIAGNOSIS_WINDOW = 8
# Vanishing gradients: the first layer's RMS gradient per weight below this fraction of the
# last layer's (about 1.5 orders of magnitude). A healthy ReLU/He net sits near 0.3.
VANISHING_RATIO = 3e-2


@dataclass(frozen=True)
class Histogram:
    """Counts over ``bins`` equal bins spanning ``[lo, hi]``; non-finite values counted apart."""

    counts: np.ndarray
    lo: float
    hi: float
    nonfinite: int = 0

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, len(self.counts) + 1)


def histogram(a: Any, bins: int = HIST_BINS) -> Histogram:
    """Fixed-bin histogram, symmetric around 0 over the largest finite magnitude."""
    xp = get_array_module(a)
    flat = a.ravel()
    mag = xp.abs(flat)
    m = float(mag.max()) if flat.size else 0.0
    n_bad = 0
    if not math.isfinite(m):  # NaN/Inf are counted apart, never binned
        finite = xp.isfinite(flat)
        n_bad = int(flat.size - int(finite.sum()))
        flat = flat[finite]
        m = float(xp.abs(flat).max()) if flat.size else 0.0
    if flat.size == 0:
        return Histogram(np.zeros(bins, np.int64), -1.0, 1.0, n_bad)
    m = m if m > 0 else 1.0
    # Bin indices and bincount, a chunk at a time (int64 indices: memory stays bounded on a
    # large layer), the values scaled in float64 as np.histogram scales them (a float32
    # quotient moved a value lying on a bin's edge into the next bin: one in a million).
    # np.histogram's own machinery costs ~25 us a call on a handful of weights and 1.2 ms
    # on a 784 x 256 layer's (this: 0.4 ms), paid twice per layer per diagnosis.
    counts = 0
    for start in range(0, flat.size, HIST_CHUNK):
        part = flat[start:start + HIST_CHUNK].astype(xp.float64)
        part /= m
        counts = counts + xp.bincount(_bin_index(part, bins, xp), minlength=bins)
    return Histogram(to_host(counts).astype(np.int64), -m, m, n_bad)


def _bin_index(scaled: Any, bins: int, xp: Any = np) -> Any:
    """The bin of each value of ``scaled``, the values divided by their largest magnitude
    (overwritten). ``scaled`` is in [-1, 1] for any finite magnitude > 0 (adding it before
    dividing overflows near the float's largest value, which a diverging run reaches), so
    the index is in [0, bins]: only the largest values, at ``bins``, move into the last bin
    (a ufunc, not the clip method's Python wrapper)."""
    scaled += 1.0
    scaled *= bins / 2
    idx = scaled.astype(xp.int64)
    xp.minimum(idx, bins - 1, out=idx)
    return idx


@dataclass(frozen=True)
class LayerStats:
    """Gradient health of one parameterised layer at one step."""

    layer: str  # node id
    type: str
    depth: int  # index among parameterised layers, input side first
    grad_norm: float
    weight_norm: float
    update_ratio: float  # ||delta W|| / ||W|| of this step's update
    grad_rms: float  # grad_norm / sqrt(number of weights): comparable across widths
    weight_hist: Histogram | None = None
    grad_hist: Histogram | None = None
    nonfinite: str | None = None  # name of a parameter with NaN/Inf, if any


class FlatLayout(NamedTuple):
    """Where each parameterised layer's parameters lie in a network's flat buffers
    (:class:`bplab.graph.network.FlatParameters`), for :func:`flat_layer_stats`."""

    starts: np.ndarray  # first element of every parameter, in buffer order
    sizes: np.ndarray
    # per layer: (node id, type, its parameters' indices in its own order, its main
    # parameter's index (the weight), its parameters' names)
    layers: tuple[tuple[str, str, tuple[int, ...], int, tuple[str, ...]], ...]
    bin_base: np.ndarray | None  # per element, its parameter's index * HIST_BINS


# Histograms of the flat buffers are binned all at once (:func:`flat_layer_stats`) up to
# this many values in all, and every parameter at most the second (a large parameter's
# values are binned once, by :func:`histogram`, not with a per-value index of its layer).
FLAT_HIST_MAX = 1 << 18
HIST_DIRECT_MAX = 20000


def flat_layout(flat: Any, layers: Sequence[tuple[str, Any]]) -> FlatLayout:
    """The layout of ``flat`` (a network's FlatParameters) for its ``(node id, layer)``
    pairs with parameters, in the order their statistics are reported."""
    order = sorted(flat.slices.items(), key=lambda kv: kv[1].start)
    index = {name: i for i, (name, _) in enumerate(order)}
    starts = np.array([s.start for _, s in order], np.intp)
    sizes = np.array([s.stop - s.start for _, s in order], np.intp)
    entries = []
    for nid, layer in layers:
        names = tuple(f"{nid}.{p}" for p in layer.params)
        main = f"{nid}.weight" if f"{nid}.weight" in index else names[0]
        entries.append((nid, layer.type_name, tuple(index[n] for n in names), index[main],
                        names))
    bin_base = None
    if sizes.max() <= HIST_DIRECT_MAX and sizes.sum() <= FLAT_HIST_MAX:
        bin_base = np.repeat(np.arange(len(sizes), dtype=np.int64) * HIST_BINS, sizes)
    return FlatLayout(starts, sizes, tuple(entries), bin_base)


def _flat_histograms(a: np.ndarray, layout: FlatLayout, bins: int = HIST_BINS):
    """Every parameter's :func:`histogram` of the flat buffer ``a`` in a few array calls:
    ``(counts (parameters, bins), largest magnitudes)``, or None where it cannot (non-finite
    values, large parameters): :func:`histogram` then bins them one by one. The same
    binning as :func:`histogram`'s (:func:`_bin_index`), so the same counts."""
    if layout.bin_base is None:
        return None
    m = np.maximum.reduceat(np.abs(a), layout.starts)
    if not np.isfinite(m).all():
        return None
    m[m <= 0] = 1.0
    k = _bin_index(a.astype(np.float64) / np.repeat(m, layout.sizes), bins)  # as histogram
    k += layout.bin_base
    counts = np.bincount(k, minlength=len(m) * bins).reshape(len(m), bins)
    return counts, m.tolist()


def flat_layer_stats(layout: FlatLayout, data: np.ndarray, grad: np.ndarray,
                     before: np.ndarray) -> list[LayerStats]:
    """Every layer's :class:`LayerStats` from the flat weights ``data`` (after the update),
    gradients ``grad`` and weights ``before`` the update, numpy only.

    The same statistics as one pass per parameter makes (sums of squares per parameter,
    then per layer; the main parameter's histograms), in a dozen array calls in all: a
    diagnostic step of a ten-layer network spent most of its time in the calls' overhead.
    """
    starts = layout.starts
    g2 = np.add.reduceat(grad * grad, starts).tolist()
    w2 = np.add.reduceat(data * data, starts).tolist()
    d = data - before
    d *= d
    d2 = np.add.reduceat(d, starts).tolist()
    sizes, first = layout.sizes.tolist(), starts.tolist()
    whist, ghist = _flat_histograms(data, layout), _flat_histograms(grad, layout)
    out = []
    for depth, (nid, type_name, idx, main, names) in enumerate(layout.layers):
        g = w = u = 0.0
        bad = None
        for i, name in zip(idx, names):
            g += g2[i]
            w += w2[i]
            u += d2[i]
            if bad is None and not math.isfinite(g2[i]):
                bad = name
        where = slice(first[main], first[main] + sizes[main])
        gn, wn = math.sqrt(g), math.sqrt(w)
        out.append(LayerStats(
            nid, type_name, depth, gn, wn, math.sqrt(u) / wn if wn > 0 else 0.0,
            math.sqrt(g2[main] / max(sizes[main], 1)),
            _picked(whist, main, data, where), _picked(ghist, main, grad, where), bad))
    return out


def _picked(hists, i: int, buffer: np.ndarray, where: slice) -> Histogram:
    if hists is None:
        return histogram(buffer[where])
    counts, m = hists
    return Histogram(counts[i], -m[i], m[i], 0)  # rows of one array nobody writes to


@dataclass(frozen=True)
class ActivationStats:
    layer: str
    kind: str  # "relu", "sigmoid", "tanh", or "other"
    mean: float
    std: float
    dead_fraction: float  # ReLU: units that are 0 for every sample of the batch
    saturated_fraction: float  # sigmoid/tanh: units in their flat region on average


def activation_stats(layer_id: str, kind: str | None, y: Any) -> ActivationStats:
    xp = np if isinstance(y, np.ndarray) else __import__("cupy")
    y2 = y.reshape(y.shape[0], -1)
    if y2.dtype.itemsize < 4:  # float16 activations (mixed precision): squares overflow
        y2 = y2.astype("float32")
    # mean and std as ndarray.mean/std compute them (float32 sums for float32), without
    # their Python wrappers (see summer): the diagnosis takes them for every activation layer
    total = summer(xp)
    n = y2.size
    mean = std = math.nan
    if n:
        mean = float(total(y2, axis=None)) / n
        d = y2 - y2.dtype.type(mean)
        xp.multiply(d, d, out=d)
        std = math.sqrt(float(total(d, axis=None)) / n)
    dead = sat = 0.0
    if xp is np and y2.size:
        # the fractions as the array methods below compute them, through the ufuncs (their
        # Python wrappers cost more than the arithmetic on a small batch; ten layers)
        units = y2.shape[1]
        if kind == "relu":
            dead = 1.0 - int(np.count_nonzero(np.logical_or.reduce(y2 > 0, axis=0))) / units
        elif kind == "tanh":
            m = np.add.reduce(np.abs(y2), axis=0) / y2.shape[0]
            sat = int(np.count_nonzero(m > 0.99)) / units
        elif kind == "sigmoid":
            m = np.add.reduce(y2, axis=0) / y2.shape[0]
            sat = int(np.count_nonzero((m < 0.01) | (m > 0.99))) / units
    elif kind == "relu":
        dead = float((y2 > 0).any(axis=0).mean()) if y2.size else 0.0
        dead = 1.0 - dead
    elif kind == "tanh":
        sat = float((xp.abs(y2).mean(axis=0) > 0.99).mean())
    elif kind == "sigmoid":
        m = y2.mean(axis=0)
        sat = float(((m < 0.01) | (m > 0.99)).mean())
    return ActivationStats(layer_id, kind or "other", mean, std, dead, sat)


@dataclass(frozen=True)
class Fix:
    """A suggested remedy. ``action`` names a mechanical edit the app can apply:

    ``init_he`` (He initializer on ``layers``), ``replace_activation`` (``params["from"]`` ->
    ``params["to"]``), ``add_batchnorm`` (after each of ``layers``), ``add_residual`` (a
    skip connection around each block of ``layers``), ``enable_clipping``
    (``params["clip_grad_norm"]``), ``scale_lr`` (multiply by ``params["factor"]``),
    ``replace_type`` (``layers`` of a type in ``params["from"]`` become ``params["to"]``: RNN
    -> LSTM), ``set_bptt`` (``training.bptt_steps`` = ``params["bptt_steps"]``),
    ``init_orthogonal`` (``recurrent_init`` orthogonal on the recurrent ``layers``),
    ``standardize`` (``dataset.standardize`` on), ``divide_target``
    (``dataset.target_divisor`` = ``params["divisor"]``), or None
    for advice only; ``params["optimizer"]`` (a spec) also switches the optimiser, where
    the fix only works with it. ``id`` is the fix's stable name within its finding (``"relu_he"``);
    :func:`bplab.fixes.findings_to_json` prefixes the finding's code
    (``"vanishing_gradients/relu_he"``).
    """

    description: str
    action: str | None = None
    layers: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True)
class Finding:
    code: str  # vanishing_gradients, exploding_gradients, dead_relu, saturation, lr_too_high, ...
    severity: str  # "info", "warning", "error"
    title: str
    message: str
    layers: tuple[str, ...] = ()
    evidence: dict[str, float] = field(default_factory=dict)
    fixes: tuple[Fix, ...] = ()

    def __str__(self) -> str:
        lines = [f"[{self.severity}] {self.title}: {self.message}"]
        lines += [f"    fix: {f.description}" for f in self.fixes]
        return "\n".join(lines)


def _median(values: Sequence[float]) -> float:
    # statistics.median on a short list: np.median costs ~20 us of wrappers per call, and
    # the diagnosis takes dozens of medians at every epoch end
    vals = [v for v in values if math.isfinite(v)]
    return float(statistics.median(vals)) if vals else float("nan")


class HistoryFindings(NamedTuple):
    """What the diagnostic samples say, apart from the epoch losses: the findings before and
    after the loss's own (so that :func:`diagnose` keeps one order whichever way it is
    called). A trainer keeps it between samples: at an epoch end without a new sample only
    the loss findings are new."""

    before: list[Finding]
    after: list[Finding]


def history_findings(
    history: Sequence[Sequence[LayerStats]],
    activations: Sequence[Sequence[ActivationStats]] = (),
    *,
    layer_types: dict[str, str] | None = None,
    window: int | None = None,
    time_grads: Sequence[dict[str, np.ndarray]] = (),
) -> HistoryFindings:
    """The findings of :func:`diagnose` that read the diagnostic samples only."""
    window = DIAGNOSIS_WINDOW if window is None else window
    before: list[Finding] = []
    after: list[Finding] = []
    recent = [h for h in history[-window:] if h]
    layer_types = layer_types or {}
    if recent:
        names = [s.layer for s in recent[-1]]
        by_layer = _by_layer(recent, names)
        rms = {n: _median([s.grad_rms for s in by_layer[n]]) for n in names}
        norms = {n: _median([s.grad_norm for s in by_layer[n]]) for n in names}
        ratios = {n: _median([s.update_ratio for s in by_layer[n]]) for n in names}
        before += _gradient_flow(names, rms, norms, recent, layer_types)
        before += _learning_rate(names, ratios, len(history))
    if activations:
        before += _activation_findings(activations[-window:], layer_types)
    if time_grads:
        after += _through_time(time_grads[-window:], layer_types)
    if recent:
        after += _runaway_weights(recent)
    return HistoryFindings(before, after)


def diagnose(
    history: Sequence[Sequence[LayerStats]],
    activations: Sequence[Sequence[ActivationStats]] = (),
    losses: Sequence[float] = (),
    *,
    layer_types: dict[str, str] | None = None,
    window: int | None = None,
    divergence: Any = None,
    time_grads: Sequence[dict[str, np.ndarray]] = (),
    from_history: HistoryFindings | None = None,
    lr_fraction: float | None = None,
    data: Sequence[Finding] = (),
) -> list[Finding]:
    """Findings from the last ``window`` diagnostic samples (oldest first; default
    :data:`DIAGNOSIS_WINDOW`).

    ``history`` holds one list of LayerStats per diagnostic step; ``activations`` likewise;
    ``losses`` the epoch-mean training losses so far; ``layer_types`` maps node ids to layer
    types (used to phrase fixes); ``divergence`` the run's
    :class:`~bplab.training.Divergence`, if it diverged. After a divergence, or while the
    loss is huge, the diagnosis never advises raising the learning rate. ``time_grads`` holds
    one ``{recurrent layer id: norm of dL/dh_t per step}`` per diagnostic step (the Trainer's
    ``time_grad_history``): gradients vanishing or exploding along time. ``from_history``,
    when given, is :func:`history_findings` of these same samples, computed before.
    ``lr_fraction``: the learning rate now over the one the schedule started from (None
    without a schedule); a loss that stalls once a schedule has decayed the rate is the
    schedule at work, and the diagnosis says so instead of advising a higher rate. ``data``:
    findings about the data set, made once (:func:`input_scale_findings`), listed first.
    """
    parts = from_history if from_history is not None else history_findings(
        history, activations, layer_types=layer_types, window=window, time_grads=time_grads)
    order = {"error": 0, "warning": 1, "info": 2}
    # The data's findings lead whatever their severity: they are causes, and what the
    # samples show (exploding gradients from targets near 175,000) their symptoms.
    findings = [*data, *sorted([*parts.before, *_stalled(losses, lr_fraction=lr_fraction),
                                *parts.after], key=lambda f: order[f.severity])]
    if divergence is not None or _blew_up(losses):
        findings = _without_raising_lr(findings)
    if divergence is not None:
        findings.insert(0, _diverged(divergence))  # what happened, then why
    return findings


# A feature is "large" when its typical size over the training rows, |mean| + standard
# deviation, passes this: weights start near ±1/sqrt(inputs) for inputs near ±1.
INPUT_SCALE_LIMIT = 20.0
# At most this many input values are read to take the scales (16 MB as float64).
SCALE_SAMPLE_VALUES = 2_000_000


def input_scale_findings(data: Any) -> list[Finding]:
    """``[unscaled_inputs]`` when a data set, not standardized, has inputs on large scales
    (:data:`INPUT_SCALE_LIMIT`), with the fix that standardizes them; else ``[]``. The scale
    is taken over what standardizing scales as one feature
    (:func:`~bplab.datasets.base.standardization_axes`): a column of flat rows or of
    sequences, a channel of images. ``data`` is a :class:`~bplab.datasets.Dataset` (a sample
    of its training rows is read)."""
    if data is None or data.mean is not None or len(data.x_train) == 0:
        return []
    shape = data.input_shape
    # a sample of rows is enough to tell a scale (the training rows are in random order)
    rows = max(1, SCALE_SAMPLE_VALUES // max(int(np.prod(shape)), 1))
    x = np.asarray(data.x_train[:rows])
    axes = standardization_axes(x.ndim)
    mean = x.mean(axis=axes, dtype=np.float64).ravel()
    std = x.std(axis=axes, dtype=np.float64).ravel()
    if len(shape) == 3:  # images: one scale a channel
        names = (["the pixels"] if shape[0] == 1
                 else [f"channel {c + 1}" for c in range(shape[0])])
        what = "channels"
    else:  # rows of features, or sequences' steps of them
        names = (list(data.feature_names or ()) if len(shape) == 1
                 else [f"feature {f + 1}" for f in range(shape[-1])])
        what = "features"
    size = np.abs(mean) + std
    large = np.flatnonzero(size > INPUT_SCALE_LIMIT)
    if len(large) == 0:
        return []
    worst = int(np.argmax(size))
    name = names[worst] if worst < len(names) else f"feature {worst + 1}"
    more = len(large) - 1
    message = (
        (f"'{name}' averages" if name != "the pixels" else "The pixels average")
        + f" {mean[worst]:.4g} with a spread of {std[worst]:.4g}"
        + (f", and {more} more of the {len(size)} {what} are larger than "
           f"±{INPUT_SCALE_LIMIT:g}" if more else "")
        + ". Weights start small for inputs near ±1: inputs this large push tanh and "
        "sigmoid units flat at once, and one learning rate cannot suit features on scales "
        "this different, so training crawls or jumps.")
    return [Finding(
        "unscaled_inputs", "warning", "Inputs on large scales", message, (),
        {"largest_scale": float(size[worst]), "large_features": float(len(large))},
        (Fix("Standardize the features (mean 0 and standard deviation 1 by the training "
             "rows)", "standardize", id="standardize"),))]


# A regression target is "large" when its |mean| + standard deviation passes this.
TARGET_SCALE_LIMIT = 100.0


def target_scale_findings(data: Any) -> list[Finding]:
    """``[unscaled_targets]`` when a regression's targets are on large scales
    (:data:`TARGET_SCALE_LIMIT`): an untrained network outputs values near 0, so the first
    losses and their gradients are huge, and the diagnosis' other advice (a lower or higher
    learning rate) would treat the symptom. The fix divides the targets by a power of ten
    (``dataset.target_divisor``)."""
    if data is None or data.task != "regression" or len(data.y_train) == 0:
        return []
    y = np.asarray(data.y_train, dtype=np.float64).reshape(len(data.y_train), -1)
    mean, std = y.mean(axis=0), y.std(axis=0)
    size = np.abs(mean) + std
    worst = int(np.argmax(size))
    if size[worst] <= TARGET_SCALE_LIMIT:
        return []
    names = list(data.target_names or ())
    name = names[worst] if worst < len(names) else f"target {worst + 1}"
    first = float(mean[worst] ** 2 + std[worst] ** 2)
    unit = 10 ** int(math.floor(math.log10(size[worst])))  # 2.6e5 -> 100,000
    return [Finding(
        "unscaled_targets", "warning", "Targets on large scales",
        f"'{name}' averages {mean[worst]:.4g} with a spread of {std[worst]:.4g}. An untrained "
        f"network outputs values near 0, so the first squared errors are near {first:.2g} and "
        "the gradients as large: SGD leaps past any sensible weights, and Adam, whose steps "
        "are about the learning rate, needs thousands of them only to reach the mean.",
        (), {"largest_scale": float(size[worst])},
        (Fix(f"Divide '{name}' by {unit:,} (the Data box's Divide target by; when it spans "
             "several orders of magnitude, its logarithm in the file may serve better)",
             "divide_target", (), {"divisor": unit}, id="rescale_target"),))]


# The loss "blew up" when it is not finite or over this many times its first value; the
# weights "run away" when a layer's norm grows over RUNAWAY_GROWTH times within the window.
LOSS_BLOWUP = 1000.0
RUNAWAY_GROWTH = 10.0


def _blew_up(losses: Sequence[float]) -> bool:
    if not losses:
        return False
    # The sum is finite iff every loss is (or it overflowed, itself a blow-up): one pass in
    # C instead of isfinite per loss, run at every epoch end over up to 2000 of them.
    if not math.isfinite(sum(losses)):
        return True
    first = losses[0]
    return first > 0 and max(losses) > LOSS_BLOWUP * first


def _without_raising_lr(findings: list[Finding]) -> list[Finding]:
    """The findings without any advice to raise the learning rate (a run that blew up)."""
    out = []
    for f in findings:
        if f.code == "lr_too_low":
            continue
        fixes = tuple(x for x in f.fixes
                      if not (x.action == "scale_lr" and x.params.get("factor", 1.0) > 1.0))
        out.append(f if fixes == f.fixes else replace(f, fixes=fixes))
    return out


def _diverged(div: Any) -> Finding:
    """The divergence as a finding: the layer that blew up, and how to go on."""
    factor = (div.suggested_lr / lr if div.suggested_lr and (lr := _lr_before(div)) else 0.1)
    return Finding(
        "diverged", "error", "Training diverged", div.message,
        (div.layer,) if div.layer else (),
        {"step": float(div.step), "healthy_step": float(div.healthy_step)},
        (
            Fix(f"Lower the learning rate {1 / factor:.3g}-fold and resume", "scale_lr", (),
                {"factor": factor}, id="lower_lr"),
            Fix("Clip gradients by global norm (1.0)", "enable_clipping", (),
                {"clip_grad_norm": 1.0}, id="clip"),
        ),
    )


def _lr_before(div: Any) -> float | None:
    lr = getattr(div, "lr", None)
    return lr if isinstance(lr, (int, float)) and lr > 0 else None


def _runaway_weights(recent) -> list[Finding]:
    """Early warning: a layer's weight norm or update-to-weight ratio grows fast across the
    window, the way it does in the steps before a blow-up."""
    if len(recent) < 2:
        return []
    first = {s.layer: s for s in recent[0]}
    fast = {}
    for s in recent[-1]:
        old = first.get(s.layer)
        if old is None:
            continue
        growth = max(s.weight_norm / old.weight_norm if old.weight_norm > 0 else 1.0,
                     s.update_ratio / old.update_ratio
                     if old.update_ratio > 0 and s.update_ratio > 1e-3 else 1.0)
        if growth > RUNAWAY_GROWTH or not math.isfinite(growth):
            fast[s.layer] = growth
    if not fast:
        return []
    worst = max(fast, key=fast.get)
    return [
        Finding(
            "weights_growing", "warning", "Weights growing fast",
            f"The weights (or their updates) of '{worst}' grew {fast[worst]:.3g}x over the "
            f"last {len(recent)} samples: training is about to blow up.",
            tuple(fast),
            {f"growth.{n}": v for n, v in fast.items()},
            (
                Fix("Lower the learning rate tenfold", "scale_lr", (), {"factor": 0.1},
                    id="lower_lr"),
                Fix("Clip gradients by global norm (1.0)", "enable_clipping", (),
                    {"clip_grad_norm": 1.0}, id="clip"),
            ),
        )
    ]


def _gradient_flow(names, rms, norms, recent, layer_types) -> list[Finding]:
    """Vanishing and exploding gradients, from the per-layer RMS gradients relative to the
    last layer's."""
    if len(names) < 2:
        return []
    last = rms[names[-1]]
    if not (math.isfinite(last) and last > 0):
        return []
    rel = {n: rms[n] / last for n in names}
    weights = [n for n in names if has_trait(layer_types.get(n), "has_weights")]
    out = _vanishing(names, rel, recent, layer_types, weights)
    out += _exploding(names, rel, norms, recent, weights)
    return out


def _vanishing(names, rel, recent, layer_types, weights) -> list[Finding]:
    # Vanishing: early layers learn orders of magnitude slower than the last, sustained.
    # One batch can be unlucky: the median ratio over the window decides.
    # A gradient of exactly zero is not "vanishing": a layer of dead ReLUs blocks it (the
    # dead-unit rule reports that), so such samples do not count.
    if has_trait(layer_types.get(names[0]), "takes_sequence"):
        return []  # a recurrent first layer: the through-time rule says why, with its fixes
    per_sample = [h[0].grad_rms / h[-1].grad_rms for h in recent
                  if h[-1].grad_rms > 0 and h[0].grad_rms > 0]
    sustained = len(per_sample) >= 3 and _median(per_sample) < VANISHING_RATIO
    weak = [n for n in names[:-1] if 0 < rel[n] < VANISHING_RATIO]
    if not (weak and sustained and 0 < rel[names[0]] < VANISHING_RATIO):
        return []
    return [
        Finding(
            "vanishing_gradients",
            "error",
            "Vanishing gradients",
            f"The gradient reaching '{names[0]}' is {rel[names[0]]:.1e} times that of "
            f"the last layer '{names[-1]}' (RMS per weight): "
            f"the first {len(weak)} layer(s) barely learn.",
            tuple(weak),
            {"first_to_last_ratio": rel[names[0]], **{f"ratio.{n}": rel[n] for n in weak}},
            _vanishing_fixes(layer_types, weights),
        )
    ]


# A deep ReLU stack trained by SGD at a large step (the sigmoid demo's lr 0.1, momentum 0.9)
# kills most of its units within an epoch; Adam at its default step trains it (measured on
# the vanishing-gradients example: 96-99 % validation accuracy over three seeds).
RELU_OPTIMIZER = {"type": "adam", "lr": 1e-3}


def _vanishing_fixes(layer_types, weights) -> tuple[Fix, ...]:
    saturating = [n for n, t in layer_types.items() if _activation_kind(t) in ("sigmoid", "tanh")]
    fixes = []
    if saturating:
        # ReLU alone on large random weights explodes instead: pair it with He init.
        fixes.append(
            Fix(
                "Replace Sigmoid/Tanh by ReLU, whose gradient is 1 where it is "
                "active, initialise the weights with He, and train with Adam (lr 0.001): "
                "a large SGD step would silence most of the new ReLU units",
                "replace_activation",
                tuple(saturating),
                {
                    "from": sorted({layer_types[s] for s in saturating}),
                    "to": "ReLU",
                    "init": "he_normal",
                    "init_layers": list(weights),
                    "optimizer": dict(RELU_OPTIMIZER),
                },
                id="relu_he",
            )
        )
    else:
        # He init keeps a ReLU network's signal; under Sigmoid/Tanh, whose slope is at most
        # 1/4 or 1 and shrinks away from 0, it does not stop the gradient from vanishing.
        fixes.append(
            Fix(
                "Initialise weights with He (Kaiming) initialisation, scaled to keep "
                "the signal's variance from layer to layer",
                "init_he",
                tuple(weights),
                id="he_init",
            )
        )
    fixes.append(
        Fix(
            "Add BatchNorm after the Dense layers so every layer sees normalised inputs",
            "add_batchnorm",
            tuple(weights[:-1]),
            id="batchnorm",
        )
    )
    fixes.append(
        Fix(
            "Add residual (skip) connections: each block's input is added to its output, "
            "so the gradient reaches the first layers undiminished",
            "add_residual",
            tuple(weights),
            id="residual",
        )
    )
    return tuple(fixes)


def _exploding(names, rel, norms, recent, weights) -> list[Finding]:
    # Exploding: huge or fast-growing gradients.
    total = [math.sqrt(sum(s.grad_norm**2 for s in h)) for h in recent]
    growth = total[-1] / total[0] if len(total) > 1 and total[0] > 0 else 1.0
    big = [n for n in names if norms[n] > 1e3]
    early_big = rel[names[0]] > 1e2
    if not (big or (len(total) >= 3 and growth > 1e3) or early_big):
        return []
    concerned = big or [n for n in names if rel[n] > 1e2] or names
    return [
        Finding(
            "exploding_gradients",
            "error",
            "Exploding gradients",
            f"Gradient norms reach {max(norms.values()):.2e}"
            + (
                f" and grew {growth:.1e}x over the last {len(total)} samples"
                if growth > 10
                else ""
            )
            + (
                f"; the first layer's gradient is {rel[names[0]]:.1e}x the last's"
                if early_big
                else ""
            )
            + ": updates overshoot and training diverges.",
            tuple(concerned),
            {"max_grad_norm": max(norms.values()), "growth": growth},
            (
                Fix(
                    "Clip gradients by global norm (1.0)",
                    "enable_clipping",
                    (),
                    {"clip_grad_norm": 1.0},
                    id="clip",
                ),
                Fix("Lower the learning rate tenfold", "scale_lr", (), {"factor": 0.1},
                    id="lower_lr"),
                Fix(
                    "Use He/Xavier initialisation instead of large random weights",
                    "init_he",
                    tuple(weights),
                    id="he_init",
                ),
            ),
        )
    ]


def _activation_kind(type_name: str | None) -> str | None:
    cls = layer_class(type_name) if isinstance(type_name, str) else None
    return cls.activation_kind if cls is not None else None


def _learning_rate(names, ratios, n_samples) -> list[Finding]:
    vals = [ratios[n] for n in names if math.isfinite(ratios[n]) and ratios[n] > 0]
    if not vals or n_samples < 3:
        return []
    med = float(statistics.median(vals))
    if med > 1e-1:
        return [
            Finding(
                "lr_too_high",
                "warning",
                "Learning rate too high",
                f"Each step changes the weights by {med:.1e} of their size (a healthy ratio is "
                "about 1e-3): the optimiser is jumping around.",
                tuple(n for n in names if ratios[n] > 1e-1),
                {"median_update_ratio": med},
                (Fix("Lower the learning rate tenfold", "scale_lr", (), {"factor": 0.1},
                     id="lower_lr"),),
            )
        ]
    if med < 1e-6:
        return [
            Finding(
                "lr_too_low",
                "warning",
                "Learning rate too low",
                f"Each step changes the weights by only {med:.1e} of their size "
                "(a healthy ratio is about 1e-3): training will crawl.",
                tuple(names),
                {"median_update_ratio": med},
                (Fix("Raise the learning rate tenfold", "scale_lr", (), {"factor": 10.0},
                     id="raise_lr"),),
            )
        ]
    return []


def _by_layer(recent, names) -> dict[str, list]:
    """The window's samples (lists of per-layer stats) regrouped per layer of ``names``, in
    order: one pass over the window, not one per layer (a 50-layer network asked 50)."""
    out: dict[str, list] = {n: [] for n in names}
    for h in recent:
        for x in h:
            kept = out.get(x.layer)
            if kept is not None:
                kept.append(x)
    return out


def _per_layer_median(recent, field: str, kinds: tuple[str, ...]) -> dict[str, float]:
    """Median of ActivationStats ``field`` over the window, per layer of the given kinds."""
    names = [a.layer for a in recent[-1] if a.kind in kinds]
    by_layer = _by_layer(recent, names)
    return {n: _median([getattr(x, field) for x in by_layer[n]]) for n in names}


def _activation_findings(recent, layer_types) -> list[Finding]:
    out: list[Finding] = []
    dead = _per_layer_median(recent, "dead_fraction", ("relu",))
    dead_bad = {n: v for n, v in dead.items() if v > 0.5}
    if dead_bad:
        worst = max(dead_bad, key=dead_bad.get)
        out.append(
            Finding(
                "dead_relu",
                "warning",
                "Dead ReLU units",
                f"{dead_bad[worst]:.0%} of the units after '{worst}' output zero "
                "for every sample: they receive no gradient and no longer learn.",
                tuple(dead_bad),
                {f"dead.{n}": v for n, v in dead_bad.items()},
                (
                    Fix(
                        "Use LeakyReLU, whose gradient is never exactly zero",
                        "replace_activation",
                        tuple(dead_bad),
                        {"from": ["ReLU"], "to": "LeakyReLU"},
                        id="leaky_relu",
                    ),
                    Fix("Lower the learning rate tenfold", "scale_lr", (), {"factor": 0.1},
                        id="lower_lr"),
                ),
            )
        )
    sat = _per_layer_median(recent, "saturated_fraction", ("sigmoid", "tanh"))
    sat_bad = {n: v for n, v in sat.items() if v > 0.5}
    if sat_bad:
        worst = max(sat_bad, key=sat_bad.get)
        out.append(
            Finding(
                "saturation",
                "warning",
                "Saturated units",
                f"{sat_bad[worst]:.0%} of the units of '{worst}' sit in the flat part of their "
                "curve, where the derivative is almost zero.",
                tuple(sat_bad),
                {f"saturated.{n}": v for n, v in sat_bad.items()},
                (
                    Fix(
                        "Replace Sigmoid/Tanh by ReLU",
                        "replace_activation",
                        tuple(sat_bad),
                        {
                            "from": sorted({layer_types.get(n, "Sigmoid") for n in sat_bad}),
                            "to": "ReLU",
                        },
                        id="relu",
                    ),
                    Fix("Add BatchNorm before the activation", "add_batchnorm", (),
                        id="batchnorm"),
                ),
            )
        )
    return out


# Below this fraction of its starting learning rate, a schedule has annealed training.
ANNEALED = 0.1


def _stalled(losses: Sequence[float], patience: int = 10,
             lr_fraction: float | None = None) -> list[Finding]:
    if len(losses) < patience + 1:
        return []
    recent = [v for v in losses[-(patience + 1) :] if math.isfinite(v)]
    if len(recent) < patience + 1:
        return []
    best_before = min(losses[:-patience]) if len(losses) > patience else recent[0]
    improvement = (best_before - min(recent[1:])) / max(abs(best_before), 1e-12)
    if improvement < 1e-3 and recent[-1] > 1e-3:
        message = ((f"The training loss improved by only {improvement:.2%} over the last "
                    if improvement > 0 else "The training loss has not improved over the last ")
                   + f"{patience} epochs and stays at {recent[-1]:.3g}.")
        evidence = {"relative_improvement": improvement, "loss": recent[-1]}
        larger = Fix("Make the network larger, or check the data and labels",
                     id="larger_network")
        if lr_fraction is not None and lr_fraction < ANNEALED:
            # the schedule brought the rate down: a plateau is what it is for
            return [Finding(
                "stalled_loss", "info", "Loss has stalled",
                message + " The schedule has lowered the learning rate to "
                + (f"{lr_fraction:.1%} of where it started" if lr_fraction >= 1e-3
                   else "almost nothing")
                + ", so a plateau now is the schedule settling the weights, not a rate too "
                "small to learn.",
                (), {**evidence, "lr_fraction": lr_fraction},
                (Fix("If the loss is still too high, let the schedule decay later (a larger "
                     "T_max or step size) or train longer", id="decay_later"), larger))]
        return [
            Finding(
                "stalled_loss",
                "info",
                "Loss has stalled",
                message,
                (),
                evidence,
                (
                    Fix(
                        "Raise the learning rate, or use a schedule with warm-up",
                        "scale_lr",
                        (),
                        {"factor": 3.0},
                        id="raise_lr",
                    ),
                    larger,
                ),
            )
        ]
    return []


# -- gradients through time (recurrent layers) -------------------------------------------------
# Along time, the ratio of the gradient reaching the earliest step to that at the last step:
# below TIME_VANISHING (over the steps it crosses) the first steps learn nothing; above
# TIME_EXPLODING one long sequence can blow the weights up.
TIME_VANISHING = 1e-3
TIME_EXPLODING = 1e3
RECURRENT_GATED = ("LSTM", "GRU")


def time_reach(norms: np.ndarray) -> tuple[float, int]:
    """(norm at the earliest step the gradient reaches / norm at the last step, steps
    crossed). Steps before a truncated-BPTT cut get no gradient (exactly 0) and are not
    counted: a cut is not a vanishing gradient."""
    norms = np.asarray(norms, dtype=np.float64)
    reached = np.flatnonzero(norms != 0)
    if len(reached) < 2 or not norms[-1] > 0:
        return (float("nan") if not np.all(np.isfinite(norms)) else 1.0), 0
    first = int(reached[0])
    return float(norms[first] / norms[-1]), len(norms) - 1 - first


def _through_time(samples: Sequence[dict[str, np.ndarray]], layer_types) -> list[Finding]:
    """Vanishing and exploding gradients along time, per recurrent layer, sustained over at
    least three diagnostic samples (the median ratio decides, as across layers)."""
    vanishing: dict[str, tuple[float, int]] = {}
    exploding: dict[str, tuple[float, int]] = {}
    for nid in samples[-1]:
        reach = [time_reach(s[nid]) for s in samples if nid in s]
        ratios = [r for r, span in reach if span > 0 or not math.isfinite(r)]
        if len(ratios) < 3:
            continue
        ratio, span = _median(ratios), max(span for _, span in reach)
        if any(not math.isfinite(r) for r in ratios) or ratio > TIME_EXPLODING:
            exploding[nid] = (ratio if math.isfinite(ratio) else float("inf"), span)
        elif 0 < ratio < TIME_VANISHING:
            vanishing[nid] = (ratio, span)
    out = []
    if vanishing:
        out.append(_time_finding("vanishing_through_time", "Vanishing gradients through time",
                                 vanishing, layer_types))
    if exploding:
        out.append(_time_finding("exploding_through_time", "Exploding gradients through time",
                                 exploding, layer_types))
    return out


def _time_finding(code: str, title: str, layers: dict[str, tuple[float, int]],
                  layer_types) -> Finding:
    worst = min(layers, key=lambda n: layers[n][0]) if code.startswith("vanishing") \
        else max(layers, key=lambda n: layers[n][0])
    ratio, span = layers[worst]
    if code.startswith("vanishing"):
        message = (f"In '{worst}' the gradient reaching the first step is {ratio:.1e} times "
                   f"that at the last, {span} steps later: the early steps barely learn, so "
                   "the network cannot use what it read long ago.")
    else:
        message = (f"In '{worst}' the gradient grows {ratio:.3g}x going {span} steps back in "
                   "time: one long sequence can throw the weights far off.")
    return Finding(code, "error" if code.startswith("exploding") else "warning", title, message,
                   tuple(layers),
                   {**{f"ratio.{n}": r for n, (r, _) in layers.items()},
                    **{f"steps.{n}": float(s) for n, (_, s) in layers.items()}},
                   _time_fixes(code, layers, layer_types))


def _time_fixes(code: str, layers: dict[str, tuple[float, int]], layer_types) -> tuple[Fix, ...]:
    plain = tuple(n for n in layers if layer_types.get(n) not in RECURRENT_GATED)
    fixes: list[Fix] = []
    if code.startswith("exploding"):
        fixes.append(Fix("Clip gradients by global norm (1.0)", "enable_clipping", (),
                         {"clip_grad_norm": 1.0}, id="clip"))
        span = max(s for _, s in layers.values())
        steps = max(1, min(20, span // 2))
        fixes.append(Fix(f"Truncate backpropagation through time to {steps} steps "
                         "(bptt_steps)", "set_bptt", (), {"bptt_steps": steps}, id="bptt"))
    for gated in RECURRENT_GATED if plain else ():
        fixes.append(Fix(f"Replace {', '.join(plain)} by an {gated}: its gates carry the "
                         "gradient across many steps" if gated == "LSTM" else
                         f"Replace {', '.join(plain)} by a {gated}", "replace_type", plain,
                         {"from": ["RNN"], "to": gated}, id=gated.lower()))
    fixes.append(Fix("Initialise the recurrent weights orthogonally (recurrent_init): they "
                     "then keep the gradient's norm from step to step", "init_orthogonal",
                     tuple(layers), id="orthogonal"))
    return tuple(fixes)
