"""Issue 16: one training step as stages. The values at every stage equal the engine's forward
outputs, gradients and updated parameters for the same step; the chain-rule product for a
weight equals its gradient to 1e-12 in float64."""

from __future__ import annotations

import numpy as np
import pytest

from bplab.graph import Network
from bplab.io.project import new_project
from bplab.losses import make_loss
from bplab.stepthrough import StepThrough
from bplab.training import Trainer

BATCH = 4


def _project(dataset, nodes, loss, optimizer, **training):
    p = new_project()
    p["dataset"] = dataset
    p["network"] = {"nodes": nodes}
    p["loss"] = {"type": loss}
    p["optimizer"] = optimizer
    p["training"].update({"dtype": "float64", "shuffle": False, "batch_size": BATCH,
                          "backend": "numpy", "epochs": 2, **training})
    return p


def _mlp():
    p = new_project()  # Dense -> Tanh -> Dense -> Tanh -> Dense, cross-entropy, Adam
    p["training"].update({"dtype": "float64", "shuffle": False, "batch_size": BATCH,
                          "backend": "numpy"})
    return p


def _cnn():
    nodes = [
        {"id": "in", "type": "Input", "shape": [1, 8, 8]},
        {"id": "conv1", "type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": 1},
        {"id": "bn1", "type": "BatchNorm"},
        {"id": "relu1", "type": "ReLU"},
        {"id": "conv2", "type": "Conv2D", "filters": 4, "kernel_size": 3, "stride": 2,
         "padding": 1, "dilation": 2, "groups": 2},
        {"id": "sig2", "type": "Sigmoid"},
        {"id": "flat", "type": "Flatten"},
        {"id": "out", "type": "Dense", "units": 10},
    ]
    return _project({"name": "digits_images", "val_fraction": 0.2, "seed": 0}, nodes,
                    "cross_entropy",
                    {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True})


def _residual():
    nodes = [
        {"id": "in", "type": "Input", "shape": [64]},
        {"id": "stem", "type": "Dense", "units": 8},
        {"id": "bn", "type": "BatchNorm"},
        {"id": "relu", "type": "ReLU"},
        {"id": "fc", "type": "Dense", "units": 8},
        {"id": "act", "type": "ELU"},
        {"id": "drop", "type": "Dropout", "p": 0.25},  # float64 masks: the trainer's own
        {"id": "add", "type": "Add", "inputs": ["relu", "drop"]},
        {"id": "out", "type": "Dense", "units": 10},
    ]
    return _project({"name": "digits", "val_fraction": 0.2, "seed": 0, "standardize": True},
                    nodes, "cross_entropy", {"type": "adamw", "lr": 0.01},
                    l2=1e-3, clip_grad_norm=0.5)


def _recurrent():
    nodes = [
        {"id": "in", "type": "Input", "shape": [5, 2]},
        {"id": "rnn", "type": "RNN", "hidden_size": 4, "return_sequences": True},
        {"id": "fcs", "type": "Dense", "units": 3},
        {"id": "tanh", "type": "Tanh"},
        {"id": "gru", "type": "GRU", "hidden_size": 3, "return_sequences": True},
        {"id": "lstm", "type": "LSTM", "hidden_size": 3},
        {"id": "out", "type": "Dense", "units": 1},
    ]
    return _project({"name": "adding", "seq_len": 5, "samples": 40, "val_fraction": 0.2,
                     "seed": 0}, nodes, "mse", {"type": "rmsprop", "lr": 0.01, "momentum": 0.5})


NETWORKS = {"dense": _mlp, "conv_batchnorm": _cnn, "add_branch": _residual,
            "recurrent": _recurrent}


@pytest.fixture(scope="module", params=list(NETWORKS))
def case(request):
    """(project, trainer, its step through the first batch) for each network."""
    project = NETWORKS[request.param]()
    trainer = Trainer(project)
    return project, trainer, StepThrough(trainer, range(BATCH))


def _reference(trainer):
    """The engine's own forward/backward of the first batch: a float64 Network with the
    trainer's weights, every output captured."""
    net = Network(trainer.project["network"], dtype="float64", seed=0)
    net.load_state_dict(trainer.network.state_dict())
    net.capture = set(net.order)
    net.require_input_grad = True
    return net


def _batch(trainer):
    ds = trainer.dataset
    return ds.x_train[:BATCH].astype(np.float64), trainer.targets(ds.y_train[:BATCH])


def _stages(st, kind):
    return {s.node: s for s in st.stages if s.kind == kind}


def test_stages_come_in_order_forward_loss_backward_update(case):
    _, trainer, st = case
    kinds = [s.kind for s in st.stages]
    order = trainer.network.order
    assert kinds == ["forward"] * len(order) + ["loss"] + ["backward"] * len(order) + ["update"]
    assert [s.node for s in st.stages if s.kind == "forward"] == order
    assert [s.node for s in st.stages if s.kind == "backward"] == order[::-1]
    assert [s.index for s in st.stages] == list(range(len(st.stages)))


def test_forward_loss_and_gradients_equal_the_engines(case):
    project, trainer, st = case
    ref = _reference(trainer)
    x, y = _batch(trainer)
    out = ref.forward(x, True)
    loss = make_loss(project["loss"])
    value = float(loss.forward(out, y))
    dx = ref.backward(loss.backward())
    fwd, bwd = _stages(st, "forward"), _stages(st, "backward")
    np.testing.assert_array_equal(fwd[ref.input_id].output, x)
    for nid, y_node in ref.captured.items():
        np.testing.assert_allclose(fwd[nid].output, y_node, rtol=1e-13, atol=1e-15, err_msg=nid)
    (loss_stage,) = [s for s in st.stages if s.kind == "loss"]
    assert loss_stage.loss == pytest.approx(value, rel=1e-13)
    np.testing.assert_array_equal(loss_stage.prediction, fwd[ref.output_id].output)
    grads = {}
    for s in bwd.values():
        grads.update(s.param_grads)
    assert set(grads) == {n for n, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad, rtol=1e-12, atol=1e-15, err_msg=name)
    np.testing.assert_allclose(bwd[ref.input_id].grad_output, dx, rtol=1e-12, atol=1e-15)


def _loss_with_nudge(trainer, node, v):
    """The batch loss with ``v`` added to ``node``'s output (the same layers, float64)."""
    net = _reference(trainer)
    x, y = _batch(trainer)
    outs = {}
    for nid in net.order:
        ins = [outs[s] for s in net.plan.nodes[nid].inputs]
        o = x if not ins else net.layers[nid].forward(ins[0] if len(ins) == 1 else ins, True)
        outs[nid] = o + v if nid == node else o
    return float(make_loss(trainer.project["loss"]).forward(outs[net.output_id], y))


def test_each_nodes_gradient_is_the_derivative_of_the_loss_along_its_output(case):
    """dL/d(output) of every node against a central difference along a random direction
    (an oracle independent of backward)."""
    _, trainer, st = case
    rng = np.random.default_rng(0)
    eps = 1e-6
    for s in (s for s in st.stages if s.kind == "backward"):
        v = rng.standard_normal(s.grad_output.shape)
        fd = (_loss_with_nudge(trainer, s.node, eps * v)
              - _loss_with_nudge(trainer, s.node, -eps * v)) / (2 * eps)
        assert float(np.vdot(s.grad_output, v)) == pytest.approx(fd, rel=1e-5, abs=1e-8), s.node


def test_the_wires_carry_what_the_next_node_receives(case):
    """The gradient sent along each wire is the consumer's part in its source's gradient;
    where an output fans out, its gradient is the sum of the parts."""
    _, trainer, st = case
    bwd = _stages(st, "backward")
    plan = trainer.network.plan
    for nid, s in bwd.items():
        consumers = plan.consumers(nid)
        if len(consumers) > 1:
            assert [c for c, _ in s.contributions] == sorted(
                consumers, key=trainer.network.order.index, reverse=True)
            total = s.contributions[0][1] + s.contributions[1][1]
            for _, part in s.contributions[2:]:
                total = total + part
            np.testing.assert_array_equal(total, s.grad_output)
            for c, part in s.contributions:
                np.testing.assert_array_equal(bwd[c].grad_inputs[nid], part)
        elif consumers:
            assert s.contributions == ()
            np.testing.assert_array_equal(bwd[consumers[0]].grad_inputs[nid], s.grad_output)


def test_an_add_branch_shows_its_sum():
    st = StepThrough(Trainer(_residual()), range(BATCH))
    relu = _stages(st, "backward")["relu"]
    assert [c for c, _ in relu.contributions] == ["add", "fc"]
    norms = st.wire_norms()
    assert set(norms) == {(e, n) for n, node in st.network.plan.nodes.items()
                          for e in node.inputs}
    assert norms[("relu", "fc")] == np.linalg.norm(relu.contributions[1][1])


def test_update_equals_the_trainers_own_step(case):
    project, trainer, st = case
    twin = Trainer(project)
    twin.step()
    (update,) = [s for s in st.stages if s.kind == "update"]
    after = twin.network.state_dict()
    for name, (before, step, new) in update.updates.items():
        np.testing.assert_allclose(new, after[name], rtol=1e-12, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(before + step, new, rtol=1e-15, atol=1e-17)
    assert update.hyper["lr"] == twin.optimizer.lr
    twin_state = twin.optimizer.state_dict()["state"]
    for name, st_after in update.optimizer_state.items():
        for key, value in st_after.items():
            if value is not None:
                np.testing.assert_allclose(value, twin_state[name][key], rtol=1e-12,
                                           atol=1e-15, err_msg=f"{name} {key}")


def test_apply_makes_the_step_the_trainers_next():
    project = _residual()
    trainer, twin = Trainer(project), Trainer(project)
    st = StepThrough(trainer, range(BATCH))
    twin.step()
    st.apply()
    assert trainer.step_count == twin.step_count == 1
    a, b = trainer.network.state_dict(), twin.network.state_dict()
    for name in b:  # weights and the BatchNorm's running statistics
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-15, err_msg=name)
    sa, sb = trainer.optimizer.state_dict()["state"], twin.optimizer.state_dict()["state"]
    for name in sb:
        np.testing.assert_allclose(sa[name]["exp_avg_sq"], sb[name]["exp_avg_sq"], rtol=1e-12)
        assert sa[name]["step"] == sb[name]["step"]
    trainer.step()  # training goes on from the applied step
    assert trainer.optimizer.state_dict()["state"]["out.weight"]["step"] == 2
    with pytest.raises(RuntimeError, match="already applied"):
        st.discard()


def test_discard_leaves_the_trainer_exactly_as_it_was():
    p = new_project()  # float32, shuffled, with dropout: any consumed random draw would show
    p["network"]["nodes"].insert(3, {"id": "drop", "type": "Dropout", "p": 0.3})
    trainer, twin = Trainer(p), Trainer(p)
    trainer.step()
    twin.step()
    st = StepThrough(trainer, [0, 5, 7])
    st.chain_rule("fc1.weight", (2, 1))
    st.discard()
    for _ in range(3):
        trainer.step()
        twin.step()
    a, b = trainer.network.state_dict(), twin.network.state_dict()
    for name in b:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _indices(shape, rng):
    first, last = (0,) * len(shape), tuple(s - 1 for s in shape)
    return {first, last, tuple(int(rng.integers(s)) for s in shape)}


def test_chain_rule_product_equals_the_gradient_to_1e_12(case):
    _, trainer, st = case
    rng = np.random.default_rng(1)
    for name, p in trainer.network.named_parameters():
        for index in _indices(p.shape, rng):
            c = st.chain_rule(name, index)
            assert abs(c.product - c.engine_grad) <= 1e-12 * max(1.0, abs(c.engine_grad)), (
                name, index, c.text)
            assert c.finite_difference == pytest.approx(c.engine_grad, rel=1e-5, abs=1e-8), (
                name, index)
            assert float(np.sum(c.terms)) == pytest.approx(c.product, rel=1e-15, abs=1e-300)


def test_dense_weight_is_upstream_times_activation_derivative_times_input():
    st = StepThrough(Trainer(_mlp()), range(BATCH))
    c = st.chain_rule("fc1.weight", (3, 1))
    (up_name, up), (d_name, d), (x_name, x) = c.factors
    assert "upstream" in up_name and "Tanh" in d_name and x_name == "input x_1"
    z = _stages(st, "forward")["fc1"].output[:, 3]
    np.testing.assert_allclose(d, 1.0 - np.tanh(z) ** 2, rtol=1e-14)  # tanh'(z)
    np.testing.assert_array_equal(x, st.x[:, 1])
    np.testing.assert_array_equal(up, _stages(st, "backward")["act1"].grad_output[:, 3])
    assert c.text.startswith("dL/dW[3,1] = Σ_n dL/da_3 · f'(z_3) · x_1 = ")
    assert c.text.endswith(f"= {c.product:.4g}")
    last = st.chain_rule("out.weight", (1, 2))  # feeds the loss, no activation after it
    assert len(last.factors) == 2 and "no element-wise activation" in last.factors[0][0]


def test_conv_weight_sums_over_positions():
    st = StepThrough(Trainer(_cnn()), range(BATCH))
    c = st.chain_rule("conv2.weight", (3, 1, 2, 0))
    names = [n for n, _ in c.factors]
    assert "Sigmoid" in names[1] and names[2].startswith("input x[n,3,")  # group 2's channel
    assert c.factors[0][1].shape == (BATCH, 3, 3)  # batch x output positions
    assert "... (36 terms)" in c.text


def test_loss_stage_writes_the_formula_with_numbers():
    st = StepThrough(Trainer(_recurrent()), [0, 1])
    (loss,) = [s for s in st.stages if s.kind == "loss"]
    p, t = loss.prediction.ravel(), loss.target.ravel()
    assert loss.formula.startswith("L = mean((p - t)²) = ((")
    assert f"{p[0]:.4g}" in loss.formula and loss.formula.endswith(f") / 2 = {loss.loss:.4g}")
    assert loss.loss == pytest.approx(np.mean((p - t) ** 2), rel=1e-14)
