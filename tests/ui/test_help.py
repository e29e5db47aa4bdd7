"""Help: the quick tour, the keyboard shortcuts read from the actions, the concepts."""

from __future__ import annotations

import pytest
from bplab.ui.help import CONCEPTS, ConceptsDialog, ShortcutsDialog, shortcut_rows
from bplab.ui.main_window import demo_path
from bplab.ui.tour import STEPS
from PySide6.QtCore import QRect
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication


@pytest.fixture
def window(shared_window, qtbot):
    """The shared window with the demo freshly opened, unmodified, at 1400x900."""
    w = shared_window
    w.doc.mark_saved()
    assert w.open_path(demo_path(), as_copy=True)
    w.resize(1400, 900)
    QApplication.processEvents()
    yield w
    if getattr(w.menus, "tour", None) is not None:
        w.menus.tour.stop()


def test_the_help_menu_offers_tour_shortcuts_concepts_and_about(window):
    help_menu = next(a.menu() for a in window.menuBar().actions()
                     if a.text().replace("&", "") == "Help")
    texts = [a.text().replace("&", "") for a in help_menu.actions() if not a.isSeparator()]
    assert texts == ["Quick tour", "Keyboard shortcuts", "Concepts", "About bplab"]


def test_the_tour_points_at_each_part_in_turn(window, qtbot):
    w = window
    w.menus.act_tour.trigger()
    tour = w.menus.tour
    assert tour.active and tour.callout.isVisible() and tour.overlay.isVisible()
    seen = []
    for i, step in enumerate(tour.steps):
        assert tour.index == i and tour.title.text() == step.title
        target = tour.target(step)
        assert target.isVisible()
        hole = tour.overlay.hole
        assert hole == QRect(target.mapTo(w, target.rect().topLeft()), target.size())
        # the callout is on screen, inside the window, and does not cover what it explains
        call = tour.callout.geometry()
        assert w.rect().contains(call)
        assert not call.intersects(hole)
        seen.append(step.dock)
        tour.next.click()
    assert seen == [s.dock for s in STEPS if s.dock is None or s.dock in w.docks]
    assert {"palette", None, "training", "loss"} <= set(seen)
    assert not tour.active and not tour.callout.isVisible()


def test_the_tour_goes_back_and_closes(window):
    w = window
    w.menus.act_tour.trigger()
    tour = w.menus.tour
    assert not tour.back.isEnabled()
    tour.next.click()
    tour.back.click()
    assert tour.index == 0
    tour.close_button.click()
    assert not tour.active and not tour.overlay.isVisible()


def test_shortcuts_are_read_from_the_actions(window, qtbot):
    w = window
    rows = shortcut_rows(w)
    keys = {action: k for _, action, k in rows}
    native = QKeySequence.SequenceFormat.NativeText
    assert keys["Undo"] == ", ".join(s.toString(native) for s in w.menus.act_undo.shortcuts())
    assert keys["Quick tour"] == "F1"
    run = w.train_actions.all()[0]
    assert run.text().replace("&", "").rstrip("…. ") in keys
    for a in (w.menus.act_save, w.menus.act_open, w.menus.act_rename):
        assert a.text().replace("&", "").rstrip("…. ") in keys
    w.menus.act_shortcuts.trigger()
    dialog = w.menus.help_dialog
    qtbot.addWidget(dialog)
    assert isinstance(dialog, ShortcutsDialog) and dialog.isVisible()
    assert dialog.table.rowCount() == len(rows)
    dialog.close()


def test_concepts_are_a_click_away(window, qtbot):
    w = window
    w.menus.act_concepts.trigger()
    dialog = w.menus.help_dialog
    qtbot.addWidget(dialog)
    assert isinstance(dialog, ConceptsDialog) and dialog.isVisible()
    text = dialog.browser.toPlainText()
    assert "Backpropagation" in text and "vanishing" in text
    assert "Fixing what the diagnosis finds" in text  # the README's section
    assert CONCEPTS.splitlines()[0].lstrip("# ") in text
    dialog.close()
    QApplication.processEvents()
