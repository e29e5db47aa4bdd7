"""Shuffling a large training set a batch at a time trains exactly as gathering the epoch."""

from __future__ import annotations

import numpy as np
import pytest

import bplab.training as training
from tests.engine.test_training import _dropout_project


def _run(monkeypatch, threshold: int, steps: int, ckpt=None, resume=None):
    monkeypatch.setattr(training, "EPOCH_GATHER_BYTES", threshold)
    t = training.Trainer(_dropout_project())
    if resume is not None:
        t.load_checkpoint(resume)
    assert t._per_batch == (threshold == 0)
    list(t.run(max_steps=steps))
    if ckpt is not None:
        t.save_checkpoint(ckpt)
    return t


def test_per_batch_gather_gives_the_same_run(monkeypatch):
    # 160 training rows, batch 16: 22 steps cross an epoch end and a fresh permutation
    whole = _run(monkeypatch, 2**40, 22)
    per_batch = _run(monkeypatch, 0, 22)
    for k, v in whole.network.state_dict().items():
        assert np.array_equal(per_batch.network.state_dict()[k], v), k
    # and no second copy of the training set is kept: the buffer is one batch
    assert per_batch._xs.shape[0] == per_batch.batch_size < len(per_batch._x)


@pytest.mark.parametrize("n_first", [5, 10])  # mid-epoch, exactly an epoch end
def test_per_batch_gather_resumes_bit_for_bit(monkeypatch, tmp_path, n_first):
    straight = _run(monkeypatch, 0, n_first + 9)
    _run(monkeypatch, 0, n_first, ckpt=tmp_path / "c.npz")
    resumed = _run(monkeypatch, 0, 9, resume=tmp_path / "c.npz")
    for k, v in straight.network.state_dict().items():
        assert np.array_equal(resumed.network.state_dict()[k], v), k
