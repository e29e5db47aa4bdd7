"""Dead ReLU and saturated sigmoid/tanh fractions per activation layer over time."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from bplab.ui.plots.base import PlotPanel, set_curve
from bplab.ui.plots.gradients import samples_of
from bplab.ui.plots.history import History
from bplab.ui.plots.theme import depth_colors
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

__all__ = ["ActivationPlot"]

# The statistic that says "this layer has stopped passing gradient", by activation kind.
_WHAT = {"relu": ("dead_fraction", "dead"), "sigmoid": ("saturated_fraction", "saturated"),
         "tanh": ("saturated_fraction", "saturated")}
NO_LAYER = ("No ReLU, sigmoid or tanh layer in this network: none of its units can die or "
            "saturate.\nA recurrent layer's gates are inside it: see Through time.")


def _has_layers(ctx: TrainingContext) -> bool:
    """Whether the network has an activation layer this plot follows (kinds unknown: any)."""
    if not ctx.activation_kinds:
        return bool(ctx.activation_layers)
    return any(kind in _WHAT for kind in ctx.activation_kinds)


class ActivationPlot(PlotPanel):
    """Per activation layer: the fraction of dead (ReLU) or saturated (sigmoid/tanh) units.

    ReLU lines are solid, sigmoid/tanh lines dashed; the dotted line at 0.5 is where the
    diagnosis starts to warn. Layers of other kinds (GELU, Softmax, ...) have no such
    failure mode and are left out.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        info = QLabel("Units passing no gradient: dead ReLU (solid), saturated (dashed)")
        info.setToolTip("Fraction of units per activation layer that no longer pass gradient. "
                        "A ReLU unit is dead when it outputs 0 for every sample of the batch; "
                        "a sigmoid/tanh unit is saturated when it sits in the flat part of its "
                        "curve. Above the dotted 0.5 line the diagnosis reports the layer.")
        self.controls.addWidget(info)
        self.controls.addStretch(1)
        self.plot = self._add_plot(x_label="step", y_label="fraction of units")
        self.plot.getViewBox().enableAutoRange(y=False)
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.plot.setLimits(yMin=-0.05, yMax=1.05)
        self.legend = self._add_legend(self.plot)
        self.threshold = pg.InfiniteLine(pos=0.5, angle=0, movable=False)
        self.threshold.setToolTip("Above 0.5 the diagnosis reports the layer")
        self.plot.addItem(self.threshold)
        self.names: list[str] = []
        self.kinds: dict[str, str | None] = {}
        self.curves: list[pg.PlotDataItem] = []
        self.hist = History(1)
        self.last_step = -1
        self._finish_init()

    def _theme_changed(self) -> None:
        self.threshold.setPen(pg.mkPen(self.theme.muted, width=1, style=Qt.PenStyle.DotLine))
        for name, curve, color in zip(self.names, self.curves,
                                      depth_colors(len(self.curves), self.theme.dark)):
            dashed = self.kinds.get(name) in ("sigmoid", "tanh")
            curve.setPen(pg.mkPen(color, width=1.8,
                                  style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine))

    def _build(self, names: list[str]) -> None:
        if list(names) != self.names or not self.curves:
            # New layers: new curves; the same ones keep their items and legend (their kinds
            # are checked again at the first diagnostic sample).
            for curve in self.curves:
                self.plot.removeItem(curve)
            self.legend.clear()
            self.legend.setVisible(False)  # until _relabel names the layers
            self.names = list(names)
            self.kinds = {n: None for n in names}
            self.curves = [pg.PlotDataItem() for _ in names]
            for c in self.curves:
                self.plot.addItem(c)
        self.hist = History(1 + len(names))
        self.last_step = -1
        self._dirty = True

    def set_context(self, ctx: TrainingContext) -> None:
        super().set_context(ctx)
        self._build(list(ctx.activation_layers))
        kinds = dict(zip(ctx.activation_layers, ctx.activation_kinds))
        if len(kinds) == len(self.names) and kinds != self.kinds:
            # Labelled now (before Run when the window prepares its plots) rather than at
            # the first sample, when the legend's rebuild would compete with training.
            self.kinds = kinds
            self._relabel()

    def empty_note(self, ctx: TrainingContext) -> str | None:
        return None if _has_layers(ctx) else NO_LAYER

    def reset(self) -> None:
        self._build(self.names)

    def add_update(self, upd: TrainingUpdate) -> None:
        reports = [d for d in samples_of(upd, "activations") if d.step > self.last_step]
        if not reports:
            return
        if not self.names:
            self._build([a.layer for a in reports[0].activations])
        self.last_step = reports[-1].step
        rows = np.full((len(reports), 1 + len(self.names)), np.nan)
        index = {n: i for i, n in enumerate(self.names)}
        kinds_changed = False
        for row, d in zip(rows, reports):
            row[0] = d.step
            for a in d.activations:
                i = index.get(a.layer)
                if i is None:
                    continue
                if self.kinds.get(a.layer) != a.kind:
                    self.kinds[a.layer] = a.kind
                    kinds_changed = True
                if a.kind in _WHAT:
                    row[1 + i] = getattr(a, _WHAT[a.kind][0])
        if kinds_changed:
            self._relabel()
        self.hist.append(rows)
        self._dirty = True

    def _relabel(self) -> None:
        """Legend entries once the kinds are known: 'relu1 (dead)', 'act1 (saturated)'."""
        self.legend.clear()
        for name, curve in zip(self.names, self.curves):
            kind = self.kinds.get(name)
            if kind in _WHAT:
                self.legend.addItem(curve, f"{name} ({_WHAT[kind][1]})")
            curve.setVisible(kind in _WHAT or kind is None)
        self.legend.setVisible(bool(self.legend.items))  # no empty frame in the corner
        self._theme_changed()

    def _redraw(self) -> None:
        a = self._visible_rows(self.plot, self.hist.array)
        for i, curve in enumerate(self.curves):
            set_curve(curve, a[:, 0], a[:, 1 + i])
        if len(a):
            self._hold_range(self.plot, float(a[-1, 0]), (0.0, 1.0))

    def data(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        a = self.hist.array
        return {n: (a[:, 0].copy(), a[:, 1 + i].copy()) for i, n in enumerate(self.names)
                if self.kinds.get(n) in _WHAT}
