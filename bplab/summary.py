"""What ``bplab train PROJECT --summary PATH.json`` writes: a run in a few numbers.

>>> summary = run_summary(trainer, project)          # doctest: +SKIP
>>> summary["diverged"]                              # doctest: +SKIP
{'step': 2, 'layer': 'fc1', 'message': 'Training diverged at step 2: ...'}

Keys: ``steps`` and ``epochs`` taken, ``train_loss`` and ``val_loss`` (and ``val_accuracy``
for classification) of the weights as they stand at the end (after a divergence: the
restored healthy ones), ``diverged`` (None, or the step, the layer that blew up first, the
engine's message, the healthy step restored and the suggested learning rate), and
``findings``: the diagnosis as :func:`bplab.fixes.findings_to_json` writes it, each fix with
its ``id``, ``description`` and the ``edits`` it makes on the project. Numbers that are not
finite become None (JSON has no NaN).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bplab.fixes import findings_to_json
from bplab.io.project import atomic_write_bytes

__all__ = ["run_summary", "write_summary"]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def run_summary(trainer: Any, project: Mapping[str, Any],
                metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The summary of ``trainer``'s run of ``project``; ``metrics`` are the final ones when
    the caller has them (``trainer.evaluate()`` otherwise)."""
    metrics = dict(metrics) if metrics is not None else trainer.evaluate()
    div = trainer.divergence
    out: dict[str, Any] = {
        "steps": int(trainer.step_count),
        "epochs": int(trainer.epoch),
        "stopped": trainer.stopped,
        "train_loss": _number(metrics.get("train_loss")),
        "val_loss": _number(metrics.get("val_loss")),
    }
    if trainer.task == "classification":
        out["val_accuracy"] = _number(metrics.get("val_accuracy"))
    else:
        out["val_r2"] = _number(metrics.get("val_r2"))
    out["diverged"] = None if div is None else {
        "step": int(div.step),
        "layer": div.layer,
        "message": div.message,
        "where": div.where,
        "blew_up": div.blew_up,
        "healthy_step": int(div.healthy_step),
        "suggested_lr": _number(div.suggested_lr),
    }
    out["findings"] = findings_to_json(trainer.findings, project)
    return out


def write_summary(path: str | Path, trainer: Any, project: Mapping[str, Any],
                  metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Write :func:`run_summary` as JSON to ``path`` (atomically); return it."""
    summary = run_summary(trainer, project, metrics)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))
    return summary
