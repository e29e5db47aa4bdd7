"""Element-wise activations. Each keeps the least its backward needs."""

from __future__ import annotations

from bplab.layers.base import Layer
from bplab.layers.registry import register


@register
class Tanh(Layer):
    """y = tanh(x); dy/dx = 1 - y^2 (keeps the output, not the input)."""

    type_name = "Tanh"
    category = "Activations"
    activation_kind = "tanh"
    summary = "Squashes to (-1, 1); saturates for |x| > 3, where gradients vanish."
    math = "y = tanh(x);  dy/dx = 1 - y^2"

    def forward(self, x, training=True):
        y = self.xp.tanh(x)
        self._y = y
        return y

    def backward(self, grad):
        y = self._y
        self._y = None
        return grad * (1 - y * y)
