"""``bplab fix PROJECT SUMMARY.json FIX_ID -o OUT.json``: one diagnosis fix, headless.

The summary is the one ``bplab train PROJECT --summary SUMMARY.json`` writes; its
``findings`` (:func:`bplab.fixes.findings_to_json`) name every fix by a stable id such as
``vanishing_gradients/relu_he``. The fix's edits come from :func:`bplab.fixes.edits_for`, the
function behind the app's Apply button, so both give the same project.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bplab.diagnostics import Fix
from bplab.errors import BplabError
from bplab.fixes import Edit, apply_edits, edits_for, fix_from_summary
from bplab.io.project import load_project, save_project

__all__ = ["cmd_fix", "fix_project"]


def fix_project(project_path: str | Path, summary_path: str | Path, fix_id: str,
                out_path: str | Path) -> tuple[Fix, list[Edit], dict]:
    """Apply fix ``fix_id`` of the summary at ``summary_path`` to the project at
    ``project_path`` and save the result at ``out_path``: the fix, its edits, the new project.
    """
    project = load_project(project_path)
    try:
        summary = json.loads(Path(summary_path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BplabError(f"{summary_path}: not a JSON run summary ({exc.msg}, line {exc.lineno})"
                         ": write it with `bplab train PROJECT --summary PATH.json`.") from exc
    fix = fix_from_summary(summary, fix_id, project)
    edits = edits_for(fix, project)
    fixed = apply_edits(project, edits)
    save_project(out_path, fixed)
    return fix, edits, fixed


def cmd_fix(args: argparse.Namespace) -> int:
    fix, edits, fixed = fix_project(args.project, args.summary, args.fix_id, args.output)
    print(f"{args.fix_id}: {fix.description}\n{len(edits)} edit(s); wrote {args.output} "
          f"({len(fixed['network']['nodes'])} nodes)", file=sys.stderr)
    return 0
