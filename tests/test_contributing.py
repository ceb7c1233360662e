"""docs/contributing.md: the suites it names and the mutation-testing command it gives are the project's."""

from __future__ import annotations

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
