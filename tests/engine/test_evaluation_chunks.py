"""Evaluation in chunks sized to the network, and evaluated once per set of weights."""

from __future__ import annotations

import numpy as np

from bplab.graph import Network
from bplab.graph.network import EVAL_CHUNK_BYTES
from bplab.training import Trainer
from tests.engine.test_training import _project

CNN = {"nodes": [
    {"id": "in", "type": "Input", "shape": [1, 28, 28]},
    {"id": "conv", "type": "Conv2D", "filters": 16, "kernel_size": 3, "padding": 1},
    {"id": "relu", "type": "ReLU"},
    {"id": "flat", "type": "Flatten"},
    {"id": "out", "type": "Dense", "units": 10},
]}


def test_chunks_follow_the_size_of_a_sample():
    small = Network({"nodes": [{"id": "in", "type": "Input", "shape": [2]},
                               {"id": "out", "type": "Dense", "units": 2}]})
    assert small.eval_rows == 4096
    cnn = Network(CNN)
    per_sample = 2 * 4 * (784 + 3 * 16 * 784 + 10)  # every output, twice, float32
    assert cnn.eval_rows == EVAL_CHUNK_BYTES // per_sample < 4096
    x = np.random.default_rng(0).standard_normal((cnn.eval_rows + 5, 1, 28, 28))
    whole = cnn.predict(x, batch_size=len(x))  # chunking does not change the outputs
    np.testing.assert_allclose(cnn.predict(x), whole, rtol=1e-6, atol=1e-6)


def test_the_same_weights_are_evaluated_once(monkeypatch):
    t = Trainer(_project())
    list(t.run(max_steps=3))
    calls = []
    real = t._metrics_on
    monkeypatch.setattr(t, "_metrics_on", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    first = t.evaluate()
    assert calls == ["train", "val"]
    assert t.evaluate() == first and calls == ["train", "val"]  # kept
    p = t.network.flat.data
    p[0] += 1.0  # the weights change without a step (as Revert to best does)
    changed = t.evaluate()
    assert calls == ["train", "val"] * 2 and changed != first
    list(t.run(max_steps=1))
    t.evaluate()
    assert len(calls) == 6
