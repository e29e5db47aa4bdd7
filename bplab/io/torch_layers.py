"""bplab layers as PyTorch modules: one table, read both as code and as live modules.

Each layer type maps to a function ``(config, input shapes, output shape) -> TorchCall``:
the torch constructor and its arguments, as plain data. The code exporter
(:mod:`bplab.io.torch_code`) writes a call as a line of source (:meth:`TorchCall.code`);
the benchmark's PyTorch contender (:mod:`bplab.bench.contenders.torch_ref`) builds the
module itself (:meth:`TorchCall.build`). Both therefore run the same translation, so a
layer option the exporter learns the benchmark learns too.

Layers torch has no module for (global average pooling, reshape, add, concat) are small
helper classes whose source lives in :data:`LAYER_HELPERS`; the exporter pastes it into
the generated file, :meth:`TorchCall.build` executes it once per torch module. The
recurrent layers are such helpers too: subclasses of ``nn.RNN``/``nn.LSTM``/``nn.GRU``
(batch first, one layer, one direction) whose ``forward`` returns the output sequence or
only its last step, as bplab's ``return_sequences`` says. Being subclasses, they keep
torch's parameter names (``weight_ih_l0``, ...), so their state dicts load into plain
``nn.RNN``/``nn.LSTM``/``nn.GRU`` modules with ``strict=True``.

>>> call = torch_call("Dense", {"units": 3, "bias": True}, [(4,)], (3,))
>>> call.code()
'nn.Linear(4, 3, bias=True, dtype=dtype)'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from bplab.errors import ConfigError

__all__ = ["LAYER_HELPERS", "TORCH_LAYERS", "TorchCall", "py_literal", "torch_call"]


def py_literal(value: Any) -> str:
    """Python source for plain data (None, bool, int, float, str, list, tuple, dict).

    Strings go through ``repr`` (quotes, newlines and the like escaped); non-finite floats
    become ``float('inf')``/``float('nan')``; anything else is refused.
    """
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(float(value))
        return f"float({str(value)!r})"
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy scalar
        return py_literal(value.item())
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"cannot write a non-string key {k!r} into generated code")
            items.append(f"{py_literal(k)}: {py_literal(v)}")
        return "{" + ", ".join(items) + "}"
    raise ConfigError(f"cannot write a {type(value).__name__} value into generated code")


@dataclass(frozen=True)
class TorchCall:
    """One module constructor call: ``cls(*args, **kwargs)``, plus ``dtype=`` when
    ``dtype`` is set (modules with parameters or buffers).

    ``cls`` is ``"nn.<Name>"`` for a torch module or the name of a helper class in
    :data:`LAYER_HELPERS`.
    """

    cls: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    dtype: bool = False

    @property
    def helper(self) -> str | None:
        """The helper class the call needs, if any."""
        return self.cls if self.cls in LAYER_HELPERS else None

    def code(self) -> str:
        """The call as source; the generated file has ``nn`` and a ``dtype`` variable."""
        parts = [py_literal(a) for a in self.args]
        parts += [f"{k}={py_literal(v)}" for k, v in self.kwargs.items()]
        if self.dtype:
            parts.append("dtype=dtype")
        return f"{self.cls}({', '.join(parts)})"

    def build(self, torch, dtype=None):
        """The module itself (``torch`` is the imported torch package)."""
        namespace = _namespace(torch)
        owner, _, name = self.cls.rpartition(".")
        cls = getattr(namespace[owner], name) if owner else namespace[name]
        kwargs = dict(self.kwargs)
        if self.dtype:
            kwargs["dtype"] = dtype
        return cls(*self.args, **kwargs)


# -- the table: (config, input shapes, output shape) -> TorchCall -------------------------------

def _linear(cfg, shapes, out):
    # on a sequence (T, F) nn.Linear acts on the last axis, as bplab's Dense does
    return TorchCall("nn.Linear", (shapes[0][-1], cfg["units"]), {"bias": cfg["bias"]}, True)


def _recurrent(cls: str, *options: str) -> Callable:
    """A recurrent layer on (N, T, F): input size F, the hidden size and ``options``."""
    def make(cfg, shapes, out):
        kw = {"bias": cfg["bias"], **{o: cfg[o] for o in options},
              "return_sequences": cfg["return_sequences"]}
        return TorchCall(cls, (shapes[0][-1], cfg["hidden_size"]), kw, True)
    return make


def _conv2d(cfg, shapes, out):
    kw = {"kernel_size": tuple(cfg["kernel_size"]), "stride": tuple(cfg["stride"]),
          "padding": tuple(cfg["padding"]), "dilation": tuple(cfg["dilation"]),
          "groups": cfg["groups"], "bias": cfg["bias"]}
    return TorchCall("nn.Conv2d", (shapes[0][0], cfg["filters"]), kw, True)


def _pool(torch_name: str, **extra: str) -> Callable:
    def make(cfg, shapes, out):
        stride = cfg.get("stride")
        kw = {"kernel_size": tuple(cfg["kernel_size"]),
              "stride": tuple(stride) if stride is not None else tuple(cfg["kernel_size"]),
              "padding": tuple(cfg["padding"])}
        kw.update({k: cfg.get(option, True) for k, option in extra.items()})
        return TorchCall(f"nn.{torch_name}", (), kw)
    return make


def _batchnorm(cfg, shapes, out):
    kind = "BatchNorm2d" if len(shapes[0]) == 3 else "BatchNorm1d"
    kw = {"eps": cfg["eps"], "momentum": cfg["momentum"], "affine": cfg["affine"]}
    return TorchCall(f"nn.{kind}", (shapes[0][0],), kw, True)


def _layernorm(cfg, shapes, out):
    kw = {"eps": cfg["eps"], "elementwise_affine": cfg["elementwise_affine"]}
    return TorchCall("nn.LayerNorm", (tuple(shapes[0]),), kw, True)


def _reshape(cfg, shapes, out):
    return TorchCall("Reshape", (tuple(out),))


def _plain(cls: str) -> Callable:
    return lambda cfg, shapes, out: TorchCall(cls)


def _with(cls: str, **options: str) -> Callable:
    """Keyword arguments taken from the config: torch name -> bplab option."""
    return lambda cfg, shapes, out: TorchCall(cls, (), {k: cfg[o] for k, o in options.items()})


TORCH_LAYERS: dict[str, Callable[..., TorchCall]] = {
    "Dense": _linear,
    "Conv2D": _conv2d,
    "MaxPool2D": _pool("MaxPool2d"),
    "AvgPool2D": _pool("AvgPool2d", count_include_pad="count_include_pad"),
    "GlobalAvgPool": _plain("GlobalAvgPool"),
    "Flatten": _plain("nn.Flatten"),
    "Reshape": _reshape,
    "ReLU": _plain("nn.ReLU"),
    "LeakyReLU": _with("nn.LeakyReLU", negative_slope="negative_slope"),
    "ELU": _with("nn.ELU", alpha="alpha"),
    "GELU": _with("nn.GELU", approximate="approximate"),
    "SiLU": _plain("nn.SiLU"),
    "Sigmoid": _plain("nn.Sigmoid"),
    "Tanh": _plain("nn.Tanh"),
    "Softplus": _with("nn.Softplus", beta="beta", threshold="threshold"),
    "Softmax": _with("nn.Softmax", dim="dim"),
    "Identity": _plain("nn.Identity"),
    "Dropout": _with("nn.Dropout", p="p"),
    "BatchNorm": _batchnorm,
    "LayerNorm": _layernorm,
    "Add": _plain("Add"),
    "Concat": _with("Concat", dim="dim"),
    "RNN": _recurrent("RNNLayer", "nonlinearity"),
    "LSTM": _recurrent("LSTMLayer"),
    "GRU": _recurrent("GRULayer"),
}


def torch_call(layer_type: str, cfg: dict[str, Any], in_shapes, out_shape) -> TorchCall:
    """The torch module for one node (its validated config and shapes from the plan)."""
    make = TORCH_LAYERS.get(layer_type)
    if make is None:
        raise ConfigError(f"no PyTorch module for the layer type {layer_type!r}")
    return make(cfg, in_shapes, out_shape)


def _recurrent_helper(torch_name: str) -> str:
    """The source of ``<torch_name>Layer``: nn.RNN, nn.LSTM or nn.GRU as a bplab layer."""
    return f'''
class {torch_name}Layer(nn.{torch_name}):
    """nn.{torch_name} on batch-first input (N, T, F): every step's output (N, T, H) when
    ``return_sequences``, else the last step's (N, H). Parameters as nn.{torch_name}'s."""

    def __init__(self, *args, return_sequences=False, **kwargs):
        super().__init__(*args, batch_first=True, **kwargs)
        self.return_sequences = return_sequences

    def forward(self, x):
        out, _ = super().forward(x)
        return out if self.return_sequences else out[:, -1]
'''


# helper modules by class name: source pasted into generated files, executed for build()
LAYER_HELPERS = {
    "GlobalAvgPool": '''
class GlobalAvgPool(nn.Module):
    """Mean over the spatial axes: (N, C, H, W) -> (N, C)."""

    def forward(self, x):
        return x.flatten(2).mean(-1)
''',
    "Reshape": '''
class Reshape(nn.Module):
    """Each sample to ``shape``; the batch axis is kept."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)
''',
    "Add": '''
class Add(nn.Module):
    """Sum of the inputs, left to right."""

    def forward(self, *xs):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total
''',
    "Concat": '''
class Concat(nn.Module):
    """Inputs joined along ``dim`` (counting the batch axis)."""

    def __init__(self, dim=1):
        super().__init__()
        self.dim = dim

    def forward(self, *xs):
        return torch.cat(xs, dim=self.dim)
''',
    "RNNLayer": _recurrent_helper("RNN"),
    "LSTMLayer": _recurrent_helper("LSTM"),
    "GRULayer": _recurrent_helper("GRU"),
}


@cache
def _namespace(torch) -> dict[str, Any]:
    """``torch``, ``nn`` and the helper classes, as the generated file defines them."""
    namespace: dict[str, Any] = {"torch": torch, "nn": torch.nn}
    for source in LAYER_HELPERS.values():
        exec(compile(source, "<bplab torch helpers>", "exec"), namespace)  # noqa: S102
    return namespace
