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


def test_memory64_and_other_memory_indices() -> None:
    state = MemoryState(1, [(16, b"\x05\x00\x06")])
    (seg,) = snapshot.data_segments(2, True, state)
    r = Reader(memoryview(seg))
    assert (r.u32(), r.u32(), r.u8(), r.s64(), r.u8()) == (2, 2, 0x42, 16, 0x0B)
