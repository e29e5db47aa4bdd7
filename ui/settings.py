"""Where the app keeps its settings (window layout, theme, recent files)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

__all__ = ["APP", "ORG", "app_settings"]

ORG, APP = "bplab", "bplab"


def app_settings() -> QSettings:
    """The app's settings (INI, user scope). Tests point ``QSettings.setPath`` elsewhere."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)
