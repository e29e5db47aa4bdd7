"""The text table of ``bplab bench`` and the JSON encoder of its results."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from bplab.backend import to_host
from bplab.bench.machine import blas_line


def _fmt_rate(s: dict[str, float], key: str = "median") -> str:
    """``s[key]`` and the range: ``key`` is "median" (in one process) or "best"."""
    return f"{s[key]:>11,.0f}  ({s['min']:,.0f}-{s['max']:,.0f})"


def print_report(res: dict[str, Any], out=None) -> None:
    out = out or sys.stdout  # looked up per call: pytest's capsys swaps it
    m = res["machine"]

    def p(*a) -> None:
        print(*a, file=out)

    p(f"bplab bench: python {m['python']}, numpy {m['numpy']}, torch {m['torch'] or 'absent'}"
      f" ({m.get('torch_threads', '-')} threads), {m['cpus']} CPUs, {m['processor']}")
    p(blas_line(m))
    if m.get("jit"):
        p(f"bplab: {m['jit']}")
    p(f"GPU: {m['cupy'] or 'none'}" + ("" if m["cupy"] else f" ({m['cupy_reason']})"))
    quick = "; QUICK run" if res["quick"] else ""
    per_process = res.get("method", "in-process") == "per-process"
    if per_process:
        p(f"method: each contender in its own process, {res['repeats']} processes each, one at"
          f" a time in rotated order; {res['threads']} threads each (BLAS, OpenMP, torch);"
          f" warm-up and start-up outside the timed steps; best process (median, min-max);"
          f" samples/s = batch x steps / seconds{quick}")
    else:
        p(f"method: IN-PROCESS (all contenders in this one process: their thread pools disturb"
          f" each other); repeats: {res['repeats']} (median, min-max), interleaved round-robin"
          f" after a warm-up; samples/s = batch x steps / seconds{quick}")
    for r in res["workloads"]:
        p("")
        p(f"{r['key']}: {r['title']}  [batch {r['batch']}, {r['samples']} samples, "
          f"{r['steps_per_repeat']} steps per {'process' if per_process else 'repeat'}]")
        head = "samples/s best (min-max)" if per_process else "samples/s median (min-max)"
        p(f"  {'contender':<14}{head:>36}  {'loss after':>10}"
          + (f"  {'start-up':>8}" if per_process else ""))
        for c in r["contenders"]:
            s = c["samples_per_s"]
            rate = _fmt_rate(s, "best" if per_process else "median")
            start = c.get("startup_s")
            p(f"  {c['name']:<14}{rate:>36}  {c['loss']:>10.4f}"
              + (f"  {start:>7.2f}s" if per_process and start is not None else ""))
        if r["ratios"]:
            p("  " + "   ".join(f"{k} = {v:.2f}x" for k, v in r["ratios"].items()))
    if res.get("diagnostics"):
        p("")
        p("Diagnostics at their default cadence (every 100 steps) vs none:")
        for d in res["diagnostics"]:
            p(f"  {d['key']}: {d['with']['median']:,.0f} vs {d['without']['median']:,.0f} "
              f"samples/s -> overhead {100 * d['overhead']:.1f}%")
    if res.get("step_split"):
        p("")
        p("Where a step goes: the engine core (forward, loss, backward, optimiser)"
          " vs Trainer.step:")
        for d in res["step_split"]:
            p(f"  {d['key']}: core {d['core_us']:.1f} us, Trainer.step {d['step_us']:.1f} us "
              f"-> bookkeeping {100 * d['bookkeeping']:.0f}%")
    if res.get("memory"):
        p("")
        p("Peak traced memory of one training step (tracemalloc, above what existed before):")
        for d in res["memory"]:
            p(f"  {d['key']} (batch {d['batch']}): bplab {d['bplab_step_bytes'] / 1024:,.1f} KiB,"
              f" numpy-ref {d['numpy_ref_step_bytes'] / 1024:,.1f} KiB")
    ck = res.get("checkpointing")
    if ck:
        p("")
        p(f"Gradient checkpointing on {ck['title']} ({ck['segments']} segments):")
        pk, ms = ck["peak_step_bytes"], ck["ms_per_step"]
        p(f"  peak step memory: {pk['without'] / 2**20:.2f} MiB without, "
          f"{pk['with'] / 2**20:.2f} MiB with ({100 * ck['memory_ratio']:.0f}%)")
        p(f"  time per step:    {ms['without']:.2f} ms without, {ms['with']:.2f} ms with "
          f"({100 * (ck['time_ratio'] - 1):+.0f}%)")
        p(f"  losses after: {ck['losses']['without']:.5f} / {ck['losses']['with']:.5f}")


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return to_host(obj).tolist()
    return str(obj)
