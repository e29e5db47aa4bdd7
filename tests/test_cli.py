"""The `bplab` command line, headless."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bplab.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"


def run(args, capsys):
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_and_help(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("bplab ")
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "train" in capsys.readouterr().out


def _final_metrics(out: str) -> dict[str, float]:
    line = next(ln for ln in out.splitlines() if "val_accuracy" in ln)
    parts = dict(p.strip().rsplit(" ", 1) for p in line.split(","))
    return {k: float(v.rstrip("%")) / (100 if v.endswith("%") else 1) for k, v in parts.items()}


def test_spiral_example_reaches_97_percent(capsys, tmp_path):
    metrics_csv = tmp_path / "m.csv"
    code, out, _ = run(
        ["train", str(EXAMPLES / "spiral.bplab.json"), "--quiet", "--metrics", str(metrics_csv)],
        capsys,
    )
    assert code == 0, out
    assert _final_metrics(out)["val_accuracy"] >= 0.97
    assert "diagnosis" in out
    rows = list(csv.DictReader(metrics_csv.open()))
    assert len(rows) == 300 and {"epoch", "val_accuracy", "train_loss", "lr"} <= set(rows[0])


def test_digits_mlp_reaches_96_percent(capsys):
    code, out, _ = run(["train", str(EXAMPLES / "digits_mlp.bplab.json"), "--quiet"], capsys)
    assert code == 0, out
    assert _final_metrics(out)["val_accuracy"] >= 0.96


def test_export_and_save_initial_write_weights(capsys, tmp_path):
    final, initial = tmp_path / "w.npz", tmp_path / "w0.npz"
    code, out, err = run(
        [
            "train",
            str(EXAMPLES / "xor.bplab.json"),
            "--steps",
            "20",
            "--quiet",
            "--export",
            str(final),
            "--save-initial",
            str(initial),
        ],
        capsys,
    )
    assert code == 0, err
    with np.load(final, allow_pickle=False) as a, np.load(initial, allow_pickle=False) as b:
        assert "fc1.weight" in a.files
        assert not np.array_equal(a["fc1.weight"], b["fc1.weight"])


def test_checkpoint_resume_from_the_command_line(capsys, tmp_path):
    ckpt = tmp_path / "run.ckpt.npz"
    project = str(EXAMPLES / "xor.bplab.json")
    assert (
        run(["train", project, "--steps", "10", "--quiet", "--checkpoint", str(ckpt)], capsys)[0]
        == 0
    )
    code, out, err = run(["train", project, "--steps", "5", "--checkpoint", str(ckpt)], capsys)
    assert code == 0
    assert "resumed from" in err and "at step 10" in err
    assert "trained 15 steps" in out


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.json", "no such project file"),
        (lambda d: _write(d / "bad.json", "{ not json"), "line 1, column 3: invalid JSON"),
        (
            lambda d: _write(
                d / "net.json",
                _project_with(
                    nodes=[
                        {"id": "in", "type": "Input", "shape": [2]},
                        {"id": "fc1", "type": "Dense", "units": 0},
                    ]
                ),
            ),
            "Dense 'fc1': units must be a positive integer, received 0",
        ),
        (
            lambda d: _write(
                d / "csv.json",
                _project_with(dataset={"name": "file", "path": "data.csv"}),
                extra=("data.csv", "a,b,label\n1,2,x\n3,4\n"),
            ),
            "line 3",
        ),
    ],
)
def test_bad_input_is_one_paragraph_and_status_2(capsys, tmp_path, make, message):
    code, out, err = run(["train", str(make(tmp_path)), "--quiet"], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.startswith("bplab: error: ")


def _project_with(nodes=None, dataset=None):
    p = json.loads((EXAMPLES / "xor.bplab.json").read_text())
    if nodes is not None:
        p["network"]["nodes"] = nodes
    if dataset is not None:
        p["dataset"] = dataset
    return json.dumps(p)


def _write(path: Path, text: str, extra=None) -> Path:
    path.write_text(text)
    if extra:
        (path.parent / extra[0]).write_text(extra[1])
    return path


def test_unknown_export_extension(capsys, tmp_path):
    code, _, err = run(
        ["train", str(EXAMPLES / "xor.bplab.json"), "--export", str(tmp_path / "w.pt")], capsys
    )
    assert code == 2 and ".safetensors, .npz, .onnx, .py" in err


def test_datasets_lists_every_builtin(capsys):
    code, out, _ = run(["datasets", "--json"], capsys)
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    assert {
        "spiral",
        "circle",
        "xor",
        "digits",
        "mnist_5k",
        "iris",
        "wine",
        "breast_cancer",
    } <= names
    assert next(r for r in rows if r["name"] == "mnist_5k")["input_shape"] == [1, 28, 28]
    code, out, _ = run(["datasets"], capsys)
    assert code == 0 and "spiral" in out and "classification" in out


def test_gradcheck_command_passes_on_an_example(capsys):
    code, out, _ = run(
        [
            "gradcheck",
            str(EXAMPLES / "residual_mlp.bplab.json"),
            "--samples",
            "3",
            "--directions",
            "3",
        ],
        capsys,
    )
    assert code == 0, out
    assert "gradcheck passed" in out


def test_export_command_converts_a_checkpoint(capsys, tmp_path):
    ckpt = tmp_path / "c.npz"
    project = str(EXAMPLES / "xor.bplab.json")
    run(["train", project, "--steps", "3", "--quiet", "--checkpoint", str(ckpt)], capsys)
    out_path = tmp_path / "w.safetensors"
    code, out, err = run(["export", project, "--weights", str(ckpt), "-o", str(out_path)], capsys)
    assert code == 0, err
    assert out_path.exists()


def test_entry_point_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "bplab.cli", "datasets"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "spiral" in proc.stdout


def test_the_header_says_when_a_long_run_of_a_small_network_takes_the_compiled_kernels(capsys):
    from bplab import jit

    code, _, err = run(["train", str(EXAMPLES / "xor.bplab.json"), "--epochs", "2"], capsys)
    assert code == 0 and "CPU (numpy), float32" in err.splitlines()[0]
    if not jit.available():
        pytest.skip("numba is not installed")
    # spiral: 13 steps an epoch, 26,000 steps (past jit.PAYBACK_STEPS), about a second
    code, out, err = run(["train", str(EXAMPLES / "spiral.bplab.json"), "--epochs", "2000"],
                         capsys)
    assert code == 0 and "CPU (numpy) + compiled kernels, float32" in err.splitlines()[0]
    assert _final_metrics(out)["val_accuracy"] >= 0.95
