"""Unit maps: every unit's output over the input plane, and the weights around it."""

import numpy as np
import pytest

from bplab.graph.network import Network
from bplab.unitmaps import node_histograms, plane_grid, unit_maps

SPEC = {"nodes": [
    {"id": "in", "type": "Input", "shape": [2]},
    {"id": "fc1", "type": "Dense", "units": 20},
    {"id": "act1", "type": "Tanh"},
    {"id": "fc2", "type": "Dense", "units": 3},
    {"id": "act2", "type": "ReLU"},
    {"id": "out", "type": "Dense", "units": 2},
]}
BOUNDS = ((-2.0, 3.0), (-1.0, 1.0))


@pytest.fixture
def net():
    return Network(SPEC, dtype="float64", seed=3)


def test_maps_are_the_forward_outputs_on_the_grid(net):
    m = unit_maps(net, BOUNDS, resolution=7, max_units=16)
    assert set(m.maps) == {"fc1", "act1", "fc2", "act2", "out"}
    assert m.units["fc1"] == 20 and m.maps["fc1"].shape == (16, 7, 7)  # capped
    grid = plane_grid(BOUNDS, 7)
    w1, b1 = net.layers["fc1"].params["weight"].data, net.layers["fc1"].params["bias"].data
    h = np.tanh(grid @ w1.T + b1)
    # unit 4's map, row j (y), column i (x) is the output at (x_i, y_j)
    np.testing.assert_allclose(m.maps["act1"][4], h[:, 4].reshape(7, 7), rtol=1e-5, atol=1e-6)
    xs = np.linspace(*BOUNDS[0], 7)
    ys = np.linspace(*BOUNDS[1], 7)
    p = np.array([xs[5], ys[2]])
    expect = np.tanh(p @ w1.T + b1)[4]
    assert m.maps["act1"][4][2, 5] == pytest.approx(expect, rel=1e-5)
    np.testing.assert_allclose(m.maps["out"].reshape(2, -1).T, net.predict(grid), rtol=1e-5,
                               atol=1e-6)
    assert all(layer._x is None for layer in [net.layers["fc1"]])  # caches freed


def test_one_input_maps_are_curves_of_x():
    """1-D data: each unit's output along the input line, the pieces of the fitted curve."""
    spec = {"nodes": [dict(SPEC["nodes"][0], shape=[1]), *SPEC["nodes"][1:]]}
    net = Network(spec, dtype="float64", seed=3)
    m = unit_maps(net, ((-6.0, 6.0),), resolution=9)
    assert m.bounds == ((-6.0, 6.0),) and m.maps["fc1"].shape == (16, 9)
    x = np.linspace(-6.0, 6.0, 9)[:, None]
    np.testing.assert_array_equal(plane_grid(((-6.0, 6.0),), 9), x)
    w1, b1 = net.layers["fc1"].params["weight"].data, net.layers["fc1"].params["bias"].data
    np.testing.assert_allclose(m.maps["act1"][:16].T, np.tanh(x @ w1.T + b1)[:, :16],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.maps["out"].T, net.predict(x), rtol=1e-5, atol=1e-6)
    assert m.links["act1"].w_in.shape == (16, 1)  # each unit's one weight from x


def test_links_follow_activations_to_the_weight_layers(net):
    m = unit_maps(net, BOUNDS, resolution=5)
    w2 = net.layers["fc2"].params["weight"].data
    link = m.links["act1"]  # a Tanh: its units are fc1's
    assert link.src == "in"
    np.testing.assert_array_equal(link.w_in, net.layers["fc1"].params["weight"].data[:16])
    assert set(link.w_out) == {"fc2"}
    np.testing.assert_array_equal(link.w_out["fc2"], w2[:, :16].T)
    assert m.links["fc2"].src == "act1" and set(m.links["act2"].w_out) == {"out"}


def test_node_histograms_count_every_output(net):
    x = np.random.default_rng(0).normal(size=(50, 2))
    hs = node_histograms(net, x, bins=10)
    assert set(hs) == {"fc1", "act1", "fc2", "act2", "out"}
    assert int(hs["fc1"].counts.sum()) == 50 * 20
    assert hs["act1"].hi <= 1.0 + 1e-9
