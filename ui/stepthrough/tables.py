"""An array as a table of numbers on a diverging colour wash (step-through panel).

:class:`ArrayModel` lays any array out in two dimensions (one row per sample or per output
unit, the remaining axes flattened into columns) and maps a cell back to the array's index,
so a click on a weight names that weight. :class:`ArrayTable` is the view.
"""

from __future__ import annotations

import numpy as np
from bplab.ui.editor.badges import fmt_num, heat_colours
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

__all__ = ["ArrayModel", "ArrayTable", "table_shape"]

MAX_CELLS = 200_000  # a bigger array shows its first rows only


def table_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, columns) an array of ``shape`` is shown as: a vector is one row, otherwise the
    first axis gives the rows and the others are flattened into the columns."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, int(shape[0])
    return int(shape[0]), int(np.prod(shape[1:]))


class ArrayModel(QAbstractTableModel):
    """A read-only table over an array (see the module)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.array: np.ndarray | None = None
        self._table = np.zeros((0, 0))
        self._colours: np.ndarray | None = None
        self.row_label = "row"

    def set_array(self, a: np.ndarray | None, row_label: str = "row") -> None:
        self.beginResetModel()
        self.array = None if a is None else np.asarray(a)
        self.row_label = row_label
        if self.array is None:
            self._table = np.zeros((0, 0))
            self._colours = None
        else:
            rows, cols = table_shape(self.array.shape)
            table = np.asarray(self.array, np.float64).reshape(rows, cols)
            self._table = table[: max(1, MAX_CELLS // max(cols, 1))]
            self._colours = heat_colours(self._table)
        self.endResetModel()

    def index_of(self, row: int, col: int) -> tuple[int, ...]:
        """The array index the cell (``row``, ``col``) shows."""
        shape = self.array.shape
        rows, cols = table_shape(shape)
        return tuple(int(i) for i in np.unravel_index(row * cols + col, shape))

    def cell_of(self, index: tuple[int, ...]) -> tuple[int, int]:
        """The cell that shows ``index`` of the array."""
        rows, cols = table_shape(self.array.shape)
        flat = int(np.ravel_multi_index(index, self.array.shape))
        return divmod(flat, cols)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else self._table.shape[0]

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else self._table.shape[1]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return fmt_num(self._table[r, c])
        if role == Qt.ItemDataRole.BackgroundRole and self._colours is not None:
            return QColor(*map(int, self._colours[r, c]))
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor("#111111")
        if role == Qt.ItemDataRole.ToolTipRole:
            idx = self.index_of(r, c)
            return f"[{', '.join(map(str, idx))}] = {self._table[r, c]!r}"
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Vertical:
            return f"{self.row_label} {section}"
        return str(section)


class ArrayTable(QTableView):
    """A compact table of an :class:`ArrayModel`; ``cell_clicked(index)`` gives the array
    index of a clicked cell."""

    cell_clicked = Signal(tuple)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.array_model = ArrayModel(self)
        self.setModel(self.array_model)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setMinimumSectionSize(46)
        self.verticalHeader().setDefaultSectionSize(20)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.setMinimumHeight(70)
        self.clicked.connect(self._on_clicked)

    def set_array(self, a: np.ndarray | None, row_label: str = "row") -> None:
        self.array_model.set_array(a, row_label)
        rows = self.array_model.rowCount()
        self.setMaximumHeight(int(min(rows, 10) * 20 + 32))

    def cell_text(self, index: tuple[int, ...]) -> str:
        """The text of the cell that shows ``index`` of the array."""
        r, c = self.array_model.cell_of(index)
        return self.array_model.data(self.array_model.index(r, c))

    def select(self, index: tuple[int, ...]) -> None:
        r, c = self.array_model.cell_of(index)
        self.setCurrentIndex(self.array_model.index(r, c))

    def _on_clicked(self, index: QModelIndex) -> None:
        if self.array_model.array is not None:
            self.cell_clicked.emit(self.array_model.index_of(index.row(), index.column()))
