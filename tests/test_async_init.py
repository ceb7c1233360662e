"""Components that import `async func`s, or whose init is one, run through Wasmtime's async API.

WASI 0.2 comes from Wasmtime, every other import, WASI 0.3
included, gets a stand-in that traps naming the import if init calls it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from wasmtime import component as cm

from conftest import FIXTURES, componentize
from hatch_component_init import HostError, InitFailedError, WasiOptions, pre_initialize, pre_initialize_with
from hatch_component_init.async_abi import call_async, instantiate_async
from hatch_component_init.host_imports import define_imports
from hatch_component_init.rewrite import reencode
from hatch_component_init.runtime import async_imports
from hatch_component_init.wasm.component import parse_component
from wat_support import BUMP_ALLOCATOR, CLI_WINCH, engine, engine_for, snapshot, wat


class RunningAsync:
    """A fresh instance of a component that imports `async func`s, through Wasmtime's async API.

    Imports are bound as during init: WASI 0.2 (unless ``wasi`` is false) and trapping stand-ins.
    """

    def __init__(self, data: bytes, *, wasi: bool = True, env: tuple[tuple[str, str], ...] = ()) -> None:
        eng = engine_for(data)
        self.component = cm.Component(eng, data)
        self.store = wasmtime.Store(eng)
        self.linker = cm.Linker(eng)
        config = None
        if wasi:
            config = wasmtime.WasiConfig()
            config.env = [list(pair) for pair in env]
        define_imports(self.linker, self.store, self.component, eng, config)
        self.instance = instantiate_async(self.linker, self.store, self.component)

    def has(self, name: str) -> bool:
        return self.instance.get_export_index(self.store, name) is not None

    def call(self, name: str, *args: Any) -> Any:
        func = self.instance.get_func(self.store, name)
        assert func is not None, f"no export {name}"
        return call_async(func, self.store, *args)


#: Imports an `async func` (`sleep`) and `wasi:cli/environment` under a version other than Wasmtime's
#: (served by semver); init reads the environment, `nap` calls the async import.
ASYNC_IMPORT = wat(
    f"""
(component
  (import "example:clock/wait@1.0.0" (instance $clock (export "sleep" (func async (param "ms" u32)))))
  (type $env (list (tuple string string)))
  (import "wasi:cli/environment@0.2.9" (instance $e (export "get-environment" (func (result $env)))))
  {BUMP_ALLOCATOR}
  (alias export $clock "sleep" (func $sleep))
  (core func $sleep (canon lower (func $sleep)))
  (alias export $e "get-environment" (func $get-env))
  (core func $get-env (canon lower (func $get-env) (memory (core memory $libc "memory"))
    (realloc (core func $libc "realloc"))))
  (core module $m
    (import "" "sleep" (func $sleep (param i32)))
    (import "" "get-env" (func $get-env (param i32)))
    (import "libc" "memory" (memory 1))
    (global $g (mut i32) (i32.const 0))
    (func (export "init")
      ;; get-environment writes (pointer, count) at 0; keep the count, plus 100
      (call $get-env (i32.const 0))
      (global.set $g (i32.add (i32.const 100) (i32.load (i32.const 4)))))
    (func (export "sleepy-init") (call $sleep (i32.const 1)) (global.set $g (i32.const 1)))
    (func (export "get") (result i32) (global.get $g))
    (func (export "nap") (call $sleep (i32.const 5))))
  (core instance $i (instantiate $m (with "" (instance (export "sleep" (func $sleep)) (export "get-env" (func $get-env))))
    (with "libc" (instance $libc))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "sleepy-init") (canon lift (core func $i "sleepy-init")))
  (func (export "get") (result u32) (canon lift (core func $i "get")))
  (func (export "nap") (canon lift (core func $i "nap"))))
"""
)

#: An `async func` init (callback ABI) next to a synchronous getter; no async imports.
ASYNC_INIT = wat(
    """
(component
  (core module $m
    (import "" "task.return" (func $task-return))
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (result i32) (global.set $g (i32.const 7)) (call $task-return) (i32.const 0))
    (func (export "get") (result i32) (global.get $g))
    (func (export "cb") (param i32 i32 i32) (result i32) unreachable))
  (core func $task-return (canon task.return))
  (core instance $i (instantiate $m (with "" (instance (export "task.return" (func $task-return))))))
  (func (export "component-init") async (canon lift (core func $i "init") async (callback (core func $i "cb"))))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
)

#: An `async func` import next to a synchronous one (`seed`) that the host defines; init stores the seed.
ASYNC_AND_HOST_IMPORT = wat(
    """
(component
  (import "example:clock/wait@1.0.0" (instance $clock
    (export "sleep" (func async (param "ms" u32)))
    (export "seed" (func (result u32)))))
  (alias export $clock "sleep" (func $sleep))
  (alias export $clock "seed" (func $seed))
  (core func $sleep (canon lower (func $sleep)))
  (core func $seed (canon lower (func $seed)))
  (core module $m
    (import "" "sleep" (func (param i32)))
    (import "" "seed" (func $seed (result i32)))
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (call $seed)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m (with "" (instance (export "sleep" (func $sleep)) (export "seed" (func $seed))))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
)

ENV = (("A", "1"), ("B", "2"), ("C", "3"))

#: Imports an instance with a resource that has an `async` method and one that has only an `async` static
#: function (WASIp3's interfaces have both), none called by init.
ASYNC_RESOURCE_IMPORT = wat(
    """
(component
  (import "example:timers/timer@1.0.0" (instance $t
    (export "timer" (type $timer (sub resource)))
    (export "[method]timer.wait" (func async (param "self" (borrow $timer)) (param "ms" u32)))
    (export "clock" (type $clock (sub resource)))
    (export "[static]clock.reset" (func async))
    (export "now" (func async (result u64)))))
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 42)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
)


def test_async_import_component_is_pre_initialized() -> None:
    assert RunningAsync(ASYNC_IMPORT).call("get") == 0
    output = snapshot(ASYNC_IMPORT, wasi=WasiOptions(env=ENV))
    assert reencode(parse_component(memoryview(output))) == output
    out = RunningAsync(output)
    assert not out.has("component-init")
    # init read the three variables through the WASI 0.2.9 import, which Wasmtime serves by semver
    # (a stand-in defined over it would have trapped).
    assert out.call("get") == 103
    assert snapshot(ASYNC_IMPORT, wasi=WasiOptions(env=ENV)) == output


def test_async_methods_of_an_imported_resource_get_stand_ins() -> None:
    # The stand-in component declares the resource and passes `self` to its method: init runs, and so does the output.
    output = snapshot(ASYNC_RESOURCE_IMPORT)
    out = RunningAsync(output)
    assert not out.has("component-init")
    assert out.call("get") == 42


def test_async_import_stand_in_traps_in_the_output_too() -> None:
    out = RunningAsync(snapshot(ASYNC_IMPORT, wasi=WasiOptions(env=ENV)))
    with pytest.raises(wasmtime.WasmtimeError, match="example:clock/wait@1.0.0#sleep"):
        out.call("nap")


@pytest.mark.parametrize("wasi", [True, False])
def test_init_calling_an_async_import_fails_naming_it(wasi: bool) -> None:
    with pytest.raises(InitFailedError) as info:
        snapshot(ASYNC_IMPORT, init_func="sleepy-init", **({} if wasi else {"wasi": None}))
    message = str(info.value)
    assert "the init function `sleepy-init` failed" in message
    assert "the import `example:clock/wait@1.0.0#sleep` was called during init" in message


def test_async_init_is_called() -> None:
    output = snapshot(ASYNC_INIT)
    out = RunningAsync(output, wasi=False)
    assert not out.has("component-init")
    assert out.call("get") == 7
    assert RunningAsync(snapshot(ASYNC_INIT, keep_init_func=True), wasi=False).has("component-init")


def test_host_defines_a_sync_import_of_an_async_component() -> None:
    def host(linker: cm.Linker) -> None:
        with linker.root() as root, root.add_instance("example:clock/wait@1.0.0") as clock:
            clock.add_func("seed", lambda store: 4242)

    output = snapshot(ASYNC_AND_HOST_IMPORT, host=host)
    assert RunningAsync(output).call("get") == 4242


def test_host_defining_an_async_import_synchronously_is_a_clear_error() -> None:
    def sleeper(linker: cm.Linker) -> None:
        with linker.root() as root, root.add_instance("example:clock/wait@1.0.0") as clock:
            clock.add_func("sleep", lambda store, ms: None)

    with pytest.raises(HostError) as info:
        snapshot(ASYNC_AND_HOST_IMPORT, host=sleeper)
    message = str(info.value)
    assert "sleeper` define `example:clock/wait@1.0.0#sleep`" in message
    assert "imports as an `async func`" in message and "Leave that import out" in message


#: A top-level `async func` import.
ASYNC_FUNC_IMPORT = wat(
    """
(component
  (import "nap" (func $nap async))
  (core func $nap (canon lower (func $nap)))
  (core module $m (import "" "nap" (func)) (func (export "init")))
  (core instance $i (instantiate $m (with "" (instance (export "nap" (func $nap))))))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)


def test_host_defining_a_top_level_async_import_synchronously_is_a_clear_error() -> None:
    def napper(linker: cm.Linker) -> None:
        with linker.root() as root:
            root.add_func("nap", lambda store: None)

    with pytest.raises(HostError, match=r"napper` define `nap`, which the component imports as an `async func`"):
        snapshot(ASYNC_FUNC_IMPORT, host=napper)
    RunningAsync(snapshot(ASYNC_FUNC_IMPORT), wasi=False)  # left undefined, it gets a stand-in


def test_a_host_object_without_a_qualified_name_is_named_by_its_repr() -> None:
    """A callable object (an instance with `__call__`, a `functools.partial`) has no `__qualname__`."""

    class Napper:
        def __call__(self, linker: cm.Linker) -> None:
            with linker.root() as root:
                root.add_func("nap", lambda store: None)

        def __repr__(self) -> str:
            return "<the napper>"

    with pytest.raises(HostError, match=r"definitions `<the napper>` define `nap`, which the component imports"):
        snapshot(ASYNC_FUNC_IMPORT, host=Napper())


def test_async_component_code_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path))
    first = snapshot(ASYNC_IMPORT, wasi=WasiOptions(env=ENV), code_cache=True)
    assert any(tmp_path.rglob("*")), "the compiled code was not cached"
    second = snapshot(ASYNC_IMPORT, wasi=WasiOptions(env=ENV), code_cache=True)  # from the cache
    assert second == first
    assert RunningAsync(second).call("get") == 103


def test_caller_runtime_without_the_async_api_is_a_clear_error() -> None:
    def run(instrumented: bytes) -> Any:
        component = cm.Component(engine(), instrumented)
        store = wasmtime.Store(engine())
        linker = cm.Linker(engine())
        linker.define_unknown_imports_as_traps(component)
        linker.instantiate(store, component)  # Wasmtime refuses: the store must be driven through `*_async`

    with pytest.raises(HostError) as info:
        pre_initialize_with(ASYNC_IMPORT, run)
    message = str(info.value)
    assert "the runtime callback failed" in message
    assert "imports `async func`s" in message and "async API" in message


# ---------------------------------------------------------------- componentize-py builds


@pytest.fixture(scope="session")
def cli_p3_init_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """tests/fixtures/cli_p3_init: componentize-py's `cli-p3` shape (WASI 0.3 command) with an init export."""
    from test_real_world import _wit_with_wasi_deps

    tmp = tmp_path_factory.mktemp("cli-p3-init")
    app = FIXTURES / "cli_p3_init"
    return componentize(app, "local:p3-init/init", "app", tmp / "cli.wasm", wit=_wit_with_wasi_deps(app, tmp))


def _run_p3_command(wasmtime_cli: Path, component: bytes, tmp_path: Path) -> str:
    path = tmp_path / "command.wasm"
    path.write_bytes(component)
    r = subprocess.run(
        [str(wasmtime_cli), "run", *CLI_WINCH, "-Sp3", "-W", "component-model-async=y", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.slow
def test_cli_p3_app_is_pre_initialized_and_runs_from_the_snapshot(
    cli_p3_init_component: bytes, tmp_path: Path, wasmtime_cli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/guarantees.md: a componentize-py app with an `async func` export (`run`) next to a synchronous init is
    # pre-initialized, and its async export answers from the snapshot under `wasmtime run -W component-model-async=y`.
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / "cache"))
    assert _run_p3_command(wasmtime_cli, cli_p3_init_component, tmp_path) == "not initialized (run 1)\n"
    output = pre_initialize(cli_p3_init_component)
    assert reencode(parse_component(memoryview(output))) == output
    words = " ".join(sorted(["snapshot", "from", "the", "answering"], key=len))
    expected = f"{words}: {sum(n * n for n in range(1, 11))} (run 1)\n"
    assert _run_p3_command(wasmtime_cli, output, tmp_path) == expected
    # Again, with the compiled code from the cache: the same bytes.
    assert pre_initialize(cli_p3_init_component) == output


@pytest.fixture(scope="session")
def spin_p3_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """tests/fixtures/spin_p3: a spin-sdk 5 http app, its world merged with one that adds an init export."""
    import spin_sdk

    site_packages = Path(spin_sdk.__file__).parent.parent  # componentize-py finds spin-sdk's WIT through it
    return componentize(
        FIXTURES / "spin_p3",
        ("spin:up/http-trigger@4.1.0", "local:spin-init/init"),
        "app",
        tmp_path_factory.mktemp("spin-p3") / "spin.wasm",
        extra=("-p", str(site_packages)),
    )


@pytest.mark.slow
def test_spin_5_http_app_is_pre_initialized(
    spin_p3_component: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / "cache"))
    before = RunningAsync(spin_p3_component)
    assert len(async_imports(before.component, engine())) > 80  # WASIp3: its world imports that many
    assert before.call("init-state") == ""
    output = pre_initialize(spin_p3_component)
    assert reencode(parse_component(memoryview(output))) == output
    out = RunningAsync(output)
    assert not out.has("component-init")
    assert out.has("wasi:http/handler@0.3.0")
    table = {word: word[::-1] for word in ("spin", "snapshot", "init")}
    table["squares"] = str(sum(n * n for n in range(1, 11)))
    assert out.call("init-state") == ",".join(f"{k}={v}" for k, v in sorted(table.items()))
    assert pre_initialize(spin_p3_component) == output  # deterministic (this time from the code cache)




#: An async (stackful) init that waits on an empty waitable set: nothing can ever wake it.
WAITS_FOR_NOTHING = wat(
    """
(component
  (core module $libc (memory (export "memory") 1))
  (core instance $libc (instantiate $libc))
  (core module $m
    (import "" "waitable-set.new" (func $new (result i32)))
    (import "" "waitable-set.wait" (func $wait (param i32 i32) (result i32)))
    (func (export "init") (drop (call $wait (call $new) (i32.const 0)))))
  (core func $new (canon waitable-set.new))
  (core func $wait (canon waitable-set.wait (memory (core memory $libc "memory"))))
  (core instance $i (instantiate $m (with "" (instance
    (export "waitable-set.new" (func $new)) (export "waitable-set.wait" (func $wait))))))
  (func (export "component-init") async (canon lift (core func $i "init") async)))
"""
)


def test_async_init_that_waits_for_nothing_fails_instead_of_hanging() -> None:
    with pytest.raises(InitFailedError, match=r"init function `component-init` failed: .*deadlock detected"):
        snapshot(WAITS_FOR_NOTHING)
