"""The canvas view: zoom, pan, rubber-band selection, keyboard editing, layer drops."""

from __future__ import annotations

from bplab.ui.editor.items import EdgeItem
from bplab.ui.editor.scene import LAYER_MIME, NetworkScene
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsView, QToolTip

__all__ = ["NetworkView"]

GRID = 24.0
PORT_TIP = ("Output port: drag from here to another layer to connect them "
            "(drop a palette layer on a wire to insert it)")
EMPTY_HINT = ("Drag a layer from the Layers palette onto the canvas (or double-click it there)."
              "\nDrag from the port under a node to another node to connect them."
              "\nFile > Examples opens a ready network; Help > Quick tour shows you around.")


class NetworkView(QGraphicsView):
    """Shows a :class:`NetworkScene`.

    Wheel zooms around the cursor (with or without Ctrl); the middle button, or Space
    held with the left button, pans; a left drag on empty canvas selects with a rubber
    band. Delete/Backspace removes the selection, Ctrl+C/Ctrl+V copy and paste nodes,
    Ctrl+A selects all, Ctrl+0 fits. Dropping a palette entry (mime
    ``application/x-bplab-layer``) adds that layer (see :meth:`drop_layer`).
    ``zoom_changed(float)`` reports the scale. :attr:`actions_` holds QActions for menus
    (zoom in/out/fit, auto layout, delete, copy, paste) without shortcuts bound to this
    widget, since the view handles those keys itself.
    """

    zoom_changed = Signal(float)
    MIN_ZOOM, MAX_ZOOM = 0.15, 3.0
    READABLE_ZOOM = 0.75  # node titles (10 pt) of about 10 px

    def __init__(self, scene: NetworkScene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing
                            | QPainter.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self._pan_from: QPointF | None = None
        self._space = False
        self._hover_edge: EdgeItem | None = None
        self.actions_ = self._make_actions()
        scene.doc.network_changed.connect(self.viewport().update)  # the empty-canvas hint

    @property
    def network_scene(self) -> NetworkScene:
        return self.scene()

    def _make_actions(self) -> dict[str, QAction]:
        def act(name, text, slot, key=None):
            a = QAction(text, self)
            if key is not None:
                a.setShortcut(QKeySequence(key))
                a.setShortcutContext(Qt.WidgetShortcut)  # shown in menus; the view handles keys
            a.triggered.connect(slot)
            return name, a

        return dict([
            act("zoom_in", "Zoom in", self.zoom_in, QKeySequence.ZoomIn),
            act("zoom_out", "Zoom out", self.zoom_out, QKeySequence.ZoomOut),
            act("fit", "Fit to window", self.fit_whole, "Ctrl+0"),
            act("auto_layout", "Auto layout", lambda: self.network_scene.auto_layout()),
            act("delete", "Delete", lambda: self.network_scene.delete_selection(),
                QKeySequence.Delete),
            act("copy", "Copy", lambda: self.network_scene.copy_selection(), QKeySequence.Copy),
            act("paste", "Paste", lambda: self.network_scene.paste(), QKeySequence.Paste),
        ])

    # -- zoom ------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float) -> None:
        factor = min(max(factor, self.MIN_ZOOM), self.MAX_ZOOM)
        # set, not scaled by factor / zoom: no rounding drift (0.75 stays 0.75, not 0.7499...)
        self.setTransform(QTransform.fromScale(factor, factor))
        self.zoom_changed.emit(self.zoom())

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * 1.25)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / 1.25)

    def fit_all(self, readable: bool = True) -> None:
        """Show the whole network, zoomed to fit (at most 1.25). ``readable``: never below
        :attr:`READABLE_ZOOM` (node titles of about 10 px); a network too big for that
        shows its top-left part, where it starts, and scrolls."""
        items = self.network_scene.node_items()
        if not items:
            return
        rect = QRectF()
        for item in items:
            rect = rect.united(item.shown_rect())
        for edge in self.network_scene.edge_items():
            rect = rect.united(edge.sceneBoundingRect())
        self.fitInView(rect.adjusted(-40, -40, 40, 40), Qt.KeepAspectRatio)
        low = self.READABLE_ZOOM if readable else self.MIN_ZOOM
        if self.zoom() > 1.25:
            self.set_zoom(1.25)
        elif self.zoom() < low:
            self.set_zoom(low)
            vp = self.viewport().rect()
            w, h = vp.width() / self.zoom(), vp.height() / self.zoom()
            # each way the network fits (without the margins) it is centred; the other way
            # shows where it starts
            self.centerOn(QPointF(
                rect.center().x() if rect.width() <= w else rect.left() - 20 + w / 2,
                rect.center().y() if rect.height() <= h else rect.top() - 20 + h / 2))
            self.zoom_changed.emit(self.zoom())
            return
        self.centerOn(rect.center())
        self.zoom_changed.emit(self.zoom())

    def fit_whole(self) -> None:
        """View > Fit to window (Ctrl+0): the whole network, however small."""
        self.fit_all(readable=False)

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            return super().wheelEvent(event)
        self.set_zoom(self.zoom() * (1.0015 ** delta))
        event.accept()

    # -- background ------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        pal = self.palette()
        bg = pal.window().color()
        dark = bg.lightness() < 128
        canvas = bg.darker(112) if dark else bg.lighter(104)
        painter.fillRect(rect, canvas)
        if self.zoom() < 0.35:
            return
        minor = QColor(pal.text().color())
        minor.setAlphaF(0.06 if not dark else 0.08)
        major = QColor(pal.text().color())
        major.setAlphaF(0.11 if not dark else 0.14)
        left = int(rect.left() // GRID) * GRID
        top = int(rect.top() // GRID) * GRID
        for pen_colour, step in ((minor, GRID), (major, GRID * 5)):
            painter.setPen(QPen(pen_colour, 0))
            x = int(rect.left() // step) * step
            lines = []
            while x < rect.right():
                lines.append((QPointF(x, rect.top()), QPointF(x, rect.bottom())))
                x += step
            y = int(rect.top() // step) * step
            while y < rect.bottom():
                lines.append((QPointF(rect.left(), y), QPointF(rect.right(), y)))
                y += step
            for a, b in lines:
                painter.drawLine(a, b)
        del left, top

    def empty_hint(self) -> str:
        """How to start, shown on a canvas with nothing but (at most) the Input; "" else."""
        return EMPTY_HINT if len(self.network_scene.node_items()) <= 1 else ""

    def viewportEvent(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            pos = self.mapToScene(event.pos())
            item = self.network_scene.node_at(pos)
            if item is not None and item.on_output_port(item.mapFromScene(pos)):
                QToolTip.showText(event.globalPos(), PORT_TIP, self.viewport())
                return True
        return super().viewportEvent(event)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        hint = self.empty_hint()
        if not hint:
            return
        painter.save()
        painter.resetTransform()  # viewport pixels: readable at any zoom
        box = QRectF(self.viewport().rect()).adjusted(24, 24, -24, -24)
        colour = QColor(self.palette().text().color())
        colour.setAlphaF(0.6)
        painter.setPen(colour)
        font = painter.font()
        font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.1)
        painter.setFont(font)
        painter.drawText(box, int(Qt.AlignHCenter | Qt.AlignBottom | Qt.TextWordWrap), hint)
        painter.restore()

    # -- panning ---------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MiddleButton or (event.button() == Qt.LeftButton and self._space):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(d.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().setCursor(Qt.OpenHandCursor if self._space else Qt.ArrowCursor)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    # -- keys ------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        scene = self.network_scene
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.OpenHandCursor)
        elif event.key() in (Qt.Key_Delete, Qt.Key_Backspace):
            scene.delete_selection()
        elif event.matches(QKeySequence.Copy):
            scene.copy_selection()
        elif event.matches(QKeySequence.Paste):
            scene.paste()
        elif event.matches(QKeySequence.SelectAll):
            for item in scene.node_items():
                item.setSelected(True)
        elif event.matches(QKeySequence.ZoomIn):
            self.zoom_in()
        elif event.matches(QKeySequence.ZoomOut):
            self.zoom_out()
        elif event.key() == Qt.Key_0 and event.modifiers() & Qt.ControlModifier:
            self.fit_whole()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.ArrowCursor)
            event.accept()
            return
        super().keyReleaseEvent(event)

    # -- drops from the palette ---------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if not event.mimeData().hasFormat(LAYER_MIME):
            return super().dragMoveEvent(event)
        pos = self.mapToScene(event.position().toPoint())
        scene = self.network_scene
        edge = scene.edge_at(pos) if scene.node_at(pos) is None else None
        self._set_hover_edge(edge)
        event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self._set_hover_edge(None)
        super().dragLeaveEvent(event)

    def dropEvent(self, event) -> None:
        self._set_hover_edge(None)
        mime = event.mimeData()
        if not mime.hasFormat(LAYER_MIME):
            return super().dropEvent(event)
        type_name = bytes(mime.data(LAYER_MIME)).decode("utf-8")
        self.drop_layer(type_name, self.mapToScene(event.position().toPoint()))
        event.acceptProposedAction()
        self.setFocus()

    def drop_layer(self, type_name: str, scene_pos: QPointF) -> str | None:
        """What a drop of ``type_name`` at ``scene_pos`` does (dropEvent calls this)."""
        return self.network_scene.drop_layer(type_name, scene_pos)

    def _set_hover_edge(self, edge: EdgeItem | None) -> None:
        if edge is self._hover_edge:
            return
        if self._hover_edge is not None and self._hover_edge.scene() is not None:
            self._hover_edge.set_drop_hover(False)
        self._hover_edge = edge
        if edge is not None:
            edge.set_drop_hover(True)

    def center_on_node(self, node_id: str) -> None:
        item = self.network_scene.node_item(node_id)
        if item is not None:
            self.centerOn(item)
