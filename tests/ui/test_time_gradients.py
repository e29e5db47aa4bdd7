"""The gradient-through-time view: ||dL/dh_t|| per time step (line, log y) and per training
step (heatmap), fed by the worker's updates, in the window for a recurrent network."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from bplab.ui.main_window import MainWindow
from bplab.ui.plots import PLOTS, TimeGradientPlot
from bplab.ui.plots.time_gradients import MAX_COLUMNS, NO_LAYER
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from bplab.ui.training.worker import run_context
from PySide6.QtCore import QPointF, QSettings

from bplab.datasets import load_dataset
from bplab.training import Report, describe_run

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
T = 12


def ctx(*layers: str) -> TrainingContext:
    return TrainingContext(task="regression", layer_names=layers, layer_types=(),
                           activation_layers=(), dataset_name="adding", is_2d=False,
                           time_layers=layers)


def report(step: int, norms: dict[str, np.ndarray]) -> Report:
    return Report("step", step, 0, 0.0, 0.1, 0.01, 100.0, 1.0, time_grad_norms=norms)


def update(*reports: Report) -> TrainingUpdate:
    return TrainingUpdate(steps=np.array([r.step for r in reports]),
                          losses=np.full(len(reports), 0.1), epoch_reports=(),
                          latest=reports[-1], diagnostics=reports[-1], samples=reports)


def fading(scale: float) -> np.ndarray:
    """A gradient that shrinks tenfold per step away from the last one (a vanishing RNN)."""
    return scale * 10.0 ** -np.arange(T)[::-1]


@pytest.fixture
def plot(qtbot):
    p = TimeGradientPlot()
    qtbot.addWidget(p)
    p.resize(900, 320)
    p.show()
    return p


def test_the_view_is_one_of_the_windows_plots():
    assert "time_gradients" in [name for name, *_ in PLOTS]


def test_line_shows_the_latest_sample_and_the_heatmap_every_sample(plot):
    plot.set_context(ctx("rnn"))
    plot.add_update(update(report(20, {"rnn": fading(1.0)}), report(40, {"rnn": fading(2.0)})))
    plot.add_update(update(report(60, {"rnn": fading(4.0)})))
    plot.refresh()
    t, norms = plot.data()["rnn"]
    assert t.tolist() == list(range(1, T + 1))
    np.testing.assert_allclose(norms, fading(4.0))
    steps, m = plot.heatmap("rnn")
    assert steps.tolist() == [20, 40, 60] and m.shape == (3, T)
    # the image holds log10 of the norms, time steps as rows; the bold line is the latest
    image = plot.image.image
    assert image.shape == (T, 3)
    np.testing.assert_allclose(image[:, 2], np.log10(fading(4.0)))
    assert plot.step_label.text() == "step 60"
    x, y = plot.lines[-1].getData()
    assert len(x) == T and plot.lines[-1].opts["pen"].widthF() > 2
    assert plot.line_plot.getAxis("left").logMode  # decades, where vanishing shows


def test_resting_the_mouse_on_a_line_names_its_training_step_and_follows_new_samples(
        plot, qtbot):
    plot.set_context(ctx("rnn"))
    plot.add_update(update(report(20, {"rnn": fading(1.0)}), report(40, {"rnn": fading(2.0)})))
    plot.refresh()
    qtbot.wait(100)  # laid out, the range set as it is painted
    vb = plot.line_plot.getViewBox()
    at = vb.mapViewToScene(QPointF(7.0, float(np.log10(fading(2.0)[6]))))
    text = plot.readout.at(at)
    assert text == f"training step 40 (latest): {fading(2.0)[6]:.4g} at time step 7"
    bold = plot.lines[1]
    assert bold.opts["pen"].widthF() >= 4.8  # the latest's 2.4, doubled
    # a newer sample arrives while the mouse rests there: the readout names what is drawn now
    plot.add_update(update(report(60, {"rnn": fading(2.0)})))
    plot.refresh()
    assert plot.readout.label.isVisible()
    assert plot.readout.label.textItem.toPlainText().startswith("training step 60 (latest)")
    widths = sorted(line.opts["pen"].widthF() for line in plot.lines)
    assert widths[-1] == pytest.approx(4.8) and widths[-2] < 3.0  # one line, thick once


def test_older_samples_are_ignored_and_bad_norms_are_gaps(plot):
    plot.set_context(ctx("rnn"))
    plot.add_update(update(report(10, {"rnn": fading(1.0)})))
    plot.add_update(update(report(10, {"rnn": fading(9.0)})))  # the same step again
    bad = fading(1.0)
    bad[:3] = [0.0, np.nan, np.inf]
    plot.add_update(update(report(30, {"rnn": bad})))
    plot.refresh()
    steps, _ = plot.heatmap("rnn")
    assert steps.tolist() == [10, 30]
    _, y = plot.lines[-1].getData()
    assert np.isnan(y[:3]).all() and np.isfinite(y[3:]).all()  # zero, NaN, Inf: gaps
    assert np.isfinite(plot.image.image).all()  # gaps painted at the floor, not NaN


def test_several_layers_get_a_chooser(plot, qtbot):
    plot.set_context(ctx("gru", "lstm"))
    assert plot.layer_box.isVisibleTo(plot) and plot.layer_box.count() == 2
    plot.add_update(update(report(5, {"gru": fading(1.0), "lstm": np.ones(T)})))
    plot.refresh()
    assert plot.image.image[:, 0].max() == pytest.approx(0.0)  # gru: log10 of 1.0 at the end
    plot.layer_box.setCurrentIndex(1)
    np.testing.assert_allclose(plot.image.image[:, 0], 0.0)  # lstm: flat at 1
    plot.set_context(ctx("rnn"))
    assert not plot.layer_box.isVisibleTo(plot)


def test_history_is_bounded_keeping_the_first_and_the_newest(plot):
    plot.set_context(ctx("rnn"))
    for step in range(1, MAX_COLUMNS + 50):
        plot.add_update(update(report(step, {"rnn": fading(1.0)})))
    steps, m = plot.heatmap("rnn")
    assert len(steps) <= MAX_COLUMNS and steps[0] == 1 and steps[-1] == MAX_COLUMNS + 49
    assert np.all(np.diff(steps) > 0) and m.shape == (len(steps), T)


def test_csv_export_lists_every_sample(plot, tmp_path):
    plot.set_context(ctx("rnn"))
    plot.add_update(update(report(3, {"rnn": fading(1.0)}), report(6, {"rnn": fading(2.0)})))
    plot.export_csv(tmp_path / "t.csv")
    rows = list(csv.DictReader(open(tmp_path / "t.csv", encoding="utf-8")))
    assert len(rows) == 2 * T
    assert rows[-1] == {"layer": "rnn", "step": "6", "t": str(T), "norm": repr(2.0)}


def test_a_network_without_recurrent_layers_says_what_to_add(plot):
    plot.prepare(ctx())
    assert plot.waiting.isVisibleTo(plot) and plot.waiting.text() == NO_LAYER
    # the note alone, on the plot's background, not over bare axes that will stay empty
    assert f"background: {plot.theme.background.name()}" in plot.waiting.styleSheet()
    plot.prepare(ctx("rnn"))
    assert "Press Run" in plot.waiting.text()
    assert "background: transparent" in plot.waiting.styleSheet()  # the run's axes show


def test_the_context_names_the_recurrent_layers():
    project = json.loads((EXAMPLES / "adding_lstm.bplab.json").read_text())
    project["dataset"].update(samples=40, seq_len=5)
    project["network"]["nodes"][0]["shape"] = [5, 2]
    ds = load_dataset(project["dataset"])
    assert run_context(ds, describe_run(project, ds)).time_layers == ("lstm",)
    spiral = json.loads((EXAMPLES / "spiral.bplab.json").read_text())
    ds = load_dataset(spiral["dataset"])
    assert run_context(ds, describe_run(spiral, ds)).time_layers == ()


def test_training_a_recurrent_network_in_the_window_fills_the_view(qtbot, tmp_path):
    """End to end: the example's RNN, shortened, trains in the window; the worker's updates
    carry the engine's norms through time to the plot."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "settings"))
    project = json.loads((EXAMPLES / "adding_rnn.bplab.json").read_text())
    project["dataset"].update(samples=160, seq_len=T)
    project["network"]["nodes"][0]["shape"] = [T, 2]
    project["training"].update(epochs=None, steps=30, batch_size=16, diagnostics_every=5)
    path = tmp_path / "rnn.bplab.json"
    path.write_text(json.dumps(project))
    w = MainWindow()
    w.ask_save_changes = lambda: pytest.fail("unexpected save prompt")
    try:
        assert w.open_path(path)
        w.show()
        plot = w.plots["time_gradients"]
        with qtbot.waitSignal(w.session.finished, timeout=60_000):
            w.session.run()
        qtbot.waitUntil(lambda: "rnn" in plot.data(), timeout=10_000)
        t, norms = plot.data()["rnn"]
        assert len(t) == T and np.isfinite(norms).all() and (norms > 0).all()
        steps, _ = plot.heatmap("rnn")
        assert len(steps) >= 1 and steps[-1] <= 30
    finally:
        w.automation = True
        w.close()
        w.deleteLater()


def test_the_diagnosis_shows_vanishing_through_time_with_its_fixes(qtbot):
    from bplab.ui.diagnosis import DiagnosisPanel

    from bplab.diagnostics import diagnose

    findings = diagnose([], time_grads=[{"rnn": fading(1.0)}] * 4, layer_types={"rnn": "RNN"})
    (finding,) = [f for f in findings if f.code == "vanishing_through_time"]
    applied = []
    panel = DiagnosisPanel(apply_fix=applied.append)
    qtbot.addWidget(panel)
    panel.set_findings(findings, samples=4)
    (card,) = [c for c in panel.cards if c.finding is finding]
    assert "first step" in card.message.text()
    assert f"steps.rnn = {T - 1} " in card.evidence.text() + " "  # a count, not 11.0
    buttons = card.fixes_with_buttons()
    assert {fix.id for fix, _ in buttons} >= {"lstm", "orthogonal"}
    fix, button = next((f, b) for f, b in buttons if f.id == "lstm")
    button.click()
    assert applied == [fix]
