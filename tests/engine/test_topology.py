"""bplab.graph.topology: the one answer to "who feeds whom" (no Qt)."""

from __future__ import annotations

import pytest

from bplab.graph.topology import (
    consumers,
    declared_inputs,
    downstream,
    node_inputs,
    reachable,
    topological_order,
    upstream,
    would_cycle,
)

# in -> fc -> act -> out, and a skip in -> add; fc fans out to act and add
RESIDUAL = [
    {"id": "in", "type": "Input"},
    {"id": "fc", "type": "Dense"},
    {"id": "act", "type": "ReLU"},
    {"id": "add", "type": "Add", "inputs": ["act", "fc"]},
    {"id": "out", "type": "Dense"},
    {"id": "side", "type": "Tanh", "inputs": ["fc"]},
]


def test_inputs_default_to_the_previous_node():
    assert node_inputs(RESIDUAL) == {
        "in": [], "fc": ["in"], "act": ["fc"], "add": ["act", "fc"], "out": ["add"],
        "side": ["fc"],
    }


def test_the_input_and_the_first_node_read_nothing_by_default():
    assert node_inputs([{"id": "a", "type": "Dense"}, {"id": "b", "type": "Input"}]) == {
        "a": [], "b": []}
    assert declared_inputs({"type": "Input"}, "a") == []
    assert declared_inputs({"type": "Dense", "inputs": None}, "a") == ["a"]


def test_a_string_or_other_bad_inputs_value_reads_nothing_and_is_reported():
    nodes = [{"id": "in", "type": "Input"}, {"id": "a", "type": "Dense", "inputs": "in"},
             {"id": "b", "type": "Dense", "inputs": 5}, {"id": "c", "inputs": ["a", 1]}]
    assert node_inputs(nodes) == {"in": [], "a": [], "b": [], "c": []}
    assert declared_inputs({"inputs": 5}, "a") == 5  # returned as is, for analyze to report
    assert declared_inputs({"inputs": "in"}, "x") == "in"
    from bplab import analyze

    messages = [p.message for p in analyze({"nodes": nodes}).problems if p.node == "a"]
    assert any("inputs must be a list of node ids, received 'in': write ['in']" in m
               for m in messages), messages


def test_nodes_without_an_id_are_skipped():
    nodes = [{"id": "in", "type": "Input"}, "junk", {"type": "Dense"}, {"id": "fc"}]
    assert node_inputs(nodes) == {"in": [], "fc": ["in"]}


def test_consumers_in_spec_order_and_fan_out():
    readers = consumers(RESIDUAL)
    assert readers["fc"] == ["act", "add", "side"]
    assert readers["out"] == [] and readers["side"] == []
    assert consumers({"a": [], "b": ["a", "a"]})["a"] == ["b", "b"]


def test_downstream_and_upstream():
    assert downstream(RESIDUAL, "fc") == {"fc", "act", "add", "out", "side"}
    assert downstream(RESIDUAL, "out") == {"out"}
    assert upstream(RESIDUAL, "add") == {"add", "act", "fc", "in"}
    assert upstream(RESIDUAL, "in") == {"in"}
    # the mapping node_inputs returns works as well as the nodes
    assert upstream(node_inputs(RESIDUAL), "side") == {"side", "fc", "in"}


def test_reachable_from_several_starts():
    graph = {"a": ["b"], "b": ["c"], "x": ["y"]}
    assert reachable(["a", "x"], graph) == {"a", "b", "c", "x", "y"}
    assert reachable("c", graph) == {"c"}


@pytest.mark.parametrize(("src", "dst", "cycle"), [
    ("out", "fc", True),  # fc already reaches out
    ("add", "act", True),
    ("fc", "fc", True),  # a node feeding itself
    ("in", "out", False),
    ("side", "out", False),
    ("out", "side", False),
])
def test_would_cycle(src, dst, cycle):
    assert would_cycle(RESIDUAL, src, dst) is cycle


def test_order_puts_inputs_first_and_breaks_ties_in_spec_order():
    order, cyclic = topological_order(node_inputs(RESIDUAL))
    assert order == ["in", "fc", "act", "side", "add", "out"]
    assert cyclic == []
    order, _ = topological_order({"b": ["a"], "c": [], "a": []})
    assert order == ["c", "a", "b"]


def test_order_ignores_self_links_unknown_ids_and_repeats():
    order, cyclic = topological_order({"a": ["a"], "b": ["a", "a", "zz"], "c": ["b", "a"]})
    assert order == ["a", "b", "c"] and cyclic == []


def test_only_the_loop_is_cyclic_not_what_it_feeds():
    inputs = {"in": [], "a": ["in"], "b": ["a", "c"], "c": ["b"], "out": ["c"],
              "after": ["out"]}
    order, cyclic = topological_order(inputs)
    assert order == ["in", "a"]
    assert cyclic == ["b", "c"]


def test_two_loops_are_both_cyclic():
    inputs = {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c", "b"], "e": ["d"]}
    order, cyclic = topological_order(inputs)
    assert order == [] and cyclic == ["a", "b", "c", "d"]


def test_the_module_examples_hold():
    import doctest

    from bplab.graph import topology

    assert doctest.testmod(topology).failed == 0
