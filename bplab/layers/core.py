"""Input, Dense (nn.Linear), Flatten, Reshape."""

from __future__ import annotations

import numpy as np

from bplab.errors import ShapeError
from bplab.initializers import fans, initialize
from bplab.layers.base import BuildContext, Layer, Option
from bplab.layers.registry import register


def fmt_shape(shape: tuple[int, ...]) -> str:
    """``(batch, 16, 7, 7)``: how shapes are written in messages and on the canvas."""
    return "(" + ", ".join(["batch", *map(str, shape)]) + ")"


@register
class Input(Layer):
    """Where data enters the network. ``shape`` excludes the batch axis."""

    type_name = "Input"
    category = "Core"
    id_prefix = "in"
    arity = 0
    options = (
        Option(
            "shape", "ints", doc="shape of one sample, e.g. [2] or [1, 28, 28]", low=1, main=True
        ),
    )
    summary = "The network's input: one sample has this shape (the batch axis is implicit)."

    def output_shape(self, input_shapes):
        return tuple(self.shape)

    def forward(self, x, training=True):
        return x

    def backward(self, grad):
        return grad


@register
class Dense(Layer):
    """Fully connected layer, torch.nn.Linear: ``y = x W^T + b``, W of shape (units, in).

    On a sequence (batch, time, features) it acts on the last axis, as nn.Linear does: the
    same weights at every step, (batch, time, units) out.

    >>> layer = Dense("fc1", units=3)
    """

    type_name = "Dense"
    category = "Core"
    id_prefix = "fc"
    has_weights = True
    options = (
        Option("units", "int", doc="number of output features", low=1, main=True),
        Option("bias", "bool", True, doc="learn an additive bias"),
        Option("init", "init", "default", doc="initializer of the weight"),
        Option("bias_init", "init", "default", doc="initializer of the bias"),
    )
    summary = "Every output is a weighted sum of all inputs plus a bias (nn.Linear)."
    math = "y = x W^T + b;  dL/dx = g W,  dL/dW = g^T x,  dL/db = sum_batch g"

    def output_shape(self, input_shapes):
        (shape,) = input_shapes
        if len(shape) not in (1, 2):
            raise ShapeError(
                f"{self.label(self.name)} expects a flat input, received {fmt_shape(shape)}: "
                "insert Flatten before it (a sequence (time, features) is fine too)"
            )
        return (*shape[:-1], self.units)

    @classmethod
    def count_params(cls, config, input_shapes):
        n_in = int(input_shapes[0][-1])
        return config["units"] * n_in + (config["units"] if config.get("bias", True) else 0)

    def build(self, input_shapes, ctx: BuildContext):
        n_in = input_shapes[0][-1]
        shape = (self.units, n_in)
        fan_in, fan_out = fans(shape)
        self.add_param("weight", initialize(self.init, shape, ctx.rng), ctx)
        if self.bias:
            b = initialize(self.bias_init, (self.units,), ctx.rng, fan_in=fan_in, fan_out=fan_out)
            self.add_param("bias", b, ctx)
        self._x = None

    def forward(self, x, training=True):
        self._x = x
        w = self.params["weight"].data
        if training and self.reuse_buffers:
            y = self.xp.matmul(x, w.T, out=self.scratch("y", (*x.shape[:-1], self.units)))
        else:
            y = x @ w.T
        if self.bias:
            y += self.params["bias"].data
        return y

    def backward(self, grad):
        w = self.params["weight"]
        x2, g2 = self._x, grad
        if grad.ndim > 2:  # a sequence: every step is one more row of the batch
            x2, g2 = x2.reshape(-1, x2.shape[-1]), grad.reshape(-1, grad.shape[-1])
        w.add_matmul(g2.T, x2)
        if self.bias:
            self.params["bias"].add_sum(g2, 0)
        x, self._x = self._x, None
        if not self.need_input_grad:
            return None
        if self.reuse_buffers:
            return self.xp.matmul(grad, w.data, out=self.scratch("dx", x.shape))
        return grad @ w.data

    def clear_cache(self):
        self._x = None


@register
class Flatten(Layer):
    """Flattens every axis but the batch: (N, C, H, W) -> (N, C*H*W), as nn.Flatten."""

    type_name = "Flatten"
    category = "Core"
    summary = "Reshapes each sample to a flat vector so Dense layers can follow."

    def output_shape(self, input_shapes):
        return (int(np.prod(input_shapes[0])),)

    def forward(self, x, training=True):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._shape)


@register
class Reshape(Layer):
    """Reshapes each sample to ``shape`` (batch axis kept); one entry may be -1."""

    type_name = "Reshape"
    category = "Core"
    options = (
        Option("shape", "ints", doc="target shape of one sample, e.g. [1, 28, 28]", main=True),
    )
    summary = "Gives each sample a new shape with the same number of values."

    @classmethod
    def check_config(cls, label, config):
        from bplab.errors import ConfigError

        shape = config["shape"]
        if sum(1 for s in shape if s == -1) > 1 or any(s == 0 or s < -1 for s in shape):
            raise ConfigError(
                f"{label}: shape must hold positive integers and at most one -1, "
                f"received {list(shape)!r}"
            )

    def output_shape(self, input_shapes):
        total = int(np.prod(input_shapes[0]))
        shape = list(self.shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1]))
            if total % known:
                raise ShapeError(
                    f"{self.label(self.name)} cannot reshape {fmt_shape(input_shapes[0])} "
                    f"({total} values) to {list(self.shape)}"
                )
            shape[shape.index(-1)] = total // known
        if int(np.prod(shape)) != total:
            raise ShapeError(
                f"{self.label(self.name)} cannot reshape {fmt_shape(input_shapes[0])} "
                f"({total} values) to {fmt_shape(tuple(shape))} ({int(np.prod(shape))} values)"
            )
        return tuple(shape)

    def forward(self, x, training=True):
        self._shape = x.shape
        return x.reshape((x.shape[0], *self.shape))

    def backward(self, grad):
        return grad.reshape(self._shape)
