"""The package's import graph: every module imports on its own, and no two modules import each other.

Every import counts, including those inside functions and under
``TYPE_CHECKING``: a helper that names its caller's class for a type hint
still ties the two modules together (and a lazy import only hides a circle
until someone moves it to the top).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hatch_component_init

PACKAGE = "hatch_component_init"
ROOT = Path(hatch_component_init.__file__).parent


def module_names() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package by its `__init__`)."""
    names: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name a ``from ... import`` starts from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of the package that ``module`` imports anywhere in its source (its own package left out)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for target in targets:
            if target in known and target != module:
                found.add(target)
    # Importing a submodule runs its parents' `__init__` first; that is not a circle of ours.
    return {name for name in found if not module.startswith(name + ".")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of names (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle is not None:
                    return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            if cycle is not None:
                return cycle
    return None


def test_cycle_finder_sees_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_module_of_the_package_imports_itself_in_a_circle() -> None:
    known = module_names()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    # The graph is real: the hook imports its helpers, and the loader template (rendered into the
    # user's package) imports our rebuild-on-load module, which must not lead back to the hook.
    assert f"{PACKAGE}.hatch.loader" in graph[f"{PACKAGE}.hatch.component_init"]
    assert graph[f"{PACKAGE}.hatch.loader_template"] == {f"{PACKAGE}.hatch.editable"}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The import circles of ``graph``: its strongly connected parts of more than one module (or a
    module importing itself), found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in sorted(graph.get(name, ())):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            part = set()
            while True:
                member = stack.pop()
                part.add(member)
                if member == name:
                    break
            if len(part) > 1 or name in graph.get(name, ()):
                found.append(part)

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def test_circle_counter_counts_each_circle_once() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}) == [
        {"a", "b", "c"},
        {"d", "e"},
    ]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_hooks_modules_import_in_no_circle() -> None:
    # Every import of hatch/*.py counts, the loader template's of the rebuild-on-load module too.
    known = {name: path for name, path in module_names().items() if path.parent == ROOT / "hatch"}
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert sum(len(targets) for targets in graph.values()) > 20  # the graph is real
    assert circles(graph) == []


@pytest.mark.parametrize("module", sorted(name for name in module_names() if not name.endswith(".__main__")))
def test_each_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    # (`__main__` runs the CLI when imported; `python -m hatch_component_init --help` is test_cli's.)
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
