"""Per-layer gradient health over time: norms, update ratios, and the current gradient flow."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.base import PlotPanel, RunOverlay, decades, set_curve, top_of_cell
from bplab.ui.plots.history import History
from bplab.ui.plots.hover import HoverLine
from bplab.ui.plots.theme import depth_colors
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from bplab.io.project import atomic_text

__all__ = ["GradientFlowBar", "GradientNormPlot", "LEGEND_ROWS", "UpdateRatioPlot",
           "legend_layers"]

LEGEND_ROWS = 12  # layers named in a layer-series legend; a deeper network lists a scale


def legend_layers(n: int, most: int = LEGEND_ROWS) -> list[int]:
    """Indices of the layers a legend names: all ``n`` up to ``most``, else ``most`` of them
    spread evenly from the first to the last.

    The lines are coloured in depth order, so a spread of entries reads as a colour scale;
    a legend of every layer of a deep network would take half the plot's width (two
    columns of twenty names) for colours too close to tell apart. Hovering a line names it.
    """
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def _layers_of(upd: TrainingUpdate):
    d = upd.newest("layers")
    return (d, d.layers) if d is not None else (None, None)


def samples_of(upd: TrainingUpdate, attr: str = "layers") -> list:
    """The update's diagnostic reports that carry ``attr``, oldest first."""
    reports = upd.samples or ((upd.diagnostics,) if upd.diagnostics is not None else ())
    return [r for r in reports if getattr(r, attr)]


class _LayerSeriesPlot(PlotPanel):
    """One line per parameterised layer of ``LayerStats.<field>`` against the step, log y.

    Lines are coloured by depth (viridis, input side to output side) so a vanishing or
    exploding gradient reads as an ordered fan of colours. The legend names at most
    :data:`LEGEND_ROWS` of them (:func:`legend_layers`); resting the mouse on any line, a
    recorded run's included, thickens it and shows its layer, value and step
    (:class:`~bplab.ui.plots.hover.LineReadout`).
    """

    field = "grad_norm"
    y_label = "gradient L2 norm"
    hint = ""
    zero_text = "0 (no gradient)"  # what an exact zero means here (on its floor line)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        info = QLabel(self.hint)
        info.setToolTip(f"{self.hint}. Rest the mouse on a line to read its layer and value.")
        info.setWordWrap(False)
        self.controls.addWidget(info)
        self.controls.addStretch(1)
        self.plot = self._add_plot(x_label="step", y_label=self.y_label)
        self.plot.setLogMode(x=False, y=True)
        # One entry per layer: in a column of its own beside the plot, where it never
        # covers the newest part of the curves however many layers there are.
        self.legend = pg.LegendItem(labelTextSize="8pt", verSpacing=-6)
        self.graphics.ci.addItem(self.legend, row=0, col=1)
        top_of_cell(self.graphics.ci, self.legend)
        self.graphics.ci.layout.setColumnStretchFactor(0, 1)
        self.names: list[str] = []
        self.curves: list[pg.PlotDataItem] = []
        self.hist = History(1)
        self.last_step = -1
        self._y_range = (math.inf, -math.inf)
        self._has_zero = False
        self.zero_line = pg.InfiniteLine(
            pos=0.0, angle=0, movable=False, label=self.zero_text,
            labelOpts={"position": 0.05, "anchors": [(0, 0), (0, 0)]})
        self.zero_line.setToolTip("An exact zero cannot sit on a log axis: a layer at 0 (a "
                                  "dead layer) is drawn on this dotted floor")
        self.zero_line.setVisible(False)
        self.plot.addItem(self.zero_line, ignoreBounds=True)
        # The line under the mouse: its name, value and step, and the line drawn thicker.
        self.readout = self._add_readout(self.plot, self._hover_lines, zero_text=self.zero_text)
        self._extra_items()
        self._finish_init()

    def _extra_items(self) -> None:
        """Subclasses add reference lines here."""

    def _theme_changed(self) -> None:
        for curve, color in zip(self.curves, depth_colors(len(self.curves), self.theme.dark)):
            curve.setPen(pg.mkPen(color, width=1.6))
        self.legend.setLabelTextColor(self.theme.foreground)
        self.legend.update()
        self.zero_line.setPen(pg.mkPen(self.theme.muted, width=1, style=Qt.PenStyle.DotLine))
        self.zero_line.label.setColor(self.theme.muted)
        self.readout.forget()  # the pens were just set afresh

    def _build(self, names: list[str]) -> None:
        if list(names) != self.names or not self.curves:
            # New layers: new curves and legend (the same network keeps its items, which
            # makes a re-run start without a pause in the GUI).
            for curve in self.curves:
                self.plot.removeItem(curve)
            self.legend.clear()
            self.names = list(names)
            self.curves = [self.plot.plot(name=n) for n in self.names]  # (no legend there)
            shown = legend_layers(len(self.names))
            for i in shown:
                self.legend.addItem(self.curves[i], self.names[i])
            self.legend.setToolTip(
                "" if len(shown) == len(self.names) else
                f"{len(shown)} of the {len(self.names)} layers, evenly spread from input to "
                "output; rest the mouse on a line to name it")
            self._theme_changed()  # the new curves' pens (kept curves keep theirs)
        self.hist = History(1 + len(self.names))
        self.last_step = -1
        self._y_range = (math.inf, -math.inf)  # positive values seen (log axis)
        self._has_zero = False
        self._dirty = True
        if self.overlays:
            self._draw_runs()  # the legend was cleared

    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self._build(list(ctx.layer_names))

    def reset(self) -> None:
        self._build(self.names)

    def add_update(self, upd: TrainingUpdate) -> None:
        reports = [d for d in samples_of(upd) if d.step > self.last_step]
        if not reports:
            return
        if not self.names:
            self._build([s.layer for s in reports[0].layers])
        self.last_step = reports[-1].step
        rows = np.full((len(reports), 1 + len(self.names)), np.nan)
        index = {n: i for i, n in enumerate(self.names)}
        for row, d in zip(rows, reports):
            row[0] = d.step
            for s in d.layers:
                i = index.get(s.layer)
                if i is not None:
                    row[1 + i] = getattr(s, self.field)
        self.hist.append(rows)
        v = rows[:, 1:][np.isfinite(rows[:, 1:]) & (rows[:, 1:] > 0)]
        if len(v):
            lo, hi = self._y_range
            self._y_range = (min(lo, float(v.min())), max(hi, float(v.max())))
        self._has_zero = self._has_zero or bool((rows[:, 1:] == 0).any())
        self._dirty = True

    def zero_floor(self) -> float | None:
        """Where an exact zero (a dead layer) is drawn on the log axis: a decade under the
        smallest value; None while no zero was reported."""
        if not self._has_zero:
            return None
        lo, _ = self._y_range
        return decades(lo, lo)[0] / 10.0 if math.isfinite(lo) else 1e-12

    def _redraw(self) -> None:
        a = self._visible_rows(self.plot, self.hist.array)
        x = a[:, 0]
        floor = self.zero_floor()
        for i, curve in enumerate(self.curves):
            y = a[:, 1 + i]
            # log10(0) is -inf: an exact zero (a dead layer) is drawn on the dotted floor
            # line, marked "0", instead of vanishing; a negative value stays a gap.
            y[y < 0] = np.nan
            y[y == 0] = np.nan if floor is None else floor
            set_curve(curve, x, y, log_y=True)
        lo, hi = self._y_range
        if floor is not None:
            self.zero_line.setPos(math.log10(floor))  # log mode: the view's y is log10
            lo, hi = floor, (hi if math.isfinite(hi) else floor * 100)
        self.zero_line.setVisible(floor is not None)
        if len(a) and math.isfinite(lo):
            self._hold_range(self.plot, float(x[-1]), decades(lo, hi), log_y=True)

    def data(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        a = self.hist.array
        return {n: (a[:, 0].copy(), a[:, 1 + i].copy()) for i, n in enumerate(self.names)}

    # -- hover ---------------------------------------------------------------------------------
    def _hover_lines(self):
        """The live layers' lines (an exact zero drawn on the floor) for the readout."""
        a, floor = self.hist.array, self.zero_floor()
        for i, (name, curve) in enumerate(zip(self.names, self.curves)):
            yield HoverLine(name, curve, a[:, 0], a[:, 1 + i], floor)

    def hover_at(self, scene_pos) -> str | None:
        """What resting the mouse at ``scene_pos`` shows (see LineReadout.at)."""
        return self.readout.at(scene_pos)


class GradientNormPlot(_LayerSeriesPlot):
    """Gradient L2 norm of every parameterised layer over the steps (log scale).

    A recorded run ticked in the Runs panel adds one thin line per layer in its colour
    (its name once in the legend), so two runs' fans of norms can be compared."""

    field = "grad_norm"
    y_label = "gradient norm"
    hint = "Gradient L2 norm per layer (input side dark, output side light)"

    def _draw_run(self, overlay: RunOverlay) -> None:
        first = None
        for layer in overlay.record.layers:
            x, y = overlay.record.series(layer)
            if x:
                curve = self._overlay_curve(self.plot, overlay, layer, x, y, width=1.0,
                                            positive=True)
                first = first or curve
        if first is not None:
            self.legend.addItem(first, overlay.name)

    def _forget_overlay_curve(self, curve: pg.PlotDataItem) -> None:
        self.legend.removeItem(curve)


class UpdateRatioPlot(_LayerSeriesPlot):
    """Update-to-weight ratio ``||ΔW|| / ||W||`` per layer, with the healthy 1e-3 marked."""

    field = "update_ratio"
    y_label = "‖ΔW‖ / ‖W‖"
    hint = "Update-to-weight ratio per step; about 1e-3 (dashed) is healthy"
    zero_text = "0 (no update)"

    def _extra_items(self) -> None:
        # In log mode the view's y coordinate is log10 of the value.
        self.reference = pg.InfiniteLine(
            pos=-3.0, angle=0, movable=False,
            label="1e-3", labelOpts={"position": 0.05, "anchors": [(0, 1), (0, 1)]})
        self.reference.setToolTip("A healthy update-to-weight ratio is about 1e-3")
        self.plot.addItem(self.reference, ignoreBounds=False)

    def _theme_changed(self) -> None:
        super()._theme_changed()
        pen = pg.mkPen(self.theme.foreground, width=1, style=Qt.PenStyle.DashLine)
        self.reference.setPen(pen)
        self.reference.label.setColor(self.theme.foreground)


class GradientFlowBar(PlotPanel):
    """Bar chart of the latest gradient norm (or RMS per weight) of each layer, log scale.

    Bars rise from a floor one decade under the smallest value, so their heights compare
    orders of magnitude; a non-finite gradient is drawn as a short bar in the error colour.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.mode = QComboBox()
        self.mode.addItem("Gradient norm", "grad_norm")
        self.mode.addItem("Gradient RMS per weight", "grad_rms")
        self.mode.setToolTip(
            "Norm: the whole layer's gradient. RMS per weight: comparable across layers of "
            "different widths")
        self.mode.currentIndexChanged.connect(self._on_mode_changed)
        self.step_label = QLabel()
        self.step_label.setToolTip("Step of the diagnostic sample shown")
        self.controls.addWidget(self.mode)
        self.controls.addStretch(1)
        self.controls.addWidget(self.step_label)
        self.plot = self._add_plot(x_label="layer (input → output)", y_label="gradient",
                                   decimate=False)
        self.plot.getAxis("left").setLogMode(True)
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.plot.setMouseEnabled(x=False, y=True)
        self.bars = pg.BarGraphItem(x=np.zeros(0), height=np.zeros(0), width=0.6)
        self.plot.addItem(self.bars)
        self.names: list[str] = []
        self.values = {"grad_norm": np.zeros(0), "grad_rms": np.zeros(0)}
        self.step: int | None = None
        self._finish_init()

    @property
    def field(self) -> str:
        return self.mode.currentData()

    def set_field(self, field: str) -> None:
        self.mode.setCurrentIndex(self.mode.findData(field))

    def _theme_changed(self) -> None:
        self._dirty = True
        self.refresh()

    def _build(self, names: list[str]) -> None:
        self.names = list(names)
        n = len(names)
        self.values = {"grad_norm": np.full(n, np.nan), "grad_rms": np.full(n, np.nan)}
        self.step = None
        # Every layer's name under its bar; thin them out when they would overlap.
        every = max(1, math.ceil(n / 16))
        ticks = [(i, name) for i, name in enumerate(names) if i % every == 0]
        self.plot.getAxis("bottom").setTicks([ticks, []])
        self.plot.setXRange(-0.6, n - 0.4, padding=0)
        self._dirty = True

    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self._build(list(ctx.layer_names))

    def reset(self) -> None:
        self._build(self.names)

    def add_update(self, upd: TrainingUpdate) -> None:
        d, layers = _layers_of(upd)
        if layers is None or (self.step is not None and d.step <= self.step):
            return
        if not self.names:
            self._build([s.layer for s in layers])
        index = {n: i for i, n in enumerate(self.names)}
        for s in layers:
            i = index.get(s.layer)
            if i is not None:
                self.values["grad_norm"][i] = s.grad_norm
                self.values["grad_rms"][i] = s.grad_rms
        self.step = d.step
        self._dirty = True

    def _redraw(self) -> None:
        v = self.values[self.field]
        n = len(v)
        self.step_label.setText(f"step {self.step}" if self.step is not None else "no sample yet")
        if n == 0:
            # (pyqtgraph 0.14's BarGraphItem fails on empty pen lists)
            self.bars.setOpts(x=np.zeros(0), height=np.zeros(0), y0=0.0, brushes=None, pens=None,
                              brush=pg.mkBrush(self.theme.train), pen=pg.mkPen(self.theme.train))
            return
        ok = np.isfinite(v) & (v > 0)
        logs = np.where(ok, np.log10(np.where(ok, v, 1.0)), np.nan)
        floor = math.floor(np.nanmin(logs)) - 1.0 if ok.any() else -1.0
        heights = np.where(ok, logs - floor, 0.0)
        bad = np.isnan(v) | np.isinf(v)
        heights[bad & ~np.isnan(v)] = 0.3  # Inf: a stub in the error colour
        colors = depth_colors(n, self.theme.dark)
        brushes = [pg.mkBrush(self.theme.bad if b else c) for c, b in zip(colors, bad)]
        pens = [pg.mkPen(self.theme.bad if b else c.darker(130)) for c, b in zip(colors, bad)]
        self.bars.setOpts(x=np.arange(n, dtype=float), height=heights, y0=np.full(n, floor),
                          width=0.6, brushes=brushes, pens=pens)
        top = float(np.nanmax(logs)) if ok.any() else 0.0
        self.plot.setYRange(floor, max(top, floor + 1.0), padding=0.05)

    def data(self) -> dict[str, object]:
        return {"layers": list(self.names), self.field: (np.arange(len(self.names)),
                                                         self.values[self.field].copy())}

    def export_csv(self, path: str | Path) -> None:
        with atomic_text(path) as fh:
            w = csv.writer(fh)
            w.writerow(["layer", "grad_norm", "grad_rms"])
            for i, name in enumerate(self.names):
                w.writerow([name, repr(float(self.values["grad_norm"][i])),
                            repr(float(self.values["grad_rms"][i]))])

    def _on_mode_changed(self, _index: int) -> None:
        self.plot.setLabel("left", "gradient RMS" if self.field == "grad_rms" else "gradient norm")
        self._dirty = True
        self.refresh()
