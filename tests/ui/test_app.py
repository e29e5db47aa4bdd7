"""The main window with real widgets: training from the demo, files, export, layout, automation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bplab.ui.commands import SetNodeParam
from bplab.ui.main_window import MainWindow, demo_path, list_examples
from bplab.ui.theme import ThemeManager
from bplab.ui.training.worker import IDLE, PAUSED, RUNNING
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent, QPalette
from PySide6.QtWidgets import QApplication

from bplab.backend import cupy_status
from bplab.diagnostics import Fix

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30_000


@pytest.fixture
def settings_dir(tmp_path):
    path = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(path))
    return path


@pytest.fixture
def make_window(qtbot, settings_dir):
    windows = []

    def make(open_demo: bool = True) -> MainWindow:
        w = MainWindow()  # closed below, not by qtbot (it would close before automation=True)
        w.ask_save_changes = lambda: pytest.fail("unexpected save prompt")
        if open_demo:
            assert w.open_path(demo_path(), as_copy=True)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.automation = True  # no prompts while tearing down
        w.close()
        assert w.session.thread.isFinished()
        w.deleteLater()


def metric(window: MainWindow, key: str) -> float:
    _, y = window.plots["metrics"].data()[key]
    return float(y[-1]) if len(y) else float("nan")


def test_demo_trains_to_95_percent_validation_accuracy(qtbot, make_window):
    w = make_window()
    assert "Spiral" in w.windowTitle() and w.windowTitle().endswith("— bplab")
    assert w.train_actions.run.isEnabled()
    w.controls.buttons[0].click()  # Run
    assert w.session.state == RUNNING
    assert w.status_state.text() == "Training"
    qtbot.waitUntil(lambda: metric(w, "val_accuracy") > 0.95, timeout=60_000)
    w.run_view.on_frame()
    assert w.status_epoch.text().startswith("epoch ")
    assert int(w.status_epoch.text().split()[1]) >= 1
    assert w.status_progress.value() > 0
    if w.session.state == RUNNING:  # else the run already ended by itself
        with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT) as blocker:
            w.train_actions.run.trigger()  # Pause
        if blocker.args == ["paused"]:
            assert w.session.state == PAUSED and w.train_actions.run.text() == "&Resume"
        else:  # the 0.4 s run reached its end before the pause request was read
            assert blocker.args == ["done"]
    assert w.session.state in (PAUSED, IDLE)
    # The loss plot got every step.
    x, _ = w.plots["loss"].data()["train_loss_step"]
    assert len(x) > 100 and np.all(np.diff(x) > 0)


def test_run_is_disabled_with_a_reason_while_the_network_is_invalid(qtbot, make_window):
    w = make_window()
    w.doc.push(SetNodeParam(w.doc, "out", "units", 0))
    assert w.doc.plan.problems
    assert not w.train_actions.run.isEnabled()
    assert not w.train_actions.step.isEnabled()
    assert w.train_actions.run.toolTip().startswith("Cannot train: ")
    w.doc.undo_stack.undo()
    assert w.train_actions.run.isEnabled()
    assert "Cannot" not in w.train_actions.run.toolTip()


def test_editing_the_network_invalidates_the_trainer(qtbot, make_window):
    w = make_window()
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    assert w.session.state == PAUSED and not w.session.stale
    first = w.session.trainer
    w.doc.push(SetNodeParam(w.doc, "fc1", "units", 12))
    assert w.session.stale
    assert "fresh" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    assert w.session.trainer is not first
    assert w.session.trainer.network.layers["fc1"].params["weight"].data.shape[0] in (12, 2)


def test_panel_edits_go_through_the_undo_stack_and_lr_applies_live(qtbot, make_window):
    w = make_window()
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    trainer = w.session.trainer
    lr0 = w.doc.get("optimizer.lr")
    lr_edit = w.panel.optimizer_form.editors["lr"]
    lr_edit.setText("0.002")
    lr_edit.editingFinished.emit()
    assert w.doc.get("optimizer.lr") == pytest.approx(0.002)
    assert w.isWindowModified()
    assert not w.session.stale  # a new rate does not need a new trainer
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    assert w.session.trainer is trainer and trainer.step_count == 2
    assert trainer.lr == pytest.approx(0.002)
    w.doc.undo_stack.undo()
    assert w.doc.get("optimizer.lr") == pytest.approx(lr0)
    assert w.panel.optimizer_form.editors["lr"].text() == f"{lr0:g}"
    # A value the registry rejects is not written.
    lr_edit.setText("-1")
    lr_edit.editingFinished.emit()
    assert w.doc.get("optimizer.lr") == pytest.approx(lr0)
    assert "lr" in lr_edit.toolTip()
    # Epochs, full batch, data set: all undoable.
    w.panel.epochs_edit.setText("7")
    w.panel.epochs_edit.editingFinished.emit()
    assert w.doc.get("training.epochs") == 7
    w.panel.full_batch.setChecked(True)
    assert w.doc.get("training.batch_size") == "full"
    i = w.panel.dataset_combo.findData("moons")
    w.panel.dataset_combo.setCurrentIndex(i)
    w.panel.dataset_combo.activated.emit(i)
    assert w.doc.get("dataset.name") == "moons" and w.session.stale
    for _ in range(3):
        w.doc.undo_stack.undo()
    assert w.doc.get("training.epochs") != 7 and w.doc.get("dataset.name") == "spiral"


def test_data_from_a_csv_file_and_a_schedule(qtbot, make_window, tmp_path):
    w = make_window()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    rows = ["a,b,c,label"] + [f"{a:.4f},{b:.4f},{c:.4f},{int(a + b > 0)}" for a, b, c in x]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    w.panel.open_data_file = lambda: str(tmp_path / "data.csv")
    i = w.panel.dataset_combo.findData("file")
    w.panel.dataset_combo.setCurrentIndex(i)
    w.panel.dataset_combo.activated.emit(i)
    assert w.doc.get("dataset.name") == "file"
    assert w.doc.get("dataset.path") == str(tmp_path / "data.csv")
    qtbot.waitUntil(lambda: w.panel.preview.kind == "table", timeout=5000)
    assert w.panel.preview.model.rowCount() == 20
    assert w.panel.samples_edit.isEnabled() and w.panel.samples_edit.text() == ""
    assert not w.panel._data_form.isRowVisible(w.panel.noise_edit)
    # A schedule with a required hyper-parameter starts valid and gets its editors.
    before = w.doc.get("training.lr_schedule")
    i = w.panel.schedule_combo.findData("step")
    w.panel.schedule_combo.setCurrentIndex(i)
    w.panel.schedule_combo.activated.emit(i)
    spec = w.doc.get("training.lr_schedule")
    assert spec["type"] == "step" and spec["step_size"] >= 1
    assert "step_size" in w.panel.schedule_form.editors
    w.panel.schedule_form.editors["step_size"].setText("5")
    w.panel.schedule_form.editors["step_size"].editingFinished.emit()
    assert w.doc.get("training.lr_schedule.step_size") == 5
    w.doc.undo_stack.undo()
    w.doc.undo_stack.undo()
    assert w.doc.get("training.lr_schedule") == before


def test_default_initializer_is_one_undoable_edit(qtbot, make_window):
    w = make_window()
    without = [n["id"] for n in w.doc.nodes() if n["type"] == "Dense" and "init" not in n]
    assert without
    i = w.panel.init_combo.findData("he_normal")
    w.panel.init_combo.setCurrentIndex(i)
    count = w.doc.undo_stack.count()
    w.panel.init_apply.click()
    assert w.doc.undo_stack.count() == count + 1
    assert all(w.doc.node(n)["init"] == "he_normal" for n in without)
    w.doc.undo_stack.undo()
    assert all("init" not in w.doc.node(n) for n in without)


def test_gpu_entry_says_why_it_is_unavailable(make_window):
    w = make_window()
    backend, reason = cupy_status()
    item = w.panel.backend_combo.model().item(2)
    if backend is None:
        assert not item.isEnabled()
        assert reason in item.toolTip() and reason in w.panel.backend_label.text()
    else:
        assert item.isEnabled() and backend.describe() in w.panel.backend_label.text()


def test_diagnosis_fix_is_one_macro_and_undoable(make_window):
    w = make_window()
    count = w.doc.undo_stack.count()
    lr0 = w.doc.get("optimizer.lr")
    w.apply_fix(Fix("Lower the learning rate", "scale_lr", params={"factor": 0.1}))
    assert w.doc.get("optimizer.lr") == pytest.approx(lr0 * 0.1)
    assert w.doc.undo_stack.count() == count + 1
    w.apply_fix(Fix("He init", "init_he", layers=("fc1", "fc2")))
    init = str(w.doc.node("fc1")["init"])
    assert "he" in init or "kaiming" in init
    assert w.doc.undo_stack.count() == count + 2
    w.doc.undo_stack.undo()
    w.doc.undo_stack.undo()
    assert w.doc.get("optimizer.lr") == pytest.approx(lr0)


def test_save_writes_checkpoint_and_reopen_resumes(qtbot, make_window, tmp_path):
    w = make_window()
    assert not w.isWindowModified()
    for _ in range(3):
        with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
            w.train_actions.step.trigger()
    target = tmp_path / "my run.bplab.json"
    w.get_save_path = lambda *a: str(target)
    w.menus.act_save.trigger()  # untitled: Save asks for a name
    assert target.is_file()
    saved = json.loads(target.read_text())
    assert saved["checkpoint"] == "my run.ckpt.npz"
    assert (tmp_path / "my run.ckpt.npz").is_file()
    assert w.windowTitle().startswith("my run.bplab.json") and not w.isWindowModified()
    w.doc.set_value("training.seed", 5)
    assert w.isWindowModified()
    w.menus.act_save.trigger()
    assert not w.isWindowModified()
    saved = json.loads(target.read_text())
    assert saved["training"]["seed"] == 5
    # The new seed invalidated the trained weights: the project no longer points at them.
    assert "checkpoint" not in saved
    assert str(target.resolve()) == w.recent_files()[0]

    w2 = make_window(open_demo=False)
    assert w2.open_path(target)
    assert w2.path == target.resolve() and w2.session.trainer is None
    assert not w2.isWindowModified()
    assert w2.recent_files()[0] == str(target.resolve())


def test_reopen_restores_the_trained_weights(qtbot, make_window, tmp_path):
    w = make_window()
    for _ in range(4):
        with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
            w.train_actions.step.trigger()
    weights = w.session.trainer.network.state_dict()
    target = tmp_path / "resume.bplab.json"
    assert w.save_to(target)
    w2 = make_window(open_demo=False)
    with qtbot.waitSignal(w2.session.finished, timeout=TIMEOUT) as blocker:
        w2.open_path(target)
    assert blocker.args == ["built"]
    t = w2.session.trainer
    assert t.step_count == 4 and w2.session.state == PAUSED
    for k, v in weights.items():
        np.testing.assert_array_equal(t.network.state_dict()[k], v)
    with qtbot.waitSignal(w2.session.finished, timeout=TIMEOUT):
        w2.train_actions.step.trigger()
    assert w2.session.trainer is t and t.step_count == 5


def test_unsaved_changes_prompt(make_window, tmp_path):
    w = make_window()
    w.doc.set_value("training.seed", 3)
    answers = []

    def ask(answer):
        def f():
            answers.append(answer)
            return answer
        return f

    w.ask_save_changes = ask("cancel")
    w.menus.act_new.trigger()
    assert w.doc.get("training.seed") == 3 and answers == ["cancel"]
    w.ask_save_changes = ask("save")
    w.get_save_path = lambda *a: str(tmp_path / "kept.bplab.json")
    w.menus.act_new.trigger()
    assert (tmp_path / "kept.bplab.json").is_file()
    assert w.doc.get("name") == "Untitled" and not w.isWindowModified()
    w.doc.set_value("training.seed", 4)
    w.ask_save_changes = ask("discard")
    assert w.open_path(demo_path(), as_copy=True)
    assert answers == ["cancel", "save", "discard"]


def test_export_weights_through_the_menu(qtbot, make_window, tmp_path):
    w = make_window()
    target = tmp_path / "weights.npz"
    w.get_save_path = lambda *a: str(target)
    w.menus.act_export_weights.trigger()  # not trained yet: initial weights, and it says so
    assert target.is_file()
    assert "not been trained" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    target2 = tmp_path / "trained.safetensors"
    w.get_save_path = lambda *a: str(target2)
    w.menus.act_export_weights.trigger()
    from safetensors.numpy import load_file

    tensors = load_file(str(target2))
    for k, v in w.session.trainer.network.state_dict().items():
        np.testing.assert_array_equal(tensors[k], v)
    # An unknown format is a clear message, not a traceback.
    w.get_save_path = lambda *a: str(tmp_path / "weights.xyz")
    w.menus.act_export_weights.trigger()
    assert w.last_error is not None and "unknown format" in w.last_error.text()
    w.last_error.close()


def test_export_csv(qtbot, make_window, tmp_path):
    w = make_window()
    w.doc.set_value("training.epochs", 3)
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.run.trigger()
    w.get_directory = lambda *a: str(tmp_path / "csv")
    w.menus.act_export_csv.trigger()
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,") and len(rows) == 4
    assert (tmp_path / "csv" / "loss.csv").is_file()


def test_worker_error_shows_a_message_box_and_returns_to_idle(qtbot, make_window):
    w = make_window()
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()

    def boom():
        raise RuntimeError("kaboom")

    w.session.trainer.step = boom
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT) as blocker:
        w.train_actions.run.trigger()
    assert blocker.args == ["error"]
    assert w.session.state == IDLE and w.train_actions.run.text() == "&Run"
    box = w.last_error
    assert box is not None and "kaboom" in box.text()
    assert box.informativeText() and "RuntimeError" in box.detailedText()
    box.close()


def test_divergence_pauses_and_shows_the_engine_message(qtbot, make_window):
    w = make_window(open_demo=False)
    examples = {p.name: p for _, p in list_examples()}
    w.open_path(examples["exploding_gradients.bplab.json"], as_copy=True)
    with qtbot.waitSignal(w.session.diverged, timeout=TIMEOUT) as blocker:
        w.train_actions.run.trigger()
    qtbot.waitUntil(lambda: w.session.state == PAUSED, timeout=TIMEOUT)
    assert "diverged" in blocker.args[0]
    assert w.last_error is not None and blocker.args[0] == w.last_error.text()
    assert "learning rate" in w.last_error.informativeText()
    w.last_error.close()
    w.doc.set_value("optimizer.lr", 1e-6)  # lower it, then resume the same run
    trainer = w.session.trainer
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.run.trigger()
    assert w.session.trainer is trainer and trainer.lr == pytest.approx(1e-6)


def _diverge(qtbot, w):
    examples = {p.name: p for _, p in list_examples()}
    w.open_path(examples["exploding_gradients.bplab.json"], as_copy=True)
    with qtbot.waitSignal(w.session.diverged, timeout=TIMEOUT):
        w.train_actions.run.trigger()
    qtbot.waitUntil(lambda: w.session.state == PAUSED, timeout=TIMEOUT)
    return w.last_error


def test_divergence_dialog_lowers_the_rate_and_resumes(qtbot, make_window):
    w = make_window(open_demo=False)
    box = _diverge(qtbot, w)
    lr = w.doc.get("optimizer.lr")
    assert "Reset" in w.statusBar().currentMessage()
    # the engine's probed rate to resume at, never above the rate that diverged
    assert box.lr == pytest.approx(w.session.trainer.divergence.suggested_lr) and box.lr < lr
    box.lr_edit.setText("nonsense")
    assert not box.resume_button.isEnabled() and not box.reset_button.isEnabled()
    box.lr_edit.setText("1e-6")
    trainer = w.session.trainer
    states = []
    w.session.state_changed.connect(states.append)
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT) as blocker:
        box.resume_button.click()
    assert states[0] == RUNNING
    assert w.session.trainer is trainer and trainer.lr == pytest.approx(1e-6)
    assert w.doc.get("optimizer.lr") == pytest.approx(1e-6)
    if blocker.args[0] == "diverged":  # blown-up weights often diverge again: ask again
        assert w.last_error is not box and w.last_error.isVisible()
        w.last_error.close()
    else:
        assert "Reset" not in w.statusBar().currentMessage()
    w.doc.undo_stack.undo()  # the new rate is an ordinary edit
    assert w.doc.get("optimizer.lr") == pytest.approx(lr)


def test_divergence_dialog_resets_the_weights_and_runs_at_the_new_rate(qtbot, make_window):
    w = make_window(open_demo=False)
    box = _diverge(qtbot, w)
    old = w.session.trainer
    w.doc.set_value("training.epochs", 2)
    box.lr_edit.setText("1e-5")
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT) as blocker:
        box.reset_button.click()
    assert blocker.args[0] in ("done", "diverged")
    new = w.session.trainer
    assert new is not None and new is not old and new.lr == pytest.approx(1e-5)
    assert new.step_count <= new.total_steps == 2 * new.steps_per_epoch  # a fresh run


def test_plots_behind_tabs_get_the_context_later_but_before_any_update(qtbot, make_window):
    from bplab.ui.training.update import TrainingContext, TrainingUpdate

    from bplab.training import Report

    w = make_window()
    w.show_tab("loss")
    qtbot.waitUntil(lambda: w.plots["loss"].visibleRegion().isEmpty() is False)
    ctx = TrainingContext("classification", ("fc1", "out"), ("Dense", "Dense"), ("act1",),
                          "spiral", True, steps_per_epoch=13, total_steps=130)
    w.session.context_changed.emit(ctx)
    assert w.plots["loss"].ctx is ctx  # on screen: at once
    hidden = [n for n, p in w.plots.items() if p.visibleRegion().isEmpty()]
    assert "gradient_norms" in hidden and all(w.plots[n].ctx is not ctx for n in hidden)
    report = Report("step", 1, 0, 1 / 13, 0.7, 0.02, 0.0, 0.01, total_steps=130)
    w.session.updated.emit(TrainingUpdate(np.array([1]), np.array([0.7]), (), report))
    assert all(p.ctx is ctx for p in w.plots.values())
    assert w.status_step.text() == "step –"  # the status bar follows at the next frame
    w.run_view.on_frame()
    assert w.status_step.text() == "step 1" and w.status_progress.maximum() == 130


def test_close_while_training_joins_the_thread(qtbot, make_window):
    w = make_window()
    w.doc.set_value("training.epochs", 100_000)
    w.doc.mark_saved()
    w.train_actions.run.trigger()
    qtbot.waitUntil(lambda: w.session.latest is not None, timeout=TIMEOUT)
    assert w.close()
    assert w.session.thread.isFinished()


def test_layout_is_remembered(qtbot, make_window, settings_dir):
    w = make_window()
    w.docks["histograms"].hide()
    w.resize(1111, 777)
    w.close()
    w2 = make_window()
    assert not w2.docks["histograms"].isVisible()
    assert w2.docks["loss"].isVisible()
    w2.reset_layout()
    assert not w2.docks["histograms"].isHidden()
    assert any(settings_dir.rglob("*.ini"))


def test_dropping_a_project_file_opens_it(qtbot, make_window, tmp_path):
    w = make_window()
    project = json.loads(demo_path().read_text())
    project["name"] = "Dropped"
    path = tmp_path / "dropped.bplab.json"
    path.write_text(json.dumps(project))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    w.dropEvent(event)
    qtbot.waitUntil(lambda: w.path == path.resolve(), timeout=5000)
    assert w.doc.get("name") == "Dropped"


def test_examples_menu_lists_every_example_and_each_opens_clean(qtbot, make_window):
    w = make_window()
    titles = [a.text() for a in w.menus.examples_menu.actions()]
    files = sorted(p.name for p in (REPO / "resources" / "examples").glob("*.bplab.json"))
    assert len(titles) == len(files) >= 7
    for action in w.menus.examples_menu.actions():
        action.trigger()
        assert w.path is None and not w.isWindowModified()
        assert not w.doc.plan.problems, (action.text(), w.doc.plan.problems)
        assert w.train_actions.run.isEnabled()


def test_themes(make_window):
    w = make_window()
    app = QApplication.instance()
    theme = ThemeManager(app)
    w.theme = theme
    try:
        w.menus.theme_actions["dark"].trigger()
        assert theme.dark
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 100
        w.menus.theme_actions["light"].trigger()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 150
        assert w.settings.value("theme") == "light"
    finally:
        theme.set_mode("light")


def test_every_action_and_control_has_a_tooltip(make_window):
    w = make_window()
    for menu_action in w.menuBar().actions():
        for a in menu_action.menu().actions():
            if a.isSeparator():
                continue
            assert a.toolTip(), a.text()
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QToolButton

    for cls in (QComboBox, QLineEdit, QAbstractButton):
        for widget in w.panel.findChildren(cls):
            if not widget.isVisibleTo(w.panel) or isinstance(widget.parent(), QComboBox):
                continue
            if isinstance(widget, QToolButton) and widget.defaultAction() is not None:
                assert widget.defaultAction().toolTip()
            else:
                assert widget.toolTip(), widget


def test_show_tab(make_window):
    w = make_window()
    assert w.show_tab("histograms")
    assert w.show_tab("Gradient norms")
    assert not w.show_tab("nope")


def test_automation_flags(tmp_path):
    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path),
           "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bplab.ui", "--train", "--epochs", "40", "--quit-after", "30",
         "--screenshot", str(shot), "--tab", "diagnosis,loss", "--tab", "nope"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=90, check=False)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) >= {"steps", "epochs", "train_loss", "val_loss", "val_accuracy",
                           "steps_per_second", "engine_steps_per_second", "training_seconds",
                           "stall_ms", "stall_measured"}
    assert result["epochs"] == 40 and result["steps"] == 40 * 13  # --epochs, whole run
    assert wall < 25  # it quit soon after training ended, not at --quit-after
    assert 0 < result["training_seconds"] < wall
    assert result["steps_per_second"] == pytest.approx(
        result["steps"] / result["training_seconds"], rel=0.01)
    assert result["engine_steps_per_second"] >= result["steps_per_second"]
    assert "end of training" in result["stall_measured"]
    assert 0 < result["gui_cpu_seconds"] < result["training_seconds"] + 1.0  # over the run
    assert "no panel called 'nope'" in proc.stderr  # each --tab name is checked
    assert 0 < result["val_accuracy"] <= 1
    assert set(result["stall_ms"]) == {"p50", "p99", "max"}
    assert result["stall_ms"]["p50"] <= result["stall_ms"]["p99"] <= result["stall_ms"]["max"]
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_uncaught_exceptions_in_threads_reach_a_message_box(qtbot, monkeypatch):
    import threading

    from bplab.ui import errors
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(errors, "_relay", None)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    errors.install_excepthooks()
    assert threading.excepthook is not threading.__excepthook__

    def fail():
        raise KeyError("lost in a thread")

    t = threading.Thread(target=fail, name="helper")
    t.start()
    t.join()

    def box():
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QMessageBox) and "lost in a thread" in w.text():
                return w
        return None

    qtbot.waitUntil(lambda: box() is not None, timeout=5000)
    assert "helper" in box().text() and "KeyError" in box().detailedText()
    box().close()


def test_before_training_the_boundary_shows_the_data_and_the_bar_the_run_length(make_window,
                                                                                  qtbot):
    w = make_window()
    boundary = w.plots["boundary"]

    def shown():
        return len(boundary.data()["train_points"][0]) > 0

    qtbot.waitUntil(shown, timeout=10_000)
    assert len(boundary.data()["train_points"][0]) == 400  # spiral: 500 samples, 20 % held out
    assert len(boundary.data()["val_points"][0]) == 100
    assert w.status_progress.maximum() == 300 * 13  # 300 epochs of ceil(400 / 32) batches


def test_vanishing_example_is_diagnosed_and_its_fix_clears_it(qtbot, make_window):
    """The issue's walk-through: train the Vanishing gradients example, read the diagnosis
    naming the early layers, press Apply on the suggested fix, train again: it is gone."""
    examples = {p.name: p for _, p in list_examples()}
    w = make_window(open_demo=False)
    assert w.open_path(examples["vanishing_gradients.bplab.json"], as_copy=True)
    w.doc.set_value("training.epochs", 25)
    panel = w.diagnosis

    def run_to_the_end():
        w.controls.buttons[0].click()  # Run
        qtbot.waitUntil(lambda: w.session.state == IDLE, timeout=60_000)
        w.run_view.on_frame()
        panel.refresh()  # the diagnosis dock may sit behind a tab, where frames skip it

    run_to_the_end()
    codes = {f.code: f for f in panel.findings}
    assert "vanishing_gradients" in codes
    finding = codes["vanishing_gradients"]
    assert finding.layers[:2] == ("fc1", "fc2")
    card = next(c for c in panel.cards if c.finding.code == "vanishing_gradients")
    fix, button = card.fixes_with_buttons()[0]
    assert fix.action == "replace_activation"
    count = w.doc.undo_stack.count()
    button.click()
    assert w.doc.undo_stack.count() == count + 1, "one undoable edit"
    types = {n["id"]: n["type"] for n in w.doc.nodes()}
    # the ReLU named after its new type (sig1 -> relu1), links and places following
    assert types["relu1"] == "ReLU" and "sig1" not in types
    assert w.doc.node("fc1")["init"] == "he_normal"

    run_to_the_end()
    assert "vanishing_gradients" not in {f.code for f in panel.findings}
    assert len(panel.cards) == len(panel.findings)


def test_a_csv_files_target_task_and_window_are_chosen_in_the_data_box(qtbot, make_window,
                                                                       tmp_path):
    """Kaggle's digit files put the label first: choosing such a file trains on the column
    named like labels, not on the last pixel; the Target combo lists the file's columns and
    switches the target, the Task combo overrides the guess, and a window turns the rows into
    a time series. Built-in sets show none of these rows."""
    w = make_window()
    panel = w.panel
    assert not panel._data_form.isRowVisible(panel.target_combo)
    rng = np.random.default_rng(0)
    rows = ["label,p0,p1,p2"] + [f"{int(a > 0)},{a:.3f},{b:.3f},{c:.3f}"
                                 for a, b, c in rng.normal(size=(60, 3))]
    (tmp_path / "digits.csv").write_text("\n".join(rows) + "\n")
    panel.open_data_file = lambda: str(tmp_path / "digits.csv")
    i = panel.dataset_combo.findData("file")
    panel.dataset_combo.setCurrentIndex(i)
    panel.dataset_combo.activated.emit(i)
    assert w.doc.get("dataset.target") == "label"
    for editor in (panel.target_combo, panel.task_combo, panel.window_edit):
        assert panel._data_form.isRowVisible(editor)
    columns = [panel.target_combo.itemText(k) for k in range(panel.target_combo.count())]
    assert columns == ["label", "p0", "p1", "p2"]
    assert panel.target_combo.currentData() == "label"
    qtbot.waitUntil(lambda: panel.preview.dataset is not None
                    and panel.preview.dataset.task == "classification", timeout=5000)

    k = panel.target_combo.findData("p2")
    panel.target_combo.setCurrentIndex(k)
    panel.target_combo.activated.emit(k)
    assert w.doc.get("dataset.target") == "p2"
    qtbot.waitUntil(lambda: panel.preview.dataset.task == "regression", timeout=5000)
    assert panel.preview.dataset.feature_names == ["label", "p0", "p1"]

    k = panel.task_combo.findData("classification")
    panel.task_combo.setCurrentIndex(k)
    panel.task_combo.activated.emit(k)
    assert w.doc.get("dataset.task") == "classification"
    k = panel.task_combo.findData(None)
    panel.task_combo.activated.emit(k)
    assert w.doc.get("dataset.task") is None and "task" not in w.doc.get("dataset")

    assert not panel.horizon_edit.isEnabled()
    panel.window_edit.setText("5")
    panel.window_edit.editingFinished.emit()
    assert w.doc.get("dataset.window") == 5 and panel.horizon_edit.isEnabled()
    for _ in range(4):  # the window, the task twice, then the target: the guessed one
        w.doc.undo_stack.undo()
    assert w.doc.get("dataset.target") == "label" and w.doc.get("dataset.window") is None
    assert panel.target_combo.currentData() == "label"

    i = panel.dataset_combo.findData("moons")
    panel.dataset_combo.activated.emit(i)
    assert not panel._data_form.isRowVisible(panel.target_combo)
    assert not panel._data_form.isRowVisible(panel.task_combo)


def test_samples_subsample_real_data_and_files_but_not_a_time_series(qtbot, make_window,
                                                                    tmp_path):
    """The engine takes a seeded subsample of real data and files; the Data box offers it
    (empty: every row) and says what it kept. Noise is a generator's and shows only for
    generated sets. A time series keeps every window: setting a window drops the
    subsample in the same edit, and Samples is off while the window is set."""
    w = make_window()
    panel = w.panel
    panel.dataset_combo.activated.emit(panel.dataset_combo.findData("digits"))
    assert panel.samples_edit.isEnabled() and panel.samples_edit.text() == ""
    assert panel.samples_edit.placeholderText() == "all 1,797"
    assert not panel._data_form.isRowVisible(panel.noise_edit)
    panel.samples_edit.setText("300")
    panel.samples_edit.editingFinished.emit()
    assert w.doc.get("dataset.samples") == 300
    assert panel.dataset_info.text() == "Classification, 300 samples"
    qtbot.waitUntil(lambda: panel.preview.dataset is not None
                    and panel.preview.dataset.n_train + panel.preview.dataset.n_val == 300,
                    timeout=5000)

    rng = np.random.default_rng(2)
    rows = ["a,b,label"] + [f"{a:.3f},{b:.3f},{int(a > b)}" for a, b in rng.normal(size=(80, 2))]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    panel.open_data_file = lambda: str(tmp_path / "pairs.csv")
    panel.dataset_combo.activated.emit(panel.dataset_combo.findData("file"))
    assert panel.samples_edit.isEnabled() and panel.samples_edit.placeholderText() == "all rows"
    panel.samples_edit.setText("50")
    panel.samples_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: "50 rows" in panel.dataset_info.text(), timeout=5000)
    lines = panel.dataset_info.text().splitlines()
    assert lines[0] == "pairs.csv: 50 rows, 2 features, 2 classes"
    assert "A seeded, stratified subsample: 50 of its 80 rows" in lines

    edits = w.doc.undo_stack.count()
    panel.window_edit.setText("4")
    panel.window_edit.editingFinished.emit()
    assert w.doc.undo_stack.count() == edits + 1
    assert w.doc.get("dataset.window") == 4 and "samples" not in w.doc.get("dataset")
    assert not panel.samples_edit.isEnabled()
    assert panel.samples_edit.placeholderText() == "every window"
    w.doc.undo_stack.undo()
    assert w.doc.get("dataset.samples") == 50 and "window" not in w.doc.get("dataset")
    assert panel.samples_edit.isEnabled()

    panel.dataset_combo.activated.emit(panel.dataset_combo.findData("spiral"))
    assert panel._data_form.isRowVisible(panel.noise_edit)
    assert panel.noise_edit.text() and panel.samples_edit.text()


def test_divide_target_by_shows_for_regressions_and_writes_the_divisor(qtbot, make_window,
                                                                       tmp_path):
    """Prices near 180,000: the Data box's Divide target by (the unscaled-targets fix)
    shows for regressions only, built-in or read from a file, and writes the divisor the
    engine divides the targets by."""
    w = make_window()
    panel, form = w.panel, w.panel._data_form
    panel.dataset_combo.activated.emit(panel.dataset_combo.findData("spiral"))
    assert not form.isRowVisible(panel.divisor_edit)
    panel.dataset_combo.activated.emit(panel.dataset_combo.findData("sine"))
    assert form.isRowVisible(panel.divisor_edit) and panel.divisor_edit.text() == ""
    panel.divisor_edit.setText("10")
    panel.divisor_edit.editingFinished.emit()
    assert w.doc.get("dataset.target_divisor") == 10
    qtbot.waitUntil(lambda: panel.preview.dataset is not None
                    and panel.preview.dataset.target_names == ["y / 10"], timeout=5000)

    rng = np.random.default_rng(3)
    rows = ["a,b,label"] + [f"{a:.3f},{b:.3f},{int(a > b)}" for a, b in rng.normal(size=(40, 2))]
    (tmp_path / "classes.csv").write_text("\n".join(rows) + "\n")
    panel.open_data_file = lambda: str(tmp_path / "classes.csv")
    panel.dataset_combo.activated.emit(panel.dataset_combo.findData("file"))
    qtbot.waitUntil(lambda: "2 classes" in panel.dataset_info.text(), timeout=5000)
    assert not form.isRowVisible(panel.divisor_edit)  # read as classes: no target to divide
    k = panel.target_combo.findData("a")
    panel.target_combo.activated.emit(k)  # column a: a regression
    qtbot.waitUntil(lambda: "regression of a" in panel.dataset_info.text(), timeout=5000)
    assert form.isRowVisible(panel.divisor_edit)


def test_the_data_box_says_what_reading_a_csv_changed(qtbot, make_window, tmp_path):
    """A file with a text column and missing values: the Data box names the file, its rows
    and task, and what was one-hot encoded, filled and left out, and keeps saying it across
    edits elsewhere in the project."""
    w = make_window()
    rng = np.random.default_rng(1)
    lines = ["name,sex,age,label"]
    for i, (a, b) in enumerate(rng.normal(size=(40, 2))):
        age = "" if i % 10 == 0 else f"{30 + 10 * a:.1f}"
        lines.append(f"p{i},{'female' if b > 0 else 'male'},{age},{int(a + b > 0)}")
    (tmp_path / "people.csv").write_text("\n".join(lines) + "\n")
    w.panel.open_data_file = lambda: str(tmp_path / "people.csv")
    i = w.panel.dataset_combo.findData("file")
    w.panel.dataset_combo.activated.emit(i)
    qtbot.waitUntil(lambda: "One-hot" in w.panel.dataset_info.text(), timeout=5000)
    text = w.panel.dataset_info.text()
    assert text.splitlines()[0] == "people.csv: 40 rows, 3 features, 2 classes"
    assert "One-hot: sex (2 values)" in text
    assert "Missing values filled: age (4 with its mean" in text
    assert "Left out: name (text, 40 different values)" in text
    assert w.panel.preview.dataset.feature_names == ["sex=female", "sex=male", "age"]
    w.doc.set_value("training.epochs", 3)  # an edit elsewhere: the panel refreshes
    assert w.panel.dataset_info.text() == text


def test_standardize_features_is_a_check_box_of_the_data_box(qtbot, make_window):
    w = make_window()
    box = w.panel.standardize_check
    i = w.panel.dataset_combo.findData("wine")
    w.panel.dataset_combo.activated.emit(i)
    qtbot.waitUntil(lambda: w.panel.preview.dataset is not None
                    and w.panel.preview.dataset.name == "wine", timeout=5000)
    assert not box.isChecked() and w.panel.preview.dataset.mean is None
    box.click()
    assert w.doc.get("dataset.standardize") is True
    qtbot.waitUntil(lambda: w.panel.preview.dataset.mean is not None, timeout=5000)
    w.doc.undo_stack.undo()
    assert not box.isChecked() and "standardize" not in w.doc.get("dataset")
    w.doc.undo_stack.redo()
    assert box.isChecked()


def test_columns_are_left_out_from_the_leave_out_menu(qtbot, make_window, tmp_path):
    """Titanic's PassengerId is a number but no feature: the Leave out menu lists every
    column but the target, a tick leaves one out (one undo step), and a column made the
    target stops being left out in the same edit."""
    w = make_window()
    panel = w.panel
    rng = np.random.default_rng(2)
    rows = ["PassengerId,Pclass,Age,Survived"] + [
        f"{i + 1},{1 + i % 3},{30 + 10 * a:.1f},{int(a > 0)}"
        for i, a in enumerate(rng.normal(size=50))]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    panel.open_data_file = lambda: str(tmp_path / "t.csv")
    panel.dataset_combo.activated.emit(panel.dataset_combo.findData("file"))
    assert panel._data_form.isRowVisible(panel.ignore_button)
    assert [a.text() for a in panel.ignore_menu.actions()] == ["PassengerId", "Pclass", "Age"]
    assert panel.ignore_button.text() == "None: every column"
    count = w.doc.undo_stack.count()
    action = panel.ignore_menu.actions()[0]
    action.setChecked(True)
    panel.ignore_menu.triggered.emit(action)
    assert w.doc.get("dataset.ignore") == ["PassengerId"]
    assert w.doc.undo_stack.count() == count + 1
    assert panel.ignore_button.text() == "PassengerId"
    qtbot.waitUntil(lambda: panel.preview.dataset is not None
                    and panel.preview.dataset.feature_names == ["Pclass", "Age"], timeout=5000)
    assert "Left out by the project: PassengerId" in panel.dataset_info.text()
    k = panel.target_combo.findData("PassengerId")
    panel.target_combo.activated.emit(k)
    assert w.doc.get("dataset.target") == "PassengerId" and w.doc.get("dataset.ignore") is None
    assert w.doc.undo_stack.count() == count + 2
    assert "PassengerId" not in [a.text() for a in panel.ignore_menu.actions()]
    w.doc.undo_stack.undo()
    assert w.doc.get("dataset.ignore") == ["PassengerId"]
    assert panel.ignore_menu.actions()[0].isChecked()


def test_the_app_quits_cleanly_with_a_filled_gallery_hidden_behind_the_confusion_tab(tmp_path):
    """The digits example trains, the mistakes gallery fills its cells behind the Confusion
    tab, and the window closes: the process crashed in the scenes' teardown (SIGSEGV) before
    the plots released their items on close."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "bplab.ui", str(REPO / "resources/examples/digits_mlp.bplab.json"),
         "--train", "--epochs", "2", "--quit-after", "30", "--tab", "confusion"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1])["epochs"] == 2
