"""The Step through panel: stage controls, the sample, what the stage computed, and the
chain rule of any weight.

:class:`StepPanel` is a view: it emits what the user asks for (``stage_requested``,
``samples_changed``, ``play_toggled``, ``weight_clicked``, ``apply_requested``,
``discard_requested``) and shows what the
:class:`~bplab.ui.stepthrough.controller.StepThroughController` gives it.
"""

from __future__ import annotations

import numpy as np
from bplab.ui.editor.badges import fmt_num
from bplab.ui.stepthrough.cards import (
    chain_rule_html,
    loss_html,
    stage_html,
    stage_title,
    weight_update_html,
)
from bplab.ui.stepthrough.tables import ArrayTable
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["StepPanel"]

IDLE_TEXT = ("Train > Step through… walks one training step on one sample, node by node: "
             "the forward pass, the loss, the backward pass and the update.")


def _label(text: str = "", rich: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if rich:
        label.setTextFormat(Qt.TextFormat.RichText)
    return label


class StepPanel(QWidget):
    """The step-through dock's contents (see the module)."""

    stage_requested = Signal(int)
    samples_changed = Signal(int, int)  # first index, how many
    play_toggled = Signal(bool)
    speed_changed = Signal(float)
    param_changed = Signal(str)
    weight_clicked = Signal(str, tuple)
    apply_requested = Signal()
    discard_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("StepPanel")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.idle = _label(IDLE_TEXT, rich=False)
        outer.addWidget(self.idle)
        self.body = QWidget()
        outer.addWidget(self.body, 1)
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_controls())
        self.scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        inner = QWidget()
        self.view_layout = QVBoxLayout(inner)
        self.view_layout.setContentsMargins(0, 0, 0, 0)
        self._build_stage_view()
        self._build_weight_view()
        self.view_layout.addStretch(1)
        scroll.setWidget(inner)
        layout.addWidget(scroll, 1)
        layout.addLayout(self._build_end_buttons())
        self.set_active(False)

    # -- construction ------------------------------------------------------------------------
    def _tool(self, icon, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(self.style().standardIcon(icon))
        b.setToolTip(tip)
        b.setAutoRaise(True)
        return b

    def _build_controls(self) -> QVBoxLayout:
        sp = QStyle.StandardPixmap
        col = QVBoxLayout()
        row = QHBoxLayout()
        self.back_button = self._tool(sp.SP_MediaSeekBackward, "The previous stage")
        self.forward_button = self._tool(sp.SP_MediaSeekForward, "The next stage")
        self.play_button = self._tool(sp.SP_MediaPlay, "Play the stages at the chosen speed")
        self.play_button.setCheckable(True)
        self.speed = QDoubleSpinBox()
        self.speed.setRange(0.25, 20.0)
        self.speed.setSingleStep(0.5)
        self.speed.setValue(2.0)
        self.speed.setSuffix(" /s")
        self.speed.setToolTip("How fast Play walks through the stages (stages per second)")
        for w in (self.back_button, self.play_button, self.forward_button, self.speed):
            row.addWidget(w)
        row.addStretch(1)
        row.addLayout(self._build_sample_row())
        col.addLayout(row)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Every stage of the step: forward, loss, backward, update")
        col.addWidget(self.slider)
        self.title = _label()
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        col.addWidget(self.title)
        self.sample_note = _label("", rich=False)
        col.addWidget(self.sample_note)
        self.back_button.clicked.connect(self._on_back_clicked)
        self.forward_button.clicked.connect(self._on_forward_clicked)
        self.play_button.toggled.connect(self._on_play_toggled)
        self.speed.valueChanged.connect(self.speed_changed)
        self.slider.valueChanged.connect(self.stage_requested)
        return col

    def _build_sample_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.sample = QSpinBox()
        self.sample.setToolTip("The training sample the step uses (its index); on 2-D data, "
                               "click a point in the Decision boundary")
        self.count = QSpinBox()
        self.count.setRange(1, 16)
        self.count.setPrefix("× ")
        self.count.setToolTip("How many samples, from the index on (a small batch)")
        row.addWidget(QLabel("Sample"))
        row.addWidget(self.sample)
        row.addWidget(self.count)
        self.sample.editingFinished.connect(self._on_sample_edited)
        self.count.editingFinished.connect(self._on_sample_edited)
        return row

    def _build_stage_view(self) -> None:
        lay = self.view_layout
        self.summary = _label()
        lay.addWidget(self.summary)
        self.values_label = _label("", rich=False)
        lay.addWidget(self.values_label)
        self.values = ArrayTable()
        self.values.setToolTip("The engine's values at this stage (one row per sample)")
        lay.addWidget(self.values)
        self.loss_box = QGroupBox("Loss")
        self.loss_card = _label()
        QVBoxLayout(self.loss_box).addWidget(self.loss_card)
        lay.addWidget(self.loss_box)
        self.update_box = QGroupBox("Update")
        self.update_table = QTableWidget(0, 4)
        self.update_table.setHorizontalHeaderLabels(["parameter", "‖before‖", "‖step‖",
                                                     "‖after‖"])
        self.update_table.verticalHeader().hide()
        self.update_table.setToolTip("Each parameter before the update, the optimiser's step "
                                     "and after it (norms; the selected weight below)")
        QVBoxLayout(self.update_box).addWidget(self.update_table)
        lay.addWidget(self.update_box)

    def _build_weight_view(self) -> None:
        box = QGroupBox("A weight's gradient, by the chain rule")
        col = QVBoxLayout(box)
        self.param = QComboBox()
        self.param.setToolTip("The parameter whose gradient the table shows")
        col.addWidget(self.param)
        self.matrix_label = _label("", rich=False)
        col.addWidget(self.matrix_label)
        self.matrix = ArrayTable()
        self.matrix.setToolTip("dL/d(parameter); click a cell for its chain rule")
        col.addWidget(self.matrix)
        self.chain_card = _label("Click a cell of the table: its gradient written as the "
                                 "product of the factors that make it.")
        col.addWidget(self.chain_card)
        self.weight_update = _label()
        col.addWidget(self.weight_update)
        self.view_layout.addWidget(box)
        self.param.currentTextChanged.connect(self.param_changed)
        self.matrix.cell_clicked.connect(self._on_matrix_cell_clicked)

    def _build_end_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply step")
        self.apply_button.setToolTip("Keep the update and return to normal training")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Forget the update and return to normal training")
        row.addWidget(self.apply_button)
        row.addWidget(self.discard_button)
        self.apply_button.clicked.connect(self.apply_requested)
        self.discard_button.clicked.connect(self.discard_requested)
        return row

    # -- shown by the controller -------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        self.idle.setVisible(not on)
        self.body.setVisible(on)
        if not on:
            self.set_playing(False)

    def set_stage_count(self, n: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(n - 1, 0))
        self.slider.blockSignals(False)

    def set_samples(self, first: int, count: int, available: int, note: str) -> None:
        for spin, value, hi in ((self.sample, first, max(available - 1, 0)),
                                (self.count, count, min(16, max(available, 1)))):
            spin.blockSignals(True)
            spin.setMaximum(hi)
            spin.setValue(value)
            spin.blockSignals(False)
        self.sample_note.setText(note)

    def set_params(self, names: list[str]) -> None:
        self.param.blockSignals(True)
        current = self.param.currentText()
        self.param.clear()
        self.param.addItems(names)
        if current in names:
            self.param.setCurrentText(current)
        self.param.blockSignals(False)
        self.param.setEnabled(bool(names))

    def show_stage(self, stage, count: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(stage.index)
        self.slider.blockSignals(False)
        self.back_button.setEnabled(stage.index > 0)
        self.forward_button.setEnabled(stage.index < count - 1)
        self.title.setText(stage_title(stage, count))
        self.summary.setText(stage_html(stage))
        shown = stage.output if stage.kind == "forward" else (
            stage.grad_output if stage.kind == "backward" else None)
        self.values_label.setVisible(shown is not None)
        self.values.setVisible(shown is not None)
        if shown is not None:
            what = "output" if stage.kind == "forward" else "∂L/∂output"
            self.values_label.setText(f"{stage.node} {what}, one row per sample:")
        self.values.set_array(shown, "sample")
        self.loss_box.setVisible(stage.kind == "loss")
        if stage.kind == "loss":
            self.loss_card.setText(loss_html(stage))
        self.update_box.setVisible(stage.kind == "update")
        if stage.kind == "update":
            self._fill_update_table(stage)

    def _fill_update_table(self, stage) -> None:
        t = self.update_table
        t.setRowCount(len(stage.updates))
        for r, (name, arrays) in enumerate(stage.updates.items()):
            t.setItem(r, 0, QTableWidgetItem(name))
            for c, a in enumerate(arrays, start=1):
                t.setItem(r, c, QTableWidgetItem(fmt_num(np.linalg.norm(np.ravel(a)))))
        t.resizeColumnsToContents()
        t.setFixedHeight(int(t.verticalHeader().length() + t.horizontalHeader().height() + 6))

    def show_matrix(self, param: str, grad, stage_text: str) -> None:
        self.matrix_label.setText(f"∂L/∂{param} {stage_text}")
        self.matrix.set_array(grad, "row")

    def show_chain_rule(self, rule) -> None:
        self.chain_card.setText(chain_rule_html(rule))
        self.matrix.select(rule.index)

    def show_weight_update(self, update_stage, param: str, index: tuple) -> None:
        self.weight_update.setText(weight_update_html(update_stage, param, index))

    def set_playing(self, on: bool) -> None:
        self.play_button.blockSignals(True)
        self.play_button.setChecked(on)
        self.play_button.blockSignals(False)
        icon = QStyle.StandardPixmap.SP_MediaPause if on else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))

    # -- slots -------------------------------------------------------------------------------
    def _on_back_clicked(self) -> None:
        self.stage_requested.emit(self.slider.value() - 1)

    def _on_forward_clicked(self) -> None:
        self.stage_requested.emit(self.slider.value() + 1)

    def _on_play_toggled(self, on: bool) -> None:
        self.set_playing(on)
        self.play_toggled.emit(on)

    def _on_sample_edited(self) -> None:
        self.samples_changed.emit(self.sample.value(), self.count.value())

    def _on_matrix_cell_clicked(self, index: tuple) -> None:
        self.weight_clicked.emit(self.param.currentText(), index)
