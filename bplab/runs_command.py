"""``bplab runs PROJECT [--json]``: a project's recorded runs side by side, headless.

The same comparison as the app's Runs panel (:func:`bplab.runs.compare_runs`): one line a
run with how it ended, its length and its final figures, the best of each figure marked
``*``; then what each run changed since the one before, and its diagnosis. Runs come from
``bplab train PROJECT --record`` and from the app (saved with the project).
"""

from __future__ import annotations

import argparse
import json

from bplab.io.project import load_project
from bplab.runs import COMPARED, OUTCOME_WORDS, RunRecord, compare_runs, figure_text

__all__ = ["cmd_runs", "format_runs"]

# column titles of the figures (narrow: a terminal is 80-odd characters wide)
_TITLES = {"train_loss": "train loss", "val_loss": "val loss", "train_accuracy": "train acc",
           "val_accuracy": "val acc", "train_r2": "train R²", "val_r2": "val R²",
           "val_mae": "val MAE"}


def format_runs(rows: list[dict]) -> str:
    """The text ``bplab runs`` prints for :func:`~bplab.runs.compare_runs` rows."""
    keys = [k for k in COMPARED if any(k in r["metrics"] for r in rows)]
    head = ["#", "run", "ended", "epochs", "steps", "time", *(_TITLES[k] for k in keys)]
    table = [head]
    for i, r in enumerate(rows, 1):
        table.append([str(i), r["name"], OUTCOME_WORDS.get(r["outcome"], r["outcome"]),
                      str(r["epochs"]), f"{r['steps']:,}", f"{r['elapsed']:.1f} s",
                      *(("-" if k not in r["metrics"] else figure_text(k, r["metrics"][k])
                         + ("*" if k in r["best"] else " ")) for k in keys)])
    left = {1, 2}  # names and outcomes read from the left; numbers line up on the right
    widths = [max(len(row[c]) for row in table) for c in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if c in left else cell.rjust(w)
                       for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    if any(r["best"] for r in rows):
        lines.append("* the best of these runs")
    changed = [(i, r) for i, r in enumerate(rows, 1) if r["changes"]]
    if changed:
        lines += ["", "Changed since the run before:"]
        lines += [f"  {i} {r['name']}: " + "; ".join(r["changes"]) for i, r in changed]
    lines += ["", "Diagnosis:"]
    lines += [f"  {i} {r['name']}: " + ("; ".join(r["diagnosis"]) or "no problems found")
              for i, r in enumerate(rows, 1)]
    return "\n".join(lines)


def cmd_runs(args: argparse.Namespace) -> int:
    project = load_project(args.project)  # its runs checked on loading
    records = [RunRecord.from_json(data, f"runs[{i}]")
               for i, data in enumerate(project.get("runs", []))]
    rows = compare_runs(records)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"{args.project}: no recorded runs yet. Record one with `bplab train "
              f"{args.project} --record`, or train the project in the app and save it.")
    else:
        print(format_runs(rows))
    return 0
