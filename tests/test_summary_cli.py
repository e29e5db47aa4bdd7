"""`bplab train PROJECT --summary PATH.json`: the keys, the divergence's layer, exit 3."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bplab.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"


def _project(tmp_path: Path, name: str, **changes) -> Path:
    p = json.loads((EXAMPLES / f"{name}.bplab.json").read_text())
    for section, value in changes.items():
        p[section] = value
    path = tmp_path / f"{name}.bplab.json"
    path.write_text(json.dumps(p))
    return path


def _summary(path: Path, *extra: str) -> tuple[int, dict]:
    out = path.with_suffix(".summary.json")
    rc = main(["train", str(path), "--quiet", "--summary", str(out), *extra])
    return rc, json.loads(out.read_text())


def _check_findings(findings: list) -> None:
    for f in findings:
        assert {"code", "severity", "layers", "fixes"} <= set(f)
        for fix in f["fixes"]:
            assert isinstance(fix["id"], str) and fix["id"].startswith(f["code"] + "/")
            assert isinstance(fix["description"], str) and isinstance(fix["edits"], list)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_spiral_at_lr_1e6_exits_3_and_the_summary_names_the_layer(tmp_path, opt):
    path = _project(tmp_path, "spiral", optimizer={"type": opt, "lr": 1e6})
    rc, s = _summary(path)
    assert rc == 3
    assert s["diverged"]["layer"] == "fc1" and s["diverged"]["step"] == 2
    assert "'fc1'" in s["diverged"]["message"]
    assert s["findings"][0]["code"] == "diverged"
    lower = s["findings"][0]["fixes"][0]
    assert lower["id"] == "diverged/lower_lr" and lower["edits"]
    assert not [x for f in s["findings"] for x in f["fixes"]
                if x.get("action") == "scale_lr" and x["params"]["factor"] > 1]
    _check_findings(s["findings"])


def test_exploding_example_exits_3_naming_the_layer_and_resumes_at_the_suggested_rate(
        tmp_path):
    path = _project(tmp_path, "exploding_gradients")
    rc, s = _summary(path)
    assert rc == 3 and s["diverged"]["layer"] == "fc1"
    lr = s["diverged"]["suggested_lr"]
    assert lr is not None and lr < 1e-3
    p = json.loads(path.read_text())
    p["optimizer"]["lr"] = lr
    path.write_text(json.dumps(p))
    rc, s = _summary(path)
    assert rc == 0 and s["diverged"] is None
    assert math.isfinite(s["train_loss"]) and s["val_accuracy"] > 0.8


def test_a_healthy_run_summary_has_every_key(tmp_path):
    path = _project(tmp_path, "xor")
    rc, s = _summary(path, "--epochs", "3")
    assert rc == 0
    assert {"steps", "epochs", "train_loss", "val_loss", "val_accuracy", "diverged",
            "findings"} <= set(s)
    assert s["epochs"] == 3 and s["steps"] > 0 and s["diverged"] is None
    _check_findings(s["findings"])
