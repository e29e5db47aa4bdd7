"""Loss and metric curves over epochs, with the recorded runs ticked in the Runs panel over
them (training solid, validation dashed, in the run's colour)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.base import (
    PlotPanel,
    RunOverlay,
    decades,
    fix_label_size,
    nice_ceil,
    set_curve,
)
from bplab.ui.plots.history import History
from bplab.ui.plots.hover import HoverLine
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtWidgets import QCheckBox, QLabel, QWidget

__all__ = ["LossPlot", "MetricPlot"]

# R² starts far below zero for an untrained net: the axis stops here, and lower values are
# marked on it
R2_FLOOR = -1.0


def _epoch_text(x: float) -> str:
    return f"epoch {x:.4g}"


def _fmt(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:.4g}"


class _EpochSeries:
    """Reports with metrics, deduplicated by step (the worker may resend the latest one)."""

    def __init__(self, keys: tuple[str, ...]):
        self.keys = keys
        self.hist = {k: History(2) for k in keys}
        self.last_step = -1

    def clear(self) -> None:
        for h in self.hist.values():
            h.clear()
        self.last_step = -1

    def add(self, upd: TrainingUpdate) -> bool:
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in self.keys}
        for r in upd.epoch_reports:
            if not r.metrics or r.step <= self.last_step:
                continue
            self.last_step = r.step
            for k in self.keys:
                v = r.metrics.get(k)
                if v is not None:
                    rows[k].append((r.epoch_progress, v))
        changed = False
        for k, block in rows.items():
            if block:
                self.hist[k].append(np.asarray(block, np.float64))
                changed = True
        return changed

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        a = self.hist[key].array
        return a[:, 0].copy(), a[:, 1].copy()

    def draw(self, panel: PlotPanel, plot: pg.PlotItem, curve: pg.PlotDataItem, key: str,
             symbol: str, log_y: bool = False) -> None:
        rows = panel._visible_rows(plot, self.hist[key].array)
        set_curve(curve, rows[:, 0], rows[:, 1], log_y=log_y, symbol=symbol)


class LossPlot(PlotPanel):
    """Training loss per step (thin, faded), its epoch mean, and validation loss per epoch.

    The x axis is in epochs: step ``s`` sits at ``s / steps_per_epoch``.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.log_check = QCheckBox("Log scale")
        self.log_check.setToolTip("Show the loss on a logarithmic axis (helps once it gets small)")
        self.log_check.toggled.connect(self._on_log_toggled)
        self.steps_check = QCheckBox("Per-step loss")
        self.steps_check.setChecked(True)
        self.steps_check.setToolTip(
            "Show the noisy loss of every mini-batch behind the epoch means")
        self.steps_check.toggled.connect(self._on_steps_toggled)
        self.summary = QLabel()
        self.summary.setToolTip("Latest training and validation loss")
        fix_label_size(self.summary, "train -8.888e-08   val -8.888e-08")
        self.controls.addWidget(self.log_check)
        self.controls.addWidget(self.steps_check)
        self.controls.addStretch(1)
        self.controls.addWidget(self.summary)

        self.plot = self._add_plot(x_label="epoch", y_label="loss")
        self._add_legend(self.plot)
        self.step_curve = self.plot.plot(name="train (per step)")
        self.epoch_curve = self.plot.plot(name="train (epoch mean)", symbolSize=5)
        self.val_curve = self.plot.plot(name="validation", symbolSize=5)
        self.steps = History(2)
        self.epochs = _EpochSeries(("train_loss", "val_loss"))
        self.readout = self._add_readout(self.plot, self._hover_lines, where=_epoch_text)
        self._y_range = (math.inf, -math.inf)  # finite losses seen so far (all curves)
        self._y_pos_min = math.inf  # smallest loss > 0, for the log axis
        self._robust, self._robust_n = math.inf, 0  # robust_top's cached percentile
        self._held_y: tuple[float, float] | None = None  # linear y range set by _hold_y
        self._finish_init()

    def _theme_changed(self) -> None:
        t = self.theme
        self.step_curve.setPen(pg.mkPen(t.faded(t.train, 70), width=1))
        self.epoch_curve.setPen(pg.mkPen(t.train, width=2))
        self.epoch_curve.setSymbolBrush(t.train)
        self.epoch_curve.setSymbolPen(t.train)
        self.val_curve.setPen(pg.mkPen(t.val, width=2))
        self.val_curve.setSymbolBrush(t.val)
        self.val_curve.setSymbolPen(t.val)

    def _x_of_step(self, step: int) -> float:
        return step / max(self.ctx.steps_per_epoch, 1) if self.ctx is not None else float(step)

    def _prepare_range(self, ctx: TrainingContext) -> None:
        if ctx.total_steps:
            self._hold_range(self.plot, self._x_of_step(ctx.total_steps), (0.0, 1.0),
                             log_y=self.log_scale)

    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self.steps.clear()
        self.epochs.clear()
        self._y_range = (math.inf, -math.inf)
        self._y_pos_min = math.inf
        self._robust, self._robust_n = math.inf, 0
        self._held_y = None
        if not self.log_scale:
            self.plot.getViewBox().enableAutoRange(y=True)

    def add_update(self, upd: TrainingUpdate) -> None:
        spe = max(self.ctx.steps_per_epoch, 1) if self.ctx is not None else 1
        values = [r.metrics.get(k) for r in upd.epoch_reports if r.metrics
                  for k in ("train_loss", "val_loss")]
        y = np.asarray([v for v in values if v is not None], np.float64)
        if len(upd.steps):
            losses = np.asarray(upd.losses, np.float64)
            x = np.asarray(upd.steps, np.float64) / spe
            self.steps.append(np.column_stack([x, losses]))
            y = np.concatenate([y, losses])
            self._dirty = True
        if self.epochs.add(upd):
            self._dirty = True
        y = y[np.isfinite(y)]
        if len(y):
            lo, hi = self._y_range
            self._y_range = (min(lo, float(y.min())), max(hi, float(y.max())))
            pos = y[y > 0]
            if len(pos):
                self._y_pos_min = min(self._y_pos_min, float(pos.min()))

    def _redraw(self) -> None:
        log = self.log_scale
        rows = self._visible_rows(self.plot, self.steps.array)
        set_curve(self.step_curve, rows[:, 0], rows[:, 1], log_y=log)
        self.epochs.draw(self, self.plot, self.epoch_curve, "train_loss", "o", log)
        self.epochs.draw(self, self.plot, self.val_curve, "val_loss", "s", log)
        last = self.steps.last
        lo, hi = self._y_range
        if last is not None and math.isfinite(lo):
            if log:
                if math.isfinite(self._y_pos_min) and hi > 0:
                    self._hold_range(self.plot, last[0], decades(self._y_pos_min, hi),
                                     log_y=True)
            else:
                hi = self.robust_top()
                y = (min(lo, 0.0), nice_ceil(hi) if hi > 0 else hi)
                self._hold_range(self.plot, last[0], y)
                self._hold_y(y)
        tr = self.epochs.hist["train_loss"].last
        va = self.epochs.hist["val_loss"].last
        self.summary.setText(f"train {_fmt(tr[1] if tr is not None else None)}   "
                             f"val {_fmt(va[1] if va is not None else None)}")

    def _hover_lines(self):
        a = self.steps.array
        yield HoverLine("train (per step)", self.step_curve, a[:, 0], a[:, 1])
        yield HoverLine("train (epoch mean)", self.epoch_curve, *self.epochs.series("train_loss"))
        yield HoverLine("validation", self.val_curve, *self.epochs.series("val_loss"))

    def _hold_y(self, y: tuple[float, float]) -> None:
        """Linear axis: y is set to ``y`` (with the range margin), not auto-ranged, so that
        a spike above :meth:`robust_top` does not stretch it; only a change moves it."""
        if y == self._held_y or not all(math.isfinite(v) for v in y):
            return
        self._held_y = y
        m = self.range_margin * ((y[1] - y[0]) or 1.0)
        vb = self.plot.getViewBox()
        vb.enableAutoRange(y=False)
        vb.setYRange(y[0] - m, y[1] + m, padding=0)

    def robust_top(self) -> float:
        """The top of the linear y range: the highest loss (per step or epoch mean) that is
        not an outlier (over 4x the 90th percentile), and the newest loss. One spike leaves
        the view at the top instead of flattening the curve; a run that blows up now stays
        in view."""
        _, hi = self._y_range
        a = self.steps.array
        n = len(a)
        if n < 3:
            return hi
        if n < 2000 or n >= self._robust_n * 1.05 or n < self._robust_n:
            v = np.concatenate([a[:, 1]] + [self.epochs.hist[k].array[:, 1]
                                             for k in ("train_loss", "val_loss")])
            v = v[np.isfinite(v)]
            k = int(0.9 * (len(v) - 1))
            p90 = float(np.partition(v, k)[k])
            v = v[v <= 4 * p90] if p90 > 0 else v
            self._robust = float(v.max()) if len(v) else hi
            self._robust_n = n
        newest = float(a[-1, 1]) if math.isfinite(a[-1, 1]) else -math.inf
        return min(max(self._robust, newest), hi)

    def data(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        a = self.steps.array
        return {
            "train_loss_step": (a[:, 0].copy(), a[:, 1].copy()),
            "train_loss_epoch": self.epochs.series("train_loss"),
            "val_loss": self.epochs.series("val_loss"),
        }

    @property
    def log_scale(self) -> bool:
        return self.log_check.isChecked()

    def set_log_scale(self, on: bool) -> None:
        self.log_check.setChecked(on)

    def _on_log_toggled(self, on: bool) -> None:
        self.plot.setLogMode(x=False, y=on)
        self._held_y = None
        self.plot.getViewBox().enableAutoRange(y=True)  # log: the range follows the data
        self._dirty = True  # the range holder and finite checks depend on the scale
        self._draw_runs()  # a log axis leaves out losses <= 0
        self.refresh()

    def _draw_run(self, overlay: RunOverlay) -> None:
        _draw_pair(self, overlay, "train_loss", "val_loss", positive=self.log_scale)

    def _on_steps_toggled(self, on: bool) -> None:
        self.step_curve.setVisible(on)


class MetricPlot(PlotPanel):
    """Train and validation accuracy (classification) or R² (regression) per epoch."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.summary = QLabel()
        self.summary.setToolTip("Latest training and validation score")
        fix_label_size(self.summary, "train R² -8.888e-08   val R² -8.888e-08")
        self.controls.addStretch(1)
        self.controls.addWidget(self.summary)
        self.plot = self._add_plot(x_label="epoch", y_label="accuracy")
        self.legend = self._add_legend(self.plot)
        self.train_curve = self.plot.plot(name="train", symbolSize=5)
        self.val_curve = self.plot.plot(name="validation", symbolSize=5)
        # R² under the axis' floor (an untrained net's -30): a downward triangle on the
        # floor at its epoch, in its curve's colour; the readout names the value
        self.below = pg.ScatterPlotItem(symbol="t", size=10)
        self.plot.addItem(self.below, ignoreBounds=True)
        self._below_listed = False
        self._below_key = (None, -1)  # (floor, last epoch step) the triangles show
        self.metric_name = "accuracy"
        self.epochs = _EpochSeries(("train_accuracy", "val_accuracy", "train_r2", "val_r2"))
        self._r2_range = (math.inf, -math.inf)  # finite R² values seen so far
        self.readout = self._add_readout(self.plot, self._hover_lines, where=_epoch_text)
        self._finish_init()

    def _theme_changed(self) -> None:
        t = self.theme
        for curve, color in ((self.train_curve, t.train), (self.val_curve, t.val)):
            curve.setPen(pg.mkPen(color, width=2))
            curve.setSymbolBrush(color)
            curve.setSymbolPen(color)
        # the legend's swatch; each triangle takes its curve's colour (redrawn anew)
        self.below.setBrush(pg.mkBrush(t.muted))
        self._below_key = (None, -2)

    _x_of_step = LossPlot._x_of_step

    def _prepare_range(self, ctx: TrainingContext) -> None:
        if ctx.total_steps:
            self._hold_range(self.plot, self._x_of_step(ctx.total_steps), (0.0, 1.0))

    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self.epochs.clear()
        self._r2_range = (math.inf, -math.inf)
        self._mark_below(None)
        self._set_metric("r2" if ctx.task == "regression" else "accuracy")

    def _set_metric(self, metric: str) -> None:
        self.metric_name = metric
        vb = self.plot.getViewBox()
        if metric == "accuracy":
            self.plot.setLabel("left", "accuracy")
            vb.enableAutoRange(y=False)
            self.plot.setYRange(0.0, 1.0, padding=0.02)
        else:
            self.plot.setLabel("left", "R²")
            vb.enableAutoRange(y=True)
        if self.overlays:
            self._draw_runs()

    def _draw_run(self, overlay: RunOverlay) -> None:
        _draw_pair(self, overlay, f"train_{self.metric_name}", f"val_{self.metric_name}")

    def add_update(self, upd: TrainingUpdate) -> None:
        lo, hi = self._r2_range
        for r in upd.epoch_reports:
            for key in ("train_r2", "val_r2"):
                v = r.metrics.get(key) if r.metrics else None
                if v is not None and math.isfinite(v):
                    lo, hi = min(lo, v), max(hi, v)
        self._r2_range = (lo, hi)
        if self.epochs.add(upd):
            # Without a context, pick the metric the reports carry.
            if self.ctx is None and len(self.epochs.hist["train_r2"]) and self.metric_name != "r2":
                self._set_metric("r2")
            self._dirty = True

    def _redraw(self) -> None:
        m = self.metric_name
        self.epochs.draw(self, self.plot, self.train_curve, f"train_{m}", "o")
        self.epochs.draw(self, self.plot, self.val_curve, f"val_{m}", "s")
        last = self.epochs.hist[f"train_{m}"].last
        if last is not None:
            self._hold_range(self.plot, last[0], (last[1], last[1]))
        lo, hi = self._r2_range
        if m == "r2":
            # R² starts far below zero for an untrained net; keep [-1, 1] readable. The
            # running extremes are kept by add_update, so this costs nothing per frame.
            if math.isfinite(lo):
                self.plot.getViewBox().enableAutoRange(y=False)
                self.plot.setYRange(max(lo, R2_FLOOR), max(hi, 1.0), padding=0.02)
        floor = R2_FLOOR if m == "r2" and lo < R2_FLOOR else None
        if (floor, self.epochs.last_step) != self._below_key:
            self._mark_below(floor)
        name = "acc" if m == "accuracy" else "R²"
        tr = self.epochs.hist[f"train_{m}"].last
        va = self.epochs.hist[f"val_{m}"].last
        self.summary.setText(f"train {name} {_fmt(tr[1] if tr is not None else None)}   "
                             f"val {name} {_fmt(va[1] if va is not None else None)}")

    def _mark_below(self, floor: float | None) -> None:
        """Triangles on ``floor`` where an R² is below it (None: none), listed in the legend
        while there are any."""
        self._below_key = (floor, self.epochs.last_step)
        xs, brushes = [], []
        if floor is not None:
            for key, color in (("train_r2", self.theme.train), ("val_r2", self.theme.val)):
                x, y = self.epochs.series(key)
                under = x[y < floor]
                xs.append(under)
                brushes += [pg.mkBrush(color)] * len(under)
        x = np.concatenate(xs) if xs else np.zeros(0)
        self.below.setData(x=x, y=np.full(len(x), floor if floor is not None else 0.0),
                           brush=brushes, pen=None)
        if bool(len(x)) != self._below_listed:
            self._below_listed = bool(len(x))
            if self._below_listed:
                self.legend.addItem(self.below, f"below {R2_FLOOR:g}")
            else:
                self.legend.removeItem(self.below)

    def _hover_lines(self):
        m = self.metric_name
        name = "accuracy" if m == "accuracy" else "R²"
        yield HoverLine(f"train {name}", self.train_curve, *self.epochs.series(f"train_{m}"))
        yield HoverLine(f"validation {name}", self.val_curve, *self.epochs.series(f"val_{m}"))

    def data(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        m = self.metric_name
        return {f"train_{m}": self.epochs.series(f"train_{m}"),
                f"val_{m}": self.epochs.series(f"val_{m}")}


def _draw_pair(panel: LossPlot | MetricPlot, overlay: RunOverlay, train_key: str, val_key: str,
               positive: bool = False) -> None:
    """A recorded run's training curve (solid, named in the legend) and validation curve
    (dashed) over epochs."""
    named = False
    for key, dashed in ((train_key, False), (val_key, True)):
        x, y = overlay.record.series(key)
        if x:
            name = None if named else overlay.name
            panel._overlay_curve(panel.plot, overlay, key, x, y, name=name, dashed=dashed,
                                 positive=positive)
            named = True
