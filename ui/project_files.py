"""File handling for the window: new, open, save, save as, recent files, dropped projects.

:class:`ProjectFiles` holds the window and acts on its document, training session and
``path``. The questions it asks (save changes? where?) go through the window's
``ask_save_changes`` and ``get_*_path`` methods, which tests replace. Saving a trained
project writes its checkpoint next to it, so reopening it resumes the training.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bplab.ui.errors import ErrorInfo
from bplab.ui.file_dialogs import PROJECT_FILTER, slug
from bplab.ui.training.worker import RUNNING
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMainWindow, QMenu

from bplab.errors import BplabError
from bplab.io.loading import read_checkpoint
from bplab.io.project import load_project, new_project, save_project

__all__ = ["MAX_RECENT", "ProjectFiles"]

MAX_RECENT = 10


class ProjectFiles(QObject):
    """New/open/save/save-as, the recent files list and project files dropped on the window."""

    def __init__(self, window: QMainWindow):
        """``window`` is the :class:`~bplab.ui.main_window.MainWindow` (not imported here:
        it imports this module)."""
        super().__init__(window)
        self.window = window
        self.recent_menu: QMenu | None = None
        self._dropped: str | None = None

    # -- the current project -------------------------------------------------------------------
    def set_project(self, project: dict, path: Path | None) -> None:
        """Show ``project`` (already validated) as the current one, training reset."""
        w = self.window
        w.session.reset()
        w.path = Path(path).resolve() if path is not None else None
        w.doc.set_project(project)
        w.run_view.epoch_history.clear()
        w.update_title()
        QTimer.singleShot(0, w.view.fit_all)  # once the view has its size
        ckpt = project.get("checkpoint")
        if isinstance(ckpt, str) and ckpt:
            ckpt_path = Path(ckpt)
            if not ckpt_path.is_absolute() and w.path is not None:
                ckpt_path = w.path.parent / ckpt_path
            problem = _unreadable_checkpoint(ckpt_path) if ckpt_path.is_file() else None
            if problem is not None:  # say so once; Run then trains afresh, not into it again
                w.show_error(ErrorInfo(
                    f"The trained weights cannot be restored: {problem}",
                    "Training starts afresh; saving the project writes a new checkpoint.",
                    ""))
            elif ckpt_path.is_file():
                w.session.restore(ckpt_path)
                w.statusBar().showMessage(
                    f"Restoring the trained weights from {ckpt_path.name}...", 5000)
            else:
                w.statusBar().showMessage(
                    f"The checkpoint {ckpt} was not found; training starts afresh.", 8000)

    def maybe_save(self) -> bool:
        """True when the current project may be replaced (saved, discarded or clean)."""
        if not self.window.doc.is_dirty:
            return True
        answer = self.window.ask_save_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    # -- menu commands -------------------------------------------------------------------------
    def new_project(self) -> None:
        if self.maybe_save():
            self.set_project(new_project(), None)

    def open_dialog(self) -> None:
        path = self.window.get_open_path("Open a project", PROJECT_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path, as_copy: bool = False) -> bool:
        """Open a project file; ``as_copy`` opens it untitled (examples are not overwritten)."""
        if not self.maybe_save():
            return False
        try:
            project = load_project(path)
        except Exception as exc:  # a BplabError naming the file; anything else is a bug
            self.window.show_error(ErrorInfo.from_exception(exc, "Cannot open the project"))
            return False
        if as_copy:
            project.pop("checkpoint", None)
        if not self._replace_project(project, None if as_copy else Path(path)):
            return False
        if not as_copy:
            self._add_recent(Path(path))
        self.window.statusBar().showMessage(f"Opened {Path(path).name}", 4000)
        return True

    def _replace_project(self, project: dict, path: Path | None) -> bool:
        """Show ``project``; if the window cannot take it, keep the current one and say why.

        The loader has checked the file, so this only fails on a bug: the window must still
        never die from a file (issue 13).
        """
        w = self.window
        previous, previous_path = w.doc.to_project(), w.path  # (already saved or discarded)
        try:
            self.set_project(project, path)
        except Exception as exc:
            self.set_project(previous, previous_path)
            w.show_error(ErrorInfo.from_exception(exc, "Cannot open the project"))
            return False
        return True

    def save(self) -> bool:
        if self.window.path is None:
            return self.save_as()
        return self.save_to(self.window.path)

    def save_as(self) -> bool:
        w = self.window
        suggested = (w.path.name if w.path else
                     slug(str(w.doc.get("name") or "untitled")) + ".bplab.json")
        path = w.get_save_path("Save the project", suggested, PROJECT_FILTER)
        if not path:
            return False
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        """Write the project (and, when trained, its checkpoint next to it) to ``path``."""
        w = self.window
        path = Path(path).resolve()
        data = w.doc.to_project()
        old_ckpt = data.pop("checkpoint", None)
        try:
            ckpt_name = self._write_checkpoint(path, old_ckpt)
            if ckpt_name:
                data["checkpoint"] = ckpt_name
            save_project(path, data)
        except (BplabError, OSError) as exc:
            w.show_error(ErrorInfo.from_exception(exc, f"Cannot save {path.name}"))
            return False
        w.path = path
        w.doc.mark_saved()
        self._add_recent(path)
        w.update_title()
        w.statusBar().showMessage(f"Saved {path.name}" + (
            f" with its trained weights ({ckpt_name})" if ckpt_name else ""), 5000)
        return True

    def _write_checkpoint(self, path: Path, old: str | None) -> str | None:
        stem = path.name[:-len(".bplab.json")] if path.name.endswith(".bplab.json") else path.stem
        name = f"{stem}.ckpt.npz"
        target = path.parent / name
        s = self.window.session
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

    # -- recent files --------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.window.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def show_recent_in(self, menu: QMenu) -> None:
        """Keep ``menu`` (File > Open Recent) listing the recent files."""
        self.recent_menu = menu
        menu.setToolTipsVisible(True)
        self._update_recent_menu()

    def _add_recent(self, path: Path) -> None:
        p = str(Path(path).resolve())
        files = [f for f in self.recent_files() if f != p]
        files.insert(0, p)
        self.window.settings.setValue("recent", files[:MAX_RECENT])
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        menu = self.recent_menu
        if menu is None:
            return
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

    def _on_recent_triggered(self) -> None:
        path = self.sender().data()
        if path and not self.open_path(path) and not Path(path).exists():
            # a recent file that is gone: the error said so, the list forgets it
            self.window.settings.setValue(
                "recent", [f for f in self.recent_files() if f != path])
            self._update_recent_menu()

    def _on_clear_recent_triggered(self) -> None:
        self.window.settings.setValue("recent", [])
        self._update_recent_menu()

    # -- drag and drop -------------------------------------------------------------------------
    def drag_entered(self, event) -> None:
        """Accept a drag that carries a project file (for dragEnter and dragMove events)."""
        if dropped_project(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropped(self, event) -> None:
        path = dropped_project(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        # Open after the drop returns: a modal question inside a drop handler upsets some
        # platforms' drag-and-drop loops.
        self._dropped = path
        QTimer.singleShot(0, self._on_drop_timeout)

    def _on_drop_timeout(self) -> None:
        path, self._dropped = self._dropped, None
        if path:
            self.open_path(path)


def _unreadable_checkpoint(path: Path) -> str | None:
    """Why ``path`` is no readable checkpoint (damaged, truncated, not one), or None.

    Whether it fits the project (names, shapes, rows) the trainer checks when it loads it.
    """
    try:
        read_checkpoint(path)
    except BplabError as exc:
        return str(exc)
    return None


def dropped_project(mime) -> str | None:
    """The first local ``*.json`` file in dropped data, if any."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and url.toLocalFile().lower().endswith(".json"):
            return url.toLocalFile()
    return None
