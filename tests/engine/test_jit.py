"""bplab.jit: the compiled kernels of small networks equal the numpy code they stand in
for (bit for bit where the arithmetic is the same, within rounding where sums run in
another order), agree with PyTorch, and are used only where they pay."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bplab import jit
from bplab.bench.workloads import WORKLOADS, make_dataset, make_project
from bplab.io.project import new_project
from bplab.layers.activations import Sigmoid, Tanh
from bplab.layers.base import BuildContext
from bplab.layers.core import Dense
from bplab.losses import CrossEntropyLoss
from bplab.stepthrough import StepThrough
from bplab.training import Trainer

needs_numba = pytest.mark.skipif(not jit.available(), reason="numba is not installed")
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def _mlp(activation: str, hidden: list[int], dtype: str = "float64", **training) -> dict:
    p = new_project()
    nodes = [{"id": "in", "type": "Input", "shape": [2]}]
    for i, units in enumerate(hidden, 1):
        nodes += [{"id": f"fc{i}", "type": "Dense", "units": units},
                  {"id": f"act{i}", "type": activation}]
    nodes.append({"id": "out", "type": "Dense", "units": 2})
    edges = [[a["id"], b["id"]] for a, b in zip(nodes, nodes[1:])]
    p["network"] = {"nodes": nodes, "edges": edges}
    p["dataset"] = {"name": "spiral", "samples": 200, "noise": 0.1, "val_fraction": 0.2, "seed": 1}
    p["optimizer"] = {"type": "sgd", "lr": 0.3, "momentum": 0.9}
    # a long run: the kernels repay their loading (jit.PAYBACK_STEPS); the tests take a few
    # of its steps
    p["training"].update({"epochs": None, "steps": 10**6, "batch_size": 16,
                          "backend": "numpy", "dtype": dtype, **training})
    return p


def _steps(trainer: Trainer, n: int = 40) -> Trainer:
    list(trainer.run(max_steps=n))
    return trainer


@needs_numba
@pytest.mark.parametrize("layer_type", [Tanh, Sigmoid])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_gradients_equal_numpy_bit_for_bit(layer_type, dtype, rng):
    x = (rng.standard_normal((32, 8)) * 4).astype(dtype)
    grad = rng.standard_normal((8, 32)).astype(dtype).T  # not C-contiguous
    plain, compiled = layer_type("a"), layer_type("a")
    compiled.jit = jit.kernels()
    out = [], []
    for layer, got in zip((plain, compiled), out):
        got.append(layer.forward(x))
        got.append(layer.backward(grad))
    np.testing.assert_array_equal(out[1][0], out[0][0])
    np.testing.assert_array_equal(out[1][1], out[0][1])
    assert out[1][1].dtype == dtype


def _ce_case(rng, n, c, dtype):
    z = (rng.standard_normal((n, c)) * 3).astype(dtype)
    z[0] = 0.0  # a tie: the first maximum is the prediction
    z[1, 0] = 1e4  # far beyond exp's range once the max is not subtracted
    y = rng.integers(0, c, n)
    y[0] = 1 % c
    return z, y


@needs_numba
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n", "c"), [(32, 2), (64, 10), (5, 3)])
def test_cross_entropy_kernel_matches_the_numpy_code(eps, dtype, n, c, rng):
    z, y = _ce_case(rng, n, c, dtype)
    results = []
    for kernels in (None, jit.kernels()):
        loss = CrossEntropyLoss(label_smoothing=eps)
        loss.jit = kernels
        hits = np.zeros(1)
        value = loss.forward(z.copy(), y, hits=hits)
        results.append((value, loss.backward(), hits[0]))
    (v0, g0, h0), (v1, g1, h1) = results
    assert v1.dtype == v0.dtype == dtype and g1.dtype == dtype
    np.testing.assert_allclose(v1, v0, rtol=TOL[dtype])
    np.testing.assert_allclose(g1, g0, rtol=TOL[dtype], atol=TOL[dtype] / n)
    assert h1 == h0  # row 0 ties at 0 and its target is class 1: not a hit either way


@needs_numba
@pytest.mark.torch
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_cross_entropy_kernel_agrees_with_torch(eps, rng):
    torch = pytest.importorskip("torch")
    z, y = _ce_case(rng, 48, 7, np.float64)
    loss = CrossEntropyLoss(label_smoothing=eps)
    loss.jit = jit.kernels()
    value = float(loss.forward(z, y))
    grad = loss.backward()
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.from_numpy(y), label_smoothing=eps)
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-12, atol=1e-16)


@needs_numba
def test_a_class_id_out_of_range_is_still_an_error(rng):
    loss = CrossEntropyLoss()
    loss.jit = jit.kernels()
    z = rng.standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(IndexError):
        loss.forward(z, np.array([0, 1, 3, 2]))
    with pytest.raises(IndexError):
        loss.forward(z, np.array([0, 1, -4, 2]))


def _dense(units: int, n_in: int, dtype, kernels) -> Dense:
    layer = Dense("fc", units=units)
    layer.build([(n_in,)], BuildContext(rng=np.random.default_rng(3), dtype=dtype))
    layer.dtype, layer.jit = dtype, kernels  # as Network sets them
    return layer


@needs_numba
@pytest.mark.parametrize("reuse", [True, False])
@pytest.mark.parametrize("need_input_grad", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_kernels_match_the_numpy_products(reuse, need_input_grad, dtype, rng):
    x = rng.standard_normal((32, 8)).astype(dtype)
    g = rng.standard_normal((32, 4)).astype(dtype)
    out = []
    for kernels in (None, jit.kernels()):
        layer = _dense(4, 8, dtype, kernels)
        layer.reuse_buffers, layer.need_input_grad = reuse, need_input_grad
        for _ in range(2):  # the first step makes the plan, the second runs it
            for p in layer.params.values():
                p.has_grad = False
            y = layer.forward(x).copy()
            dx = layer.backward(g)
        out.append((y, dx, layer.params["weight"].grad.copy(), layer.params["bias"].grad.copy()))
        plan = layer._scratch.get("plan")
        if reuse and kernels is not None:  # 32 x 8 x 4 multiply-adds: both kernels
            assert plan.forward_kernel is not None and plan.backward_kernel is not None
    (y0, dx0, dw0, db0), (y1, dx1, dw1, db1) = out
    tol = TOL[dtype] * 10
    np.testing.assert_allclose(y1, y0, rtol=tol, atol=tol)
    np.testing.assert_allclose(dw1, dw0, rtol=tol, atol=tol)
    np.testing.assert_allclose(db1, db0, rtol=tol, atol=tol)
    if need_input_grad:
        np.testing.assert_allclose(dx1, dx0, rtol=tol, atol=tol)
    else:
        assert dx0 is None and dx1 is None


@needs_numba
def test_a_second_gradient_is_added_not_written(rng):
    """A layer called twice in a step (its gradient accumulates) keeps numpy's sum."""
    x, g = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    grads = []
    for kernels in (None, jit.kernels()):
        layer = _dense(2, 3, np.float64, kernels)
        layer.forward(x)
        layer.backward(g)
        layer.forward(x)
        layer.backward(g)
        grads.append(layer.params["weight"].grad.copy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-13)
    np.testing.assert_allclose(grads[0], 2 * g.T @ x, rtol=1e-13)


@needs_numba
@pytest.mark.parametrize("activation", ["Tanh", "Sigmoid"])
def test_training_with_and_without_kernels_agrees(activation, monkeypatch):
    """Forty steps of a tiny float64 network: the same weights, to rounding."""
    with_k = _steps(Trainer(_mlp(activation, [8, 8])))
    monkeypatch.setenv("BPLAB_JIT", "0")
    without = _steps(Trainer(_mlp(activation, [8, 8])))
    assert with_k.network.jit is not None and with_k.loss.jit is not None
    assert without.network.jit is None and without.loss.jit is None
    a, b = with_k.network.state_dict(), without.network.state_dict()
    for name in b:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert with_k.evaluate()["train_accuracy"] == without.evaluate()["train_accuracy"]


@needs_numba
def test_a_resumed_run_and_a_step_through_compute_as_the_trainer_does(tmp_path):
    """A layer's first step with the kernels is computed as its later ones: a run resumed
    from a checkpoint goes on bit for bit, and a step-through equals the trainer's step."""
    straight = _steps(Trainer(_mlp("Tanh", [8, 8], dtype="float32")), 30)
    first = _steps(Trainer(_mlp("Tanh", [8, 8], dtype="float32")), 12)
    first.save_checkpoint(tmp_path / "ckpt.npz")
    resumed = Trainer(_mlp("Tanh", [8, 8], dtype="float32"))
    resumed.load_checkpoint(tmp_path / "ckpt.npz")
    _steps(resumed, 18)
    assert resumed.network.jit is not None
    for name, value in straight.network.state_dict().items():
        np.testing.assert_array_equal(resumed.network.state_dict()[name], value, err_msg=name)

    project = _mlp("Sigmoid", [8, 8], shuffle=False)  # the first batch: samples 0-15
    trainer, twin = Trainer(project), Trainer(project)
    st = StepThrough(trainer, range(16))
    twin.step()
    (update,) = [s for s in st.stages if s.kind == "update"]
    after = twin.network.state_dict()
    for name, (_, _, new) in update.updates.items():
        np.testing.assert_array_equal(new, after[name], err_msg=name)


@needs_numba
def test_only_small_numpy_networks_in_long_runs_take_the_kernels():
    assert Trainer(_mlp("Tanh", [8, 8])).network.jit is not None
    # an example-length run finishes sooner without loading numba
    assert Trainer(_mlp("Tanh", [8, 8], steps=jit.PAYBACK_STEPS - 1)).network.jit is None
    # 16 x 2048 outputs of a layer: numpy's calls are no longer what a step costs
    assert Trainer(_mlp("Tanh", [2048])).network.jit is None
    assert Trainer(_mlp("Tanh", [256], batch_size=128)).network.jit is None
    amp = _mlp("Tanh", [8, 8], dtype="float32", mixed_precision="float16")
    assert Trainer(amp).network.jit is None
    for key in "ABD":
        w = WORKLOADS[key]
        assert Trainer(make_project(w, w.batch), dataset=make_dataset(w)).network.jit is not None
    w = WORKLOADS["C"]
    assert Trainer(make_project(w, w.batch), dataset=make_dataset(w, 256)).network.jit is None


def test_bplab_jit_0_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv("BPLAB_JIT", "0")
    assert jit.kernels() is None and not jit.available()
    assert "numpy only" in jit.status()
    assert Trainer(_mlp("Tanh", [8])).network.jit is None


def test_numba_is_imported_only_for_a_network_that_takes_the_kernels():
    """numba's import (a quarter of a second) is not paid by a CNN, nor by importing bplab."""
    code = """
import sys
from bplab.bench.workloads import WORKLOADS, make_dataset, make_project
from bplab.training import Trainer
w = WORKLOADS["E"]
t = Trainer(make_project(w, w.batch), dataset=make_dataset(w, 64), steps=1)
list(t.run())
print("numba" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"
