"""Layer icons drawn with QPainter (no image files): a rounded tile in the category
colour with a white glyph for the layer type; unknown types get their initials."""

from __future__ import annotations

import math
from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QApplication

from bplab.layers import LAYERS

__all__ = ["CATEGORY_COLORS", "category_color", "is_dark", "layer_icon", "paint_glyph"]

CATEGORY_COLORS = {
    "Core": "#4C78A8",
    "Activations": "#E8871E",
    "Convolution": "#3C9A5F",
    "Normalization": "#9467BD",
    "Regularization": "#2A9D8F",
    "Merge": "#D1495B",
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
    """Which glyph: by name first (the registry grows while we run), then by category."""
    n = type_name.lower()
    cls = LAYERS.get(type_name)
    cat = cls.category if cls is not None else ""
    table = [
        ("input", "input"), ("dense", "dense"), ("linear", "dense"), ("flatten", "flatten"),
        ("reshape", "reshape"), ("leaky", "leaky"), ("relu", "relu"), ("elu", "leaky"),
        ("gelu", "dip"), ("silu", "dip"), ("swish", "dip"), ("softplus", "softplus"),
        ("sigmoid", "sigmoid"), ("tanh", "tanh"), ("softmax", "softmax"),
        ("identity", "identity"), ("maxpool", "maxpool"), ("avgpool", "avgpool"),
        ("pool", "avgpool"), ("conv", "conv"), ("batchnorm", "bell"), ("layernorm", "layernorm"),
        ("norm", "bell"), ("dropout", "dropout"), ("add", "add"), ("sum", "add"),
        ("concat", "concat"), ("mul", "mul"),
    ]
    for key, kind in table:
        if key in n:
            return kind
    return {"Activations": "curve", "Merge": "add"}.get(cat, "initials")


def paint_glyph(p: QPainter, type_name: str, r: QRectF, colour: QColor) -> None:
    """Draw the glyph of ``type_name`` inside ``r`` with ``colour``."""
    w = max(r.width() / 9.0, 1.2)
    pen = QPen(colour, w, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin)
    p.save()
    p.setPen(pen)
    p.setBrush(Qt.NoBrush)
    x0, y0, x1, y1 = r.left(), r.top(), r.right(), r.bottom()
    cx, cy, W, H = r.center().x(), r.center().y(), r.width(), r.height()

    def pt(fx: float, fy: float) -> QPointF:  # fractions of the box; fy = 0 at the bottom
        return QPointF(x0 + fx * W, y1 - fy * H)

    def curve(points) -> None:
        path = QPainterPath(pt(*points[0]))
        for q in points[1:]:
            path.lineTo(pt(*q))
        p.drawPath(path)

    k = _kind(type_name)
    if k == "input":
        p.drawRoundedRect(QRectF(x0 + W * 0.45, y0, W * 0.55, H), W * 0.1, W * 0.1)
        p.drawLine(pt(0, 0.5), pt(0.62, 0.5))
        curve([(0.4, 0.72), (0.62, 0.5), (0.4, 0.28)])
    elif k == "dense":
        left = [pt(0.1, f) for f in (0.15, 0.5, 0.85)]
        right = [pt(0.9, f) for f in (0.3, 0.7)]
        thin = QPen(colour, w * 0.5)
        p.setPen(thin)
        for a in left:
            for b in right:
                p.drawLine(a, b)
        p.setPen(Qt.NoPen)
        p.setBrush(colour)
        for c in left + right:
            p.drawEllipse(c, w * 1.1, w * 1.1)
    elif k == "flatten":
        for i in range(3):
            p.drawRect(QRectF(x0 + i * W * 0.12, y0 + i * H * 0.12, W * 0.5, H * 0.5))
        p.drawLine(pt(0.1, 0.05), pt(1.0, 0.05))
    elif k == "reshape":
        p.drawRect(QRectF(x0, y0 + H * 0.3, W * 0.35, H * 0.7))
        p.drawRect(QRectF(x0 + W * 0.5, y0 + H * 0.55, W * 0.5, H * 0.45))
        curve([(0.2, 0.8), (0.5, 1.0), (0.8, 0.6)])
    elif k == "relu":
        curve([(0, 0.2), (0.5, 0.2), (1, 1)])
    elif k == "dip":
        # x * sigmoid(x): a small dip below zero, then linear
        curve([(i / 20,
                0.25 + 0.75 * (8 * (i / 20 - 0.5)) / (1 + math.exp(-8 * (i / 20 - 0.5))) / 4)
               for i in range(21)])
    elif k == "softplus":
        curve([(i / 20, 0.1 + 0.85 * math.log1p(math.exp(8 * (i / 20 - 0.5))) / 4.0)
               for i in range(21)])
    elif k == "leaky":
        curve([(0, 0.08), (0.5, 0.25), (1, 1)])
    elif k in ("sigmoid", "tanh", "curve"):
        lo = 0.08 if k != "tanh" else 0.0
        pts = [(i / 20, lo + (1 - 2 * lo) / (1 + pow(2.718, -10 * (i / 20 - 0.5))))
               for i in range(21)]
        if k == "tanh":
            p.drawLine(pt(0, 0.5), pt(1, 0.5))
        curve(pts)
    elif k == "softmax":
        p.setPen(Qt.NoPen)
        p.setBrush(colour)
        for i, h in enumerate((0.25, 0.9, 0.45, 0.15)):
            p.drawRect(QRectF(x0 + i * W * 0.26, y1 - h * H, W * 0.2, h * H))
    elif k == "identity":
        p.drawLine(pt(0, 0), pt(1, 1))
    elif k == "conv":
        step = W / 4
        thin = QPen(colour, w * 0.5)
        p.setPen(thin)
        for i in range(5):
            p.drawLine(QPointF(x0 + i * step, y0), QPointF(x0 + i * step, y1))
            p.drawLine(QPointF(x0, y0 + i * step), QPointF(x1, y0 + i * step))
        p.setPen(pen)
        p.drawRect(QRectF(x0 + step, y0 + step, 2 * step, 2 * step))
    elif k in ("maxpool", "avgpool"):
        s = W / 2
        p.setPen(QPen(colour, w * 0.5))
        for i in range(2):
            for j in range(2):
                p.drawRect(QRectF(x0 + i * s, y0 + j * s, s, s))
        p.setPen(Qt.NoPen)
        p.setBrush(colour)
        if k == "maxpool":
            p.drawRect(QRectF(x0 + s, y0, s, s))
        else:
            p.drawEllipse(QPointF(cx, cy), s * 0.35, s * 0.35)
    elif k == "bell":
        pts = [(i / 20, 0.05 + 0.9 * pow(2.718, -((i / 20 - 0.5) ** 2) / 0.03))
               for i in range(21)]
        curve(pts)
        p.drawLine(pt(0, 0.02), pt(1, 0.02))
    elif k == "layernorm":
        for i in range(3):
            p.drawLine(pt(0.15 + 0.35 * i, 0.1), pt(0.15 + 0.35 * i, 0.9))
        p.drawLine(pt(0, 0.5), pt(1, 0.5))
    elif k == "dropout":
        for i in range(3):
            for j in range(3):
                c = pt(0.15 + 0.35 * i, 0.15 + 0.35 * j)
                if (i + 2 * j) % 3 == 0:
                    p.setBrush(Qt.NoBrush)
                else:
                    p.setBrush(colour)
                p.drawEllipse(c, w * 1.2, w * 1.2)
    elif k == "add":
        p.drawEllipse(r.center(), W / 2, H / 2)
        p.drawLine(pt(0.5, 0.22), pt(0.5, 0.78))
        p.drawLine(pt(0.22, 0.5), pt(0.78, 0.5))
    elif k == "mul":
        p.drawEllipse(r.center(), W / 2, H / 2)
        p.drawLine(pt(0.3, 0.3), pt(0.7, 0.7))
        p.drawLine(pt(0.3, 0.7), pt(0.7, 0.3))
    elif k == "concat":
        p.setBrush(colour)
        p.drawRect(QRectF(x0, y0, W * 0.3, H * 0.45))
        p.setBrush(Qt.NoBrush)
        p.drawRect(QRectF(x0 + W * 0.7, y0, W * 0.3, H * 0.45))
        p.drawRect(QRectF(x0 + W * 0.2, y0 + H * 0.62, W * 0.6, H * 0.38))
    else:
        f = QFont()
        f.setBold(True)
        f.setPixelSize(max(int(H * 0.62), 6))
        p.setFont(f)
        letters = "".join(c for c in type_name if c.isupper())[:2] or type_name[:2]
        p.drawText(r, Qt.AlignCenter, letters)
    p.restore()
