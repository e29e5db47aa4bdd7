"""Errors shown to people: a short sentence, the remedy, and the traceback under "details".

:class:`ErrorInfo` is what a failure becomes before it reaches a widget (the training worker
emits one); :func:`show_error` shows it in a non-blocking message box (Orange's informative
and detailed text). :func:`install_excepthooks` routes uncaught exceptions of the GUI thread
and of any Python thread to such a box, so nothing dies silently.
"""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from bplab.backend import BackendUnavailable
from bplab.errors import BplabError

__all__ = ["ErrorInfo", "install_excepthooks", "show_error"]


@dataclass(frozen=True)
class ErrorInfo:
    text: str  # one sentence: what went wrong
    remedy: str  # what to do about it
    details: str = ""  # the traceback

    @classmethod
    def from_exception(cls, exc: BaseException, doing: str = "") -> ErrorInfo:
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        prefix = f"{doing}: " if doing else ""
        if isinstance(exc, BackendUnavailable):
            return cls(prefix + str(exc), "Choose the CPU backend in the training panel, or "
                       "install the CuPy build that matches your CUDA driver.", details)
        if isinstance(exc, BplabError):
            return cls(prefix + str(exc), "Fix the setting it names, then try again.", details)
        if isinstance(exc, MemoryError):
            return cls(prefix + "out of memory.", "Lower the batch size, the number of "
                       "samples or the size of the network.", details)
        if isinstance(exc, OSError):
            where = f"{exc.filename}: " if exc.filename else ""
            return cls(prefix + f"{where}{exc.strerror or exc}", "Check the path and its "
                       "permissions, then try again.", details)
        return cls(prefix + f"unexpected {type(exc).__name__}: {exc}",
                   "This is likely a bug in bplab; the details below help to report it.",
                   details)


def show_error(parent: QWidget | None, info: ErrorInfo, title: str = "bplab") -> QMessageBox:
    """Show ``info`` in a window-modal box that does not block the caller (tests can read it)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(info.text)
    box.setInformativeText(info.remedy)
    if info.details:
        box.setDetailedText(info.details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    if parent is None:
        # A parentless box is owned by its Python wrapper: keep it alive until it closes.
        _orphans.add(box)
        box.finished.connect(box.deleteLater)
        box.destroyed.connect(_orphans_changed)
    box.open()
    return box


_orphans: set[QMessageBox] = set()


def _orphans_changed(_obj=None) -> None:
    for box in list(_orphans):
        try:
            box.isVisible()
        except RuntimeError:  # its C++ side was deleted
            _orphans.discard(box)


class _Relay(QObject):
    """Carries an exception from any thread to the GUI thread (a queued signal)."""

    raised = Signal(object)

    def _on_raised(self, info: ErrorInfo) -> None:
        app = QApplication.instance()
        parent = app.activeWindow() if app is not None else None
        show_error(parent, info, "bplab: unexpected error")


_relay: _Relay | None = None


def install_excepthooks() -> None:
    """Show uncaught exceptions (GUI thread and Python threads) instead of dying silently.

    Each is printed to stderr as before and shown in a message box; call once after the
    QApplication exists.
    """
    global _relay
    if _relay is not None:
        return
    _relay = _Relay()
    _relay.raised.connect(_relay._on_raised)

    def hook(exc_type, exc, tb):
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        _relay.raised.emit(ErrorInfo.from_exception(exc.with_traceback(tb)))

    def thread_hook(args):
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        print(f"Exception in {name}:", file=sys.stderr)
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback,
                                  file=sys.stderr)
        if args.exc_value is not None:
            _relay.raised.emit(ErrorInfo.from_exception(args.exc_value, f"in {name}"))

    sys.excepthook = hook
    threading.excepthook = thread_hook

