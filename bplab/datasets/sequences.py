"""Seeded sequence problems for recurrent networks: inputs of shape (seq_len, features).

``seq_len`` is the difficulty knob of each: how far back in time the network must carry
what it read.

* ``adding`` (Hochreiter & Schmidhuber 1997; the version of Le, Jaitly & Hinton 2015): two
  features per step, a value ``U(0, 1)`` and a marker that is 1 at exactly two steps, one in
  each half of the sequence. The target is the sum of the two marked values. Predicting the
  mean (1.0) scores an MSE of 1/6 (the variance of a sum of two uniforms); a network beats
  that only by remembering the first marked value across about ``seq_len / 2`` steps.
  ``noise`` adds Gaussian noise of that std to the target (none by default).
* ``sequence_parity``: ``seq_len`` random bits, one per step; class 1 when the count of ones
  is odd. Every bit matters to the answer, so nothing can be forgotten. ``noise`` adds
  Gaussian jitter of that std to the bits (the labels stay those of the clean bits).
* ``sine_forecast``: a window of ``seq_len`` samples of ``sin(w t + phase)`` with a random
  frequency ``w ~ U(0.1, 0.5)`` rad/step and phase; the target is the next value. ``noise``
  is the std of Gaussian noise on the window (the target is clean).

Each generator returns float64 ``x`` of shape (n, seq_len, features) and ``y`` (class ids or
float targets); :mod:`bplab.datasets.base` casts and splits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bplab.datasets.base import DatasetInfo

__all__ = ["SEQUENCES", "SEQUENCE_INFO", "step_names"]


def adding(rng: np.random.Generator, n: int, noise: float, seq_len: int):
    values = rng.uniform(0.0, 1.0, (n, seq_len))
    half = max(seq_len // 2, 1)
    first = rng.integers(0, half, n)
    second = rng.integers(half, seq_len, n) if seq_len > 1 else first
    markers = np.zeros((n, seq_len))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    if seq_len == 1:
        y = values[:, 0]
    if noise:
        y = y + rng.normal(0.0, noise, n)
    return np.stack([values, markers], axis=2), y[:, None]


def sequence_parity(rng: np.random.Generator, n: int, noise: float, seq_len: int):
    bits = rng.integers(0, 2, (n, seq_len))
    y = bits.sum(axis=1) % 2
    x = bits.astype(np.float64)
    if noise:
        x += rng.normal(0.0, noise, x.shape)
    return x[:, :, None], y.astype(np.int64)


def sine_forecast(rng: np.random.Generator, n: int, noise: float, seq_len: int):
    w = rng.uniform(0.1, 0.5, (n, 1))
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 1))
    t = np.arange(seq_len + 1)
    wave = np.sin(w * t + phase)
    x = wave[:, :seq_len]
    if noise:
        x = x + rng.normal(0.0, noise, x.shape)
    return x[:, :, None], wave[:, seq_len:]


def step_names(names: list[str] | tuple[str, ...], seq_len: int) -> list[str]:
    """One name per input value of a (seq_len, features) sample: ``value[0]``, ``marker[0]``,
    ``value[1]``... (time-major, as the array is laid out)."""
    return [f"{name}[{t}]" for t in range(seq_len) for name in names]


@dataclass(frozen=True)
class SequenceGenerator:
    fn: Callable  # fn(rng, n, noise, seq_len) -> x (n, seq_len, features), y
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None = None


SEQUENCES: dict[str, SequenceGenerator] = {
    "adding": SequenceGenerator(adding, ("value", "marker")),
    "sequence_parity": SequenceGenerator(sequence_parity, ("bit",), ("even", "odd")),
    "sine_forecast": SequenceGenerator(sine_forecast, ("x",)),
}


def _info(name, title, task, samples, seq_len, features, description, noise=0.0):
    return DatasetInfo(
        name=name, title=title, task=task, kind="generated", samples=samples,
        description=description, input_shape=(seq_len, features),
        n_classes=2 if task == "classification" else None, noise=noise, seq_len=seq_len,
    )


SEQUENCE_INFO: dict[str, DatasetInfo] = {
    info.name: info for info in (
        _info("adding", "Adding problem", "regression", 5000, 50, 2,
              "Each step holds a value in [0, 1] and a marker; the target is the sum of the two "
              "marked values, one in each half. The mean predictor scores MSE 1/6: beating it "
              "means remembering across seq_len / 2 steps (an LSTM can, a plain RNN hardly)."),
        _info("sequence_parity", "Sequence parity", "classification", 2000, 10, 1,
              "A string of seq_len random bits; class odd when it holds an odd number of ones. "
              "Every bit counts, so nothing may be forgotten."),
        _info("sine_forecast", "Sine forecast", "regression", 2000, 20, 1,
              "A window of a sine wave of random frequency and phase; the target is the next "
              "value. Noise jitters the window.", noise=0.05),
    )
}
