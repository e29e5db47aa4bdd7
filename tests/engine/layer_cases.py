"""One declarative case per layer configuration: random input shapes and a plain-numpy reference.

Shared by test_layers.py (references, gradcheck) and test_layers_torch.py (PyTorch).
Inputs are drawn away from kinks: |x| >= 0.1 for ReLU-likes, distinct values for max-pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_erf = np.vectorize(math.erf)


@dataclass
class Case:
    id: str
    type: str
    config: dict[str, Any]
    shapes: Callable[[np.random.Generator], list[tuple[int, ...]]]
    reference: Callable[..., np.ndarray]  # reference(xs, params, config) -> y
    draw: str = "away"  # "away": |x| >= 0.1; "distinct": well-separated values (max-pool)
    extra: dict[str, Any] = field(default_factory=dict)

    def inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        xs = []
        for shape in self.shapes(rng):
            if self.draw == "distinct":
                n = int(np.prod(shape))
                # a permutation of a grid spaced 0.05 apart: no ties, no near-ties
                x = (rng.permutation(n) - n / 2) * 0.05
                xs.append(x.reshape(shape))
            else:
                x = rng.normal(size=shape)
                xs.append(x + np.where(x >= 0, 0.1, -0.1))
        return xs


def _batch(rng) -> int:
    return int(rng.integers(2, 5))


def _flat(rng):
    return [(_batch(rng), int(rng.integers(2, 7)))]


def _image(rng, c=None, lo=4, hi=8):
    c = int(rng.integers(1, 4)) if c is None else c
    return [(_batch(rng), c, int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))]


def _pad(x, p, value=0.0):
    return np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=value)


def conv_ref(xs, params, cfg):
    """Direct sum over each window, group by group (torch's Conv2d, cross-correlation)."""
    (x,) = xs
    w = params["weight"]
    f, cg, kh, kw = w.shape
    groups = cfg.get("groups", 1)
    fg = f // groups
    assert cg * groups == x.shape[1]
    sh, sw = _pair(cfg.get("stride", 1))
    dh, dw = _pair(cfg.get("dilation", 1))
    xp = _pad(x, _pair(cfg.get("padding", 0)))
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((x.shape[0], f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            # the window's taps, dilation apart: (N, C, kh, kw)
            patch = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                       j * sw:j * sw + dw * (kw - 1) + 1:dw]
            for g in range(groups):
                y[:, g * fg:(g + 1) * fg, i, j] = np.einsum(
                    "nchw,fchw->nf", patch[:, g * cg:(g + 1) * cg], w[g * fg:(g + 1) * fg])
    if "bias" in params:
        y += params["bias"][None, :, None, None]
    return y


def pool_ref(kind):
    def ref(xs, params, cfg):
        (x,) = xs
        kh, kw = _pair(cfg.get("kernel_size", 2))
        sh, sw = _pair(cfg.get("stride") or (kh, kw))
        p = _pair(cfg.get("padding", 0))
        xp = _pad(x, p, -np.inf if kind == "max" else 0.0)
        real = _pad(np.ones_like(x), p)
        ho = (xp.shape[2] - kh) // sh + 1
        wo = (xp.shape[3] - kw) // sw + 1
        y = np.zeros(x.shape[:2] + (ho, wo))
        for i in range(ho):
            for j in range(wo):
                win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                if kind == "max":
                    y[:, :, i, j] = win.max(axis=(2, 3))
                elif cfg.get("count_include_pad", True):
                    y[:, :, i, j] = win.mean(axis=(2, 3))
                else:
                    count = real[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].sum(axis=(2, 3))
                    y[:, :, i, j] = win.sum(axis=(2, 3)) / count
        return y
    return ref


def batchnorm_ref(xs, params, cfg):
    (x,) = xs
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + cfg.get("eps", 1e-5))
    if "weight" in params:
        return xhat * params["weight"].reshape(shape) + params["bias"].reshape(shape)
    return xhat


def layernorm_ref(xs, params, cfg):
    (x,) = xs
    axes = tuple(range(1, x.ndim))
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + cfg.get("eps", 1e-5))
    if "weight" in params:
        return xhat * params["weight"] + params["bias"]
    return xhat


def softmax_ref(xs, params, cfg):
    (x,) = xs
    e = np.exp(x - x.max(axis=cfg.get("dim", -1), keepdims=True))
    return e / e.sum(axis=cfg.get("dim", -1), keepdims=True)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _one(f):
    return lambda xs, params, cfg: f(xs[0], cfg)


CASES = [
    Case("relu", "ReLU", {}, _flat, _one(lambda x, c: np.maximum(x, 0))),
    Case("leaky_relu", "LeakyReLU", {"negative_slope": 0.2}, _image,
         _one(lambda x, c: np.where(x > 0, x, 0.2 * x))),
    Case("elu", "ELU", {"alpha": 1.5}, _flat,
         _one(lambda x, c: np.where(x > 0, x, 1.5 * (np.exp(x) - 1)))),
    Case("gelu", "GELU", {}, _flat, _one(lambda x, c: x * 0.5 * (1 + _erf(x / math.sqrt(2))))),
    Case("gelu_tanh", "GELU", {"approximate": "tanh"}, _flat,
         _one(lambda x, c: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                   * (x + 0.044715 * x**3))))),
    Case("silu", "SiLU", {}, _flat, _one(lambda x, c: x / (1 + np.exp(-x)))),
    Case("sigmoid", "Sigmoid", {}, _image, _one(lambda x, c: 1 / (1 + np.exp(-x)))),
    Case("tanh", "Tanh", {}, _flat, _one(lambda x, c: np.tanh(x))),
    Case("softplus", "Softplus", {"beta": 2.0, "threshold": 1.0}, _flat,
         _one(lambda x, c: np.where(2 * x > 1.0, x, np.log1p(np.exp(2 * x)) / 2))),
    Case("softmax", "Softmax", {}, _flat, softmax_ref),
    Case("softmax_dim1", "Softmax", {"dim": 1}, lambda r: _image(r, c=3), softmax_ref),
    Case("identity", "Identity", {}, _flat, _one(lambda x, c: x)),
    Case("conv", "Conv2D", {"filters": 3}, _image, conv_ref),
    Case("conv_strided_padded", "Conv2D",
         {"filters": 2, "kernel_size": (2, 3), "stride": (2, 1), "padding": (1, 2)},
         _image, conv_ref),
    Case("conv_1x1_nobias", "Conv2D", {"filters": 4, "kernel_size": 1, "bias": False},
         _image, conv_ref),
    Case("conv_dilated", "Conv2D", {"filters": 3, "dilation": 2, "padding": 1},
         lambda r: _image(r, lo=5, hi=9), conv_ref),
    Case("conv_dilated_strided", "Conv2D",
         {"filters": 2, "kernel_size": (2, 3), "stride": (2, 1), "padding": (0, 1),
          "dilation": (3, 2)}, lambda r: _image(r, lo=6, hi=10), conv_ref),
    Case("conv_groups2", "Conv2D", {"filters": 4, "groups": 2, "padding": 1},
         lambda r: _image(r, c=4), conv_ref),
    Case("conv_depthwise", "Conv2D",
         {"filters": 3, "groups": 3, "stride": 2, "padding": 1},
         lambda r: _image(r, c=3), conv_ref),
    Case("conv_depthwise_x2_dilated", "Conv2D",
         {"filters": 6, "groups": 3, "kernel_size": (3, 2), "stride": (1, 2),
          "padding": (2, 1), "dilation": (2, 3), "bias": False},
         lambda r: _image(r, c=3, lo=5, hi=9), conv_ref),
    Case("maxpool", "MaxPool2D", {}, _image, pool_ref("max"), draw="distinct"),
    Case("maxpool_overlap_pad", "MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1},
         _image, pool_ref("max"), draw="distinct"),
    Case("avgpool", "AvgPool2D", {"kernel_size": 2}, _image, pool_ref("avg")),
    Case("avgpool_pad", "AvgPool2D", {"kernel_size": 3, "stride": (2, 1), "padding": 1},
         _image, pool_ref("avg")),
    Case("avgpool_pad_exclusive", "AvgPool2D",
         {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
         _image, pool_ref("avg")),
    Case("global_avg_pool", "GlobalAvgPool", {}, _image,
         _one(lambda x, c: x.mean(axis=(2, 3)))),
    Case("batchnorm_1d", "BatchNorm", {}, lambda r: [(int(r.integers(3, 7)),
                                                      int(r.integers(2, 6)))], batchnorm_ref),
    Case("batchnorm_2d", "BatchNorm", {"eps": 1e-3}, _image, batchnorm_ref),
    Case("batchnorm_no_affine", "BatchNorm", {"affine": False}, _image, batchnorm_ref),
    Case("layernorm", "LayerNorm", {}, _image, layernorm_ref),
    Case("layernorm_flat_no_affine", "LayerNorm", {"elementwise_affine": False}, _flat,
         layernorm_ref),
    Case("add", "Add", {}, lambda r: _image(r) * 3,
         lambda xs, p, c: xs[0] + xs[1] + xs[2]),
    Case("concat", "Concat", {},
         lambda r: [(3, 2, 4, 5), (3, int(r.integers(1, 4)), 4, 5)],
         lambda xs, p, c: np.concatenate(xs, axis=1)),
    Case("concat_last", "Concat", {"dim": -1}, lambda r: [(3, 4), (3, int(r.integers(1, 5)))],
         lambda xs, p, c: np.concatenate(xs, axis=-1)),
]



# -- recurrent layers: torch's equations written out step by step --------------------------
def _sig(a):
    return 1 / (1 + np.exp(-a))


def recurrent_ref(kind):
    """Reference forward of RNN/LSTM/GRU (torch's equations, zero initial states).

    ``starts`` (optional) maps a step t to the (h, c) state to use as h_(t-1) instead of the
    computed one: a truncated-BPTT chunk starting from a state frozen as a constant.
    ``shift`` (optional, (batch, time, hidden)) is added to each h_t as it is made: the
    derivative with respect to it is dL/dh_t.
    """
    def ref(xs, params, cfg, starts=None, shift=None):
        (x,) = xs
        hsz = cfg["hidden_size"]
        w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
        b_ih = params.get("bias_ih_l0", np.zeros(w_ih.shape[0]))
        b_hh = params.get("bias_hh_l0", np.zeros(w_ih.shape[0]))
        n, t_len, _ = x.shape
        h, c = np.zeros((n, hsz)), np.zeros((n, hsz))
        out = []
        for t in range(t_len):
            if starts is not None and t in starts:
                h, c = starts[t]
            gi = x[:, t] @ w_ih.T + b_ih
            gh = h @ w_hh.T + b_hh
            if kind == "rnn":
                a = gi + gh
                h = np.maximum(a, 0) if cfg.get("nonlinearity") == "relu" else np.tanh(a)
            elif kind == "lstm":
                i, f, g, o = np.split(gi + gh, 4, axis=1)
                c = _sig(f) * c + _sig(i) * np.tanh(g)
                h = _sig(o) * np.tanh(c)
            else:
                r = _sig(gi[:, :hsz] + gh[:, :hsz])
                z = _sig(gi[:, hsz:2 * hsz] + gh[:, hsz:2 * hsz])
                nn = np.tanh(gi[:, 2 * hsz:] + r * gh[:, 2 * hsz:])
                h = (1 - z) * nn + z * h
            if shift is not None:
                h = h + shift[:, t]
            out.append(h)
        return np.stack(out, axis=1) if cfg.get("return_sequences") else out[-1]
    return ref


def _sequence(rng):
    return [(_batch(rng), int(rng.integers(1, 7)), int(rng.integers(1, 4)))]


CASES += [
    Case("rnn_tanh", "RNN", {"hidden_size": 3}, _sequence, recurrent_ref("rnn")),
    Case("rnn_relu_seq", "RNN", {"hidden_size": 4, "nonlinearity": "relu",
                                 "return_sequences": True}, _sequence, recurrent_ref("rnn")),
    Case("lstm", "LSTM", {"hidden_size": 3}, _sequence, recurrent_ref("lstm")),
    Case("lstm_seq_nobias", "LSTM", {"hidden_size": 2, "bias": False, "return_sequences": True},
         _sequence, recurrent_ref("lstm")),
    Case("gru", "GRU", {"hidden_size": 3}, _sequence, recurrent_ref("gru")),
    Case("gru_seq", "GRU", {"hidden_size": 4, "return_sequences": True}, _sequence,
         recurrent_ref("gru")),
    Case("dense_on_sequence", "Dense", {"units": 3}, _sequence,
         lambda xs, p, c: xs[0] @ p["weight"].T + p["bias"]),
]
