"""A bplab network (and its project's training set-up) as a self-contained PyTorch script.

The generated file imports only torch, numpy, json and sys (safetensors lazily, to read a
``.safetensors`` file) and defines:

* ``BplabNet``: an ``nn.Module`` whose submodules are named after the node ids, so its
  ``state_dict`` keys are exactly the exported names ``<node id>.<param>`` and it loads a
  file written by :func:`bplab.io.export.export_weights` with ``strict=True``. Ids that are
  not Python identifiers work: modules are registered and fetched by name, never as
  attributes. ``forward`` follows the DAG, residual branches included.
* ``make_loss()``, ``make_optimizer(model)``, ``make_scheduler(optimizer, ...)`` with the
  project's loss, optimizer and schedule; clipping and L1/L2 settings as constants.
* ``load_weights(model, path)`` for ``.safetensors`` and ``.npz``.
* ``train(model, x, y, epochs, batch_size)``: bplab's training step in torch (same
  shuffling stream, L1/L2 on Dense/Conv2D weights, clipping, schedule), so a model keeps
  training where bplab stopped.
* a ``__main__`` that loads the weights named on the command line and prints a summary.

Every value taken from the network or project enters the code through :func:`py_literal`
(``repr`` of plain data): user text is never pasted into code unquoted.

>>> export_torch_code(net, "model.py", project=project)     # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bplab
from bplab.errors import ConfigError
from bplab.io.metadata import network_spec, to_json
from bplab.io.project import TRAINING_DEFAULTS, atomic_write_bytes, new_project
from bplab.io.torch_layers import LAYER_HELPERS, TORCH_LAYERS, TorchCall, py_literal, torch_call
from bplab.losses import make_loss
from bplab.optimizers import make_optimizer

__all__ = ["TORCH_LAYERS", "export_torch_code", "py_literal", "torch_code"]

# The optimizer bplab has and torch.optim has not, as a class the generated file defines.
_LION = '''
class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023), as bplab and lion-pytorch::

        p <- p * (1 - lr * weight_decay)
        p <- p - lr * sign(beta1 * m + (1 - beta1) * g)
        m <- beta2 * m + (1 - beta2) * g
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                if wd != 0:
                    p.mul_(1 - lr * wd)
                direction = m * beta1 + p.grad * (1 - beta1)
                p.add_(direction.sign_() * -lr)
                m.mul_(beta2).add_(p.grad * (1 - beta2))
        return loss
'''

_TORCH_OPTIMIZERS = {"sgd": "torch.optim.SGD", "adagrad": "torch.optim.Adagrad",
                     "rmsprop": "torch.optim.RMSprop", "adam": "torch.optim.Adam",
                     "adamw": "torch.optim.AdamW", "nadam": "torch.optim.NAdam", "lion": "Lion"}
_TORCH_LOSSES = {"mse": "nn.MSELoss", "l1": "nn.L1Loss", "huber": "nn.HuberLoss",
                 "binary_cross_entropy": "nn.BCEWithLogitsLoss",
                 "cross_entropy": "nn.CrossEntropyLoss"}


def _section(spec: Any, what: str) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(f"the project's {what} must be a name or an object with a 'type', "
                          f"received {spec!r}")
    return dict(spec)


def _full_optimizer(spec: dict[str, Any]) -> dict[str, Any]:
    """The optimizer settings with bplab's defaults filled in (validated as training would)."""
    opt = make_optimizer(spec, [])
    return {"type": spec["type"], **opt.hyper}


def _full_loss(spec: dict[str, Any]) -> dict[str, Any]:
    """The loss settings with bplab's defaults filled in."""
    return {"type": spec["type"], **make_loss(spec).config}


def torch_code(net, project: dict | None = None) -> str:
    """The source of the PyTorch script for ``net`` (see the module docstring)."""
    loss, optimizer, training = _settings(project or {})
    calls = _module_calls(net)
    helpers = [c.helper for _, c in calls if c.helper]
    sources = [LAYER_HELPERS[h] for h in sorted(set(helpers), key=helpers.index)]
    if optimizer["type"] == "lion":
        sources.append(_LION)
    lines = _header_lines(net, loss, optimizer, training)
    for source in sources:
        lines += [source.rstrip("\n"), ""]
    lines.append(_NODE_GROUP)
    # parents first, so that an id "a.b" can hang below the module of an id "a"
    placement = sorted(calls, key=lambda m: m[0].count("."))
    lines += [f"        self._place({py_literal(nid)}, {call.code()})" for nid, call in placement]
    lines.append(_PLACE_AND_NODE)
    lines += _forward_lines(net)
    lines.append(_TEMPLATE.replace("@@LOSS_CLASS@@", _TORCH_LOSSES[loss["type"]])
                 .replace("@@OPTIMIZER_CLASS@@", _TORCH_OPTIMIZERS[optimizer["type"]]))
    return "\n".join(lines)


def _settings(project: dict) -> tuple[dict, dict, dict]:
    """The project's loss, optimizer and training settings, defaults filled in."""
    defaults = new_project()
    loss = _full_loss(_section(project.get("loss", defaults["loss"]), "loss"))
    optimizer = _full_optimizer(_section(project.get("optimizer", defaults["optimizer"]),
                                         "optimizer"))
    if loss["type"] not in _TORCH_LOSSES:
        raise ConfigError(f"no PyTorch equivalent for the loss {loss['type']!r}")
    if optimizer["type"] not in _TORCH_OPTIMIZERS:
        raise ConfigError(f"no PyTorch equivalent for the optimizer {optimizer['type']!r}")
    return loss, optimizer, {**TRAINING_DEFAULTS, **(project.get("training") or {})}


def _module_calls(net) -> list[tuple[str, TorchCall]]:
    """(node id, torch module call) of every node but the input, in the network's order."""
    plan = net.plan
    unsupported = sorted({
        plan.nodes[n].type for n in net.order
        if plan.nodes[n].type not in TORCH_LAYERS and plan.nodes[n].type != "Input"
    })
    if unsupported:
        raise ConfigError(f"no PyTorch code for layer type(s) {', '.join(unsupported)}")
    return [(nid, torch_call(plan.nodes[nid].type, plan.configs[nid],
                             [plan.shapes[s] for s in plan.nodes[nid].inputs], plan.shapes[nid]))
            for nid in net.order if plan.nodes[nid].type != "Input"]


def _forward_lines(net) -> list[str]:
    """``BplabNet.forward``: one line per node, in the network's order."""
    plan = net.plan
    var = {nid: f"h{i}" for i, nid in enumerate(net.order)}
    body = ["    def forward(self, x):", "        node = self.node"]
    for nid in net.order:
        node = plan.nodes[nid]
        shape = py_literal(tuple(plan.shapes[nid]))
        if node.type == "Input":
            body.append(
                f"        {var[nid]} = x  # {py_literal(nid)}: Input, sample shape {shape}"
            )
            continue
        args = ", ".join(var[s] for s in node.inputs)
        body.append(
            f"        {var[nid]} = node({py_literal(nid)})({args})  # {node.type} -> {shape}"
        )
    body += [f"        return {var[net.output_id]}", ""]
    return body


def _header_lines(net, loss: dict, optimizer: dict, training: dict) -> list[str]:
    """The docstring, imports and the constants the fixed part of the script reads."""
    return [
        _DOCSTRING.replace("@@VERSION@@", bplab.__version__),
        f"DTYPE = torch.{net.dtype.name}",
        f"INPUT_SHAPE = {py_literal(tuple(net.input_shape))}",
        f"OUTPUT_SHAPE = {py_literal(tuple(net.output_shape))}",
        "# the network as bplab describes it (for reference)",
        f"NETWORK = json.loads({py_literal(to_json(network_spec(net)))})",
        "",
        f"LOSS = {py_literal(loss)}",
        f"OPTIMIZER = {py_literal(optimizer)}",
        f"LR_SCHEDULE = {py_literal(training['lr_schedule'])}",
        f"EPOCHS = {py_literal(training['epochs'])}",
        f"BATCH_SIZE = {py_literal(training['batch_size'])}",
        f"SHUFFLE = {py_literal(bool(training['shuffle']))}",
        f"SEED = {py_literal(training['seed'])}",
        f"CLIP_GRAD_NORM = {py_literal(training['clip_grad_norm'])}",
        f"CLIP_GRAD_VALUE = {py_literal(training['clip_grad_value'])}",
        "# penalties on the weights of Dense and Conv2D layers, added to their gradients",
        f"L1 = {py_literal(training['l1'])}",
        f"L2 = {py_literal(training['l2'])}",
        "",
    ]


def export_torch_code(net, path: str | os.PathLike, project: dict | None = None) -> Path:
    """Write :func:`torch_code` to ``path`` (atomically). Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, torch_code(net, project).encode("utf-8"))
    return path


# The fixed parts of the script around the generated lines; they never see user text.
_DOCSTRING = '''"""PyTorch version of a bplab network, generated by bplab @@VERSION@@.

    python this_file.py weights.safetensors     # load exported weights, print a summary

In code: ``model = BplabNet(); load_weights(model, path); train(model, x, y)``.
Submodules are named after the bplab node ids: the state-dict keys are exactly the
exported names "<node id>.<param>".
"""

import json
import sys

import numpy as np
import torch
from torch import nn
'''

# ... the helper classes, then the module up to its first _place line
_NODE_GROUP = '''
class NodeGroup(nn.Module):
    """Holds submodules by node id, even ids that name Module attributes ('training')."""

    def __setattr__(self, name, value):
        # torch refuses a plain value under a submodule's name; such values (the training
        # flag set by .train()/.eval()) stay ordinary attributes
        if name in self.__dict__.get('_modules', {}) and not isinstance(value, nn.Module):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


class BplabNet(NodeGroup):
    """The bplab network; ``node(id)`` returns the submodule of a node."""

    def __init__(self, dtype=DTYPE):
        super().__init__()'''

# ... after the _place lines, before forward
_PLACE_AND_NODE = '''
    def _place(self, node_id, module):
        # add_module refuses ids holding '.' or naming an attribute ('forward'); writing
        # into _modules (nesting at each '.') keeps every key '<node id>.<param>'
        parent = self
        *outer, leaf = node_id.split('.')
        for part in outer:
            if part not in parent._modules:
                parent._modules[part] = NodeGroup()
            parent = parent._modules[part]
        parent._modules[leaf] = module

    def node(self, node_id):
        module = self
        for part in node_id.split('.'):
            module = module._modules[part]
        return module
'''

# ... after forward: the loss, optimizer, schedule, loading, training loop and __main__.
_TEMPLATE = '''
def make_loss():
    """The project's loss (mean over the batch), as bplab computes it."""
    options = {k: v for k, v in LOSS.items() if k != "type"}
    return @@LOSS_CLASS@@(**options)


def make_optimizer(model):
    """The project's optimizer with its hyper-parameters (bplab uses torch.optim's rules)."""
    options = {k: tuple(v) if isinstance(v, list) else v
               for k, v in OPTIMIZER.items() if k != "type"}
    return @@OPTIMIZER_CLASS@@(model.parameters(), **options)


def make_scheduler(optimizer, steps_per_epoch, total_steps):
    """(scheduler, interval) for LR_SCHEDULE, or (None, None) without one.

    ``interval`` is "epoch" or "step": when ``scheduler.step()`` is called. Lengths left
    unset default to the run's length in that interval, as in bplab.
    """
    if LR_SCHEDULE is None:
        return None, None
    spec = {"type": LR_SCHEDULE} if isinstance(LR_SCHEDULE, str) else dict(LR_SCHEDULE)
    return _scheduler(spec, optimizer, steps_per_epoch, total_steps)


def _scheduler(spec, optimizer, steps_per_epoch, total_steps):
    lr_scheduler = torch.optim.lr_scheduler
    kind = spec.pop("type")
    interval = spec.pop("interval", "step" if kind in ("warmup", "one_cycle") else "epoch")
    per = 1 if interval == "step" else max(steps_per_epoch, 1)
    run_length = max(-(-total_steps // per), 1)
    if kind == "step":
        return lr_scheduler.StepLR(optimizer, spec["step_size"], spec.get("gamma", 0.1)), interval
    if kind == "multi_step":
        return lr_scheduler.MultiStepLR(optimizer, list(spec["milestones"]),
                                        spec.get("gamma", 0.1)), interval
    if kind == "exponential":
        return lr_scheduler.ExponentialLR(optimizer, spec["gamma"]), interval
    if kind == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, spec.get("T_max") or run_length,
                                              spec.get("eta_min", 0.0)), interval
    if kind == "reduce_on_plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, **spec), interval
    if kind == "one_cycle":
        spec.setdefault("max_lr", None)
        if spec["max_lr"] is None:
            spec["max_lr"] = optimizer.param_groups[0]["lr"]
        spec["total_steps"] = spec.get("total_steps") or run_length
        spec.setdefault("cycle_momentum", False)  # bplab's default (torch's is True)
        return lr_scheduler.OneCycleLR(optimizer, **spec), interval
    if kind == "warmup":
        n = spec.get("total_iters") or spec.get("warmup_steps") or 5
        warmup = lr_scheduler.LinearLR(optimizer, spec.get("start_factor", 1 / 3),
                                       spec.get("end_factor", 1.0), total_iters=n)
        then = spec.get("then")
        if then is None:
            return warmup, interval
        then = {"type": then} if isinstance(then, str) else dict(then)
        then.setdefault("interval", interval)
        rest, _ = _scheduler(then, optimizer, steps_per_epoch, max(total_steps - n * per, 1))
        return lr_scheduler.SequentialLR(optimizer, [warmup, rest], milestones=[n]), interval
    raise NotImplementedError(f"no torch scheduler for the bplab schedule {kind!r}")


def load_weights(model, path):
    """Load a .safetensors or .npz file exported by bplab into ``model`` (strict)."""
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        arrays = load_file(path)
    elif path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "__bplab_meta__"}
    else:
        raise ValueError(f"expected a .safetensors or .npz file, received {path!r}")
    state = {k: torch.from_numpy(np.require(v, requirements='C')) for k, v in arrays.items()}
    model.load_state_dict(state, strict=True)
    return model


def train(model, x, y, epochs=EPOCHS, batch_size=BATCH_SIZE, *, optimizer=None,
          loss_fn=None, shuffle=SHUFFLE, seed=SEED):
    """Train ``model`` as bplab does; returns the loss of every step.

    Each epoch draws a permutation from ``np.random.default_rng(seed)`` (bplab's stream),
    cuts it into batches of ``batch_size`` ("full": one batch), and per batch: forward,
    loss, backward, L1/L2 added to the Dense/Conv2D weight gradients, clipping by norm then
    by value, the optimizer step and the schedule. Pass ``optimizer`` to keep its state
    across calls.
    """
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), DTYPE)
    x = torch.as_tensor(np.asarray(x)).to(dtype)
    y = torch.as_tensor(np.asarray(y))
    if y.is_floating_point():
        y = y.to(dtype)
    n = len(x)
    batch_size = n if batch_size in ("full", None) else min(int(batch_size), n)
    steps_per_epoch = -(-n // batch_size)
    optimizer = make_optimizer(model) if optimizer is None else optimizer
    loss_fn = make_loss() if loss_fn is None else loss_fn
    scheduler, interval = make_scheduler(optimizer, steps_per_epoch, epochs * steps_per_epoch)
    penalised = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    rng = np.random.default_rng(seed)
    model.train()
    losses = []
    for _ in range(epochs):
        if shuffle:
            order = torch.as_tensor(rng.permutation(n))
            xs, ys = x[order], y[order]
        else:
            xs, ys = x, y
        epoch_losses = []
        for start in range(0, n, batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(xs[start:start + batch_size]), ys[start:start + batch_size])
            loss.backward()
            with torch.no_grad():
                for w in penalised:
                    if w.grad is not None and L2:
                        w.grad.add_(w * (2.0 * L2))
                    if w.grad is not None and L1:
                        w.grad.add_(torch.sign(w) * L1)
            if CLIP_GRAD_NORM:
                nn.utils.clip_grad_norm_(model.parameters(), CLIP_GRAD_NORM)
            if CLIP_GRAD_VALUE:
                nn.utils.clip_grad_value_(model.parameters(), CLIP_GRAD_VALUE)
            optimizer.step()
            epoch_losses.append(loss.item())
            if scheduler is not None and interval == "step":
                scheduler.step()
        losses += epoch_losses
        if scheduler is not None and interval == "epoch":
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                # bplab steps on the validation loss; here the epoch's training loss
                scheduler.step(sum(epoch_losses) / len(epoch_losses))
            else:
                scheduler.step()
    return losses


def summary(model):
    """One row per bplab node: id, torch module, parameter count."""
    rows = [f"{'node':<20}{'module':<20}{'params':>10}"]
    for spec in NETWORK["nodes"]:
        if spec["type"] == "Input":
            continue
        module = model.node(spec["id"])
        count = sum(p.numel() for p in module._parameters.values() if p is not None)
        rows.append(f"{spec['id']!r:<20}{type(module).__name__:<20}{count:>10,}")
    rows.append(f"total parameters: {sum(p.numel() for p in model.parameters()):,}")
    return "\\n".join(rows)


if __name__ == "__main__":
    model = BplabNet()
    for weights in sys.argv[1:]:
        load_weights(model, weights)
        print(f"loaded {weights}")
    model.eval()
    print(summary(model))
    with torch.no_grad():
        out = model(torch.zeros((1, *INPUT_SHAPE), dtype=DTYPE))
    print(f"input {(\'batch\', *INPUT_SHAPE)} -> output {tuple(out.shape)}")
'''
