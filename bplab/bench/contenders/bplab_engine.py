"""bplab itself: ``Trainer.step`` (the loop users run) and the engine core without it."""

from __future__ import annotations

import time

import numpy as np

from bplab.bench.contenders.base import Contender
from bplab.bench.workloads import Workload, make_project
from bplab.datasets.base import Dataset


class BplabContender(Contender):
    def __init__(self, w: Workload, ds: Dataset, batch: int, backend: str, name: str | None = None,
                 **project_kw):
        from bplab.training import Trainer

        self.name = name or f"bplab-{backend}"
        self.device = "cuda" if backend == "cupy" else "cpu"
        self.trainer = Trainer(make_project(w, batch, backend=backend, **project_kw), dataset=ds)
        self._last = None

    def initial_state(self) -> dict[str, np.ndarray]:
        return self.trainer.network.state_dict()

    def run(self, n: int) -> float:
        tr = self.trainer
        sync = tr.backend.synchronize
        step = tr.step
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            r = step()
        sync()
        dt = time.perf_counter() - t0
        self._last = r
        return dt

    def loss(self) -> float:
        # on a GPU the report carries the loss only every few steps: take one more step
        r = self._last
        while r is None or r.train_loss is None:
            r = self.trainer.step()
        return float(r.train_loss)


class EngineCore(Contender):
    """The engine without the training loop around it: zero_grad, forward, loss, backward
    and the optimiser step on one batch, repeated. Set against ``Trainer.step`` on the same
    trainer, it splits a step's cost into the maths and the loop's bookkeeping (report,
    training metrics, divergence check, epoch-end validation and diagnosis)."""

    name = "engine-core"

    def __init__(self, trainer):
        self.trainer = trainer
        self.xb = trainer._x[: trainer.batch_size]  # the data as uploaded, first batch
        self.yb = trainer._y[: trainer.batch_size]

    def run(self, n: int) -> float:
        tr = self.trainer
        net, loss, opt, xb, yb = tr.network, tr.loss, tr.optimizer, self.xb, self.yb
        t0 = time.perf_counter()
        for _ in range(n):
            net.zero_grad()
            loss.forward(net.forward(xb, True), yb)
            net.backward(loss.backward())
            opt.step()
        return time.perf_counter() - t0
