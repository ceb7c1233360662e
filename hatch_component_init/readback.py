"""Reading the state back after init, through the accessor exports, over any runtime.

Whoever ran init hands us an *invoker*: something that calls an export of the
running instrumented component by name with integer arguments. Our own
Wasmtime runtime is one invoker; a caller with its own runtime provides
another (see ``api.pre_initialize_with``). Nothing here imports Wasmtime.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from .accessor import MEMORY_SIZE_BYTES
from .errors import HostError, InitFailedError
from .instrument import ComponentPlan
from .state import ComponentState, CoreState, MemoryState
from .wasm.core_module import NUM_TYPES

__all__ = ["PAGE", "Invoker", "read_back"]

PAGE = 65536
#: Pages scanned per call, and bytes copied out per call: small enough that an invoker that
#: pipelines (``texts``) keeps both cores busy, large enough that calls cost nothing extra.
SCAN_PAGES = 1 << 14
READ_CHUNK = 4 << 20


class Invoker(Protocol):
    """Calls a function export of the running instrumented component.

    The accessors take only integers (u32/u64) and return nothing or a string
    whose characters are bytes (latin-1); ``call`` returns that string, or
    None for functions without a result.
    """

    def call(self, name: str, *args: int) -> str | None: ...


def read_back(invoker: Invoker, plan: ComponentPlan, granted_dirs: int, init_name: str) -> ComponentState:
    """After init: refuse descriptors it left open, reset host-handle bookkeeping, read every state.

    ``granted_dirs`` is how many directories the runtime preopened: wasi-libc
    numbers them right after stdio, so they are not counted as left open.
    """
    _refuse_open_descriptors(_open_descriptors(invoker, plan), granted_dirs, init_name)
    _call_resets(invoker, plan)
    return _read_component(invoker, plan)


def _text(invoker: Invoker, name: str, *args: int) -> bytes:
    result = invoker.call(name, *args)
    if not isinstance(result, str):
        raise HostError(f"the invoker's call of the accessor `{name}` returned {type(result).__name__}, not a string")
    return result.encode("latin-1")


def _texts(invoker: Invoker, name: str, calls: list[tuple[int, ...]]) -> Iterator[bytes]:
    """``_text`` of each call in order; through the invoker's own ``texts`` where it has one.

    Our Wasmtime invoker has it: it copies the next result out of the guest
    while this thread decodes the last one.
    """
    texts = getattr(invoker, "texts", None)
    if texts is None:
        return (_text(invoker, name, *args) for args in calls)
    return texts(name, calls)  # type: ignore[no-any-return]


def _call_resets(invoker: Invoker, plan: ComponentPlan) -> None:
    if plan.has_reset:
        invoker.call(f"{plan.prefix}reset")
    for n in plan.nested:
        _call_resets(invoker, n.plan)


#: wasi-libc numbers stdin, stdout and stderr 0-2; the granted directories come after them.
_FIRST_PREOPEN = 3


def _refuse_open_descriptors(open_fds: list[int], granted: int, init_name: str) -> None:
    """Refuse a snapshot that would hold descriptors a new instance does not have.

    The libc reset forgets every descriptor, so a file object init kept would
    fail with "Bad file descriptor" at run time. Files and directories can only
    be opened once the granted directories are in the table, so descriptors
    after stdio beyond that many were opened by init. They are counted, not
    told apart by number: a libc may number its preopens past a gap (wasi-libc
    of componentize-py 0.21 puts the first at 7), so the lowest ones are taken
    for the directories. A socket opened before any file access is not seen.
    """
    beyond_stdio = sorted(fd for fd in set(open_fds) if fd >= _FIRST_PREOPEN)
    leaked = beyond_stdio[granted:]
    if not leaked:
        return
    numbers = ", ".join(str(fd) for fd in leaked)
    raise InitFailedError(
        f"the init function `{init_name}` left {len(leaked)} file, directory or socket "
        f"descriptor{'s' if len(leaked) > 1 else ''} open (number{'s' if len(leaked) > 1 else ''} {numbers}). "
        "A pre-initialized instance starts without them, so using them later would fail with "
        "\"Bad file descriptor\". Read what init needs into memory and close it before init returns "
        "(e.g. `with open(path) as f: DATA = f.read()`), then run again."
    )


def _open_descriptors(invoker: Invoker, plan: ComponentPlan) -> list[int]:
    """Descriptors open in a wasi-libc of the component, which its reset is about to forget."""
    found: list[int] = []
    for core in plan.cores:
        if core.accessor.descriptors is not None:
            flags = _text(invoker, f"{plan.prefix}fds-i{core.core_instance}")
            found += [fd for fd, open_ in enumerate(flags) if open_]
    for n in plan.nested:
        found += _open_descriptors(invoker, n.plan)
    return found


def _read_component(invoker: Invoker, plan: ComponentPlan) -> ComponentState:
    state = ComponentState()
    for core in plan.cores:
        ci = core.core_instance
        raw = _text(invoker, f"{plan.prefix}state-i{ci}")
        pos = 0
        sizes = []
        for _ in core.accessor.memories:
            sizes.append(int.from_bytes(raw[pos : pos + MEMORY_SIZE_BYTES], "little"))
            pos += MEMORY_SIZE_BYTES
        values = []
        for g in core.accessor.globals:
            width = NUM_TYPES[g.valtype][1]
            values.append(raw[pos : pos + width])
            pos += width
        memories = [
            MemoryState(pages, _read_memory(invoker, plan.prefix, ci, m.index, pages))
            for m, pages in zip(core.accessor.memories, sizes)
        ]
        state.cores[ci] = CoreState(memories, values)
    for n in plan.nested:
        state.nested[n.instance] = _read_component(invoker, n.plan)
    return state


def _read_memory(invoker: Invoker, prefix: str, ci: int, mi: int, pages: int) -> list[tuple[int, bytes]]:
    scan = f"{prefix}scan-i{ci}-m{mi}"
    read = f"{prefix}read-i{ci}-m{mi}"
    bitmap = bytearray()
    for first in range(0, pages, SCAN_PAGES):
        count = min(SCAN_PAGES, pages - first)
        flags = _text(invoker, scan, first, count)
        if len(flags) != count:  # a flag past the memory's pages would make the runs below loop forever
            raise HostError(f"the invoker's call of the accessor `{scan}` returned {len(flags)} page flags for {count} pages")
        bitmap += flags
    runs: list[tuple[int, int]] = []  # non-zero page runs, in bytes
    page = 0
    while True:
        page = bitmap.find(1, page)
        if page < 0:
            break
        end = bitmap.find(0, page)
        if end < 0:
            end = pages
        runs.append((page * PAGE, end * PAGE))
        page = end
    calls = [(off, min(READ_CHUNK, end - off)) for start, end in runs for off in range(start, end, READ_CHUNK)]
    results = _texts(invoker, read, calls)
    chunks: list[tuple[int, bytes]] = []
    for start, end in runs:
        parts = [next(results) for _ in range(start, end, READ_CHUNK)]
        chunks.append((start, parts[0] if len(parts) == 1 else b"".join(parts)))
    return chunks
