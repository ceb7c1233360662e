"""What was read -> data segments and global initialisers for the rewritten modules."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from .state import MemoryState
from .wasm.core_module import GlobalDef
from .wasm.reader import encode_s32, encode_s64, encode_u32

__all__ = [
    "ENGINE_LIMIT", "MAX_SEGMENTS", "data_segments", "global_init", "module_segments", "segment_budget", "segment_head",
]  # fmt: skip

#: A zero run shorter than this costs less inside a segment than a new segment's header.
MIN_GAP = 10
#: Engines refuse modules with more data segments than this (wasmparser: 100,000).
ENGINE_LIMIT = 100_000
#: The data segments of a rewritten module, the ones it keeps included, stay at or under this:
#: well below the engine limit, at any depth of chained pre-initialization.
MAX_SEGMENTS = 50_000
#: The snapshot gets at least this many segments even when a module keeps nearly MAX_SEGMENTS.
MIN_BUDGET = 1_000
# Every chunk is a run of whole non-zero pages, so a chunk has fewer than one segment per
# 10 bytes; with pages of 64 KiB the threshold list finds a gap length under a cap of 50,000
# for memories up to 50,000 non-zero page runs (3 GiB of alternating pages). Beyond that, or
# under a smaller budget, runs are merged across their smallest gaps (zeros included).

# Gap lengths tried, shortest first: the shortest that keeps the segment count under the
# cap wins (longer gaps merged instead means a few more zero bytes in the output).
_THRESHOLDS = (MIN_GAP, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024, 4096, 16384, 65536)
# Non-zero bytes -> 1: a gap of at least n zeros is then the substring 1 0{n}, which
# `bytes.count` and `bytes.find` locate at C speed.
_NONZERO_TO_ONE = bytes([0] + [1] * 255)

_Memory = tuple[int, bool, MemoryState]  # (memory index, is 64-bit, contents)


def segment_budget(kept: int) -> int:
    """How many snapshot segments a module may get on top of the ``kept`` segments it already has."""
    return min(max(MAX_SEGMENTS - kept, MIN_BUDGET), ENGINE_LIMIT - kept)


def _count_runs(marked: bytes, gap: bytes) -> int:
    """How many runs ``gap`` splits a marked chunk into: one, plus one per gap between non-zero bytes."""
    # Each occurrence of `gap` follows a non-zero byte; the one at the very end (if the chunk ends
    # in enough zeros) separates the last run from nothing.
    return marked.count(gap) + 1 - marked.endswith(gap[1:])


def _gap_length(marked: list[bytes], limit: int) -> tuple[int, bool]:
    """The shortest listed gap length under which the marked chunks split into at most ``limit`` runs,
    and True; the longest listed and False if none does."""
    # Longer gaps split less, so the count falls as n grows. Find the shortest that fits by
    # galloping from the shortest (a componentize-py heap fits at the first or second, so this
    # takes one or two passes over the memory where a plain bisection takes five), then bisecting.

    known: dict[int, bool] = {}

    def fits(index: int) -> bool:
        if index not in known:
            candidate = b"\x01" + b"\x00" * _THRESHOLDS[index]
            known[index] = sum(_count_runs(m, candidate) for m in marked) <= limit
        return known[index]

    longest = len(_THRESHOLDS) - 1
    low, high, step = 0, 0, 1
    while high < longest and not fits(high):
        low, high, step = high + 1, min(high + step, longest), step * 2
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return _THRESHOLDS[low], fits(low)


def _chunk_runs(marked: bytes, gap: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) ranges of one marked chunk that hold all its non-zero bytes, split at each ``gap``."""
    find = marked.find
    skip = len(gap)
    pos = find(b"\x01")
    while pos >= 0:
        g = find(gap, pos)  # marked[g] is the last non-zero byte before a long gap
        if g < 0:
            yield pos, marked.rfind(b"\x01") + 1
            return
        yield pos, g + 1
        pos = find(b"\x01", g + skip)


def _merge_smallest_gaps(runs: list[tuple[int, int, int]], limit: int) -> list[tuple[int, int, int]]:
    """Merge (memory slot, start, end) runs across their smallest gaps (earliest first on ties) until ``limit`` remain."""
    gaps = sorted((b[1] - a[2], i) for i, (a, b) in enumerate(zip(runs, runs[1:])) if a[0] == b[0])
    excess = len(runs) - limit
    if excess > len(gaps):
        raise ValueError(f"{len(runs) - len(gaps)} memories hold data but the segment limit is {limit}")
    closed = {i for _, i in gaps[:excess]}
    merged: list[tuple[int, int, int]] = []
    for i, run in enumerate(runs):
        if i - 1 in closed:
            merged[-1] = (run[0], merged[-1][1], run[2])
        else:
            merged.append(run)
    return merged


def _span(chunks: list[tuple[int, bytes]], bases: list[int], start: int, end: int) -> bytes | memoryview:
    """Memory bytes [start, end): chunk contents, zeros between chunks (a view where one chunk holds them)."""
    k = bisect.bisect_right(bases, start) - 1
    base, data = chunks[k]
    if end <= base + len(data):
        return memoryview(data)[start - base : end - base]
    parts: list[bytes | memoryview] = []
    pos = start
    while pos < end:
        base, data = chunks[k]
        if pos < base:
            parts.append(bytes(base - pos))
            pos = base
        stop = min(end, base + len(data))
        parts.append(data[pos - base : stop - base])
        pos = stop
        k += 1
    return b"".join(parts)


def module_segments(memories: Sequence[_Memory], limit: int | None = None) -> list[bytes]:
    """Active data segments that recreate every memory in ``memories`` from zeros, at most ``limit`` of them.

    The memories share the limit (default :data:`MAX_SEGMENTS`); it must be at
    least the number of memories that hold a non-zero byte.
    """
    limit = MAX_SEGMENTS if limit is None else limit
    ordered = [sorted(state.chunks, key=lambda chunk: chunk[0]) for _, _, state in memories]
    # One gap length for all memories: they share the limit.
    slots = [slot for slot, chunks in enumerate(ordered) for _ in chunks]
    chunks = [chunk for chunks in ordered for chunk in chunks]
    marked = [data.translate(_NONZERO_TO_ONE) for _, data in chunks]
    length, fitting = _gap_length(marked, limit)
    gap = b"\x01" + b"\x00" * length
    if fitting:
        segments: list[bytes] = []
        for slot, (base, data), m in zip(slots, chunks, marked):
            memory_index, is64, _ = memories[slot]
            _encode_runs(memory_index, is64, base, data, _chunk_runs(m, gap), segments)
        return segments
    merged = _merge_smallest_gaps(
        [(slot, base + start, base + end) for slot, (base, _), m in zip(slots, chunks, marked)
         for start, end in _chunk_runs(m, gap)],
        limit,
    )  # fmt: skip
    bases = [[base for base, _ in chunks] for chunks in ordered]
    join = b"".join
    out = []
    for slot, start, end in merged:
        memory_index, is64, _ = memories[slot]
        head = segment_head(memory_index, is64, start, end - start)
        out.append(join((head, _span(ordered[slot], bases[slot], start, end))))
    return out


def _encode_runs(
    memory_index: int, is64: bool, base: int, data: bytes, runs: Iterable[tuple[int, int]], out: list[bytes]
) -> None:
    """Append a segment for each (start, end) run of one chunk at ``base``: one copy of its bytes, no more."""
    view = memoryview(data)
    for start, end in runs:
        out.append(segment_head(memory_index, is64, base + start, end - start) + view[start:end])


def segment_head(memory_index: int, is64: bool, offset: int, size: int) -> bytes:
    """Everything of an active data segment before its bytes: memory, constant offset (the
    unsigned address ``offset``), and the size of the data."""
    head = b"\x00" if memory_index == 0 else b"\x02" + encode_u32(memory_index)
    if is64:
        const = b"\x42" + encode_s64(offset - (1 << 64) if offset >= 1 << 63 else offset)
    elif offset < 1 << 31:
        const = b"\x41" + _nonnegative_s32(offset)
    else:
        const = b"\x41" + encode_s32(offset - (1 << 32))
    return head + const + b"\x0b" + encode_u32(size)


def _nonnegative_s32(v: int) -> bytes:
    """Signed LEB128 of 0 <= v < 2**31, unrolled: it runs once per segment."""
    if v < 1 << 6:
        return bytes((v,))
    if v < 1 << 13:
        return bytes((v & 0x7F | 0x80, v >> 7))
    if v < 1 << 20:
        return bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14))
    if v < 1 << 27:
        return bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14 & 0x7F | 0x80, v >> 21))
    return bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14 & 0x7F | 0x80, v >> 21 & 0x7F | 0x80, v >> 28))


def data_segments(memory_index: int, is64: bool, state: MemoryState, limit: int | None = None) -> list[bytes]:
    """Active data segments that recreate ``state`` in a zero-filled memory."""
    return module_segments([(memory_index, is64, state)], limit)


_CONST_OP = {0x7F: b"\x41", 0x7E: b"\x42", 0x7D: b"\x43", 0x7C: b"\x44", 0x7B: b"\xfd\x0c"}


def global_init(g: GlobalDef, value: bytes) -> bytes:
    """A constant expression producing ``value`` (the global's little-endian bytes)."""
    if g.valtype == 0x7F:
        return b"\x41" + encode_s32(int.from_bytes(value, "little", signed=True)) + b"\x0b"
    if g.valtype == 0x7E:
        return b"\x42" + encode_s64(int.from_bytes(value, "little", signed=True)) + b"\x0b"
    return _CONST_OP[g.valtype] + value + b"\x0b"
