"""Recurrent layers in float64: gradients over several lengths, truncated BPTT against the
truncated function, dL/dh_t per step, shapes and messages, networks, training and diagnosis."""

from __future__ import annotations

import numpy as np
import pytest
from layer_cases import recurrent_ref

from bplab.errors import NetworkError, ShapeError
from bplab.gradcheck import gradcheck, gradcheck_layer, gradcheck_network
from bplab.graph import Network, analyze
from bplab.layers import LAYERS, has_trait
from bplab.losses import make_loss

KINDS = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}
CONFIGS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]
CONFIG_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def build(type_name, cfg, x, seed=0, **extra):
    layer = LAYERS[type_name](type_name.lower(), hidden_size=3, **cfg, **extra)
    gradcheck_layer(layer, x, seed=seed)  # builds it in float64 (and checks it once)
    return layer


def params_of(layer):
    return {k: p.data for k, p in layer.params.items()}


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("seq_len", [1, 4, 9])
@pytest.mark.parametrize(("type_name", "cfg"), CONFIGS, ids=CONFIG_IDS)
def test_gradcheck_over_sequence_lengths(type_name, cfg, seq_len, return_sequences):
    x = np.random.default_rng(seq_len).normal(size=(3, seq_len, 2))
    layer = LAYERS[type_name]("r", hidden_size=3, return_sequences=return_sequences, **cfg)
    report = gradcheck_layer(layer, x, seed=seq_len)
    assert report.ok and report.max_error < 1e-6, str(report)
    assert set(report.errors) == {"input", "weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                  "bias_hh_l0"}


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("bptt", [1, 3])
@pytest.mark.parametrize(("type_name", "cfg"), CONFIGS, ids=CONFIG_IDS)
def test_truncated_bptt_is_the_gradient_of_the_truncated_function(type_name, cfg, bptt,
                                                                   return_sequences):
    """With bptt_steps = k the gradient is that of the function whose state entering each
    chunk of k steps is a constant (torch's h.detach() every k steps). The reference computes
    that function in plain numpy; central differences of it must equal the layer's backward."""
    rng = np.random.default_rng(bptt)
    t_len = 7
    x = rng.normal(size=(2, t_len, 2))
    cfg = {**cfg, "return_sequences": return_sequences}
    layer = LAYERS[type_name]("r", hidden_size=3, **cfg)
    gradcheck_layer(layer, x)  # build
    layer.bptt_steps = bptt
    ref = recurrent_ref(KINDS[type_name])
    full_cfg = {**cfg, "hidden_size": 3}
    # the states entering each chunk, frozen at the unperturbed parameters
    frozen = {}
    params = {k: v.copy() for k, v in params_of(layer).items()}
    for start in range(t_len - bptt, 0, -bptt):  # chunks counted from the last step
        states = _states(ref, x[:, :start], params, full_cfg, type_name)
        frozen[start] = states
    r = rng.normal(size=np.shape(ref([x], params, full_cfg)))
    live = {k: p.data for k, p in layer.params.items()}
    xin = x.copy()

    def f():
        return float(np.sum(ref([xin], live, full_cfg, starts=frozen) * r))

    def analytic():
        for p in layer.params.values():
            p.zero_grad()
        layer.forward(xin)
        out = {"input": layer.backward(r.copy())}
        out.update({k: p.grad.copy() for k, p in layer.params.items()})
        return out

    report = gradcheck(f, {"input": xin, **live}, analytic)
    assert report.ok and report.max_error < 1e-6, str(report)
    # ... and it is not the full gradient: the cut matters here (a ReLU RNN's gradient may
    # die out before reaching a cut on its own)
    if bptt == 3:
        layer.bptt_steps = None
        assert gradcheck_layer(layer, x).ok  # the full gradient still checks
        layer.bptt_steps = bptt
        if cfg.get("nonlinearity") != "relu":
            assert not gradcheck_layer(layer, x).ok


def _states(ref, x, params, cfg, type_name):
    """(h, c) after running ``x`` from zero states (c is unused but for the LSTM)."""
    h = ref([x], params, {**cfg, "return_sequences": False})
    if type_name != "LSTM":
        return h, None
    # the LSTM's cell: run the reference one step more by hand
    hsz = cfg["hidden_size"]
    c = np.zeros_like(h)
    hh = np.zeros_like(h)
    b = params.get("bias_ih_l0", 0) + params.get("bias_hh_l0", 0)
    for t in range(x.shape[1]):
        i, f, g, o = np.split(x[:, t] @ params["weight_ih_l0"].T
                              + hh @ params["weight_hh_l0"].T + b, 4, axis=1)
        sig = 1 / (1 + np.exp(-np.stack([i, f, o])))
        c = sig[1] * c + sig[0] * np.tanh(g)
        hh = sig[2] * np.tanh(c)
    assert np.allclose(hh, h) and c.shape[1] == hsz
    return h, c


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize(("type_name", "cfg"), CONFIGS, ids=CONFIG_IDS)
def test_time_grad_norms_are_the_norms_of_dl_dh_t(type_name, cfg, return_sequences):
    """Recorded on request only; each entry is ||dL/dh_t|| over the batch, checked against
    central differences of the reference with respect to a shift added to h_t."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 2))
    cfg = {**cfg, "return_sequences": return_sequences}
    layer = build(type_name, cfg, x)
    ref = recurrent_ref(KINDS[type_name])
    full = {**cfg, "hidden_size": 3}
    params = params_of(layer)
    y = layer.forward(x)
    g = rng.normal(size=y.shape)
    layer.backward(g)
    assert layer.time_grad_norms is None  # not asked for
    layer.record_time_grads = True
    layer.forward(x)
    layer.backward(g)
    norms = layer.time_grad_norms
    assert norms.shape == (5,) and norms.dtype == np.float64
    shift = np.zeros((2, 5, 3))
    numeric = np.zeros_like(shift)
    eps = 1e-6
    for idx in np.ndindex(shift.shape):
        shift[idx] = eps
        up = np.sum(ref([x], params, full, shift=shift) * g)
        shift[idx] = -eps
        down = np.sum(ref([x], params, full, shift=shift) * g)
        shift[idx] = 0
        numeric[idx] = (up - down) / (2 * eps)
    np.testing.assert_allclose(norms, np.sqrt((numeric ** 2).sum(axis=(0, 2))), rtol=1e-6)


def test_truncation_zeroes_dl_dh_before_the_cut():
    x = np.random.default_rng(0).normal(size=(2, 10, 2))
    layer = build("LSTM", {}, x)
    layer.bptt_steps, layer.record_time_grads = 4, True
    layer.backward(np.ones_like(layer.forward(x)))
    norms = layer.time_grad_norms
    # chunks from the end: the last is steps 6..9, and nothing flows back from 6 to 5
    assert np.all(norms[:6] == 0) and np.all(norms[6:] > 0)


def test_bptt_longer_than_the_sequence_changes_nothing():
    x = np.random.default_rng(1).normal(size=(3, 6, 2))
    layer = build("GRU", {"return_sequences": True}, x)
    g = np.random.default_rng(2).normal(size=(3, 6, 3))
    grads = []
    for k in (None, 6, 50):
        layer.bptt_steps = k
        for p in layer.params.values():
            p.zero_grad()
        layer.forward(x)
        grads.append([layer.backward(g)] + [p.grad.copy() for p in layer.params.values()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            np.testing.assert_array_equal(a, b)


# -- shapes, messages, traits -----------------------------------------------------------------
def test_shapes_parameters_and_traits():
    layer = LAYERS["LSTM"]("lstm1", hidden_size=8)
    assert layer.output_shape([(20, 3)]) == (8,)
    layer = LAYERS["LSTM"]("lstm1", hidden_size=8, return_sequences=True)
    assert layer.output_shape([(20, 3)]) == (20, 8)
    for name, gates in (("RNN", 1), ("LSTM", 4), ("GRU", 3)):
        assert LAYERS[name].category == "Recurrent"
        assert has_trait(name, "takes_sequence") and has_trait(name, "has_weights")
        assert LAYERS[name].count_params({"hidden_size": 5, "bias": True}, [(7, 3)]) == \
            gates * 5 * 3 + gates * 5 * 5 + 2 * gates * 5
        assert LAYERS[name].count_params({"hidden_size": 5, "bias": False}, [(7, 3)]) == \
            gates * 5 * 3 + gates * 5 * 5
    assert (LAYERS["RNN"].id_prefix, LAYERS["LSTM"].id_prefix, LAYERS["GRU"].id_prefix) == \
        ("rnn", "lstm", "gru")


def test_a_recurrent_layer_on_a_flat_input_says_what_to_do():
    plan = analyze([{"id": "in", "type": "Input", "shape": [4]},
                    {"id": "fc", "type": "Dense", "units": 8},
                    {"id": "rnn1", "type": "RNN", "hidden_size": 4}])
    (problem,) = plan.problems
    assert problem.node == "rnn1"
    assert problem.message == ("RNN 'rnn1' expects (time, features), received (batch, 8): "
                               "use Reshape to give it (time, features), e.g. [8, 1] for one "
                               "feature per step")
    with pytest.raises(ShapeError, match="expects \\(time, features\\), received "
                                         "\\(batch, 1, 8, 8\\)"):
        LAYERS["GRU"]("g", hidden_size=2).output_shape([(1, 8, 8)])
    with pytest.raises(NetworkError):
        Network([{"id": "in", "type": "Input", "shape": [4]},
                 {"id": "rnn1", "type": "RNN", "hidden_size": 4}])


def test_torch_default_initialisation_and_orthogonal_recurrent_weights():
    layer = LAYERS["LSTM"]("l", hidden_size=16)
    build_x = np.zeros((1, 3, 5))
    gradcheck_layer(layer, build_x)
    bound = 1 / np.sqrt(16)
    for p in layer.params.values():  # torch: every parameter U(-1/sqrt(H), 1/sqrt(H))
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.8 * bound
    ortho = LAYERS["LSTM"]("l", hidden_size=16, recurrent_init="orthogonal")
    gradcheck_layer(ortho, build_x)
    w = ortho.params["weight_hh_l0"].data
    for gate in range(4):  # each gate's block is orthogonal
        block = w[gate * 16:(gate + 1) * 16]
        np.testing.assert_allclose(block @ block.T, np.eye(16), atol=1e-12)


# -- in a network ------------------------------------------------------------------------------
STACK = [{"id": "in", "type": "Input", "shape": [6, 2]},
         {"id": "rnn1", "type": "RNN", "hidden_size": 4, "return_sequences": True},
         {"id": "lstm1", "type": "LSTM", "hidden_size": 3, "return_sequences": True},
         {"id": "gru1", "type": "GRU", "hidden_size": 3, "return_sequences": True},
         {"id": "fc", "type": "Dense", "units": 2}]


def test_a_stacked_network_gradchecks_with_a_per_step_dense_readout():
    net = Network(STACK, dtype="float64", seed=1)
    assert net.output_shape == (6, 2)
    assert [n for n, _ in net.named_parameters()][:4] == [
        "rnn1.weight_ih_l0", "rnn1.weight_hh_l0", "rnn1.bias_ih_l0", "rnn1.bias_hh_l0"]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 2))
    report = gradcheck_network(net, make_loss("mse"), x, y)
    assert report.ok, str(report)


# -- training: truncated BPTT, dL/dh_t on the reports, the diagnosis and its fixes -------------
def _project(kind="RNN", seq_len=30, node_id="rnn1", **training):
    return {
        "version": 1,
        "dataset": {"name": "adding", "seq_len": seq_len, "samples": 256},
        "network": {"nodes": [{"id": "in", "type": "Input", "shape": [seq_len, 2]},
                              {"id": node_id, "type": kind, "hidden_size": 8},
                              {"id": "fc", "type": "Dense", "units": 1}]},
        "loss": {"type": "mse"}, "optimizer": {"type": "adam", "lr": 0.01},
        "training": {"steps": 6, "batch_size": 32, "diagnostics_every": 2,
                     "backend": "numpy", **training},
    }


def test_the_trainer_truncates_and_reports_dl_dh_per_step_at_the_diagnostics_cadence():
    from bplab.training import Trainer

    trainer = Trainer(_project(bptt_steps=7))
    assert trainer.network.layers["rnn1"].bptt_steps == 7
    reports = list(trainer.run())
    with_time = [r for r in reports if r.time_grad_norms is not None]
    assert [r.step for r in with_time] == [2, 4, 6]
    for r in with_time:
        (norms,) = r.time_grad_norms.values()
        assert list(r.time_grad_norms) == ["rnn1"] and norms.shape == (30,)
        # the last chunk of 7 steps (23..29) gets the gradient, nothing before the cut at 23
        assert np.all(norms[:23] == 0) and np.all(norms[23:] > 0)
    assert len(trainer.time_grad_history) == 3
    # the l2 penalty reaches the recurrent weights (not the biases)
    names = {id(p): n for n, p in trainer.network.named_parameters()}
    assert sorted(names[id(p)] for p in trainer._penalised) == [
        "fc.weight", "rnn1.weight_hh_l0", "rnn1.weight_ih_l0"]


def test_a_plain_rnn_over_long_sequences_is_diagnosed_and_the_fix_applies():
    from bplab.fixes import ReplaceType, apply_fix, edits_for
    from bplab.training import Trainer

    project = _project(seq_len=60)
    trainer = Trainer(project)
    list(trainer.run())
    (finding,) = [f for f in trainer.findings if f.code == "vanishing_through_time"]
    assert finding.layers == ("rnn1",)
    assert finding.evidence["ratio.rnn1"] < 1e-3 and finding.evidence["steps.rnn1"] == 59
    fixes = {f.id: f for f in finding.fixes}
    assert list(fixes) == ["lstm", "gru", "orthogonal"]
    edits = edits_for(fixes["lstm"], project)
    assert edits[0] == ReplaceType("rnn1", "LSTM")
    fixed = apply_fix(project, fixes["lstm"])
    types = [(n["id"], n["type"]) for n in fixed["network"]["nodes"]]
    assert types[1] == ("lstm1", "LSTM")  # renamed with its new type
    list(Trainer(fixed).run())  # and it trains
    fixed = apply_fix(project, fixes["orthogonal"])
    assert fixed["network"]["nodes"][1]["recurrent_init"] == "orthogonal"


def test_exploding_through_time_suggests_clipping_a_shorter_bptt_and_gates():
    from bplab.diagnostics import diagnose, time_reach
    from bplab.fixes import SetSetting, apply_fix, edits_for

    growing = {"rnn1": np.geomspace(1e5, 1.0, 40)}
    (finding,) = diagnose([], time_grads=[growing] * 3, layer_types={"rnn1": "RNN"})
    assert finding.code == "exploding_through_time" and finding.severity == "error"
    assert "grows 1e+05x going 39 steps back" in finding.message
    fixes = {f.id: f for f in finding.fixes}
    assert list(fixes) == ["clip", "bptt", "lstm", "gru", "orthogonal"]
    project = _project(seq_len=40)
    assert edits_for(fixes["bptt"], project) == [SetSetting("training.bptt_steps", 19)]
    assert apply_fix(project, fixes["clip"])["training"]["clip_grad_norm"] == 1.0
    # a shorter truncation already set is kept
    assert edits_for(fixes["bptt"], _project(seq_len=40, bptt_steps=5)) == []
    # an LSTM gets no "replace by an LSTM"
    (finding,) = diagnose([], time_grads=[growing] * 3, layer_types={"rnn1": "LSTM"})
    assert [f.id for f in finding.fixes] == ["clip", "bptt", "orthogonal"]
    # two samples are not yet a trend; a healthy gradient is not a finding
    assert diagnose([], time_grads=[growing] * 2, layer_types={"rnn1": "RNN"}) == []
    flat = {"rnn1": np.ones(40)}
    assert diagnose([], time_grads=[flat] * 5, layer_types={"rnn1": "RNN"}) == []
    # a truncated-BPTT cut (zeros before it) is not a vanishing gradient
    cut = np.r_[np.zeros(30), np.linspace(0.5, 1.0, 10)]
    assert time_reach(cut) == (0.5, 9)
    assert diagnose([], time_grads=[{"rnn1": cut}] * 5, layer_types={"rnn1": "RNN"}) == []


def test_gradcheck_network_checks_the_exact_gradient_under_truncated_bptt():
    net = Network(STACK[:3], dtype="float64", seed=2)
    for layer in net.layers.values():
        layer.bptt_steps = 2
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 6, 2)), rng.normal(size=(2, 6, 3))
    report = gradcheck_network(net, make_loss("mse"), x, y)
    assert report.ok, str(report)
    assert net.layers["lstm1"].bptt_steps == 2  # restored for training


def test_a_recurrent_first_layer_is_left_to_the_through_time_rule():
    """Its small weight gradient is the gradient vanishing along time: the layer-wise rule
    (whose fixes are He init, BatchNorm, residual connections) does not speak for it."""
    from bplab.diagnostics import LayerStats, diagnose

    history = [[LayerStats("lstm1", "LSTM", 0, 1e-6, 1.0, 1e-4, 1e-8),
                LayerStats("fc", "Dense", 1, 1.0, 1.0, 1e-3, 1.0)]] * 5
    types = {"lstm1": "LSTM", "fc": "Dense"}
    assert not [f for f in diagnose(history, layer_types=types)
                if f.code == "vanishing_gradients"]
    dense = {"lstm1": "Dense", "fc": "Dense"}
    assert [f.code for f in diagnose(history, layer_types=dense)] == ["vanishing_gradients"]


def test_dense_on_a_sequence_with_reused_buffers_gives_the_same_gradients():
    spec = STACK[:2] + [{"id": "fc", "type": "Dense", "units": 3}]
    rng = np.random.default_rng(4)
    x, g = rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 6, 3))
    grads = []
    for reuse in (False, True):
        net = Network(spec, dtype="float64", seed=0)
        net.reuse_buffers = reuse
        net.require_input_grad = True
        for _ in range(2):  # the second step runs in the kept buffers
            net.zero_grad()
            y = net.forward(x).copy()
            gin = net.backward(g).copy()
        grads.append([y, gin] + [p.grad.copy() for p in net.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_time_grad_norms_under_mixed_precision_are_those_of_the_unscaled_loss():
    from bplab.training import Trainer

    runs = []
    for amp in (None, "float16"):
        # the whole training set in one batch: a step float16 skips (overflow at the first
        # loss scale) is retried on the same rows with the same weights
        trainer = Trainer(_project(kind="LSTM", seq_len=10, bptt_steps=4, batch_size="full",
                                   mixed_precision=amp, steps=1, diagnostics_every=1))
        runs.append([r.time_grad_norms["rnn1"] for r in trainer.run()
                     if r.time_grad_norms is not None][-1])
    np.testing.assert_allclose(runs[1], runs[0], rtol=2e-2, atol=1e-6)
