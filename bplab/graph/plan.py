"""From network data to a validated, ordered plan with every shape inferred.

A network is plain data: ``{"nodes": [{"id", "type", "inputs"?, <options>}, ...],
"output"?: id}``. :func:`analyze` never raises: it returns a :class:`Plan` whose
``problems`` list every error, each attached to the node it concerns, so the editor
can outline exactly those nodes. :class:`bplab.graph.Network` builds from a plan
without problems.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from bplab.errors import ConfigError, Problem, ShapeError
from bplab.graph.topology import declared_inputs, downstream, topological_order, upstream
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
        plan.problems.append(Problem(node=None, message=str(exc)))
        return plan
    if not raw_nodes:
        plan.problems.append(
            Problem(node=None, message="The network is empty: add an Input node.")
        )
        return plan
    _read_nodes(plan, raw_nodes)  # 1. ids, types, inputs, option values
    _check_links(plan)  # 2. references and the number of inputs
    _find_input_and_output(plan, output)  # a single Input, an existing output
    _order(plan)  # 3. Kahn's order; the loops are blamed
    _check_reachability(plan)  # 4. everything flows from the Input into the output
    _infer_shapes(plan)  # 5. shapes and parameter counts, in order
    return plan


def _read_nodes(plan: Plan, raw_nodes: list[Any]) -> None:
    """Every well-formed node into ``plan.nodes``, with its type and options checked."""
    prev: str | None = None
    for i, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict):
            plan.problems.append(
                Problem(node=None, message=f"Node #{i + 1} must be an object, received {raw!r}")
            )
            continue
        nid = raw.get("id")
        if not isinstance(nid, str) or not nid:
            nid = f"#{i + 1}"
            plan.problems.append(
                Problem(node=None, message=f"Node #{i + 1} needs a non-empty string 'id'")
            )
        if nid in plan.nodes:
            plan.problems.append(
                Problem(node=nid, message=f"Two nodes are called '{nid}': ids must be unique")
            )
            continue
        inputs = declared_inputs(raw, prev)
        if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
            plan.problems.append(
                Problem(
                    node=nid,
                    message=f"Node '{nid}': inputs must be a list of node ids, "
                    f"received {inputs!r}"
                    + (f": write [{inputs!r}]" if isinstance(inputs, str) else ""),
                )
            )
            inputs = []
        config = {k: v for k, v in raw.items() if k not in RESERVED_KEYS}
        type_name = raw.get("type")
        plan.nodes[nid] = NodeSpec(nid, str(type_name), list(inputs), config, "inputs" in raw)
        prev = nid
        _check_options(plan, nid, type_name, config)


def _check_options(plan: Plan, nid: str, type_name: Any, config: dict[str, Any]) -> None:
    """The layer type exists and takes these option values (kept in ``plan.configs``)."""
    cls = LAYERS.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(type_name), LAYERS, n=1)
        known = ", ".join(sorted(LAYERS))
        hint = f"; did you mean '{close[0]}'?" if close else f"; known types: {known}"
        plan.problems.append(
            Problem(node=nid, message=f"Node '{nid}': unknown layer type {type_name!r}{hint}")
        )
        return
    try:
        plan.configs[nid] = cls.validate_config(config, nid)
    except ConfigError as exc:
        plan.problems.append(Problem(node=nid, message=str(exc)))


def _check_links(plan: Plan) -> None:
    """Each input names another node, and each layer gets as many inputs as it takes."""
    for node in plan.nodes.values():
        label = _label(node.type, node.id)
        for src in node.inputs:
            if src not in plan.nodes:
                message = f"{label}: input '{src}' does not exist"
            elif src == node.id:
                message = f"{label} takes its own output as input: remove that link"
            else:
                continue
            plan.problems.append(Problem(node=node.id, message=message))
        message = _arity_problem(node)
        if message is not None:
            plan.problems.append(Problem(node=node.id, message=message))


def _arity_problem(node: NodeSpec) -> str | None:
    cls = LAYERS.get(node.type)
    if cls is None:
        return None
    label = _label(node.type, node.id)
    n = len(node.inputs)
    if cls.arity == 0 and n:
        return f"{label} is an input and takes no inputs"
    if cls.arity == 1 and n == 0:
        return f"{label} has no input: connect a node to it"
    if cls.arity == 1 and n != 1:
        return f"{label} takes one input, received {n}: merge them with Add or Concat first"
    if cls.arity is None and n < 2:
        return f"{label} merges two or more inputs, received {n}"
    return None


def _find_input_and_output(plan: Plan, output: Any) -> None:
    """``plan.input_id``: the one Input; ``plan.output_id``: the named output or the last node."""
    inputs = [n.id for n in plan.nodes.values() if n.type == "Input"]
    if not inputs:
        plan.problems.append(
            Problem(node=None, message="The network has no Input node: add one and connect it")
        )
    for nid in inputs[1:]:
        plan.problems.append(
            Problem(
                node=nid,
                message=f"Input '{nid}': a network takes one Input, this is a second one",
            )
        )
    plan.input_id = inputs[0] if inputs else None

    if output is None:
        output = next(reversed(plan.nodes), None)  # None: no node could be read
    if output is not None and output not in plan.nodes:
        plan.problems.append(
            Problem(node=None, message=f"The output node '{output}' does not exist")
        )
        output = None
    plan.output_id = output


def _order(plan: Plan) -> None:
    """Kahn's order, iterative; spec order breaks ties so builds are reproducible. The nodes
    on a loop are reported (not those merely downstream of one)."""
    plan.order, cyclic = topological_order(_inputs(plan))
    names = ", ".join(f"'{n}'" for n in cyclic)
    for nid in cyclic:
        plan.problems.append(
            Problem(
                node=nid,
                message=f"{_label(plan.nodes[nid].type, nid)} is part of a cycle ({names}): "
                "remove one of the links that loop back",
            )
        )


def _check_reachability(plan: Plan) -> None:
    """Every ordered node is fed by the Input, and every node feeds the output."""
    inputs = _inputs(plan)
    if plan.input_id is not None:
        seen = downstream(inputs, plan.input_id)
        ordered = set(plan.order)
        for nid, node in plan.nodes.items():
            if nid not in seen and node.type != "Input" and nid in ordered:
                plan.problems.append(
                    Problem(
                        node=nid,
                        message=f"{_label(node.type, nid)} is not connected to the input "
                        f"'{plan.input_id}'",
                    )
                )
    if plan.output_id is not None:
        feeding = upstream(inputs, plan.output_id)
        for nid, node in plan.nodes.items():
            if nid not in feeding:
                plan.problems.append(
                    Problem(
                        node=nid,
                        message=f"{_label(node.type, nid)} leads nowhere: its output does not "
                        f"reach the network's output '{plan.output_id}'",
                    )
                )


def _infer_shapes(plan: Plan) -> None:
    """Shapes and parameter counts in order. A node whose inputs have no shape is skipped
    silently: its upstream problem is already reported."""
    for nid in plan.order:
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
            plan.problems.append(Problem(node=nid, message=str(exc)))


def _inputs(plan: Plan) -> dict[str, list[str]]:
    return {nid: node.inputs for nid, node in plan.nodes.items()}
