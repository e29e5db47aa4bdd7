"""Layers that overflow on purpose share one errstate per forward pass, and stay silent."""

from __future__ import annotations

import threading
import warnings

import numpy as np

from bplab.graph import Network
from bplab.layers import LAYERS
from bplab.layers.base import OVERFLOW_IGNORED

NET = {"nodes": [
    {"id": "in", "type": "Input", "shape": [2]},
    {"id": "fc", "type": "Dense", "units": 3},
    {"id": "sig", "type": "Sigmoid"},
    {"id": "out", "type": "Dense", "units": 2},
]}


def test_a_saturated_sigmoid_network_is_silent_and_exact():
    net = Network(NET, dtype="float64")
    w = net.layers["fc"].params["weight"].data
    w[...] = [[1e4, 0.0], [-1e4, 0.0], [0.0, 1.0]]  # exp(-x) overflows for the second unit
    x = np.array([[1.0, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.forward(x)
        hidden = dict(net.forward_nodes(x))["sig"]  # node by node: each layer's own errstate
        alone = LAYERS["Sigmoid"]("s").forward(np.array([-1e4, 0.0]))
    assert hidden[0, 1] == 0.0 and hidden[0, 0] == 1.0  # the exact limits
    assert alone[0] == 0.0 and alone[1] == 0.5
    assert not OVERFLOW_IGNORED.on  # restored after the pass


def test_the_flag_belongs_to_the_thread_running_the_pass():
    seen = []
    with OVERFLOW_IGNORED:
        t = threading.Thread(target=lambda: seen.append(OVERFLOW_IGNORED.on))
        t.start()
        t.join()
        assert OVERFLOW_IGNORED.on
    assert seen == [False] and not OVERFLOW_IGNORED.on
    assert Network(NET)._overflows
    assert not Network({"nodes": [NET["nodes"][0], NET["nodes"][1]]})._overflows
