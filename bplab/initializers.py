"""Weight initializers, seeded and reproducible, with torch.nn.init's formulas.

An initializer is named in a project as a string (``"he_normal"``) or an object with
its parameters (``{"type": "normal", "std": 1.0}``). Values are drawn on the host in
float64 from a ``numpy.random.Generator`` and cast afterwards, so the same seed gives
the same network on numpy and CuPy, in float32 and float64.

>>> w = initialize("xavier_uniform", (8, 2), np.random.default_rng(0))
>>> w.shape
(8, 2)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bplab.errors import ConfigError

__all__ = [
    "INITIALIZERS",
    "calculate_gain",
    "check_initializer",
    "fans",
    "initialize",
    "initializer_names",
]

_NONLINEARITIES = ("linear", "conv", "sigmoid", "tanh", "relu", "leaky_relu", "selu")

# name -> {parameter: default}; aliases map onto the same formula below.
INITIALIZERS: dict[str, dict[str, Any]] = {
    # torch's own default for the layer (kaiming_uniform a=sqrt(5); bias U(+-1/sqrt(fan_in)))
    "default": {},
    "zeros": {},
    "ones": {},
    "constant": {"value": 0.0},
    "normal": {"mean": 0.0, "std": 1.0},
    "uniform": {"a": 0.0, "b": 1.0},
    "xavier_uniform": {"gain": 1.0},
    "xavier_normal": {"gain": 1.0},
    "glorot_uniform": {"gain": 1.0},
    "glorot_normal": {"gain": 1.0},
    "he_uniform": {"mode": "fan_in", "nonlinearity": "relu", "a": 0.0},
    "he_normal": {"mode": "fan_in", "nonlinearity": "relu", "a": 0.0},
    "kaiming_uniform": {"mode": "fan_in", "nonlinearity": "leaky_relu", "a": 0.0},
    "kaiming_normal": {"mode": "fan_in", "nonlinearity": "leaky_relu", "a": 0.0},
    "lecun_normal": {},
    "lecun_uniform": {},
    "orthogonal": {"gain": 1.0},
}

DESCRIPTIONS = {
    "default": "PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias",
    "zeros": "all zeros",
    "ones": "all ones",
    "constant": "every entry equal to value",
    "normal": "N(mean, std^2)",
    "uniform": "U(a, b)",
    "xavier_uniform": "U(-g*sqrt(6/(fan_in+fan_out)), +...) (Glorot & Bengio 2010)",
    "xavier_normal": "N(0, g^2 * 2/(fan_in+fan_out)) (Glorot & Bengio 2010)",
    "glorot_uniform": "same as xavier_uniform",
    "glorot_normal": "same as xavier_normal",
    "he_uniform": "U(+-gain*sqrt(3/fan)), gain sqrt(2) for ReLU (He et al. 2015)",
    "he_normal": "N(0, gain^2/fan), gain sqrt(2) for ReLU (He et al. 2015)",
    "kaiming_uniform": "torch.nn.init.kaiming_uniform_ (leaky_relu gain by default)",
    "kaiming_normal": "torch.nn.init.kaiming_normal_ (leaky_relu gain by default)",
    "lecun_normal": "N(0, 1/fan_in) (LeCun 1998; suits SELU)",
    "lecun_uniform": "U(+-sqrt(3/fan_in))",
    "orthogonal": "a (semi-)orthogonal matrix times gain (Saxe et al. 2014)",
}


def initializer_names() -> list[str]:
    return list(INITIALIZERS)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain."""
    if nonlinearity in ("linear", "conv", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ConfigError(
        f"nonlinearity must be one of {', '.join(_NONLINEARITIES)}, received {nonlinearity!r}"
    )


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) for a weight of torch layout (out, in, *kernel)."""
    if len(shape) < 2:
        n = int(shape[0]) if shape else 1
        return n, n
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def check_initializer(spec: Any) -> Any:
    """Validate an initializer spec; return it normalised (a name or a dict with ``type``)."""
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, dict):
        if "type" not in spec:
            raise ConfigError(f"an initializer object needs a 'type', received {spec!r}")
        name = spec["type"]
        params = {k: v for k, v in spec.items() if k != "type"}
    else:
        raise ConfigError(f"an initializer is a name or an object, received {spec!r}")
    if name not in INITIALIZERS:
        raise ConfigError(f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)}")
    allowed = INITIALIZERS[name]
    for key, value in params.items():
        if key not in allowed:
            raise ConfigError(f"initializer {name!r} takes no parameter {key!r}")
        if key == "mode" and value not in ("fan_in", "fan_out"):
            raise ConfigError(f"mode must be 'fan_in' or 'fan_out', received {value!r}")
        if key == "nonlinearity" and value not in _NONLINEARITIES:
            raise ConfigError(
                f"nonlinearity must be one of {', '.join(_NONLINEARITIES)}, received {value!r}"
            )
        if key not in ("mode", "nonlinearity") and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ConfigError(f"initializer {name!r}: {key} must be a number, received {value!r}")
    if name == "normal" and params.get("std", 1.0) < 0:
        raise ConfigError(f"initializer 'normal': std must be >= 0, received {params['std']!r}")
    if name == "uniform" and params.get("a", 0.0) > params.get("b", 1.0):
        raise ConfigError(
            f"initializer 'uniform': needs a <= b, received a={params['a']!r}, b={params['b']!r}"
        )
    return spec if not params else {"type": name, **params}


def initialize(
    spec: Any,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    *,
    fan_in: int | None = None,
    fan_out: int | None = None,
    is_bias: bool = False,
) -> np.ndarray:
    """Draw a float64 host array of ``shape`` from initializer ``spec``.

    ``fan_in``/``fan_out`` default to those of ``shape`` read as a torch weight; biases
    pass the fans of their weight (``default`` needs them: U(+-1/sqrt(fan_in))).
    """
    spec = check_initializer(spec)
    name, params = (spec, {}) if isinstance(spec, str) else (spec["type"], spec)
    p = {**INITIALIZERS[name], **{k: v for k, v in params.items() if k != "type"}}
    f_in, f_out = fans(shape)
    fan_in = f_in if fan_in is None else fan_in
    fan_out = f_out if fan_out is None else fan_out
    shape = tuple(int(s) for s in shape)

    if name == "default":
        # kaiming_uniform(a=sqrt(5)) reduces to U(+-1/sqrt(fan_in)); torch's bias uses the same
        # bound.
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        return rng.uniform(-bound, bound, size=shape)
    if name == "zeros":
        return np.zeros(shape)
    if name == "ones":
        return np.ones(shape)
    if name == "constant":
        return np.full(shape, float(p["value"]))
    if name == "normal":
        return rng.normal(float(p["mean"]), float(p["std"]), size=shape)
    if name == "uniform":
        return rng.uniform(float(p["a"]), float(p["b"]), size=shape)
    if name in ("xavier_uniform", "glorot_uniform"):
        bound = float(p["gain"]) * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, size=shape)
    if name in ("xavier_normal", "glorot_normal"):
        std = float(p["gain"]) * math.sqrt(2.0 / (fan_in + fan_out))
        return rng.normal(0.0, std, size=shape)
    if name in ("he_uniform", "he_normal", "kaiming_uniform", "kaiming_normal"):
        fan = fan_in if p["mode"] == "fan_in" else fan_out
        gain = calculate_gain(p["nonlinearity"], p["a"])
        std = gain / math.sqrt(fan)
        if name.endswith("uniform"):
            bound = math.sqrt(3.0) * std
            return rng.uniform(-bound, bound, size=shape)
        return rng.normal(0.0, std, size=shape)
    if name == "lecun_normal":
        return rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=shape)
    if name == "lecun_uniform":
        bound = math.sqrt(3.0 / fan_in)
        return rng.uniform(-bound, bound, size=shape)
    if name == "orthogonal":
        if len(shape) < 2:
            raise ConfigError("the orthogonal initializer needs a weight of 2 or more dimensions")
        rows, cols = shape[0], int(np.prod(shape[1:]))
        flat = rng.normal(0.0, 1.0, size=(rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))  # makes the decomposition unique, as torch does
        if rows < cols:
            q = q.T
        return float(p["gain"]) * q.reshape(shape)
    raise AssertionError(name)
