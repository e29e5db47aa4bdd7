"""The training worker on a real QThread: coalescing, control flags, errors, shutdown."""

from __future__ import annotations

import copy
import math
import threading

import numpy as np
import pytest
from bplab.ui.errors import ErrorInfo
from bplab.ui.training.worker import IDLE, PAUSED, RUNNING, TrainingSession, TrainingWorker
from PySide6.QtCore import QObject

from bplab.io.project import new_project

TIMEOUT = 20_000


def small_project(epochs: int = 5, **optimizer) -> dict:
    p = new_project("test")
    p["dataset"] = {"name": "xor", "samples": 200, "noise": 0.0, "val_fraction": 0.2, "seed": 0}
    p["training"]["epochs"] = epochs
    p["optimizer"] = {"type": "adam", "lr": 0.01, **optimizer}
    return p


class Recorder(QObject):
    """Collects the session's signals in the GUI thread (bound methods, not lambdas)."""

    def __init__(self, session: TrainingSession):
        super().__init__()
        self.updates, self.reasons, self.errors, self.contexts, self.diverged = [], [], [], [], []
        self.threads = set()
        session.updated.connect(self.on_updated)
        session.finished.connect(self.on_finished)
        session.failed.connect(self.on_failed)
        session.context_changed.connect(self.on_context)
        session.diverged.connect(self.on_diverged)

    def on_updated(self, u):
        self.threads.add(threading.get_ident())
        self.updates.append(u)

    def on_finished(self, r):
        self.reasons.append(r)

    def on_failed(self, e):
        self.errors.append(e)

    def on_context(self, c):
        self.contexts.append(c)

    def on_diverged(self, m):
        self.diverged.append(m)


@pytest.fixture
def make_session(qtbot):
    sessions = []

    def make(project: dict) -> tuple[TrainingSession, Recorder]:
        holder = {"project": project}
        session = TrainingSession(lambda: (copy.deepcopy(holder["project"]), None))
        session.holder = holder
        sessions.append(session)
        return session, Recorder(session)

    yield make
    for s in sessions:
        assert s.shutdown(), "the training thread did not finish"


def test_run_coalesces_updates_and_always_emits_the_last(qtbot, make_session):
    session, rec = make_session(small_project(epochs=30))
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT) as blocker:
        session.run()
        assert session.state == RUNNING
    assert blocker.args == ["done"]
    assert session.state == IDLE
    trainer = session.trainer
    total = trainer.total_steps
    # Every step is accounted for exactly once, in order, across far fewer updates.
    steps = [int(s) for u in rec.updates for s in u.steps]
    assert steps == list(range(1, total + 1))
    assert len(rec.updates) < total
    assert rec.updates[-1].latest.step == total
    assert rec.updates[-1].latest.event == "done"
    assert rec.updates[-1].boundary is not None  # 2-D data: the final update has the boundary
    assert rec.updates[-1].boundary.shape == (64, 64)
    epochs = [r.epoch for u in rec.updates for r in u.epoch_reports]
    assert epochs == list(range(1, 31))
    assert rec.contexts and rec.contexts[0].is_2d and rec.contexts[0].total_steps == total
    # Slots ran in the GUI thread.
    assert rec.threads == {threading.get_ident()}


def test_thousands_of_signals_from_a_real_thread(qtbot, make_session):
    """PySide6 6.12.0 aborted after a few hundred cross-thread emits; keep this working."""
    session, rec = make_session(small_project(epochs=600))  # 600 epochs x 5 batches
    session.worker.emit_interval = 0.0  # one update per step
    session.worker.boundary_interval = 1e9
    session.worker.diagnostics_interval = 1e9
    with qtbot.waitSignal(session.finished, timeout=60_000):
        session.run()
    assert len(rec.updates) >= 3000
    assert sum(len(u.steps) for u in rec.updates) == session.trainer.total_steps
    # Another run on the same trainer adds as many again (Run after a finished run).
    with qtbot.waitSignal(session.finished, timeout=60_000):
        session.run()
    assert sum(len(u.steps) for u in rec.updates) == 2 * 3000
    assert len(rec.updates) >= 6000


def test_pause_step_resume_stop(qtbot, make_session):
    session, rec = make_session(small_project(epochs=100_000))
    session.run()
    qtbot.waitUntil(lambda: len(rec.updates) >= 3, timeout=TIMEOUT)
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT) as blocker:
        session.pause()
    assert blocker.args == ["paused"] and session.state == PAUSED
    at = session.trainer.step_count
    assert rec.updates[-1].latest.step == at  # the final update reaches the pause point
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT) as blocker:
        session.step()
    assert blocker.args == ["step"] and session.state == PAUSED
    assert session.trainer.step_count == at + 1
    n = len(rec.updates)
    session.run()
    qtbot.waitUntil(lambda: len(rec.updates) >= n + 3, timeout=TIMEOUT)
    assert rec.updates[n].steps[0] == at + 2  # resumed, not restarted
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT) as blocker:
        session.stop()
    assert blocker.args == ["stopped"] and session.state == IDLE
    assert session.trainer is not None  # the weights are kept


def test_learning_rate_change_while_paused_applies_at_the_next_step(qtbot, make_session):
    session, rec = make_session(small_project(epochs=100_000))
    session.run()
    qtbot.waitUntil(lambda: len(rec.updates) >= 2, timeout=TIMEOUT)
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT):
        session.pause()
    at = session.trainer.step_count
    session.set_lr(0.0025)
    assert session.trainer.lr == pytest.approx(0.01)  # nothing changes until the next step
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT):
        session.step()
    assert session.trainer.lr == pytest.approx(0.0025)
    assert rec.updates[-1].latest.lr == pytest.approx(0.0025)
    assert session.trainer.step_count == at + 1
    # And while running: the next steps use it.
    session.run()
    qtbot.waitUntil(lambda: rec.updates[-1].latest.step > at + 5, timeout=TIMEOUT)
    session.set_lr(0.5)
    qtbot.waitUntil(lambda: rec.updates[-1].latest.lr == pytest.approx(0.5), timeout=TIMEOUT)
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT):
        session.stop()


def test_divergence_pauses_with_the_engine_message_and_resumes_after_lowering_lr(
        qtbot, make_session):
    project = small_project(epochs=20)
    project["dataset"] = {"name": "plane", "samples": 200, "val_fraction": 0.2, "seed": 0}
    project["network"]["nodes"] = [{"id": "in", "type": "Input", "shape": [2]},
                                   {"id": "fc1", "type": "Dense", "units": 8},
                                   {"id": "act1", "type": "ReLU"},
                                   {"id": "out", "type": "Dense", "units": 1}]
    project["loss"] = {"type": "mse"}
    project["optimizer"] = {"type": "sgd", "lr": 1e6}
    session, rec = make_session(project)
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT) as blocker:
        session.run()
    assert blocker.args == ["diverged"]
    assert session.state == PAUSED
    assert rec.diverged and "diverged" in rec.diverged[0].lower()
    trainer = session.trainer
    at = trainer.step_count
    assert trainer.divergence is not None
    assert all(np.isfinite(v).all() for v in trainer.network.state_dict().values())
    session.set_lr(1e-9)
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT) as blocker:
        session.run()
    # The same trainer (not rebuilt) retried from the kept weights with the new rate. (Here
    # the kept weights are already huge, so it may diverge again at once: that is the
    # engine's call; the app's part is to resume the same run with the new rate.)
    assert session.trainer is trainer and len(rec.contexts) == 1
    assert trainer.lr == pytest.approx(1e-9)
    assert trainer.step_count >= at
    assert blocker.args[0] in ("done", "diverged")


def test_an_exception_in_the_worker_is_shown_and_training_returns_to_idle(qtbot, make_session):
    session, rec = make_session(small_project(epochs=100))
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT):
        session.step()  # builds the trainer

    def boom():
        raise ValueError("the step exploded")

    session.trainer.step = boom
    with qtbot.waitSignal(session.failed, timeout=TIMEOUT) as blocker:
        session.run()
    qtbot.waitUntil(lambda: rec.reasons[-1:] == ["error"], timeout=TIMEOUT)
    info = blocker.args[0]
    assert isinstance(info, ErrorInfo)
    assert "the step exploded" in info.text
    assert "ValueError" in info.details and "Traceback" in info.details
    assert info.remedy
    assert session.state == IDLE
    assert session.stale  # the next Run rebuilds
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT) as blocker:
        session.step()
    assert blocker.args == ["step"]


def test_a_bad_project_fails_with_the_engine_sentence(qtbot, make_session):
    project = small_project()
    project["network"]["nodes"][0]["shape"] = [3]  # the data has 2 features
    session, _ = make_session(project)
    with qtbot.waitSignal(session.failed, timeout=TIMEOUT) as blocker:
        session.run()
    qtbot.waitUntil(lambda: session.state == IDLE, timeout=TIMEOUT)
    assert "Input" in blocker.args[0].text and "[2]" in blocker.args[0].text


def test_shutdown_while_training_joins_the_thread(qtbot):
    session = TrainingSession(lambda: (small_project(epochs=100_000), None))
    rec = Recorder(session)
    session.run()
    qtbot.waitUntil(lambda: len(rec.updates) >= 2, timeout=TIMEOUT)
    assert session.thread.isRunning()
    assert session.shutdown(10_000)
    assert session.thread.isFinished()
    assert session.worker.is_idle


def test_invalidate_rebuilds_at_the_next_run(qtbot, make_session):
    session, rec = make_session(small_project(epochs=2))
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT):
        session.run()
    first = session.trainer
    messages = []
    session.message.connect(messages.append)
    session.holder["project"] = small_project(epochs=3)
    session.invalidate("The network changed")
    assert messages and "fresh" in messages[-1]
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT):
        session.run()
    assert session.trainer is not first
    assert session.trainer.total_steps == 3 * first.steps_per_epoch
    assert len(rec.contexts) == 2


def test_worker_control_methods_are_plain_flags():
    w = TrainingWorker()
    w.prepare()
    assert not w.is_idle
    w.request_pause()
    w.request_stop()
    assert w._pause and w._stop
    w.prepare()
    assert not (w._pause or w._stop)


@pytest.mark.parametrize("every", [3, 50])
def test_updates_carry_every_diagnostic_sample_evenly_thinned(every):
    from bplab.ui.training.update import MAX_SAMPLES
    from bplab.ui.training.worker import BuildRequest, Job

    p = small_project(epochs=60)
    p["training"]["diagnostics_every"] = every
    w = TrainingWorker()
    w.emit_interval = 1e9  # one update at the end carries the whole run
    w.diagnostics_interval = 1e9
    updates = []
    w.updated.connect(updates.append)
    w.prepare()
    w.work(Job(BuildRequest(copy.deepcopy(p)), None))
    (upd,) = updates
    steps = [r.step for r in upd.samples]
    total = w.trainer.step_count
    # the worker asks for one at the first step; the project every `every` steps
    taken = sorted({1, *range(every, total + 1, every)})
    k = math.ceil(len(taken) / MAX_SAMPLES)
    assert steps == taken[::-k][::-1]  # evenly thinned, the newest kept
    assert len(steps) <= MAX_SAMPLES and (k > 1 or len(steps) == len(taken))
    assert all(r.layers for r in upd.samples)
    assert upd.diagnostics is not None and upd.diagnostics.step >= steps[-1]


def test_worker_waits_for_the_gui_to_set_up_a_new_context_before_training():
    import time

    from bplab.ui.training.worker import BuildRequest, Job

    class Ack(QObject):
        def __init__(self, worker):
            super().__init__()
            self.worker = worker

        def on_built(self, _ctx):
            self.worker.context_ready()

    def build_time(ack: bool) -> float:
        w = TrainingWorker()
        w.context_timeout = 0.4
        receiver = Ack(w)
        if ack:
            w.built.connect(receiver.on_built)
        w.prepare()
        t0 = time.perf_counter()
        w.work(Job(BuildRequest(copy.deepcopy(small_project(1))), 0))
        return time.perf_counter() - t0

    assert build_time(ack=False) >= 0.4  # nobody acknowledged: it waited out the timeout
    assert build_time(ack=True) < 0.4


def test_run_after_a_finished_run_trains_as_long_again_and_step_one_more():
    from bplab.ui.training.worker import BuildRequest, Job

    w = TrainingWorker()
    reasons, contexts = [], []
    w.finished.connect(reasons.append)
    w.built.connect(contexts.append)
    w.prepare()
    w.work(Job(BuildRequest(copy.deepcopy(small_project(epochs=2))), None))
    t = w.trainer
    run = t.run_plan.total_steps
    assert reasons == ["done"] and t.step_count == run
    assert (contexts[0].total_steps, contexts[0].steps_per_epoch) == (run, t.steps_per_epoch)
    w.prepare()
    w.work(Job(None, None))  # Run: as long again
    assert reasons[-1] == "done" and t.step_count == t.total_steps == 2 * run
    w.prepare()
    w.work(Job(None, 1))  # Step: one more
    assert t.step_count == 2 * run + 1 and t.stopped == "done"
    w.request_epochs(5)  # applied through Trainer.set_epochs before the next job's steps
    w.prepare()
    w.work(Job(None, None))
    assert t.step_count == t.total_steps == 5 * t.steps_per_epoch
    assert t.run_plan.total_steps == run, "the configured run is the one described at build"
