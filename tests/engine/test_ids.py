"""Node ids: one naming rule for the editor, pastes and diagnosis fixes (bplab.graph.ids)."""

from __future__ import annotations

import doctest

import pytest

import bplab.graph.ids as ids
from bplab.graph.ids import ID_MAX_LEN, id_prefix, id_problem, new_id


def test_examples_in_the_docstring():
    assert doctest.testmod(ids).failed == 0


@pytest.mark.parametrize(("type_name", "prefix"), [
    ("Dense", "fc"), ("Conv2D", "conv"), ("BatchNorm", "bn"), ("MaxPool2D", "pool"),
    ("AvgPool2D", "pool"), ("ReLU", "relu"), ("Input", "in"), ("Unknown2D", "unknown"),
])
def test_prefix_is_the_layers_trait_or_its_lowercase_name(type_name, prefix):
    assert id_prefix(type_name) == prefix


def test_new_ids_count_up_and_the_input_takes_its_bare_prefix():
    assert new_id("Dense", set()) == "fc1"
    assert new_id("Dense", {"fc1", "fc3"}) == "fc2"
    assert new_id("Input", set()) == "in"
    assert new_id("Input", {"in"}) == "in1"


def test_every_new_id_is_a_valid_id():
    from bplab.layers import LAYERS

    for type_name in LAYERS:
        assert id_problem(new_id(type_name, set())) is None


@pytest.mark.parametrize("bad", ["", "fc.1", "1fc", "a b", "x" * (ID_MAX_LEN + 1), "é"])
def test_bad_ids_are_refused_with_a_reason(bad):
    assert id_problem(bad)


def test_a_fix_names_its_new_node_as_the_editor_would():
    from bplab.diagnostics import Fix
    from bplab.fixes import InsertAfter, edits_for

    project = {"network": {"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "bn1", "type": "Dense", "units": 4},
        {"id": "act", "type": "Sigmoid"},
        {"id": "out", "type": "Dense", "units": 2}]}}
    inserts = [e for e in edits_for(Fix("", "add_batchnorm", ("bn1",), {}), project)
               if isinstance(e, InsertAfter)]
    assert inserts and inserts[0].new_id == new_id("BatchNorm", {"in", "bn1", "act", "out"})
