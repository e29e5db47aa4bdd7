"""Per-coordinate step sizes from squared-gradient statistics: Adagrad and RMSprop."""

from __future__ import annotations

from bplab.optimizers.base import (
    MAXIMIZE,
    Hyper,
    Optimizer,
    effective_grad,
    eps_option,
    lerp_,
    lr_option,
    weight_decay_option,
)

__all__ = ["Adagrad", "RMSprop", "adagrad_update", "rmsprop_update"]


def adagrad_update(xp, param, g, state_sum, tmp, *, clr, eps):
    """``sum += g^2;  p -= clr * g / (sqrt(sum) + eps)`` in place."""
    xp.multiply(g, g, out=tmp)
    state_sum += tmp
    xp.sqrt(state_sum, out=tmp)
    tmp += eps
    xp.divide(g, tmp, out=tmp)
    tmp *= -clr
    param += tmp


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as torch.optim.Adagrad.

    With ``g = grad + weight_decay * p`` and the step count t = 1, 2, ...::

        clr = lr / (1 + (t - 1) * lr_decay)
        s  <- s + g^2                      (s starts at initial_accumulator_value)
        p  <- p - clr * g / (sqrt(s) + eps)
    """

    type_name = "adagrad"
    label = "Adagrad"
    options = (
        lr_option(1e-2),
        Hyper("lr_decay", "float", 0.0, doc="the step size is lr / (1 + (t - 1) * lr_decay)",
              low=0.0),
        weight_decay_option(),
        Hyper("initial_accumulator_value", "float", 0.0,
              doc="starting value of the sum of squared gradients", low=0.0),
        eps_option(1e-10),
        MAXIMIZE,
    )

    def _init_state(self, data, h):
        s = data.copy()
        s.fill(h["initial_accumulator_value"])
        return {"step": 0, "sum": s}

    def _update_all(self, xp, items, h):
        lr, lr_decay, eps = h["lr"], h["lr_decay"], h["eps"]
        wd, maximize = h["weight_decay"], h["maximize"]
        for p, st, (t1, t2) in items:
            st["step"] = step = st["step"] + 1
            g = effective_grad(xp, p.data, p.grad, t1, wd, maximize)
            adagrad_update(xp, p.data, g, st["sum"], t2,
                           clr=lr / (1 + (step - 1) * lr_decay), eps=eps)


def rmsprop_update(xp, param, g, square_avg, grad_avg, buf, tmp, *, lr, alpha, eps,
                   momentum):
    """One RMSprop step in place (``grad_avg`` None: not centered; ``buf`` None: no momentum).

    ``tmp`` must not alias ``g``."""
    square_avg *= alpha
    xp.multiply(g, g, out=tmp)
    tmp *= 1.0 - alpha
    square_avg += tmp
    if grad_avg is not None:
        lerp_(xp, grad_avg, g, 1.0 - alpha, tmp)
        xp.multiply(grad_avg, grad_avg, out=tmp)
        xp.subtract(square_avg, tmp, out=tmp)
        xp.sqrt(tmp, out=tmp)
    else:
        xp.sqrt(square_avg, out=tmp)
    tmp += eps
    xp.divide(g, tmp, out=tmp)
    if buf is not None:
        buf *= momentum
        buf += tmp
        xp.multiply(buf, -lr, out=tmp)
    else:
        tmp *= -lr
    param += tmp


class RMSprop(Optimizer):
    """RMSprop (Hinton), as torch.optim.RMSprop.

    With ``g = grad + weight_decay * p``::

        v  <- alpha * v + (1 - alpha) * g^2
        centered:  a <- alpha * a + (1 - alpha) * g;   d = sqrt(v - a^2) + eps
        else:      d = sqrt(v) + eps
        momentum > 0:  b <- momentum * b + g / d;   p <- p - lr * b
        else:          p <- p - lr * g / d
    """

    type_name = "rmsprop"
    label = "RMSprop"
    options = (
        lr_option(1e-2),
        Hyper("alpha", "float", 0.99, doc="smoothing constant of the squared-gradient average",
              low=0.0, high=1.0),
        eps_option(1e-8),
        weight_decay_option(),
        Hyper("momentum", "float", 0.0, doc="momentum factor", low=0.0),
        Hyper("centered", "bool", False, doc="normalise by the estimated variance of the "
              "gradient instead of its second moment"),
        MAXIMIZE,
    )

    def _init_state(self, data, h):
        zeros = data.copy()
        zeros.fill(0)
        st = {"step": 0, "square_avg": zeros}
        if h["momentum"] > 0:
            st["momentum_buffer"] = zeros.copy()
        if h["centered"]:
            st["grad_avg"] = zeros.copy()
        return st

    def _update_all(self, xp, items, h):
        lr, alpha, eps, momentum = h["lr"], h["alpha"], h["eps"], h["momentum"]
        wd, maximize, centered = h["weight_decay"], h["maximize"], h["centered"]
        for p, st, (t1, t2) in items:
            st["step"] += 1
            # momentum or centered switched on live: their buffers start at zero, as in torch
            if momentum > 0 and "momentum_buffer" not in st:
                st["momentum_buffer"] = xp.zeros_like(p.data)
            if centered and "grad_avg" not in st:
                st["grad_avg"] = xp.zeros_like(p.data)
            g = effective_grad(xp, p.data, p.grad, t1, wd, maximize)
            rmsprop_update(xp, p.data, g, st["square_avg"],
                           st["grad_avg"] if centered else None,
                           st["momentum_buffer"] if momentum > 0 else None, t2,
                           lr=lr, alpha=alpha, eps=eps, momentum=momentum)
