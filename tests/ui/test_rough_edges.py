"""The rough edges a newcomer met in the first hour (issue 14), each driven as a user would."""

from __future__ import annotations

import pytest
from bplab.ui.main_window import MainWindow, demo_path
from PySide6.QtCore import QEvent, QPoint, QSettings, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from bplab.layers import LAYERS


@pytest.fixture
def window(qtbot, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "settings"))
    w = MainWindow()
    w.ask_save_changes = lambda: pytest.fail("unexpected save prompt")
    assert w.open_path(demo_path(), as_copy=True)
    w.doc.mark_saved()
    w.show()
    yield w
    w.automation = True
    w.close()
    w.deleteLater()


def _view_point(w, node_id):
    item = w.scene.node_item(node_id)
    w.view.centerOn(item)
    QApplication.processEvents()
    return w.view.mapFromScene(item.sceneBoundingRect().center())


def test_a_click_without_a_drag_records_nothing(window, qtbot):
    w = window
    vp = w.view.viewport()
    at = _view_point(w, "fc1")
    before = w.doc.position("fc1")
    qtbot.mousePress(vp, Qt.LeftButton, pos=at)
    qtbot.mouseMove(vp, at + QPoint(1, 1))  # a real hand jitters
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=at + QPoint(1, 1))
    assert w.scene.selected_ids() == ["fc1"]
    assert w.doc.undo_stack.count() == 0 and not w.doc.is_dirty
    assert w.doc.position("fc1") == before
    assert w.scene.node_item("fc1").pos().toTuple() == before


def test_a_real_drag_is_still_one_move(window, qtbot):
    w = window
    vp = w.view.viewport()
    at = _view_point(w, "fc1")
    qtbot.mousePress(vp, Qt.LeftButton, pos=at)
    for dx in (10, 30, 60):
        qtbot.mouseMove(vp, at + QPoint(dx, 0))
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=at + QPoint(60, 0))
    assert w.doc.undo_stack.count() == 1 and w.doc.is_dirty


def _unconnected_dense_with_normal_init(w):
    nid = w.scene.drop_layer("Dense", w.view.mapToScene(20, 20))
    w.scene.select_nodes([nid])
    host = w.inspector.editors["init"]
    i = host.combo.findData("normal")
    host.combo.setCurrentIndex(i)
    host.combo.activated.emit(i)
    QApplication.processEvents()
    return host


def test_the_window_keeps_its_size_when_the_inspector_grows(window):
    w = window
    w.resize(1400, 900)
    QApplication.processEvents()
    _unconnected_dense_with_normal_init(w)
    assert w.size().toTuple() == (1400, 900)


def test_inspector_fields_keep_at_least_their_minimum_height(window):
    w = window
    w.resize(1400, 900)
    host = _unconnected_dense_with_normal_init(w)
    fields = list(w.inspector.editors.values()) + [f for f, _ in host.fields.values()]
    assert {"mean", "std"} <= set(host.fields)
    for f in fields:
        assert f.height() >= f.minimumSizeHint().height(), f


def test_reset_layout_gives_a_window_that_fits_the_screen(window):
    w = window
    w.resize(1500, 2000)
    w.menus.act_reset_layout.trigger()
    avail = w.screen().availableGeometry()
    assert w.height() <= avail.height() and w.width() <= avail.width()
    assert not w.docks["step_through"].isVisible() and w.docks["inspector"].isVisible()


def test_the_empty_canvas_says_how_to_start_and_ports_say_they_can_be_dragged(window, qtbot):
    w = window
    assert w.view.empty_hint() == ""
    w.menus.act_select_all.trigger()
    w.scene.delete_selection()
    assert "Drag a layer" in w.view.empty_hint() and "port" in w.view.empty_hint()
    assert w.view.grab().toImage().width() > 0  # the hint paints
    w.doc.mark_saved()
    w.open_path(demo_path(), as_copy=True)
    item = w.scene.node_item("fc1")
    w.view.centerOn(item)
    QApplication.processEvents()
    port = w.view.mapFromScene(item.mapToScene(item.output_port_pos()))
    event = QHelpEvent(QEvent.Type.ToolTip, port, w.view.viewport().mapToGlobal(port))
    QApplication.sendEvent(w.view.viewport(), event)
    assert "drag from here" in QToolTip.text()
    QToolTip.hideText()


def test_undo_and_redo_buttons_show_short_text(window):
    w = window
    w.doc.set_value("training.epochs", 7)
    w.doc.undo_stack.undo()
    for act, word in ((w.menus.act_undo, "Undo"), (w.menus.act_redo, "Redo")):
        assert w.menus.toolbar.widgetForAction(act).text() == word
    assert w.menus.act_redo.text().replace("&", "").startswith("Redo Set")  # the menu: all
    assert "training.epochs" in w.menus.act_redo.toolTip()


def test_an_output_that_does_not_fit_the_data_is_a_problem_on_the_node(window, qtbot):
    w = window
    qtbot.waitUntil(lambda: w.data_checks.dataset is not None)
    item = w.scene.node_item("out")
    assert item.problems == []
    w.inspector.set_node("out")
    units = next(o for o in LAYERS["Dense"].options if o.name == "units")
    assert w.inspector._commit(units, 16)  # what the spin box does
    assert item.problems == ["Dense 'out' has 16 units but the data set 'spiral' has 2 "
                             "classes: set the last layer's units to 2"]
    assert "set the last layer's units to 2" in item.toolTip()
    w.doc.undo_stack.undo()
    assert item.problems == []
