"""Start the desktop app: ``bplab [PROJECT] [--train] [--quit-after S] [--screenshot PNG]``.

Without a project the built-in demo (``resources/examples/spiral.bplab.json``) opens,
ready to train in one click. The automation flags open the app, optionally start training,
and after ``--quit-after`` seconds (or a second after training ended, if sooner) save a
screenshot of the window, print one JSON line of results (steps per second over the
training itself, and how long the GUI event loop stalled, measured by a 10 ms timer) and exit.
``--epochs N`` overrides the project's epochs, so a longer run can be measured against
``bplab train PROJECT --epochs N``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from bplab.ui.errors import install_excepthooks
from bplab.ui.examples import demo_path, list_examples, resources_dir
from bplab.ui.main_window import MainWindow
from bplab.ui.plots.base import image_bytes
from bplab.ui.settings import app_settings
from bplab.ui.theme import THEMES, ThemeManager
from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from bplab.argtypes import non_negative_int
from bplab.io.project import atomic_write_bytes

__all__ = ["Automation", "StallMeter", "list_examples", "main", "parse_args", "resources_dir"]


SWITCH_INTERVAL = 0.001  # seconds; see main()


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(
        prog="bplab", description="Open the bplab desktop app (the demo project by default).")
    p.add_argument("project", nargs="?", help="a project file (*.bplab.json) to open")
    p.add_argument("--train", action="store_true", help="start training once the window is up")
    p.add_argument("--quit-after", type=float, metavar="SECONDS",
                   help="after SECONDS: screenshot (with --screenshot), print a JSON summary "
                        "line, quit")
    p.add_argument("--screenshot", metavar="PATH", help="where to save the window as PNG")
    p.add_argument("--tab", metavar="NAME", action="append",
                   help="bring this panel to the front (loss, metrics, boundary, histograms, "
                        "gradient_norms, gradient_flow, update_ratio, activations, diagnosis); "
                        "repeat it or separate names by commas for panels in different groups")
    p.add_argument("--theme", choices=THEMES, help="override the saved theme")
    p.add_argument("--epochs", type=non_negative_int, metavar="N",
                   help="train N epochs instead of the project's setting (as bplab train "
                        "--epochs does)")
    return p.parse_known_args(list(argv))


class StallMeter(QObject):
    """How late a 10 ms timer fires: the GUI thread's longest pauses (stall = interval - 10 ms)."""

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None):
        super().__init__(parent)
        self.interval = interval_ms / 1000.0
        self.stalls: list[float] = []
        self._last: float | None = None
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._on_timer_timeout)

    @property
    def running(self) -> bool:
        return self.timer.isActive()

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        if not self.timer.isActive():
            return
        self.timer.stop()
        # The pause in progress counts too (a stall that is still going when we stop).
        self._on_timer_timeout()

    def _on_timer_timeout(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.stalls.append(max(0.0, now - self._last - self.interval))
        self._last = now

    def summary(self) -> dict[str, float]:
        if not self.stalls:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        ms = np.asarray(self.stalls) * 1000.0
        return {"p50": round(float(np.percentile(ms, 50)), 2),
                "p99": round(float(np.percentile(ms, 99)), 2),
                "max": round(float(ms.max()), 2)}


class Automation(QObject):
    """Drives ``--train --quit-after --screenshot``: start, wait, capture, report, quit.

    The stall meter starts :attr:`settle` seconds after the window was shown, once it is
    painted (so the one-off cost of the first frame and of the data preview, which a user
    sees before pressing Run, is not counted), training starts right then, and with
    ``--train`` the meter stops when training ends, so
    idle time after the run cannot dilute the figures. Steps per second are the worker's
    own wall-clock time for the run (:class:`~bplab.ui.training.worker.RunTiming`). The app quits
    at ``seconds`` or one second after training ended, whichever comes first.
    """

    settle = 0.5  # seconds after show() before measuring: first paint, delayed previews
    linger = 1.0  # seconds between the end of training and the screenshot

    def __init__(self, window: MainWindow, seconds: float, screenshot: str | None,
                 train: bool, out=None):
        super().__init__(window)
        self.window = window
        self.seconds = seconds
        self.screenshot = screenshot
        self.train = train
        self.out = out if out is not None else sys.stdout
        self.meter = StallMeter(parent=self)
        self.measured = ""
        self.result: dict | None = None
        self.gui_cpu: float | None = None
        self._cpu0 = 0.0
        self._done = False
        window.automation = True

    def start(self) -> None:
        QTimer.singleShot(int(min(self.settle, self.seconds / 2) * 1000), self._on_begin)
        QTimer.singleShot(int(self.seconds * 1000), self._on_finish)

    def _on_begin(self) -> None:
        # Paint the whole window now, synchronously: the measurement starts after it.
        self.window.repaint()
        QApplication.processEvents()
        self.meter.start()
        self._cpu0 = time.thread_time()
        self.measured = "window shown and painted, to quit"
        if self.train:
            self.measured = "window shown and painted, Run pressed, to end of training"
            self.window.session.finished.connect(self._on_session_finished)
            self.window.session.run()

    def _on_session_finished(self, reason: str) -> None:
        if reason in ("built", "step"):
            return
        self.meter.stop()
        self.gui_cpu = time.thread_time() - self._cpu0
        self.window.session.finished.disconnect(self._on_session_finished)
        QTimer.singleShot(int(self.linger * 1000), self._on_finish)

    def _on_finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.meter.stop()
        w, s = self.window, self.window.session
        if s.state == "running":
            loop = QEventLoop()
            s.finished.connect(loop.quit)
            QTimer.singleShot(10_000, loop.quit)
            s.pause()
            loop.exec()
            s.finished.disconnect(loop.quit)
        QApplication.processEvents()
        for plot in w.plots.values():
            plot.refresh()
        if self.screenshot:
            shot = Path(self.screenshot)
            fmt = shot.suffix.lstrip(".") or "png"
            atomic_write_bytes(shot, image_bytes(w.grab(), fmt))  # never half a picture
        self.result = summarize(w)
        self.result["stall_ms"] = self.meter.summary()
        self.result["stall_measured"] = f"{self.measured} ({len(self.meter.stalls)} samples)"
        if self.gui_cpu is not None:  # the GUI thread's CPU seconds over the same span
            self.result["gui_cpu_seconds"] = round(self.gui_cpu, 4)
        print(json.dumps(self.result), file=self.out, flush=True)
        w.close()
        QApplication.instance().exit(0)


def summarize(window: MainWindow) -> dict:
    """The numbers of the run so far, for the automation's JSON line.

    ``steps_per_second`` is wall-clock over the worker's last training job (steps it took /
    seconds from its first step to its last emit); ``engine_steps_per_second`` divides by
    the time inside ``Trainer.step`` only, as ``bplab train`` does.
    """
    upd = window.session.latest
    latest = upd.latest if upd is not None else None
    history = window.run_view.epoch_history
    metrics = history[-1][2] if history else {}

    def num(v):
        return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v

    out = {
        "steps": latest.step if latest else 0,
        "epochs": latest.epoch if latest else 0,
        "train_loss": num(metrics.get("train_loss", latest.train_loss if latest else None)),
        "val_loss": num(metrics.get("val_loss")),
    }
    if "val_r2" in metrics:
        out["val_r2"] = num(metrics.get("val_r2"))
    else:
        out["val_accuracy"] = num(metrics.get("val_accuracy"))
    run = window.session.worker.last_run
    out["steps_per_second"] = round(run.steps_per_second, 1) if run else 0.0
    out["engine_steps_per_second"] = round(run.engine_steps_per_second, 1) if run else 0.0
    out["training_seconds"] = round(run.seconds, 5) if run else 0.0  # short runs: 0.05 s
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; ``argv`` excludes the program name (``bplab`` passes its arguments)."""
    args, qt_args = parse_args(sys.argv[1:] if argv is None else argv)
    # The worker thread runs Python between numpy calls; a shorter GIL switch interval lets
    # the GUI thread take the GIL back within ~1 ms instead of 5 ms each time a Qt call
    # released it, which keeps painting smooth at a small cost in steps per second.
    sys.setswitchinterval(SWITCH_INTERVAL)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "bplab",
                                                   *qt_args])
    app.setOrganizationName("bplab")
    app.setApplicationName("bplab")
    app.setApplicationDisplayName("bplab")
    install_excepthooks()
    settings = app_settings()
    theme = ThemeManager(app)
    mode = args.theme or str(settings.value("theme", "system"))
    theme.set_mode(mode if mode in THEMES else "system")
    window = MainWindow(settings, theme)
    if args.theme:
        window.menus.theme_actions[args.theme].setChecked(True)
    if args.project:
        window.open_path(args.project)
    elif demo_path().is_file():
        window.open_path(demo_path(), as_copy=True)
    if args.epochs is not None:
        window.doc.set_value("training.epochs", args.epochs)
    window.show()
    for tab in (t.strip() for arg in args.tab or () for t in arg.split(",") if t.strip()):
        if not window.show_tab(tab):
            print(f"bplab: no panel called {tab!r}; known: {', '.join(window.docks)}",
                  file=sys.stderr)
    if args.quit_after is not None:
        Automation(window, args.quit_after, args.screenshot, args.train).start()
    elif args.train:
        QTimer.singleShot(0, window.session.run)
    return int(app.exec())
