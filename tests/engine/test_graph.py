"""Networks as graphs: branching, fan-out, validation messages, a deep net that trains."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bplab.backend import get_backend, to_host
from bplab.errors import NetworkError
from bplab.gradcheck import gradcheck_network
from bplab.graph import Network, analyze


class SumOfSquares:
    """L = 0.5 * sum((pred - target)^2) / batch; a loss for tests (losses.py is elsewhere)."""

    def forward(self, pred, target):
        self._diff = pred - target
        return 0.5 * float((self._diff * self._diff).sum()) / len(pred)

    def backward(self):
        return self._diff / len(self._diff)


RESIDUAL = {"nodes": [
    {"id": "in", "type": "Input", "shape": [5]},
    {"id": "fc1", "type": "Dense", "units": 5},
    {"id": "act", "type": "ReLU"},
    {"id": "fc2", "type": "Dense", "units": 5},
    {"id": "add", "type": "Add", "inputs": ["fc2", "in"]},
    {"id": "out", "type": "Dense", "units": 2},
]}


def _away_from_relu_kink(net, x):
    """Inputs for which no ReLU pre-activation is within 0.05 of zero (a clean gradcheck)."""
    net.capture = {"fc1"}
    net.forward(x)
    pre = net.captured["fc1"]
    net.capture = None
    return np.abs(pre).min() > 0.05


def test_residual_network_gradchecks():
    net = Network(RESIDUAL, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.normal(size=(4, 5))
        if _away_from_relu_kink(net, x):
            break
    y = rng.normal(size=(4, 2))
    report = gradcheck_network(net, SumOfSquares(), x, y)
    assert report.ok, str(report)
    assert {"fc1.weight", "fc2.bias", "out.weight", "input"} <= set(report.errors)


def test_branching_cnn_with_concat_and_batchnorm_gradchecks():
    spec = {"nodes": [
        {"id": "in", "type": "Input", "shape": [2, 6, 6]},
        {"id": "a", "type": "Conv2D", "filters": 3, "padding": 1, "inputs": ["in"]},
        {"id": "b", "type": "Conv2D", "filters": 2, "kernel_size": 1, "inputs": ["in"]},
        {"id": "cat", "type": "Concat", "inputs": ["a", "b"]},
        {"id": "act", "type": "Tanh"},  # before BatchNorm, so the conv biases matter
        {"id": "bn", "type": "BatchNorm"},
        {"id": "pool", "type": "AvgPool2D"},
        {"id": "gap", "type": "GlobalAvgPool"},
        {"id": "fc", "type": "Dense", "units": 2},
    ]}
    net = Network(spec, dtype="float64", seed=1)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 2, 6, 6)), rng.normal(size=(3, 2))
    report = gradcheck_network(net, SumOfSquares(), x, y, directions=6)
    assert report.ok, str(report)


def test_backward_sums_gradients_where_an_output_fans_out(backend_name):
    """fc feeds two Identity branches that are added: its gradient doubles."""
    single = {"nodes": [{"id": "in", "type": "Input", "shape": [3]},
                        {"id": "fc", "type": "Dense", "units": 4}]}
    double = {"nodes": [{"id": "in", "type": "Input", "shape": [3]},
                        {"id": "fc", "type": "Dense", "units": 4},
                        {"id": "i1", "type": "Identity", "inputs": ["fc"]},
                        {"id": "i2", "type": "Sigmoid", "inputs": ["fc"]},
                        {"id": "add", "type": "Add", "inputs": ["i1", "i2", "fc"]}]}
    a = Network(single, dtype="float64", backend=backend_name, seed=5)
    b = Network(double, dtype="float64", backend=backend_name, seed=5)
    x = np.random.default_rng(0).normal(size=(6, 3))
    g = np.random.default_rng(1).normal(size=(6, 4))
    xp = get_backend(backend_name).xp
    a.forward(x)
    a.backward(xp.asarray(g))
    z = to_host(b.forward(x))  # = 2 fc + sigmoid(fc)
    s = 1 / (1 + np.exp(-to_host(a.forward(x))))
    np.testing.assert_allclose(z, 2 * to_host(a.forward(x)) + s)
    b.backward(xp.asarray(g))
    a.zero_grad()
    a.forward(x)
    a.backward(xp.asarray(g * (2 + s * (1 - s))))  # chain rule through the three branches
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_allclose(to_host(pb.grad), to_host(pa.grad), rtol=1e-12,
                                   err_msg=name)


def test_a_200_layer_network_builds_and_sgd_reduces_its_loss():
    nodes = [{"id": "in", "type": "Input", "shape": [8]}]
    for i in range(100):
        nodes.append({"id": f"fc{i}", "type": "Dense", "units": 8, "init": "xavier_normal"})
        nodes.append({"id": f"act{i}", "type": "Tanh"})
    nodes.append({"id": "out", "type": "Dense", "units": 1})
    net = Network({"nodes": nodes}, dtype="float64", seed=0)
    assert len(net.order) == 202
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8))
    y = np.sin(x[:, :1])
    loss = SumOfSquares()
    losses = []
    for _ in range(5):
        net.zero_grad()
        losses.append(loss.forward(net.forward(x), y))
        net.backward(loss.backward())
        for _, p in net.named_parameters():
            assert p.has_grad and np.all(np.isfinite(p.grad))
            p.data -= 0.01 * p.grad  # plain SGD, written out
    assert losses[-1] < losses[0]
    assert all(b < a for a, b in itertools.pairwise(losses))


def test_deep_residual_graph_runs_without_recursion_limits():
    nodes = [{"id": "in", "type": "Input", "shape": [4]}, {"id": "h0", "type": "Dense",
                                                          "units": 4}]
    prev = "h0"
    for i in range(1, 400):
        nodes.append({"id": f"f{i}", "type": "Dense", "units": 4, "inputs": [prev],
                      "init": {"type": "normal", "std": 0.01}})
        nodes.append({"id": f"h{i}", "type": "Add", "inputs": [f"f{i}", prev]})
        prev = f"h{i}"
    net = Network({"nodes": nodes}, dtype="float64")
    y = net.forward(np.ones((2, 4)))
    net.require_input_grad = True
    gin = net.backward(np.ones_like(y))
    assert gin.shape == (2, 4) and np.all(np.isfinite(gin))


# -- validation messages ----------------------------------------------------------------------
def _problems(spec):
    """{node id: its problems joined by newlines}, and the plan."""
    plan = analyze(spec)
    out: dict = {}
    for p in plan.problems:
        out[p.node] = (out[p.node] + "\n" if p.node in out else "") + p.message
    return out, plan


def test_unknown_type_suggests_the_closest_name():
    problems, _ = _problems([{"id": "in", "type": "Input", "shape": [2]},
                             {"id": "c", "type": "Conv2d", "filters": 2}])
    assert problems["c"] == "Node 'c': unknown layer type 'Conv2d'; did you mean 'Conv2D'?"


def test_bad_option_names_the_node_the_option_and_the_value():
    problems, _ = _problems([{"id": "in", "type": "Input", "shape": [2]},
                             {"id": "fc1", "type": "Dense", "units": 0}])
    assert problems["fc1"] == "Dense 'fc1': units must be a positive integer, received 0"
    with pytest.raises(NetworkError, match="units must be a positive integer, received 0"):
        Network([{"id": "in", "type": "Input", "shape": [2]},
                 {"id": "fc1", "type": "Dense", "units": 0}])


def test_a_cycle_is_reported_on_each_node_in_it():
    problems, _ = _problems({"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "a", "type": "Dense", "units": 2},
        {"id": "b", "type": "Add", "inputs": ["a", "c"]},
        {"id": "c", "type": "ReLU", "inputs": ["b"]},
        {"id": "out", "type": "Dense", "units": 1, "inputs": ["c"]},
    ]})
    for node in ("b", "c"):
        assert "is part of a cycle ('b', 'c'):" in problems[node]
        assert "remove one of the links" in problems[node]
    assert "out" not in problems  # downstream of the loop, not in it


def test_unreachable_and_dangling_nodes():
    problems, _ = _problems({"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "fc", "type": "Dense", "units": 2, "inputs": ["in"]},
        {"id": "side", "type": "ReLU", "inputs": ["fc"]},  # leads nowhere
        {"id": "out", "type": "Dense", "units": 1, "inputs": ["fc"]},
    ], "output": "out"})
    assert problems["side"] == ("ReLU 'side' leads nowhere: its output does not reach the "
                                "network's output 'out'")
    problems, _ = _problems({"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "orphan", "type": "Tanh", "inputs": []},  # fed by nothing
        {"id": "out", "type": "Add", "inputs": ["in", "orphan"]},
    ]})
    assert "Tanh 'orphan' has no input: connect a node to it" in problems["orphan"]


def test_a_self_link_and_a_repeated_input_do_not_disturb_the_order():
    plan = analyze({"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "fc", "type": "Dense", "units": 2, "inputs": ["in", "fc"]},
        {"id": "add", "type": "Add", "inputs": ["fc", "fc"]},
    ]})
    assert plan.order == ["in", "fc", "add"]
    assert [p.message for p in plan.problems_for("fc")] == [
        "Dense 'fc' takes its own output as input: remove that link",
        "Dense 'fc' takes one input, received 2: merge them with Add or Concat first",
    ]
    assert not any("cycle" in p.message for p in plan.problems)


def test_a_network_of_unreadable_nodes_is_reported_not_raised():
    plan = analyze({"nodes": ["junk", 5]})
    assert [(p.node, p.message) for p in plan.problems] == [
        (None, "Node #1 must be an object, received 'junk'"),
        (None, "Node #2 must be an object, received 5"),
        (None, "The network has no Input node: add one and connect it"),
    ]
    assert plan.output_id is None and plan.order == []


def test_wrong_input_counts_are_problems_not_crashes():
    """A single-input layer with two inputs, or a merge with one, is reported on the node
    (a hand-edited project file can say anything); shapes downstream are not guessed."""
    problems, plan = _problems({"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "a", "type": "Dense", "units": 3, "inputs": ["in"]},
        {"id": "b", "type": "Dense", "units": 3, "inputs": ["in", "a"]},
        {"id": "m", "type": "Add", "inputs": ["b"]},
    ]})
    assert problems["b"] == ("Dense 'b' takes one input, received 2: merge them with Add or "
                             "Concat first")
    assert problems["m"] == "Add 'm' merges two or more inputs, received 1"
    assert "b" not in plan.shapes and "m" not in plan.shapes


def test_a_dense_after_a_conv_asks_for_flatten():
    problems, _ = _problems([{"id": "in", "type": "Input", "shape": [1, 14, 14]},
                             {"id": "c", "type": "Conv2D", "filters": 16, "padding": 1},
                             {"id": "p", "type": "MaxPool2D"},
                             {"id": "fc2", "type": "Dense", "units": 10}])
    assert problems["fc2"].startswith(
        "Dense 'fc2' expects a flat input, received (batch, 16, 7, 7): insert Flatten")


def test_add_of_mismatched_shapes_names_both_shapes():
    problems, _ = _problems([{"id": "in", "type": "Input", "shape": [4]},
                             {"id": "fc", "type": "Dense", "units": 8},
                             {"id": "add", "type": "Add", "inputs": ["fc", "in"]}])
    assert problems["add"].startswith(
        "Add 'add' needs inputs of equal shape, received (batch, 8) and (batch, 4)")


def test_plan_infers_shapes_and_parameter_counts_for_the_new_layers():
    _, plan = _problems([
        {"id": "in", "type": "Input", "shape": [1, 28, 28]},
        {"id": "c1", "type": "Conv2D", "filters": 16},
        {"id": "r1", "type": "ReLU"},
        {"id": "p1", "type": "MaxPool2D"},
        {"id": "c2", "type": "Conv2D", "filters": 32},
        {"id": "bn", "type": "BatchNorm"},
        {"id": "p2", "type": "MaxPool2D"},
        {"id": "flat", "type": "Flatten"},
        {"id": "drop", "type": "Dropout", "p": 0.25},
        {"id": "fc", "type": "Dense", "units": 10},
    ])
    assert plan.ok, plan.problems
    assert plan.shapes["c1"] == (16, 26, 26) and plan.shapes["p1"] == (16, 13, 13)
    assert plan.shapes["p2"] == (32, 5, 5) and plan.shapes["flat"] == (800,)
    net = Network(plan)
    for nid, layer in net.layers.items():
        assert plan.param_counts[nid] == layer.param_count(), nid
    assert [n for n, _ in net.named_buffers()] == [
        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]


def test_dropout_networks_are_reproducible_from_the_seed():
    spec = [{"id": "in", "type": "Input", "shape": [50]},
            {"id": "fc", "type": "Dense", "units": 50},
            {"id": "drop", "type": "Dropout", "p": 0.5}]
    x = np.ones((4, 50), dtype=np.float32)
    a, b = Network(spec, seed=3), Network(spec, seed=3)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    np.testing.assert_array_equal(a.forward(x, training=False), b.forward(x, training=False))


RELU_POOL = {"nodes": [
    {"id": "in", "type": "Input", "shape": [1, 6, 7]},
    {"id": "conv", "type": "Conv2D", "filters": 3, "kernel_size": 3, "padding": 1},
    {"id": "relu", "type": "ReLU"},
    {"id": "pool", "type": "MaxPool2D", "kernel_size": 2},
    {"id": "relu2", "type": "ReLU"},
    {"id": "pool2", "type": "MaxPool2D", "kernel_size": 2, "stride": 1, "padding": 1},
    {"id": "flat", "type": "Flatten"},
    {"id": "out", "type": "Dense", "units": 2},
]}


@pytest.mark.parametrize("training", [True, False])
def test_a_relu_before_a_max_pool_runs_after_it_with_the_same_numbers(training):
    """The chain runs each ReLU after the max pool it feeds (on a quarter of the values);
    the outputs and every gradient equal those of the graph's own order, bit for bit,
    with windows that tie and windows whose values are all negative."""
    net = Network(RELU_POOL, dtype="float64", seed=3)
    assert [la.name for la in net._chain_order] == [
        "conv", "pool", "relu", "pool2", "relu2", "flat", "out"]
    net.reuse_buffers = training
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, (4, 1, 6, 7)).astype(np.float64)  # ties, negative windows
    g = rng.standard_normal((4, 2))

    def run(capture):
        net.capture = {"relu", "relu2"} if capture else None
        net.captured = {}
        for p in net.parameters():
            p.zero_grad()
        y = net.forward(x, training).copy()
        if not training:
            return y, []
        net.require_input_grad = True
        dx = net.backward(g).copy()
        return y, [dx] + [p.grad.copy() for p in net.parameters()]

    y_graph, grads_graph = run(capture=True)  # captured: the graph's order
    assert net.captured["relu"].shape == (4, 3, 6, 7)
    y_chain, grads_chain = run(capture=False)
    assert net._ran is net._chain_order  # the commuted order ran
    np.testing.assert_array_equal(y_chain, y_graph)
    for a, b in zip(grads_chain, grads_graph):
        np.testing.assert_array_equal(a, b)
    assert np.abs(y_chain).sum() > 0
    assert all(np.abs(a).sum() > 0 for a in grads_chain)
