"""Name the line under the mouse: which series it is, its value and where (TensorBoard's hover).

A plot with many lines of close colours (a deep network's gradient norms, two runs
overlaid on the loss) cannot be read from its legend alone. :class:`LineReadout` watches
the mouse over one :class:`pyqtgraph.PlotItem`: the line nearest the pointer (measured
across the line, within :data:`HOVER_PX` pixels) is drawn thicker, and a label beside its
nearest sample says ``name: value at step N``. It costs nothing until the mouse moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.theme import Theme

__all__ = ["HOVER_PX", "HoverLine", "LineReadout", "readable_key"]

HOVER_PX = 8  # how near (pixels) the mouse must be to a line for the readout to name it


class HoverLine(NamedTuple):
    """One line a readout can name: its label, its curve, and its samples (``x`` sorted).
    ``floor`` is where an exact zero is drawn on a log axis (None: a zero is a gap)."""

    label: str
    curve: pg.PlotDataItem
    x: np.ndarray
    values: np.ndarray
    floor: float | None = None


def readable_key(key: str) -> str:
    """A recorded run's curve key as a reader says it: ``val_loss`` -> ``validation loss``."""
    for prefix, word in (("train_", "train "), ("val_", "validation ")):
        if key.startswith(prefix):
            return word + key[len(prefix):].replace("_", " ")
    return key


def _height(value: float, floor: float | None, log_y: bool) -> float:
    """Where ``value`` is drawn, in the view's y (log10 of it on a log axis: an exact zero
    on ``floor``, and a value <= 0 without one a gap, NaN)."""
    if not log_y:
        return value
    v = floor if value == 0 and floor is not None else value
    return math.log10(v) if v > 0 else math.nan  # (NaN > 0 is False)


def step_text(x: float) -> str:
    return f"step {x:.0f}"


class LineReadout:
    """The name, value and place of the line under the mouse in ``plot`` (see the module).

    ``lines()`` gives the :class:`HoverLine` s to consider, asked at each mouse move (hidden
    curves are skipped); ``where(x)`` words a sample's x (``"step 120"``); ``zero_text`` is
    said for an exact zero (``"0 (no gradient)"``).
    """

    def __init__(self, scene, plot: pg.PlotItem, lines: Callable[[], Iterable[HoverLine]], *,
                 where: Callable[[float], str] = step_text, zero_text: str = "0"):
        self.plot, self.lines, self.where, self.zero_text = plot, lines, where, zero_text
        self.label = pg.TextItem(anchor=(0, 1))
        self.label.setZValue(20)
        self.label.setVisible(False)
        plot.addItem(self.label, ignoreBounds=True)
        self._hovered: tuple[pg.PlotDataItem, object] | None = None  # (curve, its own pen)
        self._thick = None  # the pen the hovered curve is drawn with
        self._last = None  # the scene position last asked about
        scene.sigMouseMoved.connect(self.at)

    def restyle(self, theme: Theme) -> None:
        self.label.setColor(theme.foreground)
        self.label.fill = pg.mkBrush(theme.faded(theme.background, 220))
        self.label.border = pg.mkPen(theme.muted)

    def forget(self) -> None:
        """The curves' pens were set afresh (theme, new curves): nothing is thickened."""
        self._hovered = None
        self.label.setVisible(False)

    def hide(self) -> None:
        self._highlight(None)
        self.label.setVisible(False)

    def again(self) -> None:
        """The plot drew new data: name what is under the mouse now (while training, the
        readout follows the curves instead of showing a value they have left)."""
        if self.label.isVisible() and self._last is not None:
            self.at(self._last)

    def at(self, scene_pos) -> str | None:
        """Name the line nearest ``scene_pos``: draw it thicker and show its label, the
        value of its nearest sample and where that sample is. Returns the text shown (None:
        no line there, and the readout is hidden)."""
        vb = self.plot.getViewBox()
        best = None
        self._last = scene_pos
        if vb.sceneBoundingRect().contains(scene_pos):
            p = vb.mapSceneToView(scene_pos)
            px, py = p.x(), p.y()
            _, ph = vb.viewPixelSize()
            log_y = bool(self.plot.getAxis("left").logMode)
            for line in self.lines():
                xs = line.x
                if len(xs) == 0 or not xs[0] <= px <= xs[-1] or not line.curve.isVisible():
                    continue
                j = min(int(np.searchsorted(xs, px)), len(xs) - 1)
                i = max(j - 1, 0)
                hi, hj = (_height(float(line.values[k]), line.floor, log_y) for k in (i, j))
                span = xs[j] - xs[i]
                h = hi + ((px - xs[i]) / span if span else 0.0) * (hj - hi)  # the line there
                if not math.isfinite(h):
                    continue
                d = abs(h - py) / ph
                if d <= HOVER_PX and (best is None or d < best[0]):
                    k = i if px - xs[i] <= xs[j] - px else j
                    best = (d, line, k, hi if k == i else hj)
        if best is None or not math.isfinite(best[3]):
            self.hide()
            return None
        _, line, k, height = best
        self._highlight(line.curve)
        x, value = float(line.x[k]), float(line.values[k])
        shown = self.zero_text if value == 0 else f"{value:.4g}"
        text = f"{line.label}: {shown} at {self.where(x)}"
        self.label.setText(text)
        # on the side of the point that faces the middle of the view: never cut at an edge
        (x0, x1), (y0, y1) = vb.viewRange()
        self.label.setAnchor((1 if x > 0.5 * (x0 + x1) else 0, 0 if height > 0.5 * (y0 + y1)
                              else 1))
        self.label.setPos(x, height)
        self.label.setVisible(True)
        return text

    def _highlight(self, curve: pg.PlotDataItem | None) -> None:
        """Draw ``curve`` thicker, and the one drawn thicker before with its own pen again.
        A plot that set the hovered curve's pen anew (a redraw) made that its own pen."""
        if self._hovered is not None and self._hovered[0] is not curve:
            old, own = self._hovered
            if pg.mkPen(old.opts["pen"]) == self._thick:
                old.setPen(own)
            self._hovered = None
        if curve is None:
            return
        current = curve.opts["pen"]
        if self._hovered is not None and pg.mkPen(current) == self._thick:
            return  # drawn thick already
        thick = pg.mkPen(current)
        thick.setWidthF(max(thick.widthF() * 2.0, 3.0))
        self._thick = thick
        curve.setPen(thick)
        self._hovered = (curve, current)
