"""The network's output over the input plane, as TensorFlow Playground draws it; over the
input line (a curve of x, with the data) when there is one input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.base import PlotPanel
from bplab.ui.plots.theme import (
    class_colormap,
    class_colors,
    playground_colormap,
    shared_brushes,
    shared_pens,
)
from bplab.ui.probe import request_probe
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QCheckBox, QGraphicsItem, QLabel, QWidget

from bplab.datasets import DATASETS
from bplab.io.project import atomic_text

__all__ = ["DecisionBoundaryView"]


def _n_features(ctx: TrainingContext) -> int | None:
    for attr in ("n_features", "input_shape"):
        v = getattr(ctx, attr, None)
        if v is not None:
            return int(np.prod(v))
    if ctx.x_train is not None and np.ndim(ctx.x_train) >= 2:
        return int(np.prod(np.shape(ctx.x_train)[1:]))
    info = DATASETS.get(ctx.dataset_name)  # built-in sets know their input shape
    if info is not None and getattr(info, "input_shape", None):
        return int(np.prod(info.input_shape))
    return None


class SmoothImage(pg.ImageItem):
    """An image drawn with bilinear filtering: the network's output over the plane reads as
    the continuous surface it is (as Playground draws it), not as blocks of grid cells."""

    def paint(self, p, *args):
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        super().paint(p, *args)


class DecisionBoundaryView(PlotPanel):
    """Heatmap of the network output over the 2-D input plane, with the data on top.

    Classification with two classes: probability of class 1 on Playground's orange (class 0)
    to blue (class 1) map, levels fixed to [0, 1]. More classes: the predicted class's
    colour (the grid holds ``class / (k - 1)``). Regression: the output on the same
    diverging map, centred on 0 and scaled by the largest target magnitude. Training points
    are filled circles; validation points are white discs ringed in their class colour.

    With one input (1-D data) the output is a curve of x instead (:meth:`line_x`): the
    regression output over the data drawn at (x, target), or the probability of class 1
    with the samples at their class's height (:meth:`point_positions`).
    """

    minimum = QSize(300, 300)
    shows_data_before_run = True
    probe_requested = Signal(object)  # a point of the plane (x1, x2) was clicked

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.train_check = QCheckBox("Training points")
        self.train_check.setChecked(True)
        self.train_check.setToolTip("Show the training samples (filled circles)")
        self.val_check = QCheckBox("Validation points")
        self.val_check.setChecked(True)
        self.val_check.setToolTip("Show the validation samples (white discs with a coloured ring)")
        self.train_check.toggled.connect(self._on_points_toggled)
        self.val_check.toggled.connect(self._on_points_toggled)
        self.controls.addWidget(self.train_check)
        self.controls.addWidget(self.val_check)
        self.controls.addStretch(1)

        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setMargin(24)
        self.layout().addWidget(self.message, 1)
        self.message.hide()

        self.plot = self._add_plot(x_label="x₁", y_label="x₂", decimate=False)
        self.plot.showGrid(x=False, y=False)
        # Not aspect-locked: a locked aspect widens one axis beyond the grid's bounds and
        # leaves bare margins beside the image; the view range is the grid's bounds.
        self.plot.setAspectLocked(False)
        self.image = SmoothImage(axisOrder="row-major")
        self.image.setZValue(-10)
        self.plot.addItem(self.image)
        # One input (1-D data): the network's output as a curve of x over the data points.
        self.curve = pg.PlotDataItem(name="network")
        self.curve.setZValue(10)
        self.curve.hide()
        self.plot.addItem(self.curve)
        self.train_points = pg.ScatterPlotItem(size=7, pxMode=True)
        self.val_points = pg.ScatterPlotItem(size=7, pxMode=True)
        for points in (self.train_points, self.val_points):
            # The points stay put while the heatmap under them changes several times a
            # second: cached, they are blitted instead of drawn again in Python.
            points.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.plot.addItem(self.train_points)
        self.plot.addItem(self.val_points)
        self.grid: np.ndarray | None = None
        self.bounds: tuple | None = None
        self._shown_bounds: tuple | None = None
        self._points_of: tuple | None = None  # (context, levels) the points were drawn for
        self.levels = (0.0, 1.0)
        self._y_span = (0.0, 1.0)  # 1-D: the output axis' range
        self.graphics.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._finish_init()

    def _theme_changed(self) -> None:
        self.message.setStyleSheet(f"color: {self.theme.foreground.name()}; font-size: 11pt")
        self.curve.setPen(pg.mkPen(self.theme.foreground, width=2.5))
        if self.ctx is not None and self.ctx.pictured:
            self._points_of = None
            self._set_points(self.ctx)

    # -- protocol ----------------------------------------------------------------------------
    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self.grid = None
        self.bounds = None
        self._shown_bounds = None
        self.image.clear()
        self.curve.setData([], [])
        if not ctx.pictured:
            n = _n_features(ctx)
            shape = tuple(ctx.sample_shape or ())
            has = (f"has inputs of shape {'×'.join(map(str, shape))}" if len(shape) > 1
                   else f"has {n} features" if n is not None else "is not 1-D or 2-D")
            self.message.setText(
                f"This view draws the network's output over data with one or two inputs; "
                f"'{ctx.dataset_name}' {has}.")
            self.graphics.hide()
            self.message.show()
            self.train_check.hide()
            self.val_check.hide()
            self.train_points.clear()
            self.val_points.clear()
            self._points_of = None
            return
        self.message.hide()
        self.graphics.show()
        self.train_check.show()
        self.val_check.show()
        self.image.setVisible(ctx.is_2d)
        self.curve.setVisible(ctx.is_1d)
        if ctx.is_1d:
            self._set_line_context(ctx)
            return
        self._set_labels("x₁", "x₂")
        if ctx.task == "regression":
            ys = [np.abs(np.asarray(y, np.float64)) for y in (ctx.y_train, ctx.y_val)
                  if y is not None and np.size(y)]
            m = max((float(y.max()) for y in ys), default=1.0) or 1.0
            self.levels = (-m, m)
            self.image.setColorMap(playground_colormap())
        elif (ctx.n_classes or 2) > 2:
            self.levels = (0.0, 1.0)
            self.image.setColorMap(class_colormap(ctx.n_classes))
        else:
            self.levels = (0.0, 1.0)
            self.image.setColorMap(playground_colormap())
        self._set_points(ctx)
        if ctx.bounds is not None:
            # The grid will cover these bounds: framing them now spares the axes a redraw
            # when the first grid arrives.
            (x0, x1), (y0, y1) = ctx.bounds
            self._show_bounds(((float(x0), float(x1)), (float(y0), float(y1))))
            return
        # Until the first grid arrives, frame the data.
        pts = [np.asarray(x) for x in (ctx.x_train, ctx.x_val) if x is not None and len(x)]
        if pts:
            allp = np.concatenate(pts)
            lo, hi = allp.min(axis=0), allp.max(axis=0)
            self._show_bounds(((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))))

    def _set_line_context(self, ctx: TrainingContext) -> None:
        """One input: x along the bottom; up the side the regression output (the data's
        targets as points) or, for classes, the probability of class 1 (the class index
        scaled to [0, 1] for more classes), the data at their class's height."""
        if ctx.task == "regression":
            self._set_labels("x", "output")
            ys = [np.asarray(y, np.float64).reshape(len(y), -1)[:, 0]
                  for y in (ctx.y_train, ctx.y_val) if y is not None and len(y)]
            v = np.concatenate(ys) if ys else np.zeros(1)
            lo, hi = float(v.min()), float(v.max())
            m = max(abs(lo), abs(hi)) or 1.0
            self.levels = (-m, m)
            pad = 0.1 * ((hi - lo) or 1.0)
            self._y_span = (lo - pad, hi + pad)
        else:
            k = max(ctx.n_classes or 2, 2)
            self._set_labels("x", "P(class 1)" if k == 2 else "predicted class (scaled)")
            self.levels = (0.0, 1.0)
            self._y_span = (-0.08, 1.08)
        self._set_points(ctx)
        if ctx.bounds is not None:
            ((x0, x1),) = ctx.bounds
            self._show_bounds(((float(x0), float(x1)), self._y_span))

    def _set_labels(self, bottom: str, left: str) -> None:
        """Axis titles, set only when they change (a new title re-renders the axis, which
        the plots avoid at the start of a run)."""
        for name, text in (("bottom", bottom), ("left", left)):
            if self.plot.getAxis(name).labelText != text:
                self.plot.setLabel(name, text)

    def point_positions(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Where samples are drawn: the plane's two inputs; on a line, (x, target) or (x,
        class scaled to [0, 1], as the curve)."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        if self.ctx is None or not self.ctx.is_1d:
            return x[:, :2]
        if self.ctx.task == "regression":
            h = np.asarray(y, np.float64).reshape(len(y), -1)[:, 0]
        else:
            k = max(self.ctx.n_classes or 2, 2)
            h = np.asarray(y, np.float64).reshape(-1) / (k - 1)
        return np.column_stack([x[:, 0], h])

    def _point_colors(self, y: np.ndarray | None) -> list[QColor]:
        ctx = self.ctx
        if y is None:
            return []
        y = np.asarray(y)
        if ctx.task == "regression":
            cmap = playground_colormap()
            lo, hi = self.levels
            t = (y.reshape(len(y), -1)[:, 0].astype(np.float64) - lo) / (hi - lo)
            t = np.round(np.clip(t, 0.0, 1.0) * 63) / 63  # 64 shades: few symbols to render
            return list(cmap.map(t, mode=pg.ColorMap.QCOLOR))
        palette = class_colors(max(ctx.n_classes or 2, 2))
        idx = y.reshape(len(y), -1)
        idx = idx.argmax(axis=1) if idx.shape[1] > 1 else idx[:, 0]
        return [palette[int(i) % len(palette)] for i in idx]

    def _same_points(self, ctx: TrainingContext) -> bool:
        """Whether the points on screen were drawn from the same data, colours and levels
        (a run of the prepared project: redrawing 500 symbols would only cost time)."""
        if self._points_of is None:
            return False
        old, levels = self._points_of
        if levels != self.levels or (old.task, old.n_classes) != (ctx.task, ctx.n_classes):
            return False
        return all(a is b or (a is not None and b is not None and np.array_equal(a, b))
                   for a, b in ((old.x_train, ctx.x_train), (old.y_train, ctx.y_train),
                                (old.x_val, ctx.x_val), (old.y_val, ctx.y_val)))

    def _set_points(self, ctx: TrainingContext) -> None:
        if self._same_points(ctx):
            return
        self._points_of = (ctx, self.levels)
        white = QColor(255, 255, 255)
        if ctx.x_train is not None and len(ctx.x_train):
            cols = self._point_colors(ctx.y_train)
            self.train_points.setData(
                pos=self.point_positions(ctx.x_train, ctx.y_train),
                brush=shared_brushes(cols), pen=pg.mkPen(white, width=1), size=7)
        else:
            self.train_points.clear()
        if ctx.x_val is not None and len(ctx.x_val):
            cols = self._point_colors(ctx.y_val)
            self.val_points.setData(
                pos=self.point_positions(ctx.x_val, ctx.y_val), brush=pg.mkBrush(white),
                pen=shared_pens(cols, 2.2), size=8)
        else:
            self.val_points.clear()

    def add_update(self, upd: TrainingUpdate) -> None:
        if upd.boundary is None:
            return
        self.grid = np.array(upd.boundary, dtype=np.float64)
        if upd.boundary_bounds is not None:
            self.bounds = tuple((float(a), float(b)) for a, b in upd.boundary_bounds)
        self._dirty = True

    def line_x(self) -> np.ndarray:
        """The x of each value of a 1-D grid (``linspace`` over the bounds)."""
        (x0, x1), *_ = self.bounds or ((0.0, 1.0),)
        return np.linspace(x0, x1, len(self.grid) if self.grid is not None else 0)

    def _redraw(self) -> None:
        if self.grid is None or self.ctx is not None and not self.ctx.pictured:
            return
        if self.grid.ndim == 1:  # one input: the output as a curve of x
            self.curve.setData(self.line_x(), self.grid)
            if self.bounds is not None:
                self._show_bounds((self.bounds[0], self._y_span))
            return
        self.image.setImage(self.grid, autoLevels=False, levels=self.levels)
        if self.bounds is not None:
            (x0, x1), (y0, y1) = self.bounds
            # The grid samples linspace(x0, x1, n): those are pixel centres, so the image
            # reaches half a pixel beyond the bounds on each side.
            rows, cols = self.grid.shape
            dx = (x1 - x0) / max(cols - 1, 1)
            dy = (y1 - y0) / max(rows - 1, 1)
            self.image.setRect(QRectF(x0 - dx / 2, y0 - dy / 2, x1 - x0 + dx, y1 - y0 + dy))
            self._show_bounds(self.bounds)

    def _show_bounds(self, bounds: tuple) -> None:
        if bounds == self._shown_bounds:
            return  # leave the user's zoom alone between updates
        self._shown_bounds = bounds
        (x0, x1), (y0, y1) = bounds
        self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    def data(self) -> dict[str, object]:
        ctx = self.ctx
        out: dict[str, object] = {"grid": None if self.grid is None else self.grid.copy(),
                                  "bounds": self.bounds}
        for key, item in (("train_points", self.train_points), ("val_points", self.val_points)):
            x, y = item.getData()
            out[key] = (np.asarray(x), np.asarray(y))
        out["message"] = self.message.text() if ctx is not None and not ctx.pictured else ""
        out["curve"] = ((self.line_x(), self.grid.copy()) if self.grid is not None
                        and self.grid.ndim == 1 else None)
        return out

    def export_csv(self, path: str | Path) -> None:
        """The grid as ``x,y,value`` rows (one per grid point); a 1-D curve as ``x,value``."""
        with atomic_text(path) as fh:
            w = csv.writer(fh)
            if self.grid is not None and self.grid.ndim == 1:
                w.writerow(["x", "value"])
                for x, v in zip(self.line_x(), self.grid):
                    w.writerow([repr(float(x)), repr(float(v))])
                return
            w.writerow(["x", "y", "value"])
            if self.grid is None or self.bounds is None:
                return
            (x0, x1), (y0, y1) = self.bounds
            rows, cols = self.grid.shape
            gx, gy = np.linspace(x0, x1, cols), np.linspace(y0, y1, rows)
            for j in range(rows):
                for i in range(cols):
                    w.writerow([repr(float(gx[i])), repr(float(gy[j])),
                                repr(float(self.grid[j, i]))])

    def _on_points_toggled(self, _on: bool) -> None:
        self.train_points.setVisible(self.train_check.isChecked())
        self.val_points.setVisible(self.val_check.isChecked())

    def point_at(self, scene_pos) -> np.ndarray | None:
        """The input under ``scene_pos``: the plane's point, or on a line its x (None:
        outside the plot's view)."""
        vb = self.plot.getViewBox()
        if self.ctx is None or not self.ctx.pictured or not vb.sceneBoundingRect().contains(
                scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        return np.array([p.x()]) if self.ctx.is_1d else np.array([p.x(), p.y()])

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        x = self.point_at(event.scenePos())
        if x is not None:
            event.accept()
            request_probe(self, x)
