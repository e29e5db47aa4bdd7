"""View > Unit maps: every unit's output over the input plane beside its node, live.

A real window trains Playground's spiral; the thumbnails drawn are compared with the
engine's own forward pass on the same grid, value by value and pixel by pixel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bplab.ui.editor.badges import NEG, POS, heat_colours
from bplab.ui.editor.unit_maps import UnitDetail
from bplab.ui.training.worker import RUNNING
from PySide6.QtCore import Qt

from bplab.unitmaps import plane_grid

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
TIMEOUT = 30_000


@pytest.fixture
def window(open_window):
    return open_window(EXAMPLES / "spiral.bplab.json", size=(1500, 950))


def image_rgb(image) -> np.ndarray:
    """A QImage's pixels as (h, w, 3) uint8."""
    h, w = image.height(), image.width()
    return np.array([[image.pixelColor(x, y).getRgb()[:3] for x in range(w)]
                     for y in range(h)], np.uint8)


def engine_outputs(trainer, bounds, res):
    grid = plane_grid(bounds, res, trainer.network.dtype)
    outs = {nid: np.asarray(y).copy() for nid, y in
            trainer.network.forward_nodes(grid, training=False)}
    for layer in trainer.network._layers:
        layer.clear_cache()
    return outs


def test_unit_maps_update_while_training_and_match_the_engines_outputs_on_a_grid(
        qtbot, window):
    w, view = window, window.menus.unit_maps
    assert w.menus.unit_maps.action in w.menuBar().actions()[2].menu().actions()  # View
    # long enough for several updates on a fast machine (the demo's 300 epochs can end
    # in 0.3 s, after two); paused below once three have come
    w.doc.set_value("training.epochs", 5000)
    view.action.setChecked(True)
    assert w.session.worker.unit_maps
    shown: list[dict] = []
    w.session.updated.connect(
        lambda u: u.unit_maps is not None and shown.append(
            {n: s.maps.copy() for n in ("fc1", "act2")
             if (s := view.strip(n)) is not None}))
    w.session.run()
    assert w.session.state == RUNNING
    qtbot.waitUntil(lambda: len(shown) >= 3, timeout=TIMEOUT)
    w.session.pause()
    qtbot.waitUntil(lambda: w.session.worker.is_idle and w.session.state != RUNNING,
                    timeout=TIMEOUT)
    qtbot.wait(0)  # deliver the last update
    # live: the maps drawn changed between updates while the weights trained
    assert not np.allclose(shown[0]["fc1"], shown[-1]["fc1"])
    maps = view.latest
    outs = engine_outputs(w.session.trainer, maps.bounds, maps.resolution)
    res = maps.resolution
    assert res == 24
    for nid in ("fc1", "act1", "fc2", "act2", "out"):
        strip = view.strip(nid)
        assert strip is not None and strip.isVisible()
        expect = outs[nid].T.reshape(-1, res, res)
        np.testing.assert_allclose(strip.maps, expect, rtol=1e-4, atol=1e-5)
        # the pixels: the diverging map of the values, the node's largest magnitude full
        # colour, rows along y drawn upwards
        scale = np.abs(expect).max()
        for u in (0, len(expect) - 1):
            want = heat_colours(np.vstack([expect[u][::-1], np.full((1, res), scale)]))[:-1]
            got = image_rgb(strip.images[u])
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert view.strip("in") is None  # the Input has no units to map
    view.action.setChecked(False)
    assert view.strip("fc1") is None and not w.session.worker.unit_maps


def test_clicking_a_thumbnail_shows_it_large_with_its_weights(qtbot, window):
    w, view = window, window.menus.unit_maps
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.session.step()
    view.action.setChecked(True)  # paused: drawn at once from the trainer
    strip = view.strip("act1")
    assert strip is not None and len(strip.images) == 8
    w.view.centerOn(strip)
    centre = strip.mapToScene(strip._rect(3).center())
    pt = w.view.mapFromScene(centre)
    qtbot.mouseClick(w.view.viewport(), Qt.MouseButton.LeftButton, pos=pt)
    detail = view.detail
    assert isinstance(detail, UnitDetail) and detail.isVisible()
    assert (detail.node_id, detail.unit) == ("act1", 3)
    np.testing.assert_array_equal(detail.values, strip.maps[3])
    net = w.session.trainer.network
    w_in = net.layers["fc1"].params["weight"].data[3]
    w_out = net.layers["fc2"].params["weight"].data[:, 3]
    text = detail.weights.text()
    assert "from 'in'" in text and "into 'fc2'" in text
    np.testing.assert_allclose(strip.links.w_in[3], w_in)
    np.testing.assert_allclose(strip.links.w_out["fc2"][3], w_out)
    assert not detail.image.pixmap().isNull()


def test_one_input_maps_are_each_units_curve_of_x(qtbot, open_window):
    """1-D data (the sine fit): every unit's output along x, the engine's values, drawn as
    a curve filled orange above zero and blue below; its detail says where x runs."""
    w = open_window(EXAMPLES / "sine_fit.bplab.json", size=(1500, 950))
    view = w.menus.unit_maps
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.session.step()
    view.action.setChecked(True)  # paused: drawn at once from the trainer
    maps = view.latest
    assert maps.bounds == ((-6.0, 6.0),) and maps.resolution == 96
    outs = engine_outputs(w.session.trainer, maps.bounds, maps.resolution)
    for nid in ("fc1", "act1", "fc2", "act2", "out"):
        strip = view.strip(nid)
        assert strip is not None and strip.maps.shape == (outs[nid].shape[1], 96)
        np.testing.assert_allclose(strip.maps, outs[nid].T, rtol=1e-4, atol=1e-5)
    strip = view.strip("act1")
    # a unit's picture: where the curve is above zero the area is orange, below it blue
    u = int(np.argmax(np.abs(strip.maps).max(axis=1)))
    values = strip.maps[u]
    rgb = image_rgb(strip.images[u])
    size = rgb.shape[1]
    checked = 0
    for i in range(2, 94, 7):
        col = round(i * (size - 1) / 95)
        v = values[i]
        if abs(v) < 0.35 * strip.scale:  # the fill reaches 6 px past the zero line
            continue
        row = size // 2 - (6 if v > 0 else -6)  # just off the zero line, on the value's side
        want = POS if v > 0 else NEG
        assert np.abs(rgb[row, col].astype(int) - want).max() <= 2, (i, v, rgb[row, col])
        checked += 1
    assert checked >= 3
    w.menus.unit_maps._on_strip_clicked(strip, u)
    detail = view.detail
    assert detail.isVisible() and detail.caption.text().startswith("x -6..6")
    np.testing.assert_array_equal(detail.values, strip.maps[u])


@pytest.mark.parametrize("example", ["spiral", "xor", "vanishing_gradients", "sine_fit"])
def test_the_maps_of_one_band_leave_the_next_band_uncovered(qtbot, open_window, example):
    """Networks on the plane wrap into bands with room for the maps between them: no strip
    covers another node's card, and Fit to window shows every card with its maps."""
    w = open_window(EXAMPLES / f"{example}.bplab.json", size=(1500, 950))
    view = w.menus.unit_maps
    with qtbot.waitSignal(w.session.finished, timeout=TIMEOUT):
        w.session.step()
    view.action.setChecked(True)
    strips = [s for s in (view.strip(n) for n in w.doc.node_ids()) if s is not None]
    assert len({round(s.parentItem().pos().x()) for s in strips}) >= 2  # maps in two bands
    for strip in strips:
        drawn = strip.sceneBoundingRect()
        for item in w.scene.node_items():
            assert not drawn.intersects(item.sceneBoundingRect()), (strip.node_id, item.node_id)
    w.view.actions_["fit"].trigger()
    shown = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
    drawn = strips + w.scene.node_items()
    assert all(shown.contains(i.sceneBoundingRect()) for i in drawn)
