"""Earlier and kinder checks: a mistyped `component` fails before any hook runs, a missing
`requires-python` is pointed out, componentize-py leaves no bytecode in the project, and
componentize-py's own `exports.init` is never offered as the init function."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_engine_shapes
from hatch_support import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_HOOK,
    RAW_COMPONENT,
    build_in_process,
    failed_build,
    make_project,
    tree_snapshot,
)
from test_hatch_real_engine import make_probe_project

from hatch_component_init import cli
from hatch_component_init.api import pre_initialize
from hatch_component_init.errors import InitExportError, MissingPathError

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

NOT_WRITTEN = (
    "Component `{component}` for build hook `component-init` does not exist, and no build hook that runs "
    "before `component-init` writes it"
)


class TestComponentPath:
    def test_typo_names_the_componentize_py_output_before_it_runs(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        hooks = COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK.replace(RAW_COMPONENT, "build/greeter.wsm")
        project = make_project(tmp_path / "p", hooks)
        before = tree_snapshot(project)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, MissingPathError)
        assert failure.message == (
            NOT_WRITTEN.format(component="build/greeter.wsm")
            + "; did you mean `build/greeter.wasm` (the `output` of build hook `componentize-py`)?"
        )
        # componentize-py never ran: it would have written build/greeter.wasm and said so.
        assert tree_snapshot(project) == before
        assert "Building component" not in failure.output

    def test_typo_names_a_similar_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        hooks = COMPONENT_INIT_HOOK.replace(RAW_COMPONENT, "build/greter.wasm")
        project = make_project(tmp_path / "p", hooks, raw_component=test_engine_shapes.GLOBALS)
        failure = failed_build(project, capsys)
        assert failure.message == NOT_WRITTEN.format(component="build/greter.wasm") + "; did you mean `build/greeter.wasm`?"

    def test_nothing_similar(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK.replace(RAW_COMPONENT, "out/lexicon.wasm"))
        failure = failed_build(project, capsys)
        assert failure.message == NOT_WRITTEN.format(component="out/lexicon.wasm") + (
            ". Build it first, e.g. with the `componentize-py` build hook listed before `component-init`."
        )

    def test_an_sdist_only_warns(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        # An sdist can be made before the component exists; it says a wheel cannot be built from it.
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK)
        assert build_in_process(project, target="sdist").name == "greeter-1.0.tar.gz"
        assert "a wheel cannot be built from this sdist" in capsys.readouterr().err


class TestRequiresPython:
    def test_missing_is_pointed_out_with_the_tag_and_the_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        import sys

        project = make_probe_project(tmp_path / "probe", test_engine_shapes.GLOBALS)
        wheel = build_in_process(project)
        assert wheel.name == "probe-1.0-py2.py3-none-any.whl"
        line = f'requires-python = ">={sys.version_info.major}.{sys.version_info.minor}"'
        warning = (
            "The project sets no `requires-python`, so the wheel is tagged `py2.py3-none-any`, as if it ran on "
            f"Python 2; add `{line}` to the `[project]` table of pyproject.toml for a `py3` wheel"
        )
        err = capsys.readouterr().err
        assert err.count(warning) == 1

        # The line it gives fixes it.
        pyproject = project / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('version = "1.0"\n', f'version = "1.0"\n{line}\n'))
        wheel.unlink()
        assert build_in_process(project).name == "probe-1.0-py3-none-any.whl"
        assert "requires-python" not in capsys.readouterr().err


@pytest.mark.slow
class TestComponentizePyApp:
    def test_internal_init_is_never_a_candidate(
        self, greeter_component: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # componentize-py's own `exports.init` is there, but it is not the app's.
        with pytest.raises(InitExportError) as info:
            pre_initialize(greeter_component, init_func="init")
        assert str(info.value).startswith(
            "the component has no function export `init` (did you mean `component-init`?). "
            "Function exports: `component-init`, `greet`, `state`. "
        )
        with pytest.raises(InitExportError) as info:
            pre_initialize(greeter_component, init_func="compnent-init")
        assert "no function export `compnent-init` (did you mean `component-init`?)." in str(info.value)

        source = tmp_path / "greeter.wasm"
        source.write_bytes(greeter_component)
        assert cli.main([str(source), "-o", str(tmp_path / "out.wasm"), "-f", "init"]) != 0
        err = capsys.readouterr().err
        assert "Function exports: `component-init`, `greet`, `state`." in err
        assert "exports.init" not in err
