"""Divergence with its place: the blow-up rule, the layer named, the healthy state kept, the
rate suggested, and the diagnosis that never says "raise the learning rate" after it."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from bplab.diagnostics import LayerStats, diagnose
from bplab.training import HEALTHY_EVERY, Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.bplab.json").read_text())


def _spiral(opt: str, lr: float) -> dict:
    p = _example("spiral")
    p["optimizer"] = {"type": opt, "lr": lr}
    p["training"]["epochs"] = 20
    return p


def _train(t: Trainer) -> list:
    with np.errstate(all="ignore"):
        return list(t.run())


def _raises_lr(findings) -> list[str]:
    return [f"{f.code}/{x.id}" for f in findings for x in f.fixes
            if x.action == "scale_lr" and x.params.get("factor", 1.0) > 1.0]


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_spiral_at_lr_1e6_diverges_names_the_first_layer_and_resumes_finite(opt):
    t = Trainer(_spiral(opt, 1e6))
    reports = _train(t)
    d = reports[-1].divergence
    assert reports[-1].event == "diverged" and t.stopped == "diverged"
    # the loss grew past 1000x its first value at the second step; nothing is NaN yet
    assert d.where == "loss" and d.step == 2
    assert d.layer == "fc1" and d.blew_up in ("activations", "gradients")
    assert "'fc1'" in d.message and "1e+06" in d.message
    assert d.healthy_step == 0 and d.suggested_lr is not None and d.suggested_lr < 1e6
    assert not _raises_lr(t.findings)
    assert t.findings[0].code == "diverged" and t.findings[0].layers == ("fc1",)
    # the kept state is usable: at the suggested rate the run trains to a finite loss
    t.set_lr(d.suggested_lr)
    t.resume()
    _train(t)
    assert t.stopped == "done"
    metrics = t.evaluate()
    assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] < 1.0


def test_exploding_example_names_a_layer_and_restores_weights_before_the_blow_up():
    p = _example("exploding_gradients")
    t = Trainer(p)
    initial = t.network.flat.data.copy()
    reports = _train(t)
    d = reports[-1].divergence
    assert t.stopped == "diverged" and d.layer == "fc1"
    assert "'fc1'" in d.message
    # restored to the state before the blow-up began (here: the initial weights), not to
    # the last finite ones, whose norm had grown ~1000x
    assert d.healthy_step == 0
    np.testing.assert_array_equal(t.network.flat.data, initial)
    t.set_lr(d.suggested_lr)
    t.resume()
    _train(t)
    assert t.stopped == "done" and math.isfinite(t.evaluate()["train_loss"])


def test_the_healthy_state_is_the_last_copy_taken_before_the_weights_ran_away():
    t = Trainer(_spiral("sgd", 0.1))
    for _ in range(3 * HEALTHY_EVERY + 1):
        t.step()
    assert t._healthy[0] == 3 * HEALTHY_EVERY
    kept = t._healthy[3].copy()
    t.network.flat.data *= 10.0  # the weights run away: the next copy is refused
    reports = [t.step() for _ in range(HEALTHY_EVERY)]
    assert t.stopped is None  # not diverged: the loss is still near its first value
    np.testing.assert_array_equal(t._healthy[3], kept)
    # the early warning, on the report of the step where the copy was refused
    assert reports[-1].warning is not None and "grew from" in reports[-1].warning
    assert reports[0].warning is None


def test_a_finished_healthy_run_is_not_called_diverged():
    t = Trainer(_spiral("adam", 0.01))
    _train(t)
    assert t.stopped == "done" and t.divergence is None


def _stats(layer: str, w: float, ratio: float) -> LayerStats:
    return LayerStats(layer, "Dense", 0, 1.0, w, ratio, 0.1, None, None, None)


def test_weights_growing_fast_is_an_early_warning():
    history = [[_stats("fc1", 1.0 * 3**i, 1e-3), _stats("fc2", 1.0, 1e-3)] for i in range(4)]
    findings = diagnose(history, layer_types={"fc1": "Dense", "fc2": "Dense"})
    (warn,) = [f for f in findings if f.code == "weights_growing"]
    assert warn.severity == "warning" and warn.layers == ("fc1",)
    calm = [[_stats("fc1", 1.0, 1e-3), _stats("fc2", 1.0, 1e-3)] for _ in range(4)]
    assert not [f for f in diagnose(calm) if f.code == "weights_growing"]


def test_no_advice_to_raise_the_learning_rate_after_a_huge_loss():
    history = [[_stats("fc1", 1.0, 1e-8), _stats("fc2", 1.0, 1e-8)] for _ in range(5)]
    losses = [0.8] + [2.8e6] * 12
    assert _raises_lr(diagnose(history, losses=[0.8] * 13))  # a stalled, tiny-update run
    assert not _raises_lr(diagnose(history, losses=losses))


def test_divergence_on_a_deep_copy_leaves_the_project_alone():
    p = _spiral("sgd", 1e6)
    before = copy.deepcopy(p)
    _train(Trainer(p))
    assert p == before


def test_revert_to_best_loads_the_best_epochs_weights_and_a_checkpoint_keeps_it(tmp_path):
    t = Trainer(_spiral("adam", 0.01))
    assert t.revert_to_best() is None
    for _ in range(3 * t.steps_per_epoch):
        t.step()
    best = t.best_state
    assert best is not None and 1 <= t.best_epoch <= 3
    t.network.flat.data[...] = 0.0
    assert t.revert_to_best() == t.best_epoch
    for name, value in t.network.state_dict().items():
        np.testing.assert_array_equal(value, best[name])
    t.save_checkpoint(tmp_path / "c.npz")
    again = Trainer(_spiral("adam", 0.01))
    again.load_checkpoint(tmp_path / "c.npz")
    assert again.best_epoch == t.best_epoch
