"""The per-process race: the worker's JSON line, equal work, the report's arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bplab.bench.processes import _contenders, _env, _initial_state, _result, thread_count
from bplab.bench.workloads import WORKLOADS


def _worker(*args: str, threads: int = 1) -> dict:
    out = subprocess.run([sys.executable, "-m", "bplab.bench.worker", *args],
                         capture_output=True, text=True, env=_env(threads), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def state_a(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "state.npz"
    n = _initial_state(WORKLOADS["A"], 32, 1000, path, "numpy")
    assert n == 1000
    return path


def test_bplab_and_the_numpy_loop_do_the_same_steps_in_their_own_processes(state_a):
    """Same weights, data and batch order in two processes: the same loss after the timed
    steps, which cross an epoch end (1000 samples, batch 32: 32 steps an epoch)."""
    common = ["A", "--steps", "40", "--warmup", "3", "--state", str(state_a),
              "--launched", "0"]
    ours = _worker("bplab", *common, threads=1)
    ref = _worker("numpy-ref", *common, threads=1)
    assert ours["contender"] == "bplab" and ref["contender"] == "numpy-ref"
    assert ours["steps"] == ref["steps"] == 40 and ours["batch"] == 32
    assert ours["seconds"] > 0 and ref["seconds"] > 0
    assert ours["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert ours["threads"]["OPENBLAS_NUM_THREADS"] == "1"
    assert ours["threads"]["OMP_NUM_THREADS"] == "1"


def test_the_references_need_the_initial_weights():
    proc = subprocess.run([sys.executable, "-m", "bplab.bench.worker", "numpy-ref", "A",
                           "--steps", "2"], capture_output=True, text=True, env=_env(1))
    assert proc.returncode == 2 and "--state" in proc.stderr


def test_contenders_per_backend():
    a, f = WORKLOADS["A"], WORKLOADS["F"]
    assert _contenders(a, "numpy", True) == [("bplab-numpy", "bplab"),
                                             ("numpy-ref", "numpy-ref"),
                                             ("torch-cpu", "torch")]
    assert _contenders(f, "numpy", False) == [("bplab-numpy", "bplab")]  # no hand loop for F
    assert _contenders(a, "cupy", True) == [("bplab-cupy", "bplab"), ("torch-cuda", "torch")]
    assert thread_count(3) == 3 and thread_count() >= 1


def test_best_median_range_and_ratios_of_best_figures():
    def run(seconds: float, loss: float = 0.5) -> dict:
        return {"steps": 100, "batch": 10, "seconds": seconds, "loss": loss,
                "startup_s": 0.3, "threads": {}}

    res = _result(WORKLOADS["A"], 10, 1000, 100, 2, {
        "bplab-numpy": [run(0.5), run(0.25), run(1.0)],
        "torch-cpu": [run(1.0), run(2.0), run(1.0)],
    })
    ours, theirs = res["contenders"]
    assert ours["samples_per_s"]["best"] == pytest.approx(4000.0)  # 1000 samples in 0.25 s
    assert ours["samples_per_s"]["median"] == pytest.approx(2000.0)
    assert ours["samples_per_s"]["min"] == pytest.approx(1000.0)
    assert theirs["samples_per_s"]["best"] == pytest.approx(1000.0)
    assert res["ratios"] == {"bplab-numpy/torch-cpu": pytest.approx(4.0)}


def test_the_environment_pins_every_thread_pool():
    env = _env(2)
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"


def test_the_worker_needs_a_step_of_warm_up_to_start_its_timer():
    proc = subprocess.run([sys.executable, "-m", "bplab.bench.worker", "bplab", "A",
                           "--steps", "3", "--warmup", "0"], capture_output=True, text=True,
                          env=_env(1))
    assert proc.returncode == 2 and "--warmup and --steps must be at least 1" in proc.stderr
