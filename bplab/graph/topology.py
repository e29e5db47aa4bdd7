"""Who feeds whom in a network spec: the one implementation of its graph questions.

A spec's nodes are a list of dicts. A node without ``"inputs"`` reads the node listed before
it (the Input reads nothing), so the edges depend on the list's order; every function here
applies that rule, so ``analyze``, the document, the canvas and the fixes agree on it.

>>> nodes = [{"id": "in", "type": "Input"}, {"id": "fc", "type": "Dense"},
...          {"id": "add", "type": "Add", "inputs": ["in", "fc"]}]
>>> node_inputs(nodes)
{'in': [], 'fc': ['in'], 'add': ['in', 'fc']}
>>> consumers(nodes)["in"]
['fc', 'add']
>>> would_cycle(nodes, "add", "fc")
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "consumers", "declared_inputs", "downstream", "node_inputs", "reachable", "topological_order",
    "upstream", "would_cycle",
]

Nodes = Sequence[Mapping[str, Any]]


def node_inputs(nodes: Nodes) -> dict[str, list[str]]:
    """Node id -> the ids it reads, in order. Nodes without a string id are skipped.

    ``inputs`` given as one string means a list of that one id; a value that is neither a
    string nor a list of strings reads nothing (``analyze`` reports it on the node).
    """
    out: dict[str, list[str]] = {}
    prev: str | None = None
    for node in nodes:
        if not isinstance(node, Mapping):
            continue
        nid = node.get("id")
        if not isinstance(nid, str) or not nid:
            continue
        inputs = declared_inputs(node, prev)
        if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
            inputs = []
        out.setdefault(nid, list(inputs))
        prev = nid
    return out


def declared_inputs(node: Mapping[str, Any], prev: str | None) -> Any:
    """What ``node`` says it reads, ``prev`` being the id of the node listed before it.

    No ``inputs`` (or None): the previous node, or nothing for the Input or the first node.
    Any other value is returned as it is, for the caller to check: it must be a list of ids
    (a bare string such as ``"fc1"`` is refused by ``analyze``, which says to write
    ``["fc1"]``; here it reads nothing).
    """
    inputs = node.get("inputs")
    if inputs is None:
        return [] if node.get("type") == "Input" or prev is None else [prev]
    return inputs


def consumers(nodes_or_inputs: Nodes | Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Node id -> the ids that read it, in spec order (an id read twice appears twice).

    Takes the nodes, or the mapping :func:`node_inputs` returned.
    """
    inputs = _as_inputs(nodes_or_inputs)
    out: dict[str, list[str]] = {nid: [] for nid in inputs}
    for nid, sources in inputs.items():
        for src in sources:
            out.setdefault(src, []).append(nid)
    return out


def reachable(start: str | Iterable[str], neighbours: Mapping[str, Iterable[str]]) -> set[str]:
    """Every id reachable from ``start`` (one id or several) through ``neighbours``,
    the starts included."""
    starts = [start] if isinstance(start, str) else list(start)
    seen = set(starts)
    stack = list(starts)
    while stack:
        for nxt in neighbours.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def downstream(nodes: Nodes | Mapping[str, list[str]], start: str) -> set[str]:
    """``start`` and every node its output reaches."""
    return reachable(start, consumers(nodes))


def upstream(nodes: Nodes | Mapping[str, list[str]], start: str) -> set[str]:
    """``start`` and every node that feeds it, directly or not."""
    return reachable(start, _as_inputs(nodes))


def would_cycle(nodes: Nodes | Mapping[str, list[str]], src: str, dst: str) -> bool:
    """Whether a new link ``src -> dst`` would close a loop: ``dst`` already reaches ``src``
    (a node feeding itself included)."""
    return src == dst or src in downstream(nodes, dst)


def topological_order(inputs: Mapping[str, list[str]]) -> tuple[list[str], list[str]]:
    """Kahn's order over ``node id -> input ids`` (inputs first, ties in spec order), and the
    nodes that lie on a cycle.

    Kahn leaves the cycles *and* everything downstream of them unordered; of those, the
    nodes that feed nothing left are peeled off from the far end, so only the loops are
    returned as cyclic. Only links between two different known nodes order anything: an
    input naming an unknown id or the node itself is ignored here (``analyze`` reports
    both on the node), and a source listed twice counts once.

    >>> topological_order({"a": [], "b": ["c"], "c": ["a", "a"], "d": ["d", "zz"]})
    (['a', 'd', 'c', 'b'], [])
    >>> topological_order({"a": [], "b": ["a", "c"], "c": ["b"], "d": ["c"]})
    (['a'], ['b', 'c'])
    """
    known = {
        nid: list(dict.fromkeys(s for s in srcs if s in inputs and s != nid))
        for nid, srcs in inputs.items()
    }
    readers = consumers(known)
    indegree = {nid: len(srcs) for nid, srcs in known.items()}
    ready = deque(nid for nid, d in indegree.items() if d == 0)
    order: list[str] = []
    while ready:
        nid = ready.popleft()
        order.append(nid)
        for c in readers[nid]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    left = set(known) - set(order)
    feeds = {n: sum(1 for c in readers[n] if c in left) for n in left}
    sinks = [n for n in left if feeds[n] == 0]
    while sinks:
        n = sinks.pop()
        left.discard(n)
        for s in known[n]:
            if s in left:
                feeds[s] -= 1
                if feeds[s] == 0:
                    sinks.append(s)
    return order, [n for n in known if n in left]


def _as_inputs(nodes_or_inputs: Nodes | Mapping[str, list[str]]) -> Mapping[str, list[str]]:
    if isinstance(nodes_or_inputs, Mapping):
        return nodes_or_inputs
    return node_inputs(nodes_or_inputs)
