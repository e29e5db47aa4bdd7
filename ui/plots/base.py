"""What every live plot shares: the update protocol, theming and export.

The main window drives each plot with three calls:

* ``set_context(ctx)`` once per (re)built trainer: create the plot items, clear history;
* ``add_update(upd)`` for every :class:`~bplab.ui.training.update.TrainingUpdate`: append to
  bounded numpy buffers, nothing else (cheap; up to ~10 calls a second);
* ``refresh()`` on the frame timer: push the buffers into the items with ``setData``, only
  if something changed since the last refresh (so calling it twice costs nothing).

The training worker shares the GIL with the GUI thread, so every millisecond a plot spends
in Python is taken from training. Plots therefore draw at most :data:`MAX_POINTS` points per
curve (:func:`thin_rows`: a power-of-two stride over the stored history, so the same rows
stay on screen from frame to frame) instead of letting pyqtgraph downsample the whole
history at every frame, and their axes are cached pixmaps that are only re-rendered when
their range changes.

Before a run, the window calls ``prepare(ctx)`` with the context the trainer will report
(known from the network's plan and the data set): the items are made and painted while the
user looks at the window, so pressing Run only clears histories. Every paint of a plot's
graphics is timed and reported by the ``painted`` signal; the window spaces its frames by it.

``data()`` returns what is plotted (tests and CSV export read it); ``export_image(path)``
writes PNG or SVG by the suffix; ``export_csv(path)`` writes the data.

Recorded runs (:class:`bplab.runs.RunRecord`) ticked in the Runs panel are drawn over the
live curves: ``set_runs(overlays)`` takes :class:`RunOverlay` s (a record and its colour);
plots that can show a run implement ``_draw_run`` with :meth:`PlotPanel._overlay_curve`,
and ``overlay_data()`` returns what they drew.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters as pg_exporters
from bplab.ui.plots.hover import HoverLine, LineReadout, readable_key
from bplab.ui.plots.theme import Theme, plot_theme
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import QBuffer, QEvent, QIODevice, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QPainter
from PySide6.QtWidgets import (
    QFileDialog,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from bplab.io.project import atomic_text, atomic_write_bytes

__all__ = ["MAX_POINTS", "RUN_COLORS", "PlotAxis", "PlotPanel", "RunOverlay", "fix_label_size",
           "run_color", "set_curve", "style_plot_item", "thin_rows", "top_of_cell",
           "image_bytes", "write_series_csv"]

MAX_POINTS = 1000  # most points drawn per curve: about one or two per pixel of a plot
WAITING = "Press Run to train: this plot fills in live."
SHORT_RUN_S = 2.0  # a run expected to end within this many seconds gets its whole x range
SYMBOLS_UP_TO = 60  # markers on epoch curves only while they stay countable


# Recorded runs' colours: apart from the live run's blue (train) and orange (validation).
RUN_COLORS = ("#8e44ad", "#2ca02c", "#e377c2", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f",
              "#d62728")


def run_color(index: int) -> QColor:
    """The colour of the ``index``-th recorded run (the palette repeats after eight)."""
    return QColor(RUN_COLORS[index % len(RUN_COLORS)])


@dataclass(frozen=True)
class RunOverlay:
    """A recorded run to draw over the live curves, in its colour."""

    record: Any  # bplab.runs.RunRecord
    color: QColor

    @property
    def name(self) -> str:
        return self.record.name


def thin_rows(a: np.ndarray, max_points: int = MAX_POINTS, lo: int = 0,
              hi: int | None = None) -> np.ndarray:
    """A copy of rows ``lo:hi`` of ``a``, at most ``max_points`` of them, always the last.

    The stride is a power of two counted from row 0, so a growing history shows the same
    rows from one frame to the next (no shimmer) and the cost does not depend on ``len(a)``.
    """
    hi = len(a) if hi is None else hi
    n = hi - lo
    if n <= max_points:
        return a[lo:hi].copy()
    k = 1 << math.ceil(math.log2(n / max_points))
    start = lo + (-lo) % k
    rows = a[start:hi:k]
    if (hi - 1 - start) % k:
        return np.concatenate([rows, a[hi - 1 : hi]])
    return rows.copy()


def fix_label_size(label: QLabel, *widest: str) -> None:
    """Give ``label`` a fixed size that fits each of the ``widest`` texts it will show.

    A label whose size may change asks its parents to lay out again at every ``setText``;
    in a dock that re-lays out (and animates) the whole main window, several times a
    second while training. A fixed size stops that at the label.
    """
    fm = label.fontMetrics()
    m = label.contentsMargins()
    width = (max(fm.horizontalAdvance(t) for t in widest)
             + 2 * label.margin() + m.left() + m.right())
    label.setFixedSize(width + 4, label.sizeHint().height())


_NICE = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceil(v: float) -> float:
    """The smallest ``m * 10**k`` (m in 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8) that is >= ``v``.

    Consecutive values differ by at most 25 %, so an axis stretched to it wastes little room.
    """
    if not math.isfinite(v) or v <= 0:
        return v
    e = math.floor(math.log10(v))
    m = v / 10.0**e
    for n in _NICE:
        if n * (1 + 1e-12) >= m:
            return n * 10.0**e
    return 10.0 ** (e + 1)


def decades(lo: float, hi: float) -> tuple[float, float]:
    """``(lo, hi)`` widened to whole powers of ten (both must be > 0)."""
    return 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))


def set_curve(curve: pg.PlotDataItem, x: np.ndarray, y: np.ndarray, *,
              log_y: bool = False, symbol: str | None = None) -> None:
    """``curve.setData(x, y)`` the cheap way: no finite check when none is needed, and
    markers (``symbol``) only while there are few points."""
    ok = bool(np.isfinite(y).all()) and not (log_y and bool((y <= 0).any()))
    curve.setSkipFiniteCheck(ok)
    if symbol is not None:
        want = symbol if len(x) <= SYMBOLS_UP_TO else None
        if curve.opts["symbol"] != want:
            curve.setSymbol(want)
    curve.setData(x, y)


def top_of_cell(layout: pg.GraphicsLayout, legend: pg.LegendItem) -> None:
    """Keep a legend in a layout cell at its own height, at the top of the cell, rather
    than stretched over the whole row (entries spread apart from their swatches)."""
    legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    layout.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop)


def style_plot_item(item: pg.PlotItem, theme: Theme) -> None:
    """Axis and title colours of one PlotItem for ``theme``."""
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(theme.muted))
        axis.setTextPen(pg.mkPen(theme.foreground))
    if item.titleLabel is not None and item.titleLabel.text:
        item.setTitle(item.titleLabel.text, color=theme.foreground)
    if item.legend is not None:
        item.legend.setLabelTextColor(theme.foreground)
        item.legend.setBrush(pg.mkBrush(theme.faded(theme.background, 200)))
        item.legend.setPen(pg.mkPen(theme.muted))


class PlotAxis(pg.AxisItem):
    """An axis whose log-scale labels do not pile up.

    pyqtgraph labels every minor tick 2..9 of each decade; across a few decades those
    labels overlap. Here only mantissas 1, 2 and 5 are labelled once there are many ticks
    (only 1 when there are very many); the ticks themselves are all kept.
    """

    def logTickStrings(self, values, scale, spacing):
        strings = super().logTickStrings(values, scale, spacing)
        if spacing is not None or len(values) <= 8:
            return strings
        keep = (1,) if len(values) > 18 else (1, 2, 5)
        out = []
        for v, text in zip(values, strings):
            mantissa = round(10 ** (v - np.floor(v + 1e-9)))
            out.append(text if mantissa in keep else "")
        return out


def image_bytes(image, fmt: str = "png") -> bytes:
    """A QImage or QPixmap encoded in memory (``fmt``: png, jpg, ...), for an atomic write."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, fmt.upper()):
        raise ValueError(f"cannot encode an image as {fmt!r}")
    return bytes(buffer.data())


def write_series_csv(path: str | Path, series: dict[str, Any]) -> None:
    """Long-format CSV ``series,x,y`` of every ``name: (x, y)`` entry in ``series``."""
    with atomic_text(path) as fh:
        w = csv.writer(fh)
        w.writerow(["series", "x", "y"])
        for name, value in series.items():
            if not (isinstance(value, tuple) and len(value) == 2):
                continue
            x, y = (np.asarray(v) for v in value)
            for xi, yi in zip(x.tolist(), y.tolist()):
                w.writerow([name, repr(xi) if isinstance(xi, float) else xi,
                            repr(yi) if isinstance(yi, float) else yi])


class TimedGraphics(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget that reports the CPU time each of its paints took (seconds).

    CPU time of the GUI thread, not wall-clock: while training, the GUI thread also waits
    for the GIL, and that wait costs the training thread nothing.
    """

    painted = Signal(float)

    def paintEvent(self, event) -> None:
        t0 = time.thread_time()
        super().paintEvent(event)
        self.painted.emit(time.thread_time() - t0)


class PlotPanel(QWidget):
    """Base of the live plots: a row of controls over a pyqtgraph GraphicsLayoutWidget.

    Subclasses create plots in ``self.graphics`` (a :class:`pyqtgraph.GraphicsLayoutWidget`),
    register them with :meth:`_add_plot` so they get theming, decimation and the export
    menu, and implement the update protocol described in the module docstring.
    """

    minimum = QSize(320, 220)
    range_margin = 0.04  # see _hold_range
    shows_data_before_run = False  # prepare() leaves the "Press Run" note up unless True

    painted = Signal(float)  # seconds one paint of the plots took

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx: TrainingContext | None = None
        self._dirty = False
        self._plots: list[pg.PlotItem] = []
        self._anchors: dict[int, tuple[pg.PlotDataItem, tuple | None]] = {}
        self._auto_x: dict[int, bool] = {}  # x auto-range of each view, as last seen
        self._built = False  # set by _finish_init once the subclass made its items
        self.run_end_step: int | None = None  # see note_progress
        self.theme = plot_theme(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(4, 0, 4, 0)
        layout.addLayout(self.controls)
        self.graphics = TimedGraphics()
        self.graphics.painted.connect(self.painted)
        self.graphics.setBackground(self.theme.background)
        self.graphics.ci.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.graphics, 1)
        self.setMinimumSize(self.minimum)
        # Until a run starts there is nothing to plot: say so instead of showing bare axes
        # (or, for a network this plot has nothing to show of, why: empty_note).
        self.waiting = QLabel(WAITING, self.graphics)
        self.waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.waiting.setWordWrap(True)  # a long note on a narrow panel: lines, not clipped
        self.waiting.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._note_opaque = False
        self._style_waiting()
        self.overlays: list[RunOverlay] = []
        # (plot item, curve, run name, key, x, y) of every curve drawn for a recorded run
        self._overlay_items: list[tuple] = []
        self.readouts: list[LineReadout] = []  # see _add_readout

    def release_graphics(self) -> None:
        """Take every item out of the plot's scene while Python still holds them all: the
        window calls it as it closes for good. Left to the scene's destructor, the mistakes
        gallery's cells (view boxes and labels in a grid, laid out while hidden behind
        another tab) crashed the process on exit: Qt sent their layout's events to items
        it had deleted first (seen with the digits example, Confusion tab in front)."""
        self.graphics.ci.clear()

    # -- protocol (subclasses override) ------------------------------------------------------
    def set_context(self, ctx: TrainingContext) -> None:
        self.ctx = ctx
        self._dirty = True
        self.run_end_step = None
        note = self.empty_note(ctx)
        self.waiting.setText(note or WAITING)
        self.waiting.setVisible(bool(note))  # nothing to show of this network: during runs too
        # A plot that will stay empty shows its note alone, not over bare axes; the "Press
        # Run" note leaves the axes (already set to the run's range) in view.
        self._note_opaque = bool(note)
        self._style_waiting()
        # The anchors keep their range until the run's first frame sets its own: a range
        # that does not change then (see prepare) spares re-rendering the axes.
        for key, (anchor, _) in list(self._anchors.items()):
            self._anchors[key] = (anchor, None)

    def note_progress(self, step: int, total_steps: int | None, steps_per_second: float) -> None:
        """Called with every update: a run that will end within :data:`SHORT_RUN_S` at the
        current speed gets an x axis spanning the whole run at once.

        Such a run lasts a few frames; an x axis that followed the data would grow (and be
        re-rendered, the costliest part of a frame) at nearly every one of them, and jump
        about for nothing. A longer run keeps following its data.
        """
        if (self.run_end_step is None and total_steps and steps_per_second > 0
                and (total_steps - step) / steps_per_second < SHORT_RUN_S):
            self.run_end_step = int(total_steps)
            self._dirty = True

    def end_run_early(self) -> None:
        """The run ended before its last planned step (diverged, stopped, stopped early):
        the x axis follows the data again instead of spanning the whole planned run
        (see note_progress and _prepare_range)."""
        self.run_end_step = None
        for key, (anchor, _) in list(self._anchors.items()):
            self._anchors[key] = (anchor, None)  # the next redraw sets the range afresh
        self._dirty = True

    def _x_of_step(self, step: int) -> float:
        """Where step ``step`` sits on the x axis (steps here; epochs in epoch plots)."""
        return float(step)

    def prepare(self, ctx: TrainingContext) -> None:
        """Set up for a run that has not started (``ctx`` as the trainer will report it):
        the same items as ``set_context``, with the "Press Run" note kept up."""
        self.set_context(ctx)
        self._prepare_range(ctx)
        if not self.shows_data_before_run and not self.overlays:
            self.waiting.show()

    def empty_note(self, ctx: TrainingContext) -> str | None:
        """Why this plot will stay empty for ``ctx``'s network (no layer of the kind it
        follows), shown in place of the plot before and during runs; None: it will fill."""
        return None

    def _prepare_range(self, ctx: TrainingContext) -> None:
        """Before Run: show the range a short run will have (see note_progress), so its
        axes are rendered now. Plots over steps or epochs override this."""

    def add_update(self, upd: TrainingUpdate) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Push buffered data into the plot items if anything changed (idempotent)."""
        if not self._dirty:
            return
        self._dirty = False
        self._redraw()
        for readout in self.readouts:
            readout.again()  # the line under the mouse, as drawn now

    def _redraw(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the history but keep the items (same network, fresh run)."""
        if self.ctx is not None:
            self.set_context(self.ctx)

    def data(self) -> dict[str, Any]:
        raise NotImplementedError

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.waiting.setGeometry(self.graphics.rect())

    # -- recorded runs -------------------------------------------------------------------------
    def set_runs(self, overlays: Sequence[RunOverlay]) -> None:
        """Draw these recorded runs over the live curves (none: remove them)."""
        self.overlays = list(overlays)
        self._draw_runs()
        if self.overlays:
            self.waiting.hide()

    def _draw_runs(self) -> None:
        for item, curve, *_ in self._overlay_items:
            item.removeItem(curve)
            self._forget_overlay_curve(curve)
        self._overlay_items = []
        for overlay in self.overlays:
            self._draw_run(overlay)

    def _draw_run(self, overlay: RunOverlay) -> None:
        """Subclasses that can show a recorded run draw it here (see _overlay_curve)."""

    def _forget_overlay_curve(self, curve: pg.PlotDataItem) -> None:
        """Subclasses with a legend of their own take the curve out of it here."""

    def _overlay_curve(self, item: pg.PlotItem, overlay: RunOverlay, key: str,
                       x: Sequence[float], y: Sequence[float | None], *,
                       name: str | None = None, dashed: bool = False, width: float = 1.6,
                       positive: bool = False) -> pg.PlotDataItem:
        """One curve of a recorded run in ``item`` (None values are gaps; ``positive``:
        values <= 0 too, for a log axis). ``name`` puts it in the plot's legend."""
        xs = np.asarray(x, np.float64)
        ys = np.asarray([np.nan if v is None else v for v in y], np.float64)
        if positive:
            ys[ys <= 0] = np.nan
        style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
        curve = pg.PlotDataItem(xs, ys, pen=pg.mkPen(overlay.color, width=width, style=style),
                                name=name, connect="finite")
        curve.setZValue(-1)  # under the live run
        item.addItem(curve)
        self._overlay_items.append((item, curve, overlay.name, key, xs, ys))
        return curve

    def _overlay_lines(self, item: pg.PlotItem):
        """The recorded runs' curves in ``item``, for a :class:`LineReadout`."""
        for it, curve, run, key, xs, ys in self._overlay_items:
            if it is item:
                yield HoverLine(f"{run} · {readable_key(key)}", curve, xs, ys)

    def _add_readout(self, item: pg.PlotItem, lines, **kwargs) -> LineReadout:
        """Name the line under the mouse in ``item`` (:class:`LineReadout`): ``lines()``
        gives the live ones; the recorded runs' are added."""
        readout = LineReadout(
            self.graphics.scene(), item,
            lambda: (*lines(), *self._overlay_lines(item)), **kwargs)
        readout.restyle(self.theme)
        self.readouts.append(readout)
        return readout

    def leaveEvent(self, event) -> None:
        for readout in self.readouts:
            readout.hide()
        super().leaveEvent(event)

    def overlay_data(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """``(run name, curve key) -> (x, y)`` of the recorded runs drawn."""
        return {(run, key): (x.copy(), y.copy()) for _, _, run, key, x, y in self._overlay_items}

    # -- plots and theming -------------------------------------------------------------------
    def _add_plot(self, row: int = 0, col: int = 0, *, title: str | None = None,
                  x_label: str | None = None, y_label: str | None = None,
                  decimate: bool = True, **kwargs) -> pg.PlotItem:
        axes = kwargs.pop("axisItems", {})
        axes = {"left": PlotAxis("left"), "bottom": PlotAxis("bottom"), **axes}
        item = self.graphics.addPlot(row=row, col=col, axisItems=axes, **kwargs)
        if title:
            item.setTitle(title, size="9pt")
        if x_label:
            item.setLabel("bottom", x_label)
        if y_label:
            item.setLabel("left", y_label)
        item.showGrid(x=True, y=True, alpha=0.15)
        for name in ("left", "bottom"):
            # "loss (x0.001)" over ticks of 500 confuses more than it saves room.
            item.getAxis(name).enableAutoSIPrefix(False)
        for name in ("left", "bottom"):
            # Re-rendering an axis (its ticks, labels and, with a grid, lines across the
            # whole view) at every frame is the most expensive part of a redraw; cached,
            # it is redrawn only when its range changes.
            item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        if decimate:
            # Curves are thinned to the visible x range (see _visible_rows): a zoom or pan
            # by the user needs a redraw at the new range's resolution.
            vb = item.getViewBox()
            vb.sigXRangeChanged.connect(self._on_view_x_range_changed)
            vb.sigStateChanged.connect(self._on_view_state_changed)
        menu = item.getViewBox().menu
        if menu is not None:
            menu.addSeparator()
            act = QAction("Save image (PNG/SVG)…", menu)
            act.setToolTip("Export this plot as a PNG or SVG image")
            act.triggered.connect(self._on_save_image_triggered)
            menu.addAction(act)
            act = QAction("Save data as CSV…", menu)
            act.setToolTip("Export the plotted numbers as a CSV table")
            act.triggered.connect(self._on_save_csv_triggered)
            menu.addAction(act)
        self._plots.append(item)
        style_plot_item(item, self.theme)
        return item

    def _visible_rows(self, item: pg.PlotItem, a: np.ndarray, column: int = 0) -> np.ndarray:
        """Rows of ``a`` (sorted by ``a[:, column]``) to draw in ``item``: all of them,
        thinned, while x auto-ranges; else those in the visible x range plus one either side."""
        vb = item.getViewBox()
        if vb.autoRangeEnabled()[0] or len(a) <= MAX_POINTS:
            return thin_rows(a)
        x0, x1 = vb.viewRange()[0]
        xs = a[:, column]
        lo = max(int(np.searchsorted(xs, x0, "left")) - 1, 0)
        hi = min(int(np.searchsorted(xs, x1, "right")) + 1, len(a))
        return thin_rows(a, lo=lo, hi=max(hi, lo + 1))

    def _hold_range(self, item: pg.PlotItem, x_hi: float, y: tuple[float, float],
                    log_y: bool = False) -> None:
        """Keep ``item``'s auto-range still while data arrive.

        Auto-range follows the data exactly (and pyqtgraph pads by pixels, which moves the
        range a little at every frame), so the axes, the costliest part of a frame, would
        be re-rendered at every frame. An invisible two-point curve spanning ``x`` from 0
        to ``nice_ceil(x_hi)`` and ``y`` (already "nice", > 0 on a log axis), with a margin
        of :attr:`range_margin` of that span on every side, and no other padding, makes
        the range change only when the data cross those bounds.
        """
        if not all(math.isfinite(v) for v in (x_hi, *y)) or (log_y and min(y) <= 0):
            return
        if self.run_end_step is not None:
            x_hi = max(x_hi, self._x_of_step(self.run_end_step))
        key = (nice_ceil(x_hi) if x_hi > 0 else 1.0, float(y[0]), float(y[1]), log_y)
        anchor, shown = self._anchors.get(id(item), (None, None))
        if anchor is None:
            anchor = pg.PlotDataItem(pen=pg.mkPen(0, 0, 0, 0, width=0))
            item.addItem(anchor)
            item.getViewBox().setDefaultPadding(0.0)
        if key != shown:
            m = self.range_margin
            xs = np.array([-m * key[0], (1 + m) * key[0]])
            lo, hi = (math.log10(v) for v in y) if log_y else y
            span = (hi - lo) or 1.0
            ys = np.array([lo - m * span, hi + m * span])
            anchor.setData(xs, 10.0**ys if log_y else ys)
        self._anchors[id(item)] = (anchor, key)

    def _on_view_x_range_changed(self, vb: pg.ViewBox, _range) -> None:
        # Our own setData moves the range while auto-ranging: only a user's zoom counts.
        if not vb.autoRangeEnabled()[0]:
            self._dirty = True

    def _on_view_state_changed(self, vb: pg.ViewBox) -> None:
        # Auto-range switched on again ("A" button): the whole history must be drawn.
        auto = bool(vb.autoRangeEnabled()[0])
        if auto != self._auto_x.get(id(vb), True):
            self._dirty = True
        self._auto_x[id(vb)] = auto

    def _add_legend(self, item: pg.PlotItem, **kwargs) -> pg.LegendItem:
        """A legend for ``item``'s named curves in the layout cell right of the plot, where
        it never covers the data (in the window and in exported images alike)."""
        legend = pg.LegendItem(labelTextSize="8pt", verSpacing=-6, **kwargs)
        row, col = self.graphics.ci.items[item][0]
        self.graphics.ci.addItem(legend, row=row, col=col + 1)
        self.graphics.ci.layout.setColumnStretchFactor(col, 1)
        top_of_cell(self.graphics.ci, legend)
        item.legend = legend  # PlotItem.addItem(name=...) lists curves here
        style_plot_item(item, self.theme)
        return legend

    def _style_waiting(self) -> None:
        back = self.theme.background.name() if self._note_opaque else "transparent"
        sheet = f"color: gray; background: {back};"
        if self.waiting.styleSheet() != sheet:  # (set_context runs at every Run)
            self.waiting.setStyleSheet(sheet)

    def apply_theme(self) -> None:
        """Re-read the palette and restyle (called on palette changes)."""
        self.theme = plot_theme(self)
        self._style_waiting()
        self.graphics.setBackground(self.theme.background)
        for item in self._plots:
            style_plot_item(item, self.theme)
        for readout in self.readouts:
            readout.forget()
            readout.restyle(self.theme)
        if self._built:
            self._theme_changed()

    def _finish_init(self) -> None:
        """Subclasses call this at the end of ``__init__``: colour the items they made."""
        self._built = True
        self._theme_changed()

    def _theme_changed(self) -> None:
        """Subclasses recolour their items here."""

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_theme()
        super().changeEvent(event)

    # -- export ------------------------------------------------------------------------------
    def export_image(self, path: str | Path) -> None:
        """Write the plot as PNG (or any Qt image format) or, for ``.svg``, as SVG; rendered in
        memory, then written atomically (a full disk keeps the previous file)."""
        path = str(path)
        target = self.graphics.ci
        if path.lower().endswith(".svg"):
            try:
                payload = pg_exporters.SVGExporter(target).export(toBytes=True)
            except ValueError:
                # pyqtgraph 0.14's SVG post-processing cannot parse the path data that
                # Qt >= 6.10 writes; Qt's own SVG generator draws the same scene.
                payload = self._svg_with_qt()
            atomic_write_bytes(path, bytes(payload))
            return
        exporter = pg_exporters.ImageExporter(target)
        exporter.parameters()["width"] = max(int(self.graphics.width()), 800)
        image = exporter.export(toBytes=True)
        atomic_write_bytes(path, image_bytes(image, Path(path).suffix.lstrip(".") or "png"))

    def _svg_with_qt(self) -> bytes:
        from PySide6.QtSvg import QSvgGenerator

        scene = self.graphics.scene()
        rect = self.graphics.ci.sceneBoundingRect()
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        gen = QSvgGenerator()
        gen.setOutputDevice(buffer)
        gen.setSize(rect.size().toSize())
        gen.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
        gen.setTitle(type(self).__name__)
        painter = QPainter(gen)
        try:
            painter.fillRect(QRectF(0, 0, rect.width(), rect.height()), self.theme.background)
            scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        finally:
            painter.end()
        return bytes(buffer.data())

    def export_csv(self, path: str | Path) -> None:
        """Write the plotted data as a long-format CSV (``series,x,y``)."""
        write_series_csv(path, self.data())

    def _on_save_image_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save plot image", f"{self._file_stem()}.png",
            "PNG image (*.png);;SVG image (*.svg)")
        if path:
            self.export_image(path)

    def _on_save_csv_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save plot data", f"{self._file_stem()}.csv", "CSV table (*.csv)")
        if path:
            self.export_csv(path)

    def _file_stem(self) -> str:
        return type(self).__name__.removesuffix("Plot").removesuffix("View").lower() or "plot"
