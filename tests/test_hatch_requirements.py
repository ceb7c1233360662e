"""The `requirements` folder: its key, its install with pip, and its pruning."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hatch_support import COMPONENTIZE_HOOK, RAW_COMPONENT, make_project, make_pure_wheel

from hatch_component_init.hatch import keys, requirements
from hatch_component_init.hatch.componentize import ComponentizePyBuildHook
from hatch_component_init.hatch.keys import requirements_key
from hatch_component_init.hatch.requirements import install_requirements


class TestKey:
    def test_strings_count(self) -> None:
        assert requirements_key(["idna>=3"]) != requirements_key(["idna>=3.7"])
        assert requirements_key(["a", "b"]) != requirements_key(["a"])

    @pytest.mark.parametrize(
        "name",
        [
            "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CONSTRAINT",
            "PIP_PRE", "PIP_ONLY_BINARY", "PIP_NO_BINARY",
        ],
    )  # fmt: skip
    def test_index_settings_count(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        monkeypatch.delenv(name, raising=False)
        before = requirements_key(["idna"])
        monkeypatch.setenv(name, "/somewhere")
        assert requirements_key(["idna"]) != before

    def test_other_pip_settings_do_not(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # pip sets some for its own subprocesses (a temp build tracker); they change nothing installed.
        before = requirements_key(["idna"])
        monkeypatch.setenv("PIP_BUILD_TRACKER", "/tmp/pip-build-tracker-x")
        monkeypatch.setenv("PIP_CACHE_DIR", "/tmp/elsewhere")
        assert requirements_key(["idna"]) == before

    def test_python_and_platform_count(self, monkeypatch: pytest.MonkeyPatch) -> None:
        before = requirements_key(["idna"])
        monkeypatch.setattr(sys, "platform", "win32")
        assert requirements_key(["idna"]) != before

    def test_the_minor_python_version_counts_not_the_micro(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Wheels are chosen by the minor version (cp312); a micro upgrade keeps the folder.
        major, minor = sys.version_info[:2]
        before = requirements_key(["idna"])
        monkeypatch.setattr(sys, "version_info", (major, minor, 999, "final", 0))
        assert requirements_key(["idna"]) == before
        monkeypatch.setattr(sys, "version_info", (major, minor + 1, 0, "final", 0))
        assert requirements_key(["idna"]) != before


def test_the_hook_keys_its_component_by_its_requirements(tmp_path: Path, snapshot_cache_dir: Path) -> None:
    # Another requirement is another folder and another componentize-py output; the same one is a hit.
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)

    def source_key(wanted: list[str] | None) -> str:
        config = {"wit": "wit", "world": "greeter", "module": "app", "output": RAW_COMPONENT}
        hook = ComponentizePyBuildHook(str(project), {**config, **({"requirements": wanted} if wanted else {})},
                                       None, None, str(project / "dist"), "wheel")  # fmt: skip
        return hook.source_key(hook.requirements_key(), snapshot_cache_dir)

    keys_of = [source_key(wanted) for wanted in (None, ["tinyword>=1"], ["tinyword==1.2"], ["tinyword>=1"])]
    assert len(set(keys_of[:3])) == 3
    assert keys_of[3] == keys_of[1]


def offline_tinyword(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip offered only `tinyword` 1.0 (a pure wheel, `WORD = 'hi'`), from a folder: the folder."""
    wheels = tmp_path / "wheels"
    make_pure_wheel(wheels, "tinyword", "1.0", {"tinyword/__init__.py": "WORD = 'hi'\n"})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return wheels


def test_installed_once_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = offline_tinyword(tmp_path, monkeypatch)
    folder, installed = install_requirements(["tinyword"], tmp_path / "cache", "componentize-py")
    assert installed
    assert (folder / "tinyword" / "__init__.py").read_text() == "WORD = 'hi'\n"
    assert folder.parent == tmp_path / "cache" / "requirements"
    # Nothing half-made is left next to it.
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    (wheels / "tinyword-1.0-py3-none-any.whl").unlink()  # a second install would fail now
    assert install_requirements(["tinyword"], tmp_path / "cache", "componentize-py") == (folder, False)


@pytest.mark.parametrize("other_build_first", [True, False], ids=["another-build-got-there-first", "a-failure"])
def test_a_rename_that_fails_is_fine_only_if_another_build_made_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_build_first: bool
) -> None:
    offline_tinyword(tmp_path, monkeypatch)
    rename = os.rename

    def raced(source: Path, target: Path) -> None:
        if other_build_first:
            shutil.copytree(source, target)  # the same requirements, installed by a concurrent build
            rename(source, target)  # now fails: the folder is there and not empty
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(requirements.os, "rename", raced)
    cache = tmp_path / "cache"
    if other_build_first:
        folder, installed = install_requirements(["tinyword"], cache, "componentize-py")
        assert installed and (folder / "tinyword" / "__init__.py").read_text() == "WORD = 'hi'\n"
    else:
        with pytest.raises(PermissionError):
            install_requirements(["tinyword"], cache, "componentize-py")
    assert [path.name for path in (cache / "requirements").iterdir() if path.name.endswith(".partial")] == []


def test_least_recently_used_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = tmp_path / "cache" / "requirements"
    for i in range(requirements.MAX_ENTRIES + 3):
        old = parent / f"old{i:02d}"
        old.mkdir(parents=True)
        os.utime(old, (i, i))
    wheels = tmp_path / "wheels"
    make_pure_wheel(wheels, "tinyword", "1.0", {"tinyword/__init__.py": ""})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    folder, _ = install_requirements(["tinyword"], tmp_path / "cache", "componentize-py")
    kept = sorted(p.name for p in parent.iterdir())
    assert len(kept) == requirements.MAX_ENTRIES
    assert folder.name in kept
    # The oldest went first.
    assert "old00" not in kept and f"old{requirements.MAX_ENTRIES + 2:02d}" in kept


def test_a_folder_written_by_another_version_is_never_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit skips the pure-Python check: a folder another release installed (which may check less) must not pass."""
    wheels = tmp_path / "wheels"
    make_pure_wheel(wheels, "fastword", "1.0", {"fastword/__init__.py": ""}, pure=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    with monkeypatch.context() as other_release:
        other_release.setattr(keys, "__version__", "0.0.1+checks-nothing")
        other_release.setattr(requirements, "_check_pure", lambda folder, hook_name: None)
        lax, installed = install_requirements(["fastword"], tmp_path / "cache", "componentize-py")
    assert installed and (lax / "fastword").is_dir()
    with pytest.raises(ValueError, match="`fastword-1.0` is not a pure-Python package"):
        install_requirements(["fastword"], tmp_path / "cache", "componentize-py")


def _flip(folder: Path) -> None:
    module = folder / "tinyword" / "__init__.py"
    module.write_text(module.read_text().replace("hi", "ho"))


def _truncate(folder: Path) -> None:
    module = folder / "tinyword" / "__init__.py"
    module.write_bytes(module.read_bytes()[:3])


def _empty(folder: Path) -> None:
    (folder / "tinyword" / "__init__.py").write_bytes(b"")


def _add(folder: Path) -> None:
    (folder / "tinyword" / "extra.py").write_text("WORD = 'injected'\n")


def _remove(folder: Path) -> None:
    (folder / "tinyword" / "__init__.py").unlink()


@pytest.mark.parametrize("damage", [_flip, _truncate, _empty, _add, _remove])
def test_a_damaged_folder_is_removed_reported_and_installed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: object
) -> None:
    offline_tinyword(tmp_path, monkeypatch)
    folder, _ = install_requirements(["tinyword"], tmp_path / "cache", "componentize-py")
    # What componentize-py's guest writes there is no damage.
    (folder / "tinyword" / "__pycache__").mkdir()
    (folder / "tinyword" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"guest bytecode")
    warnings: list[str] = []
    assert install_requirements(["tinyword"], tmp_path / "cache", "componentize-py", warnings.append) == (folder, False)
    assert warnings == []
    damage(folder)  # type: ignore[operator]
    again, installed = install_requirements(["tinyword"], tmp_path / "cache", "componentize-py", warnings.append)
    assert installed and again == folder  # the same files, so the same name
    assert (again / "tinyword" / "__init__.py").read_text() == "WORD = 'hi'\n"
    assert not (again / "tinyword" / "extra.py").exists()
    assert warnings == [
        f"Removed a damaged entry of the requirements cache, `{folder}` (its files no longer match the digest in "
        "its name); it is installed again"
    ]
