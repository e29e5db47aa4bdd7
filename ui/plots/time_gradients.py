"""Gradients through time: how far back the error signal of a recurrent layer reaches.

Backpropagation through time sends ``dL/dh_t`` from the last time step back to the first;
in a plain RNN each step multiplies it by ``W_hh^T diag(f'(a_t))``, so its norm shrinks (or
grows) geometrically with the distance from the loss, and an LSTM's additive cell path
keeps it alive. The engine measures ``||dL/dh_t||`` per time step at the diagnostics
cadence (``Report.time_grad_norms``: layer id -> array over the time steps); this view
shows it two ways, for the recurrent layer picked above the plots:

* **over time steps** (left, log y): the latest sample as a bold line, a few earlier ones
  faded, coloured from early (dark) to late (light) in training. A line that falls towards
  t = 1 is a gradient vanishing through time: the first steps of the sequence barely
  learn;
* **time step x training step** (right): the same norms as a heatmap, ``log10`` coloured,
  one column per diagnostic sample, so the whole run reads at a glance.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.base import PlotPanel
from bplab.ui.plots.hover import HoverLine
from bplab.ui.plots.theme import depth_colors
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from bplab.io.project import atomic_text

__all__ = ["TimeGradientPlot"]

MAX_COLUMNS = 400  # heatmap columns kept: older ones are thinned two to one beyond this
EARLIER_LINES = 4  # faded lines of earlier samples under the latest one
NO_LAYER = ("No recurrent layer in this network: add an RNN, LSTM or GRU to see the "
            "gradient flow back through the time steps.")


def time_norm_samples(upd: TrainingUpdate) -> list:
    """The update's reports that carry gradient norms through time, oldest first."""
    reports = upd.samples or ((upd.diagnostics,) if upd.diagnostics is not None else ())
    return [r for r in reports if r.time_grad_norms]


class _LayerHistory:
    """Samples of one layer: training steps and the norm at each time step (a row each)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.rows: list[np.ndarray] = []

    def add(self, step: int, norms: np.ndarray) -> None:
        self.steps.append(int(step))
        self.rows.append(np.asarray(norms, dtype=np.float64).reshape(-1))
        if len(self.rows) > MAX_COLUMNS:
            # keep the first and the newest, every other one in between
            keep = list(range(0, len(self.rows) - 1, 2)) + [len(self.rows) - 1]
            self.steps = [self.steps[i] for i in keep]
            self.rows = [self.rows[i] for i in keep]

    def matrix(self) -> np.ndarray:
        """(samples, time steps); shorter rows (a changed sequence length) padded with NaN."""
        if not self.rows:
            return np.zeros((0, 0))
        width = max(len(r) for r in self.rows)
        out = np.full((len(self.rows), width), np.nan)
        for i, r in enumerate(self.rows):
            out[i, : len(r)] = r
        return out


class TimeGradientPlot(PlotPanel):
    """``||dL/dh_t||`` of a recurrent layer over the time steps, and over training."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The recurrent layer whose gradients are shown")
        self.layer_box.currentIndexChanged.connect(self._on_layer_changed)
        hint = QLabel("‖∂L/∂hₜ‖ per time step: falling towards t = 1 is vanishing through time")
        hint.setToolTip(
            "The norm of the loss gradient with respect to the hidden state at each time "
            "step, at the diagnostics cadence. In a plain RNN it shrinks step by step away "
            "from the loss; an LSTM or GRU keeps it alive.")
        self.step_label = QLabel()
        self.step_label.setToolTip("Training step of the latest sample")
        self.controls.addWidget(self.layer_box)
        self.controls.addWidget(hint, 1)
        self.controls.addWidget(self.step_label)
        self.line_plot = self._add_plot(0, 0, title="over time steps (latest bold)",
                                        x_label="time step t", y_label="‖∂L/∂hₜ‖",
                                        decimate=False)
        self.line_plot.setLogMode(x=False, y=True)
        self.heat_plot = self._add_plot(0, 1, title="time step × training step (log₁₀)",
                                        x_label="training step", y_label="time step t",
                                        decimate=False)
        self.heat_plot.showGrid(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.heat_plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(-6.0, 0.0), colorMap=pg.colormap.get("viridis"),
                                        interactive=False, width=12)
        self.colorbar.setImageItem(self.image)
        self.graphics.ci.addItem(self.colorbar, row=0, col=2)
        self.lines: list[pg.PlotDataItem] = []
        self._drawn: list[HoverLine] = []  # the lines drawn, by their training step
        self.readout = self._add_readout(self.line_plot, lambda: self._drawn,
                                         where=lambda t: f"time step {t:.0f}")
        self.history: dict[str, _LayerHistory] = {}
        self.layers: list[str] = []
        self._finish_init()

    # -- protocol ------------------------------------------------------------------------------
    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self._build(list(ctx.time_layers))

    def empty_note(self, ctx: TrainingContext) -> str | None:
        return None if ctx.time_layers else NO_LAYER

    def reset(self) -> None:
        self._build(self.layers)

    def add_update(self, upd: TrainingUpdate) -> None:
        for report in time_norm_samples(upd):
            for layer, norms in report.time_grad_norms.items():
                hist = self.history.get(layer)
                if hist is None:
                    self._add_layer(layer)
                    hist = self.history[layer]
                if hist.steps and report.step <= hist.steps[-1]:
                    continue
                hist.add(report.step, norms)
                self._dirty = True
        if self._dirty and self.history:
            self.waiting.hide()

    def _redraw(self) -> None:
        layer = self.layer_box.currentData()
        hist = self.history.get(layer) if layer is not None else None
        if hist is None or not hist.rows:
            for line in self.lines:
                line.setData([], [])
            self._drawn = []
            self.image.clear()
            self.step_label.setText("no sample yet")
            return
        self.step_label.setText(f"step {hist.steps[-1]}")
        self._draw_lines(hist)
        self._draw_heatmap(hist)

    def data(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per layer the latest sample: ``(time steps 1..T, ||dL/dh_t||)``."""
        out = {}
        for layer, hist in self.history.items():
            if hist.rows:
                norms = hist.rows[-1].copy()
                out[layer] = (np.arange(1, len(norms) + 1), norms)
        return out

    def heatmap(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """``(training steps, norms)`` of ``layer``: norms is (samples, time steps)."""
        hist = self.history.get(layer) or _LayerHistory()
        return np.asarray(hist.steps, dtype=np.int64), hist.matrix()

    def export_csv(self, path: str | Path) -> None:
        """Every sample: ``layer, step, t, norm`` (long format)."""
        with atomic_text(path) as fh:
            w = csv.writer(fh)
            w.writerow(["layer", "step", "t", "norm"])
            for layer, hist in self.history.items():
                for step, row in zip(hist.steps, hist.rows):
                    for t, v in enumerate(row.tolist(), start=1):
                        w.writerow([layer, step, t, repr(v)])

    # -- drawing -------------------------------------------------------------------------------
    def _build(self, layers: list[str]) -> None:
        self.history = {}
        self.layers = []
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.blockSignals(False)
        for layer in layers:
            self._add_layer(layer)
        self.layer_box.setVisible(len(self.layers) > 1)
        self._dirty = True

    def _add_layer(self, layer: str) -> None:
        self.history[layer] = _LayerHistory()
        if layer not in self.layers:
            self.layers.append(layer)
            self.layer_box.addItem(layer, layer)
            self.layer_box.setVisible(len(self.layers) > 1)

    def _theme_changed(self) -> None:
        self._dirty = True

    def _draw_lines(self, hist: _LayerHistory) -> None:
        n = len(hist.rows)
        shown = sorted({round(i * (n - 1) / EARLIER_LINES) for i in range(EARLIER_LINES)}
                       - {n - 1}) + [n - 1]
        while len(self.lines) < len(shown):
            self.lines.append(self.line_plot.plot())
        colors = depth_colors(max(len(shown), 2), self.theme.dark)
        self._drawn = []
        for i, line in enumerate(self.lines):
            if i >= len(shown):
                line.setData([], [])
                continue
            row = hist.rows[shown[i]].copy()
            row[~(np.isfinite(row) & (row > 0))] = np.nan  # log axis: gaps, not errors
            latest = i == len(shown) - 1
            color = colors[i] if not latest else colors[-1]
            if not latest:
                color = self.theme.faded(color, 140)
            line.setPen(pg.mkPen(color, width=2.4 if latest else 1.2))
            t = np.arange(1, len(row) + 1)
            line.setData(t, row)
            line.setZValue(10 if latest else i)
            step = hist.steps[shown[i]]
            # the top-most line first: where lines coincide, the one seen is the one named
            self._drawn.insert(0, HoverLine(f"training step {step}" + (" (latest)" if latest
                                                                       else ""), line, t, row))

    def _draw_heatmap(self, hist: _LayerHistory) -> None:
        m = hist.matrix()
        ok = np.isfinite(m) & (m > 0)
        logs = np.where(ok, np.log10(np.where(ok, m, 1.0)), np.nan)
        if not ok.any():
            self.image.clear()
            return
        lo, hi = float(np.nanmin(logs)), float(np.nanmax(logs))
        lo, hi = math.floor(lo), max(math.ceil(hi), math.floor(lo) + 1)
        # rows of the image are time steps (y), columns samples (x)
        self.image.setImage(np.nan_to_num(logs.T, nan=lo), autoLevels=False, levels=(lo, hi))
        self.colorbar.setLevels((lo, hi))
        steps = np.asarray(hist.steps, dtype=float)
        x0 = float(steps[0])
        x1 = float(steps[-1]) if len(steps) > 1 else x0 + 1.0
        dx = (x1 - x0) / max(len(steps) - 1, 1)
        t = m.shape[1]
        self.image.setRect(QRectF(x0 - dx / 2, 0.5, x1 - x0 + dx, float(t)))
        self.heat_plot.setXRange(x0 - dx / 2, x1 + dx / 2, padding=0)
        self.heat_plot.setYRange(0.5, t + 0.5, padding=0)

    def _on_layer_changed(self, _index: int) -> None:
        self._dirty = True
        self.refresh()
