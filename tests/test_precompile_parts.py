"""hatch/precompile.py's parts on their own: the wheel's claims, the requirement checks, the cache, the report line.

The end-to-end checks (a built wheel, a loader in a fresh process) are in
test_hatch_precompile.py; these pin each rule with a small real component, so
that a break of one fails here, quickly.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime
from wat_support import wat

from hatch_component_init.errors import ConfigError, PrecompileError
from hatch_component_init.hatch import precompile as precompile_module
from hatch_component_init.hatch.cache import PrecompiledCache
from hatch_component_init.hatch.precompile import (
    Precompiled,
    check_wasmtime_requirements,
    compile_component,
    describe,
    host_target,
    precompile,
    precompiled_destination,
    ship_precompiled,
    wasmtime_requirement,
    wheel_tag,
)
from hatch_component_init.versions import wasmtime_version

COMPONENT = wat('(component (core module (func (export "f"))) (core instance (instantiate 0)))')


def test_the_cwasm_sits_next_to_the_destination() -> None:
    assert precompiled_destination("pkg/app.wasm") == "pkg/app.cwasm"
    assert precompiled_destination("pkg/app") == "pkg/app.cwasm"
    assert precompiled_destination("pkg/app.v1.wasm") == "pkg/app.v1.cwasm"


def test_the_wasmtime_requirement_is_the_major_version_or_the_release() -> None:
    assert wasmtime_requirement("36.0.2") == "wasmtime==36.*"
    assert wasmtime_requirement("36.0.2", exact=True) == "wasmtime==36.0.2"


@pytest.mark.parametrize(
    ("dependencies", "conflict"),
    [
        (["wasmtime>=36"], None),
        (["wasmtime<36", "other"], "wasmtime<36"),
        (["Wasmtime_Py; python_version > '3'", "WASMTIME<30"], "WASMTIME<30"),  # names compare canonical
        (["not a requirement !!", "wasmtime<30"], "wasmtime<30"),
        (["other<1"], None),
        # An extra's requirement is not installed with the wheel; the requirements after it still count.
        (["wasmtime<30; extra == 'old'", "wasmtime<30"], "wasmtime<30"),
        (["wasmtime<30; extra == ''"], "wasmtime<30; extra == ''"),  # installed when no extra is asked for
        (["wasmtime<30; python_version >= '3'"], "wasmtime<30; python_version >= '3'"),
        (["wasmtime>=36.0.0"], None),
        (["wasmtime==36.0.2rc1"], "wasmtime==36.0.2rc1"),
    ],
)
def test_the_projects_wasmtime_requirements_are_checked(dependencies: list[str], conflict: str | None) -> None:
    assert check_wasmtime_requirements(dependencies, "36.0.2") == conflict


def test_a_prerelease_of_wasmtime_satisfies_a_requirement_that_allows_it() -> None:
    assert check_wasmtime_requirements(["wasmtime>=36"], "37.0.0rc1") is None


def test_what_wasmtime_cannot_compile_is_a_precompile_error() -> None:
    with pytest.raises(PrecompileError, match=r"^Wasmtime could not compile the component for x86_64-unknown-linux-gnu: "):
        compile_component(b"\0asm not a component", "x86_64-unknown-linux-gnu")


def test_compiled_code_loads_in_the_default_engine() -> None:
    engine = wasmtime.Engine()
    data = compile_component(COMPONENT, host_target())
    assert wasmtime.component.Component.deserialize(engine, data) is not None


class _Failing(PrecompiledCache):
    def put(self, key: str, data: bytes) -> Path:
        raise PermissionError(13, "Permission denied", str(self.directory))


def test_a_cache_that_cannot_be_written_still_ships_the_code(tmp_path: Path) -> None:
    component = tmp_path / "app.wasm"
    component.write_bytes(COMPONENT)
    errors: list[OSError] = []
    staged = tmp_path / "staged.cwasm"
    got = precompile(component, _Failing(tmp_path / "cache"), lambda data: staged.write_bytes(data) and staged, errors.append)
    assert [type(error) for error in errors] == [PermissionError]
    assert got.path == staged and not got.from_cache
    assert got.sha256 == hashlib.sha256(staged.read_bytes()).hexdigest() and got.size == staged.stat().st_size
    assert got.target == host_target() and got.wasmtime_version == wasmtime_version()
    assert got.platform[1] in ("linux", "darwin", "windows")


def _other_component(component: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    component.write_bytes(wat('(component (core module (func (export "g"))) (core instance (instantiate 0)))'))


def _other_target(component: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A triple no supported machine has; this wasmtime compiles for its own host only, so the code is a stand-in.
    monkeypatch.setattr(precompile_module, "host_target", lambda: "riscv64gc-unknown-linux-gnu")
    monkeypatch.setattr(precompile_module, "compile_component", lambda data, target: b"code for " + target.encode())


def _other_wasmtime(component: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precompile_module, "wasmtime_version", lambda: "1.0.0")


CHANGES: dict[str, Callable[[Path, pytest.MonkeyPatch], None]] = {
    "other-component": _other_component,
    "other-target": _other_target,
    "other-wasmtime": _other_wasmtime,
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_cached_entry_is_shipped_only_for_its_component_target_and_wasmtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Callable[[Path, pytest.MonkeyPatch], None]
) -> None:
    component = tmp_path / "app.wasm"
    component.write_bytes(COMPONENT)
    cache = PrecompiledCache(tmp_path / "cache")

    def stage(data: bytes) -> Path:
        raise AssertionError("a cache that takes the entry needs no staging")

    first = precompile(component, cache, stage)
    assert not first.from_cache and first.path.parent == cache.entries
    second = precompile(component, cache, stage)
    assert second.from_cache and second.path == first.path
    # Wasmtime would load code made from another component, for another target or by another release
    # without a word (or refuse it at the user's first start): the key must tell each apart.
    change(component, monkeypatch)
    third = precompile(component, cache, stage)
    assert not third.from_cache and third.path != first.path


def _artifact(from_cache: bool, size: int = 2_345_678) -> Precompiled:
    return Precompiled(Path("x.cwasm"), "0" * 64, size, "x86_64-unknown-linux-gnu", ("x86_64", "linux"), "36.0.2", from_cache)


def test_the_line_the_build_shows() -> None:
    assert describe(_artifact(False), "pkg/app.wasm", "pkg/app.cwasm", 1.234) == (
        "Precompiled `pkg/app.wasm` -> `pkg/app.cwasm` for x86_64-unknown-linux-gnu (2.3 MB, wasmtime 36.0.2) in 1.23 s"
    )
    assert describe(_artifact(True), "a", "b", 0.0).endswith("(2.3 MB, from the cache, Wasmtime not run) in 0.00 s")
    # A megabyte is 10**6 bytes: a hair past 1.05 of them rounds up.
    assert "(1.1 MB, " in describe(_artifact(False, 1_050_001), "a", "b", 0.0)


def _ship(tmp_path: Path, *, dependencies: tuple[str, ...] = (), **options: bool) -> tuple[dict, list[str], list[str]]:
    """``options`` (``only``) are passed on when given, so that a call without them tests the defaults."""
    component = tmp_path / "app.wasm"
    component.write_bytes(COMPONENT)
    build_data: dict = {"force_include": {}, "dependencies": [], "tag": "", "pure_python": True}
    reports: list[str] = []
    warnings: list[str] = []
    staged = tmp_path / "staged.cwasm"
    ship_precompiled(
        component, destination="pkg/app.wasm", dependencies=dependencies, hook_name="component-init",
        cache=None, stage=lambda data: staged.write_bytes(data) and staged, build_data=build_data,
        report=reports.append, warn=warnings.append, **options,
    )  # fmt: skip
    return build_data, reports, warnings


def test_shipping_makes_the_wheel_say_what_it_needs(tmp_path: Path) -> None:
    major = wasmtime_version().split(".")[0]
    started = time.perf_counter()
    # A project that requires the build's wasmtime is not refused; by default the wheel keeps its `.wasm`.
    build_data, reports, warnings = _ship(tmp_path, dependencies=(f"wasmtime=={major}.*",))
    took = time.perf_counter() - started
    assert build_data["force_include"] == {str(tmp_path / "staged.cwasm"): "pkg/app.cwasm"}
    assert build_data["tag"] == wheel_tag() and build_data["pure_python"] is False
    assert build_data["dependencies"] == [f"wasmtime=={major}.*"]
    (line,) = reports
    assert line.startswith("Precompiled `pkg/app.wasm` -> `pkg/app.cwasm` for ")
    assert line.endswith(f"; wheel tagged `{wheel_tag()}`, requires `wasmtime=={major}.*`")
    shown = re.search(r" in (\d+\.\d\d) s; ", line)
    assert shown is not None and 0 <= float(shown[1]) <= round(took, 2) + 0.01, "the time the shipping took"
    assert warnings == []


def test_shipping_the_code_alone_requires_the_exact_wasmtime(tmp_path: Path) -> None:
    build_data, reports, _ = _ship(tmp_path, only=True)
    assert build_data["dependencies"] == [f"wasmtime=={wasmtime_version()}"]
    assert reports[0].endswith(f"requires `wasmtime=={wasmtime_version()}`, without `pkg/app.wasm`")


def test_a_project_excluding_the_build_wasmtime_is_refused(tmp_path: Path) -> None:
    version = wasmtime_version()
    with pytest.raises(ConfigError) as raised:
        _ship(tmp_path, dependencies=("wasmtime<1",))
    assert str(raised.value) == (
        f"Option `precompile` for build hook `component-init`: the build runs wasmtime {version}, whose "
        f"precompiled code loads only in wasmtime {version.split('.')[0]}.x, but the project requires "
        "`wasmtime<1`. Build with a wasmtime that the project's requirements allow."
    )


def test_without_wasmtime_in_the_build_environment_it_says_what_to_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precompile_module, "wasmtime_version", lambda: "not installed")
    with pytest.raises(PrecompileError, match=r"needs wasmtime in the build environment .*add `wasmtime` to `\[build-system\] requires`$"):
        _ship(tmp_path)


def test_a_one_digit_major_version_of_wasmtime_is_a_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # wasmtime 9 and before: only the first character tells a version from "unknown".
    monkeypatch.setattr(precompile_module, "wasmtime_version", lambda: "9.0.4")
    build_data, _, _ = _ship(tmp_path)
    assert build_data["dependencies"] == ["wasmtime==9.*"]


def test_a_cache_write_failure_is_a_warning(tmp_path: Path) -> None:
    component = tmp_path / "app.wasm"
    component.write_bytes(COMPONENT)
    build_data: dict = {"force_include": {}, "dependencies": []}
    warnings: list[str] = []
    staged = tmp_path / "staged.cwasm"
    ship_precompiled(
        component, destination="pkg/app.wasm", dependencies=(), hook_name="component-init",
        cache=_Failing(tmp_path / "cache"), stage=lambda data: staged.write_bytes(data) and staged,
        build_data=build_data, report=lambda line: None, warn=warnings.append,
    )  # fmt: skip
    assert warnings == [f"Could not write the precompiled component to the cache: [Errno 13] Permission denied: '{tmp_path / 'cache'}'"]
