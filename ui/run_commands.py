"""Undoable edits of recorded runs: rename, delete, and "Restore this run's settings".

They follow :mod:`bplab.ui.commands` (which they build on): commands call the document's
underscore mutators, and restoring a run is one undo macro of a :class:`ReplaceNetwork`
and a :class:`~bplab.ui.commands.SetValue` per settings section. Recording a run is not an
edit (``ProjectDocument.add_run``): Undo does not un-happen a run.
"""

from __future__ import annotations

import copy

from bplab.ui.commands import _NetworkEdit
from bplab.ui.models.document import MISSING, ProjectDocument
from bplab.ui.models.layout import layered_layout
from PySide6.QtGui import QUndoCommand

from bplab.graph.topology import node_inputs
from bplab.runs import describe_changes, run_settings

__all__ = ["RemoveRun", "RenameRun", "ReplaceNetwork", "restore_run_settings"]


class ReplaceNetwork(_NetworkEdit):
    """The whole network becomes ``network`` (a recorded run's): nodes that keep their id keep
    their place on the canvas, new ones are laid out to the right of the drawing."""

    def __init__(self, doc: ProjectDocument, network: dict, text: str = "Replace the network"):
        super().__init__(doc, text)
        self.network = copy.deepcopy(network)

    def apply(self, network, positions):
        network.clear()
        network.update(copy.deepcopy(self.network))
        inputs = node_inputs(network.setdefault("nodes", []))
        for node in network["nodes"]:
            node["inputs"] = list(inputs.get(node["id"], []))
        ids = {n["id"] for n in network["nodes"]}
        for nid in [k for k in positions if k not in ids]:
            del positions[nid]
        missing = [n for n in network["nodes"] if n["id"] not in positions]
        if missing:
            auto = layered_layout(network["nodes"])
            right = max((float(p[0]) for p in positions.values()), default=-260.0) + 260.0
            for n in missing:
                x, y = auto.get(n["id"], (0.0, 0.0))
                positions[n["id"]] = [x + (right if positions else 0.0), y]


def restore_run_settings(doc: ProjectDocument, settings: dict, name: str) -> list[str]:
    """Make the project train as the recorded run ``name`` did (its ``settings``: network,
    data, loss, optimiser, run), as one undoable edit. Returns what changed, in words
    (:func:`bplab.runs.describe_changes`); nothing is pushed when nothing differs."""
    changes = describe_changes(run_settings(doc.project), settings)
    if not changes:
        return []
    stack = doc.undo_stack
    stack.beginMacro(f"Restore the settings of '{name}'")
    try:
        if settings.get("network") != doc.network:
            doc.push(ReplaceNetwork(doc, settings["network"], f"Network of '{name}'"))
        for key in ("dataset", "loss", "optimizer", "training"):
            doc.set_value(key, copy.deepcopy(settings[key]) if key in settings else MISSING)
    finally:
        stack.endMacro()
    return changes


class RemoveRun(QUndoCommand):
    """Delete the recorded run ``run_id``; undo puts it back where it was."""

    def __init__(self, doc: ProjectDocument, run_id: str):
        run = doc.run(run_id) or {}
        super().__init__(f"Delete run '{run.get('name', run_id)}'")
        self.doc, self.run_id = doc, run_id
        self.removed: tuple[int, dict] | None = None

    def redo(self) -> None:
        self.removed = self.doc._remove_run(self.run_id)

    def undo(self) -> None:
        if self.removed is not None:
            self.doc._insert_run(*self.removed)


class RenameRun(QUndoCommand):
    """Give the recorded run ``run_id`` the name ``name``."""

    def __init__(self, doc: ProjectDocument, run_id: str, name: str):
        run = doc.run(run_id) or {}
        super().__init__(f"Rename run '{run.get('name', run_id)}' to '{name}'")
        self.doc, self.run_id = doc, run_id
        self.old, self.new = run.get("name", ""), name

    def redo(self) -> None:
        self.doc._set_run_name(self.run_id, self.new)

    def undo(self) -> None:
        self.doc._set_run_name(self.run_id, self.old)
