"""The one way bplab reads a file: every failure becomes a :class:`LoadError` naming the file.

Projects, data files, checkpoints and weights all come through here. Before anything is
parsed the file must be a regular file under a size cap (a FIFO or ``/dev/zero`` would hang
a plain ``read``); text must be UTF-8 (a Latin-1 or UTF-16 file is named as such); JSON may
nest at most :data:`MAX_JSON_DEPTH` levels (the C parser raises ``RecursionError`` past a
few thousand, and every later walk of the data recurses too); an ``.npz`` archive is
checked member by member: its CRC, its ``.npy`` header, its size against the bytes it
holds, and no Python objects (never unpickled).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "deep.json"
>>> _ = p.write_text("[" * 500 + "]" * 500)
>>> load_json(p, "project")
Traceback (most recent call last):
...
bplab.io.loading.LoadError: ...deep.json: the project nests 500 levels deep; at most 64 are allowed
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bplab.errors import ConfigError

__all__ = [
    "MAX_DATA_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_PROJECT_BYTES",
    "MAX_UNPACKED_BYTES",
    "LoadError",
    "check_permutation",
    "check_type",
    "decode_text",
    "json_depth",
    "load_json",
    "parse_json",
    "read_bytes",
    "read_checkpoint",
    "read_npz",
    "read_text",
]

MAX_PROJECT_BYTES = 256 * 2**20  # a project with recorded runs is a few MB at most
MAX_DATA_BYTES = 4 * 2**30  # a data file, checkpoint or weights file on disk
MAX_UNPACKED_BYTES = 16 * 2**30  # the arrays an .npz unpacks to (a zip bomb stops here)
MAX_JSON_DEPTH = 64  # a project nests about 8 levels; recorded runs a few more


class LoadError(ConfigError):
    """A file bplab cannot read; ``path`` is the file, the message names it and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str, at: str | None = None):
        self.path = Path(path)
        self.problem = problem
        if at:
            message = f"{path} {at}: {problem}"
        else:  # "data.csv is not UTF-8 text", "data.npz: the entry 'x' is damaged"
            message = f"{path} {problem}" if problem.startswith("is ") else f"{path}: {problem}"
        super().__init__(message)


# -- bytes and text ------------------------------------------------------------------------------
def _check_file(path: Path, what: str, max_bytes: int) -> int:
    """The file's size, after checking it is a regular file within ``max_bytes``."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LoadError(path, f"no such {what} file") from None
    except OSError as exc:
        raise LoadError(path, f"cannot read the {what} file ({exc.strerror or exc})") from None
    if path.is_dir():
        raise LoadError(path, f"is a folder, not a {what} file")
    if not path.is_file():
        raise LoadError(path, f"is not a regular file (a device or a pipe), not a {what} file")
    if st.st_size > max_bytes:
        raise LoadError(path, f"is {_size(st.st_size)}, larger than a {what} file may be "
                        f"({_size(max_bytes)})")
    return st.st_size


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def read_bytes(path: str | os.PathLike, what: str, max_bytes: int = MAX_DATA_BYTES) -> bytes:
    """The file's bytes; it must be a regular file of at most ``max_bytes``."""
    path = Path(path)
    _check_file(path, what, max_bytes)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise LoadError(path, f"cannot read the {what} file ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise LoadError(path, f"is larger than a {what} file may be ({_size(max_bytes)})")
    return data


def decode_text(data: bytes, path: str | os.PathLike, what: str) -> str:
    """``data`` as UTF-8 (a byte-order mark allowed); other encodings are named, not guessed."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError(path, f"is UTF-16 text; bplab reads a {what} file as UTF-8: "
                        "save it as UTF-8")
    if b"\x00" in data[:4096]:
        raise LoadError(path, f"is a binary file (or UTF-16 text), not a {what} file: "
                        "bplab reads UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = ("it looks like Latin-1 or Windows-1252 text" if b"\x00" not in data
                else "it looks binary")
        raise LoadError(path, f"is not UTF-8 text (byte {exc.start}, line {line}; {hint}): "
                        f"save the {what} file as UTF-8") from None


def read_text(path: str | os.PathLike, what: str, max_bytes: int = MAX_DATA_BYTES) -> str:
    """The file as UTF-8 text, within ``max_bytes``."""
    return decode_text(read_bytes(path, what, max_bytes), path, what)


# -- JSON ----------------------------------------------------------------------------------------
# A JSON string (skipped: brackets inside it do not nest) or one bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth(text: str, stop_at: int | None = None) -> int:
    """How deep ``text``'s arrays and objects nest (stops counting past ``stop_at``)."""
    depth = deepest = 0
    for m in _JSON_TOKEN.finditer(text):
        c = m.group(0)
        if c in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    break
        elif c in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, path: str | os.PathLike, what: str,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``text``; a syntax error names its line and column, deep nesting is refused."""
    depth = json_depth(text, stop_at=max_depth)
    if depth > max_depth:
        deepest = json_depth(text)
        raise LoadError(path, f"the {what} nests {deepest:,} levels deep; at most "
                        f"{max_depth} are allowed")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(path, f"invalid JSON ({exc.msg})",
                        at=f"line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
        raise LoadError(path, f"invalid JSON ({exc})") from None


def load_json(path: str | os.PathLike, what: str, max_bytes: int = MAX_PROJECT_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Read, decode and parse a JSON file in one checked step."""
    return parse_json(read_text(path, what, max_bytes), path, what, max_depth)


# -- NPZ -----------------------------------------------------------------------------------------
def read_npz(path: str | os.PathLike, what: str, max_bytes: int = MAX_DATA_BYTES,
             max_unpacked: int = MAX_UNPACKED_BYTES) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive by name, each member checked (never unpickles).

    Refused: a file that is not a zip archive, a member whose CRC does not match (damaged),
    a member that is not a ``.npy`` array or claims more values than it holds, object
    arrays, and archives that unpack to more than ``max_unpacked`` bytes.
    """
    path = Path(path)
    _check_file(path, what, max_bytes)
    try:
        return _read_members(path, what, max_unpacked)
    except LoadError:
        raise
    except MemoryError:
        raise LoadError(path, f"the {what} file is too large to load into memory") from None
    except zipfile.BadZipFile as exc:
        raise LoadError(path, f"not a readable {what} file: the archive is damaged ({exc})"
                        ) from None
    except Exception as exc:  # zlib, struct, OSError...: any damage is the file's, not ours
        raise LoadError(path, f"not a readable {what} file ({type(exc).__name__}: {exc})"
                        ) from None


def _read_members(path: Path, what: str, max_unpacked: int) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise LoadError(path, f"is not a readable .npz file: not a zip archive (a {what} "
                        "file is a zip of arrays)")
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > max_unpacked:
            raise LoadError(path, f"unpacks to {_size(total)}, more than a {what} file may "
                            f"({_size(max_unpacked)})")
        for info in infos:
            if info.is_dir():
                continue
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                raw = zf.read(info)  # checks the member's CRC
            except zipfile.BadZipFile as exc:
                raise LoadError(path, f"the entry {name!r} is damaged ({exc})") from None
            out[name] = _npy_array(raw, path, name)
    return out


def _npy_array(raw: bytes, path: Path, name: str) -> np.ndarray:
    """One ``.npy`` member: its header checked against the bytes that follow it."""
    fh = io.BytesIO(raw)
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        read_header = {(1, 0): fmt.read_array_header_1_0,
                       (2, 0): fmt.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _fortran, dtype = read_header(fh)
    except Exception as exc:  # the header is a Python literal: SyntaxError, ValueError, ...
        raise LoadError(path, f"the entry {name!r} is not a numpy array ({exc})") from None
    if dtype.hasobject:
        raise LoadError(path, f"the entry {name!r} holds Python objects, which bplab never "
                        "loads (allow_pickle=False): save plain numeric or text arrays")
    count = math.prod(shape)
    need = count * dtype.itemsize
    have = len(raw) - fh.tell()
    if need > have:
        raise LoadError(path, f"the entry {name!r} is truncated: its header promises "
                        f"{need:,} bytes of data, it holds {have:,}")
    fh.seek(0)
    return fmt.read_array(fh, allow_pickle=False)


# -- checking parsed values ----------------------------------------------------------------------
_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "number": (int, float),
    "text": (str,),
    "object": (dict,),
    "list": (list,),
    "bool": (bool,),
}


def check_type(value: Any, kind: str, path: str | os.PathLike, where: str, *,
               low: float | None = None, nullable: bool = False) -> Any:
    """``value`` when it is of ``kind`` (and at least ``low``), else a LoadError quoting it."""
    if value is None and nullable:
        return value
    types = _KINDS[kind]
    ok = isinstance(value, types) and (kind == "bool" or not isinstance(value, bool))
    if ok and kind == "number" and not math.isfinite(value):
        ok = False
    if ok and low is not None and value < low:
        ok = False
    if not ok:
        want = {"int": "an integer", "number": "a finite number", "text": "a string",
                "object": "an object", "list": "a list", "bool": "true or false"}[kind]
        if low is not None:
            want += f" of at least {low:g}"
        if nullable:
            want += " or null"
        shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
        raise LoadError(path, f"{where} must be {want}, received {shown}")
    return value


# -- checkpoints ---------------------------------------------------------------------------------
# The checkpoint's "meta" entry: key -> (kind, lowest value, may be null, required).
_CHECKPOINT_META: dict[str, tuple[str, float | None, bool, bool]] = {
    "step": ("int", 0, False, True),
    "epoch": ("int", 0, False, True),
    "pos": ("int", 0, False, True),
    "rng": ("object", None, False, True),
    "layer_rngs": ("object", None, False, False),
    "optimizer": ("object", None, False, True),
    "lr": ("number", 0, False, True),
    "base_lr": ("number", 0, False, False),
    "schedule": ("object", None, True, False),
    "epoch_loss_sum": ("number", None, False, True),
    "epoch_loss_n": ("int", 0, False, True),
    "epoch_metric": ("list", None, True, False),
    "epoch_seen": ("int", 0, False, False),
    "epoch_losses": ("list", None, False, True),
    "best_val_loss": ("number", None, True, True),
    "bad_epochs": ("int", 0, False, True),
    "best_epoch": ("int", 0, True, False),
    "elapsed": ("number", 0, False, False),
    "amp": ("object", None, True, False),
}


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) of a training checkpoint, every value's type and range checked.

    What only the trainer knows (names and shapes of the weights, the number of training
    rows the data order permutes) it checks itself; this makes sure that what it reads is
    what a checkpoint holds: numeric arrays, a JSON ``meta`` with integers where counts go,
    a random-number state numpy accepts.
    """
    path = Path(path)
    try:
        data = read_npz(path, "checkpoint")
    except LoadError as exc:
        if not path.is_file():
            raise
        raise LoadError(path, f"not a bplab checkpoint ({exc.problem})") from None
    if "meta" not in data:
        raise LoadError(path, "not a bplab checkpoint (no 'meta' entry)")
    raw = data.pop("meta")
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise LoadError(path, "not a bplab checkpoint (its 'meta' entry is not JSON text)")
    text = str(raw)
    meta = parse_json(text, path, "checkpoint's meta")
    check_type(meta, "object", path, "the checkpoint's meta")
    for key, (kind, low, nullable, required) in _CHECKPOINT_META.items():
        if key not in meta:
            if required:
                raise LoadError(path, f"not a bplab checkpoint (its meta lacks {key!r})")
            continue
        check_type(meta[key], kind, path, f"the checkpoint's {key!r}", low=low,
                   nullable=nullable)
    for i, v in enumerate(meta["epoch_losses"]):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise LoadError(path, f"the checkpoint's epoch_losses[{i}] must be a number, "
                            f"received {v!r:.40}")
    opt = meta["optimizer"]
    check_type(opt.get("type"), "text", path, "the checkpoint's optimizer 'type'")
    check_type(opt.get("hyper", {}), "object", path, "the checkpoint's optimizer 'hyper'")
    check_type(opt.get("scalars", {}), "object", path, "the checkpoint's optimizer 'scalars'")
    _check_rng(meta["rng"], path, "the checkpoint's random-number state")
    for nid, states in meta.get("layer_rngs", {}).items():
        check_type(states, "object", path, f"the checkpoint's random state of {nid!r}")
        for key, st in states.items():
            _check_rng(st, path, f"the checkpoint's random state {nid}.{key}")
    for name, arr in data.items():
        if name == "perm":
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise LoadError(path, f"the checkpoint's data order ('perm') must be a list of "
                                f"row indices, it is {arr.dtype} of shape {arr.shape}")
        elif arr.dtype.kind not in "biuf":
            raise LoadError(path, f"the checkpoint's array {name!r} holds {arr.dtype}, "
                            "not numbers")
    return data, meta


def check_permutation(perm: np.ndarray, n: int, path: str | os.PathLike) -> None:
    """``perm`` orders ``n`` training rows: each of 0..n-1 exactly once."""
    if len(perm) != n:
        raise LoadError(path, f"the checkpoint's data order has {len(perm):,} rows but the "
                        f"data set has {n:,} training rows: it was saved for other data")
    if n and (perm.min() < 0 or perm.max() >= n or len(np.unique(perm)) != n):
        raise LoadError(path, "the checkpoint's data order is not a permutation of the "
                        f"{n:,} training rows (an index is out of range or repeated)")


def _check_rng(state: Any, path: Path, where: str) -> None:
    """A bit generator's state numpy accepts (tried on a fresh generator of its kind)."""
    check_type(state, "object", path, where)
    kind = state.get("bit_generator")
    cls = getattr(np.random, kind, None) if isinstance(kind, str) else None
    if cls is None or not isinstance(cls, type) or not issubclass(cls, np.random.BitGenerator):
        raise LoadError(path, f"{where} names no numpy bit generator ({kind!r:.40})")
    try:
        cls().state = state
    except Exception as exc:  # numpy raises TypeError, ValueError or KeyError here
        raise LoadError(path, f"{where} is damaged ({type(exc).__name__}: {exc})") from None
