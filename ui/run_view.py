"""What the window shows of a training run, and how edits reach the run.

:class:`RunView` holds the window and wires the training to what shows it: document edits
invalidate the trainer or change its learning rate and epochs live; the plots are set up
for the next run before Run is pressed (:meth:`RunView.prepare_plots`); the training
session's signals feed the plots, the diagnosis and the status bar
(:class:`~bplab.ui.run_status.RunStatus`); and a frame clock redraws, a few times a second,
only what is on screen.
"""

from __future__ import annotations

import time

from bplab.ui.errors import ErrorInfo
from bplab.ui.frames import FrameClock
from bplab.ui.run_status import RunStatus
from bplab.ui.runs_panel import RunRecording
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from bplab.ui.training.worker import IDLE, RUNNING, run_context
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMainWindow, QWidget

from bplab.epoch_log import EpochLog
from bplab.errors import BplabError
from bplab.training import describe_run

__all__ = ["RunView"]

FRAME_MS = 100  # plots redraw at most this often
# While training, frames are spaced so that the GUI thread's work (drawing, and everything
# else it runs between frames: see ui.frames) takes at most FRAME_SHARE of the time, but
# frames never come less often than every FRAME_MAX_MS. 8 %: on the demo the worker then
# kept a median 90 % of bplab train's steps/s (12 % gave 83 %, drawing alone counted 74 %;
# 8 interleaved rounds each).
FRAME_MAX_MS = 250
FRAME_SHARE = 0.08
STATUS_S = 0.25  # seconds between status bar updates while training
DIVERGED_COLOR = "#e0302a"  # the glow around the node that blew up first


class RunView(QObject):
    """Training wiring of the window (see the module). ``epoch_history`` lists
    ``(epoch, step, metrics)`` of the run, for the CSV export and the automation summary."""

    def __init__(self, window: QMainWindow):
        """``window`` is the :class:`~bplab.ui.main_window.MainWindow`, its plots, docks and
        training panel made (not imported here: it imports this module)."""
        super().__init__(window)
        self.window = window
        self.plots: dict[str, QWidget] = window.plots
        # bounded: a dict per epoch of an hours-long run would grow without end
        self.epoch_history = EpochLog()
        self.context: TrainingContext | None = None
        self.status = RunStatus(window.statusBar())
        self._divergence_status = ""  # the status bar's advice after a divergence
        self.diverged_layer: str | None = None  # highlighted on the canvas until the next run
        self._warning_shown: str | None = None  # the engine's early warning last shown
        self._status_report = None  # the latest report, until the status bar shows it
        self._status_shown_at = 0.0
        self._pending_contexts: list[QWidget] = []  # plots still to get the new context
        # 10 frames a second: smooth enough for curves that grow, and every frame's
        # painting holds the GIL that the training thread needs; costly frames (new axes
        # at the start of a run) are spaced further apart while training.
        self.frame_clock = FrameClock(FRAME_MS, FRAME_MAX_MS, FRAME_SHARE, self)
        self.frame_clock.frame.connect(self.on_frame)
        for plot in self.plots.values():
            if hasattr(plot, "painted"):
                plot.painted.connect(self.frame_clock.add_cost)
        self.frame_clock.start()
        self._prepared: tuple | None = None  # what the plots were prepared for (a key)
        self._prepare_timer = QTimer(self)  # network edits: prepare once they pause
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.setInterval(250)
        self._prepare_timer.timeout.connect(self.prepare_plots)
        self._preview_ds = None  # the training panel's data set, for prepare_plots
        self._raised_over_boundary: QWidget | None = None  # see _show_mistakes_instead
        self._connect()

    def _connect(self) -> None:
        w = self.window
        doc, s = w.doc, w.session
        w.panel.dataset_loaded.connect(self._on_panel_dataset_loaded)
        doc.plan_changed.connect(self.show_plan)
        doc.network_changed.connect(self._on_doc_network_changed)
        doc.settings_changed.connect(self._on_doc_settings_changed)
        s.context_changed.connect(self._on_session_context_changed)
        s.updated.connect(self._on_session_updated)
        s.failed.connect(self._on_session_failed)
        s.diverged.connect(self._on_session_diverged)
        s.message.connect(self._on_session_message)
        s.state_changed.connect(self._on_session_state_changed)
        s.reset_done.connect(self._on_session_reset_done)
        s.finished.connect(self._on_session_finished)
        w.statusBar().messageChanged.connect(self._on_status_message_changed)
        # Every run recorded into the project; the runs ticked in the Runs panel overlaid.
        self.recording = RunRecording(s, doc, self)
        runs = w.dock_layout.runs_panel
        runs.overlays_changed.connect(self._on_runs_overlays_changed)
        runs.message.connect(self._on_session_message)

    # -- document edits ------------------------------------------------------------------------
    def show_plan(self, plan) -> None:
        """Run enabled, or disabled with the plan's first problem; the plots prepared for
        the new network once edits pause."""
        problems = getattr(plan, "problems", [])
        if problems:
            p = problems[0]
            text = p.message if p.node is None else f"{p.node}: {p.message}"
            if len(problems) > 1:
                text += f" (and {len(problems) - 1} more in the Problems panel)"
            self.window.train_actions.set_problem(text)
        else:
            self.window.train_actions.set_problem(None)
        self._prepare_timer.start()

    def _on_doc_network_changed(self) -> None:
        self.window.session.invalidate("The network changed")

    def _on_doc_settings_changed(self, path: str) -> None:
        w = self.window
        head = path.split(".")[0]
        if path == "optimizer.lr":
            lr = w.doc.get("optimizer.lr")
            if isinstance(lr, (int, float)) and lr >= 0:
                w.session.set_lr(float(lr))
                w.statusBar().showMessage(f"Learning rate {lr:g}: applies at the next step",
                                          4000)
        elif path == "training.epochs":
            epochs = w.doc.get("training.epochs")
            if isinstance(epochs, int) and epochs >= 0:
                w.session.set_epochs(epochs)
        elif path == "training.speed":  # live, like the learning rate: the next step
            speed = w.doc.get("training.speed")
            w.session.set_speed(float(speed) if isinstance(speed, (int, float)) and speed > 0
                                else None)
            return
        elif head == "dataset":
            w.session.invalidate("The data set changed")
        elif head in ("network", "loss", "optimizer", "training"):
            w.session.invalidate("The training settings changed")
        if head == "training":  # the run's length: the prepared plots' x range
            self._prepare_timer.start()

    # -- before a run ----------------------------------------------------------------------------
    def _on_panel_dataset_loaded(self, ds) -> None:
        """Before a run (or after its data changed) the boundary view shows the data and the
        progress bar the run's length, instead of empty axes and "step 0 of 1"; every plot
        is set up for the run (see prepare_plots)."""
        self._preview_ds = ds
        self.window.dock_layout.title_for_task(ds.task)
        self._show_mistakes_instead(ds.pictured, ds.task)
        self.prepare_plots(data_changed=True)

    def prepare_plots(self, data_changed: bool = False) -> None:
        """Set every plot up for the next run before Run is pressed.

        Making the items (curves and legends per layer, the data points under the decision
        boundary) and painting them the first time is one-off work; done while the user
        looks at the window, it no longer competes with the first training steps. The
        context is the one the trainer will report (``run_context(ds, describe_run(...))``);
        when it does, the plots only clear their histories.

        While the plots still show a finished run, only a new data set (``data_changed``)
        replaces what the boundary and the progress bars show; the rest waits for Run.
        """
        ds, s = self._preview_ds, self.window.session
        if ds is None or s.state != IDLE or not (s.stale or s.worker.trainer is None):
            return
        fresh = s.worker.trainer is None
        if not (fresh or data_changed):
            return
        boundary = self.plots.get("boundary")
        try:
            run = describe_run(self.window.doc.project, ds, plan=self.window.doc.plan)
        except BplabError:
            if boundary is not None:
                boundary.prepare(run_context(ds))
                boundary.refresh()
            return
        self.window.controls.set_progress(0, run.total_steps)
        self.status.set_progress(0, run.total_steps)
        ctx = run_context(ds, run)
        key = (id(ds), ctx.layer_names, ctx.layer_types, ctx.activation_layers,
               run.total_steps, run.steps_per_epoch)
        if key == self._prepared:
            return
        self._prepared = key
        for plot in self.plots.values():
            if plot is boundary or (fresh and run.network_ok):
                plot.prepare(ctx)
                plot.refresh()

    # -- the session -----------------------------------------------------------------------------
    def _on_session_context_changed(self, ctx: TrainingContext) -> None:
        w = self.window
        self.context = ctx
        w.dock_layout.title_for_task(ctx.task)  # the trainer's data, whatever was previewed
        self._prepared = None
        self.epoch_history.clear()
        # Plots on screen set up now; the ones behind tabs one per turn of the event loop,
        # so the window never freezes for all of them at once (training has started and
        # competes for the GIL). An update that arrives first flushes the rest.
        self._pending_contexts = [p for p in self.plots.values() if not on_screen(p)]
        for plot in self.plots.values():
            if plot not in self._pending_contexts:
                plot.set_context(ctx)
        if w.diagnosis is not None and hasattr(w.diagnosis, "set_context"):
            w.diagnosis.set_context(ctx)
        if self._pending_contexts:
            QTimer.singleShot(0, self._on_pending_context_timeout)
        w.controls.set_progress(0, ctx.total_steps)
        self.status.set_progress(0, ctx.total_steps)
        self._show_mistakes_instead(ctx.pictured, ctx.task)

    def _show_mistakes_instead(self, pictured: bool, task: str) -> None:
        """No decision boundary for this data: show what the model gets wrong in its place
        (the surest mistakes for classes, predicted against true for targets), rather than
        a panel that only says why it is empty. Back on 2-D data, the boundary returns to
        the front if this put something over it and that is still in front."""
        w = self.window
        boundary = w.docks.get("boundary")
        if boundary is None:
            return
        if pictured:  # the output over 2-D or 1-D inputs: the boundary view has it
            raised, self._raised_over_boundary = self._raised_over_boundary, None
            if raised is not None and not raised.visibleRegion().isEmpty():
                boundary.raise_()
            return
        if boundary.visibleRegion().isEmpty():
            return
        order = ("mistakes", "confusion") if task == "classification" else ("confusion",)
        instead = next((n for n in (*order, "histograms") if n in w.docks), None)
        if instead is not None:
            w.docks[instead].raise_()
            self._raised_over_boundary = w.docks[instead]

    def _on_pending_context_timeout(self) -> None:
        if self._pending_contexts and self.context is not None:
            self._pending_contexts.pop(0).set_context(self.context)
        if self._pending_contexts:
            QTimer.singleShot(0, self._on_pending_context_timeout)

    def flush_pending_contexts(self) -> None:
        """Give the new context to the plots still waiting for it, now."""
        while self._pending_contexts and self.context is not None:
            self._pending_contexts.pop(0).set_context(self.context)
        self._pending_contexts = []

    def _on_session_updated(self, update: TrainingUpdate) -> None:
        self.flush_pending_contexts()
        r = update.latest
        total = r.total_steps or (self.context.total_steps if self.context else None)
        # The engine's own rate is measured over 0.25 s: the first updates come sooner.
        rate = r.steps_per_second or (r.step / r.elapsed if r.elapsed > 0 else 0.0)
        for plot in self.plots.values():
            plot.add_update(update)
            plot.note_progress(r.step, total, rate)
        diagnosis = self.window.diagnosis
        if diagnosis is not None and hasattr(diagnosis, "add_update"):
            diagnosis.add_update(update)
        for r in update.epoch_reports:
            if r.metrics:
                self.epoch_history.append((r.epoch, r.step, dict(r.metrics)))
        # Shown at the next frame: labels and progress bars repaint (a QProgressBar even
        # synchronously) and only the latest numbers matter.
        self._status_report = update.latest
        warning = getattr(update.latest, "warning", None)
        if warning and warning != self._warning_shown:  # the weights run away: say so once
            self.window.statusBar().showMessage(warning, 8000)
        self._warning_shown = warning

    def _show_status(self) -> None:
        r = self._status_report
        if r is None:
            return
        now = time.monotonic()
        if self.window.session.state == RUNNING and now - self._status_shown_at < STATUS_S:
            return  # a few times a second is plenty for numbers that change every frame
        self._status_report, self._status_shown_at = None, now
        total = r.total_steps or (self.context.total_steps if self.context else r.step)
        self.status.show_report(r)
        self.window.controls.set_progress(r.step, total)
        self.status.set_progress(r.step, total)

    def _on_session_failed(self, info: ErrorInfo) -> None:
        self.window.show_error(info)

    def _on_session_diverged(self, message: str) -> None:
        from bplab.ui.training.divergence import DivergenceDialog

        w = self.window
        trainer = w.session.trainer
        div = trainer.divergence if trainer is not None else None
        # The status bar gets the gist (the whole message ran off its edge); the dialog,
        # the diagnosis and the status bar's tooltip keep every number.
        gist = message
        if div is not None:
            gist = f"Training diverged at step {div.step}" + (
                f": '{div.layer}' blew up first." if div.layer else ".")
        self._divergence_status = (f"{gist} Lower the learning rate and Resume, or Reset "
                                   "the weights.")
        w.statusBar().showMessage(self._divergence_status)  # until training runs again
        w.statusBar().setToolTip(message)
        self.highlight_divergence(div.layer if div is not None else None)
        lr = w.doc.get("optimizer.lr")
        box = DivergenceDialog(message, float(lr) if isinstance(lr, (int, float)) else None, w,
                               suggested=div.suggested_lr if div is not None else None)
        box.resume_requested.connect(self._on_divergence_resume_requested)
        box.reset_requested.connect(self._on_divergence_reset_requested)
        w.last_error = box
        box.open()

    def revert_to_best(self) -> int | None:
        """Train > Revert to best epoch: the trainer loads the weights of the epoch with the
        lowest validation loss; Run goes on from them. Returns that epoch (None: none yet)."""
        w, s = self.window, self.window.session
        if s.state == RUNNING:
            s.pause()
        s.wait_idle(30.0)
        trainer = s.trainer
        epoch = trainer.revert_to_best() if trainer is not None and not s.stale else None
        if epoch is None:
            w.statusBar().showMessage("No best epoch yet: the best weights are kept at epoch "
                                      "ends with a validation set.", 8000)
        else:
            w.statusBar().showMessage(f"Reverted to the weights of epoch {epoch} (validation "
                                      f"loss {trainer.best_val_loss:.4g}); Run goes on from "
                                      "them.", 8000)
        return epoch

    def highlight_divergence(self, layer: str | None) -> None:
        """Mark the node that blew up first on the canvas (red glow, tooltip), and show it."""
        w = self.window
        self.diverged_layer = layer if layer is not None and w.doc.has_node(layer) else None
        if self.diverged_layer is None:
            return
        w.scene.highlight([self.diverged_layer], DIVERGED_COLOR)
        item = w.scene.node_item(self.diverged_layer)
        if item is not None:
            w.view.ensureVisible(item)

    def _on_divergence_resume_requested(self, lr: float) -> None:
        self.window.doc.set_value("optimizer.lr", lr)  # undoable; the worker takes it first
        self.window.session.run()

    def _on_divergence_reset_requested(self, lr: float) -> None:
        self.window.doc.set_value("optimizer.lr", lr)
        self.window.session.reset()
        self.window.session.run()

    def _on_session_message(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 8000)

    def _on_runs_overlays_changed(self, overlays: list) -> None:
        for name in ("loss", "metrics", "gradient_norms"):
            if name in self.plots:
                self.plots[name].set_runs(overlays)

    def _on_session_state_changed(self, state: str) -> None:
        bar = self.window.statusBar()
        self.frame_clock.adaptive = state == RUNNING
        self.status.set_state(state)
        if state == RUNNING and bar.currentMessage() == self._divergence_status:
            bar.clearMessage()
        if state == RUNNING and self.diverged_layer is not None:
            self.diverged_layer = None
            self.window.scene.clear_highlight()

    def _on_status_message_changed(self, text: str) -> None:
        # the divergence's whole message is the tooltip of its gist only
        if text != self._divergence_status:
            self.window.statusBar().setToolTip("")

    def _on_session_finished(self, reason: str) -> None:
        if reason in ("diverged", "stopped", "early_stop", "error"):
            # the steps planned after this one will not come: the x axes follow the data
            # (a run that diverged at step 7 of 650 was a spike at the left edge)
            for plot in self.plots.values():
                plot.end_run_early()

    def _on_session_reset_done(self) -> None:
        self._status_report = None
        self.flush_pending_contexts()
        self.epoch_history.clear()
        for plot in self.plots.values():
            plot.reset()
        diagnosis = self.window.diagnosis
        if diagnosis is not None and hasattr(diagnosis, "reset"):
            diagnosis.reset()
        self.status.clear()
        self.window.controls.set_progress(0, 1)

    # -- frames ----------------------------------------------------------------------------------
    def on_frame(self) -> None:
        """A frame: the status bar's numbers, and every plot on screen redrawn."""
        # No more updates than frames: each costs the GUI thread a turn at the GIL.
        worker = self.window.session.worker
        worker.emit_interval = max(type(worker).emit_interval, self.frame_clock.gap)
        self._show_status()
        # Only what is on screen is redrawn; a plot brought to the front catches up here.
        for plot in self.plots.values():
            if on_screen(plot):
                plot.refresh()
        d = self.window.diagnosis
        if d is not None and hasattr(d, "refresh") and on_screen(d):
            d.refresh()


def on_screen(widget: QWidget) -> bool:
    """Shown and not covered (a dock behind another tab is neither)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()
