"""The shape of the code, checked with ast (docs/ARCHITECTURE.md): import-linter holds the layer
contracts; what it cannot express is checked here.

- no module of editor/ui/ over UI_MAX_LINES lines;
- no function over FUNCTION_MAX_LINES lines in editor/, models/ and bench/ (KNOWN_LONG may only
  shrink: a listed function that got short, or went away, fails until its entry is removed);
- editor/core/ and editor/state/ never import PySide6.QtWidgets (import-linter cannot forbid a
  subpackage of an external package);
- no import cycle between editor modules, counting imports under TYPE_CHECKING and inside
  functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UI_MAX_LINES = 400
FUNCTION_MAX_LINES = 60
# Functions still over FUNCTION_MAX_LINES, by "path:qualified name". The test fails when a listed
# one is short (or gone), so this list can only shrink: remove an entry once its function is split.
KNOWN_LONG: set[str] = set()


def _sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    """(qualified name, lines) of every function, nested ones included."""
    out = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            assert node.end_lineno is not None
            out.append((name, node.end_lineno - node.lineno + 1))
            out += _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            out += _functions(node, f"{prefix}{node.name}.")
        else:
            out += _functions(node, prefix)
    return out


def _long_functions() -> dict[str, int]:
    found = {}
    for path in _sources("editor", "models", "bench"):
        rel = path.relative_to(ROOT).as_posix()
        for name, lines in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            if lines > FUNCTION_MAX_LINES:
                found[f"{rel}:{name}"] = lines
    return found


def test_ui_modules_stay_small() -> None:
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in _sources("editor/ui")}
    assert len(sizes) > 3  # the ui layer is where this test looks
    big = {p: n for p, n in sizes.items() if n > UI_MAX_LINES}
    assert not big, f"ui modules over {UI_MAX_LINES} lines: {big}"


def test_no_new_long_functions() -> None:
    new = {k: v for k, v in _long_functions().items() if k not in KNOWN_LONG}
    assert not new, f"functions over {FUNCTION_MAX_LINES} lines: {new}"


def test_known_long_list_only_shrinks() -> None:
    found = _long_functions()
    fixed = sorted(k for k in KNOWN_LONG if k not in found)
    assert not fixed, f"short now (or gone): remove from KNOWN_LONG: {fixed}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, wherever the statement is (TYPE_CHECKING, functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("layer", ["editor/core", "editor/state"])
def test_core_and_state_import_no_widgets(layer: str) -> None:
    bad = {p.relative_to(ROOT).as_posix(): sorted(i for i in _imports(p)
                                                  if i.startswith("PySide6.QtWidgets"))
           for p in _sources(layer)}
    assert not {k: v for k, v in bad.items() if v}


def test_no_import_cycles_in_editor() -> None:
    paths = {_module_name(p): p for p in _sources("editor")}
    graph = {m: {i for i in _imports(p) if i in paths and i != m} for m, p in paths.items()}
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:  # Tarjan: every strongly connected component of > 1 module
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for m in graph:
        if m not in index:
            visit(m)
    assert len(graph) > 20
    assert not cycles, f"import cycles: {cycles}"
