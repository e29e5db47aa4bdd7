"""Python's cyclic garbage collection, run only on the GUI thread.

The collector runs in whichever thread happens to allocate past its threshold, and with a
training worker that allocates all the time that is usually the worker. If a reference
cycle holding a Qt widget becomes garbage (pyqtgraph's plot menus live in such cycles;
every closed or rebuilt plot leaves one), the worker then destroys a QWidget: Qt widgets
may only be destroyed on the GUI thread, and here the worker's ``QObject`` destructor
takes Qt's connection lock and then waits for the GIL, while the GUI thread holds the GIL
and waits for that lock. The app froze (seen as a hang in the UI tests, with both stacks).

So automatic collection is switched off and a timer on the GUI thread collects with the
interpreter's own thresholds, generation by generation, as the interpreter would have
(pyqtgraph ships the same remedy as ``util.garbage_collector``). Reference counting, which
frees almost everything, is unaffected; only cycles wait for the next tick.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

__all__ = ["GuiThreadCollector", "install"]

_installed: GuiThreadCollector | None = None


class GuiThreadCollector(QObject):
    """Disables automatic ``gc`` and collects from a GUI-thread timer (see the module)."""

    def __init__(self, interval_ms: int = 250, parent: QObject | None = None):
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.collections = 0  # collections made by this collector (any generation)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)

    def start(self) -> None:
        gc.disable()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        gc.enable()

    def check(self) -> None:
        """Collect the generations whose allocation counts passed the thresholds."""
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.threshold
        if c0 <= t0:
            return
        generation = 2 if (c1 > t1 and c2 > t2) else 1 if c1 > t1 else 0
        gc.collect(generation)
        self.collections += 1


def install() -> GuiThreadCollector:
    """Start the collector once per process; call it on the GUI thread, which owns the
    timer. Returns the running collector."""
    global _installed
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        raise RuntimeError("the GUI-thread collector is installed from the GUI thread")
    if _installed is None:
        _installed = GuiThreadCollector(parent=app)
        _installed.start()
    return _installed
