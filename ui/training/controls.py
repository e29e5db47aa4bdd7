"""Run/Pause, Step, Stop and Reset as QActions (menu, toolbar, buttons share them).

:class:`TrainingActions` follows a :class:`~bplab.ui.training.worker.TrainingSession`'s state and
the network's validity: Run and Step are disabled while the network has problems, with a
tooltip that says why. :class:`TrainingControls` is a row of buttons for these actions
with a progress bar.
"""

from __future__ import annotations

from bplab.ui.training.worker import IDLE, PAUSED, RUNNING, TrainingSession
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QProgressBar,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["TrainingActions", "TrainingControls"]

RUN_TIP = "Train the network (Space or Ctrl+R); pauses when training"


class TrainingActions(QObject):
    def __init__(self, session: TrainingSession, parent: QWidget):
        super().__init__(parent)
        self.session = session
        self.problem: str | None = None
        style = parent.style()

        self.run = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "&Run", parent)
        self.run.setShortcuts([QKeySequence(Qt.Key.Key_Space), QKeySequence("Ctrl+R")])
        self.run.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.run.triggered.connect(self._on_run_triggered)
        self.step = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward),
                            "S&tep", parent)
        self.step.setShortcut(QKeySequence("Ctrl+T"))
        self.step.setToolTip("Take one optimiser step on one batch (Ctrl+T)")
        self.step.triggered.connect(session.step)
        self.stop = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "St&op",
                            parent)
        self.stop.setShortcut(QKeySequence("Ctrl+."))
        self.stop.setToolTip("End this run and keep the weights (Ctrl+.); Run continues from them")
        self.stop.triggered.connect(session.stop)
        self.reset = QAction(style.standardIcon(QStyle.StandardPixmap.SP_BrowserReload),
                             "R&eset", parent)
        self.reset.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.reset.setToolTip("Re-initialise the weights and clear the plots (Ctrl+Shift+R)")
        self.reset.triggered.connect(session.reset)
        for a in self.all():
            a.setStatusTip(a.toolTip())
        session.state_changed.connect(self._on_session_state_changed)
        self._update()

    def all(self) -> list[QAction]:
        return [self.run, self.step, self.stop, self.reset]

    def set_problem(self, problem: str | None) -> None:
        """The network's first problem (Run and Step are disabled and say so), or None."""
        self.problem = problem
        self._update()

    def _on_run_triggered(self) -> None:
        if self.problem is None or self.session.state == RUNNING:
            self.session.toggle()

    def _on_session_state_changed(self, _state: str) -> None:
        self._update()

    def _update(self) -> None:
        state = self.session.state
        style = self.parent().style()
        running = state == RUNNING
        if running:
            self.run.setText("&Pause")
            self.run.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause))
            self.run.setToolTip("Pause training (Space or Ctrl+R)")
        else:
            self.run.setText("&Resume" if state == PAUSED else "&Run")
            self.run.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
            self.run.setToolTip(RUN_TIP if self.problem is None else
                                f"Cannot train: {self.problem}")
        self.run.setEnabled(running or self.problem is None)
        self.step.setEnabled(not running and self.problem is None)
        if self.problem is not None:
            self.step.setToolTip(f"Cannot train: {self.problem}")
        else:
            self.step.setToolTip("Take one optimiser step on one batch (Ctrl+T)")
        self.stop.setEnabled(state != IDLE)
        self.reset.setEnabled(True)
        for a in self.all():
            a.setStatusTip(a.toolTip())


class TrainingControls(QWidget):
    """Buttons for the training actions and a progress bar over the run's steps."""

    def __init__(self, actions: TrainingActions, parent: QWidget | None = None):
        super().__init__(parent)
        self.actions = actions
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.buttons: list[QToolButton] = []
        for action in actions.all():
            b = QToolButton(self)
            b.setDefaultAction(action)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setAutoRaise(False)
            row.addWidget(b)
            self.buttons.append(b)
        row.addStretch(1)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%  (step %v of %m)")
        self.progress.setToolTip("Steps taken in this run")
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.progress)

    def set_progress(self, step: int, total: int) -> None:
        total = max(int(total), 1)
        self.progress.setRange(0, total)
        self.progress.setValue(min(int(step), total))

