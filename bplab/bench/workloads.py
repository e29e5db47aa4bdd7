"""The seven standard workloads: a network, an optimiser, a loss, a batch size and data.

A to F are feed-forward classifiers; G is a recurrent regression, an LSTM on the adding
problem (Hochreiter & Schmidhuber 1997): backpropagation through time, step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bplab.datasets.base import Dataset
from bplab.datasets.sequences import adding

DIAG_EVERY = 100  # the project default (TRAINING_DEFAULTS["diagnostics_every"])

def mlp(n_in: int, widths: list[int], act: str, n_out: int, init: str | None = None) -> list:
    """Nodes of a Dense + activation chain: ``n_in -> widths... -> n_out`` (logits)."""
    nodes: list[dict[str, Any]] = [{"id": "in", "type": "Input", "shape": [n_in]}]
    for i, w in enumerate(widths, 1):
        d: dict[str, Any] = {"id": f"fc{i}", "type": "Dense", "units": w}
        if init:
            d["init"] = init
        nodes += [d, {"id": f"act{i}", "type": act}]
    nodes.append({"id": "out", "type": "Dense", "units": n_out})
    return nodes


def _cnn() -> list:
    return [
        {"id": "in", "type": "Input", "shape": [1, 28, 28]},
        {"id": "conv1", "type": "Conv2D", "filters": 16, "kernel_size": 3, "padding": 1},
        {"id": "relu1", "type": "ReLU"},
        {"id": "pool1", "type": "MaxPool2D", "kernel_size": 2},
        {"id": "conv2", "type": "Conv2D", "filters": 32, "kernel_size": 3, "padding": 1},
        {"id": "relu2", "type": "ReLU"},
        {"id": "pool2", "type": "MaxPool2D", "kernel_size": 2},
        {"id": "flat", "type": "Flatten"},
        {"id": "out", "type": "Dense", "units": 10},
    ]


def _resmlp(n_in: int, width: int, blocks: int, n_out: int, p: float = 0.1) -> list:
    nodes: list[dict[str, Any]] = [
        {"id": "in", "type": "Input", "shape": [n_in]},
        {"id": "stem", "type": "Dense", "units": width, "init": "he_uniform"},
    ]
    skip = "stem"
    for b in range(1, blocks + 1):
        nodes += [
            {"id": f"bn{b}", "type": "BatchNorm", "inputs": [skip]},
            {"id": f"relu{b}", "type": "ReLU"},
            {"id": f"fc{b}", "type": "Dense", "units": width, "init": "he_uniform"},
            {"id": f"drop{b}", "type": "Dropout", "p": p},
            {"id": f"add{b}", "type": "Add", "inputs": [f"drop{b}", skip]},
        ]
        skip = f"add{b}"
    nodes.append({"id": "out", "type": "Dense", "units": n_out, "inputs": [skip]})
    return nodes


def _lstm(seq_len: int, hidden: int) -> list:
    return [
        {"id": "in", "type": "Input", "shape": [seq_len, 2]},
        {"id": "lstm", "type": "LSTM", "hidden_size": hidden},
        {"id": "out", "type": "Dense", "units": 1},
    ]


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    nodes: list
    optimizer: dict
    batch: int
    samples: int
    data: str  # "xor", "digits", "random", "adding"
    steps: int  # timed steps per repeat (full run)
    quick_steps: int
    warmup: int = 20
    reference: str | None = "mlp"  # hand-written numpy loop: "mlp", "cnn" or None
    input_shape: tuple[int, ...] = field(default=(2,))
    n_classes: int = 2  # 0: a regression with one target
    loss: str = "cross_entropy"


WORKLOADS: dict[str, Workload] = {w.key: w for w in (
    Workload("A", "2-8-8-2 tanh, SGD, batch 32 (Playground)", mlp(2, [8, 8], "Tanh", 2),
             {"type": "sgd", "lr": 0.1}, 32, 1000, "xor", 500, 20),
    Workload("B", "digits 64-128-128-10 ReLU, Adam, batch 64",
             mlp(64, [128, 128], "ReLU", 10, "he_uniform"),
             {"type": "adam", "lr": 1e-3}, 64, 1797, "digits", 200, 10,
             input_shape=(64,), n_classes=10),
    Workload("C", "784-256-256-10 ReLU, SGD momentum, batch 128 (MNIST size)",
             mlp(784, [256, 256], "ReLU", 10, "he_uniform"),
             {"type": "sgd", "lr": 0.05, "momentum": 0.9}, 128, 16384, "random", 100, 5,
             input_shape=(784,), n_classes=10),
    Workload("D", "2-(16 x 10)-2 sigmoid, SGD, batch 32 (vanishing gradients)",
             mlp(2, [16] * 10, "Sigmoid", 2), {"type": "sgd", "lr": 0.5}, 32, 1000, "xor",
             300, 10),
    Workload("E", "CNN 1x28x28 conv16-pool-conv32-pool-dense10, Adam, batch 64", _cnn(),
             {"type": "adam", "lr": 1e-3}, 64, 4096, "random", 25, 2, warmup=5,
             reference="cnn", input_shape=(1, 28, 28), n_classes=10),
    Workload("F", "residual MLP, 8 blocks x 128, BatchNorm + Dropout, Adam, batch 128",
             _resmlp(64, 128, 8, 10), {"type": "adam", "lr": 1e-3}, 128, 16384, "random", 100,
             5, reference=None, input_shape=(64,), n_classes=10),
    Workload("G", "LSTM 64 on the adding problem, 100 steps, Adam, batch 32 (through time)",
             _lstm(100, 64), {"type": "adam", "lr": 1e-3}, 32, 1024, "adding", 20, 2,
             warmup=3, reference=None, input_shape=(100, 2), n_classes=0, loss="mse"),
)}


def make_dataset(w: Workload, samples: int | None = None, seed: int = 0) -> Dataset:
    """The workload's training data (no validation split: the loop only trains)."""
    rng = np.random.default_rng(seed)
    n = samples or w.samples
    if w.data == "digits":
        from bplab.datasets import load_dataset

        ds = load_dataset({"name": "digits", "val_fraction": 0.0, "standardize": True})
        x, y = ds.x_train, ds.y_train
    elif w.data == "adding":  # the built-in data set's generator (bplab.datasets.sequences)
        x, y = adding(rng, n, 0.0, w.input_shape[0])
        x, y = x.astype(np.float32), y.astype(np.float32)
    elif w.data == "xor":
        x = rng.uniform(-1.0, 1.0, (n, 2)).astype(np.float32)
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    else:  # a random linear teacher: learnable, so the losses fall
        x = rng.standard_normal((n, *w.input_shape), dtype=np.float32)
        teacher = rng.standard_normal((int(np.prod(w.input_shape)), w.n_classes))
        y = (x.reshape(n, -1) @ teacher).argmax(axis=1).astype(np.int64)
    empty_x = np.zeros((0, *x.shape[1:]), np.float32)
    task = "classification" if w.n_classes else "regression"
    return Dataset(f"bench-{w.key}", f"bench {w.key}", task, x, y, empty_x,
                   np.zeros((0, *y.shape[1:]), y.dtype), tuple(x.shape[1:]), w.n_classes or None,
                   [f"x{i}" for i in range(int(np.prod(x.shape[1:])))],
                   [str(i) for i in range(w.n_classes)] if w.n_classes else None,
                   "synthetic benchmark data")


def make_project(w: Workload, batch: int | None = None, *, nodes: list | None = None,
                 diagnostics_every: int = DIAG_EVERY, checkpoint_segments: int = 0,
                 backend: str = "numpy") -> dict[str, Any]:
    return {
        "format": "bplab-project", "version": 1, "name": f"bench {w.key}",
        "dataset": {"name": "xor"},  # replaced by the in-memory data set
        "network": {"nodes": nodes or w.nodes},
        "loss": {"type": w.loss},
        "optimizer": dict(w.optimizer),
        "training": {"steps": 10**9, "batch_size": batch or w.batch, "shuffle": True,
                     "seed": 0, "dtype": "float32", "backend": backend,
                     "diagnostics_every": diagnostics_every,
                     "checkpoint_segments": checkpoint_segments},
    }
