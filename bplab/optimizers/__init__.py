"""Optimizers with torch.optim's update rules, hyper-parameter names and defaults.

>>> from bplab.layers.base import Parameter
>>> import numpy as np
>>> w = Parameter("fc.weight", np.ones(3))
>>> opt = make_optimizer({"type": "sgd", "lr": 0.5}, [("fc.weight", w)])
>>> w.add_grad(np.array([1.0, 2.0, 3.0])); opt.step(); w.data
array([ 0.5,  0. , -0.5])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bplab.layers.base import Parameter
from bplab.optimizers.adam import Adam, AdamW, Lion, NAdam
from bplab.optimizers.adaptive import Adagrad, RMSprop
from bplab.optimizers.base import Hyper, Optimizer
from bplab.optimizers.sgd import SGD
from bplab.specs import resolve_spec

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Hyper",
    "Lion",
    "NAdam",
    "Optimizer",
    "RMSprop",
    "make_optimizer",
]

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.type_name: cls for cls in (SGD, Adagrad, RMSprop, Adam, AdamW, NAdam, Lion)
}


def make_optimizer(spec: str | dict[str, Any],
                   named_params: Iterable[tuple[str, Parameter]]) -> Optimizer:
    """Build an optimizer from ``"adam"`` or ``{"type": "adam", "lr": 0.01, ...}``."""
    if isinstance(spec, dict) and isinstance(spec.get("type"), str):
        spec = {**spec, "type": spec["type"].lower()}  # "Adam" works as well as "adam"
    elif isinstance(spec, str):
        spec = spec.lower()
    cls, config = resolve_spec(spec, OPTIMIZERS, "optimizer")
    return cls(named_params, **config)
