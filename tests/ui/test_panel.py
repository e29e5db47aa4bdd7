"""The training panel asks the engine's settings tables; it computes no range of its own."""

from __future__ import annotations

import ast
import inspect

import pytest
from bplab.ui.models.document import ProjectDocument
from bplab.ui.training import panel as panel_module
from bplab.ui.training.panel import HyperForm, TrainingPanel, ValueEdit

from bplab.settings import DATASET, EARLY_STOPPING_OPTIONS, SPEED_PRESETS, TRAINING

# panel attribute -> (section, setting name)
EDITORS = {
    "samples_edit": ("dataset", "samples"),
    "noise_edit": ("dataset", "noise"),
    "val_edit": ("dataset", "val_fraction"),
    "window_edit": ("dataset", "window"),
    "horizon_edit": ("dataset", "horizon"),
    "divisor_edit": ("dataset", "target_divisor"),
    "epochs_edit": ("training", "epochs"),
    "checkpoint_edit": ("training", "checkpoint_segments"),
    "patience_edit": ("training.early_stopping", "patience"),
    "min_delta_edit": ("training.early_stopping", "min_delta"),
    "batch_edit": ("training", "batch_size"),
    "l1_edit": ("training", "l1"),
    "l2_edit": ("training", "l2"),
    "clip_norm_edit": ("training", "clip_grad_norm"),
    "clip_value_edit": ("training", "clip_grad_value"),
    "seed_edit": ("training", "seed"),
}
TABLES = {"dataset": DATASET, "training": TRAINING,
          "training.early_stopping": {o.name: o for o in EARLY_STOPPING_OPTIONS}}


@pytest.fixture
def panel(qtbot, spiral):
    w = TrainingPanel(ProjectDocument(spiral), base_dir=lambda: None)
    qtbot.addWidget(w)
    return w


def _probes(setting) -> list[str]:
    """Texts at and just beyond the table's bounds, plus a value inside."""
    step = 1 if setting.kind in ("int", "batch") else 0.01
    values = []
    for bound in (setting.low, setting.high):
        if bound is not None:
            values += [bound - step, bound, bound + step]
    if setting.low is not None and setting.high is not None:
        values.append((setting.low + setting.high) / 2)
    values += [-1, 0, 0.5, 3, 1e9]
    return [f"{v:g}" if isinstance(v, float) else str(v) for v in values]


def _edit(editor: ValueEdit, text: str) -> list:
    seen: list = []
    editor.value_edited.connect(seen.append)
    editor.setText(text)
    editor.editingFinished.emit()
    editor.value_edited.disconnect(seen.append)
    return seen


@pytest.mark.parametrize("attr", EDITORS)
def test_editor_accepts_exactly_what_the_engine_accepts(panel, attr):
    section, name = EDITORS[attr]
    setting = TABLES[section][name]
    editor = getattr(panel, attr)
    assert editor.toolTip() == setting.tooltip  # help and range come from the table
    for text in _probes(setting):
        try:
            value, parsed = panel_module._parse(editor.kind, text), True
        except ValueError:  # "0.5" in an integer editor: the engine gets the number
            value, parsed = float(text), False
        engine = setting.accepts(value)
        emitted = _edit(editor, text)
        assert bool(emitted) == engine, f"{section}.{name} = {text!r}"
        if engine:
            assert emitted == [setting.check(section, value)]
            assert panel.doc.get(f"{section}.{name}") == emitted[0]
        elif parsed:  # refused: the editor shows the engine's own message
            assert f"{section}: {name} must be {setting.words()}" in editor.toolTip()


@pytest.mark.parametrize("attr, text, accepted", [
    ("val_edit", "0.95", True),   # the panel used to stop at 0.9; the engine takes < 1
    ("val_edit", "1", False),
    ("batch_edit", "0", False),
    ("epochs_edit", "0", True),   # the engine accepts a run of no epochs
    ("seed_edit", "-1", False),   # numpy refuses negative seeds: the engine now says so first
])
def test_bounds_that_drifted(panel, attr, text, accepted):
    section, name = EDITORS[attr]
    assert TABLES[section][name].accepts(panel_module._parse(getattr(panel, attr).kind, text)) \
        is accepted
    assert bool(_edit(getattr(panel, attr), text)) is accepted


def test_empty_means_off_only_where_the_default_is_none(panel):
    for attr, (section, name) in EDITORS.items():
        setting = TABLES[section][name]
        editor = getattr(panel, attr)
        assert editor.kind.endswith("_or_none") == (setting.default is None), attr
        if setting.default is None:
            assert _edit(editor, "") == [None]


def test_every_settings_editor_is_described_by_the_table(panel):
    """A new editor outside the hyper-parameter forms must come from a table entry too."""
    tips = {s.tooltip for table in TABLES.values() for s in table.values()}
    editors = [e for e in panel.findChildren(ValueEdit)
               if not isinstance(e.parentWidget(), HyperForm)]
    assert len(editors) == len(EDITORS)
    for editor in editors:
        assert editor._tip in tips


def test_choice_boxes_list_the_engine_choices(panel):
    for box, setting in ((panel.dtype_combo, TRAINING["dtype"]),
                         (panel.backend_combo, TRAINING["backend"])):
        assert [box.itemData(i) for i in range(box.count())] == list(setting.choices)
        assert box.toolTip() == setting.tooltip


def test_panel_defines_no_range_check_of_its_own():
    """No function in the panel both compares a value's order and raises: ranges are the
    engine's (bplab.settings, Hyper). Parsing text (``_parse``) compares nothing."""
    tree = ast.parse(inspect.getsource(panel_module))
    offenders = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.Lambda)):
            continue
        nodes = list(ast.walk(fn))
        orders = any(isinstance(n, ast.Compare) and any(
            isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in n.ops) for n in nodes)
        raises = any(isinstance(n, ast.Raise) for n in nodes)
        if orders and raises:
            offenders.append(getattr(fn, "name", "<lambda>"))
    assert offenders == []
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"INIT_LAYERS", "_positive_int", "_fraction", "_non_negative"}
    # Literal layer type names would duplicate the layer traits
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert not strings & {"Dense", "Conv2D"}


def test_speed_early_stopping_precision_and_checkpointing_write_the_project(panel):
    doc = panel.doc
    assert [panel.speed_combo.itemData(i) for i in range(panel.speed_combo.count())] == \
        list(SPEED_PRESETS)
    panel.speed_combo.activated.emit(panel.speed_combo.findData(5.0))
    assert doc.get("training.speed") == 5.0
    panel.speed_combo.activated.emit(0)
    assert "speed" not in (doc.get("training") or {})
    assert not panel.patience_edit.isEnabled()
    panel.early_stop_check.setChecked(True)
    assert doc.get("training.early_stopping") == {"patience": 10, "min_delta": 0.0,
                                                  "restore_best": True}
    assert panel.patience_edit.isEnabled()
    assert _edit(panel.patience_edit, "3") == [3]
    assert doc.get("training.early_stopping.patience") == 3
    assert _edit(panel.patience_edit, "0") == []  # the table's bound: at least 1
    panel.amp_combo.activated.emit(panel.amp_combo.findData("float16"))
    assert doc.get("training.mixed_precision") == "float16"
    assert _edit(panel.checkpoint_edit, "2") == [2]
    assert doc.get("training.checkpoint_segments") == 2
    doc.undo_stack.undo()
    assert panel.checkpoint_edit.text() == ""


def test_mixed_precision_is_disabled_with_the_reason_in_float64(panel):
    panel.doc.set_value("training.dtype", "float64")
    assert not panel.amp_combo.isEnabled()
    assert "float32" in panel.amp_combo.toolTip()
    panel.doc.set_value("training.dtype", "float32")
    assert panel.amp_combo.isEnabled()
