"""Unit maps on the canvas: what every unit computes over the input plane (2-D data), or
along the input line (1-D data).

As in TensorFlow Playground, each weight layer and activation node shows a thumbnail per
unit (the first :data:`bplab.unitmaps.MAX_UNITS`) of its output over the data's plane, blue
negative, white zero, orange positive, scaled by the node's largest magnitude. With one
input, each thumbnail is the unit's output as a curve of x (:func:`curve_image`), filled
orange above zero and blue below: the pieces the network adds up into its fit. The maps
come with the training updates (the worker computes them with the decision boundary, only
while View > Unit maps is on) and are redrawn as they arrive; clicking a thumbnail opens
:class:`UnitDetail`: the map large, with the weights into and out of the unit.

:class:`UnitMapsView` is the controller: its checkable ``action`` turns the maps on and off.
"""

from __future__ import annotations

import numpy as np
from bplab.ui.editor.badges import NEG, POS, fmt_num, heat_colours
from bplab.ui.training.update import TrainingUpdate
from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QImage, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
)

from bplab import unitmaps
from bplab.unitmaps import UnitLinks, UnitMaps

__all__ = ["THUMB", "UnitDetail", "UnitMapStrip", "UnitMapsView", "curve_image", "map_image",
           "unit_image"]

THUMB = 30.0  # side of one thumbnail, scene units (16 units: two rows beside the card)
GAP = 3.0
PER_ROW = 8
DETAIL_PX = 264  # the large map's side in the detail dialog


def map_image(a: np.ndarray, scale: float | None = None) -> QImage:
    """A map (rows along y, upwards) as an RGB image: the first row is drawn at the bottom,
    so the picture has the plane's orientation. ``scale``: the magnitude drawn full colour
    (default: the map's own largest)."""
    a = np.asarray(a, np.float64)[::-1]
    if scale is not None and scale > 0:  # a row at +scale fixes the colour scale
        pad = np.full((1, a.shape[1]), float(scale))
        rgb = heat_colours(np.clip(np.vstack([a, pad]), -scale, scale))[:-1]
    else:
        rgb = heat_colours(a)
    h, w = a.shape
    rgb = np.ascontiguousarray(rgb)
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def curve_image(v: np.ndarray, scale: float | None = None, size: int = 60) -> QImage:
    """A unit's output along x (1-D data) as a ``size`` x ``size`` picture: the curve, the
    zero line across the middle, the area above it orange and below it blue. ``scale``: the
    magnitude that reaches the top and bottom edges (default: the curve's own largest)."""
    v = np.nan_to_num(np.asarray(v, np.float64))
    m = float(scale) if scale is not None and scale > 0 else float(np.max(np.abs(v)) or 1.0)
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor(255, 255, 255))
    half = (size - 1) / 2.0
    xs = np.linspace(0.0, size - 1.0, len(v)) if len(v) > 1 else np.array([half])
    ys = half - np.clip(v / m, -1.0, 1.0) * half
    p = QPainter(image)
    try:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(Qt.PenStyle.NoPen)
        for colour, keep in ((POS, v > 0), (NEG, v < 0)):
            area = QPolygonF([QPointF(xs[0], half)]
                             + [QPointF(x, y if k else half) for x, y, k in zip(xs, ys, keep)]
                             + [QPointF(xs[-1], half)])
            p.setBrush(QColor(*(int(c) for c in colour)))
            p.drawPolygon(area)
        p.setPen(QPen(QColor(160, 160, 160), 1.0))
        p.drawLine(QPointF(0, half), QPointF(size - 1, half))
        p.setPen(QPen(QColor(40, 40, 40), max(size / 80.0, 1.2)))
        p.drawPolyline(QPolygonF([QPointF(x, y) for x, y in zip(xs, ys)]))
    finally:
        p.end()
    return image


def unit_image(values: np.ndarray, scale: float | None = None, size: int = 60) -> QImage:
    """One unit's picture: a map over the plane (2-D values) or a curve of x (1-D)."""
    return map_image(values, scale) if np.ndim(values) == 2 else curve_image(values, scale, size)


class UnitMapStrip(QGraphicsItem):
    """The thumbnails beside one node card (child of its :class:`NodeItem`). ``maps``
    (units, res, res) are the values drawn; :meth:`unit_at` finds the unit under a point."""

    def __init__(self, node_id: str, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self.node_id = node_id
        self.maps: np.ndarray = np.zeros((0, 1, 1))
        self.total_units = 0
        self.links = UnitLinks()
        self.bounds: tuple = ((0, 1), (0, 1))
        self.images: list[QImage] = []
        self.scale = 0.0
        self.on_clicked = None  # callable(strip, unit), set by the controller
        self.setZValue(2)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_maps(self, maps: np.ndarray, total: int, links: UnitLinks, bounds) -> None:
        if maps.shape[0] != self.maps.shape[0]:
            self.prepareGeometryChange()
        self.maps, self.total_units, self.links, self.bounds = maps, total, links, bounds
        m = float(np.max(np.abs(maps))) if maps.size else 0.0
        self.scale = m if np.isfinite(m) and m > 0 else 1.0
        self.images = [unit_image(u, self.scale) for u in maps]
        more = f" (the first {len(maps)} of {total})" if total > len(maps) else ""
        over = "over the input plane" if maps.ndim == 3 else "as a curve of the input x"
        full = "full colour" if maps.ndim == 3 else "at the edges"
        self.setToolTip(f"'{self.node_id}': each unit's output {over}{more}, "
                        f"blue < 0 < orange, ±{fmt_num(self.scale, 3)} {full}. "
                        "Click a map to see it large, with its weights.")
        self.update()

    def _rect(self, i: int) -> QRectF:
        r, c = divmod(i, PER_ROW)
        return QRectF(c * (THUMB + GAP), r * (THUMB + GAP), THUMB, THUMB)

    def unit_at(self, pos) -> int | None:
        for i in range(len(self.images)):
            if self._rect(i).contains(pos):
                return i
        return None

    def boundingRect(self) -> QRectF:
        n = max(len(self.images), 1)
        rows = (n + PER_ROW - 1) // PER_ROW
        cols = min(n, PER_ROW)
        return QRectF(-2, -2, cols * (THUMB + GAP) + 2, rows * (THUMB + GAP) + 2)

    def paint(self, p: QPainter, option, widget=None) -> None:
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        edge = QColor(QApplication.palette().text().color())
        edge.setAlpha(70)
        p.setPen(QPen(edge, 0.8))
        p.setBrush(Qt.BrushStyle.NoBrush)
        for i, image in enumerate(self.images):
            rect = self._rect(i)
            p.drawImage(rect, image)
            p.drawRect(rect)

    def mousePressEvent(self, event) -> None:
        unit = self.unit_at(event.pos())
        if unit is not None and self.on_clicked is not None:
            self.on_clicked(self, unit)
            event.accept()
            return
        super().mousePressEvent(event)


def _weights_text(title: str, w: np.ndarray | None, limit: int = 24) -> str:
    if w is None or w.size == 0:
        return f"<b>{title}</b>: none"
    vals = ", ".join(fmt_num(v, 3) for v in w[:limit])
    more = f", … ({w.size} in all)" if w.size > limit else ""
    return f"<b>{title}</b> (‖w‖ {fmt_num(float(np.linalg.norm(w)), 3)}): {vals}{more}"


class UnitDetail(QDialog):
    """One unit's map large, with the weights that feed it and those it feeds."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("unit_detail")
        self.image = QLabel()
        self.image.setFixedSize(DETAIL_PX, DETAIL_PX)
        self.caption = QLabel()
        self.weights = QLabel()
        self.weights.setWordWrap(True)
        self.weights.setTextFormat(Qt.TextFormat.RichText)
        self.weights.setMinimumWidth(300)
        self.weights.setAlignment(Qt.AlignmentFlag.AlignTop)
        row = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.image)
        left.addWidget(self.caption)
        row.addLayout(left)
        row.addWidget(self.weights, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        self.node_id, self.unit = "", 0
        self.values = np.zeros((1, 1))

    def show_unit(self, strip: UnitMapStrip, unit: int) -> None:
        self.node_id, self.unit = strip.node_id, unit
        self.values = strip.maps[unit]
        self.setWindowTitle(f"'{strip.node_id}', unit {unit}")
        pix = QPixmap.fromImage(unit_image(self.values, strip.scale, DETAIL_PX))
        self.image.setPixmap(pix.scaled(DETAIL_PX, DETAIL_PX))
        lo, hi = float(self.values.min()), float(self.values.max())
        if len(strip.bounds) == 1:
            ((x0, x1),) = strip.bounds
            where = f"x {x0:g}..{x1:g} (left to right), ±{fmt_num(strip.scale, 3)} at the edges"
        else:
            (x0, x1), (y0, y1) = strip.bounds
            where = f"x {x0:g}..{x1:g}, y {y0:g}..{y1:g}"
        self.caption.setText(f"{where}\noutput {fmt_num(lo, 3)} .. {fmt_num(hi, 3)}")
        links = strip.links
        parts = []
        if links.w_in is not None and unit < len(links.w_in):
            parts.append(_weights_text(f"Weights in, from '{links.src}'", links.w_in[unit]))
        else:
            parts.append(_weights_text("Weights in", None))
        for dst, w in links.w_out.items():
            if unit < len(w):
                parts.append(_weights_text(f"Weights out, into '{dst}'", w[unit]))
        if not links.w_out:
            parts.append(_weights_text("Weights out", None))
        self.weights.setText("<br><br>".join(parts))
        self.show()
        self.raise_()


class UnitMapsView(QObject):
    """Unit maps on ``scene`` from ``session``'s updates (see the module)."""

    def __init__(self, scene, session, parent=None):
        super().__init__(parent)
        self.scene, self.session = scene, session
        self.latest: UnitMaps | None = None
        self.detail: UnitDetail | None = None
        self.action = QAction("Unit &maps on the canvas", self)
        self.action.setCheckable(True)
        self.action.setToolTip("Show every unit's output beside its node, live while "
                               "training: a map over the input plane (2-D data) or a curve "
                               "of x (1-D data)")
        self.action.setStatusTip(self.action.toolTip())
        self.action.toggled.connect(self._on_action_toggled)
        session.updated.connect(self._on_session_updated)
        session.reset_done.connect(self._on_session_reset_done)
        session.context_changed.connect(self._on_session_reset_done)  # a new trainer

    @property
    def enabled(self) -> bool:
        return self.action.isChecked()

    def _on_action_toggled(self, on: bool) -> None:
        self.session.worker.unit_maps = on
        if not on:
            self.scene.clear_unit_maps()
            return
        t = self.session.trainer
        if t is not None and self.session.worker.is_idle and t.dataset.pictured:
            self.show(unitmaps.unit_maps(t.network, t.dataset.bounds))  # paused: draw now
        elif self.latest is not None:
            self.show(self.latest)

    def _on_session_updated(self, update: TrainingUpdate) -> None:
        if update.unit_maps is not None and self.enabled:
            self.show(update.unit_maps)

    def _on_session_reset_done(self, *_) -> None:
        self.latest = None
        self.scene.clear_unit_maps()

    def show(self, maps: UnitMaps) -> None:
        self.latest = maps
        for strip in self.scene.show_unit_maps(maps):
            strip.on_clicked = self._on_strip_clicked
        if self.detail is not None and self.detail.isVisible():
            strip = self.strip(self.detail.node_id)
            if strip is not None and self.detail.unit < len(strip.maps):
                self.detail.show_unit(strip, self.detail.unit)

    def strip(self, node_id: str) -> UnitMapStrip | None:
        item = self.scene.node_item(node_id)
        return getattr(item, "unit_strip", None) if item is not None else None

    def _on_strip_clicked(self, strip: UnitMapStrip, unit: int) -> None:
        if self.detail is None:
            self.detail = UnitDetail(self.scene.views()[0] if self.scene.views() else None)
        self.detail.show_unit(strip, unit)
