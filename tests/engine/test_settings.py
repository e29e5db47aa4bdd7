"""The training and dataset settings tables, and the loaders that check against them (no Qt)."""

from __future__ import annotations

import copy
import re

import pytest

from bplab.datasets import load_dataset
from bplab.datasets.base import COMMON_KEYS, FILE_KEYS, check_spec
from bplab.errors import ConfigError
from bplab.io.project import TRAINING_DEFAULTS as PROJECT_DEFAULTS
from bplab.io.project import new_project, validate_project
from bplab.settings import (
    DATASET,
    DATASET_OPTIONS,
    TRAINING,
    TRAINING_DEFAULTS,
    TRAINING_OPTIONS,
    Setting,
)
from bplab.training import training_config

# Every key the README's "Project files" section lists keeps its place and meaning.
README_TRAINING_KEYS = {
    "epochs", "steps", "batch_size", "shuffle", "seed", "dtype", "backend", "clip_grad_norm",
    "clip_grad_value", "lr_schedule", "early_stopping", "l1", "l2", "diagnostics_every",
}
README_DATASET_KEYS = {
    "name", "samples", "noise", "val_fraction", "seed", "standardize", "path", "target", "task",
    "seq_len", "window", "horizon",  # sequence sets and time series files (issue 12)
    "ignore",  # a CSV's columns that are not features
    "target_divisor",  # a regression's targets divided by a number
}


def _with_training(**values) -> dict:
    project = new_project()
    project["training"].update(values)
    return project


def test_tables_list_every_known_key_with_help():
    assert README_TRAINING_KEYS <= set(TRAINING)
    assert set(DATASET) == README_DATASET_KEYS
    assert set(COMMON_KEYS) | set(FILE_KEYS) == README_DATASET_KEYS
    assert FILE_KEYS == ("path", "target", "ignore", "task", "window", "horizon")
    for opt in (*TRAINING_OPTIONS, *DATASET_OPTIONS):
        assert opt.doc and opt.title, opt.name
        assert opt.words() in opt.tooltip


def test_defaults_come_from_the_table_and_pass_their_own_check():
    assert PROJECT_DEFAULTS is TRAINING_DEFAULTS
    assert list(TRAINING_DEFAULTS) == [o.name for o in TRAINING_OPTIONS]
    assert TRAINING_DEFAULTS["batch_size"] == 32 and TRAINING_DEFAULTS["epochs"] == 100
    for opt in TRAINING_OPTIONS:
        assert opt.check("training", opt.default) == opt.default
    cfg = training_config({"training": {}})
    assert cfg == TRAINING_DEFAULTS


@pytest.mark.parametrize("key, value, message", [
    ("batch_size", -3, 'training: batch_size must be a positive integer or "full", received -3'),
    ("batch_size", 0, "received 0"),
    ("batch_size", True, "received True"),
    ("batch_size", "half", "received 'half'"),
    ("epochs", -1, "training: epochs must be a non-negative integer"),
    ("epochs", 2.5, "received 2.5"),
    ("steps", "10", "training: steps must be a non-negative integer"),
    ("l2", -1, "training: l2 must be a number >= 0, received -1"),
    ("l1", float("nan"), "training: l1 must be a number >= 0, received nan"),
    ("clip_grad_norm", 0, "training: clip_grad_norm must be a positive number or null"),
    ("clip_grad_value", -1.0, "received -1.0"),
    ("seed", -1, "training: seed must be a non-negative integer, received -1"),
    ("shuffle", "yes", "training: shuffle must be true or false"),
    ("dtype", "float16", "training: dtype must be float32 or float64, received 'float16'"),
    ("backend", "tpu", "training: backend must be one of auto, numpy, cupy, received 'tpu'"),
    ("mixed_precision", "bfloat16", "mixed_precision must be one of float16 or null"),
    ("diagnostics_every", -5, "training: diagnostics_every must be a non-negative integer"),
    ("early_stopping", 5, "training: early_stopping must be an object or null, received 5"),
    ("early_stopping", {"patience": 0},
     "training: early_stopping.patience must be a positive integer, received 0"),
    ("early_stopping", {"min_delta": -0.1}, "early_stopping.min_delta must be a number >= 0"),
    ("lr_schedule", 3, "training: lr_schedule must be a schedule"),
])
def test_training_config_quotes_the_bad_value_with_the_section(key, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        training_config(_with_training(**{key: value}))


def test_training_config_fills_defaults_and_keeps_the_meaning_of_values():
    cfg = training_config(_with_training(batch_size="full", early_stopping={"patience": 3},
                                         clip_grad_norm=1, steps=50))
    assert cfg["batch_size"] == "full" and cfg["steps"] == 50 and cfg["epochs"] == 200
    assert cfg["early_stopping"] == {"patience": 3, "min_delta": 0.0, "restore_best": True}
    assert cfg["clip_grad_norm"] == 1.0 and cfg["l2"] == 0.0
    cfg = training_config(new_project(), epochs=3, backend="numpy", dtype=None)
    assert cfg["epochs"] == 3 and cfg["backend"] == "numpy" and cfg["dtype"] == "float32"


def test_unknown_keys_stay_allowed_where_they_were():
    # early_stopping kept its extra keys before, the dataset spec and the project never did
    cfg = training_config(_with_training(early_stopping={"patience": 2, "monitor": "val_loss"}))
    assert cfg["early_stopping"]["monitor"] == "val_loss"
    with pytest.raises(ConfigError, match="unknown training setting 'epoch'"):
        validate_project(_with_training(epoch=3))
    with pytest.raises(ConfigError, match="does not take 'nosie'"):
        check_spec({"name": "spiral", "nosie": 0.1}, ["spiral"])


@pytest.mark.parametrize("key, good, bad", [
    ("val_fraction", [0.0, 0.5, 0.95, 0.999], [1.0, -0.01, 1.5, "0.2", None]),
    ("noise", [0.0, 1.0, None], [-0.1, 1.01, 10]),
    ("samples", [1, 1_000_000, None], [0, 1_000_001, 10.5, True]),
    ("seed", [0, 7], [-1, 1.0]),
    ("standardize", [True, False], ["yes", 1]),
])
def test_dataset_bounds_are_the_table_bounds(key, good, bad):
    opt = DATASET[key]
    for value in good:
        assert opt.accepts(value), value
        check_spec({"name": "spiral", key: value}, ["spiral"])
    for value in bad:
        assert not opt.accepts(value), value
        with pytest.raises(ConfigError, match=f"dataset: {key} must be .*received"):
            check_spec({"name": "spiral", key: value}, ["spiral"])


def test_val_fraction_above_ninety_percent_loads():
    """The app refused 0.95 while the engine took it (the drift this table removed)."""
    ds = load_dataset({"name": "spiral", "samples": 200, "val_fraction": 0.95})
    assert ds.n_val == 190 and ds.n_train == 10


def test_file_spec_keys_are_checked_by_the_table():
    spec = check_spec({"name": "file", "path": "a.csv", "target": ["y"], "task": None}, [])
    assert spec.target == "y" and spec.task is None
    with pytest.raises(ConfigError, match="target must be a column name or a list of names"):
        check_spec({"name": "file", "path": "a.csv", "target": 5}, [])
    with pytest.raises(ConfigError, match="task must be 'classification' or 'regression'"):
        check_spec({"name": "file", "path": "a.csv", "task": "clustering"}, [])


def test_range_text_and_words_follow_the_bounds():
    assert DATASET["val_fraction"].range_text() == "[0, 1)"
    assert DATASET["samples"].range_text() == "[1, 1,000,000]"
    assert TRAINING["clip_grad_norm"].range_text() == "(0, ∞)"
    assert TRAINING["shuffle"].range_text() == ""
    assert Setting("x", "float", 0.5, low=0, high=1).words() == "a number in [0, 1]"
    assert Setting("x", "int", 1, low=2, high=5).words() == "an integer in [2, 5]"


def test_checks_do_not_change_the_project():
    project = _with_training(early_stopping={"patience": 2})
    before = copy.deepcopy(project)
    training_config(project)
    assert project == before
