"""Helpers of the Hatch hook tests: a fixture project, builds, and running what a wheel ships."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

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


@dataclass
class HookFailure:
    """A build our hook stopped the Hatch way: what was printed on stderr, and the exception behind it."""

    output: str
    error: BaseException | None

    @property
    def message(self) -> str:
        """The message, when it is one line (hatchling's abort prints it last)."""
        return self.output.rstrip("\n").rpartition("\n")[2]

    def reported(self, message: str) -> bool:
        """Whether ``message`` is what was printed last (hatchling's abort prints it after anything else)."""
        return self.output.endswith(f"{message}\n")


def failed_build(root: Path, capsys: pytest.CaptureFixture[str], target: str = "wheel", version: str = "standard") -> HookFailure:
    """Build in process, expecting a hook to abort (a SystemExit, as under every frontend), and nothing built."""
    import pytest

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        build_in_process(root, target=target, version=version)
    assert info.value.code == 1
    assert not list(root.glob("dist/*.whl")) and not list(root.glob("dist/*.tar.gz"))
    failure = HookFailure(output=capsys.readouterr().err, error=info.value.__context__)
    from hatch_component_init.errors import ComponentInitError

    if isinstance(failure.error, ComponentInitError):
        # Our own error's message is what was printed last.
        assert failure.reported(str(failure.error)), failure.output
    return failure


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
    from wasmtime import Store, WasiConfig
    from wasmtime.component import Component, Linker
    from wat_support import app_engine

    engine = app_engine()
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


def check_greeter_wheel(wheel: Path, greeting: str = "Hello", greet: str = "Hello, Ada!") -> None:
    """The wheel ships the pre-initialized greeter: init's state is there without calling init."""
    assert wheel.name == "greeter-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert names.count(DESTINATION) == 1
    assert not [name for name in names if name.startswith("build/")]

    run = run_component(wheel_member(wheel, DESTINATION), [("state", ()), ("greet", ("Ada",))])
    # The init export is gone, and its effect is there without calling it or granting /data.
    assert run.exports == {"greet", "state"}
    assert run.results["state"] == f"init-runs=1 greeting={greeting}"
    assert run.results["greet"] == greet
    # Printing after the snapshot still works (no stale WASI handles), and init's output is not replayed.
    assert run.stdout == b"greet: called for Ada\n"
    assert run.stderr == b""


def build_own_wheel(directory: Path) -> Path:
    """A wheel of hatch-component-init as it is in this checkout, for isolated builds to install."""
    from hatchling.builders.wheel import WheelBuilder

    repository = Path(__file__).parent.parent
    return Path(next(WheelBuilder(str(repository)).build(directory=str(directory), versions=["standard"])))


def find_links_env(wheelhouse: Path) -> dict[str, str]:
    """Offer ``wheelhouse`` to every frontend: pip (and `build`) read PIP_FIND_LINKS, uv and hatch UV_FIND_LINKS."""
    pip_links = " ".join(filter(None, [str(wheelhouse), os.environ.get("PIP_FIND_LINKS", "")]))
    uv_links = ",".join(filter(None, [str(wheelhouse), os.environ.get("UV_FIND_LINKS", "")]))
    return {"PIP_FIND_LINKS": pip_links, "UV_FIND_LINKS": uv_links}


def hatch_home_env(home: Path) -> dict[str, str]:
    """A private Hatch configuration, data and cache (so nothing of the user's is used or changed)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("")
    return {
        "HATCH_DATA_DIR": str(home / "data"),
        "HATCH_CACHE_DIR": str(home / "cache"),
        "HATCH_CONFIG": str(home / "config.toml"),
    }


def make_pure_wheel(directory: Path, name: str, version: str, files: dict[str, str], *, pure: bool = True) -> Path:
    """Write a minimal wheel of ``files`` (path -> text); ``pure=False`` marks it as platform-specific."""
    import base64
    import hashlib

    directory.mkdir(parents=True, exist_ok=True)
    tag = "py3-none-any"
    dist_info = f"{name}-{version}.dist-info"
    members = dict(files)
    members[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    members[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: hatch-component-init tests\nRoot-Is-Purelib: {str(pure).lower()}\nTag: {tag}\n"
    )
    record = []
    for path, text in members.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    wheel = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in members.items():
            archive.writestr(path, text)
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel
