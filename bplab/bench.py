"""``bplab bench``: training throughput of the engine against PyTorch and hand-written numpy.

Each workload trains one network on one data set with three kinds of contender, all
starting from bplab's initial weights and seeing the same batches in the same order:

* ``bplab-numpy`` / ``bplab-cupy``: :meth:`bplab.training.Trainer.step` on a project dict,
  the loop users run (shuffling, per-step bookkeeping, divergence checks, diagnostics every
  100 steps, epoch-end evaluation when an epoch ends inside the timed steps);
* ``numpy-ref``: a hand-written numpy loop doing the same math with preallocated buffers
  and in-place updates, the practical limit of numpy on this machine;
* ``torch-cpu`` / ``torch-cuda``: PyTorch eager, when torch is installed.

Contenders run round-robin: one timed block of steps each, then the next, ``repeats``
times after a warm-up, so a slow drift of the machine (turbo, another process) falls on
all of them alike. Throughput is the median of the repeats (min-max shown). GPU contenders
synchronise their stream before and after the timed block.

Also measured: the cost of diagnostics at their default cadence (A, C), the peak memory
of a training step (tracemalloc, numpy engines), and gradient checkpointing on a deep
sigmoid chain (peak step memory and time per step, with and without).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bplab.backend import cupy_status, to_host
from bplab.datasets.base import Dataset
from bplab.errors import ConfigError

__all__ = ["WORKLOADS", "Workload", "make_dataset", "make_project", "run_bench"]

DIAG_EVERY = 100  # the project default (TRAINING_DEFAULTS["diagnostics_every"])


# -- workloads ----------------------------------------------------------------------------------
def _mlp(n_in: int, widths: list[int], act: str, n_out: int, init: str | None = None) -> list:
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


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    nodes: list
    optimizer: dict
    batch: int
    samples: int
    data: str  # "xor", "digits", "random"
    steps: int  # timed steps per repeat (full run)
    quick_steps: int
    warmup: int = 20
    reference: str | None = "mlp"  # hand-written numpy loop: "mlp", "cnn" or None
    input_shape: tuple[int, ...] = field(default=(2,))
    n_classes: int = 2


WORKLOADS: dict[str, Workload] = {w.key: w for w in (
    Workload("A", "2-8-8-2 tanh, SGD, batch 32 (Playground)", _mlp(2, [8, 8], "Tanh", 2),
             {"type": "sgd", "lr": 0.1}, 32, 1000, "xor", 500, 20),
    Workload("B", "digits 64-128-128-10 ReLU, Adam, batch 64",
             _mlp(64, [128, 128], "ReLU", 10, "he_uniform"),
             {"type": "adam", "lr": 1e-3}, 64, 1797, "digits", 200, 10,
             input_shape=(64,), n_classes=10),
    Workload("C", "784-256-256-10 ReLU, SGD momentum, batch 128 (MNIST size)",
             _mlp(784, [256, 256], "ReLU", 10, "he_uniform"),
             {"type": "sgd", "lr": 0.05, "momentum": 0.9}, 128, 16384, "random", 100, 5,
             input_shape=(784,), n_classes=10),
    Workload("D", "2-(16 x 10)-2 sigmoid, SGD, batch 32 (vanishing gradients)",
             _mlp(2, [16] * 10, "Sigmoid", 2), {"type": "sgd", "lr": 0.5}, 32, 1000, "xor",
             300, 10),
    Workload("E", "CNN 1x28x28 conv16-pool-conv32-pool-dense10, Adam, batch 64", _cnn(),
             {"type": "adam", "lr": 1e-3}, 64, 4096, "random", 25, 2, warmup=5,
             reference="cnn", input_shape=(1, 28, 28), n_classes=10),
    Workload("F", "residual MLP, 8 blocks x 128, BatchNorm + Dropout, Adam, batch 128",
             _resmlp(64, 128, 8, 10), {"type": "adam", "lr": 1e-3}, 128, 16384, "random", 100,
             5, reference=None, input_shape=(64,), n_classes=10),
)}


def make_dataset(w: Workload, samples: int | None = None, seed: int = 0) -> Dataset:
    """The workload's training data (no validation split: the loop only trains)."""
    rng = np.random.default_rng(seed)
    n = samples or w.samples
    if w.data == "digits":
        from bplab.datasets import load_dataset

        ds = load_dataset({"name": "digits", "val_fraction": 0.0, "standardize": True})
        x, y = ds.x_train, ds.y_train
    elif w.data == "xor":
        x = rng.uniform(-1.0, 1.0, (n, 2)).astype(np.float32)
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    else:  # a random linear teacher: learnable, so the losses fall
        x = rng.standard_normal((n, *w.input_shape), dtype=np.float32)
        teacher = rng.standard_normal((int(np.prod(w.input_shape)), w.n_classes))
        y = (x.reshape(n, -1) @ teacher).argmax(axis=1).astype(np.int64)
    empty_x = np.zeros((0, *x.shape[1:]), np.float32)
    return Dataset(f"bench-{w.key}", f"bench {w.key}", "classification", x, y, empty_x,
                   np.zeros(0, np.int64), tuple(x.shape[1:]), w.n_classes,
                   [f"x{i}" for i in range(int(np.prod(x.shape[1:])))],
                   [str(i) for i in range(w.n_classes)], "synthetic benchmark data")


def make_project(w: Workload, batch: int | None = None, *, nodes: list | None = None,
                 diagnostics_every: int = DIAG_EVERY, checkpoint_segments: int = 0,
                 backend: str = "numpy") -> dict[str, Any]:
    return {
        "format": "bplab-project", "version": 1, "name": f"bench {w.key}",
        "dataset": {"name": "xor"},  # replaced by the in-memory data set
        "network": {"nodes": nodes or w.nodes},
        "loss": {"type": "cross_entropy"},
        "optimizer": dict(w.optimizer),
        "training": {"steps": 10**9, "batch_size": batch or w.batch, "shuffle": True,
                     "seed": 0, "dtype": "float32", "backend": backend,
                     "diagnostics_every": diagnostics_every,
                     "checkpoint_segments": checkpoint_segments},
    }


# -- contenders ---------------------------------------------------------------------------------
class Contender:
    """Something that trains: ``run(n)`` takes n steps and returns the seconds they took."""

    name = ""
    device = "cpu"

    def run(self, n: int) -> float:
        raise NotImplementedError

    def loss(self) -> float:
        """The batch loss of the last step."""
        raise NotImplementedError


class BplabContender(Contender):
    def __init__(self, w: Workload, ds: Dataset, batch: int, backend: str, name: str | None = None,
                 **project_kw):
        from bplab.training import Trainer

        self.name = name or f"bplab-{backend}"
        self.device = "cuda" if backend == "cupy" else "cpu"
        self.trainer = Trainer(make_project(w, batch, backend=backend, **project_kw), dataset=ds)
        self._last = None

    def initial_state(self) -> dict[str, np.ndarray]:
        return self.trainer.network.state_dict()

    def run(self, n: int) -> float:
        tr = self.trainer
        sync = tr.backend.synchronize
        step = tr.step
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            r = step()
        sync()
        dt = time.perf_counter() - t0
        self._last = r
        return dt

    def loss(self) -> float:
        # on a GPU the report carries the loss only every few steps: take one more step
        r = self._last
        while r is None or r.train_loss is None:
            r = self.trainer.step()
        return float(r.train_loss)


def _batches(x: np.ndarray, y: np.ndarray, batch: int, seed: int = 0):
    """The Trainer's batch order: a fresh permutation from ``default_rng(seed)`` per epoch,
    gathered once into a buffer, then contiguous slices."""
    rng = np.random.default_rng(seed)
    n = len(x)
    xs, ys = np.empty_like(x), np.empty_like(y)
    while True:
        perm = rng.permutation(n)
        np.take(x, perm, axis=0, out=xs)
        np.take(y, perm, axis=0, out=ys)
        for s in range(0, n, batch):
            yield xs[s:s + batch], ys[s:s + batch]


class _RefSGD:
    """In-place SGD (optionally with momentum, torch's rule) over lists of arrays."""

    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.mu = params, lr, momentum
        self.bufs = [np.zeros_like(p) for p in params] if momentum else None
        self.tmp = [np.empty_like(p) for p in params]
        self.first = True

    def step(self, grads):
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if self.mu:
                b = self.bufs[i]
                if self.first:
                    b[...] = g
                else:
                    b *= self.mu
                    b += g
                g = b
            t = self.tmp[i]
            np.multiply(g, -self.lr, out=t)
            p += t
        self.first = False


class _RefAdam:
    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, *betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.tmp = [np.empty_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        b1, b2 = self.b1, self.b2
        step_size = self.lr / (1 - b1**self.t)
        bc2 = math.sqrt(1 - b2**self.t)
        for p, g, m, v, t in zip(self.params, grads, self.m, self.v, self.tmp):
            m *= b1
            np.multiply(g, 1 - b1, out=t)
            m += t
            v *= b2
            np.multiply(g, g, out=t)
            t *= 1 - b2
            v += t
            np.sqrt(v, out=t)
            t *= 1.0 / bc2
            t += self.eps
            np.divide(m, t, out=t)
            t *= -step_size
            p += t


def _ref_optimizer(spec: dict, params):
    if spec["type"] == "adam":
        return _RefAdam(params, spec["lr"])
    return _RefSGD(params, spec["lr"], spec.get("momentum", 0.0))


def _softmax_ce_(z: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
    """Cross-entropy of logits ``z`` (overwritten by dL/dz) against class ids ``y``."""
    n = len(z)
    z -= z.max(axis=1, keepdims=True)
    picked = z[rows, y]
    np.exp(z, out=z)
    s = z.sum(axis=1)
    z /= s[:, None]
    loss = float(np.log(s).sum() - picked.sum()) / n
    z[rows, y] -= 1.0
    z *= 1.0 / n
    return loss


class NumpyMLP(Contender):
    """Dense + activation chain with every per-batch-size buffer allocated once."""

    name = "numpy-ref"

    def __init__(self, w: Workload, ds: Dataset, batch: int, state: dict[str, np.ndarray]):
        names = [n["id"] for n in w.nodes if n["type"] == "Dense"]
        self.act = next(n["type"] for n in w.nodes if n["type"] not in ("Input", "Dense"))
        self.W = [state[f"{k}.weight"].copy() for k in names]
        self.b = [state[f"{k}.bias"].copy() for k in names]
        self.dW = [np.empty_like(a) for a in self.W]
        self.db = [np.empty_like(a) for a in self.b]
        self.opt = _ref_optimizer(w.optimizer, self.W + self.b)
        self.grads = self.dW + self.db
        self.data = _batches(ds.x_train, ds.y_train, batch)
        self.bufs: dict[int, tuple] = {}
        self._loss = math.nan

    def _buffers(self, n: int):
        buf = self.bufs.get(n)
        if buf is None:
            zs = [np.empty((n, w.shape[0]), np.float32) for w in self.W]
            gs = [np.empty((n, w.shape[1]), np.float32) for w in self.W[1:]]
            buf = self.bufs[n] = (zs, gs, np.arange(n))
        return buf

    def step(self) -> float:
        x, y = next(self.data)
        zs, gs, rows = self._buffers(len(x))
        W, b, act = self.W, self.b, self.act
        a = x
        last = len(W) - 1
        for i in range(len(W)):  # forward: a_i = act(a_{i-1} W^T + b), activations in place
            z = zs[i]
            np.matmul(a, W[i].T, out=z)
            z += b[i]
            if i < last:
                if act == "Tanh":
                    np.tanh(z, out=z)
                elif act == "ReLU":
                    np.maximum(z, 0, out=z)
                else:
                    np.negative(z, out=z)
                    np.exp(z, out=z)
                    z += 1.0
                    np.reciprocal(z, out=z)
            a = z
        loss = _softmax_ce_(zs[last], y, rows)
        g = zs[last]
        for i in range(last, -1, -1):  # backward
            a_prev = x if i == 0 else zs[i - 1]
            np.matmul(g.T, a_prev, out=self.dW[i])
            g.sum(axis=0, out=self.db[i])
            if i == 0:
                break
            gp = gs[i - 1]
            np.matmul(g, W[i], out=gp)
            if act == "Tanh":  # * (1 - a^2), with a overwritten as scratch
                np.multiply(a_prev, a_prev, out=a_prev)
                np.subtract(1.0, a_prev, out=a_prev)
                gp *= a_prev
            elif act == "ReLU":
                gp *= a_prev > 0
            else:  # * a (1 - a)
                gp *= a_prev
                np.subtract(1.0, a_prev, out=a_prev)
                gp *= a_prev
            g = gp
        self.opt.step(self.grads)
        return loss

    def run(self, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            loss = self.step()
        dt = time.perf_counter() - t0
        self._loss = loss
        return dt

    def loss(self) -> float:
        return self._loss


class NumpyCNN(Contender):
    """Workload E by hand: im2col convolutions into preallocated column buffers."""

    name = "numpy-ref"

    def __init__(self, w: Workload, ds: Dataset, batch: int, state: dict[str, np.ndarray]):
        self.W1, self.b1 = state["conv1.weight"].copy(), state["conv1.bias"].copy()
        self.W2, self.b2 = state["conv2.weight"].copy(), state["conv2.bias"].copy()
        self.W3, self.b3 = state["out.weight"].copy(), state["out.bias"].copy()
        self.params = [self.W1, self.b1, self.W2, self.b2, self.W3, self.b3]
        self.grads = [np.empty_like(p) for p in self.params]
        self.opt = _ref_optimizer(w.optimizer, self.params)
        self.data = _batches(ds.x_train, ds.y_train, batch)
        self.bufs: dict[int, dict] = {}
        self._loss = math.nan

    def _buffers(self, n: int) -> dict:
        b = self.bufs.get(n)
        if b is None:
            f = np.float32
            b = self.bufs[n] = {
                "xp1": np.zeros((n, 1, 30, 30), f), "cols1": np.empty((n, 9, 784), f),
                "y1": np.empty((n, 16, 784), f), "p1": np.empty((n, 16, 14, 14), f),
                "xp2": np.zeros((n, 16, 16, 16), f), "cols2": np.empty((n, 144, 196), f),
                "y2": np.empty((n, 32, 196), f), "p2": np.empty((n, 32, 7, 7), f),
                "z": np.empty((n, 10), f), "gflat": np.empty((n, 1568), f),
                "gy2": np.empty((n, 32, 196), f), "dcols2": np.empty((n, 144, 196), f),
                "dxp2": np.empty((n, 16, 16, 16), f), "gy1": np.empty((n, 16, 784), f),
                "tw1": np.empty((n, 16, 9), f), "tw2": np.empty((n, 32, 144), f),
                "rows": np.arange(n),
            }
        return b

    @staticmethod
    def _im2col(xp, cols, c, hw):
        """cols (N, C*9, H*W) <- the 3x3 windows of the padded input xp (N, C, H+2, W+2)."""
        n = xp.shape[0]
        s = xp.strides
        view = np.lib.stride_tricks.as_strided(
            xp, (n, c, 3, 3, hw, hw), (s[0], s[1], s[2], s[3], s[2], s[3]))
        np.copyto(cols.reshape(n, c, 3, 3, hw, hw), view)

    @staticmethod
    def _pool(y, out, c, hw):
        """2x2 max pool of y (N, C, H*W) into out (N, C, H/2, W/2): four element-wise maxima
        of strided slabs (numpy reduces tiny inner axes slowly). Returns the four winner
        masks (ties only occur at ReLU's zeros, whose gradient the ReLU mask drops)."""
        y4 = y.reshape(y.shape[0], c, hw, hw)
        slabs = [y4[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
        np.maximum(slabs[0], slabs[1], out=out)
        np.maximum(out, slabs[2], out=out)
        np.maximum(out, slabs[3], out=out)
        return [s == out for s in slabs]

    @staticmethod
    def _unpool(masks, g, gy, c, hw):
        """gy (N, C, H*W) <- g (N, C, H/2, W/2) routed to each window's winner."""
        gy4 = gy.reshape(gy.shape[0], c, hw, hw)
        for (i, j), m in zip(((0, 0), (0, 1), (1, 0), (1, 1)), masks):
            np.multiply(m, g, out=gy4[:, :, i::2, j::2])

    def step(self) -> float:
        x, y = next(self.data)
        n = len(x)
        b = self._buffers(n)
        # conv1 + ReLU + pool
        b["xp1"][:, :, 1:29, 1:29] = x
        self._im2col(b["xp1"], b["cols1"], 1, 28)
        y1 = b["y1"]
        np.matmul(self.W1.reshape(16, 9), b["cols1"], out=y1)
        y1 += self.b1[:, None]
        np.maximum(y1, 0, out=y1)
        m1 = self._pool(y1, b["p1"], 16, 28)
        # conv2 + ReLU + pool
        b["xp2"][:, :, 1:15, 1:15] = b["p1"]
        self._im2col(b["xp2"], b["cols2"], 16, 14)
        y2 = b["y2"]
        np.matmul(self.W2.reshape(32, 144), b["cols2"], out=y2)
        y2 += self.b2[:, None]
        np.maximum(y2, 0, out=y2)
        m2 = self._pool(y2, b["p2"], 32, 14)
        flat = b["p2"].reshape(n, 1568)
        z = b["z"]
        np.matmul(flat, self.W3.T, out=z)
        z += self.b3
        loss = _softmax_ce_(z, y, b["rows"])
        gW1, gb1, gW2, gb2, gW3, gb3 = self.grads
        # dense
        np.matmul(z.T, flat, out=gW3)
        z.sum(axis=0, out=gb3)
        np.matmul(z, self.W3, out=b["gflat"])
        # pool2 + ReLU2 backward: route to the window winners, masked by y2 > 0
        gy2 = b["gy2"]
        self._unpool(m2, b["gflat"].reshape(n, 32, 7, 7), gy2, 32, 14)
        gy2 *= y2 > 0
        np.matmul(gy2, b["cols2"].transpose(0, 2, 1), out=b["tw2"])
        b["tw2"].sum(axis=0, out=gW2.reshape(32, 144))
        gy2.sum(axis=(0, 2), out=gb2)
        # conv2 input gradient: col2im with 9 strided adds
        dcols = b["dcols2"]
        np.matmul(self.W2.reshape(32, 144).T, gy2, out=dcols)
        d6 = dcols.reshape(n, 16, 3, 3, 14, 14)
        dxp = b["dxp2"]
        dxp.fill(0)
        for i in range(3):
            for j in range(3):
                dxp[:, :, i:i + 14, j:j + 14] += d6[:, :, i, j]
        gp1 = dxp[:, :, 1:15, 1:15]
        gy1 = b["gy1"]
        self._unpool(m1, gp1, gy1, 16, 28)
        gy1 *= y1 > 0
        np.matmul(gy1, b["cols1"].transpose(0, 2, 1), out=b["tw1"])
        b["tw1"].sum(axis=0, out=gW1.reshape(16, 9))
        gy1.sum(axis=(0, 2), out=gb1)
        self.opt.step(self.grads)
        return loss

    run = NumpyMLP.run
    loss = NumpyMLP.loss


def _torch_module(nodes: list, torch):
    """An nn.Module running the node list as bplab does (chains and Add merges)."""
    from bplab.graph.plan import analyze

    nn = torch.nn
    plan = analyze({"nodes": nodes})

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.order = [n for n in plan.order if plan.nodes[n].type != "Input"]
            self.srcs = {n: plan.nodes[n].inputs for n in self.order}
            self.mods = nn.ModuleDict()
            for nid in self.order:
                node, cfg = plan.nodes[nid], plan.configs[nid]
                shape = plan.shapes[node.inputs[0]]
                t = node.type
                if t == "Dense":
                    m = nn.Linear(shape[0], cfg["units"])
                elif t == "Conv2D":
                    m = nn.Conv2d(shape[0], cfg["filters"], cfg["kernel_size"],
                                  cfg["stride"], cfg["padding"])
                elif t == "MaxPool2D":
                    m = nn.MaxPool2d(cfg["kernel_size"])
                elif t == "BatchNorm":
                    m = nn.BatchNorm1d(shape[0], eps=cfg["eps"], momentum=cfg["momentum"])
                elif t == "Dropout":
                    m = nn.Dropout(cfg["p"])
                elif t == "Flatten":
                    m = nn.Flatten()
                elif t == "Add":
                    m = None
                else:
                    m = getattr(nn, t)()
                if m is not None:
                    self.mods[nid] = m

        def forward(self, x):
            outs = {plan.input_id: x}
            for nid in self.order:
                ins = self.srcs[nid]
                if nid in self.mods:
                    outs[nid] = self.mods[nid](outs[ins[0]])
                else:
                    outs[nid] = outs[ins[0]] + outs[ins[1]]
            return outs[self.order[-1]]

    return Net()


class TorchContender(Contender):
    def __init__(self, w: Workload, ds: Dataset, batch: int, state: dict[str, np.ndarray],
                 device: str):
        import torch

        self.torch = torch
        self.device = device
        self.name = f"torch-{device}"
        model = _torch_module(w.nodes, torch)
        with torch.no_grad():
            for name, value in state.items():
                nid, pname = name.rsplit(".", 1)
                getattr(model.mods[nid], pname).copy_(torch.from_numpy(np.asarray(value)))
        self.model = model.to(device).train()
        spec = w.optimizer
        if spec["type"] == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=spec["lr"])
        else:
            self.opt = torch.optim.SGD(self.model.parameters(), lr=spec["lr"],
                                       momentum=spec.get("momentum", 0.0))
        self.x = torch.from_numpy(ds.x_train).to(device)
        self.y = torch.from_numpy(ds.y_train).to(device)
        self.batch = batch
        self.rng = np.random.default_rng(0)  # the Trainer's batch order
        self.xs, self.ys = torch.empty_like(self.x), torch.empty_like(self.y)
        self.pos = 0
        self._loss_t = None

    def _sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def run(self, n: int) -> float:
        torch = self.torch
        F = torch.nn.functional
        model, opt = self.model, self.opt
        total = len(self.x)
        self._sync()
        t0 = time.perf_counter()
        for _ in range(n):
            if self.pos == 0:
                idx = torch.from_numpy(self.rng.permutation(total)).to(self.x.device)
                torch.index_select(self.x, 0, idx, out=self.xs)
                torch.index_select(self.y, 0, idx, out=self.ys)
            s = self.pos
            self.pos = 0 if s + self.batch >= total else s + self.batch
            xb, yb = self.xs[s:s + self.batch], self.ys[s:s + self.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
        self._sync()
        dt = time.perf_counter() - t0
        self._loss_t = loss
        return dt

    def loss(self) -> float:
        return self._loss_t.item()


# -- machine ------------------------------------------------------------------------------------
def _torch():
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means "no torch here"
        return None
    return torch


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(), "numpy": np.__version__,
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
    }
    try:

        info["cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:

        info["cpus"] = os.cpu_count()
    blas = []
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                blas.append({k: lib.get(k) for k in (
                    "internal_api", "version", "architecture", "num_threads", "threading_layer",
                    "filepath")})
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        pass
    if not blas:
        try:
            cfg = np.show_config(mode="dicts")
            dep = cfg["Build Dependencies"]["blas"]
            blas.append({"internal_api": dep.get("name"), "version": dep.get("version")})
        except Exception:  # noqa: BLE001
            pass
    info["blas"] = blas

    info["env"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                              "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                   if k in os.environ}
    torch = _torch()
    info["torch"] = None if torch is None else torch.__version__
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["torch_cuda"] = bool(torch.cuda.is_available())
    cupy_backend, reason = cupy_status()
    info["cupy"] = cupy_backend.describe() if cupy_backend else None
    info["cupy_reason"] = reason
    return info


def blas_line(info: dict[str, Any]) -> str:
    if not info["blas"]:
        return "numpy BLAS: unknown"
    parts = []
    for b in info["blas"]:
        s = f"{b.get('internal_api')} {b.get('version')}"
        if b.get("architecture"):
            s += f" ({b['architecture']} kernel"
            s += f", {b['num_threads']} threads)" if b.get("num_threads") else ")"
        parts.append(s)
    env = ", ".join(f"{k}={v}" for k, v in info["env"].items()) or "no OPENBLAS_* overrides"
    return f"numpy BLAS: {'; '.join(parts)}; {env}"


# -- measuring ----------------------------------------------------------------------------------
def interleave(contenders: list[Contender], steps: int, warmup: int, repeats: int,
               batch: int) -> dict[str, list[float]]:
    """Samples/s of each contender per repeat, measured round-robin after a warm-up."""
    for c in contenders:
        c.run(warmup)
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    for _ in range(repeats):
        for c in contenders:
            dt = c.run(steps)
            rates[c.name].append(steps * batch / dt)
    return rates


def summarize(rates: list[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "repeats": len(rates)}


def peak_step_memory(step: Callable[[], Any], steps: int = 3) -> int:
    """Peak bytes traced above what was allocated before, over ``steps`` calls of ``step``."""
    step()  # buffers created lazily on the first call are not a per-step cost
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(steps):
            step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@dataclass
class Options:
    quick: bool
    repeats: int
    keys: list[str]
    backends: tuple[str, ...]  # "numpy", "cupy"
    batch: int | None
    torch: Any


def _contenders(w: Workload, ds: Dataset, batch: int, opts: Options) -> list[Contender]:
    out: list[Contender] = []
    state = None
    if "numpy" in opts.backends:
        b = BplabContender(w, ds, batch, "numpy")
        state = b.initial_state()
        out.append(b)
    if "cupy" in opts.backends:
        b = BplabContender(w, ds, batch, "cupy")
        state = state or b.initial_state()
        out.append(b)
    if "numpy" in opts.backends and w.reference == "mlp":
        out.append(NumpyMLP(w, ds, batch, state))
    elif "numpy" in opts.backends and w.reference == "cnn":
        out.append(NumpyCNN(w, ds, batch, state))
    if opts.torch is not None:
        if "numpy" in opts.backends:
            out.append(TorchContender(w, ds, batch, state, "cpu"))
        if "cupy" in opts.backends and opts.torch.cuda.is_available():
            out.append(TorchContender(w, ds, batch, state, "cuda"))
    return out


def bench_workload(w: Workload, opts: Options) -> dict[str, Any]:
    batch = opts.batch or w.batch
    samples = max(w.samples, 4 * batch) if w.data != "digits" else None
    ds = make_dataset(w, samples)
    batch = min(batch, len(ds.x_train))
    steps = w.quick_steps if opts.quick else w.steps
    warmup = 2 if opts.quick else w.warmup
    contenders = _contenders(w, ds, batch, opts)
    rates = interleave(contenders, steps, warmup, opts.repeats, batch)
    result: dict[str, Any] = {
        "key": w.key, "title": w.title, "batch": batch, "samples": len(ds.x_train),
        "steps_per_repeat": steps, "warmup_steps": warmup,
        "contenders": [
            {"name": c.name, "device": c.device, "samples_per_s": summarize(rates[c.name]),
             "loss": c.loss()}
            for c in contenders
        ],
    }
    med = {c["name"]: c["samples_per_s"]["median"] for c in result["contenders"]}
    ratios = {}
    for ours, theirs in (("bplab-numpy", "torch-cpu"), ("bplab-numpy", "numpy-ref"),
                         ("bplab-cupy", "torch-cuda"), ("bplab-cupy", "bplab-numpy")):
        if ours in med and theirs in med:
            ratios[f"{ours}/{theirs}"] = med[ours] / med[theirs]
    result["ratios"] = ratios
    return result


def bench_diagnostics(w: Workload, opts: Options) -> dict[str, Any]:
    """Throughput with diagnostics at their default cadence against none at all."""
    batch = opts.batch or w.batch
    ds = make_dataset(w, max(w.samples, 4 * batch) if w.data != "digits" else None)
    steps = max(w.quick_steps, 10) if opts.quick else 2 * DIAG_EVERY  # whole cadences
    on = BplabContender(w, ds, batch, "numpy", name="diagnostics-100")
    off = BplabContender(w, ds, batch, "numpy", name="diagnostics-off", diagnostics_every=0)
    rates = interleave([on, off], steps, 2 if opts.quick else w.warmup, opts.repeats, batch)
    on_m, off_m = statistics.median(rates[on.name]), statistics.median(rates[off.name])
    return {"key": w.key, "batch": batch, "steps_per_repeat": steps,
            "with": summarize(rates[on.name]), "without": summarize(rates[off.name]),
            "overhead": 1.0 - on_m / off_m}


class EngineCore(Contender):
    """The engine without the training loop around it: zero_grad, forward, loss, backward
    and the optimiser step on one batch, repeated. Set against ``Trainer.step`` on the same
    trainer, it splits a step's cost into the maths and the loop's bookkeeping (report,
    training metrics, divergence check, epoch-end validation and diagnosis)."""

    name = "engine-core"

    def __init__(self, trainer):
        self.trainer = trainer
        self.xb = trainer._x[: trainer.batch_size]  # the data as uploaded, first batch
        self.yb = trainer._y[: trainer.batch_size]

    def run(self, n: int) -> float:
        tr = self.trainer
        net, loss, opt, xb, yb = tr.network, tr.loss, tr.optimizer, self.xb, self.yb
        t0 = time.perf_counter()
        for _ in range(n):
            net.zero_grad()
            loss.forward(net.forward(xb, True), yb)
            net.backward(loss.backward())
            opt.step()
        return time.perf_counter() - t0


def bench_step_split(w: Workload, opts: Options) -> dict[str, Any]:
    """Microseconds per step of the engine core against the whole ``Trainer.step``."""
    batch = opts.batch or w.batch
    ds = make_dataset(w, max(w.samples, 4 * batch) if w.data != "digits" else None)
    whole = BplabContender(w, ds, batch, "numpy", name="trainer-step")
    core = EngineCore(whole.trainer)
    steps = max(w.quick_steps, 10) if opts.quick else w.steps
    rates = interleave([core, whole], steps, 2 if opts.quick else w.warmup, opts.repeats, batch)
    us = {name: batch / statistics.median(r) * 1e6 for name, r in rates.items()}
    return {"key": w.key, "batch": batch, "core_us": us[core.name],
            "step_us": us[whole.name], "bookkeeping": 1.0 - us[core.name] / us[whole.name]}


def bench_memory(w: Workload, opts: Options) -> dict[str, Any]:
    """Peak traced memory of a training step, bplab (diagnostics off and on) and numpy-ref."""
    batch = opts.batch or w.batch
    ds = make_dataset(w, max(w.samples, 4 * batch) if w.data != "digits" else None)
    b = BplabContender(w, ds, batch, "numpy", diagnostics_every=0)
    ref = NumpyMLP(w, ds, batch, b.initial_state())
    # one whole epoch first, so the epoch-end evaluation does not fall in the traced steps
    b.run(b.trainer.steps_per_epoch)
    ref.run(b.trainer.steps_per_epoch)
    out = {"key": w.key, "batch": batch,
           "bplab_step_bytes": peak_step_memory(b.trainer.step),
           "numpy_ref_step_bytes": peak_step_memory(ref.step)}
    # one sample's activations as the floor: what any engine must keep for backward
    return out


def _deep_sigmoid(width: int, depth: int) -> list:
    return _mlp(2, [width] * depth, "Sigmoid", 2)


def bench_checkpointing(opts: Options) -> dict[str, Any]:
    """Workload D widened to 512 units and 20 layers: memory and time with checkpointing."""
    base = WORKLOADS["D"]
    width, depth = 512, 20
    segments = 4
    batch = opts.batch or (32 if opts.quick else 256)
    nodes = _deep_sigmoid(width, depth)
    w = Workload("D512", f"2-({width} x {depth})-2 sigmoid, SGD, batch {batch}", nodes,
                 base.optimizer, batch, 128 * batch, "xor", 20, 3)
    ds = make_dataset(w)
    plain = BplabContender(w, ds, batch, "numpy", name="no checkpointing", diagnostics_every=0)
    ckpt = BplabContender(w, ds, batch, "numpy", name=f"checkpoint_segments={segments}",
                          diagnostics_every=0, checkpoint_segments=segments)
    mem = {c.name: peak_step_memory(c.trainer.step) for c in (plain, ckpt)}
    steps = 3 if opts.quick else w.steps
    rates = interleave([plain, ckpt], steps, 2 if opts.quick else 5, opts.repeats, batch)
    ms = {k: 1000.0 * batch / statistics.median(v) for k, v in rates.items()}
    return {
        "title": w.title, "segments": segments, "batch": batch,
        "activation_bytes_per_layer": batch * width * 4,
        "peak_step_bytes": {"without": mem[plain.name], "with": mem[ckpt.name]},
        "ms_per_step": {"without": ms[plain.name], "with": ms[ckpt.name]},
        "memory_ratio": mem[ckpt.name] / mem[plain.name],
        "time_ratio": ms[ckpt.name] / ms[plain.name],
        "losses": {"without": plain.loss(), "with": ckpt.loss()},
    }


# -- output -------------------------------------------------------------------------------------
def _fmt_rate(s: dict[str, float]) -> str:
    return f"{s['median']:>11,.0f}  ({s['min']:,.0f}-{s['max']:,.0f})"


def print_report(res: dict[str, Any], out=None) -> None:
    out = out or sys.stdout  # looked up per call: pytest's capsys swaps it
    m = res["machine"]

    def p(*a) -> None:
        print(*a, file=out)

    p(f"bplab bench: python {m['python']}, numpy {m['numpy']}, torch {m['torch'] or 'absent'}"
      f" ({m.get('torch_threads', '-')} threads), {m['cpus']} CPUs, {m['processor']}")
    p(blas_line(m))
    p(f"GPU: {m['cupy'] or 'none'}" + ("" if m["cupy"] else f" ({m['cupy_reason']})"))
    p(f"repeats: {res['repeats']} (median, min-max), interleaved round-robin after a warm-up;"
      f" samples/s = batch x steps / seconds{'; QUICK run' if res['quick'] else ''}")
    for r in res["workloads"]:
        p("")
        p(f"{r['key']}: {r['title']}  [batch {r['batch']}, {r['samples']} samples, "
          f"{r['steps_per_repeat']} steps per repeat]")
        p(f"  {'contender':<14}{'samples/s median (min-max)':>36}  {'loss after':>10}")
        for c in r["contenders"]:
            p(f"  {c['name']:<14}{_fmt_rate(c['samples_per_s']):>36}  {c['loss']:>10.4f}")
        if r["ratios"]:
            p("  " + "   ".join(f"{k} = {v:.2f}x" for k, v in r["ratios"].items()))
    if res.get("diagnostics"):
        p("")
        p("Diagnostics at their default cadence (every 100 steps) vs none:")
        for d in res["diagnostics"]:
            p(f"  {d['key']}: {d['with']['median']:,.0f} vs {d['without']['median']:,.0f} "
              f"samples/s -> overhead {100 * d['overhead']:.1f}%")
    if res.get("step_split"):
        p("")
        p("Where a step goes: the engine core (forward, loss, backward, optimiser)"
          " vs Trainer.step:")
        for d in res["step_split"]:
            p(f"  {d['key']}: core {d['core_us']:.1f} us, Trainer.step {d['step_us']:.1f} us "
              f"-> bookkeeping {100 * d['bookkeeping']:.0f}%")
    if res.get("memory"):
        p("")
        p("Peak traced memory of one training step (tracemalloc, above what existed before):")
        for d in res["memory"]:
            p(f"  {d['key']} (batch {d['batch']}): bplab {d['bplab_step_bytes'] / 1024:,.1f} KiB,"
              f" numpy-ref {d['numpy_ref_step_bytes'] / 1024:,.1f} KiB")
    ck = res.get("checkpointing")
    if ck:
        p("")
        p(f"Gradient checkpointing on {ck['title']} ({ck['segments']} segments):")
        pk, ms = ck["peak_step_bytes"], ck["ms_per_step"]
        p(f"  peak step memory: {pk['without'] / 2**20:.2f} MiB without, "
          f"{pk['with'] / 2**20:.2f} MiB with ({100 * ck['memory_ratio']:.0f}%)")
        p(f"  time per step:    {ms['without']:.2f} ms without, {ms['with']:.2f} ms with "
          f"({100 * (ck['time_ratio'] - 1):+.0f}%)")
        p(f"  losses after: {ck['losses']['without']:.5f} / {ck['losses']['with']:.5f}")


def run_bench(args: argparse.Namespace) -> int:
    quick = bool(getattr(args, "quick", False))
    keys = [k.strip().upper() for k in (getattr(args, "workloads", None) or "").split(",")
            if k.strip()] or list(WORKLOADS)
    bad = [k for k in keys if k not in WORKLOADS]
    if bad:
        raise ConfigError(f"bench: unknown workload {bad[0]!r}; choose from "
                          f"{', '.join(WORKLOADS)}")
    repeats = getattr(args, "repeats", None) or (2 if quick else 5)
    if repeats < 1:
        raise ConfigError(f"bench: repeats must be a positive integer, received {repeats!r}")
    batch = getattr(args, "batch", None)
    if batch is not None and batch < 1:
        raise ConfigError(f"bench: batch must be a positive integer, received {batch!r}")
    choice = getattr(args, "backend", "all") or "all"
    cupy_backend, reason = cupy_status()
    backends: tuple[str, ...]
    if choice == "numpy":
        backends = ("numpy",)
    elif choice == "cupy":
        if cupy_backend is None:
            print(f"bench: the cupy backend is unavailable here ({reason}); nothing to run",
                  file=sys.stderr)
            if getattr(args, "json", False):
                print(json.dumps({"skipped": reason}))
            return 0
        backends = ("cupy",)
    else:
        backends = ("numpy", "cupy") if cupy_backend is not None else ("numpy",)
    opts = Options(quick, repeats, keys, backends, batch, _torch())

    res: dict[str, Any] = {"machine": machine_info(), "quick": quick, "repeats": repeats,
                           "backends": list(backends), "workloads": []}
    for k in keys:
        res["workloads"].append(bench_workload(WORKLOADS[k], opts))
    if "numpy" in backends and batch is None:
        # The extra sections measure the CPU workloads as defined; with --batch (the GPU
        # comparison at batch 4096) they would take minutes and answer another question.
        extra = [k for k in ("A", "C") if k in keys]
        res["diagnostics"] = [bench_diagnostics(WORKLOADS[k], opts) for k in extra]
        res["step_split"] = [bench_step_split(WORKLOADS[k], opts)
                             for k in ("A", "D") if k in keys]
        res["memory"] = [bench_memory(WORKLOADS[k], opts) for k in extra]
        if "D" in keys:
            res["checkpointing"] = bench_checkpointing(
                Options(quick, repeats, keys, backends, None, opts.torch))
    if getattr(args, "json", False):
        print(json.dumps(res, indent=2, default=_json_default))
    else:
        print_report(res)
    return 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return to_host(obj).tolist()
    return str(obj)
