"""A card beside any node the pointer rests on: its live training numbers.

The card shows the node's output shape and parameter count (from the document's plan),
and from the latest training update: the weight and gradient norms and the update ratio
(:class:`bplab.diagnostics.LayerStats`), the mean, spread and dead or saturated fraction
of an activation (:class:`bplab.diagnostics.ActivationStats`), a small histogram of its
weights and one of its outputs on a training batch (the worker computes those only while a
card is shown). :class:`HoverCards` is the controller; the card computes nothing.
"""

from __future__ import annotations

import math

import numpy as np
from bplab.ui.editor.badges import fmt_num
from bplab.ui.editor.items import NODE_H, NODE_W, format_count, format_shape
from bplab.ui.training.update import TrainingUpdate
from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QApplication, QGraphicsItem

from bplab import unitmaps
from bplab.diagnostics import ActivationStats, Histogram, LayerStats

__all__ = ["CARD_W", "HoverCard", "HoverCards", "card_rows"]

CARD_W = 236.0
ROW_H = 15.0
HIST_H = 34.0
WEIGHT_COLOUR = "#3B82C4"
OUTPUT_COLOUR = "#E8772A"


def card_rows(plan, node_id: str, layer: LayerStats | None,
              act: ActivationStats | None) -> list[tuple[str, str]]:
    """The card's lines as ``(label, value)``: what the engine says about ``node_id``."""
    rows = []
    shape = plan.shapes.get(node_id) if plan is not None else None
    rows.append(("output shape", format_shape(shape) if shape is not None else "?"))
    n = plan.param_counts.get(node_id, 0) if plan is not None else 0
    rows.append(("parameters", format_count(n) if n else "none"))
    if layer is not None:
        rows.append(("weight norm", fmt_num(layer.weight_norm)))
        rows.append(("gradient norm", fmt_num(layer.grad_norm)))
        rows.append(("update ratio", fmt_num(layer.update_ratio)))
    if act is not None:
        rows.append(("mean ± std", f"{fmt_num(act.mean)} ± {fmt_num(act.std)}"))
        if act.kind == "relu":
            rows.append(("dead units", f"{100 * act.dead_fraction:.0f} %"))
        elif act.kind in ("tanh", "sigmoid"):
            rows.append(("saturated units", f"{100 * act.saturated_fraction:.0f} %"))
    return rows


class HoverCard(QGraphicsItem):
    """The card (see the module): ``rows`` of text and up to two histograms."""

    def __init__(self):
        super().__init__()
        self.node_id = ""
        self.title = ""
        self.rows: list[tuple[str, str]] = []
        self.histograms: list[tuple[str, Histogram, str]] = []  # (label, hist, colour)
        self.note = ""
        self.setZValue(6)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        # readable at any zoom: drawn in screen pixels, left of its anchor (the card's
        # top-left corner, beside the node)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)

    def set_content(self, node_id: str, title: str, rows, histograms, note: str = "") -> None:
        self.prepareGeometryChange()
        self.node_id, self.title, self.rows = node_id, title, list(rows)
        self.histograms, self.note = list(histograms), note
        self.update()

    def text(self) -> str:
        """Everything the card writes, one line each (for tests and the accessible name)."""
        lines = [self.title] + [f"{k}: {v}" for k, v in self.rows]
        lines += [label for label, _, _ in self.histograms]
        return "\n".join(lines + ([self.note] if self.note else []))

    def _height(self) -> float:
        return (24 + ROW_H * len(self.rows) + (HIST_H + 16) * len(self.histograms)
                + (ROW_H + 2 if self.note else 0) + 6)

    def boundingRect(self) -> QRectF:
        return QRectF(-CARD_W - 2, -2, CARD_W + 4, self._height() + 4)

    def paint(self, p: QPainter, option, widget=None) -> None:
        p.translate(-CARD_W, 0)
        pal = QApplication.palette()
        text = QColor(pal.text().color())
        bg = QColor(pal.base().color())
        bg.setAlphaF(0.97)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor("#888888"), 1.0))
        p.setBrush(bg)
        p.drawRoundedRect(QRectF(0, 0, CARD_W, self._height()), 7, 7)
        font = QFont(p.font())
        font.setPointSizeF(8.5)
        font.setBold(True)
        p.setFont(font)
        p.setPen(text)
        left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        p.drawText(QRectF(8, 4, CARD_W - 16, 16), left, self.title)
        font.setBold(False)
        font.setPointSizeF(8.0)
        p.setFont(font)
        y = 24.0
        for label, value in self.rows:
            p.drawText(QRectF(8, y, CARD_W - 16, ROW_H), left, label)
            p.drawText(QRectF(8, y, CARD_W - 16, ROW_H), right, value)
            y += ROW_H
        for label, hist, colour in self.histograms:
            p.setPen(text)
            p.drawText(QRectF(8, y + 1, CARD_W - 16, 14), left, label)
            self._draw_hist(p, hist, QRectF(8, y + 15, CARD_W - 16, HIST_H), colour)
            y += HIST_H + 16
        if self.note:
            p.setPen(QColor(pal.placeholderText().color()))
            p.drawText(QRectF(8, y + 1, CARD_W - 16, ROW_H), left, self.note)

    @staticmethod
    def _draw_hist(p: QPainter, hist: Histogram, rect: QRectF, colour: str) -> None:
        counts = np.asarray(hist.counts, np.float64)
        top = counts.max() if counts.size else 0.0
        p.setPen(QPen(QColor(0, 0, 0, 50), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(rect)
        if top <= 0:
            return
        w = rect.width() / len(counts)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(colour))
        for i, c in enumerate(counts):
            h = (rect.height() - 2) * math.sqrt(c / top)  # sqrt: small bins stay visible
            p.drawRect(QRectF(rect.left() + i * w + 0.5, rect.bottom() - h, max(w - 1, 1), h))
        p.setPen(QColor(0, 0, 0, 140))
        font = QFont(p.font())
        font.setPointSizeF(7.0)
        p.setFont(font)
        p.drawText(rect.adjusted(2, 0, -2, 0), Qt.AlignmentFlag.AlignLeft
                   | Qt.AlignmentFlag.AlignTop, fmt_num(hist.lo, 2))
        p.drawText(rect.adjusted(2, 0, -2, 0), Qt.AlignmentFlag.AlignRight
                   | Qt.AlignmentFlag.AlignTop, fmt_num(hist.hi, 2))


class HoverCards(QObject):
    """Shows a :class:`HoverCard` beside the node under the pointer on ``scene``, filled from
    ``session``'s updates and kept live while it is shown."""

    def __init__(self, scene, session, parent=None):
        super().__init__(parent)
        self.scene, self.session = scene, session
        self.card = HoverCard()
        self.card.setVisible(False)
        scene.addItem(self.card)
        self.layers: dict[str, LayerStats] = {}
        self.activations: dict[str, ActivationStats] = {}
        self.outputs: dict[str, Histogram] = {}
        scene.node_hovered.connect(self.show_for)
        scene.node_left.connect(self._on_scene_node_left)
        session.updated.connect(self._on_session_updated)
        session.reset_done.connect(self._on_session_reset_done)
        session.context_changed.connect(self._on_session_reset_done)  # a new trainer

    @property
    def shown(self) -> str | None:
        """The id of the node whose card is shown, or None."""
        return self.card.node_id if self.card.isVisible() else None

    def show_for(self, node_id: str) -> None:
        item = self.scene.node_item(node_id)
        if item is None:
            return
        if self.card.scene() is not self.scene:  # the scene was cleared
            self.card = HoverCard()
            self.scene.addItem(self.card)
        self.session.worker.node_histograms = True
        t = self.session.trainer
        if t is not None and self.session.worker.is_idle:  # not training: read it now
            self.outputs = unitmaps.node_histograms(t.network, t.dataset.x_train[:256])
        self.card.node_id = node_id
        self._refresh()
        self.card.setPos(self._place(item.pos()))
        self.card.setVisible(True)

    def _place(self, node: QPointF) -> QPointF:
        """Where the card goes (its top right corner): left of the node, else right of it,
        else as far right as the visible canvas allows (over the node); moved up or down to
        stay inside it. At 1280x800 a card beside a node near the edge was cut in half."""
        pos = node + QPointF(-NODE_W / 2 - 14, -NODE_H / 2)
        views = self.scene.views()
        if not views:
            return pos
        view = views[0]
        seen = view.mapToScene(view.viewport().rect()).boundingRect()
        height = self.card.boundingRect().height()
        if pos.x() - CARD_W < seen.left():  # (the card hangs left of its position)
            right = node.x() + NODE_W / 2 + 14 + CARD_W
            # right of the node if it fits there, else as far right as the view allows,
            # over the node's edge rather than out of sight
            pos.setX(min(right, max(seen.right(), seen.left() + CARD_W)))
        bottom = seen.bottom() - height
        pos.setY(max(seen.top(), min(pos.y(), bottom)) if bottom > seen.top() else seen.top())
        return pos

    def hide(self) -> None:
        self.card.setVisible(False)
        self.session.worker.node_histograms = False

    def _on_scene_node_left(self, node_id: str) -> None:
        if self.shown == node_id:
            self.hide()

    def _on_session_updated(self, update: TrainingUpdate) -> None:
        for report in (*update.samples, update.diagnostics):
            if report is None:
                continue
            for s in report.layers or ():
                self.layers[s.layer] = s
            for a in report.activations or ():
                self.activations[a.layer] = a
        if update.node_histograms is not None:
            self.outputs = update.node_histograms
        if self.shown is not None:
            self._refresh()

    def _on_session_reset_done(self, *_) -> None:
        self.layers, self.activations, self.outputs = {}, {}, {}
        if self.shown is not None:
            self._refresh()

    def _refresh(self) -> None:
        nid = self.card.node_id
        item = self.scene.node_item(nid)
        type_name = item.type_name if item is not None else "?"
        layer, act = self.layers.get(nid), self.activations.get(nid)
        rows = card_rows(self.scene.doc.plan, nid, layer, act)
        hists = []
        if layer is not None and layer.weight_hist is not None:
            hists.append(("weights", layer.weight_hist, WEIGHT_COLOUR))
        if nid in self.outputs:
            hists.append(("outputs on a training batch", self.outputs[nid], OUTPUT_COLOUR))
        note = "" if layer or act or hists else "Train to see live values here."
        self.card.set_content(nid, f"{type_name} '{nid}'", rows, hists, note)
