"""One training step as stages you can walk through: forward node by node, the loss, backward
node by node (the chain rule), the optimiser's update.

:class:`StepThrough` takes a step on a float64 copy of a trainer's network, on chosen samples,
running the network's real layers one node at a time (``Network.forward_nodes`` /
``backward_nodes``) and the real optimiser, and keeps every stage's tensors. The trainer is
untouched until :meth:`StepThrough.apply` makes the step its next one;
:meth:`StepThrough.discard` leaves it as it was. :meth:`StepThrough.chain_rule` writes the
gradient of one weight as the product of the factors that make it, beside the engine's
gradient and a finite difference.

>>> st = StepThrough(trainer, [0, 1])                    # doctest: +SKIP
>>> [s.kind for s in st.stages][:3]                      # doctest: +SKIP
['forward', 'forward', 'forward']
>>> st.chain_rule("fc1.weight", (0, 1)).text             # doctest: +SKIP
'dL/dW[0,1] = Σ_n dL/da_0 · f'(z_0) · x_1 = 0.1 × 0.42 × 1.3 + ... = 0.0546'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bplab.backend import to_host
from bplab.clipping import clip_grad_norm_, clip_grad_value_
from bplab.errors import ConfigError
from bplab.graph import Network
from bplab.layers.conv import Conv2D, pad_input
from bplab.layers.core import Dense
from bplab.layers.normalization import BatchNorm
from bplab.losses import make_loss
from bplab.optimizers import make_optimizer
from bplab.training import add_penalty_grads, penalised_parameters

if TYPE_CHECKING:
    from bplab.training import Trainer

__all__ = ["FD_EPS", "ChainRule", "Stage", "StepThrough"]

FD_EPS = 1e-6  # central differences in float64 (torch gradcheck's eps)
_SHOWN_TERMS = 4  # a written-out sum shows this many terms, then "..."


@dataclass(frozen=True)
class Stage:
    """One stage of a training step; only the fields of its ``kind`` are filled.

    ``forward``: ``node`` and its ``output`` (host float64, batch axis kept).
    ``loss``: ``loss``, ``prediction``, ``target``, ``formula`` (the loss's formula with the
    numbers filled in) and ``grad_output`` (dL/dprediction, where backward starts).
    ``backward``: ``node``; ``grad_output`` = dL/d(node output), the sum of
    ``contributions`` (one ``(consumer id, part)`` per consumer, given only where the output
    fans out); ``grad_inputs`` the gradient sent along each incoming wire, by source id;
    ``param_grads`` ``"<id>.<param>" -> gradient`` (the backpropagated gradient of the loss).
    ``update``: ``updates`` ``name -> (before, step, after)``; ``optimizer_state`` after the
    step and ``optimizer_state_before``, ``name -> {"momentum_buffer"|"exp_avg"|...: array}``;
    ``hyper`` the optimiser's hyper-parameters at this step (with the training's l1, l2 and
    clipping when set); ``update_grads`` the gradients the optimiser was given (with the
    l1/l2 penalties added and clipping applied, as the trainer does).
    """

    index: int
    kind: str  # "forward" | "loss" | "backward" | "update"
    node: str | None = None
    output: np.ndarray | None = None
    grad_output: np.ndarray | None = None
    contributions: tuple[tuple[str, np.ndarray], ...] = ()
    grad_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    param_grads: dict[str, np.ndarray] = field(default_factory=dict)
    loss: float | None = None
    prediction: np.ndarray | None = None
    target: np.ndarray | None = None
    formula: str | None = None
    updates: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    optimizer_state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    hyper: dict[str, Any] = field(default_factory=dict)
    optimizer_state_before: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    update_grads: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainRule:
    """The gradient of one weight as the product of the factors that make it.

    ``factors`` are ``(name, value)``; a value is an array over the rows of the batch (or
    over the batch and the positions of a convolution) when the gradient sums over them,
    and ``terms`` is then the product of the factors for each row, whose sum is
    ``product``. ``engine_grad`` is the backpropagated gradient the engine computed, and
    ``finite_difference`` the central difference of the loss in float64 (eps 1e-6).
    """

    param: str
    index: tuple[int, ...]
    factors: tuple[tuple[str, float | np.ndarray], ...]
    text: str
    product: float
    engine_grad: float
    finite_difference: float
    terms: np.ndarray | None = None
    rule: str = ""  # the rule in symbols, e.g. "dL/dW[j,i] = Σ_n dL/da_j · f'(z_j) · x_i"


def _host(a) -> np.ndarray:
    out = to_host(a)
    return out.copy() if out is a else out


class StepThrough:
    """Every stage of one training step of ``trainer`` on samples ``indices`` of ``split``
    ("train" or "val"), computed in float64 on a copy of its network.

    The samples are those of the dataset (as the trainer stores them, in its dtype); the
    optimiser is the trainer's, with its state and current learning rate. Dropout draws its
    masks from the trainer's generators, in float64 (so not the masks a float32 trainer
    would draw).
    """

    def __init__(self, trainer: Trainer, indices: Sequence[int], split: str = "train"):
        self.trainer = trainer
        self.indices = tuple(int(i) for i in indices)
        self.split = split
        self.x, self.target = _samples(trainer, self.indices, split)
        self.finished: str | None = None  # "applied" or "discarded"
        self._start_state = {k: v.astype(np.float64) if v.dtype.kind == "f" else v.copy()
                             for k, v in trainer.network.state_dict().items()}
        self._start_rng = _rng_states(trainer.network)
        self.network = self._copy_network()
        self.loss = make_loss(trainer.project["loss"])
        self.loss.jit = trainer.loss.jit  # the trainer's arithmetic (bplab.jit), kernels too
        self.optimizer = make_optimizer(trainer.project["optimizer"],
                                        self.network.named_parameters())
        self.optimizer.load_state_dict(trainer.optimizer.state_dict())
        self._probe: Network | None = None
        self._outputs: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self._param_grads: dict[str, np.ndarray] = {}
        self.stages: list[Stage] = []
        g = self._forward_and_loss()
        self._backward(g)
        self._update()

    # -- the copy --------------------------------------------------------------------------
    def _copy_network(self) -> Network:
        """A float64 numpy network with the trainer's weights, buffers and random streams."""
        t = self.trainer
        net = Network(t.project["network"], dtype="float64", backend="numpy",
                      seed=t.config["seed"])
        net.load_state_dict(self._start_state)
        _set_rng_states(net, self._start_rng)
        net.require_input_grad = True  # the wire out of the Input carries a gradient too
        net.use_kernels(t.network.jit)
        for layer in net.layers.values():
            if layer.takes_sequence:
                layer.bptt_steps = t.config["bptt_steps"]
        return net

    # -- the stages ------------------------------------------------------------------------
    def _add(self, kind: str, **fields: Any) -> Stage:
        stage = Stage(len(self.stages), kind, **fields)
        self.stages.append(stage)
        return stage

    def _forward_and_loss(self):
        net = self.network
        out = None
        for nid, out in net.forward_nodes(self.x, True):
            self._outputs[nid] = _host(out)
            self._add("forward", node=nid, output=self._outputs[nid])
        value = float(self.loss.forward(out, self.target))
        g = self.loss.backward()
        pred = self._outputs[net.output_id]
        self._add("loss", loss=value, prediction=pred, target=_host(self.target),
                  formula=loss_formula(self.loss, pred, _host(self.target), value),
                  grad_output=_host(g))
        self.loss_value = value
        return g

    def _backward(self, grad) -> None:
        net = self.network
        net.zero_grad()
        for nid, g, parts, sent in net.backward_nodes(grad):
            grad_output = _host(g) if g is not None else None
            if grad_output is not None:
                self._grads[nid] = grad_output
            grad_inputs: dict[str, np.ndarray] = {}
            for src, gs in sent:
                if gs is not None:
                    gs = _host(gs)
                    grad_inputs[src] = grad_inputs[src] + gs if src in grad_inputs else gs
            param_grads = {
                f"{nid}.{pname}": _host(p.grad)
                for pname, p in net.layers[nid].params.items()
                if p.has_grad
            }
            self._param_grads.update(param_grads)
            contributions = tuple((c, _host(v)) for c, v in parts) if len(parts) > 1 else ()
            self._add("backward", node=nid, grad_output=grad_output,
                      contributions=contributions, grad_inputs=grad_inputs,
                      param_grads=param_grads)

    def _update(self) -> None:
        """The trainer's update on the copy: penalties, clipping, the optimiser's step."""
        cfg, net, opt = self.trainer.config, self.network, self.optimizer
        named = net.named_parameters()
        _penalise(net, cfg["l1"], cfg["l2"])
        params = [p for _, p in named]
        if cfg["clip_grad_norm"]:
            clip_grad_norm_(params, cfg["clip_grad_norm"])
        if cfg["clip_grad_value"]:
            clip_grad_value_(params, cfg["clip_grad_value"])
        before = {n: _host(p.data) for n, p in named}
        grads = {n: _host(p.grad) for n, p in named if p.has_grad}
        state_before = _state_copy(opt)
        hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opt.hyper.items()}
        for key in ("l1", "l2", "clip_grad_norm", "clip_grad_value"):
            if cfg[key]:
                hyper[key] = cfg[key]
        opt.step()
        updates = {}
        for n, p in named:
            after = _host(p.data)
            updates[n] = (before[n], after - before[n], after)
        self._add("update", updates=updates, optimizer_state=_state_copy(opt),
                  optimizer_state_before=state_before, hyper=hyper, update_grads=grads)

    def wire_norms(self) -> dict[tuple[str, str], float]:
        """The L2 norm of the gradient along each wire, ``(source, consumer) -> norm`` (for
        drawing a wire's width or colour by the size of what flows back along it)."""
        return {
            (src, s.node): float(np.linalg.norm(g))
            for s in self.stages
            if s.kind == "backward"
            for src, g in s.grad_inputs.items()
        }

    # -- ending the step -------------------------------------------------------------------
    def _finish(self, how: str) -> None:
        if self.finished is not None:
            raise RuntimeError(f"this step was already {self.finished}")
        self.finished = how

    def apply(self) -> None:
        """Make this step the trainer's next step: its weights and buffers (in the trainer's
        dtype), optimiser state, random streams, step count and schedule move on as after
        ``trainer.step()``. The trainer's batch position does not move (the samples were
        chosen, not drawn)."""
        self._finish("applied")
        t = self.trainer
        t.network.load_state_dict(self.network.state_dict())
        t.optimizer.load_state_dict(self.optimizer.state_dict())
        _set_rng_states(t.network, _rng_states(self.network))
        t.step_count += 1
        if t.schedule is not None:
            t.schedule.batch_end()

    def discard(self) -> None:
        """Leave the trainer exactly as it was (nothing of it was changed)."""
        self._finish("discarded")

    # -- the chain rule for one weight -----------------------------------------------------
    def chain_rule(self, param: str, index: tuple[int, ...]) -> ChainRule:
        """The gradient of ``param[index]`` (a dotted name, as ``"fc1.weight"``) written as
        the product of its factors, beside the engine's gradient and a finite difference.

        Dense weights and biases: upstream × activation derivative × input (the derivative
        of the element-wise activation the Dense feeds, when it feeds exactly one), per row
        of the batch. Conv2D: the same, summed over the batch and the output positions.
        BatchNorm: upstream × x̂ (weight) or upstream (bias). Other parameters (recurrent
        layers, LayerNorm): one term per sample, the sample's upstream gradient sent through
        the layer's backward.
        """
        nid, pname = self._split_name(param)
        shape = self._param_grads[param].shape
        index = tuple(int(i) for i in index)
        if len(index) != len(shape) or any(not 0 <= i < s for i, s in zip(index, shape)):
            raise ConfigError(f"{param} has shape {shape}: index {index} is outside it")
        layer = self.network.layers[nid]
        if isinstance(layer, Dense):
            rule, factors = self._dense_factors(nid, pname, index)
        elif isinstance(layer, Conv2D):
            rule, factors = self._conv_factors(nid, pname, index)
        elif isinstance(layer, BatchNorm):
            rule, factors = self._batchnorm_factors(nid, pname, index)
        else:
            rule, factors = self._per_sample_factors(nid, pname, index)
        terms = np.ones_like(np.asarray(factors[0][1], dtype=np.float64))
        for _, value in factors:
            terms = terms * value
        product = float(np.sum(terms))
        text = _chain_text(rule, factors, np.ravel(terms), product)
        return ChainRule(
            param=param, index=index, factors=tuple(factors), text=text, product=product,
            engine_grad=float(self._param_grads[param][index]),
            finite_difference=self.finite_difference(param, index),
            terms=np.ravel(terms), rule=rule,
        )

    def _split_name(self, param: str) -> tuple[str, str]:
        if param not in self._param_grads:
            known = ", ".join(self._param_grads) or "none"
            raise ConfigError(f"no parameter {param!r} received a gradient (known: {known})")
        nid, pname = param.rsplit(".", 1)
        return nid, pname

    def _source(self, nid: str) -> np.ndarray:
        (src,) = self.network.plan.nodes[nid].inputs
        return self._outputs[src]

    def _upstream(self, nid: str, take):
        """The factors before the layer's own: ``[(name, upstream), (derivative)]``.

        Where ``nid`` feeds exactly one element-wise activation, dL/d(its output) splits into
        the activation's upstream gradient times its derivative f'(z) (the activation's
        backward of ones, checked to reproduce the engine's gradient); otherwise it is the
        upstream gradient itself. ``take`` picks the unit's values out of a full array.
        """
        g = self._grads[nid]
        consumers = self.network.plan.consumers(nid)
        if len(consumers) == 1:
            act = self.network.layers[consumers[0]]
            if act.is_activation and consumers[0] in self._grads:
                u = self._grads[consumers[0]]
                act.forward(self._outputs[nid], True)
                d = _host(act.backward(np.ones_like(u)))
                scale = float(np.abs(g).max()) or 1.0
                if np.allclose(d * u, g, rtol=1e-9, atol=1e-12 * scale):
                    kind = act.type_name
                    return "a", [(f"upstream dL/da (output of {kind} '{consumers[0]}')", take(u)),
                                 (f"activation derivative f'(z) ({kind})", take(d))]
        return "y", [(f"upstream dL/dy (output of '{nid}'; no element-wise activation)",
                      take(g))]

    def _dense_factors(self, nid: str, pname: str, index):
        units = self._grads[nid].shape[-1]
        j = index[0]
        sym, factors = self._upstream(nid, lambda a: a.reshape(-1, units)[:, j])
        act = f"f'(z_{j}) · " if len(factors) == 2 else ""
        if pname == "bias":
            return f"dL/db[{j}] = Σ_n dL/d{sym}_{j} · {act}1", factors
        x = self._source(nid)
        i = index[1]
        factors.append((f"input x_{i}", x.reshape(-1, x.shape[-1])[:, i]))
        return f"dL/dW[{j},{i}] = Σ_n dL/d{sym}_{j} · {act}x_{i}", factors

    def _conv_factors(self, nid: str, pname: str, index):
        layer = self.network.layers[nid]
        o = index[0]
        sym, factors = self._upstream(nid, lambda a: a[:, o])
        act = "f'(z) · " if len(factors) == 2 else ""
        if pname == "bias":
            return f"dL/db[{o}] = Σ_(n,p,q) dL/d{sym}[n,{o},p,q] · {act}1", factors
        _, c, a, b = index
        x = self._source(nid)
        per_group_out = layer.filters // layer.groups
        cin = (o // per_group_out) * (x.shape[1] // layer.groups) + c
        ho, wo = self._grads[nid].shape[2:]
        (sh, sw), (dh, dw) = layer.stride, layer.dilation
        xp = pad_input(x, layer.padding)
        taps = xp[:, cin, a * dh: a * dh + sh * (ho - 1) + 1: sh,
                  b * dw: b * dw + sw * (wo - 1) + 1: sw]
        factors.append((f"input x[n,{cin},p·{sh}+{a * dh},q·{sw}+{b * dw}] under the tap",
                        taps))
        return (f"dL/dW[{o},{c},{a},{b}] = Σ_(n,p,q) dL/d{sym}[n,{o},p,q] · {act}"
                f"x[n,{cin},p·{sh}+{a * dh},q·{sw}+{b * dw}]"), factors

    def _batchnorm_factors(self, nid: str, pname: str, index):
        c = index[0]
        g = self._grads[nid]
        up = [(f"upstream dL/dy (output of '{nid}')", g[:, c])]
        if pname == "bias":
            return f"dL/dβ[{c}] = Σ dL/dy_c", up
        # x̂ as the layer computes it in training (biased batch variance)
        x = self._source(nid)
        layer = self.network.layers[nid]
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xc = x - x.mean(axis=axes).reshape(bshape)
        var = (xc * xc).mean(axis=axes)
        xhat = xc * (1.0 / np.sqrt(var + layer.eps)).reshape(bshape)
        up.append(("normalised input x̂ = (x - mean) / sqrt(var + eps)", xhat[:, c]))
        return f"dL/dγ[{c}] = Σ dL/dy_c · x̂_c", up

    def _per_sample_factors(self, nid: str, pname: str, index):
        """One term per sample: its upstream gradient through the layer's backward (the
        layer re-run on its recorded inputs with the weights before the step)."""
        probe = self._probe_network()
        layer = probe.layers[nid]
        srcs = probe.plan.nodes[nid].inputs
        ins = [self._outputs[s] for s in srcs]
        g = self._grads[nid]
        per_sample = np.empty(len(g))
        for n in range(len(g)):
            _set_rng_states(probe, self._start_rng)
            layer.forward(ins[0] if len(ins) == 1 else ins, True)
            mask = np.zeros_like(g)
            mask[n] = g[n]
            p = layer.params[pname]
            p.has_grad = False
            layer.backward(mask)
            per_sample[n] = p.grad[index]
        note = " (shared over the time steps: back-propagation through time)" \
            if layer.takes_sequence else ""
        return (f"dL/d{pname}{list(index)} = Σ_n [sample n's dL/dy through "
                f"'{nid}'s backward]{note}",
                [("sample n's contribution", per_sample)])

    # -- finite differences ----------------------------------------------------------------
    def _probe_network(self) -> Network:
        """A float64 network in the state before the step (for re-running the loss)."""
        if self._probe is None:
            self._probe = self._copy_network()
        return self._probe

    def loss_at(self, param: str, index: tuple[int, ...], value: float) -> float:
        """The loss of this step's samples with ``param[index]`` set to ``value`` (all else as
        before the step, the same dropout masks)."""
        probe = self._probe_network()
        p = dict(probe.named_parameters())[param]
        old = float(p.data[index])
        p.data[index] = value
        try:
            _set_rng_states(probe, self._start_rng)
            out = probe.forward(self.x, True)
            return float(self.loss.forward(out, self.target))
        finally:
            p.data[index] = old
            self.loss.clear_cache()
            for layer in probe.layers.values():
                layer.clear_cache()

    def finite_difference(self, param: str, index: tuple[int, ...], eps: float = FD_EPS):
        """(L(w + eps) - L(w - eps)) / (2 eps) for ``w = param[index]`` before the step."""
        w = float(self._start_state[param][tuple(index)])
        return (self.loss_at(param, index, w + eps) - self.loss_at(param, index, w - eps)) / (
            2 * eps)


# -- helpers -----------------------------------------------------------------------------------
def _samples(trainer: Trainer, indices: tuple[int, ...], split: str):
    """Inputs (rounded to the trainer's dtype, then float64) and targets as the trainer
    builds them (float targets in float64)."""
    ds = trainer.dataset
    if split not in ("train", "val"):
        raise ConfigError(f"split must be 'train' or 'val', received {split!r}")
    x_all, y_all = (ds.x_train, ds.y_train) if split == "train" else (ds.x_val, ds.y_val)
    if not indices:
        raise ConfigError("choose at least one sample to step through")
    bad = [i for i in indices if not 0 <= i < len(x_all)]
    if bad:
        raise ConfigError(f"sample {bad[0]} is outside the {split} set "
                          f"(0 to {len(x_all) - 1})")
    idx = np.asarray(indices)
    x = np.asarray(x_all[idx]).astype(trainer.dtype).astype(np.float64)
    y = trainer.targets(np.asarray(y_all[idx]))
    if y.dtype.kind == "f":
        y = y.astype(np.float64)
    return x, y


def _penalise(net: Network, l1: float, l2: float) -> None:
    """The trainer's l1/l2 penalties, on the weights of the copy that have a gradient."""
    if l1 or l2:
        add_penalty_grads([p for p in penalised_parameters(net) if p.has_grad], l1, l2)


def _state_copy(opt) -> dict[str, dict[str, np.ndarray]]:
    return {
        name: {k: np.asarray(v).copy() for k, v in st.items() if v is not None}
        for name, st in opt.state_dict()["state"].items()
    }


def _rng_states(net: Network) -> dict[str, dict[str, Any]]:
    return {
        nid: {k: g.bit_generator.state for k, g in layer.random_generators().items()}
        for nid, layer in net.layers.items()
        if layer.random_generators()
    }


def _set_rng_states(net: Network, states: dict[str, dict[str, Any]]) -> None:
    for nid, gens in states.items():
        mine = net.layers[nid].random_generators()
        for k, st in gens.items():
            if k in mine:
                mine[k].bit_generator.state = st


def _num(v: float) -> str:
    return f"{v:.4g}"


def _factor(v: float) -> str:
    """A number inside a product or a difference: negative ones in parentheses."""
    return f"({_num(v)})" if v < 0 else _num(v)


def _sum_text(terms: Sequence[str], total: float, divide: int | None = None) -> str:
    shown = list(terms[:_SHOWN_TERMS])
    if len(terms) > _SHOWN_TERMS:
        shown.append(f"... ({len(terms)} terms)")
    body = " + ".join(shown)
    if divide is not None and divide != 1:
        return f"({body}) / {divide} = {_num(total)}"
    return f"{body} = {_num(total)}"


def _chain_text(rule: str, factors, terms: np.ndarray, product: float) -> str:
    """The rule, then the product with the numbers (the largest terms first when long)."""
    values = [np.ravel(np.asarray(v, dtype=np.float64)) for _, v in factors]
    order = np.arange(len(terms))
    if len(terms) > _SHOWN_TERMS:
        order = np.argsort(-np.abs(terms), kind="stable")
    parts = [" × ".join(_factor(v[k] if len(v) > 1 else v[0]) for v in values) for k in order]
    return f"{rule} = {_sum_text(parts, product)}"


def loss_formula(loss, pred: np.ndarray, target: np.ndarray, value: float) -> str:
    """The loss's formula with this step's numbers filled in (the first few terms)."""
    kind = getattr(loss, "type_name", "")
    p = pred.reshape(len(pred), -1)
    if kind == "cross_entropy":
        y = np.asarray(target).reshape(-1).astype(int)
        terms = [
            "(log(" + " + ".join(f"e^{_num(v)}" for v in row) + f") - {_factor(row[k])})"
            for row, k in zip(p, y)
        ]
        head = "L = mean(logsumexp(x) - x_y)"
        if getattr(loss, "label_smoothing", 0.0):
            head += f" (label smoothing {loss.label_smoothing:g} not written out)"
        return f"{head} = {_sum_text(terms, value, len(p))}"
    t = np.asarray(target, dtype=np.float64).reshape(p.shape)
    pairs = list(zip(p.ravel(), t.ravel()))
    if kind == "mse":
        terms = [f"({_num(a)} - {_factor(b)})²" for a, b in pairs]
        head = "L = mean((p - t)²)"
    elif kind == "l1":
        terms = [f"|{_num(a)} - {_factor(b)}|" for a, b in pairs]
        head = "L = mean|p - t|"
    elif kind == "huber":
        delta = loss.delta
        terms = [f"0.5·({_num(a - b)})²" if abs(a - b) < delta
                 else f"{delta:g}·(|{_num(a - b)}| - {delta / 2:g})" for a, b in pairs]
        head = f"L = mean(huber(p - t)), delta = {delta:g}"
    elif kind == "binary_cross_entropy":
        terms = [f"(softplus({_num(a)}) - {_factor(a)}·{_factor(b)})" for a, b in pairs]
        head = "L = mean(softplus(x) - x·t)"
    else:
        return f"{getattr(loss, 'math', 'L')} = {_num(value)}"
    return f"{head} = {_sum_text(terms, value, len(pairs))}"
