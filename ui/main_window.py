"""The main window: the network canvas in the middle, dockable panels around it.

It owns the :class:`~bplab.ui.models.document.ProjectDocument` (one undo stack), the
:class:`~bplab.ui.training.worker.TrainingSession` (the worker thread), the editor widgets,
the training panel, the plots and the diagnosis panel. The work is done by small
controllers it makes and holds:

- ``files`` (:class:`~bplab.ui.project_files.ProjectFiles`): new, open, save, recent files,
  the checkpoint saved next to a trained project, project files dropped on the window;
- ``exports`` (:class:`~bplab.ui.export_actions.ExportActions`): weights, CSV, images;
- ``dock_layout`` (:class:`~bplab.ui.docks.DockLayout`): the docks and the saved layout;
- ``menus`` (:class:`~bplab.ui.menus.WindowMenus`): actions, menu bar, toolbar;
- ``run_view`` (:class:`~bplab.ui.run_view.RunView`): document edits to the training
  session, and the session to the plots (redrawn by a frame timer, visible ones only) and
  the status bar.

The questions asked about files are small methods that tests replace:
:meth:`MainWindow.ask_save_changes` (Save/Discard/Cancel), :meth:`MainWindow.get_open_path`,
:meth:`MainWindow.get_save_path` and :meth:`MainWindow.get_directory`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bplab.ui import file_dialogs
from bplab.ui.data_checks import DataChecks
from bplab.ui.docks import DockLayout
from bplab.ui.errors import ErrorInfo, show_error
from bplab.ui.examples import demo_path, list_examples, resources_dir
from bplab.ui.export_actions import ExportActions
from bplab.ui.fix_controller import apply_fix
from bplab.ui.menus import WindowMenus
from bplab.ui.models.document import ProjectDocument
from bplab.ui.plots import make_plots
from bplab.ui.plots.base import PlotPanel
from bplab.ui.project_files import ProjectFiles
from bplab.ui.run_view import RunView
from bplab.ui.settings import app_settings
from bplab.ui.stepthrough.controller import StepThroughController
from bplab.ui.theme import ThemeManager
from bplab.ui.training.controls import TrainingActions, TrainingControls
from bplab.ui.training.panel import TrainingPanel
from bplab.ui.training.worker import TrainingSession, project_copy
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QWidget

from bplab.io.project import new_project, project_base_dir

__all__ = ["MainWindow", "app_settings", "demo_path", "list_examples", "resources_dir"]


class MainWindow(QMainWindow):
    """The bplab window. ``settings`` defaults to :func:`app_settings`."""

    def __init__(self, settings: QSettings | None = None, theme: ThemeManager | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.settings = settings if settings is not None else app_settings()
        self.theme = theme
        self.path: Path | None = None
        self.automation = False  # True under --quit-after: closing never asks
        self.last_error: QWidget | None = None  # the latest error box (a QMessageBox-like)
        self.doc = ProjectDocument(new_project())
        self.session = TrainingSession(self.training_project, self)
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowNestedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)

        self._build_editor()
        self.train_actions = TrainingActions(self.session, self)
        self.panel = TrainingPanel(self.doc, self.base_dir, self)
        self.controls = TrainingControls(self.train_actions, self.panel)
        self.panel.controls_slot.addWidget(self.controls)
        self.plots: dict[str, QWidget] = make_plots(self)
        self.diagnosis = self._make_diagnosis()
        self.files = ProjectFiles(self)
        self.exports = ExportActions(self)
        self.dock_layout = DockLayout(self)
        self.docks = self.dock_layout.docks
        self.menus = WindowMenus(self)
        self.run_view = RunView(self)
        self.data_checks = DataChecks(self)  # the output's size against the data set
        self.stepper = StepThroughController(self)  # Train > Step through…
        self.frame_clock = self.run_view.frame_clock
        st = self.run_view.status
        self.status_state, self.status_epoch, self.status_step = st.state, st.epoch, st.step
        self.status_speed, self.status_elapsed = st.speed, st.elapsed
        self.status_progress = st.progress
        self._connect()

        self.dock_layout.remember_default()
        self.dock_layout.restore()
        self.update_title()
        self.run_view.show_plan(self.doc.plan)

    # -- construction ------------------------------------------------------------------------
    def _build_editor(self) -> None:
        from bplab.ui.editor import (
            Inspector,
            LayerPalette,
            NetworkScene,
            NetworkView,
            ProblemsList,
        )

        self.scene = NetworkScene(self.doc, self)
        self.view = NetworkView(self.scene, self)
        self.view.setToolTip("The network: drag layers from the palette, drag from a node's "
                             "port (under it) to another node to link them")
        self.setCentralWidget(self.view)
        self.palette = LayerPalette(self.view, self)
        self.inspector = Inspector(self.doc, self)
        self.scene.selection_changed.connect(self.inspector.show_selection)
        self.problems = ProblemsList(self.doc, self.scene, self.view, self)
        self.problems.setToolTip("What stops the network from training; click one to show it")

    def _make_diagnosis(self) -> QWidget | None:
        try:
            from bplab.ui.diagnosis import DiagnosisPanel
        except ImportError:
            return None
        return DiagnosisPanel(self.apply_fix, self)

    def _connect(self) -> None:
        self.doc.dirty_changed.connect(self._on_doc_dirty_changed)
        self.doc.settings_changed.connect(self._on_doc_settings_changed)
        self.doc.project_replaced.connect(self._on_doc_project_replaced)
        self.scene.message.connect(self._on_scene_message)
        if self.diagnosis is not None and hasattr(self.diagnosis, "layers_highlighted"):
            self.diagnosis.layers_highlighted.connect(self._on_diagnosis_layers_highlighted)

    def rename_selected(self) -> None:
        """Edit > Rename layer (F2): the inspector's name field, focused, for the one
        selected layer."""
        ids = self.scene.selected_ids()
        if len(ids) != 1:
            self.statusBar().showMessage("Select one layer to rename it", 3000)
            return
        if self.inspector.node_id != ids[0]:
            self.inspector.set_node(ids[0])
        self.docks["inspector"].show()
        self.docks["inspector"].raise_()
        self.inspector.focus_name()

    # -- the project ---------------------------------------------------------------------------
    def base_dir(self) -> Path | None:
        return project_base_dir(self.path)

    def training_project(self) -> tuple[dict, Path | None]:
        """What the trainer is built from: a copy of the project, without its checkpoint."""
        project = project_copy(self.doc.project)
        project.pop("checkpoint", None)
        return project, self.base_dir()

    def update_title(self) -> None:
        name = self.path.name if self.path is not None else (
            self.doc.get("name") or "Untitled")
        self.setWindowTitle(f"{name}[*] — bplab")
        self.setWindowModified(self.doc.is_dirty)

    # -- questions about files (tests replace these) -------------------------------------------
    def _start_dir(self) -> Path:
        return self.path.parent if self.path else Path.home()

    def ask_save_changes(self) -> str:
        """``"save"``, ``"discard"`` or ``"cancel"`` (tests monkeypatch this)."""
        return file_dialogs.ask_save_changes(self)

    def get_open_path(self, caption: str, filter_: str) -> str | None:
        return file_dialogs.get_open_path(self, self._start_dir(), caption, filter_)

    def get_save_path(self, caption: str, suggested: str, filter_: str) -> str | None:
        return file_dialogs.get_save_path(self, self._start_dir(), caption, suggested, filter_)

    def get_directory(self, caption: str) -> str | None:
        return file_dialogs.get_directory(self, self._start_dir(), caption)

    # -- the controllers' work, as the window's (for app.py, tests and scripts) ---------------
    def set_project(self, project: dict, path: Path | None) -> None:
        self.files.set_project(project, path)

    def maybe_save(self) -> bool:
        return self.files.maybe_save()

    def new_project(self) -> None:
        self.files.new_project()

    def open_path(self, path: str | Path, as_copy: bool = False) -> bool:
        return self.files.open_path(path, as_copy)

    def save(self) -> bool:
        return self.files.save()

    def save_as(self) -> bool:
        return self.files.save_as()

    def save_to(self, path: Path) -> bool:
        return self.files.save_to(path)

    def recent_files(self) -> list[str]:
        return self.files.recent_files()

    def export_weights(self, path: str | Path) -> bool:
        return self.exports.export_weights(path)

    def export_csv(self, folder: str | Path) -> list[Path]:
        return self.exports.export_csv(folder)

    def save_layout(self) -> None:
        self.dock_layout.save()

    def reset_layout(self) -> None:
        self.dock_layout.reset()

    def show_tab(self, name: str) -> bool:
        return self.dock_layout.show_tab(name)

    def prepare_plots(self, data_changed: bool = False) -> None:
        self.run_view.prepare_plots(data_changed)

    def _on_frame_timer_timeout(self) -> None:
        self.run_view.on_frame()

    def _flush_pending_contexts(self) -> None:
        self.run_view.flush_pending_contexts()

    # -- diagnosis fixes -----------------------------------------------------------------------
    def apply_fix(self, fix: Any) -> bool:
        """Apply a diagnosis fix as one undo step (the engine decides what it changes)."""
        return apply_fix(self.doc, fix, self.scene.highlight, self.show_error, self.statusBar())

    # -- errors --------------------------------------------------------------------------------
    def show_error(self, info: ErrorInfo) -> QMessageBox:
        self.last_error = show_error(self, info)
        return self.last_error

    # -- slots ---------------------------------------------------------------------------------
    def _on_doc_dirty_changed(self, dirty: bool) -> None:
        self.setWindowModified(dirty)

    def _on_doc_settings_changed(self, _path: str) -> None:
        self.update_title()

    def _on_doc_project_replaced(self) -> None:
        self.update_title()

    def _on_scene_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_diagnosis_layers_highlighted(self, layer_ids: list) -> None:
        ids = [i for i in layer_ids if self.doc.has_node(i)]
        if ids:
            self.scene.highlight(ids)
        else:
            self.scene.clear_highlight()

    # -- events --------------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            QTimer.singleShot(0, self.view.fit_all)

    def dragEnterEvent(self, event) -> None:
        self.files.drag_entered(event)

    def dragMoveEvent(self, event) -> None:
        self.files.drag_entered(event)

    def dropEvent(self, event) -> None:
        self.files.dropped(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.automation and not self.maybe_save():
            event.ignore()
            return
        self.frame_clock.stop()
        if not self.automation:  # scripted runs leave the user's layout alone
            self.save_layout()
        self.session.shutdown()
        for plot in self.plots.values():
            if isinstance(plot, PlotPanel):
                plot.release_graphics()
        event.accept()
