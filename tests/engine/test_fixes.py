"""bplab.fixes: what each diagnosis fix changes, as typed edits, applied without Qt."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from fix_cases import DEEP_SIGMOID, dead_relu_findings, project, vanishing_findings

from bplab import analyze
from bplab.diagnostics import Fix
from bplab.errors import BplabError, Problem
from bplab.fixes import (
    AddResidual,
    FixError,
    InsertAfter,
    RenameNode,
    ReplaceType,
    SetOption,
    SetPositions,
    SetSetting,
    apply_edits,
    apply_fix,
    edit_from_json,
    edit_problems,
    edits_for,
    findings_to_json,
    fix_from_json,
    fix_from_summary,
    renamed_id,
)
from bplab.graph.layout import X_SPACING, Y_SPACING, layered_layout
from bplab.graph.topology import node_inputs
from bplab.training import Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.bplab.json").read_text())


def structure(edits):
    """The edits without the layout that ends a fix adding nodes."""
    return [e for e in edits if not isinstance(e, SetPositions)]


# Every action the diagnosis proposes, with and without layers named.
EVERY_FIX = [
    Fix("", "init_he"), Fix("", "init_he", ("fc1", "fc2", "missing")),
    Fix("", "replace_activation", (), {"from": ["Sigmoid"], "to": "ReLU"}),
    Fix("", "replace_activation", (), {"from": ["Sigmoid", "Tanh", "ReLU"], "to": "LeakyReLU",
                                        "init": "he_normal", "init_layers": ["fc1", "fc3"]}),
    Fix("", "add_batchnorm"), Fix("", "add_batchnorm", ("fc1", "fc2", "conv1")),
    Fix("", "enable_clipping", (), {"clip_grad_norm": 1.0}),
    Fix("", "scale_lr", (), {"factor": 0.1}), Fix("", "scale_lr", (), {"factor": 3.0}),
    Fix("advice only"),
]


# -- what a real finding changes ---------------------------------------------------------------
def test_real_vanishing_finding_becomes_the_expected_edits():
    findings = vanishing_findings()
    assert findings[0].code == "vanishing_gradients"
    p = project(DEEP_SIGMOID)
    by_action = {f.action: f for f in findings[0].fixes if f.action}
    # ReLU comes with He init (ReLU on large random weights explodes); fc3 already has it;
    # and with Adam, as SGD at lr 0.1 kills a deep ReLU stack's units.
    he = [SetOption("fc1", "init", "he_normal"), SetOption("fc2", "init", "he_normal"),
          SetOption("out", "init", "he_normal")]
    assert edits_for(by_action["replace_activation"], p) == [
        ReplaceType("s1", "ReLU"), ReplaceType("s2", "ReLU"), ReplaceType("t3", "ReLU"), *he,
        SetSetting("optimizer", {"type": "adam", "lr": 0.001})]
    # He alone does not stop a Sigmoid/Tanh gradient from vanishing: not offered here.
    assert "init_he" not in by_action
    assert structure(edits_for(by_action["add_batchnorm"], p)) == [
        InsertAfter("fc1", "BatchNorm", "bn1"), InsertAfter("fc2", "BatchNorm", "bn2"),
        InsertAfter("fc3", "BatchNorm", "bn3")]
    assert structure(edits_for(by_action["add_residual"], p)) == [
        AddResidual("s2", "s1", "Add", "add1"), AddResidual("t3", "add1", "Add", "add2")]
    assert all(f.action for f in findings[0].fixes)  # every fix has an Apply button


def test_real_dead_relu_finding_swaps_only_the_dead_layers():
    (finding,) = dead_relu_findings()
    assert finding.code == "dead_relu"
    nodes = [{"id": "in", "type": "Input", "shape": [2]},
             {"id": "fc1", "type": "Dense", "units": 4},
             {"id": "r1", "type": "ReLU"}, {"id": "fc2", "type": "Dense", "units": 4},
             {"id": "r2", "type": "ReLU"}, {"id": "out", "type": "Dense", "units": 2}]
    p = project(nodes, {"type": "adam", "lr": 0.003})
    leaky, lower = finding.fixes
    assert edits_for(leaky, p) == [ReplaceType("r1", "LeakyReLU")]
    assert edits_for(lower, p) == [SetSetting("optimizer.lr", 0.0003)]


def test_the_vanishing_examples_fixes_give_valid_networks_that_no_longer_vanish():
    original = example("vanishing_gradients")
    p = copy.deepcopy(original)
    p["training"]["epochs"] = 20
    t = Trainer(copy.deepcopy(p))
    list(t.run())
    finding = next(f for f in t.findings if f.code == "vanishing_gradients")
    mechanical = [f for f in finding.fixes if f.action]
    assert {f.action for f in mechanical} == {
        "replace_activation", "add_batchnorm", "add_residual"}
    for fix in mechanical:
        fixed = apply_fix(p, fix)
        assert analyze(fixed["network"]).ok, fix.action
    swapped = apply_fix(p, mechanical[0])
    assert mechanical[0].action == "replace_activation"
    assert not any(n["type"] == "Sigmoid" for n in swapped["network"]["nodes"])
    fixed = Trainer(swapped)
    list(fixed.run())
    assert "vanishing_gradients" not in {f.code for f in fixed.findings}
    assert p["network"] == original["network"], "the input project is not changed"


def test_the_exploding_examples_fixes_give_valid_networks():
    p = example("exploding_gradients")
    t = Trainer(copy.deepcopy(p))
    with np.errstate(over="ignore", invalid="ignore"):
        reports = list(t.run())
    fixes = {x.action: x for r in reports if r.findings for f in r.findings
             if f.code == "exploding_gradients" for x in f.fixes}
    assert {"enable_clipping", "scale_lr", "init_he"} <= set(fixes)
    clipped = apply_fix(p, fixes["enable_clipping"])
    assert clipped["training"]["clip_grad_norm"] == 1.0
    slower = apply_fix(p, fixes["scale_lr"])
    assert slower["optimizer"]["lr"] == pytest.approx(p["optimizer"]["lr"] * 0.1)
    he = apply_fix(p, fixes["init_he"])
    weights = [n for n in he["network"]["nodes"] if n["type"] == "Dense"]
    assert weights and all(n["init"] == "he_normal" for n in weights)
    for fixed in (clipped, slower, he):
        assert analyze(fixed["network"]).ok


@pytest.mark.parametrize("name", sorted(p.name.split(".")[0] for p in EXAMPLES.glob("*.json")))
def test_every_fix_on_every_example_is_pure_and_gives_a_valid_network(name):
    p = example(name)
    before = copy.deepcopy(p)
    for fix in EVERY_FIX:
        edits = edits_for(fix, p)
        assert edit_problems(p, edits) == []
        fixed = apply_edits(p, edits)
        assert p == before, f"{fix} changed its input"
        assert analyze(fixed["network"]).ok, (fix, analyze(fixed["network"]).problems)
        # a fix applied twice changes nothing more
        assert edits_for(fix, fixed) == [] or fix.action == "scale_lr"


# -- action by action --------------------------------------------------------------------------
def test_init_he_targets_only_weight_layers_and_all_when_none_listed():
    p = project(DEEP_SIGMOID)
    assert edits_for(Fix("He", "init_he", ("fc2", "s1", "missing")), p) == [
        SetOption("fc2", "init", "he_normal")]
    assert [e.node for e in edits_for(Fix("He", "init_he"), p)] == ["fc1", "fc2", "out"]


def test_init_he_covers_conv_layers():
    nodes = [{"id": "in", "type": "Input", "shape": [1, 8, 8]},
             {"id": "c1", "type": "Conv2D", "filters": 4, "kernel_size": 3},
             {"id": "r", "type": "ReLU"}]
    assert edits_for(Fix("", "init_he", ("c1",)), project(nodes)) == [
        SetOption("c1", "init", "he_normal")]


def test_replace_activation_only_touches_nodes_of_the_from_types():
    p = project(DEEP_SIGMOID)
    fix = Fix("", "replace_activation", ("s1", "t3", "fc1"), {"from": ["Sigmoid"], "to": "ReLU"})
    assert edits_for(fix, p) == [ReplaceType("s1", "ReLU")]
    fix = Fix("", "replace_activation", (), {"from": "Tanh", "to": "GELU"})
    assert edits_for(fix, p) == [ReplaceType("t3", "GELU")]
    same = Fix("", "replace_activation", ("s1",), {"from": ["Sigmoid"], "to": "Sigmoid"})
    assert edits_for(same, p) == []
    assert edits_for(Fix("", "replace_activation", ("s1",), {"from": ["Sigmoid"]}), p) == []


def test_replace_type_keeps_id_inputs_and_the_options_the_new_type_takes():
    nodes = [{"id": "in", "type": "Input", "shape": [4]},
             {"id": "fc", "type": "Dense", "units": 4},
             {"id": "act", "type": "LeakyReLU", "negative_slope": 0.2}]
    fixed = apply_edits(project(nodes), [ReplaceType("act", "ReLU")])
    assert fixed["network"]["nodes"][2] == {"id": "act", "type": "ReLU", "inputs": ["fc"]}
    back = apply_edits(project(nodes), [ReplaceType("act", "ELU")])
    assert "negative_slope" not in back["network"]["nodes"][2]


def test_add_batchnorm_after_dense_and_conv_skipping_existing_ones():
    nodes = [{"id": "in", "type": "Input", "shape": [1, 8, 8]},
             {"id": "c1", "type": "Conv2D", "filters": 4, "kernel_size": 3},
             {"id": "bn1", "type": "BatchNorm"},
             {"id": "c2", "type": "Conv2D", "filters": 4, "kernel_size": 3},
             {"id": "r", "type": "ReLU"},
             {"id": "flat", "type": "Flatten"},
             {"id": "fc", "type": "Dense", "units": 8},
             {"id": "out", "type": "Dense", "units": 2}]
    p = project(nodes)
    expected = [InsertAfter("c2", "BatchNorm", "bn2"), InsertAfter("fc", "BatchNorm", "bn3")]
    assert structure(edits_for(Fix("", "add_batchnorm", ("c1", "c2", "fc", "r")), p)) == expected
    # none listed: every hidden weight layer, never the output layer
    assert structure(edits_for(Fix("", "add_batchnorm"), p)) == expected
    fixed = apply_edits(p, expected)
    assert [n["id"] for n in fixed["network"]["nodes"]] == [
        "in", "c1", "bn1", "c2", "bn2", "r", "flat", "fc", "bn3", "out"]
    by_id = {n["id"]: n for n in fixed["network"]["nodes"]}
    assert by_id["bn2"]["inputs"] == ["c2"] and by_id["r"]["inputs"] == ["bn2"]
    assert by_id["out"]["inputs"] == ["bn3"]
    assert analyze(fixed["network"]).ok


def test_add_batchnorm_follows_explicit_inputs_and_rewires_every_reader():
    nodes = [{"id": "in", "type": "Input", "shape": [4]},
             {"id": "fc1", "type": "Dense", "units": 4},
             {"id": "fc2", "type": "Dense", "units": 4, "inputs": ["in"]},
             {"id": "bn", "type": "BatchNorm", "inputs": ["fc1"]},
             {"id": "add", "type": "Add", "inputs": ["bn", "fc2"]},
             {"id": "out", "type": "Dense", "units": 2, "inputs": ["add", "fc2"]}]
    p = project(nodes, output="out")
    assert structure(edits_for(Fix("", "add_batchnorm", ("fc1", "fc2")), p)) == [
        InsertAfter("fc2", "BatchNorm", "bn1")]
    assert structure(edits_for(Fix("", "add_batchnorm"), p)) == [
        InsertAfter("fc2", "BatchNorm", "bn1")]
    fixed = apply_edits(p, [InsertAfter("fc2", "BatchNorm", "bn1")])
    by_id = {n["id"]: n for n in fixed["network"]["nodes"]}
    assert by_id["add"]["inputs"] == ["bn", "bn1"] and by_id["out"]["inputs"] == ["add", "bn1"]


def test_insert_after_the_output_moves_the_output():
    nodes = [{"id": "in", "type": "Input", "shape": [4]},
             {"id": "fc", "type": "Dense", "units": 4}]
    fixed = apply_edits(project(nodes, output="fc"), [InsertAfter("fc", "BatchNorm", "bn1")])
    assert fixed["network"]["output"] == "bn1"
    assert fixed["network"]["nodes"][-1] == {"id": "bn1", "type": "BatchNorm", "inputs": ["fc"]}


def test_enable_clipping_sets_the_norm_unless_already_tighter():
    fix = Fix("", "enable_clipping", (), {"clip_grad_norm": 1.0})
    clip = [SetSetting("training.clip_grad_norm", 1.0)]
    assert edits_for(fix, project(DEEP_SIGMOID)) == clip
    assert edits_for(fix, project(DEEP_SIGMOID, training={"clip_grad_norm": 5.0})) == clip
    assert edits_for(fix, project(DEEP_SIGMOID, training={"clip_grad_norm": 0.5})) == []
    assert edits_for(Fix("", "enable_clipping"), project(DEEP_SIGMOID)) == clip
    fixed = apply_edits(project(DEEP_SIGMOID), clip)
    assert fixed["training"] == {"clip_grad_norm": 1.0}


@pytest.mark.parametrize(("optimizer", "factor", "expected"), [
    ({"type": "sgd", "lr": 0.1}, 0.1, 0.01),
    ({"type": "adam", "lr": 0.01}, 0.1, 0.001),  # not 0.0010000000000000002
    ({"type": "adam", "lr": 3e-4}, 10.0, 3e-3),
    ({"type": "adam"}, 3.0, 3e-3),  # no lr: the default 1e-3
    ({"type": "sgd", "lr": 7}, 0.5, 3.5),
])
def test_scale_lr_reads_the_current_rate(optimizer, factor, expected):
    p = project(DEEP_SIGMOID, optimizer)
    edits = edits_for(Fix("", "scale_lr", (), {"factor": factor}), p)
    assert edits == [SetSetting("optimizer.lr", expected)]
    assert isinstance(edits[0].value, float)
    assert apply_edits(p, edits)["optimizer"] == {**optimizer, "lr": expected}


def test_scale_lr_on_an_optimizer_given_by_name_writes_a_spec():
    p = project(DEEP_SIGMOID, "adam")
    edits = edits_for(Fix("", "scale_lr", (), {"factor": 0.1}), p)
    assert edits == [SetSetting("optimizer", {"type": "adam", "lr": 1e-4})]
    assert apply_edits(p, edits)["optimizer"] == {"type": "adam", "lr": 1e-4}


@pytest.mark.parametrize("action, params, key, value", [
    ("standardize", {}, "standardize", True),
    ("divide_target", {"divisor": 100_000}, "target_divisor", 100_000.0),
])
def test_data_fixes_set_the_dataset_key_once(action, params, key, value):
    """A data set named by a bare string becomes its spec; a spec gets the key; a spec
    that has it already needs no edit."""
    fix = Fix("", action, (), params)
    by_name = {**project(DEEP_SIGMOID), "dataset": "wine"}
    assert edits_for(fix, by_name) == [SetSetting("dataset", {"name": "wine", key: value})]
    spec = {**project(DEEP_SIGMOID), "dataset": {"name": "file", "path": "h.csv"}}
    assert edits_for(fix, spec) == [SetSetting(f"dataset.{key}", value)]
    assert apply_edits(spec, edits_for(fix, spec))["dataset"][key] == value
    done = {**spec, "dataset": {"name": "file", "path": "h.csv", key: value}}
    assert edits_for(fix, done) == []


def test_edits_for_is_pure_and_ignores_unknown_actions():
    p = project(DEEP_SIGMOID)
    before = copy.deepcopy(p)
    for f in vanishing_findings()[0].fixes:
        apply_fix(p, f)
    assert p == before
    assert edits_for(Fix("", "teleport", ("fc1",)), p) == []
    assert edits_for(Fix("", None), p) == []
    assert edits_for(Fix("", "scale_lr", (), {"factor": 1.0}), p) == []
    assert edits_for(Fix("", "init_he"), {"network": {"nodes": []}}) == []


# -- edits that cannot apply are reported, like analyze ----------------------------------------
def test_edits_that_cannot_apply_are_problems_on_their_nodes():
    p = project(DEEP_SIGMOID)
    before = copy.deepcopy(p)
    edits = [SetOption("gone", "init", "he_normal"), ReplaceType("s1", "Sigmoidal"),
             InsertAfter("fc1", "BatchNorm", "fc2"), SetOption("s1", "units", 3),
             SetOption("fc1", "units", -4), SetSetting("dataset.name.x", 1),
             SetOption("fc2", "init", "he_normal")]
    problems = edit_problems(p, edits)
    assert all(isinstance(q, Problem) for q in problems)
    assert [q.node for q in problems] == ["gone", "s1", "fc1", "s1", "fc1", None]
    text = [q.message for q in problems]
    assert "no node 'gone'" in text[0] and "Re-run the diagnosis" in text[0]
    assert "'Sigmoidal'" in text[1] and "no such layer type" in text[1]
    assert "already named 'fc2'" in text[2]
    assert "Sigmoid 's1' has no option 'units'" in text[3]
    assert "-4" in text[4]
    assert "dataset.name" in text[5]
    with pytest.raises(FixError) as info:
        apply_edits(p, edits)
    assert info.value.problems == problems
    assert p == before


def test_later_edits_see_the_earlier_ones():
    p = project(DEEP_SIGMOID)
    edits = [InsertAfter("fc1", "BatchNorm", "bn1"), InsertAfter("bn1", "Dropout", "drop1"),
             ReplaceType("bn1", "LayerNorm")]
    fixed = apply_edits(p, edits)
    ids = [n["id"] for n in fixed["network"]["nodes"]]
    assert ids[:5] == ["in", "fc1", "bn1", "drop1", "s1"]
    assert fixed["network"]["nodes"][2]["type"] == "LayerNorm"
    assert analyze(fixed["network"]).ok
    assert edit_problems(p, [ReplaceType("bn1", "ReLU")])[0].node == "bn1"


# -- findings as JSON ----------------------------------------------------------------------------
def test_findings_to_json_is_plain_json_with_stable_ids_and_edits():
    p = project(DEEP_SIGMOID)
    data = findings_to_json(vanishing_findings(), p)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    (finding,) = data
    assert finding["code"] == "vanishing_gradients" and finding["severity"] == "error"
    ids = [f["id"] for f in finding["fixes"]]
    assert ids[0] == "vanishing_gradients/relu_he" and len(set(ids)) == len(ids)
    first = finding["fixes"][0]
    assert [edit_from_json(e) for e in first["edits"]] == edits_for(fix_from_json(first), p)
    assert {"edit": "ReplaceType", "node": "s1", "new_type": "ReLU"} in first["edits"]


def test_fix_from_summary_finds_the_fix_and_names_the_ids_when_it_cannot():
    p = project(DEEP_SIGMOID)
    summary = json.loads(json.dumps({"findings": findings_to_json(vanishing_findings(), p)}))
    fix = fix_from_summary(summary, "vanishing_gradients/batchnorm", p)
    assert apply_fix(p, fix) == apply_fix(p, vanishing_findings()[0].fixes[1])
    with pytest.raises(BplabError, match="vanishing_gradients/relu_he") as err:
        fix_from_summary(summary, "vanishing_gradients/nope", p)
    assert "nope" in str(err.value)
    with pytest.raises(BplabError, match="no \"findings\""):
        fix_from_summary({}, "x", p)


def test_edit_from_json_says_what_an_edit_is():
    with pytest.raises(BplabError, match="ReplaceType"):
        edit_from_json({"edit": "Explode"})
    with pytest.raises(BplabError, match="lacks new_type"):
        edit_from_json({"edit": "ReplaceType", "node": "s1"})


# -- ids, skip connections and places ------------------------------------------------------------
def test_a_replaced_node_named_after_its_old_type_is_renamed_and_links_follow():
    nodes = [{"id": "in", "type": "Input", "shape": [2]},
             {"id": "fc1", "type": "Dense", "units": 4}, {"id": "sig1", "type": "Sigmoid"},
             {"id": "fc2", "type": "Dense", "units": 4, "inputs": ["sig1"]},
             {"id": "hidden", "type": "Sigmoid"}, {"id": "relu3", "type": "ReLU"},
             {"id": "sigmoid3", "type": "Sigmoid"}, {"id": "out", "type": "Dense", "units": 2}]
    p = project(nodes)
    p["ui"] = {"positions": {"sig1": [0.0, 240.0], "fc2": [0.0, 360.0]}}
    edits = edits_for(Fix("", "replace_activation", (), {"from": ["Sigmoid"], "to": "ReLU"}), p)
    assert edits == [ReplaceType("sig1", "ReLU"), RenameNode("sig1", "relu1"),
                     ReplaceType("hidden", "ReLU"),  # a name of its own stays
                     ReplaceType("sigmoid3", "ReLU"), RenameNode("sigmoid3", "relu2")]  # taken
    fixed = apply_edits(p, edits)
    assert analyze(fixed["network"]).ok
    by_id = {n["id"]: n for n in fixed["network"]["nodes"]}
    assert by_id["relu1"]["type"] == "ReLU" and by_id["fc2"]["inputs"] == ["relu1"]
    assert fixed["ui"]["positions"] == {"relu1": [0.0, 240.0], "fc2": [0.0, 360.0]}
    assert renamed_id("act1", "Sigmoid", "ReLU", set()) == "act1"
    assert renamed_id("tanh_2", "Tanh", "ReLU", set()) == "relu2"


def test_residual_fix_sums_each_equal_shape_block_with_its_input():
    p = example("vanishing_gradients")
    fix = Fix("", "add_residual", ("fc1", "fc2", "fc3"))
    edits = structure(edits_for(fix, p))
    # fc1 changes the width (2 -> 16): no skip; the output layer is never bypassed
    assert edits == [AddResidual("sig2", "sig1", "Add", "add1"),
                     AddResidual("sig3", "add1", "Add", "add2")]
    fixed = apply_fix(p, fix)
    assert analyze(fixed["network"]).ok
    by_id = {n["id"]: n for n in fixed["network"]["nodes"]}
    assert by_id["add2"]["inputs"] == ["sig3", "add1"] and by_id["fc4"]["inputs"] == ["add2"]
    again = apply_fix(fixed, Fix("", "add_residual", ("fc2", "fc3")))
    assert again["network"] == fixed["network"], "blocks already summed are left alone"


def _overlaps(positions):
    """Pairs of nodes closer than the layout's spacing (the canvas draws nodes smaller)."""
    items = sorted(positions.items())
    return [(a, b) for i, (a, pa) in enumerate(items) for b, pb in items[i + 1:]
            if abs(pa[0] - pb[0]) < X_SPACING and abs(pa[1] - pb[1]) < Y_SPACING]


@pytest.mark.parametrize("action", ["add_batchnorm", "add_residual"])
def test_a_fix_that_adds_nodes_lays_them_out_apart_from_the_others(action):
    p = example("vanishing_gradients")
    p["ui"] = {"positions": {k: [x + 50.0, y + 30.0] for k, (x, y) in
                             layered_layout([{"id": k, "inputs": v} for k, v in
                                             node_inputs(p["network"]["nodes"]).items()]).items()}}
    fixed = apply_fix(p, Fix("", action))
    positions = fixed["ui"]["positions"]
    assert set(positions) == {n["id"] for n in fixed["network"]["nodes"]}
    assert not _overlaps(positions)
    # the drawing keeps its top-left corner
    assert min(x for x, _ in positions.values()) == 50.0
    assert min(y for _, y in positions.values()) == 30.0
