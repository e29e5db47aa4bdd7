"""Conv2D (torch.nn.Conv2d) by im2col: one copy per kernel offset, one large matmul.

Memory layout, chosen so that every matmul is a single large GEMM and every transpose
moves contiguous runs of a whole image plane:

* ``cols`` has shape (C*kh*kw, N*Ho*Wo): one column per output pixel of the whole batch,
  viewed as (C, kh, kw, N, Ho, Wo). :func:`im2col_into` builds it straight from the
  unpadded input, one copy per kernel offset of the (C, N, Ho, Wo) slab that offset
  reads, then zeros where the window overhangs the input: no padded copy of x.
* Forward is ``W (F, C*kh*kw) @ cols`` -> (F, N, Ho*Wo), one GEMM, the bias added in
  place, then one transpose to NCHW that copies runs of Ho*Wo contiguous values. (Adding
  the bias during that copy measured slower: numpy does not vectorise an add of a strided
  and a broadcast operand.) The usual (N*Ho*Wo, K) layout needs the same GEMM but
  transposes with runs of only F values. When a column is short (K = C*kh*kw at most
  ``PER_IMAGE_MAX_K``: a first layer on grey or colour images), numpy computes one
  product per image instead, straight into NCHW: such a GEMM mostly writes its output,
  so the transpose pass it saves is worth more than BLAS's threads on one large GEMM; for
  longer columns the large GEMM wins (measured on 2 cores).
* Backward transposes the gradient once to (F, N*Ho*Wo); then ``dW = g cols^T`` (as
  ``(cols g^T)^T`` when cols has more rows than g: measured faster) and ``dcols = W^T g``
  are one GEMM each. With short columns dW and db come per image straight from the NCHW
  gradient, without the transpose (a different order of the same sums).
* With ``groups`` G > 1 the rows (c, u, v) of one group are contiguous in ``cols``, so
  the forward is one batched GEMM ``W (G, F/G, C/G*kh*kw) @ cols (G, C/G*kh*kw, N*Ho*Wo)``
  and backward's two GEMMs are batched the same way; G == 1 keeps the plain GEMMs.
* Dilation only spaces the offsets' slices.

The input gradient goes back through col2im (:func:`col2im_into`): for each kernel offset,
in row-major order, its (C, N, Ho, Wo) slab of ``dcols`` is added onto the slice of the
input it read, starting from zeros. That is kh*kw vectorised adds, no padded gradient and
no scatter (np.add.at is numpy-only and slow), and it runs unchanged on CuPy.

numpy's cost is per innermost run as much as per value (a (C, N, rows, cols) slab is C*N*rows
runs of at most Wo values, and numpy vectorises only long contiguous runs), so the common
geometries take longer runs: with stride 1 and Wo == W, im2col copies each offset as one
run per image and channel; with stride 1 and (Ho, Wo) == (H, W) ("same" padding), col2im
adds each offset as one run of N*H*W values per channel, the whole batch shifted, after
zeroing the overhanging entries of dcols so that the runs carry exact zeros across rows'
and images' edges. Either way the input gradient is bit for bit that of a plain col2im.

Keeping these arrays from step to step (``Layer.scratch``) measured no faster here: a
fresh allocation reuses memory the previous step freed, which is still in cache.

On CuPy (float32/float64), im2col, col2im and the bias-plus-transpose are one fused kernel
each (``bplab.kernels``), with the same layouts and the same order of additions.
"""

from __future__ import annotations

import numpy as np

from bplab import kernels
from bplab.backend import get_array_module
from bplab.errors import ShapeError
from bplab.initializers import fans, initialize
from bplab.layers.base import BuildContext, Layer, Option, sum_rows
from bplab.layers.core import fmt_shape
from bplab.layers.registry import register

__all__ = [
    "Conv2D", "col2im_into", "conv_output_size", "fill_outside", "im2col_into", "pad_input",
    "window_slice",
]


def conv_output_size(size: int, kernel: int, stride: int, padding: int,
                     dilation: int = 1) -> int:
    """torch's floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_spatial_input(layer: Layer, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of a layer's input, or a ShapeError that says what to insert."""
    if len(shape) != 3:
        remedy = ("use Reshape to give it (channels, height, width), e.g. [1, 28, 28]"
                  if len(shape) == 1 else
                  "use Reshape to give it (channels, height, width)")
        raise ShapeError(
            f"{layer.label(layer.name)} expects (channels, height, width) input, "
            f"received {fmt_shape(shape)}: {remedy}"
        )
    return shape  # type: ignore[return-value]


def check_window_fits(layer: Layer, shape, kernel, stride, padding,
                      dilation=(1, 1)) -> tuple[int, int]:
    _, h, w = shape
    ho = conv_output_size(h, kernel[0], stride[0], padding[0], dilation[0])
    wo = conv_output_size(w, kernel[1], stride[1], padding[1], dilation[1])
    if ho < 1 or wo < 1:
        window = f"a {kernel[0]}x{kernel[1]} window"
        remedy = "use a smaller kernel_size or more padding"
        if tuple(dilation) != (1, 1):
            span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
            window += f" with dilation {dilation[0]}x{dilation[1]} (spanning {span[0]}x{span[1]})"
            remedy = "use a smaller kernel_size or dilation, or more padding"
        raise ShapeError(
            f"{layer.label(layer.name)}: {window} does not fit the "
            f"{h}x{w} input (padding {padding[0]}x{padding[1]}): {remedy}"
        )
    return ho, wo


def pad_input(x, padding: tuple[int, int], value: float = 0.0):
    """x (N, C, H, W) with ``padding`` rows/columns of ``value`` on each side (a new array)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = get_array_module(x).full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def window_slice(i: int, j: int, out_hw: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int] = (1, 1)):
    """Index of the (N, C, Ho, Wo) slab that kernel offset (i, j) reads from the padded input."""
    ho, wo = out_hw
    sh, sw = stride
    y0, x0 = i * dilation[0], j * dilation[1]
    return (slice(None), slice(None),
            slice(y0, y0 + sh * (ho - 1) + 1, sh), slice(x0, x0 + sw * (wo - 1) + 1, sw))


def _span(out_size: int, in_size: int, stride: int, start: int):
    """(output slice, input slice) along one axis for one kernel offset, or None.

    Output index o reads input index ``o * stride + start`` (start = offset * dilation -
    padding); only the outputs whose input index lies inside [0, in_size) read the real
    input, the others read padding (the window overhangs the edge)."""
    o0 = max(0, -(start // stride))  # ceil(-start / stride)
    o1 = min(out_size, (in_size - 1 - start) // stride + 1)
    if o1 <= o0:
        return None
    r0 = o0 * stride + start
    return slice(o0, o1), slice(r0, r0 + (o1 - o0 - 1) * stride + 1, stride)


class _Geometry:
    """Where each kernel offset of a convolution reads the real (unpadded) input.

    ``rows[i]``/``cols[j]``: the (output, input) slices of :func:`_span` for kernel row i
    and kernel column j. ``same``: stride 1 and an output as large as the input, so that
    kernel offset (i, j) reads the input shifted by ``shift(i, j)`` flat positions of the
    whole (N, H, W) batch of one channel.
    """

    def __init__(self, kernel, stride, padding, dilation, out_hw, in_hw):
        self.padding, self.dilation = padding, dilation
        self.width = in_hw[1]
        self.rows = [_span(out_hw[0], in_hw[0], stride[0], i * dilation[0] - padding[0])
                     for i in range(kernel[0])]
        self.cols = [_span(out_hw[1], in_hw[1], stride[1], j * dilation[1] - padding[1])
                     for j in range(kernel[1])]
        self.same = tuple(stride) == (1, 1) and tuple(out_hw) == tuple(in_hw)

    def offsets(self):
        """(i, j, (out_rows, out_cols), (in_rows, in_cols)) in row-major order, for the
        offsets that read some real input."""
        return [(i, j, (r[0], c[0]), (r[1], c[1]))
                for i, r in enumerate(self.rows) if r is not None
                for j, c in enumerate(self.cols) if c is not None]

    def shift(self, i: int, j: int) -> int:
        return ((i * self.dilation[0] - self.padding[0]) * self.width
                + j * self.dilation[1] - self.padding[1])

    def zero_overhang(self, cols6) -> None:
        """Zero the entries of a (C, kh, kw, N, Ho, Wo) array whose window tap lies in the
        padding: one op per kernel row or column and side (rows and columns of Wo or
        N*Ho values, not one small op per offset)."""
        for i, r in enumerate(self.rows):
            if r is None:
                cols6[:, i] = 0
            else:
                cols6[:, i, :, :, :r[0].start] = 0
                cols6[:, i, :, :, r[0].stop:] = 0
        for j, c in enumerate(self.cols):
            if c is None:
                cols6[:, :, j] = 0
            else:
                cols6[:, :, j, :, :, :c[0].start] = 0
                cols6[:, :, j, :, :, c[0].stop:] = 0


def _flat_ranges(size: int, shift: int) -> tuple[slice, slice]:
    """(output, input) ranges of a shift by ``shift`` within [0, size): input = output +
    shift."""
    lo, hi = max(0, -shift), size - max(0, shift)
    return slice(lo, hi), slice(lo + shift, hi + shift)


def fill_outside(a, rows: slice, cols: slice, value) -> None:
    """``value`` into a (..., H, W) array everywhere outside the block [rows, cols]."""
    a[..., :rows.start, :] = value
    a[..., rows.stop:, :] = value
    a[..., rows, :cols.start] = value
    a[..., rows, cols.stop:] = value


def im2col_into(cols6, x, stride, padding, dilation) -> None:
    """Write im2col's (C, kh, kw, N, Ho, Wo) columns of ``x`` (N, C, H, W) into ``cols6``.

    Straight from the unpadded input, one copy per kernel offset, then zeros where the
    window overhangs the input; no padded copy of x.

    numpy's cost is per innermost run as much as per value: an offset's (C, N, rows, cols)
    block copied row by row is C*N*rows runs of at most Wo values. With stride 1 and
    output rows as long as the input's (Wo == W, e.g. 3x3 with padding 1), an offset's
    block is one run of H*W-ish values per image and channel instead: the run from its
    first to its last value, whose wrap-around columns are overhang, zeroed after.
    """
    c, kh, kw, n, ho, wo = cols6.shape
    h, w = x.shape[2:]
    geo = _Geometry((kh, kw), stride, padding, dilation, (ho, wo), (h, w))
    if tuple(stride) == (1, 1) and wo == w:
        xf = x.reshape(n, c, h * w).transpose(1, 0, 2)
        flat = cols6.reshape(c, kh, kw, n, ho * wo)
        for i, j, out, inp in geo.offsets():
            length = (out[0].stop - out[0].start - 1) * w + out[1].stop - out[1].start
            o, r = out[0].start * w + out[1].start, inp[0].start * w + inp[1].start
            flat[:, i, j, :, o:o + length] = xf[:, :, r:r + length]
    else:
        xt = x.transpose(1, 0, 2, 3)  # (C, N, H, W), the layout of one offset's slab
        for i, j, out, inp in geo.offsets():
            cols6[:, i, j][:, :, out[0], out[1]] = xt[:, :, inp[0], inp[1]]
    geo.zero_overhang(cols6)


def col2im_into(dx, dcols6, stride, padding, dilation) -> None:
    """Sum the (C, kh, kw, N, Ho, Wo) column gradients back onto ``dx`` (N, C, H, W).

    Each offset's (C, N, Ho, Wo) slab is added into the slice of the input it read, in
    row-major offset order onto zeros, as a plain col2im would: kh*kw vectorised adds, no
    padded gradient. In the "same" case (stride 1, output as large as the input) the sum
    is taken in (C, N*H*W) order, each offset one add of N*H*W values per channel, the
    whole batch shifted by the offset, after the overhanging entries of ``dcols6`` (which
    it overwrites) are zeroed: the adds carry exact zeros across rows' and images' edges.
    (A strided (C, N, rows, cols) add costs about four times as much per value: numpy
    vectorises only long contiguous runs.) Its first offset is written rather than added
    (0 + a is a), and one transpose copy gives NCHW. Otherwise the adds go into the
    (C, N, H, W) transpose of dx; with stride 1 the first offset is written and only the
    rest of dx zeroed, instead of a zero fill of all of it.
    """
    c, kh, kw, n, ho, wo = dcols6.shape
    h, w = dx.shape[2:]
    geo = _Geometry((kh, kw), stride, padding, dilation, (ho, wo), (h, w))
    offsets = geo.offsets()
    xp = get_array_module(dx)
    if geo.same:
        geo.zero_overhang(dcols6)
        flat = dcols6.reshape(c, kh, kw, n * h * w)
        acc = (xp.empty if offsets else xp.zeros)((c, n * h * w), dx.dtype)
        for k, (i, j, _, _) in enumerate(offsets):
            out, inp = _flat_ranges(acc.shape[1], geo.shift(i, j))
            if k == 0:
                acc[:, :inp.start] = 0
                acc[:, inp.stop:] = 0
                acc[:, inp] = flat[:, i, j, out]
            else:
                acc[:, inp] += flat[:, i, j, out]
        dx[...] = acc.reshape(c, n, h, w).transpose(1, 0, 2, 3)
        return
    dxt = dx.transpose(1, 0, 2, 3)
    first = tuple(stride) == (1, 1) and bool(offsets)
    if first:
        _, _, _, (rows, cols) = offsets[0]
        fill_outside(dxt, rows, cols, 0)
    else:
        dx[...] = 0
    for k, (i, j, out, inp) in enumerate(offsets):
        src = dcols6[:, i, j][:, :, out[0], out[1]]
        if first and k == 0:
            dxt[:, :, inp[0], inp[1]] = src
        else:
            dxt[:, :, inp[0], inp[1]] += src


# On numpy, the products are per image (straight into NCHW) when a column has at most this
# many rows (C*kh*kw): such a product does little arithmetic per value it writes, so the
# transpose pass it saves outweighs BLAS's threads on one large GEMM. Measured on 2 cores,
# per image was faster for K = 9, 18, 27, even at 36, slower at 72 and 144.
PER_IMAGE_MAX_K = 32


def _common_divisors(a: int, b: int) -> list[int]:
    return [d for d in range(1, min(a, b) + 1) if a % d == 0 and b % d == 0]


@register
class Conv2D(Layer):
    """2-D convolution over NCHW input, torch.nn.Conv2d (cross-correlation, no flip).

    ``y[n, f, i, j] = b[f] + sum_{c < C/G, u, v} W[f, c, u, v]
    x_pad[n, k(f) C/G + c, i s_h + u d_h, j s_w + v d_w]``, ``k(f) = floor(f G / F)``,
    with W of shape (filters F, in_channels C / groups G, kh, kw): each of the G groups of
    C/G input channels feeds its own F/G filters (``groups = in_channels`` is a depthwise
    convolution), and the dilation d spaces the window's taps d apart.

    >>> layer = Conv2D("c1", filters=16, kernel_size=3, padding=1)
    """

    type_name = "Conv2D"
    category = "Convolution"
    id_prefix = "conv"
    has_weights = True
    options = (
        Option("filters", "int", doc="number of output channels", low=1, main=True),
        Option("kernel_size", "pair", 3, doc="window height and width", low=1, main=True),
        Option("stride", "pair", 1, doc="step between windows", low=1),
        Option("padding", "pair", 0, doc="zeros added on each side", low=0),
        Option("dilation", "pair", 1, doc="spacing between the window's taps", low=1),
        Option("groups", "int", 1, doc="split channels into groups convolved separately "
               "(in_channels: depthwise)", low=1),
        Option("bias", "bool", True, doc="learn an additive bias per filter"),
        Option("init", "init", "default", doc="initializer of the weight"),
        Option("bias_init", "init", "default", doc="initializer of the bias"),
    )
    summary = "Slides small learned filters over the image; each filter makes one channel."
    math = ("y = W * x + b (cross-correlation), as cols = im2col(x), y = W cols + b "
            "(per group);  dL/dW = g cols^T,  dL/db = sum g,  dL/dx = col2im(W^T g)")

    def output_shape(self, input_shapes):
        (shape,) = input_shapes
        check_spatial_input(self, shape)
        self._check_groups(shape[0])
        ho, wo = check_window_fits(self, shape, self.kernel_size, self.stride, self.padding,
                                   self.dilation)
        return (self.filters, ho, wo)

    def _check_groups(self, channels: int) -> None:
        g = self.groups
        if channels % g or self.filters % g:
            options = ", ".join(str(d) for d in _common_divisors(channels, self.filters))
            raise ShapeError(
                f"{self.label(self.name)}: groups={g} must divide the {channels} input "
                f"channels and the {self.filters} filters: use one that divides both "
                f"({options})"
            )

    @classmethod
    def count_params(cls, config, input_shapes):
        c = input_shapes[0][0] if len(input_shapes[0]) == 3 else 1
        kh, kw = config.get("kernel_size", (3, 3))
        f = config["filters"]
        per_filter = c // config.get("groups", 1) * kh * kw
        return f * per_filter + (f if config.get("bias", True) else 0)

    def build(self, input_shapes, ctx: BuildContext):
        c = input_shapes[0][0]
        self._check_groups(c)
        # fans of (F, C/G, kh, kw) are torch's: fan_in = C/G kh kw
        shape = (self.filters, c // self.groups, *self.kernel_size)
        fan_in, fan_out = fans(shape)
        self.add_param("weight", initialize(self.init, shape, ctx.rng), ctx)
        if self.bias:
            b = initialize(self.bias_init, (self.filters,), ctx.rng, fan_in=fan_in,
                           fan_out=fan_out)
            self.add_param("bias", b, ctx)
        self._cols = None
        self._in_shape = None

    def forward(self, x, training=True):
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        ho = conv_output_size(h, kh, self.stride[0], self.padding[0], self.dilation[0])
        wo = conv_output_size(w, kw, self.stride[1], self.padding[1], self.dilation[1])
        fused = kernels.fusable(x)
        if fused:
            x = self.xp.ascontiguousarray(x)
            cols = kernels.im2col(x, self.kernel_size, self.stride, self.padding, (ho, wo),
                                  self.dilation)
        else:
            cols6 = self.xp.empty((c, kh, kw, n, ho, wo), x.dtype)
            im2col_into(cols6, x, self.stride, self.padding, self.dilation)
            cols = cols6.reshape(c * kh * kw, n * ho * wo)
        self._cols = cols
        self._in_shape = x.shape
        weight = self.params["weight"].data
        g = self.groups
        if self.xp is np and g == 1 and cols.shape[0] <= PER_IMAGE_MAX_K:
            return self._forward_per_image(weight, cols, n, (ho, wo))
        if g == 1:
            y = weight.reshape(self.filters, -1) @ cols  # (F, N*Ho*Wo)
        else:
            # rows (c, u, v) of one group are contiguous: one batched GEMM over the groups
            y = (weight.reshape(g, self.filters // g, -1)
                 @ cols.reshape(g, -1, cols.shape[1])).reshape(self.filters, -1)
        if fused:
            bias = self.params["bias"].data if self.bias else None
            return kernels.conv_output_nchw(y, bias, n, (ho, wo))
        if self.bias:
            y += self.params["bias"].data[:, None]
        # (F, N, P) -> (N, F, P): moves contiguous runs of Ho*Wo values. (Adding the bias
        # during this copy is slower: numpy's add of a strided and a broadcast operand
        # does not vectorise, the in-place add above does.)
        return self.xp.ascontiguousarray(
            y.reshape(self.filters, n, ho * wo).transpose(1, 0, 2)).reshape(
                n, self.filters, ho, wo)

    def _forward_per_image(self, weight, cols, n, out_hw):
        """``W (F, K) @ cols`` as N products (F, K) @ (K, Ho*Wo), written in NCHW order.

        Each output value is the same K-term dot product as in the one large GEMM; the
        bias is added over rows of F*Ho*Wo contiguous values."""
        xp = self.xp
        p = out_hw[0] * out_hw[1]
        y = xp.matmul(weight.reshape(self.filters, -1),
                      cols.reshape(cols.shape[0], n, p).transpose(1, 0, 2))  # (N, F, P)
        if self.bias:
            rows = y.reshape(n, self.filters * p)
            rows += xp.repeat(self.params["bias"].data, p)
        return y.reshape(n, self.filters, *out_hw)

    def backward(self, grad):
        cols, self._cols = self._cols, None
        n, c, h, w = self._in_shape
        ho, wo = grad.shape[2], grad.shape[3]
        xp = self.xp
        per_image = xp is np and self.groups == 1 and cols.shape[0] <= PER_IMAGE_MAX_K
        if per_image:
            self._param_grads_per_image(grad, cols)
            if not self.need_input_grad:
                return None
        g = xp.ascontiguousarray(grad.reshape(n, self.filters, ho * wo).transpose(1, 0, 2))
        g = g.reshape(self.filters, n * ho * wo)
        if not per_image:
            self._param_grads(g, cols)
        if not self.need_input_grad:
            return None
        kh, kw = self.kernel_size
        groups = self.groups
        wp = self.params["weight"]
        if groups == 1:
            dcols = wp.data.reshape(self.filters, -1).T @ g  # (C*kh*kw, N*Ho*Wo)
        else:
            w3 = wp.data.reshape(groups, self.filters // groups, -1)
            g3 = g.reshape(groups, self.filters // groups, -1)  # (G, F/G, N*Ho*Wo)
            dcols = (w3.transpose(0, 2, 1) @ g3).reshape(c * kh * kw, -1)
        if kernels.fusable(dcols):
            return kernels.col2im(dcols, self._in_shape, self.kernel_size, self.stride,
                                  self.padding, (ho, wo), self.dilation)
        dx = xp.empty(self._in_shape, dtype=grad.dtype)
        col2im_into(dx, dcols.reshape(c, kh, kw, n, ho, wo), self.stride, self.padding,
                    self.dilation)
        return dx

    def _param_grads(self, g, cols) -> None:
        """dW = g cols^T and db = sum g, from the (F, N*Ho*Wo) gradient."""
        wp = self.params["weight"]
        groups = self.groups
        if groups == 1 and cols.shape[0] > self.filters and self.xp is np:
            # the same product, with the longer side as the GEMM's rows (measured faster)
            wp.add_grad((cols @ g.T).T.reshape(wp.shape))
        elif groups == 1:
            wp.add_grad((g @ cols.T).reshape(wp.shape))
        else:
            g3 = g.reshape(groups, self.filters // groups, -1)  # (G, F/G, N*Ho*Wo)
            cols3 = cols.reshape(groups, -1, cols.shape[1])  # (G, C/G*kh*kw, N*Ho*Wo)
            wp.add_grad((g3 @ cols3.transpose(0, 2, 1)).reshape(wp.shape))
        if self.bias:
            self.params["bias"].add_sum(g, 1)

    def _param_grads_per_image(self, grad, cols) -> None:
        """dW and db straight from the NCHW gradient, for the layers whose forward works
        per image: one (F, Ho*Wo) @ (Ho*Wo, K) product per image, summed over the batch,
        instead of transposing the whole gradient first. (A different order of the same
        sums: float rounding may differ from the one large GEMM.)"""
        n, f = grad.shape[:2]
        p = grad.shape[2] * grad.shape[3]
        g3 = grad.reshape(n, f, p)
        wp = self.params["weight"]
        per_image = self.xp.matmul(g3, cols.reshape(cols.shape[0], n, p).transpose(1, 2, 0))
        wp.add_grad(sum_rows(per_image).reshape(wp.shape))
        if self.bias:  # over the batch, then over the positions (143 -> 25 us on conv1 of E)
            self.params["bias"].add_sum(sum_rows(g3), 1)

    def clear_cache(self):
        self._cols = None
