"""Each component shape the engine supports: the input behaves uninitialized, the output initialized."""

from __future__ import annotations

import math
import struct

import pytest

from hatch_component_init import InitFailedError, UnsupportedComponentError, pre_initialize
from wat_support import Running, engine, snapshot, wat

GLOBALS = wat(
    """
(component
  (core module $m
    (global $a (mut i32) (i32.const 1))
    (global $b (mut i64) (i64.const 2))
    (global $c (mut f32) (f32.const 3))
    (global $d (mut f64) (f64.const 4))
    (global $v (mut v128) (v128.const i64x2 0 0))
    (global $k i32 (i32.const 99))
    (func (export "init")
      (global.set $a (i32.const -7))
      (global.set $b (i64.const 0x123456789abcdef))
      (global.set $c (f32.const 1.5))
      (global.set $d (f64.const nan:0x8000000000001))
      (global.set $v (v128.const i64x2 0x1111222233334444 -1)))
    (func (export "a") (result i32) (global.get $a))
    (func (export "b") (result i64) (global.get $b))
    (func (export "c") (result f32) (global.get $c))
    (func (export "d") (result i64) (i64.reinterpret_f64 (global.get $d)))
    (func (export "v0") (result i64) (i64x2.extract_lane 0 (global.get $v)))
    (func (export "v1") (result i64) (i64x2.extract_lane 1 (global.get $v)))
    (func (export "k") (result i32) (global.get $k)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "a") (result s32) (canon lift (core func $i "a")))
  (func (export "b") (result s64) (canon lift (core func $i "b")))
  (func (export "c") (result f32) (canon lift (core func $i "c")))
  (func (export "d") (result s64) (canon lift (core func $i "d")))
  (func (export "v0") (result s64) (canon lift (core func $i "v0")))
  (func (export "v1") (result s64) (canon lift (core func $i "v1")))
  (func (export "k") (result s32) (canon lift (core func $i "k"))))
"""
)


def test_numeric_and_v128_globals_are_snapshotted() -> None:
    before = Running(GLOBALS)
    assert (before.call("a"), before.call("b"), before.call("c")) == (1, 2, 3.0)
    out = Running(snapshot(GLOBALS))
    assert not out.has("component-init")
    assert out.call("a") == -7
    assert out.call("b") == 0x123456789ABCDEF
    assert out.call("c") == 1.5
    # The NaN payload survives bit for bit.
    assert out.call("d") == struct.unpack("<q", struct.pack("<Q", 0x7FF8000000000001))[0]
    assert (out.call("v0"), out.call("v1")) == (0x1111222233334444, -1)
    assert out.call("k") == 99


def test_keep_init_func_keeps_the_export() -> None:
    out = Running(snapshot(GLOBALS, keep_init_func=True))
    assert out.has("component-init")
    assert out.call("a") == -7


def test_output_is_deterministic() -> None:
    assert snapshot(GLOBALS) == snapshot(GLOBALS)


MEMORY_GROW = wat(
    """
(component
  (core module $m
    (memory (export "mem") 1 10)
    (data (i32.const 16) "input data")
    (data $p "passive!")
    (func (export "init")
      (drop (memory.grow (i32.const 2)))
      (i32.store (i32.const 16) (i32.const 0x44434241))
      (i32.store (i32.const 0x2fff0) (i32.const 0x5a5a5a5a))
      (memory.fill (i32.const 1000) (i32.const 7) (i32.const 3000)))
    (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
    (func (export "pages") (result i32) (memory.size))
    (func (export "grow") (result i32) (memory.grow (i32.const 1)))
    (func (export "from-passive") (result i32)
      (memory.init $p (i32.const 64) (i32.const 0) (i32.const 8))
      (i32.load (i32.const 64))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "load") (param "a" u32) (result u32) (canon lift (core func $i "load")))
  (func (export "pages") (result u32) (canon lift (core func $i "pages")))
  (func (export "grow") (result s32) (canon lift (core func $i "grow")))
  (func (export "from-passive") (result u32) (canon lift (core func $i "from-passive"))))
"""
)


def test_memory_growth_data_and_passive_segments() -> None:
    before = Running(MEMORY_GROW)
    assert before.call("pages") == 1
    assert before.call("load", 16) == int.from_bytes(b"inpu", "little")
    out = Running(snapshot(MEMORY_GROW))
    assert out.call("pages") == 3
    assert out.call("load", 16) == 0x44434241
    assert out.call("load", 20) == int.from_bytes(b"t da", "little")  # untouched bytes of the old segment
    assert out.call("load", 0x2FFF0) == 0x5A5A5A5A
    assert out.call("load", 2000) == 0x07070707
    assert out.call("load", 5000) == 0
    assert out.call("from-passive") == int.from_bytes(b"pass", "little")
    # The maximum is kept: 3 pages now, growth stops at 10.
    assert [out.call("grow") for _ in range(8)] == [3, 4, 5, 6, 7, 8, 9, -1]


AT_MAXIMUM = wat(
    """
(component
  (core module $m
    (memory 2 2)
    (func (export "init") (i32.store (i32.const 0x1fffc) (i32.const 1234)))
    (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "load") (param "a" u32) (result u32) (canon lift (core func $i "load"))))
"""
)


def test_memory_at_its_maximum() -> None:
    out = Running(snapshot(AT_MAXIMUM))
    assert out.call("load", 0x1FFFC) == 1234


NEVER_GROWN = wat(
    """
(component
  (core module $m
    (memory 1)
    (func (export "init") (memory.fill (i32.const 0) (i32.const 0xab) (i32.const 65536)))
    (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
    (func (export "pages") (result i32) (memory.size))
    (func (export "grow") (result i32) (memory.grow (i32.const 1))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "load") (param "a" u32) (result u32) (canon lift (core func $i "load")))
  (func (export "pages") (result u32) (canon lift (core func $i "pages")))
  (func (export "grow") (result s32) (canon lift (core func $i "grow"))))
"""
)


def test_reading_a_memory_does_not_grow_it() -> None:
    """The accessor copies into its own memory: a full memory that may grow is read as it is, not grown."""
    from wasmtime import Store
    from wasmtime import component as cm

    from hatch_component_init import pre_initialize_with
    from hatch_component_init.runtime import WasmtimeInvoker

    out = Running(snapshot(NEVER_GROWN))
    assert (out.call("pages"), out.call("load", 0), out.call("load", 65532)) == (1, 0xABABABAB, 0xABABABAB)
    assert out.call("grow") == 1
    # Seen from the instance that was read (a caller's runtime keeps it): still one page afterwards.
    kept: list[tuple[Store, cm.Instance]] = []

    def run(instrumented: bytes) -> WasmtimeInvoker:
        store = Store(engine())
        instance = cm.Linker(engine()).instantiate(store, cm.Component(engine(), instrumented))
        instance.get_func(store, "component-init")(store)  # type: ignore[misc]
        kept.append((store, instance))
        return WasmtimeInvoker(instance, store)

    assert pre_initialize_with(NEVER_GROWN, run) == snapshot(NEVER_GROWN, wasi=None)
    ((store, instance),) = kept
    assert instance.get_func(store, "pages")(store) == 1  # type: ignore[misc]


def test_large_memory_is_read_in_chunks() -> None:
    pages = 2200  # 137.5 MiB: over the 128 MiB a single call may move
    big = wat(
        f"""
(component
  (core module $m
    (memory {pages})
    (func (export "init")
      (local $p i32)
      (loop $l
        (i64.store (i32.shl (local.get $p) (i32.const 16)) (i64.extend_i32_u (i32.add (local.get $p) (i32.const 1))))
        (i64.store offset=65000 (i32.shl (local.get $p) (i32.const 16)) (i64.const -1))
        (local.set $p (i32.add (local.get $p) (i32.const 3)))
        (br_if $l (i32.lt_u (local.get $p) (i32.const {pages})))))
    (func (export "load") (param i32) (result i64) (i64.load (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "load") (param "a" u32) (result u64) (canon lift (core func $i "load"))))
"""
    )
    output = snapshot(big)
    out = Running(output)
    for page in (0, 3, 999, 2199):
        assert out.call("load", page * 65536) == page + 1
        assert out.call("load", page * 65536 + 65000) == (1 << 64) - 1
    assert out.call("load", 65536) == 0
    assert len(output) < 2_000_000  # zero pages cost nothing


TWO_MODULES_SHARED_MEMORY = wat(
    """
(component
  (core module $main
    (memory (export "memory") 1)
    (global (export "counter") (mut i32) (i32.const 0))
    (global $own (mut i32) (i32.const 5))
    (data (i32.const 0) "main")
    (func (export "own") (result i32) (global.get $own)))
  (core instance $main (instantiate $main))
  (core module $lib
    (import "env" "memory" (memory 1))
    (import "env" "counter" (global $counter (mut i32)))
    (data (i32.const 8) "lib!")
    (global $state (mut i32) (i32.const 0))
    (func (export "init")
      (global.set $counter (i32.const 77))
      (global.set $state (i32.const 88))
      (i32.store (i32.const 8) (i32.const 0x21212121)))
    (func (export "read") (param i32) (result i32) (i32.load (local.get 0)))
    (func (export "counter") (result i32) (global.get $counter))
    (func (export "state") (result i32) (global.get $state)))
  (core instance $lib (instantiate $lib (with "env" (instance $main))))
  (func (export "component-init") (canon lift (core func $lib "init")))
  (func (export "read") (param "a" u32) (result u32) (canon lift (core func $lib "read")))
  (func (export "counter") (result u32) (canon lift (core func $lib "counter")))
  (func (export "state") (result u32) (canon lift (core func $lib "state"))))
"""
)


def test_memory_and_globals_imported_by_another_module() -> None:
    before = Running(TWO_MODULES_SHARED_MEMORY)
    assert before.call("read", 8) == int.from_bytes(b"lib!", "little")
    out = Running(snapshot(TWO_MODULES_SHARED_MEMORY))
    # The importing module's active segment must not overwrite the snapshot.
    assert out.call("read", 8) == 0x21212121
    assert out.call("read", 0) == int.from_bytes(b"main", "little")
    assert (out.call("counter"), out.call("state")) == (77, 88)


TWICE = wat(
    """
(component
  (core module $m
    (memory (export "memory") 1)
    (global $g (mut i32) (i32.const 0))
    (func (export "set") (param i32) (global.set $g (local.get 0)) (i32.store (i32.const 0) (local.get 0)))
    (func (export "get") (result i32) (i32.add (global.get $g) (i32.load (i32.const 0)))))
  (core instance $a (instantiate $m))
  (core instance $b (instantiate $m))
  (core module $driver
    (import "a" "set" (func $sa (param i32)))
    (import "b" "set" (func $sb (param i32)))
    (func (export "init") (call $sa (i32.const 10)) (call $sb (i32.const 200))))
  (core instance $d (instantiate $driver (with "a" (instance $a)) (with "b" (instance $b))))
  (func (export "component-init") (canon lift (core func $d "init")))
  (func (export "get-a") (result u32) (canon lift (core func $a "get")))
  (func (export "get-b") (result u32) (canon lift (core func $b "get"))))
"""
)


def test_module_instantiated_twice_keeps_separate_states() -> None:
    out = Running(snapshot(TWICE))
    assert (out.call("get-a"), out.call("get-b")) == (20, 400)


NESTED = wat(
    """
(component
  (component $inner
    (core module $m
      (memory 1)
      (global $g (mut i32) (i32.const 0))
      (func (export "init") (global.set $g (i32.const 31)) (i32.store (i32.const 4) (i32.const 32)))
      (func (export "get") (result i32) (i32.add (global.get $g) (i32.load (i32.const 4)))))
    (core instance $i (instantiate $m))
    (func (export "init") (canon lift (core func $i "init")))
    (func (export "get") (result u32) (canon lift (core func $i "get"))))
  (instance $x (instantiate $inner))
  (instance $y (instantiate $inner))
  (alias export $x "init" (func $xinit))
  (alias export $x "get" (func $xget))
  (alias export $y "get" (func $yget))
  (export "component-init" (func $xinit))
  (export "get-x" (func $xget))
  (export "get-y" (func $yget)))
"""
)


def test_nested_components_with_modules() -> None:
    before = Running(NESTED)
    assert before.call("get-x") == 0
    out = Running(snapshot(NESTED))
    assert (out.call("get-x"), out.call("get-y")) == (63, 0)


START_AND_TABLE = wat(
    """
(component
  (core module $m
    (memory 1)
    (global $runs (mut i32) (i32.const 0))
    (table 2 funcref)
    (elem (i32.const 0) $one $two)
    (type $t (func (result i32)))
    (func $one (result i32) (i32.const 1))
    (func $two (result i32) (i32.const 2))
    (func $start (global.set $runs (i32.add (global.get $runs) (i32.const 1))))
    (start $start)
    (func (export "init") (i32.store (i32.const 0) (call_indirect (type $t) (i32.const 1))))
    (func (export "runs") (result i32) (global.get $runs))
    (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0)))
    (func (export "stored") (result i32) (i32.load (i32.const 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "runs") (result u32) (canon lift (core func $i "runs")))
  (func (export "call") (param "i" u32) (result u32) (canon lift (core func $i "call")))
  (func (export "stored") (result u32) (canon lift (core func $i "stored"))))
"""
)


def test_start_function_does_not_run_again_and_tables_work() -> None:
    assert Running(START_AND_TABLE).call("runs") == 1
    out = Running(snapshot(START_AND_TABLE))
    assert out.call("runs") == 1
    assert (out.call("call", 0), out.call("call", 1), out.call("stored")) == (1, 2, 2)


TABLE_MUTATION = wat(
    """
(component
  (core module $m
    (table 2 funcref)
    (func $f)
    (func (export "init") (table.set (i32.const 0) (ref.func $f)))
    (elem declare func $f))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)


def test_table_mutation_is_refused() -> None:
    with pytest.raises(UnsupportedComponentError, match="table.set"):
        pre_initialize(TABLE_MUTATION)


NESTED_TABLE_MUTATION = wat(
    """
(component
  (component $inner
    (core module $m
      (table 2 funcref)
      (global $g (mut i32) (i32.const 0))
      (func $f)
      (func (export "init") (global.set $g (i32.const 1)) (table.set (i32.const 0) (ref.func $f)))
      (elem declare func $f))
    (core instance $i (instantiate $m))
    (func (export "init") (canon lift (core func $i "init"))))
  (instance $x (instantiate $inner))
  (alias export $x "init" (func $init))
  (export "component-init" (func $init)))
"""
)


@pytest.mark.parametrize("code_cache", [True, False])
def test_table_mutation_in_a_nested_component_is_refused(code_cache: bool) -> None:
    with pytest.raises(UnsupportedComponentError, match=r"changes a table at run time \(`table.set`"):
        pre_initialize(NESTED_TABLE_MUTATION, code_cache=code_cache)


IMPORTS = wat(
    """
(component
  (import "host-log" (func $log (param "x" u32)))
  (core func $log (canon lower (func $log)))
  (core module $m
    (import "host" "log" (func $log (param i32)))
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 9)))
    (func (export "init-calls-host") (call $log (i32.const 1)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $h (export "log" (func $log)))
  (core instance $i (instantiate $m (with "host" (instance $h))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "bad-init") (canon lift (core func $i "init-calls-host")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
)


def test_non_wasi_imports_trap_only_if_called() -> None:
    output = snapshot(IMPORTS)
    from wasmtime import component as cm

    from wat_support import engine

    assert "host-log" in cm.Component(engine(), output).type.imports(engine())
    with pytest.raises(InitFailedError, match="host-log"):
        snapshot(IMPORTS, init_func="bad-init")


ARGS = wat(
    """
(component
  (core module $m
    (memory (export "memory") 1)
    (global $g (mut i32) (i32.const 0))
    (global $h (mut i64) (i64.const 0))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "init") (param $flag i32) (param $n i64) (param $ptr i32) (param $len i32) (param $e i32)
      (global.set $g (i32.add (local.get $flag) (i32.add (local.get $len) (i32.mul (local.get $e) (i32.const 100)))))
      (global.set $h (local.get $n)))
    (func (export "g") (result i32) (global.get $g))
    (func (export "h") (result i64) (global.get $h)))
  (core instance $i (instantiate $m))
  (type $color' (enum "red" "green" "blue"))
  (export $color "color" (type $color'))
  (func (export "component-init") (param "flag" bool) (param "n" s64) (param "s" string) (param "c" $color)
    (canon lift (core func $i "init") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func (export "g") (result u32) (canon lift (core func $i "g")))
  (func (export "h") (result s64) (canon lift (core func $i "h"))))
"""
)


def test_init_with_wave_arguments() -> None:
    out = Running(snapshot(ARGS, init_func='component-init(true, -12, "hello", blue)'))
    assert (out.call("g"), out.call("h")) == (1 + 5 + 200, -12)


@pytest.mark.parametrize(
    ("component", "spec", "message"),
    [
        ("ARGS", "component-init", "takes arguments"),
        ("ARGS", "component-init(1, 2, \"x\", blue)", "expected a bool"),
        ("ARGS", "component-init(true, 2, \"x\", purple)", "one of `red`, `green`, `blue`"),
        ("ARGS", "component-init(true, 2)", "takes 4 argument"),
        ("ARGS", "component-init(true, 99999999999999999999, \"x\", red)", "out of range"),
        ("CHAR_LIST_OPTION_ARGS", "component-init(\"x\", [], none)", "argument `c` .* expected a char such as 'x', got `\"x\"`"),
        ("CHAR_LIST_OPTION_ARGS", "component-init('x', 3, none)", "argument `xs` .* expected a list such as \\[1, 2\\], got `3`"),
        ("CHAR_LIST_OPTION_ARGS", "component-init('x', [1, -1], none)", "out of range for u16"),
        ("CHAR_LIST_OPTION_ARGS", "component-init('x', [], 7)", "argument `o` .* expected `none` or `some\\(...\\)`, got `7`"),
        ("CHAR_LIST_OPTION_ARGS", "component-init('x', [], some(-1))", "out of range for u32"),
    ],
)
def test_bad_init_arguments(component: str, spec: str, message: str) -> None:
    from hatch_component_init import InitExportError

    with pytest.raises(InitExportError, match=message):
        snapshot(globals()[component], init_func=spec)


#: init(c: char, xs: list<u16>, o: option<u32>) keeps the char, the sum of the list and the option (0 for none, else 1 + it).
CHAR_LIST_OPTION_ARGS = wat(
    """
(component
  (core module $m
    (memory (export "memory") 1)
    (global $c (mut i32) (i32.const 0))
    (global $sum (mut i32) (i32.const 0))
    (global $o (mut i32) (i32.const -1))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "init") (param $c i32) (param $ptr i32) (param $len i32) (param $some i32) (param $o i32)
      (local $i i32)
      (global.set $c (local.get $c))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (global.set $sum (i32.add (global.get $sum)
          (i32.load16_u (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 1))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (global.set $o (select (i32.add (local.get $o) (i32.const 1)) (i32.const 0) (local.get $some))))
    (func (export "c") (result i32) (global.get $c))
    (func (export "sum") (result i32) (global.get $sum))
    (func (export "o") (result i32) (global.get $o)))
  (core instance $i (instantiate $m))
  (type $list (list u16))
  (type $option (option u32))
  (func (export "component-init") (param "c" char) (param "xs" $list) (param "o" $option)
    (canon lift (core func $i "init") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func (export "c") (result u32) (canon lift (core func $i "c")))
  (func (export "sum") (result u32) (canon lift (core func $i "sum")))
  (func (export "o") (result u32) (canon lift (core func $i "o"))))
"""
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("component-init('x', [1, 2, 65535], some(7))", (ord("x"), 65538, 8)),
        ("component-init('\\u{1F600}', [], none)", (0x1F600, 0, 0)),
        ("component-init('\\n', [40000], some(0))", (ord("\n"), 40000, 1)),
    ],
)
def test_init_with_char_list_and_option_arguments(spec: str, expected: tuple[int, int, int]) -> None:
    out = Running(snapshot(CHAR_LIST_OPTION_ARGS, init_func=spec))
    assert (out.call("c"), out.call("sum"), out.call("o")) == expected


def test_init_arguments_of_other_types_are_refused_by_name() -> None:
    from hatch_component_init import InitExportError

    pair = wat(
        """
(component
  (core module $m (func (export "init") (param i32 i32)))
  (core instance $i (instantiate $m))
  (type $pair (tuple u32 u32))
  (func (export "component-init") (param "p" $pair) (canon lift (core func $i "init"))))
"""
    )
    with pytest.raises(InitExportError, match="argument `p` of `component-init`: parameters of type tuple cannot be given"):
        snapshot(pair, init_func="component-init((1, 2))")
    with pytest.raises(InitExportError, match=r"takes 1 argument\(s\) \(p: tuple\) but 0 were given"):
        snapshot(pair, init_func="component-init()")
    with pytest.raises(InitExportError, match=r"takes arguments \(p: tuple\); give them as a call"):
        snapshot(pair)


def test_trap_in_init_is_reported() -> None:
    trapping = wat(
        """
(component
  (core module $m (func (export "init") unreachable))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )
    with pytest.raises(InitFailedError, match="unreachable"):
        snapshot(trapping)


#: init calls wasi:cli/exit with `ok` (0) or `err` (1), as the guest's `exit(0)` / `exit(1)` do.
EXITING = wat(
    """
(component
  (type $result (result))
  (import "wasi:cli/exit@0.2.0" (instance $exit (export "exit" (func (param "status" $result)))))
  (alias export $exit "exit" (func $exit))
  (core func $exit (canon lower (func $exit)))
  (core module $m
    (import "cli" "exit" (func $exit (param i32)))
    (global $g (mut i32) (i32.const 0))
    (func (export "exit-ok") (global.set $g (i32.const 1)) (call $exit (i32.const 0)))
    (func (export "exit-err") (global.set $g (i32.const 1)) (call $exit (i32.const 1))))
  (core instance $i (instantiate $m (with "cli" (instance (export "exit" (func $exit))))))
  (func (export "exit-ok") (canon lift (core func $i "exit-ok")))
  (func (export "exit-err") (canon lift (core func $i "exit-err"))))
"""
)


@pytest.mark.parametrize(("init", "status"), [("exit-ok", 0), ("exit-err", 1)])
def test_init_that_calls_exit_is_reported(init: str, status: int) -> None:
    # Even exit(0): init did not return, so its state is not one the component can go on from.
    with pytest.raises(InitFailedError, match=f"the init function `{init}` failed: the guest exited with status {status}"):
        snapshot(EXITING, init_func=init)


F32_ARG = wat(
    """
(component
  (core module $m
    (global $c (mut f32) (f32.const 0))
    (func (export "init") (param f32) (global.set $c (local.get 0)))
    (func (export "c") (result f32) (global.get $c))
    (func (export "bits") (result i32) (i32.reinterpret_f32 (global.get $c))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (param "x" f32) (canon lift (core func $i "init")))
  (func (export "c") (result f32) (canon lift (core func $i "c")))
  (func (export "bits") (result u32) (canon lift (core func $i "bits"))))
"""
)


@pytest.mark.parametrize("arg", ["nan", "inf", "-inf", "-0.0"])
def test_f32_nan_and_infinity(arg: str) -> None:
    out = Running(snapshot(F32_ARG, init_func=f"component-init({arg})"))
    value = out.call("c")
    if arg == "nan":
        assert math.isnan(value)
        assert out.call("bits") & 0x7F800000 == 0x7F800000 and out.call("bits") & 0x7FFFFF
    else:
        assert value == float(arg) and math.copysign(1, value) == math.copysign(1, float(arg))


# NaNs with payloads no arithmetic produces (signalling, negative, odd bits), set by init.
NAN_PAYLOADS = wat(
    """
(component
  (core module $m
    (global $f (mut f32) (f32.const 0))
    (global $g (mut f32) (f32.const 0))
    (global $v (mut v128) (v128.const i64x2 0 0))
    (global $w (mut v128) (v128.const i64x2 0 0))
    (func (export "init")
      (global.set $f (f32.const nan:0x200001))
      (global.set $g (f32.const -nan:0x7fffff))
      (global.set $v (v128.const f32x4 nan:0x1 -nan:0x400001 nan:0x12345 1.5))
      (global.set $w (v128.const f64x2 nan:0x8000000000001 -nan:0x4000000000000)))
    (func (export "f") (result i32) (i32.reinterpret_f32 (global.get $f)))
    (func (export "g") (result i32) (i32.reinterpret_f32 (global.get $g)))
    (func (export "v") (param i32) (result i64)
      (if (result i64) (local.get 0)
        (then (i64x2.extract_lane 1 (global.get $v)))
        (else (i64x2.extract_lane 0 (global.get $v)))))
    (func (export "w") (param i32) (result i64)
      (if (result i64) (local.get 0)
        (then (i64x2.extract_lane 1 (global.get $w)))
        (else (i64x2.extract_lane 0 (global.get $w))))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "f") (result u32) (canon lift (core func $i "f")))
  (func (export "g") (result u32) (canon lift (core func $i "g")))
  (func (export "v") (param "hi" bool) (result u64) (canon lift (core func $i "v")))
  (func (export "w") (param "hi" bool) (result u64) (canon lift (core func $i "w"))))
"""
)


def test_f32_and_v128_nan_payloads_are_kept_bit_for_bit() -> None:
    before = Running(NAN_PAYLOADS)
    assert (before.call("f"), before.call("v", False)) == (0, 0)
    out = Running(snapshot(NAN_PAYLOADS))
    assert not out.has("component-init")
    assert out.call("f") == 0x7FA00001
    assert out.call("g") == 0xFFFFFFFF
    lanes = struct.pack("<4I", 0x7F800001, 0xFFC00001, 0x7F812345, 0x3FC00000)
    assert (out.call("v", False), out.call("v", True)) == struct.unpack("<2Q", lanes)
    assert (out.call("w", False), out.call("w", True)) == (0x7FF8000000000001, 0xFFF4000000000000)


MULTI_MEMORY = wat(
    """
(component
  (core module $m
    (memory $a 1)
    (memory $b 1 4)
    (memory $c i64 1)
    (func (export "init")
      (i32.store $a (i32.const 0) (i32.const 11))
      (drop (memory.grow $b (i32.const 1)))
      (i32.store $b (i32.const 65540) (i32.const 22))
      (i32.store $c (i64.const 8) (i32.const 33)))
    (func (export "sum") (result i32)
      (i32.add (i32.load $a (i32.const 0))
        (i32.add (i32.load $b (i32.const 65540)) (i32.load $c (i64.const 8))))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "sum") (result u32) (canon lift (core func $i "sum"))))
"""
)


def test_several_memories_including_memory64() -> None:
    out = Running(snapshot(MULTI_MEMORY))
    assert out.call("sum") == 66  # memory $b had to keep its grown size for this load


SHARED_MEMORY = wat(
    """
(component
  (core module $m
    (memory 1 2 shared)
    (func (export "init") (i32.atomic.store (i32.const 4) (i32.const 4242)))
    (func (export "get") (result i32) (i32.atomic.load (i32.const 4))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
)


def test_shared_memory() -> None:
    assert Running(snapshot(SHARED_MEMORY)).call("get") == 4242


def test_init_in_an_exported_instance_is_removed() -> None:
    comp = wat(
        """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 5)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func $init (canon lift (core func $i "init")))
  (func $get (result u32) (canon lift (core func $i "get")))
  (instance $setup (export "init" (func $init)) (export "get" (func $get)))
  (export "example:demo/setup@1.0.0" (instance $setup)))
"""
    )
    output = snapshot(comp, init_func="example:demo/setup@1.0.0.init")
    out = Running(output)
    iface = out.instance.get_export_index(out.store, "example:demo/setup@1.0.0")
    assert iface is not None
    assert out.instance.get_export_index(out.store, "init", iface) is None
    get = out.instance.get_func(out.store, out.instance.get_export_index(out.store, "get", iface))
    assert get(out.store) == 5
    kept = Running(snapshot(comp, init_func="example:demo/setup@1.0.0.init", keep_init_func=True))
    assert kept.instance.get_export_index(kept.store, "init", kept.instance.get_export_index(kept.store, "example:demo/setup@1.0.0")) is not None


def test_removing_an_export_that_later_exports_reuse() -> None:
    # The init export's own index is used again by a later export: it must be renumbered
    # to the function it re-exported, and later indices shift down by one.
    comp = wat(
        """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 8)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func $init (canon lift (core func $i "init")))
  (export $e "component-init" (func $init))
  (func $get (result u32) (canon lift (core func $i "get")))
  (export "again" (func $e))
  (export "get" (func $get)))
"""
    )
    out = Running(snapshot(comp))
    assert not out.has("component-init")
    assert out.has("again")
    assert out.call("get") == 8


def test_module_both_instantiated_and_exported_is_refused() -> None:
    comp = wat(
        """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 1))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (export "raw-module" (core module $m)))
"""
    )
    with pytest.raises(UnsupportedComponentError, match="also exported or passed"):
        pre_initialize(comp)


SHADOW_STACK = wat(
    """
(component
  (core module $m
    (memory 1)
    (global $sp (export "__stack_pointer") (mut i32) (i32.const 4096))
    (global $low (export "__stack_low") (mut i32) (i32.const 1024))
    (func (export "init")
      ;; a callee's frame below the stack pointer, left behind when it returns
      (global.set $sp (i32.const 2048))
      (i64.store (i32.const 2048) (i64.const -1))
      (global.set $sp (i32.const 4096))
      ;; the bottom of the dead stack, and live data just below it, above the stack pointer and outside the stack
      (i32.store (i32.const 1024) (i32.const 5))
      (i32.store (i32.const 1020) (i32.const 3))
      (i32.store (i32.const 4096) (i32.const 7))
      (i32.store (i32.const 8192) (i32.const 9)))
    (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "load") (param "a" u32) (result u32) (canon lift (core func $i "load"))))
"""
)


def test_dead_shadow_stack_is_zeroed() -> None:
    out = Running(snapshot(SHADOW_STACK))
    # Below the stack pointer, down to `__stack_low`: dead, scrubbed.
    assert (out.call("load", 2048), out.call("load", 1024)) == (0, 0)
    # Below `__stack_low` (not the stack), at the stack pointer and above, and outside: kept.
    assert (out.call("load", 1020), out.call("load", 4096), out.call("load", 8192)) == (3, 7, 9)


#: Init sets a global to 6 that `get` returns, both lifted: the start of the components below.
SETUP_FUNCS = """  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 6)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func $init (canon lift (core func $i "init")))
  (func $get (result u32) (canon lift (core func $i "get")))
"""

#: wit-component exports interfaces as instances of a small shim component that imports the lifted
#: functions and re-exports them.
SHIM_SETUP = f"""
(component
{SETUP_FUNCS}  (component $shim
    (import "import-init" (func $a))
    (import "import-get" (func $b (result u32)))
    (export "init" (func $a))
    (export "get" (func $b)))
  (instance $setup (instantiate $shim (with "import-init" (func $init)) (with "import-get" (func $get))))
  (export "example:demo/setup" (instance $setup)))
"""


def _setup_interface(out: Running, name: str) -> int:
    """The index of interface ``name`` of ``out``, whose init must be gone and whose `get` answers 6."""
    iface = out.instance.get_export_index(out.store, name)
    assert iface is not None
    assert out.instance.get_export_index(out.store, "init", iface) is None
    get = out.instance.get_func(out.store, out.instance.get_export_index(out.store, "get", iface))
    assert get(out.store) == 6
    return iface


def test_init_in_a_shim_component_instance_is_removed() -> None:
    _setup_interface(Running(snapshot(wat(SHIM_SETUP), init_func="example:demo/setup.init")), "example:demo/setup")


def test_init_in_an_instance_exported_twice_is_removed() -> None:
    # The interface's export names the index another export of the same instance made: it is followed to the
    # instance, and init is gone under both names.
    twice = SHIM_SETUP.replace(
        '(export "example:demo/setup" (instance $setup))',
        '(export $inner "setup" (instance $setup))\n  (export "example:demo/setup" (instance $inner))',
    )
    assert twice != SHIM_SETUP
    out = Running(snapshot(wat(twice), init_func="example:demo/setup.init"))
    for name in ("example:demo/setup", "setup"):
        _setup_interface(out, name)


#: Init is a top-level export; an instance of exports bundles `get` under another name. The export of init
#: comes between the two lifts: an export takes a function index, so removing it moves `get` down one.
INIT_EXPORTED_BETWEEN = SETUP_FUNCS.replace("  (func $get", '  (export "component-init" (func $init))\n  (func $get')
BUNDLE_AFTER_INIT = f"""
(component
{INIT_EXPORTED_BETWEEN}  (instance $bundle (export "get" (func $get)))
  (export "api" (instance $bundle)))
"""


def test_an_instance_of_exports_follows_its_functions_to_their_new_indices() -> None:
    """rewrite._rewrite_entry: removing init's export moves `get` down one index; the bundle's item is written
    anew with its name, and the interface still answers from the snapshot."""
    out = Running(snapshot(wat(BUNDLE_AFTER_INIT)))
    assert out.instance.get_export_index(out.store, "component-init") is None
    api = out.instance.get_export_index(out.store, "api")
    assert out.instance.get_func(out.store, out.instance.get_export_index(out.store, "get", api))(out.store) == 6


#: A start function reads the module's own data into a global before init adds one.
START_READS_DATA = """
(component
  (core module $m
    (memory 1)
    (data (i32.const 16) "\\2a")
    (global $g (mut i32) (i32.const 0))
    (func $start (global.set $g (i32.load8_u (i32.const 16))))
    (start $start)
    (func (export "init") (global.set $g (i32.add (global.get $g) (i32.const 1))))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""


def test_a_start_function_sees_its_module_data_during_init() -> None:
    """data_modules.find_movable: a module that runs code when instantiated keeps its data in place for the run."""
    assert Running(snapshot(wat(START_READS_DATA))).call("get") == 43


def test_an_output_whose_init_was_removed_from_a_shim_instance_is_said_to_be_pre_initialized() -> None:
    """api._refuse_already_initialized: the shim component's own exports say that init is gone from the instance."""
    from hatch_component_init.errors import MissingInitExportError

    out = snapshot(wat(SHIM_SETUP), init_func="example:demo/setup.init")
    with pytest.raises(MissingInitExportError, match="the component was already pre-initialized"):
        snapshot(out, init_func="example:demo/setup.init")
