"""Every layer: forward equals plain numpy, float64 gradcheck, dtypes, messages, backends."""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import pytest
from layer_cases import CASES, Case

from bplab.backend import get_backend, to_host
from bplab.errors import ConfigError, ShapeError
from bplab.gradcheck import gradcheck_layer
from bplab.layers import CATEGORIES, LAYERS, has_trait, type_names
from bplab.layers.activations import erf, erfc, sigmoid
from bplab.layers.base import BuildContext

CASE_IDS = [c.id for c in CASES]


def make(case: Case, xs, backend="numpy", dtype=np.float64, seed=0):
    """Build the case's layer for inputs ``xs`` on a backend; return (layer, device inputs)."""
    xp = get_backend(backend).xp
    layer = LAYERS[case.type](case.id, **case.config)
    ctx = BuildContext(xp, dtype, np.random.default_rng(seed))
    layer.bind(ctx)
    layer.build([x.shape[1:] for x in xs], ctx)
    # non-trivial parameters (BatchNorm/LayerNorm start at ones and zeros)
    prng = np.random.default_rng(seed + 7)
    for p in layer.params.values():
        p.data[...] = xp.asarray(prng.normal(size=p.shape) * 0.5 + 0.5, dtype=dtype)
    return layer, [xp.asarray(x, dtype=dtype) for x in xs]


def run(layer, xs, training=True):
    return layer.forward(xs if layer.arity is None else xs[0], training)


def host_params(layer):
    return {k: to_host(p.data).astype(np.float64) for k, p in layer.params.items()}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_numpy_reference(case, backend_name):
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    xs = case.inputs(rng)
    layer, dev = make(case, xs, backend_name)
    y = to_host(run(layer, dev))
    expected = case.reference(xs, host_params(layer), case.config)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    # the plan's shape inference agrees with what forward produced
    assert tuple(layer.output_shape([x.shape[1:] for x in xs])) == y.shape[1:]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradcheck_float64(case, seed):
    rng = np.random.default_rng(seed)
    xs = case.inputs(rng)
    layer, dev = make(case, xs, seed=seed)
    inputs = dev if layer.arity is None else dev[0]
    report = gradcheck_layer(layer, inputs, seed=seed)
    assert report.ok, str(report)
    assert report.max_error < 1e-6


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_scaled_by_1_01_fails_gradcheck(case, monkeypatch):
    """The check is sharp enough to see a 1 % error in any layer's backward."""
    cls = LAYERS[case.type]
    original = cls.backward

    def wrong(self, grad):
        g = original(self, grad)
        return [gi * 1.01 for gi in g] if isinstance(g, list) else g * 1.01

    monkeypatch.setattr(cls, "backward", wrong)
    xs = case.inputs(np.random.default_rng(3))
    layer, dev = make(case, xs)
    report = gradcheck_layer(layer, dev if layer.arity is None else dev[0])
    assert not report.ok
    assert report.errors["input0" if layer.arity is None else "input"] > 1e-3


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float32_stays_float32_and_matches_float64(case, backend_name):
    xs = case.inputs(np.random.default_rng(5))
    l64, d64 = make(case, xs, backend_name, np.float64)
    l32, d32 = make(case, xs, backend_name, np.float32)
    y64, y32 = run(l64, d64), run(l32, d32)
    assert y32.dtype == np.float32
    g = np.random.default_rng(6).normal(size=y64.shape)
    xp = get_backend(backend_name).xp
    gin64 = l64.backward(xp.asarray(g))
    gin32 = l32.backward(xp.asarray(g, dtype=np.float32))
    gin64 = gin64 if isinstance(gin64, list) else [gin64]
    gin32 = gin32 if isinstance(gin32, list) else [gin32]
    for a, b in zip(gin32, gin64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(to_host(a), to_host(b), rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(to_host(y32), to_host(y64), rtol=2e-4, atol=2e-4)
    for name, p in l32.params.items():
        assert p.grad.dtype == np.float32 and p.has_grad
        np.testing.assert_allclose(to_host(p.grad), to_host(l64.params[name].grad),
                                   rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_matches_numpy_on_every_backend(case, backend_name):
    """The one xp implementation gives the same gradients on CuPy as on numpy."""
    xs = case.inputs(np.random.default_rng(8))
    ln, dn = make(case, xs, "numpy")
    lb, db = make(case, xs, backend_name)
    yn, yb = run(ln, dn), run(lb, db)
    g = np.random.default_rng(9).normal(size=yn.shape)
    xp = get_backend(backend_name).xp
    np.testing.assert_allclose(to_host(yb), to_host(yn), rtol=1e-12, atol=1e-12)
    gn, gb = ln.backward(g), lb.backward(xp.asarray(g))
    gn = gn if isinstance(gn, list) else [gn]
    gb = gb if isinstance(gb, list) else [gb]
    for a, b in zip(gn, gb):
        np.testing.assert_allclose(to_host(b), a, rtol=1e-10, atol=1e-12)
    for name, p in ln.params.items():
        np.testing.assert_allclose(to_host(lb.params[name].grad), p.grad, rtol=1e-10,
                                   atol=1e-12)


def test_parameter_gradients_accumulate_until_zero_grad():
    case = next(c for c in CASES if c.id == "conv")
    xs = case.inputs(np.random.default_rng(0))
    layer, dev = make(case, xs)
    g = np.ones((xs[0].shape[0], 3, xs[0].shape[2] - 2, xs[0].shape[3] - 2))
    layer.forward(dev[0])
    layer.backward(g)
    once = layer.params["weight"].grad.copy()
    layer.forward(dev[0])
    layer.backward(g)
    np.testing.assert_allclose(layer.params["weight"].grad, 2 * once)
    layer.params["weight"].zero_grad()
    layer.forward(dev[0])
    layer.backward(g)
    np.testing.assert_allclose(layer.params["weight"].grad, once)


def test_layers_fed_by_the_input_skip_the_input_gradient():
    case = next(c for c in CASES if c.id == "conv")
    xs = case.inputs(np.random.default_rng(0))
    layer, dev = make(case, xs)
    layer.need_input_grad = False
    y = layer.forward(dev[0])
    assert layer.backward(np.ones_like(y)) is None
    assert layer.params["weight"].has_grad


# -- every layer type is described ----------------------------------------------------------
def test_every_layer_type_has_a_case_and_a_description():
    covered = {c.type for c in CASES} | {"Dropout", "Input", "Dense", "Flatten", "Reshape"}
    assert set(LAYERS) <= covered
    for name, cls in LAYERS.items():
        assert cls.category in CATEGORIES
        assert cls.summary.endswith("."), name
    for name in {c.type for c in CASES} | {"Dropout"}:
        assert "dL/d" in LAYERS[name].math, name  # forward and backward formula


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_count_params_matches_built_layer(case):
    xs = case.inputs(np.random.default_rng(0))
    layer, _ = make(case, xs)
    config = layer.validate_config(dict(case.config))
    assert LAYERS[case.type].count_params(config, [x.shape[1:] for x in xs]) == \
        layer.param_count()


def test_activation_kinds_for_diagnostics():
    kinds = {n: LAYERS[n].activation_kind for n in ("ReLU", "LeakyReLU", "Sigmoid", "Tanh",
                                                   "GELU")}
    assert kinds == {"ReLU": "relu", "LeakyReLU": "relu", "Sigmoid": "sigmoid",
                     "Tanh": "tanh", "GELU": None}


def test_has_weights_goes_with_a_weight_initializer():
    """The trait the app and the trainer ask instead of listing ("Dense", "Conv2D"): a layer
    whose weight matrix or kernel is drawn by an ``init`` option. A normalisation's
    per-channel scale (also a parameter called weight) is not one."""
    for name, cls in LAYERS.items():
        takes_init = any(o.name == "init" for o in cls.options)
        assert has_trait(name, "has_weights") == takes_init, name


def test_traits_by_type_name():
    assert set(type_names("is_activation")) == {
        n for n, c in LAYERS.items() if c.category == "Activations"}
    assert {"Dense", "Conv2D"} <= set(type_names("has_weights"))
    assert all(has_trait(n, "is_activation") for n in ("ReLU", "Tanh", "Softmax"))
    assert not has_trait("Dense", "is_activation") and not has_trait("ReLU", "has_weights")
    # unknown or malformed names are simply not of any kind (analyze reports them)
    assert not has_trait("Nope", "has_weights") and not has_trait(None, "is_activation")


# -- special functions ------------------------------------------------------------------------
def test_erf_and_erfc_are_accurate_in_float64(backend_name):
    xp = get_backend(backend_name).xp
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 1.0, 200),
                        np.linspace(6, 26, 201)])
    got = to_host(erf(xp.asarray(x)))
    ref = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(got - ref)) < 2e-15
    tiny = x[np.abs(x) < 1e-3]
    np.testing.assert_allclose(to_host(erf(xp.asarray(tiny))), [math.erf(v) for v in tiny],
                               rtol=1e-15)
    refc = np.array([math.erfc(v) for v in x])
    # relative accuracy far in the tail (limited by the reference's exp(x^2) rounding)
    np.testing.assert_allclose(to_host(erfc(xp.asarray(x))), refc, rtol=2e-13, atol=0)
    special = to_host(erf(xp.asarray([np.inf, -np.inf, np.nan, 0.0])))
    assert special[0] == 1 and special[1] == -1 and np.isnan(special[2]) and special[3] == 0


def test_sigmoid_is_stable_for_extreme_inputs(backend_name):
    xp = get_backend(backend_name).xp
    for dtype in (np.float32, np.float64):
        x = xp.asarray([-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4], dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow warning
            y = to_host(sigmoid(x))
        assert y.dtype == dtype and np.all(np.isfinite(y))
        assert y[0] == 0 and y[-1] == 1 and y[3] == 0.5
        np.testing.assert_allclose(y[2], 1 / (1 + math.exp(30)), rtol=1e-6)


def test_softplus_and_softmax_do_not_overflow():
    sp = LAYERS["Softplus"]("sp", threshold=1e6)
    y = sp.forward(np.array([[1000.0, -1000.0]]))
    np.testing.assert_allclose(y, [[1000.0, 0.0]])
    sm = LAYERS["Softmax"]("sm")
    y = sm.forward(np.array([[1000.0, 1000.0]]))
    np.testing.assert_allclose(y, [[0.5, 0.5]])


# -- pooling specifics ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_maxpool_gives_a_tie_to_exactly_one_input_the_first(backend_name, dtype):
    xp = get_backend(backend_name).xp
    pool = LAYERS["MaxPool2D"]("p")
    pool.xp = xp
    x = np.zeros((1, 1, 2, 4), dtype)
    x[0, 0, :, 2:] = [[1.0, 2.0], [2.0, 2.0]]
    pool.forward(xp.asarray(x))
    dx = to_host(pool.backward(xp.ones((1, 1, 1, 2), dtype)))
    assert dx.dtype == np.dtype(dtype)
    assert dx.sum() == 2  # one winner per window
    assert dx[0, 0, 0, 0] == 1  # all-zero window: the first element wins
    assert dx[0, 0, 0, 3] == 1  # 2.0 ties three times: the first in row-major order


def test_maxpool_training_and_evaluation_agree_on_an_uneven_input(backend_name):
    """Training keeps a window-major copy of the input (disjoint windows), evaluation reads
    strided slices: the same maxima; the column and row no window covers get no gradient."""
    xp = get_backend(backend_name).xp
    pool = LAYERS["MaxPool2D"]("p")
    pool.xp = xp
    x = np.random.default_rng(0).integers(0, 3, (2, 3, 5, 7)).astype(np.float32)  # ties
    y_eval = to_host(pool.forward(xp.asarray(x), training=False))
    y = to_host(pool.forward(xp.asarray(x), training=True))
    np.testing.assert_array_equal(y, y_eval)
    dx = to_host(pool.backward(xp.ones((2, 3, 2, 3), np.float32)))
    assert dx.shape == x.shape
    assert not dx[:, :, 4, :].any() and not dx[:, :, :, 6].any()
    win = dx[:, :, :4, :6].reshape(2, 3, 2, 2, 3, 2)
    assert (win.sum(axis=(3, 5)) == 1).all()  # one winner per window, a maximum
    assert (x[dx == 1] == np.repeat(np.repeat(y, 2, 2), 2, 3)[dx[:, :, :4, :6] == 1]).all()


def test_pool_stride_defaults_to_kernel_size():
    pool = LAYERS["MaxPool2D"]("p", kernel_size=3)
    assert pool.stride == (3, 3)
    assert pool.output_shape([(2, 9, 10)]) == (2, 3, 3)


# -- Dropout ----------------------------------------------------------------------------------
def _dropout(p, seed=0, backend="numpy", dtype=np.float64):
    layer = LAYERS["Dropout"]("drop", p=p)
    ctx = BuildContext(get_backend(backend).xp, dtype, np.random.default_rng(seed))
    layer.bind(ctx)
    layer.build([(1000,)], ctx)
    return layer


def test_dropout_is_inverted_and_the_identity_at_evaluation(backend_name):
    xp = get_backend(backend_name).xp
    layer = _dropout(0.3, backend=backend_name, dtype=np.float32)
    x = xp.ones((64, 1000), dtype=np.float32)
    y = to_host(layer.forward(x, training=True))
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    g = to_host(layer.backward(xp.ones_like(x)))
    np.testing.assert_array_equal(g, y)  # dy/dx is the same scaled mask
    assert layer.forward(x, training=False) is x
    assert layer.backward(x) is x


def test_dropout_masks_are_reproducible_from_the_build_seed():
    x = np.ones((8, 1000))
    a, b, c = _dropout(0.5, seed=1), _dropout(0.5, seed=1), _dropout(0.5, seed=2)
    ya, yb, yc = a.forward(x), b.forward(x), c.forward(x)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, yc)
    assert not np.array_equal(a.forward(x), ya)  # a new mask every step


def test_dropout_p_edges():
    x = np.ones((4, 1000))
    np.testing.assert_array_equal(_dropout(0.0).forward(x), x)
    np.testing.assert_array_equal(_dropout(1.0).forward(x), 0 * x)


def test_dropout_gradcheck_with_a_frozen_mask():
    layer = _dropout(0.4)
    x = np.random.default_rng(0).normal(size=(5, 1000))
    report = gradcheck_layer(layer, x, before_forward=lambda: layer.reseed(11),
                             directions=8)
    assert report.ok, str(report)


# -- BatchNorm specifics ----------------------------------------------------------------------
def test_batchnorm_running_statistics_and_eval_mode():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 4))
    bn = LAYERS["BatchNorm"]("bn", momentum=0.5)
    ctx = BuildContext(np, np.float64)
    bn.bind(ctx)
    bn.build([(4,)], ctx)
    bn.forward(x, training=True)
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.5 * x.mean(0))
    np.testing.assert_allclose(bn.buffers["running_var"], 0.5 + 0.5 * x.var(0, ddof=1))
    assert bn.buffers["num_batches_tracked"].dtype == np.int64
    assert int(bn.buffers["num_batches_tracked"]) == 1
    y = bn.forward(x, training=False)
    rm, rv = bn.buffers["running_mean"], bn.buffers["running_var"]
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-5))
    assert int(bn.buffers["num_batches_tracked"]) == 1  # evaluation does not count
    report = gradcheck_layer(bn, x[:6], training=False)
    assert report.ok, str(report)


def test_batchnorm_refuses_to_train_on_one_value_per_channel():
    bn = LAYERS["BatchNorm"]("bn")
    ctx = BuildContext(np, np.float64)
    bn.bind(ctx)
    bn.build([(3,)], ctx)
    with pytest.raises(ShapeError, match="more than one value per channel"):
        bn.forward(np.ones((1, 3)), training=True)
    bn.forward(np.ones((1, 3)), training=False)


# -- messages ---------------------------------------------------------------------------------
@pytest.mark.parametrize("type_name, config, shapes, message", [
    ("Conv2D", {"filters": 8}, [(64,)],
     "Conv2D 'x' expects (channels, height, width) input, received (batch, 64): use Reshape"),
    ("Conv2D", {"filters": 8, "kernel_size": 5}, [(1, 3, 3)],
     ("Conv2D 'x': a 5x5 window does not fit the 3x3 input (padding 0x0): use a smaller "
      "kernel_size or more padding")),
    ("Conv2D", {"filters": 2, "dilation": 3}, [(1, 6, 9)],
     ("Conv2D 'x': a 3x3 window with dilation 3x3 (spanning 7x7) does not fit the 6x9 input "
      "(padding 0x0): use a smaller kernel_size or dilation, or more padding")),
    ("Conv2D", {"filters": 8, "groups": 3}, [(16, 5, 5)],
     ("Conv2D 'x': groups=3 must divide the 16 input channels and the 8 filters: use one "
      "that divides both (1, 2, 4, 8)")),
    ("Conv2D", {"filters": 6, "groups": 4}, [(8, 5, 5)],
     ("groups=4 must divide the 8 input channels and the 6 filters: use one that divides "
      "both (1, 2)")),
    ("Conv2D", {"filters": 6, "groups": 3}, [(4, 5, 5)],
     "groups=3 must divide the 4 input channels and the 6 filters"),
    ("MaxPool2D", {}, [(10,)], "MaxPool2D 'x' expects (channels, height, width) input"),
    ("GlobalAvgPool", {}, [(10,)], "use it after Conv2D or pooling layers"),
    ("BatchNorm", {}, [(2, 3)], "use Flatten or Reshape before it"),
    ("Add", {}, [(16,), (32,)],
     ("Add 'x' needs inputs of equal shape, received (batch, 16) and (batch, 32): insert a "
      "Dense (or Conv2D) on one branch")),
    ("Concat", {}, [(2, 4, 4), (3, 5, 4)], "match except along dim 1"),
    ("Concat", {"dim": 3}, [(4,), (4,)], "dim 3 is out of range"),
    ("Softmax", {"dim": 4}, [(4, 3)], "dim 4 is out of range"),
])
def test_shape_errors_name_the_layer_and_the_remedy(type_name, config, shapes, message):
    layer = LAYERS[type_name]("x", **config)
    with pytest.raises(ShapeError) as info:
        layer.output_shape(shapes)
    assert message in str(info.value)


@pytest.mark.parametrize("type_name, config, message", [
    ("Conv2D", {"filters": 0}, "Conv2D 'x': filters must be a positive integer, received 0"),
    ("Conv2D", {}, "Conv2D 'x': filters is required"),
    ("Conv2D", {"filters": 2, "kernel_size": [3, 3, 3]}, "kernel_size must be an integer or a"),
    ("Conv2D", {"filters": 2, "groups": 0},
     "Conv2D 'x': groups must be a positive integer, received 0"),
    ("Conv2D", {"filters": 2, "dilation": [1, 0]}, "Conv2D 'x': dilation must be at least 1"),
    ("MaxPool2D", {"kernel_size": 2, "padding": 2}, "padding must be at most half"),
    ("Dropout", {"p": 1.5}, "Dropout 'x': p must be a number in [0, 1], received 1.5"),
    ("GELU", {"approximate": "fast"}, "approximate must be one of 'none', 'tanh'"),
    ("BatchNorm", {"eps": 0}, "eps must be a number > 0"),
    ("Concat", {"dim": 0}, "dim 0 is the batch axis"),
])
def test_bad_options_are_config_errors(type_name, config, message):
    with pytest.raises(ConfigError) as info:
        LAYERS[type_name]("x", **config)
    assert message in str(info.value)


def test_pair_options_are_normalised():
    conv = LAYERS["Conv2D"]("c", filters=2, kernel_size=5, stride=[2, 1])
    assert conv.kernel_size == (5, 5) and conv.stride == (2, 1) and conv.padding == (0, 0)
    assert conv.dilation == (1, 1) and conv.groups == 1
    assert LAYERS["Conv2D"]("c", filters=2, dilation=[2, 3]).dilation == (2, 3)


def test_conv_window_fits_exactly_with_dilation():
    """torch's size rule: floor((H + 2p - d (k - 1) - 1) / s) + 1, down to a 1x1 output."""
    conv = LAYERS["Conv2D"]("c", filters=1, kernel_size=(3, 2), dilation=(3, 4), stride=2)
    assert conv.output_shape([(1, 7, 5)]) == (1, 1, 1)
    assert conv.output_shape([(1, 10, 9)]) == (1, 2, 3)
    with pytest.raises(ShapeError, match="spanning 7x5"):
        conv.output_shape([(1, 6, 5)])


def test_grouped_conv_initialisers_use_torch_fan_in():
    """Weight (F, C/G, kh, kw); default init and bias bound 1/sqrt(C/G kh kw), as torch."""
    conv = LAYERS["Conv2D"]("c", filters=6, kernel_size=(3, 2), groups=3)
    ctx = BuildContext(np, np.float64, np.random.default_rng(4))
    conv.bind(ctx)
    conv.build([(3, 8, 8)], ctx)
    assert conv.params["weight"].shape == (6, 1, 3, 2)
    rng = np.random.default_rng(4)
    bound = 1 / math.sqrt(1 * 3 * 2)
    np.testing.assert_array_equal(conv.params["weight"].data,
                                  rng.uniform(-bound, bound, (6, 1, 3, 2)))
    np.testing.assert_array_equal(conv.params["bias"].data, rng.uniform(-bound, bound, 6))
    assert LAYERS["Conv2D"].count_params(conv.config, [(3, 8, 8)]) == 6 * 6 + 6


def test_grouped_conv_build_refuses_indivisible_channels():
    conv = LAYERS["Conv2D"]("c", filters=4, groups=2)
    ctx = BuildContext(np, np.float64)
    conv.bind(ctx)
    with pytest.raises(ShapeError, match="groups=2 must divide the 3 input channels"):
        conv.build([(3, 8, 8)], ctx)


def test_zeros_like_read_only_shares_one_buffer_that_nobody_can_write(monkeypatch):
    from bplab.layers import base

    monkeypatch.setattr(base, "_ZEROS", {})
    a = base.zeros_like_read_only(np.ones((3, 5), np.float32))
    b = base.zeros_like_read_only(np.ones((2, 2, 2), np.float32))
    assert a.shape == (3, 5) and b.shape == (2, 2, 2) and a.dtype == np.float32
    assert not a.any() and np.shares_memory(a, b)
    with pytest.raises(ValueError):
        a[0, 0] = 1.0
    assert base.zeros_like_read_only(np.ones(3, np.float64)).dtype == np.float64
    monkeypatch.setattr(base, "ZEROS_MAX", 10)
    assert base.zeros_like_read_only(np.ones(11, np.float32)) is None


def test_relu_matches_the_scalar_formula_in_training_and_evaluation():
    layer = LAYERS["ReLU"]("r")
    layer.reuse_buffers = True
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32)
    x[0, 0, 0, :3] = [np.nan, -0.0, np.inf]
    for training in (True, False):
        np.testing.assert_array_equal(layer.forward(x, training), np.maximum(x, 0))
        np.testing.assert_array_equal(layer.backward(np.ones_like(x)), (x > 0).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1])
def test_parameter_add_sum_is_the_sum_fresh_and_accumulated(dtype, axis):
    """Bias gradients: on numpy, float32/float64 sums are products with ones (BLAS), other
    dtypes reduce; either way the sum, written fresh after zero_grad and added after."""
    from bplab.layers.base import Parameter

    rng = np.random.default_rng(0)
    g = rng.standard_normal((33, 7)).astype(dtype)
    p = Parameter("b", np.zeros(g.shape[1 - axis], dtype))
    p.grad[...] = 123.0  # stale values, overwritten by the first sum
    p.zero_grad()
    p.add_sum(g, axis)
    want = g.astype(np.float64).sum(axis=axis)
    tol = {np.float16: 1e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(p.grad, want, rtol=tol, atol=tol)
    assert p.has_grad and p.grad.dtype == dtype
    p.add_sum(g, axis)
    np.testing.assert_allclose(p.grad, 2 * want, rtol=tol, atol=2 * tol)


@pytest.mark.parametrize("shape", [(5, 3), (64, 16, 9), (8, 4, 5, 6)])
def test_sum_rows_is_the_sum_over_the_batch(shape):
    from bplab.layers.base import sum_rows

    rng = np.random.default_rng(1)
    for dtype in (np.float16, np.float32, np.float64):
        a = rng.standard_normal(shape).astype(dtype)
        got = sum_rows(a)
        assert got.shape == shape[1:] and got.dtype == dtype
        tol = {np.float16: 1e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype]
        np.testing.assert_allclose(got, a.astype(np.float64).sum(axis=0), rtol=tol, atol=tol)
    strided = rng.standard_normal((6, 8)).astype(np.float32)[:, ::2]  # not contiguous
    np.testing.assert_allclose(sum_rows(strided), strided.sum(axis=0), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_training_plan_gives_the_general_paths_numbers_bit_for_bit(dtype):
    """Dense keeps a plan (buffers, transposed weight, ones) per 2-D numpy batch shape and
    runs a training step with three dot products; going back to a batch shape takes up its
    plan again. Set against the same network without
    reused buffers (``x @ W.T``, the general path), every output and gradient is equal bit
    for bit: across a smaller last batch (a new plan), after the parameters move into a
    flat buffer (the plan's arrays are stale), and when a gradient accumulates."""
    from bplab.graph import Network

    spec = {"nodes": [
        {"id": "in", "type": "Input", "shape": [3]},
        {"id": "fc1", "type": "Dense", "units": 5},
        {"id": "t", "type": "Tanh"},
        {"id": "fc2", "type": "Dense", "units": 4, "bias": False},
        {"id": "out", "type": "Dense", "units": 2},
    ]}
    planned, general = Network(spec, dtype=dtype, seed=1), Network(spec, dtype=dtype, seed=1)
    planned.reuse_buffers = True
    rng = np.random.default_rng(0)

    def step(net, x, g, fresh=True):
        if fresh:
            net.zero_grad()
        y = net.forward(x, True).copy()
        net.backward(g)
        return [y] + [p.grad.copy() for p in net.parameters()]

    fc1 = planned.layers["fc1"]
    plans = {}
    for i, rows in enumerate([8, 8, 5, 8, 5, 8, 5, 8]):
        if i == 5:
            planned.flatten_parameters()  # the kept plans of both shapes go stale
        x = rng.standard_normal((rows, 3)).astype(dtype)
        g = rng.standard_normal((rows, 2)).astype(dtype)
        for a, b in zip(step(planned, x, g), step(general, x, g), strict=True):
            np.testing.assert_array_equal(a, b)
        plan = fc1._scratch["plan"]
        if i in (3, 4):  # each batch shape's plan is kept: the smaller batch and back
            assert plan is plans[rows]
        elif i in (5, 6):
            assert plan is not plans[rows]
        plans[rows] = plan
    assert fc1._scratch["plan"].weight is fc1.params["weight"].data  # made anew after flatten
    assert fc1._scratch["plan"].x_shape == (8, 3)
    x = rng.standard_normal((8, 3)).astype(dtype)
    g = rng.standard_normal((8, 2)).astype(dtype)
    for a, b in zip(step(planned, x, g, fresh=False), step(general, x, g, fresh=False),
                    strict=True):  # a second backward adds to the gradients
        np.testing.assert_array_equal(a, b)
    planned.reuse_buffers = False  # buffers dropped: the plan with them
    assert "plan" not in planned.layers["fc1"]._scratch
