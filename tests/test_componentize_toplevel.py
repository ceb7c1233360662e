"""What componentize-py's own pre-initialization gives a Python app's top level (the facts docs/without-init.md states).

componentize-py runs the app module's top-level code while it builds, and
snapshots the result. These tests build tests/fixtures/toplevel (an app with
no init export) and run the component with no directory granted, to show
what the top level can do, and build variants of it to show what it cannot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUILD_PROBE, componentize

from hatch_component_init.wasm.component import parse_component

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parent / "fixtures" / "toplevel"
#: Runs the componentize-py command with this Python.
CLI = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"


def call(wasm: bytes, name: str, *args: object) -> object:
    """Call export ``name`` in a fresh instance with WASI but no directory granted."""
    import wasmtime
    from wasmtime.component import Component, Linker
    from wat_support import app_engine

    engine = app_engine()
    linker = Linker(engine)
    linker.add_wasip2()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    func = linker.instantiate(store, Component(engine, wasm)).get_func(store, name)
    assert func is not None
    result = func(store, *args)
    func.post_return(store)
    return result


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # Built with BUILD_PROBE set (conftest.py): the top level must not see it.
    return componentize(FIXTURE, "toplevel", "app", tmp_path_factory.mktemp("toplevel") / "app.wasm")


def test_data_loaded_at_top_level_answers_without_init_export(app: bytes) -> None:
    exports = {export.name for export in parse_component(memoryview(app)).exports}
    assert {"lookup", "facts"} <= exports and "component-init" not in exports
    assert call(app, "lookup", "apple") == "a round fruit"
    assert call(app, "lookup", "pear") == "unknown: pear"


def test_top_level_sees_its_directory_at_0(app: bytes) -> None:
    facts = json.loads(str(call(app, "facts")))
    # `os.path.dirname(__file__)` is the way to the app's files: its directory is mounted at /0 ...
    assert facts["build_time"]["file"] == "/0/app.py"
    # Two python-path entries (the app's directory, then the site-packages componentize-py appends), no more.
    assert facts["build_time"]["mounted"] == ["/0", "/1"]
    # ... and the working directory is /, not the app's directory.
    assert facts["build_time"]["cwd"] == "/"


def test_top_level_sees_no_build_environment(app: bytes) -> None:
    environ = json.loads(str(call(app, "facts")))["build_time"]["environ"]
    assert BUILD_PROBE not in environ and "PATH" not in environ and "HOME" not in environ


def test_files_are_not_bundled(app: bytes) -> None:
    facts = json.loads(str(call(app, "facts")))
    # At run time the file is gone; what the top level loaded from it is in the snapshot.
    assert facts["data_file_at_run_time"] is False
    assert facts["words"] == 3
    assert b"a portable binary code format" in app


def failed_build(world: str, module: str, output: Path) -> str:
    """The error output of a componentize-py build of ``module`` that must fail (its head names the cause)."""
    command = [sys.executable, "-c", CLI, "-d", str(FIXTURE / "wit"), "-w", world, "componentize",
               "-p", str(FIXTURE), module, "-o", str(output)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and not output.exists()
    return result.stderr


def test_relative_path_and_host_function_fail_at_top_level(tmp_path: Path) -> None:
    # One build (each failure costs a whole componentize-py run): the relative open raises, and the guest
    # prints the error and calls the host function, whose trap fails the build.
    error = failed_build("toplevel-import", "calls_import", tmp_path / "import.wasm")
    assert "FileNotFoundError: [Errno 44] No such file or directory: 'data/words.json'" in error
    assert "called trapping stub: host-word" in error


def test_no_option_limits_or_grants_anything_to_the_top_level() -> None:
    """Time and memory limits, directories, environment: componentize-py has no option for them."""
    result = subprocess.run([sys.executable, "-c", CLI, "componentize", "--help"], capture_output=True, text=True)
    options = {line.split()[1].rstrip(",") for line in result.stdout.splitlines() if line.startswith("  -")}
    assert options == {"--python-path", "--module-worlds", "--intersect-world", "--output", "--stub-wasi", "--help"}, options
