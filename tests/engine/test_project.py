"""Project files: round trip, unknown keys, versions, atomic saves."""

from __future__ import annotations

import json
import os

import pytest

from bplab.errors import ConfigError
from bplab.io.project import load_project, new_project, save_project


def test_round_trip_keeps_unknown_keys(tmp_path):
    p = new_project("Round trip")
    p["ui"] = {"positions": {"in": [0, 0], "fc1": [0, 120]}, "zoom": 1.5}
    p["network"]["nodes"][1]["comment"] = "kept"
    p["future_section"] = {"anything": [1, 2, 3]}
    path = tmp_path / "p.json"
    save_project(path, p)
    assert load_project(path) == p


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.pop("version"), "has no 'version'"),
        (lambda p: p.update(version=2), "format version 2, newer than this bplab"),
        (lambda p: p.update(version="1"), "'version' must be an integer"),
        (lambda p: p.update(format="other"), "'format' must be 'bplab-project'"),
        (lambda p: p.pop("network"), "has no 'network' section"),
        (lambda p: p["training"].update(epoch=3), "unknown training setting 'epoch'"),
    ],
)
def test_bad_envelopes_are_clear_errors(tmp_path, change, message):
    p = new_project()
    change(p)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(p))
    with pytest.raises(ConfigError, match=message):
        load_project(path)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "format": "bplab-project",\n  "version": 1,,\n}')
    with pytest.raises(ConfigError, match=r"bad.json line 3, column \d+: invalid JSON"):
        load_project(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such project file"):
        load_project(tmp_path / "nope.json")


def test_a_crash_mid_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    save_project(path, new_project("old"))

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_project(path, new_project("new"))
    assert load_project(path)["name"] == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"], "no temporary file is left behind"


def _a_run(name: str = "Run 1") -> dict:
    return {"id": name.replace(" ", "-"), "name": name, "created": "2026-12-06T10:00:00+00:00",
            "outcome": "done", "steps": 10, "epochs": 2, "elapsed": 0.5,
            "settings": {"network": new_project()["network"]},
            "curves": {"epoch": [1.0, 2.0], "train_loss": [0.7, None]},
            "grad_norms": {"step": [5, 10], "fc1": [0.01, 0.02]}}


def test_runs_are_accepted_kept_and_checked(tmp_path):
    p = new_project()
    p["runs"] = [_a_run(), _a_run("Run 2")]
    path = tmp_path / "p.json"
    save_project(path, p)
    assert load_project(path) == p
    # curves take one line each, not one line per point
    assert '"train_loss": [0.7, null]' in path.read_text()
    bad = json.loads(path.read_text())
    bad["runs"][1]["curves"]["train_loss"] = [0.7]
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match=r"p.json: runs\[1\] \('Run 2'\): 'curves'.train_loss "
                                          r"has 1 points, 'epoch' has 2"):
        load_project(path)


def test_saving_keeps_the_file_mode_and_strings_as_they_are(tmp_path):
    p = new_project("shape [1,\n2] stays")
    path = tmp_path / "p.json"
    save_project(path, p)
    os.chmod(path, 0o640)
    save_project(path, p)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert load_project(path)["name"] == "shape [1,\n2] stays"
    assert '"shape": [2]' in path.read_text()
