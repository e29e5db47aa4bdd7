"""Renaming a node, driven through the inspector's name field as a user would."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from bplab.ui.commands import RenameNode
from bplab.ui.editor import Inspector, NetworkScene, NetworkView, ProblemsList
from bplab.ui.models import ProjectDocument
from PySide6.QtCore import Qt

from bplab.graph.ids import id_problem
from bplab.io.project import load_project

TIMEOUT = 30_000


@pytest.fixture
def editor(qtbot, spiral):
    # "out" is named as the network's output, so renaming it must follow there too
    spiral["network"]["output"] = "out"
    doc = ProjectDocument(spiral)
    scene = NetworkScene(doc)
    view = NetworkView(scene)
    qtbot.addWidget(view)
    inspector = Inspector(doc)
    qtbot.addWidget(inspector)
    scene.selection_changed.connect(inspector.show_selection)
    problems = ProblemsList(doc, scene, view)
    qtbot.addWidget(problems)
    inspector.show()
    view.show()
    return doc, scene, inspector, problems


def type_name(qtbot, inspector: Inspector, text: str) -> None:
    """Select the field's text, type ``text`` and press Enter."""
    field = inspector.name_edit
    field.setFocus()
    field.selectAll()
    enter_text(qtbot, field, text)
    qtbot.keyClick(field, Qt.Key_Return)


def enter_text(qtbot, field, text: str) -> None:
    if text.isascii():
        qtbot.keyClicks(field, text)
    else:  # QTest aborts on keys outside Latin-1's key codes: paste it instead
        field.insert(text)


def test_rename_through_the_field_renames_node_edges_output_and_position(qtbot, editor):
    doc, scene, inspector, _ = editor
    scene.select_nodes(["fc1"])
    assert inspector.node_id == "fc1" and inspector.name_edit.text() == "fc1"
    assert inspector.name_edit.toolTip()
    before = doc.to_project()
    item = scene.node_item("fc1")
    type_name(qtbot, inspector, "encoder1")

    assert doc.node_ids() == ["in", "encoder1", "act1", "out"]
    assert not doc.has_node("fc1")
    assert doc.node("act1")["inputs"] == ["encoder1"]
    assert ("in", "encoder1") in doc.edges() and ("encoder1", "act1") in doc.edges()
    assert list(doc.project["ui"]["positions"]) == ["in", "encoder1", "act1", "out"]
    assert doc.position("encoder1") == tuple(before["ui"]["positions"]["fc1"])
    assert doc.is_dirty and doc.undo_stack.count() == 1
    # the canvas moved the same card and its links to the new id; it stays selected
    assert scene.node_item("encoder1") is item and scene.node_item("fc1") is None
    assert item.node_id == "encoder1" and "encoder1" in item.toolTip()
    assert scene.edge_item("in", "encoder1") is not None
    assert scene.edge_item("encoder1", "act1") is not None
    assert scene.edge_item("in", "fc1") is None
    assert scene.selected_ids() == ["encoder1"]
    # the inspector follows the node
    assert inspector.node_id == "encoder1" and inspector.name_edit.text() == "encoder1"
    assert "'encoder1'" in inspector.subtitle.text() and inspector.hint.isHidden()
    assert doc.plan.ok and "encoder1" in doc.plan.shapes and "fc1" not in doc.plan.shapes

    # the output named in the network follows its node
    scene.select_nodes(["out"])
    type_name(qtbot, inspector, "head")
    assert doc.network["output"] == "head" and doc.output_id() == "head"
    assert doc.plan.output_id == "head"

    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.to_project() == before
    assert not doc.is_dirty
    assert scene.node_item("fc1") is item and item.node_id == "fc1"
    assert scene.edge_item("fc1", "act1") is not None and scene.edge_item("encoder1", "act1") \
        is None
    assert inspector.node_id == "out" and inspector.name_edit.text() == "out"
    doc.undo_stack.redo()
    assert doc.node("act1")["inputs"] == ["encoder1"] and scene.node_item("encoder1") is item
    doc.undo_stack.redo()
    assert doc.network["output"] == "head" and inspector.name_edit.text() == "head"


def test_rename_updates_the_problems_list(qtbot, editor):
    doc, scene, inspector, problems = editor
    from bplab.ui.commands import Disconnect

    doc.push(Disconnect(doc, "fc1", "act1"))
    assert any("act1" in problems.item(i).text() for i in range(problems.count()))
    scene.select_nodes(["act1"])
    type_name(qtbot, inspector, "squash")
    texts = [problems.item(i).text() for i in range(problems.count())]
    assert texts and any("squash" in t for t in texts)
    assert not any("act1" in t for t in texts)


@pytest.mark.parametrize("text, reason", [
    ("act1", "already the name"),
    ("", "needs a name"),
    ("   ", "needs a name"),
    ("fc1.a", "'.'"),
    ("enc oder", "' '"),
    ("1fc", "starts with a digit"),
    ("énc", "'é'"),
])
def test_refused_names_say_why_and_change_nothing(qtbot, editor, text, reason):
    doc, scene, inspector, _ = editor
    scene.select_nodes(["fc1"])
    before = doc.to_project()
    field = inspector.name_edit
    field.setFocus()
    field.selectAll()
    if text:
        enter_text(qtbot, field, text)
    else:
        qtbot.keyClick(field, Qt.Key_Delete)
    qtbot.keyClick(field, Qt.Key_Return)

    assert doc.to_project() == before
    assert doc.undo_stack.count() == 0 and not doc.is_dirty
    assert inspector.node_id == "fc1" and scene.node_item("fc1") is not None
    assert inspector.hint.isVisibleTo(inspector)
    assert reason in inspector.hint.text()
    assert "E5484D" in field.styleSheet()  # red, like other refused inputs
    # a valid name afterwards clears the hint and applies
    type_name(qtbot, inspector, "fc_1")
    assert doc.has_node("fc_1") and inspector.hint.isHidden() and field.styleSheet() == ""


def test_the_same_name_or_added_spaces_are_no_edit(qtbot, editor):
    doc, scene, inspector, _ = editor
    scene.select_nodes(["fc1"])
    type_name(qtbot, inspector, " fc1 ")
    assert doc.undo_stack.count() == 0 and inspector.name_edit.text() == "fc1"
    type_name(qtbot, inspector, " enc ")
    assert doc.has_node("enc") and doc.undo_stack.count() == 1


def test_id_problem_accepts_identifiers_only():
    for ok in ("in", "fc1", "encoder_1", "_x", "Head"):
        assert id_problem(ok) is None
    for bad in ("", "a.b", "a-b", "a b", "1a", "x" * 65, "a/b"):
        assert id_problem(bad) is not None


def test_a_name_still_used_by_a_missing_input_is_refused(qtbot, spiral):
    """Taking a name an input list still names (a link to a deleted node) would silently
    link the renamed node there: the inspector refuses it."""
    spiral["network"]["nodes"][3]["inputs"] = ["act1", "ghost"]
    doc = ProjectDocument(spiral)
    inspector = Inspector(doc)
    qtbot.addWidget(inspector)
    inspector.set_node("fc1")
    before = doc.to_project()
    type_name(qtbot, inspector, "ghost")
    assert doc.to_project() == before and doc.undo_stack.count() == 0
    assert "'out' still names a missing input 'ghost'" in inspector.hint.text()
    assert doc.rename_problem("fc1", "ghost2") is None


def test_document_signals_name_the_rename_first(spiral):
    doc = ProjectDocument(spiral)
    events = []
    doc.node_renamed.connect(lambda a, b: events.append(("renamed", a, b)))
    doc.node_removed.connect(lambda n: events.append(("removed", n)))
    doc.node_added.connect(lambda n: events.append(("added", n)))
    doc.edge_added.connect(lambda a, b: events.append(("edge_added", a, b)))
    doc.edge_removed.connect(lambda a, b: events.append(("edge_removed", a, b)))
    doc.network_changed.connect(lambda: events.append(("network",)))
    doc.push(RenameNode(doc, "act1", "squash"))
    assert events == [("renamed", "act1", "squash"), ("network",)]
    events.clear()
    doc.undo_stack.undo()
    assert events == [("renamed", "squash", "act1"), ("network",)]


# -- with the main window: save, reopen, train ---------------------------------------------
@pytest.fixture
def window(open_window):
    # the demo as a copy; a saved project of the test's own opened in place
    return lambda path=None: open_window(path, as_copy=path is None)


def test_f2_on_the_canvas_puts_the_cursor_in_the_name_field(qtbot, window):
    w = window()
    w.activateWindow()  # shortcuts and focus belong to the active window
    qtbot.waitUntil(w.isActiveWindow)
    w.scene.select_nodes(["fc2"])
    qtbot.waitUntil(lambda: w.inspector.name_edit.isVisible())  # the form is laid out
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_F2)
    edit = w.inspector.name_edit
    assert edit.hasFocus() and edit.selectedText() == "fc2"
    qtbot.keyClicks(edit, "hidden2")  # typing replaces the selected name
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert w.doc.has_node("hidden2") and not w.doc.has_node("fc2")
    # with two layers selected there is nothing to rename
    w.scene.select_nodes(["fc1", "hidden2"])
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_F2)
    assert "Select one layer" in w.statusBar().currentMessage()


def test_saved_and_reopened_project_keeps_the_name(qtbot, window, tmp_path):
    w = window()
    w.scene.select_nodes(["fc1"])
    type_name(qtbot, w.inspector, "encoder1")
    assert w.isWindowModified()
    target = tmp_path / "renamed.bplab.json"
    assert w.save_to(target)
    assert not w.isWindowModified()
    saved = load_project(target)
    ids = [n["id"] for n in saved["network"]["nodes"]]
    assert "encoder1" in ids and "fc1" not in ids
    assert "encoder1" in json.dumps(saved["ui"]["positions"])

    w2 = window(target)
    assert w2.doc.has_node("encoder1") and not w2.doc.has_node("fc1")
    assert w2.doc.node("act1")["inputs"] == ["encoder1"]
    assert w2.scene.node_item("encoder1") is not None and w2.doc.plan.ok


def test_training_after_a_rename_reports_the_new_name(qtbot, window):
    from bplab.ui.training.worker import PAUSED

    w = window()
    w.doc.set_value("training.diagnostics_every", 1)  # gradient norms at every step
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.step.trigger()
    assert w.session.state == PAUSED and not w.session.stale
    w.scene.select_nodes(["fc1"])
    type_name(qtbot, w.inspector, "encoder1")
    # like every network edit, a rename makes the next Run start a fresh trainer
    assert w.session.stale and "fresh" in w.statusBar().currentMessage()
    for _ in range(2):
        with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
            w.train_actions.step.trigger()
    trainer = w.session.trainer
    assert "encoder1" in trainer.network.layers and "fc1" not in trainer.network.layers
    assert "encoder1.weight" in trainer.network.state_dict()
    plot = w.plots["gradient_norms"]

    def reported() -> bool:
        w._on_frame_timer_timeout()
        return len(plot.data().get("encoder1", ((), ()))[0]) > 0

    qtbot.waitUntil(reported, timeout=TIMEOUT)
    assert "fc1" not in plot.names and "fc1" not in plot.data()
    _, y = plot.data()["encoder1"]
    assert np.all(np.isfinite(y)) and np.all(y > 0)  # measured by the trainer, not made up
    legend = [label.text for _, label in plot.legend.items]
    assert "encoder1" in legend and "fc1" not in legend


def test_rename_command_copies_its_inputs(spiral):
    doc = ProjectDocument(copy.deepcopy(spiral))
    command = RenameNode(doc, "fc1", "enc")
    doc.push(command)
    assert command.text() == "Rename 'fc1' to 'enc'"
    assert doc.undo_stack.undoText() == "Rename 'fc1' to 'enc'"
