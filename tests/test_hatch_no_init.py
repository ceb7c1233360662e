"""`init-func = false`: the `component-init` hook ships a component as it is, checked, precompiled and loaded.

The WAT tests build with hatchling's builders in this process, and load their
wheels through the generated loader: how a loader got its component is proven by
Wasmtime's cache directory too (a deserialized `.cwasm` compiles nothing, a
compiled `.wasm` fills it). The slow test builds a componentize-py app that has
no init export with `pip wheel` and runs what the wheel ships.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import componentize
from hatch_support import DESTINATION, build_in_process, failed_build, make_project, run_build, run_component, wheel_member
from test_hatch_precompile import APP_WAT, LOADER, PRECOMPILED, run_loader, unpack, wasmtime_cache_files
from wat_support import snapshot, wat

from hatch_component_init.errors import ComponentInitError
from hatch_component_init.hatch.cache import PrecompiledCache, SnapshotCache
from hatch_component_init.hatch.precompile import wheel_tag

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

FIXTURE = Path(__file__).parent / "fixtures" / "toplevel"

#: No init export: `answer` reads the byte its data segment put at address 0 (a run of init would not change it).
NO_INIT_WAT = """
(component
  (core module $m
    (memory 1)
    (data (i32.const 0) "\\07")
    (func (export "answer") (result i32) (i32.load8_u (i32.const 0))))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""

#: Wasmtime refuses it (the function returns an i64 as an i32); our parser reads it fine.
INVALID_WAT = """
(component
  (core module $m (func (export "answer") (result i32) (i64.const 1)))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""


def no_init_table(**options: str) -> str:
    """A `component-init` table shipping the greeter project's component as it is, with ``options`` (TOML values)."""
    lines = [
        "[tool.hatch.build.hooks.component-init]",
        'component = "build/greeter.wasm"',
        f'destination = "{DESTINATION}"',
        "init-func = false",
    ]
    return "\n".join(lines + [f"{key} = {value}" for key, value in options.items()]) + "\n"


@pytest.fixture(scope="module")
def no_init_component() -> bytes:
    return wat(NO_INIT_WAT)


class TestShippedAsItIs:
    def test_precompiled_wheel_loads(
        self, tmp_path: Path, no_init_component: bytes, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = make_project(
            tmp_path / "greeter", no_init_table(precompile="true", loader=f'"{LOADER}"'), raw_component=no_init_component
        )
        wheel = build_in_process(project)

        assert wheel.name == f"greeter-1.0-{wheel_tag()}.whl"
        # The very bytes of the input: nothing was run or rewritten.
        assert wheel_member(wheel, DESTINATION) == no_init_component
        assert {DESTINATION, PRECOMPILED, LOADER} <= set(zipfile.ZipFile(wheel).namelist())
        assert "as it is (`init-func = false`)" in capsys.readouterr().err
        # There is no run to cache: no snapshot was stored; the `.cwasm` was.
        assert not list(SnapshotCache(snapshot_cache_dir).snapshots.glob("*"))
        assert len(list(PrecompiledCache(snapshot_cache_dir).entries.glob("*.cwasm"))) == 1

        home = tmp_path / "home"
        got = run_loader(unpack(wheel, tmp_path / "site"), home, module="greeter_pkg._component")
        assert got["answer"] == 7
        assert got["how"] == "precompiled greeter.cwasm"
        assert wasmtime_cache_files(home) == 0

    def test_plain_wheel_and_deterministic(self, tmp_path: Path, no_init_component: bytes) -> None:
        wheels = []
        for name in ("a", "b"):
            project = make_project(tmp_path / name, no_init_table(loader=f'"{LOADER}"'), raw_component=no_init_component)
            wheels.append(build_in_process(project))
        assert wheels[0].name == "greeter-1.0-py3-none-any.whl"
        for member in (DESTINATION, LOADER):
            assert wheel_member(wheels[0], member) == wheel_member(wheels[1], member)
        got = run_loader(unpack(wheels[0], tmp_path / "site"), tmp_path / "home", module="greeter_pkg._component")
        assert got["answer"] == 7
        assert got["how"] == "compiled greeter.wasm (no precompiled component was built)"

    def test_editable_writes_component_and_loader_into_tree(self, tmp_path: Path, no_init_component: bytes) -> None:
        project = make_project(
            tmp_path / "greeter",
            no_init_table(loader=f'"{LOADER}"'),
            raw_component=no_init_component,
            wheel_options='dev-mode-dirs = ["."]',
        )
        build_in_process(project, version="editable")
        assert (project / DESTINATION).read_bytes() == no_init_component
        got = run_loader(project, tmp_path / "home", module="greeter_pkg._component")
        assert got["answer"] == 7

    def test_editable_component_in_place_is_not_warned_about(
        self, tmp_path: Path, no_init_component: bytes, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # With nothing to pre-initialize, the input itself is what the package should load.
        table = no_init_table(loader=f'"{LOADER}"').replace(f'destination = "{DESTINATION}"\n', "")
        project = make_project(tmp_path / "greeter", table, raw_component=no_init_component, wheel_options='dev-mode-dirs = ["."]')
        build_in_process(project, version="editable")
        assert "raw component is used" not in capsys.readouterr().err
        assert (project / LOADER).is_file()

    def test_sdist_carries_the_component(self, tmp_path: Path, no_init_component: bytes) -> None:
        import tarfile

        project = make_project(tmp_path / "greeter", no_init_table(), raw_component=no_init_component)
        sdist = build_in_process(project, target="sdist")
        with tarfile.open(sdist) as archive:
            assert archive.extractfile("greeter-1.0/build/greeter.wasm").read() == no_init_component  # type: ignore[union-attr]

    def test_invalid_component_is_refused(
        self, tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = make_project(tmp_path / "greeter", no_init_table(precompile="true"), raw_component=wat(INVALID_WAT))
        message = (
            r"^Component `build/greeter.wasm` for build hook `component-init` is not valid: core module at offset "
            r"0x[0-9a-f]+ is invalid: Wasmtime says: type mismatch: expected i32, found i64 \(at offset 0x[0-9a-f]+\)$"
        )
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, ComponentInitError)
        assert re.search(message, failure.message)
        assert not snapshot_cache_dir.exists() or not list(snapshot_cache_dir.rglob("*.cwasm"))


def test_missing_init_export_names_the_option(
    tmp_path: Path, no_init_component: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    table = no_init_table().replace("init-func = false\n", "")
    project = make_project(tmp_path / "greeter", table, raw_component=no_init_component)
    failure = failed_build(project, capsys)
    assert isinstance(failure.error, ComponentInitError)
    assert failure.message == (
        "Pre-initializing `build/greeter.wasm` failed: the component has no function export `component-init`. "
        "Function exports: `answer`. Name the init function (`name`, `interface.name` or `interface.name@version`) "
        "with -f/--init-func, or the hook option `init-func`. If the component needs no init, set "
        "`init-func = false` to ship it as it is (`precompile` and `loader` work the same)."
    )


def test_already_pre_initialized_component(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output of ours has no init export left: the message names `init-func = false`, which ships it."""
    initialized = snapshot(wat(APP_WAT))
    table = no_init_table().replace("init-func = false\n", "")
    failure = failed_build(make_project(tmp_path / "refused", table, raw_component=initialized), capsys)
    assert isinstance(failure.error, ComponentInitError)
    assert re.search(r"was already pre-initialized .* set `init-func = false` to ship it", failure.message)

    wheel = build_in_process(make_project(tmp_path / "shipped", no_init_table(), raw_component=initialized))
    assert wheel_member(wheel, DESTINATION) == initialized


# -- a componentize-py app with no init export, installed into a fresh venv ----------------------------

PYPROJECT = """\
[build-system]
requires = ["hatchling", "hatch-component-init", "componentize-py"]
build-backend = "hatchling.build"

[project]
name = "toplevel"
version = "1.0"
requires-python = ">=3.11"
dependencies = ["wasmtime"]

[tool.hatch.build.targets.wheel]
packages = ["toplevel_pkg"]

[tool.hatch.build.hooks.componentize-py]
wit = "wit"
world = "toplevel"
module = "app"
output = "build/toplevel.wasm"

[tool.hatch.build.hooks.component-init]
component = "build/toplevel.wasm"
destination = "toplevel_pkg/toplevel.wasm"
init-func = false
"""

@pytest.mark.slow
def test_componentize_py_app_without_init_export_ships_with_its_free_memory_zeroed(tmp_path: Path, snapshot_cache_dir: Path) -> None:
    project = tmp_path / "toplevel"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "pyproject.toml").write_text(PYPROJECT)
    # A 3 MB file under the python path that the app does not read (docs/without-init.md: it is not bundled).
    unread = os.urandom(3_000_000)
    (project / "data" / "big.bin").write_bytes(unread)
    dist = tmp_path / "dist"
    log = run_build(
        [sys.executable, "-m", "pip", "wheel", "--verbose", "--no-build-isolation", "--no-deps", "--wheel-dir", str(dist), "."],
        cwd=project,
    )
    assert "with its free allocator memory zeroed (`init-func = false`)" in log
    (wheel,) = dist.glob("toplevel-1.0-py3-none-any.whl")
    # Shipped as componentize-py built it, but for the allocator's free memory (nothing was run).
    from hatch_component_init import zero_free_memory_without_init

    raw = (project / "build/toplevel.wasm").read_bytes()
    shipped = wheel_member(wheel, "toplevel_pkg/toplevel.wasm")
    assert shipped == zero_free_memory_without_init(raw) and len(shipped) < len(raw)
    # The unread file left the size as it is without it (the same app's session build, as
    # test_componentize_toplevel.py has it); componentize-py's outputs differ by tens of KB, 3 MB would show.
    without = componentize(FIXTURE, "toplevel", "app", tmp_path / "without-big.wasm")
    assert abs(len(raw) - len(without)) < 300_000, (len(raw), len(without))
    assert unread[1_000_000:1_000_064] not in raw

    # It answers, from componentize-py's snapshot. (That `precompile` and `loader` work with `init-func = false`,
    # a precompiled `.cwasm` loaded through the loader, is docs/without-init.md's flow, run by test_docs.py.)
    assert run_component(shipped, [("lookup", ("apple",))]).results["lookup"] == "a round fruit"
