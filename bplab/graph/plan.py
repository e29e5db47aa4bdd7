"""From network data to a validated, ordered plan with every shape inferred.

A network is plain data: ``{"nodes": [{"id", "type", "inputs"?, <options>}, ...],
"output"?: id}``. :func:`analyze` never raises: it returns a :class:`Plan` whose
``problems`` list every error, each attached to the node it concerns, so the editor
can outline exactly those nodes. :class:`bplab.graph.Network` builds from a plan
without problems.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bplab.errors import ConfigError, Problem, ShapeError
from bplab.layers import LAYERS

__all__ = ["RESERVED_KEYS", "NodeSpec", "Plan", "analyze", "normalize_spec"]

# Keys of a node that are not layer options.
RESERVED_KEYS = ("id", "type", "inputs")


@dataclass
class NodeSpec:
    id: str
    type: str
    inputs: list[str]
    config: dict[str, Any]
    explicit_inputs: bool = False


@dataclass
class Plan:
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # topological, inputs first
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # without batch axis
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # validated options
    param_counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    input_id: str | None = None
    output_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_for(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if p.node == node_id]

    def consumers(self, node_id: str) -> list[str]:
        return [n.id for n in self.nodes.values() if node_id in n.inputs]


def _label(type_name: str, node_id: str) -> str:
    return f"{type_name} '{node_id}'"


def normalize_spec(spec: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Accept ``{"nodes": [...], "output": id}`` or a bare list of nodes."""
    if isinstance(spec, dict):
        nodes = spec.get("nodes")
        output = spec.get("output")
    else:
        nodes, output = spec, None
    if not isinstance(nodes, list):
        raise ConfigError("a network needs a list of nodes under 'nodes'")
    return nodes, output


def analyze(spec: Any) -> Plan:
    """Validate ``spec`` completely and infer every shape. Never raises on a bad network."""
    plan = Plan()
    try:
        raw_nodes, output = normalize_spec(spec)
    except ConfigError as exc:
        plan.problems.append(Problem(None, str(exc)))
        return plan
    if not raw_nodes:
        plan.problems.append(Problem(None, "The network is empty: add an Input node."))
        return plan

    # 1. Nodes: ids, types, option values.
    prev: str | None = None
    for i, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict):
            plan.problems.append(
                Problem(None, f"Node #{i + 1} must be an object, received {raw!r}")
            )
            continue
        nid = raw.get("id")
        if not isinstance(nid, str) or not nid:
            nid = f"#{i + 1}"
            plan.problems.append(Problem(None, f"Node #{i + 1} needs a non-empty string 'id'"))
        if nid in plan.nodes:
            plan.problems.append(Problem(nid, f"Two nodes are called '{nid}': ids must be unique"))
            continue
        type_name = raw.get("type")
        explicit = "inputs" in raw
        inputs = raw.get("inputs")
        if inputs is None:
            inputs = [] if type_name == "Input" or prev is None else [prev]
        elif isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
            plan.problems.append(
                Problem(
                    nid, f"Node '{nid}': inputs must be a list of node ids, received {inputs!r}"
                )
            )
            inputs = []
        config = {k: v for k, v in raw.items() if k not in RESERVED_KEYS}
        node = NodeSpec(nid, str(type_name), list(inputs), config, explicit)
        plan.nodes[nid] = node
        prev = nid
        cls = LAYERS.get(type_name) if isinstance(type_name, str) else None
        if cls is None:
            close = difflib.get_close_matches(str(type_name), LAYERS, n=1)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else f"; known types: {', '.join(sorted(LAYERS))}"
            )
            plan.problems.append(
                Problem(nid, f"Node '{nid}': unknown layer type {type_name!r}{hint}")
            )
            continue
        try:
            plan.configs[nid] = cls.validate_config(config, nid)
        except ConfigError as exc:
            plan.problems.append(Problem(nid, str(exc)))

    # 2. Wiring: references, arity, a single Input, the output.
    for node in plan.nodes.values():
        cls = LAYERS.get(node.type)
        label = _label(node.type, node.id)
        for src in node.inputs:
            if src not in plan.nodes:
                plan.problems.append(Problem(node.id, f"{label}: input '{src}' does not exist"))
            elif src == node.id:
                plan.problems.append(
                    Problem(node.id, f"{label} takes its own output as input: remove that link")
                )
        if cls is None:
            continue
        n = len(node.inputs)
        if cls.arity == 0 and n:
            plan.problems.append(Problem(node.id, f"{label} is an input and takes no inputs"))
        elif cls.arity == 1 and n != 1:
            if n == 0:
                plan.problems.append(
                    Problem(node.id, f"{label} has no input: connect a node to it")
                )
            else:
                plan.problems.append(
                    Problem(
                        node.id,
                        f"{label} takes one input, received {n}: "
                        "merge them with Add or Concat first",
                    )
                )
        elif cls.arity is None and n < 2:
            plan.problems.append(
                Problem(node.id, f"{label} merges two or more inputs, received {n}")
            )

    inputs = [n.id for n in plan.nodes.values() if n.type == "Input"]
    if not inputs:
        plan.problems.append(
            Problem(None, "The network has no Input node: add one and connect it")
        )
    elif len(inputs) > 1:
        for nid in inputs[1:]:
            plan.problems.append(
                Problem(nid, f"Input '{nid}': a network takes one Input, this is a second one")
            )
    plan.input_id = inputs[0] if inputs else None

    if output is None:
        output = list(plan.nodes)[-1]
    if output not in plan.nodes:
        plan.problems.append(Problem(None, f"The output node '{output}' does not exist"))
        output = None
    plan.output_id = output

    # 3. Order (Kahn, iterative; spec order breaks ties so builds are reproducible).
    position = {nid: i for i, nid in enumerate(plan.nodes)}
    edges = {
        nid: [s for s in n.inputs if s in plan.nodes and s != nid] for nid, n in plan.nodes.items()
    }
    indegree = {nid: len(set(srcs)) for nid, srcs in edges.items()}
    consumers: dict[str, list[str]] = {nid: [] for nid in plan.nodes}
    for nid, srcs in edges.items():
        for s in dict.fromkeys(srcs):
            consumers[s].append(nid)
    ready = deque(sorted((n for n, d in indegree.items() if d == 0), key=position.get))
    order: list[str] = []
    while ready:
        nid = ready.popleft()
        order.append(nid)
        for c in consumers[nid]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    if len(order) < len(plan.nodes):
        # Kahn leaves the cycles *and* everything downstream of them; peel off, from the
        # far end, the nodes that feed nothing left, so only the loops are blamed.
        left = {n for n in plan.nodes if n not in set(order)}
        feeds = {n: sum(1 for c in dict.fromkeys(consumers[n]) if c in left) for n in left}
        sinks = [n for n in left if feeds[n] == 0]
        while sinks:
            n = sinks.pop()
            left.discard(n)
            for s in dict.fromkeys(edges[n]):
                if s in left:
                    feeds[s] -= 1
                    if feeds[s] == 0:
                        sinks.append(s)
        cyclic = [n for n in plan.nodes if n in left]
        names = ", ".join(f"'{n}'" for n in cyclic)
        for nid in cyclic:
            plan.problems.append(
                Problem(
                    nid,
                    f"{_label(plan.nodes[nid].type, nid)} is part of a cycle ({names}): "
                    "remove one of the links that loop back",
                )
            )
    plan.order = order

    # 4. Reachability: everything must flow from the Input and into the output.
    if plan.input_id is not None:
        seen = _walk(plan.input_id, consumers)
        for nid, node in plan.nodes.items():
            if nid not in seen and node.type != "Input" and nid in set(order):
                plan.problems.append(
                    Problem(
                        nid,
                        f"{_label(node.type, nid)} is not connected to the input "
                        f"'{plan.input_id}'",
                    )
                )
    if plan.output_id is not None:
        feeding = _walk(plan.output_id, {nid: edges[nid] for nid in plan.nodes})
        for nid, node in plan.nodes.items():
            if nid not in feeding:
                plan.problems.append(
                    Problem(
                        nid,
                        f"{_label(node.type, nid)} leads nowhere: its output does not reach "
                        f"the network's output '{plan.output_id}'",
                    )
                )

    # 5. Shapes, in order; a node whose inputs have no shape is skipped silently
    #    (its upstream problem is already reported).
    for nid in order:
        node = plan.nodes[nid]
        cls = LAYERS.get(node.type)
        if cls is None or nid not in plan.configs:
            continue
        if any(s not in plan.shapes for s in node.inputs) or (cls.arity != 0 and not node.inputs):
            continue
        n = len(node.inputs)
        if (cls.arity == 1 and n != 1) or (cls.arity is None and n < 2):
            continue  # the wrong number of inputs is already reported
        in_shapes = [plan.shapes[s] for s in node.inputs]
        layer = cls(nid, **plan.configs[nid])
        try:
            plan.shapes[nid] = tuple(int(d) for d in layer.output_shape(in_shapes))
            plan.param_counts[nid] = cls.count_params(plan.configs[nid], in_shapes)
        except ShapeError as exc:
            plan.problems.append(Problem(nid, str(exc)))
    return plan


def _walk(start: str, neighbours: dict[str, list[str]]) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in neighbours.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen
