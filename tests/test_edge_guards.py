"""Quick tests for edges that a set of mutations kept outside the project found unguarded.

Each test fails when the code it names makes a small, plausible slip (a flipped
boundary, a dropped argument or check, a wrong constant); the docstring of each
says which.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hatch_component_init import WasiOptions, pre_initialize
from hatch_component_init.errors import InitFailedError, MissingInitExportError
from wat_support import Running, snapshot, wat

# ---------------------------------------------------------------- runtime.py


#: Exports `exports.init(app-name: string)`, the shape of componentize-py's own build-time entry point,
#: next to the app's `hello`.
CPY_ENTRY_POINT = wat(
    """
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "init") (param i32 i32))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64))
    (func (export "hello")))
  (core instance $i (instantiate $m))
  (func $init (param "app-name" string)
    (canon lift (core func $i "init") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func $hello (canon lift (core func $i "hello")))
  (instance $exports (export "init" (func $init)))
  (export "exports" (instance $exports))
  (export "hello" (func $hello)))
"""
)


def test_componentize_py_entry_point_is_never_offered_as_init() -> None:
    """runtime._componentize_py_internal: `exports.init(app-name, ...)` is componentize-py's, not the app's."""
    with pytest.raises(MissingInitExportError) as exc:
        pre_initialize(CPY_ENTRY_POINT, init_func="helo")
    message = str(exc.value)
    assert "Function exports: `hello`." in message
    assert "exports.init" not in message


#: A memory that may grow to exactly 1 MiB, and an init that traps.
GROWS_TO_ONE_MIB = wat(
    """
(component
  (core module $m
    (memory 1 16)
    (func (export "init") unreachable))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)


def test_memory_limit_note_only_when_a_memory_can_pass_it() -> None:
    """runtime._can_outgrow: a memory whose maximum equals the limit cannot grow past it."""
    with pytest.raises(InitFailedError) as exactly:
        pre_initialize(GROWS_TO_ONE_MIB, max_memory=16 * 65536)
    assert "unreachable" in str(exactly.value)
    assert "can grow past" not in str(exactly.value)
    with pytest.raises(InitFailedError) as below:
        pre_initialize(GROWS_TO_ONE_MIB, max_memory=16 * 65536 - 1)
    assert "can grow past the memory limit of 1,048,575 bytes" in str(below.value)


#: Takes nothing from WASI; init only sets a global.
QUIET = wat(
    """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 7))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)


def _stale_atime(path: Path) -> int:
    """Give ``path`` an access time older than its modification time; return the modification time."""
    mtime = path.stat().st_mtime_ns
    os.utime(path, ns=(mtime - 100 * 10**9, mtime))
    return mtime


def test_files_in_granted_directories_are_read_before_init(tmp_path: Path) -> None:
    """runtime.settle_access_times: each file is read (one byte), so its access time settles before init."""
    control = tmp_path / "control"
    control.write_bytes(b"x")
    mtime = _stale_atime(control)
    with open(control, "rb") as f:
        f.read(1)
    if control.stat().st_atime_ns <= mtime:
        pytest.skip("this file system does not update access times on read (noatime)")
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    files = [data / "top.txt", data / "nested" / "deep.txt"]
    for path in files:
        path.write_bytes(b"words")
    stale = [_stale_atime(path) for path in files]
    pre_initialize(QUIET, wasi=WasiOptions(dirs=((data, "/data"),)))
    assert [path.stat().st_atime_ns > mtime for path, mtime in zip(files, stale)] == [True, True]


# ---------------------------------------------------------------- host_imports.py


INSECURE_RANDOM_PROBE = wat(
    """
(component
  (type $insecure (instance
    (type $bytes (list u8))
    (export "get-insecure-random-bytes" (func (param "len" u64) (result $bytes)))
    (export "get-insecure-random-u64" (func (result u64)))))
  (import "wasi:random/insecure@0.2.0" (instance $r (type $insecure)))
  (core module $libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $next))
      (global.set $next (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (alias export $r "get-insecure-random-bytes" (func $bytes))
  (alias export $r "get-insecure-random-u64" (func $u64))
  (core func $bytes (canon lower (func $bytes) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $u64 (canon lower (func $u64)))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "r" "bytes" (func $bytes (param i64 i32)))
    (import "r" "u64" (func $u64 (result i64)))
    (global $u (mut i64) (i64.const 0))
    (func (export "init")
      (call $bytes (i64.const 32) (i32.const 16))
      (global.set $u (call $u64)))
    (func (export "bytes") (result i32) (i32.const 16))
    (func (export "u64") (result i64) (global.get $u)))
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "r" (instance (export "bytes" (func $bytes)) (export "u64" (func $u64))))))
  (type $list (list u8))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "bytes") (result $list) (canon lift (core func $i "bytes") (memory (core memory $libc "memory"))))
  (func (export "u64") (result u64) (canon lift (core func $i "u64"))))
"""
)


def test_insecure_random_is_the_fixed_seed_stream_too() -> None:
    """host_imports._override_provided: `wasi:random/insecure` draws from the same fixed-seed stream."""
    first = snapshot(INSECURE_RANDOM_PROBE)
    assert snapshot(INSECURE_RANDOM_PROBE) == first
    out = Running(first)
    drawn = bytes(out.call("bytes"))
    assert len(drawn) == 32 and len(set(drawn)) > 16
    assert out.call("u64") not in (0, int.from_bytes(drawn[:8], "little"))
