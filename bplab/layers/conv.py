"""Conv2D (torch.nn.Conv2d) by im2col: one strided view, one copy, one large matmul.

Memory layout, chosen so that every matmul is a single large GEMM and every transpose
moves contiguous runs of a whole image plane:

* ``cols`` has shape (C*kh*kw, N*Ho*Wo): one column per output pixel of the whole batch.
  It is a reshape of the strided view ``(C, kh, kw, N, Ho, Wo)`` of the padded input,
  so building it is a single copy.
* Forward is ``W (F, C*kh*kw) @ cols`` -> (F, N, Ho*Wo), one GEMM. A batched matmul over
  N would avoid the transpose to NCHW below, but costs N small GEMM calls, each paying
  BLAS's threading overhead (measured 2x slower at batch 64); the transpose it saves
  copies runs of Ho*Wo contiguous values, which is cheap. The usual (N*Ho*Wo, K)
  layout needs the same GEMM but transposes with runs of only F values.
* Backward transposes the gradient once to (F, N*Ho*Wo); then ``dW = g cols^T`` and
  ``dcols = W^T g`` are one GEMM each.
* With ``groups`` G > 1 the rows (c, u, v) of one group are contiguous in ``cols``, so
  the forward is one batched GEMM ``W (G, F/G, C/G*kh*kw) @ cols (G, C/G*kh*kw, N*Ho*Wo)``
  and backward's two GEMMs are batched the same way; G == 1 keeps the plain GEMMs.
* Dilation only spaces the kernel axes of the strided view (and col2im's slices).

The input gradient goes back through col2im: ``dcols`` is (C, kh, kw, N, Ho, Wo), and for
each of the kh*kw kernel offsets its (C, N, Ho, Wo) slab is added to a strided slice of
the padded input gradient. That is kh*kw vectorised adds, no scatter (np.add.at is
numpy-only and slow), and it runs unchanged on CuPy.

On CuPy (float32/float64), im2col, col2im and the bias-plus-transpose are one fused kernel
each (``bplab.kernels``), with the same layouts and the same order of additions.
"""

from __future__ import annotations

from bplab import kernels
from bplab.backend import get_array_module
from bplab.errors import ShapeError
from bplab.initializers import fans, initialize
from bplab.layers.base import BuildContext, Layer, Option
from bplab.layers.core import fmt_shape
from bplab.layers.registry import register

__all__ = ["Conv2D", "conv_output_size", "pad_input", "window_slice", "window_view"]


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


def window_view(xp, x, kernel, stride, out_hw, dilation=(1, 1)):
    """Read-only strided view (C, kh, kw, N, Ho, Wo) of the padded input: no copy."""
    n, c, _, _ = x.shape
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    s_n, s_c, s_h, s_w = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(c, kh, kw, n, *out_hw),
        strides=(s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw),
    )


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
            view = window_view(self.xp, pad_input(x, self.padding), self.kernel_size,
                               self.stride, (ho, wo), self.dilation)
            cols = view.reshape(c * kh * kw, n * ho * wo)  # the one copy of im2col
        self._cols = cols
        self._in_shape = x.shape
        weight = self.params["weight"].data
        g = self.groups
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
        # (F, N, P) -> (N, F, P): moves contiguous runs of Ho*Wo values
        return self.xp.ascontiguousarray(
            y.reshape(self.filters, n, ho * wo).transpose(1, 0, 2)).reshape(
                n, self.filters, ho, wo)

    def backward(self, grad):
        cols, self._cols = self._cols, None
        n, c, h, w = self._in_shape
        ho, wo = grad.shape[2], grad.shape[3]
        xp = self.xp
        g = xp.ascontiguousarray(grad.reshape(n, self.filters, ho * wo).transpose(1, 0, 2))
        g = g.reshape(self.filters, n * ho * wo)
        wp = self.params["weight"]
        groups = self.groups
        if groups == 1:
            wp.add_grad((g @ cols.T).reshape(wp.shape))
        else:
            g3 = g.reshape(groups, self.filters // groups, -1)  # (G, F/G, N*Ho*Wo)
            cols3 = cols.reshape(groups, -1, cols.shape[1])  # (G, C/G*kh*kw, N*Ho*Wo)
            wp.add_grad((g3 @ cols3.transpose(0, 2, 1)).reshape(wp.shape))
        if self.bias:
            self.params["bias"].add_sum(g, 1)
        if not self.need_input_grad:
            return None
        kh, kw = self.kernel_size
        if groups == 1:
            dcols = wp.data.reshape(self.filters, -1).T @ g  # (C*kh*kw, N*Ho*Wo)
        else:
            w3 = wp.data.reshape(groups, self.filters // groups, -1)
            dcols = (w3.transpose(0, 2, 1) @ g3).reshape(c * kh * kw, -1)
        if kernels.fusable(dcols):
            return kernels.col2im(dcols, self._in_shape, self.kernel_size, self.stride,
                                  self.padding, (ho, wo), self.dilation)
        dcols = dcols.reshape(c, kh, kw, n, ho, wo)
        ph, pw = self.padding
        # accumulate in (C, N, H, W), the layout of dcols' slabs, then transpose once
        dx = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        for i in range(kh):
            for j in range(kw):
                dx[window_slice(i, j, (ho, wo), self.stride, self.dilation)] += dcols[:, i, j]
        if ph or pw:
            dx = dx[:, :, ph:ph + h, pw:pw + w]
        return xp.ascontiguousarray(dx.transpose(1, 0, 2, 3))

    def clear_cache(self):
        self._cols = None
