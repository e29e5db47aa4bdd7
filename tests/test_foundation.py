"""The engine stays Qt-free and the package installs its entry point."""

import subprocess
import sys


def test_import_bplab_loads_no_qt():
    code = (
        "import sys, bplab, bplab.training, bplab.cli\n"
        "bad = [m for m in sys.modules"
        " if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'ui', 'shiboken6')"
        " or m.startswith('bplab.ui')]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
