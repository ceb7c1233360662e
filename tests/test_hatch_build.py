"""The hooks inside real hatchling builds (in process), with the engine replaced by a fake.

These check what the hooks do with files, build data, the cache and errors.
tests/test_hatch_end_to_end.py runs the real engine and real build frontends.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_HOOK,
    DESTINATION,
    DEV_MODE_DIRS,
    RAW_COMPONENT,
    build_in_process,
    failed_build,
    make_project,
    tree_snapshot,
    wheel_member,
)

from hatch_component_init import api
from hatch_component_init.errors import BuildStepError, ComponentInitError, InitFailedError
from hatch_component_init.hatch.component_init import ComponentInitBuildHook
from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

RAW = b"\x00asm\x0d\x00\x01\x00 raw component"


def fake_snapshot(component: bytes) -> bytes:
    return b"SNAPSHOT of " + hashlib.sha256(component).hexdigest().encode()


class FakeEngine:
    """Stands in for `pre_initialize_unchecked`: records calls, prints like a guest, returns a marker
    (and a check that passes)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error: Exception | None = None
        #: (level, sentence) pairs told through `on_note` after the output.
        self.notes: list[tuple[str, str]] = []

    def __call__(self, component: bytes, **kwargs: Any) -> tuple[bytes, Callable[[], None]]:
        self.calls.append({"component": component, **kwargs})
        on_output = kwargs["on_output"]
        # Chunks that split lines, as a guest's writes do.
        on_output("stdout", b"init: reading ")
        on_output("stdout", b"/data\ninit: done\nno newline at the end")
        on_output("stderr", b"init: a warning\n")
        for level, text in self.notes:
            kwargs["on_note"](level, text)
        if self.error is not None:
            raise self.error
        return fake_snapshot(component), lambda: None


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(api, "pre_initialize_unchecked", fake)
    return fake


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The greeter project with only `component-init`, its raw component already built."""
    return make_project(tmp_path / "greeter", COMPONENT_INIT_HOOK, raw_component=RAW)


class TestWheel:
    def test_ships_snapshot_at_destination(self, project: Path, engine: FakeEngine) -> None:
        before = tree_snapshot(project)
        wheel = build_in_process(project)

        assert wheel.name == "greeter-1.0-py3-none-any.whl"
        assert wheel_member(wheel, DESTINATION) == fake_snapshot(RAW)
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            wheel_metadata = archive.read("greeter-1.0.dist-info/WHEEL").decode()
        assert names.count(DESTINATION) == 1
        assert "build/greeter.wasm" not in names
        assert "Root-Is-Purelib: true" in wheel_metadata
        # The source tree is untouched (the wheel itself goes to dist/).
        after = tree_snapshot(project)
        assert {k: v for k, v in after.items() if not k.startswith("dist/")} == before

    def test_ships_nothing_from_dirs_even_inside_the_package(self, tmp_path: Path, engine: FakeEngine) -> None:
        hooks = COMPONENT_INIT_HOOK.replace('dirs = { "data" = "/data" }', 'dirs = { "data" = "/data", "greeter_pkg/assets" = "/assets" }')
        project = make_project(tmp_path / "p", hooks, raw_component=RAW)
        (project / "greeter_pkg" / "assets" / "deep").mkdir(parents=True)
        (project / "greeter_pkg" / "assets" / "words.txt").write_text("read by init only\n")
        (project / "greeter_pkg" / "assets" / "deep" / "more.txt").write_text("and this\n")
        (project / "greeter_pkg" / "assets.py").write_text("SHIPPED = True\n")  # a neighbour, not granted
        wheel = build_in_process(project)
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
        assert not [name for name in names if "assets/" in name or name.startswith("data/")], names
        assert {"greeter_pkg/__init__.py", "greeter_pkg/assets.py", DESTINATION} <= names
        (call,) = engine.calls
        assert call["wasi"].dirs == ((project / "data", "/data"), (project / "greeter_pkg" / "assets", "/assets"))
        # The sdist still carries them: a wheel built from it runs init again.
        with tarfile.open(build_in_process(project, target="sdist")) as archive:
            assert "greeter-1.0/greeter_pkg/assets/deep/more.txt" in archive.getnames()

    def test_options_reach_engine(self, tmp_path: Path, engine: FakeEngine) -> None:
        options = (
            'init-func = "setup"\nkeep-init-func = true\nenv = { MODE = "fast" }\ntimeout = 12\nmax-memory = 1048576\n'
            "reset-first-call = false\nzero-free-memory = false\n"
        )
        hooks = COMPONENT_INIT_HOOK + options
        project = make_project(tmp_path / "p", hooks, raw_component=RAW)
        build_in_process(project)

        (call,) = engine.calls
        assert call["component"] == RAW
        assert call["init_func"] == "setup"
        assert call["keep_init_func"] is True
        assert call["wasi"].dirs == ((project / "data", "/data"),)
        assert call["wasi"].env == (("MODE", "fast"),)
        assert call["timeout"] == 12
        assert call["max_memory"] == 1048576
        assert call["reset_first_call"] is False
        assert call["zero_free_memory"] is False

    def test_wasi_disabled_passes_none(self, tmp_path: Path, engine: FakeEngine) -> None:
        hooks = f'[tool.hatch.build.hooks.component-init]\ncomponent = "{RAW_COMPONENT}"\nwasi = false\n'
        build_in_process(make_project(tmp_path / "p", hooks, raw_component=RAW))
        assert engine.calls[0]["wasi"] is None

    def test_destination_defaults_to_component_and_replaces_in_tree_file(
        self, tmp_path: Path, engine: FakeEngine
    ) -> None:
        # The raw component sits inside the package, where the snapshot must go.
        hooks = '[tool.hatch.build.hooks.component-init]\ncomponent = "greeter_pkg/greeter.wasm"\n'
        project = make_project(tmp_path / "p", hooks)
        (project / DESTINATION).write_bytes(RAW)

        wheel = build_in_process(project)
        with zipfile.ZipFile(wheel) as archive:
            assert archive.namelist().count(DESTINATION) == 1
        assert wheel_member(wheel, DESTINATION) == fake_snapshot(RAW)
        assert (project / DESTINATION).read_bytes() == RAW
        # A second build pre-initializes the raw input again, not the snapshot.
        assert wheel_member(build_in_process(project), DESTINATION) == fake_snapshot(RAW)

    def test_output_shown(self, project: Path, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        build_in_process(project)
        out = capsys.readouterr().err.splitlines()
        assert out[0] == "Pre-initializing `build/greeter.wasm` (0.0 MB) by running `component-init`"
        assert out[1:5] == [
            "  [guest stdout] init: reading /data",
            "  [guest stdout] init: done",
            "  [guest stderr] init: a warning",
            "  [guest stdout] no newline at the end",
        ]
        assert out[5].startswith(
            "Pre-initialized `build/greeter.wasm` -> `greeter_pkg/greeter.wasm`: 0.0 MB -> 0.0 MB in "
        )

    def test_notes_shown_by_level(self, project: Path, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        engine.notes = [("info", "a step was applied"), ("warning", "mind this"), ("detail", "why a step did nothing")]
        build_in_process(project)
        out = capsys.readouterr().err
        assert "`build/greeter.wasm`: a step was applied" in out
        assert "`build/greeter.wasm`: mind this" in out
        assert "why a step did nothing" not in out  # only with `hatch -v`


class TestCache:
    def test_second_build_hits(
        self, project: Path, engine: FakeEngine, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        first = build_in_process(project).read_bytes()
        capsys.readouterr()
        second = build_in_process(project)

        assert len(engine.calls) == 1
        assert wheel_member(second, DESTINATION) == fake_snapshot(RAW)
        out = capsys.readouterr().err
        assert "from the cache" in out
        assert "Wasmtime not run" in out
        assert first == second.read_bytes()
        assert len(list((snapshot_cache_dir / "snapshots").glob("*.wasm"))) == 1

    def test_changed_data_misses(self, project: Path, engine: FakeEngine) -> None:
        build_in_process(project)
        (project / "data" / "greeting.txt").write_text("Bonjour\n")
        build_in_process(project)
        assert len(engine.calls) == 2

    def test_new_data_file_misses(self, project: Path, engine: FakeEngine) -> None:
        build_in_process(project)
        (project / "data" / "extra.txt").write_text("")
        build_in_process(project)
        assert len(engine.calls) == 2

    def test_changed_component_misses(self, project: Path, engine: FakeEngine) -> None:
        build_in_process(project)
        (project / RAW_COMPONENT).write_bytes(RAW + b"!")
        wheel = build_in_process(project)
        assert len(engine.calls) == 2
        assert wheel_member(wheel, DESTINATION) == fake_snapshot(RAW + b"!")

    def test_disabled(self, tmp_path: Path, engine: FakeEngine, snapshot_cache_dir: Path) -> None:
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK + "cache = false\n", raw_component=RAW)
        for _ in range(2):
            assert wheel_member(build_in_process(project), DESTINATION) == fake_snapshot(RAW)
        assert len(engine.calls) == 2
        assert not (snapshot_cache_dir / "snapshots").exists()

    def test_unwritable_cache_still_builds(
        self, project: Path, engine: FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("")
        monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(blocker / "cache"))
        assert wheel_member(build_in_process(project), DESTINATION) == fake_snapshot(RAW)


class TestErrors:
    def test_missing_component(self, tmp_path: Path, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK)
        message = (
            "Component `build/greeter.wasm` for build hook `component-init` does not exist, and no build hook "
            "that runs before `component-init` writes it. Build it first, e.g. with the `componentize-py` build "
            "hook listed before `component-init`."
        )
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, FileNotFoundError)
        assert str(failure.error) == message
        assert not engine.calls

    @pytest.mark.parametrize("left_from_earlier_build", [False, True])
    def test_wrong_order(self, tmp_path: Path, engine: FakeEngine, left_from_earlier_build: bool, capsys: pytest.CaptureFixture[str]) -> None:
        # With a component left from an earlier build, the wrong order would ship that stale file.
        raw = RAW if left_from_earlier_build else None
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK + COMPONENTIZE_HOOK, raw_component=raw)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, ValueError)
        assert str(failure.error) == (
            "Component `build/greeter.wasm` for build hook `component-init` is written by build hook "
            "`componentize-py`, which runs after `component-init`: hooks run in the order of "
            "their tables, so put `[tool.hatch.build.hooks.componentize-py]` above "
            "`[tool.hatch.build.hooks.component-init]`."
        )
        assert not engine.calls
        assert not list(project.glob("dist/*.whl"))
        if left_from_earlier_build:
            assert (project / RAW_COMPONENT).read_bytes() == RAW

    def test_hooks_that_ran_are_listed(self, tmp_path: Path, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        hooks = '[tool.hatch.build.hooks.version]\npath = "greeter_pkg/_version.py"\n\n' + COMPONENT_INIT_HOOK
        project = make_project(tmp_path / "p", hooks)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, FileNotFoundError)
        assert re.search("Build hooks that ran before `component-init`: `version`\\.", str(failure.error))

    def test_missing_dir(self, project: Path, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        (project / "data" / "greeting.txt").unlink()
        (project / "data").rmdir()
        message = "^Option `dirs` for build hook `component-init` names directory `data`, which does not exist$"
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, FileNotFoundError)
        assert re.search(message, str(failure.error))

    def test_bad_option_fails_before_anything_runs(self, tmp_path: Path, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK + "timeout = -1\n", raw_component=RAW)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, ValueError)
        assert re.search("^Option `timeout` for build hook `component-init` must be a positive number$", str(failure.error))
        assert not engine.calls

    def test_engine_error(
        self, project: Path, engine: FakeEngine, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        engine.error = InitFailedError("init trapped: unreachable")
        before = tree_snapshot(project)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, ComponentInitError)
        assert str(failure.error) == "Pre-initializing `build/greeter.wasm` failed: init trapped: unreachable"
        # One line, no engine traceback (it is chained, for `hatch -v`).
        assert failure.reported("Pre-initializing `build/greeter.wasm` failed: init trapped: unreachable")
        assert "Traceback" not in failure.output
        # What the guest printed before failing is shown: it usually says why.
        assert "  [guest stdout] init: done" in failure.output
        assert tree_snapshot(project) == before
        assert not list(snapshot_cache_dir.rglob("*.wasm"))


class TestSkip:
    # docs/building.md shows `=1`; the other spellings of "on" are taken too.
    @pytest.mark.parametrize("value", ["1", "true", "yes", "on", " Yes "])
    def test_ships_raw_component(
        self, project: Path, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        value: str,
    ) -> None:
        monkeypatch.setenv("HATCH_COMPONENT_INIT_SKIP", value)
        wheel = build_in_process(project)
        assert wheel_member(wheel, DESTINATION) == RAW
        assert not engine.calls
        assert (
            "HATCH_COMPONENT_INIT_SKIP is set: shipping `build/greeter.wasm` at `greeter_pkg/greeter.wasm` "
            "without pre-initialization"
        ) in capsys.readouterr().err


class TestSdist:
    def test_no_engine_and_component_shipped(self, project: Path, engine: FakeEngine) -> None:
        sdist = build_in_process(project, target="sdist")
        assert not engine.calls
        with tarfile.open(sdist) as archive:
            names = archive.getnames()
        # /build is excluded from the sdist, but nothing in it would rebuild the component.
        assert "greeter-1.0/build/greeter.wasm" in names
        assert "greeter-1.0/data/greeting.txt" in names

    def test_carries_dirs_and_component_that_version_control_ignores(self, project: Path, engine: FakeEngine) -> None:
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        (project / ".gitignore").write_text("/data/\n*.wasm\n")
        sdist = build_in_process(project, target="sdist")
        with tarfile.open(sdist) as archive:
            names = set(archive.getnames())
            assert archive.extractfile("greeter-1.0/data/greeting.txt").read() == (project / "data/greeting.txt").read_bytes()  # type: ignore[union-attr]
        assert "greeter-1.0/build/greeter.wasm" in names
        assert not engine.calls
        # The project's other ignored files stay out: only what the wheel build needs is forced in.
        (project / "stray.wasm").write_bytes(b"ignored")
        with tarfile.open(build_in_process(project, target="sdist")) as archive:
            assert "greeter-1.0/stray.wasm" not in archive.getnames()

    def test_warns_when_wheel_cannot_be_built_from_it(
        self, tmp_path: Path, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK)
        build_in_process(project, target="sdist")
        assert (
            "Component `build/greeter.wasm` is not in the project and no build hook makes it: "
            "a wheel cannot be built from this sdist"
        ) in capsys.readouterr().err

    def test_component_left_to_producer(self, tmp_path: Path, engine: FakeEngine) -> None:
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK, raw_component=RAW)
        sdist = build_in_process(project, target="sdist")
        with tarfile.open(sdist) as archive:
            names = archive.getnames()
        assert "greeter-1.0/build/greeter.wasm" not in names
        assert {"greeter-1.0/app.py", "greeter-1.0/wit/greeter.wit", "greeter-1.0/data/greeting.txt"} <= set(names)
        # The componentize-py hook did not run for the sdist either.
        assert (project / RAW_COMPONENT).read_bytes() == RAW


@pytest.fixture
def editable_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "greeter", COMPONENT_INIT_HOOK, raw_component=RAW, wheel_options=DEV_MODE_DIRS)


class TestEditable:
    def test_snapshot_importable_and_cleaned(
        self, editable_project: Path, engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = editable_project
        wheel = build_in_process(project, version="editable")
        in_tree = project / DESTINATION
        assert in_tree.read_bytes() == fake_snapshot(RAW)
        assert (
            f"Editable install: wrote the pre-initialized component to `{DESTINATION}` in the source tree "
            "(removed by `hatch clean`)"
        ) in capsys.readouterr().err

        # Install the editable wheel the way an installer would, then import from a fresh interpreter.
        site = tmp_path / "site"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        code = (
            "import hashlib, site, sys; site.addsitedir(sys.argv[1]); "
            "import importlib.resources as r; "
            "print((r.files('greeter_pkg') / 'greeter.wasm').read_bytes().decode())"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, str(site)], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == fake_snapshot(RAW).decode()

        hook = ComponentInitBuildHook(
            str(project),
            {"component": RAW_COMPONENT, "destination": DESTINATION},
            None,
            None,
            str(project),
            "wheel",
        )
        hook.clean(["editable"])
        assert not in_tree.exists()
        assert (project / RAW_COMPONENT).exists()

    def test_clean_keeps_changed_file(self, editable_project: Path, engine: FakeEngine) -> None:
        project = editable_project
        build_in_process(project, version="editable")
        in_tree = project / DESTINATION
        in_tree.write_bytes(b"the user's own file")
        ComponentInitBuildHook(
            str(project), {"component": RAW_COMPONENT, "destination": DESTINATION}, None, None, str(project), "wheel"
        ).clean(["standard", "editable"])
        assert in_tree.read_bytes() == b"the user's own file"

    @pytest.mark.parametrize(
        ("layout", "package_dir"),
        [
            ('packages = ["src/greeter_pkg"]', "src/greeter_pkg"),  # hatchling strips `src/`
            ('only-include = ["pkgsrc"]\nsources = { "pkgsrc" = "greeter_pkg" }', "pkgsrc"),  # renamed in the wheel
        ],
        ids=["src-layout", "renamed"],
    )
    def test_writes_where_the_sources_rewrite_comes_from(
        self, tmp_path: Path, engine: FakeEngine, layout: str, package_dir: str
    ) -> None:
        project = make_project(tmp_path / "p", COMPONENT_INIT_HOOK, raw_component=RAW, wheel_options=DEV_MODE_DIRS)
        (project / package_dir).parent.mkdir(parents=True, exist_ok=True)
        (project / "greeter_pkg").rename(project / package_dir)
        pyproject = project / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('packages = ["greeter_pkg"]', layout))
        # The regular wheel ships the package (and the snapshot) at greeter_pkg/.
        with zipfile.ZipFile(build_in_process(project)) as archive:
            assert {"greeter_pkg/__init__.py", DESTINATION} <= set(archive.namelist())
        build_in_process(project, version="editable")
        in_tree = project / package_dir / "greeter.wasm"
        assert in_tree.read_bytes() == fake_snapshot(RAW)
        assert not (project / DESTINATION).exists()
        # `hatch clean`: the hook removes it from the same place.
        from hatchling.builders.wheel import WheelBuilder

        list(WheelBuilder(str(project)).build(directory=str(project / "dist"), versions=["editable"], clean_only=True))
        assert not in_tree.exists()

    def test_destination_is_input(self, tmp_path: Path, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        hooks = '[tool.hatch.build.hooks.component-init]\ncomponent = "greeter_pkg/greeter.wasm"\n'
        project = make_project(tmp_path / "p", hooks, wheel_options=DEV_MODE_DIRS)
        (project / DESTINATION).write_bytes(RAW)
        build_in_process(project, version="editable")
        assert (project / DESTINATION).read_bytes() == RAW
        assert not engine.calls
        assert "so the raw component is used" in capsys.readouterr().err


class TestComponentizePy:
    def test_missing_componentize_py(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        import importlib.util

        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: None if name == "componentize_py" else real_find_spec(name, *a),
        )
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK)
        message = (
            "^Build hook `componentize-py` needs componentize-py in the build environment. Isolated builds "
            'install it by themselves \\(the hook declares "componentize-py==0.25.1" as a build dependency\\); '
            'without build isolation, install it first: pip install "componentize-py==0.25.1"$'
        )
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, BuildStepError)
        assert re.search(message, str(failure.error))

    def test_failure_leaves_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # A stand-in for componentize-py that writes half a component, complains and fails.
        def failing_command(_hook: ComponentizePyBuildHook, output: Path) -> list[str]:
            script = "import sys; open(sys.argv[1], 'wb').write(b'half'); sys.exit('error: no world named `greeter`')"
            return [sys.executable, "-c", script, str(output)]

        monkeypatch.setattr(ComponentizePyBuildHook, "command", failing_command)
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK)
        before = tree_snapshot(project)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, BuildStepError)
        # componentize-py's own output first, then our one line.
        assert failure.output.endswith(
            "  [componentize-py] error: no world named `greeter`\n"
            "componentize-py failed (exit code 1) building `build/greeter.wasm` for build hook `componentize-py`; "
            "its output is above\n"
        )
        assert tree_snapshot(project) == before
        assert not any((project / "build").iterdir())

    def test_clean_removes_only_output(self, tmp_path: Path) -> None:
        project = make_project(tmp_path / "p", COMPONENTIZE_HOOK, raw_component=RAW)
        (project / "build" / "notes.txt").write_text("mine")
        hook = ComponentizePyBuildHook(
            str(project), {"module": "app", "output": RAW_COMPONENT}, None, None, str(project), "wheel"
        )
        hook.clean(["standard"])
        assert not (project / RAW_COMPONENT).exists()
        assert (project / "build" / "notes.txt").read_text() == "mine"
        hook.clean(["standard"])  # again, with nothing left to remove (`hatch clean` twice): no error
        assert (project / "build" / "notes.txt").read_text() == "mine"
