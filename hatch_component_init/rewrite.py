"""Original component + snapshot -> initialized component.

Each instantiated core module is re-emitted with the state of the instance
that used it: memory minimums, mutable global initialisers, the snapshot as
active data after the old segments that code can still name (see
:func:`kept_segments`), and no start function. A module or nested component
instantiated several times with different states gets one copy per state,
and every index that points past an inserted copy or a removed init export
is renumbered. Sections nothing touches are copied byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import InitExportError, UnsupportedComponentError
from .instrument import ComponentPlan
from .state import ComponentState, CoreState, MemoryState
from .snapshot import ENGINE_LIMIT, global_init, module_segments, segment_budget
from .wasm.component import Component, Sort, encode_sort, read_export_name, read_sort
from .wasm.core_module import CoreModule, Payload, encode_section, rebuild_parts, section_header
from .wasm.reader import Reader, encode_name, encode_u32
from .wave import resolve_init_name

__all__ = ["InitRemoval", "find_init_removal", "reencode", "replace_module_data", "rewrite_component"]

_EMPTY_PASSIVE = b"\x01\x00"


# ---------------------------------------------------------------- core modules


def kept_segments(m: CoreModule) -> list[bytes]:
    """The old data segments the rewritten module keeps, in index order.

    Code reaches a segment only through the instructions that name its index
    (`memory.init`, `data.drop`, `array.new_data`, `array.init_data`), so every
    segment up to the highest index named keeps its place: a passive one that
    is named stays byte for byte, any other becomes an empty passive
    placeholder (an active segment is dropped once applied, which an empty
    one mimics). Segments past that index are dropped, so chained runs do not
    pile up the superseded snapshots.
    """
    if not m.data_segments or m.section(12) is None:
        return []  # code that names a data index needs a DataCount section to validate
    from .wasm.code_scan import find_data_references  # only here: compiling its tables costs ~12 ms

    code = m.section(10)
    used = find_data_references(m.payload(code), m.base + code.payload_start) if code is not None else frozenset()
    used = frozenset(i for i in used if i < len(m.data_segments))
    if not used:
        return []
    return [
        raw if passive and i in used else _EMPTY_PASSIVE
        for i, (passive, raw) in enumerate(m.data_segments[: max(used) + 1])
    ]


def rewrite_module(m: CoreModule, state: CoreState | None) -> bytes:
    return b"".join(rewrite_module_parts(m, state))


def rewrite_module_parts(m: CoreModule, state: CoreState | None) -> list[bytes | memoryview]:
    """The rewritten module as the pieces it is made of (a 40 MB module is then copied once, at the end)."""
    replaced: dict[int, Payload | None] = {8: None}  # start ran during init; it must not run again
    added: dict[int, Payload] = {}
    # A module that defines no memory gets no snapshot segments, so nothing piles up there;
    # leaving its passive segments alone keeps such a module byte for byte when it has no active ones.
    if state is not None and m.memories:
        segments = kept_segments(m)
    else:
        segments = [raw if passive else _EMPTY_PASSIVE for passive, raw in m.data_segments]
    if state is not None:
        pages = dict(zip((mem.index for mem in m.memories), (s.pages for s in state.memories)))
        if m.memories:
            replaced[5] = encode_u32(len(m.memories)) + b"".join(
                mem.limits.encode(minimum=pages[mem.index]) for mem in m.memories
            )
        memories = [(mem.index, mem.limits.is64, ms) for mem, ms in zip(m.memories, state.memories)]
        budget = segment_budget(len(segments))
        if budget < sum(1 for _, _, ms in memories if ms.chunks):
            raise UnsupportedComponentError(
                f"a core module's code names data segment {len(segments) - 1} (memory.init/data.drop), so its "
                f"first {len(segments):,} data segments must stay; with the snapshot's segments the module "
                f"would exceed the engine limit of {ENGINE_LIMIT:,} data segments"
            )
        segments += module_segments(memories, budget)
        values = iter(state.globals)
        if m.globals:
            replaced[6] = encode_u32(len(m.globals)) + b"".join(
                g.type_bytes + (global_init(g, next(values)) if g.mutable else g.init_bytes) for g in m.globals
            )
    if segments or m.section(11) is not None:
        payload = [encode_u32(len(segments)), *segments]
        if m.section(11) is not None:
            replaced[11] = payload
        else:
            added[11] = payload
    if m.section(12) is not None:
        replaced[12] = encode_u32(len(segments))
    return rebuild_parts(m, replaced, added)


def replace_module_data(c: Component, section: int, memory: MemoryState) -> bytes:
    """``c`` with the data of the module in ``section`` encoded again from ``memory`` (its memory 0 as the
    data lays it out); the module's start function, globals and everything else stay as they are."""
    m = c.modules[section]
    segments = kept_segments(m)
    segments += module_segments([(0, m.memories[0].limits.is64, memory)], segment_budget(len(segments)))
    replaced: dict[int, Payload | None] = {11: [encode_u32(len(segments)), *segments]}
    if m.section(12) is not None:
        replaced[12] = encode_u32(len(segments))
    pieces = rebuild_parts(m, replaced, {})
    parts: list[bytes | memoryview] = [c.raw[:8]]
    for si, s in enumerate(c.sections):
        if si == section:
            parts += [section_header(1, sum(map(len, pieces))), *pieces]
        else:
            parts.append(c.raw[s.start : s.end])
    return b"".join(parts)


# ---------------------------------------------------------------- init export removal


@dataclass(frozen=True, slots=True)
class InitRemoval:
    """Where the init export lives: a top-level func export, or an export inside a nested component."""

    export_name: str  # the export entry to remove in this component
    nested: tuple[int, InitRemoval] | None = None  # (component section index, removal inside it)
    bundle: tuple[int, str] | None = None  # (instance index of an export bundle, item name)


def find_init_removal(c: Component, name: str) -> InitRemoval:
    def lookup(iface: str | None, func: str) -> InitRemoval | None:
        for e in c.exports:
            if iface is None and e.name == func and e.sort == Sort.FUNC:
                return InitRemoval(func)
            if e.name == iface and e.sort == Sort.INSTANCE:
                return _removal_in_instance(c, e.index, func, name)
        return None

    found = resolve_init_name(name, lookup)
    if found is None:
        raise InitExportError(f"the init export `{name}` is not a function export of the component")
    return found


def _removal_in_instance(c: Component, index: int, func: str, full: str) -> InitRemoval:
    d = c.at(Sort.INSTANCE, index)
    if d.kind == "export":
        return _removal_in_instance(c, d.entry.index, func, full)  # type: ignore[union-attr]
    if d.kind == "instantiate" and d.entry.component is not None:  # type: ignore[union-attr]
        cd = c.at(Sort.COMPONENT, d.entry.component)  # type: ignore[union-attr]
        users = [e for e in c.instances if e.component == d.entry.component]  # type: ignore[union-attr]
        if cd.kind == "defined" and len(users) == 1:
            inner = c.components[cd.section]
            for e in inner.exports:
                if e.name == func and e.sort == Sort.FUNC:
                    return InitRemoval("", nested=(cd.section, InitRemoval(func)))
    if d.kind == "bundle":
        if any(n == func for n, s, _ in d.entry.exports):  # type: ignore[union-attr]
            return InitRemoval("", bundle=(index, func))
    raise UnsupportedComponentError(
        f"the init export `{full}` cannot be removed from this component's exported instance; "
        "use --keep-init-func (hook option `keep-init-func = true`) to keep it"
    )


# ---------------------------------------------------------------- components


Remap = Callable[[int, int], int]


def _identity(sort: int, index: int) -> int:
    return index


def rewrite_component(
    c: Component,
    plan: ComponentPlan | None,
    state: ComponentState | None,
    removal: InitRemoval | None = None,
    outer: tuple[Remap, ...] = (),
    *,
    rewrite_modules: bool = True,
    trailer: bytes = b"",
) -> bytes:
    """Re-emit ``c`` with ``state`` (the state of one instance of it); ``rewrite_modules=False``
    re-encodes without touching any module, the identity transform used to test the codec.
    ``trailer`` (a custom section) ends the output: joined here, it costs no extra copy of it."""
    cores = {core.core_instance: core for core in (plan.cores if plan else [])}
    nested_plans = {n.instance: n.plan for n in (plan.nested if plan else [])}

    # One variant per distinct state of each instantiated module / component (as pieces, joined
    # once with the whole output; a variant is compared with the others only if there are others).
    module_variants: dict[int, list[list[bytes | memoryview]]] = {}
    core_instance_variant: dict[int, int] = {}
    for ci, entry in enumerate(c.core_instances):
        if entry.module is None:
            continue
        d = c.at(Sort.CORE_MODULE, entry.module)
        if d.kind != "defined":
            continue  # instrument() already refused stateful ones
        core_state = state.cores.get(ci) if (state is not None and ci in cores) else None
        module = c.modules[d.section]
        pieces = rewrite_module_parts(module, core_state) if rewrite_modules else [module.raw]
        variants = module_variants.setdefault(d.section, [])
        if not variants:
            variants.append(pieces)
            core_instance_variant[id(entry)] = 0
            continue
        joined = [b"".join(v) for v in variants]
        out = b"".join(pieces)
        if out not in joined:
            variants.append([out])
            joined.append(out)
        core_instance_variant[id(entry)] = joined.index(out)

    module_shift = _shifts(c, Sort.CORE_MODULE, module_variants)

    def remap_module(index: int) -> int:
        return module_shift[index]

    def remap_outer_modules(sort: int, index: int) -> int:
        return remap_module(index) if sort == Sort.CORE_MODULE else index

    component_variants: dict[int, list[bytes]] = {}
    instance_variant: dict[int, int] = {}
    for ii, entry in enumerate(c.instances):
        if entry.component is None:
            continue
        d = c.at(Sort.COMPONENT, entry.component)
        if d.kind != "defined":
            continue
        inner_removal = removal.nested[1] if removal and removal.nested and removal.nested[0] == d.section else None
        out = rewrite_component(
            c.components[d.section],
            nested_plans.get(ii),
            state.nested.get(ii) if state is not None else None,
            inner_removal,
            outer + (remap_outer_modules,),
            rewrite_modules=rewrite_modules,
        )
        variants = component_variants.setdefault(d.section, [])
        if out not in variants:
            variants.append(out)
        instance_variant[id(entry)] = variants.index(out)
    component_shift = _shifts(c, Sort.COMPONENT, component_variants)

    _refuse_shared_copies(c, module_variants, Sort.CORE_MODULE)
    _refuse_shared_copies(c, component_variants, Sort.COMPONENT)

    removed_export = None
    if removal is not None and removal.export_name:
        removed_export = next(e for e in c.exports if e.name == removal.export_name and e.sort == Sort.FUNC)

    def remap(sort: int, index: int) -> int:
        if sort == Sort.CORE_MODULE:
            return remap_module(index)
        if sort == Sort.COMPONENT:
            return component_shift[index]
        if sort == Sort.FUNC and removed_export is not None:
            if index == removed_export.defines:
                return removed_export.index
            if index > removed_export.defines:
                return index - 1
        return index

    parts: list[bytes | memoryview] = [c.raw[:8]]
    by_section = _entries_by_section(c)
    for si, s in enumerate(c.sections):
        if s.id == 1 and si in module_variants:
            for pieces in module_variants[si]:
                parts.append(section_header(1, sum(map(len, pieces))))
                parts += pieces
        elif s.id == 4 and si in component_variants:
            for v in component_variants[si]:
                parts += (section_header(4, len(v)), v)
        elif si in by_section:
            parts.append(
                _rewrite_section(c, s.id, by_section[si], remap, outer, core_instance_variant, instance_variant,
                                 removed_export, removal)
            )  # fmt: skip
        else:
            parts.append(c.raw[s.start : s.end])
    parts.append(trailer)
    return b"".join(parts)


def _shifts(c: Component, sort: int, variants: dict[int, list[bytes]]) -> list[int]:
    """New index of each old index once the extra variants are inserted after their originals."""
    shift = 0
    out = []
    for d in c.space(sort):
        out.append(len(out) + shift)
        if d.kind == "defined" and d.section in variants:
            shift += len(variants[d.section]) - 1
    return out


def _refuse_shared_copies(c: Component, variants: dict[int, list[Any]], sort: int) -> None:
    """A rewritten definition must not also reach places that instantiate it afresh."""
    used = {e.index for e in c.exports if e.sort == sort}
    used |= {idx for e in c.instances for _, s, idx in e.args + e.exports if s == sort}
    for nested in c.components.values():
        used |= {a.name_or_index for a in nested.aliases if a.kind == 2 and a.instance == 1 and a.sort == sort}  # type: ignore[misc]
    space = c.space(sort)
    rewritten = set()
    for i in used:
        d = space[i] if 0 <= i < len(space) else None
        if d is not None and d.kind == "defined" and d.section in variants:
            original = bytes(c.raw[c.sections[d.section].payload_start : c.sections[d.section].end])
            joined = [b"".join(v) if isinstance(v, list) else v for v in variants[d.section]]
            if joined != [original]:
                rewritten.add(i)
    if rewritten:
        raise UnsupportedComponentError(
            f"a {Sort.NAMES[sort]} that is instantiated during init is also exported or passed to another "
            "component, which would instantiate it afresh; its snapshot cannot be shared that way"
        )


def _entries_by_section(c: Component) -> dict[int, list[object]]:
    out: dict[int, list[object]] = {}
    for entries in (c.core_instances, c.instances, c.exports, c.canons, c.aliases):
        for e in entries:
            out.setdefault(e.section, []).append(e)  # type: ignore[attr-defined]
    return out


def _rewrite_section(
    c: Component, sid: int, entries: list[object], remap: Remap, outer: tuple[Remap, ...],
    core_variant: dict[int, int], instance_variant: dict[int, int], removed_export: object, removal: InitRemoval | None,
) -> bytes:  # fmt: skip
    items: list[bytes] = []
    changed = False
    instance_index = c.instance_index if sid == 5 else {}
    for e in entries:
        raw = bytes(c.raw[e.start : e.end])  # type: ignore[attr-defined]
        if e is removed_export:
            changed = True
            continue
        new = _rewrite_entry(c, sid, e, raw, remap, outer, core_variant, instance_variant, removal, instance_index)
        changed |= new != raw
        items.append(new)
    s = c.sections[entries[0].section]  # type: ignore[attr-defined]
    if not changed:
        return bytes(c.raw[s.start : s.end])
    return encode_section(sid, encode_u32(len(items)) + b"".join(items))


def _rewrite_entry(
    c: Component, sid: int, e: object, raw: bytes, remap: Remap, outer: tuple[Remap, ...],
    core_variant: dict[int, int], instance_variant: dict[int, int], removal: InitRemoval | None,
    instance_index: dict[int, int],
) -> bytes:  # fmt: skip
    r = Reader(memoryview(raw))
    if sid == 2:  # core instance
        if r.u8() != 0x00:
            return raw
        module = r.u32()
        new = remap(Sort.CORE_MODULE, module) + core_variant.get(id(e), 0)
        return b"\x00" + encode_u32(new) + raw[r.pos :]
    if sid == 5:  # instance
        kind = r.u8()
        ii = instance_index[id(e)]
        out = bytearray([kind])
        if kind == 0x00:
            comp = r.u32()
            out += encode_u32(remap(Sort.COMPONENT, comp) + instance_variant.get(id(e), 0))
        n = r.u32()
        items = []
        for _ in range(n):
            start = r.pos
            if kind == 0x00:
                name_bytes = encode_name(r.name())
            else:
                name = read_export_name(r)
                name_bytes = raw[start : r.pos]  # with its attributes, if any
                if removal is not None and removal.bundle == (ii, name):
                    read_sort(r)
                    r.u32()
                    continue
            sort = read_sort(r)
            idx = r.u32()
            new_idx = remap(sort, idx)
            items.append(raw[start : r.pos] if new_idx == idx else name_bytes + encode_sort(sort) + encode_u32(new_idx))
        return bytes(out) + encode_u32(len(items)) + b"".join(items)
    if sid == 11:  # export
        read_export_name(r)
        head = r.pos
        sort = read_sort(r)
        idx = r.u32()
        new = remap(sort, idx)
        return raw if new == idx else raw[:head] + encode_sort(sort) + encode_u32(new) + raw[r.pos :]
    if sid == 8:  # canon: only `lower` names a component function
        if raw[0] != 0x01:
            return raw
        r.pos = 2
        idx = r.u32()
        return raw[:2] + encode_u32(remap(Sort.FUNC, idx)) + raw[r.pos :]
    if sid == 6:  # alias: outer aliases into a parent whose modules moved
        sort = read_sort(r)
        if r.u8() != 0x02:
            return raw
        head = r.pos
        count = r.u32()
        idx = r.u32()
        if count == 0 or count > len(outer):
            return raw
        new = outer[-count](sort, idx)
        return raw if new == idx else raw[:head] + encode_u32(count) + encode_u32(new)
    return raw


def reencode(c: Component) -> bytes:
    """Re-emit ``c`` decoding and re-encoding every entry we parse, changing nothing.

    The identity transform: a parser whose entry boundaries are right gives back
    the input byte for byte.
    """
    return rewrite_component(c, None, None, rewrite_modules=False)
