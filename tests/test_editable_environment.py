"""What `pip install --no-build-isolation -e .` needs from the environment (docs/development-loop.md)."""

from __future__ import annotations

import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
from hatch_support import build_in_process
from packaging.requirements import Requirement
from test_hatch_real_engine import DESTINATION, PYPROJECT, make_probe_project
from test_engine_shapes import GLOBALS

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

WITHOUT_DEV_MODE_DIRS = PYPROJECT.replace('dev-mode-dirs = ["."]\n', "")


def test_hatch_component_init_brings_hatchling_and_wasmtime() -> None:
    names = {Requirement(text).name for text in requires("hatch-component-init") or [] if "extra ==" not in text}
    assert {"hatchling", "wasmtime"} <= names


def test_without_editables_hatchling_fails_after_the_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "editables", None)  # as in an environment without it
    root = make_probe_project(tmp_path / "p", GLOBALS)
    (root / "pyproject.toml").write_text(WITHOUT_DEV_MODE_DIRS)
    with pytest.raises(ModuleNotFoundError) as info:
        build_in_process(root, version="editable")
    assert info.value.name == "editables"
    # The hooks had done their work: the pre-initialized component is in the tree.
    assert (root / DESTINATION).is_file()


def test_dev_mode_dirs_needs_no_editables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "editables", None)
    root = make_probe_project(tmp_path / "p", GLOBALS)
    assert 'dev-mode-dirs = ["."]' in (root / "pyproject.toml").read_text()
    wheel = build_in_process(root, version="editable")
    assert wheel.name.endswith(".whl") and (root / DESTINATION).is_file()
