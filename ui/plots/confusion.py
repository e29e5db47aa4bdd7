"""What the model gets wrong, as a whole: the validation set's confusion matrix
(classification), or its predicted-against-true scatter (regression)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.base import PlotPanel
from bplab.ui.probe import request_probe
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QLabel, QWidget

from bplab.io.project import atomic_text

__all__ = ["ConfusionView"]

MAX_CELL_TEXT = 12  # classes up to which each cell shows its count
TICK_CHARS = 10  # a class name on the axes is cut to this many characters
ON_DARK, ON_LIGHT = (255, 255, 255), (20, 20, 20)  # count colours (CET-L12: dark at its top)
PICK_PX = 8  # a click this near a point of the scatter picks its sample


def _percent(count: int, share: float, row: int) -> str:
    """A cell as a share of its row, in percent without the sign (the check box says it;
    "100%" did not fit a cell of ten classes): a dash for a row without samples, "<1" for
    a share that rounds to 0 but is not."""
    if not row:
        return "–"
    return "<1" if 0 < count and share < 0.005 else f"{100 * share:.0f}"


class ConfusionView(PlotPanel):
    """Rows: the true class; columns: the predicted class; each cell counts validation
    samples (or, with "% of each class", gives its share of its row), shaded by that share
    (the diagonal is what the model gets right).
    For regression, each validation sample is a point (true, predicted) beside the line
    y = x; clicking a point probes that validation sample (:meth:`sample_at`). Updated at
    epoch ends (see ``TrainingWorker.evaluation_share``) and at the end of every run."""

    probe_requested = Signal(object)  # the input of the validation sample clicked

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.caption = QLabel("Validation set: true class (rows) against prediction (columns)")
        self.percent_check = QCheckBox("% of each class")
        self.percent_check.setToolTip(
            "Write each cell as a share of its row: how often the samples of that true class "
            "get each prediction (the diagonal is each class's recall). Useful when some "
            "classes have many more samples than others.")
        self.percent_check.toggled.connect(self._on_percent_toggled)
        self.controls.addWidget(self.caption)
        self.controls.addStretch(1)
        self.controls.addWidget(self.percent_check)
        self.plot = self._add_plot(x_label="predicted", y_label="true", decimate=False)
        self.plot.showGrid(x=False, y=False)
        self.plot.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("CET-L12"))
        self.plot.addItem(self.image)
        self.texts: list[pg.TextItem] = []
        self._axes_k: object = -1  # (class count, tick texts) the axes are set for
        self.scatter = pg.ScatterPlotItem(size=5, pxMode=True)
        self.ideal = pg.PlotDataItem()
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.ideal)
        self.evaluation = None  # the latest bplab.evaluation.Evaluation
        self.x_val: np.ndarray | None = None  # the validation inputs, to probe a point
        self.graphics.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._finish_init()

    def _theme_changed(self) -> None:
        self.scatter.setBrush(pg.mkBrush(self.theme.faded(self.theme.val, 160)))
        self.scatter.setPen(None)
        self.ideal.setPen(pg.mkPen(self.theme.muted, width=1))

    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self.evaluation = None
        self.x_val = ctx.val_inputs
        self.image.clear()
        self.scatter.clear()
        self.ideal.clear()
        regression = ctx.task == "regression"
        # The cells' texts and the axes for this many classes are made now, before Run (a
        # hundred text items took ~100 ms on the GUI thread when the first matrix arrived
        # mid-run): the first matrix then only sets their text.
        k = 0 if regression else int(ctx.n_classes or 0)
        self._make_texts(k)
        self._blank_texts()
        if k:
            self._set_axes(k)
        elif self._axes_k != -1:  # predicted against true: the axes' own ticks again
            self._axes_k = -1
            self.plot.getAxis("bottom").setTicks(None)
            self.plot.getAxis("left").setTicks(None)
            self.plot.enableAutoRange()
        self.percent_check.setVisible(not regression)
        self.plot.invertY(not regression)
        self.plot.setAspectLocked(not regression)
        self.plot.setLabel("bottom", "predicted")
        self.plot.setLabel("left", "true")
        self.caption.setText(
            "Validation set: predicted against true value (the line is a perfect fit)"
            if regression else
            "Validation set: true class (rows) against prediction (columns)")

    def add_update(self, upd: TrainingUpdate) -> None:
        ev = getattr(upd, "evaluation", None)
        if ev is not None:
            self.evaluation = ev
            self._dirty = True

    def _make_texts(self, k: int) -> None:
        """One text item per cell for ``k`` classes (none above MAX_CELL_TEXT), kept while
        the class count stays the same."""
        if len(self.texts) == (k * k if k <= MAX_CELL_TEXT else 0):
            return
        for t in self.texts:
            self.plot.removeItem(t)
        self.texts = []
        for i in range(k if k <= MAX_CELL_TEXT else 0):
            for j in range(k):
                t = pg.TextItem("", anchor=(0.5, 0.5), color=ON_LIGHT)
                t.setPos(j, i)
                self.plot.addItem(t)
                self.texts.append(t)

    def _blank_texts(self) -> None:
        for t in self.texts:
            if t.textItem.toPlainText():
                t.setText("")

    def _set_axes(self, k: int) -> None:
        """Ticks at the classes (their names, where the data set has them) and the range
        of a k x k matrix (set again only when they change: new ticks re-render the
        axes)."""
        ctx = self.ctx
        labels = [ctx.class_label(i, TICK_CHARS) if ctx else str(i) for i in range(k)]
        if (k, labels) == self._axes_k:
            return
        self._axes_k = (k, labels)
        ticks = [list(enumerate(labels))]
        self.plot.getAxis("bottom").setTicks(ticks)
        self.plot.getAxis("left").setTicks(ticks)
        self.plot.setRange(xRange=(-0.5, k - 0.5), yRange=(-0.5, k - 0.5), padding=0.02)

    def _redraw(self) -> None:
        ev = self.evaluation
        if ev is None:
            return
        if ev.confusion is None:
            self._draw_pairs(ev)
            return
        m = ev.confusion
        k = len(m)
        rows = m.sum(axis=1, keepdims=True)
        share = np.divide(m, rows, out=np.zeros(m.shape), where=rows > 0)
        self.image.setImage(share, autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(QRectF(-0.5, -0.5, k, k))
        self._make_texts(k)  # made at set_context already, unless the classes differ
        # a label costs ~0.2 ms to set and as much again to lay out: only changed ones are set
        percent = self.percent_check.isChecked()
        for n, t in enumerate(self.texts):
            i, j = divmod(n, k)
            text = _percent(m[i, j], share[i, j], rows[i, 0]) if percent else str(int(m[i, j]))
            color = ON_DARK if share[i, j] > 0.55 else ON_LIGHT
            if t.color.getRgb()[:3] != color:
                t.setColor(color)
            if t.textItem.toPlainText() != text:
                t.setText(text)
        self._set_axes(k)
        acc = np.trace(m) / max(int(m.sum()), 1)
        # short: the % check box shares the line
        self.caption.setText(f"Step {ev.step}: true class (rows) against prediction "
                             f"(columns), {acc:.1%} right")
        self.caption.setToolTip(f"The validation set at step {ev.step}: each cell "
                                + ("gives the share of its row (its true class) predicted as "
                                   "its column, in %" if percent else
                                   "counts the samples of its row's class predicted as its "
                                   "column") + f"; {acc:.1%} of the samples are right")

    def _on_percent_toggled(self, _on: bool) -> None:
        self._dirty = True
        self.refresh()

    def _draw_pairs(self, ev) -> None:
        self.scatter.setData(ev.y_pred, ev.y_true)
        if len(ev.y_true):
            lo = float(min(ev.y_true.min(), ev.y_pred.min()))
            hi = float(max(ev.y_true.max(), ev.y_pred.max()))
            self.ideal.setData([lo, hi], [lo, hi])

    def data(self) -> dict[str, object]:
        ev = self.evaluation
        if ev is None:
            return {"confusion": None, "pairs": None, "step": None}
        pairs = None if ev.confusion is not None else (ev.y_true.copy(), ev.y_pred.copy())
        shown = None if ev.confusion is None else self.image.image
        return {"confusion": None if ev.confusion is None else ev.confusion.copy(),
                "shown": None if shown is None else np.array(shown),
                "cells": [(t.pos().x(), t.pos().y(), t.textItem.toPlainText())
                          for t in self.texts],
                "pairs": pairs, "step": ev.step}

    def sample_at(self, scene_pos) -> int | None:
        """The validation sample whose point of the predicted-against-true scatter is
        within :data:`PICK_PX` pixels of ``scene_pos`` (the nearest); None elsewhere, and
        on a confusion matrix."""
        ev, vb = self.evaluation, self.plot.getViewBox()
        if (ev is None or ev.confusion is not None or not len(ev.y_true)
                or not vb.sceneBoundingRect().contains(scene_pos)):
            return None
        p = vb.mapSceneToView(scene_pos)
        pw, ph = vb.viewPixelSize()
        d = np.hypot((ev.y_pred - p.x()) / pw, (ev.y_true - p.y()) / ph)
        i = int(np.argmin(d))
        return i if d[i] <= PICK_PX else None

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        i = self.sample_at(event.scenePos())
        if i is not None and self.x_val is not None and i < len(self.x_val):
            event.accept()
            request_probe(self, self.x_val[i])

    def export_csv(self, path: str | Path) -> None:
        """Classification: ``true,predicted,count`` per cell; regression: ``true,predicted``
        per validation sample."""
        ev = self.evaluation
        with atomic_text(path) as fh:
            w = csv.writer(fh)
            if ev is not None and ev.confusion is None:
                w.writerow(["true", "predicted"])
                for t, p in zip(ev.y_true.tolist(), ev.y_pred.tolist()):
                    w.writerow([repr(t), repr(p)])
                return
            w.writerow(["true", "predicted", "count"])
            if ev is None:
                return
            for (i, j), c in np.ndenumerate(ev.confusion):
                w.writerow([i, j, int(c)])
