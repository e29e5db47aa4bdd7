"""Live plots: data reaches the items, log scales, bounded history, heatmaps, boundary, export.

The runs are real: a few hundred bplab Trainer steps, coalesced into TrainingUpdates the way
the worker sends them.
"""

from __future__ import annotations

import copy
import csv
import itertools
import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from bplab.ui.plots import (
    ActivationPlot,
    DecisionBoundaryView,
    GradientFlowBar,
    GradientNormPlot,
    HistogramView,
    History,
    LossPlot,
    MetricPlot,
    UpdateRatioPlot,
)
from bplab.ui.plots.base import MAX_POINTS, RunOverlay, nice_ceil, thin_rows
from bplab.ui.plots.gradients import LEGEND_ROWS, legend_layers
from bplab.ui.plots.history import rebin
from bplab.ui.plots.theme import depth_colors
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from bplab.ui.training.worker import make_context
from PySide6.QtCore import QEvent, QObject, QPointF, QThread, Signal
from PySide6.QtGui import QColor, QImage, QPalette

from bplab.diagnostics import ActivationStats, LayerStats, histogram
from bplab.io.project import new_project
from bplab.training import Report, Trainer


# -- a real run, coalesced like the worker does ------------------------------------------------
# (the context is the worker's own: make_context)
def run_updates(trainer: Trainer, chunk: int = 7, resolution: int = 24):
    """(context, updates, reports): every ``chunk`` steps one update, as the worker emits."""
    ctx = make_context(trainer)
    updates, reports = [], []
    batch: list[Report] = []

    def emit():
        diag = next((r for r in reversed(batch) if r.layers is not None), None)
        grid = bounds = None
        if ctx.is_2d:
            grid, bounds = trainer.decision_grid(resolution)
        updates.append(TrainingUpdate(
            steps=np.array([r.step for r in batch], np.int64),
            losses=np.array([np.nan if r.train_loss is None else r.train_loss for r in batch]),
            epoch_reports=tuple(r for r in batch if r.metrics is not None), latest=batch[-1],
            diagnostics=diag, boundary=grid, boundary_bounds=bounds))
        batch.clear()

    for r in trainer.run():
        reports.append(r)
        batch.append(r)
        if len(batch) == chunk:
            emit()
    if batch:
        emit()
    return ctx, updates, reports


def spiral_project(hidden="Tanh", epochs=6, diag_every=3, samples=300):
    p = new_project()
    p["dataset"]["samples"] = samples
    for node in p["network"]["nodes"]:
        if node["type"] == "Tanh":
            node["type"] = hidden
    p["training"].update(epochs=epochs, diagnostics_every=diag_every)
    return p


@pytest.fixture(scope="module")
def spiral_run():
    return run_updates(Trainer(spiral_project()))


@pytest.fixture(scope="module")
def relu_run():
    return run_updates(Trainer(spiral_project("ReLU", epochs=3)))


def feed(widget, ctx, updates):
    widget.set_context(ctx)
    for u in updates:
        widget.add_update(u)
    widget.refresh()


def original(item):
    x, y = item.getOriginalDataset()
    if x is None:  # pyqtgraph keeps no dataset for empty data
        return np.zeros(0), np.zeros(0)
    return np.asarray(x), np.asarray(y)


# -- display thinning and still axes ---------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 10, 1500, 1501, 4097, 100_000])
@pytest.mark.parametrize("lo", [0, 3, 777])
def test_thin_rows_is_bounded_evenly_spaced_and_keeps_the_last_row(n, lo):
    a = np.column_stack([np.arange(n, dtype=float), np.arange(n, dtype=float) ** 2])
    lo = min(lo, n)
    rows = thin_rows(a, 1500, lo=lo)
    assert len(rows) <= 1501
    if n - lo == 0:
        assert len(rows) == 0
        return
    assert rows[-1, 0] == n - 1
    assert len(rows) >= min(n - lo, 750)
    idx = rows[:, 0].astype(int)
    np.testing.assert_array_equal(rows[:, 1], idx.astype(float) ** 2)  # whole rows
    gaps = np.diff(idx)[:-1]
    if len(gaps):
        assert np.all(gaps == gaps[0]) and (gaps[0] & (gaps[0] - 1)) == 0  # power-of-two stride
        assert np.all(idx[:-1] % gaps[0] == 0)  # aligned to row 0: stable from frame to frame
    rows[0, 1] = -1.0
    assert a[idx[0], 1] != -1.0 or idx[0] == 1  # a copy, never a view of the history


def test_thin_rows_shows_the_same_rows_while_the_history_grows():
    a = np.arange(40_000, dtype=float)[:, None]
    before = set(thin_rows(a[:30_000])[:-1, 0])
    after = set(thin_rows(a[:31_000])[:-1, 0])
    assert len(before & after) >= 0.95 * len(before)


@pytest.mark.parametrize("v, expected", [(1.0, 1.0), (1.01, 1.25), (7.0, 8.0), (8.5, 10.0),
                                         (0.034, 0.04), (1234.0, 1250.0), (2e-7, 2e-7)])
def test_nice_ceil(v, expected):
    assert nice_ceil(v) == pytest.approx(expected)
    assert nice_ceil(v) >= v * (1 - 1e-12)


def test_growing_loss_curve_keeps_its_axes_still(qtbot):
    """Axes are re-rendered only when the range changes: it must not change at every frame."""
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), (), "spiral", False,
                          steps_per_epoch=10, total_steps=50_000)
    w = LossPlot()
    qtbot.addWidget(w)
    w.resize(600, 300)
    w.show()
    w.set_context(ctx)
    vb = w.plot.getViewBox()
    ranges = []
    rng = np.random.default_rng(0)
    for start in range(0, 40_000, 200):
        steps = np.arange(start + 1, start + 201, dtype=np.int64)
        losses = 0.7 * np.exp(-steps / 8000) + 0.05 * rng.random(200)
        w.add_update(TrainingUpdate(steps, losses, (), Report(
            "step", int(steps[-1]), 0, 0.0, float(losses[-1]), 0.01, 1.0, 1.0)))
        w.refresh()
        vb.prepareForPaint()  # what a paint does: apply the auto-range
        ranges.append(tuple(map(tuple, vb.viewRange())))
    changes = sum(a != b for a, b in itertools.pairwise(ranges))
    assert changes <= 25  # ~ one per "nice" x bound crossed, not one per frame (199)
    (x0, x1), (y0, y1) = ranges[-1]
    assert x0 <= 0.1 and 4000 <= x1 <= 4000 * 1.3  # all the data, little wasted room
    assert y0 <= 0.0 and 0.75 <= y1 <= 1.1
    assert len(original(w.step_curve)[0]) <= MAX_POINTS + 1


def test_zoomed_loss_plot_draws_the_visible_range_at_full_resolution(qtbot):
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), (), "spiral", False,
                          steps_per_epoch=1, total_steps=100_000)
    w = LossPlot()
    qtbot.addWidget(w)
    w.set_context(ctx)
    steps = np.arange(1, 60_001, dtype=np.int64)
    w.add_update(TrainingUpdate(steps, np.sin(steps / 100.0) + 2.0, (), Report(
        "step", 60_000, 0, 0.0, 1.0, 0.01, 1.0, 1.0)))
    w.refresh()
    x, _ = original(w.step_curve)
    assert np.diff(x)[0] > 1  # thinned over the whole run
    w.plot.setXRange(1000, 1500, padding=0)  # the user zooms in: auto-range is off now
    w.refresh()
    x, y = original(w.step_curve)
    assert x[0] <= 1000 and x[-1] >= 1500 and len(x) < 600
    np.testing.assert_array_equal(np.diff(x), 1.0)  # every step in view
    np.testing.assert_allclose(y, np.sin(x / 100.0) + 2.0)
    w.plot.enableAutoRange()  # "A": back to the whole run
    w.refresh()
    assert original(w.step_curve)[0][-1] == 60_000


def test_epoch_markers_only_while_few(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = LossPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    n = len(original(w.val_curve)[0])
    assert (w.val_curve.opts["symbol"] is not None) == (n <= 60)


# -- History -----------------------------------------------------------------------------------
@pytest.mark.parametrize("capacity", [4, 5, 16, 101])
@pytest.mark.parametrize("chunks", [[1] * 300, [3, 7, 64, 1, 250, 9], [1000]])
def test_history_keeps_a_uniform_bounded_subsample(capacity, chunks):
    h = History(2, capacity)
    start = 0
    for c in chunks:
        x = np.arange(start, start + c, dtype=float)
        h.append(np.column_stack([x, -x]))
        start += c
    expect = np.arange(0, start, h.stride, dtype=float)
    assert len(h) <= capacity
    np.testing.assert_array_equal(h.column(0), expect)
    np.testing.assert_array_equal(h.column(1), -expect)
    assert len(h) >= capacity // 2 or h.stride == 1


def test_rebin_conserves_mass_and_moves_it_to_the_right_bins(rng):
    counts = rng.integers(0, 50, 16).astype(float)
    edges = np.linspace(-1, 1, 17)
    wide = rebin(counts, edges, np.linspace(-2, 2, 33))
    assert wide.sum() == pytest.approx(counts.sum())
    np.testing.assert_allclose(wide[8:24], counts)  # the old range is the middle half
    assert not wide[:8].any() and not wide[24:].any()
    coarse = rebin(counts, edges, np.linspace(-1, 1, 9))
    np.testing.assert_allclose(coarse, counts.reshape(8, 2).sum(axis=1))
    mat = rebin(np.stack([counts, 2 * counts]), edges, np.linspace(-1, 1, 9))
    np.testing.assert_allclose(mat[1], 2 * coarse)


# -- loss and metrics --------------------------------------------------------------------------
def test_loss_plot_items_hold_the_sent_losses(qtbot, spiral_run):
    ctx, updates, reports = spiral_run
    w = LossPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    steps = np.concatenate([u.steps for u in updates])
    losses = np.concatenate([u.losses for u in updates])
    x, y = original(w.step_curve)
    np.testing.assert_allclose(x, steps / ctx.steps_per_epoch)
    np.testing.assert_allclose(y, losses)
    epochs = [r for r in reports if r.metrics is not None]
    x, y = original(w.epoch_curve)
    np.testing.assert_allclose(x, [r.epoch_progress for r in epochs])
    np.testing.assert_allclose(y, [r.metrics["train_loss"] for r in epochs])
    x, y = original(w.val_curve)
    np.testing.assert_allclose(y, [r.metrics["val_loss"] for r in epochs])
    assert x[-1] == pytest.approx(ctx.total_steps / ctx.steps_per_epoch)
    # Small data is neither clipped nor downsampled: the displayed data is what was sent.
    np.testing.assert_allclose(w.val_curve.getData()[1], y)
    assert w.data()["val_loss"][1].tolist() == y.tolist()
    assert f"{epochs[-1].metrics['val_loss']:.4g}" in w.summary.text()


def test_loss_plot_log_toggle_maps_the_displayed_data(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = LossPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    sent = original(w.val_curve)[1]
    assert not w.log_scale
    w.log_check.setChecked(True)
    assert w.plot.getAxis("left").logMode
    np.testing.assert_allclose(w.val_curve.getData()[1], np.log10(sent))
    np.testing.assert_allclose(original(w.val_curve)[1], sent)  # the data itself is unchanged
    w.set_log_scale(False)
    np.testing.assert_allclose(w.val_curve.getData()[1], sent)
    assert w.log_check.toolTip()


def test_refresh_is_idempotent_and_skips_unchanged_data(qtbot, spiral_run, monkeypatch):
    ctx, updates, _ = spiral_run
    w = LossPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates[:3])
    calls = []
    monkeypatch.setattr(w.step_curve, "setData", lambda *a, **k: calls.append(a))
    w.refresh()
    assert calls == []
    w.add_update(updates[3])
    w.refresh()
    w.refresh()
    assert len(calls) == 1


def test_reset_and_new_context_clear_history(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = LossPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    w.reset()
    w.refresh()
    assert len(original(w.step_curve)[0]) == 0
    feed(w, ctx, updates[:2])
    assert len(original(w.step_curve)[0]) == sum(len(u.steps) for u in updates[:2])


def test_loss_history_stays_bounded_over_200k_steps(qtbot):
    spe = 100
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), (), "spiral", False,
                          steps_per_epoch=spe, total_steps=200_000)
    w = LossPlot()
    qtbot.addWidget(w)
    w.set_context(ctx)
    rng = np.random.default_rng(0)
    per_update = 250
    for start in range(0, 200_000, per_update):
        steps = np.arange(start + 1, start + per_update + 1, dtype=np.int64)
        losses = np.exp(-steps / 50_000) + 0.05 * rng.random(per_update)
        epoch = Report("epoch", int(steps[-1]), int(steps[-1]) // spe, steps[-1] / spe,
                       float(losses[-1]), 0.01, 1000.0, 1.0,
                       {"train_loss": float(losses.mean()), "val_loss": float(losses.mean())})
        w.add_update(TrainingUpdate(steps, losses, (epoch,), epoch))
        if start % 20_000 == 0:
            w.refresh()
    w.refresh()
    x, _ = w.data()["train_loss_step"]  # the history: bounded, uniform, start and end kept
    assert 50_000 <= len(x) <= 100_000
    assert np.all(np.diff(x) > 0)
    assert x[0] == pytest.approx(1 / spe)  # the start of training is still there
    assert x[-1] >= 1999  # and the end
    np.testing.assert_allclose(np.diff(x), np.diff(x)[0])  # uniform resolution
    assert len(w.data()["val_loss"][0]) == 800  # one point per update's epoch report
    # What is drawn: at most MAX_POINTS rows of that history, evenly spaced, both ends.
    shown, _ = original(w.step_curve)
    assert MAX_POINTS // 2 <= len(shown) <= MAX_POINTS + 1
    assert shown[0] == x[0] and shown[-1] == x[-1]
    assert np.isin(shown, x).all()
    np.testing.assert_allclose(np.diff(shown)[:-1], np.diff(shown)[0])
    assert len(original(w.val_curve)[0]) <= MAX_POINTS + 1
    assert w.val_curve.opts["symbol"] is None  # no markers on 800 points


def test_metric_plot_shows_accuracy_for_classification(qtbot, spiral_run):
    ctx, updates, reports = spiral_run
    w = MetricPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    epochs = [r for r in reports if r.metrics is not None]
    np.testing.assert_allclose(original(w.train_curve)[1],
                               [r.metrics["train_accuracy"] for r in epochs])
    np.testing.assert_allclose(original(w.val_curve)[1],
                               [r.metrics["val_accuracy"] for r in epochs])
    assert w.plot.getAxis("left").labelText == "accuracy"
    lo, hi = w.plot.getViewBox().viewRange()[1]
    assert lo <= 0.0 and 1.0 <= hi < 1.1
    # the lines the mouse can name, with the values drawn
    lines = list(w.readout.lines())
    assert [line.label for line in lines] == ["train accuracy", "validation accuracy"]
    np.testing.assert_array_equal(lines[1].values, original(w.val_curve)[1])


def regression_updates():
    """Four epochs of a regression on the plane: its context, updates and reports."""
    p = new_project()
    p["dataset"] = {"name": "plane", "samples": 200, "val_fraction": 0.2, "seed": 0}
    p["network"]["nodes"][-1]["units"] = 1
    p["loss"] = {"type": "mse"}
    p["training"].update(epochs=4, diagnostics_every=0)
    return run_updates(Trainer(p))


def test_metric_plot_shows_r2_for_regression(qtbot):
    ctx, updates, reports = regression_updates()
    w = MetricPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    epochs = [r for r in reports if r.metrics is not None]
    np.testing.assert_allclose(original(w.val_curve)[1], [r.metrics["val_r2"] for r in epochs])
    assert set(w.data()) == {"train_r2", "val_r2"}
    assert "R²" in w.plot.getAxis("left").labelText


def test_an_r2_below_the_axis_is_marked_on_its_floor(qtbot):
    """An untrained regression's R² of -30 would squash [0, 1] to a line: the axis stops at
    -1 and each value under it is a triangle on the floor at its epoch, listed in the
    legend; the curves and the readout keep the true values. A next run starts clean."""
    from bplab.ui.plots.loss import R2_FLOOR

    ctx, updates, reports = regression_updates()
    epochs = [r for r in reports if r.metrics is not None]
    epochs[0].metrics.update(train_r2=-5.0, val_r2=-30.0)
    epochs[1].metrics.update(val_r2=-2.0)
    w = MetricPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    w._redraw()
    lo, _ = w.plot.getViewBox().viewRange()[1]
    assert R2_FLOOR - 0.1 < lo <= R2_FLOOR
    x, y = w.below.getData()
    assert sorted(x) == sorted([epochs[0].epoch_progress] * 2 + [epochs[1].epoch_progress])
    assert set(y) == {R2_FLOOR}
    assert "below -1" in [label.text for _, label in w.legend.items]
    assert original(w.val_curve)[1][:2].tolist() == [-30.0, -2.0]
    w.set_context(ctx)  # the next run
    assert len(w.below.getData()[0]) == 0
    assert "below -1" not in [label.text for _, label in w.legend.items]


# -- gradients ---------------------------------------------------------------------------------
def diag_reports(reports):
    return [r for r in reports if r.layers is not None]


def test_gradient_norm_plot_one_depth_coloured_line_per_layer(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = GradientNormPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    assert [c.name() for c in w.curves] == list(ctx.layer_names)
    # The legend lists every layer in a column beside the plot, never over the curves.
    assert [label.text for _, label in w.legend.items] == list(ctx.layer_names)
    assert w.legend.parentItem() is w.graphics.ci and w.plot.legend is None
    # The worker sends the most recent diagnostic report of each update.
    sent = [u.diagnostics for u in updates if u.diagnostics is not None]
    for i, _name in enumerate(ctx.layer_names):
        x, y = original(w.curves[i])
        np.testing.assert_array_equal(x, [d.step for d in sent])
        np.testing.assert_allclose(y, [d.layers[i].grad_norm for d in sent])
        assert w.curves[i].opts["logMode"][1]  # y is log scale
    colors = [w.curves[i].opts["pen"].color().name() for i in range(len(w.curves))]
    assert colors == [c.name() for c in depth_colors(len(colors), w.theme.dark)]
    assert len(set(colors)) == len(colors)
    assert len(w.legend.items) == len(ctx.layer_names)


@pytest.fixture(scope="module")
def deep_run():
    """A 21-layer chain: more layers than a legend should name."""
    p = spiral_project(epochs=2, diag_every=2, samples=200)
    nodes = [{"id": "in", "type": "Input", "shape": [2]}]
    for i in range(1, 21):
        nodes += [{"id": f"fc{i}", "type": "Dense", "units": 4}, {"id": f"t{i}", "type": "Tanh"}]
    p["network"]["nodes"] = [*nodes, {"id": "out", "type": "Dense", "units": 2}]
    return run_updates(Trainer(p))


def test_a_deep_network_legend_names_a_spread_of_layers_and_leaves_the_plot_its_room(
        qtbot, deep_run):
    ctx, updates, _ = deep_run
    assert len(ctx.layer_names) == 21
    w = GradientNormPlot()
    qtbot.addWidget(w)
    w.resize(590, 300)  # a bottom dock of the 1600x1000 window
    w.show()
    feed(w, ctx, updates)
    named = [label.text for _, label in w.legend.items]
    assert len(named) == LEGEND_ROWS and w.legend.columnCount == 1
    assert named[0] == ctx.layer_names[0] and named[-1] == ctx.layer_names[-1]
    assert named == [ctx.layer_names[i] for i in legend_layers(21)]
    assert "12 of the 21 layers" in w.legend.toolTip()
    assert len(w.curves) == 21  # every layer is still drawn
    qtbot.waitUntil(lambda: w.plot.getViewBox().width() > 0)
    assert w.plot.getViewBox().width() > 0.55 * w.graphics.width()


@pytest.mark.parametrize("n", [1, 2, 11, 12, 13, 21, 40])
def test_legend_layers_keeps_the_ends_and_spreads_evenly(n):
    shown = legend_layers(n)
    assert shown == sorted(set(shown)) and shown[0] == 0 and shown[-1] == n - 1
    assert len(shown) == min(n, LEGEND_ROWS)
    gaps = np.diff(shown)
    assert len(gaps) == 0 or gaps.max() - gaps.min() <= 1


def shown(qtbot, cls, ctx, updates):
    """A ``cls`` plot fed ``updates``, shown at 700x400 and painted (its range set): the
    mouse can be put on its lines. Returns the plot and its view box."""
    w = cls()
    qtbot.addWidget(w)
    w.resize(700, 400)
    w.show()
    feed(w, ctx, updates)
    vb = w.plot.getViewBox()
    qtbot.waitUntil(lambda: vb.width() > 0)
    qtbot.wait(100)  # laid out, the range set as it is painted
    return w, vb


def test_resting_the_mouse_on_a_line_names_its_layer_value_and_step(qtbot, deep_run):
    ctx, updates, _ = deep_run
    w, vb = shown(qtbot, GradientNormPlot, ctx, updates)
    steps, values = w.data()["fc7"]
    k = len(steps) // 2
    at = vb.mapViewToScene(QPointF(steps[k], math.log10(values[k])))
    text = w.hover_at(at)
    # the nearest line may be a neighbour drawn at almost the same height: same value then
    name = text.split(":")[0]
    assert name in ctx.layer_names
    near = w.data()[name][1][k]
    assert abs(math.log10(near) - math.log10(values[k])) < 0.1
    assert text == f"{name}: {near:.4g} at step {steps[k]:.0f}"
    assert w.readout.label.isVisible()
    curve = w.curves[ctx.layer_names.index(name)]
    assert curve.opts["pen"].widthF() >= 3.0  # drawn thicker
    others = [c.opts["pen"].widthF() for c in w.curves if c is not curve]
    assert max(others) < 3.0
    # at the newest sample, the readout turns to the inside of the view: never cut
    last = vb.mapViewToScene(QPointF(steps[-1], math.log10(values[-1])))
    assert w.hover_at(last) is not None
    assert vb.sceneBoundingRect().contains(w.readout.label.sceneBoundingRect())
    # away from every line: nothing named, the line back to its own pen
    assert w.hover_at(vb.mapViewToScene(QPointF(steps[k], math.log10(values[k]) + 3))) is None
    assert not w.readout.label.isVisible() and curve.opts["pen"].widthF() < 3.0
    assert w.hover_at(QPointF(-50, -50)) is None  # outside the plot


class _Record:
    """What a plot reads of a recorded run (bplab.runs.RunRecord)."""

    name = "Before"
    layers = ("fc1",)

    def series(self, layer):
        return [0.0, 100.0], [1e3, 1e3]


def test_resting_the_mouse_on_a_recorded_runs_line_names_the_run_and_layer(qtbot, deep_run):
    ctx, updates, _ = deep_run
    w, vb = shown(qtbot, GradientNormPlot, ctx, updates)
    w.set_runs([RunOverlay(_Record(), QColor("#8e44ad"))])
    qtbot.wait(100)
    assert w.hover_at(vb.mapViewToScene(QPointF(60.0, 3.0))) == "Before · fc1: 1000 at step 100"
    curve = w._overlay_items[0][1]
    assert curve.opts["pen"].widthF() >= 3.0
    w.set_runs([])  # the run unticked: its line gone, nothing left named
    assert w.hover_at(vb.mapViewToScene(QPointF(60.0, 3.0))) is None


class _LossRecord:
    name = "Before"

    def series(self, key):
        return ([1.0, 2.0, 3.0], [0.2, 0.2, 0.2]) if key == "val_loss" else ([], [])


def test_resting_the_mouse_on_a_loss_curve_reads_it_out(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w, vb = shown(qtbot, LossPlot, ctx, updates)
    x, y = w.data()["val_loss"]
    k = len(x) - 2
    text = w.readout.at(vb.mapViewToScene(QPointF(x[k], y[k])))
    assert text == f"validation: {y[k]:.4g} at epoch {x[k]:.4g}"
    assert w.val_curve.opts["pen"].widthF() >= 3.0
    w.steps_check.setChecked(False)  # a hidden curve is never named
    sx, sy = w.data()["train_loss_step"]
    at = vb.mapViewToScene(QPointF(sx[3], sy[3]))
    assert not (w.readout.at(at) or "").startswith("train (per step)")
    # a ticked run's curve, by its run and its series
    w.set_runs([RunOverlay(_LossRecord(), QColor("#2ca02c"))])
    qtbot.wait(100)
    text = w.readout.at(vb.mapViewToScene(QPointF(2.4, 0.2)))
    assert text == "Before · validation loss: 0.2 at epoch 2"
    w.leaveEvent(QEvent(QEvent.Type.Leave))  # the mouse leaves the panel: nothing named
    assert not w.readout.label.isVisible()
    assert w._overlay_items[0][1].opts["pen"].widthF() < 3.0


def test_update_ratio_plot_has_the_reference_line(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = UpdateRatioPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    assert w.reference.value() == pytest.approx(math.log10(1e-3))
    d = [u.diagnostics for u in updates if u.diagnostics is not None][-1]
    assert original(w.curves[0])[1][-1] == pytest.approx(d.layers[0].update_ratio)


def test_gradient_flow_bar_heights_are_log_values(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = GradientFlowBar()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    last = [u.diagnostics for u in updates if u.diagnostics is not None][-1]
    norms = np.array([s.grad_norm for s in last.layers])
    x, h = w.bars.getData()
    y0 = np.asarray(w.bars.opts["y0"])
    np.testing.assert_allclose(np.asarray(h) + y0, np.log10(norms))
    np.testing.assert_array_equal(x, np.arange(len(norms)))
    assert np.all(y0 <= np.log10(norms).min() - 1 + 1e-12)
    ticks = w.plot.getAxis("bottom")._tickLevels[0]
    assert [t[1] for t in ticks] == list(ctx.layer_names)
    w.set_field("grad_rms")
    _, h = w.bars.getData()
    y0 = np.asarray(w.bars.opts["y0"])
    np.testing.assert_allclose(np.asarray(h) + y0, np.log10([s.grad_rms for s in last.layers]))
    assert w.data()["layers"] == list(ctx.layer_names)


def test_gradient_flow_bar_marks_non_finite_layers(qtbot):
    ctx = TrainingContext("classification", ("fc1", "fc2"), ("Dense", "Dense"), (), "x", False)
    w = GradientFlowBar()
    qtbot.addWidget(w)
    w.set_context(ctx)
    stats = (LayerStats("fc1", "Dense", 0, float("inf"), 1.0, 0.1, float("inf")),
             LayerStats("fc2", "Dense", 1, 0.5, 1.0, 0.1, 0.05))
    r = Report("step", 5, 0, 0.5, None, 0.1, 0.0, 0.0, layers=stats)
    w.add_update(TrainingUpdate(np.array([5]), np.array([np.nan]), (), r, diagnostics=r))
    w.refresh()
    brushes = w.bars.opts["brushes"]
    assert brushes[0].color().name() == w.theme.bad.name()
    assert brushes[1].color().name() != w.theme.bad.name()


def test_the_latest_layer_sample_is_shown_when_an_epoch_end_follows_it(qtbot):
    """The worker's update names its newest report with layers *or findings* as
    ``diagnostics``; when an epoch end (findings, no layer statistics) came after the last
    sample, the gradient flow and the histograms still show that sample, and the diagnosis
    counts it (the residual example's gradient flow stayed empty through a whole run)."""
    from bplab.ui.diagnosis import DiagnosisPanel

    from bplab.diagnostics import Finding

    ctx = TrainingContext("classification", ("fc1", "fc2"), ("Dense", "Dense"), (), "x", False)
    flow, hist, diag = GradientFlowBar(), HistogramView(), DiagnosisPanel()
    stats = (LayerStats("fc1", "Dense", 0, 0.25, 1.0, 0.1, 0.05, histogram(np.arange(4.0)),
                        histogram(np.arange(3.0))),
             LayerStats("fc2", "Dense", 1, 0.5, 1.0, 0.1, 0.07, histogram(np.arange(5.0)),
                        histogram(np.arange(2.0))))
    sample = Report("step", 40, 1, 1.5, 0.7, 0.1, 0.0, 0.0, layers=stats)
    finding = Finding("loss_stalled", "info", "Loss has stalled", "flat")
    epoch = Report("epoch", 46, 2, 2.0, 0.6, 0.1, 0.0, 0.0, metrics={"train_loss": 0.6},
                   findings=(finding,))
    upd = TrainingUpdate(np.array([40, 46]), np.array([0.7, 0.6]), (epoch,), epoch,
                         diagnostics=epoch, samples=(sample,))
    for w in (flow, hist, diag):
        qtbot.addWidget(w)
        w.set_context(ctx)
        w.add_update(upd)
        w.refresh()
    assert flow.step == 40
    np.testing.assert_allclose(flow.data()["grad_norm"][1], [0.25, 0.5])
    assert hist.last_step == 40
    np.testing.assert_array_equal(original(hist.current["weight"])[1],
                                  stats[0].weight_hist.counts)
    assert diag.samples == 1


# -- histograms --------------------------------------------------------------------------------
def test_histogram_view_heatmap_grows_with_samples(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = HistogramView()
    qtbot.addWidget(w)
    w.set_context(ctx)
    sent = [u.diagnostics for u in updates if u.diagnostics is not None]
    w.add_update(updates[0])
    w.refresh()
    first = w.images["weight"].image.shape[0]
    for u in updates[1:]:
        w.add_update(u)
    w.refresh()
    d = w.data()
    assert d["layer"] == ctx.layer_names[0]
    assert w.images["weight"].image.shape == (len(sent), w.bins) and len(sent) > first
    np.testing.assert_allclose(w.images["weight"].image, np.log1p(d["weight_heatmap"]))
    np.testing.assert_array_equal(d["weight_steps"], [s.step for s in sent])
    latest = sent[-1].layers[0]
    np.testing.assert_array_equal(original(w.current["weight"])[1], latest.weight_hist.counts)
    np.testing.assert_allclose(original(w.current["grad"])[0], latest.grad_hist.edges)
    # Every weight is counted: rows hold the full histogram mass on the common range.
    n_weights = latest.weight_hist.counts.sum()
    np.testing.assert_allclose(d["weight_heatmap"].sum(axis=1), n_weights)
    w.set_layer(ctx.layer_names[-1])
    assert w.data()["weight_hist"][1].tolist() == sent[-1].layers[-1].weight_hist.counts.tolist()


def test_histogram_range_grows_and_rebins_history(qtbot, rng):
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), (), "x", False)
    w = HistogramView()
    qtbot.addWidget(w)
    w.set_context(ctx)
    scales = [0.3, 0.4, 3.0, 3.5, 50.0]
    weights = [rng.normal(0, s, 400).astype(np.float32) for s in scales]
    ranges = []
    for step, wt in enumerate(weights, start=1):
        g = wt.copy()
        g[:3] = np.nan if step == 5 else g[:3]
        st = LayerStats("fc1", "Dense", 0, 1.0, 1.0, 1e-3, 0.1, histogram(wt), histogram(g))
        r = Report("step", step, 0, 0.1, 0.5, 0.1, 0.0, 0.0, layers=(st,))
        w.add_update(TrainingUpdate(np.array([step]), np.array([0.5]), (), r, diagnostics=r))
        w.refresh()
        ranges.append(w.tracks["fc1"]["weight"].half_range)
    assert ranges == sorted(ranges) and ranges[-1] > ranges[0]
    for r, wt in zip(ranges, weights):
        assert r >= np.abs(wt).max()
    heat = w.data()["weight_heatmap"]
    assert heat.shape == (5, w.bins)
    np.testing.assert_allclose(heat.sum(axis=1), 400)  # rebinning kept every count
    # the narrow early distributions now sit in the central bins of the wide range
    edges = w.data()["weight_edges"]
    m0 = np.abs(weights[0]).max()
    outside = (edges[1:] < -m0) | (edges[:-1] > m0)
    assert heat[0][outside].sum() == 0 and heat[-1][outside].sum() > 0
    rect = w.images["weight"].mapRectToParent(w.images["weight"].boundingRect())
    assert rect.top() == pytest.approx(-ranges[-1])
    assert rect.height() == pytest.approx(2 * ranges[-1])
    assert "3 non-finite gradients" in w.nonfinite_label.text()


# -- activations -------------------------------------------------------------------------------
def test_activation_plot_dead_relu_fractions(qtbot, relu_run):
    ctx, updates, _ = relu_run
    w = ActivationPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    sent = [u.diagnostics for u in updates if u.diagnostics is not None]
    assert list(w.data()) == list(ctx.activation_layers)
    for i, _name in enumerate(w.names):
        x, y = original(w.curves[i])
        np.testing.assert_array_equal(x, [d.step for d in sent])
        np.testing.assert_allclose(y, [d.activations[i].dead_fraction for d in sent])
    labels = [label.text for _, label in w.legend.items]
    assert labels == [f"{n} (dead)" for n in ctx.activation_layers]
    lo, hi = w.plot.getViewBox().viewRange()[1]
    assert lo <= 0 and 1 <= hi <= 1.1


def test_activation_plot_saturation_and_other_kinds(qtbot):
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), ("s1", "g1"), "x", False)
    w = ActivationPlot()
    qtbot.addWidget(w)
    w.set_context(ctx)
    acts = (ActivationStats("s1", "sigmoid", 0.5, 0.4, 0.0, 0.75),
            ActivationStats("g1", "other", 0.1, 1.0, 0.0, 0.0))
    r = Report("step", 3, 0, 0.1, 0.5, 0.1, 0.0, 0.0, activations=acts)
    w.add_update(TrainingUpdate(np.array([3]), np.array([0.5]), (), r, diagnostics=r))
    w.refresh()
    assert w.data() == {"s1": (pytest.approx([3.0]), pytest.approx([0.75]))}
    assert [label.text for _, label in w.legend.items] == ["s1 (saturated)"]
    assert not w.curves[1].isVisible() or w.curves[1].getOriginalDataset()[1].size == 1


# -- decision boundary -------------------------------------------------------------------------
def test_decision_boundary_image_is_the_grid_and_points_are_drawn(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = DecisionBoundaryView()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    last = updates[-1]
    np.testing.assert_array_equal(w.image.image, last.boundary)
    np.testing.assert_array_equal(w.data()["grid"], last.boundary)
    assert w.image.levels is not None and tuple(w.image.levels) == (0.0, 1.0)
    (x0, x1), (y0, y1) = last.boundary_bounds
    rect = w.image.mapRectToParent(w.image.boundingRect())
    n = last.boundary.shape[1]
    half = (x1 - x0) / (n - 1) / 2
    assert rect.left() == pytest.approx(x0 - half) and rect.right() == pytest.approx(x1 + half)
    assert rect.top() == pytest.approx(y0 - half) and rect.bottom() == pytest.approx(y1 + half)
    tx, ty = w.data()["train_points"]
    np.testing.assert_allclose(np.column_stack([tx, ty]), ctx.x_train)
    assert len(w.data()["val_points"][0]) == len(ctx.x_val)
    brushes = {p.brush().color().name()
               for p, c in zip(w.train_points.points(), ctx.y_train) if c == 1}
    assert brushes == {"#0877bd"}  # class 1 is Playground blue
    assert w.message.isHidden()
    w.val_check.setChecked(False)
    assert not w.val_points.isVisible()


def test_decision_boundary_is_drawn_as_a_smooth_surface(qtbot):
    """The grid is interpolated on screen (as Playground draws it), not shown as blocks:
    across a 2x2 grid the colour changes gradually through many shades."""
    x = np.array([[-1.0, -1.0], [1.0, 1.0]])
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), (), "xor", True,
                          x_train=x, y_train=np.array([0, 1]), n_classes=2)
    w = DecisionBoundaryView()
    qtbot.addWidget(w)
    w.resize(420, 420)
    w.show()
    qtbot.waitExposed(w)
    w.set_context(ctx)
    w.train_check.setChecked(False)
    w.val_check.setChecked(False)
    r = Report("step", 1, 0, 0.1, 0.5, 0.1, 0.0, 0.0)
    w.add_update(TrainingUpdate(np.array([1]), np.array([0.5]), (), r,
                                boundary=np.array([[0.0, 1.0], [1.0, 0.0]]),
                                boundary_bounds=((-1, 1), (-1, 1))))
    w.refresh()
    qtbot.wait(50)  # the view takes the image's range
    view = w.image.scene().views()[0]
    shot = view.grab().toImage()
    rect = view.mapFromScene(w.image.sceneBoundingRect()).boundingRect() & view.rect()
    assert rect.width() > 100
    y = rect.center().y()
    row = {shot.pixel(x, y) for x in range(rect.left() + 3, rect.right() - 3)}
    assert len(row) > 20, f"{len(row)} colours across the image: drawn as blocks"


def test_decision_boundary_for_many_classes_and_regression(qtbot, rng):
    x = rng.normal(size=(30, 2))
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), (), "blobs", True,
                          x_train=x, y_train=rng.integers(0, 3, 30), n_classes=3)
    w = DecisionBoundaryView()
    qtbot.addWidget(w)
    w.set_context(ctx)
    grid = rng.integers(0, 3, (16, 16)) / 2.0
    r = Report("step", 1, 0, 0.1, 0.5, 0.1, 0.0, 0.0)
    w.add_update(TrainingUpdate(np.array([1]), np.array([0.5]), (), r, boundary=grid,
                                boundary_bounds=((-3, 3), (-2, 2))))
    w.refresh()
    np.testing.assert_array_equal(w.image.image, grid)
    lut = w.image.lut
    lut = lut(w.image.image) if callable(lut) else lut
    # the three grid values land on three distinct class colours
    idx = [min(int(v * len(lut)), len(lut) - 1) for v in (0.0, 0.5, 1.0)]
    assert len({tuple(lut[i][:3]) for i in idx}) == 3

    y = rng.normal(0, 2, 30)
    ctx = TrainingContext("regression", ("fc1",), ("Dense",), (), "plane", True,
                          x_train=x, y_train=y)
    w.set_context(ctx)
    assert w.image.image is None
    m = np.abs(y).max()
    assert w.levels == (pytest.approx(-m), pytest.approx(m))


def test_decision_boundary_explains_data_with_more_than_two_inputs(qtbot):
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), (), "iris", False, n_classes=3)
    w = DecisionBoundaryView()
    qtbot.addWidget(w)
    w.set_context(ctx)
    w.show()
    assert w.message.isVisible() and not w.graphics.isVisible()
    assert w.message.text() == ("This view draws the network's output over data with one or "
                                "two inputs; 'iris' has 4 features.")
    r = Report("step", 1, 0, 0.1, 0.5, 0.1, 0.0, 0.0)
    w.add_update(TrainingUpdate(np.array([1]), np.array([0.5]), (), r))
    w.refresh()
    assert w.message.isVisible()
    seq = TrainingContext("regression", ("lstm",), ("LSTM",), (), "adding", False,
                          sample_shape=(100, 2))
    w.set_context(seq)  # a sequence is named by its shape, not as 200 features
    assert w.message.text().endswith("'adding' has inputs of shape 100×2.")


# -- export, theme, robustness -----------------------------------------------------------------
@pytest.mark.parametrize("cls", [LossPlot, GradientNormPlot, HistogramView, DecisionBoundaryView])
def test_export_png_svg_csv(qtbot, spiral_run, tmp_path, cls):
    ctx, updates, _ = spiral_run
    w = cls()
    qtbot.addWidget(w)
    w.resize(640, 420)
    feed(w, ctx, updates)
    w.export_image(tmp_path / "p.png")
    img = QImage(str(tmp_path / "p.png"))
    assert not img.isNull() and img.width() >= 640
    w.export_image(tmp_path / "p.svg")
    assert (tmp_path / "p.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    w.export_csv(tmp_path / "p.csv")
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) > 10
    if cls is LossPlot:
        n = sum(len(u.steps) for u in updates)
        assert sum(1 for r in rows if r[0] == "train_loss_step") == n


def test_exports_are_atomic_a_failed_write_keeps_the_previous_file(qtbot, spiral_run,
                                                                     tmp_path, monkeypatch):
    import os

    from bplab.io.project import WriteError

    ctx, updates, _ = spiral_run
    w = LossPlot()
    qtbot.addWidget(w)
    w.resize(640, 420)
    feed(w, ctx, updates)
    for name, export in (("p.png", w.export_image), ("p.svg", w.export_image),
                         ("p.csv", w.export_csv)):
        target = tmp_path / name
        target.write_bytes(b"previous")

        def full_disk(*_args, **_kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "fsync", full_disk)
        with pytest.raises(WriteError, match=name):
            export(target)
        monkeypatch.undo()
        assert target.read_bytes() == b"previous"
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_actions_are_in_the_context_menu(qtbot):
    w = LossPlot()
    qtbot.addWidget(w)
    texts = [a.text() for a in w.plot.getViewBox().menu.actions()]
    assert any("image" in t.lower() for t in texts) and any("csv" in t.lower() for t in texts)


def test_dark_palette_restyles_the_plots(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    w = GradientNormPlot()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    light = w.curves[0].opts["pen"].color().name()
    pal = QPalette(w.palette())
    pal.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    pal.setColor(QPalette.ColorRole.Window, QColor("#2b2b2b"))
    pal.setColor(QPalette.ColorRole.Text, QColor("#e0e0e0"))
    w.setPalette(pal)
    assert w.theme.dark
    assert w.graphics.backgroundBrush().color().name() == "#1e1e1e"
    assert w.curves[0].opts["pen"].color().name() != light
    assert w.plot.getAxis("left").textPen().color().name() == "#e0e0e0"


@pytest.mark.parametrize("cls", [LossPlot, MetricPlot, GradientNormPlot, UpdateRatioPlot,
                                 GradientFlowBar, HistogramView, ActivationPlot,
                                 DecisionBoundaryView])
def test_controls_have_tooltips_and_widgets_a_minimum_size(qtbot, cls):
    from PySide6.QtWidgets import QAbstractButton, QComboBox

    w = cls()
    qtbot.addWidget(w)
    controls = w.findChildren(QAbstractButton) + w.findChildren(QComboBox)
    assert all(c.toolTip() for c in controls)
    assert w.minimumWidth() >= 280 and w.minimumHeight() >= 200


def test_updates_before_context_do_not_crash(qtbot, spiral_run):
    _, updates, _ = spiral_run
    for cls in (LossPlot, MetricPlot, GradientNormPlot, GradientFlowBar, HistogramView,
                ActivationPlot, DecisionBoundaryView):
        w = cls()
        qtbot.addWidget(w)
        for u in updates[:5]:
            w.add_update(u)
        w.refresh()


class _Emitter(QObject):
    updated = Signal(object)


class _Sender(QThread):
    def __init__(self, emitter, items):
        super().__init__()
        self.emitter, self.items = emitter, items

    def run(self):
        for item in self.items:
            self.emitter.updated.emit(item)


def test_many_thousands_of_updates_through_a_signal(qtbot, spiral_run):
    """Guards against PySide6's 6.12.0 bool_dealloc abort on many object-carrying signals."""
    ctx, updates, _ = spiral_run
    plots = [LossPlot(), GradientNormPlot(), HistogramView(), ActivationPlot()]
    emitter = _Emitter()
    for p in plots:
        qtbot.addWidget(p)
        p.set_context(ctx)
        emitter.updated.connect(p.add_update)
    n = 12_000
    base = updates[0]
    for i in range(n):  # direct connections, same thread
        emitter.updated.emit(TrainingUpdate(np.array([i + 1]), np.array([1.0 / (i + 1)]), (),
                                            base.latest, extra={"ok": bool(i % 2)}))
        if i % 3000 == 0:
            for p in plots:
                p.refresh()
    # queued connections from a worker thread, like the training worker
    received = []
    emitter2 = _Emitter()
    emitter2.updated.connect(plots[0].add_update)
    counter = _Counter(received)  # keep a reference: a collected receiver gets nothing
    emitter2.updated.connect(counter.on_item)
    items = [TrainingUpdate(np.array([n + i + 1]), np.array([0.5]), (), base.latest,
                            extra={"flag": True, "none": None}) for i in range(10_000)]
    sender = _Sender(emitter2, items)
    sender.start()
    qtbot.waitUntil(lambda: len(received) == len(items), timeout=20_000)
    sender.wait()
    for p in plots:
        p.refresh()
    x, _ = plots[0].data()["train_loss_step"]
    assert len(x) == n + len(items)
    assert original(plots[0].step_curve)[0][-1] == x[-1]  # drawn up to the last step


class _Counter(QObject):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def on_item(self, item):
        self.out.append(item.extra["flag"])


def test_context_is_not_mutated(qtbot, spiral_run):
    ctx, updates, _ = spiral_run
    before = copy.deepcopy((ctx.x_train, ctx.y_train))
    w = DecisionBoundaryView()
    qtbot.addWidget(w)
    feed(w, ctx, updates)
    np.testing.assert_array_equal(ctx.x_train, before[0])
    np.testing.assert_array_equal(ctx.y_train, before[1])


def test_log_axis_labels_thin_out_when_minor_ticks_crowd(qtbot):
    from bplab.ui.plots.base import PlotAxis

    axis = PlotAxis("left")
    axis.setLogMode(True)
    values = [d + math.log10(m) for d in (-3, -2, -1) for m in range(1, 10)]
    labels = axis.tickStrings(values, 1.0, None)
    shown = {round(10 ** (v - math.floor(v + 1e-9))) for v, t in zip(values, labels) if t}
    assert shown == {1}  # 27 ticks: decades only
    labels = axis.tickStrings(values[:10], 1.0, None)
    assert [t != "" for t in labels] == [m in (1, 2, 5) for m in [*range(1, 10), 1]]
    few = axis.tickStrings(values[:4], 1.0, None)
    assert all(few)


def test_layer_plots_take_every_sample_an_update_carries(qtbot, spiral_run):
    ctx, _, reports = spiral_run
    sampled = [r for r in reports if r.layers is not None]
    assert len(sampled) > 5
    upd = TrainingUpdate(np.array([r.step for r in reports]), np.array([0.5] * len(reports)),
                         (), reports[-1], diagnostics=sampled[-1], samples=tuple(sampled))
    for cls in (GradientNormPlot, ActivationPlot):
        w = cls()
        qtbot.addWidget(w)
        w.set_context(ctx)
        w.add_update(upd)
        w.add_update(upd)  # a repeat adds nothing
        w.refresh()
        series = w.data()
        assert series
        for x, _y in series.values():
            np.testing.assert_array_equal(x, [r.step for r in sampled])
    norms = GradientNormPlot()
    qtbot.addWidget(norms)
    norms.set_context(ctx)
    norms.add_update(upd)
    first = ctx.layer_names[0]
    np.testing.assert_allclose(norms.data()[first][1],
                               [next(s.grad_norm for s in r.layers if s.layer == first)
                                for r in sampled])


@pytest.mark.parametrize("cls", [LossPlot, MetricPlot, GradientNormPlot, HistogramView])
def test_an_empty_plot_says_how_to_fill_it_until_a_run_starts(qtbot, cls, spiral_run):
    ctx = spiral_run[0]
    w = cls()
    qtbot.addWidget(w)
    w.show()
    assert w.waiting.isVisible() and "Run" in w.waiting.text()
    w.set_context(ctx)
    assert not w.waiting.isVisible()


def test_plots_with_nothing_to_draw_for_the_network_say_why(qtbot):
    """An RNN has no ReLU/sigmoid/tanh layer and an MLP no recurrent one: those panels say
    so before Run and keep saying it through the run, instead of showing empty axes (and
    the activations' legend no empty frame)."""
    from bplab.ui.plots.activations import NO_LAYER as NO_ACTIVATION
    from bplab.ui.plots.time_gradients import NO_LAYER as NO_RECURRENT
    from bplab.ui.plots.time_gradients import TimeGradientPlot

    rnn = TrainingContext("regression", ("rnn", "out"), ("RNN", "Dense"), (), "adding", False,
                          time_layers=("rnn",))
    mlp = TrainingContext("classification", ("fc1", "out"), ("Dense", "Dense"), ("act1",),
                          "spiral", True, activation_kinds=("relu",))
    acts, times = ActivationPlot(), TimeGradientPlot()
    for w in (acts, times):
        qtbot.addWidget(w)
        w.show()
    acts.prepare(rnn)
    assert acts.waiting.isVisible() and acts.waiting.text() == NO_ACTIVATION
    assert not acts.legend.isVisible()
    acts.set_context(rnn)  # Run pressed
    assert acts.waiting.isVisible() and acts.waiting.text() == NO_ACTIVATION
    acts.prepare(mlp)
    assert acts.waiting.text() != NO_ACTIVATION and acts.legend.isVisible()
    acts.set_context(mlp)
    assert not acts.waiting.isVisible()

    times.prepare(mlp)
    assert times.waiting.isVisible() and times.waiting.text() == NO_RECURRENT
    times.set_context(mlp)
    assert times.waiting.isVisible() and times.waiting.text() == NO_RECURRENT
    times.prepare(rnn)
    times.set_context(rnn)
    assert not times.waiting.isVisible()
