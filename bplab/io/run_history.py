"""Recorded runs in project files: append one atomically, as ``bplab train --record`` does.

The records themselves (what a run keeps, how it is checked, what changed since the one
before) are :mod:`bplab.runs`; this module adds the file side. It lives apart from
:mod:`bplab.runs` because the project loader validates ``"runs"`` with that module, and
this one reads and writes projects with the loader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bplab.io.project import load_project, save_project
from bplab.runs import RunRecord, RunRecorder, next_run_name, record_run

__all__ = ["append_run", "record_cli_run"]


def append_run(project_path: str | os.PathLike, record: RunRecord | Mapping[str, Any]
               ) -> dict[str, Any]:
    """Add ``record`` at the end of the project file's ``"runs"``; the file is read again
    first (so edits made since it was loaded are kept) and replaced atomically. Returns
    the project as written."""
    data = record.to_json() if isinstance(record, RunRecord) else dict(record)
    project = load_project(project_path)
    project["runs"] = [*project.get("runs", []), data]
    save_project(project_path, project)
    return project


def record_cli_run(project_path: str | os.PathLike, project: Mapping[str, Any], trainer: Any,
                   recorder: RunRecorder, *, epochs: int | None = None,
                   steps: int | None = None) -> RunRecord | None:
    """``bplab train --record``: append the run ``recorder`` watched to the project file.

    ``project`` is the project as trained (the CLI's ``--seed`` applied); ``epochs`` or
    ``steps`` given on the command line are what the run's settings say it trained. None
    when no step was trained (nothing to record).
    """
    if recorder.empty:
        return None
    settings = {**project, "training": dict(project.get("training") or {})}
    if epochs is not None:
        settings["training"].pop("steps", None)
        settings["training"]["epochs"] = epochs
    if steps is not None:
        settings["training"]["steps"] = steps
    runs = load_project(project_path).get("runs", [])
    outcome = trainer.stopped if trainer.stopped in ("done", "early_stop", "diverged") \
        else "stopped"
    record = record_run(recorder, settings, name=next_run_name(runs),
                        previous=runs[-1] if runs else None, outcome=outcome, source="cli")
    append_run(project_path, record)
    return record
