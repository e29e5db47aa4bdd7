"""The race with each contender in its own process (the default of ``bplab bench``).

Why processes: numpy's BLAS threads and PyTorch's threads slow each other when they take
turns inside one process (a PyTorch loop measured 100k samples/s alone and 72k with numpy
products between its repeats), so an in-process race flatters whichever side suffers less.

Method, per workload:

1. The parent builds bplab's initial weights once and writes them to an npz; every worker
   loads them, regenerates the same seeded data and draws the same batch order.
2. Each repeat starts one fresh process per contender, one at a time, in an order rotated
   from repeat to repeat; no two contenders ever run at once.
3. A worker (:mod:`bplab.bench.worker`) takes the warm-up steps, then times ``steps`` steps
   inside the process: interpreter start-up, imports and data building are outside the
   timed block (they are reported apart, as ``startup_s``).
4. Every process gets the same thread count: ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``
   and ``MKL_NUM_THREADS`` in its environment, and ``torch.set_num_threads`` for PyTorch.
5. A contender's figure is its best repeat (the least disturbed by the rest of the machine),
   with the median and the range beside it; the ratios are of best figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bplab.bench.measure import ratios
from bplab.bench.workloads import Workload, make_dataset, make_project

# Timed steps per process: about a second of bplab's training on a 2-core machine, long
# enough that the timer's and the scheduler's noise are well under a percent.
PROCESS_STEPS = {"A": 20000, "B": 3000, "C": 400, "D": 6000, "E": 60, "F": 300, "G": 30}
QUICK_STEPS = {"A": 200, "B": 30, "C": 10, "D": 60, "E": 3, "F": 10, "G": 2}


def thread_count(requested: int | None = None) -> int:
    """The thread count every contender gets: ``requested``, else the CPUs this process may
    run on."""
    if requested:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    # the worker imports bplab from wherever this process did (a source checkout included)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    return env


def _initial_state(w: Workload, batch: int, samples: int, path: Path, backend: str) -> int:
    """Write bplab's initial weights to ``path``; returns the number of training samples."""
    from bplab.backend import to_host
    from bplab.training import Trainer

    ds = make_dataset(w, samples)
    trainer = Trainer(make_project(w, batch, backend=backend), dataset=ds, steps=1)
    state = {k: to_host(v) for k, v in trainer.network.state_dict().items()}
    np.savez(path, **state)
    return len(ds.x_train)


def run_worker(contender: str, w: Workload, *, steps: int, warmup: int, batch: int,
               samples: int, state: Path, backend: str, threads: int) -> dict[str, Any]:
    """Start one worker process and return its JSON line (raises with its stderr if it
    fails)."""
    cmd = [sys.executable, "-m", "bplab.bench.worker", contender, w.key, "--steps", str(steps),
           "--warmup", str(warmup), "--batch", str(batch), "--samples", str(samples),
           "--state", str(state), "--backend", backend, "--launched", repr(time.time())]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(threads), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench worker {contender} {w.key} failed "
                           f"(exit {proc.returncode}):\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _contenders(w: Workload, backend: str, has_torch: bool) -> list[tuple[str, str]]:
    """(name in the report, worker contender) pairs for one backend."""
    if backend == "cupy":
        out = [("bplab-cupy", "bplab")]
        return out + ([("torch-cuda", "torch")] if has_torch else [])
    out = [("bplab-numpy", "bplab")]
    if w.reference:
        out.append(("numpy-ref", "numpy-ref"))
    return out + ([("torch-cpu", "torch")] if has_torch else [])


def race(w: Workload, *, quick: bool, repeats: int, backends: tuple[str, ...], batch: int | None,
         has_torch: bool, threads: int) -> dict[str, Any]:
    batch = batch or w.batch
    samples = max(w.samples, 4 * batch)
    steps = (QUICK_STEPS if quick else PROCESS_STEPS)[w.key]
    if batch != w.batch:  # the same work per process at another batch size
        steps = max(2, steps * w.batch // batch)
    warmup = 2 if quick else w.warmup
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bplab-bench-") as tmp:
        for backend in backends:
            state = Path(tmp) / f"state-{backend}.npz"
            n_train = _initial_state(w, batch, samples, state, backend)
            pairs = _contenders(w, backend, has_torch)
            for r in range(repeats):
                k = r % len(pairs)
                for name, contender in pairs[k:] + pairs[:k]:  # rotated: no fixed position
                    out = run_worker(contender, w, steps=steps, warmup=warmup, batch=batch,
                                     samples=samples, state=state,
                                     backend="cuda" if backend == "cupy" and contender == "torch"
                                     else backend, threads=threads)
                    runs.setdefault(name, []).append(out)
    return _result(w, batch, n_train, steps, warmup, runs)


def _result(w: Workload, batch: int, samples: int, steps: int, warmup: int,
            runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    contenders = []
    for name, outs in runs.items():
        rates = sorted(o["steps"] * o["batch"] / o["seconds"] for o in outs)
        starts = [o["startup_s"] for o in outs if o["startup_s"] is not None]
        contenders.append({
            "name": name, "device": "cuda" if name.endswith(("cupy", "cuda")) else "cpu",
            "samples_per_s": {"best": rates[-1], "median": float(np.median(rates)),
                              "min": rates[0], "max": rates[-1], "repeats": len(rates)},
            "loss": outs[-1]["loss"], "startup_s": min(starts) if starts else None,
            "threads": outs[-1]["threads"],
        })
    return {"key": w.key, "title": w.title, "batch": batch, "samples": samples,
            "steps_per_repeat": steps, "warmup_steps": warmup, "contenders": contenders,
            "ratios": ratios({c["name"]: c["samples_per_s"]["best"] for c in contenders})}
