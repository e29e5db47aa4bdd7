"""One description of a training run: what it trains, on what, and for how long.

The trainer, the app's plot set-up and its progress bar all need the same facts about a
run before (or while) it happens: the task, the layers and what kind each one is, which
layers' outputs are activations, how many optimiser steps make an epoch and the run. They
read them here, so the arithmetic lives in one place.

>>> cfg = {"batch_size": 32, "epochs": 10, "steps": None}
>>> steps_per_epoch, total = run_length(cfg, n_train=100)
>>> steps_per_epoch, total        # ceil(100 / 32) = 4 batches per epoch
(4, 40)

:func:`bplab.training.describe_run` builds a :class:`RunPlan` from a project; a
:class:`~bplab.training.Trainer` keeps the one it trains as ``trainer.run_plan``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bplab.graph.plan import Plan
from bplab.layers import LAYERS

__all__ = ["LayerInfo", "RunPlan", "batch_rows", "layer_infos", "run_length"]


@dataclass(frozen=True)
class LayerInfo:
    """One node of the network, as the plots and the diagnosis see it."""

    id: str
    type_name: str
    n_params: int  # parameters it trains (0 for an activation, a Flatten, a merge)
    has_weights: bool  # owns a weight matrix or kernel (Dense, Conv2D)
    is_activation: bool  # an element-wise nonlinearity: its outputs are "activations"
    activation_kind: str | None  # "relu", "sigmoid", "tanh" (what the diagnosis checks) or None


def layer_infos(plan: Plan) -> tuple[LayerInfo, ...]:
    """Every node of a valid ``plan`` in its order (inputs first); () for a plan with
    problems, whose layers are not known yet."""
    if not plan.ok:
        return ()
    out = []
    for nid in plan.order:
        cls = LAYERS[plan.nodes[nid].type]
        out.append(LayerInfo(
            id=nid,
            type_name=cls.type_name,
            n_params=int(plan.param_counts.get(nid, 0)),
            has_weights=bool(cls.has_weights),
            is_activation=bool(cls.is_activation),
            activation_kind=cls.activation_kind,
        ))
    return tuple(out)


def batch_rows(batch_size: int | str, n_train: int) -> int:
    """Rows in one batch: ``"full"`` is the whole training set; never more than it has."""
    rows = n_train if batch_size == "full" else min(int(batch_size), n_train)
    return max(rows, 1)


def run_length(config: Mapping[str, Any], n_train: int) -> tuple[int, int]:
    """``(steps_per_epoch, total_steps)`` of a run with this ``training`` config.

    An epoch is ``ceil(n_train / batch rows)`` steps (the last batch may be short); the run
    is ``config["steps"]`` steps when set, else ``config["epochs"]`` epochs.
    """
    steps_per_epoch = max(1, math.ceil(n_train / batch_rows(config["batch_size"], n_train)))
    if config["steps"] is not None:
        return steps_per_epoch, int(config["steps"])
    return steps_per_epoch, int(config["epochs"]) * steps_per_epoch


@dataclass(frozen=True)
class RunPlan:
    """A run as configured: the data's task and size, the layers, and the run's length.

    ``total_steps`` is the configured length; a trainer may be extended past it
    (``Trainer.total_steps`` is where it stands now). ``layers`` is empty while the
    network has problems (``network_ok`` is False): the length is known, the layers not.
    """

    task: str  # "classification" | "regression"
    n_train: int  # training samples
    batch_size: int  # rows per batch ("full" resolved)
    steps_per_epoch: int
    total_steps: int
    epochs: int | None  # configured epochs, None when the run is given in steps
    layers: tuple[LayerInfo, ...] = ()
    network_ok: bool = True

    @classmethod
    def build(cls, config: Mapping[str, Any], dataset: Any, plan: Plan) -> RunPlan:
        """From a checked ``training`` config, the data set and the network's plan."""
        n_train = len(dataset.x_train)
        steps_per_epoch, total_steps = run_length(config, n_train)
        return cls(
            task=dataset.task,
            n_train=n_train,
            batch_size=batch_rows(config["batch_size"], n_train),
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            epochs=None if config["steps"] is not None else config["epochs"],
            layers=layer_infos(plan),
            network_ok=plan.ok,
        )

    @property
    def parameterized(self) -> tuple[LayerInfo, ...]:
        """Layers that train parameters, input side first (the gradient-norm plots' rows)."""
        return tuple(info for info in self.layers if info.n_params > 0)

    @property
    def activations(self) -> tuple[LayerInfo, ...]:
        """Activation layers, input side first (whose outputs the activation plots show)."""
        return tuple(info for info in self.layers if info.is_activation)

    @property
    def layer_types(self) -> dict[str, str]:
        """Node id -> layer type name, for every layer."""
        return {info.id: info.type_name for info in self.layers}

    def steps_for_epochs(self, epochs: int) -> int:
        """Steps that ``epochs`` whole epochs take."""
        return int(epochs) * self.steps_per_epoch
