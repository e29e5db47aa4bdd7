"""ProjectDocument and the commands, without widgets: signals to lists, exact undo."""

from __future__ import annotations

import pytest
from bplab.ui import commands as cmd
from bplab.ui.models import MISSING, ProjectDocument, layered_layout
from PySide6.QtGui import QUndoCommand

from bplab.graph.layout import UNIT_MAP_ROOM, X_SPACING
from bplab.layers import LAYERS


def record(doc: ProjectDocument) -> list[tuple]:
    events: list[tuple] = []
    for name in ("node_added", "node_removed", "node_changed", "node_moved", "edge_added",
                 "edge_removed", "settings_changed"):
        getattr(doc, name).connect(lambda *a, n=name: events.append((n, *a)))
    doc.network_changed.connect(lambda: events.append(("network_changed",)))
    doc.plan_changed.connect(lambda plan: events.append(("plan_changed", plan.ok)))
    return events


def test_load_makes_inputs_explicit_keeps_unknown_keys_and_lays_out(spiral):
    doc = ProjectDocument(spiral)
    assert [n["inputs"] for n in doc.nodes()] == [[], ["in"], ["fc1"], ["act1"]]
    assert doc.project["ui"]["zoom"] == 1.0 and doc.project["dataset"]["name"] == "spiral"
    assert doc.position("in") == (0.0, 0.0) and doc.position("fc1") == (0.0, 120.0)
    # nodes without a position are placed, not on top of the ones that had one
    assert doc.position("act1") is not None and doc.position("act1") not in (
        doc.position("in"), doc.position("fc1"))
    assert doc.plan.ok and doc.plan.shapes["out"] == (2,)
    assert doc.to_project() == doc.project and doc.to_project() is not doc.project
    assert not doc.is_dirty


def test_new_id_is_unique_per_type(spiral):
    doc = ProjectDocument(spiral)
    assert doc.new_id("Dense") == "fc2"  # fc1 is taken
    assert doc.new_id("Tanh") == "tanh1"
    assert doc.new_id("Input") == "in1"
    for name in LAYERS:
        new = doc.new_id(name)
        assert new not in doc.node_ids() and new.isidentifier()


def test_signals_fire_in_order_for_an_insert(spiral):
    doc = ProjectDocument(spiral)
    events = record(doc)
    node = cmd.make_node(doc, "Dense", units=4)
    doc.push(cmd.InsertNodeOnEdge(doc, node, "act1", "out", (0, 300)))
    names = [e[0] for e in events]
    # rewiring 'out' is an edge change, not a node_changed (that is for type and options)
    assert names == ["edge_removed", "node_added", "edge_added", "edge_added",
                     "network_changed", "plan_changed"]
    assert events[0] == ("edge_removed", "act1", "out")
    assert ("edge_added", "act1", "fc2") in events and ("edge_added", "fc2", "out") in events
    assert doc.plan.shapes["fc2"] == (4,) and doc.plan.ok


# One or more edits per command class of bplab.ui.commands, each applied to the spiral
# network: doc -> command. A new command class fails test_every_command_has_a_case until
# it gets one here.
EDITS = {
    "AddNode": [
        lambda doc: cmd.AddNode(doc, cmd.make_node(doc, "Dense", inputs=["out"]), (0, 500),
                                append=True),
        lambda doc: cmd.AddNode(doc, cmd.make_node(doc, "Tanh"), (300, 0)),
    ],
    "RemoveNodes": [
        lambda doc: cmd.RemoveNodes(doc, ["act1"]),
        lambda doc: cmd.RemoveNodes(doc, ["fc1", "act1"], bridge=False),
    ],
    "Connect": [
        lambda doc: cmd.Connect(doc, "in", "act1"),  # second input: engine problem, but undoable
    ],
    "Disconnect": [lambda doc: cmd.Disconnect(doc, "fc1", "act1")],
    "SetNodeParam": [
        lambda doc: cmd.SetNodeParam(doc, "fc1", "units", 32),
        lambda doc: cmd.SetNodeParam(doc, "fc1", "init", MISSING),
    ],
    "ReplaceNodeType": [
        lambda doc: cmd.ReplaceNodeType(doc, "act1", "Dense"),
        lambda doc: cmd.ReplaceNodeType(doc, "fc1", "Tanh"),
    ],
    "RenameNode": [
        lambda doc: cmd.RenameNode(doc, "fc1", "hidden"),
        lambda doc: cmd.RenameNode(doc, "out", "logits"),
    ],
    "InsertNodeOnEdge": [
        lambda doc: cmd.InsertNodeOnEdge(doc, cmd.make_node(doc, "Tanh"), "fc1", "act1", (5, 5)),
    ],
    "InsertNodeAfter": [
        lambda doc: cmd.InsertNodeAfter(doc, cmd.make_node(doc, "Tanh"), "out", (0, 600)),
    ],
    "InsertResidual": [
        lambda doc: cmd.InsertResidual(doc, {"id": "sum1", "type": "Add"}, "act1", "fc1",
                                       (200, 300)),
    ],
    "MoveNodes": [lambda doc: cmd.MoveNodes(doc, {"in": (10, 20), "fc1": (-5.5, 3)})],
    "AutoLayout": [lambda doc: cmd.AutoLayout(doc)],
    "SetValue": [
        lambda doc: cmd.SetValue(doc, "optimizer.lr", 0.01, 0.1),
        lambda doc: cmd.SetValue(doc, "training.new_key", MISSING, [1, 2]),
    ],
    "PasteNodes": [
        lambda doc: cmd.PasteNodes(doc, [dict(doc.node("fc1")), dict(doc.node("act1"))],
                                   {"fc1": (0, 0), "act1": (0, 100)}),
    ],
}


def _command_classes() -> dict[str, type]:
    """Every public QUndoCommand class that bplab.ui.commands offers (re-exports included)."""
    return {
        name: obj for name, obj in vars(cmd).items()
        if isinstance(obj, type) and issubclass(obj, QUndoCommand) and obj is not QUndoCommand
        and not name.startswith("_")
    }


def test_every_command_has_a_case():
    classes = _command_classes()
    assert {"AddNode", "RenameNode", "SetValue"} <= set(classes)  # the finder finds them
    assert sorted(set(classes) - set(EDITS)) == [], "commands without an undo/redo case"
    assert sorted(set(EDITS) - set(classes)) == [], "cases for commands that do not exist"


@pytest.mark.parametrize("name", sorted(_command_classes()))
def test_undo_redo_restore_the_exact_project(spiral, name):
    assert EDITS.get(name), f"{name} has no case in EDITS"
    for make in EDITS[name]:
        doc = ProjectDocument(spiral)
        edit = make(doc)
        assert type(edit) is _command_classes()[name]
        before = doc.to_project()
        doc.push(edit)
        after = doc.to_project()
        assert after != before, edit.text()
        assert doc.is_dirty
        doc.undo_stack.undo()
        assert doc.to_project() == before, edit.text()
        assert not doc.is_dirty
        doc.undo_stack.redo()
        assert doc.to_project() == after, edit.text()


def test_undo_redo_signals_are_mirror_images(spiral):
    doc = ProjectDocument(spiral)
    doc.push(cmd.RemoveNodes(doc, ["act1"]))
    events = record(doc)
    doc.undo_stack.undo()
    assert ("node_added", "act1") in events
    assert ("edge_removed", "fc1", "out") in events
    assert ("edge_added", "fc1", "act1") in events and ("edge_added", "act1", "out") in events
    assert events[-1] == ("plan_changed", True)


def test_remove_middle_node_bridges_the_chain(spiral):
    doc = ProjectDocument(spiral)
    doc.push(cmd.RemoveNodes(doc, ["act1"]))
    assert doc.node("out")["inputs"] == ["fc1"] and doc.plan.ok
    assert "act1" not in doc.project["ui"]["positions"]
    doc.push(cmd.RemoveNodes(doc, ["fc1", "out"]))
    assert doc.node_ids() == ["in"]


def test_link_problems(spiral):
    doc = ProjectDocument(spiral)
    doc.push(cmd.AddNode(doc, cmd.make_node(doc, "Tanh", "lone"), (300, 0)))
    assert "cycle" in doc.link_problem("out", "fc1")
    assert "one input" in doc.link_problem("in", "act1")
    assert "Input" in doc.link_problem("fc1", "in")
    assert "itself" in doc.link_problem("lone", "lone")
    assert "already feeds" in doc.link_problem("fc1", "act1")
    assert doc.link_problem("out", "lone") is None


def test_unconnected_node_keeps_the_output_and_linking_from_it_moves_it(spiral):
    doc = ProjectDocument(spiral)
    doc.push(cmd.AddNode(doc, cmd.make_node(doc, "Tanh", "lone"), (300, 0)))
    assert doc.output_id() == "out"
    doc.push(cmd.Connect(doc, "out", "lone"))
    assert doc.output_id() == "lone" and doc.plan.ok and doc.plan.output_id == "lone"


def test_moves_of_one_drag_merge(spiral):
    doc = ProjectDocument(spiral)
    before = doc.to_project()
    for step in range(1, 6):
        doc.push(cmd.MoveNodes(doc, {"fc1": (step * 10, 120)}, drag_id="drag-1"))
    assert doc.undo_stack.count() == 1 and doc.position("fc1") == (50.0, 120.0)
    doc.undo_stack.undo()
    assert doc.to_project() == before


def test_spin_box_edits_of_one_option_merge(spiral):
    doc = ProjectDocument(spiral)
    for units in (9, 10, 11):
        doc.push(cmd.SetNodeParam(doc, "fc1", "units", units))
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert doc.node("fc1")["units"] == 8


def test_set_value_shares_the_stack_and_reports_the_path(spiral):
    doc = ProjectDocument(spiral)
    paths = []
    doc.settings_changed.connect(paths.append)
    dirty = []
    doc.dirty_changed.connect(dirty.append)
    doc.set_value("training.batch_size", 64)
    doc.set_value("training.batch_size", 64)  # no-op: same value
    assert doc.get("training.batch_size") == 64 and paths == ["training.batch_size"]
    assert doc.undo_stack.count() == 1 and dirty == [True]
    doc.undo_stack.undo()
    assert doc.get("training.batch_size") == 32 and dirty == [True, False]


def test_replace_node_type_drops_options_the_new_type_does_not_take(spiral):
    doc = ProjectDocument(spiral)
    doc.push(cmd.ReplaceNodeType(doc, "fc1", "Tanh"))
    assert doc.node("fc1") == {"id": "fc1", "type": "Tanh", "inputs": ["in"]}
    assert doc.position("fc1") == (0.0, 120.0)


def test_set_project_replaces_and_clears_history(spiral):
    doc = ProjectDocument(spiral)
    doc.push(cmd.SetNodeParam(doc, "fc1", "units", 3))
    replaced = []
    doc.project_replaced.connect(lambda: replaced.append(True))
    doc.set_project({"network": {"nodes": [{"id": "x", "type": "Input", "shape": [4]}]}})
    assert replaced == [True] and doc.undo_stack.count() == 0 and doc.node_ids() == ["x"]


def test_layered_layout_puts_branches_side_by_side():
    nodes = [{"id": "in", "inputs": []}, {"id": "a", "inputs": ["in"]},
             {"id": "b", "inputs": ["in"]}, {"id": "m", "inputs": ["a", "b"]}]
    pos = layered_layout(nodes)
    assert pos["in"][1] < pos["a"][1] == pos["b"][1] < pos["m"][1]
    assert pos["a"][0] != pos["b"][0]
    assert min(pos["a"][0], pos["b"][0]) < pos["m"][0] < max(pos["a"][0], pos["b"][0])


def test_layout_of_a_long_chain_is_linear_time():
    nodes = [{"id": "n0", "inputs": []}] + [{"id": f"n{i}", "inputs": [f"n{i - 1}"]}
                                             for i in range(1, 2000)]
    pos = layered_layout(nodes)
    assert len(set(pos.values())) == 2000, "no two nodes overlap"
    # the chain wraps into bands (left to right), each read top to bottom
    xs = sorted({p[0] for p in pos.values()})
    assert 1 < len(xs) < 100
    first_band = [pos[f"n{i}"] for i in range(10)]
    assert all(b[1] > a[1] and b[0] == a[0] for a, b in zip(first_band, first_band[1:]))


def test_shallow_networks_stay_in_one_column_and_deeper_ones_wrap():
    def chain_of(n):
        return [{"id": "n0", "inputs": []}] + [{"id": f"n{i}", "inputs": [f"n{i - 1}"]}
                                               for i in range(1, n)]

    assert len({p[0] for p in layered_layout(chain_of(3)).values()}) == 1
    # deeper: bands chosen so the drawing is about 1.6 times as wide as high, as the canvas
    # (a column of six, the demo, showed half of itself at 1280 x 800: two bands of three)
    for levels, bands, rows in [(4, 2, 2), (5, 2, 3), (6, 2, 3), (8, 3, 3)]:
        pos = layered_layout(chain_of(levels))
        assert len({p[0] for p in pos.values()}) == bands, levels
        assert max(p[1] for p in pos.values()) == (rows - 1) * 120.0, levels
    # a network on the plane leaves room between its bands for its unit maps
    plane = chain_of(6)
    plane[0].update(type="Input", shape=[2])
    xs = sorted({p[0] for p in layered_layout(plane).values()})
    assert xs[1] - xs[0] == X_SPACING + UNIT_MAP_ROOM
    xs = sorted({p[0] for p in layered_layout(chain_of(6)).values()})
    assert xs[1] - xs[0] == X_SPACING
    pos = layered_layout(chain_of(9))  # the MNIST CNN: three bands of three
    assert len({p[0] for p in pos.values()}) == 3
    assert max(p[1] for p in pos.values()) == 2 * 120.0
    pos = layered_layout(chain_of(22))  # the ten-layer demos: five bands of five (two last)
    assert len({p[0] for p in pos.values()}) == 5
    assert max(p[1] for p in pos.values()) == 4 * 120.0
