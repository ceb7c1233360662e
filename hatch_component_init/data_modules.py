"""Initial data moved out of the instrumented component, so that it compiles to the same code every build.

An edit to a componentize-py app gives a component with the same code and a
new heap: only data segments and a few global initialisers change. Wasmtime
keys compiled code on the whole binary, so each rebuild would compile ~18 MB
of code again. Instead, each stateful root-level module hands its active data
segments and the constant initial values of its mutable globals to a *data
module*: a core module holding that data, with no code beyond a start function
setting those globals. The instrumented component imports one data module per
such module and instantiates it against each of the module's instances, after
every other core instance; the host compiles data modules (data only: a few
milliseconds) and the code itself comes from the compile cache.

Applying the data later is unobservable only while no guest code runs during
instantiation, so this is done only when no core module anywhere in the
component has a start function and no component has a start, and when every
active segment has a constant offset into a memory its own module defines
(its instance order then decides overlaps, as before). Otherwise the data
stays where it is: the run is the same, only the compile cache misses more.
"""

from __future__ import annotations

from dataclasses import dataclass

from .accessor import AccessorInstance, global_export_name, memory_export_name
from .snapshot import segment_head
from .wasm import component_encode as enc
from .wasm.component import Component
from .wasm.core_module import CORE_MAGIC, ZERO_CONST, CoreModule, GlobalDef, encode_section
from .wasm.reader import Reader, encode_name, encode_u32, encode_vec

__all__ = [
    "DataModule", "ModuleData", "component_sections", "constant_segment", "data_module", "find_movable",
    "instrumented_sections",
]  # fmt: skip

#: Component import names of the data modules: this prefix, `m` and the module's section index.
IMPORT_PREFIX = "ci-data-"
#: The data module's one import module: the instance of the module whose data it holds.
SOURCE = "ci"

_EMPTY_PASSIVE = b"\x01\x00"
_CONST_WIDTH = {0x43: 4, 0x44: 8}


#: An active segment with a constant offset: (memory index, 64-bit, the address it writes at, data).
Segment = tuple[int, bool, int, bytes]


@dataclass(frozen=True, slots=True)
class ModuleData:
    """What one module gives to its data module: its active segments, in order, and globals to set."""

    segments: tuple[Segment, ...]
    globals: tuple[GlobalDef, ...]


@dataclass(frozen=True, slots=True)
class DataModule:
    """A data module the runtime compiles and defines under ``import_name`` before instantiating."""

    import_name: str
    wasm: bytes


def find_movable(c: Component, stateful: dict[int, AccessorInstance | None]) -> dict[int, ModuleData] | None:
    """The data to move out of each root-level module (by section index), or None if none may move.

    ``stateful`` maps each instantiated module's section to what its accessor
    reads (None for a module without state); memories and mutable globals are
    exported only from stateful modules, and a data module reaches them there.
    """
    if _runs_code_at_instantiation(c) or any(name.startswith(IMPORT_PREFIX) for name in c.import_names):
        return None
    moves: dict[int, ModuleData] = {}
    for si, acc in stateful.items():
        m = c.modules[si]
        active = [constant_segment(raw) for passive, raw in m.data_segments if not passive]
        if active and (acc is None or m.imported_memories or None in active):
            return None
        values = tuple(g for g in (acc.globals if acc is not None else ()) if _movable_value(g))
        if active or values:
            moves[si] = ModuleData(tuple(active), values)  # type: ignore[arg-type]
    return moves


def _runs_code_at_instantiation(c: Component) -> bool:
    if c.has_start or any(m.section(8) is not None for m in c.modules.values()):
        return True
    return any(_runs_code_at_instantiation(nested) for nested in c.components.values())


def constant_segment(raw: bytes) -> Segment | None:
    """An active segment, parsed, if its offset is a single `i32.const` or `i64.const`; else None."""
    r = Reader(memoryview(raw))
    memory = r.u32() and r.u32()  # flags 2 carry a memory index; flags 0 mean memory 0
    op = r.u8()
    if op not in (0x41, 0x42):
        return None
    value = r.s64()
    if r.u8() != 0x0B:
        return None
    is64 = op == 0x42
    return memory, is64, value % (1 << (64 if is64 else 32)), bytes(r.take(r.u32()))


def _movable_value(g: GlobalDef) -> bool:
    """A mutable global initialised by one non-zero constant: its value can be set later."""
    init = g.init_bytes
    if init == ZERO_CONST.get(g.valtype):
        return False
    op = init[0]
    if op in (0x41, 0x42):
        r = Reader(memoryview(init), 1)
        r.s64()
        return r.pos == len(init) - 1
    if op in _CONST_WIDTH:
        return len(init) == 2 + _CONST_WIDTH[op]
    return init[:2] == b"\xfd\x0c" and len(init) == 19


def instrumented_sections(m: CoreModule, moved: ModuleData) -> dict[int, bytes | None]:
    """Replacement sections of ``m`` without the moved data: its moved globals start at zero.

    Where a DataCount section lets code name segments by index, each moved
    segment leaves an empty passive one in its place (an applied active segment
    acts as a dropped, empty one), so indices keep their meaning.
    """
    replaced: dict[int, bytes | None] = {}
    if moved.segments:
        if m.section(12) is not None:
            kept = [raw if passive else _EMPTY_PASSIVE for passive, raw in m.data_segments]
        else:
            kept = [raw for passive, raw in m.data_segments if passive]
        replaced[11] = encode_vec(kept) if kept else None
    if moved.globals:
        zeroed = {g.index for g in moved.globals}
        replaced[6] = encode_vec(
            [g.type_bytes + (ZERO_CONST[g.valtype] if g.index in zeroed else g.init_bytes) for g in m.globals]
        )
    return replaced


def _imports(m: CoreModule, moved: ModuleData) -> list[bytes]:
    imports = []
    if moved.segments:
        # Every defined memory, in index order: the segments' memory indices then mean the same.
        imports += [
            encode_name(SOURCE) + encode_name(memory_export_name(mem)) + b"\x02" + mem.limits.encode()
            for mem in m.memories
        ]
    imports += [
        encode_name(SOURCE) + encode_name(global_export_name(g)) + b"\x03" + bytes([g.valtype]) + b"\x01"
        for g in moved.globals
    ]
    return imports


def data_module(m: CoreModule, moved: ModuleData) -> bytes:
    """The core module that applies ``moved`` to an instance of ``m``: its segments, then a start setting the globals."""
    sections = [(2, encode_vec(_imports(m, moved)))]
    if moved.globals:
        body = b"".join(g.init_bytes[:-1] + b"\x24" + encode_u32(i) for i, g in enumerate(moved.globals))
        func = b"\x00" + body + b"\x0b"
        sections = [(1, encode_vec([b"\x60\x00\x00"])), *sections, (3, encode_vec([b"\x00"]))]
        sections += [(8, b"\x00"), (10, encode_vec([encode_u32(len(func)) + func]))]
    if moved.segments:
        sections.append((11, encode_vec(_merged(moved.segments))))
    return CORE_MAGIC + b"".join(encode_section(sid, payload) for sid, payload in sections)


#: Zeros a merged segment may carry between two segments: less than Wasmtime spends per extra segment.
MERGE_GAP = 4096


def _merged(segments: tuple[Segment, ...]) -> list[bytes]:
    """The same writes in fewer segments: neighbours in one memory, in ascending order, become one.

    Wasmtime's module compile costs ~0.1 ms per segment (0.2 s for the 1,766
    of a componentize-py heap) and next to nothing per byte. The memory holds
    only zeros when the data module is instantiated (nothing else writes to a
    module's own memory before then), so a gap filled with zeros writes what
    was already there, unless an earlier segment wrote into it: a run is not
    extended over an address an earlier run reaches. Segments that overlap or
    go backwards are left as they are.
    """
    out: list[bytes] = []
    run: list[Segment] = []  # neighbours, written in order
    reached: dict[int, int] = {}  # memory index -> the highest end of a segment already written

    def flush() -> None:
        if not run:
            return
        memory, is64, start, _ = run[0]
        last = run[-1]
        reached[memory] = max(reached.get(memory, 0), last[2] + len(last[3]))
        parts = []
        for (_, _, offset, data), nxt in zip(run, [*run[1:], None]):
            parts.append(data)
            if nxt is not None:
                parts.append(bytes(nxt[2] - offset - len(data)))
        data = b"".join(parts)
        out.append(segment_head(memory, is64, start, len(data)) + data)
        run.clear()

    for seg in segments:
        if run:
            memory, is64, offset, data = run[-1]
            end = offset + len(data)
            over_earlier = reached.get(memory, 0) > end  # the gap's zeros would overwrite an earlier write
            if seg[0] != memory or not end <= seg[2] <= end + MERGE_GAP or over_earlier:
                flush()
        run.append(seg)
    flush()
    return out


def module_type(m: CoreModule, moved: ModuleData) -> bytes:
    """The component-level core module type of the data module: its imports, no exports."""
    return b"\x50" + encode_vec([b"\x00" + entry for entry in _imports(m, moved)])


def component_sections(
    c: Component, moves: dict[int, ModuleData], instances: list[tuple[int, int]], first_type: int, first_module: int
) -> tuple[list[bytes], list[DataModule]]:
    """Sections that import each data module and instantiate it against every (core instance, module
    section) in ``instances`` whose module has moved data, in instance order; and the data modules."""
    order = sorted(moves)
    types = [module_type(c.modules[si], moves[si]) for si in order]
    imports = [
        b"\x00" + encode_name(import_name(si)) + b"\x00\x11" + encode_u32(first_type + k) for k, si in enumerate(order)
    ]
    index = {si: first_module + k for k, si in enumerate(order)}
    instantiations = [enc.core_instantiate(index[si], [(SOURCE, ci)]) for ci, si in instances if si in moves]
    modules = [DataModule(import_name(si), data_module(c.modules[si], moves[si])) for si in order]
    return [enc.section(3, types), enc.section(10, imports), enc.section(2, instantiations)], modules


def import_name(module_section: int) -> str:
    return f"{IMPORT_PREFIX}m{module_section}"
