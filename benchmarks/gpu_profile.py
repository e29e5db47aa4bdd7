"""Where a GPU training step goes: bplab-cupy's ``Trainer.step`` against its engine core
(zero_grad, forward, loss, backward, optimiser) and torch-cuda eager, interleaved in one
run, then a cProfile of the step and the number of device allocations per step.

On a GPU a lab-sized step is launch-bound: the host's time per array operation, not the
device's arithmetic, sets the pace. So the profile of the host side (cProfile) and the
count of new device arrays per step (one per launch that does not write into a buffer)
are what to read. Run on the device machine::

    python benchmarks/gpu_profile.py [--steps 200]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time

from bplab.bench import (
    WORKLOADS,
    BplabContender,
    EngineCore,
    TorchContender,
    interleave,
    make_dataset,
)


class SyncedCore(EngineCore):
    """The engine core, timed up to the end of its device work."""

    def run(self, n: int) -> float:
        sync = self.trainer.backend.synchronize
        sync()
        t0 = time.perf_counter()
        super().run(n)
        sync()
        return time.perf_counter() - t0


def launch_overhead_us(n: int = 2000) -> dict[str, float]:
    """Host microseconds per tiny in-place add: CuPy's and torch's dispatch cost."""
    import cupy

    out = {}
    a = cupy.zeros(16, cupy.float32)
    for _ in range(100):
        a += 1
    cupy.cuda.Device().synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        a += 1
    cupy.cuda.Device().synchronize()
    out["cupy"] = (time.perf_counter() - t0) / n * 1e6
    try:
        import torch

        t = torch.zeros(16, device="cuda")
        for _ in range(100):
            t += 1
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            t += 1
        torch.cuda.synchronize()
        out["torch"] = (time.perf_counter() - t0) / n * 1e6
    except ImportError:
        pass
    return out


def allocations_per_step(contender: BplabContender, steps: int = 50) -> float:
    from cupy.cuda import memory_hook

    class Count(memory_hook.MemoryHook):
        name = "bplab-count"

        def __init__(self):
            self.n = 0

        def malloc_preprocess(self, **kwargs):
            self.n += 1

    hook = Count()
    with hook:
        contender.run(steps)
    return hook.n / steps


def profile(key: str, batch: int, samples: int | None, steps: int) -> None:
    w = WORKLOADS[key]
    ds = make_dataset(w, samples or max(w.samples, 4 * batch))
    bp = BplabContender(w, ds, batch, "cupy")
    core = SyncedCore(bp.trainer)
    contenders = [bp, core]
    try:
        contenders.append(TorchContender(w, ds, batch, bp.initial_state(), "cuda"))
    except ImportError:
        pass
    rates = interleave(contenders, steps, 20, 3, batch)
    us = {name: batch / statistics.median(r) * 1e6 for name, r in rates.items()}
    print(f"\n== {key} batch {batch}, {len(ds.x_train)} samples, {steps} steps x 3 ==")
    for name, v in us.items():
        print(f"  {name:14s} {v:9.1f} us/step  {batch / v * 1e6:12,.0f} samples/s")
    if "torch-cuda" in us:
        print(f"  bplab-cupy/torch-cuda = {us['torch-cuda'] / us['bplab-cupy']:.2f}x;"
              f" engine-core/torch-cuda = {us['torch-cuda'] / us['engine-core']:.2f}x")
    print(f"  device allocations per Trainer.step: {allocations_per_step(bp):.1f}")
    pr = cProfile.Profile()
    pr.enable()
    bp.run(steps)
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(28)
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[:6000])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    print("launch overhead (us per tiny op):", launch_overhead_us())
    profile("C", 4096, None, args.steps)
    profile("C", 4096, 65536, args.steps)
    profile("E", 256, None, args.steps // 2)
    profile("C", 128, None, args.steps)


if __name__ == "__main__":
    main()
