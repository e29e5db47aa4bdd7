"""Screenshots of the canvas' unit maps and hover card (issue 14), and their cost.

Run under Xvfb::

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/insight_screenshots.py \
        resources/screenshots
    xvfb-run -a -s "-screen 0 1280x800x24" python benchmarks/insight_screenshots.py \
        resources/screenshots/1280x800 1280x800

It opens Playground's spiral in a window of the given size (1600x1000 by default), trains
it with View > Unit maps on, saves ``unit_maps.png``, rests a hover card on ``fc2`` and
saves ``hover_card.png``, shows the quick tour's first step (``tour.png``), then prints the
steps per second of the same number of steps with the maps off and on. Last, the sine fit
example (one input) trains with its unit maps on: ``sine_fit.png``, the fitted curve over
the data and every unit's curve of x beside its node. The MNIST example's
gallery and confusion matrix (one tab group: one ``--tab`` each) come from the app itself::

    xvfb-run -a -s "-screen 0 1600x1000x24" bplab resources/examples/mnist_cnn.bplab.json \
        --train --quit-after 30 --tab mistakes,accuracy --screenshot mnist_errors.png
    xvfb-run -a -s "-screen 0 1600x1000x24" bplab resources/examples/mnist_cnn.bplab.json \
        --train --quit-after 30 --tab confusion --screenshot mnist_confusion.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from bplab.ui.app import SWITCH_INTERVAL
from bplab.ui.main_window import MainWindow
from bplab.ui.theme import ThemeManager
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
SPIRAL = ROOT / "resources" / "examples" / "spiral.bplab.json"
SINE = ROOT / "resources" / "examples" / "sine_fit.bplab.json"


def wait_finished(w, run, timeout_s: float = 120.0) -> None:
    loop = QEventLoop()
    w.session.finished.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    run()
    loop.exec()
    w.session.finished.disconnect(loop.quit)


def settle(ms: int = 400) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def timed(w, steps: int, maps: bool) -> float:
    """Steps per second of ``steps`` more steps (wall clock of the worker's job)."""
    w.menus.unit_maps.action.setChecked(maps)
    w.session.worker.speed = None
    wait_finished(w, lambda: w.session._submit(steps))
    return w.session.worker.last_run.steps_per_second


def open_window(project: Path, size: str = "1600x1000") -> MainWindow:
    """The app's window on a copy of ``project``, in the light theme, at ``size``, shown
    and painted; settings in /tmp/bplab-shots, never the user's."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    app = QApplication.instance() or QApplication(["bplab"])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "/tmp/bplab-shots")
    theme = ThemeManager(app)
    theme.set_mode("light")
    w = MainWindow(QSettings(), theme)
    w.automation = True
    w.open_path(project, as_copy=True)
    width, height = (int(v) for v in size.split("x"))
    w.resize(width, height)
    w.show()
    settle()
    return w


def main(out_dir: str, size: str = "1600x1000") -> None:
    w = open_window(SPIRAL, size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w.menus.unit_maps.action.setChecked(True)
    wait_finished(w, lambda: w.session._submit(3000))
    w.view.fit_all()  # the whole network with its maps, as Ctrl+0 shows it
    settle()
    for plot in w.plots.values():
        plot.refresh()
    w.grab().save(str(out / "unit_maps.png"))
    strip = w.menus.unit_maps.strip("act2")
    w.menus.unit_maps._on_strip_clicked(strip, 2)
    settle()
    w.menus.unit_maps.detail.grab().save(str(out / "unit_detail.png"))
    w.menus.unit_maps.detail.close()
    w.menus.hover_cards.show_for("fc2")
    settle()
    w.grab().save(str(out / "hover_card.png"))
    w.menus.hover_cards.hide()
    w.menus._on_tour_triggered()  # Help > Quick tour
    settle()
    w.grab().save(str(out / "tour.png"))
    w.menus.tour.stop()
    for maps in (False, True, False, True):
        print(f"unit maps {'on ' if maps else 'off'}: {timed(w, 4000, maps):8.0f} steps/s")
    w.close()
    sine_fit(out, size)


def sine_fit(out: Path, size: str = "1600x1000") -> None:
    """The one-input example trained with its unit maps on: ``sine_fit.png``."""
    w = open_window(SINE, size)
    w.menus.unit_maps.action.setChecked(True)
    wait_finished(w, lambda: w.session._submit(1600))
    w.view.fit_all()
    settle()
    for plot in w.plots.values():
        plot.refresh()
    w.grab().save(str(out / "sine_fit.png"))
    w.close()


if __name__ == "__main__":
    main(*(sys.argv[1:3] if len(sys.argv) > 1 else ["/tmp/bplab-shots"]))
