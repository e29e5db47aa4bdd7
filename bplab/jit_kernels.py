"""The compiled CPU kernels that :mod:`bplab.jit` hands to layers and losses (numba).

Importing this module imports numba (a quarter of a second): :func:`bplab.jit.kernels`
does it on first need. Each function does in one pass what the numpy code beside it does
in several calls, in the same order of operations where that order decides a rounding:

* the element-wise gradients are bit for bit those of the numpy code (no fast-math: no
  reassociation, no fused multiply-add), so a run with and without the kernels gives the
  same weights;
* the cross-entropy's exponentials and sums round differently from numpy's vectorised ones
  (libm's ``exp``, a float64 sum instead of a pairwise one), within float rounding of it:
  the tests hold it to the numpy path and to PyTorch.

Every array a kernel writes is C-contiguous (the callers allocate them so); the arrays it
reads may be any layout. Kernels take and return arrays of the caller's dtype (float32 or
float64): numba compiles one version per dtype, cached on disk after the first run.
"""

from __future__ import annotations

import math

import numba

__all__ = ["cross_entropy", "dense_backward", "dense_forward", "sigmoid_backward", "tanh_backward"]

# nogil: the app trains on a worker thread; error_model "numpy": 1/0 is inf, not an exception
_kernel = numba.njit(cache=True, nogil=True, error_model="numpy")


@_kernel
def tanh_backward(y, grad, out):  # pragma: no cover - compiled
    """out = (1 - y^2) grad, as Tanh.backward's three numpy calls round it."""
    yf, gf, of = y.ravel(), grad.ravel(), out.ravel()
    one = yf.dtype.type(1.0)  # a float literal would compute float32 in float64
    for i in range(of.size):
        d = yf[i] * yf[i]
        d = one - d
        of[i] = d * gf[i]


@_kernel
def sigmoid_backward(y, grad, out):  # pragma: no cover - compiled
    """out = (1 - y) y grad, as Sigmoid.backward's three numpy calls round it."""
    yf, gf, of = y.ravel(), grad.ravel(), out.ravel()
    one = yf.dtype.type(1.0)
    for i in range(of.size):
        d = one - yf[i]
        d = d * yf[i]
        of[i] = d * gf[i]


@_kernel
def cross_entropy(z, y, smoothing, g):  # pragma: no cover - compiled
    """Softmax cross-entropy of logits ``z`` (N, C) against class ids ``y`` with label
    smoothing ``smoothing``: returns (mean loss, rows whose first argmax is the target) and
    writes dL/dz into ``g``; (nan, -1), with nothing written, when a class id is out of
    range. The arithmetic of :class:`bplab.losses.CrossEntropyLoss`, one row at a time: the
    max subtracted, exp, sum, log; the gradient ``(softmax - q) / N``."""
    n, c = z.shape
    for i in range(n):
        if y[i] < 0 or y[i] >= c:  # the caller's numpy code raises the error
            return math.nan, -1
    inv_n = 1.0 / n
    keep = 1.0 - smoothing
    spread = smoothing / c
    total = 0.0
    hits = 0
    for i in range(n):
        mx = z[i, 0]
        arg = 0
        for j in range(1, c):
            v = z[i, j]
            # numpy's argmax: the first maximum, and the first NaN over any number
            if v > mx or (v != v and mx == mx):
                mx, arg = v, j
        t = y[i]
        hits += arg == t
        s = 0.0
        for j in range(c):
            e = math.exp(z[i, j] - mx)
            g[i, j] = e
            s += e
        picked = keep * (z[i, t] - mx)
        if smoothing:
            zs = 0.0
            for j in range(c):
                zs += z[i, j] - mx
            picked += zs * spread
        total += math.log(s) - picked
        for j in range(c):
            g[i, j] = g[i, j] / s
        g[i, t] -= keep
        for j in range(c):
            if smoothing:
                g[i, j] -= spread
            g[i, j] *= inv_n
    return total * inv_n, hits


@_kernel
def dense_forward(x, w, b, y):  # pragma: no cover - compiled
    """y = x W^T + b for a 2-D batch ``x`` (N, in), ``w`` (out, in): one call in place of
    numpy's product and bias add. Worth it only on tiny layers (see bplab.jit)."""
    n, k = x.shape
    m = w.shape[0]
    for i in range(n):
        for j in range(m):
            s = 0.0
            for t in range(k):
                s += x[i, t] * w[j, t]
            y[i, j] = s + b[j]


@_kernel
def dense_backward(g, x, w, dw, db, dx):  # pragma: no cover - compiled
    """dW = g^T x, db = sum over the batch of g and (``dx`` not None) dx = g W, written
    (not added) in one pass over g: one call in place of three products."""
    n, k = x.shape
    m = w.shape[0]
    dw[:, :] = 0.0
    db[:] = 0.0
    if dx is not None:
        dx[:, :] = 0.0
    for i in range(n):
        for j in range(m):
            gij = g[i, j]
            db[j] += gij
            for t in range(k):
                dw[j, t] += gij * x[i, t]
            if dx is not None:
                for t in range(k):
                    dx[i, t] += gij * w[j, t]
