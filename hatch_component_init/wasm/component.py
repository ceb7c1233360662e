"""Components: sections, the entries pre-initialization reads or renumbers, and the index spaces.

Every section is recorded with its byte range so that untouched sections are
copied verbatim. Only sections whose entries define or reference the index
spaces we care about are decoded entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidComponentError, UnsupportedComponentError
from .core_module import CoreModule, parse_core_module
from .reader import Reader, encode_u32

__all__ = [
    "COMPONENT_MAGIC",
    "Component",
    "Sort",
    "parse_component",
]

COMPONENT_MAGIC = b"\x00asm\x0d\x00\x01\x00"

#: How deep components may nest; every level costs a few Python frames in each pipeline stage.
MAX_NESTING = 100


class Sort:
    """Index-space keys: component sorts keep their byte, core sorts are 0x100 + core sort byte."""

    FUNC = 0x01
    VALUE = 0x02
    TYPE = 0x03
    COMPONENT = 0x04
    INSTANCE = 0x05
    CORE_FUNC = 0x100
    CORE_TABLE = 0x101
    CORE_MEMORY = 0x102
    CORE_GLOBAL = 0x103
    CORE_TAG = 0x104
    CORE_TYPE = 0x110
    CORE_MODULE = 0x111
    CORE_INSTANCE = 0x112

    NAMES = {
        0x01: "func", 0x02: "value", 0x03: "type", 0x04: "component", 0x05: "instance",
        0x100: "core func", 0x101: "core table", 0x102: "core memory", 0x103: "core global", 0x104: "core tag",
        0x110: "core type", 0x111: "core module", 0x112: "core instance",
    }  # fmt: skip


def read_sort(r: Reader) -> int:
    b = r.u8()
    if b == 0x00:
        return read_core_sort(r)
    if not 0x01 <= b <= 0x05:
        raise r.error(f"unknown sort {b:#x}", r.pos - 1)
    return b


def read_core_sort(r: Reader) -> int:
    c = r.u8()
    if c not in (0x00, 0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12):
        raise r.error(f"unknown core sort {c:#x}", r.pos - 1)
    return 0x100 + c


def encode_sort(sort: int) -> bytes:
    return bytes([0x00, sort - 0x100]) if sort >= 0x100 else bytes([sort])


def read_export_name(r: Reader) -> str:
    """An import or export name (``nameattributes``); its attributes are skipped, the name returned.

    0x00 and 0x01 are a bare name; 0x02 adds a vector of attributes (`implements`,
    `versionsuffix`, `external-id`), each a one-byte tag and a name.
    """
    prefix = r.u8()
    if prefix not in (0x00, 0x01, 0x02):
        raise r.error(f"unknown import/export name prefix {prefix:#x}", r.pos - 1)
    name = r.name()
    if prefix == 0x02:
        for _ in range(r.count(2)):
            tag = r.u8()
            if tag > 0x02:
                raise r.error(f"unknown import/export name attribute {tag:#x}", r.pos - 1)
            r.name()
    return name


@dataclass(frozen=True, slots=True)
class Section:
    id: int
    start: int
    payload_start: int
    end: int


@dataclass(slots=True)
class CoreInstanceEntry:
    """One entry of a core instance section; ``module`` is None for an export bundle."""

    section: int
    start: int
    end: int
    module: int | None
    args: list[tuple[str, int]]
    exports: list[tuple[str, int, int]]


@dataclass(slots=True)
class InstanceEntry:
    """One entry of an instance section; ``component`` is None for an export bundle."""

    section: int
    start: int
    end: int
    component: int | None
    args: list[tuple[str, int, int]]
    exports: list[tuple[str, int, int]]


@dataclass(slots=True)
class ExportEntry:
    section: int
    start: int
    end: int
    name: str
    sort: int
    index: int
    defines: int  # the index the export itself adds to its sort's space


@dataclass(slots=True)
class AliasEntry:
    section: int
    start: int
    end: int
    sort: int
    kind: int  # 0 instance export, 1 core instance export, 2 outer
    instance: int  # instance index, or outer count
    name_or_index: str | int


@dataclass(slots=True)
class CanonEntry:
    section: int
    start: int
    end: int
    op: int
    func: int | None  # the component func a `lower` reads


@dataclass(slots=True)
class Definition:
    """What an index in a space refers to, for the spaces we follow."""

    kind: str  # "defined", "imported", "alias", "export", "canon", "instantiate", "bundle"
    section: int = -1
    entry: object = None


@dataclass(slots=True)
class Component:
    raw: memoryview
    base: int
    parent: Component | None
    sections: list[Section] = field(default_factory=list)
    spaces: dict[int, list[Definition]] = field(default_factory=dict)
    modules: dict[int, CoreModule] = field(default_factory=dict)  # section index -> parsed module
    components: dict[int, Component] = field(default_factory=dict)  # section index -> parsed component
    core_instances: list[CoreInstanceEntry] = field(default_factory=list)
    instances: list[InstanceEntry] = field(default_factory=list)
    exports: list[ExportEntry] = field(default_factory=list)
    aliases: list[AliasEntry] = field(default_factory=list)
    canons: list[CanonEntry] = field(default_factory=list)
    import_names: list[str] = field(default_factory=list)
    has_start: bool = False

    @property
    def instance_index(self) -> dict[int, int]:
        """Index in the instance space of each instance entry, keyed by ``id(entry)``."""
        return {id(d.entry): i for i, d in enumerate(self.space(Sort.INSTANCE)) if d.entry is not None}

    def space(self, sort: int) -> list[Definition]:
        return self.spaces.setdefault(sort, [])

    def count(self, sort: int) -> int:
        return len(self.spaces.get(sort, ()))

    def define(self, sort: int, d: Definition) -> int:
        s = self.space(sort)
        s.append(d)
        return len(s) - 1

    def at(self, sort: int, index: int, offset: int | None = None) -> Definition:
        """The definition of ``index``; ``offset`` (in the whole file) is where the reference was read."""
        s = self.spaces.get(sort, [])
        if not 0 <= index < len(s):
            raise InvalidComponentError(f"unknown {Sort.NAMES[sort]} {index}: index out of bounds", offset)
        return s[index]


def parse_component(
    raw: memoryview, base: int = 0, parent: Component | None = None, *, with_data: bool = True
) -> Component:
    if bytes(raw[:4]) != b"\x00asm":
        raise InvalidComponentError("not a WebAssembly binary (bad magic number)", base)
    if bytes(raw[:8]) != COMPONENT_MAGIC:
        if bytes(raw[4:8]) == b"\x01\x00\x00\x00":
            raise UnsupportedComponentError(
                "this is a core WebAssembly module, not a component; core modules are not supported yet "
                "(wrap it into a component, e.g. with `wasm-tools component new`)"
            )
        raise InvalidComponentError(f"unsupported component binary version {bytes(raw[4:8]).hex(' ')}", base + 4)
    c = Component(raw, base, parent)
    depth, p = 0, parent
    while p is not None:
        depth, p = depth + 1, p.parent
    if depth > MAX_NESTING:
        raise UnsupportedComponentError(
            f"components nested more than {MAX_NESTING} levels deep are not supported (at offset {base:#x})"
        )
    r = Reader(raw, 8, base=base)
    while not r.at_end():
        start = r.pos
        sid = r.u8()
        size = r.u32()
        body = r.sub(size)
        c.sections.append(Section(sid, start, body.pos, body.end))
        _parse_section(c, len(c.sections) - 1, sid, body, with_data)
    return c


def _parse_section(c: Component, si: int, sid: int, r: Reader, with_data: bool) -> None:
    if sid == 0:
        return
    if sid == 1:
        c.modules[si] = parse_core_module(r.data[r.pos : r.end], r.base + r.pos, with_data=with_data)
        c.define(Sort.CORE_MODULE, Definition("defined", si))
        return
    if sid == 4:
        c.components[si] = parse_component(r.data[r.pos : r.end], r.base + r.pos, c, with_data=with_data)
        c.define(Sort.COMPONENT, Definition("defined", si))
        return
    handler = _SECTION_PARSERS.get(sid)
    if handler is None:
        raise r.error(f"unknown component section id {sid}", r.pos - 1)
    handler(c, si, r)
    if not r.at_end():
        raise r.error(f"section {sid} has {r.end - r.pos} trailing bytes")


def _core_instances(c: Component, si: int, r: Reader) -> None:
    for _ in range(r.count(2)):
        start = r.pos
        kind = r.u8()
        if kind == 0x00:
            at = r.base + r.pos
            module = r.u32()
            c.at(Sort.CORE_MODULE, module, at)
            args = []
            for _ in range(r.count(2)):
                name = r.name()
                if r.u8() != 0x12:
                    raise r.error("core instantiation argument must be an instance", r.pos - 1)
                args.append((name, r.u32()))
            e = CoreInstanceEntry(si, start, r.pos, module, args, [])
        elif kind == 0x01:
            exports = []
            for _ in range(r.count(3)):
                name = r.name()
                sort = read_core_sort(r)
                exports.append((name, sort, r.u32()))
            e = CoreInstanceEntry(si, start, r.pos, None, [], exports)
        else:
            raise r.error(f"unknown core instance kind {kind:#x}", start)
        c.core_instances.append(e)
        c.define(Sort.CORE_INSTANCE, Definition("instantiate" if kind == 0 else "bundle", si, e))


def _counted(sort: int, kind: str):  # type: ignore[no-untyped-def]
    def parse(c: Component, si: int, r: Reader) -> None:
        # Types are never renumbered: count them and skip the bytes. A component type entry
        # defines one type. A core `rec` group (GC) defines several but counts once here:
        # nothing reads the core type space, it is kept only for symmetry.
        for _ in range(r.count(1)):
            c.define(sort, Definition(kind, si))
        r.pos = r.end

    return parse


def _instances(c: Component, si: int, r: Reader) -> None:
    for _ in range(r.count(2)):
        start = r.pos
        kind = r.u8()
        if kind == 0x00:
            at = r.base + r.pos
            comp = r.u32()
            c.at(Sort.COMPONENT, comp, at)
            args = []
            for _ in range(r.count(3)):
                name = r.name()
                sort = read_sort(r)
                args.append((name, sort, r.u32()))
            e = InstanceEntry(si, start, r.pos, comp, args, [])
        elif kind == 0x01:
            exports = []
            for _ in range(r.count(3)):
                name = read_export_name(r)
                sort = read_sort(r)
                exports.append((name, sort, r.u32()))
            e = InstanceEntry(si, start, r.pos, None, [], exports)
        else:
            raise r.error(f"unknown instance kind {kind:#x}", start)
        c.instances.append(e)
        c.define(Sort.INSTANCE, Definition("instantiate" if kind == 0 else "bundle", si, e))


def _aliases(c: Component, si: int, r: Reader) -> None:
    for _ in range(r.count(3)):
        start = r.pos
        sort = read_sort(r)
        kind = r.u8()
        if kind in (0x00, 0x01):
            inst = r.u32()
            target: str | int = r.name()
        elif kind == 0x02:
            inst = r.u32()
            target = r.u32()
        else:
            raise r.error(f"unknown alias target {kind:#x}", r.pos - 1)
        e = AliasEntry(si, start, r.pos, sort, kind, inst, target)
        c.aliases.append(e)
        c.define(sort, Definition("alias", si, e))


def _skip_valtype(r: Reader) -> None:
    # A type index (u32) or a one-byte primitive type: as LEB128 both are read like an s33.
    r.s33()


def _skip_core_valtype(r: Reader) -> None:
    if r.u8() in (0x63, 0x64):  # (ref null? ht): the heap type is an s33, `shared` adds a prefix byte
        if r.pos < r.end and r.data[r.pos] == 0x65:
            r.u8()
        r.s33()


def _flag(r: Reader, what: str) -> None:
    pos = r.pos
    if r.u8() > 0x01:
        raise r.error(f"bad `{what}` flag of a canonical built-in", pos)


def _skip_opts(r: Reader) -> None:
    for _ in range(r.count(1)):
        opt = r.u8()
        if opt in _OPTS_WITH_INDEX:
            r.u32()
        elif opt not in _OPTS_WITHOUT_IMMEDIATE:
            raise UnsupportedComponentError(
                f"canonical option {opt:#04x} at offset {r.base + r.pos - 1:#x} is not one this tool knows",
                r.base + r.pos - 1,
            )


# memory, realloc, post-return, callback, core-type (GC); string encodings, async, gc take nothing.
_OPTS_WITH_INDEX = frozenset((0x03, 0x04, 0x05, 0x07, 0x08))
_OPTS_WITHOUT_IMMEDIATE = frozenset((0x00, 0x01, 0x02, 0x06, 0x09))

#: Every canonical built-in but lift/lower: opcode -> (name, immediates). Immediates, in order:
#: "t" an index (u32), "a" the `async?` flag byte, "c" the `cancel?` flag byte, "o" canonical
#: options, "r" a result list, "v" a core value type. Each built-in defines one core function.
#: 0x40-0x42: Binary.md gives these a leading `shared?` byte, but wasm-tools (the encoder every
#: toolchain uses, and Wasmtime's decoder) writes and reads none; a binary Wasmtime accepts wins.
_CANON_BUILTINS: dict[int, tuple[str, str]] = {
    0x02: ("resource.new", "t"), 0x03: ("resource.drop", "t"), 0x04: ("resource.rep", "t"),
    0x05: ("task.cancel", ""), 0x06: ("subtask.cancel", "a"), 0x09: ("task.return", "ro"),
    0x0A: ("context.get", "vt"), 0x0B: ("context.set", "vt"), 0x0C: ("thread.yield", "c"),
    0x0D: ("subtask.drop", ""), 0x0E: ("stream.new", "t"), 0x0F: ("stream.read", "to"),
    0x10: ("stream.write", "to"), 0x11: ("stream.cancel-read", "ta"), 0x12: ("stream.cancel-write", "ta"),
    0x13: ("stream.drop-readable", "t"), 0x14: ("stream.drop-writable", "t"), 0x15: ("future.new", "t"),
    0x16: ("future.read", "to"), 0x17: ("future.write", "to"), 0x18: ("future.cancel-read", "ta"),
    0x19: ("future.cancel-write", "ta"), 0x1A: ("future.drop-readable", "t"),
    0x1B: ("future.drop-writable", "t"), 0x1C: ("error-context.new", "o"),
    0x1D: ("error-context.debug-message", "o"), 0x1E: ("error-context.drop", ""),
    0x1F: ("waitable-set.new", ""), 0x20: ("waitable-set.wait", "ct"), 0x21: ("waitable-set.poll", "ct"),
    0x22: ("waitable-set.drop", ""), 0x23: ("waitable.join", ""), 0x24: ("backpressure.inc", ""),
    0x25: ("backpressure.dec", ""), 0x26: ("thread.index", ""), 0x27: ("thread.new-indirect", "tt"),
    0x28: ("thread.resume-later", ""), 0x29: ("thread.suspend", "c"),
    0x2A: ("thread.suspend-then-resume", "c"), 0x2B: ("thread.yield-then-resume", "c"),
    0x2C: ("thread.suspend-then-promote", "c"), 0x2D: ("thread.yield-then-promote", "c"),
    0x2E: ("stream.forward", "t"), 0x2F: ("future.forward", "t"),
    0x40: ("thread.spawn-ref", "t"), 0x41: ("thread.spawn-indirect", "tt"),
    0x42: ("thread.available-parallelism", ""),
}  # fmt: skip


def _skip_builtin_immediates(r: Reader, immediates: str) -> None:
    for k in immediates:
        if k == "t":
            r.u32()
        elif k == "a":
            _flag(r, "async")
        elif k == "c":
            _flag(r, "cancellable")
        elif k == "o":
            _skip_opts(r)
        elif k == "v":
            _skip_core_valtype(r)
        else:  # "r": 0x00 <valtype> | 0x01 0x00
            if r.u8() == 0x00:
                _skip_valtype(r)
            elif r.u8() != 0x00:
                raise r.error("bad result list of `task.return`", r.pos - 1)


def _canons(c: Component, si: int, r: Reader) -> None:
    # Some built-ins are a single byte, so a vector of n entries may take just n bytes.
    for _ in range(r.count(1)):
        start = r.pos
        op = r.u8()
        func = None
        if op in (0x00, 0x01):
            if r.u8() != 0x00:
                raise r.error("canon lift/lower must name a function", r.pos - 1)
            at = r.base + r.pos
            idx = r.u32()
            _skip_opts(r)
            if op == 0x00:
                r.u32()
                e = CanonEntry(si, start, r.pos, op, None)
                c.canons.append(e)
                c.define(Sort.FUNC, Definition("canon", si, e))
                continue
            c.at(Sort.FUNC, idx, at)
            func = idx
        else:
            builtin = _CANON_BUILTINS.get(op)
            if builtin is None:
                raise UnsupportedComponentError(
                    f"canonical built-in {op:#04x} at offset {r.base + start:#x} is not one this tool knows "
                    "(it reads the component-model binary format as Wasmtime 50 does)",
                    r.base + start,
                )
            _skip_builtin_immediates(r, builtin[1])
        e = CanonEntry(si, start, r.pos, op, func)
        c.canons.append(e)
        c.define(Sort.CORE_FUNC, Definition("canon", si, e))


def _skip_externdesc(r: Reader) -> int:
    kind = r.u8()
    if kind == 0x00:
        if r.u8() != 0x11:
            raise r.error("core extern descriptor must be a module", r.pos - 1)
        r.u32()
        return Sort.CORE_MODULE
    if kind in (0x01, 0x04, 0x05):
        r.u32()
        return kind  # the descriptor byte equals the sort byte
    if kind == 0x02:
        # Binary.md puts a `valuebound` (0x00 index | 0x01 type) here; wasm-tools, which writes
        # and reads every value import in practice, has the bare value type.
        _skip_valtype(r)
        return Sort.VALUE
    if kind == 0x03:
        b = r.u8()
        if b == 0x00:
            r.u32()
        return Sort.TYPE
    raise r.error(f"unknown extern descriptor {kind:#x}", r.pos - 1)


def _imports(c: Component, si: int, r: Reader) -> None:
    for _ in range(r.count(3)):
        c.import_names.append(read_export_name(r))
        sort = _skip_externdesc(r)
        c.define(sort, Definition("imported", si))


def _exports(c: Component, si: int, r: Reader) -> None:
    for _ in range(r.count(4)):
        start = r.pos
        name = read_export_name(r)
        sort = read_sort(r)
        at = r.base + r.pos
        index = r.u32()
        c.at(sort, index, at)
        if r.u8() == 0x01:
            _skip_externdesc(r)
        e = ExportEntry(si, start, r.pos, name, sort, index, c.count(sort))
        c.exports.append(e)
        c.define(sort, Definition("export", si, e))


def _start(c: Component, si: int, r: Reader) -> None:
    c.has_start = True
    r.u32()
    for _ in range(r.count(1)):
        r.u32()
    pos = r.pos
    results = r.u32()
    # Each value must be used exactly once, by a later byte of this component: that bounds the count.
    if results > len(c.raw) - r.end:
        raise r.error(f"start function with {results} results: more than this component could use", pos)
    for _ in range(results):
        c.define(Sort.VALUE, Definition("start", si))


def _values(c: Component, si: int, r: Reader) -> None:
    for _ in range(r.count(2)):
        _skip_valtype(r)
        r.take(r.u32())
        c.define(Sort.VALUE, Definition("defined", si))


_SECTION_PARSERS = {
    2: _core_instances,
    3: _counted(Sort.CORE_TYPE, "defined"),
    5: _instances,
    6: _aliases,
    7: _counted(Sort.TYPE, "defined"),
    8: _canons,
    9: _start,
    10: _imports,
    11: _exports,
    12: _values,
}


def stub_component(c: Component) -> bytes:
    """``c`` with every core module replaced by its stub (see ``stub_module``), nested components too."""
    from .core_module import stub_module

    parts: list[bytes | memoryview] = [c.raw[:8]]
    for si, s in enumerate(c.sections):
        if s.id == 1:
            body = stub_module(c.modules[si])
        elif s.id == 4:
            body = stub_component(c.components[si])
        else:
            parts.append(c.raw[s.start : s.end])
            continue
        parts.append(bytes([s.id]) + encode_u32(len(body)) + body)
    return b"".join(parts)


def instance_export_names(c: Component, index: int) -> frozenset[str] | None:
    """The names instance ``index`` of ``c`` exports, where ``c`` itself says (an export bundle, an
    instance of a component defined in ``c``, or an export of either); None where it cannot tell."""
    d = c.at(Sort.INSTANCE, index)
    if d.kind == "export" and isinstance(d.entry, ExportEntry):
        return instance_export_names(c, d.entry.index)
    if d.kind == "bundle" and isinstance(d.entry, InstanceEntry):
        return frozenset(name for name, _, _ in d.entry.exports)
    if d.kind == "instantiate" and isinstance(d.entry, InstanceEntry) and d.entry.component is not None:
        definition = c.at(Sort.COMPONENT, d.entry.component)
        if definition.kind == "defined":
            return frozenset(e.name for e in c.components[definition.section].exports)
    return None


def core_modules(c: Component) -> list[CoreModule]:
    """Every core module defined in ``c`` or in its nested components."""
    out = list(c.modules.values())
    for nested in c.components.values():
        out += core_modules(nested)
    return out
