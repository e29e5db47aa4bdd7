"""RNN, LSTM and GRU against torch.nn in float64: equations, truncated BPTT, training, loading.

(Forward and gradients of each layer case are compared in test_layers_torch.py, which builds
its torch modules for the recurrent cases with :func:`torch_sequence_module`.)
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

pytestmark = pytest.mark.torch

_TORCH = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def _batch_first(base):
    class Seq(base):
        """nn.RNN/LSTM/GRU returning bplab's output: the last step, or every step."""

        def __init__(self, *args, return_sequences=False, **kwargs):
            super().__init__(*args, batch_first=True, **kwargs)
            self.return_sequences = return_sequences

        def forward(self, x, bptt_steps=None):
            if not bptt_steps:
                out = super().forward(x)[0]
            else:  # truncated BPTT: detach the state every bptt_steps, counted from the end
                t_len = x.shape[1]
                starts = [0, *range(t_len % bptt_steps or bptt_steps, t_len, bptt_steps)]
                outs, state = [], None
                for a, b in zip(starts, [*starts[1:], t_len]):
                    if state is not None:
                        state = tuple(v.detach() for v in state) if isinstance(state, tuple) \
                            else state.detach()
                    o, state = super().forward(x[:, a:b], state)
                    outs.append(o)
                out = torch.cat(outs, dim=1)
            return out if self.return_sequences else out[:, -1]

    return Seq


SEQ = {name: _batch_first(cls) for name, cls in _TORCH.items()}


def torch_sequence_module(type_name: str, cfg: dict, in_shape) -> nn.Module:
    """The torch module of a bplab sequence layer (RNN, LSTM, GRU, or Dense on a sequence)."""
    if type_name == "Dense":
        return nn.Linear(in_shape[-1], cfg["units"], bias=cfg.get("bias", True)).double()
    extra = {"nonlinearity": cfg.get("nonlinearity", "tanh")} if type_name == "RNN" else {}
    return SEQ[type_name](in_shape[-1], cfg["hidden_size"], bias=cfg.get("bias", True),
                          return_sequences=cfg.get("return_sequences", False),
                          **extra).double()


def _copy_into_torch(layer, module):
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(np.asarray(layer.params[name].data)))


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("bptt", [1, 4])
@pytest.mark.parametrize(("type_name", "cfg"), [("RNN", {}), ("RNN", {"nonlinearity": "relu"}),
                                                ("LSTM", {}), ("GRU", {})],
                         ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_truncated_bptt_equals_torch_detaching_the_state(type_name, cfg, bptt,
                                                         return_sequences):
    from bplab.gradcheck import gradcheck_layer
    from bplab.layers import LAYERS

    rng = np.random.default_rng(bptt)
    cfg = {**cfg, "hidden_size": 4, "return_sequences": return_sequences}
    x = rng.normal(size=(3, 10, 2))
    layer = LAYERS[type_name]("r", **cfg)
    gradcheck_layer(layer, x)  # builds it in float64
    module = torch_sequence_module(type_name, cfg, x.shape[1:])
    _copy_into_torch(layer, module)
    layer.bptt_steps = bptt
    for p in layer.params.values():
        p.zero_grad()
    y = layer.forward(x)
    xt = torch.tensor(x, requires_grad=True)
    yt = module(xt, bptt_steps=bptt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-8, atol=1e-12)
    g = rng.normal(size=y.shape)
    gx = layer.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-8, atol=1e-12)
    for name, p in module.named_parameters():
        np.testing.assert_allclose(layer.params[name].grad, p.grad.numpy(), rtol=1e-8,
                                   atol=1e-12, err_msg=name)


SPEC = [{"id": "in", "type": "Input", "shape": [12, 3]},
        {"id": "rnn1", "type": "RNN", "hidden_size": 6, "return_sequences": True},
        {"id": "gru1", "type": "GRU", "hidden_size": 5, "return_sequences": True},
        {"id": "lstm1", "type": "LSTM", "hidden_size": 4},
        {"id": "fc", "type": "Dense", "units": 2}]


class Stacked(nn.Module):
    """SPEC in torch, attributes named like the nodes so state dict names match."""

    def __init__(self):
        super().__init__()
        self.rnn1 = SEQ["RNN"](3, 6, return_sequences=True)
        self.gru1 = SEQ["GRU"](6, 5, return_sequences=True)
        self.lstm1 = SEQ["LSTM"](5, 4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x, bptt_steps=None):
        for m in (self.rnn1, self.gru1, self.lstm1):
            x = m(x, bptt_steps=bptt_steps)
        return self.fc(x)


@pytest.mark.slow  # ~5 s: torch's per-call cost over 30 steps of 12 time steps
@pytest.mark.parametrize("bptt", [None, 5], ids=["full", "bptt5"])
def test_thirty_training_steps_of_a_stack_equal_torch(bptt):
    """RNN -> GRU -> LSTM -> Dense under Adam and MSE, 30 steps on fresh batches: every
    weight equals torch's to 1e-8 relative in float64."""
    from bplab.graph import Network
    from bplab.losses import make_loss
    from bplab.optimizers import make_optimizer

    net = Network(SPEC, dtype="float64", seed=3)
    for layer in net.layers.values():
        layer.bptt_steps = bptt
    model = Stacked().double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()},
                          strict=True)
    opt = make_optimizer({"type": "adam", "lr": 0.01}, net.named_parameters())
    opt_t = torch.optim.Adam(model.parameters(), lr=0.01)
    loss = make_loss("mse")
    rng = np.random.default_rng(0)
    for _ in range(30):
        x, y = rng.normal(size=(8, 12, 3)), rng.normal(size=(8, 2))
        net.zero_grad()
        loss.forward(net.forward(x), y)
        net.backward(loss.backward())
        opt.step()
        opt_t.zero_grad()
        nn.functional.mse_loss(model(torch.from_numpy(x), bptt_steps=bptt),
                               torch.from_numpy(y)).backward()
        opt_t.step()
    torch_state = model.state_dict()
    for name, value in net.state_dict().items():
        np.testing.assert_allclose(value, torch_state[name].numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)


def test_exported_safetensors_load_into_torch_with_strict_true(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.torch import load_file

    from bplab.graph import Network
    from bplab.io.export import export_weights

    net = Network(SPEC, dtype="float32", seed=5)
    path = export_weights(net, tmp_path / "stack.safetensors")
    model = Stacked()
    model.load_state_dict(load_file(str(path)), strict=True)
    x = np.random.default_rng(1).normal(size=(4, 12, 3)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x, training=False),
                               model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
