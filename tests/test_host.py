"""Host functions during init: `host=` (and --host), and a runtime the caller provides (`pre_initialize_with`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from wasmtime import component as cm
from wat_support import engine, wat

from hatch_component_init import HostError, InitFailedError, pre_initialize, pre_initialize_with
from hatch_component_init.runtime import WasmtimeInvoker

# Init reads a setting and counts with a host resource; `value` shows what init stored.
# `test:cfg/audit#log` is imported too but init never calls it.
APP = """
(component
  (import "test:cfg/settings" (instance $settings
    (export "counter" (type $counter (sub resource)))
    (export "[constructor]counter" (func (param "start" u32) (result (own $counter))))
    (export "[method]counter.next" (func (param "self" (borrow $counter)) (result u32)))
    (export "get" (func (param "key" u32) (result u32)))
  ))
  (import "test:cfg/audit" (instance $audit (export "log" (func (param "n" u32)))))
  (alias export $settings "counter" (type $counter))
  (alias export $settings "[constructor]counter" (func $new))
  (alias export $settings "[method]counter.next" (func $next))
  (alias export $settings "get" (func $get))
  (alias export $audit "log" (func $log))
  (core func $new_l (canon lower (func $new)))
  (core func $next_l (canon lower (func $next)))
  (core func $get_l (canon lower (func $get)))
  (core func $log_l (canon lower (func $log)))
  (core func $drop (canon resource.drop $counter))
  (core module $m
    (import "host" "new" (func $new (param i32) (result i32)))
    (import "host" "next" (func $next (param i32) (result i32)))
    (import "host" "get" (func $get (param i32) (result i32)))
    (import "host" "log" (func $log (param i32)))
    (import "host" "drop" (func $drop (param i32)))
    (global $setting (mut i32) (i32.const 0))
    (global $counted (mut i32) (i32.const 0))
    (func (export "init") (local $c i32)
      (global.set $setting (call $get (i32.const 7)))
      (local.set $c (call $new (i32.const 100)))
      (drop (call $next (local.get $c)))
      (global.set $counted (call $next (local.get $c)))
      (call $drop (local.get $c)))
    (func (export "init-logs") (call $log (i32.const 1)))
    (func (export "setting") (result i32) (global.get $setting))
    (func (export "counted") (result i32) (global.get $counted))
    (func (export "live-setting") (result i32) (call $get (i32.const 7))))
  (core instance $hi
    (export "new" (func $new_l)) (export "next" (func $next_l)) (export "get" (func $get_l))
    (export "log" (func $log_l)) (export "drop" (func $drop)))
  (core instance $i (instantiate $m (with "host" (instance $hi))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "init-logs") (canon lift (core func $i "init-logs")))
  (func (export "setting") (result u32) (canon lift (core func $i "setting")))
  (func (export "counted") (result u32) (canon lift (core func $i "counted")))
  (func (export "live-setting") (result u32) (canon lift (core func $i "live-setting")))
)
"""

COUNTER_TYPE = 41


def define_settings(factor: int):  # type: ignore[no-untyped-def]
    """Host definitions of `test:cfg/settings`: get(k) = k * factor; counters count up from their start."""
    counters: dict[int, int] = {}

    def new(store: Any, start: int) -> cm.ResourceHost:
        rep = len(counters) + 1
        counters[rep] = start
        return cm.ResourceHost.own(rep, COUNTER_TYPE)

    def next_(store: Any, this: Any) -> int:
        rep = this.to_host(store).rep if not isinstance(this, cm.ResourceHost) else this.rep
        counters[rep] += 1
        return counters[rep]

    def define(linker: cm.Linker) -> None:
        with linker.root() as root:
            with root.add_instance("test:cfg/settings") as inst:
                inst.add_resource("counter", cm.ResourceType.host(COUNTER_TYPE), lambda store, rep: None)
                inst.add_func("[constructor]counter", new)
                inst.add_func("[method]counter.next", next_)
                inst.add_func("get", lambda store, key: key * factor)

    return define


def _run(data: bytes, factor: int) -> tuple[wasmtime.Store, cm.Instance]:
    eng = engine()
    store = wasmtime.Store(eng)
    linker = cm.Linker(eng)
    define_settings(factor)(linker)
    with linker.root() as root:
        with root.add_instance("test:cfg/audit") as inst:
            inst.add_func("log", lambda store, n: None)
    return store, linker.instantiate(store, cm.Component(eng, data))


def _get(store: wasmtime.Store, inst: cm.Instance, name: str) -> Any:
    func = inst.get_func(store, name)
    assert func is not None, name
    return func(store)


def test_host_functions_and_resources_reach_init() -> None:
    data = pre_initialize(wat(APP), host=define_settings(10))
    # Run with other host values: the snapshot holds init's, so init did not run again.
    store, inst = _run(data, factor=1000)
    assert inst.get_func(store, "component-init") is None
    assert _get(store, inst, "setting") == 70
    assert _get(store, inst, "counted") == 102
    assert _get(store, inst, "live-setting") == 7000


def test_import_the_host_leaves_out_is_still_imported_and_traps_only_if_called() -> None:
    data = pre_initialize(wat(APP), host=define_settings(10))
    eng = engine()
    assert "test:cfg/audit" in cm.Component(eng, data).type.imports(eng)
    with pytest.raises(InitFailedError, match=r"the import `test:cfg/audit#log` was called during init"):
        pre_initialize(wat(APP), init_func="init-logs", host=define_settings(10))


def test_without_host_the_settings_import_traps() -> None:
    with pytest.raises(InitFailedError, match=r"the import `test:cfg/settings#get` was called during init"):
        pre_initialize(wat(APP))


def test_host_definitions_that_raise_are_reported_as_such() -> None:
    def broken(linker: cm.Linker) -> None:
        raise RuntimeError("no settings service")

    with pytest.raises(HostError, match=r"the host definitions `.*broken` failed: RuntimeError: no settings service"):
        pre_initialize(wat(APP), host=broken)


def test_same_host_gives_byte_identical_output() -> None:
    assert pre_initialize(wat(APP), host=define_settings(10)) == pre_initialize(wat(APP), host=define_settings(10))


# --- the CLI's --host ------------------------------------------------------------------------

HOST_MODULE = """
from wasmtime import component as cm

def define(linker):
    with linker.root() as root:
        with root.add_instance("test:cfg/settings") as inst:
            inst.add_resource("counter", cm.ResourceType.host(5), lambda store, rep: None)
            inst.add_func("[constructor]counter", lambda store, start: cm.ResourceHost.own(start, 5))
            inst.add_func("[method]counter.next", lambda store, this: this.to_host(store).rep + 1)
            inst.add_func("get", lambda store, key: key + 1)

def broken(linker):
    raise ValueError("boom")
"""


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hatch_component_init", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_host_is_imported_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "build_host.py").write_text(textwrap.dedent(HOST_MODULE))
    (tmp_path / "app.wasm").write_bytes(wat(APP))
    proc = _cli(tmp_path, "app.wasm", "-o", "out.wasm", "--host", "build_host:define", "-q")
    assert proc.returncode == 0, proc.stderr
    store, inst = _run((tmp_path / "out.wasm").read_bytes(), factor=1000)
    assert _get(store, inst, "setting") == 8
    assert _get(store, inst, "counted") == 101


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ("build_host", 2, "--host must look like `module:function`"),
        ("missing_mod:define", 1, "--host `missing_mod:define`: cannot import `missing_mod`"),
        ("build_host:nothing", 1, "module `build_host` has no `nothing`"),
        ("build_host:broken", 1, "the host definitions `broken` failed: ValueError: boom"),
    ],
)
def test_cli_host_errors(tmp_path: Path, spec: str, code: int, message: str) -> None:
    (tmp_path / "build_host.py").write_text(textwrap.dedent(HOST_MODULE))
    (tmp_path / "app.wasm").write_bytes(wat(APP))
    proc = _cli(tmp_path, "app.wasm", "-o", "out.wasm", "--host", spec)
    assert proc.returncode == code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.wasm").exists()


def test_cli_host_without_a_function_is_a_usage_error_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same refusal as above, from `main` itself: argparse's usage error carries our message.
    from hatch_component_init.cli import main

    (tmp_path / "app.wasm").write_bytes(wat(APP))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["app.wasm", "-o", "out.wasm", "--host", "build_host"])
    assert exited.value.code == 2
    # The command's name, however it was started (`python -m hatch_component_init` too).
    assert "\ncomponent-init: error: --host must look like `module:function`" in capsys.readouterr().err
    assert not (tmp_path / "out.wasm").exists()


# --- a runtime the caller provides ---------------------------------------------------------


def test_pre_initialize_with_a_caller_runtime() -> None:
    calls: list[str] = []

    def run(instrumented: bytes) -> WasmtimeInvoker:
        # The caller's own engine settings, linker and host functions.
        config = wasmtime.Config()
        config.wasm_simd = True
        eng = wasmtime.Engine(config)
        store = wasmtime.Store(eng)
        linker = cm.Linker(eng)
        define_settings(3)(linker)
        with linker.root() as root:
            with root.add_instance("test:cfg/audit") as inst:
                inst.add_func("log", lambda store, n: calls.append(f"log {n}"))
        instance = linker.instantiate(store, cm.Component(eng, instrumented))
        init = instance.get_func(store, "component-init")
        assert init is not None
        init(store)
        return WasmtimeInvoker(instance, store)

    data = pre_initialize_with(wat(APP), run)
    store, inst = _run(data, factor=1000)
    assert inst.get_func(store, "component-init") is None
    assert (_get(store, inst, "setting"), _get(store, inst, "counted")) == (21, 102)
    assert data == pre_initialize(wat(APP), host=define_settings(3))


def test_pre_initialize_with_keeps_the_init_export_on_request() -> None:
    def run(instrumented: bytes) -> WasmtimeInvoker:
        eng = engine()
        store = wasmtime.Store(eng)
        linker = cm.Linker(eng)
        define_settings(2)(linker)
        linker.define_unknown_imports_as_traps(cm.Component(eng, instrumented))
        instance = linker.instantiate(store, cm.Component(eng, instrumented))
        instance.get_func(store, "component-init")(store)  # type: ignore[misc]
        return WasmtimeInvoker(instance, store)

    data = pre_initialize_with(wat(APP), run, keep_init_func=True)
    store, inst = _run(data, factor=1)
    assert inst.get_func(store, "component-init") is not None
    assert _get(store, inst, "setting") == 14


def test_pre_initialize_with_reports_a_failing_callback() -> None:
    def run(instrumented: bytes) -> WasmtimeInvoker:
        raise OSError("engine unavailable")

    with pytest.raises(HostError, match="the runtime callback failed: OSError: engine unavailable"):
        pre_initialize_with(wat(APP), run)


def test_pre_initialize_with_reports_a_bad_invoker() -> None:
    class Wrong:
        def call(self, name: str, *args: int) -> object:
            return 12

    with pytest.raises(HostError, match=r"the invoker's call of the accessor `ci-state-i\d+` returned int, not a string"):
        pre_initialize_with(wat(APP), lambda instrumented: Wrong())  # type: ignore[arg-type,return-value]


#: One page of memory, which init writes to.
ONE_PAGE = """
(component
  (core module $m
    (memory 1)
    (func (export "init") (i32.store (i32.const 8) (i32.const 42))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""


@pytest.mark.parametrize("extra", ["\x01", "\x00"], ids=["one-more-page-in-use", "one-more-page-free"])
def test_pre_initialize_with_refuses_a_scan_of_another_length(extra: str) -> None:
    """The scan answers one flag per page asked for; one more used to send the read-back into an endless loop."""

    def run(instrumented: bytes) -> object:
        eng = engine()
        store = wasmtime.Store(eng)
        instance = cm.Linker(eng).instantiate(store, cm.Component(eng, instrumented))
        instance.get_func(store, "component-init")(store)  # type: ignore[misc]
        invoker = WasmtimeInvoker(instance, store)

        class Overlong:
            def call(self, name: str, *args: int) -> object:
                result = invoker.call(name, *args)
                return result + extra if "scan-i" in name else result

        return Overlong()

    with pytest.raises(HostError, match=r"accessor `ci-scan-i\d+-m0` returned 2 page flags for 1 pages"):
        pre_initialize_with(wat(ONE_PAGE), run)  # type: ignore[arg-type]


def test_pre_initialize_with_reports_an_invoker_that_raises() -> None:
    class Failing:
        def call(self, name: str, *args: int) -> object:
            raise ConnectionError(f"lost the runtime while calling {name}")

    with pytest.raises(
        HostError, match=r"reading the state through the runtime callback's invoker failed: ConnectionError: lost the runtime"
    ) as info:
        pre_initialize_with(wat(APP), lambda instrumented: Failing())  # type: ignore[arg-type,return-value]
    assert isinstance(info.value.__cause__, ConnectionError)
