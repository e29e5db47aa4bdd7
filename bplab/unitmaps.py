"""What every unit computes over the input plane, as TensorFlow Playground draws it.

For 2-D data, :func:`unit_maps` runs the network's forward pass node by node
(:meth:`~bplab.graph.network.Network.forward_nodes`) on a ``resolution x resolution`` grid
spanning the data's bounds and keeps, for every weight layer and activation whose output
is one feature vector per sample, the first ``max_units`` units' outputs as maps. With each
unit go the weights that feed it and those it feeds (:class:`UnitLinks`), found by
following element-wise activations to the nearest weight layers.

:func:`node_histograms` gives the histogram of every node's output on a batch (the values
behind a node's hover card). Both leave the network's caches empty, as ``predict`` does.

For 1-D data (one input number, bounds ``((x0, x1),)``) the same is done along the input
line: each unit's output is a curve of x, ``(units drawn, resolution)``, the pieces the
network adds up into the function it fits.

>>> maps = unit_maps(trainer.network, ((-6, 6), (-6, 6)), resolution=24)
>>> maps.maps["fc1"].shape   # (units drawn, rows along y, columns along x)
(8, 24, 24)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bplab.backend import to_host
from bplab.diagnostics import Histogram, histogram
from bplab.layers import has_trait

__all__ = ["LINE_RESOLUTION", "MAX_UNITS", "RESOLUTION", "UnitLinks", "UnitMaps",
           "mapped_types", "node_histograms", "plane_grid", "unit_maps"]

MAX_UNITS = 16  # units drawn per node: a wide layer shows its first ones
RESOLUTION = 24  # grid points along each axis of the plane
LINE_RESOLUTION = 96  # points along the line (1-D data): a curve needs more than a map


@dataclass(frozen=True)
class UnitLinks:
    """The weights into and out of the drawn units of one node: ``w_in`` (units, fan-in)
    from ``src`` (the weight layer's input node), ``w_out`` (units, fan-out) into each
    consuming weight layer, keyed by its id. Empty where there is no weight layer."""

    src: str | None = None
    w_in: np.ndarray | None = None
    w_out: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitMaps:
    """Per-node unit outputs over the input plane (see the module). ``maps[node]`` has shape
    (drawn units, resolution, resolution), rows along y (1-D data: (drawn units,
    resolution) along x); ``units[node]`` is the node's full width (more than drawn when it
    exceeds ``max_units``)."""

    bounds: tuple  # ((x0, x1), (y0, y1)); 1-D data: ((x0, x1),)
    resolution: int
    maps: dict[str, np.ndarray]
    units: dict[str, int]
    links: dict[str, UnitLinks]


def mapped_types(type_name: str) -> bool:
    """Whether nodes of ``type_name`` get unit maps: weight layers and activations."""
    return has_trait(type_name, "has_weights") or has_trait(type_name, "is_activation")


def plane_grid(bounds, resolution: int = RESOLUTION, dtype=np.float64) -> np.ndarray:
    """The ``resolution**2`` points of the input plane, x varying fastest (row-major maps
    with rows along y), as :meth:`bplab.training.Trainer.decision_grid` lays them out;
    for 1-D bounds ``((x0, x1),)`` the ``resolution`` points of the line, shape (n, 1)."""
    if len(bounds) == 1:
        ((x0, x1),) = bounds
        return np.linspace(x0, x1, resolution)[:, None].astype(dtype)
    (x0, x1), (y0, y1) = bounds
    xx, yy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    return np.stack([xx.ravel(), yy.ravel()], axis=1).astype(dtype)


def _weight_source(network, nid: str) -> str | None:
    """The weight layer whose units ``nid``'s units are: itself, or through element-wise
    activations (one input each) the nearest one upstream."""
    while nid is not None:
        node = network.plan.nodes[nid]
        if has_trait(node.type, "has_weights"):
            return nid
        if not has_trait(node.type, "is_activation") or len(node.inputs) != 1:
            return None
        nid = node.inputs[0]
    return None


def _weight_consumers(network, nid: str) -> list[str]:
    """Weight layers that read ``nid``'s units, through element-wise activations."""
    out, todo = [], list(network.plan.consumers(nid))
    while todo:
        c = todo.pop(0)
        t = network.plan.nodes[c].type
        if has_trait(t, "has_weights"):
            out.append(c)
        elif has_trait(t, "is_activation"):
            todo.extend(network.plan.consumers(c))
    return out


def _matrix(network, nid: str) -> np.ndarray | None:
    p = network.layers[nid].params.get("weight")
    w = to_host(p.data) if p is not None else None
    return w if w is not None and w.ndim == 2 else None


def _links(network, nid: str, drawn: int) -> UnitLinks:
    src = _weight_source(network, nid)
    w_in = _matrix(network, src) if src is not None else None
    w_out = {}
    for c in _weight_consumers(network, nid):
        w = _matrix(network, c)
        if w is not None:
            w_out[c] = np.array(w[:, :drawn].T, np.float64)
    if w_in is None:
        return UnitLinks(None, None, w_out)
    inputs = network.plan.nodes[src].inputs
    return UnitLinks(inputs[0] if inputs else None, np.array(w_in[:drawn], np.float64), w_out)


def unit_maps(network, bounds, resolution: int | None = None, max_units: int = MAX_UNITS,
              with_links: bool = True) -> UnitMaps:
    """Each weight layer's and activation's unit outputs over the input plane (module doc).

    The network must take 2-D points (input shape (2,)), or one number (shape (1,)) with
    1-D ``bounds``; it is run in evaluation mode. ``resolution``: points along each axis
    (default :data:`RESOLUTION` on the plane, :data:`LINE_RESOLUTION` on the line).
    """
    line = len(bounds) == 1
    if resolution is None:
        resolution = LINE_RESOLUTION if line else RESOLUTION
    grid = plane_grid(bounds, resolution, network.dtype)
    shape = (resolution,) if line else (resolution, resolution)
    maps: dict[str, np.ndarray] = {}
    units: dict[str, int] = {}
    try:
        for nid, y in network.forward_nodes(grid, training=False):
            node = network.plan.nodes[nid]
            if not mapped_types(node.type) or y.ndim != 2:
                continue
            k = int(y.shape[1])
            drawn = min(k, max_units)
            a = to_host(y[:, :drawn]).astype(np.float32)
            maps[nid] = np.ascontiguousarray(a.T.reshape(drawn, *shape))
            units[nid] = k
    finally:
        for layer in network._layers:
            layer.clear_cache()
    links = {nid: _links(network, nid, m.shape[0]) for nid, m in maps.items()} \
        if with_links else {}
    bounds = tuple(tuple(float(v) for v in b) for b in bounds)
    return UnitMaps(bounds, resolution, maps, units, links)


def node_histograms(network, x, bins: int = 24) -> dict[str, Histogram]:
    """The histogram of every node's output (the Input excluded) on the batch ``x``."""
    out: dict[str, Histogram] = {}
    try:
        for nid, y in network.forward_nodes(x, training=False):
            if nid != network.input_id:
                out[nid] = histogram(y, bins)
    finally:
        for layer in network._layers:
            layer.clear_cache()
    return out
