"""Gradient clipping, torch.nn.utils.clip_grad_norm_ / clip_grad_value_.

Only parameters whose ``has_grad`` is True take part (torch skips ``grad is None``).
Nothing here leaves the device: the total norm stays a 0-d array and the clip factor is
applied as one, so on CuPy a clipped step never waits for the GPU.

>>> import numpy as np
>>> from bplab.layers.base import Parameter
>>> p = Parameter("w", np.zeros(2)); p.add_grad(np.array([3.0, 4.0]))
>>> float(clip_grad_norm_([p], 1.0)), p.grad.round(6)
(5.0, array([0.6, 0.8]))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from bplab.backend import get_array_module
from bplab.errors import ConfigError
from bplab.layers.base import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_norm"]


def _grads(params: Iterable[Any]) -> list:
    """Gradients of the parameters that have one; accepts Parameters or (name, Parameter)."""
    out = []
    for p in params:
        if not isinstance(p, Parameter):
            p = p[1]
        if p.has_grad:
            out.append(p.grad)
    return out


def _check_norm_type(norm_type: float) -> float:
    norm_type = float(norm_type)
    if not (norm_type > 0 or norm_type == math.inf):
        raise ConfigError(f"clipping: norm_type must be > 0 or inf, received "
                          f"norm_type={norm_type!r}")
    return norm_type


def grad_norm(grads: list, norm_type: float = 2.0):
    """The ``norm_type``-norm of all ``grads`` taken as one vector, as a 0-d device array."""
    xp = get_array_module(grads[0])
    if norm_type == math.inf:
        total = xp.abs(grads[0]).max()
        for g in grads[1:]:
            total = xp.maximum(total, xp.abs(g).max())
        return xp.asarray(total)
    if norm_type == 2.0:
        # dot(g, g) reads the gradient once and allocates nothing (BLAS on the host)
        total = None
        for g in grads:
            flat = g.reshape(-1)
            s = xp.dot(flat, flat)
            total = s if total is None else total + s
        return xp.asarray(xp.sqrt(total))
    total = None
    for g in grads:
        s = (xp.abs(g) ** norm_type).sum()
        total = s if total is None else total + s
    return xp.asarray(total ** (1.0 / norm_type))


def clip_grad_norm_(params: Iterable[Any], max_norm: float, norm_type: float = 2.0):
    """Scale the gradients so their joint norm is at most ``max_norm``; return the norm
    they had, as a 0-d array on their device (torch.nn.utils.clip_grad_norm_)::

        total = || (g_1, ..., g_k) ||_norm_type
        g_i  <- g_i * min(1, max_norm / (total + 1e-6))
    """
    max_norm = float(max_norm)
    if not max_norm >= 0 or math.isnan(max_norm):
        raise ConfigError(f"clipping: max_norm must be >= 0, received max_norm={max_norm!r}")
    norm_type = _check_norm_type(norm_type)
    grads = _grads(params)
    if not grads:
        return np.asarray(0.0)
    xp = get_array_module(grads[0])
    total = grad_norm(grads, norm_type)
    # torch's 1e-6 keeps the factor finite for a zero norm; min(.., 1) never scales up
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= coef
    return total


def clip_grad_value_(params: Iterable[Any], clip_value: float) -> None:
    """Clip every gradient element into ``[-clip_value, clip_value]`` in place
    (torch.nn.utils.clip_grad_value_)."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ConfigError(f"clipping: clip_value must be >= 0, received "
                          f"clip_value={clip_value!r}")
    for g in _grads(params):
        get_array_module(g).clip(g, -clip_value, clip_value, out=g)
