"""The hover card: resting the pointer on a node shows the engine's numbers for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bplab.ui.editor.badges import fmt_num
from bplab.ui.editor.items import format_count, format_shape
from PySide6.QtCore import QPoint, QPointF

from bplab.unitmaps import node_histograms

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
TIMEOUT = 30_000


@pytest.fixture
def window(open_window):
    return open_window(EXAMPLES / "spiral.bplab.json", size=(1500, 950))


def hover(qtbot, w, node_id: str) -> None:
    """Move the real pointer onto the node's card."""
    item = w.scene.node_item(node_id)
    w.view.centerOn(item)
    qtbot.mouseMove(w.view.viewport(), QPoint(3, 3))  # off it first
    qtbot.mouseMove(w.view.viewport(), w.view.mapFromScene(item.scenePos()))


def test_the_hover_card_shows_the_engines_numbers_for_a_node(qtbot, window):
    w, cards = window, window.menus.hover_cards
    hover(qtbot, w, "fc1")
    qtbot.waitUntil(lambda: cards.shown == "fc1")
    assert "Train to see live values" in cards.card.text()
    assert dict(cards.card.rows)["parameters"] == format_count(w.doc.plan.param_counts["fc1"])
    for _ in range(3):
        with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
            w.session.step()
    report = w.session.latest.diagnostics
    assert report is not None and report.layers is not None
    stats = {s.layer: s for s in report.layers}["fc1"]
    rows = dict(cards.card.rows)  # refreshed by the updates while shown
    assert rows["output shape"] == format_shape(w.doc.plan.shapes["fc1"])
    assert rows["parameters"] == format_count(2 * 8 + 8)
    assert rows["weight norm"] == fmt_num(stats.weight_norm)
    assert rows["gradient norm"] == fmt_num(stats.grad_norm)
    assert rows["update ratio"] == fmt_num(stats.update_ratio)
    hists = {label: h for label, h, _ in cards.card.histograms}
    np.testing.assert_array_equal(hists["weights"].counts, stats.weight_hist.counts)
    trainer = w.session.trainer
    expect = node_histograms(trainer.network, trainer.dataset.x_train[:256])["fc1"]
    np.testing.assert_array_equal(hists["outputs on a training batch"].counts, expect.counts)
    # an activation: its spread and saturated fraction, as the engine measured them
    hover(qtbot, w, "act1")
    qtbot.waitUntil(lambda: cards.shown == "act1")
    act = {a.layer: a for a in report.activations}["act1"]
    rows = dict(cards.card.rows)
    assert rows["mean ± std"] == f"{fmt_num(act.mean)} ± {fmt_num(act.std)}"
    assert rows["saturated units"] == f"{100 * act.saturated_fraction:.0f} %"
    assert "weight norm" not in rows and rows["parameters"] == "none"
    assert cards.card.isVisible() and w.session.worker.node_histograms
    # the pointer leaves: the card goes, and the worker stops making histograms
    qtbot.mouseMove(w.view.viewport(), QPoint(3, 3))  # (QPoint() is the centre)
    qtbot.waitUntil(lambda: cards.shown is None)
    assert not w.session.worker.node_histograms


def test_the_card_follows_the_run_live(qtbot, window):
    w, cards = window, window.menus.hover_cards
    hover(qtbot, w, "fc2")
    qtbot.waitUntil(lambda: cards.shown == "fc2")
    seen = []
    w.session.updated.connect(lambda u: u.node_histograms is not None and seen.append(
        dict(cards.card.rows).get("weight norm")))
    w.session.run()
    qtbot.waitUntil(lambda: len({s for s in seen if s}) >= 2, timeout=TIMEOUT)
    w.session.pause()
    qtbot.waitUntil(lambda: w.session.worker.is_idle, timeout=TIMEOUT)


def test_the_card_stays_inside_the_visible_canvas(qtbot, open_window):
    """At 1280x800 the canvas is narrow: a node near its left edge shows its card on its
    right, whole, and the card never hangs below or above what is visible."""
    w = open_window(EXAMPLES / "spiral.bplab.json", size=(1280, 800))
    cards = w.menus.hover_cards
    item = w.scene.node_item("fc2")
    view = w.view
    view.setSceneRect(view.sceneRect().adjusted(-2000, -2000, 2000, 2000))  # room to scroll
    TO_EDGE = view.viewport().width() / 2 - 150  # noqa: N806
    view.centerOn(item.pos() + QPointF(TO_EDGE, 0))  # the node near the left edge
    cards.show_for("fc2")
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    card = cards.card.sceneBoundingRect()
    assert seen.contains(card), (seen, card)
    assert card.left() > item.sceneBoundingRect().right()  # moved to the right side
    view.centerOn(item.pos() + QPointF(-200, 0))  # room on the left again
    cards.show_for("fc2")
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    card = cards.card.sceneBoundingRect()
    assert card.right() < item.sceneBoundingRect().left() and seen.contains(card)
