"""Input, Dense (nn.Linear), Flatten, Reshape."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from bplab.errors import ShapeError
from bplab.initializers import fans, initialize
from bplab.jit import DENSE_BACKWARD_MACS, DENSE_FORWARD_MACS
from bplab.layers.base import _BLAS, BuildContext, Layer, Option, Parameter, np_like_matmul
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
            scratch = self._scratch
            plan = scratch.get("plan")
            if plan is not None and plan.x_shape != x.shape:
                # an epoch's last, smaller batch, and the first of the next: each batch
                # shape keeps its plan, so a plan is made once, not twice an epoch
                plan = scratch.get(("plan", x.shape))
                if plan is not None:
                    scratch["plan"] = plan
            if (plan is None or plan.weight is not w or plan.x_shape != x.shape
                    or x.dtype != plan.y.dtype):
                y = self.scratch("y", (*x.shape[:-1], self.units))
                plan = self._plan(x, y)
                if plan is None:
                    np_like_matmul(x, w.T, y)
                    if self.bias:
                        y += self.params["bias"].data
                    return y
            # the plan's first step computes as every later one does (a resumed run takes up
            # the same arithmetic where it left off)
            y = plan.y
            if plan.forward_kernel is not None:
                plan.forward_kernel(x, w, plan.bias_param.data, y)
                return y
            np.dot(x, plan.weight_t, y)
            if plan.bias_param is not None:
                y += plan.bias_param.data
            return y
        fwd = self._kernels(x)[0]
        if fwd is not None:  # the same arithmetic as the training step's
            y = np.empty((len(x), self.units), x.dtype)
            fwd(x, w, self.params["bias"].data, y)
            return y
        y = x @ w.T
        if self.bias:
            y += self.params["bias"].data
        return y

    def _kernels(self, x) -> tuple[Any, Any]:
        """The compiled forward and backward of :mod:`bplab.jit` for a batch ``x`` (each None
        where numpy's calls are the better choice, or without kernels): a layer with them
        computes the same way in every path, so a step-through equals the trainer's step."""
        jit = self.jit
        if jit is None or not self.bias or not self._fast(x):
            return None, None
        macs = x.shape[0] * x.shape[1] * self.units
        return (jit.dense_forward if macs <= DENSE_FORWARD_MACS else None,
                jit.dense_backward if macs <= DENSE_BACKWARD_MACS else None)

    def _fast(self, x) -> bool:
        """``x`` and this layer's arrays take the plan and the kernels: a 2-D numpy batch of
        the weight's float dtype, contiguous gradients."""
        w, b = self.params["weight"], self.params.get("bias")
        return (type(x) is np.ndarray and x.ndim == 2 and type(w.data) is np.ndarray
                and x.dtype == w.data.dtype and x.dtype in _BLAS
                and w.grad.flags.c_contiguous and (b is None or b.grad.flags.c_contiguous))

    def _plan(self, x, y) -> _DensePlan | None:
        """Keep (and return) a :class:`_DensePlan` for ``x``'s shape when ``x`` and this
        layer's arrays take it (:meth:`_fast`, ``y`` of their dtype); drop it otherwise."""
        w, b = self.params["weight"], self.params.get("bias")
        ok = y.dtype == x.dtype and self._fast(x)
        plan = _DensePlan(w.data, x.shape, y, w.data.T, w, b, np.ones(len(x), x.dtype),
                          *self._kernels(x)) if ok else None
        self._scratch["plan"] = self._scratch[("plan", x.shape)] = plan
        return plan

    def backward(self, grad):
        plan = self._scratch.get("plan")
        if plan is not None and self._x is not None and plan.x_shape == self._x.shape:
            wp, bp = plan.param, plan.bias_param
            if (not wp.has_grad and wp.data is plan.weight and grad.shape == plan.y.shape
                    and grad.dtype == plan.y.dtype and (bp is None or not bp.has_grad)):
                # the first gradient of the step, into the flat buffers: three dot products
                x, self._x = self._x, None
                if plan.backward_kernel is not None:
                    dx = self.scratch("dx", x.shape) if self.need_input_grad else None
                    plan.backward_kernel(grad, x, wp.data, wp.grad, bp.grad, dx)
                    wp.has_grad = bp.has_grad = True
                    return dx
                np.dot(grad.T, x, wp.grad)
                wp.has_grad = True
                if bp is not None:
                    np.dot(plan.ones, grad, bp.grad)
                    bp.has_grad = True
                if not self.need_input_grad:
                    return None
                dx = self.scratch("dx", x.shape)
                np.dot(grad, wp.data, dx)
                return dx
        w = self.params["weight"]
        bwd = self._kernels(self._x)[1]
        if (bwd is not None and not w.has_grad and not self.params["bias"].has_grad
                and grad.shape == (len(self._x), self.units) and grad.dtype == w.data.dtype):
            x, self._x = self._x, None
            dx = np.empty(x.shape, x.dtype) if self.need_input_grad else None
            bwd(grad, x, w.data, w.grad, self.params["bias"].grad, dx)
            w.has_grad = self.params["bias"].has_grad = True
            return dx
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
            dx = self.scratch("dx", x.shape)
            np_like_matmul(grad, w.data, dx)
            return dx
        return grad @ w.data

    def clear_cache(self):
        self._x = None


class _DensePlan(NamedTuple):
    """What :class:`Dense` keeps to run a training step on a 2-D numpy batch of one shape
    with no lookups: ``weight`` (the array the plan was made for: a new one, after the
    parameters moved into a flat buffer or to float64, means a new plan), its transpose,
    the output buffer, the parameters (their arrays read live), a vector of ones (the
    bias gradient is ``ones @ g``, see :meth:`~bplab.layers.base.Parameter.add_sum`) and,
    on a layer so small that numpy's calls cost more than its arithmetic, the compiled
    kernels of :mod:`bplab.jit` that do its forward or backward in one call. Kept
    among the layer's scratch arrays, so it goes whenever they do: the one in use as
    ``"plan"``, each under ``("plan", batch shape)``. A batch of another dtype
    than the plan's (a direct call, not through a network) takes the general path."""

    weight: Any
    x_shape: tuple[int, ...]
    y: Any
    weight_t: Any
    param: Parameter
    bias_param: Parameter | None
    ones: Any
    forward_kernel: Any = None  # bplab.jit's, on a layer small enough (with a bias)
    backward_kernel: Any = None


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
