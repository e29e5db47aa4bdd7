"""Every write is atomic and refuses what should not be written.

Disk full and permission denied during a save or an export leave the previous file intact
and no temporary file; temporaries of a killed save are removed at the next save or open;
weights holding NaN/Inf (or a diverged run's) are written only with --allow-nonfinite; bad
data is blamed on the data; runs of absurd length are refused; history stays bounded.
"""

from __future__ import annotations

import errno
import os
import time

import numpy as np
import pytest

from bplab.cli import main
from bplab.epoch_log import EpochLog
from bplab.errors import ConfigError
from bplab.io import project as project_io
from bplab.io.export import NonFiniteError, export_weights, load_weights
from bplab.io.project import (
    WriteError,
    load_project,
    new_project,
    remove_stale_temps,
    save_project,
)
from bplab.training import Trainer


def run(args, capsys):
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _disk_full(*_args):
    raise OSError(errno.ENOSPC, "No space left on device")


def _denied(*_args, **_kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


FAULTS = {
    "disk full": ("fsync", _disk_full, "No space left on device"),
    "permission denied": ("replace", _denied, "Permission denied"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind", ["project", "safetensors", "npz", "checkpoint"])
def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(
        tmp_path, monkeypatch, fault, kind):
    trainer = Trainer(new_project())
    suffix = {"project": ".json", "checkpoint": ".ckpt.npz"}.get(kind, f".{kind}")
    path = tmp_path / f"out{suffix}"

    def write():
        if kind == "project":
            save_project(path, new_project("second"))
        elif kind == "checkpoint":
            trainer.save_checkpoint(path)
        else:
            export_weights(trainer.network, path)

    write()
    before = path.read_bytes()
    next(iter(trainer.run(max_steps=1)))  # new weights: a different file
    name, fake, words = FAULTS[fault]
    monkeypatch.setattr(project_io.os, name, fake)
    with pytest.raises(WriteError) as info:
        write()
    monkeypatch.undo()
    assert str(path) in str(info.value) and words in str(info.value)
    assert "previous file is unchanged" in str(info.value)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_the_temporary_of_a_dead_writer_is_removed_at_the_next_save_and_open(tmp_path):
    path = tmp_path / "p.json"
    save_project(path, new_project())
    dead = tmp_path / ".p.json.999999999.abc123.tmp"  # beyond any pid: its writer is gone
    mine = tmp_path / f".p.json.{os.getpid()}.def456.tmp"  # a save in progress here
    old = tmp_path / ".p.json.xyz.tmp"  # an older bplab's name: no pid, stale by age
    for tmp in (dead, mine, old):
        tmp.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 3600,) * 2)
    save_project(path, new_project())
    assert _leftovers(tmp_path) == [mine.name]
    dead.write_bytes(b"x")
    load_project(path)  # opening the project cleans up too
    assert _leftovers(tmp_path) == [mine.name]
    assert remove_stale_temps(tmp_path / "absent.json") == []


def test_metrics_csv_is_atomic_and_a_full_disk_names_the_file(tmp_path, capsys, monkeypatch):
    project = tmp_path / "p.json"
    p = new_project()
    p["training"]["epochs"] = 2
    save_project(project, p)
    csv = tmp_path / "m.csv"
    csv.write_text("previous\n")
    monkeypatch.setattr(project_io.os, "fsync", _disk_full)
    code, _, err = run(["train", str(project), "--quiet", "--metrics", str(csv)], capsys)
    assert code == 2 and str(csv) in err and "No space left" in err and "Traceback" not in err
    assert csv.read_text() == "previous\n" and _leftovers(tmp_path) == []
    monkeypatch.undo()
    code, _, _ = run(["train", str(project), "--quiet", "--metrics", str(csv)], capsys)
    assert code == 0 and csv.read_text().startswith("epoch,step,lr")


def _nan_net():
    trainer = Trainer(new_project())
    for p in trainer.network.named_parameters():
        p[1].data[...] = np.nan
    return trainer


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".onnx"])
def test_nonfinite_weights_are_not_exported_without_the_override(tmp_path, suffix):
    if suffix == ".onnx":
        pytest.importorskip("onnx")
    trainer = _nan_net()
    path = tmp_path / f"w{suffix}"
    with pytest.raises(NonFiniteError, match="NaN or Inf.*--allow-nonfinite"):
        export_weights(trainer.network, path)
    with pytest.raises(NonFiniteError):
        trainer.save_checkpoint(tmp_path / "c.npz")
    assert not any(tmp_path.iterdir())
    export_weights(trainer.network, path, allow_nonfinite=True)
    assert path.exists()


def _diverging_project(tmp_path):
    p = new_project()
    p["optimizer"] = {"type": "sgd", "lr": 1e6}
    p["training"]["epochs"] = 3
    for node in p["network"]["nodes"]:
        if node["type"] == "Tanh":
            node["type"] = "ReLU"
    path = tmp_path / "div.json"
    save_project(path, p)
    return path


def test_a_diverged_run_writes_no_checkpoint_or_export_unless_asked(tmp_path, capsys):
    path = _diverging_project(tmp_path)
    out = [str(tmp_path / "w.npz"), str(tmp_path / "c.npz")]
    args = ["train", str(path), "--quiet", "--export", out[0], "--checkpoint", out[1]]
    code, _, err = run(args, capsys)
    assert code == 3 and "not written" in err and "--allow-nonfinite" in err
    assert not any(os.path.exists(p) for p in out)
    code, _, _ = run([*args, "--allow-nonfinite"], capsys)
    assert code == 3 and all(os.path.exists(p) for p in out)
    weights = load_weights(out[0])
    assert all(np.isfinite(v).all() for v in weights.values())  # the restored weights


def test_export_command_refuses_nonfinite_weights(tmp_path, capsys):
    trainer = _nan_net()
    src = tmp_path / "nan.npz"
    export_weights(trainer.network, src, allow_nonfinite=True)
    project = tmp_path / "p.json"
    save_project(project, new_project())
    code, _, err = run(["export", str(project), "--weights", str(src), "-o",
                        str(tmp_path / "out.safetensors")], capsys)
    assert code == 2 and "NaN or Inf" in err and not (tmp_path / "out.safetensors").exists()


def test_nan_injected_into_one_gradient_is_a_divergence_naming_it():
    trainer = Trainer(new_project())
    layer = trainer.network.layers["fc2"]
    weight = dict(trainer.network.named_parameters())["fc2.weight"]
    original, calls = layer.backward, []

    def backward(grad_out):
        result = original(grad_out)
        calls.append(1)
        if len(calls) == 5:
            weight.grad[0, 0] = np.nan
        return result

    layer.backward = backward
    reports = list(trainer.run(max_steps=20))
    assert trainer.stopped == "diverged" and reports[-1].event == "diverged"
    assert "fc2" in trainer.divergence.message
    assert all(np.isfinite(v).all() for v in trainer.network.state_dict().values())


def test_huge_values_with_standardize_are_blamed_on_the_data(tmp_path, capsys):
    rows = ["a,b,label"] + [f"{i / 10},{-i / 7},{i % 2}" for i in range(60)]
    rows[5] = "1e308,0.5,1"
    (tmp_path / "big.csv").write_text("\n".join(rows) + "\n")
    p = new_project()
    p["dataset"] = {"name": "file", "path": "big.csv", "target": "label", "standardize": True}
    save_project(tmp_path / "big.json", p)
    with _no_warnings():  # no RuntimeWarning: the data is named instead
        code, _, err = run(["train", str(tmp_path / "big.json"), "--quiet"], capsys)
    assert code == 2 and "column 'a'" in err and "not finite" in err
    assert "learning rate" not in err and "diverged" not in err


class _no_warnings:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


@pytest.mark.parametrize("setting", [{"epochs": 10**30}, {"steps": 10**30},
                                     {"epochs": 10**9}])
def test_absurd_run_lengths_are_refused_saying_why(setting):
    p = new_project()
    p["training"].update(setting)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="the most one run may take.*checkpoint"):
        Trainer(p)
    assert time.perf_counter() - t0 < 2.0


def test_steps_on_the_command_line_are_bounded(tmp_path, capsys):
    save_project(tmp_path / "p.json", new_project())
    code, _, err = run(["train", str(tmp_path / "p.json"), "--steps", str(10**30)], capsys)
    assert code == 2 and "the most one run may take" in err


def test_epoch_log_keeps_a_fixed_budget_evenly_spaced_with_the_latest():
    log = EpochLog(budget=100)
    for epoch in range(100_000):
        log.append((epoch, {"loss": 1.0}))
    assert 100 <= len(log) <= 201 and log[-1][0] == 99_999 and log.seen == 100_000
    epochs = [e for e, _ in log][:-1]
    assert len(set(np.diff(epochs))) == 1  # evenly spaced
    everything = EpochLog(budget=None)
    for epoch in range(5000):
        everything.append(epoch)
    assert list(everything) == list(range(5000))


def test_trainer_epoch_losses_stay_bounded(monkeypatch):
    monkeypatch.setattr("bplab.training.EPOCH_LOSS_BUDGET", 5)
    p = new_project()
    p["dataset"]["samples"] = 40
    p["training"].update(epochs=30, batch_size="full")
    trainer = Trainer(p)
    first = None
    for report in trainer.run():
        if report.metrics and first is None:
            first = report.metrics["train_loss"]
    assert len(trainer.epoch_losses) == 6 and trainer.epoch_losses[0] == first
