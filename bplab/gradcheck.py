"""Float64 central-difference gradient checks for layers, losses and whole networks.

A float32 finite-difference check cannot tell a 1% bug from rounding noise, so every
check here runs in float64 (torch.autograd.gradcheck: eps 1e-6). The *relative error*
of a tensor is ``||analytic - numeric|| / max(||analytic||, ||numeric||, tiny)``.

For wide tensors, ``directions=k`` compares k random directional derivatives instead
of every element (JAX ``check_grads``): ``<grad, v>`` against
``(f(x + eps v) - f(x - eps v)) / 2 eps``.

>>> from bplab.layers.core import Dense
>>> report = gradcheck_layer(Dense("fc", units=3), np.random.default_rng(0).normal(size=(4, 5)))
>>> report.ok
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bplab.errors import ConfigError
from bplab.layers.base import BuildContext, Layer

__all__ = [
    "GradcheckReport",
    "gradcheck",
    "gradcheck_layer",
    "gradcheck_loss",
    "gradcheck_network",
]


@dataclass
class GradcheckReport:
    errors: dict[str, float] = field(default_factory=dict)  # relative error per tensor
    tol: float = 1e-6

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return bool(self.errors) and self.max_error < self.tol

    def __str__(self) -> str:
        if not self.errors:
            return "gradcheck FAILED (nothing was checked: the network has no parameters)"
        worst = sorted(self.errors.items(), key=lambda kv: -kv[1])[:5]
        rows = ", ".join(f"{k}: {v:.2e}" for k, v in worst)
        return (
            f"gradcheck {'passed' if self.ok else 'FAILED'} "
            f"(max relative error {self.max_error:.2e}; {rows})"
        )


def _rel(a: np.ndarray, n: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    n = np.asarray(n, dtype=np.float64).ravel()
    scale = max(np.linalg.norm(a), np.linalg.norm(n), 1e-12)
    return float(np.linalg.norm(a - n) / scale)


def gradcheck(
    f: Callable[[], float],
    tensors: dict[str, np.ndarray],
    analytic: Callable[[], dict[str, np.ndarray]],
    *,
    eps: float = 1e-6,
    tol: float = 1e-6,
    directions: int | None = None,
    seed: int = 0,
) -> GradcheckReport:
    """Compare ``analytic()`` with central differences of ``f``.

    ``tensors`` are float64 host arrays that ``f`` reads; they are perturbed in place and
    restored. ``analytic()`` returns dL/dtensor for each name, evaluated at the originals.
    """
    if directions is not None and (isinstance(directions, bool) or directions < 1):
        # zero directions would compare nothing and "pass"
        raise ConfigError(f"gradcheck: directions must be at least 1 (or None for every "
                          f"element), received {directions!r}")
    grads = {k: np.asarray(v, dtype=np.float64) for k, v in analytic().items()}
    report = GradcheckReport(tol=tol)
    rng = np.random.default_rng(seed)
    for name, x in tensors.items():
        if x.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 tensors; {name} is {x.dtype}")
        if directions is None:
            num = np.zeros_like(x)
            flat, nflat = x.reshape(-1), num.reshape(-1)
            for i in range(flat.size):
                orig = flat[i]
                flat[i] = orig + eps
                fp = f()
                flat[i] = orig - eps
                fm = f()
                flat[i] = orig
                nflat[i] = (fp - fm) / (2 * eps)
            report.errors[name] = _rel(grads[name], num)
        else:
            a_dirs, n_dirs = [], []
            for _ in range(directions):
                v = rng.normal(size=x.shape)
                orig = x.copy()
                x += eps * v
                fp = f()
                x[...] = orig - eps * v
                fm = f()
                x[...] = orig
                n_dirs.append((fp - fm) / (2 * eps))
                a_dirs.append(float(np.sum(grads[name] * v)))
            report.errors[name] = _rel(np.array(a_dirs), np.array(n_dirs))
    return report


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def gradcheck_layer(
    layer: Layer,
    inputs: Any,
    *,
    training: bool = True,
    before_forward: Callable[[], None] | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> GradcheckReport:
    """Check a layer's input and parameter gradients on float64 ``inputs``.

    The scalar checked is ``sum(layer(x) * R)`` with a fixed random ``R``, so every output
    element contributes. An unbuilt layer is built here in float64. ``before_forward`` runs
    before each forward (reseed a Dropout mask, for instance).
    """
    xs = [np.array(a, dtype=np.float64) for a in _as_list(inputs)]
    multi = isinstance(inputs, (list, tuple))
    ctx = BuildContext(np, np.float64, np.random.default_rng(seed))
    if getattr(layer, "_bplab_built", False) is False:
        layer.bind(ctx)
        layer.build([a.shape[1:] for a in xs], ctx)
        layer._bplab_built = True
    for p in layer.params.values():
        p.data = p.data.astype(np.float64)
        p.grad = p.grad.astype(np.float64)
    layer.need_input_grad = True

    def run():
        if before_forward is not None:
            before_forward()
        return layer.forward(xs if multi else xs[0], training)

    out = run()
    r = np.random.default_rng(seed + 1).normal(size=np.shape(out))
    layer.clear_cache()

    def f() -> float:
        y = run()
        layer.clear_cache()
        return float(np.sum(y * r))

    def analytic() -> dict[str, np.ndarray]:
        for p in layer.params.values():
            p.zero_grad()
        run()
        gin = layer.backward(r.copy())
        gins = _as_list(gin) if multi else [gin]
        out = {f"input{i}" if multi else "input": g for i, g in enumerate(gins)}
        for name, p in layer.params.items():
            out[name] = p.grad.copy() if p.has_grad else np.zeros_like(p.data)
        return out

    tensors = {(f"input{i}" if multi else "input"): a for i, a in enumerate(xs)}
    tensors.update({name: p.data for name, p in layer.params.items()})
    return gradcheck(f, tensors, analytic, seed=seed, **kwargs)


def gradcheck_loss(
    loss: Any, pred: np.ndarray, target: np.ndarray, **kwargs: Any
) -> GradcheckReport:
    """Check ``loss.backward()`` against differences of ``loss.forward(pred, target)``."""
    pred = np.array(pred, dtype=np.float64)

    def f() -> float:
        return float(loss.forward(pred, target))

    def analytic() -> dict[str, np.ndarray]:
        loss.forward(pred, target)
        return {"pred": np.array(loss.backward(), dtype=np.float64)}

    return gradcheck(f, {"pred": pred}, analytic, **kwargs)


def gradcheck_network(
    net: Any,
    loss: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    training: bool = True,
    check_input: bool = True,
    **kwargs: Any,
) -> GradcheckReport:
    """Check every parameter (and the input) of a float64 network under ``loss``."""
    from bplab.backend import to_host

    if net.dtype != np.float64:
        raise TypeError("gradcheck_network needs a network built with dtype='float64'")
    x = np.array(to_host(x), dtype=np.float64)
    net.require_input_grad = check_input

    def f() -> float:
        return float(loss.forward(net.forward(x, training), y))

    def analytic() -> dict[str, np.ndarray]:
        net.zero_grad()
        out = net.forward(x, training)
        loss.forward(out, y)
        gin = net.backward(loss.backward())
        grads = {
            name: (to_host(p.grad).copy() if p.has_grad else np.zeros(p.shape))
            for name, p in net.named_parameters()
        }
        if check_input:
            grads["input"] = to_host(gin)
        return grads

    tensors = {name: p.data for name, p in net.named_parameters()}
    if net.backend.name != "numpy":
        raise TypeError("gradcheck_network runs on the numpy backend")
    if check_input:
        tensors["input"] = x
    # Truncated BPTT is a deliberate approximation of the gradient: check the exact one.
    truncated = {layer: layer.bptt_steps for layer in net.layers.values()
                 if getattr(layer, "bptt_steps", None)}
    for layer in truncated:
        layer.bptt_steps = None
    try:
        return gradcheck(f, tensors, analytic, **kwargs)
    finally:
        net.require_input_grad = False
        for layer, steps in truncated.items():
            layer.bptt_steps = steps
