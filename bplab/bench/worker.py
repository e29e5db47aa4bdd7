"""One contender in its own process: ``python -m bplab.bench.worker CONTENDER WORKLOAD ...``.

``bplab bench`` starts one of these per contender and repeat, one at a time, so no other
contender's threads (numpy's BLAS pool, PyTorch's intra-op pool) run or linger in the process
being timed. The worker builds the workload's data (seeded, the same in every process), loads
the initial weights the parent wrote, takes the warm-up steps, times the next ``--steps``
steps and prints one JSON line:

``{"contender", "seconds", "steps", "batch", "loss", "startup_s", "threads"}``

``startup_s`` is the wall time from the parent's launch (``--launched``, a ``time.time()``)
to the end of the first step: imports, data, model, the first step's lazy buffers.

Contenders:

* ``bplab``: :class:`bplab.training.Trainer` driven the way ``bplab train`` drives it
  (``Trainer.run()`` through :class:`bplab.runs.RunRecorder`), with the project's default
  diagnostics cadence, epoch-end bookkeeping and divergence checks, on the project's long
  run (as a throughput is: a run shorter than :data:`bplab.jit.PAYBACK_STEPS` steps does
  without the compiled kernels, which would not repay their loading);
* ``numpy-ref``: the hand-written numpy loop (:mod:`bplab.bench.contenders.numpy_ref`);
* ``torch``: PyTorch eager (:mod:`bplab.bench.contenders.torch_ref`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bplab.bench.worker")
    p.add_argument("contender", choices=("bplab", "numpy-ref", "torch"))
    p.add_argument("workload")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--state", default=None, help="npz of the initial weights (bplab's names)")
    p.add_argument("--backend", default="numpy", help="bplab's backend / torch's device")
    p.add_argument("--launched", type=float, default=None)
    a = p.parse_args(argv)
    if a.warmup < 1 or a.steps < 1:  # the timer starts at the end of the warm-up's last step
        p.error("--warmup and --steps must be at least 1")
    return a


def _bplab(w, ds, a: argparse.Namespace) -> dict[str, Any]:
    from bplab.bench.workloads import make_project
    from bplab.runs import RunRecorder
    from bplab.training import Trainer

    # the project's own run, open-ended (10^9 steps), timed over a slice: what a long
    # `bplab train` sustains, with the kernels such a run loads (bplab.jit; their loading
    # falls in the start-up)
    end = a.warmup + a.steps
    trainer = Trainer(make_project(w, a.batch, backend=a.backend), dataset=ds)
    if a.state:
        with np.load(a.state) as f:
            trainer.network.load_state_dict({k: f[k] for k in f.files})
    sync = trainer.backend.synchronize
    marks: dict[str, float] = {}
    loss = None
    with np.errstate(over="ignore", invalid="ignore"):  # as `bplab train` runs
        for report in RunRecorder().watch(trainer.run()):
            if report.step == 1:
                sync()
                marks["first"] = time.time()
            if report.step == a.warmup:
                sync()
                marks["t0"] = time.perf_counter()
            if report.step == end:
                sync()
                marks["t1"] = time.perf_counter()
                loss = report.train_loss
                break
    while loss is None:  # on a GPU the report carries the loss only every few steps
        loss = trainer.step().train_loss
    return {"seconds": marks["t1"] - marks["t0"], "loss": float(loss), "first": marks["first"]}


def _reference(w, ds, a: argparse.Namespace, state: dict[str, np.ndarray]) -> dict[str, Any]:
    if a.contender == "torch":
        from bplab.bench.contenders.torch_ref import TorchContender

        dev = "cuda" if a.backend in ("cupy", "cuda") else "cpu"
        c = TorchContender(w, ds, a.batch, state, dev)
    else:
        from bplab.bench.contenders.numpy_ref import NumpyCNN, NumpyMLP

        c = (NumpyCNN if w.reference == "cnn" else NumpyMLP)(w, ds, a.batch, state)
    c.run(1)
    first = time.time()
    if a.warmup > 1:
        c.run(a.warmup - 1)
    seconds = c.run(a.steps)
    return {"seconds": seconds, "loss": c.loss(), "first": first}


def _threads(contender: str) -> dict[str, Any]:
    out: dict[str, Any] = {k: os.environ.get(k) for k in (
        "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if contender == "torch":
        import torch

        out["torch"] = torch.get_num_threads()
    return out


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    from bplab.bench.workloads import WORKLOADS, make_dataset

    w = WORKLOADS[a.workload]
    a.batch = a.batch or w.batch
    if a.contender == "torch":
        import torch

        n = os.environ.get("OMP_NUM_THREADS")
        if n:
            torch.set_num_threads(int(n))
    ds = make_dataset(w, a.samples)
    if a.contender == "bplab":
        r = _bplab(w, ds, a)
    else:
        if not a.state:
            print("worker: numpy-ref and torch need --state (bplab's initial weights)",
                  file=sys.stderr)
            return 2
        with np.load(a.state) as f:
            state = {k: f[k] for k in f.files}
        r = _reference(w, ds, a, state)
    out = {"contender": a.contender, "workload": w.key, "seconds": r["seconds"],
           "steps": a.steps, "batch": a.batch, "loss": r["loss"],
           "startup_s": (r["first"] - a.launched) if a.launched else None,
           "threads": _threads(a.contender)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
