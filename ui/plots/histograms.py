"""Weight and gradient distributions of one layer: now, and over time (TensorBoard's view)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.base import PlotAxis, PlotPanel, write_series_csv
from bplab.ui.plots.history import History, rebin
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import QRectF, QSize
from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from bplab.diagnostics import Histogram

__all__ = ["HistogramTrack", "HistogramView"]

KINDS = (("weight", "weights"), ("grad", "gradients"))


class HistogramTrack:
    """The histograms of one tensor over time, rebinned onto a common range ``[-R, R]``.

    ``R`` is a power of two that only grows: when a sample exceeds it, ``R`` doubles (or
    more) and the stored rows are rebinned onto the wider range, so every row of
    :attr:`matrix` uses the same ``bins`` bins and the heatmap needs no per-row scaling.
    """

    def __init__(self, bins: int = 64, capacity: int = 1024):
        self.bins = bins
        self.hist = History(1 + bins, capacity)
        self.half_range: float | None = None
        self.latest: Histogram | None = None

    @property
    def edges(self) -> np.ndarray:
        r = self.half_range or 1.0
        return np.linspace(-r, r, self.bins + 1)

    @property
    def steps(self) -> np.ndarray:
        return self.hist.column(0)

    @property
    def matrix(self) -> np.ndarray:
        """(samples, bins) counts, oldest sample first."""
        return self.hist.array[:, 1:]

    def add(self, step: int, h: Histogram) -> None:
        self.latest = h
        m = max(abs(h.lo), abs(h.hi))
        if not math.isfinite(m) or m <= 0:
            m = 1.0
        if self.half_range is None or m > self.half_range:
            new = 2.0 ** math.ceil(math.log2(m))
            if self.half_range is not None and len(self.hist):
                stored = self.hist.array
                stored[:, 1:] = rebin(stored[:, 1:], self.edges,
                                      np.linspace(-new, new, self.bins + 1))
            self.half_range = new
        row = np.empty(1 + self.bins)
        row[0] = step
        row[1:] = rebin(h.counts, h.edges, self.edges)
        self.hist.append(row)


class _StepAxis(PlotAxis):
    """Bottom axis of a heatmap whose x is the sample index: labels show the step instead."""

    def __init__(self):
        super().__init__("bottom")
        self.steps = np.zeros(0)

    def tickStrings(self, values, scale, spacing):
        out = []
        n = len(self.steps)
        for v in values:
            i = round(v)
            out.append(f"{int(self.steps[i])}" if 0 <= i < n and abs(v - i) < 1e-6 else "")
        return out

    def tickValues(self, minVal, maxVal, size):
        # Integer sample indices only, so every label names a real sample.
        levels = super().tickValues(minVal, maxVal, size)
        out = []
        for spacing, values in levels:
            step = max(1.0, round(spacing))
            vals = [v for v in values if abs(v - round(v)) < 1e-9 and round(v) % step == 0]
            out.append((step, vals))
        return out


class HistogramView(PlotPanel):
    """Current weight and gradient histograms of a chosen layer, and their evolution.

    Top row: the latest histograms as step plots. Bottom row: one column per diagnostic
    sample, one row per value bin, colour ``log(1 + count)`` — how the distribution
    spreads, shrinks or collapses during training.
    """

    minimum = QSize(420, 360)

    def __init__(self, parent: QWidget | None = None, bins: int = 64):
        super().__init__(parent)
        self.bins = bins
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Layer whose weights and gradients are shown")
        self.layer_combo.setMinimumContentsLength(8)
        self.layer_combo.currentIndexChanged.connect(self._on_layer_changed)
        self.nonfinite_label = QLabel()
        self.nonfinite_label.setToolTip("NaN and Inf values are counted here, never binned")
        self.step_label = QLabel()
        self.step_label.setToolTip("Step of the latest diagnostic sample")
        layer_label = QLabel("Layer:")
        layer_label.setToolTip("Layer whose weights and gradients are shown")
        self.controls.addWidget(layer_label)
        self.controls.addWidget(self.layer_combo)
        self.controls.addSpacing(12)
        self.controls.addWidget(self.nonfinite_label)
        self.controls.addStretch(1)
        self.controls.addWidget(self.step_label)

        self.current: dict[str, pg.PlotDataItem] = {}
        self.images: dict[str, pg.ImageItem] = {}
        self.heat_plots: dict[str, pg.PlotItem] = {}
        self.axes: dict[str, _StepAxis] = {}
        for col, (kind, label) in enumerate(KINDS):
            top = self._add_plot(0, col, title=f"{label} (latest)", y_label="count",
                                 decimate=False)
            curve = pg.PlotDataItem(stepMode="center", fillLevel=0)
            top.addItem(curve)
            self.current[kind] = curve
            axis = _StepAxis()
            heat = self._add_plot(1, col, title=f"{label} over time", x_label="step",
                                  y_label="value", decimate=False, axisItems={"bottom": axis})
            image = pg.ImageItem(axisOrder="col-major")
            heat.addItem(image)
            heat.setToolTip(f"Distribution of the {label} at each diagnostic sample; "
                            "colour is log(1 + count)")
            self.images[kind] = image
            self.heat_plots[kind] = heat
            self.axes[kind] = axis
        self.graphics.ci.layout.setRowStretchFactor(0, 2)
        self.graphics.ci.layout.setRowStretchFactor(1, 3)
        self.tracks: dict[str, dict[str, HistogramTrack]] = {}
        self.last_step = -1
        self._finish_init()

    def _theme_changed(self) -> None:
        t = self.theme
        for kind, color in (("weight", t.train), ("grad", t.val)):
            self.current[kind].setPen(pg.mkPen(color, width=1.5))
            self.current[kind].setBrush(pg.mkBrush(t.faded(color, 80)))
        if t.dark:
            cmap = pg.colormap.get("viridis")
        else:
            cmap = pg.ColorMap([0.0, 0.35, 1.0],
                               [t.background, pg.mkColor("#6baed6"), pg.mkColor("#08306b")])
        for image in self.images.values():
            image.setColorMap(cmap)
        self._dirty = True

    # -- protocol ----------------------------------------------------------------------------
    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self._build(list(ctx.layer_names))

    def reset(self) -> None:
        self._build(list(self.tracks))

    def _build(self, names: list[str]) -> None:
        self.tracks = {n: {k: HistogramTrack(self.bins) for k, _ in KINDS} for n in names}
        self.last_step = -1
        current = self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        self._dirty = True

    @property
    def layer(self) -> str | None:
        return self.layer_combo.currentText() or None

    def set_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def add_update(self, upd: TrainingUpdate) -> None:
        d = upd.newest("layers")
        if d is None or d.step <= self.last_step:
            return
        if not self.tracks:
            self._build([s.layer for s in d.layers])
        self.last_step = d.step
        for s in d.layers:
            tracks = self.tracks.get(s.layer)
            if tracks is None:
                continue
            if s.weight_hist is not None:
                tracks["weight"].add(d.step, s.weight_hist)
            if s.grad_hist is not None:
                tracks["grad"].add(d.step, s.grad_hist)
        self._dirty = True

    def _redraw(self) -> None:
        tracks = self.tracks.get(self.layer or "")
        bad = []
        for kind, label in KINDS:
            track = tracks[kind] if tracks else None
            h = track.latest if track else None
            if h is not None:
                self.current[kind].setData(h.edges, h.counts.astype(np.float64))
                if h.nonfinite:
                    bad.append(f"{h.nonfinite} non-finite {label}")
            else:
                self.current[kind].setData(np.zeros(0), np.zeros(0))
            image = self.images[kind]
            if track is not None and len(track.hist):
                img = np.log1p(track.matrix)
                image.setImage(img, autoLevels=False, levels=(0.0, max(float(img.max()), 1e-9)))
                r = track.half_range
                image.setRect(QRectF(-0.5, -r, len(img), 2 * r))
                self.axes[kind].steps = track.steps.copy()
                self.axes[kind].picture = None
                self.axes[kind].update()
                image.setVisible(True)
            else:
                image.setVisible(False)
        if bad:
            self.nonfinite_label.setText("⚠ " + ", ".join(bad))
            self.nonfinite_label.setStyleSheet(
                f"color: {self.theme.bad.name()}; font-weight: bold")
        else:
            self.nonfinite_label.setText("no NaN/Inf")
            self.nonfinite_label.setStyleSheet("")
        self.step_label.setText(
            f"step {self.last_step}" if self.last_step >= 0 else "no sample yet")

    def data(self) -> dict[str, object]:
        tracks = self.tracks.get(self.layer or "")
        out: dict[str, object] = {"layer": self.layer}
        for kind, _ in KINDS:
            track = tracks[kind] if tracks else None
            h = track.latest if track else None
            out[f"{kind}_hist"] = ((h.edges, h.counts) if h is not None
                                   else (np.zeros(0), np.zeros(0)))
            out[f"{kind}_heatmap"] = track.matrix.copy() if track else np.zeros((0, self.bins))
            out[f"{kind}_steps"] = track.steps.copy() if track else np.zeros(0)
            out[f"{kind}_edges"] = track.edges if track else np.zeros(0)
        return out

    def export_csv(self, path: str | Path) -> None:
        """Long format: the latest histograms (bin centre, count), then one series per sample."""
        d = self.data()
        series: dict[str, tuple] = {}
        for kind, _ in KINDS:
            edges, counts = d[f"{kind}_hist"]
            if len(edges):
                series[f"{kind}_latest"] = (0.5 * (edges[1:] + edges[:-1]), counts)
            e = d[f"{kind}_edges"]
            centres = 0.5 * (e[1:] + e[:-1]) if len(e) else e
            for step, row in zip(d[f"{kind}_steps"], d[f"{kind}_heatmap"]):
                series[f"{kind}@step{int(step)}"] = (centres, row)
        write_series_csv(path, series)

    def _on_layer_changed(self, _index: int) -> None:
        self._dirty = True
        self.refresh()
