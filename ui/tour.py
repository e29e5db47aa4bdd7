"""Help > Quick tour: a few callouts pointing at the parts of the window, one at a time.

:class:`QuickTour` lays a see-through overlay over the window that dims everything but the part
it talks about, and a callout beside that part with Back / Next / Close. The steps name
widgets of the window (palette, canvas, training panel, plots, diagnosis); a step whose
widget is hidden shows its dock first.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

__all__ = ["STEPS", "QuickTour", "TourStep"]


@dataclass(frozen=True)
class TourStep:
    dock: str | None  # the dock to show and point at; None: the canvas
    title: str
    text: str


STEPS = (
    TourStep("palette", "1. Layers",
             "Every layer bplab knows. Drag one onto the canvas (or double-click it) to add "
             "it; drop it on a wire to insert it there."),
    TourStep(None, "2. The network",
             "Your network, from the Input down. Drag from the port under a node to "
             "another node to connect them; the shape on each wire is what flows along it. "
             "Select a node to edit it in the Inspector."),
    TourStep("training", "3. Training",
             "The data set, the loss, the optimiser and the run's length. Press Run (F5) to "
             "train: everything stays live and editable."),
    TourStep("loss", "4. Plots",
             "Loss, accuracy, gradient norms per layer, histograms and the decision "
             "boundary, updated while the network trains. Right-click a plot to export it."),
    TourStep("diagnosis", "5. Diagnosis",
             "What the gradients say: vanishing or exploding gradients, dead or saturated "
             "units, each with fixes you can apply and undo. Help > Concepts explains the "
             "words."),
)


class _Overlay(QWidget):
    """Dims the window except ``hole``."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.hole = QRect()
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath()
        path.addRect(self.rect())
        if not self.hole.isNull():
            inner = QPainterPath()
            inner.addRoundedRect(self.hole.adjusted(-4, -4, 4, 4), 6, 6)
            path = path.subtracted(inner)
        p.fillPath(path, QColor(0, 0, 0, 110))
        if not self.hole.isNull():
            p.setPen(QPen(QColor("#F5A524"), 3))
            p.drawRoundedRect(self.hole.adjusted(-4, -4, 4, 4), 6, 6)


class QuickTour(QObject):
    """The tour over ``window`` (a :class:`~bplab.ui.main_window.MainWindow`)."""

    def __init__(self, window, steps: tuple[TourStep, ...] = STEPS):
        super().__init__(window)
        self.window = window
        self.steps = tuple(s for s in steps if s.dock is None or s.dock in window.docks)
        self.index = -1
        self.overlay = _Overlay(window)
        self.callout = QFrame(window)
        self.callout.setObjectName("tour_callout")
        self.callout.setFrameShape(QFrame.Shape.StyledPanel)
        self.callout.setAutoFillBackground(True)
        self.callout.setStyleSheet("#tour_callout { background: palette(window); "
                                   "border: 2px solid #F5A524; border-radius: 6px; }")
        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.back = QPushButton("Back")
        self.next = QPushButton("Next")
        self.close_button = QPushButton("Close")
        self.back.clicked.connect(self.previous_step)
        self.next.clicked.connect(self.next_step)
        self.close_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.close_button)
        buttons.addStretch(1)
        buttons.addWidget(self.back)
        buttons.addWidget(self.next)
        lay = QVBoxLayout(self.callout)
        lay.addWidget(self.title)
        lay.addWidget(self.text)
        lay.addLayout(buttons)
        self.callout.setFixedWidth(340)
        self.overlay.hide()
        self.callout.hide()
        window.installEventFilter(self)

    @property
    def active(self) -> bool:
        return self.index >= 0

    def start(self) -> None:
        self.show_step(0)

    def stop(self) -> None:
        self.index = -1
        self.overlay.hide()
        self.callout.hide()

    def next_step(self) -> None:
        if self.index + 1 >= len(self.steps):
            self.stop()
        else:
            self.show_step(self.index + 1)

    def previous_step(self) -> None:
        self.show_step(max(self.index - 1, 0))

    def target(self, step: TourStep) -> QWidget:
        if step.dock is None:
            return self.window.view
        dock = self.window.docks[step.dock]
        dock.show()
        dock.raise_()
        return dock

    def show_step(self, index: int) -> None:
        self.index = index
        step = self.steps[index]
        self.title.setText(step.title)
        self.text.setText(step.text)
        self.back.setEnabled(index > 0)
        self.next.setText("Done" if index == len(self.steps) - 1 else "Next")
        self._place()
        self.overlay.show()
        self.overlay.raise_()
        self.callout.show()
        self.callout.raise_()
        self.next.setFocus()

    def target_rect(self) -> QRect:
        """The pointed-at part, in window coordinates."""
        w = self.target(self.steps[self.index])
        return QRect(w.mapTo(self.window, QPoint(0, 0)), w.size())

    def _place(self) -> None:
        win = self.window.rect()
        self.overlay.setGeometry(win)
        hole = self.target_rect()
        self.overlay.hole = hole
        self.overlay.update()
        width = self.callout.width()
        height = self.callout.layout().totalHeightForWidth(width)
        self.callout.resize(width, max(height, self.callout.minimumSizeHint().height()))
        size = self.callout.size()
        # Beside the target where there is room (right, left, below, above), else inside it.
        candidates = (QPoint(hole.right() + 16, hole.top() + 16),
                      QPoint(hole.left() - 16 - size.width(), hole.top() + 16),
                      QPoint(hole.left() + 16, hole.bottom() + 16),
                      QPoint(hole.left() + 16, hole.top() - 16 - size.height()))
        for pos in candidates:
            if win.contains(QRect(pos, size)):
                break
        else:
            pos = hole.center() - QPoint(size.width() // 2, size.height() // 2)
        pos.setX(min(max(pos.x(), 8), max(win.width() - size.width() - 8, 8)))
        pos.setY(min(max(pos.y(), 8), max(win.height() - size.height() - 8, 8)))
        self.callout.move(pos)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Resize and self.active:
            self._place()
        return False
