"""What every live plot shares: the update protocol, theming and export.

The main window drives each plot with three calls:

* ``set_context(ctx)`` once per (re)built trainer: create the plot items, clear history;
* ``add_update(upd)`` for every :class:`~ui.training.update.TrainingUpdate`: append to
  bounded numpy buffers, nothing else (cheap; up to ~30 calls a second);
* ``refresh()`` on the frame timer: push the buffers into the items with ``setData``, only
  if something changed since the last refresh (so calling it twice costs nothing).

``data()`` returns what is plotted (tests and CSV export read it); ``export_image(path)``
writes PNG or SVG by the suffix; ``export_csv(path)`` writes the data.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters as pg_exporters
from PySide6.QtCore import QEvent, QRectF, QSize
from PySide6.QtGui import QAction, QPainter
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QVBoxLayout, QWidget

from ui.plots.theme import Theme, plot_theme
from ui.training.update import TrainingContext, TrainingUpdate

__all__ = ["PlotAxis", "PlotPanel", "style_plot_item", "write_series_csv"]


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


def write_series_csv(path: str | Path, series: dict[str, Any]) -> None:
    """Long-format CSV ``series,x,y`` of every ``name: (x, y)`` entry in ``series``."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["series", "x", "y"])
        for name, value in series.items():
            if not (isinstance(value, tuple) and len(value) == 2):
                continue
            x, y = (np.asarray(v) for v in value)
            for xi, yi in zip(x.tolist(), y.tolist()):
                w.writerow([name, repr(xi) if isinstance(xi, float) else xi,
                            repr(yi) if isinstance(yi, float) else yi])


class PlotPanel(QWidget):
    """Base of the live plots: a row of controls over a pyqtgraph GraphicsLayoutWidget.

    Subclasses create plots in ``self.graphics`` (a :class:`pyqtgraph.GraphicsLayoutWidget`),
    register them with :meth:`_add_plot` so they get theming, decimation and the export
    menu, and implement the update protocol described in the module docstring.
    """

    minimum = QSize(320, 220)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx: TrainingContext | None = None
        self._dirty = False
        self._plots: list[pg.PlotItem] = []
        self._built = False  # set by _finish_init once the subclass made its items
        self.theme = plot_theme(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(4, 0, 4, 0)
        layout.addLayout(self.controls)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(self.theme.background)
        self.graphics.ci.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.graphics, 1)
        self.setMinimumSize(self.minimum)

    # -- protocol (subclasses override) ------------------------------------------------------
    def set_context(self, ctx: TrainingContext) -> None:
        self.ctx = ctx
        self._dirty = True

    def add_update(self, upd: TrainingUpdate) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Push buffered data into the plot items if anything changed (idempotent)."""
        if not self._dirty:
            return
        self._dirty = False
        self._redraw()

    def _redraw(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the history but keep the items (same network, fresh run)."""
        if self.ctx is not None:
            self.set_context(self.ctx)

    def data(self) -> dict[str, Any]:
        raise NotImplementedError

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
        if decimate:
            item.setDownsampling(auto=True, mode="peak")
            item.setClipToView(True)
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

    def _add_legend(self, item: pg.PlotItem, **kwargs) -> pg.LegendItem:
        legend = item.addLegend(offset=(-8, 8), labelTextSize="8pt", verSpacing=-6, **kwargs)
        style_plot_item(item, self.theme)
        return legend

    def apply_theme(self) -> None:
        """Re-read the palette and restyle (called on palette changes)."""
        self.theme = plot_theme(self)
        self.graphics.setBackground(self.theme.background)
        for item in self._plots:
            style_plot_item(item, self.theme)
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
        """Write the plot as PNG (or any Qt image format) or, for ``.svg``, as SVG."""
        path = str(path)
        target = self.graphics.ci
        if path.lower().endswith(".svg"):
            try:
                pg_exporters.SVGExporter(target).export(path)
            except ValueError:
                # pyqtgraph 0.14's SVG post-processing cannot parse the path data that
                # Qt >= 6.10 writes; Qt's own SVG generator draws the same scene.
                self._export_svg_with_qt(path)
            return
        exporter = pg_exporters.ImageExporter(target)
        exporter.parameters()["width"] = max(int(self.graphics.width()), 800)
        exporter.export(path)

    def _export_svg_with_qt(self, path: str) -> None:
        from PySide6.QtSvg import QSvgGenerator

        scene = self.graphics.scene()
        rect = self.graphics.ci.sceneBoundingRect()
        gen = QSvgGenerator()
        gen.setFileName(path)
        gen.setSize(rect.size().toSize())
        gen.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
        gen.setTitle(type(self).__name__)
        painter = QPainter(gen)
        try:
            painter.fillRect(QRectF(0, 0, rect.width(), rect.height()), self.theme.background)
            scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        finally:
            painter.end()

    def export_csv(self, path: str | Path) -> None:
        """Write the plotted data as a long-format CSV (``series,x,y``)."""
        write_series_csv(path, self.data())

    def _on_save_image_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save plot image", f"{self._file_stem()}.png", "PNG image (*.png);;SVG image (*.svg)")
        if path:
            self.export_image(path)

    def _on_save_csv_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save plot data", f"{self._file_stem()}.csv", "CSV table (*.csv)")
        if path:
            self.export_csv(path)

    def _file_stem(self) -> str:
        return type(self).__name__.removesuffix("Plot").removesuffix("View").lower() or "plot"
