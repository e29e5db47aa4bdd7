"""Element-wise activations (and Softmax). Each keeps the least its backward needs.

Cache discipline (Chainer's ``retain_outputs``): Sigmoid, Tanh and Softmax keep their
output, ReLU and LeakyReLU a boolean mask, the smooth ones (ELU, GELU, SiLU, Softplus)
their input. No layer modifies the gradient it is handed: Add passes one array to all
its inputs, so an in-place edit would leak into another branch.
"""

from __future__ import annotations

import math

import numpy as np

from bplab.backend import get_array_module
from bplab.errors import ShapeError
from bplab.layers.base import OVERFLOW_IGNORED, Layer, Option, zeros_like_read_only
from bplab.layers.registry import register

__all__ = [
    "ELU", "GELU", "Identity", "LeakyReLU", "ReLU", "SiLU", "Sigmoid", "Softmax", "Softplus",
    "Tanh", "erf", "erfc", "sigmoid",
]


# -- special functions, written once against xp ---------------------------------------------
def _chebyshev_fit(f, a: float, b: float, deg: int) -> tuple[float, ...]:
    """Chebyshev coefficients of ``f`` on [a, b], interpolated at the Chebyshev nodes.

    The reference values come from Python's ``math`` (correctly rounded libm), so the fit
    is as good as the double-precision evaluation of ``f``.
    """
    t = np.cos(np.pi * (np.arange(deg + 1) + 0.5) / (deg + 1))
    x = 0.5 * (b - a) * t + 0.5 * (b + a)
    coef = np.polynomial.chebyshev.chebfit(t, [f(float(v)) for v in x], deg)
    return tuple(float(c) for c in coef)


def _erfcx(x: float) -> float:
    """exp(x^2) erfc(x): smooth and slowly varying, so a short polynomial fits it."""
    return math.exp(x * x) * math.erfc(x)


_TAIL_START = 6.0
_TAIL_END = 26.5  # erfc(x) underflows to 0 beyond this
# (lo, hi, coefficients); the erf(x)/x piece is a function of t = x^2, the tail piece of s = 6/x.
_ERF_SMALL = (0.0, 1.0, _chebyshev_fit(
    lambda t: math.erf(math.sqrt(t)) / math.sqrt(t) if t > 0 else 2 / math.sqrt(math.pi),
    0.0, 1.0, 16))
_ERFCX_MID = ((1.0, 3.0, _chebyshev_fit(_erfcx, 1.0, 3.0, 20)),
              (3.0, _TAIL_START, _chebyshev_fit(_erfcx, 3.0, _TAIL_START, 20)))
_ERFCX_TAIL = (_TAIL_START / _TAIL_END, 1.0, _chebyshev_fit(
    lambda s: _TAIL_START / s * _erfcx(_TAIL_START / s), _TAIL_START / _TAIL_END, 1.0, 12))


def _clenshaw(x, lo: float, hi: float, coef: tuple[float, ...]):
    """Sum of coef[k] T_k(t) with t = x mapped from [lo, hi] to [-1, 1] (stable recurrence)."""
    t2 = (x - 0.5 * (hi + lo)) * (4.0 / (hi - lo))  # 2t
    b1 = 0.0 * x
    b2 = b1.copy()
    for c in coef[:0:-1]:
        b1, b2 = t2 * b1 - b2 + c, b1
    return 0.5 * t2 * b1 - b2 + coef[0]


def _erf_nonneg(z, xp, complement: bool):
    """erf(z) or erfc(z) for z >= 0; erfc keeps a small *relative* error far in the tail.

    Each piece is evaluated only where it applies (boolean gathers), so the cost is one
    short polynomial per element rather than one per piece. erf of small z is computed
    directly, never as 1 - erfc (which would lose its relative precision near 0).
    """
    out = xp.where(xp.isnan(z), z, 0.0)  # erfc beyond 26.5 underflows to 0; NaN stays NaN
    m = z < 1.0
    if m.any():
        zm = z[m]
        e = zm * _clenshaw(zm * zm, *_ERF_SMALL)
        out[m] = 1.0 - e if complement else e
    for lo, hi, coef in _ERFCX_MID:
        m = (z >= lo) & (z < hi)
        if m.any():
            zm = z[m]
            out[m] = _clenshaw(zm, lo, hi, coef) * xp.exp(-zm * zm)
    m = (z >= _TAIL_START) & (z < _TAIL_END)
    if m.any():
        zm = z[m]
        out[m] = _clenshaw(_TAIL_START / zm, *_ERFCX_TAIL) / zm * xp.exp(-zm * zm)
    if not complement:
        # the pieces beyond z = 1 computed erfc
        big = z >= 1.0
        out[big] = 1.0 - out[big]
    return out


def erfc(x):
    """Complementary error function of an array (numpy or CuPy), ~1e-15 relative in float64.

    Piecewise Chebyshev fits (made at import from Python's ``math``) of erf(x)/x on
    |x| < 1 and of exp(x^2) erfc(x) beyond, evaluated with Clenshaw's recurrence.
    """
    xp = get_array_module(x)
    out = _erf_nonneg(xp.abs(x), xp, complement=True)
    # erfc(-z) = 2 - erfc(z)
    return xp.where(x < 0, 2.0 - out, out)


def erf(x):
    """Error function of an array (numpy or CuPy), within a few ulp in float64."""
    xp = get_array_module(x)
    out = _erf_nonneg(xp.abs(x), xp, complement=False)
    return xp.where(x < 0, -out, out)


def sigmoid(x, xp=None, out=None):
    """1 / (1 + exp(-x)), accurate for any x; into ``out`` when given (``out=x``: in place).

    For x below about -88 (float32) exp(-x) overflows to inf and the result is the correct
    limit 0; that overflow is expected, so its warning is silenced. Four in-place operations
    on one array: this runs once per sigmoid layer per step, and once per time step of a
    recurrent layer's gates (which pass their ``xp``: looking the module up costs more than
    an operation on a small batch).
    """
    if xp is None:
        xp = get_array_module(x)
    y = xp.negative(x, out=out)
    if OVERFLOW_IGNORED.on:  # inside a network's forward pass, already under errstate
        xp.exp(y, out=y)
    else:
        with np.errstate(over="ignore"):
            xp.exp(y, out=y)
    y += 1.0
    return xp.reciprocal(y, out=y)
def _compiled_grad(kernel, y, grad):
    """dL/dx from a :mod:`bplab.jit` kernel of an activation that keeps its output ``y``,
    into a new C-ordered array (the kernels write C order; grad and y are left alone)."""
    d = np.empty(grad.shape, grad.dtype)
    kernel(y, grad, d)
    return d


# -- layers ------------------------------------------------------------------------------------
class _Elementwise(Layer):
    """Shape-preserving activation; ``_saved`` is the one array its backward reads."""

    category = "Activations"
    is_activation = True
    _saved = None

    def clear_cache(self) -> None:
        self._saved = None

    def _take(self):
        saved, self._saved = self._saved, None
        return saved


@register
class Identity(_Elementwise):
    """y = x. A placeholder that lets a branch pass through unchanged."""

    type_name = "Identity"
    summary = "Passes its input through unchanged."
    math = "y = x;  dL/dx = dL/dy"

    def forward(self, x, training=True):
        return x

    def backward(self, grad):
        return grad


@register
class ReLU(_Elementwise):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0 (torch's choice at x = 0). Keeps a mask."""

    type_name = "ReLU"
    activation_kind = "relu"
    summary = "Keeps positive values, zeroes negative ones; a unit stuck below 0 is 'dead'."
    math = "y = max(x, 0);  dL/dx = dL/dy * [x > 0]"

    def forward(self, x, training=True):
        xp = self.xp
        zero = zeros_like_read_only(x)  # vectorised where the scalar 0 is not (numpy)
        if zero is None:
            zero = 0
        if training and self.reuse_buffers:
            self._saved = xp.greater(x, 0, out=self.scratch("mask", x.shape, bool))
            return xp.maximum(x, zero, out=self.scratch("y", x.shape))
        self._saved = x > 0
        return xp.maximum(x, zero)

    def backward(self, grad):
        mask = self._take()
        if self.reuse_buffers:
            return self.xp.multiply(grad, mask, out=self.scratch("dx", grad.shape))
        return grad * mask


@register
class LeakyReLU(_Elementwise):
    """y = x for x > 0, ``negative_slope * x`` otherwise (nn.LeakyReLU). Keeps a mask."""

    type_name = "LeakyReLU"
    activation_kind = "relu"
    options = (Option("negative_slope", "float", 0.01, doc="slope for x < 0", main=True),)
    summary = "Like ReLU, but lets a small slope through for negative inputs."
    math = "y = x if x > 0 else a x;  dL/dx = dL/dy * (1 if x > 0 else a)"

    def forward(self, x, training=True):
        mask = x > 0
        self._saved = mask
        return self.xp.where(mask, x, x * self.negative_slope)

    def backward(self, grad):
        return self.xp.where(self._take(), grad, grad * self.negative_slope)


@register
class ELU(_Elementwise):
    """y = x for x > 0, ``alpha (exp(x) - 1)`` otherwise (nn.ELU). Keeps its input."""

    type_name = "ELU"
    options = (Option("alpha", "float", 1.0, doc="value approached for very negative x",
                      main=True),)
    summary = "Smooth below zero: approaches -alpha for very negative inputs."
    math = "y = x if x > 0 else a (e^x - 1);  dL/dx = dL/dy * (1 if x > 0 else a e^x)"

    def forward(self, x, training=True):
        self._saved = x
        xp = self.xp
        # expm1 of min(x, 0): no overflow warning from the branch that is thrown away
        return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * self.alpha)

    def backward(self, grad):
        x = self._take()
        xp = self.xp
        return grad * xp.where(x > 0, 1.0, xp.exp(xp.minimum(x, 0)) * self.alpha)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@register
class GELU(_Elementwise):
    """y = x Phi(x), Phi the standard normal CDF (nn.GELU). Keeps its input.

    ``approximate="tanh"`` uses 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as torch.
    """

    type_name = "GELU"
    options = (Option("approximate", "choice", "none", doc="exact (erf) or the tanh formula",
                      choices=("none", "tanh")),)
    summary = "Weights each input by how likely a standard normal is below it (smooth ReLU)."
    math = ("y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;  "
            "dL/dx = dL/dy * (Phi(x) + x exp(-x^2/2) / sqrt(2 pi))")

    def forward(self, x, training=True):
        self._saved = x
        if self.approximate == "tanh":
            u = self.xp.tanh((x + 0.044715 * x * x * x) * _SQRT_2_OVER_PI)
            return 0.5 * x * (1.0 + u)
        # Phi(x) = erfc(-x / sqrt 2) / 2 stays accurate relative to itself for x << 0
        return x * erfc(x * -math.sqrt(0.5)) * 0.5

    def backward(self, grad):
        x = self._take()
        xp = self.xp
        if self.approximate == "tanh":
            x2 = x * x
            u = xp.tanh((x + 0.044715 * x2 * x) * _SQRT_2_OVER_PI)
            du = (1.0 - u * u) * ((1.0 + 3 * 0.044715 * x2) * _SQRT_2_OVER_PI)
            return grad * (0.5 * (1.0 + u) + 0.5 * x * du)
        cdf = erfc(x * -math.sqrt(0.5)) * 0.5
        return grad * (cdf + x * xp.exp(x * x * -0.5) * _INV_SQRT_2PI)


@register
class SiLU(_Elementwise):
    """y = x sigmoid(x) (nn.SiLU, "swish"). Keeps its input."""

    type_name = "SiLU"
    overflows = True
    summary = "x times sigmoid(x): a smooth ReLU-like curve that dips slightly below zero."
    math = "y = x s(x), s = sigmoid;  dL/dx = dL/dy * s(x) (1 + x (1 - s(x)))"

    def forward(self, x, training=True):
        self._saved = x
        return x * sigmoid(x)

    def backward(self, grad):
        x = self._take()
        s = sigmoid(x)
        return grad * (s * (1.0 + x * (1.0 - s)))


@register
class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y). Keeps its output; stable for any x."""

    type_name = "Sigmoid"
    activation_kind = "sigmoid"
    overflows = True
    summary = "Squashes to (0, 1); saturates for |x| > 5, where gradients vanish."
    math = "y = 1 / (1 + e^-x);  dL/dx = dL/dy * y (1 - y)"

    def forward(self, x, training=True):
        y = sigmoid(x, self.xp)
        self._saved = y
        return y

    def backward(self, grad):
        y = self._take()
        if self.jit is not None and type(grad) is np.ndarray and grad.dtype == y.dtype:
            return _compiled_grad(self.jit.sigmoid_backward, y, grad)
        # one temporary; grad and y are left alone (Add shares grad, y may be captured)
        d = 1.0 - y
        d *= y
        d *= grad
        return d


@register
class Tanh(_Elementwise):
    """y = tanh(x); dy/dx = 1 - y^2 (keeps the output, not the input)."""

    type_name = "Tanh"
    activation_kind = "tanh"
    summary = "Squashes to (-1, 1); saturates for |x| > 3, where gradients vanish."
    math = "y = tanh(x);  dL/dx = dL/dy * (1 - y^2)"

    def forward(self, x, training=True):
        y = self.xp.tanh(x)
        self._saved = y
        return y

    def backward(self, grad):
        y = self._take()
        if self.jit is not None and type(grad) is np.ndarray and grad.dtype == y.dtype:
            return _compiled_grad(self.jit.tanh_backward, y, grad)
        d = y * y  # one temporary; grad and y are left alone
        self.xp.subtract(1.0, d, out=d)
        d *= grad
        return d


@register
class Softplus(_Elementwise):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (nn.Softplus)."""

    type_name = "Softplus"
    options = (
        Option("beta", "float", 1.0, doc="sharpness of the bend", low=0.0, low_open=True),
        Option("threshold", "float", 20.0, doc="above beta*x > threshold the layer is linear"),
    )
    summary = "A smooth ReLU: log(1 + e^x)."
    math = ("y = log(1 + e^(b x)) / b  (x where b x > threshold);  "
            "dL/dx = dL/dy * sigmoid(b x)  (1 where b x > threshold)")

    def forward(self, x, training=True):
        self._saved = x
        xp = self.xp
        z = x * self.beta
        # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): never overflows
        y = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / self.beta
        return xp.where(z > self.threshold, x, y)

    def backward(self, grad):
        x = self._take()
        z = x * self.beta
        return grad * self.xp.where(z > self.threshold, 1.0, sigmoid(z))


@register
class Softmax(_Elementwise):
    """y_i = exp(x_i) / sum_j exp(x_j) along ``dim`` (torch counting: 0 is the batch axis).

    Keeps its output: dL/dx = y * (g - sum(g * y, dim)).
    """

    type_name = "Softmax"
    options = (Option("dim", "int", -1, doc="axis to normalise, counting the batch axis as 0",
                      main=True),)
    summary = "Turns scores into probabilities that sum to 1 along one axis."
    math = "y_i = e^(x_i) / sum_j e^(x_j);  dL/dx = y * (dL/dy - sum_j dL/dy_j y_j)"

    def output_shape(self, input_shapes):
        (shape,) = input_shapes
        ndim = len(shape) + 1
        if not -ndim <= self.dim < ndim:
            from bplab.layers.core import fmt_shape

            raise ShapeError(
                f"{self.label(self.name)}: dim {self.dim} is out of range for input "
                f"{fmt_shape(shape)} (valid: {-ndim} to {ndim - 1}): change dim"
            )
        return shape

    def forward(self, x, training=True):
        xp = self.xp
        # subtracting the max changes nothing mathematically and keeps exp from overflowing
        y = x - x.max(axis=self.dim, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=self.dim, keepdims=True)
        self._saved = y
        return y

    def backward(self, grad):
        y = self._take()
        gy = grad * y
        gy -= y * gy.sum(axis=self.dim, keepdims=True)
        return gy
