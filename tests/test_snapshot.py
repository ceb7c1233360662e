"""Snapshot encoding: data segments recreate memory exactly, within the segment cap."""

from __future__ import annotations

import random

import pytest

from hatch_component_init import snapshot
from hatch_component_init.state import MemoryState
from hatch_component_init.wasm.reader import Reader


def _decode(segments: list[bytes]) -> list[tuple[int, bytes]]:
    out = []
    for seg in segments:
        r = Reader(memoryview(seg))
        assert r.u32() == 0  # active, memory 0
        assert r.u8() == 0x41
        offset = r.s32() & 0xFFFFFFFF
        assert r.u8() == 0x0B
        out.append((offset, bytes(r.take(r.u32()))))
        assert r.at_end()
    return out


def _rebuild(size: int, segments: list[bytes]) -> bytes:
    mem = bytearray(size)
    for offset, data in _decode(segments):
        mem[offset : offset + len(data)] = data
    return bytes(mem)


def _random_state(rng: random.Random, pages: int) -> tuple[MemoryState, bytes]:
    mem = bytearray(pages * 65536)
    for _ in range(rng.randint(0, 300)):
        at = rng.randrange(len(mem))
        run = bytes(rng.choice([0, 0, rng.randint(1, 255)]) for _ in range(rng.randint(1, 200)))
        mem[at : at + len(run)] = run[: len(mem) - at]
    chunks = []
    page = 0
    while page < pages:
        if any(mem[page * 65536 : (page + 1) * 65536]):
            end = page
            while end < pages and any(mem[end * 65536 : (end + 1) * 65536]):
                end += 1
            chunks.append((page * 65536, bytes(mem[page * 65536 : end * 65536])))
            page = end
        else:
            page += 1
    return MemoryState(pages, chunks), bytes(mem)


@pytest.mark.parametrize("seed", range(20))
def test_segments_recreate_memory(seed: int) -> None:
    rng = random.Random(seed)
    state, mem = _random_state(rng, rng.randint(1, 6))
    segments = snapshot.data_segments(0, False, state)
    assert _rebuild(len(mem), segments) == mem
    decoded = _decode(segments)
    # Segments are sorted, disjoint, start and end on non-zero bytes, and split at every long gap.
    for (a, da), (b, _) in zip(decoded, decoded[1:]):
        assert a + len(da) < b
        assert mem[a + len(da) : b].count(0) == b - a - len(da) >= snapshot.MIN_GAP
    for offset, data in decoded:
        assert data[0] != 0 and data[-1] != 0
        assert b"\x00" * snapshot.MIN_GAP not in data


def test_segment_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "MAX_SEGMENTS", 40)
    mem = bytearray(65536)
    for i in range(0, 65536, 50):  # 1,311 runs separated by 49 zero bytes
        mem[i] = 1
    state = MemoryState(1, [(0, bytes(mem))])
    segments = snapshot.data_segments(0, False, state)
    assert len(segments) <= 40
    assert _rebuild(65536, segments) == bytes(mem)


def test_offsets_above_2_gib_wrap_as_i32() -> None:
    state = MemoryState(40000, [(3 << 30, b"\x07" * 4)])
    (seg,) = snapshot.data_segments(0, False, state)
    assert _decode([seg]) == [(3 << 30, b"\x07" * 4)]


# A memory64 address is unsigned but its i64.const is signed: addresses from exactly 2**63 to the
# last bytes of a 2**64-byte memory are written as negative constants.
@pytest.mark.parametrize("offset", [16, (1 << 63) - 3, 1 << 63, (1 << 64) - 3])
def test_memory64_and_other_memory_indices(offset: int) -> None:
    state = MemoryState(1 << 48, [(offset, b"\x05\x00\x06")])
    (seg,) = snapshot.data_segments(2, True, state)
    r = Reader(memoryview(seg))
    # s64 refuses an offset encoded past the signed range, as a validator does.
    assert (r.u32(), r.u32(), r.u8(), r.s64() & ((1 << 64) - 1), r.u8()) == (2, 2, 0x42, offset, 0x0B)
    assert bytes(r.take(r.u32())) == b"\x05\x00\x06"
    assert r.at_end()


def test_memory64_runs_merged_down_to_the_limit_keep_i64_offsets() -> None:
    # Two runs more than the longest gap length apart at a limit of 1: the merging path writes the segment.
    mem = bytearray(3 * 65536)
    mem[10], mem[-1] = 1, 2
    (seg,) = snapshot.data_segments(2, True, MemoryState(3, [(0, bytes(mem))]), limit=1)
    r = Reader(memoryview(seg))
    assert (r.u32(), r.u32(), r.u8(), r.s64(), r.u8()) == (2, 2, 0x42, 10, 0x0B)
    assert bytes(r.take(r.u32())) == bytes(mem[10:])
    assert r.at_end()


def _decode_any(segments: list[bytes]) -> list[tuple[int, int, bytes]]:
    """(memory index, offset, bytes) of active segments for any memory."""
    out = []
    for seg in segments:
        r = Reader(memoryview(seg))
        flags = r.u32()
        memory = 0 if flags == 0 else r.u32()
        assert r.u8() == 0x41
        offset = r.s32() & 0xFFFFFFFF
        assert r.u8() == 0x0B
        out.append((memory, offset, bytes(r.take(r.u32()))))
        assert r.at_end()
    return out


def _rebuild_all(sizes: dict[int, int], segments: list[bytes]) -> dict[int, bytes]:
    mems = {index: bytearray(size) for index, size in sizes.items()}
    for memory, offset, data in _decode_any(segments):
        mems[memory][offset : offset + len(data)] = data
    return {index: bytes(mem) for index, mem in mems.items()}


def _state(mem: bytes) -> MemoryState:
    pages = len(mem) // 65536
    chunks = [(p * 65536, mem[p * 65536 : (p + 1) * 65536]) for p in range(pages) if any(mem[p * 65536 : (p + 1) * 65536])]
    return MemoryState(pages, chunks)


def test_memories_of_a_module_share_one_limit() -> None:
    mems = {}
    for index, step in ((0, 50), (3, 70)):
        mem = bytearray(65536)
        mem[::step] = b"\x05" * len(mem[::step])  # 1,311 and 937 runs
        mems[index] = bytes(mem)
    segments = snapshot.module_segments([(i, False, _state(m)) for i, m in mems.items()], 1_000)
    assert len(segments) <= 1_000
    assert {memory for memory, _, _ in _decode_any(segments)} == {0, 3}
    assert _rebuild_all({i: len(m) for i, m in mems.items()}, segments) == mems


def test_runs_merge_across_zero_pages_below_the_page_run_count() -> None:
    # Eight non-zero pages with zero pages between them (eight chunks); a limit of 3 can only be
    # met with segments that span zero pages. Page 8's byte sits at its end: the gap before it is
    # the longest, the one after it the shortest; equal gaps close earliest first.
    mem = bytearray(16 * 65536)
    for page in range(0, 16, 2):
        mem[page * 65536 + 7] = page + 1
    mem[8 * 65536 + 7] = 0
    mem[9 * 65536 - 1] = 99
    state = _state(bytes(mem))
    assert len(state.chunks) == 8
    segments = snapshot.data_segments(0, False, state, limit=3)
    assert [offset for offset, _ in _decode(segments)] == [7, 9 * 65536 - 1, 14 * 65536 + 7]
    assert _rebuild(len(mem), segments) == bytes(mem)
    with pytest.raises(ValueError):
        snapshot.module_segments([(0, False, state), (1, False, state)], 1)


@pytest.mark.parametrize(("limit", "count", "passes"), [(40, 40, 1), (39, 1, 2)])
def test_segment_count_is_exact_at_the_limit(monkeypatch: pytest.MonkeyPatch, limit: int, count: int, passes: int) -> None:
    # 40 runs separated by 10 zeros, with zeros at both ends of the chunk: exactly 40 segments
    # fit a limit of 40 without merging any gap; under 39 the next length (12) makes one segment.
    # A heap that fits at the first or second length costs one pass over memory per length, the
    # shortest first, where a bisection of the list would take five.
    mem = bytearray(65536)
    for i in range(40):
        mem[100 + 11 * i] = 1
    tried: list[int] = []
    count_runs = snapshot._count_runs

    def counting(marked: bytes, gap: bytes) -> int:
        tried.append(len(gap) - 1)
        return count_runs(marked, gap)

    monkeypatch.setattr(snapshot, "_count_runs", counting)
    segments = snapshot.data_segments(0, False, _state(bytes(mem)), limit=limit)
    assert len(segments) == count
    assert tried == list(snapshot._THRESHOLDS[:passes])
    assert _rebuild(65536, segments) == bytes(mem)


def test_runs_merge_only_when_even_the_longest_gap_length_does_not_fit() -> None:
    # One chunk of two pages: three runs 19,999 zeros apart, then one 91,030 zeros further. Every
    # listed length up to 16384 leaves four runs, over a limit of 3; 65536 leaves two, which fit:
    # no gap is merged (merging four runs down to the limit would keep three segments).
    mem = bytearray(2 * 65536)
    for at in (0, 20000, 40000, len(mem) - 1):
        mem[at] = 1
    segments = snapshot.data_segments(0, False, MemoryState(2, [(0, bytes(mem))]), limit=3)
    assert [offset for offset, _ in _decode(segments)] == [0, len(mem) - 1]
    assert _rebuild(len(mem), segments) == bytes(mem)


@pytest.mark.parametrize("seed", range(10))
def test_any_limit_recreates_memory(seed: int) -> None:
    rng = random.Random(seed)
    state, mem = _random_state(rng, rng.randint(1, 6))
    limit = rng.randint(1, 30)
    segments = snapshot.data_segments(0, False, state, limit=limit)
    assert len(segments) <= limit
    assert _rebuild(len(mem), segments) == mem


@pytest.mark.parametrize("shift", range(32))
def test_segment_offsets_are_minimal_signed_leb128(shift: int) -> None:
    """The unrolled offset encoder agrees with the general one at every length boundary."""
    from hatch_component_init.wasm.reader import encode_s32

    for value in {(1 << shift) - 1, 1 << shift, (1 << shift) + 1}:
        if 0 <= value < 1 << 31:
            assert snapshot._nonnegative_s32(value) == encode_s32(value)


@pytest.mark.parametrize("seed", range(12))
def test_the_shortest_gap_length_that_fits_the_limit_splits_the_segments(seed: int) -> None:
    """Segments split at every zero run of the shortest listed length under which they fit the
    limit: each gap between two segments is at least that long, and the next shorter length
    would have made too many segments."""
    rng = random.Random(seed)
    state, mem = _random_state(rng, rng.randint(1, 6))
    marked = [data.translate(snapshot._NONZERO_TO_ONE) for _, data in state.chunks]

    def count(length: int) -> int:
        return sum(snapshot._count_runs(m, b"\x01" + b"\x00" * length) for m in marked)

    counts = [count(length) for length in snapshot._THRESHOLDS]
    limit = rng.choice([c for c in counts if c > 0] or [1])
    chosen = next(i for i, c in enumerate(counts) if c <= limit)
    segments = snapshot.data_segments(0, False, state, limit=limit)
    assert len(segments) == counts[chosen]
    decoded = _decode(segments)
    for (a, da), (b, _) in zip(decoded, decoded[1:]):
        assert b - a - len(da) >= snapshot._THRESHOLDS[chosen]
    assert _rebuild(len(mem), segments) == mem


def test_runs_merge_across_the_smallest_gap_not_the_shortest_next_run() -> None:
    # Gaps of 2 and 10 bytes; the run after the small gap is long, the one after the large gap short.
    runs = [(0, 0, 1), (0, 3, 100), (0, 110, 111)]
    assert snapshot._merge_smallest_gaps(runs, 2) == [(0, 0, 100), (0, 110, 111)]


def test_runs_merge_into_one_per_memory_at_most() -> None:
    runs = [(0, 0, 1), (0, 3, 4), (0, 8, 9), (1, 0, 5)]
    # Exactly as many merges as gaps within memories: one run per memory.
    assert snapshot._merge_smallest_gaps(runs, 2) == [(0, 0, 9), (1, 0, 5)]
    with pytest.raises(ValueError, match=r"^2 memories hold data but the segment limit is 1$"):
        snapshot._merge_smallest_gaps(runs, 1)


def test_a_span_over_several_chunks_has_zeros_between_them() -> None:
    chunks = [(0, b"a"), (10, b"b"), (20, b"cc"), (30, b"d")]
    bases = [base for base, _ in chunks]
    assert bytes(snapshot._span(chunks, bases, 10, 31)) == b"b" + bytes(9) + b"cc" + bytes(8) + b"d"
    assert bytes(snapshot._span(chunks, bases, 21, 22)) == b"c"
    assert bytes(snapshot._span(chunks, bases, 20, 22)) == b"cc"


@pytest.mark.parametrize(("zeros_after", "runs"), [(0, 2), (9, 2), (10, 2), (11, 2)])
def test_runs_are_counted_whatever_zeros_end_the_chunk(zeros_after: int, runs: int) -> None:
    # Two runs ten zeros apart; the zeros that end the chunk (fewer, as many or more than a gap)
    # separate the last run from nothing.
    marked = b"\x01" + b"\x00" * 10 + b"\x01" + b"\x00" * zeros_after
    assert snapshot._count_runs(marked, b"\x01" + b"\x00" * 10) == runs
