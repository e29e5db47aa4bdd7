"""Dropout (torch.nn.Dropout): inverted dropout, the identity at evaluation."""

from __future__ import annotations

import numpy as np

from bplab.layers.base import BuildContext, Layer, Option
from bplab.layers.registry import register

__all__ = ["Dropout"]


@register
class Dropout(Layer):
    """Zeroes each value with probability p during training and scales the rest by 1/(1-p).

    ``y = x * m / (1 - p)``, ``m ~ Bernoulli(1 - p)``, so the expected output equals the
    input and evaluation needs no rescaling. The mask comes from a generator the layer
    owns, seeded from the network's rng at build: the same seed trains the same way.
    On CuPy the mask is drawn on the device. :meth:`reseed` fixes the next masks (for
    gradient checks: ``gradcheck_layer(layer, x, before_forward=lambda: layer.reseed(0))``).
    """

    type_name = "Dropout"
    category = "Regularization"
    options = (Option("p", "float", 0.5, doc="probability of zeroing a value", low=0.0,
                      high=1.0, main=True),)
    summary = "Randomly zeroes a fraction p of values while training, so units cannot co-adapt."
    math = "y = x * m / (1 - p), m ~ Bernoulli(1 - p) (training), y = x (evaluation);  " \
           "dL/dx = dL/dy * m / (1 - p)"

    def __init__(self, name: str = "", **config):
        super().__init__(name, **config)
        self._mask = None
        self._seed: int | None = None
        self._gen = None
        self._gen_xp = None

    def build(self, input_shapes, ctx: BuildContext):
        self.reseed(int(ctx.rng.integers(2**63)))

    def reseed(self, seed: int) -> None:
        """Restart the mask generator from ``seed`` (on the layer's current device)."""
        self._seed = int(seed)
        self._gen = self.xp.random.default_rng(self._seed)
        self._gen_xp = self.xp

    def _generator(self):
        if self._gen is None or self._gen_xp is not self.xp:
            # first use without build, or the network moved to another device: a new
            # generator there, seeded deterministically from the last seed
            seed = 0 if self._seed is None else self._seed
            self.reseed(int(np.random.default_rng(seed).integers(2**63)))
        return self._gen

    def forward(self, x, training=True):
        if not training or self.p == 0.0:
            self._mask = None
            return x
        if self.p == 1.0:
            mask = self.xp.zeros_like(x)  # torch: everything dropped, no division by zero
        else:
            # generators draw float32/float64 only; a float16 network draws float32
            draw_dtype = x.dtype if x.dtype.itemsize >= 4 else "float32"
            u = self._generator().random(x.shape, dtype=draw_dtype)
            mask = u >= self.p  # keep with probability 1 - p
            mask = mask.astype(x.dtype)
            mask *= 1.0 / (1.0 - self.p)
        self._mask = mask
        return x * mask

    def backward(self, grad):
        mask, self._mask = self._mask, None
        return grad if mask is None else grad * mask

    def clear_cache(self):
        self._mask = None
