"""The training loop: determinism, resume, divergence, early stopping, reports."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from bplab.errors import ConfigError
from bplab.io.project import new_project
from bplab.training import Trainer


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
