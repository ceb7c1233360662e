"""Core WebAssembly modules: the parsed view pre-initialization needs, and re-encoding of the sections it changes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidComponentError, UnsupportedComponentError
from .reader import Reader, encode_name, encode_u32

__all__ = ["CoreModule", "GlobalDef", "Limits", "MemoryDef", "parse_core_module", "section_order"]

CORE_MAGIC = b"\x00asm\x01\x00\x00\x00"

# Section ids in the order the core spec requires them (custom sections float).
_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

# Number types a snapshot can hold, with their byte width.
NUM_TYPES = {0x7F: ("i32", 4), 0x7E: ("i64", 8), 0x7D: ("f32", 4), 0x7C: ("f64", 8), 0x7B: ("v128", 16)}


def section_order(section_id: int) -> int:
    return _ORDER.get(section_id, 0)


@dataclass(frozen=True, slots=True)
class Limits:
    flags: int
    minimum: int
    maximum: int | None

    @property
    def shared(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def is64(self) -> bool:
        return bool(self.flags & 0x04)

    def encode(self, minimum: int | None = None) -> bytes:
        out = bytes([self.flags]) + encode_u32(self.minimum if minimum is None else minimum)
        if self.maximum is not None:
            out += encode_u32(self.maximum)
        return out


@dataclass(frozen=True, slots=True)
class MemoryDef:
    index: int  # in the module's memory index space (imports first)
    limits: Limits


@dataclass(frozen=True, slots=True)
class GlobalDef:
    index: int  # in the module's global index space (imports first)
    valtype: int  # first byte of the value type
    mutable: bool
    type_bytes: bytes
    init_bytes: bytes  # constant expression including its final `end`


@dataclass(frozen=True, slots=True)
class Section:
    id: int
    start: int  # offset of the id byte, relative to the module start
    payload_start: int
    end: int


@dataclass(slots=True)
class CoreModule:
    raw: memoryview
    base: int
    sections: list[Section] = field(default_factory=list)
    #: Type index of each imported function, in import order.
    imported_func_types: list[int] = field(default_factory=list)
    imported_memories: int = 0
    imported_globals: int = 0
    memories: list[MemoryDef] = field(default_factory=list)
    globals: list[GlobalDef] = field(default_factory=list)
    exports: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (kind, index)
    # (is_passive, raw bytes of the whole segment) in index order
    data_segments: list[tuple[bool, bytes]] = field(default_factory=list)

    @property
    def imported_funcs(self) -> int:
        return len(self.imported_func_types)

    def section(self, section_id: int) -> Section | None:
        for s in self.sections:
            if s.id == section_id:
                return s
        return None

    def payload(self, s: Section) -> memoryview:
        return self.raw[s.payload_start : s.end]


def _limits(r: Reader) -> Limits:
    flags = r.u8()
    if flags & ~0x0F:
        raise r.error(f"unknown limits flags {flags:#x}", r.pos - 1)
    if flags & 0x08:
        raise UnsupportedComponentError("memories with a custom page size are not supported")
    read = r.u64 if flags & 0x04 else r.u32
    minimum = read()
    maximum = read() if flags & 0x01 else None
    return Limits(flags, minimum, maximum)


#: First bytes of every value type the core format defines: numbers, v128, reference shorthands, `(ref null? ht)`.
VALTYPE_BYTES = frozenset([*range(0x7B, 0x80), *range(0x68, 0x76), 0x63, 0x64])


def read_valtype(r: Reader) -> int:
    b = r.u8()
    if b not in VALTYPE_BYTES:
        raise r.error(f"invalid value type {b:#04x}", r.pos - 1)
    if b in (0x63, 0x64):
        r.s33()
    return b


def skip_const_expr(r: Reader) -> None:
    """Skip a constant expression up to and including its `end`."""
    while True:
        op = r.u8()
        if op == 0x0B:
            return
        if op == 0x41:
            r.s32()
        elif op == 0x42:
            r.s64()
        elif op == 0x43:
            r.take(4)
        elif op == 0x44:
            r.take(8)
        elif op in (0x23, 0xD2):  # global.get, ref.func
            r.u32()
        elif op == 0xD0:  # ref.null
            r.s33()
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
            pass
        elif op == 0xFD:
            sub = r.u32()
            if sub != 12:
                raise r.error(f"SIMD opcode {sub} is not allowed in a constant expression")
            r.take(16)
        elif op == 0xFB:
            # GC instructions are constant; their immediates are not worth decoding until GC is supported.
            raise UnsupportedComponentError(
                f"GC instructions in constant expressions (at offset {r.base + r.pos - 1:#x}) are not supported"
            )
        else:
            raise r.error(f"opcode {op:#04x} is not allowed in a constant expression", r.pos - 1)


def parse_core_module(raw: memoryview, base: int = 0, *, with_data: bool = True) -> CoreModule:
    """Parse the sections of a core module; ``base`` is its offset in the enclosing file.

    ``with_data=False`` leaves the data section's segments unread (for callers that only
    need the module's interface)."""
    if bytes(raw[:8]) != CORE_MAGIC:
        raise InvalidComponentError("not a core WebAssembly module", base)
    m = CoreModule(raw, base)
    r = Reader(raw, 8, base=base)
    last = 0
    while not r.at_end():
        start = r.pos
        sid = r.u8()
        size = r.u32()
        body = r.sub(size)
        s = Section(sid, start, body.pos, body.end)
        order = section_order(sid)
        if sid != 0:
            if order == 0:
                raise r.error(f"unknown core section id {sid}", start)
            if order <= last:
                raise r.error(f"core section {sid} out of order", start)
            last = order
        m.sections.append(s)
        if sid != 11 or with_data:
            _parse_section(m, sid, body)
    return m


def _parse_section(m: CoreModule, sid: int, r: Reader) -> None:
    if sid == 2:
        for _ in range(r.count(3)):
            r.name()
            r.name()
            kind = r.u8()
            if kind == 0x00:
                m.imported_func_types.append(r.u32())
            elif kind == 0x01:
                read_valtype(r)
                _limits(r)
            elif kind == 0x02:
                _limits(r)
                m.imported_memories += 1
            elif kind == 0x03:
                read_valtype(r)
                r.u8()
                m.imported_globals += 1
            elif kind == 0x04:
                r.u8()
                r.u32()
            else:
                raise r.error(f"unknown import kind {kind:#x}", r.pos - 1)
    elif sid == 5:
        for _ in range(r.count(2)):
            m.memories.append(MemoryDef(m.imported_memories + len(m.memories), _limits(r)))
    elif sid == 6:
        for _ in range(r.count(3)):
            t0 = r.pos
            valtype = read_valtype(r)
            mut = r.u8()
            if mut > 1:
                raise r.error(f"bad global mutability {mut}", r.pos - 1)
            t1 = r.pos
            skip_const_expr(r)
            m.globals.append(
                GlobalDef(
                    m.imported_globals + len(m.globals),
                    valtype,
                    bool(mut),
                    bytes(r.data[t0:t1]),
                    bytes(r.data[t1 : r.pos]),
                )
            )
    elif sid == 7:
        for _ in range(r.count(2)):
            name = r.name()
            kind = r.u8()
            m.exports[name] = (kind, r.u32())
    elif sid == 11:
        for _ in range(r.count(1)):
            s0 = r.pos
            flags = r.u32()
            if flags == 1:
                r.take(r.u32())
            elif flags in (0, 2):
                if flags == 2:
                    r.u32()
                skip_const_expr(r)
                r.take(r.u32())
            else:
                raise r.error(f"unknown data segment flags {flags}", s0)
            m.data_segments.append((flags == 1, bytes(r.data[s0 : r.pos])))
    if sid in (2, 5, 6, 7, 11) and not r.at_end():
        raise r.error(f"section {sid} has {r.end - r.pos} trailing bytes")


def encode_section(sid: int, payload: bytes) -> bytes:
    return section_header(sid, len(payload)) + payload


def section_header(sid: int, size: int) -> bytes:
    return bytes((sid,)) + encode_u32(size)


#: A section payload: bytes, or the list of pieces it is made of (joined only once, with everything else).
Payload = bytes | list[bytes]


def rebuild(m: CoreModule, replaced: dict[int, Payload | None], added: dict[int, Payload]) -> bytes:
    """Re-emit the module: sections in ``replaced`` get that payload (None drops them),
    sections in ``added`` are inserted where the core order puts them; the rest is copied raw."""
    return b"".join(rebuild_parts(m, replaced, added))


def rebuild_parts(
    m: CoreModule, replaced: dict[int, Payload | None], added: dict[int, Payload]
) -> list[bytes | memoryview]:
    """:func:`rebuild` as the pieces that make up the module, in order, for a caller that joins them later."""
    parts: list[bytes | memoryview] = [m.raw[:8]]
    pending = dict(sorted(added.items(), key=lambda kv: section_order(kv[0])))

    def emit(sid: int, payload: Payload) -> None:
        if isinstance(payload, list):
            parts.append(section_header(sid, sum(map(len, payload))))
            parts.extend(payload)
        else:
            parts.extend((section_header(sid, len(payload)), payload))

    def flush(before_order: int) -> None:
        for sid in [k for k in pending if section_order(k) < before_order]:
            emit(sid, pending.pop(sid))

    for s in m.sections:
        if s.id != 0:
            flush(section_order(s.id))
        if s.id in replaced:
            payload = replaced[s.id]
            if payload is not None:
                emit(s.id, payload)
        else:
            parts.append(m.raw[s.start : s.end])
    flush(1 << 30)
    return parts


def stub_module(m: CoreModule) -> bytes:
    """The module's interface without its behaviour or its state: same types, imports, definitions
    and exports, every body `unreachable`, no data, elements, start or custom sections.

    Compiling a component made of stubs type-checks everything the component
    level says about its modules. State is left out so that the stubs of two
    snapshots of an app are the same bytes and the compile (~0.3 s for the
    trampolines of a componentize-py app) comes from the code cache: mutable
    numeric globals start at zero, and each memory's minimum is its maximum
    (or the largest possible), which only lets more importers match. A
    snapshot only raises minimums, so it matches wherever the input did.
    """
    replaced: dict[int, bytes | None] = {sid: None for sid in (0, 8, 9, 11, 12)}
    code = m.section(10)
    if code is not None:
        n = Reader(m.raw, code.payload_start, code.end).u32()
        replaced[10] = encode_u32(n) + b"\x03\x00\x00\x0b" * n
    if m.memories:
        replaced[5] = encode_u32(len(m.memories)) + b"".join(
            mem.limits.encode(minimum=_largest_minimum(mem.limits)) for mem in m.memories
        )
    if m.globals:
        replaced[6] = encode_u32(len(m.globals)) + b"".join(
            g.type_bytes + (ZERO_CONST[g.valtype] if g.mutable and g.valtype in ZERO_CONST else g.init_bytes)
            for g in m.globals
        )
    return rebuild(m, replaced, {})


def _largest_minimum(limits: Limits) -> int:
    if limits.maximum is not None:
        return limits.maximum
    return 1 << 48 if limits.is64 else 1 << 16


#: The zero of each number type as a constant expression (with its `end`).
ZERO_CONST = {
    0x7F: b"\x41\x00\x0b",
    0x7E: b"\x42\x00\x0b",
    0x7D: b"\x43" + bytes(4) + b"\x0b",
    0x7C: b"\x44" + bytes(8) + b"\x0b",
    0x7B: b"\xfd\x0c" + bytes(16) + b"\x0b",
}


def export_entry(name: str, kind: int, index: int) -> bytes:
    return encode_name(name) + bytes([kind]) + encode_u32(index)


def function_type(m: CoreModule, func_index: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(params, results) of function ``func_index``, or None where its type is not a plain function type."""
    type_indices = list(m.imported_func_types)
    funcs = m.section(3)
    if funcs is not None:
        r = Reader(m.raw, funcs.payload_start, funcs.end, m.base)
        type_indices += [r.u32() for _ in range(r.u32())]
    types = m.section(1)
    if types is None or not 0 <= func_index < len(type_indices):
        return None
    r = Reader(m.raw, types.payload_start, types.end, m.base)
    wanted = type_indices[func_index]
    count = r.u32()
    for i in range(min(count, wanted + 1)):
        if r.u8() != 0x60:
            return None  # rec groups and GC types: not worth decoding for this question
        params = tuple(read_valtype(r) for _ in range(r.u32()))
        results = tuple(read_valtype(r) for _ in range(r.u32()))
        if i == wanted:
            return params, results
    return None
