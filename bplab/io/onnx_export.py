"""A bplab network as an ONNX model (opset 17) with its trained weights as initializers.

The graph has one input ``"input"`` of shape ``(batch, *sample shape)`` (the batch axis
is dynamic) and one output ``"output"``; it computes the network in evaluation mode
(Dropout is the identity, BatchNorm uses its running statistics). Built with the onnx
package's helper API and checked with ``onnx.checker``; torch is not needed.

Layers that have no single opset-17 operator are composed from primitives:

* GELU (``Gelu`` is opset 20): ``0.5 x (1 + erf(x / sqrt 2))``, or with ``approximate
  = "tanh"`` ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``;
* SiLU: ``x * sigmoid(x)``;
* Softplus with ``beta``/``threshold``: ``where(beta x > threshold, x, softplus(beta x) / beta)``;
* GlobalAvgPool: ``GlobalAveragePool`` then ``Flatten`` ((N, C, H, W) -> (N, C));
* LayerNorm: ``LayerNormalization`` with ``axis=1``, which normalises over every axis
  from 1 on: all the non-batch axes, as bplab's LayerNorm does;
* Add of three or more inputs: a chain of binary ``Add`` (left to right, as bplab sums);
* Dense on a sequence (N, T, F): ``MatMul`` with the transposed weight, then ``Add``
  (``Gemm`` takes matrices only);
* RNN, LSTM, GRU: the ONNX ``RNN``/``LSTM``/``GRU`` operators, which take time-major input:
  ``Transpose`` (N, T, F) -> (T, N, F) around them, and either the whole output ``Y``
  (T, 1, N, H) squeezed and transposed back to (N, T, H) (``return_sequences``) or the last
  hidden state ``Y_h`` (1, N, H) squeezed to (N, H). The weights keep torch's values in
  ONNX's gate order: torch stacks an LSTM's gates i, f, g, o and ONNX i, o, f, c; a GRU's
  r, z, n and ONNX z, r, h, whose ``linear_before_reset=1`` is torch's GRU
  (``n = tanh(W_n x + b_in + r * (U_n h + b_hn))``). ``B`` is the input and hidden biases
  concatenated.

The weights are written as float32 by default (ONNX Runtime has no float64 kernels for
Conv, pooling, Erf, Softplus or Elu); pass ``dtype="float64"`` to keep a float64
network's precision for runtimes that support it.

>>> model = to_onnx(net)                       # doctest: +SKIP
>>> export_onnx(net, "model.onnx")             # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import bplab
from bplab.errors import ConfigError
from bplab.io.metadata import export_metadata
from bplab.io.project import atomic_write_bytes

__all__ = ["ONNX_LAYERS", "OPSET", "export_onnx", "to_onnx"]

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17: readable by older runtimes too
INPUT_NAME = "input"
OUTPUT_NAME = "output"


class _GraphBuilder:
    """Collects nodes and initializers; hands out unique value names."""

    def __init__(self, onnx, dtype: np.dtype):
        self.onnx = onnx
        self.dtype = dtype
        self.nodes: list = []
        self.initializers: list = []
        self.names: set[str] = {INPUT_NAME, OUTPUT_NAME}

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def initializer(self, name: str, value: np.ndarray, dtype: Any = None) -> str:
        name = self.fresh(name)
        array = np.require(value, dtype=dtype or self.dtype, requirements="C")  # keeps 0-d
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def const(self, base: str, value: float) -> str:
        """A scalar constant in the graph's float type (broadcasts against any input)."""
        return self.initializer(base, np.array(value, dtype=self.dtype))

    def op(self, op_type: str, inputs: list[str], out_base: str, **attrs) -> str:
        out = self.fresh(out_base)
        self.nodes.append(self.onnx.helper.make_node(
            op_type, inputs, [out], name=self.fresh(f"{out_base}/{op_type}"), **attrs))
        return out


# -- one emitter per layer type: (builder, node id, config, input value names, input
#    shapes, output shape, state dict) -> output value name ------------------------------

def _dense(b, nid, cfg, xs, shapes, out_shape, state):
    if len(shapes[0]) > 1:  # a sequence: the same Dense at every step (the last axis)
        weight_t = b.initializer(f"{nid}.weight_t", state[f"{nid}.weight"].T)
        if f"{nid}.bias" not in state:
            return b.op("MatMul", [xs[0], weight_t], nid)
        product = b.op("MatMul", [xs[0], weight_t], f"{nid}/matmul")
        return b.op("Add", [product, b.initializer(f"{nid}.bias", state[f"{nid}.bias"])], nid)
    inputs = [xs[0], b.initializer(f"{nid}.weight", state[f"{nid}.weight"])]
    if f"{nid}.bias" in state:
        inputs.append(b.initializer(f"{nid}.bias", state[f"{nid}.bias"]))
    return b.op("Gemm", inputs, nid, transB=1)


def _pads(cfg) -> list[int]:
    ph, pw = _pair(cfg.get("padding", 0))
    return [ph, pw, ph, pw]  # ONNX: all begins, then all ends


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _conv2d(b, nid, cfg, xs, shapes, out_shape, state):
    inputs = [xs[0], b.initializer(f"{nid}.weight", state[f"{nid}.weight"])]
    if f"{nid}.bias" in state:
        inputs.append(b.initializer(f"{nid}.bias", state[f"{nid}.bias"]))
    attrs = {"kernel_shape": list(_pair(cfg["kernel_size"])),
             "strides": list(_pair(cfg.get("stride", 1))), "pads": _pads(cfg),
             "dilations": list(_pair(cfg.get("dilation", 1))),
             "group": int(cfg.get("groups", 1))}
    return b.op("Conv", inputs, nid, **attrs)


def _pool_attrs(cfg) -> dict[str, Any]:
    kernel = _pair(cfg["kernel_size"])
    stride = cfg.get("stride")
    attrs = {"kernel_shape": list(kernel),
             "strides": list(_pair(stride) if stride is not None else kernel),
             "pads": _pads(cfg)}
    if cfg.get("ceil_mode"):
        attrs["ceil_mode"] = 1
    return attrs


def _maxpool2d(b, nid, cfg, xs, shapes, out_shape, state):
    attrs = _pool_attrs(cfg)
    if "dilation" in cfg:
        attrs["dilations"] = list(_pair(cfg["dilation"]))
    return b.op("MaxPool", xs, nid, **attrs)


def _avgpool2d(b, nid, cfg, xs, shapes, out_shape, state):
    include = int(bool(cfg.get("count_include_pad", True)))
    return b.op("AveragePool", xs, nid, count_include_pad=include, **_pool_attrs(cfg))


def _global_avg_pool(b, nid, cfg, xs, shapes, out_shape, state):
    pooled = b.op("GlobalAveragePool", xs, f"{nid}/pooled")  # (N, C, 1, 1)
    return b.op("Flatten", [pooled], nid, axis=1)


def _flatten(b, nid, cfg, xs, shapes, out_shape, state):
    return b.op("Flatten", xs, nid, axis=1)


def _reshape(b, nid, cfg, xs, shapes, out_shape, state):
    # 0 copies the batch dimension from the input; the rest is the inferred sample shape
    target = b.initializer(f"{nid}/shape", np.array([0, *out_shape], dtype=np.int64), np.int64)
    return b.op("Reshape", [xs[0], target], nid)


def _gelu(b, nid, cfg, xs, shapes, out_shape, state):
    x = xs[0]
    if cfg.get("approximate", "none") == "tanh":
        x3 = b.op("Mul", [b.op("Mul", [x, x], f"{nid}/x2"), x], f"{nid}/x3")
        inner = b.op("Add", [x, b.op("Mul", [x3, b.const(f"{nid}/c", 0.044715)], f"{nid}/cx3")],
                     f"{nid}/inner")
        scaled = b.op("Mul", [inner, b.const(f"{nid}/k", math.sqrt(2.0 / math.pi))], f"{nid}/u")
        core = b.op("Tanh", [scaled], f"{nid}/tanh")
    else:
        scaled = b.op("Mul", [x, b.const(f"{nid}/rsqrt2", 1.0 / math.sqrt(2.0))], f"{nid}/u")
        core = b.op("Erf", [scaled], f"{nid}/erf")
    one_plus = b.op("Add", [core, b.const(f"{nid}/one", 1.0)], f"{nid}/1p")
    half_x = b.op("Mul", [x, b.const(f"{nid}/half", 0.5)], f"{nid}/halfx")
    return b.op("Mul", [half_x, one_plus], nid)


def _silu(b, nid, cfg, xs, shapes, out_shape, state):
    return b.op("Mul", [xs[0], b.op("Sigmoid", xs, f"{nid}/sigmoid")], nid)


def _softplus(b, nid, cfg, xs, shapes, out_shape, state):
    x = xs[0]
    beta, threshold = float(cfg.get("beta", 1.0)), float(cfg.get("threshold", 20.0))
    bx = x if beta == 1.0 else b.op("Mul", [x, b.const(f"{nid}/beta", beta)], f"{nid}/bx")
    soft = b.op("Softplus", [bx], f"{nid}/softplus")
    if beta != 1.0:
        soft = b.op("Div", [soft, b.const(f"{nid}/beta", beta)], f"{nid}/scaled")
    # torch reverts to the identity where beta * x > threshold (numerical stability)
    linear = b.op("Greater", [bx, b.const(f"{nid}/threshold", threshold)], f"{nid}/linear")
    return b.op("Where", [linear, x, soft], nid)


def _batchnorm(b, nid, cfg, xs, shapes, out_shape, state):
    channels = shapes[0][0]
    if f"{nid}.weight" in state:
        scale = b.initializer(f"{nid}.weight", state[f"{nid}.weight"])
        shift = b.initializer(f"{nid}.bias", state[f"{nid}.bias"])
    else:  # affine=False: the identity affine map
        scale = b.initializer(f"{nid}/ones", np.ones(channels))
        shift = b.initializer(f"{nid}/zeros", np.zeros(channels))
    mean = b.initializer(f"{nid}.running_mean", state[f"{nid}.running_mean"])
    var = b.initializer(f"{nid}.running_var", state[f"{nid}.running_var"])
    return b.op("BatchNormalization", [xs[0], scale, shift, mean, var], nid,
                epsilon=float(cfg.get("eps", 1e-5)))


def _layernorm(b, nid, cfg, xs, shapes, out_shape, state):
    if f"{nid}.weight" in state:
        inputs = [xs[0], b.initializer(f"{nid}.weight", state[f"{nid}.weight"])]
        if f"{nid}.bias" in state:
            inputs.append(b.initializer(f"{nid}.bias", state[f"{nid}.bias"]))
    else:
        inputs = [xs[0], b.initializer(f"{nid}/ones", np.ones(shapes[0]))]
    # axis=1: normalise over axes 1..rank-1, i.e. every non-batch axis
    return b.op("LayerNormalization", inputs, nid, axis=1, epsilon=float(cfg.get("eps", 1e-5)))


def _add(b, nid, cfg, xs, shapes, out_shape, state):
    total = xs[0]
    for i, x in enumerate(xs[1:], start=1):
        total = b.op("Add", [total, x], nid if i == len(xs) - 1 else f"{nid}/sum{i}")
    return total


# torch's gate blocks in the order ONNX stacks them (block k of a (gates*H, ...) matrix)
_GATE_ORDER = {"RNN": (0,), "LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2)}


def _onnx_gates(kind: str, value: np.ndarray) -> np.ndarray:
    """A torch (gates*H, ...) weight or (gates*H,) bias with its gate blocks in ONNX order."""
    blocks = np.split(np.asarray(value), len(_GATE_ORDER[kind]), axis=0)
    return np.concatenate([blocks[k] for k in _GATE_ORDER[kind]], axis=0)


def _recurrent(kind: str) -> Callable:
    def emit(b, nid, cfg, xs, shapes, out_shape, state):
        hidden = int(cfg["hidden_size"])
        # ONNX's W, R and B carry a leading axis for the direction (one here)
        inputs = [b.op("Transpose", xs, f"{nid}/time_major", perm=[1, 0, 2])]
        for onnx_name, torch_name in (("W", "weight_ih_l0"), ("R", "weight_hh_l0")):
            value = _onnx_gates(kind, state[f"{nid}.{torch_name}"])[None]
            inputs.append(b.initializer(f"{nid}.{onnx_name}", value))
        if f"{nid}.bias_ih_l0" in state:
            bias = np.concatenate([_onnx_gates(kind, state[f"{nid}.bias_ih_l0"]),
                                   _onnx_gates(kind, state[f"{nid}.bias_hh_l0"])])
            inputs.append(b.initializer(f"{nid}.B", bias[None]))
        attrs: dict[str, Any] = {"hidden_size": hidden}
        if kind == "RNN":
            attrs["activations"] = [cfg.get("nonlinearity", "tanh").capitalize()]
        elif kind == "GRU":
            attrs["linear_before_reset"] = 1
        y, y_h = b.fresh(f"{nid}/Y"), b.fresh(f"{nid}/Y_h")
        b.nodes.append(b.onnx.helper.make_node(kind, inputs, [y, y_h],
                                               name=b.fresh(f"{nid}/{kind}"), **attrs))
        if cfg.get("return_sequences"):
            # Y: (T, directions, N, H) -> (T, N, H) -> (N, T, H)
            steps = b.op("Squeeze", [y, b.initializer(f"{nid}/axis1", np.array([1]), np.int64)],
                         f"{nid}/steps")
            return b.op("Transpose", [steps], nid, perm=[1, 0, 2])
        # Y_h: (directions, N, H), the last step's hidden state -> (N, H)
        return b.op("Squeeze", [y_h, b.initializer(f"{nid}/axis0", np.array([0]), np.int64)],
                    nid)
    return emit


def _simple(op_type: str, **fixed) -> Callable:
    def emit(b, nid, cfg, xs, shapes, out_shape, state):
        return b.op(op_type, xs, nid, **fixed)
    return emit


def _with_attr(op_type: str, attr: str, option: str, default, cast=float) -> Callable:
    def emit(b, nid, cfg, xs, shapes, out_shape, state):
        return b.op(op_type, xs, nid, **{attr: cast(cfg.get(option, default))})
    return emit


ONNX_LAYERS: dict[str, Callable] = {
    "Dense": _dense,
    "Conv2D": _conv2d,
    "MaxPool2D": _maxpool2d,
    "AvgPool2D": _avgpool2d,
    "GlobalAvgPool": _global_avg_pool,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "ReLU": _simple("Relu"),
    "LeakyReLU": _with_attr("LeakyRelu", "alpha", "negative_slope", 0.01),
    "ELU": _with_attr("Elu", "alpha", "alpha", 1.0),
    "GELU": _gelu,
    "SiLU": _silu,
    "Sigmoid": _simple("Sigmoid"),
    "Tanh": _simple("Tanh"),
    "Softplus": _softplus,
    "Softmax": _with_attr("Softmax", "axis", "dim", -1, int),
    "Identity": _simple("Identity"),
    "Dropout": _simple("Identity"),  # evaluation mode
    "BatchNorm": _batchnorm,
    "LayerNorm": _layernorm,
    "Add": _add,
    "Concat": _with_attr("Concat", "axis", "dim", 1, int),
    "RNN": _recurrent("RNN"),
    "LSTM": _recurrent("LSTM"),
    "GRU": _recurrent("GRU"),
}


def to_onnx(net, *, dtype: Any = "float32", project: dict | None = None,
            metadata: dict[str, Any] | None = None):
    """The network as an ``onnx.ModelProto`` (opset 17), checked with ``onnx.checker``.

    ``dtype`` is the float type of the graph: ``"float32"`` (default), ``"float64"``, or
    None for the network's own dtype.
    """
    try:
        import onnx
        import onnx.numpy_helper
    except ImportError as exc:
        raise ConfigError(f"exporting ONNX needs the onnx package: {exc}") from None
    np_dtype = np.dtype(net.dtype if dtype is None else dtype)
    if np_dtype.name not in ("float32", "float64"):
        raise ConfigError(f"ONNX export dtype must be float32 or float64, received {dtype!r}")
    elem = onnx.TensorProto.FLOAT if np_dtype == np.float32 else onnx.TensorProto.DOUBLE
    plan = net.plan
    unsupported = sorted({
        plan.nodes[n].type for n in net.order
        if plan.nodes[n].type not in ONNX_LAYERS and plan.nodes[n].type != "Input"
    })
    if unsupported:
        raise ConfigError(f"no ONNX export for layer type(s) {', '.join(unsupported)}; "
                          f"supported: {', '.join(ONNX_LAYERS)}")

    state = net.state_dict()
    b = _GraphBuilder(onnx, np_dtype)
    values: dict[str, str] = {}
    for nid in net.order:
        node = plan.nodes[nid]
        if node.type == "Input":
            values[nid] = INPUT_NAME
            continue
        xs = [values[s] for s in node.inputs]
        shapes = [plan.shapes[s] for s in node.inputs]
        cfg = plan.configs[nid]
        values[nid] = ONNX_LAYERS[node.type](b, nid, cfg, xs, shapes, plan.shapes[nid], state)
    b.nodes.append(onnx.helper.make_node("Identity", [values[net.output_id]], [OUTPUT_NAME],
                                         name="output/Identity"))

    graph = onnx.helper.make_graph(
        b.nodes, "bplab",
        [onnx.helper.make_tensor_value_info(INPUT_NAME, elem, ["batch", *net.input_shape])],
        [onnx.helper.make_tensor_value_info(OUTPUT_NAME, elem, ["batch", *net.output_shape])],
        b.initializers,
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="bplab", producer_version=bplab.__version__)
    model.ir_version = IR_VERSION
    meta = export_metadata(net, project, metadata)
    meta.pop("format")  # "pt" describes safetensors files, not this one
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(net, path: str | os.PathLike, *, dtype: Any = "float32",
                project: dict | None = None, metadata: dict[str, Any] | None = None) -> Path:
    """Write :func:`to_onnx`'s model to ``path`` (atomically). Returns the path."""
    path = Path(path)
    model = to_onnx(net, dtype=dtype, project=project, metadata=metadata)
    atomic_write_bytes(path, model.SerializeToString())
    return path
