"""Hand-written numpy training loops: preallocated buffers, in-place updates, the same math.

They are the practical limit of numpy on a machine: what bplab's numpy engine is set against.
"""

from __future__ import annotations

import math
import time

import numpy as np

from bplab.bench.contenders.base import Contender
from bplab.bench.workloads import Workload
from bplab.datasets.base import Dataset


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
            # maximum(z, zeros): numpy vectorises it, not maximum(z, 0); a bias gradient is
            # ones @ g, which BLAS computes faster than the sum over the batch; and every
            # 2-D product is np.dot: matmul's gemm with less overhead per call
            buf = self.bufs[n] = (zs, gs, np.arange(n), [np.zeros_like(z) for z in zs],
                                  np.ones(n, np.float32))
        return buf

    def step(self) -> float:
        x, y = next(self.data)
        zs, gs, rows, zeros, ones = self._buffers(len(x))
        W, b, act = self.W, self.b, self.act
        a = x
        last = len(W) - 1
        for i in range(len(W)):  # forward: a_i = act(a_{i-1} W^T + b), activations in place
            z = zs[i]
            np.dot(a, W[i].T, out=z)
            z += b[i]
            if i < last:
                if act == "Tanh":
                    np.tanh(z, out=z)
                elif act == "ReLU":
                    np.maximum(z, zeros[i], out=z)
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
            np.dot(g.T, a_prev, out=self.dW[i])
            np.dot(ones, g, out=self.db[i])
            if i == 0:
                break
            gp = gs[i - 1]
            np.dot(g, W[i], out=gp)
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
    """Workload E by hand: im2col convolutions into preallocated column buffers, each ReLU
    on its max pool's output (they commute: a quarter of the values)."""

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
                "rows": np.arange(n), "ones": np.ones(n, f),  # sums over the batch: ones @ g
                "ones196": np.ones(196, f), "ones784": np.ones(784, f),
                # maximum(y, zeros): numpy vectorises it, not maximum(y, 0)
                "zero1": np.zeros((n, 16, 14, 14), f), "zero2": np.zeros((n, 32, 7, 7), f),
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
        masks, each window's first maximum only (torch's choice on ties)."""
        y4 = y.reshape(y.shape[0], c, hw, hw)
        slabs = [y4[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
        np.maximum(slabs[0], slabs[1], out=out)
        np.maximum(out, slabs[2], out=out)
        np.maximum(out, slabs[3], out=out)
        masks = [s == out for s in slabs]
        taken = masks[0].copy()
        for m in masks[1:]:
            m &= ~taken
            taken |= m
        return masks

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
        # conv1 + pool + ReLU
        b["xp1"][:, :, 1:29, 1:29] = x
        self._im2col(b["xp1"], b["cols1"], 1, 28)
        y1 = b["y1"]
        np.matmul(self.W1.reshape(16, 9), b["cols1"], out=y1)
        y1 += self.b1[:, None]
        m1 = self._pool(y1, b["p1"], 16, 28)
        np.maximum(b["p1"], b["zero1"], out=b["p1"])
        # conv2 + pool + ReLU
        b["xp2"][:, :, 1:15, 1:15] = b["p1"]
        self._im2col(b["xp2"], b["cols2"], 16, 14)
        y2 = b["y2"]
        np.matmul(self.W2.reshape(32, 144), b["cols2"], out=y2)
        y2 += self.b2[:, None]
        m2 = self._pool(y2, b["p2"], 32, 14)
        np.maximum(b["p2"], b["zero2"], out=b["p2"])
        flat = b["p2"].reshape(n, 1568)
        z = b["z"]
        np.dot(flat, self.W3.T, out=z)
        z += self.b3
        loss = _softmax_ce_(z, y, b["rows"])
        gW1, gb1, gW2, gb2, gW3, gb3 = self.grads
        # dense
        np.dot(z.T, flat, out=gW3)
        np.dot(b["ones"], z, out=gb3)
        np.dot(z, self.W3, out=b["gflat"])
        # ReLU2 + pool2 backward: masked by the pooled output > 0, routed to the winners
        gp2 = b["gflat"].reshape(n, 32, 7, 7)
        gp2 *= b["p2"] > 0
        gy2 = b["gy2"]
        self._unpool(m2, gp2, gy2, 32, 14)
        np.matmul(gy2, b["cols2"].transpose(0, 2, 1), out=b["tw2"])
        ones = b["ones"]  # sums over the batch (and positions) as products with ones
        np.dot(ones, b["tw2"].reshape(n, -1), out=gW2.reshape(-1))
        np.dot(np.dot(ones, gy2.reshape(n, -1)).reshape(32, 196), b["ones196"], out=gb2)
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
        gp1 *= b["p1"] > 0  # ReLU1, then pool1 backward
        gy1 = b["gy1"]
        self._unpool(m1, gp1, gy1, 16, 28)
        np.matmul(gy1, b["cols1"].transpose(0, 2, 1), out=b["tw1"])
        np.dot(ones, b["tw1"].reshape(n, -1), out=gW1.reshape(-1))
        np.dot(np.dot(ones, gy1.reshape(n, -1)).reshape(16, 784), b["ones784"], out=gb1)
        self.opt.step(self.grads)
        return loss

    run = NumpyMLP.run
    loss = NumpyMLP.loss
