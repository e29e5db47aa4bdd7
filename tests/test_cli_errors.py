"""Issue 13 on the command line: every bad file or value is one message and exit 2, never a
traceback; a mistyped sub-command does not open the app; the progress bar shows a real rate."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from bad_files import (
    BAD_CHECKPOINTS,
    BAD_DATA,
    BAD_PROJECTS,
    BAD_SETTINGS,
    data_project,
    good_checkpoint,
    good_weights,
    small_project,
    truncated_copy,
    write_project,
)

from bplab import cli
from bplab.errors import ConfigError


def run(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def no_app(monkeypatch):
    """Fails the test if the command line would open the desktop app."""
    opened = []
    monkeypatch.setattr(cli, "_launch_app", lambda argv: opened.append(argv) or 0)
    return opened


def _refused(capsys, argv, phrase: str) -> str:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bplab: error: ") and phrase in err and "Traceback" not in err
    return err


@pytest.mark.parametrize("case", sorted({**BAD_PROJECTS, **BAD_SETTINGS}))
def test_a_bad_project_is_a_message_and_exit_2(tmp_path, capsys, case):
    make, phrase = {**BAD_PROJECTS, **BAD_SETTINGS}[case]
    path = make(tmp_path)
    err = _refused(capsys, ["train", str(path), "--steps", "1", "--quiet"], phrase)
    assert path.name in err or case in BAD_SETTINGS


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_a_bad_data_file_is_a_message_and_exit_2(tmp_path, capsys, case):
    make, phrase = BAD_DATA[case]
    data = make(tmp_path)
    project = data_project(tmp_path, data)
    err = _refused(capsys, ["train", str(project), "--steps", "1", "--quiet"], phrase)
    assert data.name in err


def test_seed_minus_one_on_the_command_line_is_refused(tmp_path, capsys):
    path = write_project(tmp_path, "p.json", small_project())
    _refused(capsys, ["train", str(path), "--seed", "-1", "--quiet"], "seed")


@pytest.mark.parametrize("case", ["truncated", "empty", "meta_not_json", "perm_out_of_range",
                                  "perm_wrong_length", "step_text", "rng_garbage",
                                  "string_weights", "not_a_zip", "bad_crc"])
def test_a_damaged_checkpoint_is_a_message_and_exit_2(tmp_path, capsys, case):
    project, good = good_checkpoint(tmp_path)
    make, phrase = BAD_CHECKPOINTS[case]
    bad = make(tmp_path, good)
    path = write_project(tmp_path, "p.json", project)
    err = _refused(capsys, ["train", str(path), "--checkpoint", str(bad), "--quiet"], phrase)
    assert bad.name in err


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_export_given_truncated_weights_is_a_message(tmp_path, capsys, suffix):
    project, weights = good_weights(tmp_path, suffix)
    path = write_project(tmp_path, "p.json", project)
    bad = truncated_copy(weights, tmp_path)
    _refused(capsys, ["export", str(path), "--weights", str(bad), "-o",
                      str(tmp_path / "out.npz")], bad.name)
    assert not (tmp_path / "out.npz").exists()


def test_export_given_a_truncated_checkpoint_is_a_message(tmp_path, capsys):
    project, good = good_checkpoint(tmp_path)
    path = write_project(tmp_path, "p.json", project)
    bad = truncated_copy(good, tmp_path, 0.7)
    _refused(capsys, ["export", str(path), "--weights", str(bad), "-o",
                      str(tmp_path / "out.npz")], bad.name)


def test_a_mistyped_subcommand_does_not_open_the_app(capsys, no_app):
    assert run(["trian", "x.json"]) == 2
    assert capsys.readouterr().err == (
        "bplab: error: unknown command 'trian', did you mean 'train'?\n")
    assert run(["gradchek", "x.json"]) == 2
    assert "did you mean 'gradcheck'?" in capsys.readouterr().err
    assert run(["frobnicate"]) == 2
    assert "the commands are train, export" in capsys.readouterr().err
    assert no_app == []


def test_a_project_path_still_opens_the_app(tmp_path, no_app):
    path = write_project(tmp_path, "p.json", small_project())
    assert run([str(path)]) == 0
    assert run(["missing.json"]) == 0  # the app says the file is missing, in its window
    assert run(["--train", "--quit-after", "1"]) == 0
    assert no_app == [[str(path)], ["missing.json"], ["--train", "--quit-after", "1"]]


def test_gradcheck_with_zero_directions_is_refused(tmp_path, capsys):
    path = write_project(tmp_path, "p.json", small_project())
    assert run(["gradcheck", str(path), "--directions", "0"]) == 2
    assert "--directions: must be >= 1, received 0" in capsys.readouterr().err
    assert run(["gradcheck", str(path), "--samples", "0"]) == 2
    from bplab.gradcheck import gradcheck

    with pytest.raises(ConfigError, match="directions must be at least 1"):
        gradcheck(lambda: 0.0, {}, dict, directions=0)


def test_gradcheck_with_directions_still_checks(tmp_path, capsys):
    path = write_project(tmp_path, "p.json", small_project())
    assert run(["gradcheck", str(path), "--directions", "2"]) == 0
    assert "gradcheck passed" in capsys.readouterr().out


def test_the_progress_lines_show_a_real_rate(tmp_path, capsys):
    path = write_project(tmp_path, "p.json", small_project(epochs=20))
    assert run(["train", str(path)]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("epoch ")]
    assert len(lines) >= 10
    rates = [float(re.search(r", ([\d,.]+) steps/s$", ln).group(1).replace(",", ""))
             for ln in lines]
    assert all(r > 0 for r in rates), lines


def _bplab(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)  # as on a machine without a display
    return subprocess.run([sys.executable, "-c", "import sys; from bplab.cli import main; "
                           "sys.exit(main())", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_end_to_end_a_latin1_project_and_a_typo_exit_2_without_a_traceback(tmp_path):
    latin1 = BAD_PROJECTS["latin1"][0](tmp_path)
    out = _bplab("train", str(latin1), cwd=tmp_path)
    assert out.returncode == 2 and "not UTF-8" in out.stderr and "Traceback" not in out.stderr
    out = _bplab("trian", "x.json", cwd=tmp_path)
    assert out.returncode == 2 and "did you mean 'train'" in out.stderr
