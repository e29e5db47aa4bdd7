"""What to do after a run diverged: resume at a lower learning rate, or start afresh.

The engine stops when the loss or a gradient is not finite or the loss grew over 1000x,
names the layer that blew up first (the window highlights it on the canvas) and restores
the last healthy weights, from before the blow-up began. It also probes a learning rate at
which training from them stays finite: the dialog offers it (a tenth of the current rate
when the engine found none), editable in place, to resume with or to train afresh at.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

__all__ = ["DivergenceDialog", "parse_lr"]

REMEDY = (
    "The weights were restored to their last healthy state, from before the blow-up began. "
    "Resume at the lower learning rate below (one at which training from them stays finite, "
    "when the engine found one), or reset the weights and train from a fresh start at it. "
    "(Gradient clipping, in the Training panel, also helps.)"
)


def parse_lr(text: str) -> float | None:
    """The learning rate typed in ``text`` (``1e-3``, ``0.001``), or None unless finite and > 0."""
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


class DivergenceDialog(QDialog):
    """Window-modal, non-blocking: emits ``resume_requested(lr)`` or ``reset_requested(lr)``.

    ``text()`` and ``informativeText()`` read like a QMessageBox's, for the window's
    ``last_error`` and for tests.
    """

    resume_requested = Signal(float)
    reset_requested = Signal(float)

    def __init__(self, message: str, lr: float | None, parent: QWidget | None = None, *,
                 suggested: float | None = None):
        super().__init__(parent)
        self.setWindowTitle("Training diverged")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_MessageBoxIconSize)
        icon.setPixmap(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(size, size))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self._text = QLabel(message)
        self._text.setWordWrap(True)
        font = self._text.font()
        font.setBold(True)
        self._text.setFont(font)
        self._info = QLabel(REMEDY)
        self._info.setWordWrap(True)

        start = suggested if suggested else (lr / 10 if lr else 0.001)
        self.lr_edit = QLineEdit(f"{start:.3g}")
        self.lr_edit.setToolTip("The learning rate to use from now on (for example 1e-3)")
        self.lr_edit.setMaximumWidth(120)
        self.lr_edit.textChanged.connect(self._on_lr_edit_text_changed)
        was = QLabel(f"(was {lr:g})" if lr else "")
        lr_row = QHBoxLayout()
        lr_row.addWidget(QLabel("Learning rate:"))
        lr_row.addWidget(self.lr_edit)
        lr_row.addWidget(was)
        lr_row.addStretch(1)

        buttons = QDialogButtonBox()
        self.resume_button = QPushButton("Lower rate and &resume")
        self.resume_button.setToolTip("Continue from the last healthy weights at the rate "
                                      "above")
        self.reset_button = QPushButton("Re&set weights and run")
        self.reset_button.setToolTip("Re-initialise the weights, clear the plots and train "
                                     "from the start at the rate above")
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Stay paused; change the settings yourself")
        buttons.addButton(self.resume_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.reset_button, QDialogButtonBox.ButtonRole.ResetRole)
        buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.resume_button.setDefault(True)
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self.reset_button.clicked.connect(self._on_reset_button_clicked)
        self.close_button.clicked.connect(self.reject)

        body = QVBoxLayout()
        body.addWidget(self._text)
        body.addWidget(self._info)
        body.addLayout(lr_row)
        top = QHBoxLayout()
        top.addWidget(icon)
        top.addLayout(body, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)

    # QMessageBox-like reading
    def text(self) -> str:
        return self._text.text()

    def informativeText(self) -> str:  # the QMessageBox name
        return self._info.text()

    @property
    def lr(self) -> float | None:
        return parse_lr(self.lr_edit.text())

    def _on_lr_edit_text_changed(self, _text: str) -> None:
        ok = self.lr is not None
        self.resume_button.setEnabled(ok)
        self.reset_button.setEnabled(ok)

    def _on_resume_button_clicked(self) -> None:
        if self.lr is not None:
            lr = self.lr
            self.accept()
            self.resume_requested.emit(lr)

    def _on_reset_button_clicked(self) -> None:
        if self.lr is not None:
            lr = self.lr
            self.accept()
            self.reset_requested.emit(lr)
