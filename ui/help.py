"""Help > Keyboard shortcuts and Help > Concepts.

The shortcuts are read from the window's actions themselves (menus, toolbar, the canvas's own
actions), so the list cannot drift from what the keys do. The concepts are a short text built
in here, followed by the README's sections on the diagnosis, step-through and recurrent
networks when the README is there (a source checkout).
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

__all__ = ["CONCEPTS", "ConceptsDialog", "ShortcutsDialog", "concepts_markdown", "shortcut_rows"]

CONCEPTS = """\
# Concepts

**Forward pass.** A sample flows through the network from the Input to the output layer; every
layer turns its input into its output (the shape on each wire).

**Loss.** One number saying how wrong the output is for the target: cross-entropy for classes,
mean squared error (or L1, Huber) for numbers. Training makes it small.

**Backpropagation.** The chain rule run backwards: from the loss, each layer receives
dL/d(its output), passes dL/d(its input) to the layer before, and keeps dL/d(its weights).
Train > Step through… shows it node by node.

**Optimiser and learning rate.** The update of each weight from its gradient: SGD steps against
the gradient by the learning rate; momentum and Adam keep running averages of it.

**Gradient norms.** The size of each layer's gradient (Gradient norms plot, coloured from the
input side, dark, to the output side, light). A fan that shrinks towards the input is a
*vanishing* gradient: the first layers barely learn. Growing norms, a loss that jumps and then
NaN are an *exploding* gradient.

**Update ratio.** ‖ΔW‖ / ‖W‖ per step: about 1e-3 is healthy; far below, the layer is frozen,
far above, it is being thrown around.

**Dead and saturated units.** A ReLU that outputs 0 for every sample is dead (no gradient flows
through it); a sigmoid or tanh stuck near its flat ends is saturated (almost none does). The
Activations plot and the Diagnosis panel report them, with fixes you can apply and undo.

**Decision boundary.** For 2-D data, the network's prediction over the whole input plane,
with the training points (filled) and validation points (rings) on top.

**Validation.** Samples kept out of training: when the training loss falls and the validation
loss rises, the network memorises instead of learning (overfitting).
"""

README_SECTIONS = ("Fixing what the diagnosis finds", "Backpropagation, one step at a time",
                   "Recurrent networks: backpropagation through time")


def _readme() -> Path | None:
    path = Path(__file__).resolve().parent.parent / "README.md"
    return path if path.is_file() else None


def concepts_markdown(readme: Path | None = None) -> str:
    """The built-in concepts, then the README's explanatory sections (where there is one)."""
    readme = readme if readme is not None else _readme()
    parts = [CONCEPTS]
    if readme is not None:
        text = readme.read_text(encoding="utf-8")
        for title in README_SECTIONS:
            m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
            if m:
                parts.append(f"## {title}\n{m.group(1)}")
    return "\n\n".join(parts)


def _menu_actions(menu: QMenu, path: str, seen: set[int], rows: list) -> None:
    for a in menu.actions():
        if a.menu() is not None:
            _menu_actions(a.menu(), f"{path} > {a.menu().title().replace('&', '')}", seen, rows)
        elif not a.isSeparator():
            _add_row(a, path, seen, rows)


def _add_row(a: QAction, where: str, seen: set[int], rows: list) -> None:
    keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts())
    if not keys or id(a) in seen:
        return
    seen.add(id(a))
    text = a.iconText() if a.iconText() else a.text()
    rows.append((where, text.replace("&", "").rstrip("…. "), keys))


def shortcut_rows(window) -> list[tuple[str, str, str]]:
    """``(menu, action, keys)`` of every action of ``window`` that has a shortcut, in menu
    order, then the canvas's own actions."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()
    for a in window.menuBar().actions():
        if a.menu() is not None:
            _menu_actions(a.menu(), a.menu().title().replace("&", ""), seen, rows)
    for a in list(window.view.actions_.values()) + window.actions():
        _add_row(a, "Canvas", seen, rows)
    return rows


class ShortcutsDialog(QDialog):
    """Help > Keyboard shortcuts: a table of :func:`shortcut_rows`."""

    def __init__(self, window, parent: QWidget | None = None):
        super().__init__(parent or window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        extra = QTextBrowser(self)
        extra.setMaximumHeight(90)
        extra.setMarkdown("**On the canvas:** the mouse wheel zooms, the middle button or Space "
                          "+ drag pans, a drag on empty canvas selects, a drag from the port "
                          "under a node to another node connects them, Delete removes the "
                          "selection.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(extra)
        lay.addWidget(buttons)
        self.resize(560, 560)


class ConceptsDialog(QDialog):
    """Help > Concepts: :func:`concepts_markdown` in a browser."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Concepts")
        self.browser = QTextBrowser(self)
        self.browser.setOpenExternalLinks(True)
        readme = _readme()
        if readme is not None:
            self.browser.setSearchPaths([str(readme.parent)])
        self.browser.setMarkdown(concepts_markdown(readme))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)
        self.resize(720, 640)
