"""The memory estimate: absurd networks are refused at once, before any allocation, with
the estimate and the limit; the estimate is within a small factor of what training takes."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from bplab.cli import main
from bplab.io.project import new_project, save_project
from bplab.memory import TooLargeError, check_fits, estimate_run, format_bytes
from bplab.training import Trainer


def _wide(units: int) -> dict:
    project = new_project()
    project["network"]["nodes"][1]["units"] = units
    return project


def test_a_billion_units_is_refused_at_once_naming_the_estimate_and_the_limit():
    t0 = time.perf_counter()
    with pytest.raises(TooLargeError) as info:
        Trainer(_wide(10**9))
    assert time.perf_counter() - t0 < 2.0  # refused before a weight is allocated
    message = str(info.value)
    assert "GB" in message and "memory available" in message and "'fc1'" in message


def test_conv_with_a_million_filters_is_refused():
    project = new_project()
    project["dataset"] = {"name": "digits"}
    project["network"] = {"nodes": [
        {"id": "in", "type": "Input", "shape": [1, 8, 8]},
        {"id": "conv", "type": "Conv2D", "filters": 10**6, "kernel_size": 3, "padding": 1},
        {"id": "flat", "type": "Flatten"},
        {"id": "out", "type": "Dense", "units": 10}]}
    with pytest.raises(TooLargeError, match="'(conv|out)'"):
        Trainer(project)


def test_the_cli_refuses_with_status_2_and_no_traceback(tmp_path, capsys):
    path = tmp_path / "wide.json"
    save_project(path, _wide(2**40))
    with pytest.raises(SystemExit) as info:
        main(["train", str(path), "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "memory available" in err and "Traceback" not in err


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("BPLAB_MEMORY_LIMIT", "1000")
    with pytest.raises(TooLargeError, match=r"more than the 1000 bytes of memory available"):
        Trainer(new_project())
    monkeypatch.setenv("BPLAB_MEMORY_LIMIT", "1e12")
    Trainer(new_project())  # the demo fits


def test_check_fits_passes_what_fits():
    est = estimate_run(new_project()["network"], batch_size=32)
    check_fits(est, limit=est.total)
    with pytest.raises(TooLargeError):
        check_fits(est, limit=est.total - 1)
    assert format_bytes(1536) == "1.5 KB" and format_bytes(10) == "10 bytes"


def test_the_estimate_is_within_a_factor_of_three_of_the_peak():
    """tracemalloc sees numpy's allocations: build the trainer and train a few steps."""
    project = new_project()
    project["dataset"]["samples"] = 2000
    project["training"]["batch_size"] = 256
    nodes = project["network"]["nodes"]
    nodes[1]["units"] = nodes[3]["units"] = 512
    est = estimate_run(project["network"], batch_size=256, dtype="float32",
                       optimizer=project["optimizer"], data_values=2000 * 2)
    tracemalloc.start()
    try:
        trainer = Trainer(project)
        for _ in trainer.run(max_steps=10):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.isfinite(trainer.epoch_losses).all() if trainer.epoch_losses else True
    assert est.total / 3 < peak < est.total * 3, (format_bytes(est.total), format_bytes(peak))
