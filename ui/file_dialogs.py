"""The questions the window asks about files: save changes?, which file?, which folder?

Plain functions over a parent widget; :class:`~bplab.ui.main_window.MainWindow` calls them
from small methods that tests replace, so no test ever sees a modal dialog.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

__all__ = ["EXPORT_FILTERS", "PROJECT_FILTER", "ask_save_changes", "get_directory",
           "get_open_path", "get_save_path", "slug"]

PROJECT_FILTER = "bplab projects (*.bplab.json *.json);;All files (*)"
EXPORT_FILTERS = {
    ".safetensors": "safetensors (*.safetensors)",
    ".npz": "NumPy archive (*.npz)",
    ".onnx": "ONNX model (*.onnx)",
    ".py": "PyTorch code (*.py)",
}


def ask_save_changes(parent: QWidget) -> str:
    """``"save"``, ``"discard"`` or ``"cancel"``."""
    box = QMessageBox(QMessageBox.Icon.Question, "bplab",
                      "The project has unsaved changes.", parent=parent)
    box.setInformativeText("Save them before closing the project?")
    box.setStandardButtons(QMessageBox.StandardButton.Save
                           | QMessageBox.StandardButton.Discard
                           | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    return {QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard"}.get(
        QMessageBox.StandardButton(answer), "cancel")


def get_open_path(parent: QWidget, start: Path, caption: str, filter_: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, caption, str(start), filter_)
    return path or None


def get_save_path(parent: QWidget, start: Path, caption: str, suggested: str,
                  filter_: str) -> str | None:
    """A path to write; without a suffix, the one of the export format chosen in the dialog."""
    path, chosen = QFileDialog.getSaveFileName(parent, caption, str(start / suggested), filter_)
    if not path:
        return None
    if not Path(path).suffix:
        for ext, f in EXPORT_FILTERS.items():
            if f == chosen:
                path += ext
    return path


def get_directory(parent: QWidget, start: Path, caption: str) -> str | None:
    path = QFileDialog.getExistingDirectory(parent, caption, str(start))
    return path or None


def slug(text: str) -> str:
    """A file name made of ``text``: lower case, runs of other characters as one ``_``."""
    out = "".join(c.lower() if c.isalnum() else "_" for c in text).strip("_")
    while "__" in out:
        out = out.replace("__", "_")
    return out or "untitled"
