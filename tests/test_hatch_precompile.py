"""The `precompile` and `loader` options of the `component-init` hook, and the loader they generate.

Every loader runs in a fresh process with an empty Wasmtime cache, the way a
first start after `pip install` does. Whether it deserialized or compiled is
proven by what it reports (`Loaded.how`) and by Wasmtime's cache directory: a
deserialized component writes nothing there, a compiled one fills it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    DESTINATION,
    DEV_MODE_DIRS,
    build_in_process,
    failed_build,
    make_project,
    run_build,
)
from wat_support import snapshot, wat

from hatch_component_init.errors import ConfigError
from hatch_component_init.versions import wasmtime_version
from hatch_component_init.hatch.component_init import ComponentInitBuildHook
from hatch_component_init.hatch.loader import render_loader
from hatch_component_init.hatch.precompile import host_target, precompile, wheel_tag

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

#: Init stores 42 in a global that `answer` returns: 42 proves the snapshot, 0 would mean init never ran.
APP_WAT = """
(component
  (core module $m
    (memory 1)
    (global $answer (mut i32) (i32.const 0))
    (func (export "init") (global.set $answer (i32.const 42)))
    (func (export "answer") (result i32) (global.get $answer)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""

LOADER = "greeter_pkg/_component.py"
PRECOMPILED = "greeter_pkg/greeter.cwasm"

#: Loads through the generated module, calls `answer`, and reports what happened.
RUN = """
import json, sys
import wasmtime
from wasmtime.component import Linker
module = __import__(sys.argv[1], fromlist=["load"])
given = None
if sys.argv[2] == "fuel":
    config = wasmtime.Config()
    config.consume_fuel = True
    given = wasmtime.Engine(config)
loaded = module.load(given)
engine, component = loaded
assert (loaded.engine, loaded.component) == (engine, component) and len(loaded) == 2
store = wasmtime.Store(engine)
if given is not None:
    store.set_fuel(10_000_000)
instance = Linker(engine).instantiate(store, component)
answer = instance.get_func(store, "answer")(store)
print(json.dumps({"answer": answer, "how": loaded.how, "given_engine_kept": engine is given}))
"""


def wasmtime_cache_files(home: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(home / "cache" / "wasmtime"))


def run_loader(site: Path, home: Path, module: str = "pkg._component", engine: str = "default") -> dict[str, object]:
    """Run the loader in a fresh interpreter whose Wasmtime cache lives (empty at first) under ``home``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    result = subprocess.run(
        [sys.executable, "-c", RUN, module, engine], env=env, cwd=home.parent, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def app_snapshot() -> bytes:
    return snapshot(wat(APP_WAT))


def make_package(root: Path, component: bytes, *, precompiled: bool, only: bool = False) -> Path:
    """``root/pkg`` with the component, optionally its `.cwasm`, and the generated loader; returns the `.cwasm` path.

    ``only``: the `.cwasm` without the `.wasm`, as `precompile = "only"` ships it.
    """
    package = root / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "app.wasm").write_bytes(component)
    cwasm = package / "app.cwasm"
    settings = None
    if precompiled:

        def stage(data: bytes) -> Path:
            cwasm.write_bytes(data)
            return cwasm

        settings = ("pkg/app.cwasm", precompile(package / "app.wasm", None, stage))
    if only:
        (package / "app.wasm").unlink()
    loader = render_loader("pkg/_component.py", None if only else "pkg/app.wasm", settings)
    (package / "_component.py").write_bytes(loader)
    return cwasm


def elf_section(data: bytes, wanted: bytes) -> tuple[int, int]:
    """Offset and size of a section of a (64-bit, little-endian) ELF file, which is what a `.cwasm` is."""
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * entry_size) for i in range(count)]
    names = headers[names_index][4]
    for name, _type, _flags, _addr, offset, size, *_ in headers:
        end = data.index(b"\0", names + name)
        if data[names + name : end] == wanted:
            return offset, size
    raise AssertionError(f"no {wanted!r} section")


def engine_section(data: bytes) -> tuple[int, int]:
    """Wasmtime's `.wasmtime.engine` section: a format byte, the version string (length byte first), the settings."""
    return elf_section(data, b".wasmtime.engine")


def enabled_cpu_features(data: bytes) -> set[str]:
    """The `has_*` ISA flags a `.cwasm` was compiled with that are on (postcard: name, Bool variant, value)."""
    offset, size = engine_section(data)
    section = data[offset : offset + size]
    flags = re.finditer(rb"(?s)(.)(has_[a-z0-9_]+)\x02([\x00\x01])", section)
    return {m[2].decode() for m in flags if m[1][0] == len(m[2]) and m[3] == b"\x01"}


def set_setting(loader: Path, name: str, value: object) -> None:
    lines = loader.read_text().splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if line.startswith(f"{name}:")]
    annotation = lines[index].split("=", 1)[0]
    lines[index] = f"{annotation}= {value!r}\n"
    loader.write_text("".join(lines))


class TestLoader:
    def test_precompiled_is_deserialized(self, tmp_path: Path, app_snapshot: bytes) -> None:
        make_package(tmp_path / "site", app_snapshot, precompiled=True)
        home = tmp_path / "home"
        got = run_loader(tmp_path / "site", home)
        assert got == {"answer": 42, "how": "precompiled app.cwasm", "given_engine_kept": False}
        # Nothing was compiled: Wasmtime's cache stayed empty.
        assert wasmtime_cache_files(home) == 0

    def test_without_precompiled_compiles_with_the_cache(self, tmp_path: Path, app_snapshot: bytes) -> None:
        make_package(tmp_path / "site", app_snapshot, precompiled=False)
        home = tmp_path / "home"
        got = run_loader(tmp_path / "site", home)
        assert got["answer"] == 42
        assert got["how"] == "compiled app.wasm (no precompiled component was built)"
        assert wasmtime_cache_files(home) > 0

    @pytest.mark.parametrize(
        ("damage", "reason"),
        [
            ("missing", "app.cwasm: cannot be read"),
            ("truncated", "app.cwasm: its checksum does not match the build's (damaged or replaced)"),
            ("bytes flipped", "app.cwasm: its checksum does not match the build's (damaged or replaced)"),
            ("recorded for another wasmtime", "app.cwasm: compiled by wasmtime 1.0.0, installed is "),
            ("recorded for another platform", "app.cwasm: compiled for riscv64gc-unknown-linux-gnu, this is "),
            ("made by another wasmtime", "app.cwasm: Wasmtime refused it: "),
            ("not a wasmtime artifact", "app.cwasm: Wasmtime refused it: "),
        ],
    )
    def test_unusable_precompiled_falls_back(self, tmp_path: Path, app_snapshot: bytes, damage: str, reason: str) -> None:
        cwasm = make_package(tmp_path / "site", app_snapshot, precompiled=True)
        loader = cwasm.parent / "_component.py"
        data = bytearray(cwasm.read_bytes())
        if damage == "missing":
            cwasm.unlink()
        elif damage == "truncated":
            cwasm.write_bytes(data[: len(data) // 2])
        elif damage == "bytes flipped":
            # Inside the machine code: Wasmtime itself would not notice (it checks headers, not code).
            middle = len(data) // 2
            data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
            cwasm.write_bytes(data)
        elif damage == "recorded for another wasmtime":
            set_setting(loader, "WASMTIME_VERSION", "1.0.0")
        elif damage == "recorded for another platform":
            set_setting(loader, "TARGET", "riscv64gc-unknown-linux-gnu")
            set_setting(loader, "PLATFORM", ("riscv64gc", "linux"))
        else:
            if damage == "made by another wasmtime":
                # The version string Wasmtime writes into its engine section: one byte of length, then the text.
                offset, _size = engine_section(bytes(data))
                length = data[offset + 1]
                data[offset + 2 : offset + 2 + length] = b"9" * length
            else:
                # Without its engine section an ELF file is not Wasmtime's to load.
                name = data.index(b".wasmtime.engine\0")
                data[name : name + 16] = b".something.else\0"
            cwasm.write_bytes(data)
            # A file whose checksum matches: only Wasmtime's own checks stand between it and the engine.
            set_setting(loader, "PRECOMPILED_SHA256", hashlib.sha256(data).hexdigest())

        home = tmp_path / "home"
        got = run_loader(tmp_path / "site", home)
        assert got["answer"] == 42
        assert str(got["how"]).startswith(f"compiled app.wasm ({reason}"), got["how"]
        assert wasmtime_cache_files(home) > 0

    def test_incompatible_engine_compiles_with_it(self, tmp_path: Path, app_snapshot: bytes) -> None:
        make_package(tmp_path / "site", app_snapshot, precompiled=True)
        got = run_loader(tmp_path / "site", tmp_path / "home", engine="fuel")
        assert got["answer"] == 42
        assert got["given_engine_kept"] is True
        assert str(got["how"]).startswith("compiled app.wasm (app.cwasm: Wasmtime refused it: "), got
        assert "fuel" in str(got["how"])

    def test_imports_only_wasmtime_and_the_standard_library(self, tmp_path: Path, app_snapshot: bytes) -> None:
        cwasm = make_package(tmp_path / "site", app_snapshot, precompiled=True)
        tree = ast.parse((cwasm.parent / "_component.py").read_text())
        # The one exception: an editable install's rebuild imports us, and carries on without us.
        (guarded,) = [
            node for node in ast.walk(tree)
            if isinstance(node, ast.Try) and any(isinstance(h.type, ast.Name) and h.type.id == "ImportError"
                                                 for h in node.handlers)
        ]  # fmt: skip
        assert [ast.unparse(node) for node in guarded.body] == [
            "from hatch_component_init.hatch.editable import development_load, refresh"
        ]
        guarded.body = []
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        assert "wasmtime" in imported
        assert imported - {"wasmtime", "__future__"} <= set(sys.stdlib_module_names)

    def test_code_for_the_baseline_cpu_of_this_platform(self, tmp_path: Path, app_snapshot: bytes) -> None:
        import wasmtime
        from wasmtime.component import Component

        ours = make_package(tmp_path / "site", app_snapshot, precompiled=True).read_bytes()
        native = bytes(Component(wasmtime.Engine(), app_snapshot).serialize())
        # Whatever extra features the build CPU has (a native compile uses them), ours does not rely on them.
        assert enabled_cpu_features(ours) <= enabled_cpu_features(native)
        if enabled_cpu_features(native):
            assert enabled_cpu_features(ours) < enabled_cpu_features(native)
        offset, _size = engine_section(ours)
        length = ours[offset + 1]
        # Wasmtime records only its major version: what the wheel's requirement pins.
        assert ours[offset + 2 : offset + 2 + length].decode() == wasmtime_version().split(".")[0]

    def test_wasmtime_does_not_check_the_code(self, tmp_path: Path, app_snapshot: bytes) -> None:
        """Why the loader verifies a checksum: Wasmtime accepts a `.cwasm` whose machine code was altered."""
        cwasm = make_package(tmp_path / "site", app_snapshot, precompiled=True)
        data = bytearray(cwasm.read_bytes())
        offset, size = elf_section(bytes(data), b".text")
        data[offset : offset + size] = bytes(b ^ 0xFF for b in data[offset : offset + size])
        cwasm.write_bytes(data)
        code = (
            "import sys, wasmtime; from wasmtime.component import Component; "
            "Component.deserialize_file(wasmtime.Engine(), sys.argv[1]); print('accepted')"
        )
        # Only loaded, never run: running it would execute garbage.
        result = subprocess.run([sys.executable, "-c", code, str(cwasm)], capture_output=True, text=True)
        assert result.stdout.strip() == "accepted", result.stderr

    def test_no_code_for_another_architecture(self, tmp_path: Path) -> None:
        """Why there is no cross-compilation: wasmtime-py's Cranelift aborts the process for a foreign target."""
        foreign = "aarch64-unknown-linux-gnu" if host_target().startswith("x86_64") else "x86_64-unknown-linux-gnu"
        code = "import sys, wasmtime; c = wasmtime.Config(); c.target = sys.argv[1]; wasmtime.Engine(c); print('made')"
        result = subprocess.run([sys.executable, "-c", code, foreign], capture_output=True, text=True)
        assert result.returncode != 0 and "made" not in result.stdout
        assert "Support for this target is disabled" in result.stderr

    def test_output_is_deterministic(self, tmp_path: Path, app_snapshot: bytes) -> None:
        first = make_package(tmp_path / "a", app_snapshot, precompiled=True)
        second = make_package(tmp_path / "b", app_snapshot, precompiled=True)
        assert first.read_bytes() == second.read_bytes()
        assert (first.parent / "_component.py").read_bytes() == (second.parent / "_component.py").read_bytes()


#: Loads through the generated module and reports the exception it raised, if any.
RUN_EXPECTING_ERROR = """
import json, sys
import wasmtime
module = __import__(sys.argv[1], fromlist=["load"])
given = None
if sys.argv[2] == "fuel":
    config = wasmtime.Config()
    config.consume_fuel = True
    given = wasmtime.Engine(config)
try:
    loaded = module.load(given)
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e), "is_ours": isinstance(e, module.PrecompiledOnlyError) and isinstance(e, RuntimeError)}))
else:
    print(json.dumps({"how": loaded.how}))
"""


def load_error(site: Path, home: Path, engine: str = "default") -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(site), "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", RUN_EXPECTING_ERROR, "pkg._component", engine],
        env=env, cwd=home.parent, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


class TestOnlyPrecompiled:
    """`precompile = "only"`: the loader has the `.cwasm` and nothing to fall back to."""

    def test_fitting_code_is_deserialized(self, tmp_path: Path, app_snapshot: bytes) -> None:
        cwasm = make_package(tmp_path / "site", app_snapshot, precompiled=True, only=True)
        assert not (cwasm.parent / "app.wasm").exists()
        home = tmp_path / "home"
        got = run_loader(tmp_path / "site", home)
        assert got == {"answer": 42, "how": "precompiled app.cwasm", "given_engine_kept": False}
        assert wasmtime_cache_files(home) == 0

    @pytest.mark.parametrize(
        ("unfit", "reason", "advice"),
        [
            ("another wasmtime", "compiled by wasmtime 1.0.0, installed is ", "pip install wasmtime==1.0.0"),
            ("another platform", "compiled for riscv64gc-unknown-linux-gnu, this is ", "install a wheel of the package built on it"),
            ("other engine settings", "Wasmtime refused it: ", f"pip install wasmtime=={wasmtime_version()}"),
            ("damaged", "its checksum does not match the build's", f"pip install wasmtime=={wasmtime_version()}"),
        ],
    )  # fmt: skip
    def test_unfit_code_says_what_to_install(
        self, tmp_path: Path, app_snapshot: bytes, unfit: str, reason: str, advice: str
    ) -> None:
        import wasmtime
        from wasmtime.component import Component

        cwasm = make_package(tmp_path / "site", app_snapshot, precompiled=True, only=True)
        loader = cwasm.parent / "_component.py"
        if unfit == "another wasmtime":
            set_setting(loader, "WASMTIME_VERSION", "1.0.0")
        elif unfit == "another platform":
            set_setting(loader, "TARGET", "riscv64gc-unknown-linux-gnu")
            set_setting(loader, "PLATFORM", ("riscv64gc", "linux"))
        elif unfit == "other engine settings":
            # Real machine code for this platform and wasmtime, made by an engine that counts fuel: the
            # loader's engine (Wasmtime's defaults) must refuse it. Its checksum is the recorded one.
            config = wasmtime.Config()
            config.consume_fuel = True
            data = bytes(Component(wasmtime.Engine(config), app_snapshot).serialize())
            cwasm.write_bytes(data)
            set_setting(loader, "PRECOMPILED_SHA256", hashlib.sha256(data).hexdigest())
            set_setting(loader, "PRECOMPILED_SIZE", len(data))
        else:
            cwasm.write_bytes(cwasm.read_bytes()[:-1])
        home = tmp_path / "home"
        got = load_error(tmp_path / "site", home)
        assert got["error"] == "PrecompiledOnlyError" and got["is_ours"] is True, got
        message = str(got["message"])
        assert message.startswith(
            "pkg: cannot load the component: the package ships it only as machine code for "
        ), message
        assert "(built with `precompile = \"only\"`), with no `.wasm` to compile instead, and app.cwasm does not fit: " in message
        assert f"does not fit: {reason}" in message and advice in message, message
        assert "\n" not in message  # one paragraph
        assert wasmtime_cache_files(home) == 0  # nothing compiled: there was nothing to compile

    def test_an_engine_with_other_settings_is_refused_too(self, tmp_path: Path, app_snapshot: bytes) -> None:
        make_package(tmp_path / "site", app_snapshot, precompiled=True, only=True)
        got = load_error(tmp_path / "site", tmp_path / "home", engine="fuel")
        assert got["error"] == "PrecompiledOnlyError", got
        assert "app.cwasm does not fit: Wasmtime refused it: " in str(got["message"])
        assert "give load() no engine or one with Wasmtime's default settings" in str(got["message"])


# -- the hook ---------------------------------------------------------------------------------------


def hook_table(**options: str) -> str:
    """The tests' `component-init` table with ``options`` (TOML values) set or replaced."""
    lines = [line for line in COMPONENT_INIT_HOOK.splitlines() if line.split(" = ")[0] not in options]
    return "\n".join(lines + [f"{key} = {value}" for key, value in options.items()]) + "\n"


def unpack(wheel: Path, site: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def wheel_metadata(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [item for item in archive.namelist() if item.endswith(f".dist-info/{name}")]
        return archive.read(member).decode()


@pytest.fixture(scope="module")
def app_component() -> bytes:
    return wat(APP_WAT)


class TestHook:
    def test_precompiled_wheel(self, tmp_path: Path, app_component: bytes, capsys: pytest.CaptureFixture[str]) -> None:
        project = make_project(
            tmp_path / "greeter", hook_table(precompile="true", loader=f'"{LOADER}"'), raw_component=app_component
        )
        wheel = build_in_process(project)

        assert wheel.name == f"greeter-1.0-{wheel_tag()}.whl"
        assert not wheel.name.endswith("-none-any.whl")
        tags = [line.split(": ", 1)[1] for line in wheel_metadata(wheel, "WHEEL").splitlines() if line.startswith("Tag:")]
        assert tags and all(tag.startswith("py3-none-") and not tag.endswith("-any") for tag in tags)
        assert "Root-Is-Purelib: false" in wheel_metadata(wheel, "WHEEL")
        # The platforms are the installed wasmtime wheel's: the code runs where that wasmtime runs.
        from importlib.metadata import distribution

        wasmtime_tags = [line.split(": ", 1)[1] for line in (distribution("wasmtime").read_text("WHEEL") or "").splitlines()
                         if line.startswith("Tag:")]  # fmt: skip
        assert {tag.split("-")[-1] for tag in tags} == {tag.split("-")[-1] for tag in wasmtime_tags}
        # The literal form, from the installed wasmtime's own metadata: its major version, any minor or patch.
        requires = [line for line in wheel_metadata(wheel, "METADATA").splitlines() if line.startswith("Requires-Dist: wasmtime")]
        assert requires == [f"Requires-Dist: wasmtime=={distribution('wasmtime').version.split('.')[0]}.*"]
        with zipfile.ZipFile(wheel) as archive:
            assert {DESTINATION, PRECOMPILED, LOADER} <= set(archive.namelist())
        out = capsys.readouterr().err
        assert f"-> `{PRECOMPILED}` for {host_target()}" in out

        site = unpack(wheel, tmp_path / "site")
        home = tmp_path / "home"
        got = run_loader(site, home, module="greeter_pkg._component")
        assert got == {"answer": 42, "how": "precompiled greeter.cwasm", "given_engine_kept": False}
        assert wasmtime_cache_files(home) == 0
        # The source tree got neither file.
        assert not (project / PRECOMPILED).exists() and not (project / LOADER).exists()

    def test_only_precompiled_wheel(
        self, tmp_path: Path, app_component: bytes, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = make_project(
            tmp_path / "greeter", hook_table(precompile='"only"', loader=f'"{LOADER}"'), raw_component=app_component
        )
        # A `.wasm` of the tree at `destination` (e.g. left by an editable install) is not shipped either.
        (project / DESTINATION).write_bytes(app_component)
        wheel = build_in_process(project)

        assert wheel.name == f"greeter-1.0-{wheel_tag()}.whl"
        assert "Root-Is-Purelib: false" in wheel_metadata(wheel, "WHEEL")
        from importlib.metadata import distribution

        # The one release the code was compiled by: there is no `.wasm` to fall back to.
        requires = [line for line in wheel_metadata(wheel, "METADATA").splitlines() if line.startswith("Requires-Dist: wasmtime")]
        assert requires == [f"Requires-Dist: wasmtime=={distribution('wasmtime').version}"]
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
        assert {PRECOMPILED, LOADER} <= names
        assert not [name for name in names if name.endswith(".wasm")], names
        out = capsys.readouterr().err
        assert f"requires `wasmtime=={wasmtime_version()}`, without `{DESTINATION}`" in out
        assert f"`load()` uses `{PRECOMPILED}` alone (`precompile = \"only\"`)" in out

        site = unpack(wheel, tmp_path / "site")
        home = tmp_path / "home"
        got = run_loader(site, home, module="greeter_pkg._component")
        assert got == {"answer": 42, "how": "precompiled greeter.cwasm", "given_engine_kept": False}
        assert wasmtime_cache_files(home) == 0

    def test_plain_wheel_stays_pure(self, tmp_path: Path, app_component: bytes) -> None:
        project = make_project(tmp_path / "greeter", hook_table(loader=f'"{LOADER}"'), raw_component=app_component)
        wheel = build_in_process(project)

        assert wheel.name == "greeter-1.0-py3-none-any.whl"
        assert "Root-Is-Purelib: true" in wheel_metadata(wheel, "WHEEL")
        assert "Requires-Dist: wasmtime" not in wheel_metadata(wheel, "METADATA")
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
        assert LOADER in names and PRECOMPILED not in names
        got = run_loader(unpack(wheel, tmp_path / "site"), tmp_path / "home", module="greeter_pkg._component")
        assert got["answer"] == 42
        assert got["how"] == "compiled greeter.wasm (no precompiled component was built)"

    @pytest.mark.parametrize(("value", "precompile"), [("0", "true"), ("false", "true"), ("no", "true"), ("off", '"only"')])
    def test_universal_switch_skips_the_precompile(
        self,
        tmp_path: Path,
        app_component: bytes,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        value: str,
        precompile: str,
    ) -> None:
        monkeypatch.setenv("HATCH_COMPONENT_INIT_PRECOMPILE", value)
        project = make_project(
            tmp_path / "greeter", hook_table(precompile=precompile, loader=f'"{LOADER}"'), raw_component=app_component
        )
        wheel = build_in_process(project)

        assert f"HATCH_COMPONENT_INIT_PRECOMPILE={value}: `precompile` is ignored, this is a universal wheel" in (
            capsys.readouterr().err
        )
        assert wheel.name == "greeter-1.0-py3-none-any.whl"
        assert "Root-Is-Purelib: true" in wheel_metadata(wheel, "WHEEL")
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
        assert {DESTINATION, LOADER} <= names and PRECOMPILED not in names
        home = tmp_path / "home"
        got = run_loader(unpack(wheel, tmp_path / "site"), home, module="greeter_pkg._component")
        assert got["answer"] == 42
        assert got["how"] == "compiled greeter.wasm (no precompiled component was built)"
        assert wasmtime_cache_files(home) > 0  # compiled once, with Wasmtime's cache

    def test_universal_switch_on_precompiles(self, tmp_path: Path, app_component: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HATCH_COMPONENT_INIT_PRECOMPILE", "1")
        project = make_project(tmp_path / "greeter", hook_table(precompile="true"), raw_component=app_component)
        assert PRECOMPILED in zipfile.ZipFile(build_in_process(project)).namelist()

    def test_precompile_without_loader(self, tmp_path: Path, app_component: bytes) -> None:
        project = make_project(tmp_path / "greeter", hook_table(precompile="true"), raw_component=app_component)
        wheel = build_in_process(project)
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
        assert {DESTINATION, PRECOMPILED} <= names and LOADER not in names
        assert wheel.name == f"greeter-1.0-{wheel_tag()}.whl"

    def test_cache_hit_does_not_recompile(
        self, tmp_path: Path, app_component: bytes, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from hatch_component_init.hatch.cache import PrecompiledCache

        project = make_project(tmp_path / "greeter", hook_table(precompile="true"), raw_component=app_component)
        first = build_in_process(project)
        assert "from the cache" not in capsys.readouterr().err
        (cached,) = PrecompiledCache(snapshot_cache_dir).entries.glob("*.cwasm")
        shutil.move(first, tmp_path / first.name)

        second = build_in_process(project)
        out = capsys.readouterr().err
        assert f"-> `{PRECOMPILED}` for {host_target()}" in out and "from the cache, Wasmtime not run" in out
        assert zipfile.ZipFile(second).read(PRECOMPILED) == cached.read_bytes()
        assert zipfile.ZipFile(tmp_path / first.name).read(PRECOMPILED) == cached.read_bytes()

    def test_no_cache_leaves_cache_alone(self, tmp_path: Path, app_component: bytes, snapshot_cache_dir: Path) -> None:
        project = make_project(
            tmp_path / "greeter", hook_table(precompile="true", cache="false"), raw_component=app_component
        )
        wheel = build_in_process(project)
        assert PRECOMPILED in zipfile.ZipFile(wheel).namelist()
        assert not list(snapshot_cache_dir.rglob("*.cwasm"))

    def test_editable_writes_loader_into_tree(self, tmp_path: Path, app_component: bytes) -> None:
        project = make_project(
            tmp_path / "greeter",
            hook_table(precompile="true", loader=f'"{LOADER}"'),
            raw_component=app_component,
            wheel_options=DEV_MODE_DIRS,
        )
        wheel = build_in_process(project, version="editable")
        assert wheel.name == "greeter-1.0-py3-none-any.whl"
        assert (project / LOADER).is_file() and not (project / PRECOMPILED).exists()

        got = run_loader(project, tmp_path / "home", module="greeter_pkg._component")
        assert got["answer"] == 42
        assert got["how"] == "compiled greeter.wasm with Winch (no precompiled component was built)"

        hook = ComponentInitBuildHook(
            str(project), {"component": "build/greeter.wasm", "destination": DESTINATION, "loader": LOADER},
            None, None, str(project), "wheel",
        )  # fmt: skip
        hook.clean(["editable"])
        assert not (project / LOADER).exists() and not (project / DESTINATION).exists()

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"loader": '"greeter_pkg/loader.txt"'}, "Option `loader` for build hook `component-init` must be"),
            ({"loader": '"greeter-pkg/_component.py"'}, "Option `loader` for build hook `component-init` must be"),
            ({"loader": '"../_component.py"'}, "Option `loader` for build hook `component-init` must be"),
            ({"precompile": '"yes"'}, 'Option `precompile` for build hook `component-init` must be a boolean, or `"only"`'),
            ({"precompile": "1"}, 'Option `precompile` for build hook `component-init` must be a boolean, or `"only"`'),
            (
                {"precompile": "true", "destination": '"greeter_pkg/greeter.cwasm"'},
                "Option `precompile` for build hook `component-init` needs a `destination` whose suffix is not `.cwasm`",
            ),
            (
                {"precompile": '"only"', "destination": '"greeter_pkg/greeter.cwasm"'},
                "Option `precompile` for build hook `component-init` needs a `destination` whose suffix is not `.cwasm`",
            ),
        ],
    )
    def test_bad_options(
        self, tmp_path: Path, app_component: bytes, options: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = make_project(tmp_path / "greeter", hook_table(**options), raw_component=app_component)
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, (TypeError, ValueError))
        assert message in failure.message

    def test_project_excluding_this_wasmtime(
        self, tmp_path: Path, app_component: bytes, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = make_project(tmp_path / "greeter", hook_table(precompile="true"), raw_component=app_component)
        pyproject = project / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('requires-python = ">=3.11"', 'requires-python = ">=3.11"\ndependencies = ["wasmtime>=999"]'))
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, ConfigError)
        assert "but the project requires `wasmtime>=999`" in failure.message


# -- the sample project, built and installed for real -----------------------------------------------

SAMPLE = Path(__file__).parent.parent / "sample_project"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wasmtime wheel this environment runs, for offline installs into fresh venvs."""
    directory = tmp_path_factory.mktemp("wheelhouse")
    run_build(
        [sys.executable, "-m", "pip", "download", f"wasmtime=={wasmtime_version()}", "--no-deps",
         "--only-binary=:all:", "--dest", str(directory)],
        cwd=directory,
    )  # fmt: skip
    return directory


def install_offline(tmp_path: Path, wheelhouse: Path, wheel: Path) -> Path:
    """A fresh venv at ``tmp_path / "venv"`` holding ``wheel`` and its requirements from ``wheelhouse``, no index."""
    venv = tmp_path / "venv"
    run_build([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    run_build(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-index",
         "--find-links", str(wheelhouse), str(wheel)],
        cwd=tmp_path,
    )  # fmt: skip
    return venv


def lexicon(venv: Path, home: Path, *args: str) -> str:
    """Run the installed sample's console script in a fresh process with its own (initially empty) Wasmtime cache."""
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(venv / "bin" / "lexicon"), *args], env=env, cwd=home.parent, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the venv layout below is POSIX's")
def test_sample_wheel_first_start_and_fallbacks(
    tmp_path: Path, wheelhouse: Path, sample_wheel: tuple[Path, str]
) -> None:
    wheel, _ = sample_wheel
    assert wheel.name == f"lexicon-0.1.0-{wheel_tag()}.whl"

    # A fresh venv holding nothing but the wheel and its requirements (wasmtime), installed offline.
    venv = install_offline(tmp_path, wheelhouse, wheel)
    installed = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import lexicon, os; print(os.path.dirname(lexicon.__file__))"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    assert installed.is_relative_to(venv)

    first = tmp_path / "first"
    out = lexicon(venv, first, "listen")
    assert "listen: anagrams: enlist, silent, tinsel; one edit away: glisten," in out
    assert "  loaded: precompiled lexicon.cwasm;" in out
    assert wasmtime_cache_files(first) == 0
    expected = out.splitlines()[1]

    cwasm = installed / "lexicon.cwasm"
    good = cwasm.read_bytes()
    damages = {
        "truncated": (good[: len(good) // 3], "its checksum does not match"),
        "flipped": (good[:4096] + bytes(b ^ 0x55 for b in good[4096:8192]) + good[8192:], "its checksum does not match"),
    }
    # Made by another wasmtime: the version in Wasmtime's engine section changed, the recorded checksum updated,
    # so that Wasmtime's own check is what refuses it.
    offset, _size = engine_section(good)
    length = good[offset + 1]
    other = good[: offset + 2] + b"9" * length + good[offset + 2 + length :]
    damages["another wasmtime"] = (other, "Wasmtime refused it: ")
    home = tmp_path / "fallback"  # shared: after the first fallback, Wasmtime's cache makes the others quick
    for name, (data, reason) in damages.items():
        cwasm.write_bytes(data)
        loader = installed / "_component.py"
        original = loader.read_text()
        if name == "another wasmtime":
            set_setting(loader, "PRECOMPILED_SHA256", hashlib.sha256(data).hexdigest())
        try:
            out = lexicon(venv, home, "listen")
        finally:
            loader.write_text(original)
        assert out.splitlines()[1] == expected, name
        assert f"  loaded: compiled lexicon.wasm (lexicon.cwasm: {reason}" in out, (name, out)


def only_machine_code(pyproject: str) -> str:
    """The sample's `pyproject.toml` with `precompile = "only"`, the `component-init` hook alone (its input is the
    component an earlier build made), and without the raw component and data it ships for `--raw`."""
    kept: list[str] = []
    dropping = False
    for line in pyproject.splitlines(keepends=True):
        if line.startswith("["):
            dropping = line.strip() in (
                "[tool.hatch.build.hooks.componentize-py]", "[tool.hatch.build.targets.wheel.force-include]"
            )  # fmt: skip
        if not dropping:
            kept.append(line)
    text = "".join(kept)
    assert "precompile = true\n" in text and "componentize-py]" not in text and "force-include" not in text
    return text.replace("precompile = true\n", 'precompile = "only"\n')


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the venv layout below is POSIX's")
def test_sample_wheel_with_the_machine_code_alone(
    tmp_path: Path, wheelhouse: Path, sample_wheel: tuple[Path, str]
) -> None:
    wheel, _ = sample_wheel
    built = wheel.parent.parent  # the session's copy of the sample, holding the component its build made
    project = tmp_path / "sample"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    assert (project / "build" / "lexicon.wasm").is_file()
    (project / "pyproject.toml").write_text(only_machine_code((built / "pyproject.toml").read_text()))
    # The hook caches of that build: the snapshot and the `.cwasm` come from them.
    log = run_build(
        [sys.executable, "-m", "pip", "wheel", "--verbose", "--no-build-isolation", "--no-deps",
         "--wheel-dir", str(tmp_path / "dist"), "."],
        cwd=project,
        env={"HATCH_COMPONENT_INIT_CACHE_DIR": str(built.parent / "hook-cache")},
    )  # fmt: skip
    assert "from the cache" in log
    (only,) = (tmp_path / "dist").glob("lexicon-0.1.0-*.whl")
    assert only.name == wheel.name
    with zipfile.ZipFile(only) as archive:
        names = archive.namelist()
        cwasm = archive.getinfo("lexicon/lexicon.cwasm")
    assert not [name for name in names if name.endswith(".wasm")], names
    assert only.stat().st_size <= 1.15 * cwasm.compress_size, (only.stat().st_size, cwasm.compress_size)
    assert f"Requires-Dist: wasmtime=={wasmtime_version()}" in wheel_metadata(only, "METADATA")

    venv = install_offline(tmp_path, wheelhouse, only)
    home = tmp_path / "first"
    out = lexicon(venv, home, "listen")
    assert "listen: anagrams: enlist, silent, tinsel; one edit away: glisten," in out
    assert "  loaded: precompiled lexicon.cwasm;" in out
    assert wasmtime_cache_files(home) == 0
