"""The shape of the house, checked: no import circles, short functions, a small main window.

These read the source with :mod:`ast` (nothing is imported), so they hold for every module,
including ones a test run never loads. Function-level imports count as edges too: a circle
hidden inside a function is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Source folder -> the package name it is imported under.
PACKAGES = {"bplab": ROOT / "bplab", "bplab.ui": ROOT / "ui"}
MAX_FUNCTION_LINES = 100
MAX_MAIN_WINDOW_LINES = 400


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules ``module`` imports anywhere in its body (module or function level)."""

    def owner(name: str) -> str | None:
        # ``import a.b.c`` names a.b.c, or its longest known prefix (a name inside a module).
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        for name in names:
            # ``from pkg import mod`` imports pkg (its __init__) and then pkg.mod.
            hit = owner(name)
            if hit is not None and hit != module:
                targets.add(hit)
    return targets


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(sorted(component))
    return result


def _is_package_init(path: Path) -> bool:
    return path.name == "__init__.py"


def test_no_import_circles():
    known = _modules()
    graph = {}
    for module, path in known.items():
        edges = _imports(module, path, known)
        # A package importing its own submodules (re-exports in __init__) is not a circle:
        # Python loads the package first either way.
        if _is_package_init(path):
            edges = {e for e in edges if not e.startswith(module + ".")}
        graph[module] = {e for e in edges if not module.startswith(e + ".")}
    circles = _cycles(graph)
    assert circles == [], "\n".join(" <-> ".join(c) for c in circles)


def test_cycle_finder_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_function_over_100_lines():
    long = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert long == [], "\n".join(long)


def test_main_window_is_small():
    lines = len((ROOT / "ui" / "main_window.py").read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MAIN_WINDOW_LINES


def test_engine_never_imports_qt_or_the_app():
    bad = []
    for module, path in _modules().items():
        if module.startswith("bplab.ui"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                if name.split(".")[0] in ("PySide6", "pyqtgraph", "shiboken6", "ui") or (
                    name.startswith("bplab.ui") and module != "bplab.cli"
                ):
                    bad.append(f"{module} imports {name}")
    assert bad == []


def test_the_app_names_no_layer_family():
    """Which layers have weights, are activations or take sequences is a trait the engine
    declares (``bplab.layers.has_trait``); the app asks instead of listing type names. Only
    the Input, which every project starts from, may be named."""
    from bplab.layers import LAYERS

    named = []
    for module, path in _modules().items():
        if not module.startswith("bplab.ui"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in LAYERS and node.value != "Input":
                named.append(f"{module}:{node.lineno} {node.value!r}")
    assert named == [], "\n".join(named)
