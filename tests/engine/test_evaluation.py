"""bplab.evaluation: the confusion matrix, the worst mistakes and the probe agree with the
network's own forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from bplab.evaluation import (
    confusion_matrix,
    evaluate_validation,
    largest_errors,
    probabilities,
    probe,
    worst_mistakes,
)
from bplab.io.project import new_project
from bplab.training import Trainer


def _trainer(dataset=None, nodes=None, loss=None, steps=30):
    p = new_project()
    if dataset is not None:
        p["dataset"] = dataset
    if nodes is not None:
        p["network"] = {"nodes": nodes}
    if loss is not None:
        p["loss"] = {"type": loss}
    p["training"].update({"dtype": "float64", "backend": "numpy", "batch_size": 16})
    t = Trainer(p)
    for _ in range(steps):
        t.step()
    return t


def _cnn():
    nodes = [
        {"id": "in", "type": "Input", "shape": [1, 8, 8]},
        {"id": "conv", "type": "Conv2D", "filters": 3, "kernel_size": 3, "padding": 1},
        {"id": "relu", "type": "ReLU"},
        {"id": "flat", "type": "Flatten"},
        {"id": "out", "type": "Dense", "units": 10},
    ]
    return _trainer({"name": "digits_images", "val_fraction": 0.2, "seed": 0}, nodes,
                    "cross_entropy", steps=10)


def _binary():
    nodes = [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "h", "type": "Dense", "units": 4},
        {"id": "act", "type": "Tanh"},
        {"id": "out", "type": "Dense", "units": 1},
    ]
    return _trainer({"name": "circle", "samples": 200, "val_fraction": 0.3, "seed": 1}, nodes,
                    "binary_cross_entropy")


@pytest.fixture(params=["spiral_mlp", "digits_cnn", "circle_bce"])
def trainer(request):
    return {"spiral_mlp": _trainer, "digits_cnn": _cnn, "circle_bce": _binary}[request.param]()


def test_confusion_counts_equal_the_networks_predictions(trainer):
    ev = evaluate_validation(trainer)
    ds = trainer.dataset
    proba = trainer.predict(ds.x_val)
    pred = (proba[:, 0] > 0.5).astype(int) if proba.shape[1] == 1 else proba.argmax(axis=1)
    truth = ds.y_val.reshape(-1)
    assert np.array_equal(ev.y_pred, pred)
    assert ev.confusion.sum() == len(ds.x_val)
    for i in range(ds.n_classes):
        for j in range(ds.n_classes):
            assert ev.confusion[i, j] == np.sum((truth == i) & (pred == j))
    # the diagonal is the accuracy the trainer reports
    acc = trainer.evaluate()["val_accuracy"]
    assert np.trace(ev.confusion) / len(truth) == pytest.approx(acc)


def test_mistakes_are_the_most_confident_wrong_predictions(trainer):
    ev = evaluate_validation(trainer, k=5)
    wrong = np.flatnonzero(ev.y_true != ev.y_pred)
    conf = ev.proba[np.arange(len(ev.y_pred)), ev.y_pred]
    assert len(ev.mistakes) == min(5, len(wrong))
    expected = sorted(wrong, key=lambda i: (-conf[i], i))[:5]
    assert [m.index for m in ev.mistakes] == list(expected)
    for m in ev.mistakes:
        assert m.true != m.predicted
        assert m.confidence == pytest.approx(conf[m.index])
        assert np.array_equal(ev.sample(m.index), trainer.dataset.x_val[m.index])


def test_probe_equals_the_networks_forward(trainer):
    x = trainer.dataset.x_val[3]
    p = probe(trainer, x)
    net = trainer.network
    assert list(p.activations) == list(net.order)
    ref = dict((nid, np.array(out[0])) for nid, out in net.forward_nodes(x[None], False))
    for nid, act in p.activations.items():
        np.testing.assert_allclose(act, ref[nid], rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.output, net.predict(x[None])[0], atol=1e-12)
    proba = trainer.predict(x[None])[0]
    want = np.array([1 - proba[0], proba[0]]) if len(proba) == 1 else proba
    np.testing.assert_allclose(p.probabilities, want, atol=1e-12)
    assert p.probabilities.sum() == pytest.approx(1.0)


def test_regression_gives_true_and_predicted_pairs():
    t = _trainer({"name": "sine", "samples": 200, "val_fraction": 0.25, "seed": 0},
                 [{"id": "in", "type": "Input", "shape": [1]},
                  {"id": "h", "type": "Dense", "units": 8}, {"id": "a", "type": "Tanh"},
                  {"id": "out", "type": "Dense", "units": 1}], "mse")
    ev = evaluate_validation(t)
    assert ev.confusion is None and ev.proba is None
    np.testing.assert_allclose(ev.y_true, t.dataset.y_val.reshape(-1))
    np.testing.assert_allclose(ev.y_pred, t.predict(t.dataset.x_val)[:, 0])
    assert probe(t, t.dataset.x_val[0]).probabilities is None
    # the samples predicted worst, the largest error first, with their inputs
    err = np.abs(t.predict(t.dataset.x_val)[:, 0] - t.dataset.y_val[:, 0])
    assert [m.index for m in ev.mistakes] == list(np.argsort(-err, kind="stable")[:16])
    for m in ev.mistakes:
        assert m.error == pytest.approx(err[m.index], rel=1e-6)
        assert (m.true, m.predicted) == (ev.y_true[m.index], ev.y_pred[m.index])
        np.testing.assert_array_equal(ev.sample(m.index), t.dataset.x_val[m.index])


def test_largest_errors_by_hand():
    """Ranked by the absolute error averaged over a row's targets, the first target named;
    a diverged (NaN) prediction is the worst; ties keep the lower index first."""
    yt = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    yp = np.array([[0.5, 0.5], [1.0, 3.0], [np.nan, 2.0], [3.5, 2.5]])
    got = largest_errors(yt, yp, k=3)
    assert [m.index for m in got] == [2, 1, 0]
    assert (got[1].true, got[1].predicted, got[1].error) == (1.0, 1.0, 1.0)
    assert [m.index for m in largest_errors(yt[:, 0], yp[:, 0] + 0.0, k=9)][:1] == [2]
    assert largest_errors(np.zeros((0, 1)), np.zeros((0, 1))) == ()


def test_helpers_by_hand():
    m = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    wm = worst_mistakes(np.array([0, 1, 1, 0]), np.array([1, 1, 0, 1]),
                        np.array([0.6, 0.99, 0.9, 0.6]), k=2)
    assert [(w.index, w.true, w.predicted) for w in wm] == [(2, 1, 0), (0, 0, 1)]
    p = probabilities(np.array([[0.0], [2.0]]), "classification")
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-np.array([0.0, 2.0]))))
    assert probabilities(np.zeros((2, 1)), "regression") is None


def test_empty_validation_set_gives_empty_results():
    t = _trainer({"name": "spiral", "samples": 100, "val_fraction": 0.0, "seed": 0}, steps=1)
    ev = evaluate_validation(t)
    assert ev.confusion.sum() == 0 and ev.mistakes == ()


def test_an_epoch_ends_validation_pass_serves_the_confusion_matrix(monkeypatch):
    """Right after an epoch end, evaluate_validation reuses that pass's outputs (no second
    forward over the validation set); once the weights move, it runs its own."""
    t = _trainer({"name": "spiral", "samples": 200, "val_fraction": 0.25, "seed": 0}, steps=0)
    while t.step().metrics is None:  # to the first epoch end
        pass
    fresh = t.network.predict(t.dataset.x_val)
    passes = []
    predict = t.network.predict
    monkeypatch.setattr(t.network, "predict", lambda x: passes.append(len(x)) or predict(x))
    ev = evaluate_validation(t)
    assert passes == []
    np.testing.assert_array_equal(ev.y_pred, probabilities(fresh, "classification").argmax(1))
    np.testing.assert_array_equal(t.validation_outputs(), fresh)
    t.step()  # new weights: the kept outputs no longer describe them
    evaluate_validation(t)
    assert passes == [len(t.dataset.x_val)]
