"""A list of what the engine rejects in the network; clicking one shows the node."""

from __future__ import annotations

from bplab.ui.models.document import ProjectDocument
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QStyle

__all__ = ["ProblemsList"]

NODE_ROLE = Qt.UserRole + 1


class ProblemsList(QListWidget):
    """One row per ``plan.problems`` entry, then one per problem of the network against its
    data (:meth:`set_data_problems`). Clicking a row selects its node in ``scene`` and
    centres it in ``view`` (both optional)."""

    def __init__(self, doc: ProjectDocument, scene=None, view=None, parent=None):
        super().__init__(parent)
        self.doc, self.scene, self.view = doc, scene, view
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.setUniformItemSizes(False)
        doc.plan_changed.connect(self._on_doc_plan_changed)
        self.itemClicked.connect(self._on_item_clicked)
        self.itemActivated.connect(self._on_item_clicked)
        self._data_problems: dict[str, list[str]] = {}
        self._on_doc_plan_changed(doc.plan)

    def set_data_problems(self, found: dict[str, list[str]]) -> None:
        """Node id -> messages of the engine's output check (``bplab.checks``)."""
        self._data_problems = {k: list(v) for k, v in found.items()}
        self._on_doc_plan_changed(self.doc.plan)

    def _on_doc_plan_changed(self, plan) -> None:
        self.clear()
        icon = self.style().standardIcon(QStyle.SP_MessageBoxWarning)
        rows = [(p.node, p.message) for p in plan.problems]
        rows += [(node, m) for node, ms in self._data_problems.items() for m in ms]
        for node, message in rows:
            item = QListWidgetItem(icon, message if node is None else f"{node}: {message}")
            item.setData(NODE_ROLE, node)
            item.setToolTip(message)
            self.addItem(item)

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        node_id = item.data(NODE_ROLE)
        if not node_id:
            return
        if self.scene is not None:
            self.scene.select_nodes([node_id])
        if self.view is not None:
            self.view.center_on_node(node_id)
