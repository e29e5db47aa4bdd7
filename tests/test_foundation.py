"""The engine stays Qt-free and the package installs its entry point."""

import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "bplab"


def _engine_modules() -> list[str]:
    """Every module under bplab/ (the app, installed as bplab.ui, lives in ui/)."""
    names = []
    for path in sorted(ENGINE.rglob("*.py")):
        parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] != "__main__":
            names.append(".".join(parts))
    return names


def test_every_engine_module_imports_without_qt():
    modules = _engine_modules()
    assert len(modules) > 30 and "bplab.training" in modules and "bplab.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m in sys.modules"
        " if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'ui', 'shiboken6')"
        " or m.startswith('bplab.ui')]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
