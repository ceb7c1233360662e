"""Component-model async (WASIp3): parsed in full, and pre-initialized.

Components with async canonical built-ins, async lifts and stream/future types
take the synchronous path; those that import an `async func`, or whose init is
one, run through Wasmtime's async API (tests/test_async_init.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_async_init import cli_p3_init_component  # noqa: F401 (a fixture)
from wat_support import Running, snapshot, wat

from hatch_component_init import (
    InitFailedError,
    InvalidComponentError,
    UnsupportedComponentError,
    pre_initialize,
)
from hatch_component_init.rewrite import reencode
from hatch_component_init.wasm.component import Sort, parse_component
from hatch_component_init.wasm.reader import encode_u32

#: The `run` export of tests/fixtures/cli_p3_init, a WASIp3 command (test_async_init.py builds it).
P3_RUN = "wasi:cli/run@0.3.0.run"

# Every canonical built-in but lift/lower, one per line, in the order of `ALL_BUILTIN_OPCODES`.
ALL_BUILTINS = wat(
    """
(component
  (type $r (resource (rep i32)))
  (type $s (stream u8))
  (type $f (future u32))
  (core module $libc
    (memory (export "memory") 1)
    (table (export "t") 1 funcref)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable))
  (core instance $libc (instantiate $libc))
  (core type $ft (func (param i32)))
  (core func (canon resource.new $r))
  (core func (canon resource.drop $r))
  (core func (canon resource.rep $r))
  (core func (canon backpressure.inc))
  (core func (canon backpressure.dec))
  (core func (canon task.return (result u32) (memory (core memory $libc "memory")) string-encoding=utf16))
  (core func (canon task.return))
  (core func (canon task.cancel))
  (core func (canon context.get i32 0))
  (core func (canon context.set i32 1))
  (core func (canon subtask.cancel async))
  (core func (canon subtask.drop))
  (core func (canon stream.new $s))
  (core func (canon stream.read $s async (memory (core memory $libc "memory"))))
  (core func (canon stream.write $s (memory (core memory $libc "memory"))))
  (core func (canon stream.cancel-read $s async))
  (core func (canon stream.cancel-write $s))
  (core func (canon stream.drop-readable $s))
  (core func (canon stream.drop-writable $s))
  (core func (canon future.new $f))
  (core func (canon future.read $f async (memory (core memory $libc "memory"))))
  (core func (canon future.write $f (memory (core memory $libc "memory"))))
  (core func (canon future.cancel-read $f async))
  (core func (canon future.cancel-write $f))
  (core func (canon future.drop-readable $f))
  (core func (canon future.drop-writable $f))
  (core func (canon error-context.new (memory (core memory $libc "memory"))))
  (core func (canon error-context.debug-message (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func (canon error-context.drop))
  (core func (canon waitable-set.new))
  (core func (canon waitable-set.wait (memory (core memory $libc "memory"))))
  (core func (canon waitable-set.poll (memory (core memory $libc "memory"))))
  (core func (canon waitable-set.drop))
  (core func (canon waitable.join))
  (core func (canon thread.index))
  (core func (canon thread.new-indirect $ft (core table $libc "t")))
  (core func (canon thread.resume-later))
  (core func (canon thread.suspend))
  (core func (canon thread.yield))
  (core func (canon thread.suspend-then-resume))
  (core func (canon thread.yield-then-resume))
  (core func (canon thread.suspend-then-promote))
  (core func (canon thread.yield-then-promote))
  (core func (canon thread.spawn-ref $ft))
  (core func (canon thread.spawn-indirect $ft (core table $libc "t")))
  (core func (canon thread.available_parallelism))
  (core func (canon stream.forward $s))
  (core func (canon future.forward $f)))
"""
)
ALL_BUILTIN_OPCODES = [
    0x02, 0x03, 0x04, 0x24, 0x25, 0x09, 0x09, 0x05, 0x0A, 0x0B, 0x06, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13,
    0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x26, 0x27,
    0x28, 0x29, 0x0C, 0x2A, 0x2B, 0x2C, 0x2D, 0x40, 0x41, 0x42, 0x2E, 0x2F,
]  # fmt: skip

# The other constructs of the current format that our parser reads: name attributes
# (`implements`, `versionsuffix`), value imports/exports, a type import, core tags (alias
# and export bundle), async function types, map and fixed-size list types, resources
# with destructors, and an async lift with a callback.
FORMATS = wat(
    """
(component
  (import "a:b/c@1" (versionsuffix ".2.3") (instance))
  (import "impl" (implements "a:b/c") (instance $impl
    (export "f" (func async (param "x" (list u8 4)) (result (map string u32))))))
  (import "v" (value $v string))
  (import "t" (type $rt (sub resource)))
  (type $ec error-context)
  (type $s (stream u8))
  (type $f (future))
  (type $af (func async (param "s" $s) (result $f)))
  (core module $m
    (tag (export "tag"))
    (memory (export "memory") 1)
    (func (export "cb") (param i32 i32 i32) (result i32) unreachable)
    (func (export "run") (result i32) unreachable)
    (func (export "dtor") (param i32)))
  (core instance $i (instantiate $m))
  (alias core export $i "tag" (core tag $t))
  (core instance $bundle (export "tag" (tag $t)))
  (type $res (resource (rep i32) (dtor (core func $i "dtor"))))
  (func (export "run") async (canon lift (core func $i "run") async (callback (core func $i "cb"))))
  (export "w" (value $v))
  (export "named" (type $af)))
"""
)

# Async built-ins, an async export with a callback and a stackful one, next to a
# synchronous init that never touches them; `use` calls built-ins after the snapshot.
ASYNC_BUILTINS = wat(
    """
(component
  (type $s (stream u8))
  (core module $m
    (import "" "ws.new" (func $ws-new (result i32)))
    (import "" "ws.drop" (func $ws-drop (param i32)))
    (import "" "ctx.get" (func $ctx-get (result i32)))
    (import "" "ctx.set" (func $ctx-set (param i32)))
    (import "" "bp.inc" (func))
    (import "" "bp.dec" (func))
    (import "" "task.cancel" (func))
    (import "" "task.return" (func $task-return (param i32)))
    (import "" "subtask.drop" (func (param i32)))
    (import "" "subtask.cancel" (func (param i32) (result i32)))
    (import "" "waitable.join" (func (param i32 i32)))
    (import "" "yield" (func (result i32)))
    (import "" "stream.new" (func (result i64)))
    (memory (export "memory") 1)
    (global $g (mut i32) (i32.const 0))
    (func (export "init")
      (global.set $g (i32.const 42))
      (i32.store (i32.const 64) (i32.const 1234)))
    (func (export "get") (result i32) (i32.add (global.get $g) (i32.load (i32.const 64))))
    (func (export "use") (result i32)
      (call $ws-drop (call $ws-new))
      (call $ctx-set (i32.const 7))
      (call $ctx-get))
    (func (export "slow") (result i32) (call $task-return (global.get $g)) (i32.const 0))
    (func (export "cb") (param i32 i32 i32) (result i32) unreachable)
    (func (export "stackful") (call $task-return (global.get $g))))
  (core func $ws-new (canon waitable-set.new))
  (core func $ws-drop (canon waitable-set.drop))
  (core func $ctx-get (canon context.get i32 0))
  (core func $ctx-set (canon context.set i32 0))
  (core func $bp-inc (canon backpressure.inc))
  (core func $bp-dec (canon backpressure.dec))
  (core func $task-cancel (canon task.cancel))
  (core func $task-return (canon task.return (result u32)))
  (core func $subtask-drop (canon subtask.drop))
  (core func $subtask-cancel (canon subtask.cancel async))
  (core func $join (canon waitable.join))
  (core func $yield (canon thread.yield))
  (core func $stream-new (canon stream.new $s))
  (core instance $i (instantiate $m (with "" (instance
    (export "ws.new" (func $ws-new)) (export "ws.drop" (func $ws-drop))
    (export "ctx.get" (func $ctx-get)) (export "ctx.set" (func $ctx-set))
    (export "bp.inc" (func $bp-inc)) (export "bp.dec" (func $bp-dec))
    (export "task.cancel" (func $task-cancel)) (export "task.return" (func $task-return))
    (export "subtask.drop" (func $subtask-drop)) (export "subtask.cancel" (func $subtask-cancel))
    (export "waitable.join" (func $join)) (export "yield" (func $yield))
    (export "stream.new" (func $stream-new))))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (result u32) (canon lift (core func $i "get")))
  (func (export "use") (result u32) (canon lift (core func $i "use")))
  (func (export "slow") async (result u32)
    (canon lift (core func $i "slow") async (callback (core func $i "cb"))))
  (func (export "stackful") async (result u32) (canon lift (core func $i "stackful") async)))
"""
)

def _with(definitions: str) -> bytes:
    """A component with a trivial init next to ``definitions``."""
    return wat(
        f"""
(component
  {definitions}
  (core module $m (func (export "init")))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )


# Proposals gated behind Wasmtime features that its C API cannot switch on.
FEATURES_OFF = {
    "forward": ("(type $s (stream u8)) (core func (canon stream.forward $s))", "forward feature"),
    "error-context": ("(core func (canon error-context.drop))", "error-context feature"),
    "threading": ("(core func (canon thread.index))", "threading feature"),
    "fixed-size list": ("(type (list u8 4))", "fixed-length lists feature"),
}


def _canon_section(*entries: bytes) -> bytes:
    payload = encode_u32(len(entries)) + b"".join(entries)
    return b"\x08" + encode_u32(len(payload)) + payload


# ---------------------------------------------------------------- the codec


def test_every_canonical_built_in_is_read_with_its_immediates() -> None:
    parsed = parse_component(memoryview(ALL_BUILTINS))
    # A wrong immediate length would misread every later opcode.
    assert [e.op for e in parsed.canons] == ALL_BUILTIN_OPCODES
    assert parsed.count(Sort.CORE_FUNC) == 1 + len(ALL_BUILTIN_OPCODES)  # and `realloc`, aliased from $libc
    assert reencode(parsed) == ALL_BUILTINS


def test_one_byte_built_ins_in_one_section() -> None:
    # componentize-py's p3 output has sections like this: 6 entries in 10 bytes.
    section = _canon_section(b"\x0a\x7f\x00", b"\x0b\x7f\x00", b"\x0d", b"\x23", b"\x1f", b"\x22")
    data = b"\x00asm\x0d\x00\x01\x00" + section
    parsed = parse_component(memoryview(data))
    assert [e.op for e in parsed.canons] == [0x0A, 0x0B, 0x0D, 0x23, 0x1F, 0x22]
    assert reencode(parsed) == data


def test_other_constructs_of_the_current_format() -> None:
    parsed = parse_component(memoryview(FORMATS))
    assert parsed.count(Sort.CORE_TAG) == 1
    assert parsed.count(Sort.CORE_INSTANCE) == 2
    assert parsed.count(Sort.VALUE) == 2  # imported `v`, exported `w`
    # 1 + 1 instance types, the type import, 4 defined, resource + async func type, the type export.
    assert parsed.count(Sort.TYPE) == 10
    assert parsed.count(Sort.FUNC) == 2  # the async lift and its export
    assert sorted(e.name for e in parsed.exports) == ["named", "run", "w"]
    assert reencode(parsed) == FORMATS


def test_value_section() -> None:
    value = b"\x73" + encode_u32(6) + b"\x05hello"  # a string value
    values = b"\x0c" + encode_u32(1 + len(value)) + b"\x01" + value
    export = b"\x0b\x07\x01\x00\x01w\x02\x00\x00"  # export "w" (value 0)
    data = b"\x00asm\x0d\x00\x01\x00" + values + export
    parsed = parse_component(memoryview(data))
    assert parsed.count(Sort.VALUE) == 2
    assert reencode(parsed) == data


@pytest.mark.parametrize(
    ("entry", "error", "needle"),
    [
        (b"\x30", UnsupportedComponentError, "canonical built-in 0x30"),
        (b"\x1c\x01\x0a", UnsupportedComponentError, "canonical option 0x0a"),
        (b"\x06\x02", InvalidComponentError, "bad `async` flag"),
        (b"\x09\x01\x01", InvalidComponentError, "bad result list"),
    ],
)
def test_unknown_or_malformed_built_ins(entry: bytes, error: type[Exception], needle: str) -> None:
    data = b"\x00asm\x0d\x00\x01\x00" + _canon_section(entry)
    with pytest.raises(error, match=needle):
        parse_component(memoryview(data))


# ---------------------------------------------------------------- pre-initialization


def test_async_built_ins_that_init_does_not_call() -> None:
    assert reencode(parse_component(memoryview(ASYNC_BUILTINS))) == ASYNC_BUILTINS
    before = Running(ASYNC_BUILTINS, wasi=False)
    assert before.call("get") == 0
    output = snapshot(ASYNC_BUILTINS, wasi=None)
    out = Running(output, wasi=False)
    assert not out.has("component-init")
    assert out.call("get") == 42 + 1234  # the global and the memory init wrote
    assert out.call("use") == 7  # the built-ins still work in the snapshot
    assert out.has("slow") and out.has("stackful")
    assert reencode(parse_component(memoryview(output))) == output


def test_async_built_ins_with_wasi_and_kept_init() -> None:
    out = Running(snapshot(ASYNC_BUILTINS, keep_init_func=True))
    assert out.has("component-init")
    assert out.call("get") == 42 + 1234


@pytest.mark.parametrize("name", sorted(FEATURES_OFF))
def test_feature_wasmtime_cannot_enable_is_unsupported_not_invalid(name: str) -> None:
    definitions, feature = FEATURES_OFF[name]
    with pytest.raises(UnsupportedComponentError, match=f"cannot switch on.*{feature}") as info:
        snapshot(_with(definitions))
    assert "invalid" not in str(info.value)


# ---------------------------------------------------------------- componentize-py builds


@pytest.mark.slow
def test_p3_build_round_trips(cli_p3_init_component: bytes) -> None:  # noqa: F811
    parsed = parse_component(memoryview(cli_p3_init_component))
    assert reencode(parsed) == cli_p3_init_component
    ops = {e.op for e in parsed.canons}
    assert {0x0D, 0x1F, 0x22, 0x23} <= ops  # subtask.drop, waitable-set.new/.drop, waitable.join


#: What componentize-py's runtime calls first when an export is called: a WASI 0.2 function.
P3_FIRST_CALL = "wasi:cli/environment@0.2.9#get-environment"


@pytest.mark.slow
def test_p3_run_as_init_runs(cli_p3_init_component: bytes) -> None:  # noqa: F811
    # The component runs through Wasmtime's async API; `run` prints through WASI 0.2, which init is given.
    output: list[tuple[str, bytes]] = []
    pre_initialize(cli_p3_init_component, init_func=P3_RUN, on_output=lambda stream, data: output.append((stream, data)))
    assert b"".join(data for stream, data in output if stream == "stdout") == b"not initialized (run 1)\n"


@pytest.mark.slow
def test_p3_run_as_init_without_wasi_fails_naming_the_call(cli_p3_init_component: bytes) -> None:  # noqa: F811
    with pytest.raises(InitFailedError) as info:
        pre_initialize(cli_p3_init_component, init_func=P3_RUN, wasi=None)
    message = str(info.value)
    assert f"init function `{P3_RUN}` failed" in message
    assert f"the import `{P3_FIRST_CALL}` was called during init" in message
    assert "valid" not in message


@pytest.mark.slow
def test_p3_run_as_init_failure_through_the_cli(cli_p3_init_component: bytes, tmp_path: Path) -> None:  # noqa: F811
    from test_cli import assert_clean_failure, cli

    (tmp_path / "cli.wasm").write_bytes(cli_p3_init_component)
    r = cli(tmp_path / "cli.wasm", "-o", tmp_path / "out.wasm", "-f", P3_RUN, "--no-wasi")
    assert_clean_failure(r, 1, f"the import `{P3_FIRST_CALL}` was called during init")
    assert "not a valid" not in r.stderr
    assert not (tmp_path / "out.wasm").exists()
