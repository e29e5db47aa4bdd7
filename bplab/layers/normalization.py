"""BatchNorm (torch.nn.BatchNorm1d / BatchNorm2d) and LayerNorm (torch.nn.LayerNorm)."""

from __future__ import annotations

import numpy as np

from bplab.errors import ShapeError
from bplab.layers.base import BuildContext, Layer, Option
from bplab.layers.core import fmt_shape
from bplab.layers.registry import register

__all__ = ["BatchNorm", "LayerNorm"]


@register
class BatchNorm(Layer):
    """Normalises each channel over the batch (and the image), then scales and shifts.

    Input (N, C) normalises over N (BatchNorm1d); (N, C, H, W) over N, H, W (BatchNorm2d).
    Training: ``xhat = (x - mean_B) / sqrt(var_B + eps)`` with the biased batch variance,
    ``y = weight * xhat + bias``; the running statistics move by ``momentum``
    (``r = (1 - momentum) r + momentum * stat``, the variance unbiased), as torch.
    Evaluation uses the running statistics. Buffers: running_mean, running_var,
    num_batches_tracked (torch's state_dict names).
    """

    type_name = "BatchNorm"
    category = "Normalization"
    id_prefix = "bn"
    options = (
        Option("momentum", "float", 0.1, doc="weight of the newest batch in the running stats",
               low=0.0, high=1.0),
        Option("eps", "float", 1e-5, doc="added to the variance for stability", low=0.0,
               low_open=True),
        Option("affine", "bool", True, doc="learn a per-channel scale and shift"),
    )
    summary = "Normalises each channel to zero mean and unit variance over the batch."
    math = ("xhat = (x - mean) / sqrt(var + eps), y = w xhat + b;  dL/dw = sum g xhat, "
            "dL/db = sum g,  dL/dx = w / (M sqrt(var + eps)) (M g - sum g - xhat sum g xhat) "
            "(training; M values per channel)")

    def output_shape(self, input_shapes):
        (shape,) = input_shapes
        if len(shape) not in (1, 3):
            raise ShapeError(
                f"{self.label(self.name)} expects (features) or (channels, height, width) "
                f"input, received {fmt_shape(shape)}: use Flatten or Reshape before it"
            )
        return shape

    @classmethod
    def count_params(cls, config, input_shapes):
        return 2 * input_shapes[0][0] if config.get("affine", True) else 0

    def build(self, input_shapes, ctx: BuildContext):
        c = input_shapes[0][0]
        if self.affine:
            self.add_param("weight", np.ones(c), ctx)
            self.add_param("bias", np.zeros(c), ctx)
        self.buffers["running_mean"] = ctx.to_device(np.zeros(c))
        self.buffers["running_var"] = ctx.to_device(np.ones(c))
        self.buffers["num_batches_tracked"] = ctx.xp.zeros((), dtype=np.int64)
        self._cache = None

    def forward(self, x, training=True):
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        # per-channel statistics broadcast against x as (1, C) or (1, C, 1, 1)
        bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xp = self.xp
        if training:
            m = x.size // x.shape[1]
            if m < 2:
                raise ShapeError(
                    f"{self.label(self.name)} needs more than one value per channel to train, "
                    f"received input {tuple(x.shape)}: use a batch size above 1"
                )
            mean = x.mean(axis=axes)
            xc = x - mean.reshape(bshape)
            var = (xc * xc).mean(axis=axes)
            self._update_running(mean, var, m)
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            xc = x - mean.reshape(bshape)
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        xhat = xc
        xhat *= inv_std.reshape(bshape)
        self._cache = (xhat, inv_std, training, axes, bshape)
        if not self.affine:
            return xhat.copy()
        return xhat * self.params["weight"].data.reshape(bshape) + \
            self.params["bias"].data.reshape(bshape)

    def _update_running(self, mean, var, m: int) -> None:
        mom = self.momentum
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm *= 1.0 - mom
        rm += mom * mean
        rv *= 1.0 - mom
        rv += (mom * m / (m - 1)) * var  # the running variance is the unbiased one
        self.buffers["num_batches_tracked"] += 1

    def backward(self, grad):
        xhat, inv_std, training, axes, bshape = self._cache
        self._cache = None
        if self.affine:
            w = self.params["weight"]
            dbeta = grad.sum(axis=axes)
            dgamma = (grad * xhat).sum(axis=axes)
            w.add_grad(dgamma)
            self.params["bias"].add_grad(dbeta)
            scale = w.data * inv_std
        else:
            scale = inv_std
        if not self.need_input_grad:
            return None
        if not training:
            return grad * scale.reshape(bshape)
        if not self.affine:
            dbeta = grad.sum(axis=axes)
            dgamma = (grad * xhat).sum(axis=axes)
        m = grad.size // grad.shape[1]
        # d xhat = w g; the mean and variance depend on x too, which removes the
        # components of d xhat along 1 and along xhat
        dx = xhat * (dgamma / m).reshape(bshape)
        dx += (dbeta / m).reshape(bshape)
        xp = self.xp
        xp.subtract(grad, dx, out=dx)
        dx *= scale.reshape(bshape)
        return dx

    def clear_cache(self):
        self._cache = None


@register
class LayerNorm(Layer):
    """Normalises each sample over all its values (torch.nn.LayerNorm(sample shape)).

    ``xhat = (x - mean) / sqrt(var + eps)`` per sample, ``y = weight * xhat + bias`` with
    weight and bias of the sample's shape. Same in training and evaluation.
    """

    type_name = "LayerNorm"
    category = "Normalization"
    options = (
        Option("eps", "float", 1e-5, doc="added to the variance for stability", low=0.0,
               low_open=True),
        Option("elementwise_affine", "bool", True, doc="learn a scale and shift per value"),
    )
    summary = "Normalises each sample to zero mean and unit variance over its features."
    math = ("xhat = (x - mean) / sqrt(var + eps), y = w xhat + b;  dL/dx = (1 / sqrt(var + "
            "eps)) (d - mean(d) - xhat mean(d xhat)), d = w g")

    @classmethod
    def count_params(cls, config, input_shapes):
        n = int(np.prod(input_shapes[0]))
        return 2 * n if config.get("elementwise_affine", True) else 0

    def build(self, input_shapes, ctx: BuildContext):
        shape = tuple(input_shapes[0])
        if self.elementwise_affine:
            self.add_param("weight", np.ones(shape), ctx)
            self.add_param("bias", np.zeros(shape), ctx)
        self._cache = None

    def forward(self, x, training=True):
        axes = tuple(range(1, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        xhat = x - mean
        var = (xhat * xhat).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / self.xp.sqrt(var + self.eps)
        xhat *= inv_std
        self._cache = (xhat, inv_std)
        if not self.elementwise_affine:
            return xhat.copy()
        return xhat * self.params["weight"].data + self.params["bias"].data

    def backward(self, grad):
        xhat, inv_std = self._cache
        self._cache = None
        axes = tuple(range(1, grad.ndim))
        if self.elementwise_affine:
            w = self.params["weight"]
            w.add_sum(grad * xhat, 0)
            self.params["bias"].add_sum(grad, 0)
            if not self.need_input_grad:
                return None
            d = grad * w.data
        else:
            if not self.need_input_grad:
                return None
            d = grad.copy()
        proj = (d * xhat).mean(axis=axes, keepdims=True)
        d -= d.mean(axis=axes, keepdims=True)
        d -= xhat * proj
        d *= inv_std
        return d

    def clear_cache(self):
        self._cache = None
