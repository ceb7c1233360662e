"""Errors on the async (component-model async) init path: async_abi.py and runtime.run_init's async branch.

A Python host function that raises while Wasmtime's async API drives the
store must reach the caller as the exception it raised (as wasmtime-py's
synchronous calls do, via its LAST_EXCEPTION), never as Wasmtime's stand-in
``WasmtimeError("python exception")`` wrapped into an InitFailedError that
no longer says what the host function raised.
"""

from __future__ import annotations

from typing import Any

import pytest
import wasmtime
from wasmtime import component as cm

from hatch_component_init import InitFailedError
from hatch_component_init.async_abi import call_async, instantiate_async, is_async
from hatch_component_init.host_imports import define_imports
from wat_support import engine, snapshot, wat


class SeedServiceDown(Exception):
    """Raised by the test's host function: nothing else raises it."""


#: `seed` (synchronous, defined by the host) and `sleep` (an `async func`: the store runs through the
#: async API). `component-init` calls seed; `init-args(a, b)` stores a + b without calling anything;
#: `plus(n)` answers what is stored + n; `trap-init` traps; a core start function calls seed during
#: instantiation when START is `(start $start)`.
ASYNC_STORE = """
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
    (func $start (drop (call $seed)))
    START
    (func (export "init") (global.set $g (call $seed)))
    (func (export "init-args") (param i32 i32) (global.set $g (i32.add (local.get 0) (local.get 1))))
    (func (export "trap-init") unreachable)
    (func (export "get") (result i32) (global.get $g))
    (func (export "plus") (param i32) (result i32) (i32.add (global.get $g) (local.get 0))))
  (core instance $i (instantiate $m (with "" (instance (export "sleep" (func $sleep)) (export "seed" (func $seed))))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "init-args") (param "a" u32) (param "b" u32) (canon lift (core func $i "init-args")))
  (func (export "trap-init") (canon lift (core func $i "trap-init")))
  (func (export "get") (result u32) (canon lift (core func $i "get")))
  (func (export "plus") (param "n" u32) (result u32) (canon lift (core func $i "plus"))))
"""

#: No async import (a synchronous store), but init is an `async func` (callback ABI) that calls `seed`.
ASYNC_LIFTED_INIT = wat(
    """
(component
  (import "example:clock/wait@1.0.0" (instance $clock (export "seed" (func (result u32)))))
  (alias export $clock "seed" (func $seed))
  (core func $seed (canon lower (func $seed)))
  (core module $m
    (import "" "task.return" (func $task-return))
    (import "" "seed" (func $seed (result i32)))
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (result i32) (global.set $g (call $seed)) (call $task-return) (i32.const 0))
    (func (export "get") (result i32) (global.get $g))
    (func (export "cb") (param i32 i32 i32) (result i32) unreachable))
  (core func $task-return (canon task.return))
  (core instance $i (instantiate $m (with "" (instance
    (export "task.return" (func $task-return)) (export "seed" (func $seed))))))
  (func (export "component-init") async (canon lift (core func $i "init") async (callback (core func $i "cb"))))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
)

ASYNC_IMPORTING = wat(ASYNC_STORE.replace("START", ""))
STARTS_WITH_SEED = wat(ASYNC_STORE.replace("START", "(start $start)"))


def seed_host(answer: Any) -> tuple[Any, list[BaseException]]:
    """A `host` whose `seed` returns ``answer``, or raises it if it is an exception (kept in the list)."""
    raised: list[BaseException] = []

    def define(linker: cm.Linker) -> None:
        def seed(store: Any) -> int:
            if isinstance(answer, BaseException):
                raised.append(answer)
                raise answer
            return int(answer)

        with linker.root() as root, root.add_instance("example:clock/wait@1.0.0") as clock:
            clock.add_func("seed", seed)

    return define, raised


def running(data: bytes, host: Any) -> tuple[wasmtime.Store, cm.Instance]:
    """An instance of ``data`` through the async API, imports bound as during init (no WASI)."""
    component = cm.Component(engine(), data)
    store = wasmtime.Store(engine())
    linker = cm.Linker(engine())
    define_imports(linker, store, component, engine(), None, host)
    return store, instantiate_async(linker, store, component)


@pytest.mark.parametrize("component", [ASYNC_IMPORTING, ASYNC_LIFTED_INIT], ids=["async-store", "async-lifted-init"])
def test_a_host_function_that_raises_during_async_init_reaches_the_caller(component: bytes) -> None:
    original = SeedServiceDown("seed service down (4711)")
    host, raised = seed_host(original)
    with pytest.raises(BaseException) as info:
        snapshot(component, host=host, wasi=None)
    assert raised == [original]  # init did call it
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert original in chain or "seed service down (4711)" in str(info.value), repr(info.value)
    # What the code does: the host function's own exception, as from a synchronous call.
    assert info.value is original


#: A synchronous component (no async import, sync init) whose init traps.
SYNC_TRAP = wat(
    """
(component
  (core module $m (func (export "init") unreachable))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)


@pytest.mark.parametrize("component", [ASYNC_IMPORTING, ASYNC_LIFTED_INIT], ids=["async-store", "async-lifted-init"])
def test_a_host_exception_does_not_leak_into_the_next_failure(component: bytes) -> None:
    """wasmtime-py keeps a raised exception until someone re-raises it: the async path must take it.

    Left behind, it would surface from the next unrelated failure of a synchronous call (wasmtime-py
    re-raises it there) instead of that failure."""
    host, raised = seed_host(SeedServiceDown("first"))
    with pytest.raises(BaseException):  # noqa: B017 - which one is the test above's business
        snapshot(component, host=host, wasi=None)
    assert len(raised) == 1
    with pytest.raises(InitFailedError, match=r"the init function `component-init` failed: .*unreachable") as info:
        snapshot(SYNC_TRAP, wasi=None)
    assert isinstance(info.value.__cause__, wasmtime.WasmtimeError)
    with pytest.raises(InitFailedError, match=r"the init function `trap-init` failed: .*unreachable") as info:
        snapshot(ASYNC_IMPORTING, host=seed_host(1)[0], init_func="trap-init", wasi=None)
    assert isinstance(info.value.__cause__, wasmtime.WasmtimeError)


@pytest.mark.parametrize("component", [ASYNC_IMPORTING, ASYNC_LIFTED_INIT], ids=["async-store", "async-lifted-init"])
def test_a_host_function_that_answers_is_used_by_async_init(component: bytes) -> None:
    host, raised = seed_host(4242)
    output = snapshot(component, host=host, wasi=None)
    store, instance = running(output, seed_host(0)[0])
    assert instance.get_func(store, "component-init") is None
    get = instance.get_func(store, "get")
    assert get is not None and call_async(get, store) == 4242
    assert raised == []


def test_a_host_function_that_raises_during_async_instantiation_reaches_the_caller() -> None:
    """instantiate_async: a core start function calls the host during instantiation."""
    original = SeedServiceDown("seed service down at start")
    host, raised = seed_host(original)
    with pytest.raises(SeedServiceDown) as info:
        snapshot(STARTS_WITH_SEED, host=host, wasi=None)
    assert info.value is original and raised == [original]
    # And called directly, instantiate_async raises it as well.
    with pytest.raises(SeedServiceDown) as direct:
        running(STARTS_WITH_SEED, host)
    assert direct.value is original


def test_a_guest_trap_during_async_instantiation_is_an_init_failure() -> None:
    """Without a Python exception behind it, a failed future is Wasmtime's own error."""
    trapping = wat(ASYNC_STORE.replace("START", "(start $trap)").replace(
        "(func $start (drop (call $seed)))", "(func $start (drop (call $seed)))\n    (func $trap unreachable)"
    ))  # fmt: skip
    with pytest.raises(InitFailedError, match=r"instantiating the component failed: .*unreachable") as info:
        snapshot(trapping, host=seed_host(1)[0], wasi=None)
    assert isinstance(info.value.__cause__, wasmtime.WasmtimeError)


def test_async_init_with_arguments_passes_them() -> None:
    output = snapshot(ASYNC_IMPORTING, host=seed_host(1)[0], init_func="init-args(40, 2)", wasi=None)
    store, instance = running(output, seed_host(0)[0])
    assert call_async(instance.get_func(store, "get"), store) == 42  # type: ignore[arg-type]


def test_call_async_checks_the_argument_count_and_converts_results() -> None:
    store, instance = running(ASYNC_IMPORTING, seed_host(5)[0])
    init_args = instance.get_func(store, "init-args")
    init = instance.get_func(store, "component-init")
    get, plus = instance.get_func(store, "get"), instance.get_func(store, "plus")
    assert init_args is not None and init is not None and get is not None and plus is not None
    with pytest.raises(TypeError, match="wrong number of parameters provided: given 1, expected 2"):
        call_async(init_args, store, 1)
    # A value that does not convert fails before the call, and the store still works afterwards.
    with pytest.raises(Exception):  # noqa: B017 - wasmtime-py's own conversion error
        call_async(init_args, store, 1, "two")
    assert call_async(get, store) == 0
    assert call_async(init, store) is None
    assert call_async(get, store) == 5
    assert call_async(init_args, store, 3, 4) is None
    assert call_async(get, store) == 7
    # Arguments and a result in one call: what `Running.call` does with an accessor of an async store.
    assert call_async(plus, store, 10) == 17


def test_is_async_tells_async_funcs_from_others() -> None:
    store, instance = running(ASYNC_LIFTED_INIT, seed_host(1)[0])
    init, get = instance.get_func(store, "component-init"), instance.get_func(store, "get")
    assert init is not None and get is not None
    init_type, get_type = init.type(store), get.type(store)
    assert (is_async(init_type), is_async(get_type)) == (True, False)
