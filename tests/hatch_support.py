"""Helpers of the Hatch hook tests: a fixture project, builds, and running what a wheel ships."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "greeter"
RAW_COMPONENT = "build/greeter.wasm"
DESTINATION = "greeter_pkg/greeter.wasm"

PYPROJECT = """\
[build-system]
requires = ["hatchling", "hatch-component-init"]
build-backend = "hatchling.build"

[project]
name = "greeter"
version = "1.0"
requires-python = ">=3.11"

[tool.hatch.build.targets.wheel]
packages = ["greeter_pkg"]
{wheel_options}

[tool.hatch.build.targets.sdist]
exclude = ["/build", "/dist"]

{hooks}
"""

#: Editable wheels as a `.pth` file naming the root: hatchling's default needs `editables`, which
#: only an isolated build installs. Our hook behaves the same in both modes.
DEV_MODE_DIRS = 'dev-mode-dirs = ["."]'

COMPONENTIZE_HOOK = f"""\
[tool.hatch.build.hooks.componentize-py]
wit = "wit"
world = "greeter"
module = "app"
output = "{RAW_COMPONENT}"
"""

COMPONENT_INIT_HOOK = f"""\
[tool.hatch.build.hooks.component-init]
component = "{RAW_COMPONENT}"
destination = "{DESTINATION}"
dirs = {{ "data" = "/data" }}
"""


def make_project(root: Path, hooks: str, raw_component: bytes | None = None, wheel_options: str = "") -> Path:
    """Copy the greeter project to ``root`` with ``hooks`` as its hook tables and, optionally, a built component."""
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "pyproject.toml").write_text(PYPROJECT.format(hooks=hooks, wheel_options=wheel_options))
    if raw_component is not None:
        (root / "build").mkdir()
        (root / RAW_COMPONENT).write_bytes(raw_component)
    return root


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, to prove a build left the tree alone."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def build_in_process(root: Path, target: str = "wheel", version: str = "standard") -> Path:
    """Build with hatchling's builder classes in this process, the way the build backend does."""
    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    builder_class = WheelBuilder if target == "wheel" else SdistBuilder
    builder = builder_class(str(root))
    return Path(next(builder.build(directory=str(root / "dist"), versions=[version])))


def wheel_member(wheel: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(name)


def run_build(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run a build command; fail the test with its output if it fails."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = f"$ {' '.join(args)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, output
    return output


def python_tool(module: str) -> list[str]:
    return [sys.executable, "-m", module]


@dataclass
class GuestRun:
    results: dict[str, object] = field(default_factory=dict)
    stdout: bytes = b""
    stderr: bytes = b""
    exports: set[str] = field(default_factory=set)


def run_component(wasm: bytes, calls: list[tuple[str, tuple[object, ...]]], data_dir: Path | None = None) -> GuestRun:
    """Instantiate ``wasm`` in a fresh store and make ``calls``, capturing what the guest prints.

    No directory is granted unless ``data_dir`` is given: a pre-initialized
    component must not need its build-time data.
    """
    from wasmtime import Config, Engine, Store, WasiConfig
    from wasmtime.component import Component, Linker

    config = Config()
    config.cache = True
    engine = Engine(config)
    component = Component(engine, wasm)
    linker = Linker(engine)
    linker.add_wasip2()
    run = GuestRun()

    def collect(stream: str):  # type: ignore[no-untyped-def]
        def write(data: bytes) -> None:
            setattr(run, stream, getattr(run, stream) + data)

        return write

    wasi = WasiConfig()
    wasi.stdout_custom = collect("stdout")
    wasi.stderr_custom = collect("stderr")
    if data_dir is not None:
        wasi.preopen_dir(str(data_dir), "/data", False)
    store = Store(engine)
    store.set_wasi(wasi)
    instance = linker.instantiate(store, component)
    run.exports = {name for name in ("component-init", "greet", "state") if instance.get_func(store, name)}
    for name, args in calls:
        func = instance.get_func(store, name)
        assert func is not None, f"no export {name}"
        run.results[name] = func(store, *args)
        func.post_return(store)
    return run
