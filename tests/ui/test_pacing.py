"""What keeps the GUI thread's share of a run small: frame pacing, plots prepared before Run,
the x axis of short runs, and status labels that do not re-lay out the window."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from bplab.ui.frames import FrameClock
from bplab.ui.main_window import MainWindow, demo_path, list_examples
from bplab.ui.plots import LossPlot
from bplab.ui.training.update import TrainingUpdate
from bplab.ui.training.worker import make_context, run_context
from PySide6.QtCore import QSettings, QTimer

from bplab.graph.plan import analyze
from bplab.io.project import load_project
from bplab.training import Report, Trainer, describe_run


@pytest.fixture
def window(qtbot, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "settings"))
    w = MainWindow()
    w.ask_save_changes = lambda: pytest.fail("unexpected save prompt")
    assert w.open_path(demo_path(), as_copy=True)
    w.show()
    yield w
    w.automation = True
    w.close()
    w.deleteLater()


def frame_gaps(qtbot, clock: FrameClock, cost: float, frames: int = 5) -> list[float]:
    """Seconds between ``frames`` frames whose drawing costs ``cost`` seconds each."""
    times: list[float] = []

    def on_frame():
        times.append(time.perf_counter())
        clock.add_cost(cost)  # as a paint after the frame's slot would

    clock.frame.connect(on_frame)
    clock.start()
    qtbot.waitUntil(lambda: len(times) >= frames, timeout=10_000)
    clock.stop()
    clock.frame.disconnect(on_frame)
    return [b - a for a, b in itertools.pairwise(times)]


def test_costly_frames_are_spaced_to_keep_drawing_to_its_share(qtbot):
    clock = FrameClock(interval_ms=20, max_interval_ms=400, share=0.1)
    clock.adaptive = True
    gaps = frame_gaps(qtbot, clock, cost=0.015)  # 15 ms a frame: one every 150 ms
    assert clock.gap == pytest.approx(0.15, abs=0.01)
    assert min(gaps) >= 0.14
    # Very costly frames still come at max_interval_ms.
    gaps = frame_gaps(qtbot, clock, cost=1.0, frames=3)
    assert clock.gap == pytest.approx(0.4)
    assert max(gaps) < 0.6


def test_work_between_frames_counts_as_the_frames(qtbot):
    """Updates arriving between frames hold the GIL as drawing does: a GUI thread busy 6 ms
    every 20 ms outside the frames (whose own drawing is cheap) spaces them too."""
    clock = FrameClock(interval_ms=20, max_interval_ms=400, share=0.1)
    clock.adaptive = True
    busy = QTimer()
    busy.setInterval(20)

    def spin():  # CPU time on the GUI thread, as handling an update takes
        t = time.thread_time()
        while time.thread_time() - t < 0.006:
            pass

    busy.timeout.connect(spin)
    busy.start()
    try:
        frame_gaps(qtbot, clock, cost=0.0005, frames=6)
    finally:
        busy.stop()
    assert clock.period_cpu > 0.004  # what the thread ran over the last period
    expected = min(clock.max_interval, clock.period_cpu / clock.share)
    assert clock.gap == pytest.approx(expected) and clock.gap > 0.04  # not the 20 ms base


def test_cheap_frames_or_an_idle_window_keep_the_base_rate(qtbot):
    clock = FrameClock(interval_ms=20, max_interval_ms=400, share=0.1)
    clock.adaptive = True
    gaps = frame_gaps(qtbot, clock, cost=0.0005)  # 5 ms at 10 %: below the interval
    assert clock.gap == pytest.approx(0.02)
    assert np.median(gaps) < 0.1
    clock.adaptive = False  # not training: frames cost nothing that matters
    gaps = frame_gaps(qtbot, clock, cost=0.015)
    assert clock.gap == pytest.approx(0.02)
    assert np.median(gaps) < 0.1


def test_the_window_paces_frames_only_while_training_and_counts_paints(qtbot, window):
    clock = window.frame_clock
    assert not clock.adaptive
    window.session.run()
    assert clock.adaptive
    loss = window.plots["loss"]
    before = clock.cost
    loss.painted.emit(0.5)  # a paint of a plot counts against the current frame
    assert clock.cost == pytest.approx(before + 0.5)
    assert clock.gap == pytest.approx(clock.max_interval)
    with qtbot.waitSignal(window.session.finished, timeout=60_000):
        pass
    assert not clock.adaptive


@pytest.mark.parametrize("path", [p for _, p in list_examples()], ids=lambda p: p.name)
def test_the_context_known_before_run_is_the_trainers(path):
    project = load_project(path)
    trainer = Trainer(project, base_dir=path.parent)
    real = make_context(trainer)
    # what the window asks before Run: the engine's description of the run
    described = run_context(trainer.dataset, describe_run(project, trainer.dataset,
                                                          plan=analyze(project["network"])))
    for field in ("layer_names", "layer_types", "activation_layers", "activation_kinds",
                  "bounds", "total_steps", "steps_per_epoch", "task", "is_2d", "is_1d",
                  "n_classes", "time_layers"):
        assert getattr(described, field) == getattr(real, field), field


def test_plots_are_set_up_before_run_and_kept_when_it_starts(qtbot, window):
    norms, acts, boundary = (window.plots[k] for k in ("gradient_norms", "activations",
                                                       "boundary"))
    qtbot.waitUntil(lambda: len(norms.curves) > 0, timeout=5_000)
    assert norms.names == ["fc1", "fc2", "out"]
    assert norms.waiting.isVisibleTo(norms)  # still says "Press Run"
    assert not boundary.waiting.isVisibleTo(boundary)  # the data are shown
    assert acts.kinds == {"act1": "tanh", "act2": "tanh"}  # legend labelled already
    curves, points = list(norms.curves), boundary._points_of
    with qtbot.waitSignal(window.session.context_changed, timeout=30_000):
        window.session.run()
    window._flush_pending_contexts()
    assert norms.curves == curves  # the same items: Run only cleared their histories
    assert boundary._points_of is points
    assert not norms.waiting.isVisibleTo(norms)
    with qtbot.waitSignal(window.session.finished, timeout=60_000):
        pass


def fake_update(step: int, spe: int, total: int) -> TrainingUpdate:
    steps = np.arange(1, step + 1)
    latest = Report("step", step, step // spe, step / spe, 0.5, 0.01, 0.0, 0.1,
                    total_steps=total)
    return TrainingUpdate(steps=steps, losses=np.full(step, 0.5), epoch_reports=(),
                          latest=latest)


@pytest.mark.parametrize("rate, whole_run", [(10_000.0, True), (100.0, False)])
def test_a_short_run_gets_its_whole_x_range_at_once(qtbot, window, rate, whole_run):
    ctx = make_context(Trainer(load_project(demo_path())))  # 3900 steps, 13 per epoch
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_context(ctx)
    plot.add_update(fake_update(1000, ctx.steps_per_epoch, ctx.total_steps))
    plot.note_progress(1000, ctx.total_steps, rate)  # 0.29 s or 29 s left
    plot.refresh()
    anchor, _ = plot._anchors[id(plot.plot)]  # the invisible curve the auto-range follows
    x_hi = float(anchor.getData()[0].max())
    epochs = ctx.total_steps / ctx.steps_per_epoch
    assert (x_hi >= epochs) == whole_run
    assert x_hi >= 1000 / ctx.steps_per_epoch


def test_a_run_that_ends_early_gives_its_x_range_back_to_the_data(qtbot, window):
    """A prepared short run spans all its steps; when it diverges (or is stopped) at step
    100 of 3900, the x axis follows the data again instead of leaving it a sliver at the
    left edge."""
    ctx = make_context(Trainer(load_project(demo_path())))
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.prepare(ctx)
    plot.set_context(ctx)
    plot.add_update(fake_update(100, ctx.steps_per_epoch, ctx.total_steps))
    plot.note_progress(100, ctx.total_steps, 10_000.0)
    plot.refresh()
    anchor, _ = plot._anchors[id(plot.plot)]
    epochs = ctx.total_steps / ctx.steps_per_epoch
    assert float(anchor.getData()[0].max()) >= epochs
    plot.end_run_early()
    plot.refresh()
    x_hi = float(anchor.getData()[0].max())
    assert 100 / ctx.steps_per_epoch <= x_hi < epochs / 10


def test_status_labels_keep_their_size_as_numbers_grow(qtbot, window):
    labels = (window.status_step, window.status_speed, window.status_epoch)
    sizes = [label.size() for label in labels]
    window.status_step.setText("step 12,345,678")
    window.status_speed.setText("123,456 steps/s")
    window.status_epoch.setText("epoch 123,456")
    qtbot.wait(20)
    assert [label.size() for label in labels] == sizes
    for label in labels:  # and the text still fits
        assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()


def test_a_prepared_loss_plot_already_spans_the_run_and_keeps_it_when_run_starts(qtbot):
    ctx = make_context(Trainer(load_project(demo_path())))
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.prepare(ctx)
    anchor, _ = plot._anchors[id(plot.plot)]
    epochs = ctx.total_steps / ctx.steps_per_epoch
    x_before = anchor.getData()[0].copy()
    assert x_before.max() >= epochs
    assert plot.waiting.isVisibleTo(plot)
    plot.set_context(ctx)  # Run: the trainer reports the same context
    np.testing.assert_array_equal(anchor.getData()[0], x_before)  # no range change between
    plot.add_update(fake_update(1000, ctx.steps_per_epoch, ctx.total_steps))
    plot.note_progress(1000, ctx.total_steps, 10_000.0)
    plot.refresh()
    # The first frame of a short run keeps the x range (its axis is not re-rendered).
    np.testing.assert_array_equal(anchor.getData()[0], x_before)


def loss_x_end(window) -> float:
    loss = window.plots["loss"]
    anchor, _ = loss._anchors.get(id(loss.plot), (None, None))
    x = anchor.getData()[0] if anchor is not None else None
    return float(x.max()) if x is not None and len(x) else 0.0


def test_an_edit_before_run_prepares_again_and_one_after_a_run_leaves_it_shown(qtbot, window):
    qtbot.waitUntil(lambda: loss_x_end(window) >= 300, timeout=5_000)  # the demo: 300 epochs
    window.doc.set_value("training.epochs", 40)
    qtbot.waitUntil(lambda: 40 <= loss_x_end(window) < 300, timeout=5_000)
    with qtbot.waitSignal(window.session.finished, timeout=60_000):
        window.session.run()
    window._on_frame_timer_timeout()
    shown = window.plots["loss"].data()["train_loss_step"][0].size
    assert shown > 0
    window.doc.set_value("training.batch_size", 16)  # the next Run starts afresh
    assert window.session.stale
    qtbot.wait(400)  # past the prepare timer
    assert window.plots["loss"].data()["train_loss_step"][0].size == shown
    assert window.plots["boundary"].grid is not None  # the run's last boundary stays
    assert window.status_progress.value() == window.status_progress.maximum()


def test_the_window_releases_the_planned_range_when_a_run_ends_early(qtbot, window):
    plots = list(window.plots.values())
    for plot in plots:
        plot.run_end_step = 3900
    window.session.finished.emit("paused")  # a pause keeps it: Resume goes on
    assert all(plot.run_end_step == 3900 for plot in plots)
    window.session.finished.emit("diverged")
    assert all(plot.run_end_step is None for plot in plots)
