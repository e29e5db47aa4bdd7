"""Run history in the app: runs recorded, overlaid on the plots, saved, reopened, restored."""

from __future__ import annotations

import json

import pytest
from bplab.ui.commands import SetNodeParam
from bplab.ui.main_window import MainWindow
from bplab.ui.models.document import ProjectDocument
from bplab.ui.plots.base import run_color
from bplab.ui.run_commands import RemoveRun, RenameRun, ReplaceNetwork
from bplab.ui.runs_panel import _comparison_html
from bplab.ui.training.worker import IDLE, PAUSED

from bplab.runs import run_settings

TIMEOUT = 30_000
OVERLAID = ("loss", "metrics", "gradient_norms")


@pytest.fixture
def make_window(open_window):
    # the demo as a copy; a saved project of the test's own opened in place
    return lambda path=None: open_window(path, as_copy=path is None)


def run_to_the_end(qtbot, w: MainWindow) -> None:
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.controls.buttons[0].click()  # Run
    assert w.session.state == IDLE


def legend_names(w: MainWindow, plot: str) -> list[str]:
    p = w.plots[plot]
    legend = p.legend if plot == "gradient_norms" else p.plot.legend
    return [label.text for _, label in legend.items]


def test_two_runs_recorded_overlaid_on_all_three_plots_saved_and_reopened(
        qtbot, make_window, tmp_path):
    w = make_window()
    panel = w.dock_layout.runs_panel
    w.doc.set_value("training.epochs", 3)
    lr, init = w.doc.get("optimizer.lr"), w.doc.node("fc1").get("init", "default")
    run_to_the_end(qtbot, w)
    w.doc.push(SetNodeParam(w.doc, "fc1", "init", "he_normal"))  # a fresh trainer next
    w.doc.set_value("optimizer.lr", 0.03)
    run_to_the_end(qtbot, w)

    runs = w.doc.runs
    assert [r["name"] for r in runs] == ["Run 1", "Run 2"]
    assert [r["outcome"] for r in runs] == ["done", "done"]
    assert runs[0]["changes"] == []
    assert runs[1]["changes"] == [f"fc1.init {init} -> he_normal", f"lr {lr:g} -> 0.03"]
    assert runs[0]["curves"]["epoch"] == [1.0, 2.0, 3.0]
    assert runs[0]["grad_norms"]["fc1"], "gradient norms recorded"
    assert runs[0]["settings"]["optimizer"]["lr"] == lr
    assert w.isWindowModified(), "a recorded run is saved with the project"
    assert panel.list.count() == 2 and panel.current.name == "Run 2"
    assert f"lr {lr:g} -&gt; 0.03" in panel.details.toHtml()

    assert "side by side" not in panel.details.toPlainText()  # nothing ticked yet
    for r in panel.records:
        panel.set_ticked(r.id)
    # the ticked runs side by side, the best final figure of each row in bold
    text = panel.details.toPlainText()
    assert "Ticked runs side by side" in text and "■ Run 1" in text and "■ Run 2" in text
    table = _comparison_html([(r, run_color(i)) for i, r in enumerate(panel.records)])
    best = min(r["metrics"]["val_loss"] for r in runs)
    worst = max(r["metrics"]["val_loss"] for r in runs)
    assert f"<b>{best:.4g}</b>" in table and f"<b>{worst:.4g}</b>" not in table
    best_acc = max(r["metrics"]["val_accuracy"] for r in runs)
    assert f"<b>{best_acc:.1%}</b>" in table
    assert run_color(0).name() in table and run_color(1).name() in table
    for plot in OVERLAID:
        drawn = w.plots[plot].overlay_data()
        assert {run for run, _ in drawn} == {"Run 1", "Run 2"}, plot
        assert {"Run 1", "Run 2"} <= set(legend_names(w, plot)), plot
    loss = w.plots["loss"].overlay_data()
    x, y = loss[("Run 1", "val_loss")]
    assert list(x) == [1.0, 2.0, 3.0] and list(y) == runs[0]["curves"]["val_loss"]
    assert ("Run 2", "val_accuracy") in w.plots["metrics"].overlay_data()
    assert ("Run 1", "fc1") in w.plots["gradient_norms"].overlay_data()
    colors = {w.plots["loss"]._overlay_items[i][1].opts["pen"].color().name() for i in (0, 2)}
    assert len(colors) == 2, "one colour per run"
    panel.set_ticked(panel.records[0].id, False)
    assert {run for run, _ in w.plots["loss"].overlay_data()} == {"Run 2"}
    assert "side by side" not in panel.details.toPlainText()  # one run: its details only

    target = tmp_path / "two runs.bplab.json"
    w.get_save_path = lambda *a: str(target)
    w.menus.act_save.trigger()
    assert not w.isWindowModified()
    saved = json.loads(target.read_text())
    assert [r["name"] for r in saved["runs"]] == ["Run 1", "Run 2"]

    w2 = make_window(target)
    panel2 = w2.dock_layout.runs_panel
    assert [r.name for r in panel2.records] == ["Run 1", "Run 2"]
    assert not w2.isWindowModified()
    for r in panel2.records:
        panel2.set_ticked(r.id)
    for plot in OVERLAID:
        assert {run for run, _ in w2.plots[plot].overlay_data()} == {"Run 1", "Run 2"}, plot
    assert not w2.plots["loss"].waiting.isVisible(), "the runs show before any training"


def test_restore_a_runs_settings_is_one_undoable_edit(qtbot, make_window):
    w = make_window()
    panel = w.dock_layout.runs_panel
    w.doc.set_value("training.epochs", 1)
    run_to_the_end(qtbot, w)
    first = panel.records[0]
    units, lr = w.doc.node("fc1")["units"], w.doc.get("optimizer.lr")
    noise = w.doc.get("dataset.noise")
    w.doc.push(SetNodeParam(w.doc, "fc1", "units", 5))
    w.doc.set_value("optimizer.lr", 0.2)
    w.doc.set_value("dataset.noise", 0.3)
    edited = run_settings(w.doc.project)
    count = w.doc.undo_stack.count()
    changes = panel.restore(first.id)
    assert changes == [f"fc1.units 5 -> {units}", f"dataset.noise 0.3 -> {noise:g}",
                       f"lr 0.2 -> {lr:g}"]
    assert w.doc.undo_stack.count() == count + 1, "one undoable edit"
    assert run_settings(w.doc.project) == first.settings
    assert w.session.stale, "the next Run trains the restored network"
    assert "Restored the settings of Run 1" in w.statusBar().currentMessage()
    w.doc.undo_stack.undo()
    assert run_settings(w.doc.project) == edited
    assert panel.restore(first.id) and panel.restore(first.id) == []  # nothing left to do


def test_stopping_a_paused_run_records_it_as_stopped(qtbot, make_window):
    w = make_window()
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    assert w.session.state == PAUSED and w.doc.runs == []
    w.session.stop()
    qtbot.waitUntil(lambda: len(w.doc.runs) == 1, timeout=TIMEOUT)
    assert w.doc.runs[0]["outcome"] == "stopped" and w.doc.runs[0]["steps"] == 1


# -- the commands, without a window ----------------------------------------------------------
def _doc_with_runs(spiral) -> ProjectDocument:
    spiral["runs"] = [
        {"id": f"r{i}", "name": f"Run {i}", "created": "2026-12-06T10:00:00+00:00",
         "outcome": "done", "steps": 10, "epochs": 1, "elapsed": 0.1,
         "settings": {"network": spiral["network"]}}
        for i in (1, 2)
    ]
    return ProjectDocument(spiral)


@pytest.mark.parametrize("make", [
    lambda doc: RemoveRun(doc, "r1"),
    lambda doc: RenameRun(doc, "r2", "after the fix"),
    lambda doc: ReplaceNetwork(doc, {"nodes": [{"id": "in", "type": "Input", "shape": [2]},
                                               {"id": "new", "type": "Dense", "units": 2}]}),
])
def test_run_commands_undo_and_redo_exactly(spiral, make):
    doc = _doc_with_runs(spiral)
    seen = []
    doc.runs_changed.connect(lambda: seen.append(len(doc.runs)))
    before = doc.to_project()
    doc.push(make(doc))
    after = doc.to_project()
    assert after != before and doc.is_dirty
    doc.undo_stack.undo()
    assert doc.to_project() == before and not doc.is_dirty
    doc.undo_stack.redo()
    assert doc.to_project() == after


def test_a_recorded_run_makes_the_document_dirty_until_saved(spiral):
    doc = _doc_with_runs(spiral)
    states = []
    doc.dirty_changed.connect(states.append)
    doc.add_run(dict(doc.runs[0], id="r3", name="Run 3"))
    assert doc.is_dirty and states == [True]
    doc.set_value("optimizer.lr", 0.5)
    doc.undo_stack.undo()  # the undo stack is clean again; the run is still unsaved
    assert doc.is_dirty and states[-1] is True
    doc.mark_saved()
    assert not doc.is_dirty and states[-1] is False
