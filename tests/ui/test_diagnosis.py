"""The diagnosis panel and the fix controller: findings in plain words, fixes as one
undo step each."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from bplab.ui.diagnosis import DiagnosisPanel
from bplab.ui.fix_controller import apply_fix
from bplab.ui.models.document import ProjectDocument
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from fix_cases import DEEP_SIGMOID, dead_relu_findings, project, vanishing_findings
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication, QPushButton

from bplab import diagnostics
from bplab.diagnostics import Finding, Fix, LayerStats
from bplab.fixes import apply_fix as engine_apply_fix
from bplab.fixes import edits_for
from bplab.training import Report


# -- the diagnosis window is the engine's ------------------------------------------------------
def test_the_panel_defines_no_window_of_its_own():
    import bplab.ui.diagnosis as panel_module

    source = Path(panel_module.__file__).read_text(encoding="utf-8")
    assert not re.search(r"^\s*\w*WINDOW\w*\s*=", source, re.MULTILINE)
    assert not hasattr(panel_module, "DIAGNOSIS_WINDOW")


@pytest.mark.parametrize("window", [diagnostics.DIAGNOSIS_WINDOW, 3, 12])
def test_the_panel_quotes_the_engines_window(qtbot, monkeypatch, window):
    monkeypatch.setattr(diagnostics, "DIAGNOSIS_WINDOW", window)
    panel = DiagnosisPanel()
    qtbot.addWidget(panel)
    assert f"last {window} diagnostic samples" in panel.summary.toolTip()
    panel.set_context()
    for step in range(10, 10 * (window + 3), 10):
        panel.add_update(diag_update(step, []))
    panel.refresh()
    assert panel.summary.text() == f"No problems found in the last {window} diagnostic samples"


# -- the panel ---------------------------------------------------------------------------------
def diag_update(step, findings, with_layers=True):
    layers = (LayerStats("fc1", "Dense", 0, 0.1, 1.0, 1e-3, 0.01),) if with_layers else None
    r = Report("step", step, 0, 0.1, 0.5, 0.1, 0.0, 0.0, layers=layers,
               findings=tuple(findings) if findings is not None else None)
    return TrainingUpdate(np.array([step]), np.array([0.5]), (), r, diagnostics=r)


def buttons_of(panel):
    return [b for b in panel.findChildren(QPushButton)
            if b.text() == "Apply" and b.isVisibleTo(panel)]


def test_panel_lists_findings_with_their_fixes(qtbot):
    applied = []
    panel = DiagnosisPanel(applied.append)
    qtbot.addWidget(panel)
    findings = vanishing_findings() + dead_relu_findings()
    panel.set_findings(findings, samples=5)
    assert [c.finding for c in panel.cards] == findings
    card = panel.cards[0]
    assert card.title.text() == "Vanishing gradients"
    assert card.message.text() == findings[0].message
    assert "first to last ratio" in card.evidence.text()
    assert "fc1" in card.layers.text()
    fix_texts = [row[0].text() for row in card.fix_rows]
    assert all(f.description in t for f, t in zip(findings[0].fixes, fix_texts))
    # one Apply button per mechanical fix; advice-only fixes get none
    n_mech = sum(1 for f in findings for x in f.fixes if x.action)
    assert len(buttons_of(panel)) == n_mech
    assert "2 problems found" in panel.summary.text()
    assert "1 error" in panel.summary.text() and "1 warning" in panel.summary.text()


def test_apply_calls_back_with_the_right_fix_and_emits(qtbot):
    applied = []
    panel = DiagnosisPanel(applied.append)
    qtbot.addWidget(panel)
    findings = dead_relu_findings() + vanishing_findings()
    panel.set_findings(findings, samples=5)
    card = panel.cards[1]
    fix, button = card.fixes_with_buttons()[1]
    assert fix.action == "add_batchnorm"
    with qtbot.waitSignal(panel.fix_applied) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert applied == [fix] and applied[0] is fix
    assert blocker.args == [fix]
    assert "applied" in card.fix_rows[1][2].text()


def test_apply_without_callback_still_emits(qtbot):
    panel = DiagnosisPanel()
    qtbot.addWidget(panel)
    panel.set_findings(dead_relu_findings(), samples=5)
    fix, button = panel.cards[0].fixes_with_buttons()[0]
    with qtbot.waitSignal(panel.fix_applied) as blocker:
        button.click()
    assert blocker.args == [fix]


def test_hover_and_click_highlight_layers(qtbot):
    panel = DiagnosisPanel()
    qtbot.addWidget(panel)
    findings = vanishing_findings() + dead_relu_findings()
    panel.set_findings(findings, samples=5)
    seen = []
    panel.layers_highlighted.connect(seen.append)
    card = panel.cards[1]
    QApplication.sendEvent(card, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
    assert seen[-1] == list(findings[1].layers) == ["r1"]
    QApplication.sendEvent(card, QEvent(QEvent.Type.Leave))
    assert seen[-1] == []
    qtbot.mouseClick(panel.cards[0], Qt.MouseButton.LeftButton)
    assert seen[-1] == list(findings[0].layers)
    QApplication.sendEvent(card, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
    QApplication.sendEvent(card, QEvent(QEvent.Type.Leave))
    assert seen[-1] == list(findings[0].layers)  # back to the selected finding
    qtbot.mouseClick(panel.cards[0], Qt.MouseButton.LeftButton)  # deselect
    assert seen[-1] == []


def test_no_findings_says_so_and_counts_samples(qtbot):
    panel = DiagnosisPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.summary.text() and panel.empty.isVisible() and panel.empty.text()
    ctx = TrainingContext("classification", ("fc1",), ("Dense",), (), "spiral", True)
    panel.set_context(ctx)
    for step in (10, 20, 20, 30):  # a resent report is not a new sample
        panel.add_update(diag_update(step, []))
    panel.refresh()
    assert panel.summary.text() == "No problems found in the last 3 diagnostic samples"
    assert panel.empty.isVisible() and not panel.cards
    window = diagnostics.DIAGNOSIS_WINDOW
    for step in range(40, 40 + 10 * window, 10):
        panel.add_update(diag_update(step, []))
    panel.refresh()
    assert panel.summary.text() == f"No problems found in the last {window} diagnostic samples"


def test_updates_refresh_numbers_in_place_and_rebuild_on_new_problems(qtbot):
    panel = DiagnosisPanel()
    qtbot.addWidget(panel)
    panel.set_context()
    (f1,) = dead_relu_findings()
    panel.add_update(diag_update(10, [f1]))
    panel.refresh()
    card = panel.cards[0]
    f2 = Finding(f1.code, f1.severity, f1.title, "92% of the units after 'r1' output zero",
                 f1.layers, {"dead.r1": 0.92}, f1.fixes)
    panel.add_update(diag_update(20, [f2]))
    panel.refresh()
    assert panel.cards[0] is card and card.message.text().startswith("92%")
    assert "92%" in card.evidence.text()
    panel.add_update(diag_update(30, vanishing_findings() + [f2]))
    panel.refresh()
    assert [c.finding.code for c in panel.cards] == ["vanishing_gradients", "dead_relu"]
    # an update without findings keeps what is shown
    panel.add_update(diag_update(40, None))
    panel.refresh()
    assert len(panel.cards) == 2
    panel.add_update(diag_update(50, []))
    panel.refresh()
    assert not panel.cards and "No problems found" in panel.summary.text()


def test_findings_from_epoch_reports_are_shown(qtbot):
    panel = DiagnosisPanel()
    qtbot.addWidget(panel)
    stalled = Finding("stalled_loss", "info", "Loss has stalled", "flat", (), {"loss": 0.5},
                      (Fix("Raise the learning rate", "scale_lr", (), {"factor": 3.0}),))
    r = Report("epoch", 50, 5, 5.0, 0.5, 0.1, 0.0, 0.0, metrics={"train_loss": 0.5},
               findings=(stalled,))
    panel.add_update(TrainingUpdate(np.array([50]), np.array([0.5]), (r,), r))
    panel.refresh()
    assert [c.finding for c in panel.cards] == [stalled]
    assert "1 problem found: 1 note" == panel.summary.text()


def test_panel_has_tooltips_and_a_minimum_size(qtbot):
    panel = DiagnosisPanel()
    qtbot.addWidget(panel)
    panel.set_findings(vanishing_findings(), samples=5)
    assert all(b.toolTip() for b in panel.findChildren(QPushButton))
    assert panel.minimumWidth() >= 250 and panel.minimumHeight() >= 150


# -- the fix controller: the engine's edits as one undo step -----------------------------------
EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


class FakeStatusBar:
    def __init__(self):
        self.messages = []

    def showMessage(self, text, msecs=0):  # noqa: N802  (QStatusBar's name)
        self.messages.append((text, msecs))


def document(p):
    doc = ProjectDocument()
    doc.set_project(p)
    return doc


def without_positions(p):
    p = copy.deepcopy(p)
    p.get("ui", {}).pop("positions", None)
    return p


@pytest.mark.parametrize("name", ["vanishing_gradients", "exploding_gradients"])
def test_controller_makes_the_engines_project_in_one_undo_step(qtbot, name):
    raw = json.loads((EXAMPLES / f"{name}.bplab.json").read_text())
    fixes = [Fix("", "replace_activation", (), {"from": ["Sigmoid", "Tanh"], "to": "ReLU",
                                                 "init": "he_normal",
                                                 "init_layers": ["fc1", "fc2"]}),
             Fix("", "init_he"), Fix("", "add_batchnorm"),
             Fix("", "enable_clipping", (), {"clip_grad_norm": 1.0}),
             Fix("", "scale_lr", (), {"factor": 0.1})]
    for fix in fixes:
        doc = document(raw)
        before = doc.to_project()
        assert edits_for(fix, before), fix
        highlighted, status = [], FakeStatusBar()
        assert apply_fix(doc, fix, highlight=highlighted.append, status=status) is True
        assert doc.undo_stack.count() == 1
        assert without_positions(doc.project) == without_positions(
            engine_apply_fix(before, fix))
        if fix.action in ("enable_clipping", "scale_lr"):
            assert highlighted == []  # settings: no node to point at
        else:
            (ids,) = highlighted
            assert ids and all(doc.has_node(n) for n in ids)
        assert "Undo reverts it" in status.messages[0][0]
        doc.undo_stack.undo()
        assert doc.project == before
        # A document collected with commands on its stack can crash PySide's collector
        # (seen with two or more commands): empty the stack of each one left behind.
        doc.undo_stack.clear()


def test_a_fix_applied_from_the_panel_is_one_undo_step(qtbot):
    doc = document(project(DEEP_SIGMOID))
    before = doc.to_project()
    panel = DiagnosisPanel(lambda fix: apply_fix(doc, fix))
    qtbot.addWidget(panel)
    panel.set_findings(vanishing_findings(), samples=5)
    fix, button = next((f, b) for f, b in panel.cards[0].fixes_with_buttons()
                       if f.action == "add_batchnorm")
    with qtbot.waitSignal(panel.fix_applied):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert doc.undo_stack.count() == 1
    assert [n for n in doc.node_ids() if n.startswith("bn")] == ["bn1", "bn2", "bn3"]
    assert doc.node("bn1")["inputs"] == ["fc1"] and doc.node("s1")["inputs"] == ["bn1"]
    assert doc.plan.ok
    doc.undo_stack.undo()
    assert doc.project == before
    doc.undo_stack.redo()
    assert len(doc.node_ids()) == len(DEEP_SIGMOID) + 3
    doc.undo_stack.clear()  # see test_controller_makes_the_engines_project_in_one_undo_step


def test_a_fix_that_cannot_apply_is_reported_and_changes_nothing(qtbot):
    doc = document(project(DEEP_SIGMOID))
    before = doc.to_project()
    reported = []
    bad = Fix("Swap", "replace_activation", ("s1",), {"from": ["Sigmoid"], "to": "Sigmoidal"})
    panel = DiagnosisPanel(lambda fix: apply_fix(doc, fix, report=reported.append))
    qtbot.addWidget(panel)
    card_finding = Finding("saturation", "warning", "Saturated", "m", ("s1",), {}, (bad,))
    panel.set_findings([card_finding], samples=5)
    (_, button), = panel.cards[0].fixes_with_buttons()
    with qtbot.assertNotEmitted(panel.fix_applied):
        button.click()
    assert doc.undo_stack.count() == 0 and doc.project == before
    (info,) = reported
    assert "Swap" in info.text and "'Sigmoidal'" in info.remedy and "s1" in info.remedy
    assert "applied" not in panel.cards[0].fix_rows[0][2].text()


@pytest.mark.parametrize("fix_id", ["batchnorm", "residual"])
def test_a_fixs_new_nodes_do_not_overlap_on_the_canvas(qtbot, fix_id):
    """The issue's BatchNorm fix drew its ten new nodes on top of the Sigmoid nodes."""
    from bplab.ui.editor import NetworkScene, NetworkView

    raw = json.loads((EXAMPLES / "vanishing_gradients.bplab.json").read_text())
    doc = document(raw)
    scene = NetworkScene(doc)
    view = NetworkView(scene)
    qtbot.addWidget(view)
    layers = tuple(n["id"] for n in raw["network"]["nodes"] if n["type"] == "Dense")
    fix = next(f for f in diagnostics._vanishing_fixes(
        {n["id"]: n["type"] for n in raw["network"]["nodes"]}, list(layers)) if f.id == fix_id)
    before = set(doc.node_ids())
    assert apply_fix(doc, fix)
    new = set(doc.node_ids()) - before
    assert len(new) >= 9
    rects = {item.node_id: item.sceneBoundingRect() for item in scene.node_items()}
    assert set(rects) == set(doc.node_ids())
    ids = sorted(rects)
    overlapping = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]
                   if rects[a].intersects(rects[b])]
    assert overlapping == []
    doc.undo_stack.clear()  # see test_controller_makes_the_engines_project_in_one_undo_step
