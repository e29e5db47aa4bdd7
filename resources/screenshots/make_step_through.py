"""The README's step-through pictures, from the XOR example.

    xvfb-run -a -s "-screen 0 1600x1000x24" python resources/screenshots/make_step_through.py

writes ``step_backward.png`` (mid-backward: the gradient on the wires it has reached) and
``step_chain_rule.png`` (the chain-rule card of one weight of fc1) next to this file.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "xor.bplab.json"


def save(window, path: Path) -> None:
    """The window as an RGB PNG (no alpha), compressed the most: under ~300 KB."""
    image = window.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    image.save(str(path), "PNG", 0)


def main(out: Path = HERE, sample: int = 3) -> None:
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication.instance() or QApplication(sys.argv)
    from bplab.ui.main_window import MainWindow

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()

    w = MainWindow()
    w.automation = True
    w.open_path(EXAMPLE, as_copy=True)
    w.resize(1500, 950)
    w.show()
    pump(1.0)
    st = w.stepper
    st.start()
    end = time.monotonic() + 30
    while not st.active and time.monotonic() < end:
        app.processEvents()
    st.set_samples(sample, 1)
    backward = {s.node: s for s in st.stages if s.kind == "backward"}
    st.go(backward["relu1"].index)  # the gradient has reached relu1, not yet fc1
    pump(0.2)
    w.view.fit_all()  # every node with its badge
    pump(0.5)
    save(w, out / "step_backward.png")

    st.go(backward["fc1"].index)
    grad = backward["fc1"].grad_output[0]
    unit = next(j for j in range(len(grad)) if grad[j] != 0)  # an active ReLU unit
    st.select_weight("fc1.weight", (unit, 0))
    pump(0.3)
    st.panel.scroll.ensureWidgetVisible(st.panel.weight_update)
    pump(0.3)
    save(w, out / "step_chain_rule.png")
    w.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
