"""Find instructions that mutate tables, or that use data segments, in the code section of a core module.

Pre-initialization snapshots memories and globals, but it cannot snapshot
tables, so a module whose code can change a table must be refused. This module
answers "which function, if any, contains a table-mutating instruction?"
quickly enough for ~10 MB of code (CPython compiled to WebAssembly). The same
machinery answers "which data segments can code still reach?" (through
``memory.init``, ``data.drop``, ``array.new_data``, ``array.init_data``), so
that the rewrite can drop the segments nothing uses:

1. A byte-level pre-filter (one compiled regex, C speed) skips every function
   body that cannot contain a mutating opcode because the opcode byte (or, for
   the ``0xFC``/``0xFE`` prefixed ones, the prefix and the first byte of the
   sub-opcode LEB) never occurs in it.
2. A body that passes the filter is a *candidate*: the byte may just be part of
   an immediate (``i32.const 38`` is ``41 26``), so it is decoded instruction
   by instruction.  Decoding alternates between a second regex that skips runs
   of "plain" instructions at C speed and a table-driven Python decoder for
   everything else: the watched instructions themselves, instructions whose
   immediates are counted vectors (``br_table``, ``try_table``, ...) and
   non-canonical encodings.

Both decoders are generated from the one opcode table below, so they cannot
disagree about the size of an immediate.  This is not a validator (wasmtime
validates the module when it compiles it); it checks only what it needs to
stay in step with the instruction stream: known opcodes, LEB128 lengths and
that nothing runs past the end of a body.

Opcode assignments follow the WebAssembly 3.0 binary format and the later
proposals: threads, relaxed SIMD, legacy exception handling, stack switching,
shared-everything threads and wide arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..errors import InvalidComponentError
from .reader import encode_u32

__all__ = ["find_data_references", "find_table_mutation"]


def find_table_mutation(code_section: memoryview | bytes, first_func_index: int, base: int = 0) -> tuple[int, str] | None:
    """Return (function index, instruction name) of the first table-mutating instruction in the code section payload, or None.

    ``code_section`` is the payload of the code section (id 10): a u32 count,
    then each body as (u32 size, locals, expression).  Body ``i`` is function
    ``first_func_index + i`` because imported functions come first in the
    function index space.

    Raises :class:`InvalidComponentError` when the section, or a candidate
    body, is malformed, at ``base`` (the payload's offset in the file) plus
    the offset in ``code_section``.
    Bodies the pre-filter skips are not decoded, so they are not checked.
    """
    # One copy up front: indexing and slicing ``bytes`` is the fastest option,
    # and it also accepts memoryviews of any format and bytearrays.
    data = code_section if type(code_section) is bytes else bytes(code_section)
    try:
        return _scan_section(data, first_func_index)
    except _Malformed as err:
        raise InvalidComponentError(err.message, base + err.pos) from None


def find_data_references(code_section: memoryview | bytes, base: int = 0) -> frozenset[int]:
    """Return the data segment indices that instructions in the code section payload name.

    Same input and errors as :func:`find_table_mutation`; every body the
    pre-filter lets through is decoded to its end.
    """
    data = code_section if type(code_section) is bytes else bytes(code_section)
    try:
        return frozenset(_data_indices_in_section(data))
    except _Malformed as err:
        raise InvalidComponentError(err.message, base + err.pos) from None


class _Malformed(Exception):
    """Decoding failed at ``pos``, relative to the buffer being decoded."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message, pos)
        self.message = message
        self.pos = pos


# --------------------------------------------------------------------------
# Readers.  Each takes the buffer and a position and returns the position just
# after what it read.  They index ``data`` without bounds checks: running off
# the end raises IndexError, which the body decoder turns into "unexpected end
# of function body" (a candidate body is decoded from its own slice, so its end
# is the end of the buffer).  Fixed-size immediates cannot raise IndexError;
# the decoder compares the returned position with the end instead.
# --------------------------------------------------------------------------


def _skip_leb(data: bytes, pos: int, max_len: int) -> int:
    """Skip a LEB128 number of at most ``max_len`` bytes."""
    for i in range(pos, pos + max_len):
        if data[i] < 0x80:
            return i + 1
    raise _Malformed("integer representation too long", pos)


def _read_u32(data: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned LEB128 of at most 5 bytes; return (value, new position)."""
    result = 0
    shift = 0
    for i in range(pos, pos + 5):
        byte = data[i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i + 1
        shift += 7
    raise _Malformed("integer representation too long", pos)


def _skip_nothing(data: bytes, pos: int) -> int:
    return pos


def _skip_u32(data: bytes, pos: int) -> int:
    return _skip_leb(data, pos, 5)


def _skip_u32_u32(data: bytes, pos: int) -> int:
    return _skip_leb(data, _skip_leb(data, pos, 5), 5)


def _skip_s64(data: bytes, pos: int) -> int:
    return _skip_leb(data, pos, 10)


def _skipper_fixed(size: int) -> Callable[[bytes, int], int]:
    """Skip ``size`` raw bytes (float constants, v128 constants, lane indices)."""

    def skip(data: bytes, pos: int) -> int:
        return pos + size

    return skip


def _skip_zero_byte(data: bytes, pos: int) -> int:
    # atomic.fence has one reserved byte that must be zero.
    if data[pos] != 0:
        raise _Malformed("nonzero byte after `atomic.fence`", pos)
    return pos + 1


def _skip_memarg(data: bytes, pos: int) -> int:
    start = pos
    flags, pos = _read_u32(data, pos)
    if flags & 0x40:
        # Multi-memory: bit 6 of the alignment field says a memory index follows.
        pos = _skip_leb(data, pos, 5)
    if flags >= 0x80:
        raise _Malformed("malformed memop alignment", start)
    return _skip_leb(data, pos, 10)  # the offset is a u64 with memory64


def _skip_memarg_lane(data: bytes, pos: int) -> int:
    return _skip_memarg(data, pos) + 1


_ABSTRACT_HEAP_TYPES = frozenset(range(0x68, 0x76))  # cont .. nocont, including func 0x70, extern 0x6F
_SINGLE_BYTE_VALTYPES = _ABSTRACT_HEAP_TYPES | frozenset(range(0x7B, 0x80))  # + v128 f64 f32 i64 i32


def _skip_type_index_s33(data: bytes, pos: int) -> int:
    """Skip a type index written as a non-negative s33 (block types, heap types)."""
    end = _skip_leb(data, pos, 5)
    if data[end - 1] & 0x40:  # sign bit of the last byte: negative values are type codes
        raise _Malformed("invalid type", pos)
    return end


def _skip_abstract_heap_type(data: bytes, pos: int) -> int:
    if data[pos] not in _ABSTRACT_HEAP_TYPES:
        raise _Malformed("invalid heap type", pos)
    return pos + 1


def _skip_heap_type(data: bytes, pos: int) -> int:
    byte = data[pos]
    if byte in _ABSTRACT_HEAP_TYPES:
        return pos + 1
    if byte < 0x40 or byte >= 0x80:
        return _skip_type_index_s33(data, pos)
    if byte == 0x65:  # shared-everything threads: `shared` + abstract heap type
        return _skip_abstract_heap_type(data, pos + 1)
    if byte == 0x62:  # custom descriptors: `exact` + type index
        return _skip_u32(data, pos + 1)
    raise _Malformed("invalid heap type", pos)


def _skip_valtype(data: bytes, pos: int) -> int:
    byte = data[pos]
    if byte in _SINGLE_BYTE_VALTYPES:
        return pos + 1
    if byte == 0x63 or byte == 0x64:  # (ref null ht) / (ref ht)
        return _skip_heap_type(data, pos + 1)
    if byte == 0x65:  # shared abstract reference type
        return _skip_abstract_heap_type(data, pos + 1)
    raise _Malformed("invalid value type", pos)


def _skip_block_type(data: bytes, pos: int) -> int:
    # 0x40 (empty), a value type (negative when read as s33), or a type index
    # (non-negative s33): the first byte tells which.
    byte = data[pos]
    if byte == 0x40:
        return pos + 1
    if byte < 0x40 or byte >= 0x80:
        return _skip_type_index_s33(data, pos)
    return _skip_valtype(data, pos)


def _skip_br_table(data: bytes, pos: int) -> int:
    count, pos = _read_u32(data, pos)
    for _ in range(count + 1):  # the targets, then the default label
        pos = _skip_leb(data, pos, 5)
    return pos


def _skip_select_types(data: bytes, pos: int) -> int:
    count, pos = _read_u32(data, pos)
    for _ in range(count):
        pos = _skip_valtype(data, pos)
    return pos


def _skip_try_table(data: bytes, pos: int) -> int:
    pos = _skip_block_type(data, pos)
    count, pos = _read_u32(data, pos)
    for _ in range(count):
        kind = data[pos]
        if kind > 3:
            raise _Malformed("invalid catch clause", pos)
        # catch / catch_ref carry a tag index and a label; catch_all / catch_all_ref only a label.
        pos = _skip_u32_u32(data, pos + 1) if kind < 2 else _skip_u32(data, pos + 1)
    return pos


def _skip_resume_table(data: bytes, pos: int) -> int:
    count, pos = _read_u32(data, pos)
    for _ in range(count):
        kind = data[pos]
        if kind > 1:
            raise _Malformed("invalid resume handler", pos)
        # (on tag label) carries two indices, (on tag switch) one.
        pos = _skip_u32_u32(data, pos + 1) if kind == 0 else _skip_u32(data, pos + 1)
    return pos


def _skip_resume(data: bytes, pos: int) -> int:
    return _skip_resume_table(data, _skip_u32(data, pos))


def _skip_resume_throw(data: bytes, pos: int) -> int:
    return _skip_resume_table(data, _skip_u32_u32(data, pos))


def _skip_br_on_cast(data: bytes, pos: int) -> int:
    if data[pos] > 3:  # nullability flags of the two reference types
        raise _Malformed("invalid cast flags", pos)
    pos = _skip_u32(data, pos + 1)
    return _skip_heap_type(data, _skip_heap_type(data, pos))


def _skip_ordering(data: bytes, pos: int) -> int:
    start = pos
    ordering, pos = _read_u32(data, pos)
    if ordering > 1:  # seq_cst or acq_rel
        raise _Malformed("invalid memory ordering", start)
    return pos


def _skip_ordering_u32(data: bytes, pos: int) -> int:
    return _skip_u32(data, _skip_ordering(data, pos))


def _skip_ordering_u32_u32(data: bytes, pos: int) -> int:
    return _skip_u32_u32(data, _skip_ordering(data, pos))


# --------------------------------------------------------------------------
# Immediate kinds: the Python reader plus, where the immediates form a regular
# language, the same thing as a regex for the fast path.  A regex may accept
# less than its reader (e.g. only canonical single-byte forms); where it does
# not match, the Python reader takes over, so the two never need to agree on
# anything but the encodings the regex accepts.
# --------------------------------------------------------------------------

_RE_U32 = rb"[\x80-\xff]{0,4}[\x00-\x7f]"
_RE_U64 = rb"[\x80-\xff]{0,9}[\x00-\x7f]"
_RE_TYPE_INDEX = rb"(?:[\x00-\x3f]|[\x80-\xff]{1,4}[\x00-\x3f])"  # non-negative s33
_RE_HEAP_TYPE = rb"(?:[\x68-\x75]|" + _RE_TYPE_INDEX + rb")"
_RE_VALTYPE = rb"(?:[\x68-\x75\x7b-\x7f]|[\x63\x64]" + _RE_HEAP_TYPE + rb")"
_RE_BLOCK_TYPE = rb"(?:[\x40\x68-\x75\x7b-\x7f]|[\x63\x64]" + _RE_HEAP_TYPE + rb"|" + _RE_TYPE_INDEX + rb")"
# Single-byte alignment field only; bit 6 set means a memory index follows.
_RE_MEMARG = rb"(?:[\x00-\x3f]|[\x40-\x7f]" + _RE_U32 + rb")" + _RE_U64


@dataclass(frozen=True, eq=False)
class _Imm:
    """How to skip the immediates of an instruction."""

    name: str
    skip: Callable[[bytes, int], int]
    pattern: bytes | None  # None: not regular (counted vectors), always decoded in Python


# Listed roughly by how often they occur in compiled code: the fast-path regex
# tries its alternatives in this order.
NONE = _Imm("none", _skip_nothing, b"")
U32 = _Imm("u32", _skip_u32, _RE_U32)
MEMARG = _Imm("memarg", _skip_memarg, _RE_MEMARG)
S32 = _Imm("s32", _skip_u32, _RE_U32)  # a 5-byte LEB, like a u32
BLOCK = _Imm("blocktype", _skip_block_type, _RE_BLOCK_TYPE)
U32_U32 = _Imm("u32 u32", _skip_u32_u32, _RE_U32 + _RE_U32)
S64 = _Imm("s64", _skip_s64, _RE_U64)
F64 = _Imm("f64", _skipper_fixed(8), rb".{8}")
F32 = _Imm("f32", _skipper_fixed(4), rb".{4}")
BR_TABLE = _Imm("br_table", _skip_br_table, None)
HEAP_TYPE = _Imm("heaptype", _skip_heap_type, _RE_HEAP_TYPE)
SELECT_T = _Imm("vec(valtype)", _skip_select_types, rb"\x01" + _RE_VALTYPE)  # valid code has exactly one
BYTES16 = _Imm("16 bytes", _skipper_fixed(16), rb".{16}")  # v128.const, i8x16.shuffle
LANE = _Imm("lane", _skipper_fixed(1), rb".")
MEMARG_LANE = _Imm("memarg lane", _skip_memarg_lane, _RE_MEMARG + rb".")
ZERO_BYTE = _Imm("0x00", _skip_zero_byte, rb"\x00")
TRY_TABLE = _Imm("try_table", _skip_try_table, None)
BR_ON_CAST = _Imm("br_on_cast", _skip_br_on_cast, rb"[\x00-\x03]" + _RE_U32 + _RE_HEAP_TYPE + _RE_HEAP_TYPE)
ORDERING_U32 = _Imm("ordering u32", _skip_ordering_u32, rb"[\x00\x01]" + _RE_U32)
ORDERING_U32_U32 = _Imm("ordering u32 u32", _skip_ordering_u32_u32, rb"[\x00\x01]" + _RE_U32 + _RE_U32)
RESUME = _Imm("u32 resumetable", _skip_resume, None)
RESUME_THROW = _Imm("u32 u32 resumetable", _skip_resume_throw, None)

_KIND_ORDER = (
    NONE, U32, MEMARG, S32, BLOCK, U32_U32, S64, F64, F32, BR_TABLE, HEAP_TYPE, SELECT_T, BYTES16,
    LANE, MEMARG_LANE, ZERO_BYTE, TRY_TABLE, BR_ON_CAST, ORDERING_U32, ORDERING_U32_U32, RESUME, RESUME_THROW,
)  # fmt: skip


def _ops(kind: _Imm, *groups: int | range | Iterable[int]) -> dict[int, _Imm]:
    """Map every opcode in ``groups`` (ints and ranges) to ``kind``."""
    table: dict[int, _Imm] = {}
    for group in groups:
        for op in [group] if isinstance(group, int) else group:
            table[op] = kind
    return table


# Single-byte opcodes.  Gaps are reserved: decoding one is an error.
_SINGLE: dict[int, _Imm] = {
    # Control: unreachable nop else throw_ref end return catch_all(legacy) drop select,
    # ref.is_null ref.eq ref.as_non_null.
    **_ops(NONE, 0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4),
    **_ops(BLOCK, 0x02, 0x03, 0x04, 0x06),  # block loop if try(legacy)
    # catch(legacy) throw rethrow br br_if call return_call call_ref return_call_ref delegate,
    # local.get/set/tee global.get/set table.get/set, memory.size/grow (memory index),
    # ref.func br_on_null br_on_non_null, cont.new suspend.
    **_ops(U32, 0x07, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x12, 0x14, 0x15, 0x18, range(0x20, 0x27), 0x3F, 0x40),
    **_ops(U32, 0xD2, 0xD5, 0xD6, 0xE0, 0xE2),
    0x0E: BR_TABLE,
    **_ops(U32_U32, 0x11, 0x13, 0xE1, 0xE6),  # call_indirect return_call_indirect (type, table), cont.bind switch
    0x1C: SELECT_T,
    0x1F: TRY_TABLE,
    **_ops(MEMARG, range(0x28, 0x3F)),  # loads and stores
    0x41: S32,
    0x42: S64,
    0x43: F32,
    0x44: F64,
    **_ops(NONE, range(0x45, 0xC5)),  # numeric and sign-extension
    0xD0: HEAP_TYPE,  # ref.null
    **_ops(RESUME, 0xE3, 0xE5),  # resume, resume_throw_ref
    0xE4: RESUME_THROW,
}

# Prefixed opcodes: the prefix byte, then the sub-opcode as a u32 LEB128.
_GC_PREFIX, _MISC_PREFIX, _SIMD_PREFIX, _ATOMIC_PREFIX = 0xFB, 0xFC, 0xFD, 0xFE

_SIMD_GAPS = {0x9A, 0xA2, 0xA5, 0xA6, 0xAF, 0xB0, 0xB2, 0xB3, 0xB4, 0xBB, 0xC2, 0xC5, 0xC6, 0xCF, 0xD0, 0xD2, 0xD3, 0xD4, 0xE2, 0xEE}

_PREFIXED: dict[int, dict[int, _Imm]] = {
    _GC_PREFIX: {
        # struct.new(_default) array.new(_default) array.get(_s/_u) array.set array.fill: type index.
        **_ops(U32, 0, 1, 6, 7, 11, 12, 13, 14, 16),
        # struct.get(_s/_u) struct.set: type, field; array.new_fixed: type, length;
        # array.new_data/new_elem/init_data/init_elem: type, segment; array.copy: two types.
        **_ops(U32_U32, 2, 3, 4, 5, 8, 9, 10, 17, 18, 19),
        # array.len any.convert_extern extern.convert_any ref.i31 i31.get_s i31.get_u.
        **_ops(NONE, 15, range(26, 31)),
        **_ops(HEAP_TYPE, range(20, 24)),  # ref.test, ref.test null, ref.cast, ref.cast null
        **_ops(BR_ON_CAST, 24, 25),  # br_on_cast, br_on_cast_fail
    },
    _MISC_PREFIX: {
        **_ops(NONE, range(0, 8)),  # saturating float-to-int
        8: U32_U32,  # memory.init data, memory
        9: U32,  # data.drop
        10: U32_U32,  # memory.copy dst, src
        11: U32,  # memory.fill
        12: U32_U32,  # table.init elem, table
        13: U32,  # elem.drop
        14: U32_U32,  # table.copy dst, src
        **_ops(U32, 15, 16, 17),  # table.grow table.size table.fill
        18: U32,  # memory.discard (memory control)
        **_ops(NONE, range(19, 23)),  # wide arithmetic: i64.add128 sub128 mul_wide_s mul_wide_u
    },
    _SIMD_PREFIX: {
        **_ops(MEMARG, range(0x00, 0x0C), 0x5C, 0x5D),  # v128 loads/store, load32_zero, load64_zero
        **_ops(BYTES16, 0x0C, 0x0D),  # v128.const, i8x16.shuffle
        **_ops(LANE, range(0x15, 0x23)),  # extract_lane / replace_lane
        **_ops(MEMARG_LANE, range(0x54, 0x5C)),  # load/store lane
        **_ops(NONE, range(0x0E, 0x15), range(0x23, 0x54), (op for op in range(0x5E, 0x100) if op not in _SIMD_GAPS)),
        **_ops(NONE, range(0x100, 0x114)),  # relaxed SIMD
    },
    _ATOMIC_PREFIX: {
        **_ops(MEMARG, 0x00, 0x01, 0x02, range(0x10, 0x4F)),  # notify, wait32/64, loads, stores, rmw
        0x03: ZERO_BYTE,  # atomic.fence
        # Shared-everything threads: global/table/array atomics, struct atomics, ref.i31_shared.
        **_ops(ORDERING_U32, range(0x4F, 0x5C), range(0x67, 0x72)),
        **_ops(ORDERING_U32_U32, range(0x5C, 0x67)),
        0x72: NONE,
    },
}

# The instructions that change a table or an element segment.
_MUTATING_SINGLE: dict[int, str] = {0x26: "table.set"}
_MUTATING_PREFIXED: dict[tuple[int, int], str] = {
    (_MISC_PREFIX, 12): "table.init",
    (_MISC_PREFIX, 13): "elem.drop",
    (_MISC_PREFIX, 14): "table.copy",
    (_MISC_PREFIX, 15): "table.grow",
    (_MISC_PREFIX, 17): "table.fill",
    (_ATOMIC_PREFIX, 0x59): "table.atomic.set",
    (_ATOMIC_PREFIX, 0x5A): "table.atomic.rmw.xchg",
    (_ATOMIC_PREFIX, 0x5B): "table.atomic.rmw.cmpxchg",
}

# Every instruction with a data segment index among its immediates: the only way code can
# reach a data segment.  The value is how many u32 immediates precede that index.
_DATA_PREFIXED: dict[tuple[int, int], str] = {
    (_MISC_PREFIX, 8): "memory.init",  # data, memory
    (_MISC_PREFIX, 9): "data.drop",  # data
    (_GC_PREFIX, 9): "array.new_data",  # type, data
    (_GC_PREFIX, 18): "array.init_data",  # type, data
}
_DATA_INDEX_POSITION = {"memory.init": 0, "data.drop": 0, "array.new_data": 1, "array.init_data": 1}

_Entry = tuple[_Imm, "str | None"]


# --------------------------------------------------------------------------
# Regexes generated from the tables.
# --------------------------------------------------------------------------


_uleb = encode_u32  # any non-negative integer; here: opcodes of the generated patterns


def _byte_class(values: Iterable[int]) -> bytes:
    return b"[" + b"".join(b"\\x%02x" % v for v in sorted(set(values))) + b"]"


def _plain_run_pattern(watched_single: dict[int, str], watched_prefixed: dict[tuple[int, int], str]) -> re.Pattern[bytes]:
    """A regex matching a run of instructions that are neither watched nor left to Python.

    It only knows canonical opcode encodings; anything else stops the run and
    goes to :func:`_decode_instruction`.
    """
    alternatives: list[bytes] = []
    for kind in _KIND_ORDER:
        if kind.pattern is None:
            continue
        ops = [op for op, k in _SINGLE.items() if k is kind and op not in watched_single]
        if ops:
            alternatives.append(_byte_class(ops) + kind.pattern)
    for prefix, subs in _PREFIXED.items():
        # Group sub-opcodes by kind and by the bytes after the first LEB byte,
        # so that e.g. all SIMD opcodes 0x80..0xFF without immediates become one class.
        groups: dict[tuple[_Imm, bytes], list[int]] = {}
        for sub, kind in subs.items():
            if kind.pattern is None or (prefix, sub) in watched_prefixed:
                continue
            encoding = _uleb(sub)
            groups.setdefault((kind, encoding[1:]), []).append(encoding[0])
        ordered = sorted(groups.items(), key=lambda item: _KIND_ORDER.index(item[0][0]))
        inner = [_byte_class(firsts) + re.escape(rest) + kind.pattern for (kind, rest), firsts in ordered]
        alternatives.append(re.escape(bytes([prefix])) + b"(?:" + b"|".join(inner) + b")")
    # Possessive: a run never needs to give back an instruction.
    return re.compile(b"(?:" + b"|".join(alternatives) + b")*+", re.DOTALL)


def _candidate_pattern(watched_single: dict[int, str], watched_prefixed: dict[tuple[int, int], str]) -> re.Pattern[bytes]:
    """A regex for the bytes any encoding of a watched instruction must start with."""
    alternatives = [re.escape(bytes([op])) for op in watched_single]
    for prefix in sorted({prefix for prefix, _ in watched_prefixed}):
        firsts: set[int] = set()
        for p, sub in watched_prefixed:
            if p == prefix:
                # The first LEB byte carries the low 7 bits; a non-canonical
                # encoding of a small value sets the continuation bit.
                firsts.add((sub & 0x7F) | 0x80)
                if sub < 0x80:
                    firsts.add(sub)
        alternatives.append(re.escape(bytes([prefix])) + _byte_class(firsts))
    return re.compile(b"|".join(alternatives))


@dataclass(frozen=True, eq=False)
class _Watch:
    """The instructions one kind of scan looks for, and the decoder tables and regexes built for them.

    The lookup tables are a 256-entry list for single-byte opcodes (None for
    prefixes and reserved bytes) and a dict per prefix; each entry is the
    immediate kind and the instruction's name if it is watched.
    """

    single_lookup: list[_Entry | None]
    prefixed_lookup: dict[int, dict[int, _Entry]]
    plain_run: re.Pattern[bytes]
    candidate: re.Pattern[bytes]


def _watch(single: dict[int, str], prefixed: dict[tuple[int, int], str]) -> _Watch:
    return _Watch(
        [(_SINGLE[op], single.get(op)) if op in _SINGLE else None for op in range(256)],
        {p: {sub: (kind, prefixed.get((p, sub))) for sub, kind in subs.items()} for p, subs in _PREFIXED.items()},
        _plain_run_pattern(single, prefixed),
        _candidate_pattern(single, prefixed),
    )


_TABLE_MUTATION = _watch(_MUTATING_SINGLE, _MUTATING_PREFIXED)
_DATA_USE = _watch({}, _DATA_PREFIXED)
_PLAIN_RUN = _TABLE_MUTATION.plain_run
_CANDIDATE = _TABLE_MUTATION.candidate


def _decode_instruction(data: bytes, pos: int, watch: _Watch = _TABLE_MUTATION) -> tuple[int, str | None]:
    """Decode the instruction at ``pos``; return (position after it, its name if ``watch`` watches it)."""
    op = data[pos]
    entry = watch.single_lookup[op]
    if entry is not None:
        kind, name = entry
        return kind.skip(data, pos + 1), name
    subs = watch.prefixed_lookup.get(op)
    if subs is None:
        raise _Malformed(f"unknown opcode {op:#04x}", pos)
    sub, after = _read_u32(data, pos + 1)
    entry = subs.get(sub)
    if entry is None:
        raise _Malformed(f"unknown opcode {op:#04x} {sub}", pos)
    kind, name = entry
    return kind.skip(data, after), name


# --------------------------------------------------------------------------
# Bodies and the section.
# --------------------------------------------------------------------------


def _skip_locals(body: bytes) -> int:
    count, pos = _read_u32(body, 0)
    for _ in range(count):
        pos = _skip_leb(body, pos, 5)  # how many locals of this type
        pos = _skip_valtype(body, pos)
    return pos


def _watched_in_body(body: bytes, watch: _Watch, fast: bool) -> Iterator[tuple[int, str]]:
    """Yield (position, name) of every watched instruction in one body (locals + expression).

    The body is checked to end with `end` only once it has been walked to the
    end, so a caller that stops at the first instruction skips that check.
    """
    end = len(body)
    try:
        pos = _skip_locals(body)
    except IndexError:
        raise _Malformed("unexpected end of function body in locals", end) from None
    skip_run = watch.plain_run.match if fast else None
    while pos < end:
        if skip_run is not None:
            pos = skip_run(body, pos).end()
            if pos == end:
                break
        start = pos
        try:
            pos, name = _decode_instruction(body, pos, watch)
        except IndexError:
            pos = end + 1
        if pos > end:
            raise _Malformed("unexpected end of function body", start)
        if name is not None:
            yield start, name
    # Cheap sanity check (a valid body ends with `end`); nesting is left to the validator.
    if end == 0 or body[end - 1] != 0x0B:
        raise _Malformed("function body does not end with `end`", end)


def _scan_body(body: bytes, *, fast: bool = True) -> str | None:
    """Return the name of the first table-mutating instruction in one body (locals + expression).

    ``fast=False`` decodes every instruction in Python; the tests use it to
    check the fast path against the plain decoder.
    """
    for _, name in _watched_in_body(body, _TABLE_MUTATION, fast):
        return name
    return None


def _data_indices_in_body(body: bytes, *, fast: bool = True) -> set[int]:
    """The data segment indices the instructions of one body name."""
    found = set()
    for start, name in _watched_in_body(body, _DATA_USE, fast):
        pos = _read_u32(body, start + 1)[1]  # past the prefix and sub-opcode
        for _ in range(_DATA_INDEX_POSITION[name]):
            pos = _skip_u32(body, pos)
        found.add(_read_u32(body, pos)[0])
    return found


def _candidate_bodies(data: bytes, watch: _Watch) -> Iterator[tuple[int, int, int]]:
    """Yield (body number, start, end) of each body in which ``watch``'s pre-filter finds a candidate."""
    size = len(data)
    has_candidate = watch.candidate.search
    try:
        count, pos = _read_u32(data, 0)
    except IndexError:
        raise _Malformed("unexpected end of code section", size) from None
    for index in range(count):
        header = pos
        try:
            body_size, pos = _read_u32(data, pos)
        except IndexError:
            raise _Malformed(f"unexpected end of code section in the header of body {index}", header) from None
        end = pos + body_size
        if end > size:
            raise _Malformed(f"function body {index} runs past the end of the code section", header)
        if has_candidate(data, pos, end) is not None:
            yield index, pos, end
        pos = end
    if pos != size:
        raise _Malformed("unexpected data after the last function body", pos)


def _scan_section(data: bytes, first_func_index: int) -> tuple[int, str] | None:
    for index, pos, end in _candidate_bodies(data, _TABLE_MUTATION):
        try:
            name = _scan_body(data[pos:end])
        except _Malformed as err:
            err.pos += pos
            raise
        if name is not None:
            return first_func_index + index, name
    return None


def _data_indices_in_section(data: bytes) -> set[int]:
    found: set[int] = set()
    for _, pos, end in _candidate_bodies(data, _DATA_USE):
        try:
            found |= _data_indices_in_body(data[pos:end])
        except _Malformed as err:
            err.pos += pos
            raise
    return found
