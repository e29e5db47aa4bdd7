"""Faults injected into the running app: an exception inside a layer, closing the window,
opening another project or quitting while training, 200 start/stops, an exception in a
paint handler. The app shows the error and keeps running; the training thread always ends.

The whole-process cases (exit status, "QThread: Destroyed while thread is still running"
never printed) run the app in a child process: :data:`SCRIPT` below.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from bplab.layers.activations import Tanh

TIMEOUT = 30_000


def _wait_update(qtbot, window):
    with qtbot.waitSignal(window.session.updated, timeout=TIMEOUT):
        window.session.run()


def test_an_exception_inside_a_layer_is_shown_within_a_second(open_window, qtbot, monkeypatch):
    window = open_window()
    original, calls, raised_at = Tanh.forward, [], []

    def forward(self, x, training=True):
        calls.append(1)
        if len(calls) == 40:  # step 20 or so: two Tanh layers
            raised_at.append(time.perf_counter())
            raise RuntimeError("injected fault in a layer")
        return original(self, x, training)

    monkeypatch.setattr(Tanh, "forward", forward)
    with qtbot.waitSignal(window.session.failed, timeout=TIMEOUT):
        window.session.run()
    shown = time.perf_counter()
    box = window.last_error
    assert box is not None and "injected fault in a layer" in box.detailedText()
    assert shown - raised_at[0] < 1.0
    qtbot.waitUntil(lambda: window.session.state == "idle", timeout=TIMEOUT)
    # the window keeps working: the next Run starts afresh and trains
    monkeypatch.setattr(Tanh, "forward", original)
    _wait_update(qtbot, window)
    window.session.pause()
    t0 = time.perf_counter()
    assert window.session.shutdown(2000) and time.perf_counter() - t0 < 2.0


def test_opening_another_project_while_training_stops_cleanly(open_window, qtbot, spiral,
                                                              tmp_path):
    import json

    other = tmp_path / "other.json"
    other.write_text(json.dumps(spiral))
    window = open_window()
    _wait_update(qtbot, window)
    assert window.open_path(other)
    qtbot.waitUntil(lambda: window.session.state == "idle", timeout=TIMEOUT)
    assert window.path == other and window.session.thread.isRunning()


def test_closing_the_window_while_training_ends_the_thread(open_window, qtbot):
    window = open_window()
    _wait_update(qtbot, window)
    t0 = time.perf_counter()
    window.automation = True  # no save prompt
    window.close()
    assert window.session.thread.isFinished() and time.perf_counter() - t0 < 2.0


def _threads() -> int:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("Threads:"))


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


@pytest.mark.slow
def test_start_stop_200_times(open_window, qtbot):
    window = open_window()
    session = window.session
    _wait_update(qtbot, window)  # warm up: the first run builds the plots' items
    with qtbot.waitSignal(session.finished, timeout=TIMEOUT):
        session.stop()
    threads, rss = _threads(), _rss_mb()
    for _ in range(200):
        with qtbot.waitSignal(session.finished, timeout=TIMEOUT):
            session.run()
            session.stop()
    qtbot.waitUntil(lambda: session.state == "idle", timeout=TIMEOUT)
    assert _threads() == threads and threading.active_count() >= 1
    assert _rss_mb() - rss < 10.0


SCRIPT = textwrap.dedent('''
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox
    from bplab.ui.errors import install_excepthooks
    from bplab.ui.examples import demo_path, list_examples
    from bplab.ui.main_window import MainWindow

    mode = sys.argv[1]
    armed = []
    if mode == "paint":  # overridden before any plot exists: Qt looks overrides up once
        from bplab.ui.plots.base import TimedGraphics

        original = TimedGraphics.paintEvent

        def paint_event(self, event):
            if armed and armed.pop():
                raise RuntimeError("injected fault in a paint handler")
            return original(self, event)

        TimedGraphics.paintEvent = paint_event
    app = QApplication(["bplab-fault"])
    install_excepthooks()
    window = MainWindow()
    window.automation = True  # no save prompt on close
    window.ask_save_changes = lambda: "discard"  # nor on opening another project
    window.open_path(demo_path(), as_copy=True)
    window.doc.set_value("training.epochs", 1_000_000)  # still training when checked
    window.show()
    updates = []

    def on_update(_u):
        updates.append(1)
        if len(updates) == 3:  # from the event loop, as a user's click would come
            QTimer.singleShot(0, act)

    def act():
        if mode == "close":
            window.close()
            QTimer.singleShot(0, app.quit)
        elif mode == "quit":
            app.quit()  # the window is still open, the thread still training
        elif mode == "open":  # another project while training, then close at once
            other = next(path for _, path in list_examples() if path != demo_path())
            window.open_path(other, as_copy=True)
            window.close()
            QTimer.singleShot(0, app.quit)
        elif mode == "paint":
            armed.append(1)  # the next plot painted raises, once
            window.show_tab("loss")
            QTimer.singleShot(1500, check_paint)

    def check_paint():
        boxes = [w for w in app.topLevelWidgets() if isinstance(w, QMessageBox)
                 and "injected fault" in w.detailedText()]
        print("shown" if boxes else "not shown", flush=True)
        n = len(updates)
        QTimer.singleShot(1000, lambda: finish(n))

    def finish(n):
        print("kept running" if len(updates) > n else "stalled", flush=True)
        window.close()
        app.quit()

    window.session.updated.connect(on_update)
    QTimer.singleShot(0, window.session.run)
    QTimer.singleShot(60_000, lambda: app.exit(3))  # a hang fails the test
    code = app.exec()
    window.session.shutdown()
    sys.exit(code)
''')


def _run_app(mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["close", "quit", "open"])
def test_closing_quitting_or_opening_while_training_exits_0(mode):
    result = _run_app(mode)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "QThread: Destroyed" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_an_exception_in_a_paint_handler_is_logged_shown_and_the_app_keeps_running():
    result = _run_app("paint")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "injected fault in a paint handler" in result.stderr  # logged
    assert result.stdout.split() == ["shown", "kept", "running"]
    assert "QThread: Destroyed" not in result.stderr


def test_the_inspector_shows_a_nodes_memory_in_red_when_it_cannot_fit(open_window, qtbot,
                                                                       monkeypatch):
    window = open_window()
    inspector = window.inspector
    inspector.set_node("fc1")
    text = inspector.memory_label.text()
    assert "weights" in text and "activations" in text and "batch 32" in text
    monkeypatch.setenv("BPLAB_MEMORY_LIMIT", "100")
    inspector.set_node("fc2")
    assert "more than the 100 bytes available" in inspector.memory_label.text()
