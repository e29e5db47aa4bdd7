"""Run history: what each training run was, what changed since the one before, how it went.

A *run* is one press of Run until training ends, is stopped or diverges. Its
:class:`RunRecord` keeps a name, when it ran, the settings and network it trained, what
changed since the previous run (in words, from :func:`describe_changes`), the final
metrics, the diagnosis, and decimated curves: loss and metrics per epoch and every
parameterised layer's gradient norm, at most :data:`MAX_POINTS` points per curve however
long the run. Records live in a project under the top-level ``"runs"`` key, a list in the
order the runs were made; :func:`validate_runs` checks it when a project is loaded or saved.

>>> old = {"optimizer": {"type": "sgd", "lr": 0.1}, "network": {"nodes": [
...     {"id": "fc1", "type": "Dense", "units": 4, "init": {"type": "normal", "std": 1.0}}]}}
>>> new = {"optimizer": {"type": "sgd", "lr": 0.01}, "network": {"nodes": [
...     {"id": "fc1", "type": "Dense", "units": 4, "init": "he_normal"}]}}
>>> "; ".join(describe_changes(old, new))
'fc1.init normal(std=1) -> he_normal; lr 0.1 -> 0.01'

A :class:`RunRecorder` watches a run's reports (the CLI wraps ``trainer.run()`` in
:meth:`RunRecorder.watch`; the app feeds it the reports its worker forwards) and
:func:`record_run` turns it into a record. Appending a record to a project file is
:func:`bplab.io.run_history.append_run` (this module reads and writes no files, so the
project loader can use its validation).
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bplab.errors import ConfigError
from bplab.graph.topology import node_inputs

__all__ = [
    "COMPARED",
    "MAX_POINTS",
    "OUTCOMES",
    "OUTCOME_WORDS",
    "SETTINGS_KEYS",
    "RunRecord",
    "RunRecorder",
    "best_of_runs",
    "compare_runs",
    "decimate",
    "describe_changes",
    "figure_text",
    "next_run_name",
    "record_run",
    "run_problems",
    "run_settings",
    "validate_runs",
]

MAX_POINTS = 2000  # most points kept per curve of a record
OUTCOMES = ("done", "early_stop", "stopped", "diverged")
# The project sections a run trains with: what a record keeps and "Restore" puts back.
SETTINGS_KEYS = ("dataset", "network", "loss", "optimizer", "training")
DIGITS = 4  # significant digits of a curve's values: plenty for a plot, small in a file
# The final figures runs are compared by, in this order, and which way is better.
COMPARED = {"train_loss": min, "val_loss": min, "train_accuracy": max, "val_accuracy": max,
            "train_r2": max, "val_r2": max, "val_mae": min}
OUTCOME_WORDS = {"done": "finished", "early_stop": "stopped early", "stopped": "stopped",
                 "diverged": "diverged"}
_CURVE_KEYS = {"curves": "epoch", "grad_norms": "step"}  # a curve table and its x column


# -- curves ------------------------------------------------------------------------------------
def decimate(x: Sequence[float], columns: Mapping[str, Sequence[Any]],
             max_points: int = MAX_POINTS) -> tuple[list, dict[str, list]]:
    """At most ``max_points`` rows of ``x`` and its ``columns``, evenly spaced over the
    rows, always the first and the last.

    >>> decimate(list(range(10)), {"y": list(range(10, 20))}, max_points=4)
    ([0, 3, 6, 9], {'y': [10, 13, 16, 19]})
    """
    n = len(x)
    if n <= max_points:
        return list(x), {k: list(v) for k, v in columns.items()}
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, received {max_points}")
    keep = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    return [x[i] for i in keep], {k: [v[i] for i in keep] for k, v in columns.items()}


class _Table:
    """Rows ``(x, {column: value})`` of a growing curve, thinned to stay bounded.

    Like the app's plot histories: past ``2 * limit`` rows every other row is dropped and
    from then on only every ``stride``-th new row is kept (the stride doubles at each
    thinning), so the rows stay evenly spaced and memory bounded however long the run.
    The latest row is always kept; :meth:`columns` decimates to ``limit`` rows.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.rows: list[tuple[float, dict[str, float]]] = []
        self.stride = 1
        self.seen = 0
        self.latest: tuple[float, dict[str, float]] | None = None

    def add(self, x: float, values: dict[str, float]) -> None:
        self.latest = (x, values)
        self.seen += 1
        if (self.seen - 1) % self.stride:
            return
        self.rows.append(self.latest)
        if len(self.rows) > 2 * self.limit:
            self.rows = self.rows[::2]
            self.stride *= 2

    def _all_rows(self) -> list[tuple[float, dict[str, float]]]:
        if self.latest is not None and (not self.rows or self.rows[-1] is not self.latest):
            return self.rows + [self.latest]
        return self.rows

    def columns(self, x_name: str) -> dict[str, list]:
        rows = self._all_rows()
        keys: list[str] = []
        for _, values in rows:
            keys += [k for k in values if k not in keys]
        x = [r[0] for r in rows]
        cols = {k: [_rounded(values.get(k)) for _, values in rows] for k in keys}
        x, cols = decimate(x, cols, self.limit)
        return {x_name: x, **cols}


def _rounded(v: Any, digits: int = DIGITS) -> float | None:
    """``v`` to ``digits`` significant digits; None for a missing or non-finite value
    (JSON has no NaN)."""
    if v is None or isinstance(v, bool):
        return None
    v = float(v)
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


# -- recording a run ---------------------------------------------------------------------------
class RunRecorder:
    """Collects what a record keeps from a run's :class:`~bplab.training.Report` s.

    Reports with ``metrics`` give the epoch curves, reports with ``layers`` the gradient
    norms, the last ``findings`` the diagnosis; a report seen twice (the app may resend the
    latest) counts once. ``max_points`` bounds every curve.
    """

    def __init__(self, max_points: int = MAX_POINTS):
        self.epochs = _Table(max_points)
        self.grad_norms = _Table(max_points)
        self.findings: tuple = ()
        self.metrics: dict[str, float] = {}
        self.divergence = None
        self.step = 0
        self.epoch = 0
        self.elapsed = 0.0
        self.first_step: int | None = None
        self._metrics_step = -1
        self._layers_step = -1

    def add(self, report: Any) -> None:
        """Take one report (anything with a Report's fields)."""
        if self.first_step is None:
            self.first_step = report.step
        self.step, self.epoch, self.elapsed = report.step, report.epoch, report.elapsed
        if report.metrics and report.step > self._metrics_step:
            self._metrics_step = report.step
            self.metrics = dict(report.metrics)
            self.epochs.add(_rounded(report.epoch_progress, 6), self.metrics)
        if report.layers and report.step > self._layers_step:
            self._layers_step = report.step
            self.grad_norms.add(report.step, {s.layer: s.grad_norm for s in report.layers})
        if report.findings is not None:
            self.findings = tuple(report.findings)
        if report.divergence is not None:
            self.divergence = report.divergence

    def watch(self, reports: Iterable[Any]) -> Iterator[Any]:
        """Yield ``reports`` unchanged, recording each (``for r in rec.watch(t.run())``)."""
        for report in reports:
            self.add(report)
            yield report

    @property
    def empty(self) -> bool:
        """No step was reported: there is no run to record."""
        return self.first_step is None


def run_settings(project: Mapping[str, Any]) -> dict[str, Any]:
    """The sections of ``project`` a run trains with (:data:`SETTINGS_KEYS`), copied."""
    return {k: copy.deepcopy(project[k]) for k in SETTINGS_KEYS if k in project}


def next_run_name(runs: Sequence[Mapping[str, Any]]) -> str:
    """``"Run N"``, N one more than the highest number a ``"Run N"`` name uses."""
    numbers = [0]
    for run in runs:
        head, _, tail = str(run.get("name", "")).partition(" ")
        if head == "Run" and tail.isdigit():
            numbers.append(int(tail))
    return f"Run {max(numbers + [len(runs)]) + 1}"


def record_run(recorder: RunRecorder, project: Mapping[str, Any], *, name: str,
               outcome: str, previous: Mapping[str, Any] | None = None,
               source: str = "app", created: str | None = None) -> RunRecord:
    """The record of the run ``recorder`` watched, trained with ``project``'s settings.

    ``previous`` is the record (or its JSON) of the run before, whose settings the changes
    are described against; ``outcome`` is one of :data:`OUTCOMES`.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, received {outcome!r}")
    settings = run_settings(project)
    if isinstance(previous, RunRecord):
        previous = previous.to_json()
    changes = describe_changes(previous["settings"], settings) if previous else []
    diagnosis = [{"code": f.code, "severity": f.severity, "title": f.title,
                  "layers": list(f.layers)} for f in recorder.findings]
    if recorder.divergence is not None:
        diagnosis.insert(0, {"code": "diverged", "severity": "error",
                             "title": recorder.divergence.message, "layers": []})
    return RunRecord(
        id=uuid.uuid4().hex[:12],
        name=name,
        created=created or datetime.now(UTC).isoformat(timespec="seconds"),
        outcome=outcome,
        source=source,
        steps=int(recorder.step),
        epochs=int(recorder.epoch),
        elapsed=round(float(recorder.elapsed), 3),
        changes=tuple(changes),
        metrics={k: _rounded(v, 6) for k, v in recorder.metrics.items()},
        diagnosis=tuple(diagnosis),
        settings=settings,
        curves=recorder.epochs.columns("epoch"),
        grad_norms=recorder.grad_norms.columns("step"),
    )


# -- the record --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRecord:
    """One recorded run, as stored under a project's ``"runs"`` (see the module).

    ``curves`` holds the per-epoch table: ``"epoch"`` (the x values) and one list per
    metric (``train_loss``, ``val_loss``, ``train_accuracy``, ...); ``grad_norms`` holds
    ``"step"`` and one list per parameterised layer. Lists of a table have equal lengths
    (at most :data:`MAX_POINTS`); a missing or non-finite value is None. Keys this version
    does not know are kept in ``extra``.
    """

    id: str
    name: str
    created: str  # ISO 8601, UTC
    outcome: str  # one of OUTCOMES
    steps: int
    epochs: int
    elapsed: float  # seconds of training
    settings: dict[str, Any]  # the project's SETTINGS_KEYS sections the run trained with
    changes: tuple[str, ...] = ()  # since the previous run, in words
    metrics: dict[str, float | None] = field(default_factory=dict)  # at the run's end
    diagnosis: tuple[dict[str, Any], ...] = ()  # {"code", "severity", "title", "layers"}
    curves: dict[str, list] = field(default_factory=dict)
    grad_norms: dict[str, list] = field(default_factory=dict)
    source: str = "app"  # "app" or "cli"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "id": self.id, "name": self.name, "created": self.created, "source": self.source,
            "outcome": self.outcome, "steps": self.steps, "epochs": self.epochs,
            "elapsed": self.elapsed, "changes": list(self.changes),
            "metrics": dict(self.metrics), "diagnosis": [dict(d) for d in self.diagnosis],
            "settings": copy.deepcopy(self.settings),
            "curves": {k: list(v) for k, v in self.curves.items()},
            "grad_norms": {k: list(v) for k, v in self.grad_norms.items()},
        }
        out.update(copy.deepcopy(self.extra))
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "run") -> RunRecord:
        """A record from its JSON; ConfigError listing every problem (:func:`run_problems`)."""
        problems = run_problems(data, where)
        if problems:
            raise ConfigError("; ".join(problems))
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(
            **{k: copy.deepcopy(v) for k, v in data.items() if k in known
               and k not in ("changes", "diagnosis")},
            changes=tuple(data.get("changes", ())),
            diagnosis=tuple(dict(d) for d in data.get("diagnosis", ())),
            extra={k: copy.deepcopy(v) for k, v in data.items() if k not in known},
        )

    def series(self, key: str) -> tuple[list, list]:
        """``(x, y)`` of one curve: a metric over epochs, or a layer's gradient norm over
        steps; empty lists when the run has none."""
        for table, x_name in _CURVE_KEYS.items():
            columns = getattr(self, table)
            if key in columns and key != x_name:
                return list(columns[x_name]), list(columns[key])
        return [], []

    @property
    def layers(self) -> list[str]:
        """The layers whose gradient norms the record keeps, input side first."""
        return [k for k in self.grad_norms if k != "step"]


# -- runs side by side --------------------------------------------------------------------------
def best_of_runs(records: Sequence[RunRecord]) -> dict[str, set[int]]:
    """For each final figure of :data:`COMPARED` that two or more runs have (finite): the
    indices of the runs with the best value (lowest loss, highest accuracy; ties all).

    >>> a = RunRecord("a", "A", "", "done", 10, 1, 0.1, {}, metrics={"val_loss": 0.5})
    >>> b = RunRecord("b", "B", "", "done", 10, 1, 0.1, {}, metrics={"val_loss": 0.2})
    >>> best_of_runs([a, b])
    {'val_loss': {1}}
    """
    best: dict[str, set[int]] = {}
    for key, better in COMPARED.items():
        values = {i: r.metrics.get(key) for i, r in enumerate(records)}
        finite = {i: v for i, v in values.items() if _finite(v)}
        if len(finite) > 1:
            top = better(finite.values())
            best[key] = {i for i, v in finite.items() if v == top}
    return best


def figure_text(key: str, value: float) -> str:
    """A final figure as the comparisons print it: accuracies in percent, the rest to four
    significant digits (``val_accuracy`` 0.9 -> ``90.0%``, ``val_loss`` 0.32051 -> ``0.3205``).
    """
    return f"{value:.1%}" if key.endswith("accuracy") else f"{value:.4g}"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def compare_runs(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """The runs side by side, one dict a run (what ``bplab runs --json`` prints and the
    app's Runs panel tabulates): ``name``, ``outcome``, ``epochs``, ``steps``, ``elapsed``
    (seconds), ``metrics`` (the finite :data:`COMPARED` figures it has), ``best`` (those in which
    it is the best of ``records``), ``changes`` (since the run before) and ``diagnosis``
    (the findings' titles)."""
    best = best_of_runs(records)
    return [{
        "name": r.name, "created": r.created, "source": r.source, "outcome": r.outcome,
        "epochs": r.epochs, "steps": r.steps, "elapsed": r.elapsed,
        "metrics": {k: r.metrics[k] for k in COMPARED if _finite(r.metrics.get(k))},
        "best": [k for k in COMPARED if i in best.get(k, ())],
        "changes": list(r.changes),
        "diagnosis": [str(d.get("title", d.get("code", ""))) for d in r.diagnosis],
    } for i, r in enumerate(records)]


_FIELD_TYPES = {
    "id": str, "name": str, "created": str, "outcome": str, "source": str,
    "steps": int, "epochs": int, "elapsed": (int, float), "changes": list,
    "metrics": dict, "diagnosis": list, "settings": dict, "curves": dict,
    "grad_norms": dict,
}
_OPTIONAL = {"source", "changes", "metrics", "diagnosis", "curves", "grad_norms"}


def run_problems(data: Any, where: str = "run") -> list[str]:
    """Everything wrong with one record's JSON, each naming where (never raises)."""
    if not isinstance(data, dict):
        return [f"{where}: a run is a JSON object, received {type(data).__name__}"]
    if isinstance(data.get("name"), str):
        where = f"{where} ({data['name']!r})"
    problems = []
    for key, kind in _FIELD_TYPES.items():
        if key not in data:
            if key not in _OPTIONAL:
                problems.append(f"{where}: '{key}' is missing")
            continue
        value = data[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            names = kind.__name__ if isinstance(kind, type) else "number"
            problems.append(f"{where}: '{key}' must be a {names}, received {value!r:.40}")
    if isinstance(data.get("outcome"), str) and data["outcome"] not in OUTCOMES:
        problems.append(f"{where}: 'outcome' must be one of {', '.join(OUTCOMES)}, "
                        f"received {data['outcome']!r}")
    if isinstance(data.get("settings"), dict) and not isinstance(
            data["settings"].get("network"), dict):
        problems.append(f"{where}: 'settings' must hold the run's 'network' object")
    for table, x_name in _CURVE_KEYS.items():
        if isinstance(data.get(table), dict):
            problems += _table_problems(data[table], x_name, f"{where}: '{table}'")
    return problems


def _table_problems(table: dict, x_name: str, where: str) -> list[str]:
    if not table:
        return []
    x = table.get(x_name)
    if not isinstance(x, list):
        return [f"{where} has no '{x_name}' list (the x values of its curves)"]
    problems = []
    for key, values in table.items():
        if not isinstance(values, list):
            problems.append(f"{where}.{key} must be a list of numbers")
        elif len(values) != len(x):
            problems.append(f"{where}.{key} has {len(values)} points, "
                            f"'{x_name}' has {len(x)}: a curve needs one value per x")
        elif len(values) > MAX_POINTS:
            problems.append(f"{where}.{key} has {len(values)} points, more than "
                            f"{MAX_POINTS}: decimate it")
        elif not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                     for v in values):
            problems.append(f"{where}.{key} must hold numbers (or null)")
    return problems


def validate_runs(value: Any, where: str = "project") -> list[dict[str, Any]]:
    """Check a project's ``"runs"``: a list of records with distinct ids. Returns ``value``;
    ConfigError listing every problem otherwise."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: 'runs' must be a list of recorded runs, "
                          f"received {type(value).__name__}")
    problems: list[str] = []
    seen: set[str] = set()
    for i, run in enumerate(value):
        problems += run_problems(run, f"{where}: runs[{i}]")
        rid = run.get("id") if isinstance(run, dict) else None
        if isinstance(rid, str):
            if rid in seen:
                problems.append(f"{where}: runs[{i}] repeats the id {rid!r}; ids are unique")
            seen.add(rid)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ConfigError("; ".join(problems[:3]) + more)
    return value


# -- what changed ------------------------------------------------------------------------------
def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two projects' settings and networks, one phrase per change:
    ``"fc1.init normal(std=1) -> he_normal"``, ``"added bn1 (BatchNorm) after fc1"``,
    ``"lr 0.1 -> 0.01"``. Network changes come first, in node order."""
    out = _network_changes(_nodes(old), _nodes(new))
    old_net, new_net = old.get("network"), new.get("network")
    old_out = old_net.get("output") if isinstance(old_net, dict) else None
    new_out = new_net.get("output") if isinstance(new_net, dict) else None
    if old_out != new_out:
        out.append(f"output {_fmt(old_out)} -> {_fmt(new_out)}")
    for section in ("dataset", "loss", "optimizer", "training"):
        a, b = _section(old.get(section)), _section(new.get(section))
        for key in list(a) + [k for k in b if k not in a]:
            if not _same(a.get(key, _MISSING), b.get(key, _MISSING)):
                out.append(f"{_label(section, key)} {_fmt(a.get(key, _MISSING))} -> "
                           f"{_fmt(b.get(key, _MISSING))}")
    return out


class _Missing:
    def __repr__(self) -> str:
        return "default"


_MISSING: Any = _Missing()


def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _nodes(project: Mapping[str, Any]) -> list[dict]:
    network = project.get("network")
    nodes = network.get("nodes", []) if isinstance(network, dict) else network or []
    inputs = node_inputs(nodes)
    return [{**node, "inputs": list(inputs.get(node["id"], []))} for node in nodes
            if isinstance(node, dict) and isinstance(node.get("id"), str)]


def _network_changes(old: list[dict], new: list[dict]) -> list[str]:
    """Node by node; the same change on several nodes (a fix that adds a BatchNorm after
    every Dense) is one phrase, where the first of them was."""
    before = {n["id"]: n for n in old}
    after = {n["id"]: n for n in new}
    added = [n for n in new if n["id"] not in before]
    removed = [n for n in old if n["id"] not in after]
    churn = {n["id"] for n in added} | {n["id"] for n in removed}
    groups: dict[tuple, list[tuple[str, str]]] = {}  # what changed -> [(node, detail)]
    for node in removed:
        groups.setdefault(("removed", node.get("type")), []).append((node["id"], ""))
    for node in new:
        nid = node["id"]
        if nid not in before:
            src = ", ".join(node["inputs"])
            groups.setdefault(("added", node.get("type")), []).append((nid, src))
            continue
        was = before[nid]
        if was.get("type") != node.get("type"):
            groups.setdefault(("type", was.get("type"), node.get("type")), []).append((nid, ""))
        options = [k for k in was if k not in ("id", "type", "inputs")]
        options += [k for k in node if k not in ("id", "type", "inputs") and k not in was]
        for key in options:
            a, b = was.get(key, _MISSING), node.get(key, _MISSING)
            if not _same(a, b):
                groups.setdefault(("option", key, _fmt(a), _fmt(b)), []).append((nid, ""))
        # a node inserted or removed rewires its neighbours: "added bn1 after fc1" says it
        if was["inputs"] != node["inputs"] and not churn & set(was["inputs"] + node["inputs"]):
            groups.setdefault(("inputs", nid), []).append((nid, f"{_fmt(was['inputs'])} -> "
                                                                f"{_fmt(node['inputs'])}"))
    return [_phrase(what, items) for what, items in groups.items()]


def _ids(ids: list[str]) -> str:
    """``fc1``, ``fc1, fc2``, ``fc1 … fc10``."""
    return ", ".join(ids) if len(ids) <= 2 else f"{ids[0]} … {ids[-1]}"


def _phrase(what: tuple, items: list[tuple[str, str]]) -> str:
    ids = [nid for nid, _ in items]
    kind = what[0]
    if kind == "removed":
        return f"removed {_ids(ids)} ({what[1]})"
    if kind == "added":
        srcs = [src for _, src in items if src]
        after = f" after {_ids(srcs)}" if srcs else ""
        count = f"{len(ids)} " if len(ids) > 1 else ""
        return f"added {count}{what[1]} ({_ids(ids)}){after}" if count else \
            f"added {ids[0]} ({what[1]}){after}"
    if kind == "type":
        return f"{_ids(ids)} {what[1]} -> {what[2]}"
    if kind == "option":
        if len(ids) == 1:
            return f"{ids[0]}.{what[1]} {what[2]} -> {what[3]}"
        return f"{what[1]} {what[2]} -> {what[3]} on {_ids(ids)}"
    return f"{ids[0]}.inputs {items[0][1]}"


def _section(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # "loss": "mse" is {"type": "mse"}
        return {"type": value}
    return dict(value) if isinstance(value, dict) else {}


def _label(section: str, key: str) -> str:
    """``lr``, ``epochs`` (optimiser and run settings are known by their own names),
    ``optimizer`` for its type, ``dataset.noise``."""
    if key == "type" and section in ("loss", "optimizer"):
        return section
    if key == "name" and section == "dataset":
        return "dataset"
    return key if section in ("optimizer", "training") else f"{section}.{key}"


def _fmt(value: Any) -> str:
    """A value as a person reads it: ``0.01``, ``he_normal``, ``normal(std=1)``."""
    if value is _MISSING or value is None:
        return "default" if value is _MISSING else "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if k != "type")
        kind = value.get("type")
        return f"{kind}({args})" if kind is not None else f"({args})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)
