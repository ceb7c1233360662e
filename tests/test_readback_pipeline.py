"""Reading the state back: our invoker copies accessor results out of the guest on a worker thread while the
caller decodes, and the descriptors init left open in any wasi-libc are counted before the libc forgets them."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import wasmtime
from wasmtime import component as cm

from hatch_component_init import WasiOptions, pre_initialize, readback
from hatch_component_init.errors import InitFailedError
from hatch_component_init.readback import PAGE
from hatch_component_init.runtime import WasmtimeInvoker, make_engine
from message_catalog import HOLE
from wat_support import Running, snapshot, wat

# `text(offset, len)` returns `len` bytes of memory from `offset` as a latin-1 string; it traps when
# the range runs past the memory, as an accessor would.
TEXTS = wat(
    """
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "fill") (local $i i32)
      (loop $next
        (i32.store8 (local.get $i) (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (i32.const 65536)))))
    (func (export "text") (param i32 i32) (result i32)
      (memory.copy (i32.const 60000) (local.get 0) (local.get 1))
      (i32.store (i32.const 59992) (i32.const 60000))
      (i32.store (i32.const 59996) (local.get 1))
      (i32.const 59992)))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $mem))
  (func (export "fill") (canon lift (core func $i "fill")))
  (func (export "text") (param "offset" u32) (param "len" u32) (result string)
    (canon lift (core func $i "text") string-encoding=latin1+utf16 (memory $mem))))
"""
)


def invoker() -> WasmtimeInvoker:
    engine = make_engine()
    store = wasmtime.Store(engine)
    instance = cm.Linker(engine).instantiate(store, cm.Component(engine, TEXTS))
    instance.get_func(store, "fill")(store)
    return WasmtimeInvoker(instance, store)


def test_pipelined_results_are_the_bytes_in_order() -> None:
    calls = [(offset, size) for offset in range(0, 5000, 250) for size in (0, 1, 250, 5000)]
    got = list(invoker().texts("text", calls))
    assert got == [bytes(i % 256 for i in range(offset, offset + size)) for offset, size in calls]
    # The sequential path agrees, byte for byte.
    plain = invoker()
    assert got == [plain.call("text", *args).encode("latin-1") for args in calls]


def _readers() -> list[threading.Thread]:
    """The read-back worker threads still alive (by name: other tests' threads do not count)."""
    return [thread for thread in threading.enumerate() if thread.name == "component-init-read"]


def test_a_trap_in_the_worker_reaches_the_caller_and_the_worker_ends() -> None:
    calls = [(0, 100), (100, 100), (65500, 100), (0, 100)]  # the third runs past the memory
    got = []
    with pytest.raises(wasmtime.WasmtimeError, match="out of bounds"):
        for data in invoker().texts("text", calls):
            got.append(data)
    assert got == [bytes(range(100)), bytes(range(100, 200))]
    assert not _readers()


def test_a_caller_that_stops_early_ends_the_worker() -> None:
    results = invoker().texts("text", [(0, 10)] * 50)
    assert next(results) == bytes(range(10))
    results.close()
    assert not _readers()


# Init leaves values on pages 0 and 3 of four, 1 and 2 zero: `get(address)` reads one back. The second
# is 50,000 bytes into its page, past the first read where reads are 40,000 bytes long.
INIT_WRITES = wat(
    """
(component
  (core module $m
    (memory (export "memory") 4)
    (func (export "init")
      (i32.store (i32.const 1000) (i32.const 0x12345678))
      (i32.store (i32.const 246608) (i32.const 0x0badcafe)))
    (func (export "get") (param i32) (result i32) (i32.load (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (param "address" u32) (result u32) (canon lift (core func $i "get"))))
"""
)


@pytest.mark.parametrize(
    ("scan_pages", "read_chunk", "reads"),
    [
        (readback.SCAN_PAGES, readback.READ_CHUNK, [(0, PAGE), (3 * PAGE, PAGE)]),
        # A scan call per page and reads shorter than a page stand for a memory over 1 GiB and runs
        # of non-zero pages over 4 MiB: the scans must add up to one bitmap, the reads to one chunk.
        (1, 40000, [(0, 40000), (40000, PAGE - 40000), (3 * PAGE, 40000), (3 * PAGE + 40000, PAGE - 40000)]),
    ],
)
def test_pre_initialization_copies_only_non_zero_pages_on_the_reader_thread(
    monkeypatch: pytest.MonkeyPatch, scan_pages: int, read_chunk: int, reads: list[tuple[int, int]]
) -> None:
    monkeypatch.setattr(readback, "SCAN_PAGES", scan_pages)
    monkeypatch.setattr(readback, "READ_CHUNK", read_chunk)
    # Reading back must go through our invoker's pipelined `texts`, not one plain call per chunk:
    # the sequential path gives the same bytes, so only the thread the copies ran on tells them apart.
    # Zero pages are left out of the copies: the same snapshot, only slower, would come of them.
    copies: list[tuple[str, tuple[int, ...]]] = []
    raw_call = WasmtimeInvoker._raw_call

    def recording(self: WasmtimeInvoker, func: cm.Func, params: list[object], args: tuple[int, ...]) -> object:
        copies.append((threading.current_thread().name, args))
        return raw_call(self, func, params, args)

    monkeypatch.setattr(WasmtimeInvoker, "_raw_call", recording)
    out = pre_initialize(INIT_WRITES, wasi=None, code_cache=False)
    running = Running(out, wasi=False)
    assert (running.call("get", 1000), running.call("get", 246608)) == (0x12345678, 0x0BADCAFE)
    assert copies == [("component-init-read", args) for args in reads]


# A wasi-libc shape: `__wasilibc_reset_preopens` is its reset, `descriptor_table_get_ref(fd)` is non-zero
# for stdio (0-2) and for each descriptor 3-31 whose bit `open(mask)` set.
_LIBC = """
  (core module $libc
    (global $open (mut i32) (i32.const 0))
    (func (export "__wasilibc_reset_preopens"))
    (func (export "descriptor_table_get_ref") (param $fd i32) (result i32)
      (if (result i32) (i32.lt_u (local.get $fd) (i32.const 3))
        (then (i32.const 1))
        (else (if (result i32) (i32.lt_u (local.get $fd) (i32.const 32))
          (then (i32.and (i32.shr_u (global.get $open) (local.get $fd)) (i32.const 1)))
          (else (i32.const 0))))))
    (func (export "open") (param i32) (global.set $open (local.get 0))))"""


def _libcs_left_open(first: set[int], second: set[int], nested: set[int]) -> bytes:
    """Two wasi-libc instances at the root and one in a nested component; init leaves ``first``, ``second``
    and ``nested`` open in them."""

    def mask(fds: set[int]) -> int:
        return sum(1 << fd for fd in fds)

    return wat(
        f"""
(component
  {_LIBC}
  (component $inner
    {_LIBC}
    (core instance $l (instantiate $libc))
    (func (export "open") (param "fds" u32) (canon lift (core func $l "open"))))
  (instance $n (instantiate $inner))
  (alias export $n "open" (func $nested-open))
  (core func $nested-open (canon lower (func $nested-open)))
  (core instance $a (instantiate $libc))
  (core instance $b (instantiate $libc))
  (core module $init
    (import "a" "open" (func $a (param i32)))
    (import "b" "open" (func $b (param i32)))
    (import "n" "open" (func $n (param i32)))
    (func (export "init")
      (call $a (i32.const {mask(first)})) (call $b (i32.const {mask(second)})) (call $n (i32.const {mask(nested)}))))
  (core instance $i (instantiate $init
    (with "a" (instance $a)) (with "b" (instance $b)) (with "n" (instance (export "open" (func $nested-open))))))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )


def _documented(message: str) -> bool:
    """Whether ``message`` is the open-descriptor refusal as docs/troubleshooting.md lists it, holes filled."""
    page = Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md"
    line = next(line for line in page.read_text().splitlines() if f" descriptor{HOLE} open (number{HOLE} {HOLE})" in line)
    return re.fullmatch(".*?".join(re.escape(part) for part in line.split(HOLE)), message) is not None


@pytest.mark.parametrize(
    ("first", "second", "nested", "dirs", "refused"),
    [
        # Every libc numbers the one granted directory 3: one preopen, whichever instances hold it, and
        # each level's reset (the nested one's too) runs before the snapshot.
        ({3}, {3}, {3}, 1, None),
        # Left open in the first instance at the root and in the nested one: both are counted, in order.
        ({5}, set(), {7}, 0, "left 2 file, directory or socket descriptors open (numbers 5, 7)"),
        # The granted directory takes the lowest number; what init opened after it is refused.
        ({3, 4}, {3}, set(), 1, "left 1 file, directory or socket descriptor open (number 4)"),
    ],
    ids=["the-granted-dir-in-every-libc", "left-open-at-both-levels", "past-the-granted-dir"],
)
def test_descriptors_init_left_open_in_any_libc_past_the_granted_dirs_are_refused(
    tmp_path: Path, first: set[int], second: set[int], nested: set[int], dirs: int, refused: str | None
) -> None:
    component = _libcs_left_open(first, second, nested)
    wasi = WasiOptions(dirs=tuple((tmp_path, f"/d{i}") for i in range(dirs)))
    if refused is None:
        Running(snapshot(component, wasi=wasi))  # a refusal, or a failed reset, raises here
        return
    with pytest.raises(InitFailedError) as exc:
        snapshot(component, wasi=wasi)
    message = str(exc.value)
    assert message.startswith(f"the init function `component-init` {refused}. "), message
    assert _documented(message), message
