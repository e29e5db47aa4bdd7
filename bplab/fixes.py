"""What a diagnosis fix changes in a project, as typed edits: the engine's answer, Qt-free.

:func:`bplab.diagnostics.diagnose` suggests :class:`~bplab.diagnostics.Fix` objects; a fix
names an ``action``. :func:`edits_for` says what that action changes in one project, as a
list of small frozen edits; :func:`apply_edits` makes them on a copy. The app maps each edit
to one undo command, the command line applies them directly, and both get the same project.

=========================  =============================================================
edit                       meaning
=========================  =============================================================
``SetOption(n, k, v)``     option ``k`` of node ``n`` becomes ``v`` (``init`` -> He)
``ReplaceType(n, t)``      node ``n`` becomes a ``t``: id and inputs stay, options that
                           ``t`` does not take are dropped
``RenameNode(n, id)``      node ``n`` is named ``id``; links, the output and its canvas
                           position follow (``sig3`` -> ``relu3`` after a ReplaceType)
``InsertAfter(n, t, id)``  a new ``t`` named ``id`` reads ``n`` and feeds every former
                           reader of ``n`` (the output moves to it if ``n`` was the output)
``AddResidual(n, s, t,     a new ``t`` (an Add) named ``id`` sums ``n`` and ``s`` and feeds
id)``                      every former reader of ``n``: a skip connection from ``s``
``SetSetting(p, v)``       the project value at the dotted path ``p`` becomes ``v``
``SetPositions(pos)``      canvas positions (``ui.positions``) of the listed nodes
=========================  =============================================================

A fix that adds nodes ends with a ``SetPositions`` that lays the network out again
(:func:`bplab.graph.layout.relayout`, keeping the drawing's top-left corner), so new nodes
never sit on old ones; a ``ReplaceType`` is followed by a ``RenameNode`` when the node's id
was made from its old type (:func:`renamed_id`), so the diagnosis never calls a ReLU "sig9".

An edit that cannot apply (its node is gone, the new type is unknown, the value is out of
range) is reported like :func:`bplab.analyze` reports problems: a
:class:`~bplab.errors.Problem` on the node, naming it and the remedy
(:func:`edit_problems`); :func:`apply_edits` raises one :class:`FixError` listing them all
before anything is changed.

>>> from bplab.diagnostics import Fix
>>> project = {"network": {"nodes": [{"id": "in", "type": "Input", "shape": [2]},
...                                  {"id": "fc1", "type": "Dense", "units": 8},
...                                  {"id": "act1", "type": "Sigmoid"}]},
...            "optimizer": {"type": "sgd", "lr": 0.1}}
>>> edits_for(Fix("", "replace_activation", ("act1",), {"from": ["Sigmoid"], "to": "ReLU"}),
...           project)
[ReplaceType(node='act1', new_type='ReLU')]
>>> edits_for(Fix("", "scale_lr", (), {"factor": 0.1}), project)
[SetSetting(path='optimizer.lr', value=0.01)]
>>> apply_fix(project, Fix("", "scale_lr", (), {"factor": 0.1}))["optimizer"]
{'type': 'sgd', 'lr': 0.01}
>>> project["optimizer"]["lr"]  # the input is never changed
0.1
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from bplab.diagnostics import Finding, Fix
from bplab.errors import BplabError, ConfigError, Problem
from bplab.graph import analyze
from bplab.graph.ids import id_prefix, new_id
from bplab.graph.layout import relayout
from bplab.graph.topology import consumers, node_inputs
from bplab.layers import has_trait, layer_class

__all__ = [
    "DEFAULT_LR", "AddResidual", "Edit", "FixError", "InsertAfter", "RenameNode", "ReplaceType",
    "SetOption", "SetPositions", "SetSetting", "renamed_id",
    "apply_edits", "apply_fix", "edit_from_json", "edit_problems", "edit_to_json", "edits_for",
    "findings_to_json", "fix_from_json", "fix_from_summary", "fix_id",
]

# The learning rate a project without one trains with (every optimiser's default).
DEFAULT_LR = 1e-3
HE_INIT = "he_normal"
NORMALIZATION = "BatchNorm"  # one type for (N, C) and (N, C, H, W)
RESIDUAL = "Add"  # the node that sums a block's output and its input


# -- the edits ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SetOption:
    """Option ``key`` of node ``node`` becomes ``value``."""

    node: str
    key: str
    value: Any


@dataclass(frozen=True)
class ReplaceType:
    """Node ``node`` becomes a ``new_type``; its id and inputs stay, options the new type
    does not take are dropped."""

    node: str
    new_type: str


@dataclass(frozen=True)
class InsertAfter:
    """A new ``new_type`` node ``new_id`` reads ``node`` and feeds every former reader of
    ``node``; it is listed right after ``node`` and becomes the output if ``node`` was."""

    node: str
    new_type: str
    new_id: str


@dataclass(frozen=True)
class RenameNode:
    """Node ``node`` is named ``new_id``: every input naming it, the network's output and its
    canvas position follow."""

    node: str
    new_id: str


@dataclass(frozen=True)
class AddResidual:
    """A new ``new_type`` node ``new_id`` (an Add) sums ``node`` and ``skip`` and feeds every
    former reader of ``node``: the block that ends at ``node`` gets a skip connection."""

    node: str
    skip: str
    new_type: str
    new_id: str


@dataclass(frozen=True)
class SetPositions:
    """The canvas positions (``ui.positions``, centre x and y) of the nodes listed."""

    positions: dict[str, list[float]]


@dataclass(frozen=True)
class SetSetting:
    """The project value at the dotted ``path`` (``"optimizer.lr"``) becomes ``value``."""

    path: str
    value: Any


Edit = SetOption | ReplaceType | RenameNode | InsertAfter | AddResidual | SetSetting | SetPositions


class FixError(BplabError, ValueError):
    """Edits that cannot be applied; ``problems`` lists every one, on its node."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.message for p in self.problems))


# -- what a fix changes ------------------------------------------------------------------------
def edits_for(fix: Fix, project: Mapping[str, Any]) -> list[Edit]:
    """The edits ``fix`` implies on ``project`` (nothing is changed here).

    Actions: ``init_he`` (He-normal init on the listed weight layers, all of them when none
    are listed), ``replace_activation`` (listed nodes whose type is in ``params["from"]``;
    every such node when none are listed; with ``params["init"]``, also that initializer on
    ``params["init_layers"]``), ``add_batchnorm`` (after each listed weight layer, or after
    every hidden one when none are listed; skipped where a BatchNorm already follows),
    ``enable_clipping`` (``training.clip_grad_norm``, unless already tighter) and ``scale_lr``
    (the optimiser's ``lr``, 1e-3 when unset, times ``params["factor"]``). Edits that would
    change nothing are left out; an advice-only fix (``action`` None) or an unknown action
    gives no edits.
    """
    nodes = _nodes(project)
    make = _ACTIONS.get(fix.action) if fix.action else None
    if make is None:
        return []
    edits = make(fix, project, nodes) + _optimizer_edits(fix, project)
    return edits + _layout_edits(project, edits)


def _optimizer_edits(fix: Fix, project: Mapping[str, Any]) -> list[Edit]:
    """``params["optimizer"]`` (a fix that only works with another optimiser says so): the
    project's optimiser becomes that spec unless it already has its type and lr."""
    wanted = fix.params.get("optimizer")
    if not isinstance(wanted, Mapping):
        return []
    opt = project.get("optimizer")
    opt = {"type": opt} if isinstance(opt, str) else opt if isinstance(opt, Mapping) else {}
    if all(opt.get(k, DEFAULT_LR if k == "lr" else None) == v for k, v in wanted.items()):
        return []
    return [SetSetting("optimizer", dict(wanted))]


def _layout_edits(project: Mapping[str, Any], edits: list[Edit]) -> list[Edit]:
    """Edits that add nodes end with the new network laid out (none can sit on another)."""
    if not any(isinstance(e, (InsertAfter, AddResidual)) for e in edits):
        return []
    result, problems = _apply(project, edits)
    if problems:
        return []
    ui = project.get("ui")
    current = ui.get("positions") if isinstance(ui, Mapping) else None
    current = current if isinstance(current, Mapping) else {}
    known = {n["id"] for n in _nodes(project)}
    return [SetPositions(relayout(_nodes(result),
                                  {k: v for k, v in current.items() if k in known},
                                  before=_nodes(project)))]


def _init_he(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    targets = _listed(fix, nodes) if fix.layers else nodes
    return [SetOption(n["id"], "init", HE_INIT) for n in targets
            if has_trait(n.get("type"), "has_weights") and n.get("init") != HE_INIT]


def _replace_activation(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    old = fix.params.get("from", [])
    old = {old} if isinstance(old, str) else set(old)
    new = fix.params.get("to")
    edits: list[Edit] = []
    if new:
        targets = _listed(fix, nodes) if fix.layers else nodes
        taken = {n["id"] for n in nodes}
        for n in targets:
            if n.get("type") not in old or n.get("type") == new:
                continue
            edits.append(ReplaceType(n["id"], new))
            name = renamed_id(n["id"], n["type"], new, taken)
            if name != n["id"]:
                taken.add(name)
                edits.append(RenameNode(n["id"], name))
    # ReLU after large random weights explodes: the fix may re-initialise them too.
    init = fix.params.get("init")
    if init:
        by_id = {n["id"]: n for n in nodes}
        for node_id in fix.params.get("init_layers", ()):
            n = by_id.get(node_id)
            if n is not None and has_trait(n.get("type"), "has_weights") \
                    and n.get("init") != init:
                edits.append(SetOption(node_id, "init", init))
    return edits


def _add_batchnorm(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    readers = consumers(nodes)
    types = {n["id"]: n.get("type") for n in nodes}
    weights = [n for n in (_listed(fix, nodes) if fix.layers else nodes)
               if has_trait(n.get("type"), "has_weights")]
    if not fix.layers:
        # No layers named: every hidden weight layer (normalising the output layer's logits
        # would fight the loss).
        last = _output_id(project, nodes)
        weights = [n for n in weights if n["id"] != last and readers.get(n["id"])]
    taken = set(types)
    edits: list[Edit] = []
    for n in weights:
        if any(types.get(c) == NORMALIZATION for c in readers.get(n["id"], ())):
            continue
        fresh = new_id(NORMALIZATION, taken)
        taken.add(fresh)
        edits.append(InsertAfter(n["id"], NORMALIZATION, fresh))
    return edits


def _add_residual(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    """A skip connection around every block (a weight layer and the activations after it, up
    to the next weight layer) whose output has its input's shape; the output block and
    blocks already summed by an Add are left alone."""
    plan = analyze(project.get("network"))
    if not plan.ok:
        return []
    inputs = node_inputs(nodes)
    readers = consumers(inputs)
    types = {n["id"]: n.get("type") for n in nodes}
    weights = [n["id"] for n in (_listed(fix, nodes) if fix.layers else nodes)
               if has_trait(n.get("type"), "has_weights")]
    taken = set(types)
    summed: dict[str, str] = {}  # block end -> the Add that now stands for it
    edits: list[Edit] = []
    for w in weights:
        block = _block(w, inputs, readers, types)
        if len(inputs.get(w, ())) != 1 or block is None:
            continue
        src, end = inputs[w][0], block[-1]
        if end == plan.output_id or plan.shapes.get(src) != plan.shapes.get(end) \
                or any(types.get(r) == RESIDUAL for r in readers.get(end, ())):
            continue
        fresh = new_id(RESIDUAL, taken)
        taken.add(fresh)
        edits.append(AddResidual(end, summed.get(src, src), RESIDUAL, fresh))
        summed[end] = fresh
    return edits


def _block(weight: str, inputs, readers, types) -> list[str] | None:
    """``weight`` and the single-input nodes that follow it one by one up to the next
    weight layer; None when they hold no activation (nothing to bypass)."""
    block = [weight]
    while len(readers.get(block[-1], ())) == 1:
        nxt = readers[block[-1]][0]
        if has_trait(types.get(nxt), "has_weights") or len(inputs.get(nxt, ())) != 1:
            break
        block.append(nxt)
    return block if any(has_trait(types.get(b), "is_activation") for b in block) else None


def _tighten(project: Mapping[str, Any], key: str, value: float, kind=float) -> list[Edit]:
    """``training.<key>`` set to ``value`` unless it is already set at or below it (a fix
    that bounds something never loosens a tighter bound the user chose)."""
    training = project.get("training")
    current = training.get(key) if isinstance(training, Mapping) else None
    if current is None or kind(current) > value:
        return [SetSetting(f"training.{key}", value)]
    return []


def _enable_clipping(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    return _tighten(project, "clip_grad_norm", float(fix.params.get("clip_grad_norm", 1.0)))


def _scale_lr(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    factor = float(fix.params.get("factor", 1.0))
    if factor == 1.0:
        return []
    opt = project.get("optimizer")
    lr = opt.get("lr", DEFAULT_LR) if isinstance(opt, Mapping) else DEFAULT_LR
    lr = float(lr) if isinstance(lr, (int, float)) and math.isfinite(lr) else DEFAULT_LR
    lr = _round_lr(lr * factor)
    if isinstance(opt, str):
        # An optimiser given by name only ("adam") becomes the same spec with an lr.
        return [SetSetting("optimizer", {"type": opt, "lr": lr})]
    return [SetSetting("optimizer.lr", lr)]


def _set_bptt(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    """``training.bptt_steps`` becomes ``params["bptt_steps"]``, unless already shorter."""
    return _tighten(project, "bptt_steps", int(fix.params.get("bptt_steps", 20)), int)


def _init_orthogonal(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    """The recurrent weights of the listed (or every) recurrent layer drawn orthogonally."""
    targets = _listed(fix, nodes) if fix.layers else nodes
    return [SetOption(n["id"], "recurrent_init", "orthogonal") for n in targets
            if has_trait(n.get("type"), "takes_sequence")
            and n.get("recurrent_init") != "orthogonal"]


def _dataset_setting(project: Mapping[str, Any], key: str, value: Any) -> list[Edit]:
    """``dataset.<key>`` = ``value`` (a data set named by a bare string becomes its spec;
    nothing when it is set already)."""
    ds = project.get("dataset")
    if isinstance(ds, str):
        return [SetSetting("dataset", {"name": ds, key: value})]
    if isinstance(ds, Mapping) and key in ds and ds[key] == value:
        return []
    return [SetSetting(f"dataset.{key}", value)]


def _standardize(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    """``dataset.standardize`` on."""
    return _dataset_setting(project, "standardize", True)


def _divide_target(fix: Fix, project: Mapping[str, Any], nodes: list[dict]) -> list[Edit]:
    """``dataset.target_divisor`` = ``params["divisor"]``."""
    return _dataset_setting(project, "target_divisor", float(fix.params["divisor"]))


_ACTIONS = {
    "init_he": _init_he,
    "replace_activation": _replace_activation,
    # any type by another (RNN -> LSTM): the same edits, ReplaceType and its RenameNode
    "replace_type": _replace_activation,
    "set_bptt": _set_bptt,
    "init_orthogonal": _init_orthogonal,
    "add_batchnorm": _add_batchnorm,
    "add_residual": _add_residual,
    "enable_clipping": _enable_clipping,
    "scale_lr": _scale_lr,
    "standardize": _standardize,
    "divide_target": _divide_target,
}


# -- applying edits ----------------------------------------------------------------------------
def apply_fix(project: Mapping[str, Any], fix: Fix) -> dict[str, Any]:
    """``project`` with ``fix`` applied, as a new dict (raises :class:`FixError`)."""
    return apply_edits(project, edits_for(fix, project))


def apply_edits(project: Mapping[str, Any], edits: Sequence[Edit]) -> dict[str, Any]:
    """A new project with ``edits`` made in order; ``project`` is not changed.

    Raises :class:`FixError` listing every edit that cannot apply, before returning anything.
    """
    result, problems = _apply(project, edits)
    if problems:
        raise FixError(problems)
    return result


def edit_problems(project: Mapping[str, Any], edits: Sequence[Edit]) -> list[Problem]:
    """Why some of ``edits`` cannot be made on ``project``, one problem each (empty: all can).

    Each edit is checked against the project as the edits before it left it."""
    return _apply(project, edits)[1]


def _apply(project: Mapping[str, Any], edits: Sequence[Edit]) -> tuple[dict, list[Problem]]:
    result = copy.deepcopy(dict(project))
    problems: list[Problem] = []
    for edit in edits:
        apply = _APPLY.get(type(edit))
        problem = apply(result, edit) if apply is not None else Problem(
            node=None,
            message=f"{edit!r} is not an edit: edits are {', '.join(c.__name__ for c in _APPLY)}.")
        if problem is not None:
            problems.append(problem)
    return result, problems


def _set_option(project: dict, edit: SetOption) -> Problem | None:
    node = _node(project, edit.node)
    if node is None:
        return _missing(edit.node, f"set its {edit.key}")
    cls = layer_class(node.get("type"))
    option = next((o for o in cls.options if o.name == edit.key), None) if cls else None
    if option is None:
        return Problem(
            node=edit.node,
            message=f"{_label(node)} has no option '{edit.key}': the fix does "
                    "not fit this layer; re-run the diagnosis.")
    try:
        option.check(_label(node), edit.value)
    except ConfigError as exc:
        return Problem(
            node=edit.node,
            message=f"{exc}: the fix does not fit this layer; set it by hand.")
    node[edit.key] = copy.deepcopy(edit.value)
    return None


def _replace_type(project: dict, edit: ReplaceType) -> Problem | None:
    nodes = _node_list(project)
    node = _node(project, edit.node)
    if node is None:
        return _missing(edit.node, f"replace it by {edit.new_type}")
    cls = layer_class(edit.new_type)
    if cls is None:
        return Problem(
            node=edit.node,
            message=f"Cannot replace {_label(node)} by '{edit.new_type}': no "
                    "such layer type. Choose one from the palette.")
    lacking = [o.name for o in cls.options if o.required and o.name not in node]
    if lacking:
        return Problem(
            node=edit.node,
            message=f"Cannot replace {_label(node)} by {edit.new_type}: it needs "
                    f"{', '.join(lacking)}. Replace it by hand and set them.")
    takes = {o.name for o in cls.options}
    new = {"id": node["id"], "type": edit.new_type, "inputs": node_inputs(nodes)[node["id"]]}
    new.update((k, v) for k, v in node.items() if k in takes)
    nodes[_position(nodes, node)] = new
    return None


def _rename_node(project: dict, edit: RenameNode) -> Problem | None:
    node = _node(project, edit.node)
    if node is None:
        return _missing(edit.node, f"rename it '{edit.new_id}'")
    if edit.new_id != edit.node and _node(project, edit.new_id) is not None:
        return Problem(node=edit.node, message=f"Cannot rename {_label(node)} '{edit.new_id}': "
                                               "that name is taken. Rename it by hand.")
    old, new = edit.node, edit.new_id
    inputs = node_inputs(_node_list(project))
    for n in _nodes(project):
        if old in inputs[n["id"]] and n.get("inputs") is not None:
            n["inputs"] = [new if s == old else s for s in inputs[n["id"]]]
    node["id"] = new
    network = project["network"]
    if isinstance(network, dict) and network.get("output") == old:
        network["output"] = new
    positions = _positions(project)
    if old in positions:
        # rebuilt in place to keep the key order, as the app's RenameNode does
        items = list(positions.items())
        positions.clear()
        positions.update((new if k == old else k, v) for k, v in items)
    return None


def _add_residual_node(project: dict, edit: AddResidual) -> Problem | None:
    if _node(project, edit.skip) is None:
        return _missing(edit.skip, f"add a skip connection from it to '{edit.node}'")
    problem = _insert_after(project, InsertAfter(edit.node, edit.new_type, edit.new_id))
    if problem is None:
        _node(project, edit.new_id)["inputs"].append(edit.skip)
    return problem


def _set_positions(project: dict, edit: SetPositions) -> Problem | None:
    positions = project.setdefault("ui", {}).setdefault("positions", {})
    positions.update((k, [float(v[0]), float(v[1])]) for k, v in edit.positions.items())
    return None


def _positions(project: Mapping[str, Any]) -> dict:
    ui = project.get("ui")
    positions = ui.get("positions") if isinstance(ui, Mapping) else None
    return positions if isinstance(positions, dict) else {}


def _insert_after(project: dict, edit: InsertAfter) -> Problem | None:
    nodes = _node_list(project)
    src = _node(project, edit.node)
    if src is None:
        return _missing(edit.node, f"add a {edit.new_type} after it")
    cls = layer_class(edit.new_type)
    if cls is None or any(o.required for o in cls.options):
        why = "no such layer type" if cls is None else "it has options to choose"
        return Problem(node=edit.node, message=f"Cannot add a {edit.new_type} after {_label(src)} "
                                  f"automatically ({why}): add it by hand.")
    if _node(project, edit.new_id) is not None:
        return Problem(node=edit.node, message=f"Cannot add {edit.new_type} '{edit.new_id}' after "
                                  f"{_label(src)}: a node is already named '{edit.new_id}'. "
                                  "Re-run the diagnosis on the current network.")
    inputs = node_inputs(nodes)
    readers = set(consumers(inputs).get(src["id"], ()))
    for n in _nodes(project):
        if n["id"] in readers:
            n["inputs"] = [edit.new_id if s == src["id"] else s for s in inputs[n["id"]]]
    nodes.insert(_position(nodes, src) + 1,
                 {"id": edit.new_id, "type": edit.new_type, "inputs": [src["id"]]})
    network = project["network"]
    if isinstance(network, dict) and network.get("output") == src["id"]:
        network["output"] = edit.new_id
    return None


def _set_setting(project: dict, edit: SetSetting) -> Problem | None:
    keys = edit.path.split(".")
    cur: Any = project
    for i, key in enumerate(keys[:-1]):
        cur = cur.setdefault(key, {})
        if not isinstance(cur, dict):
            where = ".".join(keys[: i + 1])
            return Problem(
                node=None,
                message=f"Cannot set {edit.path}: {where} is {cur!r}, not a section. "
                        f"Set {where} by hand.")
    cur[keys[-1]] = copy.deepcopy(edit.value)
    return None


_APPLY = {SetOption: _set_option, ReplaceType: _replace_type, RenameNode: _rename_node,
          InsertAfter: _insert_after, AddResidual: _add_residual_node, SetSetting: _set_setting,
          SetPositions: _set_positions}


# -- findings as JSON (``bplab train --summary``, ``bplab fix``) -------------------------------
def fix_id(finding: Finding, fix: Fix, index: int = 0) -> str:
    """The stable id of ``fix`` within ``finding``: ``"<code>/<fix.id>"``
    (``"vanishing_gradients/relu_he"``); a fix without an id is named by its action, or by
    its position for advice."""
    return f"{finding.code}/{fix.id or fix.action or f'advice{index + 1}'}"


def edit_to_json(edit: Edit) -> dict[str, Any]:
    """``{"edit": "ReplaceType", "node": "sig1", "new_type": "ReLU"}``: the edit's class name
    and its fields."""
    return {"edit": type(edit).__name__,
            **{f.name: copy.deepcopy(getattr(edit, f.name)) for f in fields(edit)}}


def edit_from_json(data: Mapping[str, Any]) -> Edit:
    """The edit :func:`edit_to_json` wrote (raises :class:`~bplab.errors.BplabError`)."""
    kinds = {cls.__name__: cls for cls in _APPLY}
    cls = kinds.get(data.get("edit")) if isinstance(data, Mapping) else None
    if cls is None:
        raise BplabError(f"{data!r} is not an edit: an edit has \"edit\" one of "
                         f"{', '.join(kinds)}.")
    names = [f.name for f in fields(cls)]
    missing = [n for n in names if n not in data]
    if missing:
        raise BplabError(f"{cls.__name__} edit {dict(data)!r} lacks {', '.join(missing)}.")
    return cls(**{n: data[n] for n in names})


def findings_to_json(findings: Sequence[Finding],
                     project: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The findings as JSON objects: ``code``, ``severity``, ``title``, ``message``,
    ``layers``, ``evidence`` and ``fixes``; each fix has its ``id`` (:func:`fix_id`),
    ``description``, ``action``, ``layers``, ``params`` and the ``edits`` it makes on
    ``project`` (:func:`edit_to_json`; empty for advice). Non-finite evidence becomes None
    (JSON has no NaN)."""
    out = []
    for finding in findings:
        out.append({
            "code": finding.code,
            "severity": finding.severity,
            "title": finding.title,
            "message": finding.message,
            "layers": list(finding.layers),
            "evidence": {k: _json_number(v) for k, v in finding.evidence.items()},
            "fixes": [_fix_to_json(finding, fix, i, project)
                      for i, fix in enumerate(finding.fixes)],
        })
    return out


def _fix_to_json(finding: Finding, fix: Fix, index: int,
                 project: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": fix_id(finding, fix, index),
        "description": fix.description,
        "action": fix.action,
        "layers": list(fix.layers),
        "params": copy.deepcopy(fix.params),
        "edits": [edit_to_json(e) for e in edits_for(fix, project)],
    }


def fix_from_json(data: Mapping[str, Any]) -> Fix:
    """The :class:`~bplab.diagnostics.Fix` a fix object of :func:`findings_to_json` names."""
    full = str(data.get("id", ""))
    return Fix(str(data.get("description", "")), data.get("action"),
               tuple(data.get("layers") or ()), dict(data.get("params") or {}),
               full.rsplit("/", 1)[-1])


def fix_from_summary(summary: Mapping[str, Any], fix_id: str,
                     project: Mapping[str, Any] | None = None) -> Fix:
    """The fix named ``fix_id`` among a run summary's ``findings``
    (``bplab train --summary``). ``project`` is the project to apply it to: the fix's edits
    are recomputed there by :func:`apply_fix`, as the app's Apply button does, and checked
    here (:class:`FixError` if they cannot apply).

    Raises :class:`~bplab.errors.BplabError` naming the ids available when none matches,
    and when the fix is advice only (nothing to apply).
    """
    findings = summary.get("findings") if isinstance(summary, Mapping) else None
    if not isinstance(findings, list):
        raise BplabError("The summary has no \"findings\" list: write it with "
                         "`bplab train PROJECT --summary PATH.json`.")
    known: list[str] = []
    for finding in findings:
        for fix in (finding.get("fixes") or ()) if isinstance(finding, Mapping) else ():
            if not isinstance(fix, Mapping):
                continue
            if fix.get("id") == fix_id:
                return _checked(fix_from_json(fix), fix_id, project)
            known.append(str(fix.get("id")))
    available = ", ".join(known) if known else "none (the diagnosis found nothing to fix)"
    raise BplabError(f"No fix '{fix_id}' in the summary. Fixes available: {available}.")


def _checked(fix: Fix, fix_id: str, project: Mapping[str, Any] | None) -> Fix:
    if fix.action is None:
        raise BplabError(f"Fix '{fix_id}' is advice ({fix.description}): it has no edits "
                         "to apply; make the change by hand.")
    if project is not None:
        problems = edit_problems(project, edits_for(fix, project))
        if problems:
            raise FixError(problems)
    return fix


def _json_number(v: Any) -> Any:
    return v if not isinstance(v, float) or math.isfinite(v) else None


# -- helpers -----------------------------------------------------------------------------------
def _node_list(project: Mapping[str, Any]) -> list:
    """The network's list of nodes itself (edits change it in place), or a new empty list."""
    net = project.get("network") or {}
    nodes = net.get("nodes") if isinstance(net, Mapping) else net
    return nodes if isinstance(nodes, list) else []


def _nodes(project: Mapping[str, Any]) -> list[dict]:
    """The network's node dicts that have an id."""
    return [n for n in _node_list(project) if isinstance(n, dict) and "id" in n]


def _node(project: Mapping[str, Any], node_id: str) -> dict | None:
    return next((n for n in _nodes(project) if n["id"] == node_id), None)


def _position(nodes: list, node: dict) -> int:
    return next(i for i, n in enumerate(nodes) if n is node)


def _listed(fix: Fix, nodes: list[dict]) -> list[dict]:
    by_id = {n["id"]: n for n in nodes}
    return [by_id[i] for i in fix.layers if i in by_id]


def _output_id(project: Mapping[str, Any], nodes: list[dict]) -> str | None:
    net = project.get("network")
    out = net.get("output") if isinstance(net, Mapping) else None
    if any(n["id"] == out for n in nodes):
        return out
    return nodes[-1]["id"] if nodes else None


def _label(node: Mapping[str, Any]) -> str:
    return f"{node.get('type')} '{node.get('id')}'"


def _missing(node_id: str, doing: str) -> Problem:
    return Problem(
        node=node_id,
        message=f"Cannot {doing}: there is no node '{node_id}' in the network "
                "any more. Re-run the diagnosis on the current network.")


def renamed_id(node_id: str, old_type: str, new_type: str, used: set[str]) -> str:
    """The id a node gets when it becomes a ``new_type``: ``node_id`` itself unless it was
    made from ``old_type`` (its letters start that type's id prefix or name, 3 letters at
    least: ``sig3``, ``sigmoid3``, ``tanh_2``); then the new type's prefix with the same
    number if ``used`` leaves it free (``relu3``), else a fresh id
    (:func:`bplab.graph.ids.new_id`).

    >>> renamed_id("sig3", "Sigmoid", "ReLU", {"sig3"})
    'relu3'
    >>> renamed_id("hidden", "Sigmoid", "ReLU", set())
    'hidden'
    """
    stem = node_id.rstrip("0123456789")
    number = node_id[len(stem):]
    stem = stem.rstrip("_").lower()
    prefix = id_prefix(old_type)
    derived = stem and (stem == prefix or (len(stem) >= 3 and (
        prefix.startswith(stem) or old_type.lower().startswith(stem))))
    if not derived:
        return node_id
    wanted = f"{id_prefix(new_type)}{number}"
    return wanted if number and wanted not in used else new_id(new_type, used)


def _round_lr(lr: float) -> float:
    # 0.01 * 0.1 is 0.0010000000000000002 in binary; show people the number they expect.
    return float(f"{lr:.6g}")
