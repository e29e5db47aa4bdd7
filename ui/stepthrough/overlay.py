"""What the canvas shows at one step-through stage, from the engine's stages.

:func:`stage_overlay` turns the stages up to the current one into the canvas's badges
(each node's output, then its gradient and its parameters' gradients, then their steps),
the gradient on each wire (width and colour by the engine's norm of it,
:meth:`StepThrough.wire_norms`, on a log scale over :data:`DECADES` decades below the
largest) and the sums where an output feeds several nodes. It picks and labels the
engine's arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from bplab.ui.editor.badges import BadgeContent, fmt_num

__all__ = ["DECADES", "Overlay", "stage_overlay"]

DECADES = 3.0  # a wire whose gradient is this many decades below the largest is thinnest


class Overlay:
    """``badges`` (node id -> BadgeContent), ``wires`` ((src, dst) -> (level, label)),
    ``sums`` (node id -> (parts, total))."""

    def __init__(self, badges, wires, sums):
        self.badges: dict[str, BadgeContent] = badges
        self.wires: dict[tuple[str, str], tuple[float, str]] = wires
        self.sums: dict[str, tuple] = sums


def _shape(a) -> str:
    return "(" + ", ".join(map(str, np.shape(a))) + ")"


def _param_label(name: str, prefix: str) -> str:
    return f"{prefix}{name.split('.', 1)[-1]}"


def _level(norm: float, largest: float) -> float:
    if largest <= 0 or norm <= 0 or not math.isfinite(norm):
        return 0.0
    return min(1.0, max(0.0, 1.0 + math.log10(norm / largest) / DECADES))


def stage_overlay(stages: Sequence, k: int, norms: dict[tuple[str, str], float]) -> Overlay:
    """The canvas at stage ``k`` (see the module); ``norms`` are the engine's
    :meth:`~bplab.stepthrough.StepThrough.wire_norms`."""
    largest = max(norms.values(), default=0.0)
    cur = stages[k]
    done = stages[: k + 1]
    backward = any(s.kind in ("backward", "update") for s in done)
    badges: dict[str, BadgeContent] = {}
    for s in done:
        if s.kind == "forward":
            badges[s.node] = BadgeContent(
                "output", f"{s.node} output {_shape(s.output)}", s.output,
                current=s is cur, faded=backward)
    wires: dict[tuple[str, str], tuple[float, str]] = {}
    sums: dict[str, tuple] = {}
    for s in done:
        if s.kind != "backward":
            continue
        params = tuple((_param_label(n, "∂L/∂"), g) for n, g in s.param_grads.items())
        badges[s.node] = BadgeContent("gradient", f"∂L/∂{s.node} {_shape(s.grad_output)}",
                                      s.grad_output, params, current=s is cur)
        for src in s.grad_inputs:
            n = norms.get((src, s.node), 0.0)
            wires[(src, s.node)] = (_level(n, largest), f"‖∂L/∂{src}‖ {fmt_num(n)}")
        if len(s.contributions) > 1:
            parts = tuple((f"from {c}", a) for c, a in s.contributions)
            sums[s.node] = (parts, s.grad_output)
    if cur.kind == "update":
        by_node: dict[str, list] = {}
        for name, (_before, step, _after) in cur.updates.items():
            by_node.setdefault(name.split(".", 1)[0], []).append(
                (_param_label(name, "step of "), step))
        for node, params in by_node.items():
            badges[node] = BadgeContent("update", f"{node}: the optimiser's step", None,
                                        tuple(params), current=True)
    return Overlay(badges, wires, sums)
