"""What was read -> data segments and global initialisers for the rewritten modules."""

from __future__ import annotations

import bisect
import re

from .state import MemoryState
from .wasm.core_module import GlobalDef
from .wasm.reader import encode_s32, encode_s64, encode_u32

__all__ = ["data_segments", "global_init"]

#: A zero run shorter than this costs less inside a segment than a new segment's header.
MIN_GAP = 10
#: Engines refuse modules with more data segments than this (wasmparser: 100,000); stay well below.
MAX_SEGMENTS = 50_000
# Every chunk is a run of whole non-zero pages, so a chunk has fewer than one segment per
# 10 bytes; with pages of 64 KiB no threshold list can fail to find a gap length under the cap
# for memories up to 50,000 non-zero page runs, which is 3 GiB of alternating pages.

# Gap lengths tried, shortest first: the shortest that keeps the segment count under the
# cap wins (longer gaps merged instead means a few more zero bytes in the output).
_THRESHOLDS = (MIN_GAP, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024, 4096, 16384, 65536)
# Non-zero bytes -> 1: a gap of at least n zeros is then the substring 1 0{n}, which
# `bytes.count` and `bytes.find` locate at C speed.
_NONZERO_TO_ONE = bytes([0] + [1] * 255)


def _runs(chunks: list[tuple[int, bytes]]) -> list[tuple[int, int]]:
    """(start, end) byte ranges that hold every non-zero byte, with gaps too small to split merged."""
    # A leading 1 makes a gap at the very start of a chunk look like any other.
    marked = [b"\x01" + data.translate(_NONZERO_TO_ONE) + b"\x01" for _, data in chunks]
    gap = b"\x01" + b"\x00" * _THRESHOLDS[-1]
    for n in _THRESHOLDS:
        candidate = b"\x01" + b"\x00" * n
        if sum(m.count(candidate) + 1 for m in marked) <= MAX_SEGMENTS:
            gap = candidate
            break
    runs: list[tuple[int, int]] = []
    for (base, data), m in zip(chunks, marked):
        # Index i of `m` is byte i - 1 of `data`; m[0] and m[-1] are sentinels.
        last = len(m) - 1
        pos = m.find(b"\x01", 1)
        while pos < last:
            g = m.find(gap, pos)  # m[g] is the last non-zero byte before a long gap
            if g < 0:
                runs.append((base + pos - 1, base + len(data.rstrip(b"\x00"))))
                break
            runs.append((base + pos - 1, base + g))
            pos = m.find(b"\x01", g + len(gap))
    return runs


def data_segments(memory_index: int, is64: bool, state: MemoryState) -> list[bytes]:
    """Active data segments that recreate ``state`` in a zero-filled memory."""
    segments = []
    lookup = {base: data for base, data in state.chunks}
    bases = sorted(lookup)

    for start, end in _runs(state.chunks):
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
