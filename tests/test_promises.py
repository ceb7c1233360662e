"""README promises that no other test file checks: each test fails if its promise breaks.

Refusals are checked end to end (the whole pipeline, with the message), the
guarantees by running the output or by looking at what is on disk.
"""

from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    DESTINATION,
    DEV_MODE_DIRS,
    build_in_process,
    failed_build,
    make_project,
    tree_snapshot,
)

from hatch_component_init import (
    OutputInvalidError,
    UnsupportedComponentError,
    WasiOptions,
    api,
    pre_initialize,
    pre_initialize_file,
)
from hatch_component_init.compile_cache import CompiledCache
from hatch_component_init.errors import ComponentInitError
from hatch_component_init.wasm.component import parse_component
from test_cli import DIR_NAMES_PROBE, ENV_PROBE, listing
from test_engine_shapes import NESTED, TABLE_MUTATION, TWICE
from wat_support import Running, snapshot, wat

# ---------------------------------------------------------------- refused, with a clear message


def _refusal(component: bytes, **kwargs: object) -> str:
    with pytest.raises(UnsupportedComponentError) as exc:
        pre_initialize(component, **kwargs)  # type: ignore[arg-type]
    return str(exc.value)


@pytest.mark.parametrize("reftype", ["funcref", "externref"])
def test_mutable_reference_typed_global_is_refused(reftype: str) -> None:
    null = "func" if reftype == "funcref" else "extern"
    comp = wat(
        f"""
(component
  (core module $plain (global (mut i32) (i32.const 0)))
  (core module $m
    (global $k i32 (i32.const 0))
    (global $r (mut {reftype}) (ref.null {null}))
    (func (export "init")))
  (core instance (instantiate $plain))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )
    message = _refusal(comp)
    assert message.startswith("core module #1 ")
    assert "mutable reference-typed global (global 1)" in message and "cannot be snapshotted" in message


def test_immutable_reference_typed_global_is_fine() -> None:
    comp = wat(
        """
(component
  (core module $m
    (global $r funcref (ref.null func))
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 3)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
    )
    assert Running(snapshot(comp)).call("get") == 3


def test_custom_page_size_is_refused() -> None:
    comp = wat(
        """
(component
  (core module $m (memory 1 (pagesize 1)) (func (export "init")))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )
    assert "custom page size" in _refusal(comp)


MODULE_FROM_OUTSIDE = {
    "imported": """
(component
  (import "m" (core module $m (export "init" (func))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
""",
    "aliased from an outer component": """
(component $root
  (core module $m (global $g (mut i32) (i32.const 0)) (func (export "init") (global.set $g (i32.const 1))))
  (component $inner
    (alias outer $root $m (core module $outer))
    (core instance $i (instantiate $outer))
    (func (export "init") (canon lift (core func $i "init"))))
  (instance $x (instantiate $inner))
  (alias export $x "init" (func $f))
  (export "component-init" (func $f)))
""",
}


@pytest.mark.parametrize("how", sorted(MODULE_FROM_OUTSIDE))
def test_module_not_defined_where_it_is_instantiated_is_refused(how: str) -> None:
    message = _refusal(wat(MODULE_FROM_OUTSIDE[how]))
    assert f"instantiates a core module that is {how} rather than defined in the same component" in message


# A module instantiated twice, with different states after init, and also handed to a nested component.
MODULE_PASSED_ON = wat(
    """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "set") (param i32) (global.set $g (local.get 0)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $a (instantiate $m))
  (core instance $b (instantiate $m))
  (core module $driver
    (import "a" "set" (func $sa (param i32)))
    (import "b" "set" (func $sb (param i32)))
    (func (export "init") (call $sa (i32.const 1)) (call $sb (i32.const 2))))
  (core instance $d (instantiate $driver (with "a" (instance $a)) (with "b" (instance $b))))
  (component $user
    (import "m" (core module (export "get" (func (result i32))))))
  (instance (instantiate $user (with "m" (core module $m))))
  (func (export "component-init") (canon lift (core func $d "init"))))
"""
)

NESTED_PASSED_ON = wat(
    """
(component
  (component $inner
    (core module $m
      (global $g (mut i32) (i32.const 0))
      (func (export "init") (global.set $g (i32.const 31))))
    (core instance $i (instantiate $m))
    (func (export "init") (canon lift (core func $i "init"))))
  (instance $x (instantiate $inner))
  (instance $y (instantiate $inner))
  (component $user (import "c" (component (export "init" (func)))))
  (instance (instantiate $user (with "c" (component $inner))))
  (alias export $x "init" (func $xinit))
  (export "component-init" (func $xinit)))
"""
)


@pytest.mark.parametrize(
    ("component", "sort"),
    [(MODULE_PASSED_ON, "core module"), (NESTED_PASSED_ON, "component")],
    ids=["module", "nested-component"],
)
def test_several_states_that_also_leave_the_component_are_refused(component: bytes, sort: str) -> None:
    message = _refusal(component)
    assert message.startswith(f"a {sort} that is instantiated during init is also exported or passed to another component")


def test_a_module_without_state_may_also_be_exported() -> None:
    comp = wat(
        """
(component
  (core module $m (func (export "init")) (func (export "seven") (result i32) (i32.const 7)))
  (core instance $i (instantiate $m))
  (core module $state (global $g (mut i32) (i32.const 0)) (func (export "init") (global.set $g (i32.const 1))))
  (core instance $s (instantiate $state))
  (component $user (import "m" (core module (export "seven" (func (result i32))))))
  (instance (instantiate $user (with "m" (core module $m))))
  (func (export "component-init") (canon lift (core func $s "init")))
  (func (export "seven") (result u32) (canon lift (core func $i "seven"))))
"""
    )
    assert Running(snapshot(comp)).call("seven") == 7


# wit-component's shape, with the shim instantiated twice: removing init from one instance would
# change the other, so the shim cannot be edited.
SHARED_SHIM = wat(
    """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 6)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func $init (canon lift (core func $i "init")))
  (func $get (result u32) (canon lift (core func $i "get")))
  (component $shim
    (import "import-init" (func $a))
    (import "import-get" (func $b (result u32)))
    (export "init" (func $a))
    (export "get" (func $b)))
  (instance $setup (instantiate $shim (with "import-init" (func $init)) (with "import-get" (func $get))))
  (instance $again (instantiate $shim (with "import-init" (func $init)) (with "import-get" (func $get))))
  (export "example:demo/setup" (instance $setup))
  (export "example:demo/again" (instance $again)))
"""
)


def test_init_in_an_instance_we_cannot_edit_is_refused_unless_kept() -> None:
    message = _refusal(SHARED_SHIM, init_func="example:demo/setup.init")
    assert "the init export `example:demo/setup.init` cannot be removed" in message
    assert "--keep-init-func" in message and "keep-init-func = true" in message
    out = Running(snapshot(SHARED_SHIM, init_func="example:demo/setup.init", keep_init_func=True))
    iface = out.instance.get_export_index(out.store, "example:demo/again")
    get = out.instance.get_func(out.store, out.instance.get_export_index(out.store, "get", iface))
    assert get(out.store) == 6


TABLE_OPS = {
    "table.set": "(table.set $t (i32.const 0) (ref.null func))",
    "table.grow": "(drop (table.grow $t (ref.null func) (i32.const 1)))",
    "table.fill": "(table.fill $t (i32.const 0) (ref.null func) (i32.const 1))",
    "table.copy": "(table.copy $t $t2 (i32.const 0) (i32.const 1) (i32.const 1))",
    "table.init": "(table.init $t $e (i32.const 0) (i32.const 0) (i32.const 1))",
    "elem.drop": "(elem.drop $e)",
}


@pytest.mark.parametrize("op", list(TABLE_OPS))
def test_each_table_mutation_is_refused_naming_module_and_function(op: str) -> None:
    # The mutating function is never called: the refusal comes from reading the code.
    comp = wat(
        f"""
(component
  (core module $first (memory 1) (func (export "init")))
  (core module $second
    (import "host" "log" (func $log))
    (table $t 2 funcref)
    (table $t2 2 funcref)
    (elem $e func $quiet)
    (func $quiet (drop (table.get $t (i32.const 0))))
    (func $mutates (export "mutates") {TABLE_OPS[op]}))
  (core instance $f (instantiate $first))
  (core module $host (func (export "log")))
  (core instance $h (instantiate $host))
  (core instance $s (instantiate $second (with "host" (instance $h))))
  (func (export "component-init") (canon lift (core func $f "init"))))
"""
    )
    message = _refusal(comp)
    # Modules are numbered in order of definition; function 2 counts the imported one.
    assert message.startswith("core module #1 (at offset ")
    assert f"changes a table at run time (`{op}` in function 2)" in message


# ---------------------------------------------------------------- supported shapes


def _module_count(data: bytes) -> int:
    return len(parse_component(memoryview(data)).modules)


THRICE = wat(
    """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "set") (param i32) (global.set $g (local.get 0)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $a (instantiate $m))
  (core instance $b (instantiate $m))
  (core instance $c (instantiate $m))
  (core module $driver
    (import "a" "set" (func $sa (param i32)))
    (import "b" "set" (func $sb (param i32)))
    (import "c" "set" (func $sc (param i32)))
    (func (export "init") (call $sa (i32.const 5)) (call $sb (i32.const 9)) (call $sc (i32.const 5))))
  (core instance $d (instantiate $driver (with "a" (instance $a)) (with "b" (instance $b)) (with "c" (instance $c))))
  (func (export "component-init") (canon lift (core func $d "init")))
  (func (export "get-a") (result u32) (canon lift (core func $a "get")))
  (func (export "get-b") (result u32) (canon lift (core func $b "get")))
  (func (export "get-c") (result u32) (canon lift (core func $c "get"))))
"""
)


def test_one_module_copy_per_distinct_state() -> None:
    # $m and $driver; $m ends in two distinct states (a = c = 5, b = 9): one extra copy.
    assert _module_count(THRICE) == 2
    output = snapshot(THRICE)
    assert _module_count(output) == 3
    out = Running(output)
    assert (out.call("get-a"), out.call("get-b"), out.call("get-c")) == (5, 9, 5)
    # Two instances, two states: two copies of $m.
    assert (_module_count(TWICE), _module_count(snapshot(TWICE))) == (2, 3)


def test_one_nested_component_copy_per_distinct_state() -> None:
    def components(data: bytes) -> int:
        return len(parse_component(memoryview(data)).components)

    assert components(NESTED) == 1
    assert components(snapshot(NESTED)) == 2  # $x ran init, $y did not
    same_state = wat(
        """
(component
  (component $inner
    (core module $m (global $g (mut i32) (i32.const 4)) (func (export "get") (result i32) (global.get $g)))
    (core instance $i (instantiate $m))
    (func (export "get") (result u32) (canon lift (core func $i "get"))))
  (instance $x (instantiate $inner))
  (instance $y (instantiate $inner))
  (core module $n (global $g (mut i32) (i32.const 0)) (func (export "init") (global.set $g (i32.const 1))))
  (core instance $j (instantiate $n))
  (func (export "component-init") (canon lift (core func $j "init")))
  (alias export $y "get" (func $yget))
  (export "get-y" (func $yget)))
"""
    )
    output = snapshot(same_state)
    assert components(output) == 1
    assert Running(output).call("get-y") == 4


def test_core_export_named_like_the_init_export_is_left_alone() -> None:
    comp = wat(
        """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "component-init") (global.set $g (i32.const 12)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (core module $user
    (import "m" "component-init" (func $init))
    (func (export "again") (call $init)))
  (core instance $u (instantiate $user (with "m" (instance $i))))
  (func (export "component-init") (canon lift (core func $i "component-init")))
  (func (export "again") (canon lift (core func $u "again")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
    )
    output = snapshot(comp)
    parsed = parse_component(memoryview(output))
    assert not [e for e in parsed.exports if e.name == "component-init"]
    assert "component-init" in parsed.modules[min(parsed.modules)].exports
    out = Running(output)
    assert out.call("get") == 12
    out.call("again")  # another module still reaches the core export
    assert out.call("get") == 12


# ---------------------------------------------------------------- WASI during init


def test_guest_gets_no_arguments_and_an_empty_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCI_TEST_HOST_ONLY", "never shown to the guest")
    out = Running(snapshot(ENV_PROBE))
    assert out.call("env") == []
    assert out.call("args") == []
    given = Running(snapshot(ENV_PROBE, wasi=WasiOptions(env=(("MODE", "fast"),))))
    assert given.call("env") == [("MODE", "fast")]  # the probe does see what is given


def test_no_directories_are_granted_by_default(tmp_path: Path) -> None:
    assert Running(snapshot(DIR_NAMES_PROBE)).call("names") == ""
    granted = snapshot(DIR_NAMES_PROBE, wasi=WasiOptions(dirs=((tmp_path, "/data"),)))
    assert Running(granted).call("names") == "/data;"


RANDOM_PROBE = wat(
    """
(component
  (type $random (instance
    (type $bytes (list u8))
    (export "get-random-bytes" (func (param "len" u64) (result $bytes)))
    (export "get-random-u64" (func (result u64)))))
  (type $insecure-seed (instance
    (type $pair (tuple u64 u64))
    (export "insecure-seed" (func (result $pair)))))
  (import "wasi:random/random@0.2.0" (instance $r (type $random)))
  (import "wasi:random/insecure-seed@0.2.0" (instance $s (type $insecure-seed)))
  (core module $libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $next))
      (global.set $next (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (alias export $r "get-random-bytes" (func $bytes))
  (alias export $r "get-random-u64" (func $u64))
  (alias export $s "insecure-seed" (func $seed))
  (core func $bytes (canon lower (func $bytes) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $u64 (canon lower (func $u64)))
  (core func $seed (canon lower (func $seed) (memory (core memory $libc "memory"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "r" "bytes" (func $bytes (param i64 i32)))
    (import "r" "u64" (func $u64 (result i64)))
    (import "r" "seed" (func $seed (param i32)))
    (global $u (mut i64) (i64.const 0))
    ;; 40 bytes (list at 16), then a u64, then the insecure seed (at 32)
    (func (export "init")
      (call $bytes (i64.const 40) (i32.const 16))
      (global.set $u (call $u64))
      (call $seed (i32.const 32)))
    (func (export "bytes") (result i32) (i32.const 16))
    (func (export "u64") (result i64) (global.get $u))
    (func (export "seed") (result i32) (i32.const 32)))
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "r" (instance (export "bytes" (func $bytes)) (export "u64" (func $u64)) (export "seed" (func $seed))))))
  (type $list (list u8))
  (type $pair (tuple u64 u64))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "bytes") (result $list) (canon lift (core func $i "bytes") (memory (core memory $libc "memory"))))
  (func (export "u64") (result u64) (canon lift (core func $i "u64")))
  (func (export "seed") (result $pair) (canon lift (core func $i "seed") (memory (core memory $libc "memory")))))
"""
)


SNAPSHOT_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from hatch_component_init import WasiOptions, pre_initialize
Path(sys.argv[2]).write_bytes(pre_initialize(Path(sys.argv[1]).read_bytes(), wasi=WasiOptions()))
"""


def test_wasi_random_is_a_fixed_seed_stream_during_init(tmp_path: Path) -> None:
    import subprocess
    import sys

    first, second = snapshot(RANDOM_PROBE), snapshot(RANDOM_PROBE)
    assert first == second
    # The same in another process, with another hash seed: the stream depends on nothing of the host's.
    (tmp_path / "in.wasm").write_bytes(RANDOM_PROBE)
    subprocess.run(
        [sys.executable, "-c", SNAPSHOT_IN_A_FRESH_PROCESS, str(tmp_path / "in.wasm"), str(tmp_path / "out.wasm")],
        env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True,
    )  # fmt: skip
    assert (tmp_path / "out.wasm").read_bytes() == first
    # A stream, not a constant: every draw (40 bytes, a u64, the insecure seed's pair) is its own.
    out = Running(first)
    drawn = bytes(out.call("bytes"))
    u64 = out.call("u64")
    seed = tuple(out.call("seed"))
    assert len(drawn) == 40 and len(set(drawn)) > 20
    words = set(struct.unpack("<5Q", drawn)) | {u64, *seed}
    assert len(words) == 8 and 0 not in words


# ---------------------------------------------------------------- the segment cap

#: The cap README promises ("more than 50,000 segments").
MAX_SEGMENTS = 50_000


def test_memory_with_more_runs_than_the_segment_cap_is_snapshotted_exactly() -> None:
    # 45,000 pairs of one-byte runs, 11 then 20 zero bytes apart: 90,000 runs with gaps of 10+ bytes,
    # more than the cap allows as separate segments.
    pairs = 45_000
    assert 2 * pairs > MAX_SEGMENTS
    comp = wat(
        f"""
(component
  (core module $m
    (memory 24)
    (func (export "init")
      (local $i i32) (local $p i32)
      (loop $l
        (local.set $p (i32.mul (local.get $i) (i32.const 33)))
        (i32.store8 (local.get $p) (i32.or (local.get $i) (i32.const 1)))
        (i32.store8 offset=12 (local.get $p) (i32.const 0x80))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {pairs})))))
    (func (export "checksum") (result i64)
      (local $p i32) (local $h i64)
      (loop $l
        (local.set $h (i64.mul (i64.xor (local.get $h) (i64.load (local.get $p))) (i64.const 0x100000001b3)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br_if $l (i32.lt_u (local.get $p) (i32.mul (memory.size) (i32.const 65536)))))
      (local.get $h))
    (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "checksum") (result u64) (canon lift (core func $i "checksum")))
  (func (export "load8") (param "at" u32) (result u32) (canon lift (core func $i "load8"))))
"""
    )
    reference = Running(comp)
    reference.call("component-init")
    output = snapshot(comp)
    (module,) = parse_component(memoryview(output)).modules.values()
    active = [raw for passive, raw in module.data_segments if not passive]
    assert 0 < len(active) <= MAX_SEGMENTS
    out = Running(output)
    assert not out.has("component-init")
    assert out.call("checksum") == reference.call("checksum")
    last = 33 * (pairs - 1)
    assert [out.call("load8", a) for a in (0, 12, 13, last, last + 12, last + 13)] == [1, 0x80, 0, ((pairs - 1) | 1) & 0xFF, 0x80, 0]


# ---------------------------------------------------------------- bounded


def test_default_time_limit_is_300_seconds_everywhere(tmp_path: Path) -> None:
    import inspect

    from hatch_component_init.cli import _parser
    from hatch_component_init.hatch.component_init import ComponentInitBuildHook

    assert inspect.signature(pre_initialize).parameters["timeout"].default == 300
    assert _parser().parse_args(["in.wasm", "-o", "out.wasm"]).timeout == 300
    hook = ComponentInitBuildHook(str(tmp_path), {"component": "c.wasm"}, None, None, str(tmp_path), "wheel")
    assert hook.init_options.timeout == 300


# ---------------------------------------------------------------- resource use


def _filled(pages: int, written_pages: int) -> bytes:
    """A memory of ``pages`` whose first ``written_pages`` init fills with non-zero words."""
    return wat(
        f"""
(component
  (core module $m
    (memory {pages})
    (func (export "init")
      (local $p i32)
      (loop $l
        (i64.store (local.get $p) (i64.or (i64.extend_i32_u (local.get $p)) (i64.const 0x0101010100000000)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br_if $l (i32.lt_u (local.get $p) (i32.const {written_pages * 65536}))))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )


def _python_peak(component: bytes) -> int:
    """Peak of Python's own allocations while pre-initializing (the guest's memory lives in Wasmtime)."""
    snapshot(component)  # compile once, so the measured run only reads, encodes and writes
    tracemalloc.start()
    try:
        snapshot(component)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zero_pages_never_reach_python() -> None:
    # 125 MiB of memory, one page written: reading the zero pages would cost 125 MiB here.
    assert _python_peak(_filled(2000, 1)) < 2 << 20


@pytest.mark.parametrize("written_mib", [8, 16])
def test_python_memory_is_proportional_to_the_snapshot(written_mib: int) -> None:
    # README: about 3 x the non-zero bytes of the snapshot (reads, segments, the output).
    written = written_mib << 20
    assert _python_peak(_filled(1000, written >> 16)) <= 3.5 * written


# ---------------------------------------------------------------- pre_initialize_file


def test_pre_initialize_file_writes_the_output(tmp_path: Path) -> None:
    src = tmp_path / "in.wasm"
    src.write_bytes(TWICE)
    out = tmp_path / "out.wasm"
    returned = pre_initialize_file(src, out)
    assert out.read_bytes() == returned == pre_initialize(TWICE)
    assert src.read_bytes() == TWICE
    assert listing(tmp_path) == ["in.wasm", "out.wasm"]
    assert (Running(returned).call("get-a"), Running(returned).call("get-b")) == (20, 400)


def test_pre_initialize_file_replaces_its_input_by_a_rename(tmp_path: Path) -> None:
    src = tmp_path / "in.wasm"
    src.write_bytes(TWICE)
    os.chmod(src, 0o604)
    inode = src.stat().st_ino
    pre_initialize_file(src, src)
    assert src.stat().st_ino != inode  # a new file renamed over the old, not rewritten in place
    assert src.stat().st_mode & 0o777 == 0o604
    assert Running(src.read_bytes()).call("get-b") == 400
    assert listing(tmp_path) == ["in.wasm"]


def test_pre_initialize_file_failure_leaves_the_target_alone(tmp_path: Path) -> None:
    src = tmp_path / "in.wasm"
    src.write_bytes(TABLE_MUTATION)
    out = tmp_path / "out.wasm"
    out.write_bytes(b"previous")
    with pytest.raises(UnsupportedComponentError):
        pre_initialize_file(src, out)
    with pytest.raises(UnsupportedComponentError):
        pre_initialize_file(src, src)
    assert (out.read_bytes(), src.read_bytes()) == (b"previous", TABLE_MUTATION)
    assert listing(tmp_path) == ["in.wasm", "out.wasm"]


def test_pre_initialize_file_interrupted_while_writing_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.wasm"
    src.write_bytes(TWICE)

    def interrupted(a: object, b: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)  # the output is complete; the rename is interrupted
    with pytest.raises(KeyboardInterrupt):
        pre_initialize_file(src, src)
    assert src.read_bytes() == TWICE
    assert listing(tmp_path) == ["in.wasm"]


def test_hook_interrupted_while_writing_into_the_tree_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot_cache_dir: Path
) -> None:
    # An editable build writes the snapshot into the source tree: the one write the hook makes in place.
    project = make_project(tmp_path / "project", COMPONENT_INIT_HOOK, raw_component=TWICE, wheel_options=DEV_MODE_DIRS)
    in_tree = project / DESTINATION
    in_tree.write_bytes(b"the previous snapshot")
    real_replace = os.replace

    def interrupted(src: object, dst: object) -> None:
        if Path(dst).resolve() == in_tree.resolve():  # type: ignore[arg-type]
            raise KeyboardInterrupt
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_in_process(project, version="editable")
    assert in_tree.read_bytes() == b"the previous snapshot"
    assert sorted(p.name for p in in_tree.parent.iterdir() if p.name != "__pycache__") == ["__init__.py", "greeter.wasm"]
    monkeypatch.setattr(os, "replace", real_replace)
    build_in_process(project, version="editable")
    assert Running(in_tree.read_bytes()).call("get-b") == 400


# ---------------------------------------------------------------- OutputInvalidError writes nothing

VICTIM = wat(
    """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 2)))
    (func (export "marker") (result i32) (i32.const 0x1234567)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "marker") (result u32) (canon lift (core func $i "marker"))))
"""
)
#: `i32.const 0x1234567; end`, the body of `marker`.
_MARKER = b"\x41\xe7\x8a\x8d\x09\x0b"


@pytest.fixture
def faulty_rewrite(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own rewrite, made to emit a module Wasmtime rejects (`marker` returns an i64 for an i32)."""
    real = api.rewrite_component

    def faulty(*args: object, **kwargs: object) -> bytes:
        good = real(*args, **kwargs)  # type: ignore[arg-type]
        assert good.count(_MARKER) == 1
        return good.replace(_MARKER, b"\x42" + _MARKER[1:])

    monkeypatch.setattr(api, "rewrite_component", faulty)


def test_output_invalid_through_the_api_writes_nothing(tmp_path: Path, faulty_rewrite: None) -> None:
    src = tmp_path / "in.wasm"
    src.write_bytes(VICTIM)
    out = tmp_path / "out.wasm"
    for target in (out, src):
        with pytest.raises(OutputInvalidError, match="this is a bug in hatch-component-init"):
            pre_initialize_file(src, target)
    assert src.read_bytes() == VICTIM
    assert listing(tmp_path) == ["in.wasm"]


def test_output_invalid_through_the_cli_writes_nothing(
    tmp_path: Path, faulty_rewrite: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from hatch_component_init.cli import main

    src = tmp_path / "in.wasm"
    src.write_bytes(VICTIM)
    for target in (tmp_path / "out.wasm", src):
        assert main([str(src), "-o", str(target), "-q"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("component-init: error: ") and "this is a bug in hatch-component-init" in err
        assert "Traceback" not in err
    assert src.read_bytes() == VICTIM
    assert listing(tmp_path) == ["in.wasm"]


def test_output_invalid_through_the_hook_writes_nothing(
    tmp_path: Path, faulty_rewrite: None, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "project", COMPONENT_INIT_HOOK, raw_component=VICTIM)
    before = tree_snapshot(project)
    failure = failed_build(project, capsys)
    assert isinstance(failure.error, ComponentInitError)
    assert "this is a bug in hatch-component-init" in failure.output
    after = {name: data for name, data in tree_snapshot(project).items() if not name.startswith("dist/")}
    assert after == before
    assert not list(project.glob("dist/*.whl"))
    # Nothing but the compiled instrumented code, which is the input's and right whatever the rewrite does.
    written = [p for p in snapshot_cache_dir.rglob("*") if p.is_file()] if snapshot_cache_dir.exists() else []
    assert [p.relative_to(snapshot_cache_dir).parts[0] for p in written] in ([], [CompiledCache.KIND])
