"""Diagnosis fixes in the app: the engine's edits, pushed as one undoable macro.

What a :class:`~bplab.diagnostics.Fix` changes is the engine's answer
(:func:`bplab.fixes.edits_for`); this module only maps each edit to the undo command that
makes it, so the document ends up equal to :func:`bplab.fixes.apply_edits`'s project and
one Undo reverts the whole fix.

=========================  ==========================================================
edit                       command
=========================  ==========================================================
``SetOption``              :class:`~bplab.ui.commands.SetNodeParam`
``ReplaceType``            :class:`~bplab.ui.commands.ReplaceNodeType`
``RenameNode``             :class:`~bplab.ui.commands.RenameNode`
``InsertAfter``            :class:`~bplab.ui.commands.InsertNodeAfter`
``AddResidual``            :class:`~bplab.ui.commands.InsertResidual`
``SetSetting``             :meth:`ProjectDocument.set_value` (a ``SetValue``)
``SetPositions``           :class:`~bplab.ui.commands.MoveNodes`
=========================  ==========================================================

Where new nodes go is the engine's answer too: a fix that adds nodes ends with a
``SetPositions`` laying the network out again, so nothing is drawn on top of anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bplab.ui.commands import (
    InsertNodeAfter,
    InsertResidual,
    MoveNodes,
    RenameNode,
    ReplaceNodeType,
    SetNodeParam,
    make_node,
)
from bplab.ui.errors import ErrorInfo
from bplab.ui.models.document import ProjectDocument

from bplab.diagnostics import Fix
from bplab.fixes import (
    AddResidual,
    Edit,
    InsertAfter,
    ReplaceType,
    SetOption,
    SetPositions,
    SetSetting,
    edit_problems,
    edits_for,
)
from bplab.fixes import RenameNode as RenameEdit

__all__ = ["apply_fix", "push_edits"]

NEW_NODE_OFFSET = 90.0  # without a layout, a new node goes this far below the node it follows
STATUS_MSECS = 6000


def apply_fix(document: ProjectDocument, fix: Fix,
              highlight: Callable[[list[str]], Any] | None = None,
              report: Callable[[ErrorInfo], Any] | None = None,
              status: Any = None) -> bool:
    """Apply ``fix`` to ``document`` as one undo macro; False if it could not be applied.

    ``highlight(node_ids)`` is called with the nodes the fix changed or added,
    ``report(ErrorInfo)`` with the reasons a fix cannot apply (nothing is changed then), and
    ``status.showMessage(text, msecs)`` (a QStatusBar) with what was done.
    """
    title = fix.description or "diagnosis fix"
    try:
        edits = edits_for(fix, document.project)
    except Exception as exc:  # noqa: BLE001  (a malformed fix: say so, keep the app alive)
        if report is not None:
            report(ErrorInfo.from_exception(exc, "Cannot apply the fix"))
        return False
    problems = edit_problems(document.project, edits)
    if problems:
        if report is not None:
            report(ErrorInfo(f"Cannot apply the fix “{title}”.",
                             "\n".join(p.message for p in problems)))
        return False
    if not edits:
        return True
    touched = push_edits(document, edits, f"Apply: {title}")
    if highlight is not None and touched:
        highlight([t for t in touched if document.has_node(t)])
    if status is not None:
        status.showMessage(f"Applied: {title} (Undo reverts it)", STATUS_MSECS)
    return True


def push_edits(document: ProjectDocument, edits: Sequence[Edit], text: str) -> list[str]:
    """Push one command per edit inside one macro named ``text``; the ids of the nodes
    changed or added, in order."""
    stack = document.undo_stack
    touched: list[str] = []
    # new nodes start where the fix's layout puts them (no flash of overlapping nodes)
    layout: dict = {}
    for edit in edits:
        if isinstance(edit, SetPositions):
            layout.update(edit.positions)
    stack.beginMacro(text)
    try:
        for edit in edits:
            node_id = _push(document, edit, layout)
            if node_id is not None:
                touched = [node_id if t == getattr(edit, "node", None) else t for t in touched]
                if node_id not in touched:
                    touched.append(node_id)
    finally:
        stack.endMacro()
    return touched


def _push(doc: ProjectDocument, edit: Edit, layout: dict) -> str | None:
    """Push the command for ``edit``; the id of the node it changed or added, if any."""
    if isinstance(edit, SetOption):
        doc.push(SetNodeParam(doc, edit.node, edit.key, edit.value))
        return edit.node
    if isinstance(edit, ReplaceType):
        doc.push(ReplaceNodeType(doc, edit.node, edit.new_type))
        return edit.node
    if isinstance(edit, RenameEdit):
        doc.push(RenameNode(doc, edit.node, edit.new_id))
        return edit.new_id
    if isinstance(edit, (InsertAfter, AddResidual)):
        node = make_node(doc, edit.new_type, edit.new_id)
        x, y = doc.position(edit.node) or (0.0, 0.0)
        where = layout.get(edit.new_id, (x, y + NEW_NODE_OFFSET))
        doc.push(InsertNodeAfter(doc, node, edit.node, where) if isinstance(edit, InsertAfter)
                 else InsertResidual(doc, node, edit.node, edit.skip, where))
        return edit.new_id
    if isinstance(edit, SetSetting):
        doc.set_value(edit.path, edit.value)
        return None
    if isinstance(edit, SetPositions):
        doc.push(MoveNodes(doc, edit.positions, text="Lay out the network"))
        return None
    raise TypeError(f"not an edit: {edit!r}")
