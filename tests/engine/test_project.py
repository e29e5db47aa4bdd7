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
