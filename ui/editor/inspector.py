"""The inspector: editors for the selected node's options, generated from Layer.options.

Every accepted edit becomes a SetNodeParam command, a new name a RenameNode command.
Text that does not parse or that the option refuses is not applied: the field turns
red and a hint says why.
"""

from __future__ import annotations

from typing import Any

from bplab.ui import commands as cmd
from bplab.ui.editor.icons import layer_icon
from bplab.ui.editor.items import format_count, format_shape
from bplab.ui.models.document import MISSING, ProjectDocument
from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QFont, QIntValidator, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from bplab.errors import ConfigError
from bplab.graph.ids import ID_MAX_LEN
from bplab.initializers import DESCRIPTIONS, INITIALIZERS
from bplab.layers import LAYERS
from bplab.layers.base import Option
from bplab.memory import available_memory, format_bytes, node_memory

__all__ = ["Inspector"]

INT_MAX = 2**31 - 1
_BAD = "border: 1px solid #E5484D;"
NAME_TIP = ("The node's name: plots, the diagnosis and exported weights (name.weight) use it. "
            "Letters, digits and _, unique in the network. Enter renames (Undo reverts it).")


class Inspector(QWidget):
    """Shows and edits one node: name (its id), type, option editors, output shape,
    parameter count and the engine's problems with it. Call :meth:`set_node` (or connect
    a scene's ``selection_changed`` to :meth:`show_selection`)."""

    def __init__(self, doc: ProjectDocument, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.node_id: str | None = None
        self.editors: dict[str, QWidget] = {}
        self.name_edit: QLineEdit | None = None
        self._type: str | None = None
        self._init_extra: dict[str, QWidget] = {}
        self._data_problems: dict[str, list[str]] = {}  # the network against its data

        self.icon = QLabel()
        self.title = QLabel()
        tf = QFont(self.font())
        tf.setPointSizeF(tf.pointSizeF() * 1.25)
        tf.setBold(True)
        self.title.setFont(tf)
        self.subtitle = QLabel()
        self.subtitle.setWordWrap(True)
        self.subtitle.setStyleSheet("color: palette(placeholder-text);")
        head = QHBoxLayout()
        head.setSpacing(8)
        head.addWidget(self.icon)
        titles = QVBoxLayout()
        titles.setSpacing(0)
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        head.addLayout(titles, 1)

        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setHorizontalSpacing(10)
        self.form.setVerticalSpacing(6)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignRight | Qt.AlignVCenter)

        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #E5484D;")
        self.hint.hide()
        line = QFrame()
        line.setFrameShape(QFrame.HLine)
        line.setFrameShadow(QFrame.Plain)
        line.setStyleSheet("color: palette(mid);")  # a sunken line glares on dark themes
        self.shape_label = QLabel()
        self.count_label = QLabel()
        self.memory_label = QLabel()  # the node's share of bplab.memory's estimate
        self.memory_label.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #E5484D;")
        self.problem_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        info = QFormLayout()
        info.setLabelAlignment(Qt.AlignRight)
        info.addRow("Output", self.shape_label)
        info.addRow("Parameters", self.count_label)
        info.addRow("Memory", self.memory_label)
        self.placeholder = QLabel("Select a node on the canvas to edit it.")
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: palette(placeholder-text);")

        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(8)
        body.addLayout(head)
        body.addWidget(self.form_host)
        body.addWidget(self.hint)
        body.addWidget(line)
        body.addLayout(info)
        body.addWidget(self.problem_label)
        body.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 10, 10, 10)
        outer.addWidget(self.placeholder)
        outer.addWidget(self.body)
        doc.node_changed.connect(self._on_doc_node_changed)
        doc.node_removed.connect(self._on_doc_node_removed)
        doc.node_renamed.connect(self._on_doc_node_renamed)
        doc.plan_changed.connect(self._on_doc_plan_changed)
        doc.project_replaced.connect(self._on_doc_project_replaced)
        self.set_node(None)

    # -- what is shown ------------------------------------------------------------------
    def show_selection(self, node_ids: list[str]) -> None:
        if len(node_ids) == 1:
            self.set_node(node_ids[0])
        else:
            self.set_node(None)
            if node_ids:
                self.placeholder.setText(f"{len(node_ids)} nodes selected.")

    def focus_name(self) -> bool:
        """Put the cursor in the name field, its text selected, ready to type a new name
        (Edit > Rename, F2). False when no single node is shown."""
        if self.node_id is None or self.name_edit is None:
            return False
        self.name_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.name_edit.selectAll()
        return True

    def set_node(self, node_id: str | None) -> None:
        if node_id is not None and not self.doc.has_node(node_id):
            node_id = None
        self.node_id = node_id
        self.placeholder.setText("Select a node on the canvas to edit it.")
        self.placeholder.setVisible(node_id is None)
        self.body.setVisible(node_id is not None)
        self._type = None
        if node_id is not None:
            self._rebuild()

    def _rebuild(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors.clear()
        self._init_extra.clear()
        node = self.doc.node(self.node_id)
        self._type = node["type"]
        cls = LAYERS.get(self._type)
        self.icon.setPixmap(layer_icon(self._type, 36).pixmap(36, 36))
        self.title.setText(self._type)
        self._update_subtitle()
        self.subtitle.setToolTip(cls.math if cls is not None and cls.math else "")
        self._show_hint(None)
        self.name_edit = QLineEdit(self.node_id)
        self.name_edit.setMaxLength(ID_MAX_LEN)
        self.name_edit.setToolTip(NAME_TIP)
        self.name_edit.editingFinished.connect(self._on_name_edit_editing_finished)
        name_label = QLabel("name")
        name_label.setToolTip(NAME_TIP)
        self.form.addRow(name_label, self.name_edit)
        if cls is not None:
            for opt in cls.options:
                editor = self._make_editor(opt)
                editor.setToolTip(opt.doc)
                label = QLabel(opt.name)
                label.setToolTip(opt.doc)
                self.form.addRow(label, editor)
                self.editors[opt.name] = editor
        self._load_values()
        self._update_info()

    def _update_subtitle(self) -> None:
        cls = LAYERS.get(self._type)
        self.subtitle.setText(f"'{self.node_id}'" + (f" · {cls.summary}" if cls else ""))

    def _load_values(self) -> None:
        node = self.doc.node(self.node_id)
        cls = LAYERS.get(node["type"])
        if cls is None:
            return
        for opt in cls.options:
            editor = self.editors.get(opt.name)
            if editor is None:
                continue
            value = node.get(opt.name, None if opt.required else opt.default)
            self._set_editor(opt, editor, value)

    def _update_info(self) -> None:
        plan = self.doc.plan
        shape = plan.shapes.get(self.node_id)
        self.shape_label.setText(format_shape(shape) if shape is not None else "unknown")
        count = plan.param_counts.get(self.node_id)
        self.count_label.setText(format_count(count) if count is not None else "unknown")
        self._update_memory(shape, count)
        problems = [p.message for p in plan.problems_for(self.node_id)]
        problems += self._data_problems.get(self.node_id, [])
        self.problem_label.setText("\n".join(problems))
        self.problem_label.setVisible(bool(problems))

    def _update_memory(self, shape, count) -> None:
        """Weights (with gradients, optimiser state and copies) and a batch's activations,
        from the plan alone; in red when the node alone cannot fit in memory."""
        if shape is None:
            self.memory_label.setText("unknown")
            return
        training = self.doc.project.get("training") or {}
        batch = training.get("batch_size", 32)
        batch = batch if isinstance(batch, int) and batch > 0 else 32
        node = node_memory(shape, count or 0, batch_size=batch,
                           itemsize=8 if training.get("dtype") == "float64" else 4,
                           optimizer=self.doc.project.get("optimizer"))
        limit = available_memory()
        text = (f"{format_bytes(node.total)} (weights {format_bytes(node.param_bytes)}, "
                f"activations {format_bytes(node.activation_bytes)} at batch {batch})")
        too_big = node.total > limit
        if too_big:
            text += f": more than the {format_bytes(limit)} available"
        self.memory_label.setText(text)
        self.memory_label.setStyleSheet("color: #E5484D;" if too_big else "")

    def set_data_problems(self, problems: dict[str, list[str]]) -> None:
        """Problems of the network against its data set (:mod:`bplab.checks`), listed
        under the selected node's own."""
        self._data_problems = dict(problems)
        if self.node_id is not None and self.doc.node(self.node_id) is not None:
            self._update_info()

    # -- editors -------------------------------------------------------------------------
    def _make_editor(self, opt: Option) -> QWidget:
        k = opt.kind
        if k == "int":
            w = QSpinBox()
            w.setRange(int(opt.low) if opt.low is not None else -INT_MAX,
                       int(opt.high) if opt.high is not None else INT_MAX)
            w.setKeyboardTracking(False)
            w.setAccelerated(True)
            w.valueChanged.connect(lambda v, o=opt: self._commit(o, v))
            return w
        if k == "bool":
            w = QCheckBox()
            w.toggled.connect(lambda v, o=opt: self._commit(o, bool(v)))
            return w
        if k == "choice":
            w = QComboBox()
            for c in opt.choices:
                w.addItem(str(c), c)
            w.activated.connect(lambda i, o=opt, w=w: self._commit(o, w.itemData(i)))
            return w
        if k == "pair":
            host = QWidget()
            lay = QHBoxLayout(host)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(4)
            spins = []
            for _ in range(2):
                s = QSpinBox()
                s.setRange(int(opt.low) if opt.low is not None else 0, 4096)
                s.setKeyboardTracking(False)
                s.setToolTip(opt.doc)
                spins.append(s)
            lay.addWidget(spins[0], 1)
            lay.addWidget(QLabel("×"))
            lay.addWidget(spins[1], 1)
            host.spins = spins
            for s in spins:
                s.valueChanged.connect(lambda _v, o=opt, sp=spins: self._commit(
                    o, sp[0].value() if sp[0].value() == sp[1].value()
                    else [sp[0].value(), sp[1].value()]))
            return host
        if k == "init":
            return self._make_init_editor(opt)
        # float, ints, int_or_none: validated text
        w = QLineEdit()
        if k == "ints":
            w.setPlaceholderText("e.g. 2, 28, 28")
            w.setValidator(QRegularExpressionValidator(
                QRegularExpression(r"^\s*-?\d*(\s*[,x×]\s*-?\d*)*\s*$")))
        elif k == "int_or_none":
            w.setPlaceholderText("empty: none")
            w.setValidator(QIntValidator())
        else:
            w.setPlaceholderText("a number, e.g. 0.5 or 1e-5")
        w.editingFinished.connect(lambda o=opt, w=w: self._commit_text(o, w))
        return w

    def _make_init_editor(self, opt: Option) -> QWidget:
        host = QWidget()
        lay = QVBoxLayout(host)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        combo = QComboBox()
        for i, name in enumerate(INITIALIZERS):
            combo.addItem(name, name)
            combo.setItemData(i, DESCRIPTIONS.get(name, ""), Qt.ToolTipRole)
        combo.setToolTip(opt.doc)
        lay.addWidget(combo)
        extra = QWidget()
        form = QFormLayout(extra)
        form.setContentsMargins(12, 0, 0, 0)
        form.setVerticalSpacing(4)
        lay.addWidget(extra)
        host.combo, host.extra, host.extra_form, host.fields = combo, extra, form, {}
        combo.activated.connect(lambda _i, o=opt, h=host: self._on_init_type(o, h))
        return host

    def _fill_init_fields(self, opt: Option, host, value) -> None:
        name = value if isinstance(value, str) else (value or {}).get("type", "default")
        params = {} if isinstance(value, str) or value is None else \
            {k: v for k, v in value.items() if k != "type"}
        host.combo.setCurrentIndex(max(host.combo.findData(name), 0))
        host.combo.setToolTip(f"{opt.doc}: {DESCRIPTIONS.get(name, '')}")
        while host.extra_form.rowCount():
            host.extra_form.removeRow(0)
        host.fields = {}
        for key, default in INITIALIZERS.get(name, {}).items():
            current = params.get(key, default)
            if key == "mode":
                f = QComboBox()
                f.addItems(["fan_in", "fan_out"])
                f.setCurrentText(str(current))
                f.activated.connect(lambda _i, o=opt, h=host: self._commit_init(o, h))
            elif key == "nonlinearity":
                f = QComboBox()
                f.addItems(["linear", "conv", "sigmoid", "tanh", "relu", "leaky_relu", "selu"])
                f.setCurrentText(str(current))
                f.activated.connect(lambda _i, o=opt, h=host: self._commit_init(o, h))
            else:
                f = QLineEdit(f"{current:g}" if isinstance(current, float) else str(current))
                f.editingFinished.connect(lambda o=opt, h=host: self._commit_init(o, h))
            f.setToolTip(f"{name}: {key} (default {default})")
            host.extra_form.addRow(key, f)
            host.fields[key] = (f, default)
        host.extra.setVisible(bool(host.fields))

    def _on_init_type(self, opt: Option, host) -> None:
        self._fill_init_fields(opt, host, host.combo.currentData())
        self._commit(opt, host.combo.currentData())

    def _commit_init(self, opt: Option, host) -> None:
        name = host.combo.currentData()
        params: dict[str, Any] = {}
        for key, (field, default) in host.fields.items():
            if isinstance(field, QComboBox):
                v: Any = field.currentText()
            else:
                try:
                    v = float(field.text())
                except ValueError:
                    field.setStyleSheet(_BAD)
                    self._show_hint(f"{key} must be a number, received {field.text()!r}")
                    return
                field.setStyleSheet("")
            if v != default:
                params[key] = v
        self._commit(opt, {"type": name, **params} if params else name)

    def _set_editor(self, opt: Option, w: QWidget, value) -> None:
        w.blockSignals(True)
        try:
            k = opt.kind
            if k == "int":
                w.setValue(int(value) if isinstance(value, (int, float)) else w.minimum())
            elif k == "bool":
                w.setChecked(bool(value))
            elif k == "choice":
                w.setCurrentIndex(max(w.findData(value), 0))
            elif k == "pair":
                a, b = (value, value) if not isinstance(value, (list, tuple)) else value[:2]
                for s, v in zip(w.spins, (a, b)):
                    s.blockSignals(True)
                    s.setValue(int(v) if isinstance(v, (int, float)) else 1)
                    s.blockSignals(False)
            elif k == "init":
                self._fill_init_fields(opt, w, value)
            elif k == "ints":
                w.setText(", ".join(map(str, value)) if isinstance(value, (list, tuple))
                          else "" if value is None else str(value))
                w.setStyleSheet("")
            elif k == "int_or_none":
                w.setText("" if value is None else str(value))
                w.setStyleSheet("")
            else:
                w.setText("" if value is None else f"{value:g}" if isinstance(value, float)
                          else str(value))
                w.setStyleSheet("")
        finally:
            w.blockSignals(False)

    def _commit_text(self, opt: Option, w: QLineEdit) -> None:
        text = w.text().strip()
        try:
            if opt.kind == "ints":
                parts = [p for p in text.replace("×", ",").replace("x", ",").split(",")
                         if p.strip()]
                value: Any = [int(p) for p in parts]
            elif opt.kind == "int_or_none":
                value = None if not text else int(text)
            else:
                value = float(text)
        except ValueError:
            w.setStyleSheet(_BAD)
            self._show_hint(f"{opt.name}: {text!r} is not {self._words(opt)}")
            return
        if not self._commit(opt, value):
            w.setStyleSheet(_BAD)
        else:
            w.setStyleSheet("")

    @staticmethod
    def _words(opt: Option) -> str:
        return {"ints": "a list of integers like 2, 28, 28", "int_or_none": "an integer",
                }.get(opt.kind, "a number")

    def _commit(self, opt: Option, value) -> bool:
        """Check ``value`` with the option and push a SetNodeParam if it changed."""
        if self.node_id is None:
            return False
        try:
            opt.check(f"{self._type} '{self.node_id}'", value)
        except ConfigError as exc:
            self._show_hint(str(exc))
            return False
        self._show_hint(None)
        node = self.doc.node(self.node_id)
        current = node.get(opt.name, MISSING)
        if current is MISSING and not opt.required and _same(value, opt.default):
            return True
        if current is not MISSING and _same(current, value):
            return True
        self.doc.push(cmd.SetNodeParam(self.doc, self.node_id, opt.name, value))
        return True

    def rename(self, text: str) -> bool:
        """Rename the shown node to ``text`` (stripped) as one undoable edit; a refused name
        changes nothing and the hint says why. True if the node now has that name."""
        if self.node_id is None:
            return False
        new_id = text.strip()
        problem = self.doc.rename_problem(self.node_id, new_id)
        if problem is not None:
            if self.name_edit is not None:
                self.name_edit.setStyleSheet(_BAD)
            self._show_hint(problem)
            return False
        if self.name_edit is not None:
            self.name_edit.setStyleSheet("")
        self._show_hint(None)
        if new_id != self.node_id:
            self.doc.push(cmd.RenameNode(self.doc, self.node_id, new_id))
        elif self.name_edit is not None and self.name_edit.text() != new_id:
            self.name_edit.setText(new_id)  # only spaces were added
        return True

    def _on_name_edit_editing_finished(self) -> None:
        self.rename(self.name_edit.text())

    def _show_hint(self, text: str | None) -> None:
        self.hint.setText(text or "")
        self.hint.setVisible(bool(text))

    # -- document events ---------------------------------------------------------------
    def _on_doc_node_changed(self, node_id: str) -> None:
        if node_id != self.node_id:
            return
        if self.doc.node(node_id)["type"] != self._type:
            self._rebuild()
        else:
            self._load_values()

    def _on_doc_node_removed(self, node_id: str) -> None:
        if node_id == self.node_id:
            self.set_node(None)

    def _on_doc_node_renamed(self, old: str, new: str) -> None:
        if old != self.node_id:
            return
        # Re-pointed, not rebuilt: the name field may be the widget that pushed the rename.
        self.node_id = new
        self._update_subtitle()
        if self.name_edit is not None:
            self.name_edit.blockSignals(True)
            self.name_edit.setText(new)
            self.name_edit.setStyleSheet("")
            self.name_edit.blockSignals(False)
        self._show_hint(None)

    def _on_doc_plan_changed(self, _plan) -> None:
        if self.node_id is not None and self.doc.has_node(self.node_id):
            self._update_info()

    def _on_doc_project_replaced(self) -> None:
        self.set_node(None)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b and type(a) is type(b)
