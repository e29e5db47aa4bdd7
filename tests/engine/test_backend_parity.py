"""The same training on CuPy and numpy gives the same numbers (skipped without a GPU).

float64 results agree to 1e-10 relative, float32 to 1e-5: the engine runs one implementation
per op on either array module, so only the devices' rounding differs.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bplab.backend import cupy_status
from bplab.io.project import new_project
from bplab.training import Trainer

OTHER = "cupy"  # the backend compared with numpy
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(cupy_status()[0] is None, reason=str(cupy_status()[1])),
]

TOL = {"float64": 1e-10, "float32": 1e-5}


def _mlp():
    p = new_project()
    p["dataset"] = {"name": "digits", "val_fraction": 0.2, "seed": 0, "standardize": True}
    p["network"]["nodes"] = [
        {"id": "in", "type": "Input", "shape": [64]},
        {"id": "fc1", "type": "Dense", "units": 32},
        {"id": "a1", "type": "Tanh"},
        {"id": "fc2", "type": "Dense", "units": 32},
        {"id": "a2", "type": "GELU"},
        {"id": "bn", "type": "BatchNorm"},
        {"id": "a3", "type": "Sigmoid"},
        {"id": "out", "type": "Dense", "units": 10},
    ]
    p["optimizer"] = {"type": "adam", "lr": 0.01, "amsgrad": True, "weight_decay": 1e-3}
    p["training"].update(
        batch_size=64, clip_grad_norm=1.0, lr_schedule={"type": "cosine", "T_max": 3}
    )
    return p


def _cnn():
    p = new_project()
    p["dataset"] = {"name": "mnist_5k", "samples": 512, "val_fraction": 0.25, "seed": 0}
    p["network"]["nodes"] = [
        {"id": "in", "type": "Input", "shape": [1, 28, 28]},
        {"id": "c1", "type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": 1},
        {"id": "r1", "type": "ReLU"},
        {"id": "p1", "type": "MaxPool2D", "kernel_size": 2},
        {"id": "c2", "type": "Conv2D", "filters": 8, "kernel_size": 3, "stride": 2},
        {"id": "bn", "type": "BatchNorm"},
        {"id": "r2", "type": "LeakyReLU"},
        {"id": "gap", "type": "GlobalAvgPool"},
        {"id": "out", "type": "Dense", "units": 10},
    ]
    p["optimizer"] = {"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}
    p["training"].update(batch_size=64)
    return p


def _residual():
    p = _mlp()
    p["network"]["nodes"] = [
        {"id": "in", "type": "Input", "shape": [64]},
        {"id": "stem", "type": "Dense", "units": 32},
        {"id": "ln", "type": "LayerNorm"},
        {"id": "a", "type": "SiLU"},
        {"id": "fc", "type": "Dense", "units": 32},
        {"id": "add", "type": "Add", "inputs": ["fc", "stem"]},
        {"id": "cat", "type": "Concat", "inputs": ["add", "stem"]},
        {"id": "out", "type": "Dense", "units": 10},
    ]
    p["loss"] = {"type": "cross_entropy", "label_smoothing": 0.1}
    p["optimizer"] = {"type": "rmsprop", "lr": 0.001, "centered": True, "momentum": 0.5}
    return p


PROJECTS = {"mlp": _mlp, "cnn": _cnn, "residual": _residual}


def _compare(a, b, tol, what):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(np.abs(a).max(), 1e-30)
    assert np.abs(a - b).max() / scale <= tol, (
        f"{what}: max relative difference {np.abs(a - b).max() / scale:.2e}"
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_training_on_cupy_equals_numpy(name, dtype):
    project = PROJECTS[name]()
    project["training"]["dtype"] = dtype
    steps = 12
    ref = Trainer(copy.deepcopy(project), backend="numpy")
    gpu = Trainer(copy.deepcopy(project), backend=OTHER)
    assert gpu.backend.is_gpu
    for _ in range(steps):
        r1, r2 = ref.step(), gpu.step()
        if r1.train_loss is not None and r2.train_loss is not None:
            _compare(r1.train_loss, r2.train_loss, TOL[dtype] * 10, f"loss at step {r1.step}")
    ws_ref, ws_gpu = ref.network.state_dict(), gpu.network.state_dict()
    for k in ws_ref:
        # errors compound over steps; per-op agreement is tested layer by layer
        _compare(ws_ref[k], ws_gpu[k], TOL[dtype] * 100, k)
    m1, m2 = ref.evaluate(), gpu.evaluate()
    for k in m1:
        _compare(m1[k], m2[k], TOL[dtype] * 100, k)


def test_one_step_of_every_layer_family_agrees_tightly():
    for name, make in PROJECTS.items():
        project = make()
        project["training"]["dtype"] = "float64"
        ref = Trainer(copy.deepcopy(project), backend="numpy")
        gpu = Trainer(copy.deepcopy(project), backend=OTHER)
        ref.step()
        gpu.step()
        for (k, p), (_, q) in zip(ref.network.named_parameters(), gpu.network.named_parameters()):
            _compare(p.data, q.data.get(), TOL["float64"], f"{name} {k}")


def test_data_lives_on_the_device_and_reports_come_back_as_numbers():
    t = Trainer(_mlp(), backend=OTHER)
    import cupy

    assert isinstance(t._x, cupy.ndarray) and isinstance(t._y, cupy.ndarray)
    reports = list(t.run(max_steps=t.steps_per_epoch))
    assert reports[-1].metrics is not None
    assert all(isinstance(v, float) for v in reports[-1].metrics.values())
