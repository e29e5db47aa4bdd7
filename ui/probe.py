"""Probe a point: one input's class probabilities and every layer's activations.

:class:`ProbePanel` draws a :class:`bplab.evaluation.Probe` (the engine computes it):
a bar per class probability (or the regression output), then one heat strip per node of
the network, the Input first, each labelled with its id and shape. Feature maps (C, H, W)
are drawn side by side, channel after channel.

:class:`ProbeController` connects the views that can be clicked (the decision boundary, the
gallery of mistakes) to the training session, and shows the answer in one panel window.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

__all__ = ["MAX_CHANNELS", "ProbeController", "ProbePanel", "activation_image", "probe_for",
           "request_probe"]

MAX_CHANNELS = 8  # feature maps drawn per layer


def activation_image(a: np.ndarray) -> np.ndarray:
    """A node's output as a 2-D image: a vector is one row, (H, W) itself, (C, H, W) the
    first :data:`MAX_CHANNELS` channels side by side."""
    a = np.asarray(a, np.float64)
    if a.ndim <= 1:
        return a.reshape(1, -1)
    if a.ndim == 2:
        return a
    maps = a.reshape(-1, *a.shape[-2:])[:MAX_CHANNELS]
    gap = np.full((maps.shape[1], 1), np.nan)
    return np.concatenate([np.concatenate([m, gap], axis=1) for m in maps], axis=1)[:, :-1]


class ProbePanel(QWidget):
    """A window showing one probe (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Tool)
        self.setWindowTitle("Probe")
        self.resize(520, 760)
        layout = QVBoxLayout(self)
        self.title = QLabel()
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.graphics = pg.GraphicsLayoutWidget()
        layout.addWidget(self.graphics, 1)
        self.result = None

    def show_probe(self, result, where: str = "") -> None:
        """Draw ``result`` (a :class:`bplab.evaluation.Probe`); ``where`` says what was
        probed."""
        self.result = result
        g = self.graphics
        g.clear()
        p = result.probabilities
        if p is not None:
            best = int(np.argmax(p))
            self.title.setText(f"{where}Predicted class {best} with probability {p[best]:.1%}. "
                               "Below: every layer's activations for this input.")
            values, label = p, "probability"
        else:
            values, label = np.asarray(result.output, np.float64).reshape(-1), "output"
            self.title.setText(f"{where}Output {', '.join(f'{v:.4g}' for v in values[:4])}. "
                               "Below: every layer's activations for this input.")
        bars = g.addPlot(row=0, col=0, title=label)
        bars.addItem(pg.BarGraphItem(x=np.arange(len(values)), height=values, width=0.7,
                                     brush="#1f77b4"))
        bars.getAxis("bottom").setTicks([[(i, str(i)) for i in range(len(values))]])
        if p is not None:
            bars.setYRange(0.0, 1.0)
        bars.setMinimumHeight(130)
        bars.setMaximumHeight(170)
        for row, (nid, act) in enumerate(result.activations.items(), start=1):
            shape = "×".join(map(str, np.shape(act))) or "1"
            lo, hi = (float(np.min(act)), float(np.max(act))) if np.size(act) else (0, 0)
            maps = int(np.prod(np.shape(act)[:-2])) if np.ndim(act) >= 3 else 0
            more = f", first {MAX_CHANNELS} maps" if maps > MAX_CHANNELS else ""
            g.addLabel(f"{nid}  ({shape}{more})  [{lo:.3g}, {hi:.3g}]", row=2 * row - 1,
                       col=0, size="8pt")
            vb = g.addViewBox(row=2 * row, col=0, enableMouse=False, invertY=True,
                              lockAspect=np.ndim(act) >= 2)  # images keep their shape
            img = pg.ImageItem(activation_image(act), axisOrder="row-major")
            img.setColorMap(pg.colormap.get("CET-D1"))
            m = max(abs(lo), abs(hi)) or 1.0
            img.setLevels((-m, m))
            vb.addItem(img)
            vb.setMaximumHeight(90)
            vb.autoRange(padding=0)
        self.show()
        self.raise_()

    def data(self) -> dict[str, object]:
        r = self.result
        if r is None:
            return {"probabilities": None, "activations": {}}
        return {"probabilities": None if r.probabilities is None else r.probabilities.copy(),
                "output": np.array(r.output), "x": np.array(r.x),
                "activations": {k: np.array(v) for k, v in r.activations.items()}}


class ProbeController(QObject):
    """Sends an input from a clickable view to ``session.probe`` and shows
    ``session.probed`` in one :class:`ProbePanel`."""

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.panel = ProbePanel(parent)
        self.pending: str = ""
        session.probed.connect(self._on_session_probed)

    def probe(self, x: np.ndarray) -> bool:
        """Probe ``x``; False (with a note in the panel) when there is no trainer yet."""
        x = np.asarray(x)
        self.pending = (f"Input ({', '.join(f'{v:.3g}' for v in x)}): " if x.ndim == 1
                        and x.size <= 4 else "")
        if self.session.probe(x):
            return True
        self.panel.title.setText("Press Run (or Step) first: the network has no weights yet.")
        self.panel.show()
        return False

    def _on_session_probed(self, result) -> None:
        self.panel.show_probe(result, self.pending)


def probe_for(widget: QWidget) -> ProbeController | None:
    """The probe controller of ``widget``'s main window (made at first use), or None when
    the window has no training session (a view on its own)."""
    window = widget.window()
    session = getattr(window, "session", None)
    if session is None:
        return None
    ctl = getattr(window, "_probe_controller", None)
    if ctl is None:
        ctl = ProbeController(session, window)
        window._probe_controller = ctl
    return ctl


def request_probe(view: QWidget, x: np.ndarray) -> None:
    """A view was clicked at input ``x``: tell its listeners (``probe_requested``) and probe
    it in the window's panel."""
    view.probe_requested.emit(np.array(x))
    ctl = probe_for(view)
    if ctl is not None:
        ctl.probe(x)
