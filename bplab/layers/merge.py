"""Layers that join branches: Add (residual connections) and Concat (torch.cat).

Both take a list of inputs in ``forward`` and return one gradient per input from
``backward``.
"""

from __future__ import annotations

from bplab.errors import ConfigError, ShapeError
from bplab.layers.base import Layer, Option
from bplab.layers.core import fmt_shape
from bplab.layers.registry import register

__all__ = ["Add", "Concat"]


@register
class Add(Layer):
    """Element-wise sum of two or more inputs of equal shape; y = x_1 + x_2 + ...

    The gradient of a sum is the same for every input, so backward hands the *same*
    array to each (layers never modify the gradient they receive).
    """

    type_name = "Add"
    category = "Merge"
    arity = None
    summary = "Adds its inputs element by element (a residual or skip connection)."
    math = "y = x_1 + ... + x_k;  dL/dx_i = dL/dy"

    def output_shape(self, input_shapes):
        first = input_shapes[0]
        for other in input_shapes[1:]:
            if tuple(other) != tuple(first):
                shapes = " and ".join(fmt_shape(s) for s in input_shapes)
                raise ShapeError(
                    f"{self.label(self.name)} needs inputs of equal shape, received {shapes}: "
                    "insert a Dense (or Conv2D) on one branch so the shapes match"
                )
        return tuple(first)

    def forward(self, xs, training=True):
        self._n = len(xs)
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return y

    def backward(self, grad):
        return [grad] * self._n


@register
class Concat(Layer):
    """Joins inputs along ``dim`` (torch.cat; dim counts the batch axis as 0)."""

    type_name = "Concat"
    category = "Merge"
    arity = None
    options = (Option("dim", "int", 1, doc="axis to join along, counting the batch axis as 0",
                      main=True),)
    summary = "Stacks its inputs side by side along one axis (channels by default)."
    math = "y = [x_1, ..., x_k] along dim;  dL/dx_i = the slice of dL/dy that x_i filled"

    @classmethod
    def check_config(cls, label, config):
        if config["dim"] == 0:
            raise ConfigError(f"{label}: dim 0 is the batch axis and cannot be joined along, "
                              "received 0")

    def _axis(self, ndim: int) -> int:
        """The sample axis (no batch) that dim names, or a ShapeError."""
        dim = self.dim if self.dim > 0 else self.dim + ndim + 1
        if not 1 <= dim <= ndim:
            raise ShapeError(
                f"{self.label(self.name)}: dim {self.dim} is out of range for inputs with "
                f"{ndim} axes besides the batch: change dim"
            )
        return dim - 1

    def output_shape(self, input_shapes):
        first = input_shapes[0]
        shapes = " and ".join(fmt_shape(s) for s in input_shapes)
        if any(len(s) != len(first) for s in input_shapes):
            raise ShapeError(
                f"{self.label(self.name)} needs inputs with the same number of axes, "
                f"received {shapes}: use Flatten or Reshape on one branch"
            )
        axis = self._axis(len(first))
        for s in input_shapes[1:]:
            if any(a != b for k, (a, b) in enumerate(zip(s, first)) if k != axis):
                raise ShapeError(
                    f"{self.label(self.name)} needs inputs that match except along dim "
                    f"{self.dim}, received {shapes}"
                )
        out = list(first)
        out[axis] = sum(s[axis] for s in input_shapes)
        return tuple(out)

    def forward(self, xs, training=True):
        axis = self._axis(xs[0].ndim - 1) + 1
        self._sizes = [x.shape[axis] for x in xs]
        return self.xp.concatenate(xs, axis=axis)

    def backward(self, grad):
        axis = self._axis(grad.ndim - 1) + 1
        out, start = [], 0
        index = [slice(None)] * grad.ndim
        for size in self._sizes:
            index[axis] = slice(start, start + size)
            out.append(grad[tuple(index)])
            start += size
        return out
