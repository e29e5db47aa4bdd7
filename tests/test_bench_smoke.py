"""`bplab bench --quick --json` runs end to end and reports what it promises (no timings)."""

from __future__ import annotations

import json
import math

import pytest

from bplab.cli import main


# The whole quick bench (every workload and section) takes a minute or more: the tests that
# read it are marked slow, so only `python -m pytest -m slow` pays for it.
@pytest.fixture(scope="module")
def quick_result():
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["bench", "--quick", "--json", "--backend", "numpy", "--repeats", "1"])
    assert rc == 0
    return json.loads(buf.getvalue())


@pytest.mark.slow
def test_machine_header_names_the_blas(quick_result):
    m = quick_result["machine"]
    assert m["numpy"] and m["python"]
    assert isinstance(m["blas"], list)
    assert quick_result["quick"] is True and quick_result["repeats"] == 1


@pytest.mark.slow
def test_each_contender_ran_in_its_own_process_with_equal_threads(quick_result):
    assert quick_result["method"] == "per-process"
    n = quick_result["threads"]
    assert n >= 1
    for w in quick_result["workloads"]:
        for c in w["contenders"]:
            env = c["threads"]
            assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == str(n)
            if c["name"].startswith("torch"):
                assert env["torch"] == n
            assert c["startup_s"] > 0  # measured from the launch, outside the timed steps


@pytest.mark.slow
def test_every_workload_reports_each_contender(quick_result):
    keys = [w["key"] for w in quick_result["workloads"]]
    assert keys == ["A", "B", "C", "D", "E", "F", "G"]
    for w in quick_result["workloads"]:
        names = [c["name"] for c in w["contenders"]]
        assert names[0] == "bplab-numpy"
        if w["key"] not in ("F", "G"):
            assert "numpy-ref" in names
        for c in w["contenders"]:
            s = c["samples_per_s"]
            assert s["min"] <= s["median"] <= s["max"] and s["min"] > 0
            assert math.isfinite(c["loss"])
        assert "bplab-numpy/numpy-ref" in w["ratios"] or w["key"] in ("F", "G")


@pytest.mark.slow
def test_contenders_do_the_same_work(quick_result):
    # same data, batches and initial weights: deterministic workloads end at the same loss
    for w in quick_result["workloads"]:
        if w["key"] == "F":  # dropout masks differ between engines
            continue
        losses = {c["name"]: c["loss"] for c in w["contenders"]}
        if "numpy-ref" in losses:
            assert losses["numpy-ref"] == pytest.approx(losses["bplab-numpy"], rel=1e-3,
                                                        abs=1e-4)
        if "torch-cpu" in losses:
            assert losses["torch-cpu"] == pytest.approx(losses["bplab-numpy"], rel=1e-3,
                                                        abs=1e-4)


@pytest.mark.slow
def test_diagnostics_memory_and_checkpointing_sections(quick_result):
    assert [d["key"] for d in quick_result["diagnostics"]] == ["A", "C"]
    for d in quick_result["diagnostics"]:
        assert d["with"]["median"] > 0 and d["without"]["median"] > 0
    for m in quick_result["memory"]:
        assert m["bplab_step_bytes"] > 0 and m["numpy_ref_step_bytes"] > 0
    split = {d["key"]: d for d in quick_result["step_split"]}
    assert set(split) <= {"A", "D"} and split
    for d in split.values():
        assert 0 < d["core_us"] and 0 < d["step_us"]
        assert d["bookkeeping"] == pytest.approx(1 - d["core_us"] / d["step_us"])
    ck = quick_result["checkpointing"]
    assert ck["segments"] >= 2
    assert ck["peak_step_bytes"]["with"] < ck["peak_step_bytes"]["without"]
    assert ck["losses"]["with"] == pytest.approx(ck["losses"]["without"], rel=1e-5)


@pytest.mark.slow
def test_workload_subset_and_batch_override(capsys):
    assert main(["bench", "--quick", "--json", "--backend", "numpy", "--repeats", "1",
                 "--workloads", "a", "--batch", "16"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [w["key"] for w in res["workloads"]] == ["A"]
    assert res["workloads"][0]["batch"] == 16
    # the extra sections measure the workloads as defined: not at an overridden batch
    assert not {"checkpointing", "diagnostics", "memory", "step_split"} & set(res)


def test_unknown_workload_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--quick", "--workloads", "Z"])
    assert exc.value.code != 0
    assert "unknown workload 'Z'" in capsys.readouterr().err


@pytest.mark.slow
def test_workload_g_is_an_lstm_through_time_against_torch(capsys):
    """G trains the LSTM on the adding problem with MSE; bplab and PyTorch start from the
    same weights, see the same batches and end at the same loss."""
    pytest.importorskip("torch")
    assert main(["bench", "--quick", "--json", "--backend", "numpy", "--repeats", "1",
                 "--workloads", "G", "--batch", "8"]) == 0
    (g,) = json.loads(capsys.readouterr().out)["workloads"]
    losses = {c["name"]: c["loss"] for c in g["contenders"]}
    assert set(losses) == {"bplab-numpy", "torch-cpu"}
    assert losses["torch-cpu"] == pytest.approx(losses["bplab-numpy"], rel=1e-3, abs=1e-5)
    assert g["ratios"]["bplab-numpy/torch-cpu"] > 0


def test_text_table(capsys):
    assert main(["bench", "--quick", "--backend", "numpy", "--repeats", "1",
                 "--workloads", "A"]) == 0
    out = capsys.readouterr().out
    assert "numpy BLAS:" in out and "bplab-numpy" in out and "numpy-ref" in out
    assert "each contender in its own process" in out and "start-up" in out


@pytest.mark.slow
def test_in_process_mode_is_labelled(capsys):
    assert main(["bench", "--quick", "--in-process", "--backend", "numpy", "--repeats", "1",
                 "--workloads", "A"]) == 0
    out = capsys.readouterr().out
    assert "IN-PROCESS" in out and "bplab-numpy" in out
