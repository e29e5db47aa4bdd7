"""The README's Runs picture, made the way a user makes it: train, apply a fix, train, compare.

Run under Xvfb::

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/runs_screenshot.py \
        resources/screenshots

It opens the vanishing-gradients example in a 1600x1000 window, trains it to the end, names
the run "Before: as shipped", presses Apply on the diagnosis' "Add BatchNorm" fix, trains
again, names that run "After: BatchNorm fix", ticks both in the Runs panel and saves the
window with the gradient norms of the two runs overlaid (``runs_overlay.png``). It stops
with a message if the diagnosis no longer offers the fix or a run does not finish.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bplab.ui.main_window import MainWindow
from insight_screenshots import open_window, settle
from PySide6.QtCore import QEventLoop, QTimer

ROOT = Path(__file__).resolve().parents[1]
VANISHING = ROOT / "resources" / "examples" / "vanishing_gradients.bplab.json"


def run_to_end(w: MainWindow, timeout_s: float = 300.0) -> str:
    """Press Run and wait until training ends (not the "built" or "step" notices)."""
    loop, reasons = QEventLoop(), []

    def on_finished(reason: str) -> None:
        if reason not in ("built", "step"):
            reasons.append(reason)
            loop.quit()

    w.session.finished.connect(on_finished)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    w.session.run()
    loop.exec()
    w.session.finished.disconnect(on_finished)
    if not reasons:
        raise SystemExit(f"training did not end within {timeout_s:.0f} s")
    return reasons[0]


def train_and_name(w: MainWindow, name: str) -> str:
    """Run to the end; rename the run it recorded; return its id."""
    before = len(w.doc.project.get("runs", []))
    run_to_end(w)
    settle()  # the run is recorded once the session is idle
    runs = w.doc.project.get("runs", [])
    if len(runs) != before + 1:
        raise SystemExit(f"the run {name!r} was not recorded ({len(runs)} runs)")
    panel = w.dock_layout.runs_panel
    panel.rename(runs[-1]["id"], name)
    return runs[-1]["id"]


def press_batchnorm_fix(w: MainWindow) -> None:
    """Press Apply on the diagnosis card's BatchNorm fix, as a user does."""
    w.show_tab("diagnosis")  # the panel draws its cards when shown
    settle()
    for card in w.diagnosis.cards:
        for fix, button in card.fixes_with_buttons():
            if fix.action == "add_batchnorm":
                button.click()
                return
    raise SystemExit("the diagnosis offers no 'Add BatchNorm' fix after the first run")


def main(out_dir: str) -> None:
    w = open_window(VANISHING)
    first = train_and_name(w, "Before: as shipped")
    settle()
    press_batchnorm_fix(w)
    second = train_and_name(w, "After: BatchNorm fix")
    panel = w.dock_layout.runs_panel
    for run_id in (first, second):
        panel.set_ticked(run_id)
    w.show_tab("runs")
    w.show_tab("gradient_norms")
    w.view.fit_all()
    settle()
    for plot in w.plots.values():
        plot.refresh()
    settle()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(out / "runs_overlay.png"))
    w.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bplab-shots")
