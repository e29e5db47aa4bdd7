"""Losses: plain-numpy references, float64 gradchecks, extreme logits, torch agreement."""

from __future__ import annotations

import numpy as np
import pytest

from bplab.backend import get_backend, to_host
from bplab.errors import ConfigError, ShapeError
from bplab.gradcheck import gradcheck_loss
from bplab.losses import LOSSES, make_loss


def _log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def _ref_ce(x, y, eps=0.0):
    logp = _log_softmax(x)
    n, c = x.shape
    q = np.full((n, c), eps / c)
    q[np.arange(n), y] += 1 - eps
    return -(q * logp).sum(axis=1).mean()


def _ref_huber(p, t, delta):
    d = np.abs(p - t)
    return np.where(d < delta, 0.5 * d**2, delta * (d - 0.5 * delta)).mean()


def _ref_bce(x, t):
    s = 1 / (1 + np.exp(-x))
    return -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()


# name, config, reference(pred, target), target maker(rng, pred shape)
CASES = [
    ("mse", {}, lambda p, t: ((p - t) ** 2).mean(), lambda r, s: r.normal(size=s)),
    ("l1", {}, lambda p, t: np.abs(p - t).mean(), lambda r, s: r.normal(size=s)),
    ("huber", {"delta": 0.7}, lambda p, t: _ref_huber(p, t, 0.7),
     lambda r, s: r.normal(size=s) * 2),
    ("binary_cross_entropy", {}, _ref_bce, lambda r, s: r.uniform(size=s)),
    ("cross_entropy", {}, _ref_ce, lambda r, s: r.integers(0, s[1], s[0])),
    ("cross_entropy", {"label_smoothing": 0.2}, lambda x, y: _ref_ce(x, y, 0.2),
     lambda r, s: r.integers(0, s[1], s[0])),
]
IDS = [c[0] + ("_" + "_".join(map(str, c[1].values())) if c[1] else "") for c in CASES]
SHAPE = (6, 4)


def _data(rng, case):
    pred = rng.normal(size=SHAPE) * 2
    return pred, case[3](rng, SHAPE)


def test_every_registered_loss_is_covered():
    assert {c[0] for c in CASES} == set(LOSSES)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy_reference_and_gradcheck(case, rng):
    name, cfg, ref, _ = case
    loss = make_loss({"type": name, **cfg})
    pred, target = _data(rng, case)
    value = loss.forward(pred.copy(), target)
    assert isinstance(value, np.ndarray) and value.shape == ()
    assert float(value) == pytest.approx(ref(pred, target), rel=1e-12)
    report = gradcheck_loss(loss, pred, target)
    assert report.ok, str(report)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scaled_backward_fails_gradcheck(case, rng):
    name, cfg, _, _ = case
    loss = make_loss({"type": name, **cfg})
    original = loss.backward
    loss.backward = lambda: original() * 1.01
    pred, target = _data(rng, case)
    assert not gradcheck_loss(loss, pred, target).ok


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backend_dtype_shape_and_extreme_logits(case, dtype, backend_name, rng):
    name, cfg, _, _ = case
    xp = get_backend(backend_name).xp
    loss = make_loss({"type": name, **cfg})
    pred, target = _data(rng, case)
    pred = np.sign(pred) * 1e4  # saturates sigmoid / softmax completely
    value = loss.forward(xp.asarray(pred, dtype=dtype), xp.asarray(target))
    grad = loss.backward()
    assert value.shape == () and value.dtype == np.dtype(dtype)
    assert type(value).__module__.split(".")[0] == xp.__name__  # stays on the device
    assert grad.shape == pred.shape and grad.dtype == np.dtype(dtype)
    assert np.isfinite(float(value)) and np.isfinite(to_host(grad)).all()
    if name in ("binary_cross_entropy", "cross_entropy"):
        # finite and right: the loss is the summed margins of the wrong saturated logits
        torch = pytest.importorskip("torch")
        tx = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
        if name == "cross_entropy":
            tv = torch.nn.functional.cross_entropy(tx, torch.tensor(target), **cfg)
        else:
            tv = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(target))
        tv.backward()
        assert float(value) == pytest.approx(tv.item(), rel=1e-6)
        np.testing.assert_allclose(to_host(grad), tx.grad.numpy(), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_and_gradient_agree_with_torch(case, rng):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    name, cfg, _, _ = case
    pred, target = _data(rng, case)
    loss = make_loss({"type": name, **cfg})
    value = float(loss.forward(pred.copy(), target))
    grad = loss.backward()

    tx = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(target)
    fn = {
        "mse": lambda: f.mse_loss(tx, tt),
        "l1": lambda: f.l1_loss(tx, tt),
        "huber": lambda: f.huber_loss(tx, tt, delta=cfg.get("delta", 1.0)),
        "binary_cross_entropy": lambda: f.binary_cross_entropy_with_logits(tx, tt),
        "cross_entropy": lambda: f.cross_entropy(
            tx, tt, label_smoothing=cfg.get("label_smoothing", 0.0)),
    }[name]
    tv = fn()
    tv.backward()
    assert value == pytest.approx(tv.item(), rel=1e-8)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-8, atol=1e-15)


def test_bce_takes_flat_targets_for_a_single_logit(rng):
    loss = make_loss("binary_cross_entropy")
    x = rng.normal(size=(5, 1))
    t = rng.integers(0, 2, 5).astype(np.float64)
    flat = float(loss.forward(x, t))
    g_flat = loss.backward()
    assert flat == pytest.approx(_ref_bce(x[:, 0], t), rel=1e-12)
    assert g_flat.shape == (5, 1)


def test_l1_and_huber_gradients_at_the_kinks_follow_torch():
    torch = pytest.importorskip("torch")
    p = np.array([[0.0, 1.0, -1.0, 2.5]])
    t = np.array([[0.0, 0.0, 0.0, 0.0]])
    for name, fn in (("l1", torch.nn.functional.l1_loss),
                     ("huber", torch.nn.functional.huber_loss)):
        loss = make_loss(name)
        loss.forward(p.copy(), t)
        tx = torch.tensor(p, requires_grad=True)
        fn(tx, torch.tensor(t)).backward()
        np.testing.assert_array_equal(loss.backward(), tx.grad.numpy())


def test_float32_targets_do_not_upcast(rng):
    loss = make_loss("mse")
    value = loss.forward(rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=(4, 2)))
    assert value.dtype == np.float32 and loss.backward().dtype == np.float32


def test_tasks():
    assert make_loss("cross_entropy").task == "classification"
    assert make_loss("binary_cross_entropy").task == "classification"
    assert make_loss("huber").task == "regression"


@pytest.mark.parametrize("spec, quoted", [
    ({"type": "huber", "delta": -1.0}, "delta=-1.0"),
    ({"type": "huber", "delta": 0}, "delta=0"),
    ({"type": "cross_entropy", "label_smoothing": 1.5}, "label_smoothing=1.5"),
    ({"type": "mse", "delta": 1.0}, "'delta'"),
    ({"type": "hinge"}, "'hinge'"),
])
def test_bad_settings_are_reported_with_the_value(spec, quoted):
    with pytest.raises(ConfigError, match=quoted):
        make_loss(spec)


def test_shape_mismatch_is_an_error_not_a_broadcast(rng):
    with pytest.raises(ShapeError, match=r"\(5, 1\)"):
        make_loss("mse").forward(rng.normal(size=(5, 1)), rng.normal(size=(4,)))
    with pytest.raises(ShapeError):
        make_loss("cross_entropy").forward(rng.normal(size=(5, 3)), np.zeros((4,), int))


def test_backward_without_forward_is_an_error():
    with pytest.raises(RuntimeError, match="forward"):
        make_loss("l1").backward()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_counts_hits_and_agrees_across_backends(eps, dtype, backend_name, rng):
    """Value, gradient and the count of rows whose first argmax is the target: the
    backend's code (one fused kernel on CuPy) against numpy's, on ties too."""
    xp = get_backend(backend_name).xp
    pred = rng.normal(size=(37, 7)).astype(dtype)
    pred[:5] = 0.25  # all tied: the first class is the argmax
    pred[5, 2] = pred[5, 4] = 9.0  # a tie for the max between classes 2 and 4
    target = rng.integers(0, 7, 37)
    target[:3] = 0
    target[3:5] = 3
    target[5] = 4  # the second of the tied maxima is not a hit
    expected_hits = int((pred.argmax(axis=1) == target).sum())
    ref = make_loss({"type": "cross_entropy", "label_smoothing": eps})
    want = float(ref.forward(pred.astype(np.float64), target))
    want_grad = ref.backward()

    loss = make_loss({"type": "cross_entropy", "label_smoothing": eps})
    hits = xp.zeros(1, xp.float64)
    hits += 2  # the count accumulates
    # a transposed copy's transpose: logits that are not C-contiguous
    value = loss.forward(xp.asarray(pred.T.copy()).T, xp.asarray(target), hits=hits)
    grad = loss.backward()
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert value.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    assert float(value) == pytest.approx(want, rel=tol)
    np.testing.assert_allclose(to_host(grad), want_grad, rtol=tol, atol=tol * 1e-2)
    assert to_host(hits).tolist() == [expected_hits + 2]
    assert float(loss.forward(xp.asarray(pred), xp.asarray(target))) == pytest.approx(
        want, rel=tol)  # without a counter
