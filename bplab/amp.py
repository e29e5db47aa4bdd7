"""Mixed-precision training: float16 compute, float32 master weights, dynamic loss scaling.

Micikevicius et al., "Mixed Precision Training" (2018), as torch.cuda.amp does it:

1. the float32 *master* network owns the weights the optimiser updates;
2. each step copies them into a float16 *compute* network that runs forward and backward;
3. the loss (computed in float32 from the float16 logits) is multiplied by a scale ``S``
   before backward, so small gradients do not underflow float16;
4. the float16 gradients are divided by ``S`` into the master's float32 gradient buffers; if
   any is Inf/NaN the step is *skipped* and ``S`` halves, and after ``growth_interval`` good
   steps in a row ``S`` doubles (GradScaler's defaults).

It pays off on a GPU (tensor cores, half the memory traffic); numpy has no float16 BLAS, so
on the CPU it only demonstrates the mechanics, slowly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bplab.errors import ConfigError
from bplab.graph import Network

__all__ = ["AMP_CHOICES", "MixedPrecision"]

AMP_CHOICES = ("float16",)


class MixedPrecision:
    def __init__(
        self,
        master: Network,
        spec: Any,
        compute_dtype: str = "float16",
        *,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ):
        if compute_dtype not in AMP_CHOICES:
            raise ConfigError(
                f"mixed_precision must be one of {', '.join(AMP_CHOICES)} or null, "
                f"received {compute_dtype!r} (bfloat16 has no CuPy array type)"
            )
        self.master = master
        self.compute = Network(spec, dtype=compute_dtype, backend=master.backend, seed=0)
        self.compute.require_input_grad = master.require_input_grad
        self.pairs = [
            (m, c)
            for (_, m), (_, c) in zip(master.named_parameters(), self.compute.named_parameters())
        ]
        self.scale = float(init_scale)
        self.growth_factor = growth_factor
        self.backoff_factor = backoff_factor
        self.growth_interval = growth_interval
        self.skipped_steps = 0
        self._good_steps = 0
        self.sync_weights()

    def sync_weights(self) -> None:
        """Master float32 weights -> compute float16 weights (a cast into existing buffers)."""
        for m, c in self.pairs:
            c.data[...] = m.data

    def forward(self, x, training: bool = True):
        return self.compute.forward(x, training)

    def backward(self, grad) -> None:
        """Backpropagate the float32 loss gradient, scaled, through the float16 network."""
        self.compute.zero_grad()
        # Overflow is expected here now and then: it is detected and the step skipped.
        with np.errstate(over="ignore", invalid="ignore"):
            self.compute.backward((grad * self.scale).astype(self.compute.dtype))

    def unscale_to_master(self) -> bool:
        """Write grad / S into the master gradients; False if any of them overflowed."""
        xp = self.master.xp
        inv = 1.0 / self.scale
        sums = []
        # Overflow is what this looks for: its warnings are expected.
        with np.errstate(over="ignore", invalid="ignore"):
            for m, c in self.pairs:
                if not c.has_grad:
                    m.has_grad = False
                    continue
                m.grad[...] = c.grad
                m.grad *= inv
                m.has_grad = True
                sums.append(xp.vdot(m.grad.ravel(), m.grad.ravel()))
            # one conversion (one device sync on a GPU) for all parameters
            return math.isfinite(float(sum(sums))) if sums else True

    def update(self, ok: bool) -> None:
        """Adjust the loss scale after a step (GradScaler.update)."""
        if ok:
            self._good_steps += 1
            if self._good_steps >= self.growth_interval:
                self.scale *= self.growth_factor
                self._good_steps = 0
        else:
            self.scale *= self.backoff_factor
            self.skipped_steps += 1
            self._good_steps = 0

    def sync_buffers(self) -> None:
        """Running statistics live in the compute network; evaluation reads the master's."""
        for nid, layer in self.compute.layers.items():
            for k, b in layer.buffers.items():
                self.master.layers[nid].buffers[k][...] = b

    def state(self) -> dict[str, float]:
        return {
            "loss_scale": self.scale,
            "skipped_steps": self.skipped_steps,
            "good_steps": self._good_steps,
        }

    def load_state(self, st: dict[str, float]) -> None:
        self.scale = float(st["loss_scale"])
        self.skipped_steps = int(st["skipped_steps"])
        self._good_steps = int(st["good_steps"])
