"""Training off the GUI thread: a worker object moved to a QThread, and its GUI-side session.

:class:`TrainingWorker` lives in the worker thread. It builds the :class:`~bplab.training.Trainer`
there (loading a data set can take a while), drives it step by step, checks its pause and
stop flags between steps, applies queued requests (a new learning rate, a new epoch count)
between steps, and coalesces reports into one :class:`TrainingUpdate` at most ~10 times a
second (always one at the end). At a set ``speed`` (steps per second) it paces the steps,
waiting between them on an event that a request, Pause or Stop cuts short; slow enough to
watch, every step is drawn. It computes the decision boundary of 2-D data at ~7 Hz and
asks the trainer for diagnostics every ~150 ms so the plots stay live at little cost. Every
exception is caught and emitted; ``finished`` always follows, so the GUI never stays
"training".

:class:`TrainingSession` is the GUI thread's side: it owns the thread, turns Run/Pause/
Step/Stop/Reset into jobs for the worker, and keeps the state (``idle``, ``running``,
``paused``). The worker's signals connect to its bound methods, so their slots run in the
GUI thread.
"""

from __future__ import annotations

import copy
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bplab.ui import collector
from bplab.ui.errors import ErrorInfo
from bplab.ui.training.update import MAX_SAMPLES, TrainingContext, TrainingUpdate
from PySide6.QtCore import QObject, QThread, Signal, Slot

from bplab import unitmaps
from bplab.evaluation import Evaluation, evaluate_validation, probe
from bplab.layers import has_trait
from bplab.run import RunPlan
from bplab.training import Report, Trainer

__all__ = ["BuildRequest", "Job", "RunTiming", "TrainingSession", "TrainingWorker",
           "make_context", "run_context"]

IDLE, RUNNING, PAUSED = "idle", "running", "paused"


@dataclass(frozen=True)
class BuildRequest:
    """What the worker needs to build a trainer: a deep copy of the project, and where it is."""

    project: dict
    base_dir: Path | None = None
    checkpoint: Path | None = None  # restore this checkpoint after building


@dataclass(frozen=True)
class Job:
    build: BuildRequest | None = None  # build a new trainer first
    max_steps: int | None = None  # None: until done, paused or stopped; 0: build only


@dataclass(frozen=True)
class RunTiming:
    """How long the worker's last training job took, for steps per second without idle time.

    ``seconds`` is wall-clock time from just before the first step to just after the last
    update was emitted: everything the worker did for the run (steps, diagnostics, decision
    grids, emits) and every moment it waited for the GIL. ``engine_seconds`` is the time
    spent inside ``Trainer.step`` only, which is what ``bplab train`` divides by.
    """

    steps: int
    seconds: float
    engine_seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    @property
    def engine_steps_per_second(self) -> float:
        return self.steps / self.engine_seconds if self.engine_seconds > 0 else 0.0


def run_context(ds, run: RunPlan | None = None) -> TrainingContext:
    """What the plots need to set up for ``run`` on the data set ``ds``.

    The one way a context is made: from a trainer's ``run_plan`` (:func:`make_context`), or,
    before Run is pressed, from :func:`bplab.training.describe_run` of the project, which
    gives the same description, so the plots set up then fit the trainer's reports. Without
    ``run`` (the training settings do not load) only the data's fields are filled.
    """
    is_2d = bool(ds.is_2d)
    pictured = ds.pictured  # the output is drawn over the inputs, with the data
    layers = run.parameterized if run is not None else ()
    acts = run.activations if run is not None else ()
    return TrainingContext(
        task=ds.task,
        dataset_name=ds.name,
        is_2d=is_2d,
        is_1d=bool(ds.is_1d),
        x_train=ds.x_train if pictured else None,
        y_train=ds.y_train if pictured else None,
        x_val=ds.x_val if pictured else None,
        y_val=ds.y_val if pictured else None,
        n_classes=ds.n_classes,
        bounds=tuple(tuple(map(float, b)) for b in ds.bounds) if pictured and ds.bounds else None,
        layer_names=tuple(info.id for info in layers),
        layer_types=tuple(info.type_name for info in layers),
        activation_layers=tuple(info.id for info in acts),
        activation_kinds=tuple(info.activation_kind for info in acts),
        total_steps=run.total_steps if run is not None else 0,
        steps_per_epoch=run.steps_per_epoch if run is not None else 1,
        time_layers=tuple(info.id for info in (run.layers if run is not None else ())
                          if has_trait(info.type_name, "takes_sequence")),
        sample_shape=tuple(int(n) for n in ds.x_train.shape[1:]),
        picture_shape=ds.picture_shape,
        class_names=tuple(ds.class_names) if ds.class_names else None,
        val_inputs=ds.x_val,
        input_mean=ds.mean,
        input_scale=ds.scale,
        feature_names=tuple(ds.feature_names) if ds.feature_names else None,
    )


def make_context(trainer: Trainer) -> TrainingContext:
    """What the plots need to set up, taken from a freshly built trainer."""
    return run_context(trainer.dataset, trainer.run_plan)


class TrainingWorker(QObject):
    """Drives a Trainer in the thread it lives in. Control methods are thread-safe."""

    built = Signal(object)  # TrainingContext, after a trainer was built
    updated = Signal(object)  # TrainingUpdate
    probed = Signal(object)  # bplab.evaluation.Probe, answering request_probe
    failed = Signal(object)  # ErrorInfo
    finished = Signal(str)  # why the job ended: paused, stopped, step, built, done,
    #                         early_stop, diverged, error

    # The window redraws at 10 Hz (less often while its frames are costly, and then it
    # raises this to match, read after every emit): more updates would only cost.
    emit_interval = 0.1
    boundary_interval = 0.15
    diagnostics_interval = 0.15
    boundary_resolution = 64
    # The validation set is evaluated at epoch ends, but at most once per this many times
    # its own duration (so it takes at most ~5 % of the run), and at every job's end.
    evaluation_share = 20.0
    evaluation_interval = 1.0  # and at most once a second
    # Read by the worker at each emit, set from the GUI thread: the canvas' unit maps
    # (2-D data) and a hover card's output histograms, computed at the boundary's cadence.
    unit_maps = False
    node_histograms = False

    def __init__(self) -> None:
        super().__init__()
        self.trainer: Trainer | None = None
        self._pause = False
        self._stop = False
        self.speed: float | None = None  # steps per second; None: as fast as possible
        self._wake = threading.Event()  # ends a paced wait early (a request, pause, stop)
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self.last_run: RunTiming | None = None  # written by the worker at the end of a job
        # With a window: after ``built``, wait (at most this long) until the GUI has set up
        # its plots for the new trainer (context_ready), so that work does not compete with
        # the first training steps for the GIL. 0: do not wait.
        self.context_timeout = 0.0
        self._context_ready = threading.Event()
        self._next_evaluation = 0.0  # perf_counter time from which an epoch end evaluates
        self._last_insight = -math.inf  # when unit maps / node histograms were last made

    # -- thread-safe controls (called from the GUI thread) ---------------------------------
    def request_pause(self) -> None:
        self._pause = True
        self._wake.set()

    def request_stop(self) -> None:
        self._stop = True
        self._wake.set()

    def request_lr(self, lr: float) -> None:
        """Applied before the next step (running) or the next job's first step (paused)."""
        self._requests.put(("lr", float(lr)))
        self._wake.set()

    def request_speed(self, speed: float | None) -> None:
        """Train at ``speed`` steps per second (None: as fast as possible) from the next step."""
        self._requests.put(("speed", None if not speed else float(speed)))
        self._wake.set()

    def request_epochs(self, epochs: int) -> None:
        self._requests.put(("epochs", int(epochs)))

    def request_probe(self, x: np.ndarray) -> None:
        """Run ``x`` through the network before the next step; ``probed`` answers."""
        self._requests.put(("probe", np.array(x)))
        self._wake.set()

    def prepare(self) -> None:
        """Called by the session right before it queues a job: clear flags, mark busy."""
        self._pause = self._stop = False
        self._idle.clear()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self._idle.wait(timeout)

    @property
    def is_idle(self) -> bool:
        return self._idle.is_set()

    # -- the job (runs in the worker thread) -----------------------------------------------
    @Slot(object)
    def work(self, job: Job) -> None:
        reason = "error"
        try:
            if job.build is not None:
                self.trainer = None
                self._build(job.build)
            if job.max_steps == 0:
                reason = "built"
                self._emit_snapshot()
            else:
                reason = self._train(job.max_steps)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            # A trainer that raised mid-step may hold half-updated weights: start afresh.
            self.trainer = None
            reason = "error"
            self.failed.emit(ErrorInfo.from_exception(exc, "Training failed"))
        finally:
            self._idle.set()
            self.finished.emit(reason)

    def _build(self, req: BuildRequest) -> None:
        trainer = Trainer(req.project, base_dir=req.base_dir)
        self.speed = trainer.config.get("speed")  # requests queued since then come after
        if req.checkpoint is not None:
            trainer.load_checkpoint(req.checkpoint)
        # Requests made before this trainer existed apply to the project, not to it.
        self._drain(None)
        self.trainer = trainer
        self._context_ready.clear()
        self.built.emit(make_context(trainer))
        if self.context_timeout > 0:
            self._context_ready.wait(self.context_timeout)

    def context_ready(self) -> None:
        """Called by the GUI once it has shown a new trainer's context (thread-safe)."""
        self._context_ready.set()

    def _drain(self, trainer: Trainer | None) -> None:
        while True:
            try:
                kind, value = self._requests.get_nowait()
            except queue.Empty:
                return
            if kind == "speed":
                self.speed = value
                continue
            if trainer is None:
                continue
            if kind == "lr":
                trainer.set_lr(value)
            elif kind == "epochs":
                trainer.set_epochs(value)
            elif kind == "probe":
                self.probed.emit(probe(trainer, value))

    def _train(self, max_steps: int | None) -> str:
        trainer = self.trainer
        if trainer is None:
            raise RuntimeError("no trainer: the session must build one first")
        self._drain(trainer)
        # Run after a finished run trains as long again, Step one step more; after a
        # divergence both retry from the last finite weights.
        trainer.resume(max_steps)
        pictured = trainer.dataset.pictured
        steps: list[int] = []
        losses: list[float] = []
        epochs: list[Report] = []
        diag: Report | None = None
        samples: list[Report] = []  # reports with layer/activation statistics, to plot
        latest: Report | None = None
        elapsed0 = trainer.elapsed
        now = started = time.perf_counter()
        last_emit = now
        last_boundary = now - self.boundary_interval  # the first emit carries a boundary
        # the first step reports diagnostics (-inf: now - (now - interval) may round below
        # the interval, and a single Step then showed no layer statistics)
        last_diag = -math.inf
        taken = 0
        step_time = 0.0  # running mean of one step's duration
        reason = "done"
        # The loop runs once per step (~10k times a second on small networks): keep the
        # per-step Python short, with what it needs in locals.
        requests, step, perf_counter = self._requests, trainer.step, time.perf_counter
        nan = math.nan
        emit_interval, boundary_interval = self.emit_interval, self.boundary_interval
        diag_interval = self.diagnostics_interval
        ends = ("done", "early_stop", "diverged")
        last_start = -math.inf  # when the last step began (the pace counts from there)
        while True:
            if not requests.empty():
                self._drain(trainer)
            if self._stop or self._pause or trainer.done or (
                    max_steps is not None and taken >= max_steps):
                if self._stop:
                    reason = "stopped"
                elif self._pause:
                    reason = "paused"
                elif trainer.done:
                    reason = trainer.stopped or "done"
                else:
                    reason = "step"
                break
            every_step = False
            if self.speed:
                if not self._wait_turn(last_start + 1.0 / self.speed):
                    continue  # a request, Pause or Stop came: look at it first
                # slow enough to watch: every step's update is drawn
                every_step = self.speed * self.emit_interval <= 1.0
                now = last_start = perf_counter()
                if every_step:
                    last_diag = -math.inf
            # Diagnostics at the plots' pace, but on slow networks no more often than every
            # ~8 steps, so they never cost more than a small share of the throughput.
            if now - last_diag >= diag_interval and now - last_diag >= 8.0 * step_time:
                trainer.request_diagnostics()
                last_diag = now
            t0 = perf_counter()
            report = step()
            now = perf_counter()
            step_time += 0.1 * (now - t0 - step_time)
            taken += 1
            latest = report
            steps.append(report.step)
            loss = report.train_loss
            losses.append(nan if loss is None else loss)
            if report.metrics is not None:
                epochs.append(report)
            if report.layers is not None or report.findings is not None:
                diag = report
                if (report.layers is not None or report.activations is not None
                        or report.time_grad_norms is not None):
                    samples.append(report)
            if report.event in ends:
                reason = report.event
                break
            if every_step or now - last_emit >= emit_interval:
                boundary = pictured and (every_step
                                         or now - last_boundary >= boundary_interval)
                self._emit(steps, losses, epochs, latest, diag, boundary, samples)
                steps, losses, epochs, diag, samples = [], [], [], None, []
                last_emit = perf_counter()
                emit_interval = self.emit_interval  # the window may space its frames
                if boundary:
                    last_boundary = last_emit
        if latest is not None:
            self._emit(steps, losses, epochs, latest, diag, pictured, samples, final=True)
        self.last_run = RunTiming(taken, time.perf_counter() - started,
                                  trainer.elapsed - elapsed0)
        return reason

    def _wait_turn(self, due: float) -> bool:
        """Wait until ``due`` (perf_counter seconds); False when woken before it."""
        delay = due - time.perf_counter()
        if delay <= 0:
            return True
        woken = self._wake.wait(delay)
        self._wake.clear()
        return not woken

    def _emit(self, steps, losses, epochs, latest, diag, boundary: bool,
              samples: list[Report] = (), final: bool = False) -> None:
        if len(samples) > MAX_SAMPLES:
            every = math.ceil(len(samples) / MAX_SAMPLES)
            samples = samples[::-every][::-1]  # evenly spaced, ending with the newest
        grid = bounds = None
        if boundary and self.trainer is not None:
            grid, bounds = self.trainer.decision_grid(self.boundary_resolution)
        evaluation = None
        if self.trainer is not None and (final or epochs and
                                         time.perf_counter() >= self._next_evaluation):
            evaluation = self._evaluate()
        self.updated.emit(TrainingUpdate(
            steps=np.asarray(steps, dtype=np.int64),
            losses=np.asarray(losses, dtype=np.float64),
            epoch_reports=tuple(epochs),
            latest=latest,
            diagnostics=diag,
            samples=tuple(samples),
            boundary=grid,
            boundary_bounds=bounds,
            evaluation=evaluation,
            **self._insight(boundary),
        ))

    def _evaluate(self) -> Evaluation:
        """The validation set's confusion matrix and mistakes; the next one is due after
        :attr:`evaluation_share` times as long as this one took."""
        ev = evaluate_validation(self.trainer)
        self._next_evaluation = time.perf_counter() + max(
            self.evaluation_interval, self.evaluation_share * ev.seconds)
        return ev

    def _insight(self, due: bool) -> dict:
        """Unit maps and node histograms for the update, when asked for and ``due`` (with the
        boundary; at most every ``boundary_interval`` for data without one)."""
        t = self.trainer
        if t is None or not (self.unit_maps or self.node_histograms):
            return {}
        now = time.perf_counter()
        if not due and now - self._last_insight < self.boundary_interval:
            return {}
        self._last_insight = now
        out: dict = {}
        if self.unit_maps and t.dataset.pictured and t.dataset.bounds:
            out["unit_maps"] = unitmaps.unit_maps(t.network, t.dataset.bounds)
        if self.node_histograms:
            out["node_histograms"] = unitmaps.node_histograms(t.network, t.dataset.x_train[:256])
        return out

    def _emit_snapshot(self) -> None:
        """One update describing a trainer that was just built (restored from a checkpoint)."""
        t = self.trainer
        metrics = t.evaluate() if t.step_count > 0 else None
        report = Report(event="epoch" if metrics else "step", step=t.step_count, epoch=t.epoch,
                        epoch_progress=float(t.epoch), train_loss=None, lr=t.lr,
                        steps_per_second=0.0, elapsed=t.elapsed, metrics=metrics,
                        total_steps=t.total_steps)
        self._emit([], [], [report] if metrics else [], report, None, t.dataset.pictured,
                   final=t.step_count > 0)


class TrainingSession(QObject):
    """The GUI-thread side of training: state, thread ownership, and the worker's jobs.

    ``project_source`` returns ``(project, base_dir)`` when a trainer must be built.
    """

    state_changed = Signal(str)  # idle | running | paused
    context_changed = Signal(object)  # TrainingContext of a newly built trainer
    updated = Signal(object)  # TrainingUpdate, re-emitted in the GUI thread
    failed = Signal(object)  # ErrorInfo
    diverged = Signal(str)  # the engine's message
    finished = Signal(str)  # the worker's reason
    message = Signal(str)  # for the status bar
    reset_done = Signal()
    probed = Signal(object)  # bplab.evaluation.Probe of an input given to probe()

    _job_requested = Signal(object)

    def __init__(self, project_source: Callable[[], tuple[dict, Path | None]],
                 parent: QObject | None = None):
        super().__init__(parent)
        self.project_source = project_source
        self.state = IDLE
        self.stale = True  # the next Run builds a new trainer
        self.checkpoint: Path | None = None  # restore this when building next
        self.latest: TrainingUpdate | None = None
        # Python's cyclic GC must not run on the worker: it would destroy Qt widgets there
        # (ui/collector.py explains the freeze this caused).
        collector.install()
        self.thread = QThread()
        self.thread.setObjectName("bplab-training")
        self.worker = TrainingWorker()
        self.worker.context_timeout = 1.0
        self.worker.moveToThread(self.thread)
        self._job_requested.connect(self.worker.work)
        self.worker.built.connect(self._on_worker_built)
        self.worker.updated.connect(self._on_worker_updated)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.probed.connect(self._on_worker_probed)
        self.worker.finished.connect(self._on_worker_finished)
        self.thread.start()

    # -- reading -------------------------------------------------------------------------
    @property
    def trainer(self) -> Trainer | None:
        """The trainer, or None. Only touch it while the worker is idle (see wait_idle)."""
        return self.worker.trainer

    @property
    def has_progress(self) -> bool:
        t = self.worker.trainer
        return t is not None and t.step_count > 0

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self.worker.wait_idle(timeout)

    # -- commands --------------------------------------------------------------------------
    def run(self) -> None:
        if self.state == RUNNING:
            return
        self._submit(None)

    def pause(self) -> None:
        if self.state == RUNNING:
            self.worker.request_pause()

    def toggle(self) -> None:
        if self.state == RUNNING:
            self.pause()
        else:
            self.run()

    def step(self) -> None:
        if self.state != RUNNING:
            self._submit(1)

    def stop(self) -> None:
        if self.state == RUNNING:
            self.worker.request_stop()
        elif self.state == PAUSED:
            self._set_state(IDLE)

    def reset(self) -> None:
        """Forget the trainer: the next Run starts from freshly initialised weights."""
        if self.state == RUNNING:
            self.worker.request_stop()
        self.wait_idle()
        self.worker.trainer = None
        self.checkpoint = None
        self.stale = True
        self.latest = None
        self._set_state(IDLE)
        self.reset_done.emit()
        self.message.emit("Weights reset: the next Run starts from a fresh initialisation.")

    def set_lr(self, lr: float) -> None:
        if self.worker.trainer is not None or self.state == RUNNING:
            self.worker.request_lr(lr)

    def set_epochs(self, epochs: int) -> None:
        if self.worker.trainer is not None or self.state == RUNNING:
            self.worker.request_epochs(epochs)

    def set_speed(self, speed: float | None) -> None:
        """Steps per second from the next step on (None: as fast as possible)."""
        self.worker.request_speed(speed)

    def probe(self, x: np.ndarray) -> bool:
        """Run the input ``x`` through the network; ``probed`` answers (at once when the
        worker is idle, before its next step while it trains). False without a trainer."""
        trainer = self.worker.trainer
        if trainer is None:
            return False
        if self.worker.is_idle:
            self.probed.emit(probe(trainer, x))
        else:
            self.worker.request_probe(x)
        return True

    def invalidate(self, why: str) -> None:
        """The project changed in a way the trainer cannot follow: rebuild at the next Run."""
        self.checkpoint = None
        if self.stale:
            return
        self.stale = True
        if self.worker.trainer is not None:
            self.message.emit(f"{why}: the next Run starts a fresh training.")
        if self.state == PAUSED:
            self._set_state(IDLE)

    def restore(self, checkpoint: Path) -> None:
        """Build a trainer now and load ``checkpoint`` into it (a reopened project resumes)."""
        self.checkpoint = checkpoint
        self.stale = True
        self._submit(0)

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Stop training, end the thread and wait for it (the window is closing)."""
        self.worker.request_stop()
        self.thread.quit()
        return self.thread.wait(timeout_ms)

    # -- internals -----------------------------------------------------------------------
    def _submit(self, max_steps: int | None) -> None:
        build = None
        if self.stale or self.worker.trainer is None:
            project, base_dir = self.project_source()
            build = BuildRequest(project, base_dir, self.checkpoint)
            self.stale = False
        self.worker.prepare()
        self._set_state(RUNNING)
        self._job_requested.emit(Job(build, max_steps))

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _on_worker_built(self, context: TrainingContext) -> None:
        self.checkpoint = None
        try:
            self.context_changed.emit(context)  # the plots set up their items here
        finally:
            self.worker.context_ready()

    def _on_worker_updated(self, update: TrainingUpdate) -> None:
        self.latest = update
        self.updated.emit(update)

    def _on_worker_probed(self, result) -> None:
        self.probed.emit(result)

    def _on_worker_failed(self, info: ErrorInfo) -> None:
        self.stale = True
        self.failed.emit(info)

    def _on_worker_finished(self, reason: str) -> None:
        trainer = self.worker.trainer
        if reason == "diverged":
            self._set_state(PAUSED)
            div = trainer.divergence if trainer is not None else None
            msg = div.message if div is not None else "Training diverged."
            self.message.emit(msg)
            self.diverged.emit(msg)
        elif reason in ("paused", "step"):
            self._set_state(PAUSED)
        elif reason == "built":
            self._set_state(PAUSED if self.has_progress else IDLE)
        else:
            self._set_state(IDLE)
            if reason == "done":
                self.message.emit("Training finished. Run trains as long again.")
            elif reason == "early_stop":
                self.message.emit("Early stopping: validation loss stopped improving.")
            elif reason == "stopped":
                self.message.emit("Training stopped; the weights are kept.")
            elif reason == "error":
                self.message.emit("Training stopped by an error; the next Run starts afresh.")
        self.finished.emit(reason)


def project_copy(project: dict[str, Any]) -> dict[str, Any]:
    """The project as the engine trains it: without the editor's canvas data and the recorded
    runs (their curves would be copied and checked again at every Run)."""
    out = {k: v for k, v in project.items() if k not in ("ui", "runs")}
    return copy.deepcopy(out)
