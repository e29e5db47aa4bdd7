"""Does the network fit its data set? Problems on the Input and output nodes, with the remedy.

:func:`~bplab.graph.plan.analyze` checks a network on its own; it does not know the data. This
module checks the plan against what the data set and the loss need: the Input's shape, the
output's size against the classes (classification) or the target columns (regression), and
whether the loss suits the task. Like ``analyze`` it never raises: each problem is attached
to the node it concerns, so the editor shows it on the node and the trainer refuses with it.

>>> from bplab.graph.plan import analyze
>>> from bplab.datasets import load_dataset
>>> plan = analyze([{"id": "in", "type": "Input", "shape": [2]},
...                 {"id": "out", "type": "Dense", "units": 16}])
>>> [p.message for p in output_problems(plan, load_dataset({"name": "xor"}), "cross_entropy")]
["Dense 'out' has 16 units but the data set 'xor' has 2 classes: set the last layer's units to 2"]
"""

from __future__ import annotations

import math
from typing import Any

from bplab.errors import Problem
from bplab.graph.plan import Plan

__all__ = ["output_problems", "target_size"]

CLASS_LOSSES = ("cross_entropy", "binary_cross_entropy")


def target_size(data: Any, loss: str) -> int | None:
    """Values per sample the output must give for ``data`` (a ``Dataset`` or ``DatasetInfo``)
    under ``loss``; None where it cannot be told (a regression set not loaded)."""
    if data.task == "classification":
        if loss == "binary_cross_entropy":
            return 1
        return int(data.n_classes) if data.n_classes else None
    y = getattr(data, "y_train", None)
    if y is None:
        return None
    return int(math.prod(y.shape[1:])) if y.ndim > 1 else 1


def output_problems(plan: Plan, data: Any, loss: str) -> list[Problem]:
    """What stops ``plan`` from training on ``data`` with the loss named ``loss``.

    ``data`` needs ``name``, ``task``, ``n_classes`` and ``input_shape`` (a loaded
    :class:`~bplab.datasets.base.Dataset` also gives the regression targets). A plan with
    its own problems gets none here: those come first.
    """
    if not plan.ok or plan.output_id is None or plan.input_id is None:
        return []
    name = getattr(data, "name", "") or "the data set"
    problems = []
    in_shape = tuple(plan.shapes.get(plan.input_id, ()))
    if tuple(data.input_shape) != in_shape:
        problems.append(Problem(
            node=plan.input_id, message=
            f"The network's Input '{plan.input_id}' has shape {list(in_shape)} but the "
            f"dataset '{name}' gives samples of shape {list(data.input_shape)}: set the "
            f"Input's shape to {list(data.input_shape)}"))
    problem = _loss_problem(plan, data, loss, name)
    if problem is None:
        problem = _size_problem(plan, data, loss, name)
    if problem is not None:
        problems.append(problem)
    return problems


def _loss_problem(plan: Plan, data: Any, loss: str, name: str) -> Problem | None:
    out = plan.output_id
    if data.task == "classification":
        if loss == "binary_cross_entropy" and data.n_classes != 2:
            return Problem(node=out, message=f"binary_cross_entropy needs two classes; "
                                             f"'{name}' has {data.n_classes}: use cross_entropy")
        return None
    if loss in CLASS_LOSSES:
        return Problem(node=out, message=f"'{name}' is a regression task: use the mse, l1 "
                                         f"or huber loss, not {loss}")
    return None


def _size_problem(plan: Plan, data: Any, loss: str, name: str) -> Problem | None:
    out = plan.output_id
    want = target_size(data, loss)
    shape = tuple(plan.shapes.get(out, ()))
    if want is None or (len(shape) == 1 and shape[0] == want):
        return None
    node = plan.nodes[out]
    units = plan.configs.get(out, {}).get("units")
    has = (f"has {units} units" if len(shape) == 1 and units is not None
           else f"gives {list(shape)} values per sample")
    if data.task == "classification":
        what = f"{data.n_classes} classes"
        if loss == "binary_cross_entropy":
            what += " and the loss binary_cross_entropy needs 1 output"
    else:
        what = f"{want} target(s)"
    remedy = (f"set the last layer's units to {want}" if units is not None and len(shape) == 1
              else f"end the network with a Dense of {want} units")
    return Problem(node=out, message=f"{node.type} '{out}' {has} but the data set '{name}' "
                                     f"has {what}: {remedy}")
