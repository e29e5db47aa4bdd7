"""Mixed precision: float16 compute, float32 master weights, dynamic loss scaling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bplab.errors import ConfigError
from bplab.training import Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def _digits(mixed, epochs=4, backend="numpy"):
    p = json.loads((EXAMPLES / "digits_mlp.bplab.json").read_text())
    p["training"].update(epochs=epochs, mixed_precision=mixed, backend=backend)
    return Trainer(p)


def test_mixed_precision_converges_like_float32(backend_name):
    full, mixed = _digits(None, backend=backend_name), _digits("float16", backend=backend_name)
    acc = [list(t.run())[-1].metrics["val_accuracy"] for t in (full, mixed)]
    assert abs(acc[0] - acc[1]) <= 0.005 + 1e-12
    assert acc[1] > 0.9
    assert mixed._compute.dtype == np.float16
    assert all(p.data.dtype == np.float32 for p in mixed.network.parameters()), (
        "master weights stay float32"
    )
    assert all(p.data.dtype == np.float16 for p in mixed.amp.compute.parameters())


def test_overflow_skips_the_step_and_halves_the_scale():
    t = _digits("float16")
    t.amp.scale = 1e12  # any gradient times this overflows float16
    before = t.network.state_dict()
    report = t.step()
    assert report.skipped and report.amp["skipped_steps"] == 1
    assert t.amp.scale == 5e11
    for k, v in t.network.state_dict().items():
        assert np.array_equal(v, before[k]), "a skipped step leaves the weights alone"
    t.amp.scale = 2.0**10
    assert not t.step().skipped


def test_scale_grows_after_a_run_of_good_steps():
    t = _digits("float16")
    t.amp.growth_interval = 3
    start = t.amp.scale
    for _ in range(3):
        t.step()
    assert t.amp.scale == 2 * start


def test_loss_scale_survives_a_checkpoint(tmp_path):
    t = _digits("float16")
    t.amp.scale = 1024.0
    list(t.run(max_steps=3))
    t.save_checkpoint(tmp_path / "c.npz")
    r = _digits("float16")
    r.load_checkpoint(tmp_path / "c.npz")
    assert r.amp.state() == t.amp.state()


def test_unknown_compute_type_is_refused():
    with pytest.raises(ConfigError, match="mixed_precision must be one of float16"):
        _digits("bfloat16")
