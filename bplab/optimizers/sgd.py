"""Stochastic gradient descent with momentum, dampening and Nesterov (torch.optim.SGD)."""

from __future__ import annotations

from bplab.errors import ConfigError
from bplab.optimizers import fused
from bplab.optimizers.base import (
    MAXIMIZE,
    Hyper,
    Optimizer,
    effective_grad,
    lr_option,
    weight_decay_option,
)

__all__ = ["SGD", "sgd_update"]


def sgd_update(xp, param, grad, buf, tmp1, tmp2, *, lr, momentum, dampening, nesterov,
               weight_decay, maximize):
    """One SGD step in place; returns the momentum buffer (a copy of g on the first step)."""
    g = effective_grad(xp, param, grad, tmp1, weight_decay, maximize)
    if momentum != 0:
        if buf is None:
            buf = g.copy()
        else:
            buf *= momentum
            if dampening == 0:
                buf += g
            else:
                xp.multiply(g, 1.0 - dampening, out=tmp2)
                buf += tmp2
        if nesterov:
            xp.multiply(buf, momentum, out=tmp2)
            tmp2 += g
            g = tmp2
        else:
            g = buf
    xp.multiply(g, -lr, out=tmp2)
    param += tmp2
    return buf


class SGD(Optimizer):
    """Stochastic gradient descent, as torch.optim.SGD.

    With ``g = grad + weight_decay * p`` (``-grad`` if ``maximize``)::

        b_1 = g;   b_t = momentum * b_{t-1} + (1 - dampening) * g      (if momentum != 0)
        g  <- g + momentum * b_t   if nesterov   else   b_t
        p  <- p - lr * g

    >>> opt = SGD([], lr=0.1, momentum=0.9, nesterov=True)
    """

    type_name = "sgd"
    label = "SGD"
    options = (
        lr_option(1e-3),
        Hyper("momentum", "float", 0.0, doc="momentum factor (0: plain SGD)", low=0.0),
        Hyper("dampening", "float", 0.0, doc="scales the new gradient in the momentum buffer "
              "by (1 - dampening)", low=0.0, high=1.0),
        weight_decay_option(),
        Hyper("nesterov", "bool", False, doc="Nesterov momentum (needs momentum > 0 and "
              "dampening 0)"),
        MAXIMIZE,
    )
    scalar_state = ()

    def check_hyper_together(self, h):
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ConfigError(
                "SGD: Nesterov momentum requires a momentum and zero dampening, received "
                f"momentum={h['momentum']!r}, dampening={h['dampening']!r}"
            )

    def _init_state(self, data, h):
        return {"momentum_buffer": None}

    def _update_all(self, xp, items, h):
        lr, momentum, dampening = h["lr"], h["momentum"], h["dampening"]
        nesterov, wd, maximize = h["nesterov"], h["weight_decay"], h["maximize"]
        if fused.enabled(xp):  # one kernel launch per parameter on a GPU
            for p, st, _ in items:
                st["momentum_buffer"] = fused.sgd_step(
                    p.data, p.grad, st["momentum_buffer"], lr=lr, momentum=momentum,
                    dampening=dampening, nesterov=nesterov, weight_decay=wd, maximize=maximize)
            return
        if momentum == 0 and wd == 0 and not maximize:
            # plain SGD, p += -lr * g, inlined: on a Playground-size network the calls of the
            # general path cost more than the arithmetic (same operations, same rounding)
            for p, _, (_, t2) in items:
                xp.multiply(p.grad, -lr, out=t2)
                p.data += t2
            return
        for p, st, (t1, t2) in items:
            buf = sgd_update(xp, p.data, p.grad, st["momentum_buffer"],
                             t1, t2, lr=lr, momentum=momentum, dampening=dampening,
                             nesterov=nesterov, weight_decay=wd, maximize=maximize)
            st["momentum_buffer"] = buf
