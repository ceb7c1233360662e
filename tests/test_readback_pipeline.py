"""Our invoker copies accessor results out of the guest on a worker thread while the caller decodes."""

from __future__ import annotations

import threading

import pytest
import wasmtime
from wasmtime import component as cm

from hatch_component_init import pre_initialize, readback
from hatch_component_init.readback import PAGE
from hatch_component_init.runtime import WasmtimeInvoker, make_engine
from wat_support import Running, wat

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
