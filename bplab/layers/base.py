"""What every layer is: options, parameters, forward and an explicit backward.

A layer is the unit of backpropagation in bplab (the contract of torch's
``Function`` lifted to layers): ``forward(x, training)`` caches only what its
backward needs, ``backward(grad_out)`` returns the gradient with respect to its
input and *accumulates* the gradients of its parameters, then frees its cache.

Shapes exclude the batch axis everywhere (``(16, 7, 7)``, not ``(N, 16, 7, 7)``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from bplab.errors import ConfigError

__all__ = ["Option", "Parameter", "Layer", "BuildContext", "REQUIRED", "pair"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Option:
    """A layer hyper-parameter, described well enough to validate it and build an editor.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``choice``, ``pair`` (an int or
    two ints, as torch's ``kernel_size``), ``ints`` (a tuple of ints, as a shape),
    ``init`` (an initializer name or ``{"type": ..., ...}``), ``int_or_none``.
    ``low``/``high`` bound numbers; ``low_open`` makes the lower bound exclusive.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    main: bool = False  # shown on the canvas node

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, layer_label: str, value: Any) -> Any:
        """Return ``value`` normalised, or raise ConfigError quoting it."""

        def bad(what: str) -> ConfigError:
            return ConfigError(f"{layer_label}: {self.name} must be {what}, received "
                               f"{self.quote(value)}")

        k = self.kind
        if k in ("int", "int_or_none"):
            if value is None and k == "int_or_none":
                return None
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise bad(self._int_words())
            value = int(value)
            self._check_bounds(value, bad, self._int_words())
            return value
        if k == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise bad("a number")
            value = float(value)
            if not math.isfinite(value):
                raise bad("a finite number")
            self._check_bounds(value, bad, self._float_words())
            return value
        if k == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise bad("true or false")
            return bool(value)
        if k == "choice":
            if value not in self.choices:
                raise bad("one of " + ", ".join(repr(c) for c in self.choices))
            return value
        if k == "pair":
            if value is None and self.default is None:
                return None  # a pair option whose default is None may be left unset
            if isinstance(value, (list, tuple)):
                if len(value) != 2:
                    raise bad("an integer or a pair of integers")
                items = list(value)
            else:
                items = [value, value]
            out = []
            for v in items:
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                    raise bad("an integer or a pair of integers")
                if self.low is not None and v < self.low:
                    raise bad(f"at least {int(self.low)}")
                out.append(int(v))
            return tuple(out)
        if k == "ints":
            if not isinstance(value, (list, tuple)) or not value:
                raise bad("a list of integers")
            out = []
            for v in value:
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                    raise bad("a list of integers")
                if self.low is not None and v < self.low:
                    raise bad(f"a list of integers of at least {int(self.low)}")
                out.append(int(v))
            return tuple(out)
        if k == "init":
            from bplab.initializers import check_initializer  # noqa: PLC0415 - cycle

            try:
                return check_initializer(value)
            except ConfigError as exc:
                raise ConfigError(f"{layer_label}: {self.name}: {exc}") from None
        raise AssertionError(f"unknown option kind {k!r}")

    def quote(self, value: Any) -> str:
        """How an error message shows the value it received."""
        return repr(value)

    def _int_words(self) -> str:
        if self.low == 1 and self.high is None:
            return "a positive integer"
        if self.low == 0 and self.high is None:
            return "a non-negative integer"
        return "an integer" + self._range_words()

    def _float_words(self) -> str:
        return "a number" + self._range_words()

    def _range_words(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return f" in {'(' if self.low_open else '['}{lo:g}, {hi:g}]"
        if lo is not None:
            return f" {'>' if self.low_open else '>='} {lo:g}"
        if hi is not None:
            return f" <= {hi:g}"
        return ""

    def _check_bounds(self, value, bad, words: str) -> None:
        lo, hi = self.low, self.high
        if lo is not None and (value < lo or (self.low_open and value == lo)):
            raise bad(words)
        if hi is not None and value > hi:
            raise bad(words)


class Parameter:
    """A trainable array with a stable name and a gradient buffer.

    ``has_grad`` is False after :meth:`zero_grad`: the buffer then holds stale values and
    the first backward *writes* it instead of adding (torch's ``grad is None``). Optimizers
    and clipping skip parameters whose ``has_grad`` is False, as torch skips ``grad=None``.
    """

    __slots__ = ("name", "data", "grad", "has_grad")

    def __init__(self, name: str, data):
        self.name = name
        self.data = data
        self.grad = data.copy()
        self.has_grad = False

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def size(self) -> int:
        return int(self.data.size)

    def zero_grad(self) -> None:
        self.has_grad = False

    def add_grad(self, g) -> None:
        """``grad += g`` (or ``grad = g`` right after zero_grad)."""
        if self.has_grad:
            self.grad += g
        else:
            self.grad[...] = g
            self.has_grad = True

    def add_matmul(self, a, b) -> None:
        """``grad += a @ b`` without a temporary when the buffer is fresh."""
        if self.has_grad:
            self.grad += a @ b
        else:
            np_like_matmul(a, b, self.grad)
            self.has_grad = True

    def add_sum(self, g, axis) -> None:
        """``grad += g.sum(axis)`` without a temporary when the buffer is fresh.

        A bias gradient sums a 2-D gradient over the batch (or a conv's over its columns):
        on numpy that is a product with a vector of ones, ``ones @ g`` or ``g @ ones``,
        which BLAS computes 2.5 to 5 times faster than the reduction at every size
        measured (batch 32 x 8 units: 0.5 us against 1.8; a conv's 16 x 50k: 26 us against
        130). The same sums in another order: equal to the dtype's rounding.
        """
        if (type(g) is np.ndarray and g.ndim == 2 and axis in (0, 1) and g.dtype in _BLAS
                and g.dtype == self.grad.dtype and self.grad.flags.c_contiguous):
            ones = _ones(g.shape[axis], g.dtype)
            if self.has_grad:
                self.grad += np.dot(ones, g) if axis == 0 else np.dot(g, ones)
            elif axis == 0:
                np.dot(ones, g, out=self.grad)
            else:
                np.dot(g, ones, out=self.grad)
            self.has_grad = True
        elif self.has_grad:
            self.grad += g.sum(axis=axis)
        elif type(g) is np.ndarray:
            np.add.reduce(g, axis=axis, out=self.grad)  # skips ndarray.sum's Python wrapper
            self.has_grad = True
        else:
            g.sum(axis=axis, out=self.grad)
            self.has_grad = True

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


_BLAS = (np.dtype(np.float32), np.dtype(np.float64))
_ONES: dict[tuple[int, np.dtype], np.ndarray] = {}


def _ones(n: int, dtype) -> np.ndarray:
    """A read-only vector of ``n`` ones, kept per length and dtype (a batch size or two)."""
    key = (n, dtype)
    ones = _ONES.get(key)
    if ones is None:
        if len(_ONES) > 32:
            _ONES.clear()
        ones = _ONES[key] = np.ones(n, dtype)
        ones.flags.writeable = False
    return ones


def sum_rows(a):
    """``a.sum(axis=0)``: on a contiguous numpy float array, ``ones @ a`` with the other
    axes flattened, for the reason :meth:`Parameter.add_sum` gives (a conv's gradient,
    64 x 32 x 144: 16 us against 30)."""
    if type(a) is np.ndarray and a.ndim >= 2 and a.dtype in _BLAS and a.flags.c_contiguous:
        n = a.shape[0]
        return np.dot(_ones(n, a.dtype), a.reshape(n, -1)).reshape(a.shape[1:])
    return a.sum(axis=0)


def np_like_matmul(a, b, out) -> None:
    """``out[...] = a @ b`` for numpy or CuPy operands (both accept ``out=``).

    Two 2-D float numpy operands go through ``np.dot``: the same BLAS gemm as ``np.matmul``
    (bit for bit on the layers' operands, which BLAS takes as they are, transposed or not),
    with about 0.5 us less of numpy's own overhead per call (a gufunc's dispatch), which a
    Playground-size layer pays three times a step. ``np.dot`` writes only into a
    C-contiguous ``out`` of the result's exact dtype; anything else goes to ``np.matmul``.
    """
    if isinstance(a, np.ndarray):
        if type(a) is np.ndarray and a.ndim == 2 and b.ndim == 2 and a.dtype in _BLAS:
            try:
                np.dot(a, b, out)
                return
            except ValueError:  # out is not the C-contiguous array of the result's dtype
                pass
        np.matmul(a, b, out=out)
    else:
        import cupy  # noqa: PLC0415

        cupy.matmul(a, b, out=out)


@dataclass
class BuildContext:
    """What a layer needs to create its parameters."""

    xp: Any = np
    dtype: Any = np.float32
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def to_device(self, host_array: np.ndarray):
        """Initializers draw on the host (same numbers on every backend), then move here."""
        return self.xp.asarray(host_array.astype(self.dtype, copy=False))


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# The largest array of zeros zeros_like_read_only() keeps, per dtype (32 MiB of float32).
ZEROS_MAX = 1 << 23
_ZEROS: dict[Any, np.ndarray] = {}


def zeros_like_read_only(x):
    """A read-only numpy array of zeros shaped and typed like ``x``, or None (CuPy, or more
    than :data:`ZEROS_MAX` values).

    For ``maximum(x, zeros)`` in place of ``maximum(x, 0)``: numpy (2.4) vectorises its
    maximum of two arrays but not of an array and a scalar, 0.11 ms against 0.30 ms on a
    64x16x28x28 float32 batch (a ReLU of workload E). The zeros are views of one buffer
    per dtype, grown as needed and never written."""
    if type(x) is not np.ndarray or x.size > ZEROS_MAX:
        return None
    buf = _ZEROS.get(x.dtype)
    if buf is None or buf.size < x.size:
        buf = np.zeros(max(x.size, 1 << 12), x.dtype)
        buf.flags.writeable = False
        _ZEROS[x.dtype] = buf  # a reader of the old buffer still holds zeros
    return buf[:x.size].reshape(x.shape)


class _OverflowIgnored(threading.local):
    """Per thread: True while a :class:`~bplab.graph.Network` forward pass runs under
    ``np.errstate(over="ignore")``. Layers whose arithmetic overflows on purpose (a sigmoid's
    ``exp(-x)`` for very negative x: inf, then the exact limit 0) then skip their own
    ``errstate``, which costs about 1 us a call: 7 % of a step of a 10-layer sigmoid network,
    and 100 calls per forward of a recurrent layer over 100 steps."""

    on = False

    def __enter__(self) -> None:
        self._was, self.on = self.on, True

    def __exit__(self, *exc) -> None:
        self.on = self._was


OVERFLOW_IGNORED = _OverflowIgnored()


class Layer:
    """Base class of all layers.

    Subclasses set ``type_name`` (the name used in project files), ``category`` (palette
    group), ``options`` and ``summary``/``math`` (tooltips), and implement
    :meth:`output_shape`, :meth:`forward`, :meth:`backward` and, if they own
    parameters, :meth:`build`.
    """

    type_name: ClassVar[str] = ""
    category: ClassVar[str] = "Core"
    options: ClassVar[tuple[Option, ...]] = ()
    arity: ClassVar[int | None] = 1  # None: two or more inputs (merge layers)
    summary: ClassVar[str] = ""
    math: ClassVar[str] = ""
    # For diagnostics: "relu" (dead units), "sigmoid"/"tanh" (saturated units), or None.
    activation_kind: ClassVar[str | None] = None
    # Traits: what the engine and the app ask of a layer type instead of listing type names.
    # has_weights: owns a weight matrix or kernel (init choices, l1/l2 penalties, the diagnosis'
    # "weight layers", gradient-norm plots); is_activation: an element-wise nonlinearity (its
    # outputs are the "activations" plotted and diagnosed); takes_sequence: its input has a
    # time axis, (batch, time, features).
    has_weights: ClassVar[bool] = False
    is_activation: ClassVar[bool] = False
    takes_sequence: ClassVar[bool] = False
    # New nodes of this type are named <id_prefix>1, <id_prefix>2 (bplab.graph.ids); empty:
    # the type name in lower case.
    id_prefix: ClassVar[str] = ""
    # Its forward overflows on purpose (see OVERFLOW_IGNORED): a network holding one runs its
    # forward pass under one np.errstate instead of one per call.
    overflows: ClassVar[bool] = False
    # The network clears this on layers fed straight by the Input during training, so they
    # can skip computing a gradient nobody reads (backward then returns None).
    need_input_grad: bool = True
    # Set by the network while training (not under gradient checkpointing): forward/backward
    # may write into per-layer arrays kept from the previous step instead of allocating.
    reuse_buffers: bool = False
    # Set by the network on a small numpy network (bplab.jit.kernels_for): the compiled
    # kernels a layer may use in place of several numpy calls; None: the numpy code.
    jit: Any = None

    def __init__(self, name: str = "", **config: Any):
        self.name = name or self.type_name.lower()
        self.config = self.validate_config(config, name)
        for key, value in self.config.items():
            setattr(self, key, value)
        self.params: dict[str, Parameter] = {}
        self.buffers: dict[str, Any] = {}
        self._scratch: dict[tuple, Any] = {}
        self.xp: Any = np
        self.dtype: Any = np.float32

    # -- configuration -------------------------------------------------------------------
    @classmethod
    def label(cls, name: str) -> str:
        return f"{cls.type_name} '{name}'" if name else cls.type_name

    @classmethod
    def validate_config(cls, config: dict[str, Any], name: str = "") -> dict[str, Any]:
        """Check every option; unknown names and missing required ones are errors."""
        label = cls.label(name)
        known = {o.name: o for o in cls.options}
        unknown = [k for k in config if k not in known]
        if unknown:
            hint = ", ".join(known) if known else "no options"
            raise ConfigError(
                f"{label}: unknown option {unknown[0]!r} (it takes {hint})"
            )
        out: dict[str, Any] = {}
        for opt in cls.options:
            if opt.name in config:
                out[opt.name] = opt.check(label, config[opt.name])
            elif opt.required:
                raise ConfigError(f"{label}: {opt.name} is required ({opt.doc})")
            elif opt.kind == "pair":
                out[opt.name] = opt.check(label, opt.default)  # 3 -> (3, 3), like a value
            else:
                out[opt.name] = opt.default
        cls.check_config(label, out)
        return out

    @classmethod
    def check_config(cls, label: str, config: dict[str, Any]) -> None:
        """Cross-option checks (override when options constrain each other)."""

    # -- shapes and parameters ------------------------------------------------------------
    def output_shape(self, input_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        """Shape of the output (no batch axis); raise ShapeError with a remedy if invalid."""
        return input_shapes[0]

    def build(self, input_shapes: list[tuple[int, ...]], ctx: BuildContext) -> None:
        """Create parameters and buffers. Layers without parameters need not override."""

    def bind(self, ctx: BuildContext) -> None:
        self.xp = ctx.xp
        self.dtype = ctx.dtype

    def add_param(self, name: str, host_value: np.ndarray, ctx: BuildContext) -> Parameter:
        p = Parameter(name, ctx.to_device(host_value))
        self.params[name] = p
        return p

    def scratch(self, name: str, shape: tuple[int, ...], dtype: Any = None):
        """An array kept from step to step for ``name`` at this shape (uninitialised).

        Only for results that nobody reads after the step that made them: layer outputs and
        input gradients during training. A small network then allocates (almost) nothing
        per step; the epoch's last, smaller batch gets its own set.
        """
        key = (name, shape)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = self.xp.empty(shape, dtype or self.dtype)
        return buf

    def param_count(self) -> int:
        return sum(p.size for p in self.params.values())

    @classmethod
    def count_params(cls, config: dict[str, Any], input_shapes) -> int:
        """Parameter count from config and shapes, without allocating (for the editor)."""
        return 0

    # -- computation ----------------------------------------------------------------------
    def forward(self, x, training: bool = True):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def clear_cache(self) -> None:
        """Drop what forward kept for backward (called after backward, and on eval).

        The default forgets every private array attribute (``self._x``, ``self._mask``...);
        layers whose cache holds something else override it.
        """
        for key, value in vars(self).items():
            if key.startswith("_") and hasattr(value, "__array_interface__") or (
                key.startswith("_") and type(value).__module__.startswith("cupy")
                and hasattr(value, "shape")
            ):
                setattr(self, key, None)

    def random_generators(self) -> dict[str, np.random.Generator]:
        """The host random generators this layer draws from (Dropout's mask stream), by
        attribute name: checkpoints save their state and gradient checkpointing replays it."""
        return {k: v for k, v in vars(self).items() if isinstance(v, np.random.Generator)}

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({self.name!r}{', ' if cfg else ''}{cfg})"
