"""Every edit of a project as a QUndoCommand on the document's one undo stack.

Network commands snapshot the network and the canvas positions on their first
``redo`` and restore those snapshots, so undo/redo gives back the project dict
exactly (node order, option keys, positions) and the document emits precise
signals from the difference. Only :class:`MoveNodes`/:class:`AutoLayout` (positions)
and :class:`SetValue` (one setting) store less. :class:`SetValue` is defined beside the
document, whose ``set_value`` pushes it, and re-exported here: this module imports the
document, never the reverse.

Where a new node goes in ``network.nodes``: the engine treats the *last* node as the
network's output, so a node appended from the output goes last, a node inserted on
an edge goes just before the edge's target, and an unconnected node (or a paste) goes
just before the last node, leaving the output alone. Linking the output to a node
that feeds nothing moves that node last: extending the chain moves the output.

Deleting nodes (:class:`RemoveNodes`) re-bridges chains: a consumer of a deleted node
that had exactly one input is fed by that input instead (deleting a Dropout in the
middle keeps the network connected). Links among deleted nodes are followed.
"""

from __future__ import annotations

import copy
from typing import Any

from bplab.ui.models.document import MISSING, ProjectDocument, SetValue, default_node_config
from bplab.ui.models.layout import layered_layout
from PySide6.QtGui import QUndoCommand

from bplab.layers import LAYERS

__all__ = [
    "AddNode", "AutoLayout", "Connect", "Disconnect", "InsertNodeAfter", "InsertNodeOnEdge",
    "InsertResidual", "MoveNodes", "PasteNodes", "RemoveNodes", "RenameNode", "ReplaceNodeType",
    "SetNodeParam",
    "SetValue",
    "make_node",
]

_MOVE_ID = 0x6270_0001
_PARAM_ID = 0x6270_0002


def make_node(doc: ProjectDocument, type_name: str, node_id: str | None = None,
              inputs: list[str] | None = None, **options: Any) -> dict:
    """A node dict with a fresh id and the required options filled with sensible values."""
    node = {"id": node_id or doc.new_id(type_name), "type": type_name,
            "inputs": list(inputs or [])}
    node.update(default_node_config(type_name))
    node.update(options)
    return node


class _NetworkEdit(QUndoCommand):
    """Base: subclasses edit copies of (nodes, positions) in :meth:`apply`.

    ``renames`` (old id -> new id) tells the document which nodes keep their identity
    under a new id, so views move their items instead of rebuilding them."""

    def __init__(self, doc: ProjectDocument, text: str):
        super().__init__(text)
        self.doc = doc
        self.renames: dict[str, str] = {}
        self._before: tuple[dict, dict] | None = None
        self._after: tuple[dict, dict] | None = None

    def apply(self, network: dict, positions: dict) -> None:
        raise NotImplementedError

    def redo(self) -> None:
        if self._after is None:
            self._before = self.doc._snapshot()
            network, positions = self.doc._snapshot()
            self.apply(network, positions)
            self._after = (network, positions)
        self.doc._restore(self._after, self.renames)

    def undo(self) -> None:
        self.doc._restore(self._before, {new: old for old, new in self.renames.items()})


def _index_of(nodes: list[dict], node_id: str) -> int:
    for i, n in enumerate(nodes):
        if n.get("id") == node_id:
            return i
    raise KeyError(node_id)


def _insert_unconnected(nodes: list[dict], node: dict) -> None:
    """Before the last node, so the network's output does not change."""
    nodes.insert(max(len(nodes) - 1, 0), node)


def _pos(p) -> list[float]:
    return [float(p[0]), float(p[1])]


class AddNode(_NetworkEdit):
    """Add ``node`` (a dict with id, type, inputs) at ``position``.

    ``append=True`` puts it last (it becomes the output); otherwise a node without
    inputs goes before the last node and one with inputs goes after its last input.
    """

    def __init__(self, doc, node: dict, position, append: bool = False):
        super().__init__(doc, f"Add {node['type']} '{node['id']}'")
        self.node = copy.deepcopy(node)
        self.node.setdefault("inputs", [])
        self.position = _pos(position)
        self.append = append

    def apply(self, network, positions):
        nodes = network.setdefault("nodes", [])
        if self.append or not nodes:
            nodes.append(copy.deepcopy(self.node))
        elif self.node["inputs"]:
            at = max(_index_of(nodes, s) for s in self.node["inputs"])
            nodes.insert(at + 1, copy.deepcopy(self.node))
        else:
            _insert_unconnected(nodes, copy.deepcopy(self.node))
        positions[self.node["id"]] = list(self.position)


class RemoveNodes(_NetworkEdit):
    """Delete nodes with their links; single-input chains are re-bridged (see module doc)."""

    def __init__(self, doc, node_ids: list[str], bridge: bool = True):
        ids = [n for n in dict.fromkeys(node_ids)]
        super().__init__(doc, f"Delete {len(ids)} nodes" if len(ids) > 1 else f"Delete '{ids[0]}'")
        self.ids = set(ids)
        self.bridge = bridge

    def apply(self, network, positions):
        nodes = network["nodes"]
        removed = {n["id"]: n for n in nodes if n["id"] in self.ids}

        def bridged(src: str) -> list[str]:
            """What replaces ``src`` in a consumer's inputs: follows the one chain of
            single-input deleted nodes up to a kept node (not a reachability walk)."""
            seen: set[str] = set()
            while src in removed:
                if src in seen or len(removed[src].get("inputs", [])) != 1:
                    return []
                seen.add(src)
                src = removed[src]["inputs"][0]
            return [src]

        kept = [n for n in nodes if n["id"] not in self.ids]
        for n in kept:
            inputs = n.get("inputs", [])
            if not any(s in removed for s in inputs):
                continue
            new_inputs: list[str] = []
            for s in inputs:
                for r in (bridged(s) if self.bridge else ([] if s in removed else [s])):
                    if r not in new_inputs:
                        new_inputs.append(r)
            n["inputs"] = new_inputs
        network["nodes"] = kept
        if network.get("output") in removed:
            network.pop("output")
        for nid in removed:
            positions.pop(nid, None)


class Connect(_NetworkEdit):
    """Link ``src``'s output to an input of ``dst`` (check ``doc.link_problem`` first)."""

    def __init__(self, doc, src: str, dst: str):
        super().__init__(doc, f"Connect '{src}' to '{dst}'")
        self.src, self.dst = src, dst

    def apply(self, network, positions):
        nodes = network["nodes"]
        dst = nodes[_index_of(nodes, self.dst)]
        dst.setdefault("inputs", []).append(self.src)
        feeds_nothing = not any(self.dst in n.get("inputs", ()) for n in nodes)
        if nodes[-1]["id"] == self.src and feeds_nothing and "output" not in network:
            nodes.remove(dst)
            nodes.append(dst)


class Disconnect(_NetworkEdit):
    def __init__(self, doc, src: str, dst: str):
        super().__init__(doc, f"Disconnect '{src}' from '{dst}'")
        self.src, self.dst = src, dst

    def apply(self, network, positions):
        nodes = network["nodes"]
        dst = nodes[_index_of(nodes, self.dst)]
        dst["inputs"] = [s for s in dst.get("inputs", []) if s != self.src]


class SetNodeParam(_NetworkEdit):
    """Set option ``name`` of a node (``MISSING`` removes it: back to the default).

    Consecutive edits of the same option of the same node merge into one undo step
    (a spin box sends a value per click).
    """

    def __init__(self, doc, node_id: str, name: str, value: Any):
        super().__init__(doc, f"Set {node_id}.{name}")
        self.node_id, self.name, self.value = node_id, name, copy.deepcopy(value)

    def apply(self, network, positions):
        node = network["nodes"][_index_of(network["nodes"], self.node_id)]
        if self.value is MISSING:
            node.pop(self.name, None)
        else:
            node[self.name] = copy.deepcopy(self.value)

    def id(self) -> int:
        return _PARAM_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetNodeParam) or (other.node_id, other.name) != (
                self.node_id, self.name):
            return False
        self._after = other._after
        self.value = other.value
        return True


class ReplaceNodeType(_NetworkEdit):
    """Give a node another layer type; id, inputs and position stay, options the new type
    does not take are dropped, required ones it lacks get default values."""

    def __init__(self, doc, node_id: str, type_name: str):
        super().__init__(doc, f"Replace '{node_id}' by {type_name}")
        self.node_id, self.type_name = node_id, type_name

    def apply(self, network, positions):
        nodes = network["nodes"]
        i = _index_of(nodes, self.node_id)
        old = nodes[i]
        cls = LAYERS.get(self.type_name)
        takes = {o.name for o in cls.options} if cls is not None else set()
        new = {"id": old["id"], "type": self.type_name, "inputs": list(old.get("inputs", []))}
        for k, v in default_node_config(self.type_name).items():
            new[k] = v
        for k, v in old.items():
            if k in takes:
                new[k] = v
        nodes[i] = new


class RenameNode(_NetworkEdit):
    """Give node ``node_id`` the id ``new_id`` (check ``doc.rename_problem`` first): the
    node itself, every input list naming it, the network's ``output`` and its canvas
    position follow; list and key order stay, so undo gives back the same project."""

    def __init__(self, doc, node_id: str, new_id: str):
        super().__init__(doc, f"Rename '{node_id}' to '{new_id}'")
        self.node_id, self.new_id = node_id, new_id
        self.renames = {node_id: new_id}

    def apply(self, network, positions):
        old, new = self.node_id, self.new_id
        for n in network["nodes"]:
            if n.get("id") == old:
                n["id"] = new
            if old in n.get("inputs", ()):
                n["inputs"] = [new if s == old else s for s in n["inputs"]]
        if network.get("output") == old:
            network["output"] = new
        if old in positions:
            # rebuilt in place to keep the key order (the saved file stays a clean diff)
            items = list(positions.items())
            positions.clear()
            positions.update((new if k == old else k, v) for k, v in items)


class InsertNodeOnEdge(_NetworkEdit):
    """Put ``node`` on the link ``src -> dst``: src -> node -> dst."""

    def __init__(self, doc, node: dict, src: str, dst: str, position):
        super().__init__(doc, f"Insert {node['type']} between '{src}' and '{dst}'")
        self.node = copy.deepcopy(node)
        self.src, self.dst = src, dst
        self.position = _pos(position)
        self.moves: dict = {}  # other nodes to move out of the way: id -> (x, y)

    def apply(self, network, positions):
        nodes = network["nodes"]
        dst = nodes[_index_of(nodes, self.dst)]
        dst["inputs"] = [self.node["id"] if s == self.src else s for s in dst["inputs"]]
        for nid, p in self.moves.items():
            positions[nid] = _pos(p)
        node = copy.deepcopy(self.node)
        node["inputs"] = [self.src]
        nodes.insert(_index_of(nodes, self.dst), node)
        positions[node["id"]] = list(self.position)


class InsertNodeAfter(_NetworkEdit):
    """Put ``node`` right after ``src``: it takes src's output and feeds all of src's
    consumers ("add BatchNorm after Dense"). After the output it becomes the output."""

    def __init__(self, doc, node: dict, src: str, position):
        super().__init__(doc, f"Insert {node['type']} after '{src}'")
        self.node = copy.deepcopy(node)
        self.src = src
        self.position = _pos(position)
        self.moves: dict = {}  # other nodes to move out of the way: id -> (x, y)

    def apply(self, network, positions):
        nodes = network["nodes"]
        for nid, p in self.moves.items():
            positions[nid] = _pos(p)
        consumers = [n for n in nodes if self.src in n.get("inputs", ())]
        for n in consumers:
            n["inputs"] = [self.node["id"] if s == self.src else s for s in n["inputs"]]
        node = copy.deepcopy(self.node)
        node["inputs"] = [self.src]
        if network.get("output") == self.src:
            network["output"] = node["id"]
        nodes.insert(_index_of(nodes, self.src) + 1, node)
        positions[node["id"]] = list(self.position)


class InsertResidual(InsertNodeAfter):
    """Put ``node`` (an Add) right after ``src`` with ``skip`` as its second input: src's
    consumers read ``src + skip``, a skip connection around the block that ends at src."""

    def __init__(self, doc, node: dict, src: str, skip: str, position):
        super().__init__(doc, node, src, position)
        self.skip = skip
        self.setText(f"Add a skip connection from '{skip}' after '{src}'")

    def apply(self, network, positions):
        super().apply(network, positions)
        nodes = network["nodes"]
        nodes[_index_of(nodes, self.node["id"])]["inputs"].append(self.skip)


class PasteNodes(_NetworkEdit):
    """Add copies of ``nodes`` (links among them kept, links to others dropped) with fresh
    ids, at their ``positions`` shifted by ``offset``. ``new_ids`` maps old id -> new id."""

    def __init__(self, doc, nodes: list[dict], positions: dict, offset=(40.0, 40.0)):
        super().__init__(doc, f"Paste {len(nodes)} nodes")
        taken: set[str] = set()
        self.new_ids: dict[str, str] = {}
        for n in nodes:
            new = doc.new_id(n["type"], taken) if doc.has_node(n["id"]) or n["id"] in taken \
                else n["id"]
            if n["type"] == "Input" and new == n["id"] and doc.has_node(new):
                new = doc.new_id(n["type"], taken | {new})
            taken.add(new)
            self.new_ids[n["id"]] = new
        self.nodes = []
        for n in nodes:
            c = copy.deepcopy(n)
            c["id"] = self.new_ids[n["id"]]
            c["inputs"] = [self.new_ids[s] for s in n.get("inputs", []) if s in self.new_ids]
            self.nodes.append(c)
        self.positions = {}
        for i, n in enumerate(nodes):
            p = positions.get(n["id"], (i * 30.0, i * 30.0))
            self.positions[self.new_ids[n["id"]]] = [float(p[0]) + offset[0],
                                                     float(p[1]) + offset[1]]

    def apply(self, network, positions):
        nodes = network.setdefault("nodes", [])
        at = max(len(nodes) - 1, 0)
        nodes[at:at] = copy.deepcopy(self.nodes)
        for nid, p in self.positions.items():
            positions[nid] = list(p)


class MoveNodes(QUndoCommand):
    """Move nodes to ``positions`` (id -> (x, y)); undo restores the stored values exactly.

    Commands with the same non-None ``drag_id`` and the same nodes merge, so a drag
    reported in steps is one undo step.
    """

    def __init__(self, doc: ProjectDocument, positions: dict, drag_id: Any = None,
                 text: str = ""):
        super().__init__(text or (f"Move {len(positions)} nodes" if len(positions) > 1
                                  else f"Move '{next(iter(positions), '')}'"))
        self.doc = doc
        stored = doc.project.get("ui", {}).get("positions", {})
        self.old = {k: copy.deepcopy(stored.get(k)) for k in positions}
        self.new = {k: _pos(v) for k, v in positions.items()}
        self.drag_id = drag_id

    def redo(self) -> None:
        self.doc._set_positions(self.new)

    def undo(self) -> None:
        self.doc._set_positions(self.old)

    def id(self) -> int:
        return _MOVE_ID if self.drag_id is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, MoveNodes) or other.drag_id != self.drag_id \
                or set(other.new) != set(self.new):
            return False
        self.new = dict(other.new)
        return True


class AutoLayout(MoveNodes):
    """Lay the network out top to bottom (:func:`bplab.ui.models.layered_layout`), one undo step.
    The layout keeps the current top-left corner of the drawing."""

    def __init__(self, doc: ProjectDocument):
        current = doc.positions()
        auto = layered_layout(doc.nodes())
        if current:
            ox = min(p[0] for p in current.values()) - min(p[0] for p in auto.values())
            oy = min(p[1] for p in current.values()) - min(p[1] for p in auto.values())
        else:
            ox = oy = 0.0
        moves = {nid: (x + ox, y + oy) for nid, (x, y) in auto.items()}
        super().__init__(doc, moves, None, "Auto layout")
