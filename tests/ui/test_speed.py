"""Speed you can watch: the worker paces its steps to the speed set, draws every step at
slow speeds, and live changes of speed and learning rate apply at the next step."""

from __future__ import annotations

import copy

import pytest
from bplab.ui.training.worker import TrainingSession
from PySide6.QtCore import QObject

from bplab.io.project import new_project

TIMEOUT = 20000


def spiral(speed=None, epochs=200) -> dict:
    p = new_project("speed")
    p["dataset"] = {"name": "xor", "samples": 200, "noise": 0.0, "val_fraction": 0.2, "seed": 0}
    p["training"]["epochs"] = epochs
    if speed is not None:
        p["training"]["speed"] = speed
    p["optimizer"] = {"type": "sgd", "lr": 0.01}
    return p


class Steps(QObject):
    """Each update's steps and the learning rate reported with its latest step."""

    def __init__(self, session: TrainingSession):
        super().__init__()
        self.updates = []
        session.updated.connect(self.on_updated)

    def on_updated(self, u):
        self.updates.append(u)


@pytest.fixture
def session(qtbot):
    made = []

    def make(project):
        s = TrainingSession(lambda: (copy.deepcopy(project), None))
        made.append(s)
        return s, Steps(s)

    yield make
    for s in made:
        assert s.shutdown()


def test_speed_set_in_the_project_paces_the_run_and_every_step_is_drawn(qtbot, session):
    s, rec = session(spiral(speed=10.0))
    with qtbot.waitSignal(s.finished, timeout=TIMEOUT):
        s.worker.prepare()
        s._set_state("running")
        s._job_requested.emit(_job(s, 8))
    timing = s.worker.last_run
    assert timing.steps == 8
    # the first step starts at once, then one every 1/10 s: 7 intervals. Paced, it is never
    # faster than set (each wait lasts to the step's due time); a generous band below for a
    # loaded machine
    rate = (timing.steps - 1) / timing.seconds
    assert 10.0 * 0.4 < rate <= 10.0 * 1.02, rate
    drawn = [int(st) for u in rec.updates for st in u.steps]
    assert drawn == list(range(1, 9))
    stepped = [u for u in rec.updates if len(u.steps)]  # (the run's end adds an empty one)
    assert len(stepped) == 8  # one update, one frame, per step
    assert all(u.boundary is not None for u in stepped)  # the boundary moves each step


def test_a_live_speed_change_applies_from_the_next_step(qtbot, session):
    s, rec = session(spiral(speed=None, epochs=2000))
    s.set_speed(5.0)
    with qtbot.waitSignal(s.updated, timeout=TIMEOUT):
        s.run()
    assert s.worker.speed == 5.0
    s.set_speed(None)  # as fast as possible: the waiting ends at once
    qtbot.waitUntil(lambda: rec.updates[-1].latest.step > 50, timeout=TIMEOUT)
    with qtbot.waitSignal(s.finished, timeout=TIMEOUT):
        s.stop()
    assert s.worker.speed is None


def test_a_live_learning_rate_change_takes_effect_at_the_next_step(qtbot, session):
    s, rec = session(spiral(speed=4.0))
    with qtbot.waitSignal(s.updated, timeout=TIMEOUT):
        s.run()
    qtbot.waitUntil(lambda: rec.updates and rec.updates[-1].latest.step >= 2, timeout=TIMEOUT)
    seen = rec.updates[-1].latest.step  # the worker now waits ~0.25 s before the next step
    s.set_lr(0.5)
    qtbot.waitUntil(lambda: rec.updates[-1].latest.step >= seen + 2, timeout=TIMEOUT)
    with qtbot.waitSignal(s.finished, timeout=TIMEOUT):
        s.stop()
    lr_at = {u.latest.step: u.latest.lr for u in rec.updates}
    assert lr_at[seen] == pytest.approx(0.01)
    assert lr_at[seen + 1] == pytest.approx(0.5)


def _job(s, steps):
    from bplab.ui.training.worker import BuildRequest, Job

    project, base = s.project_source()
    s.stale = False
    return Job(BuildRequest(project, base), steps)
