"""What the model gets wrong, one by one: the validation samples it misclassified with the
most confidence, or, for a regression, those it predicted worst (the largest errors).
Images are drawn as images, other samples as rows of numbers; a click on one probes it
(its class probabilities or output, and every layer's activations)."""

from __future__ import annotations

import csv
import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.base import PlotPanel
from bplab.ui.probe import request_probe
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QWidget

from bplab.evaluation import Miss
from bplab.io.project import atomic_text

__all__ = ["MistakeGallery"]

SHOWN = 16  # samples drawn at most
# images as the data preview draws them: ink (high values) dark on white
INK = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (0, 0, 0)])


def as_image(x: np.ndarray, picture: tuple[int, int] | None = None) -> np.ndarray | None:
    """A sample as a (rows, cols) image, or None when it is not an image: (H, W), (1, H, W)
    and (C, H, W) (channels averaged) are images, and a flat sample of pixels with its
    ``picture`` shape (:attr:`bplab.datasets.Dataset.picture_shape`)."""
    x = np.asarray(x, np.float64)
    if picture is not None and x.ndim == 1 and x.size == picture[0] * picture[1]:
        return x.reshape(picture)
    if x.ndim == 2 and min(x.shape) > 1:
        return x
    if x.ndim == 3 and min(x.shape[1:]) > 1:
        return x.mean(axis=0)
    return None


def amount(v: float) -> str:
    """A target value as people write one: 4 significant digits, and thousands
    separated rather than in e-notation up to a billion (189,700, not 1.897e+05)."""
    a = abs(v)
    if not 1e3 <= a < 1e9:
        return f"{v:.4g}"
    return f"{round(v, 3 - int(math.floor(math.log10(a)))):,.0f}"


def _score(m) -> float:
    """What ranks a mistake: a class's confidence, a regression's error."""
    return m.error if isinstance(m, Miss) else m.confidence


def row_text(x: np.ndarray, limit: int = 12, names: Sequence[str] | None = None) -> str:
    """A tabular sample as a short row of numbers, each after its feature's name (in grey)
    when ``names`` has one per value."""
    v = np.asarray(x, np.float64).reshape(-1)
    cells = [f"{a:.3g}" for a in v[:limit]]
    gap = "  "
    if names is not None and len(names) == len(v):
        cells = [f"<span style='color:gray'>{html.escape(n)}</span> {c}"
                 for n, c in zip(names, cells)]
        gap = "&nbsp;&nbsp; "  # rich text folds plain spaces into one
    return gap.join(cells) + (gap + "…" if len(v) > limit else "")


class MistakeGallery(PlotPanel):
    """The most confidently misclassified validation samples, surest first, each titled
    ``true → predicted (confidence)``. Click one to probe it."""

    probe_requested = Signal(object)  # the input (a numpy array) to run through the network
    minimum = PlotPanel.minimum

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.caption = QLabel("Misclassified validation samples, surest first (click to probe)")
        self.controls.addWidget(self.caption)
        self.controls.addStretch(1)
        self.evaluation = None
        self.picture: tuple[int, int] | None = None  # flat samples drawn as images
        self.cells: list[tuple[pg.ViewBox | pg.LabelItem, int]] = []  # (item, sample index)
        self._grid: tuple[int, int, str] | None = None  # (cells, columns, kind) laid out
        self._slots: list = []  # the cells laid out: label, or (label, view box, image)
        self._empty = None  # the label saying there is no mistake to show
        self.graphics.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._finish_init()

    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self.evaluation = None
        self.picture = ctx.picture_shape
        self.caption.setText("Misclassified validation samples, surest first (click to probe)"
                             if ctx.task == "classification" else
                             "Validation samples predicted worst, the largest error first "
                             "(click to probe)")
        # the cells are made now, before Run, not at the first evaluation while training
        # (16 image cells take ~100 ms to make: a stall the user would see mid-run); the
        # run's own context, arriving once training has started, finds them made and only
        # blanks them
        if ctx.sample_shape:
            kind = self._kind(np.zeros(ctx.sample_shape))
            grid = (SHOWN, self._columns(SHOWN, kind), kind)
            if grid == self._grid:
                self._blank()
            else:
                self._build(*grid)
        else:
            self._clear()

    def add_update(self, upd: TrainingUpdate) -> None:
        ev = getattr(upd, "evaluation", None)
        if ev is not None and (ev.confusion is not None or ev.task == "regression"):
            self.evaluation = ev
            self._dirty = True

    def _blank(self) -> None:
        """Empty every cell laid out, keeping the cells."""
        self._fill((), None)
        if self._empty is not None:
            self._empty.setVisible(False)

    def _clear(self) -> None:
        self.graphics.ci.clear()
        self.cells = []
        self._grid = None
        self._slots = []
        self._empty = None

    def _redraw(self) -> None:
        ev = self.evaluation
        if ev is None:
            return
        shown = ev.mistakes[:SHOWN]
        if ev.task == "classification":
            wrong = int((ev.y_true != ev.y_pred).sum())
            self.caption.setText(f"Step {ev.step}: {wrong} of {len(ev.y_true)} validation "
                                 "samples misclassified; the surest mistakes first (click to "
                                 "probe)")
        else:
            self.caption.setText(f"Step {ev.step}: the {len(shown)} of {len(ev.y_true)} "
                                 "validation samples predicted worst, the largest error first "
                                 "(click to probe)")
        kind = self._kind(ev.sample(shown[0].index)) if shown else (
            self._grid[2] if self._grid else "rows")
        grid = ((SHOWN, self._columns(SHOWN, kind), kind) if shown or self._grid
                else (0, 1, kind))
        if grid != self._grid:
            # Cells are made only when their columns or kind change (a cell is a layout, a
            # label and a view box, ~6 ms to make), not at every evaluation while training:
            # a redraw refills them; cells beyond the mistakes shown are left blank.
            self._build(*grid)
        self._fill(shown, ev)
        self._empty.setVisible(not shown)

    def _fill(self, shown, ev) -> None:
        """Cell n shows mistake n of ``shown`` (of evaluation ``ev``), the cells beyond it
        blank. A label's setText costs ~0.4 ms: a label already showing its text, and an
        image already blank, are left alone."""
        for n, cell in enumerate(self._slots):
            m = shown[n] if n < len(shown) else None
            title = self._title(m) if m else ""
            if not isinstance(cell, tuple):  # a tabular row: one line of the list
                names = self.ctx.feature_names if self.ctx is not None else None
                text = (f"<b>{title}</b>&nbsp;&nbsp; "
                        f"{row_text(self._raw(ev.sample(m.index)), names=names)}" if m else "")
                if cell.text != text:
                    cell.setText(text)
                continue
            label, vb, item = cell
            if label.text != title:
                label.setText(title)
            if m is not None:
                item.setImage(as_image(self._raw(ev.sample(m.index)), self.picture),
                              autoLevels=True)
                vb.autoRange(padding=0)
            elif item.image is not None:
                item.clear()
        self.cells = [(cell[1] if isinstance(cell, tuple) else cell, m.index)
                      for cell, m in zip(self._slots, shown)]

    def _raw(self, sample: np.ndarray) -> np.ndarray:
        """A sample as the data set holds it, before standardization (what people know)."""
        return self.ctx.raw(sample) if self.ctx is not None else sample

    def _title(self, m) -> str:
        """A mistake's title: true → predicted class (confidence), or, for a regression,
        true → predicted value (the error)."""
        if isinstance(m, Miss):
            return f"{amount(m.true)} → {amount(m.predicted)} (off by {amount(m.error)})"
        return f"{self._label(m.true)} → {self._label(m.predicted)} ({m.confidence:.0%})"

    def _label(self, i: int) -> str:
        return self.ctx.class_label(int(i), 14) if self.ctx is not None else str(i)

    def _kind(self, sample: np.ndarray) -> str:
        return "rows" if as_image(sample, self.picture) is None else "images"

    def _build(self, count: int, columns: int, kind: str) -> None:
        """Lay out ``count`` empty cells in ``columns`` columns (``self._slots``)."""
        self._clear()
        self._grid = (count, columns, kind)
        self._slots = []
        fg = self.theme.foreground
        for n in range(count):
            row, col = divmod(n, columns)
            if kind == "rows":
                label = self.graphics.addLabel("", row=row, col=col, color=fg, size="8pt",
                                               justify="left")
                self._slots.append(label)
                continue
            layout = self.graphics.addLayout(row=row, col=col)
            label = layout.addLabel("", row=0, col=0, color=fg, size="8pt")
            vb = layout.addViewBox(row=1, col=0, lockAspect=True, invertY=True,
                                   enableMouse=False, enableMenu=False)
            item = pg.ImageItem(axisOrder="row-major")
            item.setColorMap(INK)
            vb.addItem(item)
            self._slots.append((label, vb, item))
        empty = ("No misclassified validation sample." if self.ctx is None
                 or self.ctx.task == "classification" else "No validation sample.")
        self._empty = self.graphics.addLabel(empty, color=fg,
                                             row=(count + columns - 1) // columns, col=0,
                                             colspan=columns)
        self._empty.setVisible(False)

    def _theme_changed(self) -> None:
        self._grid = None  # the labels take the new colours when the cells are made anew
        self._dirty = self.evaluation is not None

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._dirty = self.evaluation is not None  # the columns follow the panel's shape

    def _columns(self, n: int, kind: str) -> int:
        """Columns that make image cells about square in the panel's shape; rows of numbers
        are one list (side by side, they were cut off)."""
        if kind == "rows":
            return 1
        w, h = max(self.graphics.width(), 1), max(self.graphics.height(), 1)
        return max(1, min(n, round(float(np.sqrt(max(n, 1) * w / h)))))

    def data(self) -> dict[str, object]:
        ev = self.evaluation
        if ev is None:
            return {"mistakes": [], "samples": []}
        by_index = {m.index: m for m in ev.mistakes}
        return {"mistakes": [(i, by_index[i].true, by_index[i].predicted, _score(by_index[i]))
                             for _, i in self.cells],
                "samples": [ev.sample(i) for _, i in self.cells]}

    def export_csv(self, path: str | Path) -> None:
        """``index,true,predicted,confidence`` of each sample shown (a regression's:
        ``index,true,predicted,error``)."""
        regression = self.evaluation is not None and self.evaluation.task == "regression"
        with atomic_text(path) as fh:
            w = csv.writer(fh)
            w.writerow(["index", "true", "predicted", "error" if regression else "confidence"])
            for row in self.data()["mistakes"]:
                w.writerow([row[0], row[1], row[2], repr(float(row[3]))])

    def sample_at(self, scene_pos) -> int | None:
        """The validation index of the sample drawn at ``scene_pos`` (None: none)."""
        for item, index in self.cells:
            if item.sceneBoundingRect().contains(scene_pos):
                return index
        return None

    def probe_sample(self, index: int) -> None:
        """Ask for sample ``index`` (one shown) to be probed."""
        request_probe(self, self.evaluation.sample(index))

    def _on_scene_clicked(self, event) -> None:
        index = self.sample_at(event.scenePos())
        if index is not None and self.evaluation is not None:
            event.accept()
            self.probe_sample(index)
