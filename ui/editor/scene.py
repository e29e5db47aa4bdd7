"""The network canvas: a QGraphicsScene that mirrors a ProjectDocument.

The scene listens to the document's signals and updates its items; user gestures
(moving, linking, deleting, pasting, dropping layers) become commands on the
document's undo stack. It never edits the project itself.
"""

from __future__ import annotations

import atexit
import json

from bplab.ui import commands as cmd
from bplab.ui.editor.badges import BadgeContent
from bplab.ui.editor.items import NODE_H, NODE_W, EdgeItem, NodeItem, format_shape
from bplab.ui.models.document import ProjectDocument
from bplab.ui.models.layout import Y_SPACING
from PySide6.QtCore import QMimeData, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPainterPath, QPen
from PySide6.QtWidgets import QApplication, QGraphicsPathItem, QGraphicsScene

from bplab.graph.topology import downstream
from bplab.layers import LAYERS
from bplab.unitmaps import UnitLinks

__all__ = ["LAYER_MIME", "NODES_MIME", "NetworkScene"]

NODES_MIME = "application/x-bplab-nodes"
LAYER_MIME = "application/x-bplab-layer"
SCENE_MARGIN = 1500.0
# Default glow of highlight(): built once here, not in the argument default.
HIGHLIGHT_COLOR = QColor("#F5A623")


class NetworkScene(QGraphicsScene):
    """Items for every node and link of ``doc``; gestures become commands.

    Signals: ``message(str)`` (a sentence for the status bar, e.g. why a link was
    refused) and ``selection_changed(list[str])`` (selected node ids, network order).
    """

    message = Signal(str)
    selection_changed = Signal(list)
    node_hovered = Signal(str)  # the pointer came onto a node's card (its id)
    node_left = Signal(str)  # ... and left it

    def __init__(self, doc: ProjectDocument, parent=None):
        super().__init__(parent)
        self.doc = doc
        self._nodes: dict[str, NodeItem] = {}
        self._edges: dict[tuple[str, str], EdgeItem] = {}
        self._press_positions: dict[str, QPointF] = {}
        self._link_from: str | None = None
        self._link_line: QGraphicsPathItem | None = None
        self._link_target: NodeItem | None = None
        self._paste_count = 0
        self._last_selection: list[str] = []
        self._data_problems: dict[str, list[str]] = {}  # the network against its data set
        doc.project_replaced.connect(self._on_doc_project_replaced)
        doc.node_added.connect(self._on_doc_node_added)
        doc.node_removed.connect(self._on_doc_node_removed)
        doc.node_changed.connect(self._on_doc_node_changed)
        doc.node_renamed.connect(self._on_doc_node_renamed)
        doc.node_moved.connect(self._on_doc_node_moved)
        doc.edge_added.connect(self._on_doc_edge_added)
        doc.edge_removed.connect(self._on_doc_edge_removed)
        doc.plan_changed.connect(self._on_doc_plan_changed)
        self.selectionChanged.connect(self._on_selection_changed)
        self._rebuild()

    # -- lookups -----------------------------------------------------------------------------
    def node_item(self, node_id: str) -> NodeItem | None:
        return self._nodes.get(node_id)

    def edge_item(self, src: str, dst: str) -> EdgeItem | None:
        return self._edges.get((src, dst))

    def node_items(self) -> list[NodeItem]:
        return list(self._nodes.values())

    def edge_items(self) -> list[EdgeItem]:
        return list(self._edges.values())

    def selected_ids(self) -> list[str]:
        selected = {i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)}
        return [nid for nid in self.doc.node_ids() if nid in selected]

    def select_nodes(self, node_ids: list[str]) -> None:
        wanted = set(node_ids)
        self.blockSignals(True)
        try:
            self.clearSelection()
            for nid in node_ids:
                if nid in self._nodes:
                    self._nodes[nid].setSelected(True)
        finally:
            self.blockSignals(False)
        self._on_selection_changed()
        del wanted

    def node_at(self, pos: QPointF, exclude: str | None = None) -> NodeItem | None:
        for item in self.items(pos):
            if isinstance(item, NodeItem) and item.node_id != exclude:
                return item
        return None

    def edge_at(self, pos: QPointF) -> EdgeItem | None:
        for item in self.items(pos):
            if isinstance(item, EdgeItem):
                return item
        return None

    # -- highlighting (diagnosis panel) ----------------------------------------------------------
    def highlight(self, node_ids: list[str], color=HIGHLIGHT_COLOR) -> None:
        """Draw a glow of ``color`` around these nodes (others lose theirs)."""
        colour = QColor(color)
        wanted = set(node_ids)
        for nid, item in self._nodes.items():
            item.set_highlight(colour if nid in wanted else None)

    def clear_highlight(self) -> None:
        for item in self._nodes.values():
            if item.highlight is not None:
                item.set_highlight(None)

    # -- step-through overlay ------------------------------------------------------------------
    def show_step(self, badges: dict[str, BadgeContent],
                  wires: dict[tuple[str, str], tuple[float, str]],
                  sums: dict[str, tuple] | None = None) -> None:
        """Draw one step-through stage: a badge beside each node in ``badges``, each wire in
        ``wires`` (``(src, dst) -> (level 0..1, label)``) as a gradient flowing back, and a
        sum on the output port of each node in ``sums`` (``id -> (parts, total)``). Nodes and
        wires not named lose what an earlier stage drew."""
        sums = sums or {}
        for nid, item in self._nodes.items():
            item.set_badge(badges.get(nid))
            parts, total = sums.get(nid, ((), None))
            item.set_sum(parts, total)
        self._place_badges()
        for key, edge in self._edges.items():
            level, text = wires.get(key, (None, ""))
            if level != edge.grad_level or text != edge.grad_text:
                edge.set_gradient(level, text)

    def _place_badges(self) -> None:
        """Each badge right of its card, or left of it where that side covers another
        node's card or an earlier badge."""
        taken = [i.sceneBoundingRect() for i in self._nodes.values()]
        for item in self._nodes.values():
            if item.badge is None:
                continue
            for left in (False, True):
                item.place_badge(left)
                rect = item.badge.sceneBoundingRect()
                if not any(rect.intersects(r) for r in taken):
                    break
            else:
                item.place_badge(False)
            taken.append(item.badge.sceneBoundingRect())

    def show_unit_maps(self, maps) -> list:
        """Thumbnails of each node's units (a :class:`bplab.unitmaps.UnitMaps`) beside the
        nodes it has maps for; other nodes' thumbnails go. Returns the strips drawn."""
        strips = []
        for nid, item in self._nodes.items():
            m = maps.maps.get(nid)
            if m is None:
                item.set_unit_maps(None)
                continue
            item.set_unit_maps(m, maps.units[nid], maps.links.get(nid) or UnitLinks(),
                               maps.bounds)
            strips.append(item.unit_strip)
        return strips

    def clear_unit_maps(self) -> None:
        for item in self._nodes.values():
            item.set_unit_maps(None)

    def clear_step(self) -> None:
        """Remove every step-through badge, sum and gradient wire."""
        self.show_step({}, {}, {})

    # -- document -> items ----------------------------------------------------------------
    def _rebuild(self) -> None:
        self._cancel_link()
        for e in self._edges.values():
            self.removeItem(e)
        for n in self._nodes.values():
            self.removeItem(n)
        self._edges.clear()
        self._nodes.clear()
        for node in self.doc.nodes():
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                self._add_node_item(node["id"])
        for src, dst in self.doc.edges():
            self._on_doc_edge_added(src, dst)
        self._on_doc_plan_changed(self.doc.plan)

    def _add_node_item(self, node_id: str) -> NodeItem:
        item = NodeItem(node_id, self.doc.node(node_id))
        pos = self.doc.position(node_id) or (0.0, 0.0)
        item.setPos(QPointF(*pos))
        self.addItem(item)
        self._nodes[node_id] = item
        return item

    def _on_doc_project_replaced(self) -> None:
        self._rebuild()

    def _on_doc_node_added(self, node_id: str) -> None:
        if node_id not in self._nodes:
            self._add_node_item(node_id)

    def _on_doc_node_removed(self, node_id: str) -> None:
        item = self._nodes.pop(node_id, None)
        if item is None:
            return
        for e in list(item.edges_in) + list(item.edges_out):
            self._on_doc_edge_removed(*e.key)
        self.removeItem(item)

    def _on_doc_node_changed(self, node_id: str) -> None:
        item = self._nodes.get(node_id)
        if item is not None:
            item.set_node(self.doc.node(node_id))
            item.update_edges()

    def _on_doc_node_renamed(self, old: str, new: str) -> None:
        """The same card under a new id: re-key it and its links, keep selection and focus."""
        item = self._nodes.pop(old, None)
        if item is None:
            return
        self._nodes[new] = item
        item.set_node_id(new)
        self._edges = {e.key: e for e in self._edges.values()}  # keys read the items' ids
        self._last_selection = [new if n == old else n for n in self._last_selection]
        if old in self._press_positions:
            self._press_positions[new] = self._press_positions.pop(old)
        if self._link_from == old:
            self._link_from = new

    def _on_doc_node_moved(self, node_id: str) -> None:
        item = self._nodes.get(node_id)
        pos = self.doc.position(node_id)
        if item is not None and pos is not None and (item.pos().x(), item.pos().y()) != pos:
            item.setPos(QPointF(*pos))

    def _on_doc_edge_added(self, src: str, dst: str) -> None:
        if (src, dst) in self._edges or src not in self._nodes or dst not in self._nodes:
            return
        edge = EdgeItem(self._nodes[src], self._nodes[dst])
        shape = self.doc.plan.shapes.get(src)
        edge.set_label(format_shape(shape) if shape is not None else "")
        self.addItem(edge)
        self._edges[(src, dst)] = edge
        for other in self._nodes[dst].edges_in:
            other.update_path()

    def _on_doc_edge_removed(self, src: str, dst: str) -> None:
        edge = self._edges.pop((src, dst), None)
        if edge is None:
            return
        edge.detach()
        self.removeItem(edge)
        for other in edge.dst.edges_in:
            other.update_path()

    def set_data_problems(self, problems: dict[str, list[str]]) -> None:
        """Problems of the network against its data set (:mod:`bplab.checks`), shown on
        their nodes like the network's own until the next call replaces them."""
        self._data_problems = dict(problems)
        self._on_doc_plan_changed(self.doc.plan)

    def _on_doc_plan_changed(self, plan) -> None:
        problems: dict[str, list[str]] = {}
        for prob in plan.problems:
            if prob.node is not None:
                problems.setdefault(prob.node, []).append(prob.message)
        for nid, messages in self._data_problems.items():
            problems.setdefault(nid, []).extend(messages)
        for nid, item in self._nodes.items():
            item.set_plan_info(plan.param_counts.get(nid), problems.get(nid, []))
        for (src, _dst), edge in self._edges.items():
            shape = plan.shapes.get(src)
            edge.set_label(format_shape(shape) if shape is not None else "")
        self._update_scene_rect()

    def _update_scene_rect(self) -> None:
        rect = QRectF()
        for item in self._nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        if rect.isNull():
            rect = QRectF(-200, -200, 400, 400)
        self.setSceneRect(rect.adjusted(-SCENE_MARGIN, -SCENE_MARGIN, SCENE_MARGIN,
                                        SCENE_MARGIN))

    def _on_selection_changed(self) -> None:
        ids = self.selected_ids()
        if ids != self._last_selection:
            self._last_selection = ids
            self.selection_changed.emit(ids)

    # -- moving --------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        super().mousePressEvent(event)
        self._press_positions = {i.node_id: i.pos() for i in self.selectedItems()
                                 if isinstance(i, NodeItem)}

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        self.commit_moves()

    def commit_moves(self) -> None:
        """Turn the item moves since the last press into one MoveNodes command.

        A click whose mouse jittered by less than the drag distance is no move: the nodes
        go back where they were, and nothing is recorded (the project stays unmodified)."""
        moved = {}
        slack = self._click_slack()
        for nid, before in self._press_positions.items():
            item = self._nodes.get(nid)
            if item is None or item.pos() == before:
                continue
            delta = item.pos() - before
            if max(abs(delta.x()), abs(delta.y())) < slack:
                item.setPos(before)
                continue
            moved[nid] = (item.pos().x(), item.pos().y())
        self._press_positions = {}
        if moved:
            self.doc.push(cmd.MoveNodes(self.doc, moved))
            self._update_scene_rect()

    def _click_slack(self) -> float:
        """QApplication's drag distance (screen pixels) in scene units."""
        views = self.views()
        scale = views[0].transform().m11() if views else 1.0
        return QApplication.startDragDistance() / max(scale, 1e-6)

    # -- linking -------------------------------------------------------------------------
    def linking(self) -> bool:
        return self._link_from is not None

    def start_link(self, src: str, scene_pos: QPointF) -> None:
        """Begin dragging a link out of ``src``'s output port (a rubber line follows)."""
        self._cancel_link()
        self._link_from = src
        line = QGraphicsPathItem()
        colour = QApplication.palette().highlight().color()
        line.setPen(QPen(colour, 2.0, Qt.DashLine, Qt.RoundCap))
        line.setZValue(5)
        self.addItem(line)
        self._link_line = line
        self.update_link(scene_pos)

    def update_link(self, scene_pos: QPointF) -> None:
        if self._link_from is None or self._link_line is None:
            return
        start = self._nodes[self._link_from].output_port_pos()
        k = max(abs(scene_pos.y() - start.y()) * 0.5, 30.0)
        path = QPainterPath(start)
        path.cubicTo(start + QPointF(0, k), scene_pos - QPointF(0, k), scene_pos)
        self._link_line.setPath(path)
        target = self.node_at(scene_pos, exclude=self._link_from)
        if target is not self._link_target:
            if self._link_target is not None:
                self._link_target.link_target = False
                self._link_target.update()
            self._link_target = target
            if target is not None:
                target.link_target = True
                target.update()

    def finish_link(self, scene_pos: QPointF) -> bool:
        """Drop the dragged link at ``scene_pos``: connect to the node there if allowed."""
        src = self._link_from
        self._cancel_link()
        if src is None:
            return False
        target = self.node_at(scene_pos, exclude=src)
        if target is None:
            return False
        return self.try_connect(src, target.node_id)

    def _cancel_link(self) -> None:
        if self._link_line is not None:
            self.removeItem(self._link_line)
        if self._link_target is not None:
            self._link_target.link_target = False
            self._link_target.update()
        self._link_line = None
        self._link_target = None
        self._link_from = None

    def try_connect(self, src: str, dst: str) -> bool:
        """Link ``src -> dst`` or, if that is not allowed, say why via :attr:`message`."""
        problem = self.doc.link_problem(src, dst)
        if problem:
            self.message.emit(problem)
            return False
        self.doc.push(cmd.Connect(self.doc, src, dst))
        return True

    # -- delete, copy, paste, layout ------------------------------------------------------
    def delete_selection(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.doc.push(cmd.RemoveNodes(self.doc, ids))
            return
        edges = [e.key for e in self.selectedItems() if isinstance(e, EdgeItem)]
        if not edges:
            return
        stack = self.doc.undo_stack
        stack.beginMacro("Delete links" if len(edges) > 1 else "Delete link")
        for src, dst in edges:
            stack.push(cmd.Disconnect(self.doc, src, dst))
        stack.endMacro()

    def copy_mime(self, node_ids: list[str]) -> QMimeData:
        ids = set(node_ids)
        nodes = [n for n in self.doc.nodes() if n["id"] in ids]
        payload = {"nodes": nodes, "positions": {nid: list(self.doc.position(nid) or (0, 0))
                                                 for nid in node_ids}}
        data = json.dumps(payload).encode("utf-8")
        mime = QMimeData()
        mime.setData(NODES_MIME, data)
        mime.setText(data.decode("utf-8"))
        return mime

    def copy_selection(self) -> bool:
        ids = self.selected_ids()
        if not ids:
            return False
        QGuiApplication.clipboard().setMimeData(self.copy_mime(ids))
        _clear_clipboard_at_exit()
        self._paste_count = 0
        self.message.emit(f"Copied {len(ids)} node{'s' if len(ids) > 1 else ''}.")
        return True

    def paste(self, mime: QMimeData | None = None) -> list[str]:
        """Paste nodes from ``mime`` (default: the clipboard); returns and selects new ids."""
        mime = mime if mime is not None else QGuiApplication.clipboard().mimeData()
        if mime is None or not mime.hasFormat(NODES_MIME):
            return []
        try:
            payload = json.loads(bytes(mime.data(NODES_MIME)).decode("utf-8"))
            nodes = [n for n in payload["nodes"] if isinstance(n, dict) and "id" in n]
            positions = payload.get("positions", {})
        except (ValueError, KeyError, TypeError):
            self.message.emit("The clipboard does not hold bplab nodes.")
            return []
        if not nodes:
            return []
        self._paste_count += 1
        step = 40.0 * self._paste_count
        command = cmd.PasteNodes(self.doc, nodes, positions, (step, step))
        self.doc.push(command)
        new = list(command.new_ids.values())
        self.select_nodes(new)
        return new

    def auto_layout(self) -> None:
        self.doc.push(cmd.AutoLayout(self.doc))
        self._update_scene_rect()

    # -- adding layers -------------------------------------------------------------------
    def drop_layer(self, type_name: str, scene_pos: QPointF) -> str | None:
        """Add a ``type_name`` node dropped at ``scene_pos``: on a link it is inserted there,
        just below the output node it is appended and linked from it, elsewhere it stays
        unconnected where dropped. Returns the new id (selected) or None."""
        if type_name not in LAYERS:
            self.message.emit(f"Unknown layer type {type_name!r}.")
            return None
        node = cmd.make_node(self.doc, type_name)
        takes_input = LAYERS[type_name].arity != 0
        edge = self.edge_at(scene_pos) if takes_input and self.node_at(scene_pos) is None \
            else None
        out = self._output_item()
        if edge is not None:
            self._insert_on_edge(node, *edge.key)
        elif takes_input and out is not None and self._below(out, scene_pos):
            pos = (out.pos().x(), max(scene_pos.y(), out.pos().y() + Y_SPACING))
            node["inputs"] = [out.node_id]
            self.doc.push(cmd.AddNode(self.doc, node, pos, append=True))
        else:
            self.doc.push(cmd.AddNode(self.doc, node, (scene_pos.x(), scene_pos.y())))
        self.select_nodes([node["id"]])
        return node["id"]

    def append_layer(self, type_name: str) -> str | None:
        """Append ``type_name`` below the output (or beside everything if it takes no input)."""
        out = self._output_item()
        if out is not None and LAYERS.get(type_name) is not None and \
                LAYERS[type_name].arity != 0:
            pos = out.pos() + QPointF(0, Y_SPACING)
        else:
            rect = self.itemsBoundingRect() if self._nodes else QRectF()
            pos = QPointF(rect.right() + NODE_W, rect.top() + NODE_H) if self._nodes \
                else QPointF(0, 0)
        return self.drop_layer(type_name, pos)

    def _output_item(self) -> NodeItem | None:
        out = self.doc.output_id()
        return self._nodes.get(out) if out is not None else None

    @staticmethod
    def _below(out: NodeItem, pos: QPointF) -> bool:
        """Inside the band under the output node: as wide as a card and three rows deep."""
        dx = abs(pos.x() - out.pos().x())
        dy = pos.y() - out.pos().y()
        return dx <= NODE_W * 0.75 and NODE_H / 2 < dy <= NODE_H / 2 + 3 * Y_SPACING

    def _insert_on_edge(self, node: dict, src: str, dst: str) -> None:
        """Insert on src -> dst: the new node takes dst's place and everything fed by dst
        that sits below it moves down one row, so nothing overlaps."""
        dst_item = self._nodes[dst]
        pos = dst_item.pos()
        command = cmd.InsertNodeOnEdge(self.doc, node, src, dst, (pos.x(), pos.y()))
        shift = {}
        for nid in downstream(self.doc.nodes(), dst):
            p = self._nodes[nid].pos()
            if p.y() >= pos.y() - 1:
                shift[nid] = (p.x(), p.y() + Y_SPACING)
        command.moves = shift
        self.doc.push(command)


_clipboard_hook_installed = False


def _clear_clipboard_at_exit() -> None:
    """PySide6 crashes at interpreter exit (SIGSEGV) when the clipboard still holds a
    QMimeData made in Python; drop our own nodes from it before that, while Qt is alive."""
    global _clipboard_hook_installed
    if _clipboard_hook_installed:
        return
    _clipboard_hook_installed = True

    def clear() -> None:
        if QGuiApplication.instance() is None:
            return
        clipboard = QGuiApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and mime.hasFormat(NODES_MIME):
            clipboard.clear()

    atexit.register(clear)
