"""Original component -> instrumented component + the plan of what to read back.

Every core module that defines state gets extra exports for its memories and
mutable globals. Each component (the root and every nested one that has
state) gets an accessor module instantiated against those instances, whose
functions are lifted and exported; a parent re-exports its children's
accessors under a prefix, so the host reaches every core instance at any depth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .accessor import AccessorInstance, build_accessor, global_export_name, memory_export_name
from .data_modules import DataModule, ModuleData, component_sections, find_movable, instrumented_sections
from .errors import UnsupportedComponentError
from .wasm import component_encode as enc
from .wasm.component import Component, Sort
from .wasm.core_module import (
    NUM_TYPES, CoreModule, GlobalDef, encode_section, export_entry, function_type, read_valtype, rebuild,
)  # fmt: skip
from .wasm.reader import Reader, encode_u32

__all__ = ["ComponentPlan", "CorePlan", "NestedPlan", "instrument", "refuse_table_mutation"]

#: Core exports that reset host-handle bookkeeping (WASI adapter, wasi-libc) before a snapshot.
RESET_EXPORTS = ("reset_adapter_state", "__wasilibc_reset_preopens")
#: Prefix of the accessor exports of every component level.
LOCAL_PREFIX = "ci-"


@dataclass(frozen=True, slots=True)
class CorePlan:
    """A core instance whose state is read: which module it instantiates and what it defines."""

    core_instance: int
    module_section: int
    accessor: AccessorInstance


@dataclass(frozen=True, slots=True)
class NestedPlan:
    instance: int
    component_section: int
    plan: ComponentPlan


@dataclass(slots=True)
class ComponentPlan:
    prefix: str  # export-name prefix of this level's accessors, as seen from the root
    cores: list[CorePlan] = field(default_factory=list)
    nested: list[NestedPlan] = field(default_factory=list)
    has_reset: bool = False
    #: Data modules the runtime defines before instantiating (root level only; see data_modules.py).
    data_modules: list[DataModule] = field(default_factory=list)

    def local_exports(self) -> list[str]:
        """Names this component exports for its accessors, its children's included."""
        names = ["reset"] if self.has_reset else []
        for core in self.cores:
            names.append(f"state-i{core.core_instance}")
            for m in core.accessor.memories:
                names += [f"read-i{core.core_instance}-m{m.index}", f"scan-i{core.core_instance}-m{m.index}"]
            if core.accessor.descriptors is not None:
                names.append(f"fds-i{core.core_instance}")
        for n in self.nested:
            names += [f"c{n.instance}-{name}" for name in n.plan.local_exports()]
        return names

    @property
    def is_empty(self) -> bool:
        return not self.cores and not self.nested and not self.has_reset


def _with_prefix(plan: ComponentPlan, prefix: str) -> ComponentPlan:
    """The plan of one instance of a definition: export names as seen from the root."""
    nested = [NestedPlan(n.instance, n.component_section, _with_prefix(n.plan, f"{prefix}c{n.instance}-")) for n in plan.nested]
    return ComponentPlan(prefix, plan.cores, nested, plan.has_reset)


def _module_name(c: Component, section: int) -> str:
    return f"core module #{sorted(c.modules).index(section)} (at offset {c.base + c.sections[section].start:#x})"


def refuse_table_mutation(c: Component) -> None:
    """Refuse a component whose instantiated modules change a table at run time (any depth).

    Separate from :func:`instrument` because it reads all the code (~0.07 s for
    a componentize-py app) and its verdict depends on the code alone: the
    runtime skips it when the compile cache already holds this code, which
    only code that passed it gets into.
    """
    seen: set[int] = set()
    for entry in c.core_instances:
        d = c.at(Sort.CORE_MODULE, entry.module) if entry.module is not None else None
        if d is not None and d.kind == "defined" and d.section not in seen:
            seen.add(d.section)
            _refuse_table_mutation(c, d.section, c.modules[d.section])
    for inst in c.instances:
        d = c.at(Sort.COMPONENT, inst.component) if inst.component is not None else None
        if d is not None and d.kind == "defined" and d.section not in seen:
            seen.add(d.section)
            refuse_table_mutation(c.components[d.section])


def _refuse_table_mutation(c: Component, si: int, m: CoreModule) -> None:
    # Imported here: compiling its tables costs ~12 ms, and a compile-cache hit never scans.
    from .wasm.code_scan import find_table_mutation

    code = m.section(10)
    if code is None:
        return
    found = find_table_mutation(m.payload(code), m.imported_funcs, m.base + code.payload_start)
    if found is not None:
        func, op = found
        raise UnsupportedComponentError(
            f"{_module_name(c, si)} changes a table at run time (`{op}` in function {func}); table "
            "contents cannot be snapshotted soundly, so this component cannot be pre-initialized"
        )


def _stateful_parts(c: Component, si: int, m: CoreModule) -> AccessorInstance | None:
    for g in m.globals:
        if g.mutable and g.valtype not in NUM_TYPES:
            raise UnsupportedComponentError(
                f"{_module_name(c, si)} has a mutable reference-typed global (global {g.index}); "
                "reference values cannot be snapshotted"
            )
    globals_ = tuple(g for g in m.globals if g.mutable)
    resets = tuple(n for n in RESET_EXPORTS if m.exports.get(n, (None,))[0] == 0 and not _is_stub(m, n))
    renewal = _stdio_renewal(m) if "__wasilibc_reset_preopens" in resets else None
    if not m.memories and not globals_ and not resets:
        return None
    return AccessorInstance(
        -1, tuple(m.memories), globals_, resets, _shadow_stack(m), _descriptor_lookup(m, resets), renewal
    )


def _exports_func(m: CoreModule, name: str, signature: tuple[tuple[int, ...], tuple[int, ...]]) -> bool:
    kind, index = m.exports.get(name, (None, -1))
    return kind == 0x00 and function_type(m, index) == signature


def _stdio_renewal(m: CoreModule) -> tuple[str, str] | None:
    """How to give a wasi-libc without `descriptor_table_clear` fresh stdio descriptors after its reset.

    wasi-libc keeps stdin, stdout and stderr in its descriptor table, each
    holding the host stream handle it fetched on first use. A libc that can
    clear its table (componentize-py 0.25) forgets them in its reset with
    everything else, and a new instance fetches its own. An older one
    (componentize-py 0.21) keeps them through
    `__wasilibc_reset_preopens`: an init that printed leaves stdout holding a
    handle a new instance does not have, which traps at its first print
    ("unknown handle index"). Removing descriptors 0-2 (which drops those
    handles in this instance) and inserting new ones, which fetch their
    streams when first used, leaves the table as a fresh instance has it.
    """
    remove, init = "descriptor_table_remove", "__wasilibc_init_stdio"
    if "descriptor_table_clear" in m.exports:
        return None
    if _exports_func(m, remove, ((0x7F,), (0x7F,))) and _exports_func(m, init, ((), (0x7F,))):
        return remove, init
    return None


def _descriptor_lookup(m: CoreModule, resets: tuple[str, ...]) -> str | None:
    """wasi-libc's descriptor-table lookup, in a libc whose reset will forget every descriptor."""
    kind, index = m.exports.get("descriptor_table_get_ref", (None, -1))
    if "__wasilibc_reset_preopens" not in resets or kind != 0x00:
        return None
    return "descriptor_table_get_ref" if function_type(m, index) == ((0x7F,), (0x7F,)) else None


def _is_stub(m: CoreModule, export: str) -> bool:
    """Whether the exported function's body begins with `unreachable`, so any call traps at once.

    componentize-py's `--stub-wasi` adapter exports its hygiene hooks as such
    stubs; it holds no host handles, and calling one would poison the instance.
    """
    code = m.section(10)
    index = m.exports[export][1]
    if code is None or index < m.imported_funcs:
        return False
    r = Reader(m.raw, code.payload_start, code.end, m.base)
    if index - m.imported_funcs >= r.u32():
        return False
    for _ in range(index - m.imported_funcs):
        r.take(r.u32())
    r.u32()  # body size
    for _ in range(r.u32()):  # local declarations: count, type
        r.u32()
        read_valtype(r)
    return r.u8() == 0x00


def _shadow_stack(m: CoreModule) -> tuple[GlobalDef, GlobalDef] | None:
    """The stack pointer and stack bottom of a C shadow stack in the module's own first memory.

    wasm-ld exports `__stack_pointer` and `__stack_low` when asked (wasi-sdk and
    componentize-py do); only a stack in a memory this module defines is ours to scrub.
    """
    found = []
    for name in ("__stack_pointer", "__stack_low"):
        kind, index = m.exports.get(name, (None, -1))
        g = next((g for g in m.globals if g.index == index), None) if kind == 0x03 else None
        if g is None or g.valtype not in (0x7F, 0x7E):
            return None
        found.append(g)
    if not m.memories or m.memories[0].index != 0 or m.imported_memories:
        return None
    sp, low = found
    if sp.index == low.index or not sp.mutable or sp.valtype != low.valtype or (sp.valtype == 0x7E) != m.memories[0].limits.is64:
        return None
    return sp, low


def _instrument_module(m: CoreModule, acc: AccessorInstance, moved: ModuleData | None) -> bytes:
    replaced = instrumented_sections(m, moved) if moved is not None else {}
    entries = [export_entry(memory_export_name(mem), 0x02, mem.index) for mem in acc.memories]
    entries += [export_entry(global_export_name(g), 0x03, g.index) for g in acc.globals]
    names = [memory_export_name(mem) for mem in acc.memories] + [global_export_name(g) for g in acc.globals]
    for name in names:
        if name in m.exports:
            raise UnsupportedComponentError(f"a core module already exports `{name}`, a name this tool reserves")
    sec = m.section(7)
    if sec is None:
        return rebuild(m, replaced, {7: encode_u32(len(entries)) + b"".join(entries)})
    r = Reader(m.raw, sec.payload_start, sec.end)
    n = r.u32()
    replaced[7] = encode_u32(n + len(entries)) + bytes(m.raw[r.pos : sec.end]) + b"".join(entries)
    return rebuild(m, replaced, {})


def instrument(c: Component, prefix: str = LOCAL_PREFIX, *, move_data: bool = False) -> tuple[bytes, ComponentPlan]:
    """The instrumented component and the plan of what to read back from it.

    ``move_data`` moves the initial data of root-level modules into data
    modules the runtime must define (``plan.data_modules``, see data_modules.py),
    where that cannot change what init sees.
    """
    plan = ComponentPlan(prefix)
    replaced: dict[int, bytes] = {}
    module_state: dict[int, AccessorInstance | None] = {}

    for ci, entry in enumerate(c.core_instances):
        if entry.module is None:
            continue
        d = c.at(Sort.CORE_MODULE, entry.module)
        if d.kind != "defined":
            how = d.kind
            if d.kind == "alias":
                outer = d.entry.kind == 2  # type: ignore[union-attr]
                how = "aliased from an outer component" if outer else "aliased from an instance's export"
            raise UnsupportedComponentError(
                f"core instance {ci} instantiates a core module that is {how} rather than defined "
                "in the same component; its state cannot be rewritten"
            )
        si = d.section
        if si not in module_state:
            module_state[si] = _stateful_parts(c, si, c.modules[si])
        acc = module_state[si]
        if acc is not None:
            plan.cores.append(
                CorePlan(ci, si, dataclasses.replace(acc, core_instance=ci))
            )

    moves = find_movable(c, module_state) if move_data else None
    for si, acc in module_state.items():
        if acc is not None:
            replaced[si] = _instrument_module(c.modules[si], acc, moves.get(si) if moves else None)

    definitions: dict[int, ComponentPlan] = {}
    for ii, inst in enumerate(c.instances):
        if inst.component is None:
            continue
        d = c.at(Sort.COMPONENT, inst.component)
        if d.kind != "defined":
            continue  # an imported component's state is not ours to snapshot
        if d.section not in definitions:
            # A definition is instrumented once, with local export names, whatever its instance count.
            sub, definitions[d.section] = instrument(c.components[d.section], LOCAL_PREFIX)
            if not definitions[d.section].is_empty:
                replaced[d.section] = sub
        sub_plan = definitions[d.section]
        if not sub_plan.is_empty:
            plan.nested.append(NestedPlan(ii, d.section, _with_prefix(sub_plan, f"{prefix}c{ii}-")))

    plan.has_reset = any(core.accessor.resets or core.accessor.stack for core in plan.cores)
    parts: list[bytes | memoryview] = [c.raw[:8]]
    for si, s in enumerate(c.sections):
        if si in replaced:
            parts.append(encode_section(s.id, replaced[si]))
        else:
            parts.append(c.raw[s.start : s.end])
    if not plan.is_empty:
        parts.extend(_accessor_sections(c, plan))
    if moves:
        # After the accessor's core module and instance: the data modules come last in both spaces.
        added = 1 if plan.cores else 0
        sections, plan.data_modules = component_sections(
            c, moves, [(core.core_instance, core.module_section) for core in plan.cores],
            c.count(Sort.CORE_TYPE), c.count(Sort.CORE_MODULE) + added,
        )  # fmt: skip
        parts.extend(sections)
    return b"".join(parts), plan


def _accessor_sections(c: Component, plan: ComponentPlan) -> list[bytes]:
    out: list[bytes] = []
    func = c.count(Sort.FUNC)
    exports: list[bytes] = []
    if plan.cores:
        accessor = build_accessor([core.accessor for core in plan.cores])
        module = c.count(Sort.CORE_MODULE)
        out.append(encode_section(1, accessor))
        instance = c.count(Sort.CORE_INSTANCE)
        args = sorted({(core.accessor.import_module, core.core_instance) for core in plan.cores})
        out.append(enc.section(2, [enc.core_instantiate(module, args)]))
        # Core names inside the accessor, paired with the export names they are lifted to.
        lifted: list[tuple[str, str, int]] = []  # (core export, component export, type slot)
        if plan.has_reset:
            lifted.append(("reset", "reset", 0))
        for core in plan.cores:
            ci = core.core_instance
            lifted.append((f"state-{ci}", f"state-i{ci}", 1))
            for m in core.accessor.memories:
                read_type = 3 if m.limits.is64 else 2
                lifted.append((f"read-{ci}-{m.index}", f"read-i{ci}-m{m.index}", read_type))
                lifted.append((f"scan-{ci}-{m.index}", f"scan-i{ci}-m{m.index}", 4))
            if core.accessor.descriptors is not None:
                lifted.append((f"fds-{ci}", f"fds-i{ci}", 1))
        memory = c.count(Sort.CORE_MEMORY)
        core_func = c.count(Sort.CORE_FUNC)
        aliases = [enc.alias_core_export(Sort.CORE_MEMORY, instance, "memory")]
        aliases += [enc.alias_core_export(Sort.CORE_FUNC, instance, name) for name, _, _ in lifted]
        out.append(enc.section(6, aliases))
        t0 = c.count(Sort.TYPE)
        out.append(
            enc.section(
                7,
                [
                    enc.func_type([], None),
                    enc.func_type([], enc.STRING),
                    enc.func_type([("offset", enc.U32), ("len", enc.U32)], enc.STRING),
                    enc.func_type([("offset", enc.U64), ("len", enc.U32)], enc.STRING),
                    enc.func_type([("page", enc.U32), ("count", enc.U32)], enc.STRING),
                ],
            )
        )
        canons = []
        for i, (_, _, slot) in enumerate(lifted):
            if slot == 0:
                canons.append(b"\x00\x00" + encode_u32(core_func + i) + b"\x00" + encode_u32(t0))
            else:
                canons.append(enc.canon_lift(core_func + i, memory, t0 + slot))
        out.append(enc.section(8, canons))
        for _, name, _ in lifted:
            exports.append(enc.export(f"{plan.prefix}{name}", Sort.FUNC, func))
            func += 1
    if plan.nested:
        aliases = []
        for n in plan.nested:
            for name in n.plan.local_exports():
                aliases.append(enc.alias_instance_export(Sort.FUNC, n.instance, f"{LOCAL_PREFIX}{name}"))
                exports.append(enc.export(f"{plan.prefix}c{n.instance}-{name}", Sort.FUNC, func))
                func += 1
        out.append(enc.section(6, aliases))
    out.append(enc.section(11, exports))
    return out
