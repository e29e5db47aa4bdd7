"""Step-through badges on the canvas: what a node computed, and where gradients add.

A :class:`NodeBadge` sits beside a node's card and shows arrays the engine computed for it
(its output in the forward pass, ``dL/d(output)`` and each parameter's gradient in the
backward pass, each parameter's step at the update): up to :data:`MAX_NUMBERS` values as
numbers, more as a small heatmap (blue negative, white zero, orange positive, scaled by the
largest magnitude). A :class:`SumBadge` is drawn on the output port of a node whose output
feeds several nodes: the gradients coming back from them add there.

Badges only draw what they are given (:class:`BadgeContent`); they compute nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import QApplication, QGraphicsItem

__all__ = [
    "BADGE_W",
    "MAX_NUMBERS",
    "BadgeContent",
    "NodeBadge",
    "SumBadge",
    "fmt_num",
    "heat_colours",
]

BADGE_W = 236.0
MAX_NUMBERS = 16  # more values than this are drawn as a heatmap
COLUMNS = 4  # numbers per line
LINE_H = 13.0
HEAT_H = 22.0  # height of a heatmap row of values
PARAM_H = 10.0  # height of a parameter's heatmap strip
NEG = np.array([59, 111, 216], np.float64)  # blue
POS = np.array([232, 119, 34], np.float64)  # orange
MID = np.array([250, 250, 250], np.float64)
KIND_COLOURS = {"output": "#3B82C4", "gradient": "#D9541E", "update": "#2E9E5B",
                "loss": "#8E44AD"}


def fmt_num(v: float, digits: int = 4) -> str:
    """A value as the cards and tables write it: ``digits`` significant digits, or
    scientific notation for very small or large magnitudes (badges use 3 digits)."""
    v = float(v)
    if v == 0.0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    return f"{v:.{digits}g}" if 1e-3 <= a < 1e4 else f"{v:.{digits - 2}e}"


def heat_colours(a: np.ndarray) -> np.ndarray:
    """RGB (uint8, shape ``a.shape + (3,)``) of a diverging map centred on zero and scaled by
    the largest magnitude of ``a``."""
    a = np.asarray(a, np.float64)
    m = float(np.max(np.abs(a))) if a.size else 0.0
    t = a / m if m > 0 and math.isfinite(m) else np.zeros_like(a)
    t = np.nan_to_num(t)[..., None]
    rgb = np.where(t >= 0, MID + (POS - MID) * t, MID + (NEG - MID) * (-t))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _as_image(a: np.ndarray) -> QImage:
    """A 2-D picture of an array: spatial maps (C, H, W) side by side (the first sample
    only), other shapes one row per sample."""
    a = np.asarray(a, np.float64)
    if a.ndim >= 4:  # (batch, C, H, W): the first sample's channels, side by side
        chans = a[0].reshape(-1, a.shape[-2], a.shape[-1])[:8]
        gap = np.full((chans.shape[1], 1), np.nan)
        a = np.concatenate([c for ch in chans for c in (ch, gap)][:-1], axis=1)
    elif a.ndim == 3:  # (batch, time, features) or (C, H, W) of a parameter: the first one
        a = a[0]
    elif a.ndim == 1:
        a = a[None, :]
    a = a.reshape(a.shape[0], -1)
    rgb = heat_colours(np.nan_to_num(a))
    rgb[np.isnan(a)] = (200, 200, 200)
    h, w = a.shape
    rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
    image = QImage(np.ascontiguousarray(rgba).data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return image.copy()  # own the pixels: the numpy buffer goes away


def _lying(a: np.ndarray) -> np.ndarray:
    """A parameter drawn in a strip: a matrix with more rows than columns is turned on
    its side, so the strip shows its longer axis along its length."""
    a = np.asarray(a)
    if a.ndim == 2 and a.shape[0] > a.shape[1]:
        return a.T
    return a


@dataclass(frozen=True)
class BadgeContent:
    """What a badge shows: a ``title`` (``"output (1, 8)"``), the main array ``values`` and
    labelled parameter arrays ``params`` (``("∂L/∂weight", g)``). ``kind`` (``"output"``,
    ``"gradient"``, ``"update"``) picks the accent colour; ``current`` marks the node of the
    stage shown; ``faded`` a value from an earlier phase (the forward output, while the
    backward pass has not reached the node yet)."""

    kind: str
    title: str
    values: np.ndarray | None = None
    params: tuple[tuple[str, np.ndarray], ...] = ()
    current: bool = False
    faded: bool = False


def _number_lines(a: np.ndarray) -> list[list[str]]:
    """Numbers laid out as lines: one per sample when a sample's values fit on a line."""
    a = np.asarray(a, np.float64)
    rows = a.reshape(a.shape[0], -1) if a.ndim >= 2 else a.reshape(1, -1)
    if rows.shape[1] <= COLUMNS:
        return [[fmt_num(v, 3) for v in r] for r in rows]
    flat = [fmt_num(v, 3) for v in rows.ravel()]
    return [flat[i:i + COLUMNS] for i in range(0, len(flat), COLUMNS)]


class NodeBadge(QGraphicsItem):
    """The card beside a node during step-through (see the module). ``content`` holds the
    arrays drawn; :meth:`lines` the numbers as written."""

    def __init__(self, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self.content: BadgeContent | None = None
        self._image: QImage | None = None
        self._param_images: list[QImage] = []
        self._lines: list[list[str]] = []
        self._spatial = False  # the values are maps (C, H, W): drawn as images
        self._height = 0.0
        self.setZValue(3)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_content(self, content: BadgeContent) -> None:
        self.prepareGeometryChange()
        self.content = content
        v = content.values
        self._lines, self._image = [], None
        if v is not None and np.size(v) <= MAX_NUMBERS:
            self._lines = _number_lines(v)
        elif v is not None:
            self._image = _as_image(v)
        self._spatial = v is not None and np.ndim(v) >= 4
        self._param_images = [_as_image(_lying(g)) for _, g in content.params]
        self._height = (6 + 16 + self._values_height()
                        + sum(self._param_h(i) + 15 for i in self._param_images) + 4)
        tip = [content.title]
        for label, g in content.params:
            tip.append(f"{label}: shape {tuple(np.shape(g))}, largest |value| "
                       f"{fmt_num(np.max(np.abs(g))) if np.size(g) else '-'}")
        self.setToolTip("\n".join(tip))
        self.update()

    def lines(self) -> list[list[str]]:
        """The numbers written on the badge, line by line (empty for a heatmap)."""
        return [list(line) for line in self._lines]

    def is_heatmap(self) -> bool:
        return self._image is not None

    def _values_height(self) -> float:
        if self._lines:
            return len(self._lines) * LINE_H + 2
        if self._image is not None:
            return HEAT_H if self._image.height() <= 2 else 2 * HEAT_H
        return 0.0

    @staticmethod
    def _param_h(image: QImage) -> float:
        return PARAM_H if image.height() <= 1 else 2 * PARAM_H

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, BADGE_W, self._height).adjusted(-3, -3, 3, 3)

    def paint(self, p: QPainter, option, widget=None) -> None:
        c = self.content
        if c is None:
            return
        pal = QApplication.palette()
        accent = QColor(KIND_COLOURS.get(c.kind, "#888888"))
        text = QColor(pal.text().color())
        p.setOpacity(0.55 if c.faded else 1.0)
        bg = QColor(pal.base().color())
        bg.setAlphaF(0.96)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(accent, 2.4 if c.current else 1.2))
        p.setBrush(bg)
        rect = QRectF(0, 0, BADGE_W, self._height)
        p.drawRoundedRect(rect, 7, 7)
        font = QFont(p.font())
        font.setPointSizeF(8.0)
        font.setBold(True)
        p.setFont(font)
        p.setPen(accent)
        fm = QFontMetricsF(font)
        p.drawText(QRectF(8, 5, BADGE_W - 16, 15), Qt.AlignmentFlag.AlignLeft
                   | Qt.AlignmentFlag.AlignVCenter,
                   fm.elidedText(c.title, Qt.TextElideMode.ElideRight, BADGE_W - 16))
        font.setBold(False)
        p.setFont(font)
        y = 22.0
        p.setPen(text)
        col_w = (BADGE_W - 16) / COLUMNS
        for line in self._lines:
            for i, s in enumerate(line):
                p.drawText(QRectF(8 + i * col_w, y, col_w - 2, LINE_H),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, s)
            y += LINE_H
        if self._image is not None:
            h = self._values_height()
            rect = QRectF(8, y + 1, BADGE_W - 16, h - 2)
            if self._spatial:  # maps keep their aspect ratio
                iw, ih = self._image.width(), self._image.height()
                scale = min(rect.width() / iw, rect.height() / ih)
                rect = QRectF(rect.left(), rect.top(), iw * scale, ih * scale)
            self._draw_image(p, self._image, rect)
            y += h
        y += 2
        for (label, g), image in zip(c.params, self._param_images):
            p.setPen(text)
            big = fmt_num(np.max(np.abs(g))) if np.size(g) else "-"
            p.drawText(QRectF(8, y, BADGE_W - 16, 13), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignVCenter, f"{label}  (max |·| {big})")
            h = self._param_h(image)
            self._draw_image(p, image, QRectF(8, y + 14, BADGE_W - 16, h))
            y += h + 15

    @staticmethod
    def _draw_image(p: QPainter, image: QImage, rect: QRectF) -> None:
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(rect, image)
        p.setPen(QPen(QColor(0, 0, 0, 60), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(rect)


class SumBadge(QGraphicsItem):
    """A "Σ" disc on the output port of a node whose gradient is a sum of its consumers'
    parts, with one line per part and the total (``parts``: ``(label, array)``)."""

    RADIUS = 11.0

    def __init__(self, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self.parts: tuple[tuple[str, np.ndarray], ...] = ()
        self.total: np.ndarray | None = None
        self.setZValue(4)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_parts(self, parts, total: np.ndarray | None) -> None:
        self.parts = tuple(parts)
        self.total = total
        lines = [f"{label}: {', '.join(fmt_num(v) for v in np.ravel(a)[:6])}"
                 + (" …" if np.size(a) > 6 else "") for label, a in self.parts]
        if total is not None:
            lines.append("= " + ", ".join(fmt_num(v) for v in np.ravel(total)[:6])
                         + (" …" if np.size(total) > 6 else ""))
        self.setToolTip("The gradients from the nodes this output feeds add here:\n"
                        + "\n".join(lines))
        self.update()

    def text(self) -> str:
        """What the label beside the disc says, e.g. ``"2 gradients add"``."""
        return f"{len(self.parts)} gradients add"

    def boundingRect(self) -> QRectF:
        r = self.RADIUS
        return QRectF(-r - 2, -r - 2, 2 * r + 110, 2 * r + 4)

    def paint(self, p: QPainter, option, widget=None) -> None:
        r = self.RADIUS
        accent = QColor(KIND_COLOURS["gradient"])
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(accent.darker(120), 1.5))
        p.setBrush(accent)
        p.drawEllipse(QPointF(0, 0), r, r)
        font = QFont(p.font())
        font.setPointSizeF(9.5)
        font.setBold(True)
        p.setFont(font)
        p.setPen(QColor("white"))
        p.drawText(QRectF(-r, -r, 2 * r, 2 * r), Qt.AlignmentFlag.AlignCenter, "Σ")
        font.setPointSizeF(8.0)
        p.setFont(font)
        p.setPen(accent)
        p.drawText(QRectF(r + 4, -r, 104, 2 * r), Qt.AlignmentFlag.AlignLeft
                   | Qt.AlignmentFlag.AlignVCenter, self.text())
