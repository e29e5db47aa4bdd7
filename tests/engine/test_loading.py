"""Issue 13: every file bplab reads is refused with a bplab error naming it and the problem."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from bad_files import (
    BAD_CHECKPOINTS,
    BAD_DATA,
    BAD_PROJECTS,
    data_project,
    good_checkpoint,
    good_weights,
    small_project,
    truncated_copy,
    write_project,
)

from bplab.datasets import load_dataset
from bplab.errors import ConfigError
from bplab.io.export import load_weights
from bplab.io.loading import (
    LoadError,
    json_depth,
    load_json,
    read_checkpoint,
    read_npz,
    read_text,
)
from bplab.io.project import load_project, project_base_dir
from bplab.training import Trainer


@pytest.mark.parametrize("case", sorted(BAD_PROJECTS))
def test_a_bad_project_file_is_a_config_error_naming_the_file(tmp_path, case):
    make, phrase = BAD_PROJECTS[case]
    path = make(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert str(path) in str(info.value) and phrase in str(info.value)


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_a_bad_data_file_is_a_config_error_naming_the_file(tmp_path, case):
    make, phrase = BAD_DATA[case]
    data = make(tmp_path)
    project = load_project(data_project(tmp_path, data))
    with pytest.raises(ConfigError) as info:
        load_dataset(project["dataset"], base_dir=tmp_path)
    assert data.name in str(info.value) and phrase in str(info.value)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    return good_checkpoint(folder)


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_a_damaged_checkpoint_is_a_config_error_naming_the_file(tmp_path, checkpoint, case):
    project, good = checkpoint
    make, phrase = BAD_CHECKPOINTS[case]
    bad = make(tmp_path, good)
    trainer = Trainer(project, steps=6)
    with pytest.raises(ConfigError) as info:
        trainer.load_checkpoint(bad)
    assert str(bad) in str(info.value) and phrase in str(info.value)


def test_the_good_checkpoint_still_resumes(tmp_path, checkpoint):
    project, good = checkpoint
    trainer = Trainer(project, steps=6)
    trainer.load_checkpoint(good)
    assert trainer.step_count == 3
    arrays, meta = read_checkpoint(good)
    assert meta["step"] == 3 and "perm" in arrays and "meta" not in arrays


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_truncated_weights_are_a_config_error(tmp_path, suffix):
    _, path = good_weights(tmp_path, suffix)
    assert load_weights(path)  # the whole file loads
    for keep in (0.0, 0.1, 0.5, 0.9, 0.999):
        bad = truncated_copy(path, tmp_path, keep)
        with pytest.raises(ConfigError, match="not a readable"):
            load_weights(bad)


def test_text_typed_weights_are_refused(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **{"fc1.weight": np.array([["1.0", "2.0"]])})
    with pytest.raises(ConfigError, match="'fc1.weight' holds <U3, not numbers"):
        load_weights(path)


def test_files_that_are_not_files_are_refused_before_reading(tmp_path):
    with pytest.raises(LoadError, match="is a folder"):
        load_project(tmp_path)
    with pytest.raises(LoadError, match="no such project file"):
        load_project(tmp_path / "missing.json")
    if hasattr(os, "mkfifo"):  # reading a pipe would wait for a writer forever
        fifo = tmp_path / "pipe.json"
        os.mkfifo(fifo)
        with pytest.raises(LoadError, match="not a regular file"):
            load_project(fifo)


def test_the_size_cap_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as fh:
        fh.truncate(10_000)  # sparse: nothing is read to find out it is too big
    with pytest.raises(LoadError, match="larger than a project file may be"):
        load_json(path, "project", max_bytes=1000)


def test_an_archive_that_unpacks_too_large_is_refused(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros(1_000_000))  # 8 MB of zeros in a few KB
    assert path.stat().st_size < 100_000
    with pytest.raises(LoadError, match="unpacks to 7.6 MB"):
        read_npz(path, "data", max_unpacked=1_000_000)
    assert read_npz(path, "data")["x"].shape == (1_000_000,)


def test_utf8_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(small_project()).encode())
    assert load_project(path)["name"] == "small"
    assert read_text(path, "project").startswith("{")


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth('{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert json_depth('"\\"[[["') == 0
    assert json_depth("[" * 100 + "]" * 100, stop_at=10) == 11


def test_a_project_pointing_at_a_broken_checkpoint_fails_in_the_cli_with_a_message(
        tmp_path, capsys):
    from bplab.cli import main

    project = small_project(epochs=1)
    (tmp_path / "junk.npz").write_text("not a zip")
    project["checkpoint"] = "junk.npz"
    path = write_project(tmp_path, "p.json", project)
    assert project_base_dir(path) == tmp_path
    with pytest.raises(SystemExit) as info:
        main(["train", str(path), "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "junk.npz" in err and "not a bplab checkpoint" in err and "Traceback" not in err
