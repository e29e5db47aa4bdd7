"""The bundled example projects: where they are, their titles, and the File > Examples menu."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMenu

from bplab.errors import BplabError
from bplab.io.loading import load_json

if TYPE_CHECKING:
    from bplab.ui.project_files import ProjectFiles

__all__ = ["ExamplesMenu", "demo_path", "list_examples", "resources_dir"]


def resources_dir() -> Path:
    """``resources/`` of a source checkout (next to ``ui/``), else the installed copy."""
    here = Path(__file__).resolve().parent.parent / "resources"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "bplab" / "resources"


def list_examples() -> list[tuple[str, Path]]:
    """(title, path) of every example project, the demo (spiral) first."""
    out = []
    for path in sorted((resources_dir() / "examples").glob("*.bplab.json")):
        try:
            data = load_json(path, "example project")
            title = (data.get("name") if isinstance(data, dict) else None) or path.stem
        except BplabError:  # a damaged example is left out of the menu, not fatal
            continue
        out.append((str(title), path))
    out.sort(key=lambda tp: (not tp[1].name.startswith("spiral"), tp[0].lower()))
    return out


def demo_path() -> Path:
    return resources_dir() / "examples" / "spiral.bplab.json"


class ExamplesMenu(QObject):
    """Fills a menu with one action per example; each opens its example as an untitled copy
    (so the bundled file is never overwritten)."""

    def __init__(self, files: ProjectFiles, parent: QObject | None = None):
        super().__init__(parent)
        self.files = files

    def fill(self, menu: QMenu) -> None:
        menu.setToolTipsVisible(True)
        for title, path in list_examples():
            a = menu.addAction(title)
            a.setToolTip(f"Open the example project {path.name}")
            a.setData(str(path))
            a.triggered.connect(self._on_example_triggered)

    def _on_example_triggered(self) -> None:
        path = self.sender().data()
        if path:
            self.files.open_path(path, as_copy=True)
