"""Free allocator memory in a snapshot: zero what no allocation holds, where the allocator is known for certain.

A componentize-py app allocates every Python object with wasi-libc's
dlmalloc (its CPython has no pymalloc), so the heap a snapshot carries is
full of freed chunks that still hold the objects they used to: bytes that
cost size in every output and that no correct program reads again.

wasi-libc (`libc.so`, linked into the component as a core module of its own)
keeps dlmalloc's state (`struct malloc_state`, a static of the library) in
its static data, which the dynamic linker placed at the library's
`memory_base`, for the size its `dylink.0` section gives; the heap starts at
`__heap_base`, which the library reads from its `GOT.mem` import. The state
is recognised only as exactly one place in that static data whose lowest
address is `__heap_base`, one of its segments starting there; then every
chunk of every segment is walked: sizes, in-use bits, the next chunk's
previous-in-use bit, free chunks' footers, no two free chunks in a row, the
walk of the segment holding the top chunk ending exactly there and the top
chunk where that segment's footer starts, each other segment ending with
the chunk that holds a segment record and fenceposts (the heap takes a new
segment when memory grown for it does not continue the last one: another
library grew the memory in between); and the bins must hold exactly the free
chunks the walk found (each small bin a consistent ring of its size class,
each tree bin a consistent tree), the designated victim aside. Only then
are the payloads of the free chunks and of the top chunk zeroed, past every
field the allocator reads (header, free-list links, tree links and index,
footer). In any other case nothing changes and the outcome says why.

The layout is that of wasm32 (4-byte size_t) with `MALLOC_ALIGNMENT` 16,
no locks and no mmap: wasi-libc's configuration (dlmalloc/src/dlmalloc.c).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

# The component-level lookups are first_call's (the same dynamic-linking layout, another library).
from .first_call import _aliased_export, _dylink_memory_size, _instantiation, _NotRecognised
from .state import MemoryState
from .wasm.component import Component, Sort
from .wasm.reader import Reader

__all__ = ["LIBC", "FreeMemoryOutcome", "OwnerState", "free_ranges", "zero_free_memory"]

#: The instantiation argument under which componentize-py links wasi-libc.
LIBC = "libc.so"

# struct malloc_state on wasm32 without USE_LOCKS (dlmalloc/src/malloc.c).
_SMALLMAP, _TREEMAP, _DVSIZE, _TOPSIZE, _LEAST_ADDR, _DV, _TOP, _MAGIC = 0, 4, 8, 12, 16, 20, 24, 36
_SMALLBINS = 40  # (NSMALLBINS + 1) * 2 pointers
_TREEBINS = 304  # NTREEBINS pointers
_SEG_BASE, _SEG_SIZE, _SEG_NEXT = 448, 452, 456  # the newest segment's record: base, size, next
_MSTATE_SIZE = 472
_NBINS = 32
#: Chunk header bits.
_PINUSE, _CINUSE, _FLAG4 = 1, 2, 4
_ALIGN = 16
_MIN_CHUNK = 16
#: Chunks of this size and more live in tree bins (NSMALLBINS << SMALLBIN_SHIFT).
_MIN_LARGE = 256
#: The header of the fenceposts that end a segment (INUSE_BITS | SIZE_T_SIZE), and the in-use chunk before
#: them that holds a segment record (pad_request(sizeof(struct malloc_segment))).
_FENCEPOST_HEAD, _RECORD_CHUNK = 7, 32
#: More segments than this are not a heap of wasm32 memory grown page by page.
_MAX_SEGMENTS = 65536
#: Bytes at the end of a segment after the top chunk (align_offset(8) + pad_request(16) + MIN_CHUNK_SIZE).
_TOP_FOOT = 56
#: Bytes of a free chunk the allocator reads: prev_foot, head, fd, bk; a tree chunk adds child[2], parent, index.
_SMALL_FIELDS, _TREE_FIELDS = 16, 32
#: Bytes of the top chunk the allocator reads: prev_foot, head.
_TOP_FIELDS = 8

_u32 = struct.Struct("<I").unpack_from


@dataclass(frozen=True, slots=True)
class FreeMemoryOutcome:
    """What the step did: ``applied`` (the snapshot was changed) and a sentence saying what or why not."""

    applied: bool
    message: str


@dataclass(frozen=True, slots=True)
class OwnerState:
    """The snapshot of the core instance that owns the memory libc uses."""

    #: Its memory 0.
    memory: MemoryState
    #: The snapshot value of one of its module's globals (by index; None: the module's initial value).
    global_value: Callable[[int], int | None] = lambda index: None


def zero_free_memory(c: Component, owner_state: Callable[[int], OwnerState | str | None]) -> FreeMemoryOutcome:
    """Zero the payloads of dlmalloc's free chunks and top chunk in the snapshot of libc's memory, if recognised.

    ``owner_state(core_instance)`` gives the snapshot of a core instance, or
    None when the snapshot does not hold it (or a sentence saying why not). The memory state is changed in
    place only when the outcome says ``applied``.
    """
    users = {inst for e in c.core_instances for name, inst in e.args if name == LIBC}
    if not users:
        return FreeMemoryOutcome(False, f"free allocator memory: nothing to zero, no core instance is linked as `{LIBC}`")
    try:
        if len(users) > 1:
            raise _NotRecognised(f"{len(users)} core instances are linked as `{LIBC}`")
        memory, data, heap_base = _libc_layout(c, users.pop(), owner_state)
        flat = _flat(memory)
        ranges = free_ranges(flat, heap_base, data)
    except _NotRecognised as e:
        return FreeMemoryOutcome(False, f"free allocator memory was left as it is: {e}")
    zeroed = _zero(memory, flat, ranges)
    return FreeMemoryOutcome(
        True, f"free allocator memory zeroed: {zeroed:,} bytes of wasi-libc malloc's free chunks and top chunk"
    )


def _libc_layout(
    c: Component, libc: int, owner_state: Callable[[int], OwnerState | str | None]
) -> tuple[MemoryState, range, int]:
    """libc's memory in the snapshot, the range of its static data, and `__heap_base`."""
    entry = _instantiation(c, libc, f"`{LIBC}`")
    module = c.modules[c.at(Sort.CORE_MODULE, entry.module).section]  # type: ignore[arg-type]
    try:
        size = _dylink_memory_size(module)
    except _NotRecognised as e:  # its messages name the runtime library
        raise _NotRecognised(f"`{LIBC}` has no static data of its own described by `dylink.0`") from e
    args = dict(entry.args)
    env, got = _bundle(c, args.get("env")), _bundle(c, args.get("GOT.mem"))
    for name, items in (("memory", env), ("__memory_base", env), ("__heap_base", got)):
        sort = Sort.CORE_MEMORY if name == "memory" else Sort.CORE_GLOBAL
        if (name, sort) not in items:
            raise _NotRecognised(f"`{LIBC}` is not given `{name}` by its `env` and `GOT.mem` instances")
    owner, memory_name = _aliased_export(c, Sort.CORE_MEMORY, env["memory", Sort.CORE_MEMORY])
    sources = {
        _aliased_export(c, Sort.CORE_GLOBAL, env["__memory_base", Sort.CORE_GLOBAL]),
        _aliased_export(c, Sort.CORE_GLOBAL, got["__heap_base", Sort.CORE_GLOBAL]),
    }
    if {o for o, _ in sources} != {owner}:
        raise _NotRecognised("its memory, `__memory_base` and `__heap_base` do not all come from one core instance")
    owner_module = c.modules[c.at(Sort.CORE_MODULE, _instantiation(c, owner, "the memory's").module).section]  # type: ignore[arg-type]
    if owner_module.exports.get(memory_name) != (0x02, 0) or len(owner_module.memories) != 1 or owner_module.imported_memories:
        raise _NotRecognised("the memory's module does not define that one memory alone")
    snapshot = owner_state(owner)
    if snapshot is None or isinstance(snapshot, str):
        raise _NotRecognised(snapshot or "the memory it is linked to is not one this snapshot holds")

    def value(name: str) -> int:
        kind, index = owner_module.exports.get(name, (None, -1))
        g = next((g for g in owner_module.globals if g.index == index), None) if kind == 0x03 else None
        if g is None or g.valtype != 0x7F or g.init_bytes[:1] != b"\x41":
            raise _NotRecognised(f"`{name}` is not an i32 global with a constant initial value")
        taken = snapshot.global_value(index) if g.mutable else None
        if taken is not None:
            return taken
        r = Reader(memoryview(g.init_bytes), 1)
        v = r.s32() % (1 << 32)
        if r.u8() != 0x0B or not r.at_end():
            raise _NotRecognised(f"`{name}` is not a single i32 constant")
        return v

    (_, base_name), (_, heap_name) = (
        _aliased_export(c, Sort.CORE_GLOBAL, env["__memory_base", Sort.CORE_GLOBAL]),
        _aliased_export(c, Sort.CORE_GLOBAL, got["__heap_base", Sort.CORE_GLOBAL]),
    )
    base = value(base_name)
    return snapshot.memory, range(base, base + size), value(heap_name)


def _bundle(c: Component, instance: int | None) -> dict[tuple[str, int], int]:
    if instance is None:
        return {}
    return {(name, sort): index for name, sort, index in getattr(c.at(Sort.CORE_INSTANCE, instance).entry, "exports", ())}


def _flat(memory: MemoryState) -> bytearray:
    flat = bytearray(memory.pages * 65536)
    for start, data in memory.chunks:
        flat[start : start + len(data)] = data
    return flat


def free_ranges(memory: bytes | bytearray, heap_base: int, data: range) -> list[tuple[int, int]]:
    """The (start, end) payload ranges of every free chunk and of the top chunk of the dlmalloc heap at
    ``heap_base``, whose state lies in ``data``; raises ``_NotRecognised`` saying why when anything differs."""
    end = len(memory)

    def u(address: int) -> int:
        if not 0 <= address <= end - 4:
            raise _NotRecognised(f"address {address:#x} is outside the memory")
        return _u32(memory, address)[0]  # type: ignore[no-any-return]

    states = [
        a for a in range(data.start + (-data.start % 4), data.stop - _MSTATE_SIZE + 1, 4)
        # The state's lowest address; its top chunk and magic are never 0 once the heap is in use (which
        # also tells it apart from its own segment record seen 432 bytes further on).
        if _u32(memory, a + _LEAST_ADDR)[0] == heap_base and _u32(memory, a + _TOP)[0] and _u32(memory, a + _MAGIC)[0]
    ] if 0 <= data.start and data.stop <= end and heap_base else []  # fmt: skip
    if len(states) != 1:
        raise _NotRecognised(
            f"{len(states)} places in `{LIBC}`'s static data look like dlmalloc's state for the heap at "
            f"{heap_base:#x}, not exactly one"
        )
    (m,) = states
    top, topsize, dv, dvsize = u(m + _TOP), u(m + _TOPSIZE), u(m + _DV), u(m + _DVSIZE)
    segments, records = _segments(m, u)
    if heap_base not in {base for base, _ in segments}:
        raise _NotRecognised(f"none of its segments starts at the heap's start {heap_base:#x}")
    holding_top = [(base, seg_end) for base, seg_end in segments if base <= top < seg_end]
    if top == 0 or len(holding_top) != 1 or holding_top[0][1] > end or top + topsize + _TOP_FOOT != holding_top[0][1]:
        raise _NotRecognised("its top chunk does not end where its segment's footer starts")
    free: dict[int, int] = {}  # chunk address -> size
    for base, seg_end in segments:
        _walk(u, base, seg_end, top if base <= top < seg_end else None, records, free)
    if u(top + 4) != topsize | _PINUSE:
        raise _NotRecognised(f"the top chunk's header at {top:#x} does not hold its size")
    binned = _binned(m, u, free)
    if dvsize:
        if free.get(dv) != dvsize or dv in binned:
            raise _NotRecognised(f"its designated victim at {dv:#x} is not a free chunk of its recorded size outside the bins")
        binned.add(dv)
    if len(binned) != len(free):
        raise _NotRecognised(f"{len(free) - len(binned)} free chunks of the walk are in no bin")
    ranges = [(p + (_TREE_FIELDS if size >= _MIN_LARGE else _SMALL_FIELDS), p + size) for p, size in free.items()]
    ranges.append((top + _TOP_FIELDS, top + topsize))
    return [(a, b) for a, b in ranges if a < b]


def _segments(m: int, u: Callable[[int], int]) -> tuple[list[tuple[int, int]], set[int]]:
    """The (base, end) of each segment of the heap, and where the records of the older ones lie.

    The newest record is part of the state; each older one was pushed into a
    chunk at the end of the segment that held the top chunk when the heap
    had to take memory that did not continue it."""
    segments = [(u(m + _SEG_BASE), u(m + _SEG_BASE) + u(m + _SEG_SIZE))]
    records: set[int] = set()
    record = u(m + _SEG_NEXT)
    while record:
        if record in records or len(records) > _MAX_SEGMENTS:
            raise _NotRecognised("its list of segments does not end")
        records.add(record)
        segments.append((u(record), u(record) + u(record + 4)))
        record = u(record + 8)
    return segments, records


def _walk(
    u: Callable[[int], int], base: int, seg_end: int, top: int | None, records: set[int], free: dict[int, int]
) -> None:
    """Walk the chunks of one segment, adding its free chunks to ``free``: up to the top chunk in the segment
    that holds it, else up to the chunk holding a segment record and the fenceposts that end the segment."""
    p = base + (-(base + 8) % _ALIGN)
    previous_in_use = True
    stop = top if top is not None else seg_end
    while p != top:
        if p >= stop:
            raise _NotRecognised(f"the chunk walk passes the top chunk at {top:#x} (reached {p:#x})" if top is not None
                                 else f"the chunk walk of the segment at {base:#x} passes its end")  # fmt: skip
        head = u(p + 4)
        if top is None and head == _FENCEPOST_HEAD:
            _check_segment_end(u, p, seg_end, records, previous_in_use)
            return
        size = head & ~7
        if head & _FLAG4 or size < _MIN_CHUNK or size % _ALIGN:
            raise _NotRecognised(f"the chunk at {p:#x} has a header dlmalloc does not write ({head:#x})")
        if bool(head & _PINUSE) != previous_in_use:
            raise _NotRecognised(f"the chunk at {p:#x} disagrees with the chunk before it on whether that is in use")
        in_use = bool(head & _CINUSE)
        if not in_use:
            if not previous_in_use:
                raise _NotRecognised(f"two free chunks in a row at {p:#x}: dlmalloc merges them")
            if u(p + size) != size:
                raise _NotRecognised(f"the free chunk at {p:#x} has a footer that is not its size")
            free[p] = size
        previous_in_use = in_use
        p += size
    if not previous_in_use:
        raise _NotRecognised("a free chunk lies before the top chunk: dlmalloc merges them")


def _check_segment_end(u: Callable[[int], int], fence: int, seg_end: int, records: set[int], last_in_use: bool) -> None:
    """A segment that lost the top chunk ends with an in-use chunk holding a segment record, then fenceposts."""
    record_chunk = fence - _RECORD_CHUNK
    if not last_in_use or u(record_chunk + 4) & ~_PINUSE != _RECORD_CHUNK | _CINUSE or record_chunk + 8 not in records:
        raise _NotRecognised(f"the segment ending at {seg_end:#x} does not end with a segment record")
    # dlmalloc writes fenceposts 4 bytes apart until the next one's header would reach the end.
    posts = range(fence, max(fence, seg_end - 8 + (fence - seg_end) % 4) + 1, 4)
    if len(posts) < 2 or any(u(p + 4) != _FENCEPOST_HEAD for p in posts):
        raise _NotRecognised(f"the segment ending at {seg_end:#x} does not end with fenceposts")


def _binned(m: int, u: Callable[[int], int], free: dict[int, int]) -> set[int]:
    """The chunks the bins hold, each checked to be a free chunk of the walk in the right bin, once."""
    seen: set[int] = set()

    def take(p: int, where: str) -> None:
        if p not in free or p in seen:
            raise _NotRecognised(f"{where} holds {p:#x}, which is not a free chunk of the walk (or is held twice)")
        seen.add(p)

    def ring(head: int, where: str, check: Callable[[int], bool]) -> list[int]:
        """The chunks of a doubly linked ring from ``head`` (excluded), each link consistent."""
        members, p = [], head
        while True:
            q = u(p + 8)
            if u(q + 12) != p:
                raise _NotRecognised(f"{where}: the links at {p:#x} and {q:#x} do not agree")
            if q == head:
                return members
            if len(members) > len(free) or not check(q):
                raise _NotRecognised(f"{where} holds {q:#x}, which does not belong there")
            members.append(q)
            p = q

    smallmap, treemap = u(m + _SMALLMAP), u(m + _TREEMAP)
    for i in range(_NBINS):
        where = f"small bin {i}"
        # An empty small bin keeps stale links (dlmalloc only clears its bit), so only a marked one is walked.
        if smallmap >> i & 1:
            members = ring(m + _SMALLBINS + 8 * i, where, lambda q, i=i: free.get(q, 0) >> 3 == i)  # type: ignore[misc]
            if not members:
                raise _NotRecognised(f"{where} is empty but marked in the bin map")
            for q in members:
                take(q, where)
        root = u(m + _TREEBINS + 4 * i)
        if bool(root) != bool(treemap >> i & 1):
            raise _NotRecognised(f"tree bin {i} disagrees with the bin map")
        stack = [(root, m + _TREEBINS + 4 * i)] if root else []
        while stack:
            t, parent = stack.pop()
            where = f"tree bin {i}"
            take(t, where)
            if free[t] < _MIN_LARGE or u(t + 28) != i or u(t + 24) != parent:
                raise _NotRecognised(f"{where}: the tree chunk at {t:#x} has a size, index or parent that does not fit")
            for q in ring(t, where, lambda q, size=free[t]: free.get(q) == size):  # type: ignore[misc]
                take(q, where)
            stack += [(child, t) for child in (u(t + 16), u(t + 20)) if child]
    return seen


def _zero(memory: MemoryState, flat: bytearray, ranges: list[tuple[int, int]]) -> int:
    """Zero ``ranges`` in the snapshot (through ``flat``, a copy of it); the bytes that were not zero."""
    zeros = bytes(max(b - a for a, b in ranges))
    before = len(flat) - flat.count(0)
    for a, b in ranges:
        flat[a:b] = zeros[: b - a]
    memory.chunks[:] = [(start, bytes(flat[start : start + len(data)])) for start, data in memory.chunks]
    return before - (len(flat) - flat.count(0))
