"""A project as a self-contained PyTorch folder that reproduces its run and scales out.

:func:`export_bundle` writes, into one folder:

``model.py``
    The network as an ``nn.Module`` with the project's loss, optimiser and schedule
    (:func:`bplab.io.torch_code.torch_code`).
``train.py``
    The whole run in PyTorch: the data of ``data.npz``, the weights of
    ``initial.safetensors``, bplab's loss, optimiser, hyper-parameters, schedule, clipping,
    L1/L2, early stopping, batch order (the same permutation per epoch, drawn from
    ``np.random.default_rng(seed)`` as the Trainer draws it) and length. It prints a line
    of metrics per epoch, and writes ``final.safetensors`` (bplab's names) and
    ``metrics.csv`` (the columns of ``bplab train --metrics``). Unchanged, it runs under
    ``torchrun --nproc_per_node=N`` with DistributedDataParallel: every rank takes the rows
    ``[rank::N]`` of each global batch and the loss is scaled so that DDP's gradient
    average is the gradient of the global batch's mean loss, so the update is the
    single-process run's (up to rounding).
``data.npz``
    ``x_train``, ``y_train``, ``x_val``, ``y_val`` after bplab's split and standardisation
    (and ``mean``/``scale`` to standardise new raw inputs).
``initial.safetensors``
    The weights the run starts from: the project's seeded initialisation (float64, so it
    starts both a float32 and a float64 run as bplab would), or the weights given.
``README.md``
    How to run it on a CPU, a GPU, several processes and several machines.

Nothing in the folder imports bplab: torch, numpy and safetensors are all it needs.

>>> export_bundle(load_project("digits.bplab.json"), "digits_torch")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import bplab
from bplab.errors import ConfigError
from bplab.graph import Network
from bplab.io.bundle_template import README_TEMPLATE, TRAIN_TEMPLATE
from bplab.io.export import check_finite, export_weights
from bplab.io.project import atomic_write_bytes
from bplab.io.torch_code import torch_code
from bplab.io.torch_layers import py_literal
from bplab.training import Trainer

__all__ = ["BUNDLE_FILES", "export_bundle", "train_script"]

# what export_bundle writes, in the order a reader meets them
BUNDLE_FILES = ("README.md", "model.py", "train.py", "data.npz", "initial.safetensors")

# the project settings train.py reproduces; anything else changes nothing it computes
_NOT_REPRODUCED = {
    "mixed_precision": "mixed precision (train.py runs in --dtype throughout)",
}


def export_bundle(project: dict[str, Any], folder: str | os.PathLike, *,
                  base_dir: str | os.PathLike | None = None,
                  weights: Mapping[str, np.ndarray] | None = None,
                  allow_nonfinite: bool = False) -> list[Path]:
    """Write the PyTorch folder of ``project`` into ``folder`` (created if missing).

    ``base_dir`` resolves a dataset file named relatively (the project file's folder);
    ``weights`` (a state dict by bplab names) replace the seeded initial weights. Raises
    ConfigError for a project bplab could not train or torch could not express. Returns
    the paths written.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder; choose a folder to write into")
    # The run as `bplab train` would build it; float64 weights are the seeded draws before
    # a float32 run casts them (the initialisers draw in float64), so both dtypes start here.
    # (mixed precision is left out here: train.py does not reproduce it, and says so)
    training = {**(project.get("training") or {}), "mixed_precision": None}
    trainer = Trainer({**project, "training": training}, base_dir=base_dir, backend="numpy",
                      dtype="float64")
    if weights is not None:
        if not allow_nonfinite:  # before any file of the folder is written
            check_finite(dict(weights), folder / "initial.safetensors")
        trainer.network.load_state_dict(dict(weights))
    folder.mkdir(parents=True, exist_ok=True)
    code_net = Network(project["network"], dtype=training.get("dtype") or "float32",
                       backend="numpy")
    files = {
        "model.py": torch_code(code_net, project).encode("utf-8"),
        "train.py": train_script(trainer, project).encode("utf-8"),
        "README.md": _readme(project, trainer).encode("utf-8"),
    }
    for name, payload in files.items():
        atomic_write_bytes(folder / name, payload)
    _write_data(folder / "data.npz", trainer.dataset)
    export_weights(trainer.network, folder / "initial.safetensors", project=project,
                   allow_nonfinite=allow_nonfinite)
    return [folder / name for name in BUNDLE_FILES]


def train_script(trainer: Trainer, project: dict[str, Any]) -> str:
    """The source of ``train.py`` for the run ``trainer`` would train (``project``: what
    it was built from, for the settings train.py cannot reproduce)."""
    run, cfg, net = trainer.run_plan, trainer.config, trainer.network
    # bplab's rule (Trainer._index_parameters): penalties on the weights of layers that
    # own a weight matrix or kernel, never on biases or normalisation scales
    penalised = [n for n, _ in net.named_parameters()
                 if n.endswith(".weight") and net.layers[n.rsplit(".", 1)[0]].has_weights]
    constants = [
        f"TASK = {py_literal(run.task)}",
        f"N_CLASSES = {py_literal(trainer.dataset.n_classes)}",
        f"TOTAL_STEPS = {py_literal(run.total_steps)}  # optimiser steps of the whole run",
        f"RUN_EPOCHS = {py_literal(run.epochs)}  # None: the run is given in steps",
        f"EARLY_STOPPING = {py_literal(cfg['early_stopping'])}",
        f"PENALISED = {py_literal(penalised)}  # the weights L1 and L2 apply to",
        f"NOT_REPRODUCED = {py_literal(_not_reproduced(project.get('training') or {}))}",
    ]
    return (TRAIN_TEMPLATE.replace("@@VERSION@@", bplab.__version__)
            .replace("@@CONSTANTS@@", "\n".join(constants)))


def _not_reproduced(training: dict[str, Any]) -> list[str]:
    return [words for key, words in _NOT_REPRODUCED.items() if training.get(key)]


def _write_data(path: Path, ds) -> None:
    """The data exactly as the Trainer sees it (split, standardised; labels as class ids)."""
    import io

    arrays = {"x_train": ds.x_train, "y_train": ds.y_train,
              "x_val": ds.x_val, "y_val": ds.y_val}
    if ds.mean is not None:
        arrays.update(mean=np.asarray(ds.mean), scale=np.asarray(ds.scale))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _readme(project: dict[str, Any], trainer: Trainer) -> str:
    run, ds = trainer.run_plan, trainer.dataset
    length = (f"{run.epochs} epochs" if run.epochs is not None else f"{run.total_steps} steps")
    facts = (f"{ds.name}: {len(ds.x_train)} training and {len(ds.x_val)} validation samples; "
             f"{trainer.network.param_count():,} parameters; {length} of "
             f"{run.steps_per_epoch} steps (batches of {run.batch_size})")
    name = str(project.get("name") or "bplab project").replace("\n", " ")
    return (README_TEMPLATE.replace("@@NAME@@", name).replace("@@FACTS@@", facts)
            .replace("@@VERSION@@", bplab.__version__))
