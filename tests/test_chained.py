"""Chained pre-initialization: the output, pre-initialized again with the init export kept, many times over."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from hatch_component_init import UnsupportedComponentError
from hatch_component_init import snapshot as encoding
from hatch_component_init.wasm.component import parse_component
from hatch_component_init.wasm.core_module import CoreModule
from hatch_component_init.wasm.reader import Reader
from wat_support import Running, snapshot, wat

EMPTY_PASSIVE = b"\x01\x00"


def only_module(component: bytes) -> CoreModule:
    (module,) = parse_component(memoryview(component)).modules.values()
    return module


def data_count(m: CoreModule) -> int | None:
    s = m.section(12)
    return None if s is None else Reader(m.raw, s.payload_start, s.end).u32()


def read(run: Running, at: int, n: int) -> bytes:
    return bytes(run.call("byte", at + i) for i in range(n))


# ---------------------------------------------------------------- a chain of passes, each adding state

RUNS = 12_500  # non-zero bytes each pass writes, 10 zero bytes apart: one segment each
AREA = 3 * 65536  # pass n writes at 64 KiB + (n - 1) * AREA; each pass grows memory by 3 pages

CHAIN = wat(
    f"""
(component
  (core module $m
    (memory 1)
    (global $passes (mut i32) (i32.const 0))
    (func $base (param $n i32) (result i32)
      (i32.add (i32.const 65536) (i32.mul (i32.sub (local.get $n) (i32.const 1)) (i32.const {AREA}))))
    (func $pattern (param $n i32) (param $i i32) (result i32)
      (i32.add (i32.and (i32.add (local.get $n) (local.get $i)) (i32.const 127)) (i32.const 1)))
    (func (export "init")
      (local $n i32) (local $i i32) (local $p i32)
      (local.set $n (i32.add (global.get $passes) (i32.const 1)))
      (global.set $passes (local.get $n))
      (drop (memory.grow (i32.const 3)))
      (local.set $p (call $base (local.get $n)))
      (loop $write
        (i32.store8 (i32.add (local.get $p) (i32.mul (local.get $i) (i32.const 11)))
                    (call $pattern (local.get $n) (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $write (i32.lt_u (local.get $i) (i32.const {RUNS})))))
    (func (export "passes") (result i32) (global.get $passes))
    ;; 1 if the area of pass n holds exactly what pass n wrote (zeros between the bytes), else 0.
    (func (export "area-ok") (param $n i32) (result i32)
      (local $p i32) (local $k i32) (local $want i32)
      (local.set $p (call $base (local.get $n)))
      (if (i32.gt_u (i32.add (local.get $p) (i32.const {RUNS * 11}))
                    (i32.mul (memory.size) (i32.const 65536)))
        (then (return (i32.const 0))))
      (loop $check
        (local.set $want
          (if (result i32) (i32.rem_u (local.get $k) (i32.const 11))
            (then (i32.const 0))
            (else (call $pattern (local.get $n) (i32.div_u (local.get $k) (i32.const 11))))))
        (if (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $k))) (local.get $want))
          (then (return (i32.const 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $check (i32.lt_u (local.get $k) (i32.const {RUNS * 11}))))
      (i32.const 1)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "passes") (result u32) (canon lift (core func $i "passes")))
  (func (export "area-ok") (param "n" u32) (result bool) (canon lift (core func $i "area-ok"))))
"""
)


def assert_chain_state(component: bytes, passes: int) -> None:
    run = Running(component)
    assert run.call("passes") == passes
    assert all(run.call("area-ok", n) for n in range(1, passes + 1))
    assert not run.call("area-ok", passes + 1)
    # The kept init export still works on top of the snapshot.
    run.call("component-init")
    assert run.call("passes") == passes + 1
    assert run.call("area-ok", passes + 1)


def test_chained_passes_keep_all_state_and_a_bounded_segment_count() -> None:
    current = CHAIN
    old_behaviour_total = len(only_module(CHAIN).data_segments)
    for n in range(1, 8):
        current = snapshot(current, keep_init_func=True)
        assert_chain_state(current, n)
        segments = only_module(current).data_segments
        assert all(not passive for passive, _ in segments)  # nothing superseded is carried along
        # Exactly what the snapshot needs: one segment per written byte while that fits under the
        # cap, then the 10-byte gaps are merged and each area becomes one segment.
        assert len(segments) == (n * RUNS if n * RUNS <= encoding.MAX_SEGMENTS else n)
        # Keeping every old segment as before would have carried them all, past the engine limit by pass 4.
        old_behaviour_total += len(segments)
        assert (old_behaviour_total > encoding.ENGINE_LIMIT) == (n >= 4)


# ---------------------------------------------------------------- passive segments that code uses

DATA_USE = wat(
    """
(component
  (core module $m
    (memory 1)
    (global $passes (mut i32) (i32.const 0))
    (data $a (i32.const 0) "active-a")
    (data $one "passive-one")
    (data $unused "never named")
    (data $two "passive-two")
    (data $tail "tail, never named")
    (data (i32.const 100) "active-b")
    (func (export "init")
      (global.set $passes (i32.add (global.get $passes) (i32.const 1)))
      (memory.init $one (i32.add (i32.const 1000) (i32.mul (global.get $passes) (i32.const 16)))
                        (i32.const 0) (i32.const 11))
      (i32.store8 (i32.add (i32.const 2000) (global.get $passes)) (global.get $passes)))
    (func (export "passes") (result i32) (global.get $passes))
    (func (export "load-one") (param $dst i32) (memory.init $one (local.get $dst) (i32.const 0) (i32.const 11)))
    (func (export "load-two") (param $dst i32) (memory.init $two (local.get $dst) (i32.const 0) (i32.const 11)))
    (func (export "drop-two") (data.drop $two))
    (func (export "init-a") (param $len i32) (memory.init $a (i32.const 0) (i32.const 0) (local.get $len)))
    (func (export "byte") (param $at i32) (result i32) (i32.load8_u (local.get $at))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "passes") (result u32) (canon lift (core func $i "passes")))
  (func (export "load-one") (param "dst" u32) (canon lift (core func $i "load-one")))
  (func (export "load-two") (param "dst" u32) (canon lift (core func $i "load-two")))
  (func (export "drop-two") (canon lift (core func $i "drop-two")))
  (func (export "init-a") (param "len" u32) (canon lift (core func $i "init-a")))
  (func (export "byte") (param "at" u32) (result u8) (canon lift (core func $i "byte"))))
"""
)


def assert_segments_behave(component: bytes) -> None:
    run = Running(component)
    run.call("load-one", 3000)
    run.call("load-two", 3100)
    assert read(run, 3000, 11) == b"passive-one"
    assert read(run, 3100, 11) == b"passive-two"
    run.call("init-a", 0)  # an applied active segment is empty from then on ...
    with pytest.raises(wasmtime.WasmtimeError, match="out of bounds memory access"):
        run.call("init-a", 1)  # ... so copying one byte of it traps
    run = Running(component)
    run.call("drop-two")
    with pytest.raises(wasmtime.WasmtimeError, match="out of bounds memory access"):
        run.call("load-two", 3200)


def test_passive_segments_used_by_code_survive_a_chain() -> None:
    assert_segments_behave(DATA_USE)  # the input behaves the same way
    original = only_module(DATA_USE).data_segments
    current = DATA_USE
    sizes = []
    for n in range(1, 6):
        current = snapshot(current, keep_init_func=True)
        run = Running(current)
        assert run.call("passes") == n
        assert read(run, 0, 8) == b"active-a" and read(run, 100, 8) == b"active-b"
        for j in range(1, n + 1):
            assert read(run, 1000 + 16 * j, 11) == b"passive-one"
            assert run.call("byte", 2000 + j) == j
        assert_segments_behave(current)

        m = only_module(current)
        segments = [raw for _, raw in m.data_segments]
        # Indices 0-3 keep their meaning (the highest one code names is 3): the named passive ones
        # byte for byte, the others empty; `$tail` and the second active segment are gone.
        assert segments[:4] == [EMPTY_PASSIVE, original[1][1], EMPTY_PASSIVE, original[3][1]]
        assert all(not passive for passive, _ in m.data_segments[4:])
        assert data_count(m) == len(segments)
        sizes.append(len(segments))
    assert len(set(sizes)) == 1, sizes  # state grows each pass, the segment count does not


SHARED_MEMORY = wat(
    """
(component
  (core module $owner
    (memory (export "mem") 1)
    (global $passes (mut i32) (i32.const 0))
    (func (export "init") (global.set $passes (i32.add (global.get $passes) (i32.const 1)))
      (i32.store8 (i32.add (i32.const 200) (global.get $passes)) (i32.const 9)))
    (func (export "passes") (result i32) (global.get $passes))
    (func (export "byte") (param $at i32) (result i32) (i32.load8_u (local.get $at))))
  (core module $user
    (import "owner" "mem" (memory 1))
    (data (i32.const 50) "from-user")
    (data "spare, never named")
    (func (export "nothing")))
  (core instance $o (instantiate $owner))
  (core instance $u (instantiate $user (with "owner" (instance $o))))
  (func (export "component-init") (canon lift (core func $o "init")))
  (func (export "passes") (result u32) (canon lift (core func $o "passes")))
  (func (export "byte") (param "at" u32) (result u8) (canon lift (core func $o "byte"))))
"""
)


def test_a_module_without_state_keeps_its_passive_segments() -> None:
    component = SHARED_MEMORY
    _, user = parse_component(memoryview(component)).modules.values()
    spare = user.data_segments[1][1]
    users = []
    for n in range(1, 4):
        component = snapshot(component, keep_init_func=True)
        run = Running(component)
        assert run.call("passes") == n
        assert read(run, 50, 9) == b"from-user"  # now part of the owner's snapshot
        assert [run.call("byte", 201 + j) for j in range(n)] == [9] * n
        _, user = parse_component(memoryview(component)).modules.values()
        assert [raw for _, raw in user.data_segments] == [EMPTY_PASSIVE, spare]
        users.append(bytes(user.raw))
    assert users[0] == users[1] == users[2]


# ---------------------------------------------------------------- the cap, with segments already present

KEPT = 30_000


def cap_module() -> bytes:
    # Non-zero bytes with gaps of 10 and 20 zeros in turn: 30,000 runs at the shortest gap
    # length, 15,001 once gaps of 12 or more split.
    passive = "\n".join('    (data "k")' for _ in range(KEPT))
    return wat(
        f"""
(component
  (core module $m
    (memory 1)
{passive}
    (func (export "init")
      (local $i i32) (local $p i32)
      (drop (memory.grow (i32.const 10)))
      (local.set $p (i32.const 65536))
      (loop $write
        (i32.store8 (local.get $p) (i32.const 7))
        (local.set $p (i32.add (local.get $p)
          (select (i32.const 11) (i32.const 21) (i32.and (local.get $i) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $write (i32.lt_u (local.get $i) (i32.const 30000)))))
    (func (export "sum") (result i32)
      (local $p i32) (local $s i32)
      (loop $add
        (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br_if $add (i32.lt_u (local.get $p) (i32.mul (memory.size) (i32.const 65536)))))
      (local.get $s))
    (func (export "load-last") (memory.init {KEPT - 1} (i32.const 0) (i32.const 0) (i32.const 1)))
    (func (export "byte") (param $at i32) (result i32) (i32.load8_u (local.get $at))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "sum") (result u32) (canon lift (core func $i "sum")))
  (func (export "load-last") (canon lift (core func $i "load-last")))
  (func (export "byte") (param "at" u32) (result u8) (canon lift (core func $i "byte"))))
"""
    )


def test_segment_cap_counts_the_segments_already_present() -> None:
    current = cap_module()
    last = only_module(current).data_segments[-1][1]
    for _ in range(2):
        current = snapshot(current, keep_init_func=True)
        segments = only_module(current).data_segments
        assert len(segments) <= encoding.MAX_SEGMENTS
        # All 30,000 kept (code names the last one); the snapshot gets the rest of the cap,
        # which the 30,000-segment encoding would have overrun.
        assert segments[KEPT - 1][1] == last
        assert len(segments) - KEPT == 15_001
        assert encoding.segment_budget(KEPT) == encoding.MAX_SEGMENTS - KEPT
        run = Running(current)
        assert run.call("sum") == 7 * 30_000
        run.call("load-last")
        assert run.call("byte", 0) == ord("k")


def test_segment_budget_leaves_room_below_the_engine_limit() -> None:
    assert encoding.segment_budget(0) == encoding.MAX_SEGMENTS
    assert encoding.segment_budget(49_990) == encoding.MIN_BUDGET
    assert encoding.segment_budget(99_500) == encoding.ENGINE_LIMIT - 99_500


# ---------------------------------------------------------------- the CLI, run on its own output


def test_cli_chains_on_its_own_output(tmp_path: Path) -> None:
    first = tmp_path / "out.wasm"
    first.write_bytes(snapshot(CHAIN, keep_init_func=True))
    second = tmp_path / "out2.wasm"
    r = subprocess.run(
        [str(Path(sys.executable).parent / "component-init"), str(first), "-o", str(second), "--keep-init-func"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert_chain_state(second.read_bytes(), 2)
    assert len(only_module(second.read_bytes()).data_segments) == 2 * RUNS


def test_no_room_for_the_snapshot_is_reported() -> None:
    # Code names the last of 100,000 segments (the engine limit): all of them stay, and the
    # snapshot has no segment left.
    passive = "\n".join('    (data "k")' for _ in range(encoding.ENGINE_LIMIT))
    component = wat(
        f"""
(component
  (core module $m
    (memory 1)
{passive}
    (func (export "init") (i32.store8 (i32.const 5) (i32.const 1)))
    (func (export "drop-last") (data.drop {encoding.ENGINE_LIMIT - 1})))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "drop-last") (canon lift (core func $i "drop-last"))))
"""
    )
    with pytest.raises(UnsupportedComponentError, match="engine limit of 100,000 data segments"):
        snapshot(component, keep_init_func=True)
