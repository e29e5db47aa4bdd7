"""The PyTorch folder (bplab export --bundle): model.py + train.py reproduce `bplab train`,
alone and under torchrun, with no bplab installed; ONNX export works from a plain install."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from bplab.cli import main
from bplab.errors import ConfigError
from bplab.io.bundle import BUNDLE_FILES, export_bundle
from bplab.io.export import EXPORT_FORMATS, export_weights, load_weights

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

# what the folder's code may import: the standard library it uses, torch, numpy,
# safetensors and its own model.py
ALLOWED_IMPORTS = {"argparse", "copy", "csv", "json", "math", "os", "sys", "time", "pathlib",
                   "numpy", "torch", "safetensors", "model"}

# A tiny run that trains in well under a second in torch: the quick default-run check.
TINY = {
    "format": "bplab-project", "version": 1, "name": "tiny",
    "dataset": {"name": "xor", "samples": 40, "noise": 0.1, "val_fraction": 0.25, "seed": 1},
    "network": {"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "fc1", "type": "Dense", "units": 4},
        {"id": "act", "type": "Tanh"},
        {"id": "out", "type": "Dense", "units": 2},
    ]},
    "loss": {"type": "cross_entropy"},
    "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9},
    "training": {"epochs": 3, "batch_size": 8, "seed": 2, "dtype": "float64", "l2": 1e-3,
                 "clip_grad_norm": 1.0, "backend": "numpy"},
}


def _without_dropout(name: str, **training) -> dict:
    """An example project with its Dropout off (torch and bplab draw different masks)."""
    project = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    for node in project["network"]["nodes"]:
        if node["type"] == "Dropout":
            node["p"] = 0.0
    project["training"].update(training)
    return project


def _run_script(folder: Path, *args: str, torchrun: int = 0, timeout: float = 300):
    """Run train.py in a fresh interpreter in which `import bplab` fails."""
    code = ("import runpy, sys; sys.modules['bplab'] = None; "  # None in sys.modules: no import
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    if torchrun:
        # torchrun runs the script itself; the import check is the quick test's
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={torchrun}", str(folder / "train.py"), *args]
    else:
        cmd = [sys.executable, "-c", code, str(folder / "train.py"), *args]
    # one thread: torch's spinning worker threads crawl on a busy 2-core machine
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(cmd, cwd=folder.parent, capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _bplab_train(tmp_path: Path, project: dict, epochs: int) -> tuple[dict, list]:
    """`bplab train --dtype float64`: its final weights and per-epoch metrics."""
    path = tmp_path / "project.bplab.json"
    path.write_text(json.dumps(project), encoding="utf-8")
    out, metrics = tmp_path / "bplab.safetensors", tmp_path / "bplab.csv"
    assert main(["train", str(path), "--dtype", "float64", "--epochs", str(epochs), "--quiet",
                 "--export", str(out), "--metrics", str(metrics)]) == 0
    return load_weights(out), _rows(metrics)


def _assert_same_weights(a: dict, b: dict, rtol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        scale = max(float(np.abs(b[key]).max()), 1e-12)
        assert float(np.abs(a[key] - b[key]).max()) <= rtol * scale, key


def _imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


# -- quick checks (default run) ----------------------------------------------------------------

def test_bundle_files_and_their_imports(tmp_path):
    written = export_bundle(TINY, tmp_path / "b")
    assert [p.name for p in written] == list(BUNDLE_FILES)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(BUNDLE_FILES)
    for name in ("model.py", "train.py"):
        imported = _imports((tmp_path / "b" / name).read_text(encoding="utf-8"))
        assert imported <= ALLOWED_IMPORTS, (name, imported - ALLOWED_IMPORTS)
    with np.load(tmp_path / "b" / "data.npz", allow_pickle=False) as z:
        assert {"x_train", "y_train", "x_val", "y_val"} <= set(z.files)
        assert len(z["x_train"]) == 30 and len(z["x_val"]) == 10
    readme = (tmp_path / "b" / "README.md").read_text(encoding="utf-8")
    for words in ("python train.py", "--device cuda", "torchrun --nproc_per_node", "--nnodes"):
        assert words in readme


@needs_torch
def test_bundle_trains_as_bplab_with_bplab_unimportable(tmp_path):
    """The folder runs with bplab unimportable and ends where `bplab train` ends."""
    export_bundle(TINY, tmp_path / "b")
    printed = _run_script(tmp_path / "b", "--device", "cpu")
    assert "epoch 3, step 12" in printed
    weights, rows = _bplab_train(tmp_path, TINY, 3)
    _assert_same_weights(load_weights(tmp_path / "b" / "final.safetensors"), weights, 1e-9)
    torch_rows = _rows(tmp_path / "b" / "metrics.csv")
    assert [r["step"] for r in torch_rows] == [r["step"] for r in rows] == [4, 8, 12]
    for ours, theirs in zip(torch_rows, rows):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-9), key


def test_bundle_starts_from_the_projects_initial_weights_or_the_given_ones(tmp_path):
    from bplab.training import Trainer

    export_bundle(TINY, tmp_path / "b")
    initial = Trainer(TINY).network.state_dict()
    _assert_same_weights(load_weights(tmp_path / "b" / "initial.safetensors"), initial, 0.0)

    given = {k: v + 1.0 for k, v in initial.items()}
    export_bundle(TINY, tmp_path / "c", weights=given)
    _assert_same_weights(load_weights(tmp_path / "c" / "initial.safetensors"), given, 0.0)


def test_cli_export_bundle(tmp_path, capsys):
    from bplab.graph import Network

    project = tmp_path / "tiny.bplab.json"
    project.write_text(json.dumps(TINY), encoding="utf-8")
    net = Network(TINY["network"], dtype="float64", seed=5)
    weights = export_weights(net, tmp_path / "w.safetensors")
    assert main(["export", str(project), "-o", str(tmp_path / "out"), "--bundle",
                 "--weights", str(weights)]) == 0
    assert "train.py" in capsys.readouterr().out
    _assert_same_weights(load_weights(tmp_path / "out" / "initial.safetensors"),
                         net.state_dict(), 0.0)
    with pytest.raises(SystemExit) as exit_info:  # neither --weights nor --bundle
        main(["export", str(project), "-o", str(tmp_path / "x.onnx")])
    assert exit_info.value.code == 2
    assert "--weights" in capsys.readouterr().err


def test_bundle_refuses_a_file_as_its_folder_and_says_what_it_leaves_out(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        export_bundle(TINY, tmp_path / "file")
    amp = {**TINY, "training": {**TINY["training"], "mixed_precision": "float16"}}
    export_bundle(amp, tmp_path / "b")
    assert "mixed precision" in (tmp_path / "b" / "train.py").read_text(encoding="utf-8")


def test_every_export_format_needs_only_the_install_dependencies(tmp_path):
    """The README's first command (`pip install -e .`) brings what every format needs."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    deps = {d.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("!")[0].strip()
            for d in pyproject["project"]["dependencies"]}
    needs = {".safetensors": {"safetensors"}, ".npz": {"numpy"}, ".onnx": {"onnx"},
             ".py": set()}
    assert needs.keys() == EXPORT_FORMATS.keys()
    for ext, modules in needs.items():
        assert modules <= deps, ext
    pytest.importorskip("onnx")
    from bplab.graph import Network

    path = export_weights(Network(TINY["network"]), tmp_path / "m.onnx")
    assert path.stat().st_size > 0


# -- the proofs (slow: torch subprocesses, torchrun, a fresh install) ---------------------

@pytest.mark.slow
@needs_torch
@pytest.mark.parametrize("example", ["digits_mlp.bplab.json", "residual_mlp.bplab.json"])
def test_train_py_reproduces_bplab_train_in_float64(tmp_path, example):
    """Same weights to 1e-6 relative and the same per-epoch losses (Dropout off)."""
    project = _without_dropout(example)
    export_bundle(project, tmp_path / "b")
    _run_script(tmp_path / "b", "--dtype", "float64", "--epochs", "3", "--device", "cpu")
    weights, rows = _bplab_train(tmp_path, project, 3)
    _assert_same_weights(load_weights(tmp_path / "b" / "final.safetensors"), weights, 1e-6)
    torch_rows = _rows(tmp_path / "b" / "metrics.csv")
    assert len(torch_rows) == len(rows) == 3
    for ours, theirs in zip(torch_rows, rows):
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-6), key


@pytest.mark.slow
@needs_torch
def test_torchrun_on_two_processes_ends_on_the_single_process_weights(tmp_path):
    """gloo, 2 processes, float64, no BatchNorm or Dropout. Batches of 479 rows leave a last
    batch of one row (one process gets none); L2, clipping, a plateau schedule and early
    stopping read the all-reduced loss."""
    project = _without_dropout(
        "digits_mlp.bplab.json", batch_size=479, l2=1e-3, clip_grad_norm=1.0,
        lr_schedule={"type": "reduce_on_plateau", "patience": 0}, early_stopping={"patience": 3})
    export_bundle(project, tmp_path / "b")
    with np.load(tmp_path / "b" / "data.npz") as z:
        assert len(z["x_train"]) % 479 == 1
    args = ("--dtype", "float64", "--epochs", "4", "--device", "cpu")
    _run_script(tmp_path / "b", *args, "--out", str(tmp_path / "one"))
    printed = _run_script(tmp_path / "b", *args, "--out", str(tmp_path / "two"), torchrun=2)
    assert "over 2 process(es)" in printed
    _assert_same_weights(load_weights(tmp_path / "two" / "final.safetensors"),
                         load_weights(tmp_path / "one" / "final.safetensors"), 1e-6)
    one, two = _rows(tmp_path / "one" / "metrics.csv"), _rows(tmp_path / "two" / "metrics.csv")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [4, 8, 12, 16]
    for a, b in zip(one, two):
        for key in ("train_loss", "train_accuracy", "val_loss", "lr"):
            assert a[key] == pytest.approx(b[key], rel=1e-6), key


@pytest.mark.slow
def test_onnx_export_from_a_fresh_install(tmp_path):
    """The README's first command in an empty virtual environment, then an ONNX export."""
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                            "-d", str(tmp_path / "probe"), "onnx"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no package index reachable for a fresh install")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    src = tmp_path / "src"
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((ROOT / name).read_bytes())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", "."], cwd=src,
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    project = src / "resources" / "examples" / "xor.bplab.json"
    weights, onnx_path = tmp_path / "w.npz", tmp_path / "xor.onnx"
    for args in (["train", str(project), "--epochs", "1", "--quiet", "--export", str(weights)],
                 ["export", str(project), "--weights", str(weights), "-o", str(onnx_path)]):
        run = subprocess.run([str(python), "-m", "bplab.cli", *args], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
    check = subprocess.run([str(python), "-c", "import onnx, sys; "
                            "onnx.checker.check_model(onnx.load(sys.argv[1]))", str(onnx_path)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
