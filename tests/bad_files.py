"""Malformed files of every kind bplab reads (issue 13), written into a folder on demand.

Shared by the engine, CLI and app tests so that each proves the same cases: a project,
data, checkpoint or weights file that must be refused with a bplab error naming the file.
Each maker takes the folder and returns the path it wrote.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bplab.io.project import new_project

SMALL = {"name": "spiral", "samples": 60, "noise": 0.1, "val_fraction": 0.2, "seed": 0}


def small_project(**training) -> dict:
    """The default project on 60 points: quick to build and train."""
    p = new_project("small")
    p["dataset"] = dict(SMALL)
    p["training"].update(training)
    return p


def write_project(folder: Path, name: str, project: dict) -> Path:
    path = folder / name
    path.write_text(json.dumps(project), encoding="utf-8")
    return path


def _mutated(name: str, change: Callable[[dict], None]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = small_project()
        change(p)
        return write_project(folder, name, p)
    return make


def _raw(name: str, payload: bytes | str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(payload if isinstance(payload, bytes) else payload.encode())
        return path
    return make


_TEXT = json.dumps(small_project()).replace('"small"', '"Ünïcode"')

# name -> (maker, a phrase the error must contain)
BAD_PROJECTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "latin1": (_raw("latin1.json", _TEXT.encode("latin-1")), "not UTF-8"),
    "utf16": (_raw("utf16.json", _TEXT.encode("utf-16")), "UTF-16"),
    "binary": (_raw("binary.json", bytes(range(256)) * 4), "binary"),
    "empty": (_raw("empty.json", b""), "invalid JSON"),
    "not_json": (_raw("notjson.json", "{'a': 1}"), "invalid JSON"),
    "deep_3000": (_raw("deep3000.json", "[" * 3000 + "]" * 3000), "3,000 levels"),
    "deep_100000": (_raw("deep100k.json", '{"a":' * 100_000 + "1" + "}" * 100_000),
                    "100,000 levels"),
    "huge_int": (_raw("hugeint.json", '{"version": ' + "9" * 5000 + "}"), "invalid JSON"),
    "top_level_list": (_raw("list.json", "[1, 2]"), "a JSON object"),
    "network_list": (_mutated("netlist.json", lambda p: p.__setitem__("network", [1, 2])),
                     "'network' must be an object"),
    "network_nodes_text": (_mutated("nodes.json", lambda p: p["network"].__setitem__(
        "nodes", "in,fc1")), "'network' must be an object"),
    "node_number": (_mutated("node.json", lambda p: p["network"]["nodes"].append(7)),
                    "node #7 must be an object"),
    "node_id_number": (_mutated("nodeid.json", lambda p: p["network"]["nodes"][1].__setitem__(
        "id", 3)), "string 'id'"),
    "checkpoint_segments_1000": (_mutated("segments.json", lambda p: p["training"].__setitem__(
        "checkpoint_segments", 1000)), "checkpoint_segments is 1000"),
}

# Refused when the run is built (the settings tables), not when the file is read.
BAD_SETTINGS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "seed_negative": (_mutated("seed.json", lambda p: p["training"].__setitem__("seed", -1)),
                      "seed"),
    "seed_text": (_mutated("seedabc.json", lambda p: p["training"].__setitem__("seed", "abc")),
                  "seed"),
    "diagnostics_every_negative": (_mutated("diag.json", lambda p: p["training"].__setitem__(
        "diagnostics_every", -1)), "diagnostics_every"),
    "checkpoint_segments_negative": (_mutated("seg.json", lambda p: p["training"].__setitem__(
        "checkpoint_segments", -1)), "checkpoint_segments"),
    "shuffle_maybe": (_mutated("shuffle.json", lambda p: p["training"].__setitem__(
        "shuffle", "maybe")), "shuffle"),
    "cupy_missing": (_mutated("cupy.json", lambda p: p["training"].__setitem__(
        "backend", "cupy")), "cupy"),
    "inputs_string": (_mutated("inputs.json", lambda p: p["network"]["nodes"][1].__setitem__(
        "inputs", p["network"]["nodes"][0]["id"])), "inputs must be a list of node ids"),
}


# -- NPZ ------------------------------------------------------------------------------------------
def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # stored, not compressed: a flipped byte is a CRC error
    return buf.getvalue()


def flip_byte_of(payload: bytes, marker: bytes) -> bytes:
    """``payload`` with one byte inside ``marker``'s first occurrence changed."""
    at = payload.index(marker) + len(marker) // 2
    return payload[:at] + bytes([payload[at] ^ 0xFF]) + payload[at + 1:]


def _data_file(name: str, payload: Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(payload())
        return path
    return make


_X = np.arange(40, dtype=np.float64).reshape(20, 2) / 7


def _bad_crc() -> bytes:
    return flip_byte_of(npz_bytes(x_train=_X, y_train=np.arange(20) % 2), _X.tobytes()[:64])


def _truncated_npz() -> bytes:
    full = npz_bytes(x_train=_X, y_train=np.arange(20) % 2)
    return full[: len(full) // 2]


def _huge_header() -> bytes:
    """A member whose header promises 10**12 values but holds 16 bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
        header = header.ljust(117) + "\n"
        zf.writestr("x_train.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                    + header.encode("latin-1") + bytes(16))
        zf.writestr("y_train.npy", npz_member(np.arange(2)))
    return buf.getvalue()


def npz_member(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


BAD_DATA: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zero_rows": (_data_file("zero.npz", lambda: npz_bytes(
        x_train=np.zeros((0, 2)), y_train=np.zeros(0, dtype=np.int64))), "no rows"),
    "bad_crc": (_data_file("crc.npz", _bad_crc), "damaged"),
    "class_id_1e9": (_data_file("classes.npz", lambda: npz_bytes(
        x_train=_X, y_train=np.r_[np.zeros(19, dtype=np.int64), 10**9])), "1,000,000,000"),
    "truncated": (_data_file("trunc.npz", _truncated_npz), "not a readable"),
    "object_array": (_data_file("obj.npz", lambda: npz_bytes(
        x_train=np.array([{"a": 1}] * 3, dtype=object), y_train=np.arange(3))),
        "Python objects"),
    "header_lies": (_data_file("lies.npz", _huge_header), "truncated"),
    "csv_latin1": (_data_file("latin.csv", lambda: "x,é\n1,2\n".encode("latin-1")),
                   "not UTF-8"),
}


def data_project(folder: Path, data_path: Path) -> Path:
    p = small_project()
    p["dataset"] = {"name": "file", "path": data_path.name}
    return write_project(folder, f"uses_{data_path.stem}.json", p)


# -- checkpoints ----------------------------------------------------------------------------------
def good_checkpoint(folder: Path) -> tuple[dict, Path]:
    """(project, checkpoint) after a few steps of the small project."""
    from bplab.training import Trainer

    project = small_project(epochs=2)
    trainer = Trainer(project, steps=3)
    for _ in trainer.run():
        pass
    path = folder / "good.ckpt.npz"
    trainer.save_checkpoint(path)
    return project, path


def _rewrite(src: Path, dst: Path, change: Callable[[dict, dict], None]) -> Path:
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(arrays, meta)
    if "meta" not in arrays:
        arrays["meta"] = np.array(json.dumps(meta))
    dst.write_bytes(npz_bytes(**arrays))
    return dst


def _ckpt(name: str, change: Callable[[dict, dict], None]):
    def make(folder: Path, good: Path) -> Path:
        return _rewrite(good, folder / name, change)
    return make


def _ckpt_bytes(name: str, payload: Callable[[bytes], bytes]):
    def make(folder: Path, good: Path) -> Path:
        path = folder / name
        path.write_bytes(payload(good.read_bytes()))
        return path
    return make


def _set(key, value):
    return lambda arrays, meta: meta.__setitem__(key, value)


BAD_CHECKPOINTS = {
    "truncated": (_ckpt_bytes("trunc.npz", lambda b: b[: len(b) * 2 // 3]), "checkpoint"),
    "empty": (_ckpt_bytes("empty.npz", lambda b: b""), "checkpoint"),
    "not_a_zip": (_ckpt_bytes("junk.npz", lambda b: b"this is not a zip file\n" * 10),
                  "not a zip"),
    "meta_not_json": (_ckpt("meta.npz", lambda a, m: a.__setitem__(
        "meta", np.array("{not json"))), "invalid JSON"),
    "meta_a_number": (_ckpt("metanum.npz", lambda a, m: a.__setitem__(
        "meta", np.array(3.5))), "not JSON text"),
    "perm_out_of_range": (_ckpt("perm.npz", lambda a, m: a.__setitem__(
        "perm", a["perm"] + 10**6)), "not a permutation"),
    "perm_wrong_length": (_ckpt("permlen.npz", lambda a, m: a.__setitem__(
        "perm", a["perm"][:-1])), "training rows"),
    "perm_float": (_ckpt("permf.npz", lambda a, m: a.__setitem__(
        "perm", a["perm"].astype(float))), "row indices"),
    "step_text": (_ckpt("step.npz", _set("step", "12")), "'step' must be an integer"),
    "step_negative": (_ckpt("stepneg.npz", _set("step", -4)), "'step' must be an integer"),
    "rng_garbage": (_ckpt("rng.npz", _set("rng", {"bit_generator": "PCG64", "state": 7})),
                    "random-number state"),
    "rng_not_object": (_ckpt("rng2.npz", _set("rng", [1, 2, 3])), "'rng' must be an object"),
    "lr_nan": (_ckpt("lr.npz", _set("lr", float("nan"))), "'lr' must be a finite number"),
    "meta_missing_key": (_ckpt("nokey.npz", lambda a, m: m.pop("epoch")), "lacks 'epoch'"),
    "string_weights": (_ckpt("strw.npz", lambda a, m: a.__setitem__(
        "weights/fc1.weight", a["weights/fc1.weight"].astype(str))), "not numbers"),
    "weights_wrong_shape": (_ckpt("shape.npz", lambda a, m: a.__setitem__(
        "weights/fc1.weight", np.zeros((3, 3), np.float32))), "fc1.weight"),
    "bad_crc": (_ckpt_bytes("crc.npz", lambda b: b), "damaged"),  # replaced below
}


def _ckpt_bad_crc(folder: Path, good: Path) -> Path:
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    payload = npz_bytes(**arrays)
    w = arrays["weights/fc1.weight"]
    path = folder / "crc.npz"
    path.write_bytes(flip_byte_of(payload, w.tobytes()))
    return path


BAD_CHECKPOINTS["bad_crc"] = (_ckpt_bad_crc, "damaged")


def project_with_checkpoint(folder: Path, project: dict, checkpoint: Path) -> Path:
    """A project whose ``"checkpoint"`` key names ``checkpoint`` (as the app saves them)."""
    p = copy.deepcopy(project)
    p["checkpoint"] = checkpoint.name
    return write_project(folder, f"with_{checkpoint.stem}.json", p)


# -- weights --------------------------------------------------------------------------------------
def good_weights(folder: Path, suffix: str = ".npz") -> tuple[dict, Path]:
    from bplab.graph import Network
    from bplab.io.export import export_weights

    project = small_project()
    path = folder / f"w{suffix}"
    export_weights(Network(project["network"], seed=0), path, project=project)
    return project, path


def truncated_copy(path: Path, folder: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    out = folder / f"trunc_{path.name}"
    out.write_bytes(data[: int(len(data) * keep)])
    return out
