"""A component with no init to run: its free allocator memory zeroed all the same.

componentize-py pre-initializes at build time, so the data segments of the
module that owns libc's memory already hold a heap full of freed objects.
Here the memory is rebuilt from those segments (as instantiation would lay it
out before any code runs), the free-memory step zeroes what the allocator
does not hold (free_memory.py), and that module's data segments are encoded
again from the result; nothing runs, and nothing else of the component
changes. Where the step does not apply, the component is returned unchanged.
"""

from __future__ import annotations

from .data_modules import constant_segment
from .errors import UnsupportedComponentError
from .free_memory import OwnerState, zero_free_memory
from .options import NoteSink
from .rewrite import replace_module_data
from .runtime import validate_component
from .state import MemoryState
from .wasm.component import Component, Sort, core_modules, parse_component

__all__ = ["zero_free_memory_without_init"]

_PAGE = 65536


def zero_free_memory_without_init(component: bytes, *, on_note: NoteSink | None = None) -> bytes:
    """``component`` with wasi-libc malloc's free memory zeroed in its initial memory, where recognised.

    Nothing of the component runs. ``on_note(level, sentence)`` hears what
    was done ("info") or why nothing was ("detail"); then the input comes
    back unchanged.
    """
    note = on_note if on_note is not None else lambda level, text: None
    try:
        parsed = parse_component(memoryview(component))
    except UnsupportedComponentError as e:
        note("detail", f"free allocator memory was left as it is: {e}")
        return component
    built: dict[int, tuple[int, MemoryState]] = {}  # core instance -> (module section, its initial memory)

    def owner_state(core_instance: int) -> OwnerState | str:
        section, why = _initial_memory(parsed, core_instance)
        if isinstance(why, str):
            return why
        built[core_instance] = (section, why)
        return OwnerState(why)

    outcome = zero_free_memory(parsed, owner_state)
    if not outcome.applied:
        note("detail", outcome.message)
        return component
    ((section, memory),) = built.values()
    output = replace_module_data(parsed, section, memory)
    validate_component(output, [m.raw for m in core_modules(parsed)])
    note("info", outcome.message)
    return output


def _writes_imported_memory(c: Component, owner: object) -> bool:
    """Whether a module of ``c`` or of a component nested in it, but ``owner``, initialises an imported memory."""
    for m in c.modules.values():
        if m is not owner and m.imported_memories and any(not passive for passive, _ in m.data_segments):
            return True
    return any(_writes_imported_memory(nested, owner) for nested in c.components.values())


def _initial_memory(c: Component, core_instance: int) -> tuple[int, MemoryState | str]:
    """The module section a core instance instantiates and its memory 0 as its data segments lay it out
    (or why that cannot be known without running the component)."""
    d = c.at(Sort.CORE_INSTANCE, core_instance)
    module_index = getattr(d.entry, "module", None)
    if d.kind != "instantiate" or module_index is None or c.at(Sort.CORE_MODULE, module_index).kind != "defined":
        return -1, "the memory's core instance is not an instantiation of a module defined in the component"
    section = c.at(Sort.CORE_MODULE, module_index).section
    if sum(1 for e in c.core_instances if e.module == module_index) != 1:
        return section, "the memory's module is instantiated more than once"
    if _writes_imported_memory(c, c.modules[section]):
        return section, "another core module has active data segments for a memory it imports"
    m = c.modules[section]
    memory = bytearray(m.memories[0].limits.minimum * _PAGE)
    for passive, raw in m.data_segments:
        if passive:
            continue
        segment = constant_segment(raw)
        if segment is None or segment[0] != 0 or segment[1]:
            return section, "a data segment of the memory's module has an offset that is not a constant"
        _, _, offset, data = segment
        if offset + len(data) > len(memory):
            return section, "a data segment of the memory's module lies outside its initial memory"
        memory[offset : offset + len(data)] = data
    return section, MemoryState(m.memories[0].limits.minimum, [(0, bytes(memory))])
