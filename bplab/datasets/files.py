"""User data from a CSV or NPZ file: ``{"name": "file", "path": "data.csv", "target": "label"}``.

CSV (any suffix but ``.npz``): a header row, then one row per sample, separated by commas
(or by semicolons or tabs when the header has those and no comma). ``target`` names the label
column (default: the last one; a list of names gives a multi-output regression); every other
column is a feature. Blank lines are skipped. Real files are rarely all numbers:

* an empty cell, ``NA``, ``N/A``, ``NaN``, ``null``, ``None`` or ``?`` is a missing value: a
  number column fills it with the column's mean; a row whose target is missing is left out
  (there, ``None`` is a class like any other);
* a text column with at most 20 different values (``sex``, ``embarked``) becomes one 0/1
  column per value (``sex=female``, ``sex=male``); one with more, or with a different value
  in every row (names, tickets), is left out;
* the data set's description says what was filled, encoded and left out.

The task is

* classification when any label is text (class ids follow the sorted distinct labels), or
  when every label is an integer and there are at most 20 distinct values;
* regression otherwise.

``"ignore"`` names columns that are not features (an id, a date): they are left out.
``"task"`` in the spec overrides the guess. Mistakes are reported with the file's line
number: ``data.csv line 7: column 'x2' is not a number: 'abc'``.

A time series (``"window": W``, optionally ``"horizon": H``, default 1): the CSV's rows are
consecutive times. Each sample is a window of W consecutive rows of every column (the target's
own past included), shaped (W, columns) for a recurrent network, and its target is the target
column H rows after the window's last row: a regression. The last ``val_fraction`` of the
windows, in time order, are the validation set, so the network is judged on a later stretch
than it trained on.

NPZ: arrays ``x_train`` and ``y_train``, optionally ``x_val`` and ``y_val`` (then
``val_fraction`` is not used), ``feature_names`` and ``class_names``; loaded with
``allow_pickle=False``, so object arrays are refused. ``x`` of shape (N,) becomes (N, 1),
(N, H, W) becomes images (N, 1, H, W), and images stored channels last, (N, H, W, C) with 1, 3
or 4 channels as Keras and PIL keep them, become (N, C, H, W). Integer, boolean or text
``y`` of shape (N,) means classification, anything else regression (again, ``"task"``
overrides). ``target`` is not
used for NPZ files. Non-negative integer labels are kept as class ids (class k stays k);
negative or text labels are numbered in sorted order.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bplab.errors import ConfigError
from bplab.io.loading import decode_text, read_npz, read_text

__all__ = ["MAX_CLASSES", "MAX_CLASS_VALUES", "FileData", "chronological_split", "column_names",
           "csv_columns", "guess_target", "read_data_file", "resolve_path"]

# An all-integer numeric target with at most this many distinct values is read as class ids.
MAX_CLASS_VALUES = 20
# The most classes a data set may have (an id of 10**9 would ask for a billion outputs).
MAX_CLASSES = 100_000


@dataclass
class FileData:
    """What a file gave: all rows (plus its own validation rows, if any) and their names."""

    x: np.ndarray
    y: np.ndarray
    task: str
    feature_names: list[str]
    class_names: list[str] | None
    target_names: list[str] | None
    n_classes: int | None
    description: str
    validation: tuple[np.ndarray, np.ndarray] | None = None
    notes: tuple[str, ...] = ()  # what reading the file changed (see _features)


def resolve_path(path: str, base_dir: str | Path | None) -> Path:
    """``path`` as given when absolute, else relative to ``base_dir`` (the project's folder)."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p.absolute()


def read_data_file(path: Path, target, task: str | None, window: int | None = None,
                   horizon: int = 1, ignore=None) -> FileData:
    """The file's rows (see the module); ``ignore``: a CSV's column name, or names, that
    are not features."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"data file {path} {what}")
    if path.suffix.lower() == ".npz":
        if window is not None:
            raise ConfigError(f"{path.name}: window reads a time series from a CSV file; an "
                              ".npz brings its own arrays (give x_train the shape (N, time, "
                              "features) instead)")
        if ignore is not None:
            raise ConfigError(f"{path.name}: ignore leaves out columns of a CSV file; an .npz "
                              "brings its own arrays (save x_train without them instead)")
        return _read_npz(path, task)
    ignored = column_names(ignore)
    if window is None:
        return _read_csv(path, target, task, series=False, ignore=ignored)
    if task == "classification":
        raise ConfigError(f"{path.name}: a time series window predicts a value: use task "
                          "'regression' (or leave it empty), or drop window")
    return _windows(path, _read_csv(path, target, "regression", series=True, ignore=ignored),
                    window, horizon)


def _windows(path: Path, data: FileData, window: int, horizon: int) -> FileData:
    """Every window of ``window`` consecutive rows of all columns, and the target ``horizon``
    rows after each window's last row."""
    series = np.concatenate([data.x, data.y], axis=1)  # the target's past is an input too
    names = [*data.feature_names, *data.target_names]
    rows = len(series)
    n = rows - window - horizon + 1
    if n < 1:
        raise ConfigError(
            f"{path.name} has {rows:,} data rows: a window of {window} and a horizon of "
            f"{horizon} need at least {window + horizon}; lower window or horizon"
        )
    x = np.lib.stride_tricks.sliding_window_view(series, window, axis=0)[:n]
    x = np.ascontiguousarray(x.transpose(0, 2, 1))  # (n, window, columns)
    y = data.y[window - 1 + horizon:window - 1 + horizon + n]
    description = (
        f"{path} ({rows:,} rows: {n:,} windows of {window} steps x {len(names)} columns, "
        f"target {', '.join(data.target_names)} {horizon} step{'s' if horizon > 1 else ''} "
        "ahead)"
    )
    step_names = [f"{name}[{t}]" for t in range(window) for name in names]
    return FileData(x, y, "regression", step_names, None, data.target_names, None,
                    description + "".join(f"; {note}" for note in data.notes), notes=data.notes)


def chronological_split(x: np.ndarray, y: np.ndarray, val_fraction: float):
    """(x_train, y_train, (x_val, y_val)): the last ``val_fraction`` of the rows validate."""
    n_val = round(len(x) * val_fraction)
    cut = len(x) - n_val
    return x[:cut], y[:cut], (x[cut:], y[cut:])


# ---------------------------------------------------------------------------------------------
# CSV


def _delimiter(first_line: str) -> str:
    if "," in first_line:
        return ","
    for candidate in (";", "\t"):
        if candidate in first_line:
            return candidate
    return ","


def column_names(value) -> list[str]:
    """A spec's column name or names (``target``, ``ignore``: a name, a list of them, or
    None) as a list.

    >>> column_names("label"), column_names(["a", "b"]), column_names(None)
    (['label'], ['a', 'b'], [])
    """
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _header_names(row: list[str]) -> list[str]:
    """A CSV header's column names: each cell stripped, a blank one named by its place."""
    return [cell.strip() or f"column {i + 1}" for i, cell in enumerate(row)]


# Column names (compared in lower case) that say "the labels are here", for guess_target.
LABEL_COLUMNS = ("label", "labels", "target", "targets", "class", "y", "outcome")
# How much of a CSV csv_columns reads looking for its header.
HEADER_BYTES = 1 << 20


def csv_columns(path: str | Path) -> list[str]:
    """The column names of a CSV file's header, as :func:`read_data_file` reads them, from
    the file's first megabyte only (a picker must not read a 100 MB file to list its columns).
    Raises :class:`~bplab.errors.ConfigError` (or a LoadError) saying what is wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(HEADER_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if len(data) == HEADER_BYTES:  # a character cut in two at the end is not an error
        data = data[:data.rfind(b"\n") + 1] or data
    text = decode_text(data, path, "CSV data")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConfigError(f"{path.name} is empty: expected a header row, then one row per sample")
    try:
        row = next(csv.reader(io.StringIO(lines[0]), delimiter=_delimiter(lines[0])))
    except csv.Error as exc:
        raise ConfigError(f"{path.name}: the header cannot be read: {exc}") from None
    return _header_names(row)


def guess_target(columns: list[str]) -> str | None:
    """The column a CSV's labels are most likely in, when it is not the last (the default):
    the one column named like labels (``label``, ``target``, ``class``, ``y``, ...; in any
    case); None when none or several are, or it is the last column already.

    >>> guess_target(["label", "pixel0", "pixel1"]), guess_target(["x1", "x2", "y"])
    ('label', None)
    """
    named = [c for c in columns if c.strip().lower() in LABEL_COLUMNS]
    if len(named) != 1 or named[0] == columns[-1]:
        return None
    return named[0]


def _read_csv(path: Path, target, task: str | None, series: bool,
              ignore: list[str] = ()) -> FileData:
    """The CSV's rows as a :class:`FileData` (see the module). ``series``: the rows are
    consecutive times, so a row without a target is an error rather than left out;
    ``ignore``: columns that are not features."""
    label = path.name
    text = read_text(path, "CSV data")  # size, encoding: see bplab.io.loading

    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise ConfigError(f"{label} is empty: expected a header row, then one row per sample")
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(first))

    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = _header_names(row)
                header_line = reader.line_num
                continue
            if len(row) != len(header):
                raise ConfigError(
                    f"{label} line {reader.line_num}: expected {len(header)} values like the "
                    f"header on line {header_line}, found {len(row)}"
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise ConfigError(f"{label} line {reader.line_num}: {e}") from e

    if header is None:  # every line is empty cells (",,,")
        raise ConfigError(f"{label} has no header row: expected column names, then one row "
                          "per sample")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ConfigError(f"{label} line {header_line}: the header repeats {', '.join(dupes)}")
    if not rows:
        raise ConfigError(f"{label} has a header but no data rows")

    targets, t_cols, f_cols = _columns(label, header, target, ignore)
    feature_names = [header[i] for i in f_cols]

    raw_targets = [[row[i].strip() for i in t_cols] for row in rows]
    rows, lines, raw_targets, notes = _drop_unlabelled(label, targets, rows, lines,
                                                       raw_targets, series)
    x, feature_names, feature_notes = _features(label, rows, lines, f_cols, feature_names)
    notes += feature_notes
    if ignore:
        notes.append("left out by the project: " + ", ".join(ignore))

    description = (
        f"{path} ({len(rows):,} rows, {len(feature_names)} features, target "
        f"{', '.join(targets)})" + "".join(f"; {note}" for note in notes)
    )
    if len(targets) > 1:
        if task == "classification":
            raise ConfigError(f"{label}: classification takes one target column, not {targets}")
        y = np.stack([_numeric_column(label, lines, [v[j] for v in raw_targets], name)
                      for j, name in enumerate(targets)], axis=1)
        return FileData(x, y, "regression", feature_names, None, targets, None, description,
                        notes=tuple(notes))

    name = targets[0]
    column = [v[0] for v in raw_targets]
    numbers = _try_numbers(column)
    if task == "regression" or (task is None and numbers is not None
                                and not _looks_like_classes(numbers)):
        y = _numeric_column(label, lines, column, name) if numbers is None else numbers
        return FileData(x, y[:, None], "regression", feature_names, None, [name], None,
                        description, notes=tuple(notes))
    if numbers is not None:
        if not np.all(numbers == np.round(numbers)):
            bad = int(np.flatnonzero(numbers != np.round(numbers))[0])
            raise ConfigError(
                f"{label} line {lines[bad]}: class labels must be integers or text, target "
                f"{name!r} is {column[bad]!r}"
            )
        values, y = np.unique(numbers, return_inverse=True)
        class_names = [str(int(v)) for v in values]
    else:
        values, y = np.unique(np.array(column, dtype=str), return_inverse=True)
        class_names = [str(v) for v in values]
    return FileData(x, y.astype(np.int64), "classification", feature_names, class_names, None,
                    len(class_names), description, notes=tuple(notes))


def _columns(label: str, header: list[str], target, ignore: list[str]):
    """``(target names, their columns, the feature columns)``: the target (default: the last
    column) and every other column but those left out, each name checked against the
    header."""
    targets = column_names(target) or [header[-1]]
    for t in targets:
        if t not in header:
            raise ConfigError(
                f"{label} has no column {t!r} to use as target: its columns are "
                f"{', '.join(map(repr, header))}"
            )
    for name in ignore:
        if name not in header:
            raise ConfigError(f"{label} has no column {name!r} to leave out: its columns are "
                              f"{', '.join(map(repr, header))}")
        if name in targets:
            raise ConfigError(f"{label}: {name!r} is the target, it cannot be left out")
    t_cols = [header.index(t) for t in targets]
    f_cols = [i for i in range(len(header)) if i not in t_cols and header[i] not in ignore]
    if not f_cols:
        raise ConfigError(f"{label} needs at least one feature column besides the target"
                          + (" and the columns left out" if ignore else ""))
    return targets, t_cols, f_cols


def _drop_unlabelled(label, targets, rows, lines, raw_targets, series: bool):
    """``(rows, lines, raw targets, notes)`` without the rows whose target is missing
    (:data:`MISSING_TARGETS`); an error for a time series (its rows are consecutive times)
    or a file with no target at all."""
    unlabelled = [k for k, values in enumerate(raw_targets)
                  if any(_is_missing(v, MISSING_TARGETS) for v in values)]
    if not unlabelled:
        return rows, lines, raw_targets, []
    if series or len(unlabelled) == len(rows):
        k = unlabelled[0]
        j = next(j for j, v in enumerate(raw_targets[k]) if _is_missing(v, MISSING_TARGETS))
        cell = raw_targets[k][j]
        raise ConfigError(f"{label} line {lines[k]}: the target {targets[j]!r} is "
                          + (f"missing ({cell!r})" if cell else "empty")
                          + ("" if series else " in every row"))
    # nothing to learn from a row without its label: left out, and said so
    drop = set(unlabelled)
    kept = [k for k in range(len(rows)) if k not in drop]
    note = f"{len(drop):,} row{'s' if len(drop) > 1 else ''} without a target left out"
    return ([rows[k] for k in kept], [lines[k] for k in kept], [raw_targets[k] for k in kept],
            [note])


# Cells that mean "no value" (compared stripped, in lower case): a number column fills them
# with its mean, a text column leaves them out of its one-hot columns, a row whose target is
# one is left out.
MISSING_CELLS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
# A text feature column with at most this many different values is one-hot encoded; one with
# more (names, tickets, ids) is left out.
MAX_CATEGORIES = 20
# A target cell that is one of these leaves its row out ("none" may well be a class).
MISSING_TARGETS = MISSING_CELLS - {"none"}


def _is_missing(cell: str, missing: frozenset[str] = MISSING_CELLS) -> bool:
    return cell.strip().lower() in missing


def _features(label, rows, lines, cols, names) -> tuple[np.ndarray, list[str], list[str]]:
    """The feature columns as numbers: ``(x, feature names, notes)``.

    Number columns are taken as they are, a missing cell (:data:`MISSING_CELLS`) filled with
    the column's mean; a text column becomes one 0/1 column per value (``"sex=female"``,
    ``"sex=male"``; a missing cell is 0 in all of them) when it has at most
    :data:`MAX_CATEGORIES` values, and is left out when it has more or no value at all. The
    notes say what was filled, encoded and left out. A column of mostly numbers with cells
    that are not is a mistake (a typo, or a word for a missing value): the first such cell
    is reported with its line.
    """
    try:  # fast path: numpy parses the whole block of a file of numbers
        x = np.array([[row[i] for i in cols] for row in rows], dtype=np.float64)
        if np.all(np.isfinite(x)):
            return x, list(names), []
    except ValueError:
        pass
    blocks: list[np.ndarray] = []
    out_names: list[str] = []
    filled, encoded, left_out = [], [], []
    for i, name in zip(cols, names):
        cells = [row[i].strip() for row in rows]
        missing = np.array([_is_missing(c) for c in cells], dtype=bool)
        n_missing = int(missing.sum())
        if n_missing == len(cells):
            left_out.append(f"{name} (no values)")
            continue
        values = np.full(len(cells), np.nan)
        bad: list[int] = []
        for k, cell in enumerate(cells):
            if missing[k]:
                continue
            try:
                v = float(cell)
            except ValueError:
                bad.append(k)
                continue
            if not math.isfinite(v):
                raise ConfigError(f"{label} line {lines[k]}: column {name!r} is not a finite "
                                  f"number: {cell!r}")
            values[k] = v
        present = len(cells) - n_missing
        if bad and 2 * len(bad) <= present:  # mostly numbers: a typo, or a word for "none"
            k = bad[0]
            raise ConfigError(f"{label} line {lines[k]}: column {name!r} is not a number: "
                              f"{cells[k]!r} (an empty cell, NA, NaN, null or ? is a missing "
                              "value)")
        if not bad:
            if n_missing:
                mean = float(values[~missing].mean())
                values[missing] = mean
                filled.append(f"{name} ({n_missing:,} with its mean {mean:.4g})")
            blocks.append(values[:, None])
            out_names.append(name)
            continue
        categories = sorted({c for c, m in zip(cells, missing) if not m})
        if len(categories) > MAX_CATEGORIES:
            left_out.append(f"{name} (text, {len(categories):,} different values)")
            continue
        if len(categories) == present > 2:  # a name or an id: says nothing of another row
            left_out.append(f"{name} (text, a different value in every row)")
            continue
        index = {c: j for j, c in enumerate(categories)}
        onehot = np.zeros((len(cells), len(categories)))
        for k, (cell, m) in enumerate(zip(cells, missing)):
            if not m:
                onehot[k, index[cell]] = 1.0
        blocks.append(onehot)
        out_names += [f"{name}={c}" for c in categories]
        encoded.append(f"{name} ({len(categories)} values"
                       + (f", {n_missing:,} missing" if n_missing else "") + ")")
    if not blocks:
        raise ConfigError(f"{label}: no column can be a feature: "
                          + ", ".join(left_out))
    notes = []
    if encoded:
        notes.append("one-hot: " + ", ".join(encoded))
    if filled:
        notes.append("missing values filled: " + ", ".join(filled))
    if left_out:
        notes.append("left out: " + ", ".join(left_out))
    return np.concatenate(blocks, axis=1), out_names, notes


def _try_numbers(column: list[str]) -> np.ndarray | None:
    try:
        values = np.array([float(v) for v in column], dtype=np.float64)
    except ValueError:
        return None
    return values if np.all(np.isfinite(values)) else None


def _numeric_column(label, lines, column, name) -> np.ndarray:
    out = np.empty(len(column), dtype=np.float64)
    for k, (line, cell) in enumerate(zip(lines, column)):
        try:
            out[k] = float(cell)
        except ValueError:
            raise ConfigError(
                f"{label} line {line}: target {name!r} is not a number: {cell!r} "
                "(regression needs numeric targets)"
            ) from None
        if not np.isfinite(out[k]):
            raise ConfigError(f"{label} line {line}: target {name!r} is not finite: {cell!r}")
    return out


def _looks_like_classes(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values))) and len(np.unique(values)) <= MAX_CLASS_VALUES


# ---------------------------------------------------------------------------------------------
# NPZ


def _read_npz(path: Path, task: str | None) -> FileData:
    label = path.name
    arrays = _load_npz_arrays(path, label)
    x_train, y_train = arrays["x_train"], arrays["y_train"]
    x_val, y_val = arrays.get("x_val"), arrays.get("y_val")
    has_val = x_val is not None
    x_train, x_val = _check_npz_rows(label, x_train, y_train, x_val, y_val)
    notes = []
    if _channels_last(x_train):  # Keras', TensorFlow's and PIL's order: (N, H, W, C)
        notes.append(f"images (N, H, W, C) {x_train.shape[1:]} read as (N, C, H, W)")
        x_train = _to_channels_first(x_train)
        x_val = None if x_val is None else _to_channels_first(x_val)

    input_shape = x_train.shape[1:]
    names = _npz_feature_names(arrays.get("feature_names"), input_shape)
    labels = y_train if y_val is None else np.concatenate([y_train, y_val])
    if task is None:
        discrete = labels.dtype.kind in "biuU"
        task = "classification" if discrete and labels.ndim == 1 else "regression"
    description = (f"{path} ({len(x_train):,} training rows"
                   + (f", {len(x_val):,} validation rows" if has_val else "")
                   + f", inputs {input_shape})" + "".join(f"; {note}" for note in notes))

    if task == "regression":
        y_all = _npz_regression_targets(label, labels)
        y, yv = y_all[:len(y_train)], y_all[len(y_train):]
        return FileData(x_train, y, "regression", names, None,
                        [f"y{i + 1}" for i in range(y_all.shape[1])], None, description,
                        (x_val, yv) if has_val else None, tuple(notes))

    ids, class_names = _npz_class_ids(label, labels, y_train.shape, arrays.get("class_names"))
    y, yv = ids[:len(y_train)], ids[len(y_train):]
    return FileData(x_train, y, "classification", names, class_names, None, len(class_names),
                    description, (x_val, yv) if has_val else None, tuple(notes))


# The channel counts of pictures: grey, RGB, RGBA.
IMAGE_CHANNELS = (1, 3, 4)


def _channels_last(x: np.ndarray) -> bool:
    """Images stored (N, H, W, C): a last axis of 1, 3 or 4 channels after two that are not
    (bplab's convolutions, as torch's, take (N, C, H, W))."""
    return (x.ndim == 4 and x.shape[3] in IMAGE_CHANNELS and x.shape[1] not in IMAGE_CHANNELS
            and x.shape[2] not in IMAGE_CHANNELS)


def _to_channels_first(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _load_npz_arrays(path: Path, label: str) -> dict[str, np.ndarray]:
    """The archive's arrays bplab reads, after checking the required ones are there."""
    if path.is_file() and not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            single = fh.read(6) == b"\x93NUMPY"
        if single:
            raise ConfigError(f"{label} holds a single array: save x_train, y_train with "
                              "np.savez")
    npz = read_npz(path, "NPZ data")  # every member checked: see bplab.io.loading
    keys = set(npz)
    missing = [k for k in ("x_train", "y_train") if k not in keys]
    if missing:
        raise ConfigError(
            f"{label} lacks {' and '.join(missing)}: an .npz needs x_train and y_train "
            f"(optionally x_val and y_val); it holds {', '.join(sorted(keys)) or 'nothing'}"
        )
    if ("x_val" in keys) != ("y_val" in keys):
        have, lack = ("x_val", "y_val") if "x_val" in keys else ("y_val", "x_val")
        raise ConfigError(f"{label} has {have} but no {lack}: give both or neither")
    wanted = ("x_train", "y_train", "x_val", "y_val", "feature_names", "class_names")
    out = {}
    for key in wanted:
        if key in keys:
            out[key] = npz[key]
    return out


def _check_npz_rows(label, x_train, y_train, x_val, y_val):
    """Inputs as (N, features) or images, with as many label rows, validation like training."""
    x_train = _npz_inputs(label, "x_train", x_train)
    _same_length(label, "x_train", x_train, "y_train", y_train)
    if x_val is None:
        return x_train, None
    x_val = _npz_inputs(label, "x_val", x_val)
    _same_length(label, "x_val", x_val, "y_val", y_val)
    if x_val.shape[1:] != x_train.shape[1:]:
        raise ConfigError(
            f"{label}: x_val rows have shape {x_val.shape[1:]} but x_train rows "
            f"{x_train.shape[1:]}"
        )
    if y_val.shape[1:] != y_train.shape[1:]:
        raise ConfigError(
            f"{label}: y_val rows have shape {y_val.shape[1:]} but y_train rows "
            f"{y_train.shape[1:]}"
        )
    return x_train, x_val


def _npz_feature_names(feature_names, input_shape: tuple[int, ...]) -> list[str]:
    n_features = int(np.prod(input_shape))
    if feature_names is not None and feature_names.size == n_features:
        return [str(s) for s in feature_names.reshape(-1)]
    if len(input_shape) == 3 and input_shape[0] == 1:
        return [f"pixel_{r}_{c}" for r in range(input_shape[1]) for c in range(input_shape[2])]
    return [f"x{i + 1}" for i in range(n_features)]


def _npz_regression_targets(label: str, labels: np.ndarray) -> np.ndarray:
    if labels.dtype.kind not in "biuf":
        raise ConfigError(f"{label}: regression needs numeric y, y_train has {labels.dtype}")
    y_all = labels.astype(np.float64).reshape(len(labels), -1)
    if not np.all(np.isfinite(y_all)):
        raise ConfigError(f"{label}: y holds NaN or infinite values")
    return y_all


def _npz_class_ids(label, labels, train_shape, class_names) -> tuple[np.ndarray, list[str]]:
    """Class ids per row and a name per class (non-negative integer labels kept as ids)."""
    if labels.ndim != 1:
        raise ConfigError(
            f"{label}: class labels must be one id per row, y_train has shape {train_shape}"
        )
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise ConfigError(f"{label}: class labels must be integers or text")
    elif labels.dtype.kind not in "biuU":
        raise ConfigError(f"{label}: class labels must be integers or text, not {labels.dtype}")
    if labels.dtype.kind in "biuf" and labels.min() >= 0:
        ids = labels.astype(np.int64)  # ids as given: class k stays class k
        n_classes = int(ids.max()) + 1
        if n_classes > MAX_CLASSES:
            raise ConfigError(
                f"{label}: the class id {n_classes - 1:,} means {n_classes:,} classes; "
                f"bplab takes at most {MAX_CLASSES:,} (class ids run 0, 1, ... K-1)"
            )
        names = [str(k) for k in range(n_classes)]
    else:
        values, ids = np.unique(labels, return_inverse=True)
        n_classes = len(values)
        names = [str(v.item() if hasattr(v, "item") else v) for v in values]
    if class_names is not None and class_names.size == n_classes:
        names = [str(s) for s in class_names.reshape(-1)]
    return ids, names


def _npz_inputs(label: str, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"{label}: {key} must hold numbers, it holds {x.dtype}")
    if x.ndim == 0:
        raise ConfigError(f"{label}: {key} is a single value, expected one row per sample")
    if len(x) == 0:
        raise ConfigError(f"{label}: {key} has no rows: save at least one sample")
    if x.ndim == 1:
        x = x[:, None]  # one feature per sample
    elif x.ndim == 3:
        x = x[:, None]  # (N, H, W): grey images get their channel axis
    if not np.all(np.isfinite(x)):
        row = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise ConfigError(f"{label}: {key} row {row} holds a NaN or infinite value")
    return x


def _same_length(label, x_key, x, y_key, y) -> None:
    if y.ndim == 0 or len(y) != len(x):
        n_y = 1 if y.ndim == 0 else len(y)
        raise ConfigError(f"{label}: {x_key} has {len(x):,} rows but {y_key} has {n_y:,}")
