"""The layer palette: every registered layer, grouped by category, searchable, draggable."""

from __future__ import annotations

from bplab.ui.editor.icons import category_color, layer_icon
from bplab.ui.editor.scene import LAYER_MIME
from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from bplab.layers import by_category

__all__ = ["LayerPalette"]

TYPE_ROLE = Qt.UserRole + 1


def _tooltip(cls) -> str:
    parts = [f"<b>{cls.type_name}</b> <i>({cls.category})</i>"]
    if cls.summary:
        parts.append(cls.summary)
    if cls.math:
        parts.append(f"<code>{cls.math}</code>")
    parts.append("<span style='color:gray'>Drag onto the canvas, or double-click to append."
                 "</span>")
    return "<br>".join(parts)


class _LayerTree(QTreeWidget):
    def __init__(self, palette: LayerPalette):
        super().__init__(palette)
        self._palette = palette

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME]

    def mimeData(self, items) -> QMimeData | None:
        for item in items:
            type_name = item.data(0, TYPE_ROLE)
            if type_name:
                return self._palette.mime_data_for(type_name)
        return None


class LayerPalette(QWidget):
    """Search box over a tree of layers grouped by category (read from ``LAYERS`` at
    construction and on :meth:`refresh`).

    Dragging an entry starts a QDrag whose mime type ``application/x-bplab-layer`` holds
    the type name in UTF-8 (:meth:`mime_data_for`). Double-click emits
    ``layer_activated(type_name)``; pass ``view`` to have it append to that view's network.
    """

    layer_activated = Signal(str)

    def __init__(self, view=None, parent=None):
        super().__init__(parent)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter by name, description or category")
        self.tree = _LayerTree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(22, 22))
        self.tree.setIndentation(10)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setStyleSheet("QTreeView::item { padding: 2px 0px; }")
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self._on_search_text_changed)
        self.tree.itemDoubleClicked.connect(self._on_tree_item_double_clicked)
        if view is not None:
            self.layer_activated.connect(view.network_scene.append_layer)
        self.refresh()

    @staticmethod
    def mime_data_for(type_name: str) -> QMimeData:
        """Exactly what a drag of ``type_name`` out of the palette carries."""
        mime = QMimeData()
        mime.setData(LAYER_MIME, type_name.encode("utf-8"))
        mime.setText(type_name)
        return mime

    def refresh(self) -> None:
        """Rebuild the tree from the registry (layers may be registered after start)."""
        self.tree.clear()
        bold = QFont(self.font())
        bold.setBold(True)
        for category, classes in by_category().items():
            if not classes:
                continue
            group = QTreeWidgetItem([category])
            group.setFont(0, bold)
            group.setForeground(0, category_color(category))
            group.setFlags(Qt.ItemIsEnabled)
            group.setData(0, Qt.UserRole, category.lower())
            self.tree.addTopLevelItem(group)
            for cls in sorted(classes, key=lambda c: c.type_name.lower()):
                item = QTreeWidgetItem([cls.type_name])
                item.setIcon(0, layer_icon(cls.type_name, 22))
                item.setToolTip(0, _tooltip(cls))
                item.setData(0, TYPE_ROLE, cls.type_name)
                item.setData(0, Qt.UserRole, " ".join(
                    (cls.type_name, cls.summary, cls.category)).lower())
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                group.addChild(item)
        self.tree.expandAll()
        self._on_search_text_changed(self.search.text())

    def visible_types(self) -> list[str]:
        """Type names currently shown (after the search filter)."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            if group.isHidden():
                continue
            for j in range(group.childCount()):
                child = group.child(j)
                if not child.isHidden():
                    out.append(child.data(0, TYPE_ROLE))
        return out

    def _on_search_text_changed(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            shown = 0
            for j in range(group.childCount()):
                child = group.child(j)
                hay = child.data(0, Qt.UserRole)
                visible = all(w in hay for w in words)
                child.setHidden(not visible)
                shown += visible
            group.setHidden(shown == 0)

    def _on_tree_item_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        type_name = item.data(0, TYPE_ROLE)
        if type_name:
            self.layer_activated.emit(type_name)
