"""Shared pieces of the soaks: resident memory of a process and the slope of a series."""

from __future__ import annotations

import os


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of ``pid`` (this process by default) in MB, from /proc."""
    with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def slope_per_min(samples: list[tuple[float, float]], warmup_s: float) -> float:
    """Least-squares slope (units per minute) of ``(seconds, value)`` after ``warmup_s``."""
    pts = [(t, v) for t, v in samples if t >= warmup_s]
    if len(pts) < 2:
        return float("nan")
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    cov = sum((t - mt) * (v - mv) for t, v in pts)
    return cov / var * 60.0 if var else float("nan")
