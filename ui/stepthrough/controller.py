"""Train > Step through…: one training step, stage by stage, on the canvas and in a panel.

:class:`StepThroughController` owns the engine's :class:`~bplab.stepthrough.StepThrough`
(every stage of one step of the session's trainer, on chosen samples) and the stage shown.
It draws the stage on the canvas (:meth:`NetworkScene.show_step`: each node's output, then
its gradient, the gradient on each wire, the sums where an output fans out), fills the
:class:`~bplab.ui.stepthrough.panel.StepPanel`, plays the stages at a chosen speed, lets the
user pick the sample (an index, or a click on a point of the decision-boundary plot) and
ends with the step applied to the trainer or discarded.

While the mode is open Run and Step are disabled (the trainer must not move under the
step); an edit of the project, a reset, or a run started anyway ends it, discarded.
Nothing shown is computed here: every number is the engine's.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from bplab.ui.docks import REGRESSION_TITLES
from bplab.ui.errors import ErrorInfo
from bplab.ui.stepthrough.overlay import stage_overlay
from bplab.ui.training.worker import RUNNING
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QMainWindow

from bplab.errors import BplabError
from bplab.stepthrough import ChainRule, StepThrough

__all__ = ["BLOCKED", "CURRENT_COLOR", "StepThroughController"]

CURRENT_COLOR = QColor("#D9541E")  # the glow around the node of the stage shown
BLOCKED = "Step through is open: Apply or Discard its step first"
PANEL_WIDTH = 470  # the dock's width when the mode opens (at least)


class StepThroughController(QObject):
    """The step-through mode of the window (see the module).

    Signals: ``started()``, ``stage_changed(int)``, ``ended(str)`` (``"applied"``,
    ``"discarded"``, or why it ended).
    """

    started = Signal()
    stage_changed = Signal(int)
    ended = Signal(str)

    def __init__(self, window: QMainWindow):
        """``window`` is the :class:`~bplab.ui.main_window.MainWindow` with its menus, docks
        and run view made (not imported here: it imports this module)."""
        super().__init__(window)
        self.window = window
        self.panel = window.dock_layout.step_panel
        self.dock = window.dock_layout.docks["step_through"]
        self.action = window.menus.act_step_through
        self.stepper: StepThrough | None = None
        self.index = 0
        self.first, self.count = 0, 1
        self.param: str | None = None
        self.weight: tuple[str, tuple[int, ...]] | None = None
        self.rule: ChainRule | None = None
        self._norms: dict = {}
        self._waiting_for_build = False
        self._corner: Qt.DockWidgetArea | None = None  # the corner's owner before the mode
        self._marker: pg.ScatterPlotItem | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._on_timer_timeout)
        self._connect()
        self._update_action()

    def _connect(self) -> None:
        w, p = self.window, self.panel
        s = w.session
        s.state_changed.connect(self._on_session_state_changed)
        s.finished.connect(self._on_session_finished)
        s.reset_done.connect(self._on_session_reset_done)
        w.doc.network_changed.connect(self._on_doc_changed)
        w.doc.settings_changed.connect(self._on_doc_settings_changed)
        w.doc.project_replaced.connect(self._on_doc_changed)
        p.stage_requested.connect(self.go)
        p.samples_changed.connect(self.set_samples)
        p.play_toggled.connect(self.play)
        p.speed_changed.connect(self._on_panel_speed_changed)
        p.param_changed.connect(self.show_param)
        p.weight_clicked.connect(self.select_weight)
        p.apply_requested.connect(self.apply)
        p.discard_requested.connect(self.discard)
        boundary = w.plots.get("boundary")
        if boundary is not None and hasattr(boundary, "plot"):
            boundary.plot.scene().sigMouseClicked.connect(self._on_boundary_clicked)

    # -- reading -----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.stepper is not None

    @property
    def stages(self) -> list:
        return self.stepper.stages if self.stepper is not None else []

    @property
    def stage(self):
        return self.stages[self.index] if self.stepper is not None else None

    # -- starting ----------------------------------------------------------------------------
    def start(self) -> bool:
        """Train > Step through…: open the mode on the session's trainer (built first if
        there is none). False when it cannot start (training runs, the network has
        problems)."""
        w, s = self.window, self.window.session
        if self.active:
            self.dock.show()
            self.dock.raise_()
            return True
        if s.state == RUNNING:
            w.statusBar().showMessage("Pause training to step through one step.", 6000)
            return False
        if w.doc.plan.problems:
            w.statusBar().showMessage("The network has problems: see the Problems panel.", 6000)
            return False
        if s.trainer is None or s.stale:
            # The session builds its trainer (restoring a pending checkpoint): the mode
            # opens when it is built (see _on_session_finished).
            self._waiting_for_build = True
            s.restore(s.checkpoint)
            return True
        return self._open()

    def _open(self) -> bool:
        trainer = self.window.session.trainer
        n = len(trainer.dataset.x_train)
        self.first = min(self.first, n - 1)
        self.count = max(1, min(self.count, n - self.first))
        error = self._compute()
        if error is not None and self.count == 1 and n > 1:
            # e.g. BatchNorm cannot train on one row: the engine says so; try two rows
            self.count = 2
            if self._compute() is None:
                w = self.window
                w.statusBar().showMessage(f"{error} Stepping through 2 samples.", 10000)
                error = None
        if error is not None:
            self.count = 1
            self.window.show_error(ErrorInfo.from_exception(error, "Cannot step through"))
            return False
        self.window.train_actions.set_problem(BLOCKED)
        self.panel.set_active(True)
        self.dock.show()
        self.dock.raise_()
        self._make_room()
        self._update_action()
        self.started.emit()
        return True

    def _make_room(self) -> None:
        """While the mode is open the right dock area runs the full height of the window
        (the plots below the canvas give way) and is at least PANEL_WIDTH wide: room for
        the tables and the chain-rule card. :meth:`_end` gives the corner back."""
        w = self.window
        corner = Qt.Corner.BottomRightCorner
        if self._corner is None:
            self._corner = w.corner(corner)
        w.setCorner(corner, Qt.DockWidgetArea.RightDockWidgetArea)
        if not self.dock.isFloating():
            w.resizeDocks([self.dock], [max(self.dock.width(), PANEL_WIDTH)],
                          Qt.Orientation.Horizontal)

    def _compute(self) -> Exception | None:
        """A StepThrough of the chosen samples (the stage shown stays where it was), or
        the engine's reason it cannot be made."""
        trainer = self.window.session.trainer
        indices = list(range(self.first, self.first + self.count))
        try:
            stepper = StepThrough(trainer, indices)
        except (BplabError, ValueError, ArithmeticError) as exc:
            return exc
        if self.stepper is not None and self.stepper.finished is None:
            self.stepper.discard()
        self.stepper = stepper
        self._norms = stepper.wire_norms()
        n = len(trainer.dataset.x_train)
        which = f"sample {self.first}" if self.count == 1 else \
            f"samples {self.first} to {self.first + self.count - 1}"
        tab = REGRESSION_TITLES["boundary"] if trainer.task == "regression" else \
            "Decision boundary"  # as the tab is called for the task
        note = (f"Training {which} of {n}" + (f"; click a point in the {tab} to pick another"
                                              if trainer.dataset.pictured else ""))
        self.panel.set_samples(self.first, self.count, n, note)
        self.panel.set_stage_count(len(stepper.stages))
        params = list(stepper.stages[-1].updates)
        self.panel.set_params(params)
        if self.param not in params:
            self.param = params[0] if params else None
        self._mark_samples()
        self.index = min(self.index, len(stepper.stages) - 1)
        self._show()
        self.show_param(self.param)
        if self.weight is not None and self.weight[0] in params:
            self.select_weight(*self.weight)
        return None

    # -- stages ------------------------------------------------------------------------------
    def go(self, index: int) -> None:
        """Show stage ``index`` (clamped to the stages)."""
        if not self.active:
            return
        index = max(0, min(int(index), len(self.stages) - 1))
        if index != self.index:
            self.index = index
            self._show()

    def forward(self) -> None:
        self.go(self.index + 1)

    def back(self) -> None:
        self.go(self.index - 1)

    def play(self, on: bool) -> None:
        """Walk forward through the stages at the panel's speed (stages per second)."""
        if on and self.active:
            if self.index >= len(self.stages) - 1:
                self.go(0)
            self.timer.start(int(1000 / self.panel.speed.value()))
        else:
            self.timer.stop()
        self.panel.set_playing(self.timer.isActive())

    def _show(self) -> None:
        stage = self.stage
        overlay = stage_overlay(self.stages, self.index, self._norms)
        scene = self.window.scene
        scene.show_step(overlay.badges, overlay.wires, overlay.sums)
        node = stage.node or (self.stepper.network.output_id if stage.kind == "loss" else None)
        if node is not None:
            scene.highlight([node], CURRENT_COLOR)
            item = scene.node_item(node)
            if item is not None:  # the canvas follows the stage: its node and badge in view
                self.window.view.ensureVisible(item.shown_rect(), 24, 24)
        else:
            scene.clear_highlight()
        self.panel.show_stage(stage, len(self.stages))
        self._show_weight_update()
        self.stage_changed.emit(self.index)

    # -- samples -----------------------------------------------------------------------------
    def set_samples(self, first: int, count: int = 1) -> bool:
        """Step through samples ``first`` .. ``first + count - 1`` of the training set."""
        if not self.active:
            return False
        n = len(self.window.session.trainer.dataset.x_train)
        first = max(0, min(int(first), n - 1))
        count = max(1, min(int(count), n - first))
        if (first, count) == (self.first, self.count):
            return True
        previous = self.first, self.count
        self.first, self.count = first, count
        error = self._compute()
        if error is not None:
            self.first, self.count = previous
            self.panel.set_samples(*previous, n, self.panel.sample_note.text())
            self.window.show_error(ErrorInfo.from_exception(error, "Cannot step through"))
        return error is None

    def pick_point(self, x: float, y: float) -> int | None:
        """The training sample nearest to (``x``, ``y``) on the decision-boundary plot
        (with one input: where the sample is drawn, x and its target) becomes the one
        stepped through; returns its index."""
        if not self.active:
            return None
        data = self._drawn_samples()
        if data is None:
            return None
        i = int(np.argmin((data[:, 0] - x) ** 2 + (data[:, 1] - y) ** 2))
        self.set_samples(i, self.count)
        return i

    def _mark_samples(self) -> None:
        """A ring around the chosen samples on the decision boundary (1-D and 2-D data)."""
        boundary = self.window.plots.get("boundary")
        drawn = self._drawn_samples()
        if boundary is None or not hasattr(boundary, "plot") or drawn is None:
            return
        if self._marker is None:
            self._marker = pg.ScatterPlotItem(size=16, pxMode=True, brush=None,
                                              pen=pg.mkPen(CURRENT_COLOR, width=3))
            self._marker.setZValue(20)
            boundary.plot.addItem(self._marker)
        self._marker.setData(pos=drawn[self.first: self.first + self.count])

    def _drawn_samples(self) -> np.ndarray | None:
        """Where the training samples sit on the decision-boundary plot: the plane's points,
        or with one input (x, target) as the plot draws them; None when it draws none."""
        ds = self.window.session.trainer.dataset
        if not ds.pictured:
            return None
        boundary = self.window.plots.get("boundary")
        if ds.is_1d and boundary is not None and hasattr(boundary, "point_positions"):
            data = boundary.point_positions(ds.x_train, ds.y_train)
        else:
            data = np.asarray(ds.x_train, np.float64)
        return data if data.ndim == 2 and data.shape[1] >= 2 else None

    def _on_boundary_clicked(self, event) -> None:
        boundary = self.window.plots.get("boundary")
        if not self.active or boundary is None:
            return
        vb = boundary.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        p = vb.mapSceneToView(event.scenePos())
        self.pick_point(p.x(), p.y())

    # -- a weight's chain rule -----------------------------------------------------------------
    def show_param(self, param: str | None) -> None:
        """Show ``param``'s gradient (dL/dparam, from the backward stage that computed it)
        in the panel's weight table."""
        if not self.active or not param:
            return
        self.param = param
        for s in self.stages:
            if s.kind == "backward" and param in s.param_grads:
                self.panel.show_matrix(param, s.param_grads[param],
                                       f"(computed at stage {s.index + 1})")
                return
        self.panel.show_matrix(param, None, "(no gradient this step)")

    def select_weight(self, param: str, index: tuple) -> ChainRule | None:
        """The chain-rule card of ``param[index]`` (the engine's factors, product, gradient
        and finite difference) and its update."""
        if not self.active:
            return None
        if param != self.param:
            self.panel.param.setCurrentText(param)
        index = tuple(int(i) for i in index)
        try:
            self.rule = self.stepper.chain_rule(param, index)
        except BplabError as exc:
            self.window.statusBar().showMessage(str(exc), 8000)
            return None
        self.weight = (param, index)
        self.panel.show_chain_rule(self.rule)
        self._show_weight_update()
        return self.rule

    def _show_weight_update(self) -> None:
        if self.weight is None:
            return
        update = self.stages[-1] if self.stages[-1].kind == "update" else None
        self.panel.show_weight_update(update, *self.weight)

    # -- ending ------------------------------------------------------------------------------
    def apply(self) -> None:
        """Keep the step: the trainer's weights and optimiser move on as after one step."""
        if self.active:
            self.stepper.apply()
            step = self.window.session.trainer.step_count
            self._end("applied", f"Step applied: the trainer is at step {step}; Run goes on "
                                 "from it.")

    def discard(self) -> None:
        """Forget the step: the trainer stays as it was."""
        if self.active:
            self.stepper.discard()
            self._end("discarded", "Step discarded: the trainer is as it was.")

    def _end(self, how: str, message: str) -> None:
        self.timer.stop()
        self.stepper = None
        self.rule = None
        w = self.window
        w.scene.clear_step()
        w.scene.clear_highlight()
        if self._marker is not None:
            self._marker.setData(pos=np.zeros((0, 2)))
        self.panel.set_active(False)
        self.dock.hide()
        if self._corner is not None:
            w.setCorner(Qt.Corner.BottomRightCorner, self._corner)
            self._corner = None
        w.run_view.show_plan(w.doc.plan)  # Run and Step enabled again (or with the problem)
        w.statusBar().showMessage(message, 8000)
        self._update_action()
        self.ended.emit(how)

    # -- slots -------------------------------------------------------------------------------
    def _update_action(self) -> None:
        running = self.window.session.state == RUNNING
        self.action.setEnabled(not running or self.active)
        self.action.setToolTip("Pause training to step through one step" if running else
                               "Walk one training step node by node: forward, loss, "
                               "backward, update")

    def _on_timer_timeout(self) -> None:
        if not self.active or self.index >= len(self.stages) - 1:
            self.play(False)
            return
        self.forward()

    def _on_panel_speed_changed(self, speed: float) -> None:
        if self.timer.isActive():
            self.timer.setInterval(int(1000 / speed))

    def _on_session_state_changed(self, state: str) -> None:
        if state == RUNNING and self.active and not self._waiting_for_build:
            self.stepper.discard()
            self._end("discarded", "Training started: the step-through step was discarded.")
        self._update_action()

    def _on_session_finished(self, reason: str) -> None:
        if self._waiting_for_build:
            self._waiting_for_build = False
            if reason == "built" and self.window.session.trainer is not None:
                self._open()

    def _on_session_reset_done(self) -> None:
        if self.active:
            self.stepper.discard()
            self._end("discarded", "Weights reset: the step-through step was discarded.")

    def _on_doc_changed(self) -> None:
        if self.active:
            self.stepper.discard()
            self._end("discarded", "The project changed: the step-through step was "
                                   "discarded.")

    def _on_doc_settings_changed(self, path: str) -> None:
        if path.split(".")[0] in ("network", "loss", "optimizer", "training", "dataset") \
                and path != "training.speed":
            self._on_doc_changed()
