"""The words and numbers of the step-through panel, as rich text built from the engine's
:class:`~bplab.stepthrough.Stage` and :class:`~bplab.stepthrough.ChainRule` objects.

Every number written here is one the engine computed; these functions only choose which
ones to show and write them with :func:`~bplab.ui.editor.badges.fmt_num`.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
from bplab.ui.editor.badges import fmt_num

__all__ = [
    "KIND_TITLES",
    "array_text",
    "chain_rule_html",
    "index_text",
    "loss_html",
    "stage_html",
    "stage_title",
    "weight_update_html",
]

KIND_TITLES = {"forward": "Forward", "loss": "Loss", "backward": "Backward",
               "update": "Update"}
MAX_INLINE = 8  # numbers written inline before "…"


def array_text(a: Any, limit: int = MAX_INLINE) -> str:
    """``0.1234, -0.5 …`` (the first ``limit`` values) or one number for a scalar."""
    a = np.asarray(a)
    if a.size == 1:
        return fmt_num(a.reshape(()))
    flat = [fmt_num(v) for v in a.ravel()[:limit]]
    return "[" + ", ".join(flat) + (", …]" if a.size > limit else "]")


def index_text(param: str, index: tuple[int, ...]) -> str:
    return f"{param}[{', '.join(map(str, index))}]"


def stage_title(stage, count: int) -> str:
    """``Stage 7 of 12 · Backward · relu1``."""
    parts = [f"Stage {stage.index + 1} of {count}", KIND_TITLES.get(stage.kind, stage.kind)]
    if stage.node:
        parts.append(stage.node)
    return " · ".join(parts)


def _shape(a) -> str:
    return "(" + ", ".join(map(str, np.shape(a))) + ")"


def stage_html(stage) -> str:
    """What happens at ``stage``, in a sentence or two."""
    node = escape(stage.node or "")
    if stage.kind == "forward":
        return (f"<b>{node}</b> computes its output from its inputs: shape "
                f"{_shape(stage.output)} (batch first).")
    if stage.kind == "loss":
        return "The loss compares the prediction with the target (below)."
    if stage.kind == "backward":
        text = (f"<b>∂L/∂{node}</b>: how the loss changes with {node}'s output, shape "
                f"{_shape(stage.grad_output)}.")
        if len(stage.contributions) > 1:
            parts = " + ".join(f"(from {escape(c)})" for c, _ in stage.contributions)
            text += (f"<br>{node}'s output feeds {len(stage.contributions)} nodes, so its "
                     f"gradient is the sum of theirs: {parts}.")
            for consumer, part in stage.contributions:
                text += f"<br>&nbsp;&nbsp;from {escape(consumer)}: {array_text(part)}"
            text += f"<br>&nbsp;&nbsp;= {array_text(stage.grad_output)}"
        if stage.grad_inputs:
            sent = ", ".join(escape(s) for s in stage.grad_inputs)
            text += f"<br>It sends a gradient back along the wire from {sent}."
        if stage.param_grads:
            names = ", ".join(escape(n) for n in stage.param_grads)
            text += f"<br>Gradients of its parameters: {names}."
        return text
    if stage.kind == "update":
        hyper = ", ".join(f"{escape(str(k))} {escape(_value(v))}"
                          for k, v in stage.hyper.items())
        return f"The optimiser moves every parameter by its step ({hyper})."
    return escape(stage.kind)


def _value(v: Any) -> str:
    if isinstance(v, float):
        return fmt_num(v)
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_value(x) for x in v) + ")"
    return str(v)


def loss_html(stage) -> str:
    """The loss card: prediction, target, the loss and its formula with the numbers."""
    rows = [("prediction", array_text(stage.prediction, 16)),
            ("target", array_text(stage.target, 16)),
            ("loss", fmt_num(stage.loss) if stage.loss is not None else "-")]
    table = "".join(f"<tr><td><b>{k}</b>&nbsp;</td><td>{escape(v)}</td></tr>"
                    for k, v in rows)
    formula = escape(stage.formula or "").replace("\n", "<br>")
    return (f"<table>{table}</table><p style='font-family: monospace'>{formula}</p>")


def chain_rule_html(rule) -> str:
    """The chain-rule card of one weight: the engine's text, each factor with its number,
    their product beside the engine's gradient, and the finite-difference check."""
    name = escape(index_text(rule.param, rule.index))
    text = escape(rule.text).replace("\n", "<br>")
    factors = "".join(f"<tr><td>{escape(label)}&nbsp;</td><td>= {escape(array_text(v))}</td>"
                      f"</tr>" for label, v in rule.factors)
    agree = np.isclose(rule.product, rule.engine_grad, rtol=1e-9, atol=1e-12)
    fd_ok = np.isclose(rule.finite_difference, rule.engine_grad, rtol=1e-4, atol=1e-7)
    return (f"<b>∂L/∂{name}</b> by the chain rule"
            f"<p style='font-family: monospace'>{text}</p>"
            f"<table>{factors}</table>"
            f"<table>"
            f"<tr><td>product of the factors&nbsp;</td><td><b>{fmt_num(rule.product)}</b>"
            f"</td></tr>"
            f"<tr><td>the engine's gradient&nbsp;</td><td><b>{fmt_num(rule.engine_grad)}</b>"
            f" {'✓ equal' if agree else '✗ differs'}</td></tr>"
            f"<tr><td>finite difference&nbsp;</td><td><b>{fmt_num(rule.finite_difference)}"
            f"</b> {'✓ agrees' if fd_ok else '✗ disagrees'}</td></tr>"
            f"</table>")


def _at(value, index: tuple[int, ...]) -> str | None:
    """An optimiser state entry at one weight (a per-weight array) or as it is (a count)."""
    if value is None:
        return None
    a = np.asarray(value)
    return fmt_num(a[index] if a.ndim else a)


def weight_update_html(stage, param: str, index: tuple[int, ...]) -> str:
    """The update of one weight: before, the step, after, the optimiser's hyper-parameters
    and its state (momentum, Adam's moments) at that weight."""
    if stage is None or param not in stage.updates:
        return f"{escape(index_text(param, index))}: no update at this step."
    before, step, after = (np.asarray(a)[index] for a in stage.updates[param])
    rows = [("before", fmt_num(before)), ("step", fmt_num(step)), ("after", fmt_num(after))]
    grads = getattr(stage, "update_grads", {})
    if param in grads:  # the gradient the optimiser was given (penalties, clipping applied)
        rows.insert(1, ("gradient given", fmt_num(np.asarray(grads[param])[index])))
    was = getattr(stage, "optimizer_state_before", {}).get(param, {})
    for key, value in stage.optimizer_state.get(param, {}).items():
        now = _at(value, index)
        old = _at(was.get(key), index)
        rows.append((f"state {key}", now if old is None else f"{old} → {now}"))
    table = "".join(f"<tr><td>{escape(str(k))}&nbsp;</td><td>{escape(v)}</td></tr>"
                    for k, v in rows)
    hyper = ", ".join(f"{escape(str(k))} {escape(_value(v))}" for k, v in stage.hyper.items())
    return (f"<b>Update of {escape(index_text(param, index))}</b><table>{table}</table>"
            f"<span>{hyper}</span>")
