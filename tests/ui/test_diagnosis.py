"""The diagnosis panel and fix_to_edits: findings in plain words, fixes as edits."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from bplab.ui.diagnosis import DiagnosisPanel, fix_to_edits
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication, QPushButton

from bplab.diagnostics import ActivationStats, Finding, Fix, LayerStats, diagnose
from bplab.training import Report


def project(nodes, optimizer=None, training=None, output=None):
    net = {"nodes": nodes}
    if output:
        net["output"] = output
    p = {"format": "bplab-project", "version": 1, "dataset": {"name": "spiral"},
         "network": net, "loss": {"type": "cross_entropy"},
         "optimizer": optimizer if optimizer is not None else {"type": "sgd", "lr": 0.1}}
    if training is not None:
        p["training"] = training
    return p


DEEP_SIGMOID = [
    {"id": "in", "type": "Input", "shape": [2]},
    {"id": "fc1", "type": "Dense", "units": 16, "init": "xavier_uniform"},
    {"id": "s1", "type": "Sigmoid"},
    {"id": "fc2", "type": "Dense", "units": 16},
    {"id": "s2", "type": "Sigmoid"},
    {"id": "fc3", "type": "Dense", "units": 16, "init": "he_normal"},
    {"id": "t3", "type": "Tanh"},
    {"id": "out", "type": "Dense", "units": 2},
]


# -- real findings from bplab.diagnostics.diagnose ---------------------------------------------
def vanishing_findings():
    types = {n["id"]: n["type"] for n in DEEP_SIGMOID}
    names = ["fc1", "fc2", "fc3", "out"]
    history = []
    for k in range(5):
        rms = [1e-7 * (1 + k), 1e-5, 1e-3, 1e-1]
        history.append([LayerStats(n, "Dense", i, r * 16, 4.0, 1e-3, r)
                        for i, (n, r) in enumerate(zip(names, rms))])
    return diagnose(history, layer_types=types)


def dead_relu_findings():
    acts = [[ActivationStats("r1", "relu", 0.0, 0.1, 0.9, 0.0),
             ActivationStats("r2", "relu", 0.3, 0.5, 0.1, 0.0)] for _ in range(5)]
    return diagnose([], acts)


def test_real_vanishing_finding_becomes_the_expected_edits():
    findings = vanishing_findings()
    assert findings[0].code == "vanishing_gradients"
    p = project(DEEP_SIGMOID)
    by_action = {f.action: f for f in findings[0].fixes if f.action}
    # ReLU comes with He init (ReLU on large random weights explodes); fc3 already has it.
    assert fix_to_edits(by_action["replace_activation"], p) == [
        ("replace_type", "s1", "ReLU"), ("replace_type", "s2", "ReLU"),
        ("replace_type", "t3", "ReLU"),
        ("set_param", "fc1", "init", "he_normal"), ("set_param", "fc2", "init", "he_normal"),
        ("set_param", "out", "init", "he_normal")]
    # fc3 already uses He init: no edit for it.
    assert fix_to_edits(by_action["init_he"], p) == [
        ("set_param", "fc1", "init", "he_normal"), ("set_param", "fc2", "init", "he_normal"),
        ("set_param", "out", "init", "he_normal")]
    assert fix_to_edits(by_action["add_batchnorm"], p) == [
        ("insert_after", "fc1", "BatchNorm"), ("insert_after", "fc2", "BatchNorm"),
        ("insert_after", "fc3", "BatchNorm")]
    advice = [f for f in findings[0].fixes if not f.action]
    assert advice and fix_to_edits(advice[0], p) == []


def test_real_dead_relu_finding_swaps_only_the_dead_layers():
    (finding,) = dead_relu_findings()
    assert finding.code == "dead_relu"
    nodes = [{"id": "in", "type": "Input", "shape": [2]},
             {"id": "fc1", "type": "Dense", "units": 4},
             {"id": "r1", "type": "ReLU"}, {"id": "fc2", "type": "Dense", "units": 4},
             {"id": "r2", "type": "ReLU"}, {"id": "out", "type": "Dense", "units": 2}]
    p = project(nodes, {"type": "adam", "lr": 0.003})
    leaky, lower = finding.fixes
    assert fix_to_edits(leaky, p) == [("replace_type", "r1", "LeakyReLU")]
    assert fix_to_edits(lower, p) == [("set_value", "optimizer.lr", 0.0003)]


# -- fix_to_edits, action by action ------------------------------------------------------------
def test_init_he_targets_only_parameterised_layers_and_all_when_none_listed():
    p = project(DEEP_SIGMOID)
    fix = Fix("He", "init_he", ("fc2", "s1", "missing"))
    assert fix_to_edits(fix, p) == [("set_param", "fc2", "init", "he_normal")]
    assert [e[1] for e in fix_to_edits(Fix("He", "init_he"), p)] == ["fc1", "fc2", "out"]


def test_init_he_covers_conv_layers():
    nodes = [{"id": "in", "type": "Input", "shape": [1, 8, 8]},
             {"id": "c1", "type": "Conv2D", "filters": 4, "kernel_size": 3},
             {"id": "r", "type": "ReLU"}]
    assert fix_to_edits(Fix("", "init_he", ("c1",)), project(nodes)) == [
        ("set_param", "c1", "init", "he_normal")]


def test_replace_activation_only_touches_nodes_of_the_from_types():
    p = project(DEEP_SIGMOID)
    fix = Fix("", "replace_activation", ("s1", "t3", "fc1"), {"from": ["Sigmoid"], "to": "ReLU"})
    assert fix_to_edits(fix, p) == [("replace_type", "s1", "ReLU")]
    fix = Fix("", "replace_activation", (), {"from": "Tanh", "to": "GELU"})
    assert fix_to_edits(fix, p) == [("replace_type", "t3", "GELU")]
    same = Fix("", "replace_activation", ("s1",), {"from": ["Sigmoid"], "to": "Sigmoid"})
    assert fix_to_edits(same, p) == []
    assert fix_to_edits(Fix("", "replace_activation", ("s1",), {"from": ["Sigmoid"]}), p) == []


def test_add_batchnorm_after_dense_and_conv_skipping_existing_ones():
    nodes = [{"id": "in", "type": "Input", "shape": [1, 8, 8]},
             {"id": "c1", "type": "Conv2D", "filters": 4, "kernel_size": 3},
             {"id": "bn1", "type": "BatchNorm"},
             {"id": "c2", "type": "Conv2D", "filters": 4, "kernel_size": 3},
             {"id": "r", "type": "ReLU"},
             {"id": "flat", "type": "Flatten"},
             {"id": "fc", "type": "Dense", "units": 8},
             {"id": "out", "type": "Dense", "units": 2}]
    p = project(nodes)
    fix = Fix("", "add_batchnorm", ("c1", "c2", "fc", "r"))
    assert fix_to_edits(fix, p) == [("insert_after", "c2", "BatchNorm"),
                                    ("insert_after", "fc", "BatchNorm")]
    # none listed: every hidden parameterised layer, never the output layer
    assert fix_to_edits(Fix("", "add_batchnorm"), p) == [("insert_after", "c2", "BatchNorm"),
                                                         ("insert_after", "fc", "BatchNorm")]


def test_add_batchnorm_follows_explicit_inputs():
    nodes = [{"id": "in", "type": "Input", "shape": [4]},
             {"id": "fc1", "type": "Dense", "units": 4},
             {"id": "fc2", "type": "Dense", "units": 4, "inputs": ["in"]},
             {"id": "bn", "type": "BatchNorm", "inputs": ["fc1"]},
             {"id": "add", "type": "Add", "inputs": ["bn", "fc2"]},
             {"id": "out", "type": "Dense", "units": 2}]
    p = project(nodes, output="out")
    assert fix_to_edits(Fix("", "add_batchnorm", ("fc1", "fc2")), p) == [
        ("insert_after", "fc2", "BatchNorm")]
    assert fix_to_edits(Fix("", "add_batchnorm"), p) == [("insert_after", "fc2", "BatchNorm")]


def test_enable_clipping_sets_the_norm_unless_already_tighter():
    fix = Fix("", "enable_clipping", (), {"clip_grad_norm": 1.0})
    assert fix_to_edits(fix, project(DEEP_SIGMOID)) == [
        ("set_value", "training.clip_grad_norm", 1.0)]
    p = project(DEEP_SIGMOID, training={"clip_grad_norm": 5.0})
    assert fix_to_edits(fix, p) == [("set_value", "training.clip_grad_norm", 1.0)]
    p = project(DEEP_SIGMOID, training={"clip_grad_norm": 0.5})
    assert fix_to_edits(fix, p) == []
    assert fix_to_edits(Fix("", "enable_clipping"), project(DEEP_SIGMOID)) == [
        ("set_value", "training.clip_grad_norm", 1.0)]


@pytest.mark.parametrize(("optimizer", "factor", "expected"), [
    ({"type": "sgd", "lr": 0.1}, 0.1, 0.01),
    ({"type": "adam", "lr": 0.01}, 0.1, 0.001),  # not 0.0010000000000000002
    ({"type": "adam", "lr": 3e-4}, 10.0, 3e-3),
    ({"type": "adam"}, 3.0, 3e-3),  # no lr: the default 1e-3
    ("adam", 0.1, 1e-4),  # an optimizer given by name only
    ({"type": "sgd", "lr": 7}, 0.5, 3.5),
])
def test_scale_lr_reads_the_current_rate(optimizer, factor, expected):
    edits = fix_to_edits(Fix("", "scale_lr", (), {"factor": factor}),
                         project(DEEP_SIGMOID, optimizer))
    assert edits == [("set_value", "optimizer.lr", expected)]
    assert isinstance(edits[0][2], float)


def test_fix_to_edits_is_pure_and_ignores_unknown_actions():
    p = project(DEEP_SIGMOID)
    before = copy.deepcopy(p)
    for f in vanishing_findings()[0].fixes:
        fix_to_edits(f, p)
    assert p == before
    assert fix_to_edits(Fix("", "teleport", ("fc1",)), p) == []
    assert fix_to_edits(Fix("", None), p) == []
    assert fix_to_edits(Fix("", "scale_lr", (), {"factor": 1.0}), p) == []
    assert fix_to_edits(Fix("", "init_he"), {"network": {"nodes": []}}) == []


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
    assert fix.action == "init_he"
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
    for step in range(40, 100, 10):
        panel.add_update(diag_update(step, []))
    panel.refresh()
    assert panel.summary.text() == "No problems found in the last 5 diagnostic samples"


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
