"""Datasets: generators, bundled real data, CSV/NPZ import, split and standardization."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bplab.datasets import DATASETS, Dataset, data_dir, dataset_names, load_dataset
from bplab.datasets.bundled import load_arrays
from bplab.errors import ConfigError

# Playground's plane; the sequence sets (also generated) are tested in test_sequences.py
GENERATED = [n for n in dataset_names()
             if DATASETS[n].kind == "generated" and DATASETS[n].seq_len is None]
REAL = [n for n in dataset_names() if DATASETS[n].kind == "real"]


def same(a: Dataset, b: Dataset) -> bool:
    return all(
        np.array_equal(getattr(a, k), getattr(b, k))
        for k in ("x_train", "y_train", "x_val", "y_val")
    )


# ---------------------------------------------------------------------------------------------
# catalogue and every built-in set


def test_catalogue_lists_the_required_sets_in_display_order():
    names = dataset_names()
    required = {"circle", "xor", "gaussians", "spiral", "plane", "multi_gaussian", "moons",
                "sine", "digits", "iris", "wine", "breast_cancer", "mnist_5k"}
    assert required <= set(names)
    assert names[:4] == ["circle", "xor", "gaussians", "spiral"]
    assert list(DATASETS) == names
    with pytest.raises(TypeError):
        DATASETS["mine"] = DATASETS["iris"]  # read-only catalogue
    for name in names:
        info = DATASETS[name]
        assert info.name == name and info.title and info.description
        assert info.kind in ("generated", "real") and info.task in ("classification", "regression")
        assert info.size == f"{info.samples:,}"


@pytest.mark.parametrize("name", dataset_names())
def test_every_set_matches_its_catalogue_entry(name):
    info = DATASETS[name]
    ds = load_dataset({"name": name, "val_fraction": 0.25})
    n = len(ds.x_train) + len(ds.x_val)
    assert n == info.samples
    assert len(ds.x_val) == round(info.samples * 0.25)
    assert ds.name == name and ds.task == info.task and ds.input_shape == info.input_shape
    assert ds.x_train.dtype == np.float32 and ds.x_val.dtype == np.float32
    assert ds.x_train.shape[1:] == info.input_shape and ds.x_val.shape[1:] == info.input_shape
    assert np.isfinite(ds.x_train).all() and np.isfinite(ds.x_val).all()
    assert len(ds.feature_names) == math.prod(info.input_shape)
    assert ds.is_2d == (info.input_shape == (2,))
    if ds.task == "classification":
        assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (len(ds.x_train),)
        assert ds.n_classes == info.n_classes == ds.n_outputs == len(ds.class_names)
        labels = np.concatenate([ds.y_train, ds.y_val])
        assert set(np.unique(labels)) == set(range(ds.n_classes))
    else:
        assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (len(ds.x_train), 1)
        assert ds.n_classes is None and info.n_classes is None and ds.n_outputs == 1
        assert ds.class_names is None
    if ds.is_2d:
        (x0, x1), (y0, y1) = ds.bounds
        assert x0 < x1 and y0 < y1
    if info.kind == "generated" and info.seq_len is None:
        assert ds.bounds is not None


@pytest.mark.parametrize("name", GENERATED)
def test_generated_playground_labels_and_coordinates(name):
    ds = load_dataset({"name": name, "samples": 401, "seed": 5})
    x = np.concatenate([ds.x_train, ds.x_val])
    assert len(x) == 401  # odd counts are honoured exactly
    assert np.abs(x).max() < 8.0  # Playground's plane, about [-6, 6]
    if ds.task == "classification":
        counts = np.bincount(np.concatenate([ds.y_train, ds.y_val]))
        if name != "xor":  # xor labels follow the quadrant, the others are drawn half/half
            assert sorted(counts) == [200, 201]


def test_mnist_5k_images_load_fast_in_unit_range():
    load_arrays.cache_clear()
    start = time.perf_counter()
    ds = load_dataset({"name": "mnist_5k"})
    assert time.perf_counter() - start < 1.0
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_val.shape == (1000, 1, 28, 28)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_val).tolist() == [100] * 10  # stratified: 500 per class


def test_digits_flat_and_image_views_hold_the_same_pixels():
    flat = load_dataset({"name": "digits", "seed": 3})
    images = load_dataset({"name": "digits_images", "seed": 3})
    assert flat.input_shape == (64,) and images.input_shape == (1, 8, 8)
    assert np.array_equal(flat.x_train.reshape(-1, 1, 8, 8), images.x_train)
    assert np.array_equal(flat.y_val, images.y_val)
    assert flat.x_train.max() == 1.0  # 0..16 ink counts scaled to [0, 1]
    raw = load_arrays("digits.npz")["x"]
    assert raw.dtype == np.uint8 and raw.max() == 16


def test_bundled_files_are_compact_and_plain(tmp_path):
    folder = data_dir()
    files = sorted(folder.glob("*.npz"))
    assert {f.name for f in files} >= {"iris.npz", "wine.npz", "breast_cancer.npz",
                                       "digits.npz", "mnist_5k.npz"}
    assert sum(f.stat().st_size for f in files) < 5_000_000
    assert (folder / "README.md").is_file()
    for f in files:
        with np.load(f, allow_pickle=False) as npz:
            assert all(npz[k].dtype != object for k in npz.files)


def test_real_class_names_come_from_the_sources():
    assert load_dataset("iris").class_names == ["setosa", "versicolor", "virginica"]
    assert load_dataset("breast_cancer").class_names == ["malignant", "benign"]
    wine = load_dataset("wine")
    assert wine.feature_names[0] == "alcohol" and wine.feature_names[-1] == "proline"


def test_package_does_not_import_sklearn_or_mlxtend():
    code = (
        "import sys; from bplab.datasets import load_dataset, dataset_names\n"
        "[load_dataset(n) for n in dataset_names()]\n"
        "assert 'sklearn' not in sys.modules and 'mlxtend' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# determinism and the split


@pytest.mark.parametrize("name", dataset_names())
def test_same_spec_same_arrays_other_seed_other_arrays(name):
    spec = {"name": name, "samples": 120 if name in GENERATED else None, "seed": 7}
    spec = {k: v for k, v in spec.items() if v is not None}
    a, b = load_dataset(spec), load_dataset(dict(spec))
    assert same(a, b)
    c = load_dataset({**spec, "seed": 8})
    assert not same(a, c)
    # the normalised spec given back reproduces the set
    assert same(a, load_dataset(a.spec))


def test_val_fraction_does_not_move_generated_points():
    a = load_dataset({"name": "spiral", "samples": 100, "noise": 0.2, "val_fraction": 0.1})
    b = load_dataset({"name": "spiral", "samples": 100, "noise": 0.2, "val_fraction": 0.4})
    def rows(ds):
        return sorted(map(tuple, np.concatenate([ds.x_train, ds.x_val]).tolist()))

    assert rows(a) == rows(b)
    assert (len(a.x_val), len(b.x_val)) == (10, 40)


def test_split_is_stratified_and_shuffled():
    ds = load_dataset({"name": "iris", "val_fraction": 0.2, "seed": 11})
    assert np.bincount(ds.y_val).tolist() == [10, 10, 10]
    assert np.bincount(ds.y_train).tolist() == [40, 40, 40]
    # generated sets come out class by class; the split must mix them
    circle = load_dataset({"name": "circle", "samples": 200, "val_fraction": 0.0})
    assert len(circle.x_val) == 0 and circle.x_val.shape == (0, 2)
    assert 0 < circle.y_train[:100].mean() < 1


def test_train_and_val_do_not_overlap_and_cover_all_rows():
    ds = load_dataset({"name": "wine", "val_fraction": 0.3, "seed": 2})
    full = load_arrays("wine.npz")["x"].astype(np.float32)
    train = {r.tobytes() for r in ds.x_train}
    val = {r.tobytes() for r in ds.x_val}
    assert not train & val
    assert train | val == {r.tobytes() for r in full}


def test_target_divisor_divides_a_regressions_targets_and_names_them():
    sine = load_dataset({"name": "sine", "samples": 100})
    tenth = load_dataset({"name": "sine", "samples": 100, "target_divisor": 10})
    np.testing.assert_allclose(tenth.y_train * 10, sine.y_train, rtol=1e-6)
    np.testing.assert_allclose(tenth.y_val * 10, sine.y_val, rtol=1e-6)
    np.testing.assert_array_equal(tenth.x_train, sine.x_train)
    assert tenth.target_names == ["y / 10"] and tenth.spec["target_divisor"] == 10
    with pytest.raises(ConfigError, match="'iris' is a classification: target_divisor"):
        load_dataset({"name": "iris", "target_divisor": 10})
    with pytest.raises(ConfigError, match="target_divisor"):
        load_dataset({"name": "sine", "target_divisor": 0})


def test_samples_subsamples_real_data_stratified():
    ds = load_dataset({"name": "mnist_5k", "samples": 1000, "val_fraction": 0.2})
    assert len(ds.x_train) == 800 and len(ds.x_val) == 200
    assert np.bincount(ds.y_val, minlength=10).tolist() == [20] * 10
    with pytest.raises(ConfigError, match="at most 150 for dataset 'iris', received 151"):
        load_dataset({"name": "iris", "samples": 151})
    assert ds.notes == ("a seeded, stratified subsample: 1,000 of its 5,000 rows",)
    assert load_dataset({"name": "mnist_5k", "val_fraction": 0.2}).notes == ()


# ---------------------------------------------------------------------------------------------
# noise: what each generator's noise means (Playground's dataset.ts)


def all_rows(ds):
    return np.concatenate([ds.x_train, ds.x_val]).astype(np.float64), np.concatenate(
        [ds.y_train, ds.y_val])


def test_circle_noise_blurs_the_labels_only():
    x, y = all_rows(load_dataset({"name": "circle", "samples": 600, "noise": 0.0}))
    r = np.hypot(x[:, 0], x[:, 1])
    assert np.array_equal(y, (r < 2.5).astype(int))
    assert r.max() <= 5.0 and not np.any((r > 2.5) & (r < 3.5))
    x, y = all_rows(load_dataset({"name": "circle", "samples": 600, "noise": 0.4}))
    r = np.hypot(x[:, 0], x[:, 1])
    assert not np.any((r > 2.5) & (r < 3.5))  # points stay where they were drawn
    assert 0 < np.mean(y != (r < 2.5)) < 0.5  # some labels flip near the boundary


def test_xor_noise_blurs_the_labels_only():
    x, y = all_rows(load_dataset({"name": "xor", "samples": 600, "noise": 0.0}))
    assert np.array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(int))
    assert np.abs(x).min() >= 0.3 - 1e-6 and np.abs(x).max() <= 5.3 + 1e-6  # the padding
    x, y = all_rows(load_dataset({"name": "xor", "samples": 600, "noise": 0.3}))
    assert 0 < np.mean(y != (x[:, 0] * x[:, 1] >= 0)) < 0.5


def test_gaussians_noise_widens_the_clusters():
    def spread(noise):
        x, y = all_rows(load_dataset({"name": "gaussians", "samples": 2000, "noise": noise}))
        centred = x - np.where(y[:, None] == 1, 2.0, -2.0)
        return centred.var(axis=0).mean()

    assert spread(0.0) == pytest.approx(0.5, rel=0.15)  # Playground: variance 0.5 ... 4
    assert spread(0.5) == pytest.approx(4.0, rel=0.15)


def test_spiral_noise_moves_points_off_the_arms():
    def off_arm(noise):
        x, y = all_rows(load_dataset({"name": "spiral", "samples": 400, "noise": noise}))
        # on arm 1 (label 1): x = r sin(t), y = r cos(t) with t = 1.75 * 2 pi * r / 5
        arm = x[y == 1]
        r = np.hypot(arm[:, 0], arm[:, 1])
        t = 1.75 * 2 * np.pi * r / 5
        return np.abs(arm - np.stack([r * np.sin(t), r * np.cos(t)], axis=1)).max()

    assert off_arm(0.0) < 1e-5
    assert off_arm(0.3) > 0.05


def test_moons_lie_on_half_circles_without_noise():
    x, y = all_rows(load_dataset({"name": "moons", "samples": 300, "noise": 0.0}))
    unit = x / 3.5 + [0.5, 0.25]  # undo the documented scaling
    upper, lower = unit[y == 0], unit[y == 1]
    assert np.allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-5)
    assert np.allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, atol=1e-5)
    noisy, _ = all_rows(load_dataset({"name": "moons", "samples": 300, "noise": 0.2}))
    assert not np.allclose(np.sort(noisy, axis=0), np.sort(x, axis=0), atol=0.1)


def playground_multi_gaussian(px: float, py: float) -> float:
    """Playground's regressGaussian getLabel, one point at a time."""
    bumps = [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1),
             (4, -2.5, -1)]
    label = 0.0
    for cx, cy, sign in bumps:
        value = sign * min(max(1 - math.hypot(px - cx, py - cy) / 2, 0.0), 1.0)
        if abs(value) > abs(label):
            label = value
    return label


def test_regression_targets_follow_playground_without_noise():
    x, y = all_rows(load_dataset({"name": "plane", "samples": 300, "noise": 0.0}))
    assert np.allclose(y[:, 0], (x[:, 0] + x[:, 1]) / 10, atol=1e-5)
    x, y = all_rows(load_dataset({"name": "multi_gaussian", "samples": 300, "noise": 0.0}))
    expected = [playground_multi_gaussian(a, b) for a, b in x]
    assert np.allclose(y[:, 0], expected, atol=1e-5)
    assert np.any(y > 0.5) and np.any(y < -0.5)
    x, y = all_rows(load_dataset({"name": "sine", "samples": 300, "noise": 0.0}))
    assert np.allclose(y[:, 0], np.sin(x[:, 0]), atol=1e-5)


@pytest.mark.parametrize("name", ["plane", "multi_gaussian", "sine"])
def test_regression_noise_perturbs_targets(name):
    x, y = all_rows(load_dataset({"name": name, "samples": 300, "noise": 0.2}))
    if name == "plane":
        clean = (x[:, 0] + x[:, 1]) / 10
    elif name == "multi_gaussian":
        clean = np.array([playground_multi_gaussian(a, b) for a, b in x])
    else:
        clean = np.sin(x[:, 0])
    err = np.abs(y[:, 0] - clean)
    assert err.max() > 0.05 and err.mean() < 0.5


# ---------------------------------------------------------------------------------------------
# standardization


@pytest.mark.parametrize("name", ["wine", "circle", "sine"])
def test_standardize_uses_training_statistics_only(name):
    raw = load_dataset({"name": name, "seed": 4, "val_fraction": 0.3})
    std = load_dataset({"name": name, "seed": 4, "val_fraction": 0.3, "standardize": True})
    assert np.array_equal(raw.y_train, std.y_train)  # standardizing does not move the split
    mean = raw.x_train.astype(np.float64).mean(axis=0)
    scale = raw.x_train.astype(np.float64).std(axis=0)
    assert np.allclose(std.x_train, (raw.x_train - mean) / scale, atol=1e-4)
    assert np.allclose(std.x_val, (raw.x_val - mean) / scale, atol=1e-4)
    assert np.allclose(std.x_train.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(std.x_train.std(axis=0), 1, atol=1e-3)
    # validation rows are NOT re-centred on their own statistics
    both = np.concatenate([raw.x_train, raw.x_val]).astype(np.float64)
    assert not np.allclose(std.x_val, (raw.x_val - both.mean(0)) / both.std(0), atol=1e-4)
    assert std.x_train.dtype == np.float32 and std.x_val.dtype == np.float32
    assert np.allclose(std.transform(raw.x_val), std.x_val, atol=1e-6)
    if raw.bounds is not None:
        lo = std.transform(np.array([[b[0] for b in raw.bounds]]))[0]
        assert np.allclose([b[0] for b in std.bounds], lo, atol=1e-5)


def test_standardize_images_per_channel_and_constant_features():
    ds = load_dataset({"name": "mnist_5k", "samples": 500, "standardize": True})
    assert ds.mean.shape == (1, 1, 1) and ds.scale.shape == (1, 1, 1)
    assert abs(float(ds.x_train.mean())) < 1e-3 and abs(float(ds.x_train.std()) - 1) < 1e-3
    flat = load_dataset({"name": "digits", "standardize": True})
    assert np.isfinite(flat.x_train).all()  # always-blank corner pixels: scale 1, not 0/0


# ---------------------------------------------------------------------------------------------
# spec errors


@pytest.mark.parametrize("spec, message", [
    ({"name": "spirals"}, "unknown dataset 'spirals': choose one of circle, xor"),
    ({}, "no 'name'"),
    ({"name": "spiral", "val_fraction": 1.5}, r"val_fraction must be in \[0, 1\), received 1.5"),
    ({"name": "spiral", "val_fraction": -0.1}, "val_fraction must be in"),
    ({"name": "spiral", "noise": -0.1}, r"noise must be a fraction in \[0, 1\]"),
    ({"name": "spiral", "noise": 10}, "received 10"),
    ({"name": "spiral", "samples": 0}, "samples must be an integer"),
    ({"name": "spiral", "samples": 10.5}, "received 10.5"),
    ({"name": "spiral", "samples": True}, "received True"),
    ({"name": "spiral", "seed": -1}, "seed must be a non-negative integer"),
    ({"name": "spiral", "standardize": "yes"}, "standardize must be true or false"),
    ({"name": "spiral", "nosie": 0.1}, "does not take 'nosie'"),
    ({"name": "iris", "path": "x.csv"}, "are for name 'file'"),
    ({"name": "file"}, "needs a 'path'"),
    ({"name": "file", "path": "a.csv", "task": "clustering"}, "task must be"),
    ({"name": "spiral", "samples": 1, "val_fraction": 0.9}, "no training rows"),
    (["spiral"], "must be a mapping"),
])
def test_bad_specs_raise_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset(spec)


# ---------------------------------------------------------------------------------------------
# CSV import


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_string_labels_become_sorted_class_ids(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5},{['dog', 'cat', 'eel'][i % 3]}" for i in range(30))
    write(tmp_path, "pets.csv", "x1,x2,animal\n" + rows + "\n")
    ds = load_dataset({"name": "file", "path": "pets.csv", "val_fraction": 0.2},
                      base_dir=tmp_path)
    assert ds.task == "classification" and ds.n_classes == 3
    assert ds.class_names == ["cat", "dog", "eel"]
    assert ds.feature_names == ["x1", "x2"] and ds.input_shape == (2,)
    assert ds.is_2d and ds.bounds is not None
    # each row keeps its own label: x1 = i, label = ["dog", "cat", "eel"][i % 3]
    for x, y in zip(np.concatenate([ds.x_train, ds.x_val]), np.concatenate([ds.y_train,
                                                                           ds.y_val])):
        assert ds.class_names[y] == ["dog", "cat", "eel"][int(x[0]) % 3]
    assert np.bincount(ds.y_val).tolist() == [2, 2, 2]


def test_csv_target_column_by_name_and_regression_rule(tmp_path):
    rows = "\n".join(f"{i},{i * 0.25 + 0.1},{i % 2},{i * 3}" for i in range(40))
    write(tmp_path, "t.csv", "a,price,flag,b\n" + rows)
    # default target: the last column, integers with 40 distinct values -> regression
    last = load_dataset({"name": "file", "path": "t.csv"}, base_dir=tmp_path)
    assert last.task == "regression" and last.target_names == ["b"]
    assert last.feature_names == ["a", "price", "flag"] and last.y_train.shape[1] == 1
    # a float column -> regression
    price = load_dataset({"name": "file", "path": "t.csv", "target": "price"},
                         base_dir=tmp_path)
    assert price.task == "regression" and price.feature_names == ["a", "flag", "b"]
    assert np.allclose(price.y_train[:, 0], price.x_train[:, 0] * 0.25 + 0.1, atol=1e-5)
    # few distinct integers -> classification, with the integers as class names
    flag = load_dataset({"name": "file", "path": "t.csv", "target": "flag"},
                        base_dir=tmp_path)
    assert flag.task == "classification" and flag.class_names == ["0", "1"]
    assert np.array_equal(flag.y_train, flag.x_train[:, 0].astype(int) % 2)
    # forced
    forced = load_dataset({"name": "file", "path": "t.csv", "target": "flag",
                           "task": "regression"}, base_dir=tmp_path)
    assert forced.task == "regression" and forced.y_train.dtype == np.float32
    both = load_dataset({"name": "file", "path": "t.csv", "target": ["price", "b"]},
                        base_dir=tmp_path)
    assert both.n_outputs == 2 and both.feature_names == ["a", "flag"]
    with pytest.raises(ConfigError, match="no column 'label' .*'a', 'price', 'flag', 'b'"):
        load_dataset({"name": "file", "path": "t.csv", "target": "label"}, base_dir=tmp_path)


def test_csv_negative_integer_labels_map_to_class_ids(tmp_path):
    write(tmp_path, "pm.csv", "x,y\n" + "\n".join(f"{i},{1 if i % 2 else -1}" for i in range(10)))
    ds = load_dataset({"name": "file", "path": "pm.csv"}, base_dir=tmp_path)
    assert ds.class_names == ["-1", "1"]
    assert np.array_equal(ds.y_train, ds.x_train[:, 0].astype(int) % 2)


def test_csv_semicolons_bom_blank_lines_and_quotes(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_bytes("\ufeffa;b;\"kind\"\n1;2;x\n\n3;4;y\n5;6;\"x\"\n\n".encode())
    ds = load_dataset({"name": "file", "path": str(path), "val_fraction": 0.0})
    assert ds.feature_names == ["a", "b"] and ds.class_names == ["x", "y"]
    assert len(ds.x_train) == 3


@pytest.mark.parametrize("text, message", [
    ("x1,x2,label\n1,2,a\n3,4\n",
     "bad.csv line 3: expected 3 values like the header on line 1, found 2"),
    ("x1,x2,label\n1,2,a\n3,4,b\n\n5,abc,a\n",
     r"bad.csv line 5: column 'x2' is not a number: 'abc'"),
    ("x1,x2,label\n1,2,a\n3,inf,b\n", r"bad.csv line 3: column 'x2' is not a finite number"),
    ("x1,x2,label\n1,2,\n3,4, \n", r"bad.csv line 2: the target 'label' is empty in every row"),
    ("x1,x2,label\n1,2,a\n3,4,b\n5,6,c\n7,unknown,a\n",
     r"line 5: column 'x2' is not a number: 'unknown' \(an empty cell, NA"),
    ("x1,name,label\nNA,ann,a\n?,bob,b\n,cid,c\n",
     "no column can be a feature: x1 \\(no values\\)"),
    ("", "bad.csv is empty"),
    ("\n  \n", "bad.csv is empty"),
    ("x1,x2,label\n", "has a header but no data rows"),
    ("x,x,label\n1,2,3\n", "repeats x"),
    ("label\n1\n2\n", "at least one feature column"),
])
def test_malformed_csv_names_the_line(tmp_path, text, message):
    write(tmp_path, "bad.csv", text)
    with pytest.raises(ConfigError, match=message):
        load_dataset({"name": "file", "path": "bad.csv"}, base_dir=tmp_path)


def test_csv_text_labels_cannot_be_regression_targets(tmp_path):
    write(tmp_path, "r.csv", "x,y\n1,2.5\n2,3.5\n3,lots\n")
    with pytest.raises(ConfigError, match=r"r.csv line 4: target 'y' is not a number: 'lots'"):
        load_dataset({"name": "file", "path": "r.csv", "task": "regression"}, base_dir=tmp_path)


def test_missing_file_names_the_resolved_path(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as err:
        load_dataset({"name": "file", "path": "nowhere/data.csv"}, base_dir=tmp_path)
    assert str(tmp_path / "nowhere" / "data.csv") in str(err.value)


def test_relative_paths_resolve_against_base_dir(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    write(project / "data", "d.csv", "a,b\n" + "\n".join(f"{i},{i % 2}" for i in range(10)))
    monkeypatch.chdir(tmp_path)  # the working folder must not matter
    ds = load_dataset({"name": "file", "path": "data/d.csv"}, base_dir=project)
    assert ds.n_train + ds.n_val == 10
    absolute = load_dataset({"name": "file", "path": str(project / "data" / "d.csv")},
                            base_dir=tmp_path / "elsewhere")
    assert same(ds, absolute)
    with pytest.raises(ConfigError, match="does not exist"):
        load_dataset({"name": "file", "path": "data/d.csv"}, base_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# NPZ import


def test_npz_with_its_own_validation_rows(tmp_path, rng):
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = rng.integers(0, 4, 50)
    xv, yv = rng.normal(size=(7, 3)), rng.integers(0, 4, 7)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_val=xv, y_val=yv)
    ds = load_dataset({"name": "file", "path": "d.npz", "val_fraction": 0.5}, base_dir=tmp_path)
    assert ds.task == "classification" and ds.n_classes == int(max(y.max(), yv.max())) + 1
    assert len(ds.x_train) == 50 and np.array_equal(ds.x_val, xv.astype(np.float32))
    assert np.array_equal(ds.y_val, yv)
    order = np.argsort(ds.x_train[:, 0])
    assert np.array_equal(ds.x_train[order], x[np.argsort(x[:, 0])])


def test_npz_split_images_and_regression(tmp_path, rng):
    np.savez(tmp_path / "img.npz", x_train=rng.integers(0, 255, (40, 6, 6), dtype=np.uint8),
             y_train=np.repeat(np.array(["no", "yes"]), 20))
    ds = load_dataset({"name": "file", "path": "img.npz", "val_fraction": 0.25},
                      base_dir=tmp_path)
    assert ds.input_shape == (1, 6, 6) and ds.class_names == ["no", "yes"]
    assert len(ds.x_val) == 10 and np.bincount(ds.y_val).tolist() == [5, 5]
    np.savez(tmp_path / "reg.npz", x_train=rng.normal(size=(30, 2)),
             y_train=rng.normal(size=(30, 2)))
    reg = load_dataset({"name": "file", "path": "reg.npz"}, base_dir=tmp_path)
    assert reg.task == "regression" and reg.n_outputs == 2 and reg.y_val.shape == (6, 2)


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((3, 2))}, "lacks y_train"),
    ({"features": np.zeros((3, 2))}, "lacks x_train and y_train.*holds features"),
    ({"x_train": np.zeros((3, 2)), "y_train": np.zeros(4, int)},
     "x_train has 3 rows but y_train has 4"),
    ({"x_train": np.zeros((3, 2)), "y_train": np.zeros(3, int), "x_val": np.zeros((2, 2))},
     "has x_val but no y_val"),
    ({"x_train": np.zeros((3, 2)), "y_train": np.zeros(3, int), "x_val": np.zeros((2, 5)),
      "y_val": np.zeros(2, int)}, r"x_val rows have shape \(5,\)"),
    ({"x_train": np.array([[1.0, np.nan]]), "y_train": np.zeros(1, int)}, "row 0 holds a NaN"),
    ({"x_train": np.array([["a", "b"]]), "y_train": np.zeros(1, int)}, "must hold numbers"),
])
def test_malformed_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConfigError, match=message):
        load_dataset({"name": "file", "path": "bad.npz"}, base_dir=tmp_path)


def test_npz_object_arrays_are_refused(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = [1.0, 2.0], [3.0]
    np.savez(tmp_path / "obj.npz", x_train=ragged, y_train=np.zeros(2, int))
    with pytest.raises(ConfigError, match="holds Python objects.*allow_pickle=False"):
        load_dataset({"name": "file", "path": "obj.npz"}, base_dir=tmp_path)


def test_not_an_npz(tmp_path):
    (tmp_path / "fake.npz").write_text("x,y\n1,2\n")
    with pytest.raises(ConfigError, match="fake.npz is not a readable .npz file"):
        load_dataset({"name": "file", "path": "fake.npz"}, base_dir=tmp_path)


def test_data_dir_is_the_checkout_resources_folder():
    import bplab

    repo_root = Path(bplab.__file__).resolve().parent.parent
    assert data_dir() == repo_root / "resources" / "data"


def test_flat_pixel_rows_know_their_picture(tmp_path):
    """Flat rows of pixels are drawn as images (the gallery, the data preview): the bundled
    flat digits by their pixel_R_C names, a Kaggle-style CSV by pixel0 ... pixelN."""
    digits = load_dataset({"name": "digits"})
    assert digits.input_shape == (64,) and digits.picture_shape == (8, 8)
    assert load_dataset({"name": "digits_images"}).picture_shape is None  # already images
    assert load_dataset({"name": "breast_cancer"}).picture_shape is None
    rng = np.random.default_rng(0)
    header = "label," + ",".join(f"pixel{i}" for i in range(16))
    rows = [f"{i % 2}," + ",".join(str(v) for v in rng.integers(0, 255, 16)) for i in range(20)]
    write(tmp_path, "mnist.csv", header + "\n" + "\n".join(rows) + "\n")
    ds = load_dataset({"name": "file", "path": "mnist.csv", "target": "label"},
                      base_dir=tmp_path)
    assert ds.input_shape == (16,) and ds.picture_shape == (4, 4)


@pytest.mark.parametrize("names, expected", [
    ([f"pixel_{r}_{c}" for r in range(3) for c in range(5)], (3, 5)),
    ([f"pixel{i}" for i in range(1, 17)], (4, 4)),  # counted from 1
    ([f"Pixel_{i}" for i in range(25)], (5, 5)),
    ([f"pixel{i}" for i in range(15)], None),  # not a square
    ([f"pixel{i}" for i in range(2, 18)], None),  # starts at 2
    ([f"pixel_{r}_{c}" for c in range(4) for r in range(4)], None),  # column by column
    ([*(f"pixel{i}" for i in range(15)), "age"], None),
    (["pixel0", "pixel1", "pixel2", "pixel3"], None),  # 2x2: too small to be a picture
])
def test_picture_shape_reads_pixel_names_in_row_order(names, expected):
    from bplab.datasets.base import picture_shape

    assert picture_shape((len(names),), names) == expected
    assert picture_shape((1, 1, len(names)), names) is None  # only flat samples


def test_sequence_sets_name_their_step_features():
    assert load_dataset({"name": "adding", "samples": 50}).step_features == ["value", "marker"]
    assert load_dataset({"name": "sine_forecast", "samples": 50}).step_features == ["x"]
    assert load_dataset({"name": "digits"}).step_features is None
    assert load_dataset({"name": "spiral"}).step_features is None
    from bplab.datasets.base import step_features

    assert step_features((2, 1), ["x[1]", "x[0]"]) is None  # out of order
    assert step_features((3,), ["x[0]", "x[1]", "x[2]"]) is None  # flat, not a sequence


def test_csv_columns_lists_the_header_as_the_reader_names_it(tmp_path):
    from bplab.datasets.files import HEADER_BYTES, csv_columns, read_data_file

    path = tmp_path / "semi.csv"
    path.write_bytes("\ufeff\n\nlabel; a ;;b\n1;2;3;4\n0;5;6;7\n".encode())
    assert csv_columns(path) == ["label", "a", "column 3", "b"]
    data = read_data_file(path, "label", None)  # the same names as the reader's
    assert data.feature_names == ["a", "column 3", "b"]
    big = tmp_path / "big.csv"  # more than the part csv_columns reads
    row = ",".join(["1.5"] * 50) + "\n"
    header = ",".join(f"x{i}" for i in range(50)) + "\n"
    big.write_text(header + row * (HEADER_BYTES // len(row) + 10))
    assert csv_columns(big) == [f"x{i}" for i in range(50)]
    (tmp_path / "empty.csv").write_text("\n \n")
    with pytest.raises(ConfigError, match="empty"):
        csv_columns(tmp_path / "empty.csv")
    with pytest.raises(ConfigError, match="cannot read"):
        csv_columns(tmp_path / "missing.csv")


@pytest.mark.parametrize(("columns", "guess"), [
    (["label", "pixel0", "pixel1"], "label"),
    (["PassengerId", "Survived", "Target", "Age"], "Target"),
    (["x1", "x2", "y"], None),  # the last column: the default already
    (["x", "Class", "label", "z"], None),  # two candidates: no guess
    (["a", "b", "c"], None),
])
def test_guess_target_picks_the_one_column_named_like_labels(columns, guess):
    from bplab.datasets.files import guess_target

    assert guess_target(columns) == guess


def test_a_csv_of_real_world_columns_is_encoded_filled_and_said_so(tmp_path):
    """Titanic-like: text columns become one-hot columns (a missing cell: 0 in all), a name
    per row is left out, missing ages take the column's mean, a row without its label is
    left out, and the data set's notes say each of these."""
    write(tmp_path, "t.csv", "id,Survived,Name,Sex,Age,Embarked\n"
          "1,0,\"Braund, Mr. Owen\",male,22,S\n"
          "2,1,\"Cumings, Mrs. John\",female,38,C\n"
          "3,1,\"Heikkinen, Miss. Laina\",female,,S\n"
          "4,1,\"Futrelle, Mrs. Jacques\",female,NaN,S\n"
          "5,0,\"Allen, Mr. William\",male,35,\n"
          "6,NA,\"Moran, Mr. James\",male,27,Q\n")
    ds = load_dataset({"name": "file", "path": "t.csv", "target": "Survived",
                       "val_fraction": 0.0}, base_dir=tmp_path)
    assert ds.feature_names == ["id", "Sex=female", "Sex=male", "Age", "Embarked=C",
                                "Embarked=S"]
    order = np.argsort(ds.x_train[:, 0])
    x, y = ds.x_train[order], ds.y_train[order]
    mean = (22 + 38 + 35) / 3
    np.testing.assert_allclose(x, np.array([
        [1, 0, 1, 22, 0, 1], [2, 1, 0, 38, 1, 0], [3, 1, 0, mean, 0, 1],
        [4, 1, 0, mean, 0, 1], [5, 0, 1, 35, 0, 0]], np.float32), rtol=1e-6)
    assert y.tolist() == [0, 1, 1, 1, 0] and ds.task == "classification"
    assert ds.notes == (
        "1 row without a target left out",
        "one-hot: Sex (2 values), Embarked (2 values, 1 missing)",
        f"missing values filled: Age (2 with its mean {mean:.4g})",
        "left out: Name (text, a different value in every row)")
    assert all(note in ds.description for note in ds.notes)


def test_csv_text_columns_with_many_values_are_left_out_and_none_is_a_class(tmp_path):
    rows = [f"{i},w{i % 25},{'none' if i % 2 else 'mild'}" for i in range(50)]
    write(tmp_path, "m.csv", "x,word,severity\n" + "\n".join(rows) + "\n")
    ds = load_dataset({"name": "file", "path": "m.csv", "val_fraction": 0.0}, base_dir=tmp_path)
    assert ds.feature_names == ["x"] and ds.class_names == ["mild", "none"]
    assert ds.notes == ("left out: word (text, 25 different values)",)
    assert len(ds.x_train) == 50  # "none" is a label, not a missing one


def test_a_time_series_with_a_missing_target_is_refused(tmp_path):
    write(tmp_path, "s.csv", "t,load\n" + "".join(f"{i},{i % 7}\n" for i in range(9))
          + "9,\n10,3\n")
    with pytest.raises(ConfigError, match=r"s.csv line 11: the target 'load' is empty"):
        load_dataset({"name": "file", "path": "s.csv", "window": 3}, base_dir=tmp_path)


def test_npz_images_stored_channels_last_are_read_channels_first(tmp_path):
    """Keras' CIFAR-10 is (N, 32, 32, 3): bplab's convolutions take (N, C, H, W), as torch's,
    so such images are moved, and the data set's notes say so; (N, C, H, W) stays."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 6, 3)).astype(np.uint8)
    y = rng.integers(0, 2, 12)
    np.savez(tmp_path / "hwc.npz", x_train=x, y_train=y, x_val=x[:4], y_val=y[:4])
    ds = load_dataset({"name": "file", "path": "hwc.npz"}, base_dir=tmp_path)
    assert ds.input_shape == (3, 8, 6)
    assert ds.notes == ("images (N, H, W, C) (8, 6, 3) read as (N, C, H, W)",)
    by_sample = {tuple(r.ravel()): r for r in ds.x_val}
    assert all(tuple(x[i].transpose(2, 0, 1).astype(np.float32).ravel()) in by_sample
               for i in range(4))
    np.savez(tmp_path / "chw.npz", x_train=x.transpose(0, 3, 1, 2), y_train=y)
    ds = load_dataset({"name": "file", "path": "chw.npz"}, base_dir=tmp_path)
    assert ds.input_shape == (3, 8, 6) and ds.notes == ()


def test_csv_columns_the_project_leaves_out(tmp_path):
    write(tmp_path, "t.csv", "id,a,b,label\n1,0.5,2,x\n2,0.1,3,y\n3,0.7,1,x\n")
    spec = {"name": "file", "path": "t.csv", "val_fraction": 0.0}
    ds = load_dataset({**spec, "ignore": ["id"]}, base_dir=tmp_path)
    assert ds.feature_names == ["a", "b"] and ds.notes == ("left out by the project: id",)
    assert load_dataset({**spec, "ignore": "b"}, base_dir=tmp_path).feature_names == ["id", "a"]
    with pytest.raises(ConfigError, match="has no column 'nope' to leave out"):
        load_dataset({**spec, "ignore": "nope"}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="'label' is the target, it cannot be left out"):
        load_dataset({**spec, "ignore": ["label"]}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="besides the target and the columns left out"):
        load_dataset({**spec, "ignore": ["id", "a", "b"]}, base_dir=tmp_path)
    np.savez(tmp_path / "d.npz", x_train=np.ones((4, 2)), y_train=np.arange(4) % 2)
    with pytest.raises(ConfigError, match="ignore leaves out columns of a CSV file"):
        load_dataset({"name": "file", "path": "d.npz", "ignore": "x"}, base_dir=tmp_path)
