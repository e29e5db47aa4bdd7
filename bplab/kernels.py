"""Fused CuPy kernels behind the layer and loss classes (convolution, max pooling,
softmax cross-entropy).

On a GPU every array operation is a kernel launch that costs microseconds of host time,
and a lab-sized network is launch-bound: the portable code in ``conv.py``, ``pooling.py``
and ``losses.py`` spends 20-25 launches per convolution, 25-30 per max pool and ~20 per
cross-entropy step, most of them moving a few kilobytes. Each kernel here does the same
arithmetic in one launch, in the same order as the portable code where the order can
change a rounding (col2im and the pooling gradient add their terms in the portable code's
window-offset order), so CuPy's results stay within float rounding of numpy's. The numpy
path keeps the readable code; the tests run every layer on both backends against the same
references.

Only float32 and float64 take these kernels (:func:`fusable`); float16 (mixed precision)
keeps the portable path, whose accuracy was measured.

Index maps, for an input (N, C, H, W), kernel (kh, kw), stride (sh, sw), padding (ph, pw),
dilation (dh, dw) (convolution only; pooling has none) and output (Ho, Wo):

* im2col ``cols[(c, u, v), (n, oy, ox)] = x[n, c, oy sh + u dh - ph, ox sw + v dw - pw]`` (0 in
  the padding), the layout ``Conv2D`` documents. Groups change nothing here: a group's rows
  (c, u, v) are contiguous, and the layer batches its GEMMs over them.
* col2im is its adjoint: ``dx[n, c, y, x] = sum_{u, v} dcols[(c, u, v), (n, oy, ox)]`` over the
  (u, v) for which ``y + ph - u dh = oy sh`` and ``x + pw - v dw = ox sw`` land inside the
  output, added in ascending u, then v (the portable code's order).
  Each thread gathers its own sum, so there are no atomics and the result is deterministic.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

__all__ = [
    "col2im",
    "conv_output_nchw",
    "fusable",
    "im2col",
    "maxpool_backward",
    "maxpool_forward",
    "softmax_cross_entropy",
]

_GEOMETRY = ("int32 C, int32 H, int32 W, int32 kh, int32 kw, int32 sh, int32 sw, "
             "int32 ph, int32 pw, int32 Ho, int32 Wo")
# convolution adds the dilation; the pooling kernels keep _GEOMETRY
_CONV_GEOMETRY = f"{_GEOMETRY}, int32 dh, int32 dw"


def fusable(x) -> bool:
    """True when ``x`` is a float32/float64 CuPy array (numpy keeps the portable code)."""
    return type(x).__module__.startswith("cupy") and x.dtype in (np.float32, np.float64)


def _geometry(x_shape, kernel, stride, padding, out_hw) -> tuple[int, ...]:
    _, c, h, w = x_shape
    return (c, h, w, *kernel, *stride, *padding, *out_hw)


@cache
def _im2col_kernel():
    import cupy

    return cupy.ElementwiseKernel(
        f"raw T x, int32 N, {_CONV_GEOMETRY}",
        "T col",
        """
        const ptrdiff_t P = (ptrdiff_t)Ho * Wo, NP = N * P;
        const ptrdiff_t r = i / NP, q = i - r * NP;
        const int n = q / P, p = q - (ptrdiff_t)n * P;
        const int oy = p / Wo, ox = p - oy * Wo;
        const int v = r % kw, u = (r / kw) % kh, c = r / (kw * kh);
        const int y = oy * sh + u * dh - ph, xx = ox * sw + v * dw - pw;
        col = (y >= 0 && y < H && xx >= 0 && xx < W)
            ? x[(((ptrdiff_t)n * C + c) * H + y) * W + xx] : (T)0;
        """,
        "bplab_im2col",
    )


def im2col(x, kernel, stride, padding, out_hw, dilation):
    """``cols`` (C*kh*kw, N*Ho*Wo) of a contiguous (N, C, H, W) input, in one launch."""
    import cupy

    n, c = x.shape[:2]
    cols = cupy.empty((c * kernel[0] * kernel[1], n * out_hw[0] * out_hw[1]), x.dtype)
    _im2col_kernel()(x, n, *_geometry(x.shape, kernel, stride, padding, out_hw), *dilation,
                     cols)
    return cols


@cache
def _col2im_kernel():
    import cupy

    return cupy.ElementwiseKernel(
        f"raw T dcol, int32 N, {_CONV_GEOMETRY}",
        "T dx",
        """
        const ptrdiff_t P = (ptrdiff_t)Ho * Wo, NP = N * P;
        const int xx = i % W, y = (i / W) % H, c = (i / ((ptrdiff_t)W * H)) % C;
        const int n = i / ((ptrdiff_t)W * H * C);
        T acc = 0;
        for (int u = 0; u < kh; ++u) {
            const int oyn = y + ph - u * dh;
            if (oyn < 0 || oyn % sh != 0 || oyn / sh >= Ho) continue;
            for (int v = 0; v < kw; ++v) {
                const int oxn = xx + pw - v * dw;
                if (oxn < 0 || oxn % sw != 0 || oxn / sw >= Wo) continue;
                acc += dcol[((ptrdiff_t)(c * kh + u) * kw + v) * NP + n * P
                            + (ptrdiff_t)(oyn / sh) * Wo + oxn / sw];
            }
        }
        dx = acc;
        """,
        "bplab_col2im",
    )


def col2im(dcols, x_shape, kernel, stride, padding, out_hw, dilation):
    """The (N, C, H, W) input gradient from ``dcols`` (C*kh*kw, N*Ho*Wo), in one launch."""
    import cupy

    dx = cupy.empty(x_shape, dcols.dtype)
    _col2im_kernel()(dcols, x_shape[0], *_geometry(x_shape, kernel, stride, padding, out_hw),
                     *dilation, dx)
    return dx


@cache
def _conv_output_kernel(bias: bool):
    import cupy

    add = " + b[f]" if bias else ""
    return cupy.ElementwiseKernel(
        "raw T y, raw T b, int32 F, int32 N, int32 P",
        "T out",
        f"""
        const int p = i % P, f = (i / P) % F;
        const ptrdiff_t n = i / ((ptrdiff_t)P * F);
        out = y[(ptrdiff_t)f * N * P + n * P + p]{add};
        """,
        f"bplab_conv_output_{int(bias)}",
    )


def conv_output_nchw(y, bias, n: int, out_hw):
    """The GEMM's (F, N*Ho*Wo) result plus the bias, as (N, F, Ho, Wo), in one launch."""
    import cupy

    f = y.shape[0]
    out = cupy.empty((n, f, *out_hw), y.dtype)
    _conv_output_kernel(bias is not None)(y, y if bias is None else bias, f, n,
                                          out_hw[0] * out_hw[1], out)
    return out


@cache
def _maxpool_forward_kernel():
    import cupy

    return cupy.ElementwiseKernel(
        f"raw T x, {_GEOMETRY}",
        "T y, int32 arg",
        """
        const int ox = i % Wo, oy = (i / Wo) % Ho;
        const ptrdiff_t base = (i / ((ptrdiff_t)Wo * Ho)) * H * W;
        T best = 0;
        int barg = -1;
        for (int u = 0; u < kh; ++u) {
            const int yy = oy * sh - ph + u;
            if (yy < 0 || yy >= H) continue;
            for (int v = 0; v < kw; ++v) {
                const int xx = ox * sw - pw + v;
                if (xx < 0 || xx >= W) continue;
                const T val = x[base + (ptrdiff_t)yy * W + xx];
                // the first maximum in row-major window order; a NaN wins and stays
                if (barg < 0 || val > best || (isnan(val) && !isnan(best))) {
                    best = val;
                    barg = u * kw + v;
                }
            }
        }
        y = best;
        arg = barg;
        """,
        "bplab_maxpool_forward",
    )


def maxpool_forward(x, kernel, stride, padding, out_hw):
    """(y, arg): each window's maximum and its row-major offset u*kw + v, in one launch."""
    import cupy

    n, c = x.shape[:2]
    y = cupy.empty((n, c, *out_hw), x.dtype)
    arg = cupy.empty((n, c, *out_hw), np.int32)
    _maxpool_forward_kernel()(x, *_geometry(x.shape, kernel, stride, padding, out_hw), y, arg)
    return y, arg


@cache
def _maxpool_backward_kernel():
    import cupy

    return cupy.ElementwiseKernel(
        f"raw T g, raw int32 arg, {_GEOMETRY}",
        "T dx",
        """
        const int xx = i % W, y = (i / W) % H;
        const ptrdiff_t nc = i / ((ptrdiff_t)W * H);
        T acc = 0;
        for (int u = 0; u < kh; ++u) {
            const int oyn = y + ph - u;
            if (oyn < 0 || oyn % sh != 0 || oyn / sh >= Ho) continue;
            for (int v = 0; v < kw; ++v) {
                const int oxn = xx + pw - v;
                if (oxn < 0 || oxn % sw != 0 || oxn / sw >= Wo) continue;
                const ptrdiff_t o = (nc * Ho + oyn / sh) * Wo + oxn / sw;
                if (arg[o] == u * kw + v) acc += g[o];
            }
        }
        dx = acc;
        """,
        "bplab_maxpool_backward",
    )


def maxpool_backward(grad, arg, x_shape, kernel, stride, padding):
    """The input gradient: each window's gradient to its argmax, in one launch."""
    import cupy

    dx = cupy.empty(x_shape, grad.dtype)
    _maxpool_backward_kernel()(grad, arg,
                               *_geometry(x_shape, kernel, stride, padding, grad.shape[2:]), dx)
    return dx


@cache
def _cross_entropy_kernel():
    import cupy

    # One thread per row: the max, the softmax and its gradient, the row's loss, and
    # whether its argmax is the target. The count is a float64 atomic add of 1.0: whole
    # numbers below 2**53 add exactly in any order, so it is deterministic.
    return cupy.ElementwiseKernel(
        "raw T x, I y, int32 C, T keep, T spread, T inv_n, int32 count",
        "raw T g, T loss, raw float64 hits",
        """
        const ptrdiff_t row = i * (ptrdiff_t)C;
        T m = x[row];
        int am = 0;
        for (int j = 1; j < C; ++j) {
            const T v = x[row + j];
            if (v > m || (isnan(v) && !isnan(m))) { m = v; am = j; }
        }
        T s = 0, zsum = 0;
        for (int j = 0; j < C; ++j) {
            const T z = x[row + j] - m;
            const T e = exp(z);
            g[row + j] = e;
            s += e;
            zsum += z;
        }
        const bool valid = y >= 0 && y < C;
        T picked = valid ? (x[row + y] - m) * keep : log((T)-1);  // NaN for a bad label
        if (spread != 0) picked += zsum * spread;
        loss = log(s) - picked;
        for (int j = 0; j < C; ++j) {
            T q = g[row + j] / s;
            if (j == y) q -= keep;
            if (spread != 0) q -= spread;
            g[row + j] = q * inv_n;
        }
        if (count && valid && am == y) {
            atomicAdd(&hits[0], 1.0);
        }
        """,
        "bplab_softmax_cross_entropy",
    )


def softmax_cross_entropy(pred, y, label_smoothing: float, hits: Any = None):
    """(mean loss, dL/dpred) of cross-entropy on logits, torch's semantics, in two launches.

    ``hits``, a one-element float64 device array, gets the number of rows whose first
    argmax is the target added to it (the training accuracy, without another pass).
    """
    import cupy

    n, c = pred.shape
    x = cupy.ascontiguousarray(pred)
    g = cupy.empty_like(x)
    rows = cupy.empty(n, x.dtype)
    eps = float(label_smoothing)
    counter = hits if hits is not None else cupy.empty(1, np.float64)  # unused: count == 0
    _cross_entropy_kernel()(x, y, c, 1.0 - eps, eps / c, 1.0 / n, int(hits is not None),
                            g, rows, counter)
    return rows.mean(), g  # CuPy's mean is one reduction: the sum, then / n
