"""Every option of both hooks is checked before either does any work, and the build requirements they declare.

Each bad table here sits in a project whose `componentize-py` hook runs first:
the proof that a mistake fails before any work is that componentize-py never
ran (no component, nothing in the caches). If validation came late, these
tests would still fail, only after a real componentize-py build.
"""

from __future__ import annotations

import re

from pathlib import Path

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_HOOK,
    RAW_COMPONENT,
    build_in_process,
    failed_build,
    make_project,
)

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")


def builder_config(project: Path, target: str = "wheel"):  # type: ignore[no-untyped-def]
    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    return (WheelBuilder if target == "wheel" else SdistBuilder)(str(project)).config


def assert_nothing_ran(project: Path, cache: Path) -> None:
    assert not (project / RAW_COMPONENT).exists()
    assert not list(project.glob("dist/*.whl"))
    assert not cache.exists() or not list(cache.rglob("*.wasm"))


BAD_INIT_TABLES = [
    ('dir = { "data" = "/data" }\n', ValueError, "Unknown option `dir` for build hook `component-init`; did you mean `dirs`?"),
    ('destinaton = "x.wasm"\n', ValueError, "Unknown option `destinaton` for build hook `component-init`; did you mean `destination`?"),
    ('timeout = "60"\n', TypeError, "Option `timeout` for build hook `component-init` must be a number"),
    ('init-func = "setup(1,"\n', ValueError, "Option `init-func` for build hook `component-init` is not a valid init call: "),
    ('keep-init-func = "yes"\n', TypeError, "Option `keep-init-func` for build hook `component-init` must be a boolean"),
]


class TestBeforeAnyHookRuns:
    @pytest.mark.parametrize(("extra", "error", "message"), BAD_INIT_TABLES)
    def test_component_init_mistake_stops_componentize_py(
        self, tmp_path: Path, snapshot_cache_dir: Path, extra: str, error: type[Exception], message: str, capsys: pytest.CaptureFixture[str]) -> None:
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK + extra)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, error)
        assert str(failure.error).startswith(message)
        assert_nothing_ran(project, snapshot_cache_dir)

    def test_dirs_of_wrong_type(self, tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        hooks = COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK.replace('dirs = { "data" = "/data" }', 'dirs = "data"')
        project = make_project(tmp_path / "p", hooks)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, TypeError)
        assert re.search("^Option `dirs` for build hook `component-init` must be a table of strings$", str(failure.error))
        assert_nothing_ran(project, snapshot_cache_dir)

    def test_missing_dirs_directory(self, tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        hooks = COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK.replace('"data" = "/data"', '"assets" = "/data"')
        project = make_project(tmp_path / "p", hooks)
        message = "^Option `dirs` for build hook `component-init` names directory `assets`, which does not exist$"
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, FileNotFoundError)
        assert re.search(message, str(failure.error))
        assert_nothing_ran(project, snapshot_cache_dir)

    @pytest.mark.parametrize(
        ("extra", "error", "message"),
        [
            ('worl = "greeter"\n', ValueError, "Unknown option `worl` for build hook `componentize-py`; did you mean `world`?"),
            ('python_path = ["."]\n', ValueError, "Unknown option `python_path` for build hook `componentize-py`; did you mean `python-path`?"),
            ('requirements = "idna"\n', TypeError, "Option `requirements` for build hook `componentize-py` must be an array of strings"),
            ('requirements = ["idna >>> 3"]\n', ValueError, "Option `requirements` for build hook `componentize-py` has an invalid requirement `idna >>> 3`"),
            ('componentize-py-version = "latest"\n', ValueError, "Option `componentize-py-version` for build hook `componentize-py` must be a version"),
            ('python-path = ["src"]\n', FileNotFoundError, "Option `python-path` for build hook `componentize-py` names directory `src`, which does not exist"),
        ],
    )
    def test_componentize_py_mistake(
        self, tmp_path: Path, snapshot_cache_dir: Path, extra: str, error: type[Exception], message: str, capsys: pytest.CaptureFixture[str]) -> None:
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + extra + COMPONENT_INIT_HOOK)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, error)
        assert str(failure.error).startswith(message)
        assert_nothing_ran(project, snapshot_cache_dir)

    def test_bad_module_and_missing_wit(self, tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK.replace('module = "app"', 'module = "my-app"'))
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, ValueError)
        assert re.search("must be a Python module name such as `app`, not `my-app`", str(failure.error))
        project = make_project(tmp_path / "q", COMPONENTIZE_HOOK.replace('wit = "wit"', 'wit = "api"'))
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, FileNotFoundError)
        assert re.search("^Option `wit` for build hook `componentize-py` names `api`", str(failure.error))
        assert_nothing_ran(project, snapshot_cache_dir)

    def test_while_build_requirements_are_computed(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        # A frontend asks for the build requirements before it installs them: a mistake fails there.
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK + 'dir = "data"\n')
        with pytest.raises(SystemExit):
            _ = builder_config(project).dependencies
        assert capsys.readouterr().err.endswith("did you mean `dirs`?\n")


class TestBuildRequirements:
    def test_default_componentize_py(self, tmp_path: Path) -> None:
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK)
        assert builder_config(project).dependencies == ["componentize-py==0.25.1"]

    @pytest.mark.parametrize(
        ("pin", "requirement"),
        [("0.26.0", "componentize-py==0.26.0"), (">=0.25,<0.27", "componentize-py>=0.25,<0.27")],
    )
    def test_pinned(self, tmp_path: Path, pin: str, requirement: str) -> None:
        hooks = COMPONENTIZE_HOOK + f'componentize-py-version = "{pin}"\n'
        assert builder_config(make_project(tmp_path / "p", hooks)).dependencies == [requirement]

    def test_requirements_need_pip(self, tmp_path: Path) -> None:
        hooks = COMPONENTIZE_HOOK + 'requirements = ["idna>=3"]\n'
        assert builder_config(make_project(tmp_path / "p", hooks)).dependencies == ["componentize-py==0.25.1", "pip"]

    def test_nothing_for_an_sdist(self, tmp_path: Path) -> None:
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK)
        assert builder_config(project, "sdist").dependencies == []

    def test_other_version_installed_warns(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Without isolation, the environment's componentize-py is used; a pin it does not satisfy is reported.
        from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

        def stop(_hook: object, _version: str) -> None:
            raise RuntimeError("stop before running componentize-py")

        monkeypatch.setattr(ComponentizePyBuildHook, "_run_componentize_py", stop)
        hooks = COMPONENTIZE_HOOK + 'componentize-py-version = "0.24.0"\n'
        failure = failed_build(make_project(tmp_path / "p", hooks), capsys)
        assert isinstance(failure.error, RuntimeError)
        assert re.search("stop before", str(failure.error))
        assert (
            "Build hook `componentize-py` asks for componentize-py==0.24.0, but componentize-py 0.25.1 is installed "
            "in this environment (a build without isolation); using it"
        ) in failure.output


class TestExampleWheelTag:
    """README's Example sets `requires-python`: without it hatchling tags the wheel `py2.py3-none-any`."""

    @pytest.mark.parametrize(
        ("requires_python", "wheel"),
        [('requires-python = ">=3.11"\n', "greeter-1.0-py3-none-any.whl"), ("", "greeter-1.0-py2.py3-none-any.whl")],
    )
    def test_tag(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, requires_python: str, wheel: str) -> None:
        monkeypatch.setenv("HATCH_COMPONENT_INIT_SKIP", "1")  # the tag is what is checked, not the snapshot
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK, raw_component=b"\0asm\x0d\0\x01\0")
        toml = project / "pyproject.toml"
        toml.write_text(toml.read_text().replace('requires-python = ">=3.11"\n', requires_python))
        assert build_in_process(project).name == wheel
