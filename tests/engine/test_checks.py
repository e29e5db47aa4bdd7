"""The network against its data set: problems on the Input and output nodes, with the remedy."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from bplab.checks import output_problems, target_size
from bplab.datasets import DATASETS, load_dataset
from bplab.errors import ConfigError
from bplab.graph.plan import analyze
from bplab.training import Trainer

SPIRAL = {
    "format": "bplab-project", "version": 1, "name": "spiral",
    "dataset": {"name": "spiral", "samples": 200, "seed": 0},
    "network": {"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "fc1", "type": "Dense", "units": 8},
        {"id": "act1", "type": "Tanh"},
        {"id": "out", "type": "Dense", "units": 2},
    ]},
    "loss": {"type": "cross_entropy"}, "optimizer": {"type": "adam", "lr": 0.01},
    "training": {"epochs": 1, "batch_size": 32, "seed": 0},
}


def _nodes(units=2, shape=(2,)):
    return [{"id": "in", "type": "Input", "shape": list(shape)},
            {"id": "h", "type": "Dense", "units": 8}, {"id": "a", "type": "ReLU"},
            {"id": "out", "type": "Dense", "units": units}]


def test_a_sixteen_unit_output_on_two_classes_is_a_problem_on_the_output_with_the_remedy():
    ds = load_dataset({"name": "spiral", "samples": 100})
    (p,) = output_problems(analyze(_nodes(16)), ds, "cross_entropy")
    assert p.node == "out"
    assert p.message == ("Dense 'out' has 16 units but the data set 'spiral' has 2 classes: "
                         "set the last layer's units to 2")
    assert output_problems(analyze(_nodes(2)), ds, "cross_entropy") == []


def test_the_catalogue_entry_is_enough_for_classification():
    info = DATASETS["spiral"]
    assert [p.node for p in output_problems(analyze(_nodes(3)), info, "cross_entropy")] == ["out"]
    assert output_problems(analyze(_nodes(2)), info, "cross_entropy") == []
    assert target_size(info, "binary_cross_entropy") == 1


def test_input_shape_loss_and_regression_targets():
    ds = load_dataset({"name": "spiral", "samples": 100})
    probs = output_problems(analyze(_nodes(2, shape=(3,))), ds, "cross_entropy")
    assert [p.node for p in probs] == ["in"] and "set the Input's shape to [2]" in probs[0].message
    (p,) = output_problems(analyze(_nodes(2)), ds, "binary_cross_entropy")
    assert "needs 1 output" in p.message and p.message.endswith("set the last layer's units to 1")
    reg = next(n for n, i in DATASETS.items() if i.task == "regression" and i.input_shape == (1,))
    rds = load_dataset({"name": reg, "samples": 100})
    (p,) = output_problems(analyze(_nodes(4, shape=(1,))), rds, "mse")
    assert "1 target(s)" in p.message and p.message.endswith("units to 1")
    (p,) = output_problems(analyze(_nodes(1, shape=(1,))), rds, "cross_entropy")
    assert "regression task" in p.message


def test_an_output_without_units_gets_a_dense_as_remedy():
    nodes = _nodes(2)[:3]  # ends with ReLU(8)
    (p,) = output_problems(analyze(nodes), load_dataset({"name": "spiral", "samples": 100}),
                           "cross_entropy")
    assert p.node == "a" and p.message.endswith("end the network with a Dense of 2 units")


def test_a_broken_plan_gets_no_data_problems():
    plan = analyze([{"id": "out", "type": "Dense", "units": 16}])
    assert not plan.ok
    assert output_problems(plan, DATASETS["spiral"], "cross_entropy") == []


def test_the_trainer_refuses_with_the_same_message():
    p = copy.deepcopy(SPIRAL)
    p["network"]["nodes"][-1]["units"] = 16
    with pytest.raises(ConfigError, match="Dense 'out' has 16 units .* set the last layer's "
                                          "units to 2"):
        Trainer(p)


def test_the_cli_refuses_with_the_message(tmp_path):
    p = copy.deepcopy(SPIRAL)
    p["network"]["nodes"][-1]["units"] = 16
    path = tmp_path / "bad.bplab.json"
    path.write_text(json.dumps(p))
    r = subprocess.run([sys.executable, "-m", "bplab.cli", "train", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "Dense 'out' has 16 units" in r.stderr + r.stdout
