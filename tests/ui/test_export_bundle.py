"""File > Export: the run as a PyTorch folder (model.py, train.py, data, initial weights)."""

from __future__ import annotations

import numpy as np
import pytest
from bplab.ui.main_window import MainWindow, demo_path
from PySide6.QtCore import QSettings

from bplab.io.bundle import BUNDLE_FILES
from bplab.io.export import load_weights
from bplab.training import Trainer


@pytest.fixture
def window(qtbot, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "settings"))
    w = MainWindow()
    w.ask_save_changes = lambda: pytest.fail("unexpected save prompt")
    assert w.open_path(demo_path(), as_copy=True)
    w.show()
    yield w
    w.automation = True  # no prompts while closing
    w.close()
    w.deleteLater()


def test_the_folder_dialog_writes_the_run_for_pytorch(window, tmp_path):
    asked = []

    def answer(caption):
        asked.append(caption)
        return str(tmp_path / "spiral_torch")

    window.get_directory = answer
    window.menus.act_export_bundle.trigger()  # File > Export for PyTorch
    assert asked and "PyTorch" in asked[0]
    folder = tmp_path / "spiral_torch"
    assert sorted(p.name for p in folder.iterdir()) == sorted(BUNDLE_FILES)
    assert "spiral_torch" in window.statusBar().currentMessage()
    # the run starts where `bplab train` on the window's project starts
    project, _ = window.training_project()
    trainer = Trainer(project, backend="numpy", dtype="float64")
    initial = load_weights(folder / "initial.safetensors")
    for name, value in trainer.network.state_dict().items():
        np.testing.assert_array_equal(initial[name], value, err_msg=name)
    with np.load(folder / "data.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["x_train"], trainer.dataset.x_train)
        np.testing.assert_array_equal(z["y_val"], trainer.dataset.y_val)


def test_a_cancelled_dialog_writes_nothing(window, tmp_path):
    before = set(tmp_path.rglob("*"))
    window.get_directory = lambda caption: None
    window.exports.export_bundle_dialog()
    assert set(tmp_path.rglob("*")) == before
    assert window.last_error is None


def test_a_folder_that_cannot_be_written_shows_why(window, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    window.get_directory = lambda caption: str(tmp_path / "taken")
    window.exports.export_bundle_dialog()
    assert window.last_error is not None
    assert "Cannot export the run for PyTorch" in window.last_error.text()
    window.last_error.close()
