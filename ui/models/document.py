"""The project being edited: one dict, one undo stack, domain signals.

:class:`ProjectDocument` owns a bplab project (the JSON-able dict of format version 1)
and the single :class:`QUndoStack` every edit goes through. Views only *read* it and
listen to its past-tense signals; edits are :mod:`bplab.ui.commands` pushed on the stack,
which call the underscore mutators below. After each network edit the network is
re-analysed with :func:`bplab.analyze` and :attr:`plan_changed` carries the new plan.

>>> doc = ProjectDocument()
>>> doc.set_project({"network": {"nodes": [{"id": "in", "type": "Input", "shape": [2]},
...                                        {"id": "fc1", "type": "Dense", "units": 3}]}})
>>> doc.node("fc1")["inputs"]
['in']
"""

from __future__ import annotations

import copy
from typing import Any

from bplab.ui.models.layout import layered_layout
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from bplab import analyze
from bplab.graph import Plan
from bplab.graph.ids import id_problem, new_id
from bplab.graph.topology import declared_inputs, would_cycle
from bplab.layers import LAYERS
from bplab.layers.base import REQUIRED

__all__ = [
    "MISSING", "ProjectDocument", "SetValue", "default_node_config",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    # commands deep-copy their values; the marker must stay the one object
    def __copy__(self) -> _Missing:
        return self

    def __deepcopy__(self, memo) -> _Missing:
        return self


# Marks "no such key": SetValue/SetNodeParam to MISSING delete the key, so undo can
# restore a project where a setting was absent.
MISSING: Any = _Missing()

def default_node_config(type_name: str) -> dict[str, Any]:
    """Values for the *required* options of a fresh node (optional ones stay implicit)."""
    cls = LAYERS.get(type_name)
    out: dict[str, Any] = {}
    if cls is None:
        return out
    for opt in cls.options:
        if opt.default is not REQUIRED:
            continue
        lo = opt.low
        if opt.kind in ("int", "int_or_none"):
            value = 16 if (lo is None or lo <= 16) and (opt.high is None or opt.high >= 16) else lo
            out[opt.name] = int(value if value is not None else 1)
        elif opt.kind == "float":
            out[opt.name] = float(lo if lo is not None and not opt.low_open else 1.0)
        elif opt.kind == "bool":
            out[opt.name] = False
        elif opt.kind == "choice":
            out[opt.name] = opt.choices[0]
        elif opt.kind == "pair":
            out[opt.name] = 3
        elif opt.kind == "ints":
            # -1 lets Reshape infer the size; Input needs a positive shape.
            out[opt.name] = [2] if lo is not None else [-1]
        elif opt.kind == "init":
            out[opt.name] = "default"
    return out


class ProjectDocument(QObject):
    """A bplab project under edit. Read freely; change only through commands.

    Signals are past-tense events, emitted after the state has changed:
    ``edge_removed``, ``node_removed``, ``node_added``, ``node_changed``, ``node_moved``,
    ``edge_added`` (in this order within one edit, after ``node_renamed(old, new)`` for a
    renamed node: the other signals already use the new id), then ``network_changed`` and
    ``plan_changed(plan)``. ``settings_changed(path)`` for non-network values,
    ``project_replaced`` after :meth:`set_project`, ``dirty_changed(bool)`` from the
    undo stack's clean state (and a recorded run not saved yet), ``runs_changed`` when the
    recorded runs (the project's ``"runs"``) change.
    """

    node_added = Signal(str)
    node_removed = Signal(str)
    edge_added = Signal(str, str)
    edge_removed = Signal(str, str)
    node_changed = Signal(str)
    node_renamed = Signal(str, str)
    node_moved = Signal(str)
    settings_changed = Signal(str)
    network_changed = Signal()
    plan_changed = Signal(object)
    project_replaced = Signal()
    dirty_changed = Signal(bool)
    runs_changed = Signal()

    def __init__(self, project: dict | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_undo_stack_clean_changed)
        self._project: dict = {}
        self._index: dict[str, dict] = {}
        self._plan: Plan = analyze({"nodes": []})
        self._unsaved_run = False  # a run was recorded since the last save
        self.set_project(project if project is not None else empty_project())

    # -- reading ---------------------------------------------------------------------------
    @property
    def project(self) -> dict:
        """The live project dict: read it, never mutate it (use commands)."""
        return self._project

    @property
    def network(self) -> dict:
        return self._project["network"]

    def nodes(self) -> list[dict]:
        return self._project["network"]["nodes"]

    def node(self, node_id: str) -> dict | None:
        return self._index.get(node_id)

    def node_ids(self) -> list[str]:
        return [n["id"] for n in self.nodes()]

    def has_node(self, node_id: str) -> bool:
        return node_id in self._index

    def edges(self) -> list[tuple[str, str]]:
        """(source, target) pairs between existing nodes, in node order."""
        out = []
        for n in self.nodes():
            for src in dict.fromkeys(n.get("inputs", ())):
                if src in self._index and src != n["id"]:
                    out.append((src, n["id"]))
        return out

    def consumers(self, node_id: str) -> list[str]:
        return [n["id"] for n in self.nodes() if node_id in n.get("inputs", ())]

    @property
    def plan(self) -> Plan:
        """:func:`bplab.analyze` of the network, recomputed after every network edit."""
        return self._plan

    def output_id(self) -> str | None:
        """The node the engine treats as the output (explicit ``output`` or the last node)."""
        out = self.network.get("output")
        if isinstance(out, str) and out in self._index:
            return out
        nodes = self.nodes()
        return nodes[-1]["id"] if nodes else None

    def position(self, node_id: str) -> tuple[float, float] | None:
        pos = self._positions().get(node_id)
        return (float(pos[0]), float(pos[1])) if pos is not None else None

    def positions(self) -> dict[str, tuple[float, float]]:
        return {k: (float(v[0]), float(v[1])) for k, v in self._positions().items()}

    def get(self, path: str, default: Any = None) -> Any:
        """Value at a dotted path (``"optimizer.lr"``), or ``default``."""
        cur: Any = self._project
        for key in path.split("."):
            if not isinstance(cur, dict) or key not in cur:
                return default
            cur = cur[key]
        return cur

    @property
    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean() or self._unsaved_run

    @property
    def runs(self) -> list[dict]:
        """The recorded runs (:class:`bplab.runs.RunRecord` JSON), oldest first: read only."""
        runs = self._project.get("runs")
        return runs if isinstance(runs, list) else []

    def run(self, run_id: str) -> dict | None:
        return next((r for r in self.runs if r.get("id") == run_id), None)

    def new_id(self, type_name: str, taken: set[str] | None = None) -> str:
        """A fresh id: ``fc1``, ``fc2`` for Dense, ``relu1`` for ReLU, ``in`` for the Input."""
        return new_id(type_name, set(self._index) | (taken or set()))

    def link_problem(self, src: str, dst: str) -> str | None:
        """Why ``src -> dst`` cannot be linked, or None if it can."""
        if src not in self._index or dst not in self._index:
            return "Both ends of a link must be nodes of the network."
        dst_node = self._index[dst]
        cls = LAYERS.get(dst_node["type"])
        if src == dst:
            return f"'{src}' cannot feed itself."
        if cls is not None and cls.arity == 0:
            return f"'{dst}' is the network's Input: it takes no inputs."
        inputs = dst_node.get("inputs", [])
        if src in inputs:
            return f"'{src}' already feeds '{dst}'."
        if would_cycle(self.nodes(), src, dst):
            return (f"Linking '{src}' to '{dst}' would make a cycle: "
                    f"'{dst}' already feeds '{src}'.")
        if cls is not None and cls.arity == 1 and inputs:
            return (f"{dst_node['type']} '{dst}' takes one input and already has '{inputs[0]}': "
                    "remove that link first, or merge both with Add or Concat.")
        return None

    def rename_problem(self, node_id: str, new_id: str) -> str | None:
        """Why ``node_id`` cannot be renamed ``new_id``, or None if it can (the same name
        is no problem: renaming to it changes nothing)."""
        if node_id not in self._index:
            return f"There is no node '{node_id}'."
        problem = id_problem(new_id)
        if problem is not None:
            return problem
        if new_id != node_id and new_id in self._index:
            return f"'{new_id}' is already the name of a {self._index[new_id]['type']} node."
        if new_id != node_id:
            # An input list may still name a node that no longer exists; taking that name
            # would silently link this node there.
            user = next((n["id"] for n in self.nodes() if new_id in n.get("inputs", ())), None)
            if user is not None:
                return (f"'{user}' still names a missing input '{new_id}': remove that "
                        "link first, or choose another name.")
        return None

    # -- whole-project operations (not undoable) ---------------------------------------------
    def set_project(self, project: dict) -> None:
        """Replace the project: clears the undo stack, makes inputs explicit, lays out nodes
        that have no position. Keys the editor does not know are kept."""
        project = copy.deepcopy(project)
        network = project.setdefault("network", {})
        if not isinstance(network, dict):
            network = project["network"] = {"nodes": list(network or [])}
        nodes = network.setdefault("nodes", [])
        prev = None
        for node in nodes:
            if isinstance(node, dict):
                if isinstance(node.get("inputs"), str):
                    # the editor writes a bare id as the list the format asks for
                    node["inputs"] = [node["inputs"]]
                if "inputs" not in node:
                    node["inputs"] = declared_inputs(node, prev)
                prev = node.get("id")
        ui = project.setdefault("ui", {})
        positions = ui.setdefault("positions", {})
        missing = [n for n in nodes if isinstance(n, dict) and n.get("id") not in positions]
        if missing:
            auto = layered_layout([n for n in nodes if isinstance(n, dict) and "id" in n])
            if len(missing) < len(nodes):
                # Keep the user's layout; put the newcomers to its right.
                right = max(float(p[0]) for p in positions.values()) + 260.0
                for nid, (x, y) in auto.items():
                    auto[nid] = (x + right, y)
            for n in missing:
                if n.get("id") in auto:
                    positions[n["id"]] = list(auto[n["id"]])
        self._project = project
        self._reindex()
        self._unsaved_run = False
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self._plan = analyze(self.network)
        self.project_replaced.emit()
        self.runs_changed.emit()
        self.network_changed.emit()
        self.plan_changed.emit(self._plan)

    def to_project(self) -> dict:
        """A deep copy of the project, ready to save (canvas positions included)."""
        return copy.deepcopy(self._project)

    def mark_saved(self) -> None:
        was_dirty = self.is_dirty
        self._unsaved_run = False
        self.undo_stack.setClean()
        if was_dirty and not self.is_dirty:
            self.dirty_changed.emit(False)

    def add_run(self, record: dict) -> None:
        """Append a recorded run (not an undoable edit: a run happened, Undo does not
        un-happen it). The project needs saving afterwards."""
        was_dirty = self.is_dirty
        self._project.setdefault("runs", []).append(copy.deepcopy(record))
        self._unsaved_run = True
        self.runs_changed.emit()
        if not was_dirty:
            self.dirty_changed.emit(True)

    # -- undoable conveniences ----------------------------------------------------------
    def push(self, command) -> None:
        self.undo_stack.push(command)

    def set_value(self, path: str, value: Any) -> None:
        """Set a project setting (``"optimizer.lr"``) as one undoable edit."""
        old = self.get(path, MISSING)
        if old is not MISSING and old == value and type(old) is type(value):
            return
        self.undo_stack.push(SetValue(self, path, old, value))

    # -- mutators: used by ui.commands only ----------------------------------------------
    def _snapshot(self) -> tuple[dict, dict]:
        """(network, positions), deep-copied: what a network command saves and restores."""
        return copy.deepcopy(self.network), copy.deepcopy(self._positions())

    def _restore(self, snapshot: tuple[dict, dict], renames: dict[str, str] | None = None
                 ) -> None:
        """Make network and positions equal to ``snapshot`` and emit what changed.

        ``renames`` (old id -> new id) are nodes that stay the same node under a new id:
        ``node_renamed`` is emitted for them instead of removing and adding them."""
        network, positions = copy.deepcopy(snapshot[0]), copy.deepcopy(snapshot[1])
        renames = dict(renames or {})

        def new_name(nid: str) -> str:
            return renames.get(nid, nid)

        old_index = {new_name(k): v for k, v in self._index.items()}
        old_edges = {(new_name(s), new_name(d)) for s, d in self.edges()}
        old_positions = {new_name(k): v for k, v in self._positions().items()}
        self._project["network"] = network
        self._project.setdefault("ui", {})["positions"] = positions
        self._reindex()
        new_edges = set(self.edges())
        new_index = self._index

        for old, new in renames.items():
            self.node_renamed.emit(old, new)
        for src, dst in [e for e in _ordered(old_edges, old_index) if e not in new_edges]:
            self.edge_removed.emit(src, dst)
        for nid in [n for n in old_index if n not in new_index]:
            self.node_removed.emit(nid)
        for nid in [n for n in new_index if n not in old_index]:
            self.node_added.emit(nid)
        for nid, node in new_index.items():
            old = old_index.get(nid)
            if old is not None and _params(old) != _params(node):
                self.node_changed.emit(nid)
        for nid in new_index:
            if nid in old_index and old_positions.get(nid) != positions.get(nid):
                self.node_moved.emit(nid)
        for src, dst in [e for e in _ordered(new_edges, new_index) if e not in old_edges]:
            self.edge_added.emit(src, dst)
        self._reanalyze()

    def _set_positions(self, positions: dict[str, tuple[float, float] | None]) -> None:
        """Move nodes (None removes a position); emits ``node_moved`` for each."""
        store = self._positions()
        for nid, pos in positions.items():
            if pos is None:
                store.pop(nid, None)
            else:
                store[nid] = copy.deepcopy(pos) if isinstance(pos, list) else \
                    [float(pos[0]), float(pos[1])]
        for nid in positions:
            if nid in self._index:
                self.node_moved.emit(nid)

    def _set_value(self, path: str, value: Any) -> None:
        keys = path.split(".")
        cur = self._project
        for key in keys[:-1]:
            cur = cur.setdefault(key, {})
        if value is MISSING:
            cur.pop(keys[-1], None)
        else:
            cur[keys[-1]] = copy.deepcopy(value)
        if keys[0] == "network":
            self._reindex()
            self._reanalyze()
        self.settings_changed.emit(path)

    def _insert_run(self, index: int, record: dict) -> None:
        self._project.setdefault("runs", []).insert(index, copy.deepcopy(record))
        self.runs_changed.emit()

    def _remove_run(self, run_id: str) -> tuple[int, dict] | None:
        """Remove the run ``run_id``; ``(index, record)`` it had, or None."""
        for i, run in enumerate(self.runs):
            if run.get("id") == run_id:
                del self.runs[i]
                self.runs_changed.emit()
                return i, run
        return None

    def _set_run_name(self, run_id: str, name: str) -> None:
        run = self.run(run_id)
        if run is not None:
            run["name"] = name
            self.runs_changed.emit()

    # -- internals -------------------------------------------------------------------------
    def _positions(self) -> dict:
        return self._project.setdefault("ui", {}).setdefault("positions", {})

    def _reindex(self) -> None:
        self._index = {n["id"]: n for n in self.nodes()
                       if isinstance(n, dict) and isinstance(n.get("id"), str)}

    def _reanalyze(self) -> None:
        self.network_changed.emit()
        self._plan = analyze(self.network)
        self.plan_changed.emit(self._plan)

    def _on_undo_stack_clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean or self._unsaved_run)


class SetValue(QUndoCommand):
    """Set the project value at a dotted path (``"training.batch_size"``); ``MISSING`` as
    ``old`` means the key did not exist, and undo removes it again.

    It lives here, not with the other commands in :mod:`bplab.ui.commands` (which
    re-exports it), because :meth:`ProjectDocument.set_value` pushes it: the commands
    import the document, never the reverse.
    """

    def __init__(self, doc: ProjectDocument, path: str, old: Any, new: Any):
        super().__init__(f"Set {path}")
        self.doc, self.path = doc, path
        self.old, self.new = copy.deepcopy(old), copy.deepcopy(new)

    def redo(self) -> None:
        self.doc._set_value(self.path, self.new)

    def undo(self) -> None:
        self.doc._set_value(self.path, self.old)


def _params(node: dict) -> dict:
    return {k: v for k, v in node.items() if k not in ("id", "inputs")}


def _ordered(edges: set[tuple[str, str]], index: dict[str, dict]) -> list[tuple[str, str]]:
    rank = {nid: i for i, nid in enumerate(index)}
    return sorted(edges, key=lambda e: (rank.get(e[1], -1), rank.get(e[0], -1)))


def empty_project() -> dict:
    """A new project: an Input of two features, nothing else."""
    return {
        "format": "bplab-project", "version": 1, "name": "Untitled",
        "network": {"nodes": [{"id": "in", "type": "Input", "shape": [2], "inputs": []}]},
        "ui": {"positions": {"in": [0.0, 0.0]}},
    }
