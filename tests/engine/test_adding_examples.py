"""The 'Adding problem: RNN vs LSTM' examples do what they promise, trained in full: at 100
time steps the LSTM ends at least 10x below the mean predictor's MSE and the plain RNN stays
at it, with the gradient through time showing why (it vanishes in the RNN, not the LSTM).

Each run takes about 40 s on the 2-core development machine: slow tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bplab.diagnostics import time_reach
from bplab.io.project import load_project
from bplab.training import Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def trained(name: str) -> tuple[Trainer, float, float]:
    """The example trained to its end: (trainer, final validation MSE, baseline MSE), the
    baseline being the mean predictor's (the training targets' mean) on the validation set."""
    trainer = Trainer(load_project(EXAMPLES / name))
    ds = trainer.dataset
    assert ds.input_shape == (100, 2)  # the promised sequence length
    baseline = float(np.mean((ds.y_val - ds.y_train.mean()) ** 2))
    last = None
    for report in trainer.run():
        if report.metrics is not None:
            last = report.metrics
    return trainer, float(last["val_loss"]), baseline


@pytest.mark.slow
def test_the_lstm_learns_the_adding_problem():
    trainer, mse, baseline = trained("adding_lstm.bplab.json")
    assert baseline == pytest.approx(1 / 6, rel=0.15)
    assert mse <= baseline / 10, (mse, baseline)
    assert "vanishing_through_time" not in {f.code for f in trainer.findings}


@pytest.mark.slow
def test_the_rnn_stays_at_the_baseline_because_its_gradient_vanishes_through_time():
    trainer, mse, baseline = trained("adding_rnn.bplab.json")
    assert mse >= 0.8 * baseline, (mse, baseline)
    # the gradient reaching the first time step is a tiny fraction of that at the last
    ratios = [time_reach(sample["rnn"])[0] for sample in trainer.time_grad_history[-10:]]
    assert np.median(ratios) < 1e-3, ratios
