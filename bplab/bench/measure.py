"""Timing contenders fairly (interleaved repeats after a warm-up) and peak step memory."""

from __future__ import annotations

import statistics
import tracemalloc
from collections.abc import Callable
from typing import Any

from bplab.bench.contenders.base import Contender


def interleave(contenders: list[Contender], steps: int, warmup: int, repeats: int,
               batch: int) -> dict[str, list[float]]:
    """Samples/s of each contender per repeat, measured round-robin after a warm-up."""
    for c in contenders:
        c.run(warmup)
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    for _ in range(repeats):
        for c in contenders:
            dt = c.run(steps)
            rates[c.name].append(steps * batch / dt)
    return rates


# The ratios a report prints, ours/theirs, where both contenders ran.
RATIO_PAIRS = (("bplab-numpy", "torch-cpu"), ("bplab-numpy", "numpy-ref"),
               ("bplab-cupy", "torch-cuda"), ("bplab-cupy", "bplab-numpy"))


def ratios(figures: dict[str, float]) -> dict[str, float]:
    """``{"ours/theirs": figure ratio}`` for the :data:`RATIO_PAIRS` present in ``figures``
    (samples/s by contender name: medians in one process, best figures across processes)."""
    return {f"{ours}/{theirs}": figures[ours] / figures[theirs]
            for ours, theirs in RATIO_PAIRS if ours in figures and theirs in figures}


def summarize(rates: list[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "repeats": len(rates)}


def peak_step_memory(step: Callable[[], Any], steps: int = 3) -> int:
    """Peak bytes traced above what was allocated before, over ``steps`` calls of ``step``."""
    step()  # buffers created lazily on the first call are not a per-step cost
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(steps):
            step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
