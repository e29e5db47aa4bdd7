"""A look at the data before training: scatter for 2-D data, sample images, or a table.

:class:`DatasetPreview` shows a :class:`~bplab.datasets.Dataset`'s training rows: a scatter
plot coloured by class (or by target value) for 2-D inputs (x against the target for one
input), a grid of the first images for image data (``(C, H, W)`` inputs, and flat rows of
pixels: ``Dataset.picture_shape``), the first sequences as lines over time for sequence
data (``Dataset.step_features``), each with its target, and a table of the first rows
otherwise. Images, sequences and rows are in the data's own units (standardization undone:
``Dataset.untransform``); the scatter is in the plane the decision boundary draws.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.theme import shared_brushes
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QImage, QPalette, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QLabel,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from bplab.datasets import Dataset

__all__ = ["DatasetPreview", "image_grid"]

# Colour-blind-safe class colours (Okabe-Ito), cycled for more classes.
CLASS_COLORS = ("#E69F00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
                "#000000", "#999999", "#882255")
MAX_POINTS = 2000
TABLE_ROWS = 20
SEQUENCES = 4  # sequences drawn, one above the other


def image_grid(images: np.ndarray, columns: int = 8, pad: int = 1) -> np.ndarray:
    """Tile ``(N, H, W)`` images (each scaled to [0, 255]) into one uint8 image."""
    n, h, w = images.shape
    rows = max(1, -(-n // columns))
    out = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad), 255, np.uint8)
    for i, img in enumerate(images):
        lo, hi = float(img.min()), float(img.max())
        scaled = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        r, c = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = (255 - scaled * 255).astype(np.uint8)  # dark ink on white
    return out


class DatasetPreview(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.kind = "none"  # scatter | images | table | none
        self.stack = QStackedWidget(self)
        self.empty = QLabel("No data", self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.plot = pg.PlotWidget(self)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setAspectLocked(True)
        self.plot.getPlotItem().hideAxis("left")
        self.plot.getPlotItem().hideAxis("bottom")
        self.plot.setMouseEnabled(x=False, y=False)
        # The preview sits in the training panel's scroll area: the wheel scrolls the
        # panel, it does not zoom the preview.
        self.plot.viewport().installEventFilter(self)
        self.scatter = pg.ScatterPlotItem(size=5, pen=None)
        self.plot.addItem(self.scatter)
        self.images = QLabel(self)
        self.images.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.lines = pg.PlotWidget(self)  # sequences: each feature a line over time
        self.lines.setMenuEnabled(False)
        self.lines.hideButtons()
        self.lines.setMouseEnabled(x=False, y=False)
        self.lines.getPlotItem().hideAxis("left")
        self.lines.setLabel("bottom", "time step")
        self.lines.viewport().installEventFilter(self)
        self.table = QTableView(self)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.model = QStandardItemModel(self)
        self.table.setModel(self.model)
        for w in (self.empty, self.plot, self.images, self.lines, self.table):
            self.stack.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.setMinimumHeight(150)
        self.setToolTip("A preview of the training data")
        self._apply_palette()

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Wheel and obj in (self.plot.viewport(),
                                                         self.lines.viewport()):
            area = self._scroll_area()
            if area is not None:
                QApplication.sendEvent(area.verticalScrollBar(), event)
            return True
        return super().eventFilter(obj, event)

    def _scroll_area(self) -> QAbstractScrollArea | None:
        w = self.parentWidget()
        while w is not None and not isinstance(w, QAbstractScrollArea):
            w = w.parentWidget()
        return w

    def _apply_palette(self) -> None:
        pal = self.palette()
        self.plot.setBackground(pal.color(QPalette.ColorRole.Base))
        self.lines.setBackground(pal.color(QPalette.ColorRole.Base))

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def show_message(self, text: str) -> None:
        self.dataset = None
        self.kind = "none"
        self.empty.setText(text)
        self.stack.setCurrentWidget(self.empty)

    def set_dataset(self, ds: Dataset) -> None:
        self.dataset = ds
        shape = tuple(ds.input_shape)
        if shape in ((1,), (2,)):
            self._show_scatter(ds)
        elif len(shape) in (2, 3) and shape[-1] >= 4 and shape[-2] >= 4:
            self._show_images(ds, ds.untransform(ds.x_train[:32]))
        elif ds.picture_shape is not None:
            self._show_images(ds, ds.untransform(ds.x_train[:32]).reshape(-1, *ds.picture_shape))
        elif ds.step_features is not None:
            self._show_sequences(ds)
        else:
            self._show_table(ds)

    def _show_scatter(self, ds: Dataset) -> None:
        """2-D inputs: the plane, points coloured by class or target. One input: x along,
        the target (or the class) up."""
        self.kind = "scatter"
        x, y = ds.x_train[:MAX_POINTS], ds.y_train[:MAX_POINTS]
        if ds.is_1d:
            up = np.asarray(y, np.float64).reshape(len(y), -1)[:, 0]
            x = np.column_stack([np.asarray(x, np.float64)[:, 0], up])
        if ds.task == "classification":
            brushes = shared_brushes(CLASS_COLORS[int(c) % len(CLASS_COLORS)] for c in y)
        else:
            v = np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, 0]
            lo, hi = float(v.min()), float(v.max())
            t = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
            t = np.round(t * 63) / 63  # 64 shades: few symbols to render
            cmap = pg.colormap.get("viridis")
            brushes = shared_brushes(cmap.map(t, mode="qcolor"))
        self.scatter.setData(x[:, 0], x[:, 1], brush=brushes)
        self.plot.setAspectLocked(not ds.is_1d)  # a plane keeps its shape; x and y differ
        self.plot.autoRange()
        up = ("" if not ds.is_1d else
              " (x along, the class up)" if ds.task == "classification" else
              " (x along, the target up)")
        self.plot.setToolTip(f"{ds.title}: the first {len(x)} training points{up}, coloured by "
                             + ("class" if ds.task == "classification" else "target"))
        self.stack.setCurrentWidget(self.plot)

    def _show_images(self, ds: Dataset, x: np.ndarray) -> None:
        self.kind = "images"
        if x.ndim == 4:
            x = x[:, 0]  # first channel
        grid = np.ascontiguousarray(image_grid(np.asarray(x, dtype=np.float32)))
        h, w = grid.shape
        img = QImage(grid.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
        scale = max(1, min(6, 280 // max(w, 1)))
        self.images.setPixmap(QPixmap.fromImage(img).scaled(
            w * scale, h * scale, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation))
        labels = ds.y_train[:32]
        flat = "" if ds.picture_shape is None else (
            f" (rows of {ds.input_shape[0]} pixels, drawn {ds.picture_shape[0]}×"
            f"{ds.picture_shape[1]})")
        self.images.setToolTip(f"{ds.title}: the first {len(x)} training images{flat}; "
                               "labels " + " ".join(str(int(c)) for c in labels))
        self.stack.setCurrentWidget(self.images)

    def _show_sequences(self, ds: Dataset) -> None:
        """The first :data:`SEQUENCES` training sequences one above the other, each feature
        a line over the time steps (named in its colour under the axis), each sequence's
        target written after its end."""
        self.kind = "sequences"
        plot = self.lines.getPlotItem()
        plot.clear()
        features = ds.step_features or []
        x = np.asarray(ds.untransform(ds.x_train[:SEQUENCES]), np.float64)
        k, steps = x.shape[0], x.shape[1]
        lo, hi = (float(np.nanmin(x)), float(np.nanmax(x))) if x.size else (0.0, 1.0)
        span = (hi - lo) or 1.0
        ink = self.palette().color(QPalette.ColorRole.Text)
        colours = [CLASS_COLORS[(f + 1) % len(CLASS_COLORS)] for f in range(len(features))]
        t = np.arange(steps)
        dots = steps <= 30  # few steps: each value marked
        for i in range(k):
            base = (k - 1 - i) * 1.3 * span  # the first sequence on top
            for f, colour in enumerate(colours):
                plot.plot(t, x[i, :, f] - lo + base, pen=pg.mkPen(colour, width=1.5),
                          symbol="o" if dots else None, symbolSize=4, symbolPen=None,
                          symbolBrush=colour)
            label = pg.TextItem(self._target_text(ds, i), color=ink, anchor=(0, 0.5))
            label.setPos(steps - 1 + 0.03 * steps, base + span / 2)
            plot.addItem(label)
        plot.setYRange(-0.15 * span, (k * 1.3 - 0.2) * span, padding=0)
        plot.setXRange(0, (steps - 1) * 1.3 + 1, padding=0)  # room for the targets
        names = " · ".join(f"<span style='color:{c}'>{html.escape(n)}</span>"
                           for n, c in zip(features, colours))
        self.lines.setLabel("bottom", f"time step ({names})")
        self.lines.setToolTip(f"{ds.title}: the first {k} training sequences of {steps} "
                              f"steps ({', '.join(features)} over time), each with its target")
        self.stack.setCurrentWidget(self.lines)

    @staticmethod
    def _target_text(ds: Dataset, i: int) -> str:
        y = np.asarray(ds.y_train[i]).reshape(-1)
        if ds.task == "classification":
            k = int(y[0])
            names = ds.class_names or []
            return f"class {names[k] if k < len(names) else k}"
        name = (ds.target_names or ["y"])[0]
        return f"{name} = {float(y[0]):.3g}"

    def _show_table(self, ds: Dataset) -> None:
        self.kind = "table"
        x = ds.untransform(ds.x_train[:TABLE_ROWS]).reshape(min(TABLE_ROWS, len(ds.x_train)), -1)
        y = ds.y_train[:TABLE_ROWS]
        names = list(ds.feature_names or [])
        if len(names) != x.shape[1]:
            names = [f"x{i + 1}" for i in range(x.shape[1])]
        y2 = np.asarray(y).reshape(len(y), -1)
        targets = list(ds.target_names or []) if ds.task == "regression" else ["class"]
        if len(targets) != y2.shape[1]:
            targets = [f"y{i + 1}" for i in range(y2.shape[1])]
        self.model.clear()
        self.model.setHorizontalHeaderLabels(targets + names)
        classes = ds.class_names or []
        for r in range(len(x)):
            row = []
            for c in range(y2.shape[1]):
                v = y2[r, c]
                if ds.task == "classification":
                    k = int(v)
                    text = classes[k] if k < len(classes) else str(k)
                else:
                    text = f"{float(v):.4g}"
                row.append(QStandardItem(text))
            row += [QStandardItem(f"{float(v):.4g}") for v in x[r]]
            self.model.appendRow(row)
        self.table.resizeColumnsToContents()
        self.table.setToolTip(f"{ds.title}: the first {len(x)} training rows")
        self.stack.setCurrentWidget(self.table)
