"""The fast numpy paths of Conv2D and MaxPool2D against plain reference implementations.

Conv2D builds im2col straight from the unpadded input (flat runs when Wo == W), sums
col2im as shifted runs of the whole batch in the "same" case, and computes its products
per image when a column is short; MaxPool2D's backward walks the window offsets with the
gradient no earlier offset has won. Each is checked here against the straightforward
version (padded copy + strided view, padded gradient + slab adds, one large GEMM, an
explicit first-maximum loop) over geometries that take every path.
"""

from __future__ import annotations

import numpy as np
import pytest

from bplab.layers.base import BuildContext
from bplab.layers.conv import (
    PER_IMAGE_MAX_K,
    Conv2D,
    col2im_into,
    conv_output_size,
    im2col_into,
    pad_input,
    window_slice,
)
from bplab.layers.pooling import MaxPool2D

# (N, C, H, W), kernel, stride, padding, dilation: "same" (both flat paths), same width
# only, strided, dilated "same", and a padding so large that whole offsets read only zeros.
GEOMETRIES = [
    ((3, 2, 7, 6), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 3, 8, 8), (5, 5), (1, 1), (2, 2), (1, 1)),
    ((2, 2, 7, 5), (3, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 2, 6, 7), (3, 3), (1, 1), (0, 1), (1, 1)),
    ((2, 3, 9, 8), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 2, 9, 9), (3, 3), (1, 1), (2, 2), (2, 2)),
    ((2, 2, 8, 7), (2, 3), (2, 1), (1, 2), (2, 1)),
    ((1, 2, 2, 2), (3, 3), (3, 3), (1, 1), (1, 1)),
    ((2, 1, 4, 4), (1, 1), (1, 1), (0, 0), (1, 1)),
]
GEOMETRY_IDS = ["same3", "same5", "same_width", "pad_rows0", "strided", "dilated_same",
                "mixed", "overhang_offsets", "1x1"]


def _out_hw(shape, kernel, stride, padding, dilation):
    return tuple(conv_output_size(shape[2 + a], kernel[a], stride[a], padding[a], dilation[a])
                 for a in range(2))


def _reference_cols(x, kernel, stride, padding, dilation):
    """im2col the plain way: a padded copy, a strided (C, kh, kw, N, Ho, Wo) view of it, one
    copy."""
    out_hw = _out_hw(x.shape, kernel, stride, padding, dilation)
    xpad = pad_input(x, padding)
    n, c = x.shape[:2]
    s_n, s_c, s_h, s_w = xpad.strides
    view = np.lib.stride_tricks.as_strided(
        xpad, shape=(c, *kernel, n, *out_hw),
        strides=(s_c, s_h * dilation[0], s_w * dilation[1], s_n, s_h * stride[0],
                 s_w * stride[1]))
    return view.copy()


def _reference_col2im(dcols6, x_shape, stride, padding, dilation):
    """col2im the plain way: slab adds into a zero padded gradient, in row-major order."""
    c, kh, kw, n, ho, wo = dcols6.shape
    h, w = x_shape[2:]
    ph, pw = padding
    dx = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dcols6.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[window_slice(i, j, (ho, wo), stride, dilation)] += dcols6[:, i, j]
    return np.ascontiguousarray(dx[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding", "dilation"), GEOMETRIES,
                         ids=GEOMETRY_IDS)
def test_im2col_and_col2im_match_the_padded_reference_bit_for_bit(shape, kernel, stride,
                                                                   padding, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    expected = _reference_cols(x, kernel, stride, padding, dilation)
    cols6 = np.full(expected.shape, np.nan, np.float32)  # every entry must be written
    im2col_into(cols6, x, stride, padding, dilation)
    np.testing.assert_array_equal(cols6, expected)

    dcols6 = rng.standard_normal(expected.shape).astype(np.float32)
    expected_dx = _reference_col2im(dcols6, shape, stride, padding, dilation)
    dx = np.full(shape, np.nan, np.float32)
    col2im_into(dx, dcols6.copy(), stride, padding, dilation)
    # the same additions in the same order: equal bit for bit, not just close
    np.testing.assert_array_equal(dx, expected_dx)


def _layer(config, in_channels, dtype=np.float64, seed=0):
    layer = Conv2D("c", **config)
    ctx = BuildContext(np, dtype, np.random.default_rng(seed))
    layer.bind(ctx)
    layer.build([(in_channels, 1, 1)], ctx)
    prng = np.random.default_rng(seed + 1)
    for p in layer.params.values():
        p.data[...] = prng.standard_normal(p.shape)
    return layer


def _reference_conv(layer, x, grad):
    """(y, dx, dW, db) by padded im2col, one GEMM per group and padded col2im."""
    kernel, stride, padding, dilation = (layer.kernel_size, layer.stride, layer.padding,
                                         layer.dilation)
    n, c = x.shape[:2]
    ho, wo = _out_hw(x.shape, kernel, stride, padding, dilation)
    cols = _reference_cols(x, kernel, stride, padding, dilation).reshape(c * kernel[0] * kernel[1],
                                                                       -1)
    f, gr = layer.filters, layer.groups
    w3 = layer.params["weight"].data.reshape(gr, f // gr, -1)
    cols3 = cols.reshape(gr, -1, cols.shape[1])
    y = (w3 @ cols3).reshape(f, n, ho, wo)
    g = grad.transpose(1, 0, 2, 3).reshape(gr, f // gr, -1)
    dw = (g @ cols3.transpose(0, 2, 1)).reshape(layer.params["weight"].shape)
    dcols = (w3.transpose(0, 2, 1) @ g).reshape(c, *kernel, n, ho, wo)
    dx = _reference_col2im(dcols, x.shape, stride, padding, dilation)
    db = grad.sum(axis=(0, 2, 3))
    if layer.bias:
        y += layer.params["bias"].data[:, None, None, None]
    return y.transpose(1, 0, 2, 3), dx, dw, db


CONV_CASES = [
    ({"filters": 4, "padding": 1}, 1),  # short columns: per-image products
    ({"filters": 5, "padding": 1}, 3),  # K = 27, still per image
    ({"filters": 3, "padding": 1}, 6),  # K = 54 > filters: transposed dW product
    ({"filters": 8, "kernel_size": 1, "bias": False}, 4),
    ({"filters": 4, "stride": 2, "padding": 1}, 5),
    ({"filters": 4, "dilation": 2, "padding": 2}, 4),
    ({"filters": 6, "groups": 2, "padding": 1}, 4),
    ({"filters": 4, "groups": 4, "kernel_size": (3, 2), "padding": (1, 0)}, 4),
    ({"filters": 40, "kernel_size": (3, 5), "padding": (1, 2), "stride": (1, 2)}, 2),
]


@pytest.mark.parametrize(("config", "in_channels"), CONV_CASES,
                         ids=[f"case{i}" for i in range(len(CONV_CASES))])
@pytest.mark.parametrize("need_input_grad", [True, False])
def test_conv2d_forward_and_backward_match_the_plain_im2col(config, in_channels,
                                                           need_input_grad):
    layer = _layer(config, in_channels)
    layer.need_input_grad = need_input_grad
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, in_channels, 7, 8))
    y = layer.forward(x, True)
    grad = rng.standard_normal(y.shape)
    dx = layer.backward(grad)
    ry, rdx, rdw, rdb = _reference_conv(layer, x, grad)
    np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.params["weight"].grad, rdw, rtol=1e-12, atol=1e-12)
    if layer.bias:
        np.testing.assert_allclose(layer.params["bias"].grad, rdb, rtol=1e-12, atol=1e-12)
    if need_input_grad:
        np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
        assert dx.flags.c_contiguous
    else:
        assert dx is None
    assert y.flags.c_contiguous and y.shape == ry.shape
    # a non-contiguous input gives the same output
    np.testing.assert_array_equal(layer.forward(np.asfortranarray(x), False), y)


def test_per_image_products_are_taken_only_for_short_columns():
    """The threshold the layer uses is what this module's cases assume."""
    assert 27 <= PER_IMAGE_MAX_K < 54


def test_conv2d_float32_forward_and_input_gradient_equal_the_reference_bit_for_bit():
    """Only the order of dW/db's sums may change in float32; the output and dx may not."""
    for config, c in [({"filters": 16, "padding": 1}, 1), ({"filters": 32, "padding": 1}, 16)]:
        layer = _layer(config, c, dtype=np.float32)
        rng = np.random.default_rng(5)
        x = rng.standard_normal((4, c, 14, 14)).astype(np.float32)
        y = layer.forward(x, True)
        grad = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(grad)
        ry, rdx, rdw, _ = _reference_conv(layer, x, grad)
        # the bias is added after the product, as the reference does
        np.testing.assert_array_equal(y, ry.astype(np.float32))
        np.testing.assert_array_equal(dx, rdx)
        np.testing.assert_allclose(layer.params["weight"].grad, rdw, rtol=2e-5, atol=1e-5)


def _reference_maxpool_backward(x, grad, kernel, stride, padding):
    """The first maximum of each window in row-major order gets its gradient: the winner
    found by loops, the shares then added offset by offset (the layer's order of sums)."""
    n, c, h, w = x.shape
    xpad = pad_input(x, padding, float("-inf"))
    winner = np.full(grad.shape, -1)
    for idx in np.ndindex(*grad.shape):
        b, ch, oi, oj = idx
        win = xpad[b, ch, oi * stride[0]:oi * stride[0] + kernel[0],
                   oj * stride[1]:oj * stride[1] + kernel[1]]
        hits = np.argwhere(win == win.max())  # row-major: hits[0] is the first maximum
        if len(hits):
            winner[idx] = hits[0][0] * kernel[1] + hits[0][1]
    dx = np.zeros_like(xpad)
    for k in range(kernel[0] * kernel[1]):
        dx[window_slice(k // kernel[1], k % kernel[1], grad.shape[2:], stride)] += (
            grad * (winner == k))
    return dx[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


@pytest.mark.parametrize(("shape", "config"), [
    ((2, 3, 8, 8), {}),
    ((2, 2, 7, 9), {}),  # windows leave the last row and column out
    ((2, 2, 9, 9), {"kernel_size": 3}),
    ((2, 2, 8, 8), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((2, 2, 7, 8), {"kernel_size": 2, "stride": 1}),
    ((1, 2, 6, 9), {"kernel_size": (2, 3), "stride": (2, 1), "padding": (1, 1)}),
    ((2, 2, 8, 9), {"kernel_size": (2, 3)}),
    ((2, 2, 3, 4), {"kernel_size": 1}),
], ids=["2x2", "2x2_uncovered", "3x3", "overlap_pad", "overlap", "rect", "rect_tiles", "1x1"])
def test_maxpool_backward_gives_each_window_to_its_first_maximum(shape, config):
    rng = np.random.default_rng(7)
    # few distinct values, many zeros (as after a ReLU): ties in almost every window
    x = np.maximum(rng.integers(-2, 3, shape), 0).astype(np.float64)
    layer = MaxPool2D("p", **config)
    y = layer.forward(x, True)
    # the maxima themselves, also from a non-contiguous input (the general path)
    xpad = pad_input(x, layer.padding, float("-inf"))
    expected_y = np.full(y.shape, -np.inf)
    for k in range(layer.kernel_size[0] * layer.kernel_size[1]):
        i, j = divmod(k, layer.kernel_size[1])
        np.maximum(expected_y, xpad[window_slice(i, j, y.shape[2:], layer.stride)],
                   out=expected_y)
    np.testing.assert_array_equal(y, expected_y)
    strided = np.asfortranarray(x)
    np.testing.assert_array_equal(MaxPool2D("q", **config).forward(strided, False), y)
    grad = rng.standard_normal(y.shape)
    dx = layer.backward(grad)
    expected = _reference_maxpool_backward(x, grad, layer.kernel_size, layer.stride,
                                           layer.padding)
    np.testing.assert_array_equal(dx, expected)
    # the gradient it is handed is left as it was
    assert np.array_equal(grad, grad.copy())


def test_maxpool_backward_all_zero_windows_go_to_the_top_left():
    x = np.zeros((1, 1, 4, 4), np.float32)
    layer = MaxPool2D("p")
    layer.forward(x, True)
    grad = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    dx = layer.backward(grad)
    expected = np.zeros_like(x)
    expected[0, 0, ::2, ::2] = grad[0, 0]
    np.testing.assert_array_equal(dx, expected)


def test_maxpool_backward_leaves_nan_windows_without_gradient():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    layer = MaxPool2D("p")
    y = layer.forward(x, True)
    assert np.isnan(y[0, 0, 0, 0])
    grad = np.ones_like(y)
    g_before = grad.copy()
    dx = layer.backward(grad)
    assert not dx[0, 0, :2, :2].any()
    assert dx[0, 0, 3, 3] == 1 and dx[0, 0, 1, 3] == 1 and dx[0, 0, 3, 1] == 1
    np.testing.assert_array_equal(grad, g_before)
