"""Datasets: Playground-style generators, bundled real data and CSV/NPZ import.

>>> from bplab.datasets import load_dataset, dataset_names
>>> ds = load_dataset({"name": "circle", "samples": 200, "noise": 0.1})
>>> ds.task, ds.n_classes, ds.is_2d
('classification', 2, True)
"""

from bplab.datasets.base import Dataset, DatasetInfo
from bplab.datasets.bundled import data_dir
from bplab.datasets.catalog import DATASETS, dataset_names, load_dataset

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "data_dir", "dataset_names", "load_dataset"]
