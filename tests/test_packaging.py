"""The app installs as ``bplab.ui`` (from the ``ui/`` folder), never as a top-level ``ui``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _source_packages() -> set[str]:
    names = set()
    for folder, package in (("bplab", "bplab"), ("ui", "bplab.ui")):
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            names.add(".".join([package, *parts]))
    return names


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    assert listed == _source_packages()
    assert config["tool"]["setuptools"]["package-dir"] == {"bplab.ui": "ui"}


def test_the_app_imports_as_bplab_ui_and_no_top_level_ui_exists(tmp_path):
    code = (
        "import importlib.util, bplab.ui.main_window as m\n"
        "print(m.__name__, importlib.util.find_spec('ui') is None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["bplab.ui.main_window", "True"]
