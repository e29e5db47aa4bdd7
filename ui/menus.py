"""The window's actions, and the menu bar and toolbar that show them.

:class:`WindowMenus` makes every action of the window (``act_*``, ``theme_actions``) and
connects it to the object that does the work: the file handling
(:class:`~bplab.ui.project_files.ProjectFiles`), the exports
(:class:`~bplab.ui.export_actions.ExportActions`), the dock layout, the training actions
and the editor view's own actions. It also answers View > Theme and Help > About.
"""

from __future__ import annotations

import sys

from bplab.ui.editor.hover_card import HoverCards
from bplab.ui.editor.unit_maps import UnitMapsView
from bplab.ui.examples import ExamplesMenu
from bplab.ui.help import ConceptsDialog, ShortcutsDialog
from bplab.ui.theme import THEMES
from bplab.ui.tour import QuickTour
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QStyle, QToolBar
from shiboken6 import isValid

__all__ = ["WindowMenus"]

SP = QStyle.StandardPixmap
VIEW_TIPS = (("delete", "Delete the selected layers"), ("copy", "Copy the selected layers"),
             ("paste", "Paste layers"), ("auto_layout", "Arrange the layers neatly"),
             ("zoom_in", "Zoom in"), ("zoom_out", "Zoom out"),
             ("fit", "Fit the whole network in the view"))


class WindowMenus(QObject):
    """Actions, menu bar and toolbar of the window (see the module)."""

    def __init__(self, window: QMainWindow):
        """``window`` is the :class:`~bplab.ui.main_window.MainWindow` with its ``files``,
        ``exports``, ``dock_layout``, ``train_actions`` and editor made (not imported here:
        it imports this module)."""
        super().__init__(window)
        self.window = window
        self.examples = ExamplesMenu(window.files, self)
        self._build_file_actions()
        self._build_edit_actions()
        self._build_theme_actions()
        self._build_menus()
        self._build_toolbar()

    def _action(self, text: str, slot, shortcut=None, tip: str = "", icon=None) -> QAction:
        a = QAction(text, self.window)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            a.setIcon(self.window.style().standardIcon(icon))
        keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        tip = tip or text.replace("&", "").rstrip(".")
        a.setToolTip(f"{tip} ({keys})" if keys else tip)
        a.setStatusTip(tip)
        a.triggered.connect(slot)
        return a

    def _build_file_actions(self) -> None:
        files, exports, Key = self.window.files, self.window.exports, QKeySequence.StandardKey
        self.act_new = self._action("&New", files.new_project, Key.New,
                                    "Start a new project", SP.SP_FileIcon)
        self.act_open = self._action("&Open...", files.open_dialog, Key.Open,
                                     "Open a project file", SP.SP_DialogOpenButton)
        self.act_save = self._action("&Save", files.save, Key.Save,
                                     "Save the project (and its trained weights)",
                                     SP.SP_DialogSaveButton)
        self.act_save_as = self._action("Save &As...", files.save_as, Key.SaveAs,
                                        "Save the project under a new name")
        self.act_export_weights = self._action(
            "Export &weights...", exports.export_weights_dialog, "Ctrl+E",
            "Write the weights as safetensors, npz, ONNX or PyTorch code")
        self.act_export_best = self._action(
            "Export &best weights...", exports.export_best_weights_dialog, None,
            "Write the weights of the epoch with the lowest validation loss")
        self.act_export_bundle = self._action(
            "Export for &PyTorch (train.py, torchrun)...", exports.export_bundle_dialog, None,
            "Write model.py, train.py, the data and initial weights into a folder: the run in "
            "PyTorch, ready for torchrun")
        self.act_export_csv = self._action(
            "Export plots/metrics &CSV...", exports.export_csv_dialog, None,
            "Write every plot's data and the per-epoch metrics as CSV files into a folder")
        self.act_export_image = self._action(
            "Export plot &images...", exports.export_images_dialog, None,
            "Write every plot as a PNG image into a folder")
        self.act_quit = self._action("&Quit", self.window.close, Key.Quit, "Close bplab")

    def _build_edit_actions(self) -> None:
        w = self.window
        stack = w.doc.undo_stack
        self.act_undo = stack.createUndoAction(w, "&Undo")
        self.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self.act_undo.setIcon(w.style().standardIcon(SP.SP_ArrowBack))
        self.act_undo.setToolTip("Undo the last edit (Ctrl+Z)")
        self.act_redo = stack.createRedoAction(w, "&Redo")
        self.act_redo.setShortcut(QKeySequence.StandardKey.Redo)
        self.act_redo.setIcon(w.style().standardIcon(SP.SP_ArrowForward))
        self.act_redo.setToolTip("Redo the last undone edit (Ctrl+Shift+Z)")
        # The toolbar shows a word; the whole sentence ("Undo Set training.epochs") is the
        # menu entry's text and the button's tooltip.
        self.act_undo.setIconText("Undo")
        self.act_redo.setIconText("Redo")
        stack.undoTextChanged.connect(self._on_stack_undo_text_changed)
        stack.redoTextChanged.connect(self._on_stack_redo_text_changed)
        va = w.view.actions_
        for key, tip in VIEW_TIPS:
            if key in va:
                va[key].setToolTip(tip)
                va[key].setStatusTip(tip)
        self.act_rename = self._action("&Rename layer", w.rename_selected, "F2",
                                       "Give the selected layer a new name")
        self.act_select_all = QAction("Select &all", w.view)
        self.act_select_all.setShortcut(QKeySequence.StandardKey.SelectAll)
        self.act_select_all.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.act_select_all.setToolTip("Select every layer")
        self.act_select_all.triggered.connect(self._on_select_all_triggered)
        self.act_reset_layout = self._action("Reset &layout", w.dock_layout.reset, None,
                                             "Put every panel back where it started")

    def _build_theme_actions(self) -> None:
        self.theme_group = QActionGroup(self.window)
        self.theme_actions: dict[str, QAction] = {}
        for mode in THEMES:
            a = QAction(mode.capitalize(), self.window, checkable=True)
            a.setToolTip({"system": "Follow the system's light or dark setting",
                          "light": "Light theme", "dark": "Dark theme"}[mode])
            a.setData(mode)
            a.triggered.connect(self._on_theme_action_triggered)
            self.theme_group.addAction(a)
            self.theme_actions[mode] = a
        mode = str(self.window.settings.value("theme", "system"))
        self.theme_actions.get(mode, self.theme_actions["system"]).setChecked(True)

    def _build_menus(self) -> None:
        w = self.window
        bar = w.menuBar()
        m = bar.addMenu("&File")
        m.setToolTipsVisible(True)
        m.addActions([self.act_new, self.act_open])
        recent_menu = m.addMenu("Open &Recent")
        self.examples_menu = m.addMenu("E&xamples")
        self.examples.fill(self.examples_menu)
        m.addSeparator()
        m.addActions([self.act_save, self.act_save_as])
        m.addSeparator()
        m.addActions([self.act_export_weights, self.act_export_best, self.act_export_bundle,
                      self.act_export_csv, self.act_export_image])
        m.addSeparator()
        m.addAction(self.act_quit)
        w.files.show_recent_in(recent_menu)

        m = bar.addMenu("&Edit")
        m.setToolTipsVisible(True)
        m.addActions([self.act_undo, self.act_redo])
        m.addSeparator()
        va = w.view.actions_
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
        # Issue 14: unit maps beside the nodes (a toggle), a live card on any hovered node
        self.unit_maps = UnitMapsView(w.scene, w.session, self)
        self.hover_cards = HoverCards(w.scene, w.session, self)
        m.addAction(self.unit_maps.action)
        tm = m.addMenu("&Theme")
        tm.setToolTipsVisible(True)
        tm.addActions(list(self.theme_actions.values()))
        pm = m.addMenu("&Panels")
        for dock in w.dock_layout.docks.values():
            pm.addAction(dock.toggleViewAction())
        m.addAction(self.act_reset_layout)

        m = bar.addMenu("&Train")
        m.setToolTipsVisible(True)
        m.addActions(w.train_actions.all())
        m.addSeparator()
        self.act_revert_best = self._action(
            "Revert to &best epoch", self._on_revert_best_triggered, None,
            "Load the weights of the epoch with the lowest validation loss; Run goes on "
            "from them")
        m.addAction(self.act_revert_best)
        self.act_step_through = self._action(
            "Step thro&ugh…", self._on_step_through_triggered, None,
            "Walk one training step node by node: forward, loss, backward, update")
        m.addAction(self.act_step_through)

        m = bar.addMenu("&Help")
        m.setToolTipsVisible(True)
        self.act_tour = self._action("Quick &tour", self._on_tour_triggered, "F1",
                                     "A few steps around the window: palette, canvas, "
                                     "training, plots and diagnosis")
        self.act_shortcuts = self._action("&Keyboard shortcuts", self._on_shortcuts_triggered,
                                          "Ctrl+/", "Every action's keyboard shortcut")
        self.act_concepts = self._action("&Concepts", self._on_concepts_triggered, None,
                                         "Backpropagation, gradients, dead units and the "
                                         "other words bplab uses, explained")
        about = self._action("&About bplab", self._on_about_triggered, None,
                             "What bplab is and which versions it runs on")
        m.addActions([self.act_tour, self.act_shortcuts, self.act_concepts])
        m.addSeparator()
        m.addAction(about)

    def _build_toolbar(self) -> None:
        w = self.window
        tb = QToolBar("Main toolbar", w)
        tb.setObjectName("toolbar_main")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addActions([self.act_new, self.act_open, self.act_save])
        tb.addSeparator()
        tb.addActions([self.act_undo, self.act_redo])
        tb.addSeparator()
        tb.addActions(w.train_actions.all())
        if "fit" in w.view.actions_:
            tb.addSeparator()
            tb.addAction(w.view.actions_["fit"])
        w.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

    # -- slots ---------------------------------------------------------------------------------
    def _on_stack_undo_text_changed(self, text: str) -> None:
        if not isValid(self.act_undo):  # the window is being destroyed before its stack
            return
        keys = self.act_undo.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        self.act_undo.setToolTip(f"Undo {text} ({keys})" if text else
                                 f"Undo the last edit ({keys})")

    def _on_stack_redo_text_changed(self, text: str) -> None:
        if not isValid(self.act_redo):
            return
        keys = self.act_redo.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        self.act_redo.setToolTip(f"Redo {text} ({keys})" if text else
                                 f"Redo the last undone edit ({keys})")

    def _on_revert_best_triggered(self) -> None:
        self.window.run_view.revert_to_best()  # made after the menus

    def _on_step_through_triggered(self) -> None:
        self.window.stepper.start()  # made after the menus

    def _on_select_all_triggered(self) -> None:
        self.window.scene.select_nodes(self.window.doc.node_ids())

    def _on_theme_action_triggered(self) -> None:
        mode = self.sender().data()
        self.window.settings.setValue("theme", mode)
        if self.window.theme is not None:
            self.window.theme.set_mode(mode)

    def _on_tour_triggered(self) -> None:
        if getattr(self, "tour", None) is None:
            self.tour = QuickTour(self.window)
        self.tour.start()

    def _on_shortcuts_triggered(self) -> None:
        self.help_dialog = ShortcutsDialog(self.window)
        self.help_dialog.show()

    def _on_concepts_triggered(self) -> None:
        self.help_dialog = ConceptsDialog(self.window)
        self.help_dialog.show()

    def _on_about_triggered(self) -> None:
        from PySide6 import __version__ as qt_version

        from bplab import __version__

        QMessageBox.about(self.window, "About bplab",
                          f"<b>bplab {__version__}</b><br>A lab for training neural networks "
                          f"by backpropagation and seeing it happen.<br><br>PySide6 "
                          f"{qt_version}, Python {sys.version.split()[0]}")
