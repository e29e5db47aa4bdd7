"""Issue 13: fuzzing every loader (random bytes, truncations, flipped bytes, type swaps) finds
no exception but a bplab error.

The default run tries a few dozen examples per loader; ``python -m pytest -m slow`` runs the
same properties with many more.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bad_files import good_checkpoint, good_weights, npz_bytes, small_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bplab.datasets import load_dataset
from bplab.errors import BplabError
from bplab.io.export import load_weights, weights_metadata
from bplab.io.project import load_project
from bplab.training import Trainer

FEW = settings(max_examples=25, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
MANY = settings(max_examples=400, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


class Samples(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return "<valid files>"


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, object]:
    """Valid files of each kind, to damage: project JSON, data NPZ and CSV, checkpoint,
    weights."""
    folder = tmp_path_factory.mktemp("good")
    project, ckpt = good_checkpoint(folder)
    _, npz_w = good_weights(folder, ".npz")
    _, st_w = good_weights(folder, ".safetensors")
    x = np.random.default_rng(0).normal(size=(12, 3))
    return Samples({
        "folder": folder,
        "project_obj": project,
        "project": json.dumps(small_project(), indent=2).encode(),
        "data.npz": npz_bytes(x_train=x, y_train=np.arange(12) % 3),
        "data.csv": b"a,b,label\n1,2,x\n3,4,y\n5,6,x\n",
        "ckpt": ckpt.read_bytes(),
        "weights.npz": npz_w.read_bytes(),
        "weights.safetensors": st_w.read_bytes(),
    })


def _load(kind: str, path: Path, samples) -> None:
    """Read ``path`` as a file of ``kind`` the way bplab does."""
    if kind == "project":
        load_project(path)
    elif kind in ("data.npz", "data.csv"):
        load_dataset({"name": "file", "path": str(path)})
    elif kind == "ckpt":
        Trainer(samples["project_obj"], steps=6).load_checkpoint(path)
    else:
        load_weights(path)
        weights_metadata(path)


def _only_bplab_errors(kind: str, payload: bytes, samples, tmp_path) -> None:
    suffix = {"project": ".json", "ckpt": ".npz"}.get(kind, "." + kind.split(".")[-1])
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(payload)
    try:
        _load(kind, path, samples)
    except BplabError:
        pass  # refused with a message: what we want (or the damage was harmless)


KINDS = ["project", "data.npz", "data.csv", "ckpt", "weights.npz", "weights.safetensors"]


def _damage(data: st.DataObject, good: bytes) -> bytes:
    """One of: random bytes, a truncation, a few flipped bytes, a spliced-in chunk."""
    how = data.draw(st.sampled_from(["random", "truncate", "flip", "splice"]))
    if how == "random":
        return data.draw(st.binary(max_size=2048))
    if how == "truncate":
        return good[: data.draw(st.integers(0, max(len(good) - 1, 0)))]
    out = bytearray(good)
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(out) - 1))
            out[i] = data.draw(st.integers(0, 255))
        return bytes(out)
    i = data.draw(st.integers(0, len(out)))
    return bytes(out[:i]) + data.draw(st.binary(min_size=1, max_size=64)) + bytes(out[i:])


def _fuzz_bytes(kind, samples, tmp_path, data):
    _only_bplab_errors(kind, _damage(data, samples[kind]), samples, tmp_path)


@pytest.mark.parametrize("kind", KINDS)
@FEW
@given(data=st.data())
def test_damaged_files_give_only_bplab_errors(kind, samples, tmp_path, data):
    _fuzz_bytes(kind, samples, tmp_path, data)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@MANY
@given(data=st.data())
def test_damaged_files_give_only_bplab_errors_many(kind, samples, tmp_path, data):
    _fuzz_bytes(kind, samples, tmp_path, data)


# -- type swaps: a well-formed file whose values have the wrong types -------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)


def _paths(obj, prefix=()):
    """Every (path, value) inside a JSON value."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _swap(obj, data: st.DataObject):
    """``obj`` with one value (anywhere inside it) replaced by a random JSON value."""
    paths = [p for p, _ in _paths(obj) if p]
    where = data.draw(st.sampled_from(paths))
    value = data.draw(JSON_VALUES)
    cur = obj
    for key in where[:-1]:
        cur = cur[key]
    cur[where[-1]] = value
    return obj


def _swap_project(samples, tmp_path, data):
    project = json.loads(samples["project"])
    _swap(project, data)
    path = tmp_path / "swapped.json"
    path.write_text(json.dumps(project))
    try:
        Trainer(load_project(path), steps=1)
    except BplabError:
        pass


def _swap_checkpoint(samples, tmp_path, data):
    with np.load(samples["folder"] / "good.ckpt.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = _swap(json.loads(str(arrays.pop("meta"))), data)
    arrays["meta"] = np.array(json.dumps(meta))
    path = tmp_path / "swapped.npz"
    path.write_bytes(npz_bytes(**arrays))
    try:
        Trainer(samples["project_obj"], steps=6).load_checkpoint(path)
    except BplabError:
        pass


@FEW
@given(data=st.data())
def test_type_swaps_in_a_checkpoint_give_only_bplab_errors(samples, tmp_path, data):
    _swap_checkpoint(samples, tmp_path, data)


@pytest.mark.slow
@MANY
@given(data=st.data())
def test_type_swaps_in_a_checkpoint_give_only_bplab_errors_many(samples, tmp_path, data):
    _swap_checkpoint(samples, tmp_path, data)


@FEW
@given(data=st.data())
def test_type_swaps_in_a_project_give_only_bplab_errors(samples, tmp_path, data):
    _swap_project(samples, tmp_path, data)


@pytest.mark.slow
@MANY
@given(data=st.data())
def test_type_swaps_in_a_project_give_only_bplab_errors_many(samples, tmp_path, data):
    _swap_project(samples, tmp_path, data)
