"""Every layer against PyTorch in float64: forward, input and parameter gradients to 1e-8."""

from __future__ import annotations

import numpy as np
import pytest
from layer_cases import CASES, Case
from test_layers import CASE_IDS, make, run

from bplab.backend import to_host
from bplab.graph import Network

torch = pytest.importorskip("torch")
nn = torch.nn

pytestmark = pytest.mark.torch


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def torch_module(case: Case, xs) -> nn.Module | callable:
    c = case.config
    t = case.type
    shape = xs[0].shape
    simple = {
        "ReLU": lambda: nn.ReLU(),
        "LeakyReLU": lambda: nn.LeakyReLU(c.get("negative_slope", 0.01)),
        "ELU": lambda: nn.ELU(c.get("alpha", 1.0)),
        "GELU": lambda: nn.GELU(approximate=c.get("approximate", "none")),
        "SiLU": lambda: nn.SiLU(),
        "Sigmoid": lambda: nn.Sigmoid(),
        "Tanh": lambda: nn.Tanh(),
        "Softplus": lambda: nn.Softplus(c.get("beta", 1.0), c.get("threshold", 20.0)),
        "Softmax": lambda: nn.Softmax(dim=c.get("dim", -1)),
        "Identity": lambda: nn.Identity(),
        "Conv2D": lambda: nn.Conv2d(shape[1], c["filters"], c.get("kernel_size", 3),
                                    c.get("stride", 1), c.get("padding", 0),
                                    c.get("dilation", 1), c.get("groups", 1),
                                    bias=c.get("bias", True)),
        "MaxPool2D": lambda: nn.MaxPool2d(c.get("kernel_size", 2), c.get("stride"),
                                          c.get("padding", 0)),
        "AvgPool2D": lambda: nn.AvgPool2d(c.get("kernel_size", 2), c.get("stride"),
                                          c.get("padding", 0),
                                          count_include_pad=c.get("count_include_pad", True)),
        "GlobalAvgPool": lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        "BatchNorm": lambda: (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(
            shape[1], eps=c.get("eps", 1e-5), momentum=c.get("momentum", 0.1),
            affine=c.get("affine", True)),
        "LayerNorm": lambda: nn.LayerNorm(shape[1:], eps=c.get("eps", 1e-5),
                                          elementwise_affine=c.get("elementwise_affine", True)),
    }
    if t in simple:
        return simple[t]().double()
    if t in ("RNN", "LSTM", "GRU", "Dense"):
        from test_recurrent_torch import torch_sequence_module

        return torch_sequence_module(t, c, shape)
    if t == "Add":
        return lambda *ts: sum(ts[1:], ts[0])
    if t == "Concat":
        return lambda *ts: torch.cat(ts, dim=c.get("dim", 1))
    raise AssertionError(t)


def assert_close(a, b, what):
    a, b = np.asarray(to_host(a), dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, what
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(b).max()),
                               err_msg=what)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_layer_matches_torch(case, training):
    rng = np.random.default_rng(42)
    xs = case.inputs(rng)
    layer, dev = make(case, xs)
    module = torch_module(case, xs)
    if isinstance(module, nn.Module):
        with torch.no_grad():
            for name, p in module.named_parameters():
                p.copy_(torch.from_numpy(to_host(layer.params[name].data)))
        assert sorted(n for n, _ in module.named_parameters()) == sorted(layer.params)
        module.train(training)
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    y_t = module(*ts)
    y = run(layer, dev, training)
    assert_close(y, y_t.detach().numpy(), "forward")

    g = rng.normal(size=y_t.shape)
    y_t.backward(torch.from_numpy(g))
    gin = layer.backward(g)
    gin = gin if isinstance(gin, list) else [gin]
    for i, (a, t) in enumerate(zip(gin, ts)):
        assert_close(a, t.grad.numpy(), f"input {i} gradient")
    if isinstance(module, nn.Module):
        for name, p in module.named_parameters():
            assert_close(layer.params[name].grad, p.grad.numpy(), f"{name} gradient")
        for name, b in module.named_buffers():
            assert_close(layer.buffers[name], b.numpy(), f"buffer {name}")


@pytest.mark.parametrize("image", [False, True], ids=["1d", "2d"])
def test_batchnorm_running_stats_and_state_dict_like_torch(image):
    rng = np.random.default_rng(0)
    shape = (6, 3, 4, 5) if image else (6, 3)
    spec = {"nodes": [{"id": "in", "type": "Input", "shape": list(shape[1:])},
                      {"id": "bn", "type": "BatchNorm", "momentum": 0.3}]}
    net = Network(spec, dtype="float64")
    bn_t = (nn.BatchNorm2d if image else nn.BatchNorm1d)(3, momentum=0.3).double()
    assert list(net.state_dict()) == [f"bn.{k}" for k in bn_t.state_dict()]
    for _ in range(3):  # several training steps: running stats follow torch's
        x = rng.normal(2.0, 3.0, size=shape)
        y = net.forward(x, training=True)
        y_t = bn_t.train()(torch.from_numpy(x))
        assert_close(y, y_t.detach().numpy(), "train forward")
    state = net.state_dict()
    for name, value in bn_t.state_dict().items():
        assert state[f"bn.{name}"].dtype == value.numpy().dtype
        assert state[f"bn.{name}"].shape == tuple(value.shape)
        assert_close(state[f"bn.{name}"], value.numpy(), name)
    x = rng.normal(size=shape)
    xt = torch.tensor(x, requires_grad=True)
    y_t = bn_t.eval()(xt)
    assert_close(net.forward(x, training=False), y_t.detach().numpy(), "eval forward")
    # torch's state_dict loads into bplab by the same names
    net2 = Network(spec, dtype="float64")
    net2.load_state_dict({f"bn.{k}": v.numpy() for k, v in bn_t.state_dict().items()})
    assert_close(net2.forward(x, training=False), y_t.detach().numpy(), "loaded eval forward")
    assert int(net2.state_dict()["bn.num_batches_tracked"]) == 3


def test_conv_net_matches_torch_end_to_end():
    """The benchmark CNN, bplab vs torch: output and every parameter gradient."""
    spec = {"nodes": [
        {"id": "in", "type": "Input", "shape": [1, 12, 12]},
        {"id": "c1", "type": "Conv2D", "filters": 4, "padding": 1},
        {"id": "r1", "type": "ReLU"},
        {"id": "p1", "type": "MaxPool2D"},
        {"id": "c2", "type": "Conv2D", "filters": 6},
        {"id": "r2", "type": "ReLU"},
        {"id": "p2", "type": "MaxPool2D"},
        {"id": "flat", "type": "Flatten"},
        {"id": "fc", "type": "Dense", "units": 3},
    ]}
    net = Network(spec, dtype="float64", seed=3)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(24, 3),
    ).double()
    names = {"c1": "0", "c2": "3", "fc": "7"}
    model.load_state_dict({f"{names[k.split('.')[0]]}.{k.split('.')[1]}": torch.from_numpy(v)
                           for k, v in net.state_dict().items()})
    x = np.random.default_rng(1).normal(size=(5, 1, 12, 12))
    y = net.forward(x)
    y_t = model(torch.from_numpy(x))
    assert_close(y, y_t.detach().numpy(), "network output")
    g = np.random.default_rng(2).normal(size=y.shape)
    net.zero_grad()
    net.backward(g)
    y_t.backward(torch.from_numpy(g))
    torch_params = dict(model.named_parameters())
    for name, p in net.named_parameters():
        node, pname = name.split(".")
        assert_close(p.grad, torch_params[f"{names[node]}.{pname}"].grad.numpy(), name)


@pytest.mark.parametrize("groups, dilation", [(1, 1), (2, 2), (4, (1, 3))])
def test_conv_weight_shape_and_fans_match_torch(groups, dilation):
    """The initialisers see torch's fans for grouped weights: fan_in = C/G kh kw."""
    from bplab.initializers import fans
    from bplab.layers import LAYERS
    from bplab.layers.base import BuildContext

    conv = LAYERS["Conv2D"]("c", filters=8, kernel_size=(3, 2), groups=groups,
                            dilation=dilation)
    ctx = BuildContext(np, np.float64)
    conv.bind(ctx)
    conv.build([(4, 9, 9)], ctx)
    conv_t = nn.Conv2d(4, 8, (3, 2), groups=groups, dilation=dilation)
    assert conv.params["weight"].shape == tuple(conv_t.weight.shape)
    assert fans(conv.params["weight"].shape) == \
        nn.init._calculate_fan_in_and_fan_out(conv_t.weight)
    assert conv.output_shape([(4, 9, 9)]) == tuple(conv_t(torch.zeros(1, 4, 9, 9)).shape[1:])
