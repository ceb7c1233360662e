"""What was read -> data segments and global initialisers for the rewritten modules."""

from __future__ import annotations

import bisect
import re

from .runtime import MemoryState
from .wasm.core_module import GlobalDef
from .wasm.reader import encode_s32, encode_s64, encode_u32

__all__ = ["data_segments", "global_init"]

#: A zero run shorter than this costs less inside a segment than a new segment's header.
MIN_GAP = 10
#: Engines refuse modules with more data segments than this (wasmparser: 100,000); stay well below.
MAX_SEGMENTS = 50_000

_GAP = re.compile(rb"\x00{%d,}" % MIN_GAP)


def _runs(chunks: list[tuple[int, bytes]]) -> list[tuple[int, int]]:
    """(start, end) byte ranges that hold every non-zero byte, with small gaps merged."""
    runs: list[tuple[int, int]] = []
    for base, data in chunks:
        pos = 0
        for gap in _GAP.finditer(data):
            if gap.start() > pos:
                runs.append((base + pos, base + gap.start()))
            pos = gap.end()
        if pos < len(data):
            runs.append((base + pos, base + len(data)))
    return runs


def _cap(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(runs) <= MAX_SEGMENTS:
        return runs
    # Keep the largest gaps as segment boundaries; close the others.
    gaps = sorted(range(1, len(runs)), key=lambda i: (runs[i][0] - runs[i - 1][1], -i), reverse=True)
    keep = set(gaps[: MAX_SEGMENTS - 1])
    merged = [runs[0]]
    for i in range(1, len(runs)):
        if i in keep:
            merged.append(runs[i])
        else:
            merged[-1] = (merged[-1][0], runs[i][1])
    return merged


def data_segments(memory_index: int, is64: bool, state: MemoryState) -> list[bytes]:
    """Active data segments that recreate ``state`` in a zero-filled memory."""
    segments = []
    lookup = {base: data for base, data in state.chunks}
    bases = sorted(lookup)

    for start, end in _cap(_runs(state.chunks)):
        k = bisect.bisect_right(bases, start) - 1
        base = bases[k]
        data = lookup[base][start - base : end - base]
        head = b"\x00" if memory_index == 0 else b"\x02" + encode_u32(memory_index)
        if is64:
            offset = b"\x42" + encode_s64(start - (1 << 64) if start >= 1 << 63 else start)
        else:
            offset = b"\x41" + encode_s32(start - (1 << 32) if start >= 1 << 31 else start)
        segments.append(head + offset + b"\x0b" + encode_u32(len(data)) + data)
    return segments


_CONST_OP = {0x7F: b"\x41", 0x7E: b"\x42", 0x7D: b"\x43", 0x7C: b"\x44", 0x7B: b"\xfd\x0c"}


def global_init(g: GlobalDef, value: bytes) -> bytes:
    """A constant expression producing ``value`` (the global's little-endian bytes)."""
    if g.valtype == 0x7F:
        return b"\x41" + encode_s32(int.from_bytes(value, "little", signed=True)) + b"\x0b"
    if g.valtype == 0x7E:
        return b"\x42" + encode_s64(int.from_bytes(value, "little", signed=True)) + b"\x0b"
    return _CONST_OP[g.valtype] + value + b"\x0b"
