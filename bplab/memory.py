"""How much memory a run will take, worked out before anything is allocated.

A network of ``"units": 10**9`` or a data set of billions of values would otherwise be
allocated (or hang swapping) before failing. :func:`estimate_run` reads only the network's
plan (shapes and parameter counts, :func:`bplab.graph.plan.analyze`), the batch size, the
dtype, the optimiser and the data's size; :func:`check_fits` refuses a run that cannot fit
in the memory available, with the estimate and the limit in the message.

What is counted (bytes of ``dtype`` unless said otherwise):

* per parameter: the weight, its gradient, the optimiser's state (two slots for Adam),
  and two copies the trainer keeps (the best weights and the last healthy ones);
* per node: its output and the gradient flowing back, for one batch (``batch_size`` rows);
* the data: training rows twice (the shuffle buffer), validation rows once.

It is an estimate (within a small factor of the peak for the networks bplab builds; the
test holds it to one): enough to refuse what cannot fit, not to budget to the byte.

>>> spec = {"nodes": [{"id": "in", "type": "Input", "shape": [2]},
...                   {"id": "fc", "type": "Dense", "units": 10**9}]}
>>> est = estimate_run(spec, batch_size=32, dtype="float32", optimizer="adam")
>>> est.nodes["fc"].params, format_bytes(est.total)
(3000000000, '305.5 GB')
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bplab.errors import BplabError

__all__ = [
    "TooLargeError",
    "MemoryEstimate",
    "NodeMemory",
    "available_memory",
    "check_fits",
    "estimate_run",
    "format_bytes",
    "node_memory",
]

# Optimiser state per parameter, in tensors of the parameter's size.
OPTIMIZER_SLOTS = {"sgd": 1, "adagrad": 1, "rmsprop": 2, "adam": 2, "adamw": 2, "nadam": 2,
                   "lion": 1}
COPIES = 2  # the best weights (early stopping) and the last healthy ones (divergence)
LIMIT_ENV = "BPLAB_MEMORY_LIMIT"  # bytes: overrides the machine's available memory
HEADROOM = 0.8  # of the available memory, the share a run may plan to use


class TooLargeError(BplabError, MemoryError):
    """A run that cannot fit in memory (a bplab error: a message, exit 2, no traceback)."""


@dataclass(frozen=True)
class NodeMemory:
    """One node's share: its parameters' bytes and its activations' bytes per batch."""

    params: int
    param_bytes: int
    activation_bytes: int

    @property
    def total(self) -> int:
        return self.param_bytes + self.activation_bytes


@dataclass
class MemoryEstimate:
    nodes: dict[str, NodeMemory] = field(default_factory=dict)
    data_bytes: int = 0
    batch_size: int = 0
    itemsize: int = 4

    @property
    def param_bytes(self) -> int:
        return sum(n.param_bytes for n in self.nodes.values())

    @property
    def activation_bytes(self) -> int:
        return sum(n.activation_bytes for n in self.nodes.values())

    @property
    def total(self) -> int:
        return self.param_bytes + self.activation_bytes + self.data_bytes

    def describe(self) -> str:
        return (f"{format_bytes(self.total)} (parameters and optimiser state "
                f"{format_bytes(self.param_bytes)}, activations of a batch of "
                f"{self.batch_size:,} {format_bytes(self.activation_bytes)}, data "
                f"{format_bytes(self.data_bytes)})")


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KB'`` (powers of 1024, one decimal)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def _optimizer_type(optimizer: Any) -> str:
    if isinstance(optimizer, dict):
        optimizer = optimizer.get("type", "")
    return str(optimizer or "").lower()


def _slots(optimizer: Any) -> int:
    kind = _optimizer_type(optimizer)
    if kind == "sgd" and isinstance(optimizer, dict) and not optimizer.get("momentum"):
        return 0
    return OPTIMIZER_SLOTS.get(kind, 2)


def node_memory(shape: tuple[int, ...] | None, params: int, *, batch_size: int,
                itemsize: int, optimizer: Any = "adam") -> NodeMemory:
    """A node's bytes: parameters with gradient, optimiser state and copies; its output and
    output gradient for one batch."""
    per_param = itemsize * (2 + _slots(optimizer) + COPIES)
    values = math.prod(shape) if shape else 0
    return NodeMemory(params=int(params), param_bytes=int(params) * per_param,
                      activation_bytes=2 * batch_size * values * itemsize)


def estimate_run(network: Any, *, batch_size: int, dtype: str = "float32",
                 optimizer: Any = "adam", data_values: int = 0, plan=None) -> MemoryEstimate:
    """The memory of training ``network`` (a spec, or its ``plan``) at ``batch_size``;
    ``data_values`` is the number of values in the data (training and validation)."""
    if plan is None:
        from bplab.graph.plan import analyze

        plan = analyze(network)
    itemsize = np.dtype(dtype).itemsize
    est = MemoryEstimate(batch_size=int(batch_size), itemsize=itemsize,
                         data_bytes=2 * int(data_values) * itemsize)
    for nid in plan.order:
        est.nodes[nid] = node_memory(plan.shapes.get(nid), plan.param_counts.get(nid, 0),
                                     batch_size=int(batch_size), itemsize=itemsize,
                                     optimizer=optimizer)
    return est


def available_memory() -> int:
    """Bytes a run may use: ``$BPLAB_MEMORY_LIMIT`` if set, else the share
    :data:`HEADROOM` of what the machine has available now (``MemAvailable``)."""
    env = os.environ.get(LIMIT_ENV)
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise TooLargeError(f"${LIMIT_ENV} must be a number of bytes, "
                               f"received {env!r}") from None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * HEADROOM)
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(pages * HEADROOM)
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def check_fits(est: MemoryEstimate, limit: int | None = None) -> None:
    """Raise :class:`TooLargeError` naming the largest node when ``est`` exceeds ``limit``
    (default :func:`available_memory`)."""
    limit = available_memory() if limit is None else limit
    if est.total <= limit:
        return
    where = ""
    if est.nodes:
        nid, node = max(est.nodes.items(), key=lambda kv: kv[1].total)
        where = f"; the largest, '{nid}', needs {format_bytes(node.total)}"
    if est.data_bytes * 2 > est.total:
        where = "; the data set is most of it: use fewer samples"
    raise TooLargeError(
        f"this run needs about {est.describe()}, more than the {format_bytes(limit)} of "
        f"memory available{where}. Make the layers smaller or the batch smaller."
    )
