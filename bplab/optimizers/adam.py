"""Adam and its relatives: AdamW (decoupled weight decay), NAdam (Nesterov) and Lion (sign)."""

from __future__ import annotations

from bplab.optimizers import fused
from bplab.optimizers.base import (
    MAXIMIZE,
    Hyper,
    Optimizer,
    betas_option,
    effective_grad,
    eps_option,
    lerp_,
    lr_option,
    weight_decay_option,
)

__all__ = ["Adam", "AdamW", "Lion", "NAdam", "adam_update", "lion_update", "nadam_update"]

BETAS_DOC = "decay rates of the running averages of the gradient and of its square"
DECOUPLED_DOC = "decoupled weight decay: p <- p * (1 - lr * weight_decay) before the update"


def _moments(xp, g, m, v, tmp, beta1, beta2) -> None:
    """``m <- lerp(m, g, 1 - beta1);  v <- beta2 * v + (1 - beta2) * g^2`` (torch's order)."""
    lerp_(xp, m, g, 1.0 - beta1, tmp)
    v *= beta2
    xp.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp


def decayed_grad(xp, p, tmp, *, lr, weight_decay, decoupled, maximize):
    """The gradient an Adam-family update uses, after weight decay as torch applies it:
    decoupled (``p <- p (1 - lr wd)``, AdamW) or added to the gradient (``g + wd p``)."""
    if decoupled:
        if weight_decay != 0:
            p.data *= 1 - lr * weight_decay
        return effective_grad(xp, p.data, p.grad, tmp, 0.0, maximize)
    return effective_grad(xp, p.data, p.grad, tmp, weight_decay, maximize)


def _max_exp_avg_sq(xp, st, p):
    """AMSGrad's running maximum, created on first use (amsgrad may be switched on live)."""
    v_max = st.get("max_exp_avg_sq")
    if v_max is None:
        v_max = st["max_exp_avg_sq"] = xp.zeros_like(p.data)
    return v_max


def adam_update(xp, param, g, m, v, v_max, tmp, *, step, lr, beta1, beta2, eps):
    """One Adam step in place (``v_max`` None: no AMSGrad). ``tmp`` must not alias ``g``."""
    _moments(xp, g, m, v, tmp, beta1, beta2)
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    if v_max is not None:
        xp.maximum(v_max, v, out=v_max)
        v = v_max
    xp.sqrt(v, out=tmp)
    tmp /= bias_correction2_sqrt
    tmp += eps
    xp.divide(m, tmp, out=tmp)
    tmp *= -step_size
    param += tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), as torch.optim.Adam.

    With ``g = grad + weight_decay * p`` and the step count t = 1, 2, ...::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        v_hat = max(v_hat, v) if amsgrad else v
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
    """

    type_name = "adam"
    label = "Adam"
    decoupled: bool = False
    options = (
        lr_option(1e-3),
        betas_option((0.9, 0.999), BETAS_DOC),
        eps_option(1e-8),
        weight_decay_option(),
        Hyper("amsgrad", "bool", False, doc="use the running maximum of v (AMSGrad)"),
        MAXIMIZE,
    )

    def _init_state(self, data, h):
        zeros = data.copy()
        zeros.fill(0)
        st = {"step": 0, "exp_avg": zeros, "exp_avg_sq": zeros.copy()}
        if h["amsgrad"]:
            st["max_exp_avg_sq"] = zeros.copy()
        return st

    def _update_all(self, xp, items, h):
        lr, (beta1, beta2), eps = h["lr"], h["betas"], h["eps"]
        wd, amsgrad, maximize = h["weight_decay"], h["amsgrad"], h["maximize"]
        decoupled = self.decoupled
        if fused.enabled(xp):  # one kernel launch per parameter on a GPU
            for p, st, _ in items:
                st["step"] = step = st["step"] + 1
                v_max = _max_exp_avg_sq(xp, st, p) if amsgrad else None
                fused.adam_step(p.data, p.grad, st["exp_avg"], st["exp_avg_sq"], v_max,
                                step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                weight_decay=wd, decoupled=decoupled, maximize=maximize)
            return
        for p, st, (t1, t2) in items:
            st["step"] = step = st["step"] + 1
            g = decayed_grad(xp, p, t1, lr=lr, weight_decay=wd, decoupled=decoupled,
                             maximize=maximize)
            v_max = _max_exp_avg_sq(xp, st, p) if amsgrad else None
            adam_update(xp, p.data, g, st["exp_avg"], st["exp_avg_sq"], v_max, t2,
                        step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW: Adam whose weight decay is
    decoupled from the gradient::

        p <- p * (1 - lr * weight_decay)
        then the Adam update with g = grad
    """

    type_name = "adamw"
    label = "AdamW"
    decoupled = True
    options = tuple(
        weight_decay_option(1e-2, DECOUPLED_DOC) if o.name == "weight_decay" else o
        for o in Adam.options
    )


def nadam_update(xp, param, g, m, v, tmp1, tmp2, *, lr, beta1, beta2, eps,
                 bias_correction2, mu, mu_next, mu_product, mu_product_next):
    """One NAdam step in place. ``tmp2`` must not alias ``g``; ``tmp1`` may."""
    _moments(xp, g, m, v, tmp2, beta1, beta2)
    xp.divide(v, bias_correction2, out=tmp2)
    xp.sqrt(tmp2, out=tmp2)
    tmp2 += eps
    xp.divide(g, tmp2, out=tmp1)
    tmp1 *= -lr * (1.0 - mu) / (1.0 - mu_product)
    param += tmp1
    xp.divide(m, tmp2, out=tmp2)
    tmp2 *= (-lr * mu_next) / (1.0 - mu_product_next)
    param += tmp2


class NAdam(Optimizer):
    """NAdam (Dozat 2016), as torch.optim.NAdam.

    With ``g = grad + weight_decay * p`` (or ``p <- p (1 - lr wd)`` if decoupled) and t = 1, 2..::

        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));   P_t = mu_1 ... mu_t
        m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2
        d = sqrt(v / (1 - beta2^t)) + eps
        p <- p - lr (1 - mu_t) / (1 - P_t) * g / d - lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / d
    """

    type_name = "nadam"
    label = "NAdam"
    options = (
        lr_option(2e-3),
        betas_option((0.9, 0.999), BETAS_DOC),
        eps_option(1e-8),
        weight_decay_option(),
        Hyper("momentum_decay", "float", 4e-3, doc="how fast the momentum schedule mu_t "
              "reaches beta1", low=0.0),
        Hyper("decoupled_weight_decay", "bool", False, doc=DECOUPLED_DOC),
        MAXIMIZE,
    )
    scalar_state = ("step", "mu_product")

    def _init_state(self, data, h):
        zeros = data.copy()
        zeros.fill(0)
        return {"step": 0, "mu_product": 1.0, "exp_avg": zeros, "exp_avg_sq": zeros.copy()}

    def _update_all(self, xp, items, h):
        lr, (beta1, beta2), eps = h["lr"], h["betas"], h["eps"]
        wd, maximize, momentum_decay = h["weight_decay"], h["maximize"], h["momentum_decay"]
        decoupled = h["decoupled_weight_decay"]
        for p, st, (t1, t2) in items:
            st["step"] = step = st["step"] + 1
            g = decayed_grad(xp, p, t1, lr=lr, weight_decay=wd, decoupled=decoupled,
                             maximize=maximize)
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
            st["mu_product"] = mu_product = st["mu_product"] * mu
            nadam_update(xp, p.data, g, st["exp_avg"], st["exp_avg_sq"], t1, t2, lr=lr,
                         beta1=beta1, beta2=beta2, eps=eps,
                         bias_correction2=1 - beta2**step, mu=mu, mu_next=mu_next,
                         mu_product=mu_product, mu_product_next=mu_product * mu_next)


def lion_update(xp, param, grad, m, tmp1, tmp2, *, lr, beta1, beta2, weight_decay):
    """One Lion step in place (lion-pytorch's order of operations)."""
    if weight_decay != 0:
        param *= 1 - lr * weight_decay
    xp.multiply(m, beta1, out=tmp1)
    xp.multiply(grad, 1.0 - beta1, out=tmp2)
    tmp1 += tmp2
    xp.sign(tmp1, out=tmp1)
    tmp1 *= -lr
    param += tmp1
    m *= beta2
    xp.multiply(grad, 1.0 - beta2, out=tmp2)
    m += tmp2


class Lion(Optimizer):
    """Lion, EvoLved Sign Momentum (Chen et al. 2023), as lion-pytorch::

        p <- p * (1 - lr * weight_decay)                  (decoupled weight decay)
        p <- p - lr * sign(beta1 * m + (1 - beta1) * g)
        m <- beta2 * m + (1 - beta2) * g

    Every coordinate moves by exactly lr, so Lion wants a 3-10x smaller lr than AdamW
    and a 3-10x larger weight_decay.
    """

    type_name = "lion"
    label = "Lion"
    options = (
        lr_option(1e-4),
        betas_option((0.9, 0.99), "interpolation factor of the update direction, and decay "
                     "rate of the momentum"),
        weight_decay_option(0.0, DECOUPLED_DOC),
    )
    scalar_state = ()

    def _init_state(self, data, h):
        zeros = data.copy()
        zeros.fill(0)
        return {"exp_avg": zeros}

    def _update_all(self, xp, items, h):
        lr, (beta1, beta2), wd = h["lr"], h["betas"], h["weight_decay"]
        for p, st, (t1, t2) in items:
            lion_update(xp, p.data, p.grad, st["exp_avg"], t1, t2, lr=lr, beta1=beta1,
                        beta2=beta2, weight_decay=wd)
