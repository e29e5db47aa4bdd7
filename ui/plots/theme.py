"""Colours for plots that read well on the application's light or dark palette.

pyqtgraph's global background/foreground options would fight the Qt style, so every plot
widget asks :func:`plot_theme` for colours taken from its own palette and re-applies
them when the palette changes (see :class:`bplab.ui.plots.base.PlotPanel`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

__all__ = [
    "PLAYGROUND_NEGATIVE",
    "PLAYGROUND_POSITIVE",
    "Theme",
    "class_colors",
    "depth_colors",
    "playground_colormap",
    "plot_theme",
    "shared_brushes",
    "shared_pens",
]

# TensorFlow Playground's colours: class 0 / negative is orange, class 1 / positive blue.
PLAYGROUND_NEGATIVE = QColor("#f59322")
PLAYGROUND_POSITIVE = QColor("#0877bd")
PLAYGROUND_MIDDLE = QColor("#e8eaeb")

# Qualitative colours (Tableau 10 order, as matplotlib users know them) for classes > 2.
_CLASS_COLORS = ["#f59322", "#0877bd", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


@dataclass(frozen=True)
class Theme:
    dark: bool
    background: QColor
    foreground: QColor
    muted: QColor  # grid lines, reference lines
    train: QColor  # the training series in every plot
    val: QColor  # the validation series in every plot
    bad: QColor  # non-finite values, errors

    def faded(self, color: QColor, alpha: int) -> QColor:
        c = QColor(color)
        c.setAlpha(alpha)
        return c


def plot_theme(widget: QWidget | None = None) -> Theme:
    """Colours for ``widget``'s palette (the application's when None)."""
    pal = widget.palette() if widget is not None else QApplication.palette()
    bg = pal.color(QPalette.ColorRole.Base)
    fg = pal.color(QPalette.ColorRole.Text)
    dark = bg.lightnessF() < 0.5
    muted = QColor(fg)
    muted.setAlpha(90)
    if dark:
        return Theme(True, bg, fg, muted, QColor("#5aa9ff"), QColor("#ffa94d"), QColor("#ff6b6b"))
    return Theme(False, bg, fg, muted, QColor("#1f66b3"), QColor("#e8590c"), QColor("#d62728"))


def depth_colors(n: int, dark: bool) -> list[QColor]:
    """``n`` viridis colours from the input side to the output side.

    The ends of viridis vanish into a dark background (purple) or a light one (yellow), so
    each theme uses the part of the map that contrasts with it.
    """
    cmap = pg.colormap.get("viridis")
    lo, hi = (0.25, 1.0) if dark else (0.0, 0.85)
    ts = [0.5 * (lo + hi)] if n == 1 else np.linspace(lo, hi, max(n, 1))
    return [cmap.map(float(t), mode=pg.ColorMap.QCOLOR) for t in ts][:n]


def class_colors(n: int) -> list[QColor]:
    """One colour per class; the first two are Playground's orange and blue."""
    return [QColor(_CLASS_COLORS[i % len(_CLASS_COLORS)]) for i in range(n)]


def playground_colormap() -> pg.ColorMap:
    """Orange (0 / negative) through light grey to blue (1 / positive), as Playground draws."""
    return pg.ColorMap([0.0, 0.5, 1.0],
                       [PLAYGROUND_NEGATIVE, PLAYGROUND_MIDDLE, PLAYGROUND_POSITIVE])


def class_colormap(n: int) -> pg.ColorMap:
    """A stepped map: values ``i / (n - 1)`` take class ``i``'s colour (light, as a backdrop)."""
    cols = []
    for c in class_colors(n):
        c = QColor(c)
        c.setHsvF(c.hsvHueF(), c.hsvSaturationF() * 0.45, min(1.0, c.valueF() * 0.5 + 0.5))
        cols.append(c)
    edges = np.linspace(0.0, 1.0, n + 1)
    pos, colors = [], []
    for i, c in enumerate(cols):
        pos += [edges[i], edges[i + 1]]
        colors += [c, c]
    return pg.ColorMap(pos, colors, mapping=pg.ColorMap.CLIP)


def shared_brushes(colors) -> list:
    """One brush per point, but one QBrush object per distinct colour.

    pyqtgraph's scatter renders a symbol for every distinct brush *object*: 500 points
    with 500 equal brushes cost 500 renders (~30 ms); shared, they cost one per colour.
    """
    cache: dict[int, object] = {}
    return [cache.setdefault(QColor(c).rgba(), pg.mkBrush(c)) for c in colors]


def shared_pens(colors, width: float = 1.0) -> list:
    """Like :func:`shared_brushes`, for pens."""
    cache: dict[int, object] = {}
    return [cache.setdefault(QColor(c).rgba(), pg.mkPen(c, width=width)) for c in colors]
