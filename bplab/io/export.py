"""Trained weights out of bplab and back in: safetensors, npz, ONNX and PyTorch code.

Every array is named ``<node id>.<param>`` with PyTorch's names and layouts (a Dense
weight is ``(out, in)``, a Conv2D weight ``(out, in, kh, kw)``, BatchNorm carries
``running_mean``, ``running_var`` and an int64 ``num_batches_tracked``), so a torch module
whose submodules are named after the node ids loads a file with
``load_state_dict(strict=True)``; :func:`bplab.io.torch_code.export_torch_code` writes such
a module.

File formats, chosen by the extension of the path:

``.safetensors``
    The tensors, plus string metadata in the header's ``__metadata__``: ``format`` is
    ``"pt"`` (what PyTorch tooling expects), ``bplab_version``, ``bplab_network`` (the
    network spec as JSON), ``bplab_project`` (the project as JSON, when given) and any
    caller ``metadata`` (strings kept, other values written as JSON).
``.npz``
    The same arrays under the same names, plus one 0-d unicode entry ``__bplab_meta__``
    holding the same metadata as a JSON object. The file stays self-contained (no sidecar
    to lose) and loads with ``allow_pickle=False``: no entry is a Python object.
``.onnx``
    The whole graph with the weights as initializers (:mod:`bplab.io.onnx_export`).
``.py``
    A self-contained PyTorch script defining ``BplabNet`` (:mod:`bplab.io.torch_code`); it
    holds no weights and loads a ``.safetensors`` or ``.npz`` file written here.

>>> export_weights(net, "model.safetensors")                 # doctest: +SKIP
>>> import_weights(Network(spec), "model.safetensors")        # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from bplab.errors import ConfigError
from bplab.io.loading import parse_json, read_bytes, read_npz
from bplab.io.metadata import export_metadata, network_spec
from bplab.io.project import atomic_write_bytes

__all__ = [
    "EXPORT_FORMATS",
    "NonFiniteError",
    "check_finite",
    "LOAD_FORMATS",
    "META_KEY",
    "export_weights",
    "import_weights",
    "load_weights",
    "network_spec",
    "weights_metadata",
]

# extension -> what it holds (the words used in error messages and file dialogs)
EXPORT_FORMATS = {
    ".safetensors": "safetensors weights",
    ".npz": "numpy .npz weights",
    ".onnx": "ONNX model (graph and weights)",
    ".py": "PyTorch code (nn.Module, loss, optimizer, training loop)",
}
LOAD_FORMATS = (".safetensors", ".npz")
META_KEY = "__bplab_meta__"  # the npz entry that holds the metadata JSON


def export_weights(net, path: str | os.PathLike, *, project: dict | None = None,
                   metadata: dict[str, Any] | None = None,
                   allow_nonfinite: bool = False) -> Path:
    """Write ``net``'s trained weights to ``path`` in the format its extension names.

    ``project`` (a project dict) is embedded for reference and, for ``.py``, supplies the
    loss, optimizer and training settings. Weights holding NaN or Inf are refused
    (:func:`check_finite`) unless ``allow_nonfinite``. Returns the path written.
    """
    path = Path(path)
    ext = _extension(path, EXPORT_FORMATS)
    if not allow_nonfinite and ext != ".py":  # .py holds no weights
        check_finite(net.state_dict(), path)
    if ext == ".onnx":
        from bplab.io.onnx_export import export_onnx  # needs the onnx package

        return export_onnx(net, path, project=project, metadata=metadata)
    if ext == ".py":
        from bplab.io.torch_code import export_torch_code

        return export_torch_code(net, path, project=project)
    state = net.state_dict()
    meta = export_metadata(net, project, metadata)
    if ext == ".safetensors":
        payload = _safetensors_bytes(state, meta)
    else:
        payload = _npz_bytes(state, meta)
    atomic_write_bytes(path, payload)
    return path


class NonFiniteError(ConfigError):
    """Weights holding NaN or Inf, refused by a writer (the file is not written)."""


def check_finite(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise :class:`NonFiniteError` naming ``path`` and the first tensor that holds NaN
    or Inf: a diverged run's weights are never written by accident."""
    bad = [name for name, value in state.items()
           if np.issubdtype(np.asarray(value).dtype, np.floating)
           and not np.isfinite(np.asarray(value)).all()]
    if bad:
        raise NonFiniteError(
            f"{path}: not written: {len(bad)} weight tensor{'s' if len(bad) > 1 else ''} "
            f"hold NaN or Inf (first {bad[0]!r}), as after a divergence; retrain with a "
            "lower learning rate, or pass --allow-nonfinite to write them anyway"
        )


def load_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a ``.safetensors`` or ``.npz`` weights file, by name (metadata left out)."""
    path = Path(path)
    ext = _extension(path, LOAD_FORMATS, verb="load weights from")
    _check_readable(path)
    if ext == ".safetensors":
        from safetensors.numpy import load

        raw = read_bytes(path, "weights")  # a regular file within the size cap
        try:
            arrays = load(raw)
        except Exception as exc:  # SafetensorError, ValueError, ...: the file is damaged
            raise ConfigError(f"{path}: not a readable safetensors file ({exc})") from None
    else:
        arrays, _ = _read_npz(path)
    for name, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise ConfigError(f"{path}: the weight {name!r} holds {value.dtype}, not numbers")
    return arrays


def weights_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a weights file, with ``bplab_network`` and ``bplab_project`` parsed.

    Other values are returned as stored: strings (JSON-encoded for caller values that were
    not strings).
    """
    path = Path(path)
    ext = _extension(path, LOAD_FORMATS, verb="read metadata from")
    _check_readable(path)
    if ext == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = dict(fh.metadata() or {})
        except Exception as exc:  # SafetensorError, OSError, ValueError: the file is damaged
            raise ConfigError(f"{path}: not a readable safetensors file ({exc})") from None
    else:
        _, meta = _read_npz(path)
    for key in ("bplab_network", "bplab_project"):
        if key in meta:
            try:
                meta[key] = json.loads(meta[key])
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{path}: the metadata '{key}' is not valid JSON ({exc})"
                ) from None
    return meta


def import_weights(net, path: str | os.PathLike) -> None:
    """Load a weights file into ``net`` (strict).

    Raises the network's ConfigError naming every missing, unexpected and mis-shaped name
    at once. Values are cast to the network's dtype (a float64 file loads into a float32
    network); buffers keep their own dtype.
    """
    state = load_weights(path)
    try:
        net.load_state_dict(state, strict=True)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# -- formats -------------------------------------------------------------------------------

def _safetensors_bytes(state: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    from safetensors.numpy import save

    # safetensors stores raw C-ordered buffers (np.ascontiguousarray would turn the 0-d
    # num_batches_tracked into shape (1,))
    return save({k: np.require(v, requirements="C") for k, v in state.items()}, metadata=meta)


def _npz_bytes(state: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    # a plain unicode scalar, not an object array: readable with allow_pickle=False
    np.savez(buf, **state, **{META_KEY: np.array(json.dumps(meta, ensure_ascii=False))})
    return buf.getvalue()


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    data = read_npz(path, "weights")  # every member checked: see bplab.io.loading
    raw = data.pop(META_KEY, None)
    meta: dict[str, str] = {}
    if raw is not None:
        if raw.dtype.kind != "U" or raw.ndim != 0:
            raise ConfigError(f"{path}: the entry {META_KEY!r} is not JSON text")
        meta = parse_json(str(raw), path, f"entry {META_KEY!r}")
        if not isinstance(meta, dict):
            raise ConfigError(f"{path}: the entry {META_KEY!r} is not a JSON object")
    return data, meta


def _extension(path: Path, formats, verb: str = "export to") -> str:
    ext = path.suffix.lower()
    if ext not in formats:
        raise ConfigError(
            f"cannot {verb} {path.name!r}: unknown extension {path.suffix or '(none)'!r}; "
            f"supported: {', '.join(formats)}"
        )
    return ext


def _check_readable(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"{path}: no such weights file")
