"""Sequence data: the generated sets (adding, sequence_parity, sine_forecast) and time series
read from CSV files in windows."""

from __future__ import annotations

import numpy as np
import pytest

from bplab.datasets import DATASETS, load_dataset
from bplab.datasets.base import standardization
from bplab.errors import ConfigError

SEQUENCE_SETS = ["adding", "sequence_parity", "sine_forecast"]


@pytest.mark.parametrize("name", SEQUENCE_SETS)
def test_sequence_sets_are_listed_seeded_and_shaped_by_seq_len(name):
    info = DATASETS[name]
    assert info.seq_len is not None and info.input_shape[0] == info.seq_len
    a = load_dataset({"name": name, "seq_len": 7, "samples": 300, "seed": 4})
    b = load_dataset({"name": name, "seq_len": 7, "samples": 300, "seed": 4})
    c = load_dataset({"name": name, "seq_len": 7, "samples": 300, "seed": 5})
    assert a.input_shape == (7, info.input_shape[1]) and a.x_train.shape[1:] == (7,) + \
        info.input_shape[1:]
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert len(a.feature_names) == 7 * info.input_shape[1]
    assert a.spec["seq_len"] == 7


def test_adding_targets_are_the_sum_of_the_two_marked_values():
    ds = load_dataset({"name": "adding", "seq_len": 20, "samples": 500})
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])[:, 0]
    values, markers = x[..., 0], x[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :10].sum(axis=1) == 1)  # one marker in each half
    np.testing.assert_allclose((values * markers).sum(axis=1), y, rtol=1e-6)
    # the mean predictor's MSE is the variance of a sum of two U(0, 1): 1/6
    assert abs(np.var(y) - 1 / 6) < 0.03


def test_parity_labels_count_the_ones_and_sine_forecast_predicts_the_next_value():
    ds = load_dataset({"name": "sequence_parity", "seq_len": 9, "samples": 400})
    assert np.array_equal(ds.x_train[..., 0].sum(axis=1) % 2, ds.y_train)
    assert ds.n_classes == 2 and ds.class_names == ["even", "odd"]
    fc = load_dataset({"name": "sine_forecast", "noise": 0.0, "samples": 50})
    x, y = fc.x_train[..., 0].astype(np.float64), fc.y_train[:, 0]
    # a sine obeys s(t+1) = 2 cos(w) s(t) - s(t-1): recover w from the window, then predict
    two_cos = (x[:, 2] + x[:, 0]) / x[:, 1]
    np.testing.assert_allclose(two_cos * x[:, -1] - x[:, -2], y, atol=2e-3)


def test_seq_len_is_refused_by_sets_that_are_not_sequences():
    with pytest.raises(ConfigError, match="dataset 'circle' does not take seq_len"):
        load_dataset({"name": "circle", "seq_len": 5})
    with pytest.raises(ConfigError,
                       match=r"seq_len must be an integer in \[1, 10,000\] or null, received 0"):
        load_dataset({"name": "adding", "seq_len": 0})


def test_sequences_standardize_per_feature_over_every_step():
    x = np.random.default_rng(0).normal([3.0, -1.0], [2.0, 0.5], size=(400, 12, 2))
    mean, scale = standardization(x)
    assert mean.shape == (1, 2)
    np.testing.assert_allclose(mean[0], x.reshape(-1, 2).mean(axis=0), rtol=1e-5)
    ds = load_dataset({"name": "adding", "seq_len": 6, "samples": 300, "standardize": True})
    flat = ds.x_train.reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-5)


# -- time series from CSV -------------------------------------------------------------------
def _series(tmp_path, rows=30, text=None):
    path = tmp_path / "series.csv"
    body = text or "\n".join(f"{i * 0.5},{i}" for i in range(rows))
    path.write_text("temp,load\n" + body + "\n")
    return path


def test_csv_time_series_windows_every_column_and_targets_h_rows_ahead(tmp_path):
    path = _series(tmp_path)
    ds = load_dataset({"name": "file", "path": str(path), "window": 5, "horizon": 3,
                       "target": "load", "val_fraction": 0.25})
    assert ds.task == "regression" and ds.input_shape == (5, 2)
    n = 30 - 5 - 3 + 1
    assert ds.n_train + ds.n_val == n and ds.n_val == round(n * 0.25)
    # row i holds load = i: a window ending at row e targets e + 3
    for x, y in zip(ds.x_train, ds.y_train):
        assert np.array_equal(x[:, 1], np.arange(x[0, 1], x[0, 1] + 5))
        assert y[0] == x[-1, 1] + 3
        assert np.allclose(x[:, 0], x[:, 1] * 0.5)  # both columns, the target's past too
    # the validation windows are the last ones in time
    assert ds.x_val[:, 0, 1].min() > ds.x_train[:, 0, 1].max()
    assert ds.feature_names[:3] == ["temp[0]", "load[0]", "temp[1]"]
    assert ds.spec["window"] == 5 and ds.spec["horizon"] == 3


def test_a_csv_time_series_refuses_a_subsample_it_would_ignore(tmp_path):
    """A time series keeps every window in order; a subsample asked for is an error, not
    silently dropped. Without a window, the same file's rows are subsampled, and said so."""
    path = _series(tmp_path)
    with pytest.raises(ConfigError, match="does not take samples with a window"):
        load_dataset({"name": "file", "path": str(path), "window": 5, "samples": 10})
    ds = load_dataset({"name": "file", "path": str(path), "target": "load", "samples": 10})
    assert ds.n_train + ds.n_val == 10
    assert ds.notes[-1] == "a seeded subsample: 10 of its 30 rows"


def test_csv_time_series_errors_name_the_line_and_the_remedy(tmp_path):
    bad = _series(tmp_path, text="1,2\n3,x\n5,6")
    with pytest.raises(ConfigError, match="series.csv line 3: target 'load' is not a number"):
        load_dataset({"name": "file", "path": str(bad), "window": 2, "target": "load"})
    short = _series(tmp_path, rows=4)
    with pytest.raises(ConfigError, match="4 data rows: a window of 4 and a horizon of 1 need "
                                          "at least 5; lower window or horizon"):
        load_dataset({"name": "file", "path": str(short), "window": 4})
    with pytest.raises(ConfigError, match="use task 'regression'"):
        load_dataset({"name": "file", "path": str(short), "window": 2,
                      "task": "classification"})
    with pytest.raises(ConfigError, match="window must be a positive integer"):
        load_dataset({"name": "file", "path": str(short), "window": 0})
    with pytest.raises(ConfigError, match="does not take 'window'"):
        load_dataset({"name": "adding", "window": 3})
