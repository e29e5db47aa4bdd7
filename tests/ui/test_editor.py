"""The editor widgets, driven the way a user drives them (offscreen)."""

from __future__ import annotations

import json

import pytest
from bplab.ui.editor import (
    LAYER_MIME,
    NODES_MIME,
    Inspector,
    LayerPalette,
    NetworkScene,
    NetworkView,
    ProblemsList,
)
from bplab.ui.editor.items import NODE_H
from bplab.ui.models import ProjectDocument
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QGraphicsSceneMouseEvent, QSpinBox

from bplab.layers import LAYERS


@pytest.fixture
def editor(qtbot, spiral):
    doc = ProjectDocument(spiral)
    scene = NetworkScene(doc)
    view = NetworkView(scene)
    view.resize(900, 700)
    qtbot.addWidget(view)
    view.show()
    palette = LayerPalette(view)
    qtbot.addWidget(palette)
    view.centerOn(0, 200)
    return doc, scene, view, palette


def drop(view: NetworkView, palette: LayerPalette, type_name: str, scene_pos: QPointF) -> None:
    """Send the drop event a drag out of the palette produces, at ``scene_pos``."""
    view.centerOn(scene_pos)
    QApplication.processEvents()
    pos = QPointF(view.mapFromScene(scene_pos))
    mime = palette.mime_data_for(type_name)
    # Qt delivers a drop only to the widget that accepted the drag's enter event
    enter = QDragEnterEvent(pos.toPoint(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert enter.isAccepted()
    move = QDragMoveEvent(pos.toPoint(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), move)
    assert move.isAccepted()
    event = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), event)
    assert event.isAccepted()


def test_palette_lists_every_registered_layer_with_icon_and_tooltip(editor):
    _, _, _, palette = editor
    assert sorted(palette.visible_types()) == sorted(LAYERS)
    tree = palette.tree
    for i in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(i)
        for j in range(group.childCount()):
            item = group.child(j)
            cls = LAYERS[item.text(0)]
            assert group.text(0) == cls.category
            assert not item.icon(0).isNull()
            assert cls.summary in item.toolTip(0)


def test_palette_mime_is_the_type_name(editor):
    _, _, _, palette = editor
    tree = palette.tree
    item = tree.findItems("Dense", Qt.MatchExactly | Qt.MatchRecursive)[0]
    mime = tree.mimeData([item])
    assert bytes(mime.data(LAYER_MIME)).decode("utf-8") == "Dense"


def test_search_filters_by_name_summary_and_category(editor):
    _, _, _, palette = editor
    palette.search.setText("dense")
    shown = palette.visible_types()
    assert "Dense" in shown and "Tanh" not in shown and "Input" not in shown
    palette.search.setText("activations")
    assert set(palette.visible_types()) == {n for n, c in LAYERS.items()
                                            if c.category == "Activations"}
    palette.search.setText("flat vector")  # in Flatten's summary
    assert "Flatten" in palette.visible_types() and "Dense" not in palette.visible_types()
    palette.search.setText("no such layer at all")
    assert palette.visible_types() == []
    palette.search.clear()
    assert len(palette.visible_types()) == len(LAYERS)


def test_drop_on_empty_space_adds_an_unconnected_node(editor, qtbot):
    doc, scene, view, palette = editor
    with qtbot.waitSignal(doc.node_added) as blocker:
        drop(view, palette, "Tanh", QPointF(600, 60))
    new = blocker.args[0]
    assert doc.node(new)["type"] == "Tanh" and doc.node(new)["inputs"] == []
    assert doc.position(new) == pytest.approx((600, 60))
    assert doc.output_id() == "out"  # the output did not change
    assert scene.selected_ids() == [new]
    # the engine complains about the loose node, on the node
    assert scene.node_item(new).problems


def test_drop_on_an_edge_inserts_the_layer(editor, qtbot):
    doc, scene, view, palette = editor
    edge = scene.edge_item("fc1", "act1")
    mid = edge.path().pointAtPercent(0.3)
    before_act1 = doc.position("act1")
    with qtbot.waitSignal(doc.plan_changed):
        drop(view, palette, "Dense", mid)
    new = scene.selected_ids()[0]
    assert doc.node(new)["inputs"] == ["fc1"] and doc.node("act1")["inputs"] == [new]
    assert scene.edge_item("fc1", "act1") is None
    assert scene.edge_item("fc1", new) and scene.edge_item(new, "act1")
    # the inserted node takes act1's place, act1 and below move down
    assert doc.position(new) == before_act1 and doc.position("act1")[1] > before_act1[1]
    assert doc.plan.ok
    assert scene.edge_item(new, "act1").label == "(batch, 16)"


def test_drop_below_the_output_appends_and_connects(editor, qtbot):
    doc, scene, view, palette = editor
    out = doc.position("out")
    with qtbot.waitSignal(doc.edge_added) as blocker:
        drop(view, palette, "Tanh", QPointF(out[0] + 20, out[1] + NODE_H + 40))
    src, new = blocker.args
    assert src == "out" and doc.node(new)["inputs"] == ["out"]
    assert doc.output_id() == new and doc.plan.ok
    assert doc.position(new)[0] == out[0]


def test_double_click_in_palette_appends(editor, qtbot):
    doc, scene, view, palette = editor
    item = palette.tree.findItems("Tanh", Qt.MatchExactly | Qt.MatchRecursive)[0]
    with qtbot.waitSignal(doc.node_added):
        palette.tree.itemDoubleClicked.emit(item, 0)
    assert doc.node(doc.output_id())["type"] == "Tanh"
    assert doc.node(doc.output_id())["inputs"] == ["out"]


def _mouse(scene, kind, pos, button=Qt.LeftButton):
    ev = QGraphicsSceneMouseEvent(kind)
    ev.setScenePos(pos)
    ev.setButton(button)
    ev.setButtons(button if kind != QEvent.GraphicsSceneMouseRelease else Qt.NoButton)
    ev.setButtonDownScenePos(button, pos)
    QApplication.sendEvent(scene, ev)


def test_drag_from_output_port_connects(editor, qtbot):
    doc, scene, view, palette = editor
    drop(view, palette, "Tanh", QPointF(500, 0))
    lone = scene.selected_ids()[0]
    port = scene.node_item("out").output_port_pos()
    target = scene.node_item(lone).pos()
    _mouse(scene, QEvent.GraphicsSceneMousePress, port)
    assert scene.linking()
    _mouse(scene, QEvent.GraphicsSceneMouseMove, target)
    with qtbot.waitSignal(doc.edge_added) as blocker:
        _mouse(scene, QEvent.GraphicsSceneMouseRelease, target)
    assert blocker.args == ["out", lone]
    assert not scene.linking()
    assert scene.edge_item("out", lone) is not None
    assert doc.plan.ok and doc.output_id() == lone


def test_cycle_and_second_input_are_refused_with_a_message(editor, qtbot):
    doc, scene, view, palette = editor
    before = doc.to_project()
    with qtbot.assertNotEmitted(doc.edge_added):
        with qtbot.waitSignal(scene.message) as blocker:
            assert not scene.try_connect("in", "act1")
        assert "one input" in blocker.args[0]
        drop(view, palette, "Tanh", QPointF(500, 0))
        lone = scene.selected_ids()[0]
        doc.undo_stack.undo()
        assert doc.to_project() == before
        doc.undo_stack.redo()
        with qtbot.waitSignal(scene.message) as blocker:
            assert not scene.try_connect("out", "in")
        assert "Input" in blocker.args[0]
    assert scene.try_connect("out", lone)
    with qtbot.waitSignal(scene.message) as blocker:
        assert not scene.try_connect(lone, "fc1")
    assert "cycle" in blocker.args[0]
    assert doc.node("fc1")["inputs"] == ["in"]


def test_cycle_through_a_merge_is_refused(editor, qtbot, merge_type):
    doc, scene, view, palette = editor
    drop(view, palette, merge_type, QPointF(500, 0))
    merge = scene.selected_ids()[0]
    assert scene.try_connect("fc1", merge) and scene.try_connect("act1", merge)
    before = doc.to_project()
    with qtbot.waitSignal(scene.message) as blocker:
        assert not scene.try_connect(merge, "fc1")  # fc1 feeds the merge
    assert "cycle" in blocker.args[0] and doc.to_project() == before
    assert doc.node(merge)["inputs"] == ["fc1", "act1"]


def test_move_creates_one_undoable_command(editor, qtbot):
    doc, scene, view, palette = editor
    item = scene.node_item("fc1")
    start = item.pos()
    before = doc.to_project()
    scene.select_nodes(["fc1"])
    _mouse(scene, QEvent.GraphicsSceneMousePress, start)
    item.setPos(start + QPointF(30, 10))  # what Qt's item dragging does
    item.setPos(start + QPointF(60, 20))
    with qtbot.waitSignal(doc.node_moved):
        _mouse(scene, QEvent.GraphicsSceneMouseRelease, start + QPointF(60, 20))
    assert doc.position("fc1") == (start.x() + 60, start.y() + 20)
    assert doc.undo_stack.count() == 1
    # the edges followed
    assert scene.edge_item("in", "fc1").path().pointAtPercent(1.0).x() == pytest.approx(
        start.x() + 60, abs=1)
    doc.undo_stack.undo()
    assert doc.to_project() == before and scene.node_item("fc1").pos() == start


def test_delete_key_removes_selection_and_undo_restores(editor, qtbot):
    doc, scene, view, palette = editor
    before = doc.to_project()
    scene.select_nodes(["act1"])
    view.setFocus()
    with qtbot.waitSignal(doc.node_removed):
        qtbot.keyClick(view, Qt.Key_Delete)
    assert scene.node_item("act1") is None and doc.node("out")["inputs"] == ["fc1"]
    assert scene.edge_item("fc1", "out") is not None
    doc.undo_stack.undo()
    assert doc.to_project() == before
    assert scene.node_item("act1") is not None and scene.edge_item("act1", "out") is not None


def test_copy_paste_through_the_clipboard(editor, qtbot):
    doc, scene, view, palette = editor
    scene.select_nodes(["fc1", "act1"])
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_C, Qt.ControlModifier)
    mime = QGuiApplication.clipboard().mimeData()
    assert mime.hasFormat(NODES_MIME)
    payload = json.loads(bytes(mime.data(NODES_MIME)).decode())
    assert [n["id"] for n in payload["nodes"]] == ["fc1", "act1"]
    before = doc.to_project()
    with qtbot.waitSignal(doc.plan_changed):
        qtbot.keyClick(view, Qt.Key_V, Qt.ControlModifier)
    new = scene.selected_ids()
    assert len(new) == 2 and not set(new) & {"fc1", "act1"}
    a, b = (doc.node(n) for n in new)
    assert a["type"] == "Dense" and a["units"] == 8 and a["inputs"] == []
    assert b["inputs"] == [a["id"]]  # the link among the copies is kept
    assert doc.position(a["id"]) == pytest.approx((doc.position("fc1")[0] + 40,
                                                  doc.position("fc1")[1] + 40))
    assert doc.output_id() == "out"
    doc.undo_stack.undo()
    assert doc.to_project() == before


def test_inspector_edit_updates_project_label_and_edge_shape(editor, qtbot):
    doc, scene, view, palette = editor
    inspector = Inspector(doc)
    qtbot.addWidget(inspector)
    scene.selection_changed.connect(inspector.show_selection)
    with qtbot.waitSignal(scene.selection_changed):
        scene.select_nodes(["fc1"])
    spin = inspector.editors["units"]
    assert isinstance(spin, QSpinBox) and spin.value() == 8 and spin.minimum() == 1
    assert spin.toolTip() == "number of output features"
    with qtbot.waitSignal(doc.plan_changed):
        spin.setValue(32)
    assert doc.node("fc1")["units"] == 32
    assert scene.node_item("fc1").params_text == "units 32"
    assert scene.node_item("fc1").param_count == 2 * 32 + 32
    assert scene.edge_item("fc1", "act1").label == "(batch, 32)"
    assert inspector.shape_label.text() == "(batch, 32)"
    doc.undo_stack.undo()
    assert spin.value() == 8 and scene.edge_item("fc1", "act1").label == "(batch, 8)"


def test_inspector_refuses_invalid_text_with_a_hint(editor, qtbot):
    doc, scene, view, palette = editor
    inspector = Inspector(doc)
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.set_node("in")
    field = inspector.editors["shape"]
    before = doc.to_project()
    field.setText("2, 0")
    field.editingFinished.emit()
    assert doc.to_project() == before
    assert inspector.hint.isVisibleTo(inspector) and "at least 1" in inspector.hint.text()
    field.setText("3")
    field.editingFinished.emit()
    assert doc.node("in")["shape"] == [3] and not inspector.hint.isVisibleTo(inspector)


def test_inspector_initializer_with_parameters(editor, qtbot):
    doc, scene, view, palette = editor
    inspector = Inspector(doc)
    qtbot.addWidget(inspector)
    inspector.set_node("fc1")
    host = inspector.editors["init"]
    assert host.combo.currentData() == "xavier_uniform"
    index = host.combo.findData("normal")
    host.combo.setCurrentIndex(index)
    host.combo.activated.emit(index)
    assert doc.node("fc1")["init"] == "normal" and set(host.fields) == {"mean", "std"}
    field = host.fields["std"][0]
    field.setText("0.05")
    field.editingFinished.emit()
    assert doc.node("fc1")["init"] == {"type": "normal", "std": 0.05}


def test_bad_network_is_outlined_and_listed(editor, qtbot):
    doc, scene, view, palette = editor
    problems = ProblemsList(doc, scene, view)
    qtbot.addWidget(problems)
    assert problems.count() == 0
    inspector = Inspector(doc)
    qtbot.addWidget(inspector)
    inspector.set_node("in")
    field = inspector.editors["shape"]
    with qtbot.waitSignal(doc.plan_changed):
        field.setText("1, 4, 4")
        field.editingFinished.emit()
    item = scene.node_item("fc1")
    message = doc.plan.problems_for("fc1")[0].message
    assert "Flatten" in message
    assert item.problems == [message] and item.toolTip() == message
    assert problems.count() == len(doc.plan.problems)
    assert any(message in problems.item(i).text() for i in range(problems.count()))
    row = next(problems.item(i) for i in range(problems.count())
               if message in problems.item(i).text())
    with qtbot.waitSignal(scene.selection_changed) as blocker:
        problems.itemClicked.emit(row)
    assert blocker.args == [["fc1"]]
    doc.undo_stack.undo()
    assert item.problems == [] and problems.count() == 0


def test_auto_layout_is_layered_and_undoable(editor, qtbot):
    doc, scene, view, palette = editor
    drop(view, palette, "Tanh", QPointF(900, -400))
    before = doc.to_project()
    scene.auto_layout()
    chain = ["in", "fc1", "act1", "out"]
    # four layers: two bands of two, each read top to bottom, the bands left to right
    assert sorted(chain, key=doc.position) == chain
    assert len({doc.position(n) for n in chain}) == 4
    assert doc.position("in")[1] < doc.position("fc1")[1]
    assert doc.position("act1")[1] < doc.position("out")[1]
    for nid in doc.node_ids():
        assert scene.node_item(nid).pos().toTuple() == doc.position(nid)
    doc.undo_stack.undo()
    assert doc.to_project() == before


def test_highlight_and_clear(editor):
    _, scene, _, _ = editor
    scene.highlight(["fc1", "out"], Qt.yellow)
    assert scene.node_item("fc1").highlight is not None
    assert scene.node_item("act1").highlight is None
    scene.clear_highlight()
    assert all(i.highlight is None for i in scene.node_items())


def test_zoom_actions_and_wheel(editor):
    _, _, view, _ = editor
    z = view.zoom()
    view.actions_["zoom_in"].trigger()
    assert view.zoom() == pytest.approx(z * 1.25)
    view.set_zoom(100)
    assert view.zoom() == pytest.approx(view.MAX_ZOOM)
    view.fit_all()
    assert view.MIN_ZOOM <= view.zoom() <= 1.25


def test_two_hundred_nodes_build_and_relayout(qtbot):
    nodes = [{"id": "in", "type": "Input", "shape": [4]}]
    nodes += [{"id": f"fc{i}", "type": "Dense", "units": 4} for i in range(1, 200)]
    doc = ProjectDocument({"network": {"nodes": nodes}})
    scene = NetworkScene(doc)
    view = NetworkView(scene)
    qtbot.addWidget(view)
    assert len(scene.node_items()) == 200 and len(scene.edge_items()) == 199
    scene.auto_layout()
    doc.undo_stack.undo()
    assert doc.plan.ok
    scene.select_nodes(["fc100"])
    scene.delete_selection()
    assert scene.edge_item("fc99", "fc101") is not None


def test_process_exits_cleanly_after_copying_nodes(tmp_path):
    """PySide6 segfaulted at interpreter exit while the clipboard held our QMimeData."""
    import subprocess
    import sys

    script = (
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from bplab.io.project import new_project\n"
        "from bplab.ui.models.document import ProjectDocument\n"
        "from bplab.ui.editor import NetworkScene\n"
        "doc = ProjectDocument()\n"
        "doc.set_project(new_project())\n"
        "scene = NetworkScene(doc)\n"
        "scene.select_nodes(['fc1'])\n"
        "assert scene.copy_selection()\n"
        "print('copied')\n"
    )
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "copied" in proc.stdout
