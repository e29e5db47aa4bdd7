"""pytest-benchmark timings of one training step per workload (no thresholds).

Run:  python -m pytest benchmarks --benchmark-only            (timings)
CI:   python -m pytest benchmarks --benchmark-disable -q      (each body once, as a smoke test)
The full comparison with PyTorch and hand-written numpy is ``python -m bplab.cli bench``.
"""

from __future__ import annotations

import pytest

from bplab.bench import WORKLOADS, BplabContender, NumpyCNN, NumpyMLP, make_dataset

KEYS = list(WORKLOADS)


@pytest.fixture(scope="module", params=KEYS)
def workload(request):
    w = WORKLOADS[request.param]
    return w, make_dataset(w)


def test_bplab_step(benchmark, workload):
    w, ds = workload
    b = BplabContender(w, ds, w.batch, "numpy")
    b.run(2)
    benchmark(b.trainer.step)
    assert b.loss() > 0


def test_numpy_reference_step(benchmark, workload):
    w, ds = workload
    if w.reference is None:
        pytest.skip(f"workload {w.key} has no hand-written reference")
    state = BplabContender(w, ds, w.batch, "numpy").initial_state()
    ref = (NumpyMLP if w.reference == "mlp" else NumpyCNN)(w, ds, w.batch, state)
    ref.run(2)
    loss = benchmark(ref.step)
    assert loss > 0


def test_torch_step(benchmark, workload):
    pytest.importorskip("torch")
    from bplab.bench import TorchContender

    w, ds = workload
    state = BplabContender(w, ds, w.batch, "numpy").initial_state()
    t = TorchContender(w, ds, w.batch, state, "cpu")
    t.run(2)
    benchmark(t.run, 1)
    assert t.loss() > 0
