"""The allocator's free memory is zeroed in the snapshot only where wasi-libc's dlmalloc is recognised for certain.

The WAT component below is shaped like a componentize-py app's libc: a
memory module exporting `libc.so:memory_base` and `__heap_base`, and a
library linked as `libc.so` whose `dylink.0` section gives it 512 bytes of
static data there, holding a dlmalloc state (wasm32 layout) for a small heap
laid out by the memory module's data: an in-use chunk, a free chunk in small
bin 6, an in-use chunk, a free chunk in tree bin 0, an in-use chunk, the top
chunk. Its init writes one word where it is told (a no-op at address 0), so
each rule of the walk can be broken; `malloc48`/`free48` take and give back
the small bin's chunk the way dlmalloc does, to show the output's allocator
still works. An app module links the library as `libc.so`, as
componentize-py's main module does. The componentize-py tests prove the effect on real apps.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hatch_support import DESTINATION, build_in_process, make_project, wheel_member
from test_hatch_no_init import no_init_table
from wat_support import Running, snapshot, wat

from hatch_component_init import pre_initialize_with, zero_free_memory_without_init
from hatch_component_init.runtime import WasmtimeInvoker

STATIC = 1024  # libc's static data (512 bytes)
MSTATE = STATIC + 16
BIN6 = MSTATE + 40 + 8 * 6  # small bin 6's pseudo chunk (chunks of 48 bytes)
TREEBIN0 = MSTATE + 304
HEAP = 4096  # __heap_base; chunks start at HEAP + 8
SMALL, USED1, LARGE, USED2, TOP = 4136, 4184, 4216, 4504, 4536
SEG_END = 8192
TOPSIZE = SEG_END - 56 - TOP
#: The payloads the step may zero: past each free chunk's links (and tree fields), up to its footer.
PAYLOADS = [(SMALL + 16, SMALL + 48), (LARGE + 32, LARGE + 288), (TOP + 8, TOP + TOPSIZE)]


def _memory() -> bytearray:
    """Bytes [STATIC, SEG_END) of the memory: the allocator state and its heap, payloads full of garbage."""
    mem = bytearray(b"\x5a" * (SEG_END - STATIC))

    def put(address: int, *words: int) -> None:
        struct.pack_into(f"<{len(words)}I", mem, address - STATIC, *words)

    mem[: HEAP - STATIC] = bytes(HEAP - STATIC)
    put(MSTATE, 1 << 6, 1 << 0, 0, TOPSIZE, HEAP, 0, TOP, 0xFFFFFFFF, 0, 0x58585858)
    put(BIN6 + 8, SMALL, SMALL)  # the bin's fd and bk
    put(TREEBIN0, LARGE)
    put(MSTATE + 432, SEG_END - HEAP, SEG_END - HEAP, 0, 0, HEAP, SEG_END - HEAP, 0, 0)
    put(HEAP + 8 + 4, 32 | 3)  # in use, previous in use
    put(SMALL + 4, 48 | 1, BIN6, BIN6)  # free: head, fd, bk
    put(USED1, 48, 32 | 2)  # the free chunk's footer, then an in-use head with PINUSE clear
    put(LARGE + 4, 288 | 1, LARGE, LARGE, 0, 0, TREEBIN0, 0)  # head, fd, bk, children, parent, index
    put(USED2, 288, 32 | 2)
    put(TOP + 4, TOPSIZE | 1)
    put(TOP + TOPSIZE + 4, 56)
    return mem


def _component(memory: bytes, *, libc: str = "libc.so", static: str = "\\80\\04") -> bytes:
    return wat(_text(memory, libc=libc, static=static))


def _text(memory: bytes, *, libc: str = "libc.so", static: str = "\\80\\04") -> str:
    """The component, libc's static data ``static`` bytes long (LEB128, in WAT string escapes)."""
    data = "".join(f"\\{b:02x}" for b in memory)
    return rf"""
(component
  (core module $main
    (memory (export "memory") 1)
    (global (export "{libc}:memory_base") i32 (i32.const {STATIC}))
    (global (export "__heap_base") (mut i32) (i32.const {HEAP}))
    (data (i32.const {STATIC}) "{data}"))
  (core instance $main (instantiate $main))
  (core module $libc
    (import "env" "memory" (memory 1))
    (import "env" "__memory_base" (global i32))
    (import "GOT.mem" "__heap_base" (global (mut i32)))
    (@custom "dylink.0" "\01\04{static}\00\00")
    (func (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
    (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
    (func (export "malloc48") (result i32) (local $p i32) (local $f i32)
      (local.set $p (i32.load (i32.const {BIN6 + 8})))
      (if (i32.eq (local.get $p) (i32.const {BIN6})) (then (return (i32.const 0))))
      (local.set $f (i32.load offset=8 (local.get $p)))
      (i32.store (i32.const {BIN6 + 8}) (local.get $f))
      (i32.store offset=12 (local.get $f) (i32.const {BIN6}))
      (i32.store offset=4 (local.get $p) (i32.or (i32.load offset=4 (local.get $p)) (i32.const 2)))
      (i32.store offset=52 (local.get $p) (i32.or (i32.load offset=52 (local.get $p)) (i32.const 1)))
      (i32.add (local.get $p) (i32.const 8)))
    (func (export "free48") (param $mem i32) (local $p i32) (local $f i32)
      (local.set $p (i32.sub (local.get $mem) (i32.const 8)))
      (local.set $f (i32.load (i32.const {BIN6 + 8})))
      (i32.store offset=8 (local.get $p) (local.get $f))
      (i32.store offset=12 (local.get $p) (i32.const {BIN6}))
      (i32.store offset=12 (local.get $f) (local.get $p))
      (i32.store (i32.const {BIN6 + 8}) (local.get $p))
      (i32.store offset=4 (local.get $p) (i32.and (i32.load offset=4 (local.get $p)) (i32.const -3)))
      (i32.store offset=52 (local.get $p) (i32.and (i32.load offset=52 (local.get $p)) (i32.const -2)))))
  (core instance $env
    (export "memory" (memory $main "memory"))
    (export "__memory_base" (global $main "{libc}:memory_base")))
  (core instance $got (export "__heap_base" (global $main "__heap_base")))
  (core instance $libc (instantiate $libc (with "env" (instance $env)) (with "GOT.mem" (instance $got))))
  (core module $app
    (import "{libc}" "poke" (func $poke (param i32 i32)))
    (func (export "poke") (param i32 i32) (call $poke (local.get 0) (local.get 1))))
  (core instance $app (instantiate $app (with "{libc}" (instance $libc))))
  (func (export "poke") (param "address" u32) (param "value" u32) (canon lift (core func $app "poke")))
  (func (export "peek") (param "address" u32) (result u32) (canon lift (core func $libc "peek")))
  (func (export "malloc48") (result u32) (canon lift (core func $libc "malloc48")))
  (func (export "free48") (param "mem" u32) (canon lift (core func $libc "free48")))
)
"""


HEAP_SHAPED_TEXT = _text(_memory())
HEAP_SHAPED = wat(HEAP_SHAPED_TEXT)


def _run(component: bytes, init: str, **kwargs: object) -> tuple[bytes, list[tuple[str, str]]]:
    notes: list[tuple[str, str]] = []
    out = snapshot(component, init_func=init, keep_init_func=True, on_note=lambda *note: notes.append(note), **kwargs)
    return out, [note for note in notes if "allocator" in note[1]]


def _words(component: bytes) -> dict[int, int]:
    running = Running(component)
    return {a: running.call("peek", a) for a in range(STATIC, SEG_END, 4)}


def test_free_chunks_and_the_top_chunk_lose_their_payloads_and_nothing_else() -> None:
    out, notes = _run(HEAP_SHAPED, "poke(0, 0)")
    kept, kept_notes = _run(HEAP_SHAPED, "poke(0, 0)", zero_free_memory=False)
    zeroed, original = _words(out), _words(kept)
    in_payload = {a for start, end in PAYLOADS for a in range(start, end, 4)}
    assert {a for a in zeroed if zeroed[a] != original[a]} == in_payload
    assert all(zeroed[a] == 0 for a in in_payload)
    assert original[SMALL + 16] == 0x5A5A5A5A  # the garbage was there without the step
    assert len(out) < len(kept) - 3000
    assert notes == [("info", "free allocator memory zeroed: 3,880 bytes of wasi-libc malloc's free chunks and top chunk")]
    assert kept_notes == [("detail", "free allocator memory was kept as init left it, as asked")]


def test_the_allocator_of_the_output_still_allocates_and_frees() -> None:
    out, _ = _run(HEAP_SHAPED, "poke(0, 0)")
    running = Running(out)
    mem = running.call("malloc48")
    assert mem == SMALL + 8
    assert running.call("malloc48") == 0  # the bin is empty now
    assert running.call("peek", SMALL + 52) == 32 | 3  # the next chunk sees it in use
    running.call("free48", mem)
    assert running.call("malloc48") == mem


def _poke(address: int, value: int) -> str:
    return f"poke({address}, {value})"


@pytest.mark.parametrize(
    ("init", "why"),
    [
        (_poke(USED1, 64), f"the free chunk at {SMALL:#x} has a footer that is not its size"),
        (_poke(USED1 + 4, 32 | 3), f"the chunk at {USED1:#x} disagrees with the chunk before it on whether that is in use"),
        (_poke(USED1 + 4, 32), f"two free chunks in a row at {USED1:#x}: dlmalloc merges them"),
        (_poke(USED2 + 4, 32 | 3 | 4), f"the chunk at {USED2:#x} has a header dlmalloc does not write (0x27)"),
        (_poke(MSTATE + 24, TOP + 16), "its top chunk does not end where its segment's footer starts"),
        (_poke(TOP + 4, (TOPSIZE - 16) | 1), f"the top chunk's header at {TOP:#x} does not hold its size"),
        (_poke(USED2 + 4, 48 | 2), f"the chunk walk passes the top chunk at {TOP:#x} (reached {TOP + 16:#x})"),
        (_poke(MSTATE + 16, HEAP + 16), f"0 places in `libc.so`'s static data look like dlmalloc's state for the heap at {HEAP:#x}, not exactly one"),
        (_poke(MSTATE + 448, HEAP + 16), f"none of its segments starts at the heap's start {HEAP:#x}"),
        (_poke(MSTATE, 0), "1 free chunks of the walk are in no bin"),
        (_poke(SMALL + 8, LARGE), f"small bin 6: the links at {SMALL:#x} and {LARGE:#x} do not agree"),
        (_poke(LARGE + 24, 0), f"tree bin 0: the tree chunk at {LARGE:#x} has a size, index or parent that does not fit"),
        (_poke(TREEBIN0, SMALL), f"tree bin 0: the tree chunk at {SMALL:#x} has a size, index or parent that does not fit"),
        (_poke(LARGE + 16, LARGE), f"tree bin 0 holds {LARGE:#x}, which is not a free chunk of the walk (or is held twice)"),
    ],
    ids=["footer", "in-use-bit", "two-free", "flag4", "top-moved", "top-head", "walk-past-top", "other-allocator", "segments",
         "bin-map", "small-links", "tree-parent", "tree-root", "tree-cycle"],
)  # fmt: skip
def test_anything_inconsistent_is_left_byte_for_byte(init: str, why: str) -> None:
    out, notes = _run(HEAP_SHAPED, init)
    kept, _ = _run(HEAP_SHAPED, init, zero_free_memory=False)
    assert out == kept
    assert notes == [("detail", f"free allocator memory was left as it is: {why}")]


def test_the_states_own_segment_record_is_not_taken_for_a_second_state() -> None:
    # With 1 KiB of static data, the bytes 432 further on (footprints, then the segment record starting at
    # the heap) fit in it too and have the heap's start at the same offset as the state's lowest address.
    out, notes = _without_init(_component(_memory(), static="\\80\\08"))
    assert [level for level, _ in notes] == ["info"], notes


def test_a_component_without_libc_is_left_alone() -> None:
    other = _component(_memory(), libc="libother.so")
    out, notes = _run(other, "poke(0, 0)")
    assert out == _run(other, "poke(0, 0)", zero_free_memory=False)[0]
    assert notes == [("detail", "free allocator memory: nothing to zero, no core instance is linked as `libc.so`")]


@pytest.mark.parametrize("zero", [True, False, None], ids=["on", "off", "default"])
def test_a_callers_runtime_gets_the_step_too(zero: bool | None) -> None:
    def run(instrumented: bytes) -> WasmtimeInvoker:
        running = Running(instrumented)
        running.call("poke", 0, 0)
        return WasmtimeInvoker(running.instance, running.store)

    option = {} if zero is None else {"zero_free_memory": zero}
    out = pre_initialize_with(HEAP_SHAPED, run, init_func="poke", keep_init_func=True, **option)  # type: ignore[arg-type]
    assert Running(out).call("peek", SMALL + 16) == (0x5A5A5A5A if zero is False else 0)  # on by default


# ---------------------------------------------------------------- a heap of two segments

#: The first segment [HEAP, A_END) lost the top chunk when the heap took memory that did not continue it:
#: it ends with an in-use chunk holding that segment's record, then fenceposts (dlmalloc's add_segment).
A_END, B_BASE, B_END = 6144, 8192, 12288
A_RECORD_CHUNK, A_FENCE = 6088, 6120
B_LARGE, B_TOP = 8232, 8552
B_TOPSIZE = B_END - 56 - B_TOP
TWO_SEGMENT_PAYLOADS = [(SMALL + 16, SMALL + 48), (B_LARGE + 32, B_LARGE + 288), (B_TOP + 8, B_TOP + B_TOPSIZE)]


def _two_segments() -> bytearray:
    mem = bytearray(b"\x5a" * (B_END - STATIC))
    mem[: HEAP - STATIC] = bytes(HEAP - STATIC)
    mem[A_END - STATIC : B_BASE - STATIC] = bytes(B_BASE - A_END)

    def put(address: int, *words: int) -> None:
        struct.pack_into(f"<{len(words)}I", mem, address - STATIC, *words)

    put(MSTATE, 1 << 6, 1 << 0, 0, B_TOPSIZE, HEAP, 0, B_TOP, 0xFFFFFFFF, 0, 0x58585858)
    put(BIN6 + 8, SMALL, SMALL)
    put(TREEBIN0, B_LARGE)
    put(MSTATE + 448, B_BASE, B_END - B_BASE, A_RECORD_CHUNK + 8, 0)  # the newest segment, then the older one's record
    put(HEAP + 8 + 4, 32 | 3)
    put(SMALL + 4, 48 | 1, BIN6, BIN6)
    put(USED1, 48, (A_RECORD_CHUNK - USED1) | 2)
    put(A_RECORD_CHUNK + 4, 32 | 3, HEAP, A_END - HEAP, 0, 0)  # the record: base, size, next, flags
    for post in range(A_FENCE, A_END - 4, 4):
        put(post + 4, 7)
    put(B_BASE + 8 + 4, 32 | 3)
    put(B_LARGE + 4, 288 | 1, B_LARGE, B_LARGE, 0, 0, TREEBIN0, 0)
    put(B_LARGE + 288, 288, 32 | 2)
    put(B_TOP + 4, B_TOPSIZE | 1)
    put(B_TOP + B_TOPSIZE + 4, 56)
    return mem


def test_a_heap_of_two_segments_loses_the_payloads_of_both() -> None:
    component = _component(_two_segments())
    out, notes = _without_init(component)
    assert [level for level, _ in notes] == ["info"], notes
    running, original = Running(out), Running(component)
    changed = {a for a in range(STATIC, B_END, 4) if running.call("peek", a) != original.call("peek", a)}
    assert changed == {a for start, end in TWO_SEGMENT_PAYLOADS for a in range(start, end, 4)}


@pytest.mark.parametrize(
    ("address", "word", "why"),
    [
        (A_FENCE + 12, 0, f"the segment ending at {A_END:#x} does not end with fenceposts"),
        (A_RECORD_CHUNK + 4, 48 | 3, f"the segment ending at {A_END:#x} does not end with a segment record"),
        (A_RECORD_CHUNK + 16, A_RECORD_CHUNK + 8, "its list of segments does not end"),
        (MSTATE + 16, B_BASE, f"0 places in `libc.so`'s static data look like dlmalloc's state for the heap at {HEAP:#x}, not exactly one"),
    ],
    ids=["fencepost", "record-chunk", "record-loop", "least-addr"],
)  # fmt: skip
def test_a_heap_of_two_segments_that_does_not_fit_is_left_alone(address: int, word: int, why: str) -> None:
    memory = _two_segments()
    struct.pack_into("<I", memory, address - STATIC, word)
    component = _component(memory)
    out, notes = _without_init(component)
    assert out is component
    assert notes == [("detail", f"free allocator memory was left as it is: {why}")]


# ---------------------------------------------------------------- with no init run


def _without_init(component: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    notes: list[tuple[str, str]] = []
    return zero_free_memory_without_init(component, on_note=lambda *note: notes.append(note)), notes


def test_without_init_the_initial_memory_loses_the_same_payloads() -> None:
    out, notes = _without_init(HEAP_SHAPED)
    zeroed, original = _words(out), _words(HEAP_SHAPED)
    in_payload = {a for start, end in PAYLOADS for a in range(start, end, 4)}
    assert {a for a in zeroed if zeroed[a] != original[a]} == in_payload
    assert all(zeroed[a] == 0 for a in in_payload)
    assert len(out) < len(HEAP_SHAPED) - 3000
    assert notes == [("info", "free allocator memory zeroed: 3,880 bytes of wasi-libc malloc's free chunks and top chunk")]
    running = Running(out)
    assert running.call("malloc48") == SMALL + 8


def test_without_init_an_inconsistent_heap_is_returned_unchanged() -> None:
    memory = _memory()
    struct.pack_into("<I", memory, USED1 - STATIC, 64)  # the free chunk's footer
    component = _component(memory)
    out, notes = _without_init(component)
    assert out is component
    assert notes == [("detail", f"free allocator memory was left as it is: the free chunk at {SMALL:#x} has a footer that is not its size")]


def test_a_free_chunk_next_to_the_top_chunk_is_refused() -> None:
    # dlmalloc merges a freed chunk into the top chunk: one left beside it is not its heap.
    memory = _memory()
    for address, word in [(LARGE + 4, 288 | 3), (USED2 + 4, 32 | 1), (TOP, 32), (TOP + 4, TOPSIZE), (TREEBIN0, 0),
                          (MSTATE + 4, 0)]:  # fmt: skip
        struct.pack_into("<I", memory, address - STATIC, word)
    component = _component(memory)
    out, notes = _without_init(component)
    assert out is component
    assert notes == [("detail", "free allocator memory was left as it is: a free chunk lies before the top chunk: "
                                "dlmalloc merges them")]  # fmt: skip


#: Small bin ``i``'s pseudo chunk in the state (its fd and bk at +8 and +12).
def _small_bin(i: int) -> int:
    return MSTATE + 40 + 8 * i


@pytest.mark.parametrize(
    ("words", "why"),
    [
        ([(MSTATE + 8, 48)], "its designated victim at 0x0 is not a free chunk of its recorded size outside the bins"),
        ([(MSTATE + 8, 48), (MSTATE + 20, SMALL)],
         f"its designated victim at {SMALL:#x} is not a free chunk of its recorded size outside the bins"),
        ([(MSTATE + 4, 0)], "tree bin 0 disagrees with the bin map"),
        ([(MSTATE, 1 << 6 | 1 << 5), (_small_bin(5) + 8, _small_bin(5)), (_small_bin(5) + 12, _small_bin(5))],
         "small bin 5 is empty but marked in the bin map"),
        ([(MSTATE, 1 << 7), (_small_bin(7) + 8, SMALL), (_small_bin(7) + 12, SMALL), (SMALL + 8, _small_bin(7)),
          (SMALL + 12, _small_bin(7))], f"small bin 7 holds {SMALL:#x}, which does not belong there"),
        ([(SMALL + 8, 0x10000000)], "address 0x1000000c is outside the memory"),
        # The memory's last word is inside it (its one page ends at 0x10000), the next address is not.
        ([(SMALL + 8, 0x10000 - 16)], f"small bin 6: the links at {SMALL:#x} and 0xfff0 do not agree"),
        ([(SMALL + 8, 0x10000 - 15)], "address 0xfffd is outside the memory"),
    ],
    ids=["dv-size", "dv-binned", "tree-map", "small-map", "small-wrong-bin", "outside", "last-word", "past-the-end"],
)  # fmt: skip
def test_bins_that_do_not_hold_the_free_chunks_are_left_alone(words: list[tuple[int, int]], why: str) -> None:
    memory = _memory()
    for address, word in words:
        struct.pack_into("<I", memory, address - STATIC, word)
    component = _component(memory)
    out, notes = _without_init(component)
    assert out is component
    assert notes == [("detail", f"free allocator memory was left as it is: {why}")]


_OTHER_BASE = f'  (core module $o (global (export "g") i32 (i32.const {STATIC})))\n  (core instance $o (instantiate $o))\n'


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ('(memory (export "memory") 1)', '(memory (export "memory") 1) (memory 1)',
         "the memory's module does not define that one memory alone"),
        (f"i32 (i32.const {STATIC}))", f"i32 (i32.add (i32.const {STATIC}) (i32.const 0)))",
         "`libc.so:memory_base` is not a single i32 constant"),
        ('  (core instance $env\n    (export "memory" (memory $main "memory"))\n    (export "__memory_base" (global $main "libc.so:memory_base")))',
         _OTHER_BASE + '  (core instance $env\n    (export "memory" (memory $main "memory"))\n    (export "__memory_base" (global $o "g")))',
         "its memory, `__memory_base` and `__heap_base` do not all come from one core instance"),
        ('  (core instance $app (instantiate $app (with "libc.so" (instance $libc))))\n',
         '  (core instance $app (instantiate $app (with "libc.so" (instance $libc))))\n'
         '  (core instance $libc2 (instantiate $libc (with "env" (instance $env)) (with "GOT.mem" (instance $got))))\n'
         '  (core instance $app2 (instantiate $app (with "libc.so" (instance $libc2))))\n',
         "2 core instances are linked as `libc.so`"),
        # Without a run, the memory is known only from the segments of one instance of its module.
        ("  (core instance $main (instantiate $main))\n",
         "  (core instance $main (instantiate $main))\n  (core instance $main2 (instantiate $main))\n",
         "the memory's module is instantiated more than once"),
        (f'(data (i32.const {STATIC}) "', f'(data (i32.add (i32.const {STATIC}) (i32.const 0)) "',
         "a data segment of the memory's module has an offset that is not a constant"),
    ],
    ids=["two-memories", "base-not-constant", "base-from-elsewhere", "two-libcs", "instantiated-twice",
         "offset-not-constant"],
)  # fmt: skip
def test_a_libc_linked_other_than_componentize_pys_is_left_alone(old: str, new: str, why: str) -> None:
    assert old in HEAP_SHAPED_TEXT
    component = wat(HEAP_SHAPED_TEXT.replace(old, new, 1))
    out, notes = _without_init(component)
    assert out is component
    assert notes == [("detail", f"free allocator memory was left as it is: {why}")]


def _with_last_bytes_at(offset: int) -> bytes:
    """The heap-shaped component with one more segment in its memory module: 8 bytes at ``offset``."""
    first = f'    (data (i32.const {STATIC}) "'
    assert first in HEAP_SHAPED_TEXT
    return wat(HEAP_SHAPED_TEXT.replace(first, f'    (data (i32.const {offset}) "\\01\\02\\03\\04\\05\\06\\07\\08")\n' + first, 1))


def test_without_init_a_segment_that_ends_the_memory_is_kept_and_one_past_it_refused() -> None:
    out, notes = _without_init(_with_last_bytes_at(65536 - 8))
    assert [level for level, _ in notes] == ["info"], notes
    running = Running(out)
    assert [running.call("peek", a) for a in (65528, 65532)] == [0x04030201, 0x08070605]
    component = _with_last_bytes_at(65536 - 7)
    out, notes = _without_init(component)
    assert out is component
    assert notes == [("detail", "free allocator memory was left as it is: a data segment of the memory's module lies "
                                "outside its initial memory")]  # fmt: skip


def test_without_init_what_the_reader_does_not_support_is_returned_unchanged() -> None:
    module = wat("(module)")
    out, notes = _without_init(module)
    assert out is module
    assert notes == [("detail", "free allocator memory was left as it is: this is a core WebAssembly module, not a "
                                "component; core modules are not supported yet (wrap it into a component, e.g. with "
                                "`wasm-tools component new`)")]  # fmt: skip


def test_without_init_a_memory_that_other_data_writes_is_left_alone() -> None:
    # A second module that imports the memory and writes it with its own active segment.
    component = HEAP_SHAPED_TEXT.replace(
        "  (core instance $got",
        '  (core module $w (import "env" "memory" (memory 1)) (data (i32.const 8000) "x"))\n'
        '  (core instance $w (instantiate $w (with "env" (instance $env))))\n  (core instance $got',
    )
    out, notes = _without_init(wat(component))
    assert out == wat(component)
    assert notes == [("detail", "free allocator memory was left as it is: "
                                "another core module has active data segments for a memory it imports")]  # fmt: skip


def test_the_command_zeroes_without_init(tmp_path: Path) -> None:
    source, out = tmp_path / "in.wasm", tmp_path / "out.wasm"
    source.write_bytes(HEAP_SHAPED)
    r = subprocess.run([sys.executable, "-m", "hatch_component_init", source, "-o", out, "--no-init"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == (
        "component-init: free allocator memory zeroed: 3,880 bytes of wasi-libc malloc's free chunks and top chunk"
    )
    assert out.read_bytes() == _without_init(HEAP_SHAPED)[0]


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hatch_component_init", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_the_command_says_why_with_v_and_keeps_the_bytes_when_asked(tmp_path: Path) -> None:
    source = tmp_path / "in.wasm"
    source.write_bytes(HEAP_SHAPED)
    broken = tmp_path / "broken.wasm"
    memory = _memory()
    struct.pack_into("<I", memory, USED1 - STATIC, 64)
    broken.write_bytes(_component(memory))
    init = ("-f", "poke(0, 0)", "--keep-init-func")
    quiet = _cli(broken, "-o", tmp_path / "a.wasm", *init)
    verbose = _cli(broken, "-o", tmp_path / "b.wasm", *init, "-v")
    assert quiet.returncode == verbose.returncode == 0
    assert "allocator" not in quiet.stderr
    assert (f"component-init: free allocator memory was left as it is: the free chunk at {SMALL:#x} has a footer "
            "that is not its size") in verbose.stderr.splitlines()  # fmt: skip
    default = _cli(source, "-o", tmp_path / "c.wasm", *init)
    kept = _cli(source, "-o", tmp_path / "d.wasm", *init, "--no-zero-free-memory")
    assert default.returncode == kept.returncode == 0
    assert Running((tmp_path / "c.wasm").read_bytes()).call("peek", SMALL + 16) == 0
    assert Running((tmp_path / "d.wasm").read_bytes()).call("peek", SMALL + 16) == 0x5A5A5A5A


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "-v"])
def test_no_init_and_no_zeroing_copies_the_input_and_says_so_with_v(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verbose: bool
) -> None:
    """cli._run in process: `--no-init --no-zero-free-memory` writes the input as it is; `-v` says so."""
    from hatch_component_init.cli import main

    source, out = tmp_path / "in.wasm", tmp_path / "out.wasm"
    source.write_bytes(HEAP_SHAPED)
    assert main([str(source), "-o", str(out), "--no-init", "--no-zero-free-memory", *(["-v"] if verbose else [])]) == 0
    assert out.read_bytes() == HEAP_SHAPED
    said = "component-init: free allocator memory was kept, as asked: the output is the input"
    assert (said in capsys.readouterr().err.splitlines()) == verbose


@pytest.mark.usefixtures("snapshot_cache_dir")
def test_the_hook_with_init_func_false_ships_it_zeroed_unless_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = build_in_process(make_project(tmp_path / "a", no_init_table(), raw_component=HEAP_SHAPED))
    assert wheel_member(wheel, DESTINATION) == zero_free_memory_without_init(HEAP_SHAPED)
    assert "with its free allocator memory zeroed (`init-func = false`)" in capsys.readouterr().err
    table = no_init_table(**{"zero-free-memory": "false"})
    wheel = build_in_process(make_project(tmp_path / "b", table, raw_component=HEAP_SHAPED))
    assert wheel_member(wheel, DESTINATION) == HEAP_SHAPED


@pytest.mark.usefixtures("snapshot_cache_dir")
def test_the_hook_says_why_with_hatch_v(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = _memory()
    struct.pack_into("<I", memory, USED1 - STATIC, 64)
    broken = _component(memory)
    monkeypatch.setenv("HATCH_VERBOSE", "1")
    wheel = build_in_process(make_project(tmp_path / "a", no_init_table(), raw_component=broken))
    assert wheel_member(wheel, DESTINATION) == broken
    assert (f"free allocator memory was left as it is: the free chunk at {SMALL:#x} has a footer that is not its "
            "size") in capsys.readouterr().err  # fmt: skip


def test_the_command_refuses_init_options_with_no_init(tmp_path: Path) -> None:
    source = tmp_path / "in.wasm"
    source.write_bytes(HEAP_SHAPED)
    r = _cli(source, "-o", tmp_path / "out.wasm", "--no-init", "--dir", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == (
        "component-init: error: argument --no-init: --dir configures the init run, and --no-init runs nothing"
    )
    assert not (tmp_path / "out.wasm").exists()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["-f", "setup"], "-f/--init-func"), (["--keep-init-func"], "--keep-init-func"), (["--dir", "."], "--dir"),
        (["--env", "A=1"], "--env"), (["--host", "m:f"], "--host"), (["--no-wasi"], "--no-wasi"),
        (["--no-reset-first-call"], "--no-reset-first-call"), (["--timeout", "5"], "--timeout"),
        (["--max-memory", "1M"], "--max-memory"),
        # Several: the first in that order is named.
        (["--max-memory", "1M", "--env", "A=1", "--keep-init-func"], "--keep-init-func"),
    ],
)  # fmt: skip
def test_each_init_option_is_refused_with_no_init_in_process(
    options: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command's own argument check, in this process (the test above runs it as users do, for one option).
    from hatch_component_init.cli import main

    (tmp_path / "in.wasm").write_bytes(HEAP_SHAPED)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["in.wasm", "-o", "out.wasm", "--no-init", *options])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f"error: argument --no-init: {named} configures the init run, and --no-init runs nothing"
    )
    assert not (tmp_path / "out.wasm").exists()


def test_the_defaults_of_the_init_options_are_not_refused_with_no_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hatch_component_init.cli import main

    (tmp_path / "in.wasm").write_bytes(HEAP_SHAPED)
    monkeypatch.chdir(tmp_path)
    assert main(["in.wasm", "-o", "out.wasm", "--no-init", "-q", "-f", "component-init", "--timeout", "300"]) == 0
    assert (tmp_path / "out.wasm").is_file()


def test_without_init_a_passive_segment_that_code_names_keeps_its_place() -> None:
    # memory.init names data segment 0 (passive); the re-encoded data keeps it at that index.
    text = HEAP_SHAPED_TEXT.replace(
        '    (memory (export "memory") 1)\n',
        '    (memory (export "memory") 1)\n    (data "abc")\n'
        '    (func (export "fill") (memory.init 0 (i32.const 64) (i32.const 0) (i32.const 3)))\n',
    ).replace(
        "  (core instance $main (instantiate $main))\n",
        '  (core instance $main (instantiate $main))\n  (func (export "fill") (canon lift (core func $main "fill")))\n',
    )
    out, notes = _without_init(wat(text))
    assert [level for level, _ in notes] == ["info"], notes
    running = Running(out)
    running.call("fill")
    assert running.call("peek", 64) == int.from_bytes(b"abc\x00", "little")
