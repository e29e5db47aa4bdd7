"""Gradient diagnostics: statistics, histograms and the rule-based diagnosis."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from bplab.diagnostics import LayerStats, activation_stats, diagnose, histogram
from bplab.training import Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def _vanishing_project():
    return json.loads((EXAMPLES / "vanishing_gradients.bplab.json").read_text())


def _train(project, epochs=20):
    project["training"]["epochs"] = epochs
    t = Trainer(project)
    list(t.run())
    return t


def test_ten_layer_sigmoid_net_with_normal_init_is_diagnosed_as_vanishing():
    project = _vanishing_project()
    sigmoids = [n for n in project["network"]["nodes"] if n["type"] == "Sigmoid"]
    dense = [n for n in project["network"]["nodes"] if n["type"] == "Dense"]
    assert len(sigmoids) == 10 and all(d["init"] == {"type": "normal", "std": 1.0} for d in dense)
    t = _train(project)
    found = {f.code: f for f in t.findings}
    assert "vanishing_gradients" in found
    f = found["vanishing_gradients"]
    assert f.severity == "error"
    assert f.layers[0] == "fc1", "the earliest layers are named"
    assert f.evidence["first_to_last_ratio"] < 1e-2
    actions = [fix.action for fix in f.fixes]
    assert actions == ["replace_activation", "add_batchnorm", "add_residual"]
    # He alone leaves a Sigmoid gradient vanishing: not offered where Sigmoid/Tanh remain
    assert "init_he" not in actions


def test_same_net_with_relu_and_he_init_is_not_vanishing():
    project = _vanishing_project()
    for node in project["network"]["nodes"]:
        if node["type"] == "Sigmoid":
            node["type"] = "ReLU"
        if node["type"] == "Dense":
            node["init"] = "he_normal"
    t = _train(project)
    assert t.layer_history, "diagnostics were collected"
    assert "vanishing_gradients" not in {f.code for f in t.findings}


def test_the_suggested_fix_clears_the_finding():
    project = _vanishing_project()
    t = _train(copy.deepcopy(project))
    fix = next(f for f in t.findings if f.code == "vanishing_gradients").fixes[0]
    assert fix.action == "replace_activation" and fix.params["to"] == "ReLU"
    for node in project["network"]["nodes"]:
        if node["id"] in fix.layers and node["type"] in fix.params["from"]:
            node["type"] = fix.params["to"]
        if node["id"] in fix.params.get("init_layers", ()):
            node["init"] = fix.params["init"]
    fixed = _train(project)
    assert "vanishing_gradients" not in {f.code for f in fixed.findings}


def test_histogram_is_safe_with_nan_and_inf():
    a = np.array([0.5, -1.0, np.nan, np.inf, -np.inf, 2.0], dtype=np.float32)
    h = histogram(a, bins=8)
    assert h.nonfinite == 3
    assert h.counts.sum() == 3
    assert h.lo == -2.0 and h.hi == 2.0
    assert len(h.edges) == 9
    empty = histogram(np.array([np.nan]))
    assert empty.counts.sum() == 0 and empty.nonfinite == 1


def test_activation_stats_dead_and_saturated_fractions():
    y = np.zeros((4, 10), np.float32)
    y[:, :3] = 1.0  # three live units
    s = activation_stats("r", "relu", y)
    assert s.dead_fraction == pytest.approx(0.7)
    t = np.full((4, 10), 0.999, np.float32)
    t[:, :5] = 0.1
    assert activation_stats("t", "tanh", t).saturated_fraction == pytest.approx(0.5)
    sg = np.full((4, 4), 0.5, np.float32)
    sg[:, 0] = 0.001
    assert activation_stats("s", "sigmoid", sg).saturated_fraction == pytest.approx(0.25)


def test_exploding_example_is_diagnosed_or_diverges_with_a_report():
    project = json.loads((EXAMPLES / "exploding_gradients.bplab.json").read_text())
    t = Trainer(project)
    with np.errstate(over="ignore", invalid="ignore"):
        reports = list(t.run())
    codes = {f.code for r in reports if r.findings for f in r.findings}
    assert "exploding_gradients" in codes
    assert reports[-1].event == "diverged"
    assert reports[-1].divergence.message


def test_learning_rate_and_stall_rules():
    def sample(ratio):
        return [LayerStats(n, "Dense", i, 1.0, 1.0, ratio, 0.1) for i, n in enumerate(("a", "b"))]

    high = diagnose([sample(0.5)] * 5)
    assert [f.code for f in high] == ["lr_too_high"]
    assert high[0].fixes[0].params == {"factor": 0.1}
    low = diagnose([sample(1e-8)] * 5)
    assert [f.code for f in low] == ["lr_too_low"]
    assert diagnose([sample(1e-3)] * 5) == []
    stalled = diagnose([], losses=[1.0] * 5 + [0.5] * 12)
    assert [f.code for f in stalled] == ["stalled_loss"]
    assert diagnose([], losses=list(np.linspace(1, 0.1, 20))) == []


def test_a_stall_after_the_schedule_annealed_the_rate_is_not_blamed_on_the_rate():
    """A plateau at the end of a decayed schedule is what the schedule is for: the finding
    says so, and never advises raising the (deliberately lowered) learning rate."""
    flat = [1.0] * 5 + [0.5] * 12
    plain = diagnose([], losses=flat)
    assert [x.id for x in plain[0].fixes] == ["raise_lr", "larger_network"]
    assert diagnose([], losses=flat, lr_fraction=0.5)[0].fixes[0].id == "raise_lr"
    annealed = diagnose([], losses=flat, lr_fraction=0.02)
    assert [f.code for f in annealed] == ["stalled_loss"]
    f = annealed[0]
    assert "lowered the learning rate to 2.0% of where it started" in f.message
    assert [x.id for x in f.fixes] == ["decay_later", "larger_network"]
    assert all(x.action is None for x in f.fixes)  # nothing to apply blindly
    assert f.evidence["lr_fraction"] == 0.02
    assert "almost nothing" in diagnose([], losses=flat, lr_fraction=0.0)[0].message


def test_the_trainer_tells_the_diagnosis_how_far_its_schedule_decayed():
    root = Path(__file__).resolve().parents[2]
    project = json.loads((root / "resources/examples/sine_fit.bplab.json").read_text())
    project["training"]["lr_schedule"] = {"type": "cosine", "T_max": 200}  # its 200 epochs
    t = Trainer(project)
    for _ in t.run():
        pass
    assert t.lr < 1e-9  # annealed to zero at the end
    stalled = [f for f in t.findings if f.code == "stalled_loss"]
    assert stalled and stalled[0].fixes[0].id == "decay_later"
    assert t._lr_fraction() == pytest.approx(0.0, abs=1e-9)
    project["training"].pop("lr_schedule")
    assert Trainer(project)._lr_fraction() is None


# (1100, 1000): more values than one chunk of histogram's binning (HIST_CHUNK)
@pytest.mark.parametrize("shape", [(8, 2), (64, 32), (300, 100), (1100, 1000)])
def test_histogram_matches_numpy_histogram(shape):
    a = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    h = histogram(a)
    counts, edges = np.histogram(a, bins=len(h.counts), range=(h.lo, h.hi))
    assert np.array_equal(h.counts, counts)
    assert np.allclose(h.edges, edges)


def _vanishing_history(names, n_samples):
    # the first layer's gradient 1e-4 of the last's at every sample
    return [[LayerStats(n, "Dense", i, r * 4, 1.0, 1e-3, r)
             for i, (n, r) in enumerate(zip(names, (1e-6, 1e-4, 1e-2)))]
            for _ in range(n_samples)]


def test_diagnose_looks_at_the_last_diagnosis_window_samples(monkeypatch):
    import bplab.diagnostics as diagnostics

    def sample(norm):
        return [LayerStats(n, "Dense", i, norm, 1.0, 1e-3, norm / 4) for i, n in enumerate("ab")]

    # The gradient norm grew 1e4-fold since the oldest sample in the window: exploding.
    history = [sample(1e-4)] + [sample(1.0)] * (diagnostics.DIAGNOSIS_WINDOW - 1)
    assert [f.code for f in diagnose(history)] == ["exploding_gradients"]
    history.append(sample(1.0))  # the small one leaves the window
    assert diagnose(history) == []
    monkeypatch.setattr(diagnostics, "DIAGNOSIS_WINDOW", diagnostics.DIAGNOSIS_WINDOW + 1)
    assert [f.code for f in diagnose(history)] == ["exploding_gradients"]


def test_vanishing_fixes_name_the_weight_layers_by_trait():
    names = ("c1", "fc1", "out")
    types = {"c1": "Conv2D", "t1": "Tanh", "fc1": "Dense", "s1": "Sigmoid", "out": "Dense",
             "bn": "BatchNorm", "r": "ReLU"}
    (finding,) = diagnose(_vanishing_history(names, 5), layer_types=types)
    by_action = {f.action: f for f in finding.fixes}
    assert by_action["add_residual"].layers == ("c1", "fc1", "out")
    assert by_action["add_batchnorm"].layers == ("c1", "fc1")
    swap = by_action["replace_activation"]
    assert swap.layers == ("t1", "s1") and swap.params["from"] == ["Sigmoid", "Tanh"]
    assert swap.params["init_layers"] == ["c1", "fc1", "out"]
    assert swap.params["optimizer"] == {"type": "adam", "lr": 0.001}
    # a ReLU network whose gradient vanishes (tiny init) is offered He
    relu = {"c1": "Conv2D", "fc1": "Dense", "r": "ReLU", "out": "Dense"}
    (finding,) = diagnose(_vanishing_history(names, 5), layer_types=relu)
    assert [f.id for f in finding.fixes] == ["he_init", "batchnorm", "residual"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_histogram_bins_values_at_the_edge_of_the_float_range(dtype):
    """A diverging run's weights reach the float's largest values, where flat + max would
    overflow: every finite value still lands in its bin."""
    big = np.finfo(dtype).max
    a = np.array([-big, -big / 2, 0.0, big / 2, big], dtype=dtype)
    h = histogram(a, bins=6)
    assert h.counts.tolist() == [1, 1, 0, 1, 1, 1]
    tiny = np.array([-1e-40, 5e-41, 1e-40], dtype=np.float32)  # denormals
    assert histogram(tiny, bins=4).counts.sum() == 3


def test_a_loss_that_blew_up_is_seen_anywhere_in_the_history():
    from bplab.diagnostics import _blew_up

    assert not _blew_up([]) and not _blew_up([1.0, 0.5, 0.25])
    for bad in (float("nan"), float("inf"), -float("inf"), 1e4):
        assert _blew_up([1.0, bad, 0.5]), bad
    assert _blew_up([1e308, 1e308])  # the sum overflows: losses this large are a blow-up


def _layer_stats_both_ways(project, steps=30):
    """One trainer's layer statistics read from its flat buffers and parameter by
    parameter, for the same update."""
    t = Trainer(project, steps=steps + 10)
    for _ in range(steps):
        t.step()
    flat = t.network.flat
    assert t._flat_stats() is not None
    before = flat.data.copy()
    rng = np.random.default_rng(0)
    flat.data[:] += (rng.standard_normal(flat.data.size) * 1e-3).astype(flat.data.dtype)
    by_param = [before[flat.slices[n]].reshape(p.shape) for n, p in zip(t._param_names, t._params)]
    return t._layer_stats(before), t._layer_stats(by_param)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_statistics_from_the_flat_buffers_equal_those_taken_per_parameter(dtype):
    project = _vanishing_project()
    project["training"]["dtype"] = dtype
    flat, per_param = _layer_stats_both_ways(project)
    assert [s.layer for s in flat] == [s.layer for s in per_param] and len(flat) == 11
    for a, b in zip(flat, per_param):
        assert (a.type, a.depth, a.nonfinite) == (b.type, b.depth, b.nonfinite)
        for name in ("grad_norm", "weight_norm", "update_ratio", "grad_rms"):
            # float32 sums in another order: equal to float32's precision
            assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-5), name
        for name in ("weight_hist", "grad_hist"):  # the same binning, bin for bin
            ha, hb = getattr(a, name), getattr(b, name)
            assert (ha.lo, ha.hi, ha.nonfinite) == (hb.lo, hb.hi, hb.nonfinite)
            np.testing.assert_array_equal(ha.counts, hb.counts)
            assert ha.counts.sum() == hb.counts.sum() > 0


def test_flat_layer_statistics_name_the_parameter_with_a_non_finite_gradient():
    project = _vanishing_project()
    t = Trainer(project, steps=10)
    t.step()
    flat = t.network.flat
    flat.grad[flat.slices["fc3.bias"]][1] = np.inf
    stats = {s.layer: s for s in t._layer_stats(flat.data.copy())}
    assert stats["fc3"].nonfinite == "fc3.bias" and stats["fc3"].grad_norm == np.inf
    assert stats["fc2"].nonfinite is None and np.isfinite(stats["fc2"].grad_norm)
    assert stats["fc3"].grad_hist.nonfinite == 0  # the weight's gradient is finite


@pytest.mark.parametrize("kind", ["relu", "tanh", "sigmoid"])
def test_activation_fractions_equal_the_array_methods(kind):
    rng = np.random.default_rng(3)
    for shape in [(32, 16), (7, 3, 4), (16, 8, 5, 5)]:
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(shape).astype(dtype)
            y = {"relu": np.maximum(x, 0), "tanh": np.tanh(4 * x),
                 "sigmoid": 1 / (1 + np.exp(-6 * x))}[kind].astype(dtype)
            y2 = y.reshape(shape[0], -1)
            s = activation_stats("a", kind, y)
            assert type(s.dead_fraction) is float and type(s.saturated_fraction) is float
            if kind == "relu":
                assert s.dead_fraction == 1.0 - float((y2 > 0).any(axis=0).mean())
            elif kind == "tanh":
                assert s.saturated_fraction == float((np.abs(y2).mean(axis=0) > 0.99).mean())
            else:
                m = y2.mean(axis=0)
                assert s.saturated_fraction == float(((m < 0.01) | (m > 0.99)).mean())


def test_inputs_on_large_scales_are_a_finding_with_the_standardize_fix():
    """Raw wine (proline ~750): a warning naming the largest feature, with the fix that
    turns on dataset.standardize; not for standardized data, the plane's toy sets or images
    (pixels are not features on different scales)."""
    from bplab.datasets import load_dataset
    from bplab.diagnostics import INPUT_SCALE_LIMIT, input_scale_findings
    from bplab.fixes import edits_for

    raw = load_dataset({"name": "wine"})
    (finding,) = input_scale_findings(raw)
    assert finding.code == "unscaled_inputs" and finding.severity == "warning"
    assert finding.message.startswith("'proline' averages ")
    x = raw.x_train.astype(np.float64)
    size = np.abs(x.mean(axis=0)) + x.std(axis=0)
    assert finding.evidence["large_features"] == float((size > INPUT_SCALE_LIMIT).sum())
    assert finding.evidence["largest_scale"] == pytest.approx(size.max())
    (fix,) = finding.fixes
    assert fix.action == "standardize"
    project = {"dataset": {"name": "wine"}}
    (edit,) = edits_for(fix, project)
    assert edit.path == "dataset.standardize" and edit.value is True
    assert edits_for(fix, {"dataset": {"name": "wine", "standardize": True}}) == []
    for spec in ({"name": "wine", "standardize": True}, {"name": "spiral"},
                 {"name": "digits_images"}, {"name": "breast_cancer", "standardize": True}):
        assert input_scale_findings(load_dataset(spec)) == [], spec


def test_the_trainer_reports_the_data_finding_from_the_start_and_at_every_diagnosis():
    from bplab.training import Trainer

    project = {"version": 1, "dataset": {"name": "breast_cancer"},
               "network": {"nodes": [{"id": "in", "type": "Input", "shape": [30]},
                                     {"id": "out", "type": "Dense", "units": 2}]},
               "loss": "cross_entropy", "optimizer": {"type": "sgd", "lr": 0.001},
               "training": {"epochs": 2, "batch_size": 64}}
    trainer = Trainer(project)
    assert [f.code for f in trainer.findings] == ["unscaled_inputs"]
    with np.errstate(over="ignore", invalid="ignore"):
        reports = [r for r in trainer.run() if r.findings is not None]
    assert reports and all(r.findings[0].code == "unscaled_inputs" for r in reports)


def test_pixels_of_0_to_255_are_inputs_on_large_scales(tmp_path):
    """Images saved as bytes: per channel, as standardizing scales them."""
    from bplab.datasets import load_dataset
    from bplab.diagnostics import input_scale_findings

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "grey.npz", x_train=rng.integers(0, 256, (40, 10, 10)).astype(np.uint8),
             y_train=rng.integers(0, 3, 40))
    (finding,) = input_scale_findings(load_dataset({"name": "file", "path": "grey.npz"},
                                                   base_dir=tmp_path))
    assert finding.message.startswith("The pixels average 12")
    assert input_scale_findings(load_dataset(
        {"name": "file", "path": "grey.npz", "standardize": True}, base_dir=tmp_path)) == []
    assert input_scale_findings(load_dataset({"name": "mnist_5k"})) == []


def test_regression_targets_on_large_scales_are_named_with_the_rescaling_advice(tmp_path):
    """House prices near 175,000: the warning names the column and says by what to divide
    it; the built-in regressions (targets near 1) get none; the trainer lists it first."""
    from bplab.datasets import DATASETS, dataset_names, load_dataset
    from bplab.diagnostics import target_scale_findings
    from bplab.training import Trainer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    price = 180_000 + 80_000 * x[:, 0] + 20_000 * rng.normal(size=200)
    (tmp_path / "houses.csv").write_text("a,b,c,price\n" + "".join(
        f"{a:.3f},{b:.3f},{c:.3f},{p:.0f}\n" for (a, b, c), p in zip(x, price)))
    spec = {"name": "file", "path": str(tmp_path / "houses.csv")}
    (finding,) = target_scale_findings(load_dataset(spec))
    assert finding.code == "unscaled_targets" and finding.message.startswith("'price' averages")
    (fix,) = finding.fixes
    assert (fix.action, fix.params) == ("divide_target", {"divisor": 100_000})
    assert "Divide 'price' by 100,000" in fix.description
    divided = load_dataset({**spec, "target_divisor": 100_000})  # what the fix sets
    assert target_scale_findings(divided) == []
    np.testing.assert_allclose(divided.y_train * 100_000, load_dataset(spec).y_train,
                               rtol=1e-6)
    assert divided.target_names == ["price / 100,000"]
    assert divided.notes[-1] == "target divided by 100,000: price / 100,000"
    for name in dataset_names():
        if DATASETS[name].task == "regression":
            assert target_scale_findings(load_dataset({"name": name})) == [], name
    trainer = Trainer({"version": 1, "dataset": spec, "loss": "mse", "optimizer": "adam",
                       "network": {"nodes": [{"id": "in", "type": "Input", "shape": [3]},
                                             {"id": "out", "type": "Dense", "units": 1}]},
                       "training": {"epochs": 1}})
    assert [f.code for f in trainer.findings] == ["unscaled_targets"]
    # trained on: the exploding gradients it causes are an error, listed after their cause
    trainer = Trainer({"version": 1, "dataset": spec, "loss": "mse",
                       "optimizer": {"type": "adam", "lr": 0.05},
                       "network": {"nodes": [{"id": "in", "type": "Input", "shape": [3]},
                                             {"id": "fc1", "type": "Dense", "units": 16},
                                             {"id": "act", "type": "ReLU"},
                                             {"id": "out", "type": "Dense", "units": 1}]},
                       "training": {"epochs": 20, "batch_size": 32}})
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in trainer.run():
            pass
    codes = [(f.code, f.severity) for f in trainer.findings]
    assert codes[0] == ("unscaled_targets", "warning")
    assert any(severity == "error" for _, severity in codes[1:]), codes
