"""Fixtures for the editor tests: an example project with a residual branch."""

from __future__ import annotations

import copy
import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from bplab.layers import LAYERS


@pytest.fixture(autouse=True)
def _clean_up_between_tests(request):
    """Windows a test closed (deleteLater) are deleted, and their Python reference cycles
    collected, here between tests rather than at some point of the next test."""
    yield
    if "qapp" not in request.fixturenames and "qtbot" not in request.fixturenames:
        return
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture
def open_window(qtbot, tmp_path):
    """``open_window(path=None, as_copy=None, size=None)``: a shown MainWindow on ``path``
    (the demo when None; opened as a copy unless ``as_copy`` says otherwise, so tests never
    write over an example), with its own settings folder, no save prompts, and a teardown
    that checks the training thread has ended."""
    from bplab.ui.examples import demo_path
    from bplab.ui.main_window import MainWindow
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "settings"))
    windows = []

    def make(path=None, as_copy=None, size=None) -> MainWindow:
        w = MainWindow()  # closed below, not by qtbot (it would close before automation=True)
        w.ask_save_changes = lambda: pytest.fail("unexpected save prompt")
        assert w.open_path(path or demo_path(), as_copy=True if as_copy is None else as_copy)
        if size is not None:
            w.resize(*size)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.automation = True  # no prompts while tearing down
        w.close()
        assert w.session.thread.isFinished()
        w.deleteLater()

SPIRAL = {
    "format": "bplab-project", "version": 1, "name": "Spiral, two tanh layers",
    "dataset": {"name": "spiral", "samples": 500, "noise": 0.1, "val_fraction": 0.2, "seed": 0},
    "network": {"nodes": [
        {"id": "in", "type": "Input", "shape": [2]},
        {"id": "fc1", "type": "Dense", "units": 8, "init": "xavier_uniform"},
        {"id": "act1", "type": "Tanh"},
        {"id": "out", "type": "Dense", "units": 2},
    ]},
    "loss": {"type": "cross_entropy"}, "optimizer": {"type": "adam", "lr": 0.01},
    "training": {"epochs": 200, "batch_size": 32, "shuffle": True, "seed": 0,
                 "dtype": "float32"},
    "ui": {"positions": {"in": [0, 0], "fc1": [0, 120]}, "zoom": 1.0},
}


@pytest.fixture
def spiral() -> dict:
    return copy.deepcopy(SPIRAL)


@pytest.fixture
def merge_type() -> str:
    """A registered merge layer (arity None), e.g. Add; skipped until one exists."""
    for name, cls in LAYERS.items():
        if cls.arity is None:
            return name
    pytest.skip("no merge layer registered yet")


@pytest.fixture(scope="module")
def shared_window(qapp, tmp_path_factory):
    """One window for a whole test module (a window takes about a second to build), with its
    own settings folder, no save prompts, and a teardown that checks the training thread
    has ended."""
    from bplab.ui.main_window import MainWindow
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path_factory.mktemp("settings")))
    w = MainWindow()
    w.ask_save_changes = lambda: pytest.fail("unexpected save prompt")
    w.show()
    yield w
    w.automation = True
    w.close()
    assert w.session.thread.isFinished()
    w.deleteLater()

