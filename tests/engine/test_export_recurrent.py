"""Recurrent layers out of bplab: ONNX (onnxruntime, float32), safetensors into plain
nn.RNN/nn.LSTM/nn.GRU, and the generated PyTorch code, each equal to bplab's forward."""

from __future__ import annotations

import numpy as np
import pytest

from bplab.graph import Network
from bplab.io.export import export_weights, load_weights
from bplab.io.torch_code import torch_code

T, F, H = 6, 3, 5


def seq_net(kind: str, *, return_sequences=False, bias=True, **options) -> dict:
    """Input (T, F) -> recurrent layer -> Dense on its output (a sequence or the last step)."""
    return {"nodes": [
        {"id": "in", "type": "Input", "shape": [T, F]},
        {"id": "rec", "type": kind, "hidden_size": H, "bias": bias,
         "return_sequences": return_sequences, **options},
        {"id": "out", "type": "Dense", "units": 2},
    ]}


CASES = {
    "rnn_tanh_last": seq_net("RNN"),
    "rnn_relu_seq": seq_net("RNN", nonlinearity="relu", return_sequences=True),
    "rnn_nobias_last": seq_net("RNN", bias=False),
    "lstm_last": seq_net("LSTM"),
    "lstm_seq": seq_net("LSTM", return_sequences=True),
    "lstm_nobias_seq": seq_net("LSTM", bias=False, return_sequences=True),
    "gru_last": seq_net("GRU"),
    "gru_seq": seq_net("GRU", return_sequences=True),
    # two stacked layers: the first hands the second its whole sequence
    "stacked": {"nodes": [
        {"id": "in", "type": "Input", "shape": [T, F]},
        {"id": "gru", "type": "GRU", "hidden_size": 4, "return_sequences": True},
        {"id": "lstm", "type": "LSTM", "hidden_size": H},
        {"id": "out", "type": "Dense", "units": 1},
    ]},
}


def trained(spec, dtype="float32", seed=0) -> Network:
    """A network whose weights are not their initial values (gates differ clearly)."""
    net = Network(spec, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for _, p in net.named_parameters():
        p.data[...] = rng.normal(0.0, 0.5, p.shape).astype(p.data.dtype)
    net.eval()
    return net


def sequences(n=7, seed=3, dtype="float32") -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, T, F)).astype(dtype)


def forward(net: Network, x: np.ndarray) -> np.ndarray:
    return np.asarray(net.forward(x, training=False))


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_runs_in_onnxruntime_with_equal_outputs(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = trained(CASES[name])
    path = export_weights(net, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = sequences()
    (got,) = session.run(None, {"input": x})
    want = forward(net, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_onnx_uses_the_recurrent_operators(tmp_path):
    onnx = pytest.importorskip("onnx")
    for kind in ("RNN", "LSTM", "GRU"):
        path = export_weights(trained(seq_net(kind)), tmp_path / f"{kind}.onnx")
        ops = {node.op_type: node for node in onnx.load(str(path)).graph.node}
        assert kind in ops, f"{kind} exported without the ONNX {kind} operator"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in ops[kind].attribute}
        assert attrs["hidden_size"] == H
        if kind == "GRU":  # torch's GRU applies the reset gate after the recurrent product
            assert attrs["linear_before_reset"] == 1


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_safetensors_load_into_plain_torch_modules_strictly(kind, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    net = trained(seq_net(kind, return_sequences=True), dtype="float64")
    path = export_weights(net, tmp_path / "w.safetensors")
    state = {k: torch.from_numpy(v) for k, v in load_weights(path).items()}
    module = getattr(torch.nn, kind)(F, H, batch_first=True, dtype=torch.float64)
    module.load_state_dict({k.removeprefix("rec."): v for k, v in state.items()
                            if k.startswith("rec.")}, strict=True)
    dense = torch.nn.Linear(H, 2, dtype=torch.float64)
    dense.load_state_dict({k.removeprefix("out."): v for k, v in state.items()
                           if k.startswith("out.")}, strict=True)
    x = sequences(dtype="float64")
    with torch.no_grad():
        seq, _ = module(torch.from_numpy(x))
        got = dense(seq).numpy()
    np.testing.assert_allclose(got, forward(net, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["rnn_relu_seq", "lstm_last", "gru_seq", "stacked"])
def test_generated_torch_code_loads_strictly_and_agrees(name, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    net = trained(CASES[name], dtype="float64")
    weights = export_weights(net, tmp_path / "w.safetensors")
    namespace: dict = {"__name__": "bplab_generated"}
    exec(compile(torch_code(net), "<generated>", "exec"), namespace)  # noqa: S102
    model = namespace["BplabNet"]()
    namespace["load_weights"](model, weights)  # strict=True inside
    recurrent = [m for m in model.modules()
                 if isinstance(m, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU))]
    assert recurrent and all(m.batch_first for m in recurrent)
    model.eval()
    x = sequences(dtype="float64")
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, forward(net, x), rtol=1e-10, atol=1e-10)


def test_generated_code_trains_a_recurrent_network(tmp_path):
    """The script's own training loop runs on sequences and lowers the loss."""
    torch = pytest.importorskip("torch")
    net = trained(seq_net("LSTM"), dtype="float64")
    namespace: dict = {"__name__": "bplab_generated"}
    project = {"loss": "mse", "optimizer": {"type": "adam", "lr": 0.01},
               "training": {"epochs": 1, "batch_size": 8}}
    exec(compile(torch_code(net, project), "<generated>", "exec"), namespace)  # noqa: S102
    torch.manual_seed(0)  # before the model: torch draws its initial weights
    model = namespace["BplabNet"]()
    x = sequences(n=32, dtype="float64")
    y = np.stack([x[:, :, 0].sum(1), x[:, -1, 1]], axis=1)
    # 20 epochs left the loss at 0.38x to 0.51x of its start, depending on the draw
    losses = namespace["train"](model, x, y, epochs=40, batch_size=8)
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
