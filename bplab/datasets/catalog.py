"""The built-in catalogue and :func:`load_dataset`, the one entry point for every source."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bplab.datasets.base import Dataset, DatasetInfo, check_spec, finish, streams
from bplab.datasets.bundled import BUNDLED_INFO, load_bundled
from bplab.datasets.files import chronological_split, read_data_file, resolve_path
from bplab.datasets.generated import GENERATED_INFO, GENERATORS
from bplab.datasets.sequences import SEQUENCE_INFO, SEQUENCES, step_names
from bplab.errors import ConfigError

__all__ = ["DATASETS", "dataset_names", "load_dataset"]

# Display order: Playground's four, the other toys, regressions, sequences, then real data by
# size.
DATASETS: Mapping[str, DatasetInfo] = MappingProxyType(
    {**GENERATED_INFO, **SEQUENCE_INFO, **BUNDLED_INFO})


def dataset_names() -> list[str]:
    """Names of the built-in datasets in display order (``"file"`` is not among them)."""
    return list(DATASETS)


def load_dataset(spec: Mapping[str, Any] | str, base_dir: str | Path | None = None) -> Dataset:
    """Build the dataset a spec describes; the same spec always gives the same arrays.

    ``spec``: ``{"name": "spiral", "samples": 500, "noise": 0.1, "val_fraction": 0.2,
    "seed": 0, "standardize": False}``, or for a file ``{"name": "file", "path": "data.csv",
    "target": "label", "task": "classification"}`` (a relative path is taken from
    ``base_dir``, the project file's folder). A bare name is also accepted. Bad names or
    values raise :class:`bplab.errors.ConfigError` saying what is allowed.

    ``samples`` is the number of points drawn for generated sets and a seeded, stratified
    subset for real data and files (default: all rows); ``noise`` applies to generated sets
    only.

    >>> ds = load_dataset({"name": "spiral", "samples": 200, "noise": 0.1, "seed": 3})
    >>> ds.x_train.shape, ds.y_train.dtype, ds.bounds
    ((160, 2), dtype('int64'), ((-6.0, 6.0), (-6.0, 6.0)))
    """
    checked = check_spec(spec, dataset_names())
    name = checked.name
    if checked.seq_len is not None and name not in SEQUENCES:
        sequences = ", ".join(SEQUENCES)
        extra = " (a file's time series takes 'window')" if name == "file" else ""
        raise ConfigError(
            f"dataset {name!r} does not take seq_len: only the sequence sets do "
            f"({sequences}){extra}"
        )

    if name == "file" and checked.window is not None and checked.samples is not None:
        raise ConfigError(
            "dataset 'file' does not take samples with a window: a time series keeps every "
            "window, in order (cut the file's rows to train on fewer)"
        )

    if name == "file":
        path = resolve_path(checked.path, base_dir)
        data = read_data_file(path, checked.target, checked.task, checked.window,
                              checked.horizon, ignore=checked.ignore)
        if checked.window is not None:  # a time series keeps its order: validate on the end
            x, y, validation = chronological_split(data.x, data.y, checked.val_fraction)
            return finish(
                checked, x, y, task=data.task, title=path.name,
                description=data.description, feature_names=data.feature_names,
                target_names=data.target_names, validation=validation, notes=data.notes,
            )
        return finish(
            checked, data.x, data.y, task=data.task, title=path.name,
            description=data.description, feature_names=data.feature_names,
            class_names=data.class_names, target_names=data.target_names,
            n_classes=data.n_classes, validation=data.validation, subsample=True,
            notes=data.notes,
        )

    info = DATASETS[name]
    if name in SEQUENCES:
        gen = SEQUENCES[name]
        data_rng, split_rng = streams(checked.seed)
        samples = info.samples if checked.samples is None else checked.samples
        noise = info.noise if checked.noise is None else checked.noise
        seq_len = info.seq_len if checked.seq_len is None else checked.seq_len
        x, y = gen.fn(data_rng, samples, noise, seq_len)
        return finish(
            checked, x, y, task=info.task, title=info.title, description=info.description,
            feature_names=step_names(gen.feature_names, seq_len), class_names=gen.class_names,
            target_names=["y"] if info.task == "regression" else None,
            n_classes=info.n_classes, split_rng=split_rng,
        )
    if info.kind == "generated":
        gen = GENERATORS[name]
        data_rng, split_rng = streams(checked.seed)
        samples = info.samples if checked.samples is None else checked.samples
        noise = info.noise if checked.noise is None else checked.noise
        x, y = gen.fn(data_rng, samples, noise)
        return finish(
            checked, x, y, task=info.task, title=info.title, description=info.description,
            feature_names=list(gen.feature_names), class_names=gen.class_names,
            target_names=["y"] if info.task == "regression" else None, bounds=gen.bounds,
            n_classes=info.n_classes, split_rng=split_rng,
        )

    x, y, feature_names, class_names = load_bundled(name)
    return finish(
        checked, x, y, task=info.task, title=info.title, description=info.description,
        feature_names=feature_names, class_names=class_names, n_classes=info.n_classes,
        subsample=True,
    )
