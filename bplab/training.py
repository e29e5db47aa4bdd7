"""The training loop as a generator of small reports (no Qt).

>>> trainer = Trainer(new_project())          # doctest: +SKIP
>>> for report in trainer.run():              # doctest: +SKIP
...     if report.event == "epoch":
...         print(report.epoch, report.metrics["val_accuracy"])

A UI pauses by not pulling the next report, steps with :meth:`Trainer.step`, stops by
closing the generator; tests iterate it without Qt. Training is seeded and deterministic:
the same project trains to bit-identical weights.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bplab import jit
from bplab.amp import MixedPrecision
from bplab.backend import get_backend, to_host
from bplab.checks import output_problems
from bplab.clipping import clip_grad_norm_, clip_grad_value_
from bplab.datasets import Dataset, load_dataset
from bplab.diagnostics import (
    ActivationStats,
    Finding,
    LayerStats,
    activation_stats,
    diagnose,
    flat_layer_stats,
    flat_layout,
    histogram,
    history_findings,
    input_scale_findings,
    target_scale_findings,
)
from bplab.errors import ConfigError
from bplab.graph import Network, resolve_dtype
from bplab.graph.plan import Plan, analyze
from bplab.io.loading import check_permutation, read_checkpoint
from bplab.io.project import atomic_write_bytes, validate_project
from bplab.losses import CrossEntropyLoss, make_loss
from bplab.memory import check_fits, estimate_run
from bplab.optimizers import make_optimizer
from bplab.run import RunPlan, batch_rows
from bplab.schedules import make_schedule
from bplab.settings import TRAINING_OPTIONS, check_section
from bplab.unitmaps import plane_grid

__all__ = [
    "Divergence", "Report", "RunPlan", "Trainer", "add_penalty_grads", "describe_run",
    "penalised_parameters", "training_config",
]


# A run diverges when its loss (or any gradient) is not finite, or when the loss grows past
# LOSS_BLOWUP times its first value. The first layer, in forward order, whose activations or
# gradients grew past BLOWUP_RATIO times their size in the last healthy state is named.
LOSS_BLOWUP = 1000.0
BLOWUP_RATIO = 100.0
# The last healthy state (weights and buffers, a flat copy) is kept every HEALTHY_EVERY steps
# while the loss stays within HEALTHY_LOSS times its first value and the weights' norm
# within HEALTHY_GROWTH times the kept one's: a state taken while weights already run away
# is not "healthy", however finite. Growth past it is also the early warning.
HEALTHY_EVERY = 10
MAX_STEPS = 10_000_000_000  # steps of one run (epochs * steps per epoch, or steps)
MAX_EPOCHS = 1_000_000_000
# A training set up to this size is shuffled by one gather per epoch, a larger one a batch at
# a time (see Trainer._place_data): about the L2 cache of one core.
EPOCH_GATHER_BYTES = 2 * 2**20
EPOCH_LOSS_BUDGET = 2_000  # epoch losses kept besides the first (see _end_epoch)
HEALTHY_LOSS = 10.0
HEALTHY_GROWTH = 4.0
# A rate to resume at: the largest of lr/10, lr/100, ... under which PROBE_STEPS steps from
# the healthy state on the failing batch keep the loss finite and from growing.
PROBE_STEPS = 8
PROBE_DECADES = 9


@dataclass(frozen=True)
class Divergence:
    """Where and when a run diverged, and where it can go on from.

    ``layer`` is the first layer (forward order) whose activations or gradients blew up
    (``blew_up`` says which: ``"activations"`` or ``"gradients"``); ``healthy_step`` the step
    whose weights were restored; ``suggested_lr`` a rate at which training from them stays
    finite on the failing batch (None if none was found).
    """

    step: int
    where: str  # "loss", "gradient" or "weights"
    layer: str | None
    parameter: str | None  # dotted name, e.g. "fc1.weight"
    message: str
    blew_up: str | None = None
    healthy_step: int = 0
    suggested_lr: float | None = None
    lr: float | None = None  # the learning rate it diverged at


@dataclass(slots=True)
class Report:
    """What happened at one training step. Heavy fields are None except at their cadence.

    Read-only by convention (reports cross to the app's thread; nobody writes one after it is
    made). Not ``frozen``: a frozen dataclass's ``__init__`` sets each of these 18 fields
    through ``object.__setattr__``, 3.5 us per report against 0.8 us, and a Playground-size
    network makes 15 000 reports a second.

    ``event`` is ``"step"``, ``"epoch"`` (an epoch ended: ``metrics`` filled), ``"done"``
    (the last report of a finished run), ``"early_stop"`` or ``"diverged"``.
    """

    event: str
    step: int  # optimiser steps taken so far
    epoch: int  # completed epochs
    epoch_progress: float  # epochs as a real number (3.25 = a quarter into the 4th)
    train_loss: float | None  # this step's batch loss (None when not synced, on a GPU)
    lr: float
    steps_per_second: float
    elapsed: float  # seconds of training so far
    metrics: dict[str, float] | None = None
    layers: tuple[LayerStats, ...] | None = None
    activations: tuple[ActivationStats, ...] | None = None
    findings: tuple[Finding, ...] | None = None
    divergence: Divergence | None = None
    total_steps: int | None = None
    amp: dict[str, float] | None = None  # mixed precision: loss_scale, skipped_steps
    skipped: bool = False  # mixed precision skipped this step's update (gradient overflow)
    warning: str | None = None  # the weights run away: a blow-up may follow
    # Recurrent layers, at the diagnostics cadence: layer id -> norm over the batch of dL/dh_t
    # at each time step t, shape (time,) (zero before a truncated-BPTT cut).
    time_grad_norms: dict[str, np.ndarray] | None = None


def _take_into(xp, a, idx, out):
    """``out[...] = a[idx]`` (rows). numpy's take with ``mode="raise"`` (its default) writes
    through a temporary as large as ``out`` (its documentation says so); the indices are a
    permutation, always in range, so ``"clip"`` gathers straight into ``out``. CuPy's take
    has no mode and no such buffer."""
    if xp is np:
        return np.take(a, idx, axis=0, out=out, mode="clip")
    return xp.take(a, idx, axis=0, out=out)


def training_config(project: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The project's ``training`` section with defaults filled and values checked.

    Every key is checked against its :data:`bplab.settings.TRAINING_OPTIONS` entry; overrides
    that are not None take precedence over the project.
    """
    cfg = {**(project.get("training") or {})}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg = check_section("training", TRAINING_OPTIONS, cfg)
    for key, limit in (("epochs", MAX_EPOCHS), ("steps", MAX_STEPS)):
        _check_run_length(key, cfg.get(key), limit)
    return cfg


def _check_data(ds: Dataset) -> None:
    """Values that are not finite (1e308 overflows float32, or standardizing it) are the
    data's fault: say so here rather than let the run diverge and blame the learning rate."""
    for part, x in (("training", ds.x_train), ("validation", ds.x_val)):
        if not np.issubdtype(x.dtype, np.floating) or np.isfinite(x).all():
            continue
        flat = x.reshape(len(x), -1)
        col = int(np.flatnonzero(~np.isfinite(flat).all(axis=0))[0])
        row = int(np.flatnonzero(~np.isfinite(flat[:, col]))[0])
        names = ds.feature_names or []
        what = f"column {names[col]!r}" if col < len(names) else f"input value {col}"
        raise ConfigError(
            f"data set {ds.name!r}: the {part} rows hold values that are not finite (inf or "
            f"NaN), first in {what} at row {row}; values beyond float32's range (3.4e38) "
            "overflow, and so does standardizing a column that holds one. Fix or remove "
            "those rows"
        )


def _check_run_length(key: str, value: int | None, limit: int) -> None:
    """epochs: 10**30 would be accepted and never end: refuse it, saying why."""
    if value is not None and value > limit:
        raise ConfigError(
            f"training: {key} {value:,} is more than {limit:,}, the most one run may take "
            f"(at 100,000 steps a second, {MAX_STEPS:,} steps take over a day); train in "
            "parts with a checkpoint (bplab train --checkpoint) instead"
        )


def penalised_parameters(network) -> list:
    """The parameters the l1/l2 penalties apply to: weights (a layer's ``weight``, and a
    recurrent layer's ``weight_ih_l0``/``weight_hh_l0``), not biases or normalisation
    scales."""
    layers = network.layers
    return [
        p
        for n, p in network.named_parameters()
        if n.rsplit(".", 1)[1].startswith("weight") and layers[n.rsplit(".", 1)[0]].has_weights
    ]


def add_penalty_grads(params, l1: float, l2: float, xp=np) -> None:
    """Add the gradients of the l2 (``2 l2 w``) and l1 (``l1 sign(w)``) penalties."""
    if l2:
        for p in params:
            p.add_grad(p.data * (2.0 * l2))
    if l1:
        for p in params:
            p.add_grad(xp.sign(p.data) * l1)


def describe_run(
    project: dict[str, Any],
    dataset: Dataset,
    *,
    plan: Plan | None = None,
    epochs: int | None = None,
    steps: int | None = None,
) -> RunPlan:
    """The run a :class:`Trainer` would train for ``project`` on ``dataset``, without
    building it: task, layers, steps per epoch and in all (``trainer.run_plan`` is equal).

    ``plan`` is the network's plan when the caller has it (``analyze(project["network"])``
    otherwise); a plan with problems gives a run with no layers. ``epochs``/``steps`` override
    the project as they do for the Trainer. Raises ConfigError for a bad ``training`` section.
    """
    cfg = training_config(project, epochs=epochs, steps=steps)
    if plan is None:
        plan = analyze(project.get("network"))
    return RunPlan.build(cfg, dataset, plan)


class Trainer:
    """Everything one training run needs: data on the device, network, loss, optimiser.

    ``base_dir`` resolves relative dataset paths (the project file's folder). Overrides
    (``backend``, ``dtype``, ``epochs``, ``steps``) take precedence over the project.
    """

    def __init__(
        self,
        project: dict[str, Any],
        *,
        base_dir: str | Path | None = None,
        dataset: Dataset | None = None,
        backend: str | None = None,
        dtype: str | None = None,
        epochs: int | None = None,
        steps: int | None = None,
    ):
        validate_project(project)
        self.project = project
        self.config = cfg = training_config(
            project, backend=backend, dtype=dtype, epochs=epochs, steps=steps
        )
        if steps is not None:
            cfg["epochs"] = None
        self.backend = get_backend(cfg["backend"])
        self.xp = self.backend.xp
        self.dtype = resolve_dtype(cfg["dtype"])
        if dataset is None:
            with np.errstate(over="ignore", invalid="ignore"):  # _check_data says it in words
                dataset = load_dataset(project["dataset"], base_dir=base_dir)
        self.dataset = dataset
        _check_data(dataset)
        self.loss = make_loss(project["loss"])
        self._build_network(cfg)
        self.run_plan = RunPlan.build(cfg, self.dataset, self.network.plan)
        self._plan_steps(self.run_plan)
        self._use_kernels()
        self._place_data(cfg)
        self._reset_progress()
        self._index_parameters()

    # -- setup -------------------------------------------------------------------------------
    def _build_network(self, cfg: dict[str, Any]) -> None:
        """The network (and its float16 twin under mixed precision) and its optimiser."""
        project = self.project
        self._check_memory(cfg)  # before a weight is allocated: "units": 10**9 is refused
        self.network = Network(
            project["network"], dtype=self.dtype, backend=self.backend, seed=cfg["seed"]
        )
        self._check_fit()
        self.network.checkpoint_segments = int(cfg["checkpoint_segments"] or 0)
        self.network.reuse_buffers = True
        self.amp = (
            MixedPrecision(self.network, project["network"], cfg["mixed_precision"])
            if cfg["mixed_precision"]
            else None
        )
        # The network that runs forward/backward: the master, or its float16 twin.
        self._compute = self.amp.compute if self.amp else self.network
        self.network.flatten_parameters()  # one buffer: few ops per step, however many layers
        self.optimizer = make_optimizer(project["optimizer"], self.network.named_parameters())
        self.optimizer.use_flat(self.network.flat)
        self.base_lr = self.optimizer.lr

    def _use_kernels(self) -> None:
        """Hand a small numpy network and its loss the compiled kernels (:mod:`bplab.jit`):
        its step is bound by numpy's calls, not by arithmetic, and the run long enough to
        repay loading them. Decided once: :meth:`extend` does not revisit it. Not under mixed
        precision, whose float16 network keeps the measured numpy code."""
        k = (jit.kernels_for(self.network, self.batch_size, self.total_steps)
             if self.amp is None else None)
        self.network.use_kernels(k)
        self.loss.jit = k

    def _check_memory(self, cfg: dict[str, Any]) -> None:
        """Refuse a run whose estimate (:mod:`bplab.memory`) exceeds the memory available."""
        ds = self.dataset
        est = estimate_run(self.project["network"], dtype=self.dtype.name,
                           batch_size=batch_rows(cfg["batch_size"], max(len(ds.x_train), 1)),
                           optimizer=self.project["optimizer"],
                           data_values=ds.x_train.size + ds.x_val.size)
        check_fits(est)

    def _plan_steps(self, run: RunPlan) -> None:
        """Batch size and run length from the run's description; the schedule over them."""
        self.n_train = run.n_train
        self.batch_size = run.batch_size
        self.steps_per_epoch = run.steps_per_epoch
        self.total_steps = run.total_steps  # where the run ends now (extend moves it)
        _check_run_length("steps (epochs x batches)", self.total_steps, MAX_STEPS)
        sched = self.config["lr_schedule"]
        self.schedule = (
            make_schedule(sched, self.optimizer, self.steps_per_epoch, self.total_steps)
            if sched
            else None
        )

    def _place_data(self, cfg: dict[str, Any]) -> None:
        """The data goes to the device once. Shuffling, two ways by size:

        * a small training set (at most :data:`EPOCH_GATHER_BYTES`) is gathered in the
          epoch's order into one buffer at the epoch's start, and every batch is a slice of
          it: a Playground-size step then pays no gather call at all;
        * a larger one is gathered a batch at a time into a batch-sized buffer: the same bytes
          move, but into a buffer that stays in cache for the forward pass, and no second
          copy of the whole set is kept (188 MB for MNIST)."""
        xp, ds = self.xp, self.dataset
        self._x = xp.asarray(ds.x_train, dtype=self.dtype)
        self._y = xp.asarray(self.targets(ds.y_train))
        self._per_batch = bool(cfg["shuffle"]) and self._x.nbytes > EPOCH_GATHER_BYTES
        if cfg["shuffle"] and not self._per_batch:
            self._xs, self._ys = xp.empty_like(self._x), xp.empty_like(self._y)
        else:  # per batch: made at the first batch, when the batch size is known
            self._xs, self._ys = self._x, self._y
        self._idx = None  # per batch: the epoch's order on the device
        self._xv = xp.asarray(ds.x_val, dtype=self.dtype) if len(ds.x_val) else None
        self._yv = xp.asarray(self.targets(ds.y_val)) if len(ds.y_val) else None
        self._rng = np.random.default_rng(cfg["seed"])
        self._perm: np.ndarray | None = None
        self._pos = 0  # next batch start within the current epoch
        ytr = ds.y_train.reshape(len(ds.y_train), -1).astype(np.float64)
        self._train_ss_tot = float(((ytr - ytr.mean(axis=0)) ** 2).sum())

    def _reset_progress(self) -> None:
        """Counters, running sums and histories of a run that has not started."""
        self.step_count = 0
        self.epoch = 0
        self.elapsed = 0.0
        self.best_val_loss = math.inf
        self.best_state: dict[str, np.ndarray] | None = None
        self.best_epoch: int | None = None  # the epoch whose weights best_state holds
        self._bad_epochs = 0
        self.stopped: str | None = None  # "done", "early_stop", "diverged" or "stopped"
        self.divergence: Divergence | None = None
        self.epoch_losses: list[float] = []
        self._epoch_loss_sum = 0.0
        self._epoch_loss_n = 0
        self._epoch_loss_dev = None  # GPU: the running sum stays on the device
        # Training metrics of the epoch, summed over its batches as they were trained (Keras'
        # convention): the epoch end then needs no extra pass over the training set.
        self._epoch_metric = None  # device array: [correct] or [abs error, squared error]
        self._epoch_seen = 0
        self.layer_history: list[list[LayerStats]] = []
        self.activation_history: list[list[ActivationStats]] = []
        self.time_grad_history: list[dict[str, np.ndarray]] = []  # see Report.time_grad_norms
        self._diag_samples = 0  # samples taken: the key of the kept history findings
        self._history_findings = None  # (key, HistoryFindings), see _diagnose
        self._evaluated = None  # (weights key, metrics) of the last evaluate()
        self._val_outputs = None  # (weights key, output chunks) of its validation pass
        self._time_grads: dict[str, np.ndarray] | None = None
        # what the data itself calls for (features on large scales), said from the start
        self._data_findings = [*input_scale_findings(self.dataset),
                               *target_scale_findings(self.dataset)]
        self.findings: list[Finding] = list(self._data_findings)
        self._diag_requested = False
        self._rate = 0.0
        self._rate_t = None
        self._rate_steps = 0
        # On a GPU, reading the loss every step would stall the device queue: check every
        # few steps.
        self._sync_every = 1 if not self.backend.is_gpu else 10
        self._start_loss: float | None = None  # the run's first loss: the blow-up reference
        self._loss_limit = math.inf
        self._healthy = None  # (step, loss, weight norm, flat weights, buffers)
        self._healthy_next = 0  # the step at which the next healthy copy is due
        self.warning: str | None = None

    def _index_parameters(self) -> None:
        """What the step loop reads per step, looked up once: parameters, penalised weights,
        the activation layers to capture for diagnostics."""
        # Cross-entropy counts the correct rows itself (in its kernel on a GPU). Mixed
        # precision keeps the separate count: a skipped step must not count its batch.
        self._loss_counts_hits = isinstance(self.loss, CrossEntropyLoss) and self.amp is None
        self._param_names = [n for n, _ in self.network.named_parameters()]
        self._params = self.network.parameters()
        self._stats_layout = None  # (flat buffers, their FlatLayout), see _flat_stats
        self._penalised = penalised_parameters(self.network)
        self._act_layers = {
            info.id: info.activation_kind for info in self.run_plan.activations
        }
        # Recurrent layers: truncated BPTT, and dL/dh_t per step recorded for the diagnosis.
        self._recurrent = [
            layer for layer in self._compute.layers.values() if layer.takes_sequence
        ]
        for layer in self._recurrent:
            layer.bptt_steps = self.config["bptt_steps"]
        self._layer_types = self.run_plan.layer_types

    @property
    def task(self) -> str:
        return self.dataset.task

    def targets(self, y: np.ndarray) -> np.ndarray:
        """Labels ``y`` as this run's loss takes them (class ids, a column, one-hot, ...)."""
        if self.dataset.task == "classification":
            if getattr(self.loss, "type_name", "") == "binary_cross_entropy":
                return y.reshape(-1, 1).astype(self.dtype)
            if getattr(self.loss, "type_name", "") in ("mse", "l1", "huber"):
                onehot = np.zeros((len(y), self.dataset.n_classes), self.dtype)
                onehot[np.arange(len(y)), y] = 1
                return onehot
            return y.astype(np.int64)
        return y.astype(self.dtype).reshape(len(y), -1)

    def _check_fit(self) -> None:
        """Refuse a network that does not fit the data set (see :mod:`bplab.checks`)."""
        problems = output_problems(self.network.plan, self.dataset,
                                   getattr(self.loss, "type_name", ""))
        if problems:
            raise ConfigError(problems[0].message)

    # -- control -----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.stopped is not None or self.step_count >= self.total_steps

    @property
    def lr(self) -> float:
        return float(self.optimizer.lr)

    def set_lr(self, lr: float) -> None:
        """Change the learning rate; it applies at the next step (schedules rescale from it)."""
        if not (isinstance(lr, (int, float)) and lr >= 0 and math.isfinite(lr)):
            raise ConfigError(f"lr must be a number >= 0, received {lr!r}")
        self.optimizer.lr = float(lr)
        self.base_lr = float(lr)
        if self.schedule is not None and hasattr(self.schedule, "base_lrs"):
            self.schedule.base_lrs = [float(lr)]
        if self.stopped == "diverged":
            self.stopped = None  # the user lowered the rate: allow resuming from finite weights
            self.divergence = None

    def extend(self, steps: int) -> None:
        """Allow ``steps`` more steps (the app's Run after a finished run)."""
        self.total_steps = max(self.total_steps, self.step_count) + int(steps)
        if self.stopped == "done":
            self.stopped = None

    def set_total_steps(self, total: int) -> None:
        """End the run after ``total`` steps in all, never before the steps already taken; a
        finished run continues if that leaves steps to take."""
        self.total_steps = max(int(total), self.step_count)
        if self.stopped == "done" and self.step_count < self.total_steps:
            self.stopped = None

    def set_epochs(self, epochs: int) -> None:
        """End the run after ``epochs`` epochs in all (see :meth:`set_total_steps`)."""
        self.set_total_steps(self.run_plan.steps_for_epochs(epochs))

    def stop(self) -> None:
        """End the run between steps: ``done`` turns True, :meth:`run` returns, and
        :meth:`resume` carries on from here. A run that already ended keeps its reason."""
        if self.stopped is None:
            self.stopped = "stopped"

    def resume(self, steps: int | None = None) -> None:
        """Make a run that ended trainable again (the app's Run or Step after it ended).

        After a divergence it retries the failed batch from the last finite weights, at the
        current learning rate (:meth:`set_lr`); after :meth:`stop` it carries on; after the
        last step or an early stop it trains ``steps`` more, by default as long as the
        configured run (at least an epoch). A run with steps left is not changed.
        """
        if not self.done:
            return
        if self.stopped == "diverged":
            self.set_lr(self.lr)
        elif self.stopped == "stopped" and self.step_count < self.total_steps:
            self.stopped = None
        else:
            if steps is None:
                steps = max(self.run_plan.total_steps, self.steps_per_epoch)
            self.stopped = None
            self.extend(steps)

    def revert_to_best(self) -> int | None:
        """Load the weights of the epoch with the lowest validation loss (kept at every epoch
        end that improved it); return that epoch, or None when no epoch was validated. The
        optimiser's state starts afresh; training goes on from those weights."""
        if self.best_state is None:
            return None
        self.network.load_state_dict(self.best_state)
        self.optimizer.state = {}
        return self.best_epoch

    def request_diagnostics(self) -> None:
        """Compute gradient diagnostics at the next step (the app asks at its frame rate)."""
        self._diag_requested = True

    def run(self, max_steps: int | None = None) -> Iterator[Report]:
        """Yield a report after every step until the run ends (or ``max_steps`` steps)."""
        n = 0
        while not self.done and (max_steps is None or n < max_steps):
            report = self.step()
            n += 1
            yield report
            if report.event in ("diverged", "early_stop"):
                return

    # -- one step ----------------------------------------------------------------------------
    def _next_batch(self):
        if self._pos == 0 and self.config["shuffle"]:
            self._perm = self._rng.permutation(self.n_train)
            self._gather_epoch()
        start = self._pos
        stop = min(start + self.batch_size, self.n_train)
        self._pos = 0 if stop >= self.n_train else stop
        if self._per_batch:
            xp, rows = self.xp, stop - start
            if self._xs is self._x:
                self._xs = xp.empty((self.batch_size, *self._x.shape[1:]), self._x.dtype)
                self._ys = xp.empty((self.batch_size, *self._y.shape[1:]), self._y.dtype)
            idx = self._idx[start:stop]
            xb = _take_into(xp, self._x, idx, self._xs[:rows])
            yb = _take_into(xp, self._y, idx, self._ys[:rows])
            return xb, yb, self._pos == 0
        return self._xs[start:stop], self._ys[start:stop], self._pos == 0

    def _gather_epoch(self) -> None:
        """Put the epoch's order (``self._perm``) in place: the whole set gathered, or (per
        batch) the order sent to the device for :meth:`_next_batch`."""
        idx = self.xp.asarray(self._perm)
        if self._per_batch:
            self._idx = idx
        else:
            _take_into(self.xp, self._x, idx, self._xs)
            _take_into(self.xp, self._y, idx, self._ys)

    def step(self) -> Report:
        """One optimiser step on the next batch; returns its report.

        The phases, in order: forward and backward (:meth:`_forward_backward`), the l1/l2
        penalties, the divergence check (every step on the CPU, every few on a GPU), gradient
        clipping, the update (:meth:`_apply_update`, with diagnostics when due), the epoch's
        running sums, and the end of the step (:meth:`_end_step`: epoch end, diagnosis,
        the report). This runs ~10k times a second on small networks: the phases are calls,
        not loops over helpers, and read what they need from attributes set up once.
        """
        if self.done:
            raise RuntimeError("training has ended; call resume() or extend() to train further")
        t0 = time.perf_counter()
        cfg = self.config
        diag = self._diag_requested or (
            cfg["diagnostics_every"] and (self.step_count + 1) % cfg["diagnostics_every"] == 0
        )
        self._diag_requested = False
        for layer in self._recurrent:
            layer.record_time_grads = bool(diag)
        xb, yb, epoch_end = self._next_batch()
        if self.amp is None:
            loss, batch_metric = self._forward_backward(xb, yb, diag)
        else:
            loss, batch_metric = self._forward_backward_amp(xb, yb, diag)
            if loss is None:  # float16 overflow: no update this step
                return self._report("step", t0, None, amp=self.amp.state(), skipped=True)
        if cfg["l1"] or cfg["l2"]:
            self._penalise(cfg["l1"], cfg["l2"])
        loss_value = None
        if (
            not self.backend.is_gpu
            or diag
            or epoch_end
            or (self.step_count + 1) % self._sync_every == 0
        ):
            loss_value = float(loss)
            bad = self._find_nonfinite(loss_value)
            if bad is None and loss_value > self._loss_limit:
                bad = ("loss", None, None)
            if bad is not None:
                return self._diverged(bad, t0, xb, yb)
            if self.step_count >= self._healthy_next:
                self._keep_healthy(loss_value)
        if cfg["clip_grad_norm"] or cfg["clip_grad_value"]:
            self._clip(cfg["clip_grad_norm"], cfg["clip_grad_value"])
        layer_stats, act_stats = self._apply_update(diag)
        self._accumulate(loss, loss_value, batch_metric, len(xb))
        return self._end_step(t0, loss_value, epoch_end, diag, layer_stats, act_stats)

    def _forward_backward(self, xb, yb, diag: bool):
        """Loss of the batch, gradients accumulated; and the batch's share of the epoch's
        training metrics (None when the loss counted the correct rows itself)."""
        net = self.network
        net.zero_grad()
        if diag:
            net.capture = set(self._act_layers)
        out = net.forward(xb, True)
        if self._loss_counts_hits:
            if self._epoch_metric is None:
                self._epoch_metric = self.xp.zeros(1, self.xp.float64)
            loss = self.loss.forward(out, yb, hits=self._epoch_metric)
            batch_metric = None
        else:
            loss = self.loss.forward(out, yb)
            batch_metric = self._batch_metric(out, yb)  # before backward reuses `out`
        net.backward(self.loss.backward())
        return loss, batch_metric

    def _forward_backward_amp(self, xb, yb, diag: bool):
        """:meth:`_forward_backward` in float16 with a scaled loss; ``(None, None)`` when the
        gradients overflowed (the update is skipped and the loss scale halved)."""
        amp, fnet = self.amp, self._compute
        self.network.zero_grad()
        if diag:
            fnet.capture = set(self._act_layers)
        amp.sync_weights()
        out = amp.forward(xb, True).astype(self.dtype)
        loss = self.loss.forward(out, yb)  # the loss stays float32
        batch_metric = self._batch_metric(out, yb)
        amp.backward(self.loss.backward())
        for layer in self._recurrent if diag else ():  # dL/dh_t of the loss, not the scaled one
            if layer.time_grad_norms is not None:
                layer.time_grad_norms /= amp.scale
        if not amp.unscale_to_master():
            amp.update(False)
            fnet.capture, fnet.captured = None, {}
            return None, None
        amp.update(True)
        return loss, batch_metric

    def _penalise(self, l1: float, l2: float) -> None:
        """Add the gradients of the l2 and l1 penalties on the weights."""
        add_penalty_grads(self._penalised, l1, l2, self.xp)

    def _clip(self, max_norm: float | None, max_value: float | None) -> None:
        """Clip the gradients by their global norm, then by value (torch's clip_grad_*)."""
        if max_norm:
            clip_grad_norm_(self._params, max_norm)
        if max_value:
            clip_grad_value_(self._params, max_value)

    def _apply_update(self, diag: bool):
        """The optimiser's step and the schedule's; with ``diag``, the layer and activation
        statistics of this step (``(None, None)`` otherwise)."""
        before = self._weights_before() if diag else None
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.batch_end()  # steps only schedules whose interval is "step"
        self.step_count += 1
        if before is None:
            return None, None
        return self._collect_diagnostics(before)

    def _weights_before(self):
        """The weights before an update, for the layer statistics: one copy of the flat
        buffer where they are read from it (:meth:`_flat_stats`), one per parameter
        otherwise."""
        if self._flat_stats() is not None:
            return self.network.flat.data.copy()
        return [p.data.copy() for p in self._params]

    def _flat_stats(self):
        """The flat buffers' layout for :func:`~bplab.diagnostics.flat_layer_stats`, or None
        where the statistics are taken parameter by parameter: on a GPU, under mixed
        precision, or when a parameter got no gradient this step (its slot of the flat
        gradient is stale)."""
        flat = self.network.flat
        if (self.xp is not np or self.amp is not None or flat is None
                or not flat.all_have_grad() or not flat.owns(self._params)):
            return None
        kept = self._stats_layout
        if kept is None or kept[0] is not flat:
            kept = self._stats_layout = (flat, flat_layout(
                flat, self.network.parameterized_layers()))
        return kept[1]

    def _collect_diagnostics(self, before):
        """Layer statistics (the update is ``data - before``) and the captured activations'
        statistics, kept in the (bounded) histories the diagnosis reads."""
        fnet = self._compute
        layer_stats = self._layer_stats(before)
        act_stats = tuple(
            activation_stats(nid, self._act_layers[nid], y) for nid, y in fnet.captured.items()
        )
        fnet.capture = None
        fnet.captured = {}
        self._diag_samples += 1
        self.layer_history.append(list(layer_stats))
        self.activation_history.append(list(act_stats))
        del self.layer_history[:-200], self.activation_history[:-200]
        self._time_grads = {
            layer.name: layer.time_grad_norms for layer in self._recurrent
            if layer.time_grad_norms is not None
        } or None
        if self._time_grads:
            self.time_grad_history.append(self._time_grads)
            del self.time_grad_history[:-200]
        return layer_stats, act_stats

    def _accumulate(self, loss, loss_value, batch_metric, rows: int) -> None:
        """Add the step to the epoch's running loss and metrics; on a GPU, keep a copy of
        weights known to be finite (the loss was read)."""
        if batch_metric is not None:
            self._epoch_metric = (
                batch_metric if self._epoch_metric is None else self._epoch_metric + batch_metric
            )
        self._epoch_seen += rows
        if self.backend.is_gpu:
            # every batch counts in the epoch's mean; summed on the device, read at epoch end
            self._epoch_loss_dev = (
                loss if self._epoch_loss_dev is None else self._epoch_loss_dev + loss
            )
            self._epoch_loss_n += 1
        elif loss_value is not None:
            self._epoch_loss_sum += loss_value
            self._epoch_loss_n += 1

    def _end_step(self, t0, loss_value, epoch_end, diag, layer_stats, act_stats) -> Report:
        """Close the epoch if it ended, diagnose when there is something new, decide whether
        the run is over, and report."""
        if not (epoch_end or diag or self.warning) and self.amp is None and (
                self.step_count < self.total_steps):
            # most steps: nothing but the step's own numbers (positional: ~1 us less a step)
            self._tick(t0)
            return Report("step", self.step_count, self.epoch, self._progress(),
                          loss_value, self.lr, self._rate, self.elapsed,
                          total_steps=self.total_steps)
        event, metrics, findings = "step", None, None
        if epoch_end:
            self.epoch += 1
            metrics = self._end_epoch()
            event = "early_stop" if self.stopped == "early_stop" else "epoch"
        if diag or metrics is not None:
            findings = self._diagnose()
        if self.step_count >= self.total_steps and self.stopped is None:
            self.stopped = "done"
        if self.stopped == "done" and event in ("step", "epoch"):
            if metrics is None:
                metrics = self.evaluate()
            event = "done"
        return self._report(
            event,
            t0,
            loss_value,
            metrics=metrics,
            layers=layer_stats,
            acts=act_stats,
            findings=findings,
            amp=self.amp.state() if self.amp else None,
            warning=self.warning,
            time_grads=self._time_grads if diag else None,
        )

    def _diagnose(self) -> tuple[Finding, ...]:
        """Run the diagnosis over the histories; keep and return its findings. The samples'
        part is kept until a new sample arrives: an epoch end between samples only adds the
        loss's findings (on a small network epochs end every few dozen steps)."""
        # the histories grow only in _collect_diagnostics, which counts its samples, and
        # start afresh only with _reset_progress, which drops what was kept
        key = self._diag_samples
        if self._history_findings is None or self._history_findings[0] != key:
            self._history_findings = (key, history_findings(
                self.layer_history, self.activation_history, layer_types=self._layer_types,
                time_grads=self.time_grad_history))
        self.findings = diagnose(
            self.layer_history,
            self.activation_history,
            self.epoch_losses,
            layer_types=self._layer_types,
            divergence=self.divergence,
            time_grads=self.time_grad_history,
            from_history=self._history_findings[1],
            lr_fraction=self._lr_fraction(),
            data=self._data_findings,
        )
        return tuple(self.findings)

    def _lr_fraction(self) -> float | None:
        """The learning rate now over the schedule's starting one (None without one)."""
        if self.schedule is None or not self.schedule.base_lr:
            return None
        return self.lr / self.schedule.base_lr

    def _tick(self, t0: float) -> None:
        """Count the step that began at ``t0`` in the training time and the rate (measured
        over a quarter of a second)."""
        now = time.perf_counter()
        self.elapsed += now - t0
        self._rate_steps += 1
        if self._rate_t is None:
            self._rate_t = now
        elif now - self._rate_t > 0.25:
            self._rate = self._rate_steps / (now - self._rate_t)
            self._rate_t, self._rate_steps = now, 0

    def _progress(self) -> float:
        """Epochs as a real number (3.25: a quarter into the 4th)."""
        return self.epoch + (self._pos / self.n_train if self._pos else 0.0)

    def _report(
        self,
        event,
        t0,
        loss_value,
        *,
        metrics=None,
        layers=None,
        acts=None,
        findings=None,
        divergence=None,
        amp=None,
        skipped=False,
        warning=None,
        time_grads=None,
    ) -> Report:
        self._tick(t0)
        return Report(
            event=event,
            step=self.step_count,
            epoch=self.epoch,
            epoch_progress=self._progress(),
            train_loss=loss_value,
            lr=self.lr,
            steps_per_second=self._rate,
            elapsed=self.elapsed,
            metrics=metrics,
            layers=tuple(layers) if layers is not None else None,
            activations=acts,
            findings=findings,
            divergence=divergence,
            total_steps=self.total_steps,
            amp=amp,
            skipped=skipped,
            warning=warning,
            time_grad_norms=time_grads,
        )

    # -- epochs and evaluation -----------------------------------------------------------------
    def _end_epoch(self) -> dict[str, float]:
        self._fold_epoch_loss()
        train_loss = self._epoch_loss_sum / max(self._epoch_loss_n, 1)
        self._epoch_loss_sum, self._epoch_loss_n = 0.0, 0
        self.epoch_losses.append(train_loss)
        # Bounded: the first loss (the blow-up reference) and the recent ones are what the
        # diagnosis reads; an hours-long run must not keep a float per epoch.
        del self.epoch_losses[1:-EPOCH_LOSS_BUDGET]
        metrics = {"train_loss": train_loss, **self._train_metrics()}
        if self._xv is not None:
            if self.amp is not None:
                self.amp.sync_buffers()
            self._keep_validation(self._xv, self._yv, metrics)
        if self.schedule is not None:
            # reduce_on_plateau watches the validation loss (the training loss without one)
            self.schedule.epoch_end(metrics.get("val_loss", train_loss))
        val = metrics.get("val_loss")
        if val is not None and math.isfinite(val):
            es = self.config["early_stopping"]
            min_delta = es["min_delta"] if es else 0.0
            if val < self.best_val_loss - min_delta:
                self.best_val_loss = val
                self.best_state = self.network.state_dict()
                self.best_epoch = self.epoch
                self._bad_epochs = 0
            else:
                self._bad_epochs += 1
                if es and self._bad_epochs >= es["patience"]:
                    self.stopped = "early_stop"
                    if es["restore_best"] and self.best_state is not None:
                        self.network.load_state_dict(self.best_state)
        return metrics

    def _batch_metric(self, out, yb):
        """This batch's share of the epoch's training metrics, as a small device array."""
        xp = self.xp
        if self.task == "classification":
            if out.shape[1] == 1:
                hits = ((out[:, 0] > 0) == (yb.reshape(-1) > 0.5)).sum()
            else:
                truth = yb if yb.ndim == 1 else yb.argmax(axis=1)
                hits = (out.argmax(axis=1) == truth).sum()
            return hits.astype(xp.float64).reshape(1)
        d = out - yb
        return xp.stack([xp.abs(d).sum(), (d * d).sum()]).astype(xp.float64)

    def _train_metrics(self) -> dict[str, float]:
        """Accuracy (or R^2 and MAE) over the epoch's batches; resets the running sums."""
        acc, seen = self._epoch_metric, max(self._epoch_seen, 1)
        self._epoch_metric, self._epoch_seen = None, 0
        if acc is None:
            return {}
        values = to_host(acc).tolist()
        if self.task == "classification":
            return {"train_accuracy": values[0] / seen}
        outputs = max(int(np.prod(self.network.output_shape)), 1)
        return {
            "train_r2": 1.0 - values[1] / self._train_ss_tot if self._train_ss_tot > 0 else 0.0,
            "train_mae": values[0] / (seen * outputs),
        }

    def _fold_epoch_loss(self) -> None:
        if self._epoch_loss_dev is not None:
            self._epoch_loss_sum += float(self._epoch_loss_dev)
            self._epoch_loss_dev = None

    def _to_floats(self, *values) -> list[float]:
        """Device scalars to Python floats in one transfer."""
        xp = self.xp
        return to_host(xp.stack([xp.asarray(v, dtype=xp.float64) for v in values])).tolist()

    def _metrics_on(self, x, y, prefix: str, keep: list | None = None) -> dict[str, float]:
        """Mean loss and accuracy (or R^2 and MAE) over ``x``, in evaluation mode; the
        outputs, chunk by chunk, appended to ``keep`` when given.

        The sums stay on the device and come back to the host once, as one small array: on
        a GPU every ``float()`` is a synchronisation, and this runs at every epoch end.
        """
        xp = self.xp
        net = self.network
        n = len(x)
        chunk = net.eval_rows
        loss_sum = 0.0
        hits = 0.0  # correct predictions, or absolute error, summed on the device
        sq_err = 0.0
        for s in range(0, n, chunk):
            out = net.forward(x[s : s + chunk], training=False)
            if keep is not None:
                keep.append(out)
            yb = y[s : s + chunk]
            loss_sum = loss_sum + self.loss.forward(out, yb) * len(out)
            if self.task == "classification":
                if out.shape[1] == 1:
                    pred = (out[:, 0] > 0).astype(xp.int64)
                    truth = yb.reshape(-1).astype(xp.int64)
                else:
                    pred = out.argmax(axis=1)
                    truth = yb if yb.ndim == 1 else yb.argmax(axis=1)
                hits = hits + (pred == truth).sum()
            else:
                d = out - yb
                hits = hits + xp.abs(d).sum()
                sq_err = sq_err + (d * d).sum()
        for layer in net._layers:
            layer.clear_cache()
        if self.task == "classification":
            loss_sum, hits = self._to_floats(loss_sum, hits)
            return {f"{prefix}_loss": loss_sum / n, f"{prefix}_accuracy": hits / n}
        yv = y.reshape(n, -1)
        ss_tot = ((yv - yv.mean(axis=0)) ** 2).sum()
        loss_sum, hits, sq_err, ss_tot = self._to_floats(loss_sum, hits, sq_err, ss_tot)
        return {
            f"{prefix}_loss": loss_sum / n,
            f"{prefix}_r2": 1.0 - sq_err / ss_tot if ss_tot > 0 else 0.0,
            f"{prefix}_mae": hits / yv.size,
        }

    def evaluate(self) -> dict[str, float]:
        """Loss and accuracy (or R^2 and MAE) on the training and validation sets.

        Asked twice of the same weights (the run's last report, then ``bplab train``'s
        summary), it evaluates once: the answer is kept with the step count and a
        fingerprint of the weights (their sum and sum of squares)."""
        if self.amp is not None:
            self.amp.sync_buffers()
        key = self._weights_key()
        if key is not None and self._evaluated is not None and self._evaluated[0] == key:
            return dict(self._evaluated[1])
        metrics: dict[str, float] = {}
        n = min(self.n_train, 5000)  # a fixed subset keeps evaluation cheap on big sets
        metrics.update(self._metrics_on(self._x[:n], self._y[:n], "train"))
        if self._xv is not None:
            self._keep_validation(self._xv, self._yv, metrics, key)
        self._evaluated = (key, dict(metrics)) if key is not None else None
        return metrics

    def _keep_validation(self, xv, yv, metrics: dict, key=None) -> None:
        """The validation metrics into ``metrics``; the outputs kept with the weights' key
        for :meth:`validation_outputs`."""
        outs: list = []
        metrics.update(self._metrics_on(xv, yv, "val", keep=outs))
        key = key or self._weights_key()
        self._val_outputs = (key, outs) if key is not None else None

    def validation_outputs(self) -> np.ndarray:
        """The network's evaluation-mode outputs on the validation set, on the host.

        Those of the last :meth:`evaluate` while the weights are the same (an epoch end's
        validation pass: the app's confusion matrix and mistakes then cost no second pass
        over the validation set), else a fresh pass (no rows without a validation set)."""
        if self.amp is not None:
            self.amp.sync_buffers()
        kept = self._val_outputs
        if kept is not None and kept[1] and kept[0] == self._weights_key():
            return np.concatenate([to_host(o) for o in kept[1]])
        return self.network.predict(self.dataset.x_val if self._xv is None else self._xv)

    def _weights_key(self) -> tuple | None:
        """(step, sum, sum of squares) of the weights, or None without a flat buffer."""
        flat = self.network.flat
        if flat is None:
            return None
        w = flat.data
        return (self.step_count, *self._to_floats(self.xp.sum(w, dtype=self.xp.float64),
                                                  self.xp.vdot(w, w)))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Network outputs on the host, in evaluation mode; class probabilities for classifiers."""
        out = self.network.predict(x)
        if self.task == "classification":
            if out.shape[1] == 1:
                return 1.0 / (1.0 + np.exp(-out))
            e = np.exp(out - out.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return out

    def decision_grid(self, resolution: int = 64) -> tuple[np.ndarray, tuple]:
        """For 2-D data: the network's output over the input plane, as Playground draws it;
        for 1-D data, over the input line (the function the network computes of x).

        Returns ``(values, bounds)``. 2-D: values of shape (resolution, resolution) with rows
        along y, bounds ``((x0, x1), (y0, y1))``; 1-D: values of shape (resolution,) at
        ``linspace(x0, x1, resolution)``, bounds ``((x0, x1),)``. The values are in [0, 1]
        for classification (probability of class 1, or the class index scaled for more
        classes) and the output itself for regression.
        """
        bounds = self.dataset.bounds
        p = self.predict(plane_grid(bounds, resolution, self.dtype))  # the unit maps' grid
        if self.task != "classification":
            v = p[:, 0]
        elif p.shape[1] <= 2:
            v = p[:, -1]  # the probability of class 1 (a single output: its probability)
        else:
            v = p.argmax(axis=1) / (p.shape[1] - 1)
        shape = (resolution,) if self.dataset.is_1d else (resolution, resolution)
        return v.reshape(shape), bounds

    # -- diagnostics ---------------------------------------------------------------------------
    def _layer_stats(self, before) -> list[LayerStats]:
        if isinstance(before, np.ndarray):  # the flat copy of _weights_before
            flat = self.network.flat
            return flat_layer_stats(self._flat_stats(), flat.data, flat.grad, before)
        xp = self.xp
        stats = []
        params = dict(zip(self._param_names, zip(self._params, before)))
        depth = 0
        for nid, layer in self.network.parameterized_layers():
            main = (
                f"{nid}.weight"
                if f"{nid}.weight" in params
                else f"{nid}.{next(iter(layer.params))}"
            )
            p, old = params[main]
            g2 = w2 = d2 = 0.0
            bad = None
            for pname in layer.params:
                qp, qold = params[f"{nid}.{pname}"]
                gs = float(xp.vdot(qp.grad.ravel(), qp.grad.ravel())) if qp.has_grad else 0.0
                g2 += gs
                w2 += float(xp.vdot(qp.data.ravel(), qp.data.ravel()))
                d = qp.data - qold
                d2 += float(xp.vdot(d.ravel(), d.ravel()))
                if bad is None and not math.isfinite(gs):
                    bad = f"{nid}.{pname}"
            n = max(p.size, 1)
            gn, wn = math.sqrt(g2), math.sqrt(w2)
            stats.append(
                LayerStats(
                    nid,
                    layer.type_name,
                    depth,
                    gn,
                    wn,
                    math.sqrt(d2) / wn if wn > 0 else 0.0,
                    math.sqrt(float(xp.vdot(p.grad.ravel(), p.grad.ravel())) / n)
                    if p.has_grad
                    else 0.0,
                    histogram(p.data),
                    histogram(p.grad) if p.has_grad else None,
                    bad,
                )
            )
            depth += 1
        return stats

    def _find_nonfinite(self, loss_value: float) -> tuple[str, str | None, str | None] | None:
        """(where, layer, parameter) of the first non-finite value, or None if all is finite."""
        xp = self.xp
        if not math.isfinite(loss_value):
            for name, p in zip(self._param_names, self._params):
                if not bool(xp.isfinite(p.data).all()):
                    return "weights", name.rsplit(".", 1)[0], name
            return "loss", None, None
        # A cheap test first: one sum per gradient is finite iff its entries are (barring
        # an overflow of the sum itself, which also means divergence). The sums are added
        # up and tested once; only a non-finite total (or one that overflowed while adding,
        # itself a sign of divergence) pays for the per-gradient search below.
        flat = self.network.flat
        if flat is not None and flat.all_have_grad():
            if math.isfinite(float(xp.vdot(flat.grad, flat.grad))):  # all gradients at once
                return None
        else:
            sums = [
                xp.vdot(p.grad.ravel(), p.grad.ravel()) if p.has_grad else 0.0
                for p in self._params
            ]
            if math.isfinite(float(sum(sums))):
                return None
        for name, p in zip(self._param_names, self._params):
            if p.has_grad and not bool(xp.isfinite(p.grad).all()):
                return "gradient", name.rsplit(".", 1)[0], name
        return None

    # -- divergence: the healthy state, the blamed layer, a rate to resume at ------------------
    def _keep_healthy(self, loss_value: float) -> None:
        """Copy the weights (one flat buffer) and buffers as the last healthy state, unless the
        loss or the weights' norm already run away (then warn instead). Runs every
        :data:`HEALTHY_EVERY` steps, before the step's update: the copy is the state whose
        loss was just measured."""
        self._healthy_next = self.step_count + HEALTHY_EVERY
        if self._start_loss is None:
            # a run resumed from a checkpoint measures from its first epoch, not from today's
            # (small) loss, which a noisy batch could exceed 1000x
            first = self.epoch_losses[0] if self.epoch_losses else -math.inf
            self._start_loss = max(loss_value, first)
            self._loss_limit = LOSS_BLOWUP * max(loss_value, 1e-12)
        xp, flat = self.xp, self.network.flat
        weights = flat.data if flat is not None else None
        norm = (math.sqrt(float(xp.vdot(weights, weights))) if weights is not None else
                math.sqrt(sum(float(xp.vdot(p.data.ravel(), p.data.ravel()))
                              for p in self._params)))
        kept = self._healthy
        if kept is not None and (loss_value > HEALTHY_LOSS * self._start_loss
                                 or norm > HEALTHY_GROWTH * kept[2]):
            self.warning = (
                f"The weights' norm grew from {kept[2]:.3g} to {norm:.3g} since step {kept[0]} "
                f"(loss {loss_value:.3g}, first {self._start_loss:.3g}): a blow-up may follow. "
                "Lower the learning rate or clip the gradients."
            )
            return
        self.warning = None
        self._copy_healthy(loss_value, norm)

    def _copy_healthy(self, loss_value: float, norm: float) -> None:
        """Keep the weights and buffers as they are now as the healthy state."""
        kept, flat = self._healthy, self.network.flat
        if flat is not None:
            copy = kept[3] if kept is not None and not isinstance(kept[3], list) else None
            if copy is None:
                copy = self.xp.empty_like(flat.data)
            copy[...] = flat.data
        else:
            copy = [p.data.copy() for p in self._params]
        buffers = {name: b.copy() for name, b in self.network.named_buffers()}
        self._healthy = (self.step_count, loss_value, norm, copy, buffers)

    def _restore_healthy(self) -> None:
        """Put the last healthy weights and buffers back (nothing before the first)."""
        if self._healthy is None:
            return
        _step, _loss, _norm, copy, buffers = self._healthy
        if isinstance(copy, list):
            for p, c in zip(self._params, copy):
                p.data[...] = c
        else:
            self.network.flat.data[...] = copy
        for name, b in self.network.named_buffers():
            if name in buffers:
                b[...] = buffers[name]

    def _probe(self, xb, yb) -> tuple[float, dict[str, float], dict[str, float]]:
        """One forward/backward on a batch, no update: the loss, each node's output RMS and
        each parameterised layer's gradient norm (inf where not finite)."""
        net, xp = self.network, self.xp
        segments = net.checkpoint_segments
        if segments:
            net.checkpoint_segments = 0  # capture needs the plain forward
        net.zero_grad()
        net.capture = {info.id for info in self.run_plan.layers}
        acts: dict[str, float] = {}
        try:
            out = net.forward(xb, True)
            for nid, y in net.captured.items():
                acts[nid] = _rms(xp, y)
            loss = float(self.loss.forward(out, yb))
            net.backward(self.loss.backward())
        finally:
            net.capture, net.captured = None, {}
            if segments:
                net.checkpoint_segments = segments
        grads: dict[str, float] = {}
        for name, p in zip(self._param_names, self._params):
            nid = name.rsplit(".", 1)[0]
            g = float(xp.vdot(p.grad.ravel(), p.grad.ravel())) if p.has_grad else 0.0
            grads[nid] = grads.get(nid, 0.0) + g
        net.zero_grad()
        return loss, acts, {k: math.sqrt(v) if math.isfinite(v) else math.inf
                            for k, v in grads.items()}

    def _blame(self, xb, yb) -> tuple[str | None, str | None, float, float]:
        """(layer, "activations" or "gradients", growth, loss) of the first layer in forward
        order whose outputs or gradients on this batch blew up: not finite, or over
        :data:`BLOWUP_RATIO` times their size under the healthy weights; and the batch's loss
        before. Leaves the healthy state in place."""
        loss, bad_acts, bad_grads = self._probe(xb, yb)
        self._restore_healthy()
        _, good_acts, good_grads = self._probe(xb, yb)
        self._restore_healthy()  # the probe's training-mode forward moved BatchNorm's stats
        worst: tuple[str | None, str | None, float] = (None, None, 0.0)
        for info in self.run_plan.layers:
            for kind, bad, good in (("activations", bad_acts, good_acts),
                                    ("gradients", bad_grads, good_grads)):
                if info.id not in bad:
                    continue
                b, g = bad[info.id], good.get(info.id, 0.0)
                growth = math.inf if not math.isfinite(b) else (b / g if g > 0 else 1.0)
                if growth > BLOWUP_RATIO:
                    return info.id, kind, growth, loss
                if growth > worst[2]:
                    worst = (info.id, kind, growth)
        return (*worst, loss)

    def _suggest_lr(self, xb, yb) -> float | None:
        """The largest of lr/10, lr/100, ... at which :data:`PROBE_STEPS` steps from the
        healthy state on this batch lower the loss; failing that, the largest at which the
        loss merely stays finite and bounded; None if none does. A rate that is only stable
        sits at the edge (tanh units saturate there and training stalls), so one that
        learns is preferred. The optimiser's state is reset; the healthy state is left in
        place."""
        lr0, net, opt = self.lr, self.network, self.optimizer
        stable = None
        for k in range(1, PROBE_DECADES + 1):
            lr = lr0 * 10.0 ** -k
            if lr <= 0:
                break
            ratio = self._probe_ratio(lr, xb, yb)
            if ratio is None:
                continue
            if ratio < 1.0:
                stable = lr
                break
            stable = stable if stable is not None else lr
        self._restore_healthy()
        opt.state = {}
        opt.lr = lr0
        net.zero_grad()
        return stable

    def _probe_ratio(self, lr: float, xb, yb) -> float | None:
        """The loss on ``(xb, yb)`` after :data:`PROBE_STEPS` steps at ``lr`` from the healthy
        state (fresh optimiser state), over its start; None if it became non-finite, went
        above 4x its start on the way or ended above 1.5x it."""
        net, opt, cfg = self.network, self.optimizer, self.config
        self._restore_healthy()
        opt.state = {}
        opt.lr = lr
        first = None
        for _ in range(PROBE_STEPS):
            net.zero_grad()
            loss = float(self.loss.forward(net.forward(xb, True), yb))
            if first is None:
                first = loss
            if not math.isfinite(loss) or loss > 4.0 * first:
                return None
            net.backward(self.loss.backward())
            if cfg["clip_grad_norm"] or cfg["clip_grad_value"]:
                self._clip(cfg["clip_grad_norm"], cfg["clip_grad_value"])
            opt.step()
        loss = float(self.loss.forward(net.forward(xb, True), yb))
        if not math.isfinite(loss) or loss > 1.5 * first:
            return None
        return loss / first if first > 0 else 0.0

    def _diverged(self, bad, t0, xb, yb) -> Report:
        """Stop as diverged: name the layer that blew up, restore the last healthy state (the
        optimiser's state starts afresh), find a rate to resume at, and report."""
        where, layer, param = bad
        step = self.step_count + 1
        if self._healthy is None:  # the first step: the weights were never updated
            self._copy_healthy(math.nan, math.nan)
        blamed, blew_up, growth, loss_now = self._blame(xb, yb)
        suggested = self._suggest_lr(xb, yb)
        healthy_step = self._healthy[0] if self._healthy is not None else self.step_count
        layer = blamed or layer
        self.divergence = Divergence(
            step, where, layer, param,
            _divergence_message(step, where, param, loss_now, self._start_loss, layer,
                                blew_up, growth, healthy_step, self.lr, suggested),
            blew_up, healthy_step, suggested, self.lr,
        )
        self.stopped = "diverged"
        self.warning = None
        if self._loss_counts_hits:
            # the loss counted this batch's hits, and resuming retries the batch: the
            # epoch's training accuracy restarts from the resume
            self._epoch_metric, self._epoch_seen = None, 0
        # Rewind the batch position so resuming retries the same batch.
        self._pos = (
            max(0, self._pos - self.batch_size)
            if self._pos
            else (self.n_train - ((self.n_train - 1) % self.batch_size + 1))
        )
        findings = self._diagnose()
        return self._report("diverged", t0, None, divergence=self.divergence,
                            findings=findings)

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta) that let training continue exactly as if it had not stopped."""
        arrays: dict[str, np.ndarray] = {}
        self._fold_epoch_loss()
        for name, value in self.network.state_dict().items():
            arrays[f"weights/{name}"] = value
        opt = self.optimizer.state_dict()
        opt_meta: dict[str, Any] = {
            "type": opt.get("type"),
            "hyper": opt.get("hyper"),
            "scalars": {},
        }
        for pname, st in opt.get("state", {}).items():
            for key, val in st.items():
                if isinstance(val, np.ndarray) or hasattr(val, "shape"):
                    arrays[f"optim/{pname}/{key}"] = to_host(val)
                else:
                    opt_meta["scalars"].setdefault(pname, {})[key] = val
        if self._perm is not None:
            arrays["perm"] = self._perm
        if self.best_state is not None:
            for name, value in self.best_state.items():
                arrays[f"best/{name}"] = value
        layer_rngs = {
            nid: {k: g.bit_generator.state for k, g in layer.random_generators().items()}
            for nid, layer in self.network.layers.items()
            if layer.random_generators()
        }
        meta = {
            "step": self.step_count,
            "epoch": self.epoch,
            "pos": self._pos,
            "rng": self._rng.bit_generator.state,
            "layer_rngs": layer_rngs,
            "optimizer": opt_meta,
            "lr": self.lr,
            "base_lr": self.base_lr,
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "epoch_loss_sum": self._epoch_loss_sum,
            "epoch_loss_n": self._epoch_loss_n,
            "epoch_metric": None
            if self._epoch_metric is None
            else to_host(self._epoch_metric).tolist(),
            "epoch_seen": self._epoch_seen,
            "epoch_losses": self.epoch_losses,
            "best_val_loss": self.best_val_loss,
            "bad_epochs": self._bad_epochs,
            "best_epoch": self.best_epoch,
            "elapsed": self.elapsed,
            "amp": self.amp.state() if self.amp else None,
        }
        return arrays, meta

    def save_checkpoint(self, path: str | Path, *, allow_nonfinite: bool = False) -> None:
        """Write weights, optimiser and schedule state, and data order to an .npz (atomic).
        Weights holding NaN or Inf are refused unless ``allow_nonfinite``."""
        import io

        from bplab.io.export import check_finite

        if not allow_nonfinite:
            check_finite(self.network.state_dict(), path)
        arrays, meta = self.checkpoint_state()
        arrays["meta"] = np.array(json.dumps(_jsonable(meta)))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` (never unpickles).

        Every entry is checked before use (:func:`bplab.io.loading.read_checkpoint`); a
        damaged or foreign checkpoint is a ConfigError naming the file.
        """
        data, meta = read_checkpoint(path)
        if "perm" in data:
            check_permutation(data["perm"], self.n_train, path)
        if meta["pos"] > self.n_train:
            raise ConfigError(f"{path}: the checkpoint's position in the epoch ({meta['pos']}) "
                              f"is past the data set's {self.n_train:,} training rows")
        try:
            self._restore_checkpoint(data, meta)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ConfigError(f"{path}: the checkpoint does not fit this project "
                              f"({type(exc).__name__}: {exc})") from None

    def _restore_checkpoint(self, data: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.network.load_state_dict(
            {k[8:]: v for k, v in data.items() if k.startswith("weights/")}
        )
        opt_meta = meta["optimizer"]
        state: dict[str, dict[str, Any]] = {}
        for k, v in data.items():
            if k.startswith("optim/"):
                pname, key = k[6:].rsplit("/", 1)
                state.setdefault(pname, {})[key] = v
        for pname, scalars in opt_meta.get("scalars", {}).items():
            state.setdefault(pname, {}).update(scalars)
        self.optimizer.load_state_dict(
            {"type": opt_meta["type"], "hyper": opt_meta["hyper"], "state": state}
        )
        if meta.get("schedule") is not None and self.schedule is not None:
            self.schedule.load_state_dict(meta["schedule"])
        self.step_count, self.epoch, self._pos = meta["step"], meta["epoch"], meta["pos"]
        self._rng.bit_generator.state = meta["rng"]
        for nid, states in meta.get("layer_rngs", {}).items():
            gens = (
                self.network.layers[nid].random_generators() if nid in self.network.layers else {}
            )
            for k, st in states.items():
                if k in gens:
                    gens[k].bit_generator.state = st
        if "perm" in data and self.config["shuffle"]:
            self._perm = data["perm"]
            self._gather_epoch()
        self.optimizer.lr = meta["lr"]
        self.base_lr = meta.get("base_lr", meta["lr"])
        self._epoch_loss_sum = meta["epoch_loss_sum"]
        self._epoch_loss_n = meta["epoch_loss_n"]
        em = meta.get("epoch_metric")
        self._epoch_metric = None if em is None else self.xp.asarray(em, dtype=self.xp.float64)
        self._epoch_seen = meta.get("epoch_seen", 0)
        self.epoch_losses = list(meta["epoch_losses"])
        self.best_val_loss = (
            meta["best_val_loss"] if meta["best_val_loss"] is not None else math.inf
        )
        self._bad_epochs = meta["bad_epochs"]
        self.elapsed = meta.get("elapsed", 0.0)
        if self.amp is not None and meta.get("amp"):
            self.amp.load_state(meta["amp"])
        best = {k[5:]: v for k, v in data.items() if k.startswith("best/")}
        self.best_state = best or None
        self.best_epoch = meta.get("best_epoch") if self.best_state is not None else None
        if self.step_count >= self.total_steps:
            self.stopped = "done"


def _rms(xp, y) -> float:
    """Root mean square of an array; inf when it is not finite (or overflows)."""
    flat = y.ravel()
    v = float(xp.vdot(flat, flat)) / max(flat.size, 1)
    return math.sqrt(v) if math.isfinite(v) else math.inf


def _divergence_message(step, where, param, loss_now, start_loss, layer, blew_up, growth,
                        healthy_step, lr, suggested) -> str:
    """The sentence a diverged run reports: what blew up, where, and how to go on."""
    if where == "gradient":
        what = f"the gradient of '{param}' holds NaN or Inf"
    elif where == "weights":
        what = f"the weights of '{param}' hold NaN or Inf"
    elif loss_now is not None and math.isfinite(loss_now) and start_loss:
        what = (f"the loss grew to {loss_now:.3g}, over {LOSS_BLOWUP:g}x its first value "
                f"{start_loss:.3g}")
    else:
        what = "the loss is NaN or Inf"
    text = f"Training diverged at step {step}: {what}."
    if layer is not None:
        size = "not finite" if not math.isfinite(growth) else f"{growth:.3g}x their healthy size"
        text += f" The {blew_up or 'values'} of '{layer}' blew up first ({size})."
    text += f" The weights were restored to step {healthy_step}, before the blow-up began; "
    if suggested is not None:
        text += f"lower the learning rate from {lr:g} to {suggested:.3g} and resume."
    else:
        text += "lower the learning rate or clip the gradients, or re-initialise."
    return text


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else (1e308 if obj > 0 else -1e308)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
