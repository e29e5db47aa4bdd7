"""Layer icons drawn with QPainter (no image files): a rounded tile in the category
colour with a white glyph for the layer type; unknown types get their initials."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QApplication

from bplab.layers import LAYERS, has_trait

__all__ = ["CATEGORY_COLORS", "category_color", "is_dark", "layer_icon", "paint_glyph"]

CATEGORY_COLORS = {
    "Core": "#4C78A8",
    "Activations": "#E8871E",
    "Convolution": "#3C9A5F",
    "Normalization": "#9467BD",
    "Regularization": "#2A9D8F",
    "Merge": "#D1495B",
    "Recurrent": "#B5651D",
}


def is_dark() -> bool:
    app = QApplication.instance()
    return app is not None and app.palette().window().color().lightness() < 128


def category_color(category: str) -> QColor:
    return QColor(CATEGORY_COLORS.get(category, "#7F7F7F"))


def layer_icon(type_name: str, size: int = 32) -> QIcon:
    """A cached icon for ``type_name`` at ``size`` pixels (and twice that for HiDPI)."""
    icon = QIcon()
    for s in (size, 2 * size):
        icon.addPixmap(_pixmap(type_name, s))
    return icon


@lru_cache(maxsize=512)
def _pixmap(type_name: str, size: int) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.Antialiasing)
    cls = LAYERS.get(type_name)
    colour = category_color(cls.category if cls is not None else "")
    rect = QRectF(1, 1, size - 2, size - 2)
    p.setPen(Qt.NoPen)
    p.setBrush(colour)
    p.drawRoundedRect(rect, size * 0.22, size * 0.22)
    paint_glyph(p, type_name, rect.adjusted(size * 0.2, size * 0.2, -size * 0.2, -size * 0.2),
                QColor("white"))
    p.end()
    return pm


def _kind(type_name: str) -> str:
    """Which glyph: by name first (the registry grows while we run), then by family."""
    n = type_name.lower()
    table = [
        ("input", "input"), ("dense", "dense"), ("linear", "dense"), ("flatten", "flatten"),
        ("reshape", "reshape"), ("leaky", "leaky"), ("relu", "relu"), ("elu", "leaky"),
        ("gelu", "dip"), ("silu", "dip"), ("swish", "dip"), ("softplus", "softplus"),
        ("sigmoid", "sigmoid"), ("tanh", "tanh"), ("softmax", "softmax"),
        ("identity", "identity"), ("maxpool", "maxpool"), ("avgpool", "avgpool"),
        ("pool", "avgpool"), ("conv", "conv"), ("batchnorm", "bell"), ("layernorm", "layernorm"),
        ("norm", "bell"), ("dropout", "dropout"), ("add", "add"), ("sum", "add"),
        ("concat", "concat"), ("mul", "mul"), ("rnn", "loop"), ("lstm", "cell"), ("gru", "gate"),
    ]
    for key, kind in table:
        if key in n:
            return kind
    if has_trait(type_name, "is_activation"):
        return "curve"
    cls = LAYERS.get(type_name)
    return "add" if cls is not None and cls.category == "Merge" else "initials"


@dataclass(frozen=True)
class _Glyph:
    """What every glyph painter gets: the painter (pen already set), the box and colour."""

    p: QPainter
    r: QRectF
    colour: QColor
    pen: QPen
    w: float  # the pen width
    type_name: str

    @property
    def W(self) -> float:  # noqa: N802  (the box's width and height read as in the math)
        return self.r.width()

    @property
    def H(self) -> float:  # noqa: N802
        return self.r.height()

    def pt(self, fx: float, fy: float) -> QPointF:
        """A point at fractions of the box; fy = 0 at the bottom."""
        return QPointF(self.r.left() + fx * self.W, self.r.bottom() - fy * self.H)

    def curve(self, points) -> None:
        path = QPainterPath(self.pt(*points[0]))
        for q in points[1:]:
            path.lineTo(self.pt(*q))
        self.p.drawPath(path)

    def fill(self) -> None:
        """Solid shapes from here on: no outline, the glyph colour inside."""
        self.p.setPen(Qt.NoPen)
        self.p.setBrush(self.colour)


def _input(g: _Glyph) -> None:
    r = g.r
    g.p.drawRoundedRect(QRectF(r.left() + g.W * 0.45, r.top(), g.W * 0.55, g.H),
                        g.W * 0.1, g.W * 0.1)
    g.p.drawLine(g.pt(0, 0.5), g.pt(0.62, 0.5))
    g.curve([(0.4, 0.72), (0.62, 0.5), (0.4, 0.28)])


def _dense(g: _Glyph) -> None:
    left = [g.pt(0.1, f) for f in (0.15, 0.5, 0.85)]
    right = [g.pt(0.9, f) for f in (0.3, 0.7)]
    g.p.setPen(QPen(g.colour, g.w * 0.5))
    for a in left:
        for b in right:
            g.p.drawLine(a, b)
    g.fill()
    for c in left + right:
        g.p.drawEllipse(c, g.w * 1.1, g.w * 1.1)


def _flatten(g: _Glyph) -> None:
    x0, y0 = g.r.left(), g.r.top()
    for i in range(3):
        g.p.drawRect(QRectF(x0 + i * g.W * 0.12, y0 + i * g.H * 0.12, g.W * 0.5, g.H * 0.5))
    g.p.drawLine(g.pt(0.1, 0.05), g.pt(1.0, 0.05))


def _reshape(g: _Glyph) -> None:
    x0, y0, W, H = g.r.left(), g.r.top(), g.W, g.H
    g.p.drawRect(QRectF(x0, y0 + H * 0.3, W * 0.35, H * 0.7))
    g.p.drawRect(QRectF(x0 + W * 0.5, y0 + H * 0.55, W * 0.5, H * 0.45))
    g.curve([(0.2, 0.8), (0.5, 1.0), (0.8, 0.6)])


def _relu(g: _Glyph) -> None:
    g.curve([(0, 0.2), (0.5, 0.2), (1, 1)])


def _dip(g: _Glyph) -> None:
    # x * sigmoid(x): a small dip below zero, then linear
    g.curve([(i / 20,
              0.25 + 0.75 * (8 * (i / 20 - 0.5)) / (1 + math.exp(-8 * (i / 20 - 0.5))) / 4)
             for i in range(21)])


def _softplus(g: _Glyph) -> None:
    g.curve([(i / 20, 0.1 + 0.85 * math.log1p(math.exp(8 * (i / 20 - 0.5))) / 4.0)
             for i in range(21)])


def _leaky(g: _Glyph) -> None:
    g.curve([(0, 0.08), (0.5, 0.25), (1, 1)])


def _s_curve(g: _Glyph, lo: float) -> None:
    g.curve([(i / 20, lo + (1 - 2 * lo) / (1 + pow(2.718, -10 * (i / 20 - 0.5))))
             for i in range(21)])


def _sigmoid(g: _Glyph) -> None:
    _s_curve(g, 0.08)


def _tanh(g: _Glyph) -> None:
    g.p.drawLine(g.pt(0, 0.5), g.pt(1, 0.5))
    _s_curve(g, 0.0)


def _softmax(g: _Glyph) -> None:
    g.fill()
    for i, h in enumerate((0.25, 0.9, 0.45, 0.15)):
        g.p.drawRect(QRectF(g.r.left() + i * g.W * 0.26, g.r.bottom() - h * g.H,
                            g.W * 0.2, h * g.H))


def _identity(g: _Glyph) -> None:
    g.p.drawLine(g.pt(0, 0), g.pt(1, 1))


def _conv(g: _Glyph) -> None:
    x0, y0, x1, y1 = g.r.left(), g.r.top(), g.r.right(), g.r.bottom()
    step = g.W / 4
    g.p.setPen(QPen(g.colour, g.w * 0.5))
    for i in range(5):
        g.p.drawLine(QPointF(x0 + i * step, y0), QPointF(x0 + i * step, y1))
        g.p.drawLine(QPointF(x0, y0 + i * step), QPointF(x1, y0 + i * step))
    g.p.setPen(g.pen)
    g.p.drawRect(QRectF(x0 + step, y0 + step, 2 * step, 2 * step))


def _pool_grid(g: _Glyph) -> float:
    """Four cells (2 x 2) in a thin pen; returns the cell size, ready for a solid fill."""
    s = g.W / 2
    g.p.setPen(QPen(g.colour, g.w * 0.5))
    for i in range(2):
        for j in range(2):
            g.p.drawRect(QRectF(g.r.left() + i * s, g.r.top() + j * s, s, s))
    g.fill()
    return s


def _maxpool(g: _Glyph) -> None:
    s = _pool_grid(g)
    g.p.drawRect(QRectF(g.r.left() + s, g.r.top(), s, s))


def _avgpool(g: _Glyph) -> None:
    s = _pool_grid(g)
    g.p.drawEllipse(QPointF(g.r.center().x(), g.r.center().y()), s * 0.35, s * 0.35)


def _bell(g: _Glyph) -> None:
    g.curve([(i / 20, 0.05 + 0.9 * pow(2.718, -((i / 20 - 0.5) ** 2) / 0.03))
             for i in range(21)])
    g.p.drawLine(g.pt(0, 0.02), g.pt(1, 0.02))


def _layernorm(g: _Glyph) -> None:
    for i in range(3):
        g.p.drawLine(g.pt(0.15 + 0.35 * i, 0.1), g.pt(0.15 + 0.35 * i, 0.9))
    g.p.drawLine(g.pt(0, 0.5), g.pt(1, 0.5))


def _dropout(g: _Glyph) -> None:
    for i in range(3):
        for j in range(3):
            dropped = (i + 2 * j) % 3 == 0
            g.p.setBrush(Qt.NoBrush if dropped else g.colour)
            g.p.drawEllipse(g.pt(0.15 + 0.35 * i, 0.15 + 0.35 * j), g.w * 1.2, g.w * 1.2)


def _add(g: _Glyph) -> None:
    g.p.drawEllipse(g.r.center(), g.W / 2, g.H / 2)
    g.p.drawLine(g.pt(0.5, 0.22), g.pt(0.5, 0.78))
    g.p.drawLine(g.pt(0.22, 0.5), g.pt(0.78, 0.5))


def _mul(g: _Glyph) -> None:
    g.p.drawEllipse(g.r.center(), g.W / 2, g.H / 2)
    g.p.drawLine(g.pt(0.3, 0.3), g.pt(0.7, 0.7))
    g.p.drawLine(g.pt(0.3, 0.7), g.pt(0.7, 0.3))


def _concat(g: _Glyph) -> None:
    x0, y0, W, H = g.r.left(), g.r.top(), g.W, g.H
    g.p.setBrush(g.colour)
    g.p.drawRect(QRectF(x0, y0, W * 0.3, H * 0.45))
    g.p.setBrush(Qt.NoBrush)
    g.p.drawRect(QRectF(x0 + W * 0.7, y0, W * 0.3, H * 0.45))
    g.p.drawRect(QRectF(x0 + W * 0.2, y0 + H * 0.62, W * 0.6, H * 0.38))


def _loop(g: _Glyph) -> None:
    """A state box whose output feeds back into itself: h_t from h_(t-1)."""
    box = QRectF(g.r.left() + g.W * 0.2, g.r.top() + g.H * 0.38, g.W * 0.6, g.H * 0.4)
    g.p.drawRoundedRect(box, g.W * 0.08, g.W * 0.08)
    g.p.drawLine(g.pt(0.5, 0.0), g.pt(0.5, 0.22))  # x_t in
    g.curve([(0.8, 0.42), (0.98, 0.42), (0.98, 0.98), (0.5, 0.98), (0.5, 0.62)])  # h back
    g.curve([(0.38, 0.74), (0.5, 0.62), (0.62, 0.74)])  # arrow head into the box


def _cell(g: _Glyph) -> None:
    """The loop, plus the LSTM's cell line running straight through: the gradient highway."""
    _loop(g)
    g.p.drawLine(g.pt(0.0, 0.5), g.pt(0.2, 0.5))
    g.fill()
    g.p.drawEllipse(g.pt(0.5, 0.4), g.w * 1.1, g.w * 1.1)


def _gate(g: _Glyph) -> None:
    """The loop with a gate (a half-open valve) on the state."""
    _loop(g)
    g.p.drawLine(g.pt(0.0, 0.5), g.pt(0.2, 0.5))
    g.p.drawLine(g.pt(0.36, 0.52), g.pt(0.64, 0.34))


def _initials(g: _Glyph) -> None:
    f = QFont()
    f.setBold(True)
    f.setPixelSize(max(int(g.H * 0.62), 6))
    g.p.setFont(f)
    name = g.type_name
    letters = "".join(c for c in name if c.isupper())[:2] or name[:2]
    g.p.drawText(g.r, Qt.AlignCenter, letters)


# Glyph kind (what _kind answers) -> its painter.
_GLYPHS: dict[str, Callable[[_Glyph], None]] = {
    "input": _input, "dense": _dense, "flatten": _flatten, "reshape": _reshape,
    "relu": _relu, "dip": _dip, "softplus": _softplus, "leaky": _leaky,
    "sigmoid": _sigmoid, "tanh": _tanh, "curve": _sigmoid, "softmax": _softmax,
    "identity": _identity, "conv": _conv, "maxpool": _maxpool, "avgpool": _avgpool,
    "bell": _bell, "layernorm": _layernorm, "dropout": _dropout, "add": _add, "mul": _mul,
    "concat": _concat, "loop": _loop, "cell": _cell, "gate": _gate, "initials": _initials,
}


def paint_glyph(p: QPainter, type_name: str, r: QRectF, colour: QColor) -> None:
    """Draw the glyph of ``type_name`` inside ``r`` with ``colour``."""
    w = max(r.width() / 9.0, 1.2)
    pen = QPen(colour, w, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin)
    p.save()
    p.setPen(pen)
    p.setBrush(Qt.NoBrush)
    _GLYPHS[_kind(type_name)](_Glyph(p, r, colour, pen, w, type_name))
    p.restore()
