"""The hooks with the real engine (and real componentize-py where it is the point).

tests/test_hatch_build.py replaces the engine with a fake to check what the
hooks do with files and build data; here the same hooks run Wasmtime on small
WAT-built components, and what they produce is run to show it: options reach
the guest, an editable install really gets an initialized component, a
failing guest fails the build and leaves nothing behind, and a failing
componentize-py fails it with its own error.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_HOOK,
    build_in_process,
    failed_build,
    make_project,
    run_build,
    tree_snapshot,
    wheel_member,
)

import test_engine_shapes
from test_cli import TRAPPING
from hatch_component_init.compile_cache import CompiledCache
from hatch_component_init.errors import ComponentInitError
from wat_support import BUMP_ALLOCATOR, PREOPENS_IMPORT, Running, wat

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

RAW = "build/probe.wasm"
DESTINATION = "probe_pkg/probe.wasm"

PYPROJECT = f"""\
[build-system]
requires = ["hatchling", "hatch-component-init"]
build-backend = "hatchling.build"

[project]
name = "probe"
version = "1.0"

[tool.hatch.build.targets.wheel]
packages = ["probe_pkg"]
# Editable wheels as a `.pth` naming the root (hatchling's default needs `editables`).
dev-mode-dirs = ["."]

[tool.hatch.build.hooks.component-init]
component = "{RAW}"
destination = "{DESTINATION}"
"""


def make_probe_project(root: Path, component: bytes, options: str = "") -> Path:
    """A one-package project whose `component-init` hook pre-initializes ``component``."""
    (root / "probe_pkg").mkdir(parents=True)
    (root / "probe_pkg" / "__init__.py").write_text("")
    (root / "build").mkdir()
    (root / RAW).write_bytes(component)
    (root / "pyproject.toml").write_text(PYPROJECT + options)
    return root


def files_under(directory: Path) -> list[Path]:
    """Files under ``directory``, but for compiled code (kept whatever init does: the code is the same)."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and CompiledCache.KIND not in p.relative_to(directory).parts)


# `setup(label, number)` keeps its arguments, the environment it sees and the guest path of its first
# preopened directory; `label`, `number`, `env` and `dir` return them from the snapshot.
OPTIONS_PROBE = wat(
    f"""
(component $root
  (type $env-iface (instance
    (type $pair (tuple string string))
    (type $pairs (list $pair))
    (export "get-environment" (func (result $pairs)))))
  (import "wasi:cli/environment@0.2.0" (instance $env (type $env-iface)))
{PREOPENS_IMPORT}
{BUMP_ALLOCATOR}
  (alias export $env "get-environment" (func $get-env))
  (alias export $pre "get-directories" (func $get-dirs))
  (core func $get-env (canon lower (func $get-env) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $get-dirs (canon lower (func $get-dirs) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "wasi" "get-environment" (func $get-env (param i32)))
    (import "wasi" "get-directories" (func $get-dirs (param i32)))
    (global $number (mut i32) (i32.const 0))
    ;; (pointer, length) pairs: the environment at 16, the preopens at 24, the label at 32, the first preopen's name at 40
    (func (export "setup") (param $ptr i32) (param $len i32) (param $n i32)
      (i32.store (i32.const 32) (local.get $ptr))
      (i32.store (i32.const 36) (local.get $len))
      (global.set $number (local.get $n))
      (call $get-env (i32.const 16))
      (call $get-dirs (i32.const 24))
      ;; preopen entry 0 is (handle, name pointer, name length)
      (i32.store (i32.const 40) (i32.load offset=4 (i32.load (i32.const 24))))
      (i32.store (i32.const 44) (i32.load offset=8 (i32.load (i32.const 24)))))
    (func (export "env") (result i32) (i32.const 16))
    (func (export "label") (result i32) (i32.const 32))
    (func (export "dir") (result i32) (i32.const 40))
    (func (export "number") (result i32) (global.get $number)))
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "wasi" (instance (export "get-environment" (func $get-env)) (export "get-directories" (func $get-dirs))))))
  (type $pair (tuple string string))
  (type $pairs (list $pair))
  (func (export "setup") (param "label" string) (param "number" u32)
    (canon lift (core func $i "setup") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (func (export "env") (result $pairs) (canon lift (core func $i "env") (memory (core memory $libc "memory"))))
  (func (export "label") (result string) (canon lift (core func $i "label") (memory (core memory $libc "memory"))))
  (func (export "dir") (result string) (canon lift (core func $i "dir") (memory (core memory $libc "memory"))))
  (func (export "number") (result u32) (canon lift (core func $i "number"))))
"""
)

def test_options_reach_the_guest(tmp_path: Path) -> None:
    options = """\
init-func = 'setup("from the hook", 42)'
env = { MODE = "fast" }
dirs = { "settings" = "/config" }
"""
    project = make_probe_project(tmp_path / "probe", OPTIONS_PROBE, options)
    (project / "settings").mkdir()
    wheel = build_in_process(project)

    out = Running(wheel_member(wheel, DESTINATION))
    assert not out.has("setup")  # the init export is removed, as by default
    assert (out.call("label"), out.call("number")) == ("from the hook", 42)
    assert out.call("env") == [("MODE", "fast")]
    assert out.call("dir") == "/config"


@pytest.mark.parametrize("version", ["standard", "editable"])
def test_failing_guest_fails_the_build_and_writes_nothing(
    tmp_path: Path, snapshot_cache_dir: Path, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_probe_project(tmp_path / "probe", TRAPPING)
    before = tree_snapshot(project)

    failure = failed_build(project, capsys, version=version)
    assert isinstance(failure.error, ComponentInitError)
    message = failure.message
    assert f"Pre-initializing `{RAW}` failed" in message
    assert "the init function `component-init` failed" in message
    assert "unreachable" in message
    # Neither the project (no wheel, no in-tree snapshot for an editable build) nor the cache got anything.
    assert tree_snapshot(project) == before
    assert files_under(snapshot_cache_dir) == []
    assert "Pre-initialized " not in failure.output


@pytest.mark.slow
def test_editable_install_puts_an_initialized_component_in_the_tree(tmp_path: Path) -> None:
    project = make_probe_project(tmp_path / "probe", test_engine_shapes.GLOBALS)

    # A fresh environment that sees this one's packages (hatchling, this plugin, pip) but installs into itself.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")
    Path(site_packages, "_parent_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")

    run_build(
        [str(python), "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index", "-e", "."],
        cwd=project,
    )

    # The installed package finds its component in the source tree, where the hook wrote the snapshot.
    located = subprocess.run(
        [str(python), "-c", "import importlib.resources as r; print(r.files('probe_pkg') / 'probe.wasm')"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    in_tree = project / DESTINATION
    assert Path(located).resolve() == in_tree.resolve()
    assert (project / RAW).read_bytes() == test_engine_shapes.GLOBALS

    out = Running(in_tree.read_bytes())
    assert not out.has("component-init")
    # The state init set, without calling init (the raw component starts at 1).
    assert out.call("a") == -7
    assert Running(test_engine_shapes.GLOBALS).call("a") == 1


@pytest.mark.slow
def test_componentize_py_failure_fails_the_build_with_its_own_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks = COMPONENTIZE_HOOK.replace('world = "greeter"', 'world = "no-such-world"') + COMPONENT_INIT_HOOK
    assert "no-such-world" in hooks
    project = make_project(tmp_path / "greeter", hooks)
    before = tree_snapshot(project)

    failure = failed_build(project, capsys)
    # componentize-py's own words, passed on before our line.
    assert "[componentize-py] " in failure.output
    assert "World `no-such-world` not found in package `test:greeter`" in failure.output
    # Nothing at `output`, no partial file next to it, no wheel, nothing else either.
    assert tree_snapshot(project) == before
    assert files_under(project / "build") == []
