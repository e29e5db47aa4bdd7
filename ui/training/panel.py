"""The training settings: data, loss, optimiser, schedule and the run's options.

Every editor writes through the document's undo stack (``doc.set_value(path, value)``) and
re-reads the document when it changes, so undo/redo and opening a project update it.
Hyper-parameter editors are generated from the registries' :class:`~bplab.optimizers.Hyper`
descriptions (kind, default, bounds, doc); a value the registry rejects is not written and
its editor turns red with the registry's message as tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bplab.ui.dataset_preview import DatasetPreview
from bplab.ui.models.document import MISSING, ProjectDocument
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from bplab.backend import cupy_status
from bplab.datasets import DATASETS, load_dataset
from bplab.datasets.base import format_shape
from bplab.datasets.files import column_names, csv_columns, guess_target, resolve_path
from bplab.errors import BplabError
from bplab.initializers import DESCRIPTIONS as INIT_DESCRIPTIONS
from bplab.initializers import INITIALIZERS
from bplab.layers import type_names
from bplab.layers.base import REQUIRED
from bplab.losses import LOSSES
from bplab.optimizers import OPTIMIZERS
from bplab.schedules import SCHEDULES
from bplab.settings import (
    DATASET,
    EARLY_STOPPING_OPTIONS,
    SPEED_PRESETS,
    TRAINING,
    TRAINING_DEFAULTS,
    Setting,
    mixed_precision_unavailable,
)

__all__ = ["FROM_FILE", "HyperForm", "TrainingPanel", "ValueEdit"]

FROM_FILE = "file"
# How the backend choices read in the combo box (the choices themselves come from the engine).
BACKEND_TITLES = {"auto": "Auto (GPU if available)", "numpy": "CPU (numpy)", "cupy": "GPU (CuPy)"}


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _parse(kind: str, text: str) -> Any:
    """Text -> value for a Hyper ``kind``; raises ValueError with a short reason."""
    text = text.strip()
    if kind.endswith("_or_none") and text == "":
        return None
    if kind.startswith("int"):
        if kind == "ints_or_empty":
            return [int(float(t)) for t in text.replace(";", ",").split(",") if t.strip()]
        v = float(text)
        if not v.is_integer():
            raise ValueError("an integer is expected")
        return int(v)
    if kind == "float_pair":
        parts = [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
        if len(parts) != 2:
            raise ValueError("two numbers separated by a comma are expected")
        return parts
    v = float(text)
    if not math.isfinite(v):
        raise ValueError("a finite number is expected")
    return v


class ValueEdit(QLineEdit):
    """A line edit for a number (or list of numbers) that reports parsed values.

    ``check(value)`` may raise (ConfigError or ValueError) to refuse a value; the editor
    then shows the reason and keeps the document unchanged.
    """

    value_edited = Signal(object)

    def __init__(self, kind: str, check: Callable[[Any], Any] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.kind = kind
        self.check = check
        self._tip = ""
        self.editingFinished.connect(self._on_editing_finished)

    def setToolTip(self, tip: str) -> None:
        self._tip = tip
        super().setToolTip(tip)

    def set_value(self, value: Any) -> None:
        if not self.hasFocus() or _fmt(value) != self.text():
            self.setText(_fmt(value))
        self._mark(None)

    def _mark(self, error: str | None) -> None:
        self.setStyleSheet("" if error is None else "QLineEdit { border: 1px solid #d03030; }")
        super().setToolTip(self._tip if error is None else f"{error}\n\n{self._tip}")

    def _on_editing_finished(self) -> None:
        try:
            value = _parse(self.kind, self.text())
            if self.check is not None:
                checked = self.check(value)
                if checked is not None and self.kind != "float_pair":
                    value = checked
        except (ValueError, TypeError, BplabError) as exc:
            self._mark(str(exc))
            return
        self._mark(None)
        self.value_edited.emit(value)


def _initial(opt) -> Any:
    """A starting value for an option: its default, or something sensible when required."""
    if opt.default is not REQUIRED:
        return list(opt.default) if isinstance(opt.default, tuple) else opt.default
    if opt.kind.startswith("int"):
        return [] if opt.kind == "ints_or_empty" else max(int(opt.low or 1), 10)
    if opt.kind == "choice":
        return opt.choices[0]
    if opt.kind == "bool":
        return False
    if opt.high is not None and opt.high <= 1:
        return 0.9
    return 1.0


class HyperForm(QWidget):
    """Editors for one registry entry's ``options`` writing ``<prefix>.<name>`` paths."""

    def __init__(self, doc: ProjectDocument, prefix: str, label: str, options, skip=(),
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = doc
        self.prefix = prefix
        self.editors: dict[str, QWidget] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for opt in options:
            if opt.name in skip or opt.kind in ("schedule", "init"):
                continue
            tip = f"{opt.name}: {opt.doc}" if opt.doc else opt.name
            if opt.kind == "bool":
                w = QCheckBox(self)
                w.toggled.connect(lambda on, n=opt.name: self._write(n, bool(on)))
            elif opt.kind == "choice":
                w = QComboBox(self)
                for c in opt.choices:
                    w.addItem(str(c), c)
                w.activated.connect(lambda i, n=opt.name, box=w: self._write(n, box.itemData(i)))
            else:
                w = ValueEdit(opt.kind, lambda v, o=opt: o.check(label, v), self)
                if opt.default is not REQUIRED and opt.default is not None:
                    w.setPlaceholderText(_fmt(opt.default))
                w.value_edited.connect(lambda v, n=opt.name: self._write(n, v))
            w.setToolTip(tip)
            self.editors[opt.name] = w
            lab = QLabel(opt.name, self)
            lab.setToolTip(tip)
            form.addRow(lab, w)
        self.options = {o.name: o for o in options}

    def _write(self, name: str, value: Any) -> None:
        self.doc.set_value(f"{self.prefix}.{name}", value)

    def refresh(self, config: dict) -> None:
        for name, w in self.editors.items():
            opt = self.options[name]
            value = config.get(name, opt.default if opt.default is not REQUIRED else None)
            if isinstance(w, QCheckBox):
                w.blockSignals(True)
                w.setChecked(bool(value))
                w.blockSignals(False)
            elif isinstance(w, QComboBox):
                i = w.findData(value)
                if i >= 0:
                    w.setCurrentIndex(i)
            else:
                w.set_value(value)


class TrainingPanel(QWidget):
    """All training settings of the document's project, with a preview of the data.

    ``base_dir()`` gives the project's folder (relative data file paths resolve there);
    ``open_data_file()`` asks for a CSV/NPZ path (tests monkeypatch it).
    ``dataset_loaded(Dataset)`` fires when the previewed data set has been (re)loaded.
    """

    dataset_loaded = Signal(object)

    def __init__(self, doc: ProjectDocument, base_dir: Callable[[], Path | None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = doc
        self.base_dir = base_dir
        self._preview_key = None
        self._optimizer_type = None
        self._schedule_type = None
        self._loss_type = None
        self.optimizer_form: HyperForm | None = None
        self.schedule_form: HyperForm | None = None
        self.loss_form: HyperForm | None = None

        inner = QWidget(self)
        col = QVBoxLayout(inner)
        col.setContentsMargins(4, 4, 4, 4)
        col.addWidget(self._build_data())
        col.addWidget(self._build_objective())
        col.addWidget(self._build_schedule())
        col.addWidget(self._build_run())
        col.addWidget(self._build_options())
        col.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(inner)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Never clip the editors: the dock is at least as wide as the form needs.
        scroll.setMinimumWidth(inner.minimumSizeHint().width()
                               + scroll.verticalScrollBar().sizeHint().width() + 2)
        self.scroll = scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.controls_slot = QVBoxLayout()
        self.controls_slot.setContentsMargins(4, 4, 4, 0)
        outer.addLayout(self.controls_slot)
        outer.addWidget(scroll)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self._on_preview_timer_timeout)
        doc.settings_changed.connect(self._on_doc_settings_changed)
        doc.project_replaced.connect(self._on_doc_project_replaced)
        self.refresh()

    # -- building ----------------------------------------------------------------------------
    def _combo(self, tip: str) -> QComboBox:
        box = QComboBox(self)
        box.setToolTip(tip)
        box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        box.setMinimumContentsLength(8)
        return box

    def _edit(self, section: str, setting: Setting, write=None) -> ValueEdit:
        """An editor for one numeric setting: the engine's table gives its check and tooltip.
        An edited value is written to ``section.name``, or given to ``write``."""
        w = ValueEdit(_editor_kind(setting), lambda v: setting.check(section, v), self)
        w.setToolTip(setting.tooltip)
        w.value_edited.connect(write or (
            lambda v, p=f"{section}.{setting.name}": self.doc.set_value(p, v)))
        return w

    def _setting_combo(self, section: str, setting: Setting, titles=None) -> QComboBox:
        """A combo box over a choice setting's values, writing ``section.name``."""
        box = self._combo(setting.tooltip)
        for choice in setting.choices:
            box.addItem((titles or {}).get(choice, str(choice)), choice)
        box.activated.connect(
            lambda i: self.doc.set_value(f"{section}.{setting.name}", box.itemData(i)))
        return box

    def _build_data(self) -> QGroupBox:
        box = QGroupBox("Data", self)
        form = QFormLayout(box)
        self.dataset_combo = self._combo(DATASET["name"].doc)
        for name, info in DATASETS.items():
            self.dataset_combo.addItem(info.title, name)
            i = self.dataset_combo.count() - 1
            self.dataset_combo.setItemData(
                i, f"{info.description}\n{info.task}, {info.size}", Qt.ItemDataRole.ToolTipRole)
        self.dataset_combo.insertSeparator(self.dataset_combo.count())
        self.dataset_combo.addItem("From file...", FROM_FILE)
        self.dataset_combo.activated.connect(self._on_dataset_combo_activated)
        form.addRow(DATASET["name"].title, self.dataset_combo)
        self.dataset_info = _WrappedLabel(self)
        self.dataset_info.setToolTip("What the data set is")
        form.addRow(self.dataset_info)
        # a file's own settings: which column holds the labels, the task, a time series
        self.target_combo = self._combo(DATASET["target"].tooltip)
        self.target_combo.activated.connect(self._on_target_combo_activated)
        form.addRow(DATASET["target"].title, self.target_combo)
        self.ignore_button = QPushButton(self)  # the CSV's columns, ticked to leave out
        self.ignore_button.setStyleSheet("QPushButton { text-align: left; padding: 3px 6px; }")
        self.ignore_button.setToolTip(DATASET["ignore"].tooltip)
        self.ignore_menu = QMenu(self.ignore_button)
        self.ignore_menu.triggered.connect(self._on_ignore_menu_triggered)
        self.ignore_button.setMenu(self.ignore_menu)
        form.addRow(DATASET["ignore"].title, self.ignore_button)
        self._ignore_key: tuple | None = None  # (columns, target, left out) the menu shows
        self.task_combo = self._combo(DATASET["task"].tooltip)
        self.task_combo.addItem("Guess from the labels", None)
        for task in DATASET["task"].choices:
            self.task_combo.addItem(task.capitalize(), task)
        self.task_combo.activated.connect(self._on_task_combo_activated)
        form.addRow(DATASET["task"].title, self.task_combo)
        self.window_edit = self._edit("dataset", DATASET["window"], self._on_window_edited)
        self.window_edit.setPlaceholderText("one row per sample")
        form.addRow(DATASET["window"].title, self.window_edit)
        self.horizon_edit = self._edit("dataset", DATASET["horizon"])
        form.addRow(DATASET["horizon"].title, self.horizon_edit)
        self._data_form = form
        self._columns_key: tuple | None = None  # (path, mtime, size) the target combo lists
        self._file_info: tuple[str, str, str] | None = None  # (data key, text, tooltip)
        self.samples_edit = self._edit("dataset", DATASET["samples"])
        form.addRow(DATASET["samples"].title, self.samples_edit)
        self.noise_edit = self._edit("dataset", DATASET["noise"])
        form.addRow(DATASET["noise"].title, self.noise_edit)
        self.val_edit = self._edit("dataset", DATASET["val_fraction"])
        form.addRow(DATASET["val_fraction"].title, self.val_edit)
        self.standardize_check = QCheckBox("Standardize features", self)
        self.standardize_check.setToolTip(DATASET["standardize"].tooltip)
        self.standardize_check.clicked.connect(self._on_standardize_check_clicked)
        form.addRow(self.standardize_check)
        self.divisor_edit = self._edit("dataset", DATASET["target_divisor"])
        self.divisor_edit.setPlaceholderText("the targets as they are")
        form.addRow(DATASET["target_divisor"].title, self.divisor_edit)
        self.preview = DatasetPreview(self)
        form.addRow(self.preview)
        return box

    def _build_objective(self) -> QGroupBox:
        box = QGroupBox("Loss and optimiser", self)
        form = QFormLayout(box)
        self.loss_combo = self._combo("The loss function minimised by training")
        for name, cls in LOSSES.items():
            self.loss_combo.addItem(cls.label or name, name)
        self.loss_combo.activated.connect(self._on_loss_combo_activated)
        form.addRow("Loss", self.loss_combo)
        self.loss_slot = QVBoxLayout()
        form.addRow(self.loss_slot)
        self.optimizer_combo = self._combo("The optimiser that turns gradients into steps")
        for name, cls in OPTIMIZERS.items():
            self.optimizer_combo.addItem(cls.label or name, name)
            doc = (cls.__doc__ or "").strip().splitlines()
            if doc:
                self.optimizer_combo.setItemData(self.optimizer_combo.count() - 1, doc[0],
                                                 Qt.ItemDataRole.ToolTipRole)
        self.optimizer_combo.activated.connect(self._on_optimizer_combo_activated)
        form.addRow("Optimiser", self.optimizer_combo)
        self.optimizer_slot = QVBoxLayout()
        form.addRow(self.optimizer_slot)
        return box

    def _build_schedule(self) -> QGroupBox:
        box = QGroupBox("Learning-rate schedule", self)
        form = QFormLayout(box)
        self.schedule_combo = self._combo("How the learning rate changes during training")
        self.schedule_combo.addItem("Constant", None)
        for name, cls in SCHEDULES.items():
            self.schedule_combo.addItem(cls.label or name, name)
            summary = getattr(cls, "summary", "")
            if summary:
                self.schedule_combo.setItemData(self.schedule_combo.count() - 1, summary,
                                                Qt.ItemDataRole.ToolTipRole)
        self.schedule_combo.activated.connect(self._on_schedule_combo_activated)
        form.addRow("Schedule", self.schedule_combo)
        self.interval_combo = self._combo("Whether one schedule step is an epoch or a batch")
        self.interval_combo.addItem("per epoch", "epoch")
        self.interval_combo.addItem("per batch", "step")
        self.interval_combo.activated.connect(self._on_interval_combo_activated)
        form.addRow("Steps", self.interval_combo)
        self.schedule_slot = QVBoxLayout()
        form.addRow(self.schedule_slot)
        return box

    def _build_run(self) -> QGroupBox:
        box = QGroupBox("Run", self)
        form = QFormLayout(box)
        self.epochs_edit = self._edit("training", TRAINING["epochs"])
        form.addRow(TRAINING["epochs"].title, self.epochs_edit)
        row = QHBoxLayout()
        self.batch_edit = self._edit("training", TRAINING["batch_size"])
        self.full_batch = QCheckBox("full batch", self)
        self.full_batch.setToolTip("Use the whole training set in every step (batch gradient "
                                   "descent)")
        self.full_batch.toggled.connect(self._on_full_batch_toggled)
        row.addWidget(self.batch_edit, 1)
        row.addWidget(self.full_batch)
        form.addRow(TRAINING["batch_size"].title, row)
        for name in ("l1", "l2", "clip_grad_norm", "clip_grad_value", "seed"):
            w = self._edit("training", TRAINING[name])
            if TRAINING[name].nullable:
                w.setPlaceholderText("off")
            setattr(self, _EDIT_ATTRS[name], w)
            form.addRow(TRAINING[name].title, w)
        self.dtype_combo = self._setting_combo("training", TRAINING["dtype"])
        form.addRow(TRAINING["dtype"].title, self.dtype_combo)
        self.backend_combo = self._setting_combo("training", TRAINING["backend"], BACKEND_TITLES)
        form.addRow(TRAINING["backend"].title, self.backend_combo)
        self.backend_label = QLabel(self)
        self.backend_label.setWordWrap(True)
        form.addRow(self.backend_label)
        self._describe_backend()
        row = QHBoxLayout()
        weighted = "/".join(type_names("has_weights"))
        self.init_combo = self._combo(f"Initializer for {weighted} layers that have no "
                                      "explicit one")
        for name in INITIALIZERS:
            self.init_combo.addItem(name, name)
            self.init_combo.setItemData(self.init_combo.count() - 1,
                                        INIT_DESCRIPTIONS.get(name, ""),
                                        Qt.ItemDataRole.ToolTipRole)
        self.init_apply = QPushButton("Apply", self)
        self.init_apply.setToolTip(f"Set this initializer on every {weighted} layer without "
                                   "an explicit init (one undoable edit)")
        self.init_apply.clicked.connect(self._on_init_apply_clicked)
        row.addWidget(self.init_combo, 1)
        row.addWidget(self.init_apply)
        form.addRow("Default init", row)
        return box

    def _build_options(self) -> QGroupBox:
        """Speed, early stopping, mixed precision and gradient checkpointing: editors from
        the engine's settings tables."""
        box = QGroupBox("Speed, stopping and memory", self)
        form = QFormLayout(box)
        speed = TRAINING["speed"]
        self.speed_combo = self._combo(speed.tooltip)
        for value in SPEED_PRESETS:
            self.speed_combo.addItem(_speed_text(value), value)
        self.speed_combo.activated.connect(self._on_speed_combo_activated)
        form.addRow(speed.title, self.speed_combo)
        es = TRAINING["early_stopping"]
        self.early_stop_check = QCheckBox("stop when the validation loss stops improving", self)
        self.early_stop_check.setToolTip(es.tooltip)
        self.early_stop_check.toggled.connect(self._on_early_stop_check_toggled)
        form.addRow(es.title, self.early_stop_check)
        self.early_stop_edits: dict[str, QWidget] = {}
        for opt in EARLY_STOPPING_OPTIONS:
            if opt.kind == "bool":
                w = QCheckBox(self)
                w.setToolTip(opt.tooltip)
                w.toggled.connect(lambda on, n=opt.name: self.doc.set_value(
                    f"training.early_stopping.{n}", bool(on)))
            else:
                w = self._edit("training.early_stopping", opt)
            self.early_stop_edits[opt.name] = w
            setattr(self, f"{opt.name}_edit", w)  # patience_edit, min_delta_edit, ...
            form.addRow(f"  {opt.name.replace('_', ' ')}", w)
        amp = TRAINING["mixed_precision"]
        self.amp_combo = self._combo(amp.tooltip)
        self.amp_combo.addItem("Off", None)
        for choice in amp.choices:
            self.amp_combo.addItem(str(choice), choice)
        self.amp_combo.activated.connect(self._on_amp_combo_activated)
        form.addRow(amp.title, self.amp_combo)
        self.checkpoint_edit = self._edit("training", TRAINING["checkpoint_segments"])
        self.checkpoint_edit.setPlaceholderText("off")
        form.addRow(TRAINING["checkpoint_segments"].title, self.checkpoint_edit)
        return box

    def _describe_backend(self) -> None:
        backend, reason = cupy_status()
        model = self.backend_combo.model()
        item = model.item(self.backend_combo.findData("cupy"))
        if backend is None:
            item.setEnabled(False)
            tip = f"GPU unavailable: {reason}"
            item.setToolTip(tip)
            self.backend_label.setText(f"GPU unavailable: {reason}")
        else:
            item.setToolTip(f"Train on {backend.describe()}")
            self.backend_label.setText(f"GPU: {backend.describe()}")
        self.backend_label.setToolTip(self.backend_label.text())

    # -- reading the document --------------------------------------------------------------
    def refresh(self) -> None:
        doc = self.doc
        ds = doc.get("dataset") or {}
        name = ds.get("name")
        info = DATASETS.get(name)
        _select(self.dataset_combo, name if name in DATASETS else FROM_FILE
                if name == FROM_FILE else None)
        if info is not None:
            # the project's sample count (a generated set's default until it sets one)
            n = ds.get("samples") or info.samples
            self.dataset_info.setText(f"{info.task.capitalize()}, {n:,} samples")
            self.dataset_info.setToolTip(info.description)
        elif name == FROM_FILE:
            kept = self._file_info  # what the preview read from this very spec, if it has
            if kept is not None and kept[0] == self._data_key(ds):
                self.dataset_info.setText(kept[1])
                self.dataset_info.setToolTip(kept[2])
            else:
                self.dataset_info.setText(f"File: {ds.get('path', '?')}")
                self.dataset_info.setToolTip(str(ds.get("path", "")))
        else:
            self.dataset_info.setText("No data set chosen" if name is None
                                      else f"Unknown data set {name!r}")
        self._refresh_file_settings(ds if name == FROM_FILE else None)
        self._refresh_samples(ds, info)
        self._refresh_divisor(ds, info)
        self.val_edit.set_value(ds.get("val_fraction", DATASET["val_fraction"].default))
        self.standardize_check.setChecked(ds.get("standardize") is True)

        loss = _typed(doc.get("loss"))
        _select(self.loss_combo, loss.get("type"))
        if loss.get("type") != self._loss_type or self.loss_form is None:
            self._loss_type = loss.get("type")
            self.loss_form = self._replace_form(self.loss_slot, self.loss_form, "loss",
                                                LOSSES.get(self._loss_type))
        if self.loss_form is not None:
            self.loss_form.refresh(loss)

        opt = _typed(doc.get("optimizer"))
        _select(self.optimizer_combo, opt.get("type"))
        if opt.get("type") != self._optimizer_type or self.optimizer_form is None:
            self._optimizer_type = opt.get("type")
            self.optimizer_form = self._replace_form(self.optimizer_slot, self.optimizer_form,
                                                     "optimizer",
                                                     OPTIMIZERS.get(self._optimizer_type))
        if self.optimizer_form is not None:
            self.optimizer_form.refresh(opt)

        cfg = {**TRAINING_DEFAULTS, **(doc.get("training") or {})}
        sched = cfg.get("lr_schedule")
        sched = _typed(sched) if sched else {}
        _select(self.schedule_combo, sched.get("type"))
        cls = SCHEDULES.get(sched.get("type"))
        self.interval_combo.setEnabled(cls is not None)
        _select(self.interval_combo, sched.get("interval",
                                               getattr(cls, "default_interval", "epoch")))
        if sched.get("type") != self._schedule_type:
            self._schedule_type = sched.get("type")
            self.schedule_form = self._replace_form(self.schedule_slot, self.schedule_form,
                                                    "training.lr_schedule", cls)
        if self.schedule_form is not None:
            self.schedule_form.refresh(sched)

        self.epochs_edit.set_value(cfg["epochs"])
        full = cfg["batch_size"] == "full"
        self.full_batch.blockSignals(True)
        self.full_batch.setChecked(full)
        self.full_batch.blockSignals(False)
        self.batch_edit.setEnabled(not full)
        self.batch_edit.set_value(None if full else cfg["batch_size"])
        self.l1_edit.set_value(cfg["l1"])
        self.l2_edit.set_value(cfg["l2"])
        self.clip_norm_edit.set_value(cfg["clip_grad_norm"])
        self.clip_value_edit.set_value(cfg["clip_grad_value"])
        self.seed_edit.set_value(cfg["seed"])
        _select(self.dtype_combo, cfg["dtype"])
        _select(self.backend_combo, cfg["backend"])
        self._refresh_options(cfg)
        self._schedule_preview()

    def _refresh_options(self, cfg: dict) -> None:
        speed = cfg.get("speed")
        if self.speed_combo.findData(speed) < 0 and isinstance(speed, (int, float)):
            self.speed_combo.addItem(_speed_text(speed), speed)
        _select(self.speed_combo, speed)
        es = cfg.get("early_stopping")
        self.early_stop_check.blockSignals(True)
        self.early_stop_check.setChecked(isinstance(es, dict))
        self.early_stop_check.blockSignals(False)
        values = {o.name: (es or {}).get(o.name, o.default) for o in EARLY_STOPPING_OPTIONS}
        for name, w in self.early_stop_edits.items():
            w.setEnabled(isinstance(es, dict))
            if isinstance(w, QCheckBox):
                w.blockSignals(True)
                w.setChecked(bool(values[name]))
                w.blockSignals(False)
            else:
                w.set_value(values[name])
        reason = mixed_precision_unavailable(cfg)
        _select(self.amp_combo, cfg.get("mixed_precision"))
        self.amp_combo.setEnabled(reason is None or bool(cfg.get("mixed_precision")))
        self.amp_combo.setToolTip(TRAINING["mixed_precision"].tooltip if reason is None
                                  else f"Unavailable: {reason}")
        self.checkpoint_edit.set_value(cfg.get("checkpoint_segments") or None)

    def _replace_form(self, slot: QVBoxLayout, old: HyperForm | None, prefix: str, cls):
        if old is not None:
            slot.removeWidget(old)
            old.deleteLater()
        if cls is None or not cls.options:
            return None
        form = HyperForm(self.doc, prefix, cls.label or cls.type_name, cls.options,
                         skip=("interval",), parent=self)
        slot.addWidget(form)
        return form

    def _refresh_samples(self, ds: dict, info) -> None:
        """Samples for every data set but a time series: the points a generated set draws,
        a subsample of real data and files (empty: all rows); Noise for generated sets."""
        generated = info is not None and info.kind == "generated"
        windowed = ds.get("name") == FROM_FILE and ds.get("window") is not None
        self.samples_edit.setEnabled((info is not None or ds.get("name") == FROM_FILE)
                                     and not windowed)
        self.samples_edit.set_value(ds.get("samples", info.samples if generated else None))
        self.samples_edit.setPlaceholderText(
            "every window" if windowed else f"all {info.samples:,}" if info is not None
            else "all rows")
        self._data_form.setRowVisible(self.noise_edit, generated)
        self.noise_edit.set_value(ds.get("noise", info.noise if generated else None))

    def _refresh_divisor(self, ds: dict, info) -> None:
        """Divide target by, for a regression: a built-in one, or a file whose task is set
        or was read as a regression (shown too while a file is not read yet)."""
        if info is not None:
            regression = info.task == "regression"
        elif ds.get("name") == FROM_FILE:
            read = self.preview.dataset  # the file as last read, if it is this file
            same = read is not None and all(read.spec.get(k) == ds.get(k)
                                            for k in ("name", "path", "target", "task"))
            regression = (ds.get("task") or (read.task if same else None)) in (
                None, "regression")
        else:
            regression = False
        self._data_form.setRowVisible(self.divisor_edit, regression
                                      or ds.get("target_divisor") is not None)
        self.divisor_edit.set_value(ds.get("target_divisor"))

    def _on_window_edited(self, window) -> None:
        """A window makes the file a time series, which keeps every window: a subsample
        asked for goes in the same edit."""
        spec = dict(self.doc.get("dataset") or {})
        if window is None:
            spec.pop("window", None)
        else:
            spec["window"] = window
            spec.pop("samples", None)
        if spec != self.doc.get("dataset"):
            self.doc.set_value("dataset", spec)

    def _refresh_file_settings(self, ds: dict | None) -> None:
        """Show a data file's own settings (``ds``: its spec; None hides them): the target
        column and the time-series window for a CSV, the task for either kind."""
        csv = ds is not None and not str(ds.get("path", "")).lower().endswith(".npz")
        form = self._data_form
        for editor, shown in ((self.target_combo, csv), (self.ignore_button, csv),
                              (self.task_combo, ds is not None),
                              (self.window_edit, csv), (self.horizon_edit, csv)):
            form.setRowVisible(editor, shown)
        if ds is None:
            return
        _select(self.task_combo, ds.get("task"))
        self.window_edit.set_value(ds.get("window"))
        self.horizon_edit.set_value(ds.get("horizon", DATASET["horizon"].default))
        self.horizon_edit.setEnabled(ds.get("window") is not None)
        if csv:
            self._list_columns(ds)

    def _list_columns(self, ds: dict) -> None:
        """Fill the target combo with the CSV's columns (read again only when the file
        changed) and select the spec's target: the last column when it names none."""
        path = resolve_path(str(ds.get("path", "")), self.base_dir())
        try:
            st = path.stat()
            key = (str(path), st.st_mtime_ns, st.st_size)
        except OSError:
            key = (str(path), None, None)
        box = self.target_combo
        if key != self._columns_key:
            self._columns_key = key
            box.clear()
            try:
                columns = csv_columns(path)
            except (BplabError, OSError) as exc:
                columns = []
                box.setToolTip(f"{DATASET['target'].tooltip}\n\nThe columns cannot be "
                               f"listed: {exc}")
            else:
                box.setToolTip(DATASET["target"].tooltip)
            for column in columns:
                box.addItem(column, column)
        target = ds.get("target")
        if target is None and box.count():
            target = box.itemData(box.count() - 1)  # the engine's default: the last column
        if isinstance(target, list):  # several targets: a multi-output regression
            target = target[0] if len(target) == 1 else target
        if target is not None and box.findData(target) < 0:
            text = ", ".join(target) if isinstance(target, list) else str(target)
            box.addItem(text, target)  # not (or not yet) a column of the file: still shown
        _select(box, target)
        columns = [box.itemData(k) for k in range(box.count())
                   if isinstance(box.itemData(k), str)]
        self._list_left_out(columns, target, column_names(ds.get("ignore")))

    def _list_left_out(self, columns: list[str], target, ignored: list[str]) -> None:
        """The Leave out menu: every column but the target, ticked when left out; the
        button reads the ticked ones."""
        targets = target if isinstance(target, list) else [target]
        key = (tuple(columns), tuple(targets), tuple(ignored))
        if key != self._ignore_key:
            self._ignore_key = key
            self.ignore_menu.clear()
            for column in [*columns, *(c for c in ignored if c not in columns)]:
                if column in targets:
                    continue
                action = self.ignore_menu.addAction(column)
                action.setCheckable(True)
                action.setChecked(column in ignored)
        self.ignore_button.setText(", ".join(ignored) if ignored else "None: every column")

    def _on_ignore_menu_triggered(self, _action) -> None:
        ignored = [a.text() for a in self.ignore_menu.actions() if a.isChecked()]
        self.doc.set_value("dataset.ignore", ignored or MISSING)

    def _on_standardize_check_clicked(self, checked: bool) -> None:
        self.doc.set_value("dataset.standardize", True if checked else MISSING)

    def _on_target_combo_activated(self, index: int) -> None:
        target = self.target_combo.itemData(index)
        spec = dict(self.doc.get("dataset") or {})
        if target == spec.get("target"):
            return
        spec["target"] = target
        kept = [c for c in column_names(spec.get("ignore")) if c != target]
        if kept:  # a column left out that becomes the target is a target again, one edit
            spec["ignore"] = kept
        else:
            spec.pop("ignore", None)
        self.doc.set_value("dataset", spec)

    def _on_task_combo_activated(self, index: int) -> None:
        task = self.task_combo.itemData(index)
        if task != self.doc.get("dataset.task"):
            self.doc.set_value("dataset.task", MISSING if task is None else task)

    def _data_key(self, ds: dict) -> str:
        """The data set's spec and folder as one key: the same key, the same data."""
        return repr(sorted(ds.items())) + repr(self.base_dir())

    def _schedule_preview(self) -> None:
        ds = self.doc.get("dataset") or {}
        key = self._data_key(ds)
        if key != self._preview_key:
            self._preview_key = key
            self._preview_timer.start()

    # -- writing the document --------------------------------------------------------------
    def _on_dataset_combo_activated(self, index: int) -> None:
        name = self.dataset_combo.itemData(index)
        current = self.doc.get("dataset") or {}
        if name == FROM_FILE:
            path = self.open_data_file()
            if not path:
                self.refresh()
                return
            spec = {"name": FROM_FILE, "path": str(path), **_kept_split(current)}
            if not str(path).lower().endswith(".npz"):
                try:  # labels in a column named like labels, not the last: train on them
                    target = guess_target(csv_columns(resolve_path(path, self.base_dir())))
                except (BplabError, OSError):
                    target = None  # the data preview says what is wrong with the file
                if target is not None:
                    spec["target"] = target
        elif name == current.get("name"):
            return
        else:
            info = DATASETS[name]
            spec = {"name": name, **_kept_split(current)}
            if info.kind == "generated":
                spec["samples"] = info.samples
                spec["noise"] = info.noise
        self.doc.set_value("dataset", spec)

    def open_data_file(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Train on a data file", str(self.base_dir() or Path.home()),
            "Data files (*.csv *.npz);;CSV (*.csv);;NumPy archives (*.npz);;All files (*)")
        if not path:
            return None
        base = self.base_dir()
        if base is not None:
            try:
                return str(Path(path).resolve().relative_to(base))
            except ValueError:
                pass
        return path

    def _on_loss_combo_activated(self, index: int) -> None:
        name = self.loss_combo.itemData(index)
        if name != _typed(self.doc.get("loss")).get("type"):
            self.doc.set_value("loss", {"type": name})

    def _on_optimizer_combo_activated(self, index: int) -> None:
        name = self.optimizer_combo.itemData(index)
        old = _typed(self.doc.get("optimizer"))
        if name == old.get("type"):
            return
        spec = {"type": name}
        if "lr" in old:  # the learning rate carries over; other hyper-parameters differ
            spec["lr"] = old["lr"]
        self.doc.set_value("optimizer", spec)

    def _on_schedule_combo_activated(self, index: int) -> None:
        name = self.schedule_combo.itemData(index)
        old = self.doc.get("training.lr_schedule")
        if name == (_typed(old).get("type") if old else None):
            return
        if name is None:
            self.doc.set_value("training.lr_schedule", MISSING)
            return
        cls = SCHEDULES[name]
        spec = {"type": name}
        for opt in cls.options:
            if opt.default is REQUIRED:
                spec[opt.name] = _initial(opt)
        self.doc.set_value("training.lr_schedule", spec)

    def _on_interval_combo_activated(self, index: int) -> None:
        if self.doc.get("training.lr_schedule"):
            self.doc.set_value("training.lr_schedule.interval",
                               self.interval_combo.itemData(index))

    def _on_speed_combo_activated(self, index: int) -> None:
        value = self.speed_combo.itemData(index)
        self.doc.set_value("training.speed", MISSING if value is None else value)

    def _on_early_stop_check_toggled(self, on: bool) -> None:
        if on:
            self.doc.set_value("training.early_stopping",
                               {o.name: o.default for o in EARLY_STOPPING_OPTIONS})
        else:
            self.doc.set_value("training.early_stopping", MISSING)

    def _on_amp_combo_activated(self, index: int) -> None:
        value = self.amp_combo.itemData(index)
        self.doc.set_value("training.mixed_precision", MISSING if value is None else value)

    def _on_full_batch_toggled(self, on: bool) -> None:
        if on:
            self.doc.set_value("training.batch_size", "full")
        else:
            self.doc.set_value("training.batch_size", TRAINING_DEFAULTS["batch_size"])

    def _on_init_apply_clicked(self) -> None:
        from bplab.ui.commands import SetNodeParam

        init = self.init_combo.currentData()
        targets = [n["id"] for n in self.doc.nodes()
                   if n.get("type") in type_names("has_weights")
                   and n.get("init") in (None, "default")]
        if not targets:
            return
        stack = self.doc.undo_stack
        stack.beginMacro(f"Initialise {len(targets)} layers with {init}")
        for nid in targets:
            stack.push(SetNodeParam(self.doc, nid, "init", init))
        stack.endMacro()

    # -- document signals ------------------------------------------------------------------
    def _on_doc_settings_changed(self, path: str) -> None:
        if not path.startswith("network") and not path.startswith("ui"):
            self.refresh()

    def _on_doc_project_replaced(self) -> None:
        self._preview_key = None
        self.refresh()

    def _on_preview_timer_timeout(self) -> None:
        spec = self.doc.get("dataset")
        if not spec:
            self.preview.show_message("No data set")
            return
        try:
            ds = load_dataset(spec, base_dir=self.base_dir())
        except (BplabError, OSError, ValueError) as exc:
            self.preview.show_message(f"Cannot load the data: {exc}")
            return
        self.preview.set_dataset(ds)
        if spec.get("name") == FROM_FILE:
            self._describe_file(ds)
        self.dataset_loaded.emit(ds)

    def _describe_file(self, ds) -> None:
        """What the file gave, under its name: rows, features, task, and what reading it
        changed (columns filled, one-hot encoded, left out; rows without a target)."""
        rows = len(ds.x_train) + len(ds.x_val)
        what = (f"{ds.n_classes} classes" if ds.task == "classification"
                else f"regression of {', '.join(ds.target_names or ['the target'])}")
        features = (f"{ds.input_shape[-1]} features" if len(ds.input_shape) == 1
                    else "inputs " + format_shape(ds.input_shape))
        lines = [f"{ds.title}: {rows:,} rows, {features}, {what}"]
        lines += [note[:1].upper() + note[1:] for note in ds.notes]
        self._file_info = (self._data_key(self.doc.get("dataset") or {}), "\n".join(lines),
                           ds.description)
        self.dataset_info.setText(self._file_info[1])
        self.dataset_info.setToolTip(self._file_info[2])
        self._refresh_divisor(self.doc.get("dataset") or {}, None)  # the task is known now


class _WrappedLabel(QLabel):
    """A word-wrapped label as tall as its text is at its width. The panel's form sits in a
    scroll area, which sizes rows by their size hint: a wrapped label's hint is one guessed
    width, and a file's notes (four lines at the dock's width) were cut at top and bottom."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)

    def setText(self, text: str) -> None:
        super().setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        height = self.heightForWidth(self.width())
        if height > 0 and height != self.minimumHeight():
            self.setMinimumHeight(height)


def _typed(spec: Any) -> dict:
    if isinstance(spec, str):
        return {"type": spec}
    return dict(spec) if isinstance(spec, dict) else {}


def _select(box: QComboBox, data: Any) -> None:
    i = box.findData(data)
    box.blockSignals(True)
    box.setCurrentIndex(i)
    box.blockSignals(False)


# Editors of the Run box built in a loop, and the attribute each is kept under.
_EDIT_ATTRS = {"l1": "l1_edit", "l2": "l2_edit", "clip_grad_norm": "clip_norm_edit",
               "clip_grad_value": "clip_value_edit", "seed": "seed_edit"}


def _editor_kind(setting: Setting) -> str:
    """The ValueEdit kind of a numeric setting. Empty text means None only where the default
    is None (off, or the data set's own default); a batch size is an integer ("full" is the
    check box beside it)."""
    base = "float" if setting.kind == "float" else "int"
    return f"{base}_or_none" if setting.nullable and setting.default is None else base


def _speed_text(value: float | None) -> str:
    return "As fast as possible" if value is None else f"{value:g} steps/s"


def _kept_split(current: dict) -> dict:
    """The split settings that carry over when another data set is chosen."""
    return {name: current.get(name, DATASET[name].default) for name in ("val_fraction", "seed")}
