"""When the window redraws its plots: a frame clock that keeps drawing a bounded share of time.

The training worker shares the GIL (and, on a small machine, the memory bus) with the GUI
thread, so every millisecond spent drawing is taken from training. A fixed 10 Hz is right
when a frame costs a few milliseconds (long runs: axes cached, curves thinned); but the first
frames of a run re-render axes for new ranges and cost several times more. The clock
therefore measures each frame (the GUI thread's CPU time in the slot that pushes data into
the plots and in every paint of the plots until the next frame: not wall-clock, which would
count the waits for the GIL that cost the training thread nothing) and, while ``adaptive``
is on, starts the next frame no sooner than ``cost / share`` after this one began: drawing
then takes at most ``share`` of the GUI thread's time, and a cheap frame still comes every
``interval_ms``.

A frame's cost is the larger of that and all of the GUI thread's CPU time over the period
before it: everything the thread runs between frames (the worker's updates arriving, the
status bar, the hover card) holds the GIL as drawing does, and on the demo it was as much
again as the drawing itself.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal

__all__ = ["FrameClock"]


class FrameClock(QObject):
    """Emits ``frame`` every ``interval_ms``, or later when frames are costly (see module)."""

    frame = Signal()

    def __init__(self, interval_ms: int = 100, max_interval_ms: int = 250, share: float = 0.1,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.interval = interval_ms / 1000.0
        self.max_interval = max_interval_ms / 1000.0
        self.share = share
        self.adaptive = False  # on while training: only then does drawing compete for time
        self.cost = 0.0  # seconds spent on the current frame so far
        self.gap = self.interval  # seconds between the current frame's start and the next
        self.period_cpu = 0.0  # the GUI thread's CPU seconds over the last whole period
        self._began = time.perf_counter()
        self._period_cpu0 = time.thread_time()
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._on_timer_timeout)

    def start(self) -> None:
        self._began = time.perf_counter()
        self._period_cpu0 = time.thread_time()
        self.timer.start(round(self.interval * 1000))

    def stop(self) -> None:
        self.timer.stop()

    def add_cost(self, seconds: float) -> None:
        """Count ``seconds`` of drawing (CPU time of a paint) against the current frame."""
        self.cost += seconds
        if self.timer.isActive():
            self._schedule()

    def _on_timer_timeout(self) -> None:
        self._began = time.perf_counter()
        t0 = time.thread_time()
        self.period_cpu, self._period_cpu0 = t0 - self._period_cpu0, t0
        self.cost = 0.0
        try:
            self.frame.emit()
        finally:
            self.cost += time.thread_time() - t0
            self._schedule()

    def _schedule(self) -> None:
        gap = self.interval
        if self.adaptive and self.share > 0:
            spent = max(self.cost, self.period_cpu)
            gap = min(max(gap, spent / self.share), max(self.max_interval, gap))
        self.gap = gap
        left = self._began + gap - time.perf_counter()
        self.timer.start(max(0, round(left * 1000)))
