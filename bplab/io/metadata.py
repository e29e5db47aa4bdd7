"""What every exported file says about itself: the network spec, the bplab version and
the project, as string metadata.

The weights formats (:mod:`bplab.io.export`), ONNX (:mod:`bplab.io.onnx_export`) and the
PyTorch code (:mod:`bplab.io.torch_code`) all write it; they import it from here, and the
dispatcher in :mod:`bplab.io.export` imports them, so the import graph stays a tree.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

import bplab
from bplab.errors import ConfigError

__all__ = ["RESERVED_META", "export_metadata", "network_spec", "to_json"]

RESERVED_META = ("format", "bplab_version", "bplab_network", "bplab_project")


def network_spec(net) -> dict[str, Any]:
    """The network as plain data ``{"nodes": [...], "output": id}``.

    The spec the network was built from when it has one (so an editor gets back exactly
    what was drawn); otherwise rebuilt from the validated plan.
    """
    spec = getattr(net, "spec", None)
    if isinstance(spec, list):
        return {"nodes": spec, "output": net.output_id}
    if isinstance(spec, dict):
        return spec
    plan = net.plan
    nodes = []
    for nid in net.order:
        node = plan.nodes[nid]
        entry: dict[str, Any] = {"id": nid, "type": node.type}
        if node.type != "Input":
            entry["inputs"] = list(node.inputs)
        entry.update(plan.configs[nid])
        nodes.append(entry)
    return {"nodes": nodes, "output": net.output_id}


def export_metadata(net, project: dict | None = None,
                    metadata: dict[str, Any] | None = None) -> dict[str, str]:
    """The string metadata every exported file carries (see the module docstring)."""
    meta = {
        "format": "pt",
        "bplab_version": bplab.__version__,
        "bplab_network": to_json(network_spec(net)),
    }
    if project is not None:
        meta["bplab_project"] = to_json(project)
    for key, value in (metadata or {}).items():
        if not isinstance(key, str):
            raise ConfigError(f"metadata keys must be strings, received {key!r}")
        if key in RESERVED_META:
            raise ConfigError(
                f"metadata key {key!r} is reserved for bplab; "
                f"reserved: {', '.join(RESERVED_META)}")
        meta[key] = value if isinstance(value, str) else to_json(value)
    return meta


def to_json(value: Any) -> str:
    """JSON text of plain data; tuples become lists, numpy scalars and arrays plain values."""
    def default(obj):
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    try:
        return json.dumps(value, default=default, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot write the metadata as JSON: {exc}") from None
