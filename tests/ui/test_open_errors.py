"""Issue 13 in the app: no file kills the window. Opening, dropping, a recent file or an
example that cannot be read shows the error and keeps the current project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bad_files import BAD_PROJECTS, good_checkpoint, project_with_checkpoint
from bplab.ui import examples


@pytest.fixture
def window(shared_window):
    """The shared window on the demo, untitled, with no error showing."""
    w = shared_window
    assert w.open_path(examples.demo_path(), as_copy=True)
    w.last_error = None
    return w


def _kept_and_told(w, path: Path, name_before: str, phrase: str) -> None:
    """The error names the file and the problem; the project on screen is unchanged."""
    box = w.last_error
    assert box is not None, "no error shown"
    assert path.name in box.text() and phrase in box.text()
    assert w.doc.get("name") == name_before and w.path is None
    assert w.session.thread.isRunning()  # the training thread lives on
    box.close()
    w.last_error = None


def test_every_bad_project_is_shown_and_the_current_one_kept(window, tmp_path):
    name = window.doc.get("name")
    for case, (make, phrase) in sorted(BAD_PROJECTS.items()):
        path = make(tmp_path)
        assert window.open_path(path) is False, case
        _kept_and_told(window, path, name, phrase)


def test_a_loader_bug_is_shown_not_raised(window, tmp_path, monkeypatch):
    from bplab.ui import project_files

    def broken(path):
        raise KeyError("a bug")

    monkeypatch.setattr(project_files, "load_project", broken)
    path = BAD_PROJECTS["latin1"][0](tmp_path)
    assert window.open_path(path) is False
    assert "unexpected KeyError" in window.last_error.text()


def test_a_project_the_window_cannot_take_leaves_the_current_one(window, tmp_path,
                                                                  monkeypatch):
    from bplab.io.project import new_project

    name = window.doc.get("name")
    good = tmp_path / "good.json"
    good.write_text(__import__("json").dumps(new_project("other")))
    calls = []
    original = window.files.set_project

    def fails_once(project, path):
        calls.append(project.get("name"))
        if len(calls) == 1:
            raise IndexError("the editor choked")
        original(project, path)

    monkeypatch.setattr(window.files, "set_project", fails_once)
    assert window.open_path(good) is False
    assert "IndexError" in window.last_error.text()
    assert calls == ["other", name] and window.doc.get("name") == name


class _Drop:
    """The parts of a QDropEvent that ProjectFiles.dropped uses."""

    def __init__(self, path: Path):
        from PySide6.QtCore import QMimeData, QUrl

        self.mime = QMimeData()
        self.mime.setUrls([QUrl.fromLocalFile(str(path))])
        self.accepted = False

    def mimeData(self):
        return self.mime

    def acceptProposedAction(self):
        self.accepted = True

    def ignore(self):
        pass


def test_a_dropped_bad_project_is_shown(window, tmp_path, qtbot):
    name = window.doc.get("name")
    path, phrase = BAD_PROJECTS["deep_100000"][0](tmp_path), BAD_PROJECTS["deep_100000"][1]
    event = _Drop(path)
    window.files.dropped(event)
    assert event.accepted
    qtbot.waitUntil(lambda: window.last_error is not None)
    _kept_and_told(window, path, name, phrase)


def test_a_bad_or_missing_recent_file_is_shown_and_a_missing_one_forgotten(window, tmp_path):
    from PySide6.QtWidgets import QMenu

    name = window.doc.get("name")
    bad = BAD_PROJECTS["network_list"][0](tmp_path)
    gone = tmp_path / "gone.bplab.json"
    window.settings.setValue("recent", [str(bad), str(gone)])
    menu = QMenu()
    window.files.show_recent_in(menu)
    actions = {a.data(): a for a in menu.actions() if a.data()}
    actions[str(bad)].trigger()
    _kept_and_told(window, bad, name, "'network' must be an object")
    actions[str(gone)].trigger()
    _kept_and_told(window, gone, name, "no such project file")
    assert window.files.recent_files() == [str(bad)]  # the damaged file is still there


def test_a_damaged_example_is_left_out_and_opening_one_shows_the_error(
        window, tmp_path, monkeypatch):
    folder = tmp_path / "resources" / "examples"
    folder.mkdir(parents=True)
    good = folder / "spiral.bplab.json"
    good.write_bytes((examples.demo_path()).read_bytes())
    bad = folder / "broken.bplab.json"
    bad.write_bytes("{\"name\": \"Ünï\"".encode("latin-1"))
    monkeypatch.setattr(examples, "resources_dir", lambda: tmp_path / "resources")
    assert [p.name for _, p in examples.list_examples()] == ["spiral.bplab.json"]
    name = window.doc.get("name")
    assert window.open_path(bad, as_copy=True) is False
    _kept_and_told(window, bad, name, "not UTF-8")


def test_a_project_whose_checkpoint_is_damaged_opens_says_so_and_trains_afresh(
        window, tmp_path, qtbot):
    project, good = good_checkpoint(tmp_path)
    junk = tmp_path / "junk.ckpt.npz"
    junk.write_text("not a zip file")
    path = project_with_checkpoint(tmp_path, project, junk)
    assert window.open_path(path)
    text = window.last_error.text()
    assert "cannot be restored" in text and "junk.ckpt.npz" in text
    assert "not a bplab checkpoint" in text and window.doc.get("name") == project["name"]
    window.last_error.close()
    window.last_error = None
    with qtbot.waitSignal(window.session.finished, timeout=30_000) as blocker:
        window.session.run()  # before: every Run failed on the same checkpoint again
    assert blocker.args == ["done"] and window.last_error is None


@pytest.mark.slow
@pytest.mark.parametrize("case", ["latin1", "network_list", "deep_100000"])
def test_the_app_started_on_a_bad_project_quits_cleanly(tmp_path, case):
    """The crash of the issue: exit 134 and 'QThread: Destroyed while thread is still
    running' when the app was started on such a file."""
    path = BAD_PROJECTS[case][0](tmp_path)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-m", "bplab.ui", str(path), "--quit-after", "0.5"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "QThread: Destroyed" not in out.stderr and "Traceback" not in out.stderr
