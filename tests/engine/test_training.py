"""The training loop: determinism, resume, divergence, early stopping, reports."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from bplab.errors import ConfigError
from bplab.graph.plan import analyze
from bplab.io.project import new_project
from bplab.run import run_length
from bplab.training import Trainer, describe_run


def _project(**training):
    p = new_project()
    p["dataset"] = {"name": "spiral", "samples": 200, "noise": 0.1, "val_fraction": 0.2, "seed": 1}
    # numpy: these tests pin down exact numpy semantics (host RNG replay, a loss every step);
    # the CuPy run is compared with numpy in test_backend_parity.py
    p["training"].update({"epochs": 3, "batch_size": 16, "backend": "numpy", **training})
    return p


def _dropout_project():
    p = _project()
    p["network"]["nodes"].insert(3, {"id": "drop", "type": "Dropout", "p": 0.3})
    p["optimizer"] = {"type": "adam", "lr": 0.01, "amsgrad": True}
    p["training"]["lr_schedule"] = {"type": "step", "step_size": 1, "gamma": 0.5}
    return p


def _weights(trainer):
    return trainer.network.state_dict()


def test_same_project_trains_to_bit_identical_weights(backend_name):
    a = Trainer(_dropout_project(), backend=backend_name)
    b = Trainer(_dropout_project(), backend=backend_name)
    list(a.run())
    list(b.run())
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k
    other = _dropout_project()
    other["training"]["seed"] = 7
    c = Trainer(other, backend=backend_name)
    list(c.run())
    assert not np.array_equal(_weights(c)["fc1.weight"], wa["fc1.weight"])


@pytest.mark.parametrize("n_first", [5, 13, 26])  # mid-epoch, mid-epoch, exactly an epoch end
def test_resume_continues_bit_for_bit(tmp_path, n_first):
    straight = Trainer(_dropout_project())
    list(straight.run(max_steps=n_first + 17))

    first = Trainer(_dropout_project())
    list(first.run(max_steps=n_first))
    first.save_checkpoint(tmp_path / "ckpt.npz")
    resumed = Trainer(_dropout_project())
    resumed.load_checkpoint(tmp_path / "ckpt.npz")
    assert resumed.step_count == n_first
    list(resumed.run(max_steps=17))

    assert resumed.step_count == straight.step_count
    assert resumed.lr == straight.lr
    for k, v in _weights(straight).items():
        assert np.array_equal(_weights(resumed)[k], v), k
    opt_a, opt_b = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    for name, st in opt_a["state"].items():
        for key, val in st.items():
            assert np.array_equal(np.asarray(val), np.asarray(opt_b["state"][name][key])), (
                name,
                key,
            )


def test_checkpoint_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ConfigError, match="not a bplab checkpoint"):
        Trainer(_project()).load_checkpoint(path)


def test_divergence_stops_with_a_report_and_keeps_finite_weights():
    p = _project(epochs=50)
    p["dataset"] = {"name": "plane", "samples": 200, "seed": 0}
    for node in p["network"]["nodes"]:
        if node["type"] == "Tanh":
            node["type"] = "ReLU"
    p["network"]["nodes"][-1]["units"] = 1
    p["loss"] = {"type": "mse"}
    p["optimizer"] = {"type": "sgd", "lr": 10.0}
    t = Trainer(p)
    reports = list(t.run())
    last = reports[-1]
    assert last.event == "diverged"
    d = last.divergence
    assert d is not None and d.step == t.step_count + 1
    assert "diverged at step" in d.message
    assert d.where in ("loss", "gradient", "weights")
    if d.where != "loss":
        assert d.parameter in dict(t.network.named_parameters())
    for name, w in _weights(t).items():
        assert np.isfinite(w).all(), name
    t.set_lr(1e-3)
    assert not t.done, "lowering the learning rate allows resuming"


def test_divergence_names_the_parameter_whose_gradient_overflowed():
    t = Trainer(_project())
    w = t.network.layers["fc2"].params["weight"]
    real_backward = t.network.layers["fc2"].backward

    def poisoned(grad):
        out = real_backward(grad)
        w.grad[0, 0] = np.inf
        return out

    t.network.layers["fc2"].backward = poisoned
    before = _weights(t)
    report = t.step()
    assert report.event == "diverged"
    assert report.divergence.where == "gradient"
    assert report.divergence.parameter == "fc2.weight"
    assert report.divergence.layer == "fc2"
    for k, v in _weights(t).items():
        assert np.array_equal(v, before[k]), "the bad update must not be applied"
    # The user lowers the learning rate and resumes from those weights, on the same batch.
    t.network.layers["fc2"].backward = real_backward
    t.set_lr(1e-3)
    nxt = t.step()
    assert nxt.event == "step" and nxt.step == 1 and math.isfinite(nxt.train_loss)


def test_reports_carry_metrics_at_epoch_ends_and_diagnostics_at_their_cadence():
    t = Trainer(_project(epochs=2, diagnostics_every=4))
    reports = list(t.run())
    assert [r.step for r in reports] == list(range(1, t.total_steps + 1))
    epochs = [r for r in reports if r.metrics is not None]
    assert [r.epoch for r in epochs] == [1, 2]
    assert epochs[-1].event == "done"
    for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        assert key in epochs[-1].metrics
    diag = [r for r in reports if r.layers is not None]
    assert [r.step for r in diag] == [s for s in range(1, t.total_steps + 1) if s % 4 == 0]
    stats = diag[-1].layers
    assert [s.layer for s in stats] == ["fc1", "fc2", "out"]
    for s in stats:
        assert s.grad_norm > 0 and s.weight_norm > 0 and 0 < s.update_ratio < 1
        assert s.weight_hist.counts.sum() == t.network.layers[s.layer].params["weight"].size
    acts = {a.layer: a for a in diag[-1].activations}
    assert set(acts) == {"act1", "act2"} and acts["act1"].kind == "tanh"
    assert all(r.train_loss is not None and math.isfinite(r.train_loss) for r in reports)


def test_request_diagnostics_on_demand():
    t = Trainer(_project(diagnostics_every=0))
    assert t.step().layers is None
    t.request_diagnostics()
    assert t.step().layers is not None
    assert t.step().layers is None


def test_regression_reports_r2_and_mae():
    p = _project(epochs=20)
    p["dataset"] = {"name": "plane", "samples": 300, "noise": 0.0, "seed": 0}
    p["network"]["nodes"][-1]["units"] = 1
    p["loss"] = {"type": "mse"}
    t = Trainer(p)
    last = list(t.run())[-1]
    assert last.metrics["val_r2"] > 0.9
    assert last.metrics["val_mae"] >= 0


def test_early_stopping_restores_the_best_weights():
    p = _project(epochs=200, early_stopping={"patience": 3})
    p["optimizer"] = {"type": "sgd", "lr": 0.5}  # noisy enough to stop improving quickly
    t = Trainer(p)
    reports = list(t.run())
    assert reports[-1].event == "early_stop"
    assert t.epoch < 200
    for k, v in t.best_state.items():
        assert np.array_equal(_weights(t)[k], v)


def test_gradient_checkpointing_trains_exactly_like_plain_backprop():
    a = Trainer(_dropout_project())
    b = Trainer(_dropout_project())
    b.network.checkpoint_segments = 3
    list(a.run(max_steps=20))
    list(b.run(max_steps=20))
    for k, v in _weights(a).items():
        assert np.array_equal(_weights(b)[k], v), k


def test_set_lr_applies_at_the_next_step():
    t = Trainer(_project())
    t.step()
    t.set_lr(0.123)
    assert t.step().lr == pytest.approx(0.123)
    with pytest.raises(ConfigError, match="received -1"):
        t.set_lr(-1)


def test_penalties_and_clipping_change_the_update():
    base = Trainer(_project())
    l2 = Trainer(_project(l2=0.1))
    clipped = Trainer(_project(clip_grad_norm=1e-3))
    for t in (base, l2, clipped):
        list(t.run(max_steps=3))
    w = _weights(base)["fc1.weight"]
    assert not np.allclose(_weights(l2)["fc1.weight"], w)
    assert not np.allclose(_weights(clipped)["fc1.weight"], w)


def test_full_batch_and_steps():
    t = Trainer(_project(batch_size="full"), steps=4)
    assert t.batch_size == t.n_train and t.total_steps == 4
    assert [r.epoch for r in t.run()] == [1, 2, 3, 4]



def test_the_run_is_described_before_a_trainer_exists():
    p = _project(epochs=3, batch_size=16)
    t = Trainer(p)
    run = describe_run(p, t.dataset)
    assert run == t.run_plan
    # 160 training samples (200, a fifth for validation) in batches of 16
    assert (run.n_train, run.batch_size, run.steps_per_epoch, run.total_steps) == (160, 16, 10, 30)
    assert run.task == "classification" and run.epochs == 3
    assert [i.id for i in run.parameterized] == [n for n, _ in t.network.parameterized_layers()]
    assert all(i.has_weights for i in run.parameterized if i.type_name == "Dense")
    assert {i.id: i.activation_kind for i in run.activations} == {"act1": "tanh", "act2": "tanh"}
    assert run.layer_types == {n: layer.type_name for n, layer in t.network.layers.items()}
    # the overrides and the plan the caller already has
    assert describe_run(p, t.dataset, steps=7).total_steps == 7
    assert describe_run(p, t.dataset, epochs=5).total_steps == 50
    assert describe_run(p, t.dataset, plan=analyze(p["network"])) == run


def test_a_network_with_problems_still_has_a_run_length():
    p = _project()
    p["network"]["nodes"][1]["units"] = -1
    run = describe_run(p, Trainer(_project()).dataset)
    assert not run.network_ok and run.layers == () and run.total_steps == 30


@pytest.mark.parametrize(
    "cfg, n, expected",
    [
        ({"batch_size": 32, "epochs": 10, "steps": None}, 100, (4, 40)),
        ({"batch_size": "full", "epochs": 3, "steps": None}, 100, (1, 3)),
        ({"batch_size": 500, "epochs": 2, "steps": None}, 100, (1, 2)),  # larger than the data
        ({"batch_size": 10, "epochs": 99, "steps": 7}, 100, (10, 7)),  # steps win
    ],
)
def test_run_length(cfg, n, expected):
    assert run_length(cfg, n) == expected


def test_set_total_steps_shortens_and_lengthens_a_run():
    t = Trainer(_project())  # 30 steps
    list(t.run(max_steps=12))
    t.set_total_steps(5)  # never before the steps already taken
    assert t.total_steps == 12 and t.done and t.stopped is None
    t.set_total_steps(15)
    assert [r.event for r in t.run()][-1] == "done" and t.step_count == 15
    t.set_epochs(2)  # 20 steps in all: the finished run continues
    assert not t.done and t.total_steps == 20
    assert len(list(t.run())) == 5
    assert t.run_plan.total_steps == 30, "the configured run is unchanged"


def test_stop_ends_the_run_and_resume_carries_on():
    t = Trainer(_project())
    list(t.run(max_steps=4))
    t.stop()
    assert t.done and t.stopped == "stopped" and list(t.run()) == []
    with pytest.raises(RuntimeError, match="resume"):
        t.step()
    t.resume()
    assert not t.done and t.total_steps == 30, "a stopped run is not lengthened"
    assert t.step().step == 5


def test_resume_after_the_last_step_trains_as_long_again_or_the_steps_given():
    t = Trainer(_project())
    list(t.run())
    assert t.stopped == "done"
    t.resume(3)
    assert t.total_steps == 33 and len(list(t.run())) == 3
    t.resume()
    assert t.total_steps == 63
    t.resume()  # a run with steps left is not changed
    assert t.total_steps == 63


def test_resume_after_a_divergence_retries_the_batch():
    t = Trainer(_project())
    t.network.layers["fc2"].params["weight"].data[0, 0] = np.inf
    assert t.step().event == "diverged" and t.done
    t.network.layers["fc2"].params["weight"].data[0, 0] = 0.0
    t.resume()
    assert not t.done and t.divergence is None and t.total_steps == 30
    assert t.step().step == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda p: p["network"]["nodes"][0].update(shape=[3]),
            r"Input 'in' has shape \[3\].*\[2\]",
        ),
        (lambda p: p["network"]["nodes"][-1].update(units=3), "set the last layer's units to 2"),
        (lambda p: p["training"].update(batch_size=0), "batch_size must be a positive integer"),
        (lambda p: p["training"].update(l2=-1), "l2 must be a number >= 0, received -1"),
    ],
)
def test_misfits_are_explained(change, message):
    p = _project()
    change(p)
    with pytest.raises(ConfigError, match=message):
        Trainer(p)


def test_decision_grid_covers_the_plane():
    t = Trainer(_project())
    values, bounds = t.decision_grid(16)
    assert values.shape == (16, 16)
    assert ((values >= 0) & (values <= 1)).all()
    assert bounds == t.dataset.bounds


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_decision_grid_on_one_input_is_the_function_of_x(task, tmp_path):
    """1-D data: the picture is the network's output along the input line (sine: the curve
    it fits; one-feature classes: the probability of class 1 along x)."""
    p = _project()
    p["network"]["nodes"][0]["shape"] = [1]
    if task == "regression":
        p["dataset"] = {"name": "sine", "samples": 100, "seed": 1}
        p["network"]["nodes"][-1]["units"] = 1
        p["loss"] = "mse"
    else:
        rows = "\n".join(f"{v:.3f},{int(v > 0)}" for v in np.linspace(-3, 3, 60))
        (tmp_path / "one.csv").write_text("x,label\n" + rows + "\n")
        p["dataset"] = {"name": "file", "path": str(tmp_path / "one.csv")}
    t = Trainer(p)
    t.step()
    assert t.dataset.is_1d
    values, bounds = t.decision_grid(32)
    assert values.shape == (32,) and bounds == t.dataset.bounds and len(bounds) == 1
    line = np.linspace(*bounds[0], 32)[:, None].astype(t.dtype)
    out = t.predict(line)
    np.testing.assert_allclose(values, out[:, 0] if task == "regression" else out[:, 1])


def test_float64_training_stays_float64():
    t = Trainer(copy.deepcopy(_project(dtype="float64")))
    t.step()
    assert all(
        p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in t.network.parameters()
    )
    f = Trainer(_project())
    f.step()
    assert all(
        p.data.dtype == np.float32 and p.grad.dtype == np.float32 for p in f.network.parameters()
    )


def test_a_training_step_allocates_less_than_one_layer_output():
    """Layer outputs and gradients live in arrays reused from step to step."""
    import tracemalloc

    p = _project(epochs=50)
    p["dataset"] = {"name": "digits", "seed": 0}
    p["network"]["nodes"] = [
        {"id": "in", "type": "Input", "shape": [64]},
        {"id": "fc1", "type": "Dense", "units": 256},
        {"id": "r1", "type": "ReLU"},
        {"id": "fc2", "type": "Dense", "units": 256},
        {"id": "r2", "type": "ReLU"},
        {"id": "out", "type": "Dense", "units": 10},
    ]
    p["optimizer"] = {"type": "sgd", "lr": 0.01, "momentum": 0.9}
    p["training"].update(batch_size=64, diagnostics_every=0)
    t = Trainer(p)
    for _ in range(3):
        t.step()
    one_output = 64 * 256 * 4
    tracemalloc.start()
    try:
        for _ in range(5):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            report = t.step()
            peak = tracemalloc.get_traced_memory()[1] - before
            if report.metrics is None:
                assert peak < one_output, f"a step allocated {peak} bytes"
    finally:
        tracemalloc.stop()
    # evaluation outputs are fresh arrays: two predictions never alias each other
    a = t.network.forward(t.dataset.x_val[:8], training=False)
    b = t.network.forward(t.dataset.x_val[8:16], training=False)
    assert a is not b and not np.shares_memory(a, b)
