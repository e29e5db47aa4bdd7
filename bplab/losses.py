"""Loss functions with an explicit backward, torch semantics, mean reduction.

``loss.forward(pred, target)`` returns the loss as a 0-d array of pred's backend (never a
Python float: on a GPU that would wait for the device every step) and keeps what
``loss.backward()`` needs; ``backward()`` returns dL/dpred with pred's shape and dtype.

Classification losses take *logits* (BCEWithLogitsLoss, CrossEntropyLoss) and are written
with the log-sum-exp and softplus identities, so logits of +-1e4 give finite values.

>>> import numpy as np
>>> loss = make_loss("mse")
>>> float(loss.forward(np.array([1.0, 2.0]), np.array([1.0, 4.0])))
2.0
>>> loss.backward()
array([ 0., -2.])
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bplab import jit, kernels
from bplab.backend import get_array_module, summer
from bplab.errors import ShapeError
from bplab.optimizers.base import Hyper, check_hyper
from bplab.specs import resolve_spec

__all__ = [
    "LOSSES",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "L1Loss",
    "Loss",
    "MSELoss",
    "make_loss",
]


class Loss:
    """Base class. Subclasses set ``type_name``, ``label``, ``task``, ``options``,
    ``summary`` and ``math``, and implement :meth:`forward` and :meth:`backward`."""

    type_name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    task: ClassVar[str] = "regression"  # or "classification"
    options: ClassVar[tuple[Hyper, ...]] = ()
    summary: ClassVar[str] = ""
    math: ClassVar[str] = ""

    # The compiled kernels (bplab.jit) the Trainer hands a small numpy network's loss;
    # None: the numpy code. Only CrossEntropyLoss has one.
    jit: Any = None

    def __init__(self, **config: Any):
        self.config = check_hyper(self.label, self.options, config)
        for key, value in self.config.items():
            setattr(self, key, value)
        self._cache: Any = None

    def forward(self, pred, target):
        raise NotImplementedError

    def backward(self):
        raise NotImplementedError

    __call__ = forward

    def clear_cache(self) -> None:
        self._cache = None

    def _float_target(self, pred, target):
        """Target on pred's device, in pred's dtype and shape ((N,) is taken for (N, 1))."""
        xp = get_array_module(pred)
        target = xp.asarray(target)
        if target.dtype != pred.dtype:
            target = target.astype(pred.dtype)
        if target.shape != pred.shape:
            if target.size != pred.size:
                raise ShapeError(
                    f"{self.label}: the target has shape {tuple(target.shape)} but the "
                    f"prediction has shape {tuple(pred.shape)}"
                )
            # Never broadcast (N, 1) against (N,): that silently builds an N x N loss.
            target = target.reshape(pred.shape)
        return target

    def _take_cache(self):
        """What forward kept for backward, handed over once (backward frees it)."""
        cache, self._cache = self._cache, None
        if cache is None:
            raise RuntimeError(f"{self.label}: backward() needs a forward() first")
        return cache

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({cfg})"


class MSELoss(Loss):
    """Mean squared error, torch.nn.MSELoss: ``L = mean((p - t)^2)``, ``dL/dp = 2 (p - t) / n``.
    """

    type_name = "mse"
    label = "MSE"
    summary = "Mean of the squared differences between prediction and target."
    math = "L = mean((p - t)^2);  dL/dp = 2 (p - t) / n"

    def forward(self, pred, target):
        xp = get_array_module(pred)
        diff = pred - self._float_target(pred, target)
        self._cache = diff
        flat = diff.reshape(-1)
        return xp.asarray(xp.dot(flat, flat) / diff.size)

    def backward(self):
        diff = self._take_cache()
        diff *= 2.0 / diff.size
        return diff


class L1Loss(Loss):
    """Mean absolute error, torch.nn.L1Loss: ``L = mean|p - t|``, ``dL/dp = sign(p - t) / n``
    (0 where p == t, as torch)."""

    type_name = "l1"
    label = "L1"
    summary = "Mean of the absolute differences; less sensitive to outliers than MSE."
    math = "L = mean|p - t|;  dL/dp = sign(p - t) / n"

    def forward(self, pred, target):
        xp = get_array_module(pred)
        diff = pred - self._float_target(pred, target)
        self._cache = diff
        return xp.asarray(xp.abs(diff).mean())

    def backward(self):
        diff = self._take_cache()
        xp = get_array_module(diff)
        xp.sign(diff, out=diff)
        diff *= 1.0 / diff.size
        return diff


class HuberLoss(Loss):
    """Huber loss, torch.nn.HuberLoss. With ``d = p - t`` and ``c = clip(d, -delta, delta)``::

        l = 0.5 d^2                  if |d| < delta
            delta (|d| - 0.5 delta)  otherwise       (= c (d - c/2) in both cases)
        L = mean(l);   dL/dp = c / n
    """

    type_name = "huber"
    label = "Huber"
    options = (Hyper("delta", "float", 1.0, doc="where the loss turns from quadratic to "
                     "linear", low=0.0, low_open=True),)
    summary = "Squared error for small differences, absolute error for large ones."
    math = "l = 0.5 d^2 if |d| < delta else delta (|d| - delta/2);  dL/dp = clip(d, ±delta) / n"

    def forward(self, pred, target):
        xp = get_array_module(pred)
        d = pred - self._float_target(pred, target)
        c = xp.clip(d, -self.delta, self.delta)
        c *= 0.5
        d -= c  # d - c/2
        c *= 2.0
        self._cache = c
        return xp.asarray(xp.dot(c.reshape(-1), d.reshape(-1)) / d.size)

    def backward(self):
        c = self._take_cache()
        c *= 1.0 / c.size
        return c


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits, torch.nn.BCEWithLogitsLoss. With logits x, targets
    t in [0, 1] (the pred's shape; (N,) accepted for (N, 1))::

        l = max(x, 0) - x t + log(1 + exp(-|x|))      (= -t log s(x) - (1-t) log(1 - s(x)))
        L = mean(l);   dL/dx = (s(x) - t) / n,   s(x) = 1 / (1 + exp(-x))

    Both use ``e = exp(-|x|) <= 1``, so no exponential overflows and no log(0) occurs.
    """

    type_name = "binary_cross_entropy"
    label = "Binary cross-entropy"
    task = "classification"
    summary = "For yes/no targets: the network outputs one logit per sample (no sigmoid)."
    math = "L = mean(softplus(x) - x t);  dL/dx = (sigmoid(x) - t) / n"

    def forward(self, pred, target):
        xp = get_array_module(pred)
        t = self._float_target(pred, target)
        e = xp.abs(pred)
        e *= -1.0
        xp.exp(e, out=e)
        # softplus(x) - x t = max(x, 0) - x t + log1p(e)
        loss = xp.log1p(e)
        loss += xp.maximum(pred, 0)
        loss -= pred * t
        self._cache = (pred, t, e)
        return xp.asarray(loss.mean())

    def backward(self):
        x, t, e = self._take_cache()
        xp = get_array_module(x)
        # sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0
        s = e + 1.0
        xp.divide(1.0, s, out=s)
        s = xp.where(x >= 0, s, e * s)
        s -= t
        s *= 1.0 / s.size
        return s


class CrossEntropyLoss(Loss):
    """Cross-entropy on logits, torch.nn.CrossEntropyLoss. Logits x of shape (N, C),
    class indices y of shape (N,); with ``q = (1 - eps) onehot(y) + eps / C``::

        log p = x - logsumexp(x)           (row-wise, stable: the max is subtracted first)
        L = -mean_i sum_c q_ic log p_ic;   dL/dx = (softmax(x) - q) / N
    """

    type_name = "cross_entropy"
    label = "Cross-entropy"
    task = "classification"
    options = (Hyper("label_smoothing", "float", 0.0, doc="moves this much of the target "
                     "probability evenly over all classes", low=0.0, high=1.0),)
    summary = "For one-of-C classes: the network outputs C logits per sample (no softmax)."
    math = "L = mean(logsumexp(x) - x_y);  dL/dx = (softmax(x) - onehot(y)) / N"
    _rows = None  # arange(N) for the picked logits, reused while N stays the same

    def forward(self, pred, target, hits=None):
        """The mean loss; ``hits`` (a one-element float64 array of pred's backend), when
        given, gets the number of rows whose first argmax is the target added to it."""
        if type(pred) is np.ndarray:
            xp = np
        else:
            xp = get_array_module(pred)
        if pred.ndim != 2:
            raise ShapeError(f"{self.label}: expects logits of shape (batch, classes), "
                             f"received shape {tuple(pred.shape)}")
        n, c = pred.shape
        y = target if type(target) is type(pred) else xp.asarray(target)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(-1)
        if y.shape != (n,):
            raise ShapeError(f"{self.label}: expects class indices of shape ({n},), "
                             f"received shape {tuple(y.shape)}")
        if y.dtype.kind not in "iu":
            y = y.astype(xp.int64)
        if xp is not np and kernels.fusable(pred):  # CuPy: loss, gradient and hits at once
            loss, g = kernels.softmax_cross_entropy(pred, y, self.label_smoothing, hits)
            self._cache = (g, None, None)
            return loss
        if self.jit is not None and xp is np and pred.dtype in jit.DTYPES:
            # compiled (bplab.jit): the same in one pass instead of eleven calls; a class id
            # out of range (-1 hits) takes the numpy code below, which names the error
            g = np.empty(pred.shape, pred.dtype)
            loss, n_hits = self.jit.cross_entropy(pred, y, self.label_smoothing, g)
            if n_hits >= 0:
                if hits is not None:
                    hits[0] += n_hits
                self._cache = (g, None, None)
                return np.asarray(loss, pred.dtype)
        if hits is not None:
            if xp is np:  # a Python int: no array temporaries on a small batch
                hits[0] += np.count_nonzero(pred.argmax(axis=1) == y)
            else:
                hits += (pred.argmax(axis=1) == y).sum()
        # numpy: the ufuncs' reduce directly, as ndarray.max/sum add a Python wrapper per
        # call that a Playground-size batch pays more for than for the arithmetic (the same
        # reductions, the same results)
        rsum = summer(xp)
        z = pred - (np.maximum.reduce(pred, axis=1, keepdims=True) if xp is np
                    else pred.max(axis=1, keepdims=True))
        rows = self._rows
        if rows is None or len(rows) != n or get_array_module(rows) is not xp:
            rows = self._rows = xp.arange(n)  # kept: a fresh arange per step is a waste
        eps = self.label_smoothing
        # sum_c q_c (lse - z_c) = lse - (1 - eps) z_y - eps/C sum_c z_c
        picked = z[rows, y]
        if eps:  # (x * 1.0 is x, bit for bit: skipped)
            picked *= 1.0 - eps
            picked += rsum(z, axis=1) * (eps / c)
        xp.exp(z, out=z)
        s = rsum(z, axis=1)
        z /= s[:, None]  # softmax, kept for backward
        lse = xp.log(s, out=s)
        lse -= picked
        self._cache = (z, y, rows)
        # sum / n is what mean() computes, without its Python-level wrapper
        return xp.asarray(rsum(lse, axis=None) / n)

    def backward(self):
        g, y, rows = self._take_cache()
        if y is None:  # the fused forward made the gradient
            return g
        n, c = g.shape
        eps = self.label_smoothing
        g[rows, y] -= 1.0 - eps
        if eps:
            g -= eps / c
        g *= 1.0 / n
        return g


LOSSES: dict[str, type[Loss]] = {
    cls.type_name: cls
    for cls in (MSELoss, L1Loss, HuberLoss, BCEWithLogitsLoss, CrossEntropyLoss)
}


def make_loss(spec: str | dict[str, Any]) -> Loss:
    """Build a loss from ``"mse"`` or ``{"type": "huber", "delta": 0.5}``."""
    cls, config = resolve_spec(spec, LOSSES, "loss")
    return cls(**config)
