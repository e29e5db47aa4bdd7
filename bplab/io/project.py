"""Project files: one JSON document describing an experiment (format version 1).

The app and the CLI read and write the same files. Unknown keys are kept (the app keeps
canvas positions under ``"ui"``); a missing or future ``version`` is a clear error; no key
ever names Python code to import. Saving is atomic: temporary file, fsync, rename.

>>> project = new_project()
>>> project["format"], project["version"]
('bplab-project', 1)
"""

from __future__ import annotations

import contextlib
import copy
import glob
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bplab.errors import BplabError, ConfigError
from bplab.io.loading import MAX_PROJECT_BYTES, load_json
from bplab.runs import validate_runs
from bplab.settings import TRAINING_DEFAULTS  # the known training keys, from the table

__all__ = [
    "FORMAT",
    "TRAINING_DEFAULTS",
    "VERSION",
    "WriteError",
    "atomic_text",
    "atomic_write_bytes",
    "load_project",
    "new_project",
    "project_base_dir",
    "remove_stale_temps",
    "save_project",
    "validate_project",
]

FORMAT = "bplab-project"
VERSION = 1

_SECTIONS = ("dataset", "network", "loss", "optimizer")


def new_project(name: str = "Untitled") -> dict[str, Any]:
    """A small valid project: spiral data, a 2-8-8-2 tanh network, Adam."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "dataset": {
            "name": "spiral",
            "samples": 500,
            "noise": 0.1,
            "val_fraction": 0.2,
            "seed": 0,
        },
        "network": {
            "nodes": [
                {"id": "in", "type": "Input", "shape": [2]},
                {"id": "fc1", "type": "Dense", "units": 8, "init": "xavier_uniform"},
                {"id": "act1", "type": "Tanh"},
                {"id": "fc2", "type": "Dense", "units": 8, "init": "xavier_uniform"},
                {"id": "act2", "type": "Tanh"},
                {"id": "out", "type": "Dense", "units": 2},
            ]
        },
        "loss": {"type": "cross_entropy"},
        "optimizer": {"type": "adam", "lr": 0.01},
        "training": {
            "epochs": 200,
            "batch_size": 32,
            "shuffle": True,
            "seed": 0,
            "dtype": "float32",
        },
    }


def validate_project(data: Any, where: str = "project") -> dict[str, Any]:
    """Check the envelope and section types; return ``data`` unchanged (unknown keys kept)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a project is a JSON object, received {type(data).__name__}")
    if data.get("format", FORMAT) != FORMAT:
        raise ConfigError(f"{where}: 'format' must be {FORMAT!r}, received {data.get('format')!r}")
    if "version" not in data:
        raise ConfigError(
            f"{where}: the project has no 'version'; this bplab reads version {VERSION}"
        )
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(f"{where}: 'version' must be an integer, received {version!r}")
    if version > VERSION:
        raise ConfigError(
            f"{where}: the project is format version {version}, newer than this bplab "
            f"understands ({VERSION}); upgrade bplab to open it"
        )
    if version < 1:
        raise ConfigError(f"{where}: 'version' must be 1, received {version!r}")
    for key in _SECTIONS:
        if key not in data:
            raise ConfigError(f"{where}: the project has no '{key}' section")
    if not isinstance(data["dataset"], dict) or "name" not in data["dataset"]:
        raise ConfigError(f"{where}: 'dataset' must be an object with a 'name'")
    _validate_network(data["network"], where)
    for key in ("loss", "optimizer"):
        if not isinstance(data[key], (dict, str)):
            raise ConfigError(f"{where}: '{key}' must be an object with a 'type'")
    training = data.get("training", {})
    if not isinstance(training, dict):
        raise ConfigError(f"{where}: 'training' must be an object")
    unknown = [k for k in training if k not in TRAINING_DEFAULTS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown training setting {unknown[0]!r}; "
            f"known: {', '.join(TRAINING_DEFAULTS)}"
        )
    segments = training.get("checkpoint_segments")
    n_nodes = len(data["network"]["nodes"])
    if isinstance(segments, int) and not isinstance(segments, bool) and segments > n_nodes:
        raise ConfigError(
            f"{where}: training: checkpoint_segments is {segments}, more than the network's "
            f"{n_nodes} nodes (a segment holds at least one layer); use at most {n_nodes}"
        )
    if "runs" in data:  # recorded runs (bplab.runs): checked, kept as they are
        validate_runs(data["runs"], where)
    return data


def _validate_network(network: Any, where: str) -> None:
    """The network's envelope: an object whose ``nodes`` is a list of objects with string ids.

    What the nodes say (types, options, links) is :func:`bplab.graph.analyze`'s to report on
    the node; this only keeps a malformed file from reaching code that walks the nodes.
    """
    if not isinstance(network, dict) or not isinstance(network.get("nodes"), list):
        shown = type(network).__name__ if not isinstance(network, dict) else "no 'nodes' list"
        raise ConfigError(f"{where}: 'network' must be an object with a list of 'nodes', "
                          f"received {shown}")
    for i, node in enumerate(network["nodes"]):
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: network node #{i + 1} must be an object, received "
                              f"{node!r:.60}")
        if not isinstance(node.get("id"), str) or not node["id"]:
            raise ConfigError(f"{where}: network node #{i + 1} needs a non-empty string 'id', "
                              f"received {node.get('id')!r:.60}")


def load_project(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a project file. Errors name the file and, for JSON, the line;
    encoding, size and nesting are checked first (:mod:`bplab.io.loading`)."""
    remove_stale_temps(path)  # a save of it killed midway left its temporary file
    data = load_json(path, "project", max_bytes=MAX_PROJECT_BYTES)  # see bplab.io.loading
    return validate_project(data, str(path))


def project_base_dir(path: str | os.PathLike | None) -> Path | None:
    """Relative dataset and checkpoint paths resolve against the project file's folder."""
    return Path(path).resolve().parent if path else None


class WriteError(BplabError, OSError):
    """A file could not be written (disk full, no permission): the message names the file
    and says the previous version is intact."""


TEMP_SUFFIX = ".tmp"
STALE_AFTER_S = 60.0  # a temporary file without a writer's process id: stale after this


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike) -> Iterator[io.StringIO]:
    """``with atomic_text(path) as fh:`` writes text (CSV rows, say) to memory, then to
    ``path`` through :func:`atomic_write_bytes` as UTF-8 when the block ends without an
    error; an error leaves the previous file untouched."""
    buffer = io.StringIO(newline="")
    yield buffer
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` so that a crash leaves either the old file or the new one.

    The bytes go to ``.<name>.<pid>.<random>.tmp`` beside ``path``, are flushed to disk and
    renamed over ``path``. A failure removes the temporary file and raises
    :class:`WriteError` naming ``path``; temporary files of writers that died (killed mid-save)
    are removed first (:func:`remove_stale_temps`).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.",
                                   suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes it 0600: keep the file's own mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _write_error(path: Path, exc: OSError) -> WriteError:
    reason = exc.strerror or str(exc)
    kept = "the previous file is unchanged" if path.exists() else "nothing was written"
    return WriteError(f"{path}: cannot write the file ({reason}); {kept}")


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed save of ``path`` left beside it; returns them.

    A temporary file names its writer's process id: it is stale when that process is gone
    (a file without one, when older than :data:`STALE_AFTER_S`). Saves in progress in live
    processes are left alone.
    """
    path = Path(path)
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"))
    except OSError:
        return removed
    for tmp in candidates:
        middle = tmp.name[len(path.name) + 2:-len(TEMP_SUFFIX)]
        pid = middle.split(".", 1)[0]
        try:
            if pid.isdigit() and "." in middle:
                if int(pid) == os.getpid() or _alive(int(pid)):
                    continue
            elif time.time() - tmp.stat().st_mtime < STALE_AFTER_S:
                continue
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _file_mode(path: Path) -> int:
    """The mode ``path`` has, or the one a new file gets (0666 less the umask)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save_project(path: str | os.PathLike, data: dict[str, Any]) -> None:
    """Validate and write ``data`` atomically as pretty JSON (keys in their given order)."""
    validate_project(data, str(path))
    text = json.dumps(_jsonable(copy.deepcopy(data)), indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, _NUMBER_LIST.sub(_one_line, text).encode("utf-8"))


# A list of numbers (or nulls) spread one per line by indent=2: a shape, or a recorded
# run's curve of up to 2,000 points, which would otherwise take 2,000 lines. The newline
# after "[" cannot occur inside a JSON string, so strings are never touched.
_NUMBER_LIST = re.compile(r"\[\n\s*(?:(?:-?[0-9][0-9.eE+-]*|null),\n\s*)*"
                          r"(?:-?[0-9][0-9.eE+-]*|null)\n\s*\]")


def _one_line(match: re.Match) -> str:
    return "[" + ", ".join(v.strip() for v in match.group(0)[1:-1].split(",")) + "]"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj
