"""Start the desktop app: ``bplab [PROJECT] [--train] [--quit-after S] [--screenshot PNG]``.

Without a project the built-in demo (``resources/examples/spiral.bplab.json``) opens,
ready to train in one click. The automation flags open the app, optionally start training,
and after ``--quit-after`` seconds save a screenshot of the window, print one JSON line of
results (including how long the GUI event loop stalled, measured by a 10 ms timer) and exit.
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
from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from ui.errors import install_excepthooks
from ui.main_window import MainWindow, app_settings, demo_path, list_examples, resources_dir
from ui.theme import THEMES, ThemeManager

__all__ = ["Automation", "StallMeter", "list_examples", "main", "parse_args", "resources_dir"]


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(
        prog="bplab", description="Open the bplab desktop app (the demo project by default).")
    p.add_argument("project", nargs="?", help="a project file (*.bplab.json) to open")
    p.add_argument("--train", action="store_true", help="start training once the window is up")
    p.add_argument("--quit-after", type=float, metavar="SECONDS",
                   help="after SECONDS: screenshot (with --screenshot), print a JSON summary "
                        "line, quit")
    p.add_argument("--screenshot", metavar="PATH", help="where to save the window as PNG")
    p.add_argument("--tab", metavar="NAME",
                   help="bring this panel to the front (loss, metrics, boundary, histograms, "
                        "gradient_norms, gradient_flow, update_ratio, activations, diagnosis)")
    p.add_argument("--theme", choices=THEMES, help="override the saved theme")
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

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

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
    """Drives ``--train --quit-after --screenshot``: start, wait, capture, report, quit."""

    def __init__(self, window: MainWindow, seconds: float, screenshot: str | None,
                 train: bool, out=None):
        super().__init__(window)
        self.window = window
        self.seconds = seconds
        self.screenshot = screenshot
        self.train = train
        self.out = out if out is not None else sys.stdout
        self.meter = StallMeter(parent=self)
        self.result: dict | None = None
        window.automation = True

    def start(self) -> None:
        self.meter.start()
        if self.train:
            QTimer.singleShot(0, self._on_start)
        QTimer.singleShot(int(self.seconds * 1000), self._on_finish)

    def _on_start(self) -> None:
        self.window.session.run()

    def _on_finish(self) -> None:
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
            Path(self.screenshot).parent.mkdir(parents=True, exist_ok=True)
            w.grab().save(str(self.screenshot))
        self.result = summarize(w)
        self.result["stall_ms"] = self.meter.summary()
        print(json.dumps(self.result), file=self.out, flush=True)
        w.close()
        QApplication.instance().exit(0)


def summarize(window: MainWindow) -> dict:
    """The numbers of the run so far, for the automation's JSON line."""
    upd = window.session.latest
    latest = upd.latest if upd is not None else None
    metrics = window.epoch_history[-1][2] if window.epoch_history else {}

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
    out["steps_per_second"] = round(latest.step / latest.elapsed, 1) if (
        latest and latest.elapsed > 0) else 0.0
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; ``argv`` excludes the program name (``bplab`` passes its arguments)."""
    args, qt_args = parse_args(sys.argv[1:] if argv is None else argv)
    # The worker thread runs Python between numpy calls; a shorter GIL switch interval lets
    # the GUI thread take the GIL back within ~1 ms instead of 5 ms each time a Qt call
    # released it, which keeps painting smooth at a small cost in steps per second.
    sys.setswitchinterval(0.001)
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
        window.theme_actions[args.theme].setChecked(True)
    if args.project:
        window.open_path(args.project)
    elif demo_path().is_file():
        window.open_path(demo_path(), as_copy=True)
    window.show()
    if args.tab and not window.show_tab(args.tab):
        print(f"bplab: no panel called {args.tab!r}; known: {', '.join(window.docks)}",
              file=sys.stderr)
    if args.quit_after is not None:
        Automation(window, args.quit_after, args.screenshot, args.train).start()
    elif args.train:
        QTimer.singleShot(0, window.session.run)
    return int(app.exec())
