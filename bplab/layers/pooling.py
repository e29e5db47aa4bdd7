"""MaxPool2D, AvgPool2D (torch.nn.MaxPool2d / AvgPool2d) and GlobalAvgPool.

A k x k pool is computed as k*k element-wise operations on strided slices of the
(padded) input, one per window offset, rather than as a reduction over tiny window axes
(numpy reduces small inner axes slowly). Backward adds each offset's share back into
the same slices; in the common non-overlapping case (stride == kernel, no padding) the
slices are disjoint and the gradient is *written* into them, with no zero-fill-and-add,
and when those windows tile the whole input the gradient array is not zero-filled either.

Max pooling's backward walks the offsets in row-major window order with ``taken``, a mask
of the windows an earlier offset has won: per offset one comparison with the output, that
mask taken away (a boolean op), one product of the gradient and the mask written straight
into the offset's slice of dx, and (but for the last offset) the mask added to ``taken``.
So each window's gradient goes to its first maximum, as torch's CPU kernel does; the
bookkeeping is on booleans, a quarter of the bytes of the float gradient it once
multiplied. The strided slices dominate the cost (numpy vectorises only contiguous runs),
so the ops on them are kept to the comparison and the product. With disjoint windows, a
training forward copies its input once into window-major order (kh, kw, N, C, Ho, Wo) and
keeps that copy instead of the input: the maxima and backward's comparisons then run on
contiguous slabs, and only backward's product is written through a strided slice (2x2 on a
64x16x28x28 batch: backward 1.16 -> 0.81 ms with the window-major slabs, -> 0.67 ms with
the boolean bookkeeping; forward unchanged).

On CuPy (float32/float64) max pooling is one fused kernel each way (``bplab.kernels``).
"""

from __future__ import annotations

from bplab import kernels
from bplab.errors import ConfigError, ShapeError
from bplab.layers.base import Layer, Option
from bplab.layers.conv import (
    check_spatial_input,
    check_window_fits,
    conv_output_size,
    pad_input,
    window_slice,
)
from bplab.layers.core import fmt_shape
from bplab.layers.registry import register

__all__ = ["AvgPool2D", "GlobalAvgPool", "MaxPool2D"]


class _Pool2D(Layer):
    category = "Convolution"
    id_prefix = "pool"
    options = (
        Option("kernel_size", "pair", 2, doc="window height and width", low=1, main=True),
        Option("stride", "pair", None, doc="step between windows (default: kernel_size)",
               low=1),
        Option("padding", "pair", 0, doc="padding added on each side", low=0),
    )

    def __init__(self, name: str = "", **config):
        super().__init__(name, **config)
        if self.stride is None:
            self.stride = self.kernel_size
        self._in_shape = None

    @classmethod
    def check_config(cls, label, config):
        k, p = config["kernel_size"], config["padding"]
        if p[0] > k[0] // 2 or p[1] > k[1] // 2:
            raise ConfigError(
                f"{label}: padding must be at most half the kernel_size, received "
                f"padding={list(p)} for kernel_size={list(k)}"
            )

    def output_shape(self, input_shapes):
        (shape,) = input_shapes
        check_spatial_input(self, shape)
        ho, wo = check_window_fits(self, shape, self.kernel_size, self.stride, self.padding)
        return (shape[0], ho, wo)

    def _geometry(self, x):
        """(Ho, Wo) and the window offsets (i, j) in row-major order."""
        h, w = x.shape[2:]
        ho = conv_output_size(h, self.kernel_size[0], self.stride[0], self.padding[0])
        wo = conv_output_size(w, self.kernel_size[1], self.stride[1], self.padding[1])
        return (ho, wo), self._offsets()

    def _offsets(self):
        kh, kw = self.kernel_size
        return [(i, j) for i in range(kh) for j in range(kw)]

    @property
    def _disjoint(self) -> bool:
        return self.stride == self.kernel_size and self.padding == (0, 0)

    def _padded_grad(self, dtype):
        """The (padded) input gradient for the offsets' shares to go into: uninitialised
        when disjoint windows tile the whole input (every element is written exactly once),
        else zeros."""
        n, c, h, w = self._in_shape
        ph, pw = self.padding
        kh, kw = self.kernel_size
        covers = self._disjoint and h % kh == 0 and w % kw == 0
        return (self.xp.empty if covers else self.xp.zeros)(
            (n, c, h + 2 * ph, w + 2 * pw), dtype=dtype)

    def _unpad(self, dx):
        """The padded input gradient without its padding."""
        h, w = self._in_shape[2:]
        ph, pw = self.padding
        return dx[:, :, ph:ph + h, pw:pw + w] if ph or pw else dx

    def _scatter(self, shares, out_hw, dtype):
        """Input gradient from one (N, C, Ho, Wo) share per window offset."""
        dx = self._padded_grad(dtype)
        for (i, j), share in shares:
            if self._disjoint:
                dx[window_slice(i, j, out_hw, self.stride)] = share
            else:
                dx[window_slice(i, j, out_hw, self.stride)] += share
        return self._unpad(dx)

    def clear_cache(self):
        self._cache = None


@register
class MaxPool2D(_Pool2D):
    """Maximum over each window (nn.MaxPool2d); the gradient goes to the window's argmax.

    Ties: the first maximum in row-major window order wins, as torch's CPU kernel.
    Keeps its (padded) input and output; the argmax masks are made in backward.
    """

    type_name = "MaxPool2D"
    summary = "Keeps the largest value of each window: halves the image with the default 2x2."
    math = "y = max_{window} x;  dL/dx = dL/dy at each window's argmax, 0 elsewhere"

    def forward(self, x, training=True):
        xp = self.xp
        out_hw, offsets = self._geometry(x)
        self._in_shape = x.shape
        if kernels.fusable(x):
            # the window's argmax offset is kept, so backward is a gather
            y, arg = kernels.maxpool_forward(xp.ascontiguousarray(x), self.kernel_size,
                                             self.stride, self.padding, out_hw)
            self._cache = (None, arg)
            return y
        if training and self._disjoint:
            return self._forward_window_major(x, out_hw)
        xpad = pad_input(x, self.padding, float("-inf"))
        y = xpad[window_slice(*offsets[0], out_hw, self.stride)].copy()
        for i, j in offsets[1:]:
            xp.maximum(y, xpad[window_slice(i, j, out_hw, self.stride)], out=y)
        # the argmax masks are found in backward: evaluation never pays for them
        self._cache = (xpad, y)
        return y

    def _forward_window_major(self, x, out_hw):
        """Training with disjoint windows: one copy of the input into window-major order
        (kh, kw, N, C, Ho, Wo), kept for backward, whose per-offset comparisons then read
        contiguous slabs instead of strided ones (module docstring)."""
        xp = self.xp
        n, c = x.shape[:2]
        (kh, kw), (ho, wo) = self.kernel_size, out_hw
        tiles = x[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw)
        xt = xp.empty((kh, kw, n, c, ho, wo), x.dtype)
        xt[...] = tiles.transpose(3, 5, 0, 1, 2, 4)
        slabs = xt.reshape(kh * kw, n, c, ho, wo)
        y = slabs[0].copy()
        for k in range(1, kh * kw):
            xp.maximum(y, slabs[k], out=y)
        self._cache = (slabs, y)
        return y

    def backward(self, grad):
        (xpad, kept), self._cache = self._cache, None
        if xpad is None:  # the fused forward kept each window's argmax offset
            return kernels.maxpool_backward(self.xp.ascontiguousarray(grad), kept,
                                            self._in_shape, self.kernel_size, self.stride,
                                            self.padding)
        xp = self.xp
        y = kept
        out_hw = grad.shape[2:]
        disjoint = self._disjoint
        dx = self._padded_grad(grad.dtype)
        offsets = self._offsets()
        # the input's slab of each offset: window-major (contiguous) after a training forward
        # with disjoint windows, else strided slices of the padded input
        window_major = xpad.ndim == 5
        m = xp.empty(y.shape, bool)
        taken = xp.empty(y.shape, bool)  # windows an earlier offset has won (docstring)
        # A window whose maximum is NaN equals none of its values: it gets no gradient.
        for k, (i, j) in enumerate(offsets):
            where = window_slice(i, j, out_hw, self.stride)
            xp.equal(xpad[k] if window_major else xpad[where], y, out=m)
            if k:
                xp.greater(m, taken, out=m)  # m and not taken
            target = dx[where]
            if disjoint:
                xp.multiply(grad, m, out=target)  # written straight into its slice
            else:
                target += grad * m
            if k == 0:
                taken[...] = m
            elif k + 1 < len(offsets):
                xp.logical_or(taken, m, out=taken)
        return self._unpad(dx)


@register
class AvgPool2D(_Pool2D):
    """Mean over each window (nn.AvgPool2d).

    With ``count_include_pad`` (torch's default) the divisor is always kh*kw; without,
    it is the number of real (unpadded) input values in the window.
    """

    type_name = "AvgPool2D"
    options = _Pool2D.options + (
        Option("count_include_pad", "bool", True, doc="count padding zeros in the mean"),
    )
    summary = "Averages each window: a smoother way to shrink the image than max pooling."
    math = "y = mean_{window} x;  dL/dx = dL/dy / (window size), spread over the window"

    def _divisor(self, x, out_hw):
        """kh*kw, or (without count_include_pad) the real values per window, (Ho, Wo)."""
        kh, kw = self.kernel_size
        if self.count_include_pad or self.padding == (0, 0):
            return float(kh * kw)
        h, w = x.shape[2:]
        ones = self.xp.ones((1, 1, h, w), dtype=x.dtype)
        ones = pad_input(ones, self.padding)
        count = sum(ones[window_slice(i, j, out_hw, self.stride)]
                    for i in range(kh) for j in range(kw))
        return count[0, 0]

    def forward(self, x, training=True):
        out_hw, offsets = self._geometry(x)
        xpad = pad_input(x, self.padding)
        y = xpad[window_slice(*offsets[0], out_hw, self.stride)].copy()
        for i, j in offsets[1:]:
            y += xpad[window_slice(i, j, out_hw, self.stride)]
        div = self._divisor(x, out_hw)
        y /= div
        self._cache = div
        self._in_shape = x.shape
        return y

    def backward(self, grad):
        div, self._cache = self._cache, None
        share = grad / div
        return self._scatter(((o, share) for o in self._offsets()), grad.shape[2:], grad.dtype)


@register
class GlobalAvgPool(Layer):
    """(N, C, H, W) -> (N, C): the mean of each channel (nn.AdaptiveAvgPool2d(1) + Flatten)."""

    type_name = "GlobalAvgPool"
    category = "Convolution"
    summary = "Averages each channel over the whole image, leaving one number per channel."
    math = "y[n, c] = mean_{h, w} x[n, c, h, w];  dL/dx = dL/dy / (H W), spread evenly"

    def output_shape(self, input_shapes):
        (shape,) = input_shapes
        if len(shape) != 3:
            raise ShapeError(
                f"{self.label(self.name)} expects (channels, height, width) input, "
                f"received {fmt_shape(shape)}: use it after Conv2D or pooling layers"
            )
        return (shape[0],)

    def forward(self, x, training=True):
        self._in_shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, grad):
        h, w = self._in_shape[2:]
        dx = self.xp.empty(self._in_shape, dtype=grad.dtype)
        dx[...] = (grad / (h * w))[:, :, None, None]  # adjoint of a mean: spread evenly
        return dx
