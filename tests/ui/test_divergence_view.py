"""The window after a divergence (the node that blew up glows, the dialog offers the engine's
rate) and the best epoch (Train > Revert to best epoch, File > Export best weights)."""

from __future__ import annotations

import pytest
from bplab.ui.main_window import list_examples
from bplab.ui.run_view import DIVERGED_COLOR
from bplab.ui.training.worker import PAUSED, RUNNING
from PySide6.QtGui import QColor

from bplab.io.export import load_weights

TIMEOUT = 30_000


@pytest.fixture
def make_window(open_window):
    return open_window


def _diverge(qtbot, make_window):
    examples = {p.name: p for _, p in list_examples()}
    w = make_window(examples["exploding_gradients.bplab.json"])
    with qtbot.waitSignal(w.session.diverged, timeout=TIMEOUT) as blocker:
        w.train_actions.run.trigger()
    qtbot.waitUntil(lambda: w.session.state == PAUSED, timeout=TIMEOUT)
    return w, blocker.args[0]


def test_the_layer_that_blew_up_glows_and_the_dialog_offers_the_engines_rate(
        qtbot, make_window):
    w, message = _diverge(qtbot, make_window)
    div = w.session.trainer.divergence
    assert div.layer == "fc1" and "'fc1'" in message
    assert w.run_view.diverged_layer == "fc1"
    glowing = {nid for nid in w.doc.node_ids()
               if w.scene.node_item(nid).highlight is not None}
    assert glowing == {"fc1"}
    assert QColor(w.scene.node_item("fc1").highlight) == QColor(DIVERGED_COLOR)
    assert w.last_error.lr == pytest.approx(div.suggested_lr)
    w.last_error.close()
    # the status bar's message fits on one line: the gist, the whole message in its tooltip
    bar = w.statusBar()
    shown = bar.currentMessage()
    assert shown.startswith(f"Training diverged at step {div.step}: 'fc1' blew up first.")
    assert "Resume" in shown and len(shown) < len(message) and bar.toolTip() == message
    assert bar.fontMetrics().horizontalAdvance(shown) < 0.6 * 1280  # beside the numbers, at 1280
    bar.showMessage("something else")  # the tooltip belongs to the divergence's line only
    assert bar.toolTip() == ""


@pytest.mark.slow
def test_resuming_at_the_offered_rate_trains_to_the_end_and_the_glow_goes(qtbot, make_window):
    w, _ = _diverge(qtbot, make_window)
    box = w.last_error
    states = []
    w.session.state_changed.connect(states.append)
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT) as done:
        box.resume_button.click()
    assert states[0] == RUNNING
    assert done.args[0] == "done"  # from the healthy weights, at that rate: no blow-up
    assert not [n for n in w.doc.node_ids() if w.scene.node_item(n).highlight is not None]


def test_revert_to_best_epoch_and_export_best_weights(qtbot, make_window, tmp_path):
    w = make_window()
    w.doc.set_value("training.epochs", 6)
    assert w.run_view.revert_to_best() is None  # nothing trained yet: says so
    assert "No best epoch" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.train_actions.run.trigger()
    t = w.session.trainer
    assert t.best_state is not None and 1 <= t.best_epoch <= 6
    path = tmp_path / "best.npz"
    assert w.exports.export_best_weights(path)
    saved = load_weights(path)
    for name, value in t.best_state.items():
        assert (saved[name] == value).all(), name
    t.network.flat.data[...] = 0.0
    assert w.run_view.revert_to_best() == t.best_epoch
    for name, value in t.network.state_dict().items():
        assert (value == t.best_state[name]).all(), name
    assert f"epoch {t.best_epoch}" in w.statusBar().currentMessage()
    assert w.menus.act_revert_best.text().replace("&", "") == "Revert to best epoch"
