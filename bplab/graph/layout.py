"""Layered top-to-bottom layout of a network (no Qt): longest path from the sources.

Each node sits on the layer of the longest path that reaches it, so every edge points
down; nodes of one layer are ordered by the mean x of their inputs (one barycentre pass),
which keeps parallel branches side by side and the main chain straight. Networks deeper
than ``MAX_ROWS`` layers wrap into bands placed left to right (the app draws the wire from
the foot of one band up the gap beside the next).

The engine owns it (a fix that adds nodes gives them places, the same from the app and the
command line); the app draws nodes of ``NODE_W`` x ``NODE_H`` at most, so no two laid-out
nodes overlap (``X_SPACING`` > ``NODE_W``, ``Y_SPACING`` > ``NODE_H``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bplab.graph.topology import node_inputs, topological_order

__all__ = ["MAX_ROWS", "X_SPACING", "Y_SPACING", "layered_layout", "relayout"]

X_SPACING = 220.0
Y_SPACING = 120.0
# Layers in one column; a deeper network wraps into bands. At a readable zoom the canvas
# shows three rows of layers at 1280 x 800 (the demo's six in one column showed their first
# three; in two bands of three they show whole) and about five at 1600 x 1000.
MAX_ROWS = 3
# The width : height that a wrapped network's bands are chosen to approach: the app's
# canvas is wider than high (about 1.8 : 1 at its default window, 2 : 1 at 1280 x 800).
ASPECT = 1.6
# A network on the plane (two inputs) can show each unit's output over it beside its card
# (the app's unit maps: up to 8 thumbnails a row, 264 scene units): its bands leave that
# much room between them, so the maps of one band do not cover the next.
UNIT_MAP_ROOM = 264.0


def layered_layout(
    nodes: list[dict], origin: tuple[float, float] = (0.0, 0.0)
) -> dict[str, tuple[float, float]]:
    """Positions (centre x, centre y) for ``nodes`` (dicts with ``id`` and ``inputs``)."""
    ids = [n["id"] for n in nodes]
    known = set(ids)
    inputs = {n["id"]: [s for s in dict.fromkeys(n.get("inputs", ()))
                        if s in known and s != n["id"]]
              for n in nodes}

    # Longest path layering in Kahn order; nodes on a cycle go below everything else.
    done, _ = topological_order(inputs)
    layer = {nid: 0 for nid in ids}
    for nid in done:
        layer[nid] = max((layer[s] + 1 for s in inputs[nid]), default=0)
    if len(done) < len(ids):
        bottom = max((layer[n] for n in done), default=-1) + 1
        seen = set(done)
        for nid in ids:
            if nid not in seen:
                layer[nid] = bottom
                bottom += 1
    rows: dict[int, list[str]] = {}
    for nid in ids:
        rows.setdefault(layer[nid], []).append(nid)

    ox, oy = origin
    x: dict[str, float] = {}
    out: dict[str, tuple[float, float]] = {}
    rank = {nid: i for i, nid in enumerate(ids)}
    # A deep network (the ten-layer demos) would be one tall, unreadably zoomed-out column:
    # its layers wrap into side-by-side bands (see _bands), balanced.
    levels = len(rows)
    beside = UNIT_MAP_ROOM if _on_the_plane(nodes) else 0.0
    bands = _bands(levels, X_SPACING + beside)
    per_band = -(-levels // bands) if levels else 1
    band_left = 0.0
    band_width = 0.0
    for depth in sorted(rows):
        row = rows[depth]
        band, level = divmod(depth, per_band)
        if level == 0 and depth:
            band_left += band_width + X_SPACING + beside
            band_width = 0.0

        def barycentre(nid: str) -> tuple[float, int]:
            xs = [x[s] for s in inputs[nid] if s in x]
            return (sum(xs) / len(xs) if xs else 0.0, rank[nid])

        row.sort(key=barycentre)
        k = len(row)
        band_width = max(band_width, (k - 1) * X_SPACING)
        for i, nid in enumerate(row):
            x[nid] = (i - (k - 1) / 2) * X_SPACING
            out[nid] = (ox + band_left + x[nid], oy + level * Y_SPACING)
    return out


def _on_the_plane(nodes: list[dict]) -> bool:
    """Whether the network reads points of the plane or the line, which get unit maps: an
    Input of shape (2,) or (1,)."""
    return any(n.get("type") == "Input" and list(n.get("shape") or ()) in ([1], [2])
               for n in nodes)


def _bands(levels: int, band_spacing: float = X_SPACING) -> int:
    """How many side-by-side bands ``levels`` layers wrap into: one up to :data:`MAX_ROWS`;
    beyond, the count whose drawing comes closest to :data:`ASPECT` wide by high, so that
    the canvas shows it whole at a readable zoom (four layers: two bands of two; six: two
    of three; the MNIST CNN's nine: three of three, one conv block each, where two bands of
    five cut its last conv off)."""
    if levels <= MAX_ROWS:
        return 1

    def misfit(bands: int) -> float:
        rows = -(-levels // bands)
        return abs(math.log(bands * band_spacing / (rows * Y_SPACING) / ASPECT))

    return min(range(2, math.isqrt(4 * levels) + 2), key=misfit)


def relayout(nodes: Sequence[Mapping[str, Any]],
             current: Mapping[str, Sequence[float]] | None = None,
             before: Sequence[Mapping[str, Any]] | None = None) -> dict[str, list[float]]:
    """:func:`layered_layout` of ``nodes`` (inputs as the engine reads them: a node without
    ``inputs`` reads the one listed before it), moved so the drawing keeps its top-left
    corner: that of ``current`` positions, or else of the layout of ``before`` (the network
    as it was, which the app lays out the same way when it opens a project)."""
    auto = layered_layout(_as_read(nodes))
    if not auto:
        return {}
    if current:
        corner = (min(float(p[0]) for p in current.values()),
                  min(float(p[1]) for p in current.values()))
    else:
        old = layered_layout(_as_read(before or nodes)) or auto
        corner = (min(p[0] for p in old.values()), min(p[1] for p in old.values()))
    ox = corner[0] - min(p[0] for p in auto.values())
    oy = corner[1] - min(p[1] for p in auto.values())
    return {nid: [x + ox, y + oy] for nid, (x, y) in auto.items()}


def _as_read(nodes: Sequence[Mapping[str, Any]]) -> list[dict]:
    """``nodes`` as :func:`layered_layout` takes them: id, inputs as the engine reads them,
    type and shape (whether it is on the plane)."""
    inputs = node_inputs(nodes)
    kinds = {n["id"]: {k: n[k] for k in ("type", "shape") if k in n}
             for n in nodes if isinstance(n, Mapping) and n.get("id") in inputs}
    return [{"id": k, "inputs": v, **kinds[k]} for k, v in inputs.items()]
