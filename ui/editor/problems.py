"""A list of what the engine rejects in the network; clicking one shows the node."""

from __future__ import annotations

from bplab.ui.models.document import ProjectDocument
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QStyle

__all__ = ["ProblemsList"]

NODE_ROLE = Qt.UserRole + 1


class ProblemsList(QListWidget):
    """One row per ``plan.problems`` entry. Clicking a row selects its node in ``scene``
    and centres it in ``view`` (both optional)."""

    def __init__(self, doc: ProjectDocument, scene=None, view=None, parent=None):
        super().__init__(parent)
        self.doc, self.scene, self.view = doc, scene, view
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.setUniformItemSizes(False)
        doc.plan_changed.connect(self._on_doc_plan_changed)
        self.itemClicked.connect(self._on_item_clicked)
        self.itemActivated.connect(self._on_item_clicked)
        self._on_doc_plan_changed(doc.plan)

    def _on_doc_plan_changed(self, plan) -> None:
        self.clear()
        icon = self.style().standardIcon(QStyle.SP_MessageBoxWarning)
        for prob in plan.problems:
            text = prob.message if prob.node is None else f"{prob.node}: {prob.message}"
            item = QListWidgetItem(icon, text)
            item.setData(NODE_ROLE, prob.node)
            item.setToolTip(prob.message)
            self.addItem(item)

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        node_id = item.data(NODE_ROLE)
        if not node_id:
            return
        if self.scene is not None:
            self.scene.select_nodes([node_id])
        if self.view is not None:
            self.view.center_on_node(node_id)
