"""Weights out and back in: safetensors, npz, ONNX (onnxruntime) and generated PyTorch code."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest

from bplab.errors import ConfigError
from bplab.graph import Network
from bplab.io.export import (
    META_KEY,
    export_weights,
    import_weights,
    load_weights,
    weights_metadata,
)
from bplab.io.torch_code import py_literal, torch_code

# Every layer type appears in at least one of these networks.
MLP = {"nodes": [
    {"id": "in", "type": "Input", "shape": [6]},
    {"id": "fc1", "type": "Dense", "units": 10},
    {"id": "bn", "type": "BatchNorm"},
    {"id": "act1", "type": "LeakyReLU", "negative_slope": 0.2},
    {"id": "fc2", "type": "Dense", "units": 8, "bias": False},
    {"id": "act2", "type": "ELU", "alpha": 0.7},
    {"id": "act3", "type": "Softplus", "beta": 2.0, "threshold": 1.5},
    {"id": "grid", "type": "Reshape", "shape": [2, -1]},
    {"id": "act4", "type": "SiLU"},
    {"id": "flat", "type": "Flatten"},
    {"id": "act5", "type": "Sigmoid"},
    {"id": "fc3", "type": "Dense", "units": 7},
    {"id": "act6", "type": "Tanh"},
    {"id": "same", "type": "Identity"},
    {"id": "fc4", "type": "Dense", "units": 5},
    {"id": "act7", "type": "ReLU"},
    {"id": "out", "type": "Dense", "units": 3},
    {"id": "probs", "type": "Softmax", "dim": -1},
]}

CNN = {"nodes": [
    {"id": "in", "type": "Input", "shape": [2, 8, 8]},
    {"id": "conv1", "type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": 1},
    {"id": "bn1", "type": "BatchNorm"},
    {"id": "relu1", "type": "ReLU"},
    {"id": "pool1", "type": "MaxPool2D", "kernel_size": 2},
    {"id": "ln", "type": "LayerNorm"},
    {"id": "conv2", "type": "Conv2D", "filters": 5, "kernel_size": [3, 2], "stride": [1, 2],
     "padding": [1, 0], "bias": False},
    {"id": "bn2", "type": "BatchNorm", "affine": False, "momentum": 0.3},
    {"id": "pool2", "type": "AvgPool2D", "kernel_size": 2, "stride": 1, "padding": 1},
    {"id": "pool3", "type": "MaxPool2D", "kernel_size": 3, "stride": 2, "padding": 1},
    {"id": "gap", "type": "GlobalAvgPool"},
    {"id": "flat", "type": "Flatten", "inputs": ["pool3"]},
    {"id": "fc_flat", "type": "Dense", "units": 4},
    {"id": "join", "type": "Concat", "inputs": ["gap", "fc_flat"]},
    {"id": "out", "type": "Dense", "units": 3},
]}

RESIDUAL = {"nodes": [
    {"id": "in", "type": "Input", "shape": [6]},
    {"id": "fc1", "type": "Dense", "units": 8},
    {"id": "gelu", "type": "GELU"},
    {"id": "drop", "type": "Dropout", "p": 0.3},
    {"id": "ln", "type": "LayerNorm", "eps": 1e-3},
    {"id": "fc2", "type": "Dense", "units": 8},
    {"id": "gelu_tanh", "type": "GELU", "approximate": "tanh"},
    {"id": "ln2", "type": "LayerNorm", "elementwise_affine": False},
    {"id": "skip", "type": "Add", "inputs": ["fc1", "ln2"]},
    {"id": "skip3", "type": "Add", "inputs": ["skip", "gelu", "fc1"]},
    {"id": "cat", "type": "Concat", "inputs": ["skip3", "in"], "dim": 1},
    {"id": "out", "type": "Dense", "units": 2},
]}

# dilated, depthwise (groups = channels, with a channel multiplier) and grouped convolutions
GROUPED_CNN = {"nodes": [
    {"id": "in", "type": "Input", "shape": [4, 11, 10]},
    {"id": "dilated", "type": "Conv2D", "filters": 6, "kernel_size": 3, "dilation": 2,
     "padding": 2},
    {"id": "relu", "type": "ReLU"},
    {"id": "depthwise", "type": "Conv2D", "filters": 12, "groups": 6, "stride": 2,
     "padding": 1},
    {"id": "grouped", "type": "Conv2D", "filters": 4, "groups": 2, "kernel_size": [2, 3],
     "dilation": [2, 1], "padding": [1, 0], "bias": False},
    {"id": "flat", "type": "Flatten"},
    {"id": "out", "type": "Dense", "units": 3},
]}

NETWORKS = {"mlp": MLP, "cnn": CNN, "residual": RESIDUAL, "grouped_cnn": GROUPED_CNN}


def trained_network(spec, dtype="float64", backend="numpy", seed=0) -> Network:
    """A network whose parameters and BatchNorm statistics are no longer their initial values."""
    net = Network(spec, dtype=dtype, backend=backend, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for _, p in net.named_parameters():
        host = rng.normal(0.0, 0.5, p.shape)
        p.data[...] = net.xp.asarray(host, dtype=p.data.dtype)
    for _ in range(3):  # training-mode passes move the running statistics
        net.forward(rng.normal(size=(16, *net.input_shape)), training=True)
    net.eval()
    return net


def inputs(net: Network, n: int = 9, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *net.input_shape)).astype(net.dtype)


def load_generated(net: Network, project=None) -> dict:
    """Execute the generated PyTorch code; returns its namespace."""
    namespace: dict = {"__name__": "bplab_generated"}
    exec(compile(torch_code(net, project), "<generated>", "exec"), namespace)  # noqa: S102
    return namespace


# -- safetensors and npz -------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_round_trip_is_bit_identical(tmp_path, backend_name, ext, dtype, name):
    net = trained_network(NETWORKS[name], dtype, backend_name)
    path = export_weights(net, tmp_path / f"w{ext}")
    fresh = Network(NETWORKS[name], dtype=dtype, backend=backend_name, seed=99)
    import_weights(fresh, path)
    before, after = net.state_dict(), fresh.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert after[key].dtype == value.dtype, key
        np.testing.assert_array_equal(after[key], value, err_msg=key)
        assert after[key].tobytes() == value.tobytes(), key
    np.testing.assert_array_equal(fresh.predict(inputs(net)), net.predict(inputs(net)))


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_files_carry_the_network_and_metadata(tmp_path, ext):
    net = trained_network(RESIDUAL)
    project = {"name": "demo", "loss": {"type": "mse"}}
    path = export_weights(net, tmp_path / f"w{ext}", project=project,
                          metadata={"note": "run 3", "epochs": 12})
    meta = weights_metadata(path)
    assert meta["bplab_network"] == RESIDUAL
    assert meta["bplab_project"] == project
    assert meta["format"] == "pt"
    assert meta["note"] == "run 3" and json.loads(meta["epochs"]) == 12
    # the embedded spec alone rebuilds a network that takes the weights
    rebuilt = Network(meta["bplab_network"], dtype="float64")
    import_weights(rebuilt, path)
    np.testing.assert_array_equal(rebuilt.predict(inputs(net)), net.predict(inputs(net)))
    assert META_KEY not in load_weights(path)


def test_npz_holds_no_python_objects(tmp_path):
    net = trained_network(CNN)
    path = export_weights(net, tmp_path / "w.npz")
    with np.load(path, allow_pickle=False) as z:  # raises on any object array
        arrays = {k: z[k] for k in z.files}
    assert arrays[META_KEY].dtype.kind == "U" and arrays[META_KEY].shape == ()
    assert arrays["bn1.num_batches_tracked"].dtype == np.int64
    assert set(arrays) - {META_KEY} == set(net.state_dict())


def test_metadata_cannot_override_bplab_keys(tmp_path):
    net = trained_network(MLP)
    with pytest.raises(ConfigError, match="reserved"):
        export_weights(net, tmp_path / "w.safetensors", metadata={"bplab_network": "{}"})


@pytest.mark.parametrize("filename", ["weights.h5", "weights", "weights.pt"])
def test_unknown_extension_lists_the_supported_ones(tmp_path, filename):
    net = trained_network(MLP)
    with pytest.raises(ConfigError) as info:
        export_weights(net, tmp_path / filename)
    for ext in (".safetensors", ".npz", ".onnx", ".py"):
        assert ext in str(info.value)
    with pytest.raises(ConfigError, match=r"\.safetensors, \.npz"):
        load_weights(tmp_path / filename)


def test_missing_and_corrupt_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such weights file"):
        load_weights(tmp_path / "absent.safetensors")
    for ext in (".safetensors", ".npz"):
        bad = tmp_path / f"bad{ext}"
        bad.write_bytes(b"not a weights file")
        with pytest.raises(ConfigError, match="not a readable"):
            load_weights(bad)


def test_mismatched_weights_name_every_problem_at_once(tmp_path):
    net = trained_network(MLP)
    path = export_weights(net, tmp_path / "w.safetensors")
    other = json.loads(json.dumps(MLP))
    nodes = {n["id"]: n for n in other["nodes"]}
    nodes["fc2"]["units"] = 12           # fc2.weight and fc3.weight (fed by it) mis-shaped
    nodes["fc2"]["bias"] = True          # fc2.bias missing from the file
    nodes["fc4"]["id"] = "fc4_renamed"   # fc4.* unexpected, fc4_renamed.* missing
    nodes["act7"]["inputs"] = ["fc4_renamed"]
    with pytest.raises(ConfigError) as info:
        import_weights(Network(other), path)
    message = str(info.value)
    mis_shaped = message.split("mis-shaped:")[1].split(". ")[0]
    missing = message.split("missing:")[1].split(". ")[0]
    unexpected = message.split("unexpected:")[1]
    assert "fc2.weight: expected (12, 10), received (8, 10)" in mis_shaped
    assert "fc3.weight: expected (7, 12), received (7, 8)" in mis_shaped
    assert missing.strip().split(", ") == ["fc2.bias", "fc4_renamed.weight", "fc4_renamed.bias"]
    assert sorted(unexpected.strip().rstrip(".").split(", ")) == ["fc4.bias", "fc4.weight"]
    assert str(path) in message


def test_safetensors_loads_in_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    net = trained_network(CNN, "float32")
    state = load_file(str(export_weights(net, tmp_path / "w.safetensors")))
    assert state.keys() == net.state_dict().keys()
    assert state["bn1.num_batches_tracked"].dtype == torch.int64
    assert state["conv1.weight"].dtype == torch.float32
    np.testing.assert_array_equal(state["conv2.weight"].numpy(), net.state_dict()["conv2.weight"])


# -- generated PyTorch code ----------------------------------------------------------------

@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-8), ("float32", 1e-5)])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_generated_module_matches_the_engine(tmp_path, ext, dtype, tol, name):
    torch = pytest.importorskip("torch")
    net = trained_network(NETWORKS[name], dtype)
    path = export_weights(net, tmp_path / f"w{ext}")
    gen = load_generated(net)
    model = gen["BplabNet"]()
    gen["load_weights"](model, path)  # strict=True inside
    assert model.state_dict().keys() == net.state_dict().keys()
    model.eval()
    x = inputs(net)
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    assert out.dtype == net.dtype
    np.testing.assert_allclose(out, net.predict(x), rtol=tol, atol=tol)


def test_generated_module_loads_the_state_dict_strictly(tmp_path):
    torch = pytest.importorskip("torch")
    net = trained_network(CNN)
    model = load_generated(net)["BplabNet"]()
    state = {k: torch.from_numpy(v) for k, v in net.state_dict().items()}
    model.load_state_dict(state, strict=True)
    del state["bn1.running_var"]
    with pytest.raises(RuntimeError, match="bn1.running_var"):
        model.load_state_dict(state, strict=True)


HOSTILE_IDS = ["forward", "training", "fc.1", "two words", "naïve", "q'uote\"d\n",
               "x'); import os; os.remove('x') #"]


def test_ids_that_are_not_identifiers_still_work(tmp_path):
    torch = pytest.importorskip("torch")
    nodes = [{"id": "in", "type": "Input", "shape": [3]}]
    for nid in HOSTILE_IDS:
        nodes.append({"id": nid, "type": "Dense", "units": 3})
    nodes.append({"id": "fc", "type": "Dense", "units": 3, "inputs": ["in"]})
    nodes.append({"id": "sum", "type": "Add", "inputs": [HOSTILE_IDS[-1], "fc"]})
    net = trained_network({"nodes": nodes})
    path = export_weights(net, tmp_path / "w.safetensors")
    tree = ast.parse(torch_code(net))
    # the ids stay inside string literals: no code of theirs runs
    assert not any(isinstance(n, ast.Name) and n.id == "os" for n in ast.walk(tree))
    gen = load_generated(net)
    model = gen["BplabNet"]()
    gen["load_weights"](model, path)
    assert set(model.state_dict()) == set(net.state_dict())
    assert isinstance(model.node("forward"), torch.nn.Linear)
    assert model.training is True  # the node 'training' did not replace the flag
    model.eval()
    x = inputs(net)
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), net.predict(x), atol=1e-12)


@pytest.mark.slow  # a fresh interpreter importing torch: seconds
def test_generated_script_runs_from_the_command_line(tmp_path):
    pytest.importorskip("torch")
    import subprocess
    import sys

    net = trained_network(RESIDUAL)
    weights = export_weights(net, tmp_path / "w.npz")
    script = export_weights(net, tmp_path / "model.py")
    done = subprocess.run([sys.executable, str(script), str(weights)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "loaded" in done.stdout and "'fc2'" in done.stdout
    assert f"total parameters: {net.param_count():,}" in done.stdout


def test_generated_file_imports_only_torch_numpy_and_json(tmp_path):
    net = trained_network(CNN)
    tree = ast.parse(torch_code(net, {"optimizer": {"type": "lion"}}))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"json", "sys", "numpy", "torch", "safetensors"}


def test_py_literal_escapes_and_refuses_unknown_objects():
    value = {"a'\n": [1, 2.5, float("inf"), None, True, ("x",)], "b": float("nan")}
    restored = eval(py_literal(value))
    assert restored["a'\n"][:2] == [1, 2.5] and restored["a'\n"][2] == float("inf")
    assert restored["a'\n"][3:] == [None, True, ("x",)] and restored["b"] != restored["b"]
    with pytest.raises(ConfigError):
        py_literal(object())


def _dataset(x, y, task, n_classes):
    from bplab.datasets.base import Dataset

    return Dataset(name="given", title="given", task=task, x_train=x, y_train=y,
                   x_val=x[:4], y_val=y[:4], input_shape=x.shape[1:], n_classes=n_classes,
                   feature_names=[f"x{i}" for i in range(x.shape[1])], class_names=None,
                   description="")


TRAIN_CASES = {
    "sgd_mse": ({"type": "mse"}, {"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True,
                                  "weight_decay": 1e-3},
                {"l2": 1e-3, "l1": 1e-4, "clip_grad_norm": 0.5}, "regression"),
    "sgd_ce": ({"type": "cross_entropy", "label_smoothing": 0.1}, {"type": "sgd", "lr": 0.1},
               {"clip_grad_value": 0.05, "lr_schedule": {"type": "step", "step_size": 2,
                                                         "gamma": 0.5}}, "classification"),
    "adam_bce": ({"type": "binary_cross_entropy"}, {"type": "adam", "lr": 0.01, "amsgrad": True},
                 {}, "binary"),
    "adamw_warmup_cosine": ({"type": "mse"}, {"type": "adamw", "lr": 0.02},
                            {"lr_schedule": {"type": "warmup", "total_iters": 2,
                                             "then": {"type": "cosine"}}}, "regression"),
    "rmsprop_one_cycle": ({"type": "l1"}, {"type": "rmsprop", "lr": 0.01, "centered": True},
                          {"lr_schedule": {"type": "one_cycle", "max_lr": 0.02}}, "regression"),
    "adam_one_cycle_momentum": ({"type": "mse"}, {"type": "adam", "lr": 0.01},
                                {"lr_schedule": {"type": "one_cycle", "max_lr": 0.03,
                                                 "cycle_momentum": True,
                                                 "base_momentum": 0.6}}, "regression"),
    "nadam_exponential": ({"type": "mse"}, {"type": "nadam", "lr": 0.01},
                          {"lr_schedule": {"type": "exponential", "gamma": 0.7}}, "regression"),
    "adagrad_multi_step": ({"type": "mse"}, {"type": "adagrad", "lr": 0.05},
                           {"lr_schedule": {"type": "multi_step", "milestones": [1, 3]}},
                           "regression"),
    "lion_huber": ({"type": "huber", "delta": 0.3}, {"type": "lion", "lr": 0.003,
                                                      "weight_decay": 0.1}, {}, "regression"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_generated_train_continues_as_bplab_trains(tmp_path, case):
    """A few full-batch steps of the generated train() equal bplab's Trainer (float64)."""
    torch = pytest.importorskip("torch")
    from bplab.training import Trainer

    loss, optimizer, training, task = TRAIN_CASES[case]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(24, 6))
    units = {"regression": 2, "classification": 3, "binary": 1}[task]
    if task == "regression":
        y = np.tanh(x[:, :2] + x[:, 2:4])
        dataset = _dataset(x.astype(np.float32), y.astype(np.float32), "regression", None)
    else:
        y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1 if units == 3 else 0)
        dataset = _dataset(x.astype(np.float32), y.astype(np.int64), "classification",
                           max(units, 2))
    spec = json.loads(json.dumps(RESIDUAL))
    spec["nodes"][-1]["units"] = units
    spec["nodes"][3]["p"] = 0.0  # dropout masks come from different generators
    project = {
        "format": "bplab-project", "version": 1, "dataset": {"name": "given"},
        "network": spec, "loss": loss, "optimizer": optimizer,
        "training": {"epochs": 5, "batch_size": "full", "dtype": "float64", "seed": 4,
                     "diagnostics_every": 0, "backend": "numpy", **training},
    }
    trainer = Trainer(project, dataset=dataset)
    net = trainer.network
    path = export_weights(net, tmp_path / "start.safetensors", project=project)
    gen = load_generated(net, project)
    model = gen["BplabNet"]()
    gen["load_weights"](model, path)

    bplab_losses = [r.train_loss for r in trainer.run()]
    y_torch = trainer.targets(dataset.y_train)  # the targets bplab trains on
    torch_losses = gen["train"](model, dataset.x_train, y_torch, 5, "full")

    # torch keeps NAdam's running product of momenta in float32 under a float64 model
    # (its "scalar dtype" follows the default dtype): ~1e-9 relative per step
    rtol = 1e-6 if optimizer["type"] == "nadam" else 1e-9
    np.testing.assert_allclose(torch_losses, bplab_losses, rtol=rtol, atol=1e-12)
    trained = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    for key, value in net.state_dict().items():
        np.testing.assert_allclose(trained[key], value, rtol=rtol * 10, atol=1e-10, err_msg=key)
    assert torch.is_tensor(model.node("fc1").weight)


# -- ONNX ----------------------------------------------------------------------------------

def _onnx_session(path_or_model):
    ort = pytest.importorskip("onnxruntime")
    if isinstance(path_or_model, bytes):
        data = path_or_model
    else:
        with open(path_or_model, "rb") as fh:
            data = fh.read()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", list(NETWORKS))
def test_onnx_matches_the_engine(tmp_path, name):
    onnx = pytest.importorskip("onnx")
    net = trained_network(NETWORKS[name], "float32")
    path = export_weights(net, tmp_path / "model.onnx", metadata={"note": "x"})
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["bplab_network"]) == NETWORKS[name] and props["note"] == "x"
    initializers = {i.name for i in model.graph.initializer}
    assert {n for n, _ in net.named_parameters()} <= initializers
    session = _onnx_session(str(path))
    for n in (1, 9):  # the batch axis is dynamic
        x = inputs(net, n)
        (out,) = session.run(None, {"input": x})
        assert out.dtype == np.float32 and out.shape == (n, *net.output_shape)
        np.testing.assert_allclose(out, net.predict(x), rtol=1e-5, atol=1e-5)


def test_onnx_composed_activations_cover_both_branches():
    """GELU (tanh form) and Softplus's threshold switch, on inputs spanning both regimes."""
    from bplab.io.onnx_export import to_onnx

    spec = {"nodes": [{"id": "in", "type": "Input", "shape": [64]},
                      {"id": "sp", "type": "Softplus", "beta": 0.5, "threshold": 3.0},
                      {"id": "g", "type": "GELU", "approximate": "tanh"},
                      {"id": "sp1", "type": "Softplus"}]}
    net = Network(spec, dtype="float32").eval()
    session = _onnx_session(to_onnx(net).SerializeToString())
    x = np.linspace(-30, 60, 64 * 4, dtype=np.float32).reshape(4, 64)
    np.testing.assert_allclose(session.run(None, {"input": x})[0], net.predict(x),
                               rtol=1e-5, atol=1e-5)


def test_onnx_float64_keeps_double_precision():
    from bplab.io.onnx_export import to_onnx

    spec = {"nodes": [{"id": "in", "type": "Input", "shape": [4]},
                      {"id": "fc", "type": "Dense", "units": 5}, {"id": "t", "type": "Tanh"},
                      {"id": "out", "type": "Dense", "units": 2}]}
    net = trained_network(spec, "float64")
    session = _onnx_session(to_onnx(net, dtype=None).SerializeToString())
    x = inputs(net)
    (out,) = session.run(None, {"input": x})
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, net.predict(x), rtol=1e-12, atol=1e-12)


def test_grouped_dilated_convs_export_their_geometry():
    """ONNX Conv gets dilations/group and the PyTorch code dilation=/groups= (the networks'
    tests above check that both compute what the engine does)."""
    from bplab.io.onnx_export import to_onnx

    net = trained_network(GROUPED_CNN, "float32")  # onnxruntime has no float64 Conv
    model = to_onnx(net)
    attrs = {n.name.split("/")[0]: {a.name: list(a.ints) or a.i for a in n.attribute}
             for n in model.graph.node if n.op_type == "Conv"}
    assert attrs["dilated"]["dilations"] == [2, 2] and attrs["dilated"]["group"] == 1
    assert attrs["depthwise"]["group"] == 6 and attrs["depthwise"]["strides"] == [2, 2]
    assert attrs["grouped"]["dilations"] == [2, 1] and attrs["grouped"]["group"] == 2
    x = inputs(net)
    (out,) = _onnx_session(model.SerializeToString()).run(None, {"input": x})
    np.testing.assert_allclose(out, net.predict(x), rtol=1e-5, atol=1e-5)

    code = torch_code(net)
    assert ("nn.Conv2d(6, 12, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
            "dilation=(1, 1), groups=6, bias=True") in code
    assert "padding=(1, 0), dilation=(2, 1), groups=2, bias=False" in code


@pytest.mark.parametrize("name", list(NETWORKS))
def test_the_bench_builds_its_torch_model_from_the_exporters_table(name):
    # one translation of layers to torch (bplab.io.torch_layers): the bench's PyTorch
    # contender trains the modules an exported .py file would build
    torch = pytest.importorskip("torch")
    from bplab.bench.contenders import torch_model

    net = trained_network(NETWORKS[name])
    exported = load_generated(net)["BplabNet"]()
    model = torch_model(NETWORKS[name]["nodes"], torch, torch.float64)
    assert {nid: repr(m) for nid, m in model.mods.items()} == {
        nid: repr(exported.node(nid)) for nid in model.mods}
    state = {f"mods.{k}": torch.from_numpy(np.asarray(v)) for k, v in net.state_dict().items()}
    model.load_state_dict(state, strict=True)
    x = inputs(net)
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, net.predict(x), atol=1e-10)
