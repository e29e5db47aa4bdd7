"""The main window: the network canvas in the middle, dockable panels around it.

It owns the :class:`~bplab.ui.models.document.ProjectDocument` (one undo stack), the
:class:`~bplab.ui.training.worker.TrainingSession` (the worker thread), the editor widgets, the
training panel, the plots and the diagnosis panel, and wires them together: document edits
invalidate the trainer or change its learning rate live, worker updates feed the plots
(redrawn by a frame timer, visible ones only) and the status bar.

File operations go through small methods that tests replace: :meth:`MainWindow.ask_save_changes`
(Save/Discard/Cancel), :meth:`MainWindow.get_open_path`, :meth:`MainWindow.get_save_path`
and :meth:`MainWindow.get_directory`.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bplab.ui.errors import ErrorInfo, show_error
from bplab.ui.frames import FrameClock
from bplab.ui.models.document import ProjectDocument
from bplab.ui.plots.base import fix_label_size
from bplab.ui.theme import THEMES, ThemeManager
from bplab.ui.training.controls import TrainingActions, TrainingControls
from bplab.ui.training.panel import TrainingPanel
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from bplab.ui.training.worker import (
    IDLE,
    RUNNING,
    TrainingSession,
    dataset_context,
    plan_context,
    project_copy,
)
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStyle,
    QToolBar,
    QWidget,
)

from bplab.errors import BplabError
from bplab.io.project import load_project, new_project, project_base_dir, save_project
from bplab.training import training_config

__all__ = ["MainWindow", "app_settings", "list_examples", "resources_dir"]

ORG, APP = "bplab", "bplab"
STATE_VERSION = 4  # bump when the set of docks changes: old saved layouts are then ignored
MAX_RECENT = 10
PROJECT_FILTER = "bplab projects (*.bplab.json *.json);;All files (*)"
EXPORT_FILTERS = {
    ".safetensors": "safetensors (*.safetensors)",
    ".npz": "NumPy archive (*.npz)",
    ".onnx": "ONNX model (*.onnx)",
    ".py": "PyTorch code (*.py)",
}
# (object name, title, class name in ui.plots, tooltip)
PLOTS = (
    ("loss", "Loss", "LossPlot", "Training and validation loss"),
    ("metrics", "Accuracy", "MetricPlot", "Accuracy (or R²) per epoch"),
    ("boundary", "Decision boundary", "DecisionBoundaryView",
     "What the network predicts over the input plane (2-D data)"),
    ("gradient_norms", "Gradient norms", "GradientNormPlot", "Gradient norm of each layer"),
    ("gradient_flow", "Gradient flow", "GradientFlowBar", "Gradient size by depth, now"),
    ("update_ratio", "Update ratio", "UpdateRatioPlot",
     "Size of each step relative to the weights (about 1e-3 is healthy)"),
    ("histograms", "Histograms", "HistogramView", "Weight and gradient distributions over time"),
    ("activations", "Activations", "ActivationPlot",
     "Saturated and dead units of each activation layer"),
)
# Pictures of the data and the weights on the left, curves on the right; the diagnosis sits
# on the left too, so its findings and the gradient curves they cite can be seen together.
LEFT_TABS = ("boundary", "histograms", "activations", "diagnosis")
FRAME_MS = 100  # plots redraw at most this often
# While training, frames are spaced so that drawing them takes at most FRAME_SHARE of the
# time (see ui.frames), but never less often than every FRAME_MAX_MS.
FRAME_MAX_MS = 250
FRAME_SHARE = 0.12
STATUS_S = 0.25  # seconds between status bar updates while training


def resources_dir() -> Path:
    """``resources/`` of a source checkout (next to ``ui/``), else the installed copy."""
    here = Path(__file__).resolve().parent.parent / "resources"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "bplab" / "resources"


def list_examples() -> list[tuple[str, Path]]:
    """(title, path) of every example project, the demo (spiral) first."""
    out = []
    for path in sorted((resources_dir() / "examples").glob("*.bplab.json")):
        try:
            title = json.loads(path.read_text(encoding="utf-8")).get("name") or path.stem
        except (OSError, ValueError):
            continue
        out.append((str(title), path))
    out.sort(key=lambda tp: (not tp[1].name.startswith("spiral"), tp[0].lower()))
    return out


def demo_path() -> Path:
    return resources_dir() / "examples" / "spiral.bplab.json"


def app_settings() -> QSettings:
    """The app's settings (INI, user scope). Tests point ``QSettings.setPath`` elsewhere."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def _load_plot_classes() -> dict[str, type]:
    from bplab.ui import plots

    found = {}
    for _, _, cls_name, _ in PLOTS:
        cls = getattr(plots, cls_name, None)
        if cls is not None:
            found[cls_name] = cls
    return found


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
        self._divergence_status = ""  # the status bar's advice after a divergence
        self.epoch_history: list[tuple[int, int, dict[str, float]]] = []
        self.context: TrainingContext | None = None
        self.doc = ProjectDocument(new_project())
        self.session = TrainingSession(self._training_project, self)
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
        self.panel.dataset_loaded.connect(self._on_panel_dataset_loaded)
        self._build_plots()
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect()

        self._default_state = self.saveState(STATE_VERSION)
        self._status_report = None  # the latest report, until the status bar shows it
        self._status_shown_at = 0.0
        self._pending_contexts: list[QWidget] = []  # plots still to get the new context
        # 10 frames a second: smooth enough for curves that grow, and every frame's
        # painting holds the GIL that the training thread needs; costly frames (new axes
        # at the start of a run) are spaced further apart while training.
        self.frame_clock = FrameClock(FRAME_MS, FRAME_MAX_MS, FRAME_SHARE, self)
        self.frame_clock.frame.connect(self._on_frame_timer_timeout)
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
        self._restore_layout()
        self._update_title()
        self._on_doc_plan_changed(self.doc.plan)

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
                             "right port to another node to link them")
        self.setCentralWidget(self.view)
        self.palette = LayerPalette(self.view, self)
        self.inspector = Inspector(self.doc, self)
        self.scene.selection_changed.connect(self.inspector.show_selection)
        self.problems = ProblemsList(self.doc, self.scene, self.view, self)
        self.problems.setToolTip("What stops the network from training; click one to show it")

    def _build_plots(self) -> None:
        classes = _load_plot_classes()
        self.plots: dict[str, QWidget] = {}
        self.plot_titles: dict[str, str] = {}
        for name, title, cls_name, tip in PLOTS:
            cls = classes.get(cls_name)
            if cls is None:
                continue
            w = cls(self)
            w.setToolTip(tip)
            self.plots[name] = w
            self.plot_titles[name] = title
        self.diagnosis = None
        try:
            from bplab.ui.diagnosis import DiagnosisPanel
        except ImportError:
            return
        self.diagnosis = DiagnosisPanel(self.apply_fix, self)

    def _dock(self, name: str, title: str, widget: QWidget, tip: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        dock.setToolTip(tip)
        dock.toggleViewAction().setToolTip(f"Show or hide the {title} panel")
        self.docks[name] = dock
        return dock

    def _build_docks(self) -> None:
        self.docks: dict[str, QDockWidget] = {}
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        self.addDockWidget(left, self._dock("palette", "Layers", self.palette,
                                            "Layers: drag one onto the canvas"))
        self.addDockWidget(left, self._dock("inspector", "Inspector", self.inspector,
                                            "The selected layer's settings"))
        self.tabifyDockWidget(self.docks["inspector"],
                              self._dock("problems", "Problems", self.problems,
                                         "What stops the network from training"))
        self.docks["inspector"].raise_()
        self.addDockWidget(right, self._dock("training", "Training", self.panel,
                                             "Data, loss, optimiser and run settings"))
        # Two tab groups under the canvas: pictures of the data and weights on the left,
        # curves and the diagnosis on the right. Split first, then tabify into each group.
        left_group = [n for n, *_ in PLOTS if n in self.plots and n in LEFT_TABS]
        right_group = [n for n, *_ in PLOTS if n in self.plots and n not in LEFT_TABS]
        for name, title, _, tip in PLOTS:
            if name in self.plots:
                self._dock(name, title, self.plots[name], tip)
        if self.diagnosis is not None:
            self._dock("diagnosis", "Diagnosis", self.diagnosis,
                       "What the gradients say about training, with one-click fixes")
            (left_group if "diagnosis" in LEFT_TABS else right_group).append("diagnosis")
        groups = [g for g in (left_group, right_group) if g]
        heads = []
        for i, group in enumerate(groups):
            head = self.docks[group[0]]
            if i == 0:
                self.addDockWidget(bottom, head)
            else:
                self.splitDockWidget(self.docks[groups[0][0]], head, Qt.Orientation.Horizontal)
            heads.append(head)
        for group in groups:
            for name in group[1:]:
                self.tabifyDockWidget(self.docks[group[0]], self.docks[name])
        for head in heads:
            head.raise_()
        if len(heads) == 2:
            self.resizeDocks(heads, [500, 700], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["palette"], self.docks["inspector"]], [320, 420],
                         Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["palette"], self.docks["training"]], [230, 330],
                         Qt.Orientation.Horizontal)
        if heads:
            self.resizeDocks([heads[0]], [340], Qt.Orientation.Vertical)

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

    def _action(self, text: str, slot, shortcut=None, tip: str = "", icon=None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            a.setIcon(self.style().standardIcon(icon))
        keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        tip = tip or text.replace("&", "").rstrip(".")
        a.setToolTip(f"{tip} ({keys})" if keys else tip)
        a.setStatusTip(tip)
        a.triggered.connect(slot)
        return a

    def _build_actions(self) -> None:
        SP = QStyle.StandardPixmap
        self.act_new = self._action("&New", self.new_project, QKeySequence.StandardKey.New,
                                    "Start a new project", SP.SP_FileIcon)
        self.act_open = self._action("&Open...", self.open_dialog, QKeySequence.StandardKey.Open,
                                     "Open a project file", SP.SP_DialogOpenButton)
        self.act_save = self._action("&Save", self.save, QKeySequence.StandardKey.Save,
                                     "Save the project (and its trained weights)",
                                     SP.SP_DialogSaveButton)
        self.act_save_as = self._action("Save &As...", self.save_as,
                                        QKeySequence.StandardKey.SaveAs,
                                        "Save the project under a new name")
        self.act_export_weights = self._action(
            "Export &weights...", self.export_weights_dialog, "Ctrl+E",
            "Write the weights as safetensors, npz, ONNX or PyTorch code")
        self.act_export_csv = self._action(
            "Export plots/metrics &CSV...", self.export_csv_dialog, None,
            "Write every plot's data and the per-epoch metrics as CSV files into a folder")
        self.act_export_image = self._action(
            "Export plot &images...", self.export_images_dialog, None,
            "Write every plot as a PNG image into a folder")
        self.act_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit,
                                     "Close bplab")
        stack = self.doc.undo_stack
        self.act_undo = stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self.act_undo.setIcon(self.style().standardIcon(SP.SP_ArrowBack))
        self.act_undo.setToolTip("Undo the last edit (Ctrl+Z)")
        self.act_redo = stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcut(QKeySequence.StandardKey.Redo)
        self.act_redo.setIcon(self.style().standardIcon(SP.SP_ArrowForward))
        self.act_redo.setToolTip("Redo the last undone edit (Ctrl+Shift+Z)")
        va = self.view.actions_
        for key, tip in (("delete", "Delete the selected layers"),
                         ("copy", "Copy the selected layers"),
                         ("paste", "Paste layers"), ("auto_layout", "Arrange the layers neatly"),
                         ("zoom_in", "Zoom in"), ("zoom_out", "Zoom out"),
                         ("fit", "Fit the whole network in the view")):
            if key in va:
                va[key].setToolTip(tip)
                va[key].setStatusTip(tip)
        self.act_rename = self._action("&Rename layer", self.rename_selected, "F2",
                                       "Give the selected layer a new name")
        self.act_select_all = QAction("Select &all", self.view)
        self.act_select_all.setShortcut(QKeySequence.StandardKey.SelectAll)
        self.act_select_all.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.act_select_all.setToolTip("Select every layer")
        self.act_select_all.triggered.connect(self._on_select_all_triggered)
        self.act_reset_layout = self._action("Reset &layout", self.reset_layout, None,
                                             "Put every panel back where it started")
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for mode in THEMES:
            a = QAction(mode.capitalize(), self, checkable=True)
            a.setToolTip({"system": "Follow the system's light or dark setting",
                          "light": "Light theme", "dark": "Dark theme"}[mode])
            a.setData(mode)
            a.triggered.connect(self._on_theme_action_triggered)
            self.theme_group.addAction(a)
            self.theme_actions[mode] = a
        mode = str(self.settings.value("theme", "system"))
        self.theme_actions.get(mode, self.theme_actions["system"]).setChecked(True)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        m.setToolTipsVisible(True)
        m.addActions([self.act_new, self.act_open])
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.setToolTipsVisible(True)
        self.examples_menu = m.addMenu("E&xamples")
        self.examples_menu.setToolTipsVisible(True)
        for title, path in list_examples():
            a = self.examples_menu.addAction(title)
            a.setToolTip(f"Open the example project {path.name}")
            a.setData(str(path))
            a.triggered.connect(self._on_example_triggered)
        m.addSeparator()
        m.addActions([self.act_save, self.act_save_as])
        m.addSeparator()
        m.addActions([self.act_export_weights, self.act_export_csv, self.act_export_image])
        m.addSeparator()
        m.addAction(self.act_quit)
        self._update_recent_menu()

        m = bar.addMenu("&Edit")
        m.setToolTipsVisible(True)
        m.addActions([self.act_undo, self.act_redo])
        m.addSeparator()
        va = self.view.actions_
        for key in ("delete", "copy", "paste"):
            if key in va:
                m.addAction(va[key])
        m.addAction(self.act_select_all)
        m.addAction(self.act_rename)
        m.addSeparator()
        if "auto_layout" in va:
            m.addAction(va["auto_layout"])

        m = bar.addMenu("&View")
        m.setToolTipsVisible(True)
        for key in ("zoom_in", "zoom_out", "fit"):
            if key in va:
                m.addAction(va[key])
        m.addSeparator()
        tm = m.addMenu("&Theme")
        tm.setToolTipsVisible(True)
        tm.addActions(list(self.theme_actions.values()))
        pm = m.addMenu("&Panels")
        for dock in self.docks.values():
            pm.addAction(dock.toggleViewAction())
        m.addAction(self.act_reset_layout)

        m = bar.addMenu("&Train")
        m.setToolTipsVisible(True)
        m.addActions(self.train_actions.all())

        m = bar.addMenu("&Help")
        about = self._action("&About bplab", self._on_about_triggered, None,
                             "What bplab is and which versions it runs on")
        m.addAction(about)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main toolbar", self)
        tb.setObjectName("toolbar_main")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addActions([self.act_new, self.act_open, self.act_save])
        tb.addSeparator()
        tb.addActions([self.act_undo, self.act_redo])
        tb.addSeparator()
        tb.addActions(self.train_actions.all())
        if "fit" in self.view.actions_:
            tb.addSeparator()
            tb.addAction(self.view.actions_["fit"])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.status_state = QLabel("Ready")
        self.status_state.setToolTip("What training is doing")
        self.status_epoch = QLabel("epoch –")
        self.status_epoch.setToolTip("Completed epochs (passes over the training data)")
        self.status_step = QLabel("step –")
        self.status_step.setToolTip("Optimiser steps taken")
        self.status_speed = QLabel("– steps/s")
        self.status_speed.setToolTip("Training speed")
        self.status_elapsed = QLabel("0:00")
        self.status_elapsed.setToolTip("Training time so far")
        self.status_progress = QProgressBar()
        self.status_progress.setMaximumWidth(160)
        self.status_progress.setRange(0, 1)
        self.status_progress.setValue(0)
        self.status_progress.setTextVisible(True)
        self.status_progress.setToolTip("Progress of this run")
        # Fixed sizes: text that changes width would re-lay out the whole window each time.
        fix_label_size(self.status_state, "Training", "Paused", "Ready")
        fix_label_size(self.status_epoch, "epoch 888,888")
        fix_label_size(self.status_step, "step 88,888,888")
        fix_label_size(self.status_speed, "888,888 steps/s")
        fix_label_size(self.status_elapsed, "888:88:88")
        self.status_progress.setFixedWidth(160)
        for w in (self.status_state, self.status_epoch, self.status_step, self.status_speed,
                  self.status_elapsed, self.status_progress):
            sb.addPermanentWidget(w)

    def _connect(self) -> None:
        doc, s = self.doc, self.session
        doc.dirty_changed.connect(self._on_doc_dirty_changed)
        doc.plan_changed.connect(self._on_doc_plan_changed)
        doc.network_changed.connect(self._on_doc_network_changed)
        doc.settings_changed.connect(self._on_doc_settings_changed)
        doc.project_replaced.connect(self._on_doc_project_replaced)
        s.context_changed.connect(self._on_session_context_changed)
        s.updated.connect(self._on_session_updated)
        s.failed.connect(self._on_session_failed)
        s.diverged.connect(self._on_session_diverged)
        s.message.connect(self._on_session_message)
        s.state_changed.connect(self._on_session_state_changed)
        s.reset_done.connect(self._on_session_reset_done)
        self.scene.message.connect(self._on_session_message)
        if self.diagnosis is not None and hasattr(self.diagnosis, "layers_highlighted"):
            self.diagnosis.layers_highlighted.connect(self._on_diagnosis_layers_highlighted)

    # -- layout and settings --------------------------------------------------------------
    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            screen = QApplication.primaryScreen()
            avail = screen.availableGeometry() if screen is not None else None
            w, h = 1500, 950
            if avail is not None:
                w, h = min(w, avail.width()), min(h, avail.height())
            self.resize(w, h)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state, STATE_VERSION)

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        self.settings.sync()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, STATE_VERSION)
        for dock in self.docks.values():
            dock.setFloating(False)
            dock.show()

    def show_tab(self, name: str) -> bool:
        """Bring a plot (or any dock) to the front by object name or title, e.g. ``"loss"``."""
        key = name.lower().replace(" ", "_").replace("-", "_")
        for n, dock in self.docks.items():
            if key in (n, dock.windowTitle().lower().replace(" ", "_")):
                dock.show()
                dock.raise_()
                return True
        return False

    # -- the project ---------------------------------------------------------------------------
    def base_dir(self) -> Path | None:
        return project_base_dir(self.path)

    def _training_project(self) -> tuple[dict, Path | None]:
        project = project_copy(self.doc.project)
        project.pop("checkpoint", None)
        return project, self.base_dir()

    def _update_title(self) -> None:
        name = self.path.name if self.path is not None else (
            self.doc.get("name") or "Untitled")
        self.setWindowTitle(f"{name}[*] — bplab")
        self.setWindowModified(self.doc.is_dirty)

    def set_project(self, project: dict, path: Path | None) -> None:
        """Show ``project`` (already validated) as the current one, training reset."""
        self.session.reset()
        self.path = Path(path).resolve() if path is not None else None
        self.doc.set_project(project)
        self.epoch_history.clear()
        self._update_title()
        QTimer.singleShot(0, self.view.fit_all)  # once the view has its size
        ckpt = project.get("checkpoint")
        if isinstance(ckpt, str) and ckpt:
            ckpt_path = Path(ckpt)
            if not ckpt_path.is_absolute() and self.path is not None:
                ckpt_path = self.path.parent / ckpt_path
            if ckpt_path.is_file():
                self.session.restore(ckpt_path)
                self.statusBar().showMessage(
                    f"Restoring the trained weights from {ckpt_path.name}...", 5000)
            else:
                self.statusBar().showMessage(
                    f"The checkpoint {ckpt} was not found; training starts afresh.", 8000)

    def maybe_save(self) -> bool:
        """True when the current project may be replaced (saved, discarded or clean)."""
        if not self.doc.is_dirty:
            return True
        answer = self.ask_save_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def ask_save_changes(self) -> str:
        """``"save"``, ``"discard"`` or ``"cancel"`` (tests monkeypatch this)."""
        box = QMessageBox(QMessageBox.Icon.Question, "bplab",
                          "The project has unsaved changes.", parent=self)
        box.setInformativeText("Save them before closing the project?")
        box.setStandardButtons(QMessageBox.StandardButton.Save
                               | QMessageBox.StandardButton.Discard
                               | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(answer), "cancel")

    def get_open_path(self, caption: str, filter_: str) -> str | None:
        start = str(self.path.parent if self.path else Path.home())
        path, _ = QFileDialog.getOpenFileName(self, caption, start, filter_)
        return path or None

    def get_save_path(self, caption: str, suggested: str, filter_: str) -> str | None:
        start = str((self.path.parent if self.path else Path.home()) / suggested)
        path, chosen = QFileDialog.getSaveFileName(self, caption, start, filter_)
        if not path:
            return None
        if not Path(path).suffix:
            for ext, f in EXPORT_FILTERS.items():
                if f == chosen:
                    path += ext
        return path

    def get_directory(self, caption: str) -> str | None:
        start = str(self.path.parent if self.path else Path.home())
        path = QFileDialog.getExistingDirectory(self, caption, start)
        return path or None

    def new_project(self) -> None:
        if self.maybe_save():
            self.set_project(new_project(), None)

    def open_dialog(self) -> None:
        path = self.get_open_path("Open a project", PROJECT_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path, as_copy: bool = False) -> bool:
        """Open a project file; ``as_copy`` opens it untitled (examples are not overwritten)."""
        if not self.maybe_save():
            return False
        try:
            project = load_project(path)
        except BplabError as exc:
            self.show_error(ErrorInfo.from_exception(exc, "Cannot open the project"))
            return False
        if as_copy:
            project.pop("checkpoint", None)
        self.set_project(project, None if as_copy else Path(path))
        if not as_copy:
            self._add_recent(Path(path))
        self.statusBar().showMessage(f"Opened {Path(path).name}", 4000)
        return True

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self.save_to(self.path)

    def save_as(self) -> bool:
        suggested = (self.path.name if self.path else
                     _slug(str(self.doc.get("name") or "untitled")) + ".bplab.json")
        path = self.get_save_path("Save the project", suggested, PROJECT_FILTER)
        if not path:
            return False
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        """Write the project (and, when trained, its checkpoint next to it) to ``path``."""
        path = Path(path).resolve()
        data = self.doc.to_project()
        old_ckpt = data.pop("checkpoint", None)
        try:
            ckpt_name = self._write_checkpoint(path, old_ckpt)
            if ckpt_name:
                data["checkpoint"] = ckpt_name
            save_project(path, data)
        except (BplabError, OSError) as exc:
            self.show_error(ErrorInfo.from_exception(exc, f"Cannot save {path.name}"))
            return False
        self.path = path
        self.doc.mark_saved()
        self._add_recent(path)
        self._update_title()
        self.statusBar().showMessage(f"Saved {path.name}" + (
            f" with its trained weights ({ckpt_name})" if ckpt_name else ""), 5000)
        return True

    def _write_checkpoint(self, path: Path, old: str | None) -> str | None:
        stem = path.name[:-len(".bplab.json")] if path.name.endswith(".bplab.json") else path.stem
        name = f"{stem}.ckpt.npz"
        target = path.parent / name
        s = self.session
        if s.has_progress and not s.stale:
            was_running = s.state == RUNNING
            if was_running:
                s.pause()
            if not s.wait_idle(30.0):
                raise OSError(f"{name}: training did not pause in time; try again")
            s.trainer.save_checkpoint(target)
            return name
        pending = s.checkpoint
        if pending is not None and Path(pending).is_file():
            if Path(pending).resolve() != target.resolve():
                shutil.copyfile(pending, target)
            return name
        return None

    # -- recent files ------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: Path) -> None:
        p = str(Path(path).resolve())
        files = [f for f in self.recent_files() if f != p]
        files.insert(0, p)
        self.settings.setValue("recent", files[:MAX_RECENT])
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        files = self.recent_files()
        for f in files:
            a = menu.addAction(Path(f).name)
            a.setToolTip(f)
            a.setData(f)
            a.triggered.connect(self._on_recent_triggered)
        if files:
            menu.addSeparator()
            clear = menu.addAction("Clear the list")
            clear.setToolTip("Forget the recently opened projects")
            clear.triggered.connect(self._on_clear_recent_triggered)
        menu.setEnabled(bool(files))

    # -- export ------------------------------------------------------------------------------
    def _network_for_export(self):
        """The trained network, or one built from the project (and a sentence saying so)."""
        s = self.session
        if s.trainer is not None and not s.stale:
            if s.state == RUNNING:
                s.pause()
            s.wait_idle(30.0)
            if s.trainer is not None:
                return s.trainer.network, None
        from bplab.graph import Network

        project, _ = self._training_project()
        cfg = project.get("training") or {}
        net = Network(project["network"], dtype=cfg.get("dtype", "float32"), backend="numpy",
                      seed=cfg.get("seed", 0))
        return net, ("The network has not been trained yet: its freshly initialised weights "
                     "were exported.")

    def export_weights_dialog(self) -> None:
        filters = ";;".join(EXPORT_FILTERS.values())
        stem = self.path.name.split(".")[0] if self.path else _slug(
            str(self.doc.get("name") or "weights"))
        path = self.get_save_path("Export weights", f"{stem}.safetensors", filters)
        if path:
            self.export_weights(path)

    def export_weights(self, path: str | Path) -> bool:
        from bplab.io.export import export_weights

        path = Path(path)
        if path.suffix.lower() not in EXPORT_FILTERS:
            self.show_error(ErrorInfo(
                f"Cannot export weights to '{path.name}': unknown format.",
                "Use one of the extensions " + ", ".join(EXPORT_FILTERS) + "."))
            return False
        try:
            net, note = self._network_for_export()
            project, _ = self._training_project()
            export_weights(net, path, project=project)
        except ImportError as exc:
            self.show_error(ErrorInfo(
                f"Cannot export to {path.suffix}: {exc}.",
                "Install the missing package (for ONNX: pip install onnx), or choose "
                "safetensors or npz.", ErrorInfo.from_exception(exc).details))
            return False
        except Exception as exc:  # noqa: BLE001 - any exporter failure becomes a message box
            self.show_error(ErrorInfo.from_exception(exc, f"Cannot export the weights to "
                                                          f"{path.name}"))
            return False
        msg = f"Exported the weights to {path.name}."
        if note:
            msg = f"{msg} {note}"
        self.statusBar().showMessage(msg, 8000)
        return True

    def export_csv_dialog(self) -> None:
        folder = self.get_directory("Export plots and metrics as CSV into a folder")
        if folder:
            self.export_csv(folder)

    def export_csv(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        written = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, plot in self.plots.items():
                p = folder / f"{name}.csv"
                plot.export_csv(p)
                written.append(p)
            p = folder / "metrics.csv"
            keys = sorted({k for _, _, m in self.epoch_history for k in m})
            with open(p, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["epoch", "step", *keys])
                for epoch, step, m in self.epoch_history:
                    w.writerow([epoch, step, *(repr(m.get(k, math.nan)) for k in keys)])
            written.append(p)
        except Exception as exc:  # noqa: BLE001
            self.show_error(ErrorInfo.from_exception(exc, "Cannot export the CSV files"))
            return written
        self.statusBar().showMessage(f"Wrote {len(written)} CSV files to {folder}", 6000)
        return written

    def export_images_dialog(self) -> None:
        folder = self.get_directory("Export every plot as a PNG into a folder")
        if not folder:
            return
        try:
            for name, plot in self.plots.items():
                plot.refresh()
                plot.export_image(Path(folder) / f"{name}.png")
        except Exception as exc:  # noqa: BLE001
            self.show_error(ErrorInfo.from_exception(exc, "Cannot export the plot images"))
            return
        self.statusBar().showMessage(f"Wrote {len(self.plots)} images to {folder}", 6000)

    # -- diagnosis fixes -----------------------------------------------------------------------
    def apply_fix(self, fix: Any) -> None:
        """Turn a diagnosis fix into one undoable macro of edits and highlight what changed."""
        from bplab.ui.commands import InsertNodeAfter, ReplaceNodeType, SetNodeParam, make_node
        from bplab.ui.diagnosis import fix_to_edits

        try:
            edits = fix_to_edits(fix, self.doc.project)
        except Exception as exc:  # noqa: BLE001
            self.show_error(ErrorInfo.from_exception(exc, "Cannot apply the fix"))
            return
        if not edits:
            return
        title = getattr(fix, "description", None) or "diagnosis fix"
        stack = self.doc.undo_stack
        touched: list[str] = []
        stack.beginMacro(f"Apply: {title}")
        try:
            for edit in edits:
                kind = edit[0]
                if kind == "set_param":
                    _, nid, key, value = edit
                    stack.push(SetNodeParam(self.doc, nid, key, value))
                    touched.append(nid)
                elif kind == "replace_type":
                    _, nid, type_name = edit
                    stack.push(ReplaceNodeType(self.doc, nid, type_name))
                    touched.append(nid)
                elif kind == "insert_after":
                    _, nid, type_name = edit
                    node = make_node(self.doc, type_name)
                    x, y = self.doc.position(nid) or (0.0, 0.0)
                    stack.push(InsertNodeAfter(self.doc, node, nid, (x, y + 90.0)))
                    touched.append(node["id"])
                elif kind == "set_value":
                    _, path, value = edit
                    self.doc.set_value(path, value)
        finally:
            stack.endMacro()
        if touched:
            self.scene.highlight([t for t in touched if self.doc.has_node(t)])
        self.statusBar().showMessage(f"Applied: {title} (Undo reverts it)", 6000)

    # -- errors --------------------------------------------------------------------------------
    def show_error(self, info: ErrorInfo) -> QMessageBox:
        self.last_error = show_error(self, info)
        return self.last_error

    # -- slots: document -------------------------------------------------------------------------
    def _on_doc_dirty_changed(self, dirty: bool) -> None:
        self.setWindowModified(dirty)

    def _on_doc_plan_changed(self, plan) -> None:
        problems = getattr(plan, "problems", [])
        if problems:
            p = problems[0]
            text = p.message if p.node is None else f"{p.node}: {p.message}"
            if len(problems) > 1:
                text += f" (and {len(problems) - 1} more in the Problems panel)"
            self.train_actions.set_problem(text)
        else:
            self.train_actions.set_problem(None)
        if hasattr(self, "_prepare_timer"):
            self._prepare_timer.start()

    def _on_doc_network_changed(self) -> None:
        self.session.invalidate("The network changed")

    def _on_doc_settings_changed(self, path: str) -> None:
        head = path.split(".")[0]
        if path == "optimizer.lr":
            lr = self.doc.get("optimizer.lr")
            if isinstance(lr, (int, float)) and lr >= 0:
                self.session.set_lr(float(lr))
                self.statusBar().showMessage(f"Learning rate {lr:g}: applies at the next step",
                                             4000)
        elif path == "training.epochs":
            epochs = self.doc.get("training.epochs")
            if isinstance(epochs, int) and epochs >= 0:
                self.session.set_epochs(epochs)
        elif head == "dataset":
            self.session.invalidate("The data set changed")
        elif head in ("network", "loss", "optimizer", "training"):
            self.session.invalidate("The training settings changed")
        if head == "training":  # the run's length: the prepared plots' x range
            self._prepare_timer.start()
        self._update_title()

    def _on_doc_project_replaced(self) -> None:
        self._update_title()

    # -- slots: training -----------------------------------------------------------------------
    def _on_panel_dataset_loaded(self, ds) -> None:
        """Before a run (or after its data changed) the boundary view shows the data and the
        progress bar the run's length, instead of empty axes and "step 0 of 1"; every plot
        is set up for the run (see prepare_plots)."""
        self._preview_ds = ds
        self.prepare_plots(data_changed=True)


    def prepare_plots(self, data_changed: bool = False) -> None:
        """Set every plot up for the next run before Run is pressed.

        Making the items (curves and legends per layer, the data points under the decision
        boundary) and painting them the first time is one-off work; done while the user
        looks at the window, it no longer competes with the first training steps. The
        context is the one the trainer will report (:func:`plan_context`); when it does,
        the plots only clear their histories.

        While the plots still show a finished run, only a new data set (``data_changed``)
        replaces what the boundary and the progress bars show; the rest waits for Run.
        """
        ds, s = self._preview_ds, self.session
        if ds is None or s.state != IDLE or not (s.stale or s.worker.trainer is None):
            return
        fresh = s.worker.trainer is None
        if not (fresh or data_changed):
            return
        boundary = self.plots.get("boundary")
        try:
            cfg = training_config(self.doc.project)
        except BplabError:
            if boundary is not None:
                boundary.prepare(dataset_context(ds))
                boundary.refresh()
            return
        bs = len(ds.x_train) if cfg["batch_size"] == "full" else cfg["batch_size"]
        per_epoch = max(1, math.ceil(len(ds.x_train) / max(1, min(bs, len(ds.x_train)))))
        total = cfg["steps"] if cfg["steps"] is not None else cfg["epochs"] * per_epoch
        self.controls.set_progress(0, total)
        self._set_progress(0, total)
        plan = self.doc.plan
        ctx = (plan_context(plan, ds, total, per_epoch) if plan.ok
               else dataset_context(ds, total_steps=total, steps_per_epoch=per_epoch))
        key = (id(ds), ctx.layer_names, ctx.layer_types, ctx.activation_layers, total, per_epoch)
        if key == self._prepared:
            return
        self._prepared = key
        for plot in self.plots.values():
            if plot is boundary or (fresh and plan.ok):
                plot.prepare(ctx)
                plot.refresh()

    def _on_session_context_changed(self, ctx: TrainingContext) -> None:
        self.context = ctx
        self._prepared = None
        self.epoch_history.clear()
        # Plots on screen set up now; the ones behind tabs one per turn of the event loop,
        # so the window never freezes for all of them at once (training has started and
        # competes for the GIL). An update that arrives first flushes the rest.
        self._pending_contexts = [p for p in self.plots.values() if not _on_screen(p)]
        for plot in self.plots.values():
            if plot not in self._pending_contexts:
                plot.set_context(ctx)
        if self.diagnosis is not None and hasattr(self.diagnosis, "set_context"):
            self.diagnosis.set_context(ctx)
        if self._pending_contexts:
            QTimer.singleShot(0, self._on_pending_context_timeout)
        self.controls.set_progress(0, ctx.total_steps)
        self._set_progress(0, ctx.total_steps)
        boundary = self.docks.get("boundary")
        # Nothing to draw for this data: show the weights' histograms there instead.
        if (boundary is not None and not ctx.is_2d and "histograms" in self.docks
                and not boundary.visibleRegion().isEmpty()):
            self.docks["histograms"].raise_()

    def _on_pending_context_timeout(self) -> None:
        if self._pending_contexts and self.context is not None:
            self._pending_contexts.pop(0).set_context(self.context)
        if self._pending_contexts:
            QTimer.singleShot(0, self._on_pending_context_timeout)

    def _flush_pending_contexts(self) -> None:
        while self._pending_contexts and self.context is not None:
            self._pending_contexts.pop(0).set_context(self.context)
        self._pending_contexts = []

    def _on_session_updated(self, update: TrainingUpdate) -> None:
        self._flush_pending_contexts()
        r = update.latest
        total = r.total_steps or (self.context.total_steps if self.context else None)
        # The engine's own rate is measured over 0.25 s: the first updates come sooner.
        rate = r.steps_per_second or (r.step / r.elapsed if r.elapsed > 0 else 0.0)
        for plot in self.plots.values():
            plot.add_update(update)
            plot.note_progress(r.step, total, rate)
        if self.diagnosis is not None and hasattr(self.diagnosis, "add_update"):
            self.diagnosis.add_update(update)
        for r in update.epoch_reports:
            if r.metrics:
                self.epoch_history.append((r.epoch, r.step, dict(r.metrics)))
        # Shown at the next frame: labels and progress bars repaint (a QProgressBar even
        # synchronously) and only the latest numbers matter.
        self._status_report = update.latest

    def _show_status(self) -> None:
        r = self._status_report
        if r is None:
            return
        now = time.monotonic()
        if self.session.state == RUNNING and now - self._status_shown_at < STATUS_S:
            return  # a few times a second is plenty for numbers that change every frame
        self._status_report, self._status_shown_at = None, now
        total = r.total_steps or (self.context.total_steps if self.context else r.step)
        self.status_epoch.setText(f"epoch {r.epoch}")
        self.status_step.setText(f"step {r.step:,}")
        if r.steps_per_second > 0:
            self.status_speed.setText(f"{r.steps_per_second:,.0f} steps/s")
        self.status_elapsed.setText(_clock(r.elapsed))
        self.controls.set_progress(r.step, total)
        self._set_progress(r.step, total)

    def _set_progress(self, step: int, total: int) -> None:
        total = max(int(total), 1)
        self.status_progress.setRange(0, total)
        self.status_progress.setValue(min(int(step), total))

    def _on_session_failed(self, info: ErrorInfo) -> None:
        self.show_error(info)

    def _on_session_diverged(self, message: str) -> None:
        from bplab.ui.training.divergence import DivergenceDialog

        self._divergence_status = (f"{message} Lower the learning rate and Resume, or Reset "
                                   "the weights.")
        self.statusBar().showMessage(self._divergence_status)  # until training runs again
        lr = self.doc.get("optimizer.lr")
        box = DivergenceDialog(message, float(lr) if isinstance(lr, (int, float)) else None,
                               self)
        box.resume_requested.connect(self._on_divergence_resume_requested)
        box.reset_requested.connect(self._on_divergence_reset_requested)
        self.last_error = box
        box.open()

    def _on_divergence_resume_requested(self, lr: float) -> None:
        self.doc.set_value("optimizer.lr", lr)  # undoable; the worker takes it before a step
        self.session.run()

    def _on_divergence_reset_requested(self, lr: float) -> None:
        self.doc.set_value("optimizer.lr", lr)
        self.session.reset()
        self.session.run()

    def _on_session_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_session_state_changed(self, state: str) -> None:
        self.frame_clock.adaptive = state == RUNNING
        self.status_state.setText({"idle": "Ready", "running": "Training",
                                   "paused": "Paused"}.get(state, state))
        if state == RUNNING and self.statusBar().currentMessage() == self._divergence_status:
            self.statusBar().clearMessage()

    def _on_session_reset_done(self) -> None:
        self._status_report = None
        self._flush_pending_contexts()
        self.epoch_history.clear()
        for plot in self.plots.values():
            plot.reset()
        if self.diagnosis is not None and hasattr(self.diagnosis, "reset"):
            self.diagnosis.reset()
        self.status_epoch.setText("epoch –")
        self.status_step.setText("step –")
        self.status_speed.setText("– steps/s")
        self.status_elapsed.setText("0:00")
        self._set_progress(0, 1)
        self.controls.set_progress(0, 1)

    def _on_diagnosis_layers_highlighted(self, layer_ids: list) -> None:
        ids = [i for i in layer_ids if self.doc.has_node(i)]
        if ids:
            self.scene.highlight(ids)
        else:
            self.scene.clear_highlight()

    def _on_frame_timer_timeout(self) -> None:
        # No more updates than frames: each costs the GUI thread a turn at the GIL.
        worker = self.session.worker
        worker.emit_interval = max(type(worker).emit_interval, self.frame_clock.gap)
        self._show_status()
        # Only what is on screen is redrawn; a plot brought to the front catches up here.
        for plot in self.plots.values():
            if _on_screen(plot):
                plot.refresh()
        d = self.diagnosis
        if d is not None and hasattr(d, "refresh") and _on_screen(d):
            d.refresh()

    # -- slots: menus ----------------------------------------------------------------------------
    def _on_example_triggered(self) -> None:
        path = self.sender().data()
        if path:
            self.open_path(path, as_copy=True)

    def _on_recent_triggered(self) -> None:
        path = self.sender().data()
        if path:
            self.open_path(path)

    def _on_clear_recent_triggered(self) -> None:
        self.settings.setValue("recent", [])
        self._update_recent_menu()

    def _on_select_all_triggered(self) -> None:
        self.scene.select_nodes(self.doc.node_ids())

    def _on_theme_action_triggered(self) -> None:
        mode = self.sender().data()
        self.settings.setValue("theme", mode)
        if self.theme is not None:
            self.theme.set_mode(mode)

    def _on_about_triggered(self) -> None:
        from PySide6 import __version__ as qt_version

        from bplab import __version__

        QMessageBox.about(self, "About bplab",
                          f"<b>bplab {__version__}</b><br>A lab for training neural networks "
                          f"by backpropagation and seeing it happen.<br><br>PySide6 "
                          f"{qt_version}, Python {sys.version.split()[0]}")

    # -- events --------------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            QTimer.singleShot(0, self.view.fit_all)

    def dragEnterEvent(self, event) -> None:
        if _dropped_project(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        path = _dropped_project(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        # Open after the drop returns: a modal question inside a drop handler upsets some
        # platforms' drag-and-drop loops.
        self._dropped = path
        QTimer.singleShot(0, self._open_dropped)

    def _open_dropped(self) -> None:
        path, self._dropped = getattr(self, "_dropped", None), None
        if path:
            self.open_path(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.automation and not self.maybe_save():
            event.ignore()
            return
        self.frame_clock.stop()
        if not self.automation:  # scripted runs leave the user's layout alone
            self.save_layout()
        self.session.shutdown()
        event.accept()


def _on_screen(widget: QWidget) -> bool:
    """Shown and not covered (a dock behind another tab is neither)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def _dropped_project(mime) -> str | None:
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and url.toLocalFile().lower().endswith(".json"):
            return url.toLocalFile()
    return None


def _slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "_" for c in text).strip("_")
    while "__" in out:
        out = out.replace("__", "_")
    return out or "untitled"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"

