"""Quick tests for edges that a set of mutations kept outside the project found unguarded.

Each test fails when the code it names makes a small, plausible slip (a flipped
boundary, a dropped argument or check, a wrong constant); the docstring of each
says which.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hatch_component_init import WasiOptions, pre_initialize
from hatch_component_init.errors import InitFailedError, MissingInitExportError
from wat_support import BUMP_ALLOCATOR, Running, snapshot, wat

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


def test_every_function_export_is_listed_when_init_is_not_found() -> None:
    """runtime._find_init: the function exports, each in backquotes, joined by commas, in the component's order."""
    from test_engine_shapes import BUNDLE_AFTER_INIT

    with pytest.raises(MissingInitExportError) as exc:
        pre_initialize(wat(BUNDLE_AFTER_INIT), init_func="setup")
    assert "no function export `setup`. Function exports: `component-init`, `api.get`. Name the" in str(exc.value)


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


def test_memory_limit_note_for_a_memory_of_a_nested_component() -> None:
    """runtime._can_outgrow: the memories of nested components are looked at too."""
    nested = wat(
        """
(component
  (component $inner
    (core module $m (memory 1 16) (func (export "init") unreachable))
    (core instance $i (instantiate $m))
    (func (export "init") (canon lift (core func $i "init"))))
  (instance $c (instantiate $inner))
  (alias export $c "init" (func $f))
  (export "component-init" (func $f)))
"""
    )
    with pytest.raises(InitFailedError) as below:
        pre_initialize(nested, max_memory=16 * 65536 - 1)
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
    f"""
(component
  (type $insecure (instance
    (type $bytes (list u8))
    (export "get-insecure-random-bytes" (func (param "len" u64) (result $bytes)))
    (export "get-insecure-random-u64" (func (result u64)))))
  (import "wasi:random/insecure@0.2.0" (instance $r (type $insecure)))
  {BUMP_ALLOCATOR}
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


def test_guest_stderr_in_the_message_is_its_end() -> None:
    """runtime._Output: of a long stderr, the message keeps the last 4,000 characters, not the first."""
    from test_init_hints import writes_then_traps

    # Over 4,000 characters, and within the 4,096 bytes one blocking write takes.
    text = "EARLY-LINE\n" + "x" * 3990 + "\nLAST-LINE: the reason\n"
    with pytest.raises(InitFailedError) as exc:
        pre_initialize(writes_then_traps(text))
    assert "LAST-LINE: the reason" in str(exc.value)
    assert "EARLY-LINE" not in str(exc.value)
    assert exc.value.guest_stderr.endswith("LAST-LINE: the reason\n")


def test_a_failure_after_init_keeps_what_init_printed() -> None:
    """runtime.run_init: init returns, then the adapter-state reset the read-back calls traps; the error says
    it was the read-back, and carries init's stderr as the other failures do."""
    from wat_support import printing_component

    printed = "loaded 3 words\n"
    data = "".join(f"\\{byte:02x}" for byte in printed.encode())
    component = printing_component(
        "stderr",
        f"""(data (i32.const 1024) "{data}")
    (func (export "init") (call $write (call $get-stderr) (i32.const 1024) (i32.const {len(printed)}) (i32.const 16)))
    (func (export "reset_adapter_state") (drop (i32.div_u (i32.const 1) (i32.const 0))))""",
    )
    with pytest.raises(InitFailedError) as exc:
        pre_initialize(component)
    assert str(exc.value).startswith("reading the state after init failed: "), exc.value
    assert "integer divide by zero" in str(exc.value)
    assert exc.value.guest_stderr == printed


#: Imports `wasi:clocks/timezone`, which Wasmtime leaves out of WASI 0.2; init does not call it.
IMPORTS_TIMEZONE = wat(
    """
(component
  (import "wasi:clocks/timezone@0.2.0" (instance $tz (export "utc-offset" (func (result s32)))))
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 9)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))
"""
)


def test_a_wasi_interface_wasmtime_lacks_gets_a_stand_in() -> None:
    """host_imports.wasi_packages_provided: `wasi:clocks/timezone` is not Wasmtime's, so it is stood in for."""
    out = snapshot(IMPORTS_TIMEZONE)
    assert b"wasi:clocks/timezone@0.2.0" in out


# ---------------------------------------------------------------- accessor.py, instrument.py


def _peek_component(memory: str, init: str, extra: str = "") -> bytes:
    """A component with one memory (declared as ``memory``), ``init`` as its init, and `peek(address) -> u8`."""
    return wat(
        f"""
(component
  (core module $m
    (memory {memory})
    {extra}
    (func (export "init") {init})
    (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "peek") (param "address" u32) (result u8) (canon lift (core func $i "peek"))))
"""
    )


def test_the_last_bytes_of_a_page_are_snapshotted() -> None:
    """accessor._scan_func: a page whose only non-zero byte is its last is not a zero page."""
    out = Running(snapshot(_peek_component("2", "(i32.store8 (i32.const 65535) (i32.const 77))")))
    assert out.call("peek", 65535) == 77
    assert out.call("peek", 65534) == 0


def test_shared_memory_of_the_largest_maximum() -> None:
    """accessor._memtype: the accessor's import of a shared memory must admit a maximum of 65,536 pages."""
    out = Running(snapshot(_peek_component("1 65536 shared", "(i32.store8 (i32.const 100) (i32.const 5))")))
    assert out.call("peek", 100) == 5


def test_a_stack_of_the_wrong_width_for_its_memory_is_not_scrubbed() -> None:
    """instrument._shadow_stack: i32 stack globals over a 64-bit memory are not a C shadow stack we know."""
    data = wat(
        """
(component
  (core module $m
    (memory i64 1)
    (global $sp (export "__stack_pointer") (mut i32) (i32.const 4096))
    (global $low (export "__stack_low") i32 (i32.const 1024))
    (func (export "init") (i32.store8 (i64.const 2000) (i32.const 6)))
    (func (export "peek") (param i64) (result i32) (i32.load8_u (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "peek") (param "address" u64) (result u8) (canon lift (core func $i "peek"))))
"""
    )
    assert Running(snapshot(data)).call("peek", 2000) == 6


def test_a_nested_component_s_reset_hook_runs_before_the_snapshot() -> None:
    """instrument._with_prefix: a nested component's plan keeps its reset (`reset_adapter_state`)."""
    data = wat(
        """
(component
  (component $inner
    (core module $m
      (global $g (mut i32) (i32.const 0))
      (global $handle (mut i32) (i32.const 0))
      (func (export "init") (global.set $g (i32.const 5)) (global.set $handle (i32.const 3)))
      (func (export "reset_adapter_state") (global.set $handle (i32.const 0)))
      (func (export "get") (result i32) (i32.add (i32.mul (global.get $g) (i32.const 10)) (global.get $handle))))
    (core instance $i (instantiate $m))
    (func (export "init") (canon lift (core func $i "init")))
    (func (export "get") (result u32) (canon lift (core func $i "get"))))
  (instance $c (instantiate $inner))
  (alias export $c "init" (func $init))
  (alias export $c "get" (func $get))
  (export "component-init" (func $init))
  (export "get" (func $get)))
"""
    )
    assert Running(snapshot(data)).call("get") == 50


# ---------------------------------------------------------------- rewrite.py


def test_a_module_a_nested_component_aliases_is_not_rewritten_behind_its_back() -> None:
    """rewrite._refuse_shared_copies: a nested component's outer alias of a rewritten module reaches it afresh."""
    from hatch_component_init.errors import UnsupportedComponentError

    data = wat(
        """
(component $root
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 5))))
  (core instance $i (instantiate $m))
  (component $inner
    (alias outer $root $m (core module $copy))
    (export "module" (core module $copy)))
  (instance $c (instantiate $inner))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )
    with pytest.raises(UnsupportedComponentError, match="also exported or passed to another component"):
        snapshot(data)


# ---------------------------------------------------------------- data_modules.py


def test_merged_data_segments_never_zero_an_earlier_write() -> None:
    """data_modules._merged: a run of neighbours is not merged over an address an earlier segment wrote."""
    data = _peek_component(
        "1",
        "",
        '(data (i32.const 10) "AAAAAAAAAA") (data (i32.const 0) "BBBBB") (data (i32.const 30) "CCCCCCCCCC")',
    )
    out = Running(snapshot(data))
    assert [out.call("peek", a) for a in (0, 5, 10, 19, 25, 30)] == [ord("B"), 0, ord("A"), ord("A"), 0, ord("C")]


def test_a_constant_offset_at_2_gib_reads_as_unsigned() -> None:
    """data_modules.constant_segment: `i32.const 0x80000000` (encoded as a negative LEB) is 2 GiB, not -2 GiB."""
    from hatch_component_init.data_modules import constant_segment

    raw = b"\x00\x41\x80\x80\x80\x80\x78\x0b\x01X"  # flags 0, i32.const -2**31, end, 1 byte
    assert constant_segment(raw) == (0, False, 1 << 31, b"X")
    assert constant_segment(b"\x00\x41\x7f\x0b\x01Y") == (0, False, (1 << 32) - 1, b"Y")


# ---------------------------------------------------------------- wave.py, api.py


def test_integer_arguments_at_the_top_of_their_range() -> None:
    """wave._convert: the upper bound of an integer type is exclusive (u8 takes 255, not 256)."""
    from hatch_component_init.errors import InitExportError

    data = wat(
        """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (param i32) (global.set $g (local.get 0)))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (param "n" u8) (canon lift (core func $i "init")))
  (func (export "get") (result u8) (canon lift (core func $i "get"))))
"""
    )
    assert Running(snapshot(data, init_func="component-init(255)")).call("get") == 255
    with pytest.raises(InitExportError, match="256 is out of range for u8"):
        snapshot(data, init_func="component-init(256)")


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("S8", -(2**7), 2**7 - 1), ("S16", -(2**15), 2**15 - 1), ("S32", -(2**31), 2**31 - 1),
        ("S64", -(2**63), 2**63 - 1), ("U8", 0, 2**8 - 1), ("U16", 0, 2**16 - 1), ("U32", 0, 2**32 - 1),
        ("U64", 0, 2**64 - 1),
    ],
)  # fmt: skip
def test_every_integer_type_takes_its_whole_range_and_nothing_past_it(name: str, low: int, high: int) -> None:
    """wave._convert: each integer type's bounds, as the component model defines them."""
    from wasmtime import component as cm

    from hatch_component_init.errors import InitExportError
    from hatch_component_init.wave import _convert

    ty = getattr(cm, name)()
    assert _convert(low, ty, "arg") == low and _convert(high, ty, "arg") == high
    for outside in (low - 1, high + 1):
        with pytest.raises(InitExportError, match=f"arg: {outside} is out of range for {name.lower()}$"):
            _convert(outside, ty, "arg")


def test_a_refused_argument_is_shown_as_it_was_written() -> None:
    """wave._show: the value in the message is in WAVE, as the user wrote it (chars quoted, tuples, lists, bools)."""
    from wasmtime import component as cm

    from hatch_component_init.errors import InitExportError
    from hatch_component_init.wave import _convert, parse_spec

    written = ["'x'", "(1, 'y')", "[true, 'z']", '"w"', "some(false)"]
    for text, value in zip(written, parse_spec(f"f({', '.join(written)})").args, strict=True):
        with pytest.raises(InitExportError, match=re.escape(f"arg: expected an integer (u8), got `{text}`")):
            _convert(value, cm.U8(), "arg")


def test_inf_and_nan_written_as_labels_are_floats_and_with_a_payload_are_refused() -> None:
    """wave._convert: `%inf` and `%nan` (labels, as WAVE escapes keywords) are the floats; `%inf(1)` is no float."""
    import math

    from wasmtime import component as cm

    from hatch_component_init.errors import InitExportError
    from hatch_component_init.wave import _convert, parse_spec

    inf, nan, with_payload = parse_spec("f(%inf, %nan, %inf(1))").args
    assert _convert(inf, cm.F64(), "arg") == math.inf and math.isnan(_convert(nan, cm.F32(), "arg"))
    with pytest.raises(InitExportError, match=re.escape("arg: expected a number, got `inf(1)`")):
        _convert(with_payload, cm.F64(), "arg")


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("asets/images", "assets/images"),
        ("assets/imagse", "assets/images"),
        ("{base}/asets/images", "{base}/assets/images"),
    ],
    ids=["parent-missing-too", "parent-exists", "absolute"],
)
def test_a_missing_directory_is_matched_under_its_nearest_existing_ancestor(
    tmp_path: Path, wanted: str, expected: str
) -> None:
    """suggest.similar_directory: it walks up past the missing parents, and answers the way `wanted` was written."""
    from hatch_component_init.suggest import similar_directory

    (tmp_path / "assets" / "images").mkdir(parents=True)
    base = tmp_path.as_posix()
    assert similar_directory(tmp_path, wanted.format(base=base)) == expected.format(base=base)


def test_a_number_with_a_fraction_is_a_float() -> None:
    """wave._Parser.value: `1.5` is a float; only a whole token of digits is an integer."""
    from hatch_component_init.wave import parse_spec

    assert parse_spec("f(1.5, 2, -3e2)").args == (1.5, 2, -300.0)


def test_a_zero_timeout_is_refused() -> None:
    """api.pre_initialize_unchecked: a timeout must be positive; 0 would stop init at once."""
    from hatch_component_init.errors import ConfigError

    with pytest.raises(ConfigError, match="the timeout must be a positive number of seconds, not 0"):
        pre_initialize(QUIET, timeout=0)


# ---------------------------------------------------------------- host_spec.py, hatch/host.py


def test_a_host_spec_with_anything_after_the_function_is_refused() -> None:
    """host_spec._SPEC: the whole spec is `module:function`, nothing after it."""
    from hatch_component_init.errors import ConfigError
    from hatch_component_init.host_spec import check_host_spec

    check_host_spec("build_host:define", "--host")
    for spec in ("build_host:define extra", "build_host:define()", "build_host:define:more"):
        with pytest.raises(ConfigError, match="--host must look like `module:function`"):
            check_host_spec(spec, "--host")


def _host_module(root: Path, name: str) -> Path:
    path = root / f"{name}.py"
    path.write_text("def define(linker):\n    pass\n")
    return path


def test_loading_a_host_module_leaves_the_python_path_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """host_spec.load_host: the project root goes on `sys.path` for the import only."""
    import sys

    from hatch_component_init.host_spec import load_host

    _host_module(tmp_path, "edge_guard_host_path")
    monkeypatch.delitem(sys.modules, "edge_guard_host_path", raising=False)
    before = list(sys.path)
    assert callable(load_host("edge_guard_host_path:define", tmp_path, "--host"))
    sys.modules.pop("edge_guard_host_path", None)
    assert sys.path == before


@pytest.mark.parametrize(
    ("function", "why"),
    [("missing", "module `edge_guard_host_names` has no `missing`"),
     ("define.missing", "module `edge_guard_host_names` has no `define.missing`"),
     ("NOT_CALLABLE", "`NOT_CALLABLE` is not callable")],
)  # fmt: skip
def test_a_host_function_that_is_not_there_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str, why: str
) -> None:
    """host_spec.load_host: a name the module lacks (at any level of a dotted name), or that is no function."""
    import sys

    from hatch_component_init.errors import ConfigError
    from hatch_component_init.host_spec import load_host

    module = _host_module(tmp_path, "edge_guard_host_names")
    module.write_text(module.read_text() + "\nNOT_CALLABLE = 3\n")
    monkeypatch.delitem(sys.modules, "edge_guard_host_names", raising=False)
    with pytest.raises(ConfigError) as info:
        load_host(f"edge_guard_host_names:{function}", tmp_path, "--host")
    sys.modules.pop("edge_guard_host_names", None)
    assert str(info.value) == f"--host `edge_guard_host_names:{function}`: {why}"


def test_a_fresh_host_import_gives_back_the_module_imported_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hatch/host.load_fresh: whoever imported that module name before the hook keeps their module."""
    import sys
    import types

    from hatch_component_init.hatch.host import load_fresh

    expected = _host_module(tmp_path, "edge_guard_host_prev")
    theirs = types.ModuleType("edge_guard_host_prev")
    monkeypatch.setitem(sys.modules, "edge_guard_host_prev", theirs)
    host = load_fresh("edge_guard_host_prev:define", tmp_path, expected, "Option `host`")
    assert host.__module__ == "edge_guard_host_prev" and host.__code__.co_filename == str(expected)
    assert sys.modules["edge_guard_host_prev"] is theirs


# ---------------------------------------------------------------- hatch/config.py, hatch/component_path.py


def test_dirs_naming_a_file_are_refused(tmp_path: Path) -> None:
    """hatch/config._dirs_exist: a `dirs` key must be a directory, not a file."""
    from hatch_component_init.errors import MissingPathError
    from hatch_component_init.hatch.config import COMPONENT_INIT_HOOK, reader_for

    (tmp_path / "data.txt").write_text("words")
    reader = reader_for(COMPONENT_INIT_HOOK, {"component": "app.wasm", "dirs": {"data.txt": "/data"}}, tmp_path)
    with pytest.raises(MissingPathError, match="^Option `dirs` for build hook `component-init` names `data.txt`, which is not a directory$"):
        reader.validate()


def test_an_input_written_by_an_earlier_hook_is_found_through_a_symlinked_root(tmp_path: Path) -> None:
    """hatch/component_path.check_component_made: paths are compared resolved (a project under a symlink)."""
    from hatch_component_init.hatch.component_path import check_component_made

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    written = {"componentize-py": ("output", "build/app.wasm")}
    check_component_made(tmp_path / "link", "component-init", "build/app.wasm", written, "componentize-py")


# ---------------------------------------------------------------- hatch/loader_template.py


def test_a_precompiled_file_of_another_wasmtime_minor_release_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hatch/loader_template._unusable: Wasmtime loads code of any release of the same major version."""
    import hashlib
    import types

    from hatch_component_init.hatch import loader_template as loader

    cwasm = tmp_path / "app.cwasm"
    cwasm.write_bytes(b"machine code")
    site = tmp_path / "site"
    (site / "wasmtime").mkdir(parents=True)
    installed = types.SimpleNamespace(__file__=str(site / "wasmtime" / "__init__.py"))
    monkeypatch.setattr(loader, "WASMTIME_VERSION", "49.0.4")
    monkeypatch.setattr(loader, "TARGET", "x86_64-unknown-linux-gnu")
    monkeypatch.setattr(loader, "PLATFORM", loader.host_platform())
    monkeypatch.setattr(loader, "PRECOMPILED_SIZE", cwasm.stat().st_size)
    monkeypatch.setattr(loader, "PRECOMPILED_SHA256", hashlib.sha256(b"machine code").hexdigest())
    if loader.host_platform() is None:
        pytest.skip("no precompiled code is made for this platform")
    (site / "wasmtime-49.1.2.dist-info").mkdir()
    assert loader._unusable(str(cwasm), installed) is None
    (site / "wasmtime-49.1.2.dist-info").rename(site / "wasmtime-50.0.0.dist-info")
    assert loader._unusable(str(cwasm), installed) == "compiled by wasmtime 49.0.4, installed is 50.0.0"


# ---------------------------------------------------------------- hatch/bytecode.py, hatch/tree.py


def test_bytecode_written_during_a_build_is_removed_folder_and_all(tmp_path: Path) -> None:
    """hatch/bytecode.no_new_bytecode: new `.pyc` files go first, then their (then empty) `__pycache__`."""
    from hatch_component_init.hatch.bytecode import no_new_bytecode

    kept = tmp_path / "old" / "__pycache__"
    kept.mkdir(parents=True)
    (kept / "old.cpython-312.pyc").write_bytes(b"old")
    with no_new_bytecode([tmp_path]):
        new = tmp_path / "pkg" / "__pycache__"
        new.mkdir(parents=True)
        (new / "app.cpython-312.pyc").write_bytes(b"new")
    assert not new.exists()
    assert (kept / "old.cpython-312.pyc").exists()


def test_an_editable_target_under_a_missing_source_directory_stays_at_the_wheel_path(tmp_path: Path) -> None:
    """hatch/tree.editable_target: a `sources` rewrite is undone only where that source directory exists."""
    from hatch_component_init.hatch.tree import editable_target

    sources = {"src/pkg": "pkg"}
    assert editable_target(tmp_path, "pkg/app.wasm", sources) == tmp_path / "pkg" / "app.wasm"
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    assert editable_target(tmp_path, "pkg/app.wasm", sources) == tmp_path / "src" / "pkg" / "app.wasm"


# ---------------------------------------------------------------- hatch/componentize.py


def test_requirements_make_pip_a_build_dependency(tmp_path: Path) -> None:
    """hatch/componentize.dependencies: installing `requirements` needs pip in an isolated build environment."""
    from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

    def hook(**config: object) -> ComponentizePyBuildHook:
        config = {"module": "app", "output": "build/app.wasm", **config}
        return ComponentizePyBuildHook(str(tmp_path), config, None, None, str(tmp_path), "wheel")

    assert hook().dependencies() == ["componentize-py==0.25.1"]
    assert hook(requirements=["attrs==23.1.0"]).dependencies() == ["componentize-py==0.25.1", "pip"]


# ---------------------------------------------------------------- more of instrument.py, host_imports.py, api.py


def test_a_stub_reset_hook_is_never_called() -> None:
    """instrument._is_stub: a reset export whose body starts with `unreachable` (componentize-py's
    `--stub-wasi` adapter) is a stub, and calling it would trap."""
    data = _peek_component(
        "1",
        "(i32.store8 (i32.const 8) (i32.const 4))",
        '(func (export "reset_adapter_state") unreachable)',
    )
    assert Running(snapshot(data)).call("peek", 8) == 4


def test_host_definitions_may_shadow_wasi() -> None:
    """host_imports._call_host: the host's definitions replace WASI's (here `wasi:random`, whose
    fixed-seed functions are defined under the component's own import name) where they overlap."""
    from test_promises import RANDOM_PROBE

    def define(linker: object) -> None:
        with linker.root() as root:  # type: ignore[attr-defined]
            with root.add_instance("wasi:random/random@0.2.0") as random:
                random.add_func("get-random-bytes", lambda store, n: bytes([7]) * n)
                random.add_func("get-random-u64", lambda store: 7)

    out = Running(snapshot(RANDOM_PROBE, host=define))
    assert bytes(out.call("bytes")) == bytes([7]) * 40
    assert out.call("u64") == 7


def test_no_first_call_warning_about_the_environment_when_nothing_was_reset() -> None:
    """api._FirstCall.apply: the warning that build-time variables stay visible comes only with a reset."""
    notes: list[tuple[str, str]] = []
    pre_initialize(QUIET, wasi=WasiOptions(env=(("MODE", "fast"),)), on_note=lambda level, text: notes.append((level, text)))
    first_call = [level for level, text in notes if "allocator" not in text]
    assert first_call == ["detail"], notes


def test_a_failed_componentize_py_run_leaves_no_partial_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """hatch/componentize._run_componentize_py: the file written next to `output` goes when the run fails (after
    the line saying the run began)."""
    import sys

    from hatch_component_init.errors import BuildStepError
    from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

    config = {"module": "app", "output": "build/app.wasm"}
    hook = ComponentizePyBuildHook(str(tmp_path), config, None, None, str(tmp_path), "wheel")
    # What a failing componentize-py does: it has begun writing its output when it exits non-zero.
    writes_half = "import sys; open(sys.argv[1], 'wb').write(b'\\0asm'); sys.exit(3)"
    hook.command = lambda output: [sys.executable, "-c", writes_half, str(output)]  # type: ignore[method-assign]
    with pytest.raises(BuildStepError, match="componentize-py failed \\(exit code 3\\)"):
        hook._run_componentize_py("0.25.1")
    assert sorted(p.name for p in (tmp_path / "build").iterdir()) == []
    assert "Building component `build/app.wasm` with componentize-py 0.25.1" in capsys.readouterr().err


def test_an_outer_alias_follows_its_module_past_inserted_copies() -> None:
    """rewrite._rewrite_entry: a nested component's `alias outer` to a root module is renumbered when a
    module before it gets a second copy (two instances, two states)."""
    from hatch_component_init.wasm.component import Sort, parse_component

    data = wat(
        """
(component $root
  (core module $a
    (global $g (mut i32) (i32.const 0))
    (func (export "set") (param i32) (global.set $g (local.get 0))))
  (core module $b (func (export "bee")))
  (core instance $a1 (instantiate $a))
  (core instance $a2 (instantiate $a))
  (component $inner
    (alias outer $root $b (core module $mb))
    (export "b" (core module $mb)))
  (instance $c (instantiate $inner))
  (export "inner" (instance $c))
  (core module $init
    (import "a1" "set" (func $s1 (param i32)))
    (import "a2" "set" (func $s2 (param i32)))
    (func (export "init") (call $s1 (i32.const 1)) (call $s2 (i32.const 2))))
  (core instance $ii (instantiate $init (with "a1" (instance $a1)) (with "a2" (instance $a2))))
  (func (export "component-init") (canon lift (core func $ii "init"))))
"""
    )
    out = parse_component(memoryview(snapshot(data)))
    (inner,) = out.components.values()
    (alias,) = inner.aliases
    aliased = out.modules[out.at(Sort.CORE_MODULE, alias.name_or_index).section]
    assert list(aliased.exports) == ["bee"]


#: Init is `example:demo/setup.init`, a function of an exported instance.
INIT_IN_AN_INSTANCE = wat(
    """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.add (global.get $g) (i32.const 3))))
    (func (export "get") (result i32) (global.get $g)))
  (core instance $i (instantiate $m))
  (func $init (canon lift (core func $i "init")))
  (func $get (result u32) (canon lift (core func $i "get")))
  (instance $setup (export "init" (func $init)) (export "get" (func $get)))
  (export "example:demo/setup" (instance $setup)))
"""
)


def test_an_output_that_kept_its_init_in_an_instance_can_be_initialized_again() -> None:
    """api._refuse_already_initialized: an init kept in an exported instance is present, so a chained run goes
    ahead; one that was removed is refused as already pre-initialized."""
    init = "example:demo/setup.init"
    kept = snapshot(INIT_IN_AN_INSTANCE, init_func=init, keep_init_func=True)
    again = snapshot(kept, init_func=init)
    out = Running(again)
    setup = out.instance.get_export_index(out.store, "example:demo/setup")
    get = out.instance.get_func(out.store, out.instance.get_export_index(out.store, "get", setup))
    assert get(out.store) == 6  # init ran in both runs
    removed = snapshot(INIT_IN_AN_INSTANCE, init_func=init)
    with pytest.raises(MissingInitExportError, match="already pre-initialized"):
        snapshot(removed, init_func=init)


def test_a_multi_line_host_failure_is_reported_in_one_paragraph() -> None:
    """host_imports.first_lines: the lines of a message are joined on one line (one-paragraph errors)."""
    from hatch_component_init.errors import HostError

    def define(linker: object) -> None:
        raise RuntimeError("the first line\n\nthe second line\n")

    with pytest.raises(HostError) as exc:
        snapshot(QUIET, host=define)
    assert str(exc.value).endswith("failed: RuntimeError: the first line the second line")


def _libc_with_descriptors(leak: bool) -> bytes:
    """A wasi-libc shape: `descriptor_table_get_ref(fd)` is non-zero for stdio (0-2) and, if init leaked a
    file, for descriptor 5; `__wasilibc_reset_preopens` is its reset."""
    return _peek_component(
        "1",
        f"(global.set $leaked (i32.const {int(leak)}))",
        """(global $leaked (mut i32) (i32.const 0))
    (func (export "__wasilibc_reset_preopens"))
    (func (export "descriptor_table_get_ref") (param $fd i32) (result i32)
      (if (result i32) (i32.lt_u (local.get $fd) (i32.const 3))
        (then (i32.const 64))
        (else (i32.mul (global.get $leaked) (i32.mul (i32.eq (local.get $fd) (i32.const 5)) (i32.const 128))))))""",
    )


def test_the_descriptors_init_left_open_are_the_ones_the_libc_has() -> None:
    """accessor._descriptors_func: a descriptor is open where the libc's lookup is non-zero, and only there."""
    assert Running(snapshot(_libc_with_descriptors(leak=False))).call("peek", 0) == 0
    with pytest.raises(InitFailedError, match=r"left 1 file, directory or socket descriptor open \(number 5\)"):
        snapshot(_libc_with_descriptors(leak=True))


#: Init calls `wasi:http/outgoing-handler#handle`. Its type is simplified (a bare `func`): the refusing
#: definition is a dynamically typed host function, so it links whatever the type, where Wasmtime's
#: own wasi:http `handle` would not.
CALLS_THE_NETWORK = wat(
    """
(component
  (import "wasi:http/outgoing-handler@0.2.0" (instance $http (export "handle" (func))))
  (alias export $http "handle" (func $handle))
  (core func $handle (canon lower (func $handle)))
  (core module $m
    (import "http" "handle" (func $handle))
    (func (export "init") (call $handle)))
  (core instance $i (instantiate $m (with "http" (instance (export "handle" (func $handle))))))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)


def test_an_outgoing_request_during_init_traps() -> None:
    """host_imports._override_provided: every function of `wasi:http/outgoing-handler@...` is replaced by one
    that refuses the network."""
    with pytest.raises(InitFailedError, match="init may not use the network: it called `wasi:http/outgoing-handler@0.2.0#handle`"):
        snapshot(CALLS_THE_NETWORK)
