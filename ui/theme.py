"""Light and dark themes: the Fusion style with two palettes, following the system by default.

On Qt >= 6.5 the system's preference comes from ``QStyleHints.colorScheme`` and is
followed live (``colorSchemeChanged``); on older Qt the starting palette's lightness decides.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

__all__ = ["THEMES", "ThemeManager", "dark_palette", "light_palette", "system_prefers_dark"]

THEMES = ("system", "light", "dark")


def system_prefers_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)  # Qt >= 6.5
    if scheme is not None:
        value = scheme()
        if value != Qt.ColorScheme.Unknown:
            return value == Qt.ColorScheme.Dark
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def light_palette() -> QPalette:
    return QStyleFactory.create("Fusion").standardPalette()


def dark_palette() -> QPalette:
    p = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    window, base, text = QColor(45, 45, 48), QColor(30, 30, 32), QColor(225, 225, 225)
    for r, c in (
        (role.Window, window), (role.WindowText, text), (role.Base, base),
        (role.AlternateBase, QColor(40, 40, 43)), (role.ToolTipBase, QColor(60, 60, 64)),
        (role.ToolTipText, text), (role.PlaceholderText, QColor(140, 140, 140)),
        (role.Text, text), (role.Button, QColor(55, 55, 58)), (role.ButtonText, text),
        (role.BrightText, QColor(255, 90, 90)), (role.Light, QColor(75, 75, 78)),
        (role.Midlight, QColor(62, 62, 65)), (role.Mid, QColor(50, 50, 52)),
        (role.Dark, QColor(25, 25, 27)), (role.Shadow, QColor(10, 10, 10)),
        (role.Highlight, QColor(42, 130, 218)), (role.HighlightedText, QColor(255, 255, 255)),
        (role.Link, QColor(90, 160, 240)), (role.LinkVisited, QColor(160, 120, 240)),
    ):
        p.setColor(r, c)
    grey = QColor(128, 128, 128)
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(group.Disabled, r, grey)
    p.setColor(group.Disabled, role.Button, QColor(48, 48, 50))
    p.setColor(group.Disabled, role.Base, QColor(38, 38, 40))
    return p


class ThemeManager(QObject):
    """Applies ``"system"``, ``"light"`` or ``"dark"``; emits ``changed(dark)`` after each change.

    The plots follow the application palette themselves (they listen for palette changes).
    """

    changed = Signal(bool)

    def __init__(self, app: QApplication, parent: QObject | None = None):
        super().__init__(parent)
        self.app = app
        self.mode = "system"
        self.dark = False
        app.setStyle("Fusion")
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_hints_color_scheme_changed)

    def set_mode(self, mode: str) -> None:
        if mode not in THEMES:
            raise ValueError(f"theme must be one of {', '.join(THEMES)}, received {mode!r}")
        self.mode = mode
        self.apply()

    def apply(self) -> None:
        dark = system_prefers_dark() if self.mode == "system" else self.mode == "dark"
        self.dark = dark
        self.app.setPalette(dark_palette() if dark else light_palette())
        self.changed.emit(dark)

    def _on_hints_color_scheme_changed(self, _scheme) -> None:
        if self.mode == "system":
            self.apply()
