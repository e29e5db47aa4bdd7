"""What the model gets wrong, and what it does with one input.

:func:`evaluate_validation` runs a trainer's network over its validation set (evaluation mode)
and returns an :class:`Evaluation`: the predictions and class probabilities, the confusion
matrix, the most confidently misclassified samples, or, for regression, the (true,
predicted) pairs and the samples with the largest errors. :func:`probe` runs one input
through the network node by node and returns every layer's activations with the class
probabilities (a :class:`Probe`).

Both are plain numpy on the host and never raise on an empty validation set::

    ev = evaluate_validation(trainer)
    ev.confusion[3, 5]          # validation samples of class 3 predicted as 5
    ev.mistakes[0].index        # the misclassified sample the model was surest about
    p = probe(trainer, ev.x[ev.mistakes[0].index])
    p.probabilities, p.activations["relu1"].shape
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bplab.backend import to_host

__all__ = ["Evaluation", "Miss", "Mistake", "Probe", "confusion_matrix", "evaluate_validation",
           "largest_errors", "probabilities", "probe", "worst_mistakes"]

GALLERY_SIZE = 16  # misclassified samples an Evaluation carries


@dataclass(frozen=True)
class Mistake:
    """One misclassified validation sample: its row in the validation set, its true and
    predicted classes, and the probability the model gave its (wrong) prediction."""

    index: int
    true: int
    predicted: int
    confidence: float


@dataclass(frozen=True)
class Miss:
    """One validation sample of a regression among those predicted worst: its row in the
    validation set, its true and predicted (first) target, and its error: the absolute
    error, averaged over the targets when there are several."""

    index: int
    true: float
    predicted: float
    error: float


@dataclass(frozen=True)
class Evaluation:
    """The network's answers on the validation set at one step.

    Classification: ``y_true``/``y_pred`` are class indices (n,), ``proba`` is (n, k),
    ``confusion[i, j]`` counts samples of class ``i`` predicted as ``j``, ``mistakes`` the
    most confident errors first. Regression: ``y_true``/``y_pred`` are the first target
    column (n,) and the pairs to scatter; ``proba`` and ``confusion`` are None; ``mistakes``
    are :class:`Miss` es, the largest errors first. ``samples`` holds the inputs of the
    samples in ``mistakes`` (use :meth:`sample`), so the app can draw them without the
    whole set.
    """

    task: str
    step: int
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None = None
    confusion: np.ndarray | None = None
    mistakes: tuple[Mistake, ...] | tuple[Miss, ...] = ()
    samples: dict[int, np.ndarray] = field(default_factory=dict)  # index -> input
    seconds: float = 0.0  # how long the evaluation took

    @property
    def n_classes(self) -> int:
        return 0 if self.confusion is None else len(self.confusion)

    def sample(self, index: int) -> np.ndarray:
        """The input of validation sample ``index`` (one of the mistakes)."""
        return self.samples[index]


@dataclass(frozen=True)
class Probe:
    """One input through the network: each node's output (batch axis dropped), in the
    network's order, the Input first; the raw output and, for classifiers, probabilities."""

    x: np.ndarray
    activations: dict[str, np.ndarray]
    output: np.ndarray
    probabilities: np.ndarray | None


def probabilities(out: np.ndarray, task: str) -> np.ndarray | None:
    """Class probabilities (n, k) from network outputs: a softmax, or for one logit
    ``[1 - sigmoid, sigmoid]``. None for regression."""
    if task != "classification":
        return None
    out = _rows(out)
    if out.shape[1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-out[:, 0]))
        return np.stack([1.0 - p1, p1], axis=1)
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``m[i, j]``: how many samples of true class ``i`` were predicted as ``j`` (int64)."""
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return m


def worst_mistakes(y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray,
                   k: int = GALLERY_SIZE) -> tuple[Mistake, ...]:
    """The ``k`` misclassified samples with the highest confidence in their prediction,
    most confident first (ties: lower index first)."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    order = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")][:k]
    return tuple(Mistake(int(i), int(y_true[i]), int(y_pred[i]), float(confidence[i]))
                 for i in order)


def largest_errors(y_true: np.ndarray, y_pred: np.ndarray,
                   k: int = GALLERY_SIZE) -> tuple[Miss, ...]:
    """The ``k`` regression samples with the largest absolute error (averaged over the
    targets of a row), largest first (ties: lower index first); a non-finite error (a
    diverged run) counts as the largest."""
    yt, yp = _rows(y_true), _rows(y_pred)
    if not len(yt):
        return ()
    err = np.abs(yp - yt).mean(axis=1)
    order = np.argsort(-np.nan_to_num(err, nan=np.inf), kind="stable")[:k]
    return tuple(Miss(int(i), float(yt[i, 0]), float(yp[i, 0]), float(err[i])) for i in order)


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` as (n, features) float64, also when n is 0."""
    a = np.asarray(a, np.float64)
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))


def _class_indices(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[1] > 1:
        return y.argmax(axis=1).astype(np.int64)
    return y.reshape(-1).astype(np.int64)


def evaluate_validation(trainer: Any, k: int = GALLERY_SIZE,
                        max_samples: int | None = None) -> Evaluation:
    """Evaluate ``trainer``'s network on (the first ``max_samples`` of) its validation set.

    Runs between training steps on the trainer's thread; costs one evaluation-mode forward
    pass over the validation rows (what an epoch end's validation loss costs), or none
    right after an epoch end (:meth:`~bplab.training.Trainer.validation_outputs`).
    """
    t0 = time.perf_counter()
    ds = trainer.dataset
    x, y = ds.x_val, ds.y_val
    out = trainer.validation_outputs()  # an epoch end's pass, while the weights are the same
    if max_samples is not None:
        x, y, out = x[:max_samples], y[:max_samples], out[:max_samples]
    task = ds.task
    step = int(trainer.step_count)
    if task != "classification":
        yt, yp = _rows(y), _rows(out)  # converted once: largest_errors' _rows is then free
        misses = largest_errors(yt, yp, k)
        samples = {m.index: np.array(x[m.index]) for m in misses}
        return Evaluation(task, step, yt[:, 0], yp[:, 0], mistakes=misses,
                          samples=samples, seconds=time.perf_counter() - t0)
    proba = probabilities(out, task)
    n_classes = max(int(ds.n_classes or proba.shape[1]), proba.shape[1])
    yt = _class_indices(y)
    yp = proba.argmax(axis=1).astype(np.int64)
    conf = proba[np.arange(len(yp)), yp]
    mistakes = worst_mistakes(yt, yp, conf, k)
    samples = {m.index: np.array(x[m.index]) for m in mistakes}
    return Evaluation(task, step, yt, yp, proba, confusion_matrix(yt, yp, n_classes),
                      mistakes, samples, time.perf_counter() - t0)


def probe(trainer: Any, x: np.ndarray) -> Probe:
    """Run one input ``x`` (without batch axis) through ``trainer``'s network in evaluation
    mode and keep every node's output. The last activation equals ``network.predict``."""
    net = trainer.network
    if trainer.amp is not None:
        trainer.amp.sync_buffers()
    x = np.asarray(x)
    acts: dict[str, np.ndarray] = {}
    try:
        for nid, out in net.forward_nodes(x[None], training=False):
            acts[nid] = np.array(to_host(out)[0], dtype=np.float64)
    finally:
        for layer in net.layers.values():
            layer.clear_cache()
    output = acts[net.order[-1]]
    proba = probabilities(output[None], trainer.dataset.task)
    return Probe(x, acts, output, None if proba is None else proba[0])
