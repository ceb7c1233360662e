"""The `component-init` hook's `host` option: host functions for init, imported from the project root.

Real builds of a project whose component (tests/test_host.py's APP) calls a
custom interface during init; the wheel's component is run with another host
to show it holds what init got from the build's host functions.
"""

from __future__ import annotations

import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hatch_support import COMPONENTIZE_HOOK, build_in_process, failed_build, make_project, tree_snapshot, wheel_member
from test_hatch_real_engine import DESTINATION, RAW, files_under, make_probe_project
from test_host import APP, define_settings
from wasmtime import component as cm
from wat_support import engine, wat

from hatch_component_init.errors import ComponentInitError, ConfigError
from hatch_component_init.hatch.keys import snapshot_key
from hatch_component_init.options import InitOptions

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

KEY = "Option `host` for build hook `component-init`"

# `get(k)` answers k * FACTOR; each import of the module is logged next to it, to tell a cache hit
# (nothing imported) from a run.
BUILD_HOST = """\
from pathlib import Path

from wasmtime import component as cm

FACTOR = 10

with open(Path(__file__).with_name("imports.log"), "a") as log:
    log.write("imported\\n")


def define(linker):
    with linker.root() as root:
        with root.add_instance("test:cfg/settings") as inst:
            inst.add_resource("counter", cm.ResourceType.host(5), lambda store, rep: None)
            inst.add_func("[constructor]counter", lambda store, start: cm.ResourceHost.own(start, 5))
            inst.add_func("[method]counter.next", lambda store, this: this.to_host(store).rep + 1)
            inst.add_func("get", lambda store, key: key * FACTOR)


def broken(linker):
    raise ValueError("no settings service")
"""


def host_project(root: Path, host: str, factor: int = 10) -> Path:
    project = make_probe_project(root, wat(APP), f'host = "{host}"\n')
    (project / "build_host.py").write_text(BUILD_HOST.replace("FACTOR = 10", f"FACTOR = {factor}"))
    return project


def imports(project: Path) -> int:
    log = project / "imports.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def run_shipped(data: bytes) -> dict[str, Any]:
    """Instantiate ``data`` with other host values (get(k) = k * 1000) and read init's results without init."""
    eng = engine()
    store = wasmtime.Store(eng)
    linker = cm.Linker(eng)
    define_settings(1000)(linker)
    with linker.root() as root:
        with root.add_instance("test:cfg/audit") as inst:
            inst.add_func("log", lambda store, n: None)
    instance = linker.instantiate(store, cm.Component(eng, data))
    results: dict[str, Any] = {"has-init": instance.get_func(store, "component-init") is not None}
    for name in ("setting", "counted", "live-setting"):
        func = instance.get_func(store, name)
        assert func is not None, name
        results[name] = func(store)
    return results


@pytest.mark.slow
def test_wheel_ships_the_state_init_got_from_the_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = host_project(tmp_path / "probe", "build_host:define", factor=10)
    wheel = build_in_process(project)

    # get(7) = 70 and a counter from the build's host; today's host answers 7000 when asked.
    assert run_shipped(wheel_member(wheel, DESTINATION)) == {
        "has-init": False,
        "setting": 70,
        "counted": 101,
        "live-setting": 7000,
    }
    assert imports(project) == 1
    # The build leaves no bytecode of the host module in the project.
    assert not (project / "__pycache__").exists()

    # Same inputs: a hit, and the host module is not even imported.
    capsys.readouterr()
    build_in_process(project)
    assert "from the cache" in capsys.readouterr().err
    assert imports(project) == 1

    # Editing the host module is a miss, and this process runs the edited file, not the copy it imported.
    (project / "build_host.py").write_text(BUILD_HOST.replace("key * FACTOR", "key * FACTOR + 1"))
    wheel = build_in_process(project)
    assert "from the cache" not in capsys.readouterr().err
    assert imports(project) == 2
    assert run_shipped(wheel_member(wheel, DESTINATION))["setting"] == 71


@pytest.mark.slow
def test_the_key_covers_only_the_named_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = host_project(tmp_path / "probe", "build_host:define")
    (project / "build_host.py").write_text(BUILD_HOST.replace("FACTOR = 10", "from factor_helper import FACTOR"))
    (project / "factor_helper.py").write_text("FACTOR = 10\n")
    try:
        build_in_process(project)
        # factor_helper.py is imported by build_host.py but is not part of the key: still a hit, init's old values.
        (project / "factor_helper.py").write_text("FACTOR = 20\n")
        capsys.readouterr()
        wheel = build_in_process(project)
    finally:
        sys.modules.pop("factor_helper", None)
    assert "from the cache" in capsys.readouterr().err
    assert run_shipped(wheel_member(wheel, DESTINATION))["setting"] == 70


@pytest.mark.slow
def test_two_projects_in_one_process_each_get_their_own_host_module(tmp_path: Path) -> None:
    first = build_in_process(host_project(tmp_path / "one", "build_host:define", factor=2))
    second = build_in_process(host_project(tmp_path / "two", "build_host:define", factor=3))
    assert run_shipped(wheel_member(first, DESTINATION))["setting"] == 14
    assert run_shipped(wheel_member(second, DESTINATION))["setting"] == 21


@pytest.mark.slow
def test_sdist_carries_the_host_module_even_when_ignored(tmp_path: Path) -> None:
    project = host_project(tmp_path / "probe", "build_host:define")
    (project / ".gitignore").write_text("/build_host.py\n")
    sdist = build_in_process(project, target="sdist")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "build_host.py" in names
    assert RAW in names
    assert imports(project) == 0  # an sdist runs nothing


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "module", "error", "message"),
    [
        # The function raises: the engine's HostError, with the option named.
        (
            "build_host:broken",
            None,
            ComponentInitError,
            f"Pre-initializing `{RAW}` failed: {KEY} `build_host:broken`: the host definitions `broken` failed: "
            "ValueError: no settings service",
        ),
        (
            "build_host:nothing",
            None,
            ConfigError,
            f"{KEY} `build_host:nothing`: module `build_host` has no `nothing`",
        ),
        # The module is there but cannot be imported.
        (
            "bad_host:define",
            "import no_such_dependency\n",
            ConfigError,
            f"{KEY} `bad_host:define`: cannot import `bad_host` from",
        ),
    ],
)
def test_host_that_fails_fails_the_build_naming_the_option(
    tmp_path: Path, snapshot_cache_dir: Path, spec: str, module: str | None, error: type[Exception], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = host_project(tmp_path / "probe", spec)
    if module is not None:
        (project / f"{spec.partition(':')[0]}.py").write_text(module)
    before = tree_snapshot(project)
    failure = failed_build(project, capsys)
    assert isinstance(failure.error, error)
    assert message in str(failure.error)
    assert tree_snapshot(project) == {**before, **({"imports.log": b"imported\n"} if module is None else {})}
    assert files_under(snapshot_cache_dir) == []


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ('"build_host"', ValueError, f"{KEY} must look like `module:function` (e.g. `build_host:define`), not 'build_host'"),
        ('"build-host:define"', ValueError, f"{KEY} must look like `module:function`"),
        ('"build_host:"', ValueError, f"{KEY} must look like `module:function`"),
        ("42", TypeError, f"{KEY} must be a string"),
        (
            '"missing_host:define"',
            FileNotFoundError,
            f"{KEY} names module `missing_host`, which is neither in the project root nor on the Python path",
        ),
        (
            '"build_host.sub:define"',
            FileNotFoundError,
            f"{KEY} names module `build_host.sub`, which is neither in the project root nor on the Python path",
        ),
    ],
)
def test_bad_value_fails_before_any_hook_runs(tmp_path: Path, value: str, error: type[Exception], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    # componentize-py runs first; a bad `host` must stop the build before it spends seconds on the app.
    hooks = COMPONENTIZE_HOOK + f'\n[tool.hatch.build.hooks.component-init]\ncomponent = "build/greeter.wasm"\nhost = {value}\n'
    project = make_project(tmp_path / "greeter", hooks)
    (project / "build_host.py").write_text(BUILD_HOST)
    before = tree_snapshot(project)
    failure = failed_build(project, capsys)
    assert isinstance(failure.error, error)
    assert message in str(failure.error)
    assert tree_snapshot(project) == before
    assert files_under(project / "build") == []


class TestKey:
    def test_spec_and_module_bytes_count(self, tmp_path: Path) -> None:
        module = tmp_path / "build_host.py"
        module.write_text(BUILD_HOST)
        base = snapshot_key(b"abc", InitOptions(), ("build_host:define", module))
        assert base == snapshot_key(b"abc", InitOptions(), ("build_host:define", module))
        assert base != snapshot_key(b"abc", InitOptions())
        assert base != snapshot_key(b"abc", InitOptions(), ("build_host:broken", module))
        module.write_text(BUILD_HOST + "\n")
        assert base != snapshot_key(b"abc", InitOptions(), ("build_host:define", module))

    def test_where_the_module_lives_does_not_count(self, tmp_path: Path) -> None:
        # Builds from temp copies (pip wheel ., python -m build) must hit what a build in the tree stored.
        keys = []
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "build_host.py").write_text(BUILD_HOST)
            keys.append(snapshot_key(b"abc", InitOptions(), ("build_host:define", tmp_path / name / "build_host.py")))
        assert keys[0] == keys[1]


def test_host_module_in_a_package(tmp_path: Path) -> None:
    from hatch_component_init.hatch.host import module_file

    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("raise RuntimeError('never run to locate a module')\n")
    (tmp_path / "tools" / "host.py").write_text(BUILD_HOST)
    assert module_file("tools.host:define", tmp_path) == tmp_path / "tools" / "host.py"
    assert module_file("tools:define", tmp_path) == tmp_path / "tools" / "__init__.py"
    assert module_file("tools.missing:define", tmp_path) is None
    assert module_file("tools.host.deeper:define", tmp_path) is None
