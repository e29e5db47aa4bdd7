"""Train > Step through…: the values shown at every stage are the engine's.

The tests open the mode from the menu on real windows, walk its stages and read what the
canvas badges, the wires and the panel show, comparing it with the stages of a
:class:`~bplab.stepthrough.StepThrough` the test builds itself on the same trainer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bplab.ui.editor.badges import fmt_num
from bplab.ui.main_window import MainWindow
from bplab.ui.stepthrough.cards import stage_title
from bplab.ui.stepthrough.controller import BLOCKED
from bplab.ui.training.worker import RUNNING
from PySide6.QtCore import QPoint, QPointF, Qt

from bplab.stepthrough import StepThrough

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
TIMEOUT = 30_000


@pytest.fixture
def make_window(open_window):
    return lambda example="xor": open_window(EXAMPLES / f"{example}.bplab.json",
                                             size=(1500, 950))


def open_mode(qtbot, w: MainWindow) -> None:
    """Train > Step through… (the session builds its trainer first when it has none)."""
    with qtbot.waitSignal(w.stepper.started, timeout=TIMEOUT):
        w.menus.act_step_through.trigger()
    assert w.stepper.active and w.docks["step_through"].isVisible()


def badge_numbers(a: np.ndarray) -> list[str]:
    return [fmt_num(v, 3) for v in np.ravel(a)]


def flat(lines: list[list[str]]) -> list[str]:
    return [s for line in lines for s in line]


def test_every_stage_shows_the_engines_values_on_the_canvas_and_in_the_panel(
        qtbot, make_window):
    w = make_window("xor")
    open_mode(qtbot, w)
    st, panel, scene = w.stepper, w.stepper.panel, w.scene
    reference = StepThrough(w.session.trainer, [0])  # the engine's own stages, again
    assert [(s.kind, s.node) for s in st.stages] == [(s.kind, s.node)
                                                       for s in reference.stages]
    kinds = [s.kind for s in st.stages]
    assert kinds[:4] == ["forward"] * 4 and kinds[4] == "loss" and kinds[-1] == "update"
    for ref in reference.stages:
        st.go(ref.index)
        assert panel.title.text() == stage_title(ref, len(reference.stages))
        if ref.kind == "forward":
            badge = scene.node_item(ref.node).badge
            np.testing.assert_array_equal(badge.content.values, ref.output)
            assert flat(badge.lines()) == badge_numbers(ref.output)
            np.testing.assert_array_equal(panel.values.array_model.array, ref.output)
            assert panel.values.cell_text((0, 0)) == fmt_num(ref.output[0, 0])
        elif ref.kind == "loss":
            text = panel.loss_card.text()
            assert panel.loss_box.isVisible()
            assert fmt_num(ref.loss) in text
            assert all(fmt_num(v) in text for v in np.ravel(ref.prediction))
            assert ref.formula.split(" = ")[0] in text  # the engine's formula, with numbers
        elif ref.kind == "backward":
            badge = scene.node_item(ref.node).badge
            assert badge.content.kind == "gradient"
            np.testing.assert_array_equal(badge.content.values, ref.grad_output)
            assert flat(badge.lines()) == badge_numbers(ref.grad_output)
            shown = dict(badge.content.params)
            for name, g in ref.param_grads.items():
                np.testing.assert_array_equal(shown[f"∂L/∂{name.split('.')[1]}"], g)
            np.testing.assert_array_equal(panel.values.array_model.array, ref.grad_output)
            for src in ref.grad_inputs:  # the wire it sends its gradient along is drawn
                edge = scene.edge_item(src, ref.node)
                assert edge.grad_level is not None and edge.grad_level > 0
                norm = reference.wire_norms()[(src, ref.node)]
                assert norm == pytest.approx(np.linalg.norm(ref.grad_inputs[src]))
                assert edge.shown_label() == f"‖∂L/∂{src}‖ {fmt_num(norm)}"
        else:
            table = panel.update_table
            assert [table.item(r, 0).text() for r in range(table.rowCount())] == \
                list(ref.updates)
            for name, (_b, step, _a) in ref.updates.items():
                node_badge = scene.node_item(name.split(".")[0]).badge
                np.testing.assert_array_equal(
                    dict(node_badge.content.params)[f"step of {name.split('.')[1]}"], step)
    # Before the backward pass reaches a wire it carries no gradient.
    st.go(kinds.index("loss"))
    assert all(e.grad_level is None and e.shown_label().startswith("(batch")
               for e in scene.edge_items())


def test_a_clicked_weight_shows_its_chain_rule_equal_to_the_engines_gradient(
        qtbot, make_window):
    w = make_window("xor")
    open_mode(qtbot, w)
    st, panel = w.stepper, w.stepper.panel
    panel.param.setCurrentText("fc1.weight")
    table = panel.matrix
    np.testing.assert_array_equal(
        table.array_model.array,
        next(s.param_grads["fc1.weight"] for s in st.stages if s.kind == "backward"
             and "fc1.weight" in s.param_grads))
    row, col = table.array_model.cell_of((1, 0))
    rect = table.visualRect(table.array_model.index(row, col))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    rule = st.rule
    assert (rule.param, rule.index) == ("fc1.weight", (1, 0))
    expected = StepThrough(w.session.trainer, [0]).chain_rule("fc1.weight", (1, 0))
    assert rule.product == pytest.approx(expected.product, rel=1e-12)
    assert rule.product == pytest.approx(rule.engine_grad, rel=1e-9, abs=1e-12)
    assert rule.finite_difference == pytest.approx(rule.engine_grad, rel=1e-4, abs=1e-8)
    card = panel.chain_card.text()
    for number in (rule.product, rule.engine_grad, rule.finite_difference):
        assert fmt_num(number) in card
    assert "✓ equal" in card and "✓ agrees" in card
    for label, _ in rule.factors:
        assert label.replace("'", "&#x27;") in card
    # The update of that weight: before, step, after and Adam's moments, from the engine.
    update = st.stages[-1]
    before, step, after = (a[1, 0] for a in update.updates["fc1.weight"])
    text = panel.weight_update.text()
    for v in (before, step, after):
        assert fmt_num(v) in text
    for key in update.optimizer_state["fc1.weight"]:
        assert f"state {key}" in text
    assert "betas" in text and "lr" in text


def test_where_an_output_feeds_several_nodes_the_gradient_is_shown_as_a_sum(
        qtbot, make_window):
    w = make_window("residual_mlp")
    open_mode(qtbot, w)
    st = w.stepper
    # BatchNorm cannot train on one row: the engine says so and the mode takes two
    assert st.stepper.indices == (0, 1) and "BatchNorm" in w.statusBar().currentMessage()
    assert st.set_samples(3, 4)  # a small batch
    assert st.stepper.indices == (3, 4, 5, 6)
    fan_out = [s for s in st.stages if s.kind == "backward" and len(s.contributions) > 1]
    assert {s.node for s in fan_out} >= {"stem", "add1", "add2"}
    st.go(len(st.stages) - 2)  # the end of the backward pass
    for s in fan_out:
        mark = w.scene.node_item(s.node).sum_badge
        assert mark is not None and mark.text() == f"{len(s.contributions)} gradients add"
        assert [label for label, _ in mark.parts] == [f"from {c}" for c, _ in s.contributions]
        for (_, shown), (_, part) in zip(mark.parts, s.contributions):
            np.testing.assert_array_equal(shown, part)
        np.testing.assert_array_equal(mark.total, s.grad_output)
    single = next(s for s in st.stages if s.kind == "backward" and s.node == "fc1")
    assert w.scene.node_item(single.node).sum_badge is None
    # 64 units per sample: a heatmap, not numbers
    badge = w.scene.node_item("stem").badge
    assert badge.is_heatmap() and badge.lines() == []


def test_apply_makes_the_step_the_trainers_next_and_discard_leaves_it(qtbot, make_window):
    w = make_window("xor")
    open_mode(qtbot, w)
    trainer = w.session.trainer
    assert not w.train_actions.run.isEnabled() and BLOCKED in w.train_actions.run.toolTip()
    before = {k: v.copy() for k, v in trainer.network.state_dict().items()}
    with qtbot.waitSignal(w.stepper.ended) as ended:
        w.stepper.panel.discard_button.click()
    assert ended.args == ["discarded"] and not w.stepper.active
    for k, v in trainer.network.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert trainer.step_count == 0 and w.train_actions.run.isEnabled()
    assert not w.docks["step_through"].isVisible()
    assert w.scene.node_item("fc1").badge is None
    assert all(e.grad_level is None for e in w.scene.edge_items())

    open_mode(qtbot, w)
    update = w.stepper.stages[-1]
    with qtbot.waitSignal(w.stepper.ended) as ended:
        w.stepper.panel.apply_button.click()
    assert ended.args == ["applied"] and trainer.step_count == 1
    state = trainer.network.state_dict()
    for name, (_b, _s, after) in update.updates.items():
        np.testing.assert_allclose(state[name], after.astype(state[name].dtype), rtol=1e-6)
    assert "step 1" in w.statusBar().currentMessage()
    # Run goes on from the applied step
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    assert trainer.step_count == 2


def test_controls_walk_the_stages_and_play_reaches_the_end(qtbot, make_window):
    w = make_window("xor")
    open_mode(qtbot, w)
    st, panel = w.stepper, w.stepper.panel
    assert st.index == 0 and not panel.back_button.isEnabled()
    panel.forward_button.click()
    panel.forward_button.click()
    assert st.index == 2 and panel.slider.value() == 2
    panel.back_button.click()
    assert st.index == 1
    panel.slider.setValue(4)
    assert st.stage.kind == "loss"
    panel.speed.setValue(20.0)
    panel.play_button.click()
    assert st.timer.isActive() and st.timer.interval() == 50
    qtbot.waitUntil(lambda: st.index == len(st.stages) - 1 and not st.timer.isActive(),
                    timeout=TIMEOUT)
    assert not panel.play_button.isChecked() and not panel.forward_button.isEnabled()


def test_the_sample_is_picked_by_index_or_by_a_click_on_the_decision_boundary(
        qtbot, make_window):
    w = make_window("xor")
    open_mode(qtbot, w)
    st, panel = w.stepper, w.stepper.panel
    panel.sample.setValue(5)
    panel.sample.editingFinished.emit()
    assert st.stepper.indices == (5,)
    x5 = w.session.trainer.dataset.x_train[5].astype(np.float64)
    np.testing.assert_array_equal(st.stages[0].output[0], x5)

    boundary = w.plots["boundary"]
    w.docks["boundary"].raise_()
    qtbot.waitUntil(lambda: boundary.graphics.isVisible())
    x7 = np.asarray(w.session.trainer.dataset.x_train[7], np.float64)
    vb = boundary.plot.getViewBox()
    scene_pos = vb.mapViewToScene(QPointF(float(x7[0]), float(x7[1])))
    pos = boundary.graphics.mapFromScene(scene_pos)
    qtbot.mouseClick(boundary.graphics.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(pos.x(), pos.y()))
    assert st.stepper.indices == (7,) and panel.sample.value() == 7
    np.testing.assert_array_equal(st._marker.data["x"], [x7[0]])


def test_with_one_input_the_sample_is_picked_where_it_is_drawn_on_the_fitted_function(
        qtbot, make_window):
    w = make_window("sine_fit")
    open_mode(qtbot, w)
    st, panel = w.stepper, w.stepper.panel
    assert "click a point in the Fitted function" in panel.sample_note.text()
    boundary = w.plots["boundary"]
    w.docks["boundary"].raise_()
    qtbot.waitUntil(lambda: boundary.graphics.isVisible())
    ds = w.session.trainer.dataset
    x9, y9 = float(ds.x_train[9, 0]), float(ds.y_train[9, 0])
    vb = boundary.plot.getViewBox()
    pos = boundary.graphics.mapFromScene(vb.mapViewToScene(QPointF(x9, y9)))
    qtbot.mouseClick(boundary.graphics.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(pos.x(), pos.y()))
    assert st.stepper.indices == (9,) and panel.sample.value() == 9  # x and target: sample 9
    np.testing.assert_allclose(st._marker.data["x"], [x9])
    np.testing.assert_allclose(st._marker.data["y"], [y9])  # ringed where it is drawn


def test_not_offered_while_training_runs_and_an_edit_ends_the_mode(qtbot, make_window):
    w = make_window("xor")
    w.doc.set_value("training.speed", 2.0)  # slow: still running when looked at
    with qtbot.waitSignal(w.session.state_changed, timeout=TIMEOUT):
        w.train_actions.run.trigger()
    assert w.session.state == RUNNING and not w.menus.act_step_through.isEnabled()
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.session.pause()
    assert w.menus.act_step_through.isEnabled()
    w.doc.set_value("training.speed", None)
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    steps = w.session.trainer.step_count
    open_mode(qtbot, w)  # on the paused session's trainer, as it is
    assert w.stepper.stepper.trainer is w.session.trainer and steps >= 1
    with qtbot.waitSignal(w.stepper.ended) as ended:
        w.doc.set_value("optimizer.lr", 0.01)
    assert ended.args == ["discarded"] and "project changed" in \
        w.statusBar().currentMessage()
    assert w.session.trainer is None or w.session.trainer.step_count == steps


def test_the_canvas_follows_the_stage(qtbot, make_window):
    """Stepping to a layer out of view scrolls the canvas to it and its badge."""
    w = make_window("spiral")
    open_mode(qtbot, w)
    st, view = w.stepper, w.view
    view.set_zoom(1.5)
    st.go(len(st.stages) - 1)
    for stage in st.stages:
        if stage.node is None:
            continue
        st.go(stage.index)
        item = w.scene.node_item(stage.node)
        shown = view.mapToScene(view.viewport().rect()).boundingRect()
        assert shown.contains(item.sceneBoundingRect()), stage.node
        if item.badge is not None and item.badge.isVisible():
            assert shown.contains(item.badge.sceneBoundingRect()), stage.node
