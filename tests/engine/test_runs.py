"""Run history (bplab.runs, bplab.io.run_history): records, curves, changes in words, files."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from bplab.cli import main as cli_main
from bplab.errors import ConfigError
from bplab.io.project import load_project, new_project, save_project
from bplab.io.run_history import append_run
from bplab.runs import (
    MAX_POINTS,
    RunRecord,
    RunRecorder,
    best_of_runs,
    compare_runs,
    decimate,
    describe_changes,
    next_run_name,
    record_run,
    run_problems,
    validate_runs,
)
from bplab.training import Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def small_project(epochs: int = 3) -> dict:
    p = new_project("Small")
    p["dataset"]["samples"] = 120
    p["training"].update(epochs=epochs, diagnostics_every=2)
    return p


def trained_record(project: dict, name: str = "Run 1", previous=None) -> RunRecord:
    trainer = Trainer(project)
    recorder = RunRecorder()
    for _ in recorder.watch(trainer.run()):
        pass
    return record_run(recorder, project, name=name, outcome=trainer.stopped,
                      previous=previous)


# -- curves -----------------------------------------------------------------------------------
def test_decimate_keeps_the_ends_and_at_most_the_budget():
    x = list(range(10_001))
    xs, cols = decimate(x, {"y": [v * 2 for v in x]}, max_points=2000)
    assert len(xs) == 2000 and xs[0] == 0 and xs[-1] == 10_000
    assert cols["y"] == [v * 2 for v in xs]
    gaps = {b - a for a, b in zip(xs, xs[1:])}
    assert max(gaps) - min(gaps) <= 1  # evenly spaced
    assert decimate([1, 2], {"y": [3, 4]}) == ([1, 2], {"y": [3, 4]})


@dataclass
class FakeStats:
    layer: str
    grad_norm: float


@dataclass
class FakeReport:
    step: int
    epoch: int
    epoch_progress: float
    elapsed: float
    metrics: dict | None = None
    layers: tuple | None = None
    findings: tuple | None = None
    divergence: object = None


def test_a_very_long_run_keeps_at_most_2000_points_per_curve_and_bounded_memory():
    rec = RunRecorder()
    n = 50_000
    longest = 0
    for step in range(1, n + 1):
        rec.add(FakeReport(step, step, float(step), step * 1e-3,
                           metrics={"train_loss": 1.0 / step, "val_loss": 2.0 / step},
                           layers=(FakeStats("fc1", 0.5), FakeStats("fc2", float("nan")))))
        longest = max(longest, len(rec.epochs.rows), len(rec.grad_norms.rows))
    assert longest <= 2 * MAX_POINTS + 1
    record = record_run(rec, small_project(), name="long", outcome="done")
    for table in (record.curves, record.grad_norms):
        lengths = {len(v) for v in table.values()}
        assert lengths == {MAX_POINTS}
    assert record.curves["epoch"][0] == 1.0 and record.curves["epoch"][-1] == float(n)
    assert record.grad_norms["fc2"][0] is None  # NaN is stored as null (JSON has no NaN)
    assert record.layers == ["fc1", "fc2"]
    x, y = record.series("val_loss")
    assert len(x) == len(y) == MAX_POINTS and y[-1] == pytest.approx(2.0 / n, rel=1e-3)


def test_a_resent_report_counts_once():
    rec = RunRecorder()
    r = FakeReport(5, 1, 1.0, 0.1, metrics={"train_loss": 0.5},
                   layers=(FakeStats("fc1", 0.1),))
    rec.add(r)
    rec.add(r)
    record = record_run(rec, small_project(), name="r", outcome="stopped")
    assert record.curves == {"epoch": [1.0], "train_loss": [0.5]}
    assert record.grad_norms == {"step": [5], "fc1": [0.1]}


# -- records ----------------------------------------------------------------------------------
def test_record_of_a_real_run_round_trips_through_json():
    project = small_project()
    record = trained_record(project)
    assert record.outcome == "done" and record.steps > 0 and record.epochs == 3
    assert record.curves["epoch"] == [1.0, 2.0, 3.0]
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy"} <= set(record.curves)
    assert record.layers == ["fc1", "fc2", "out"]
    assert record.metrics["val_accuracy"] is not None
    assert record.settings["network"] == project["network"]
    assert "ui" not in record.settings and record.changes == ()
    data = json.loads(json.dumps(record.to_json()))
    assert RunRecord.from_json(data) == record
    data["future"] = {"kept": True}
    assert RunRecord.from_json(data).to_json()["future"] == {"kept": True}


def test_the_second_run_says_what_changed():
    first = trained_record(small_project(epochs=1))
    project = small_project(epochs=1)
    project["optimizer"]["lr"] = 0.001
    project["network"]["nodes"][1]["init"] = "he_normal"
    second = trained_record(project, "Run 2", previous=first)
    assert second.changes == ("fc1.init xavier_uniform -> he_normal", "lr 0.01 -> 0.001")


def test_invalid_records_name_every_problem():
    record = trained_record(small_project(epochs=1)).to_json()
    bad = copy.deepcopy(record)
    bad["outcome"] = "exploded"
    bad["curves"]["val_loss"] = bad["curves"]["val_loss"][:-1] + ["high"]
    bad["grad_norms"]["fc1"] = []
    del bad["settings"]
    problems = run_problems(bad, "runs[0]")
    text = "\n".join(problems)
    assert "runs[0] ('Run 1'): 'outcome' must be one of done, early_stop" in text
    assert "'settings' is missing" in text
    assert "'curves'.val_loss must hold numbers (or null)" in text
    assert "'grad_norms'.fc1 has 0 points, 'step' has" in text
    with pytest.raises(ConfigError, match="'outcome' must be one of"):
        RunRecord.from_json(bad)
    too_long = copy.deepcopy(record)
    too_long["curves"] = {key: [0.0] * (MAX_POINTS + 1) for key in ("epoch", "train_loss")}
    assert any("more than 2000: decimate it" in p for p in run_problems(too_long))
    with pytest.raises(ConfigError, match="'runs' must be a list"):
        validate_runs({"Run 1": record})
    with pytest.raises(ConfigError, match="repeats the id"):
        validate_runs([record, record])


def test_next_run_name():
    assert next_run_name([]) == "Run 1"
    assert next_run_name([{"name": "Run 1"}, {"name": "before the fix"}]) == "Run 3"
    assert next_run_name([{"name": "Run 7"}]) == "Run 8"


# -- changes in words --------------------------------------------------------------------------
def test_describe_changes_in_words():
    old = json.loads((EXAMPLES / "vanishing_gradients.bplab.json").read_text())
    new = copy.deepcopy(old)
    nodes = new["network"]["nodes"]
    nodes[1]["init"] = "he_normal"
    nodes[2]["type"] = "ReLU"
    nodes.insert(2, {"id": "bn1", "type": "BatchNorm"})
    del nodes[-2]["type"]  # an option that disappears reads as back to default
    nodes[-2]["type"] = "Sigmoid"
    new["loss"] = "mse"
    new["optimizer"]["lr"] = 0.01
    new["training"]["clip_grad_norm"] = 1.0
    new["dataset"]["noise"] = 0.2
    changes = describe_changes(old, new)
    assert changes == [
        "fc1.init normal(std=1) -> he_normal",
        "added bn1 (BatchNorm) after fc1",
        "sig1 Sigmoid -> ReLU",
        "dataset.noise 0.1 -> 0.2",
        "loss cross_entropy -> mse",
        "lr 0.1 -> 0.01",
        "clip_grad_norm default -> 1",
    ]
    assert describe_changes(old, copy.deepcopy(old)) == []
    removed = copy.deepcopy(old)
    del removed["network"]["nodes"][3:5]  # fc2, sig2: fc3 now reads sig1
    assert describe_changes(old, removed) == ["removed fc2 (Dense)", "removed sig2 (Sigmoid)"]
    fixed = copy.deepcopy(old)  # the same change on many nodes is one phrase
    nodes = fixed["network"]["nodes"]
    for i in range(10, 0, -1):  # after fc_i, listed at 2 * i - 1
        nodes.insert(2 * i, {"id": f"bn{i}", "type": "BatchNorm"})
    for node in nodes:
        node["type"] = "ReLU" if node["type"] == "Sigmoid" else node["type"]
    assert describe_changes(old, fixed) == ["added 10 BatchNorm (bn1 … bn10) after fc1 … fc10",
                                            "sig1 … sig10 Sigmoid -> ReLU"]
    rewired = copy.deepcopy(old)
    rewired["network"]["nodes"][3]["inputs"] = ["in"]
    assert describe_changes(old, rewired) == ["fc2.inputs [sig1] -> [in]"]


# -- project files -----------------------------------------------------------------------------
def test_append_run_is_atomic_and_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "p.bplab.json"
    project = small_project(epochs=1)
    project["ui"] = {"positions": {"in": [0, 0]}}
    save_project(path, project)
    record = trained_record(project)
    append_run(path, record)
    append_run(path, record.to_json() | {"id": "other", "name": "Run 2"})
    saved = load_project(path)
    assert [r["name"] for r in saved["runs"]] == ["Run 1", "Run 2"]
    assert saved["ui"] == project["ui"]
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="repeats the id"):
        append_run(path, record)
    assert path.read_bytes() == before  # a refused append leaves the file as it was
    assert [p.name for p in tmp_path.iterdir()] == ["p.bplab.json"]  # no temporary left


def test_cli_record_appends_each_run_with_its_changes(tmp_path, capsys):
    path = tmp_path / "v.bplab.json"
    project = json.loads((EXAMPLES / "vanishing_gradients.bplab.json").read_text())
    path.write_text(json.dumps(project))
    assert cli_main(["train", str(path), "--epochs", "2", "--quiet"]) == 0
    assert "runs" not in load_project(path)  # only with --record
    assert cli_main(["train", str(path), "--epochs", "10", "--quiet", "--record"]) == 0
    project = load_project(path)
    project["optimizer"]["lr"] = 0.01
    save_project(path, project)
    assert cli_main(["train", str(path), "--epochs", "3", "--quiet", "--record"]) == 0
    runs = load_project(path)["runs"]
    assert [r["name"] for r in runs] == ["Run 1", "Run 2"]
    assert [r["source"] for r in runs] == ["cli", "cli"]
    assert runs[0]["settings"]["training"]["epochs"] == 10
    assert runs[1]["changes"] == ["lr 0.1 -> 0.01", "epochs 10 -> 3"]
    assert runs[1]["curves"]["epoch"] == [1.0, 2.0, 3.0]
    assert "vanishing_gradients" in {d["code"] for d in runs[0]["diagnosis"]}
    assert runs[0]["grad_norms"]["fc1"]

    # bplab runs: the two side by side, the best of each figure marked, what changed
    capsys.readouterr()
    assert cli_main(["runs", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["#", "run", "ended", "epochs", "steps", "time"]
    assert lines[1].split()[:5] == ["1", "Run", "1", "finished", "10"]
    assert lines[2].split()[:5] == ["2", "Run", "2", "finished", "3"]
    assert "  2 Run 2: lr 0.1 -> 0.01; epochs 10 -> 3" in out
    assert "  1 Run 1: Vanishing gradients" in out
    best = min((0, 1), key=lambda i: runs[i]["metrics"]["val_loss"])
    assert f"{runs[best]['metrics']['val_loss']:.4g}*" in lines[1 + best]
    assert f"{runs[1 - best]['metrics']['val_loss']:.4g}*" not in lines[2 - best]
    assert cli_main(["runs", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["Run 1", "Run 2"]
    assert rows[1]["changes"] == runs[1]["changes"]
    assert rows[0]["metrics"]["val_loss"] == runs[0]["metrics"]["val_loss"]
    assert "val_loss" in rows[best]["best"] and "val_loss" not in rows[1 - best]["best"]


def test_runs_command_on_a_project_without_runs(tmp_path, capsys):
    path = tmp_path / "x.bplab.json"
    path.write_text((EXAMPLES / "xor.bplab.json").read_text())
    assert cli_main(["runs", str(path)]) == 0
    assert "no recorded runs yet" in capsys.readouterr().out
    assert cli_main(["runs", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_best_of_runs_keeps_ties_and_skips_missing_and_non_finite():
    def rec(i, **metrics):
        return RunRecord(f"r{i}", f"R{i}", "", "done", 1, 1, 0.1, {}, metrics=metrics)

    runs = [rec(0, val_loss=0.3, val_accuracy=0.9), rec(1, val_loss=0.3),
            rec(2, val_loss=float("nan"), val_accuracy=0.8), rec(3, train_loss=0.1)]
    assert best_of_runs(runs) == {"val_loss": {0, 1}, "val_accuracy": {0}}
    rows = compare_runs(runs)
    assert [r["best"] for r in rows] == [["val_loss", "val_accuracy"], ["val_loss"], [], []]
    assert list(rows[0]["metrics"]) == ["val_loss", "val_accuracy"]  # COMPARED's order
    assert rows[2]["metrics"] == {"val_accuracy": 0.8}  # a NaN is no figure
    json.dumps(rows, allow_nan=False)  # strict JSON for scripts
