"""docs/contributing.md: the suites it names and the mutation-testing command it gives are the project's."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from conftest import componentize
from test_docs import blocks

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "contributing.md"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_suite_runs_on_every_core() -> None:
    addopts = PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert addopts[addopts.index("-n") + 1] == "auto"
    assert any(req.startswith("pytest-xdist") for req in PYPROJECT["project"]["optional-dependencies"]["test"])
    # `-n auto` is one worker more than cores (tests/conftest.py), as the page says.
    from conftest import pytest_xdist_auto_num_workers

    assert pytest_xdist_auto_num_workers(None) == (os.cpu_count() or 1) + 1  # type: ignore[arg-type]
    assert "one worker more than cores" in PAGE.read_text().replace("\n", " ")


def test_the_quick_suite_is_what_the_page_says() -> None:
    text = PAGE.read_text()
    assert '`.venv/bin/python -m pytest -m "not slow"`' in text
    # The marker the quick suite leaves out is the one the suite declares.
    assert any(m.startswith("slow:") for m in PYPROJECT["tool"]["pytest"]["ini_options"]["markers"])


def test_a_quick_test_cannot_build_with_componentize_py(tmp_path: Path) -> None:
    # This test is not marked slow: the build helper refuses before running anything.
    with pytest.raises(AssertionError, match="must be marked slow"):
        componentize(tmp_path, "w", "app", tmp_path / "out.wasm")
    assert not (tmp_path / "out.wasm").exists()


def test_the_mutation_command_runs_the_quick_suite_without_xdist() -> None:
    config = PYPROJECT["tool"]["mutmut"]
    args = config["pytest_add_cli_args"]
    assert args[args.index("-m") + 1] == "not slow"
    assert args[args.index("-n") + 1] == "0"
    assert "no:faulthandler" in args
    # Only the catalogue tests, which read the package's source, are left out (the mutated copy holds every
    # mutant's text).
    assert "--deselect" not in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--ignore"] == ["tests/test_troubleshooting.py"]
    assert config["source_paths"] == ["hatch_component_init/"]
    assert any(req.startswith("mutmut") for req in PYPROJECT["project"]["optional-dependencies"]["mutation"])
    (block,) = [b for b in blocks(PAGE) if "mutmut run" in b.code]
    lines = block.code.splitlines()
    assert lines[0] == ".venv/bin/python -m pip install -e '.[test,mutation]'"
    # The module named in the example exists.
    module = re.search(r'mutmut run "hatch_component_init\.(\w+)\.\*"', block.code)
    assert module is not None and (REPO / "hatch_component_init" / f"{module.group(1)}.py").is_file()


def test_the_scores_table_names_real_modules() -> None:
    rows = re.findall(r"^\| `([\w/]+\.py)` \|", PAGE.read_text(), re.M)
    assert rows, "the page has no scores table"
    for name in rows:
        assert (REPO / "hatch_component_init" / name).is_file(), name


def _quick_tests(path: Path) -> set[str]:
    """The test functions of ``path`` that are not marked slow (by decorator or module ``pytestmark``)."""
    import ast

    tree = ast.parse(path.read_text())
    module_slow = any(
        isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
        and "slow" in ast.unparse(node.value)
        for node in tree.body
    )  # fmt: skip
    if module_slow:
        return set()
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        and not any("slow" in ast.unparse(d) for d in node.decorator_list)
    }  # fmt: skip


def test_each_guarantee_names_quick_tests_that_exist() -> None:
    section = PAGE.read_text().split("## Where each guarantee is checked by the quick suite", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", section)
    assert len(named) >= 30
    for file, test in named:
        assert test in _quick_tests(REPO / "tests" / file), f"{file}::{test} is not a quick test"
