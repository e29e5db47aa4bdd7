"""Canvas items: a node card with ports, and a curved edge labelled with its tensor shape.

Items only draw and report gestures to their :class:`~bplab.ui.editor.scene.NetworkScene`;
they never touch the project.
"""

from __future__ import annotations

from bplab.ui.editor.badges import BADGE_W, BadgeContent, NodeBadge, SumBadge
from bplab.ui.editor.icons import category_color, is_dark, layer_icon
from bplab.ui.editor.unit_maps import UnitMapStrip
from bplab.ui.models.layout import X_SPACING, Y_SPACING
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPalette,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QApplication, QGraphicsItem, QGraphicsPathItem, QStyle

from bplab.layers import LAYERS

__all__ = [
    "NODE_H",
    "NODE_W",
    "EdgeItem",
    "NodeItem",
    "format_count",
    "format_main_params",
    "format_shape",
]

NODE_W = 184.0
NODE_H = 68.0
WRAP_TURN = 30.0  # how far a wire between bands dips under its source and rises over its target
PORT_R = 5.5
MERGE_PORT_W = 64.0
ERROR = QColor("#E5484D")
GRADIENT_WIRE = QColor("#D9541E")  # wires carrying a gradient (step-through, backward)
BADGE_GAP = 14.0  # between a card and its step-through badge


def format_shape(shape) -> str:
    return "(" + ", ".join(["batch", *map(str, shape)]) + ")"


def format_count(n: int | None) -> str:
    if n is None:
        return ""
    if n == 0:
        return "no parameters"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M params"
    if n >= 10_000:
        return f"{n / 1e3:.1f}k params"
    return f"{n:,} param" + ("s" if n != 1 else "")


def _fmt_value(kind: str, v) -> str:
    if kind == "pair":
        a, b = (v, v) if not isinstance(v, (list, tuple)) else (v[0], v[-1])
        return f"{a}x{b}"
    if kind == "ints" and isinstance(v, (list, tuple)):
        return "×".join(map(str, v))
    if kind == "init":
        return (v if isinstance(v, str)
                else str(v.get("type", v)) if isinstance(v, dict) else str(v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_main_params(node: dict) -> str:
    """``units 8`` for one main option; ``3x3 / 16`` (values only) for several."""
    cls = LAYERS.get(node.get("type"))
    if cls is None:
        return "unknown type"
    main = [o for o in cls.options if o.main]
    values = []
    for o in main:
        v = node.get(o.name, o.default)
        if o.required and o.name not in node:
            values.append((o.name, "?"))
        else:
            values.append((o.name, _fmt_value(o.kind, v)))
    if len(values) == 1:
        return f"{values[0][0]} {values[0][1]}"
    return " / ".join(v for _, v in values)


def _pal() -> QPalette:
    return QApplication.palette()


class NodeItem(QGraphicsItem):
    """A rounded card: icon, type (bold), id, main parameters, parameter count; an input
    port on top (wide for merge layers) and an output port at the bottom. The centre of
    the card is the node's position in the project."""

    def __init__(self, node_id: str, node: dict):
        super().__init__()
        self.node_id = node_id
        self.edges_in: list[EdgeItem] = []
        self.edges_out: list[EdgeItem] = []
        self.problems: list[str] = []
        self.param_count: int | None = None
        self.highlight: QColor | None = None
        self.link_target = False  # drawn while a link is dragged over it
        self.badge: NodeBadge | None = None  # step-through: what the engine computed here
        self.sum_badge: SumBadge | None = None  # step-through: gradients adding here
        self.unit_strip: UnitMapStrip | None = None  # unit maps (View > Unit maps)
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.set_node(node)

    # -- state from the document -------------------------------------------------------------
    def set_node(self, node: dict) -> None:
        self.type_name = str(node.get("type"))
        cls = LAYERS.get(self.type_name)
        self.category = cls.category if cls is not None else ""
        self.arity = cls.arity if cls is not None else 1
        self.params_text = format_main_params(node)
        self._update_tooltip()
        self.update()

    def set_node_id(self, node_id: str) -> None:
        self.node_id = node_id
        self._update_tooltip()
        self.update()

    def set_plan_info(self, param_count: int | None, problems: list[str]) -> None:
        if param_count == self.param_count and problems == self.problems:
            return
        self.param_count = param_count
        self.problems = problems
        self._update_tooltip()
        self.update()

    def set_highlight(self, colour: QColor | None) -> None:
        self.highlight = colour
        self.update()

    def set_badge(self, content: BadgeContent | None) -> None:
        """Show ``content`` beside the card (step-through), or remove the badge (None)."""
        if content is None:
            if self.badge is not None:
                self.badge.setParentItem(None)
                if self.badge.scene() is not None:
                    self.badge.scene().removeItem(self.badge)
                self.badge = None
            return
        if self.badge is None:
            self.badge = NodeBadge(self)
            self.place_badge(left=False)
        self.badge.set_content(content)

    def place_badge(self, left: bool) -> None:
        """Put the badge to the right of the card, or to its left (where the right side
        is taken by another node)."""
        if self.badge is not None:
            x = -NODE_W / 2 - BADGE_GAP - BADGE_W if left else NODE_W / 2 + BADGE_GAP
            self.badge.setPos(x, -NODE_H / 2)

    def set_unit_maps(self, maps, total: int = 0, links=None, bounds=None) -> None:
        """Show ``maps`` (units, res, res) as thumbnails right of the card, or remove them
        (None)."""
        if maps is None:
            if self.unit_strip is not None:
                self.unit_strip.setParentItem(None)
                if self.unit_strip.scene() is not None:
                    self.unit_strip.scene().removeItem(self.unit_strip)
                self.unit_strip = None
            return
        if self.unit_strip is None:
            self.unit_strip = UnitMapStrip(self.node_id, self)
            self.unit_strip.setPos(NODE_W / 2 + 12, -NODE_H / 2 + 2)
        self.unit_strip.set_maps(maps, total, links, bounds)

    def set_sum(self, parts, total=None) -> None:
        """Mark the output port with a sum of gradient ``parts`` (``(label, array)``), or
        remove the mark (empty ``parts``)."""
        if not parts:
            if self.sum_badge is not None:
                self.sum_badge.setParentItem(None)
                if self.sum_badge.scene() is not None:
                    self.sum_badge.scene().removeItem(self.sum_badge)
                self.sum_badge = None
            return
        if self.sum_badge is None:
            self.sum_badge = SumBadge(self)
            self.sum_badge.setPos(0, NODE_H / 2 + SumBadge.RADIUS + 4)
        self.sum_badge.set_parts(parts, total)

    def _update_tooltip(self) -> None:
        if self.problems:
            self.setToolTip("\n".join(self.problems))
        else:
            cls = LAYERS.get(self.type_name)
            summary = cls.summary if cls is not None else f"unknown layer type {self.type_name!r}"
            self.setToolTip(f"<b>{self.type_name}</b> '{self.node_id}'<br>{summary}")

    # -- geometry ----------------------------------------------------------------------------
    def card_rect(self) -> QRectF:
        return QRectF(-NODE_W / 2, -NODE_H / 2, NODE_W, NODE_H)

    def boundingRect(self) -> QRectF:
        return self.card_rect().adjusted(-6, -PORT_R - 6, 6, PORT_R + 6)

    def shown_rect(self) -> QRectF:
        """In scene coordinates, the card with what it shows beside it (its step-through
        badge, its unit maps): what a view must show for the node to be seen."""
        return self.sceneBoundingRect().united(self.mapRectToScene(self.childrenBoundingRect()))

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.card_rect(), 10, 10)
        path.addEllipse(QPointF(0, NODE_H / 2), PORT_R + 4, PORT_R + 4)
        return path

    def has_input_port(self) -> bool:
        return self.arity != 0

    def input_port_pos(self, slot: int = 0, slots: int = 1) -> QPointF:
        """Scene position where input ``slot`` of ``slots`` enters (spread on merge ports)."""
        dx = 0.0
        if self.arity is None and slots > 1:
            dx = (slot - (slots - 1) / 2) * min(MERGE_PORT_W / (slots - 1), 24.0)
        return self.mapToScene(QPointF(dx, -NODE_H / 2))

    def output_port_pos(self) -> QPointF:
        return self.mapToScene(QPointF(0, NODE_H / 2))

    def on_output_port(self, local: QPointF) -> bool:
        d = local - QPointF(0, NODE_H / 2)
        return d.x() ** 2 + d.y() ** 2 <= (PORT_R + 6) ** 2

    def update_edges(self) -> None:
        for e in self.edges_in:
            e.update_path()
        for e in self.edges_out:
            e.update_path()

    # -- painting ----------------------------------------------------------------------------
    def paint(self, p: QPainter, option, widget=None) -> None:
        pal = _pal()
        dark = is_dark()
        accent = category_color(self.category)
        base = pal.base().color()
        fill = QColor(base)
        tint = QColor(accent)
        # a faint wash of the category colour over the card
        fill = QColor.fromRgbF(*(b * 0.92 + t * 0.08 for b, t in zip(
            fill.getRgbF()[:3], tint.getRgbF()[:3])), 1.0)
        text = pal.text().color()
        muted = QColor(text)
        muted.setAlphaF(0.62)
        rect = self.card_rect()
        selected = bool(option.state & QStyle.State_Selected)

        if self.highlight is not None:
            glow = QColor(self.highlight)
            glow.setAlphaF(0.35)
            p.setPen(QPen(glow, 9))
            p.setBrush(Qt.NoBrush)
            p.drawRoundedRect(rect, 10, 10)
        # soft shadow
        p.setPen(Qt.NoPen)
        p.setBrush(QColor(0, 0, 0, 70 if dark else 28))
        p.drawRoundedRect(rect.translated(0, 2.5), 10, 10)

        border = QColor(accent)
        width = 1.3
        if self.problems:
            border, width = ERROR, 2.6
        elif selected:
            border, width = pal.highlight().color(), 2.6
        elif self.link_target:
            border, width = pal.highlight().color(), 2.0
        p.setBrush(fill)
        p.setPen(QPen(border, width))
        p.drawRoundedRect(rect, 10, 10)

        # category strip on the left edge, clipped to the card
        clip = QPainterPath()
        clip.addRoundedRect(rect, 10, 10)
        p.save()
        p.setClipPath(clip)
        p.fillRect(QRectF(rect.left(), rect.top(), 6, rect.height()), accent)
        p.restore()

        icon_rect = QRectF(rect.left() + 14, rect.top() + 10, 26, 26)
        layer_icon(self.type_name, 26).paint(p, icon_rect.toRect())

        x = icon_rect.right() + 9
        right = rect.right() - 10
        title_font = QFont(p.font())
        title_font.setPointSizeF(10.0)
        title_font.setBold(True)
        small = QFont(p.font())
        small.setPointSizeF(8.5)
        p.setFont(small)
        fm_small = QFontMetricsF(small)
        id_w = min(fm_small.horizontalAdvance(self.node_id) + 2, 64)
        p.setPen(muted)
        p.drawText(QRectF(right - id_w, rect.top() + 8, id_w, 18),
                   Qt.AlignRight | Qt.AlignVCenter,
                   fm_small.elidedText(self.node_id, Qt.ElideRight, id_w))
        p.setFont(title_font)
        p.setPen(text)
        fm_title = QFontMetricsF(title_font)
        title_w = right - id_w - 6 - x
        p.drawText(QRectF(x, rect.top() + 7, title_w, 20), Qt.AlignLeft | Qt.AlignVCenter,
                   fm_title.elidedText(self.type_name, Qt.ElideRight, title_w))

        body = QFont(p.font())
        body.setPointSizeF(9.0)
        body.setBold(False)
        p.setFont(body)
        fm_body = QFontMetricsF(body)
        p.setPen(text)
        if self.params_text:
            p.drawText(QRectF(x, rect.top() + 26, right - x, 16), Qt.AlignLeft | Qt.AlignVCenter,
                       fm_body.elidedText(self.params_text, Qt.ElideRight, right - x))
        p.setFont(small)
        p.setPen(ERROR if self.problems else muted)
        info = "⚠ " + self.problems[0] if self.problems else format_count(self.param_count)
        p.drawText(QRectF(rect.left() + 14, rect.bottom() - 22, right - rect.left() - 14, 16),
                   Qt.AlignLeft | Qt.AlignVCenter,
                   fm_small.elidedText(info, Qt.ElideRight, right - rect.left() - 14))

        # ports
        p.setPen(QPen(accent.darker(115) if not dark else accent.lighter(120), 1.6))
        p.setBrush(base)
        if self.has_input_port():
            if self.arity is None:
                p.drawRoundedRect(QRectF(-MERGE_PORT_W / 2 - PORT_R, rect.top() - PORT_R,
                                         MERGE_PORT_W + 2 * PORT_R, 2 * PORT_R), PORT_R, PORT_R)
            else:
                p.drawEllipse(QPointF(0, rect.top()), PORT_R, PORT_R)
        p.setBrush(accent)
        p.drawEllipse(QPointF(0, rect.bottom()), PORT_R, PORT_R)

    # -- interaction -------------------------------------------------------------------------
    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionHasChanged:
            self.update_edges()
        return super().itemChange(change, value)

    def hoverEnterEvent(self, event) -> None:
        scene = self.scene()
        if scene is not None:
            scene.node_hovered.emit(self.node_id)
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        scene = self.scene()
        if scene is not None:
            scene.node_left.emit(self.node_id)
        super().hoverLeaveEvent(event)

    def hoverMoveEvent(self, event) -> None:
        self.setCursor(Qt.CrossCursor if self.on_output_port(event.pos()) else Qt.ArrowCursor)
        super().hoverMoveEvent(event)

    def mousePressEvent(self, event) -> None:
        scene = self.scene()
        if event.button() == Qt.LeftButton and self.on_output_port(event.pos()) and scene:
            scene.start_link(self.node_id, event.scenePos())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        scene = self.scene()
        if scene is not None and scene.linking():
            scene.update_link(event.scenePos())
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        scene = self.scene()
        if scene is not None and scene.linking():
            scene.finish_link(event.scenePos())
            return
        super().mouseReleaseEvent(event)


class EdgeItem(QGraphicsPathItem):
    """A link ``src -> dst``: a curve from the output port down to an input port, labelled
    with the tensor shape flowing through it (``(batch, 8)``)."""

    def __init__(self, src: NodeItem, dst: NodeItem):
        super().__init__()
        self.src, self.dst = src, dst
        self.label = ""
        self.drop_hover = False
        self.grad_level: float | None = None  # step-through: 0..1, the gradient's size
        self.grad_text = ""  # step-through: shown instead of the shape label
        self.setFlags(QGraphicsItem.ItemIsSelectable)
        self.setZValue(0)
        self._label_rect = QRectF()
        src.edges_out.append(self)
        dst.edges_in.append(self)
        self.update_path()

    @property
    def key(self) -> tuple[str, str]:
        return self.src.node_id, self.dst.node_id

    def detach(self) -> None:
        if self in self.src.edges_out:
            self.src.edges_out.remove(self)
            for e in self.src.edges_out:  # one of them may be the main wire now
                e.place_label()
        if self in self.dst.edges_in:
            self.dst.edges_in.remove(self)

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.label = text
            self.update_path()

    def set_gradient(self, level: float | None, text: str = "") -> None:
        """Draw the gradient flowing back along this wire (step-through): ``level`` in [0, 1]
        sets width and colour, ``text`` replaces the shape label; None: the plain wire."""
        self.grad_level = None if level is None else min(max(float(level), 0.0), 1.0)
        self.grad_text = text if level is not None else ""
        self.update_path()
        self.update()

    def shown_label(self) -> str:
        """The label on the wire: the gradient's text during backward, else the shape. The
        wires out of one node carry the same tensor: its shape is shown once, on the main
        wire (:meth:`main_wire`), and the others (skip connections) go unlabelled rather
        than stack copies of it beside the node."""
        if self.grad_text:
            return self.grad_text
        main = self.main_wire()
        return "" if main is not self and main.label == self.label else self.label

    def main_wire(self) -> EdgeItem:
        """The wire out of this one's source that goes most directly down to its target."""
        def detour(e: EdgeItem) -> tuple[bool, float]:
            start, end = e.src.output_port_pos(), e.dst.input_port_pos()
            return end.y() < start.y(), abs(end.x() - start.x())

        outs = self.src.edges_out
        return min(outs, key=detour) if len(outs) > 1 else self

    def set_drop_hover(self, on: bool) -> None:
        if on != self.drop_hover:
            self.drop_hover = on
            self.update()

    def update_path(self) -> None:
        start = self.src.output_port_pos()
        ins = self.dst.edges_in
        slot = ins.index(self) if self in ins else 0
        end = self.dst.input_port_pos(slot, len(ins))
        dx, dy = end.x() - start.x(), end.y() - start.y()
        path = QPainterPath(start)
        if dy > 1.5 * Y_SPACING and abs(dx) < NODE_W * 0.75:
            # a long vertical link (a skip connection) arcs beside the nodes it passes
            # leave and enter vertically, run down beside the cards in the gap between rows
            side = start.x() + (NODE_W / 2 + 30) * (1 if dx >= 0 else -1)
            gap = (Y_SPACING - NODE_H) * 0.8
            path.cubicTo(start + QPointF(0, gap * 0.5), QPointF(side, start.y() + gap * 0.2),
                         QPointF(side, start.y() + gap))
            path.lineTo(QPointF(side, end.y() - gap))
            path.cubicTo(QPointF(side, end.y() - gap * 0.2), end - QPointF(0, gap * 0.5), end)
        elif dy >= 0:
            k = max(dy * 0.5, 30.0)
            path.cubicTo(start + QPointF(0, k), end - QPointF(0, k), end)
        elif self._between_bands(dx, dy):
            # from the foot of one band to the head of the next (a network wrapped into
            # side-by-side bands): turn under the source, climb in the gap beside the
            # target's column, turn over the target and come down into its port
            climb = end.x() - X_SPACING / 2 * (1 if dx > 0 else -1)
            turn = WRAP_TURN
            path.cubicTo(start + QPointF(0, turn), QPointF(climb, start.y() + turn),
                         QPointF(climb, start.y()))
            path.lineTo(QPointF(climb, end.y()))
            path.cubicTo(QPointF(climb, end.y() - turn), end - QPointF(0, turn), end)
        else:
            k = max(-dy * 0.3, 60.0)
            side = NODE_W * 0.7 * (1 if dx >= 0 else -1)
            path.cubicTo(start + QPointF(side, k), end + QPointF(side, -k), end)
        self.prepareGeometryChange()
        self.setPath(path)
        for e in self.src.edges_out:  # which of them is the main wire may have changed
            if e is not self:
                e.place_label()
        self.place_label()

    def place_label(self) -> None:
        """Put the label's pill on the wire (or take it off: a wire beside the main one)."""
        path = self.path()
        self.prepareGeometryChange()
        text = self.shown_label()
        if text:
            start, end = path.pointAtPercent(0.0), path.pointAtPercent(1.0)
            font = self._font()
            fm = QFontMetricsF(font)
            w, h = fm.horizontalAdvance(text) + 12, fm.height() + 4
            if self._between_bands(end.x() - start.x(), end.y() - start.y()):
                # the gap it climbs in is narrower than a label: the label sits where the
                # wire leaves its source, under the foot of the band
                mid = start + QPointF(0, h / 2 + 4)
            else:
                mid = path.pointAtPercent(0.5)
            self._label_rect = QRectF(mid.x() - w / 2, mid.y() - h / 2, w, h)
        else:
            self._label_rect = QRectF()

    @staticmethod
    def _between_bands(dx: float, dy: float) -> bool:
        """A wire up to a target a column or more aside: the next band of a wrapped
        network (or a skip connection to a node of the row)."""
        return dy < 0 and abs(dx) >= X_SPACING * 0.9

    @staticmethod
    def _font() -> QFont:
        f = QFont()
        f.setPointSizeF(8.0)
        return f

    def label_rect(self) -> QRectF:
        return QRectF(self._label_rect)

    def boundingRect(self) -> QRectF:
        # the curve itself, not its control points (QGraphicsPathItem's rect): a wire between
        # bands would otherwise reach a third further out than it is drawn, and a view
        # fitting the network would zoom out for nothing
        return self.path().boundingRect().adjusted(-8, -8, 8, 8).united(self._label_rect)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(14)
        return stroker.createStroke(self.path())

    def paint(self, p: QPainter, option, widget=None) -> None:
        pal = _pal()
        colour = QColor(pal.text().color())
        colour.setAlphaF(0.55)
        width = 1.8
        if self.grad_level is not None:
            colour = QColor(GRADIENT_WIRE)
            colour.setAlphaF(0.35 + 0.65 * self.grad_level)
            width = 1.5 + 8.5 * self.grad_level
        if self.isSelected() or self.drop_hover:
            colour, width = pal.highlight().color(), 3.0
        p.setRenderHint(QPainter.Antialiasing)
        p.setPen(QPen(colour, width, Qt.SolidLine, Qt.RoundCap))
        p.setBrush(Qt.NoBrush)
        p.drawPath(self.path())
        # arrow head at the input port
        end = self.path().pointAtPercent(1.0)
        before = self.path().pointAtPercent(0.97)
        d = end - before
        n = (d.x() ** 2 + d.y() ** 2) ** 0.5 or 1.0
        ux, uy = d.x() / n, d.y() / n
        tip = end - QPointF(ux * PORT_R, uy * PORT_R)
        left = tip - QPointF(ux * 8 - uy * 4.5, uy * 8 + ux * 4.5)
        right = tip - QPointF(ux * 8 + uy * 4.5, uy * 8 - ux * 4.5)
        p.setPen(Qt.NoPen)
        p.setBrush(colour)
        p.drawPolygon(QPolygonF([tip, left, right]))
        if not self._label_rect.isEmpty():  # place_label decided whether it is shown
            bg = QColor(pal.window().color())
            bg.setAlphaF(0.92)
            p.setBrush(bg)
            outline = QColor(pal.text().color())
            outline.setAlphaF(0.18)
            p.setPen(QPen(outline, 1))
            p.drawRoundedRect(self._label_rect, self._label_rect.height() / 2,
                              self._label_rect.height() / 2)
            p.setFont(self._font())
            txt = QColor(pal.text().color())
            txt.setAlphaF(0.8)
            if self.grad_text:
                txt = QColor(GRADIENT_WIRE).darker(115)
            p.setPen(txt)
            p.drawText(self._label_rect, Qt.AlignCenter, self.shown_label())
