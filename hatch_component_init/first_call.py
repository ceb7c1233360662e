"""componentize-py's once-per-instance setup: give it back to the instances that run the snapshot.

componentize-py's runtime (`libcomponentize_py_runtime.so`, linked into the
component as a core module of its own) reads the host's environment and
arguments into `os.environ` / `sys.argv` and reseeds `random` on the first
export call of an instance, guarded by a Rust `std::sync::Once`. Init is that
first call, so a plain snapshot holds a completed Once: every instance would
keep build-time env and argv and draw the same random numbers.

On wasm32 without threads a Once is one byte (0 incomplete, 3 complete) in the
runtime library's static data, which the dynamic linker placed at the
library's `memory_base` (a constant global the memory's module exports as
`libcomponentize_py_runtime.so:memory_base`), for the size the library's
`dylink.0` section gives. The memory's module holds that range's initial
contents in its own data segments. If, across init, exactly one byte of the
range changed and it went 0 -> 3, it is set back to 0 in the snapshot; in any
other case nothing changes and the outcome says why. No symbol names are
needed, and a component that is not componentize-py's is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data_modules import constant_segment
from .errors import InvalidComponentError
from .instrument import ComponentPlan
from .state import ComponentState, MemoryState
from .wasm.component import Component, CoreInstanceEntry, Sort
from .wasm.core_module import CoreModule
from .wasm.reader import Reader

__all__ = ["RUNTIME_LIBRARY", "FirstCallReset", "build_env_warning", "reset_first_call"]

#: The instantiation argument under which componentize-py links its runtime library.
RUNTIME_LIBRARY = "libcomponentize_py_runtime.so"
#: Rust's `Once` state bytes (std/src/sys/sync/once/no_threads.rs).
ONCE_INCOMPLETE = 0
ONCE_COMPLETE = 3
#: `dylink.0` subsection holding the library's memory size and alignment.
_DYLINK_MEM_INFO = 1


@dataclass(frozen=True, slots=True)
class FirstCallReset:
    """What the step did: ``applied`` (the snapshot was changed) and a sentence saying what or why not."""

    applied: bool
    message: str


class _NotRecognised(Exception):
    """The componentize-py pattern is not there with certainty; the message says what differs."""


def reset_first_call(c: Component, plan: ComponentPlan, state: ComponentState) -> FirstCallReset:
    """Mark componentize-py's first-call setup as not yet done in ``state`` (the root's), if recognised.

    ``state`` is changed in place only when the outcome says ``applied``.
    """
    users = {inst for e in c.core_instances for name, inst in e.args if name == RUNTIME_LIBRARY}
    if not users:
        return FirstCallReset(
            False, f"componentize-py's first-call state: nothing to reset, no core instance is linked as `{RUNTIME_LIBRARY}`"
        )
    try:
        if len(users) > 1:
            raise _NotRecognised(f"{len(users)} core instances are linked as `{RUNTIME_LIBRARY}`")
        memory_state, module, base, size = _runtime_data(c, plan, state, users.pop())
        before = _initial_bytes(module, base, size)
        after = _snapshot_bytes(memory_state, base, size)
        changed = [i for i in range(size) if before[i] != after[i]] if before != after else []
        if len(changed) != 1:
            raise _NotRecognised(f"{len(changed)} bytes of its static data changed during init, not exactly one")
        (offset,) = changed
        if (before[offset], after[offset]) != (ONCE_INCOMPLETE, ONCE_COMPLETE):
            raise _NotRecognised(
                f"the one byte that changed during init went {before[offset]} -> {after[offset]}, "
                f"not {ONCE_INCOMPLETE} -> {ONCE_COMPLETE}"
            )
    except _NotRecognised as e:
        return FirstCallReset(False, f"componentize-py's first-call state was left as init left it: {e}")
    _set_byte(memory_state, base + offset, ONCE_INCOMPLETE)
    return FirstCallReset(
        True,
        "componentize-py's first-call setup will run again in each instance: it reads the run-time "
        f"environment and arguments and reseeds `random` (one byte reset at address {base + offset:#x})",
    )


def _runtime_data(
    c: Component, plan: ComponentPlan, state: ComponentState, runtime: int
) -> tuple[MemoryState, CoreModule, int, int]:
    """The snapshot of the memory holding the runtime library's static data, the module defining
    that memory, and the data's address and size."""
    entry = _instantiation(c, runtime, f"`{RUNTIME_LIBRARY}`")
    size = _dylink_memory_size(c.modules[c.at(Sort.CORE_MODULE, entry.module).section])  # type: ignore[arg-type]
    env = dict(entry.args).get("env")
    if env is None:
        raise _NotRecognised(f"`{RUNTIME_LIBRARY}` is instantiated without an `env` instance")
    bundle = c.at(Sort.CORE_INSTANCE, env).entry
    items = {(name, sort): index for name, sort, index in getattr(bundle, "exports", ())}
    if ("__memory_base", Sort.CORE_GLOBAL) not in items or ("memory", Sort.CORE_MEMORY) not in items:
        raise _NotRecognised(f"the `env` of `{RUNTIME_LIBRARY}` does not give it `memory` and `__memory_base`")
    owner, global_name = _aliased_export(c, Sort.CORE_GLOBAL, items["__memory_base", Sort.CORE_GLOBAL])
    memory_owner, memory_name = _aliased_export(c, Sort.CORE_MEMORY, items["memory", Sort.CORE_MEMORY])
    if owner != memory_owner:
        raise _NotRecognised("its `__memory_base` and its memory come from different core instances")
    module = c.modules[c.at(Sort.CORE_MODULE, _instantiation(c, owner, "the memory's").module).section]  # type: ignore[arg-type]
    base = _constant_i32_global(module, global_name)
    # A valid component aliases only exports its instances have: the name is one of the module's.
    kind, memory_index = module.exports[memory_name]
    core = next((core for core in plan.cores if core.core_instance == owner), None)
    memories = [m.index for m in core.accessor.memories] if core is not None else []
    if kind != 0x02 or memory_index not in memories or owner not in state.cores:
        raise _NotRecognised("the memory it is linked to is not one this snapshot holds")
    if memory_index != 0 or len(module.memories) != 1 or module.imported_memories:
        raise _NotRecognised("the memory's module defines more than that one memory")
    return state.cores[owner].memories[memories.index(memory_index)], module, base, size


def _instantiation(c: Component, index: int, what: str) -> CoreInstanceEntry:
    entry = c.at(Sort.CORE_INSTANCE, index).entry
    # A bundle of exports is a CoreInstanceEntry without a module.
    if not isinstance(entry, CoreInstanceEntry) or entry.module is None:
        raise _NotRecognised(f"{what} core instance is not an instantiation of a module")
    if c.at(Sort.CORE_MODULE, entry.module).kind != "defined":
        raise _NotRecognised(f"{what} core module is not defined in the component")
    return entry


def _aliased_export(c: Component, sort: int, index: int) -> tuple[int, str]:
    """(core instance, export name) of a core item aliased from an instance's export."""
    d = c.at(sort, index)
    alias = d.entry
    if d.kind != "alias" or getattr(alias, "kind", None) != 1:
        raise _NotRecognised(f"its {Sort.NAMES[sort]} is not an export of another core instance")
    return alias.instance, str(alias.name_or_index)  # type: ignore[union-attr]


def _constant_i32_global(m: CoreModule, name: str) -> int:
    # The name of an export aliased as a global, so (in a valid component) a global export of ``m``.
    _, index = m.exports[name]
    g = next((g for g in m.globals if g.index == index), None)
    if g is None or g.mutable or g.valtype != 0x7F or g.init_bytes[:1] != b"\x41":
        raise _NotRecognised(f"`{name}` is not a constant i32 global of the memory's module")
    r = Reader(memoryview(g.init_bytes), 1)
    value = r.s32() % (1 << 32)
    if r.u8() != 0x0B:  # the expression's final `end` (an `end` can come nowhere else in it)
        raise _NotRecognised(f"`{name}` is not a single i32 constant")
    return value


def _dylink_memory_size(m: CoreModule) -> int:
    """The static data size from the module's `dylink.0` section, where a module may not keep data of its own."""
    if m.data_segments:
        raise _NotRecognised(f"`{RUNTIME_LIBRARY}` carries data segments of its own")
    for s in m.sections:
        if s.id != 0:
            continue
        r = Reader(m.raw, s.payload_start, s.end, m.base)
        if r.name() != "dylink.0":
            continue
        try:
            size = _memory_info(r)
        except InvalidComponentError as e:  # custom sections are not validated: any bytes can be there
            raise _NotRecognised(f"`{RUNTIME_LIBRARY}` has a malformed `dylink.0` section: {e}") from None
        if size is None:
            continue
        if size == 0:
            raise _NotRecognised(f"`{RUNTIME_LIBRARY}` has no static data")
        return size
    raise _NotRecognised(f"`{RUNTIME_LIBRARY}` has no `dylink.0` memory information")


def _memory_info(r: Reader) -> int | None:
    """The static data size in the memory information subsection of a `dylink.0` section's payload, if any."""
    while not r.at_end():
        kind = r.u8()
        body = r.sub(r.u32())
        if kind == _DYLINK_MEM_INFO:
            return body.u32()
    return None


def _initial_bytes(m: CoreModule, base: int, size: int) -> bytes:
    """Bytes [base, base + size) of memory 0 as ``m``'s active data segments initialise it."""
    out = bytearray(size)
    for passive, raw in m.data_segments:
        if passive:
            continue
        segment = constant_segment(raw)
        if segment is None or segment[0] != 0 or segment[1]:
            raise _NotRecognised("a data segment of the memory's module has an offset that is not a constant")
        _overlay(out, base, segment[2], segment[3])
    return bytes(out)


def _snapshot_bytes(memory: MemoryState, base: int, size: int) -> bytes:
    out = bytearray(size)
    for start, data in memory.chunks:
        _overlay(out, base, start, data)
    return bytes(out)


def _overlay(out: bytearray, base: int, start: int, data: bytes) -> None:
    """Copy the part of ``data`` (which lives at address ``start``) that falls in ``out`` (at ``base``)."""
    lo = max(base, start)
    hi = min(base + len(out), start + len(data))
    if lo < hi:
        out[lo - base : hi - base] = data[lo - start : hi - start]


def _set_byte(memory: MemoryState, address: int, value: int) -> None:
    for k, (start, data) in enumerate(memory.chunks):
        if start <= address < start + len(data):
            changed = bytearray(data)
            changed[address - start] = value
            memory.chunks[k] = (start, bytes(changed))
            return


def build_env_warning(names: tuple[str, ...]) -> str:
    """What happens to the variables given to init once the first-call setup runs again (it adds, never removes)."""
    listed = ", ".join(f"`{name}`" for name in names)
    return (
        f"the environment variables given to init ({listed}) stay in the app's `os.environ` at run time "
        "unless the run-time environment sets them: componentize-py adds the run-time environment to "
        "`os.environ`, it does not replace it"
    )
