"""Fused CuPy kernels for the optimiser updates (one kernel per parameter per step).

On a GPU every array operation is a kernel launch costing microseconds of host time, so an
Adam step written as ~10 in-place operations per parameter is launch-bound on networks of
the size a lab trains. These ElementwiseKernels do the same arithmetic, in the same order,
in one launch each; the numpy path (and CuPy without these kernels) uses the readable
in-place functions in ``sgd.py`` and ``adam.py``, which are the reference the tests compare
against.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

__all__ = ["adam_step", "enabled", "sgd_step"]


def enabled(xp: Any) -> bool:
    """True when ``xp`` is CuPy (numpy keeps the reference implementation)."""
    return xp is not np and getattr(xp, "__name__", "") == "cupy"


@cache
def _sgd_kernel(momentum: bool, nesterov: bool):
    import cupy

    body = ["T g = (maximize ? -grad : grad);", "if (wd != 0) g += wd * param;"]
    if momentum:
        body += [
            "if (first) { buf = g; } else { buf = buf * mom; buf += g * (1 - damp); }",
            "T d = " + ("g + buf * mom;" if nesterov else "buf;"),
        ]
    else:
        body += ["T d = g;"]
    body += ["param += d * neg_lr;"]
    outs = "T param, T buf" if momentum else "T param"
    return cupy.ElementwiseKernel(
        "T grad, T neg_lr, T mom, T damp, T wd, int32 maximize, int32 first",
        outs,
        "\n".join(body),
        f"bplab_sgd_{int(momentum)}{int(nesterov)}",
    )


def sgd_step(param, grad, buf, *, lr, momentum, dampening, nesterov, weight_decay, maximize):
    """torch.optim.SGD's update in one launch; returns the momentum buffer (None without)."""
    first = 0
    if momentum != 0 and buf is None:
        buf = param.copy()  # written by the kernel: b_1 = g
        first = 1
    kernel = _sgd_kernel(momentum != 0, bool(nesterov))
    args = (grad, -lr, momentum, dampening, weight_decay, int(maximize), first)
    if momentum != 0:
        kernel(*args, param, buf)
    else:
        kernel(*args, param)
    return buf


@cache
def _adam_kernel(amsgrad: bool):
    import cupy

    body = [
        "if (decay != 1) param = param * decay;",
        "T g = (maximize ? -grad : grad);",
        "if (wd != 0) g += wd * param;",
        # torch's lerp_ rounding: start + w (end - start), or end - (1 - w)(end - start)
        "T w = 1 - beta1;",
        "m = (w < 0.5) ? m + (g - m) * w : g - (g - m) * (1 - w);",
        "v = v * beta2 + (g * g) * (1 - beta2);",
    ]
    if amsgrad:
        body += ["vmax = max(vmax, v);", "T vv = vmax;"]
    else:
        body += ["T vv = v;"]
    body += ["T denom = sqrt(vv) / bc2_sqrt + eps;", "param += (m / denom) * neg_step;"]
    outs = "T param, T m, T v" + (", T vmax" if amsgrad else "")
    return cupy.ElementwiseKernel(
        "T grad, T neg_step, T beta1, T beta2, T bc2_sqrt, T eps, T wd, T decay, int32 maximize",
        outs,
        "\n".join(body),
        f"bplab_adam_{int(amsgrad)}",
    )


def adam_step(
    param, grad, m, v, v_max, *, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize
):
    """torch.optim.Adam / AdamW's update in one launch (``v_max`` None: no AMSGrad)."""
    step_size = lr / (1 - beta1**step)
    bc2_sqrt = (1 - beta2**step) ** 0.5
    decay = 1 - lr * weight_decay if decoupled else 1.0
    wd = 0.0 if decoupled else weight_decay
    args = (grad, -step_size, beta1, beta2, bc2_sqrt, eps, wd, decay, int(maximize))
    if v_max is None:
        _adam_kernel(False)(*args, param, m, v)
    else:
        _adam_kernel(True)(*args, param, m, v, v_max)
