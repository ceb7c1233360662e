"""The public Python API: bytes in, pre-initialized bytes out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .__about__ import __version__
from .errors import (
    ComponentInitError,
    ConfigError,
    HostError,
    InitExportError,
    MissingInitExportError,
    OutputInvalidError,
    UnsupportedComponentError,
    release_frames,
)
from .fileio import PendingWrite
from .first_call import build_env_warning
from .first_call import reset_first_call as _reset_first_call
from .free_memory import OwnerState, zero_free_memory
from .instrument import ComponentPlan, instrument, refuse_table_mutation
from .options import DEFAULT_INIT_FUNC, DEFAULT_TIMEOUT, HostDefiner, InitOptions, NoteSink, OutputSink, WasiOptions
from .readback import Invoker, read_back
from .rewrite import find_init_removal, rewrite_component
from .runtime import CompileError, async_api_hint, check_input, refuse_malformed_before, run_init, validate_component
from .state import ComponentState
from .wasm.component import Component, Sort, core_modules, instance_export_names, parse_component
from .wasm.reader import Reader, encode_name, encode_u32
from .wave import parse_spec, resolve_init_name

__all__ = [
    "PROCESSED_BY_SECTION", "Invoker", "pre_initialize", "pre_initialize_file", "pre_initialize_unchecked",
    "pre_initialize_with",
]  # fmt: skip

#: Custom section recording that this tool (and which version) produced the output.
PROCESSED_BY_SECTION = "hatch-component-init"


#: A pre-initialized component, and the check that it is valid (run it before using the bytes).
Unchecked = tuple[bytes, Callable[[], None]]


def pre_initialize(
    component: bytes,
    *,
    init_func: str = DEFAULT_INIT_FUNC,
    keep_init_func: bool = False,
    wasi: WasiOptions | None = WasiOptions(),
    timeout: float | None = DEFAULT_TIMEOUT,
    max_memory: int | None = None,
    on_output: OutputSink | None = None,
    host: HostDefiner | None = None,
    code_cache: bool = True,
    reset_first_call: bool = True,
    zero_free_memory: bool = True,
    on_note: NoteSink | None = None,
) -> bytes:
    """Run ``init_func`` of ``component`` once and return a component that starts in that state.

    ``init_func`` names a function export (``component-init``), a function in an
    exported instance (``example:demo/setup.init``), and may carry WAVE
    arguments (``load("words", 3)``). The init export is removed from the output
    unless ``keep_init_func``. ``wasi=None`` gives the guest no WASI at all
    (every import traps if called). ``on_output`` receives what the guest
    writes to stdout/stderr during init. ``host(linker)`` may add functions,
    instances and resources for init to the ``wasmtime.component.Linker``
    (after WASI, which it may shadow; imports it leaves out get trapping
    stand-ins). ``code_cache`` keeps the compiled code in the cache directory
    (``$HATCH_COMPONENT_INIT_CACHE_DIR``, else the user's cache directory), so
    that later runs on this component, or on a rebuild of it with new data,
    skip compiling. ``reset_first_call`` lets a componentize-py app's
    first-call setup (reading the run-time environment and arguments, reseeding
    `random`) run again in every instance of the output, where it is
    recognised with certainty (see first_call.py); ``False`` keeps what init
    left. ``zero_free_memory`` zeroes the allocator's free memory in the
    snapshot where wasi-libc's malloc is recognised with certainty (see
    free_memory.py), so that the output carries no freed objects; ``False``
    keeps those bytes. ``on_note(level, sentence)`` hears what such steps did, and why not
    ("detail"). Raises a subclass of
    :class:`hatch_component_init.errors.ComponentInitError`.
    """
    output, check = pre_initialize_unchecked(
        component, init_func=init_func, keep_init_func=keep_init_func, wasi=wasi, timeout=timeout,
        max_memory=max_memory, on_output=on_output, host=host, code_cache=code_cache,
        reset_first_call=reset_first_call, zero_free_memory=zero_free_memory, on_note=on_note,
    )  # fmt: skip
    check()
    return output


def pre_initialize_unchecked(
    component: bytes,
    *,
    init_func: str = DEFAULT_INIT_FUNC,
    keep_init_func: bool = False,
    wasi: WasiOptions | None = WasiOptions(),
    timeout: float | None = DEFAULT_TIMEOUT,
    max_memory: int | None = None,
    on_output: OutputSink | None = None,
    host: HostDefiner | None = None,
    code_cache: bool = True,
    reset_first_call: bool = True,
    zero_free_memory: bool = True,
    on_note: NoteSink | None = None,
) -> Unchecked:
    """:func:`pre_initialize`, returning the output before it is validated, with the check that does it.

    A caller that writes the output starts writing while the check runs, and
    keeps (renames) what it wrote only if the check passes.
    """
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"the timeout must be a positive number of seconds, not {timeout!r}")
    if timeout is not None and math.isinf(timeout):
        timeout = None
    if max_memory is not None and not 0 < max_memory < 1 << 63:
        raise ConfigError(f"the memory limit must be a positive number of bytes below 2**63, not {max_memory!r}")
    options = InitOptions(
        init_func=init_func,
        keep_init_func=keep_init_func,
        wasi=wasi if wasi is not None else WasiOptions(enabled=False),
        timeout=timeout,
        max_memory=max_memory,
        host=host,
        code_cache=code_cache,
        reset_first_call=reset_first_call,
        zero_free_memory=zero_free_memory,
    )
    build_env = tuple(name for name, _ in options.wasi.env) if options.wasi.enabled else ()
    return _pipeline(
        component, init_func, keep_init_func,
        lambda instrumented, plan, check_code: run_init(instrumented, plan, options, on_output, check_code),
        move_data=True, first_call=_FirstCall(reset_first_call, build_env, on_note), zero_free=zero_free_memory,
    )  # fmt: skip


def pre_initialize_with(
    component: bytes,
    run: Callable[[bytes], Invoker],
    *,
    init_func: str = DEFAULT_INIT_FUNC,
    keep_init_func: bool = False,
    granted_dirs: int = 0,
    reset_first_call: bool = True,
    zero_free_memory: bool = True,
    on_note: NoteSink | None = None,
) -> bytes:
    """Pre-initialize ``component`` in a runtime the caller provides.

    ``run(instrumented)`` receives the instrumented component, instantiates it
    however it likes (its own engine, linker, WASI and host functions), calls
    its init function once and returns an :class:`Invoker`: an object whose
    ``call(name, *ints)`` calls a function export of that instance by name and
    returns its result (a ``str``, or None). The state is read back through it
    and the original component rewritten. ``init_func`` names the init export
    (for its removal unless ``keep_init_func``). ``granted_dirs`` is how many
    directories the runtime preopened for WASI, so that those descriptors are
    not taken for files init left open. ``reset_first_call``,
    ``zero_free_memory`` and ``on_note`` are :func:`pre_initialize`'s.
    """
    name = parse_spec(init_func).name

    def run_and_read(instrumented: bytes, plan: ComponentPlan, check_code: Callable[[], None]) -> ComponentState:
        check_code()
        try:
            invoker = run(instrumented)
        except ComponentInitError:
            raise
        except Exception as e:
            raise HostError(f"the runtime callback failed: {type(e).__name__}: {e}{async_api_hint(str(e))}") from e
        try:
            return read_back(invoker, plan, granted_dirs, name)
        except ComponentInitError:
            raise
        except Exception as e:
            raise HostError(f"reading the state through the runtime callback's invoker failed: {type(e).__name__}: {e}") from e

    output, check = _pipeline(
        component, init_func, keep_init_func, run_and_read, first_call=_FirstCall(reset_first_call, (), on_note),
        zero_free=zero_free_memory,
    )
    check()
    return output


@dataclass(frozen=True, slots=True)
class _FirstCall:
    """Whether to reset componentize-py's first-call state, and for whom to say what happened."""

    reset: bool
    #: Names of the environment variables given to init.
    build_env: tuple[str, ...]
    on_note: NoteSink | None

    def apply(self, parsed: Component, plan: ComponentPlan, state: ComponentState) -> None:
        note = self.on_note if self.on_note is not None else lambda level, text: None
        if not self.reset:
            note("detail", "componentize-py's first-call state was kept as init left it, as asked")
            return
        outcome = _reset_first_call(parsed, plan, state)
        note("info" if outcome.applied else "detail", outcome.message)
        if outcome.applied and self.build_env:
            note("warning", build_env_warning(self.build_env))


def _pipeline(
    component: bytes,
    init_func: str,
    keep_init_func: bool,
    run: Callable[[bytes, ComponentPlan, Callable[[], None]], ComponentState],
    *,
    move_data: bool = False,
    first_call: _FirstCall | None = None,
    zero_free: bool = True,
) -> Unchecked:
    """Parse, instrument, ``run`` (init and read back), rewrite the original; and the check that validates it.

    ``run(instrumented, plan, check_code)`` must call ``check_code()`` before
    running anything, unless it runs code that already passed it (our
    runtime's compile cache). ``move_data``: ``run`` defines the plan's data
    modules (our runtime does; a caller's runtime gets a component that needs
    nothing but its own imports). ``first_call``: the first-call step's
    settings (default: applied, nobody told). ``zero_free``: zero the
    allocator's free memory in the snapshot (told to the first-call step's
    listener).
    """
    view = memoryview(component)
    try:
        parsed = parse_component(view)
    except UnsupportedComponentError as e:
        if e.offset is not None:
            refuse_malformed_before(component, e.offset)
        raise
    call = parse_spec(init_func)
    _refuse_already_initialized(parsed, call.name)
    removal = None
    try:
        if not keep_init_func:
            try:
                removal = find_init_removal(parsed, call.name)
            except InitExportError:
                pass  # run_init reports a missing export best: it lists what Wasmtime sees
        instrumented, plan = instrument(parsed, move_data=move_data)
    except UnsupportedComponentError:
        check_input(component, parsed)  # a malformed input is reported as malformed, even if also unsupported
        raise

    def check_code() -> None:
        try:
            refuse_table_mutation(parsed)
        except UnsupportedComponentError:
            check_input(component, parsed)
            raise

    try:
        state = run(instrumented, plan, check_code)
    except CompileError as e:
        check_input(component, parsed)  # a malformed input is reported as such, at its offset
        raise OutputInvalidError(
            "Wasmtime accepts the input but not the instrumented component; this is a bug in "
            f"hatch-component-init, please report it with the input component. {e}"
        ) from e
    except Exception as e:
        release_frames(e)
        raise
    first_call = first_call or _FirstCall(True, (), None)
    first_call.apply(parsed, plan, state)
    _zero_free_memory(parsed, plan, state, zero_free, first_call.on_note)
    if not keep_init_func and removal is None:
        removal = find_init_removal(parsed, call.name)
    output = rewrite_component(parsed, plan, state, removal, trailer=_processed_by())
    known_valid = [m.raw for m in core_modules(parsed)]
    return output, lambda: validate_component(output, known_valid)


def _zero_free_memory(
    parsed: Component, plan: ComponentPlan, state: ComponentState, enabled: bool, on_note: NoteSink | None
) -> None:
    """The free-memory step on the root's snapshot, told to ``on_note``."""
    note = on_note if on_note is not None else lambda level, text: None
    if not enabled:
        note("detail", "free allocator memory was kept as init left it, as asked")
        return

    def owner_state(core_instance: int) -> OwnerState | None:
        core = next((core for core in plan.cores if core.core_instance == core_instance), None)
        if core is None or core_instance not in state.cores:
            return None
        memories = [m.index for m in core.accessor.memories]
        if 0 not in memories:
            return None
        snapshot = state.cores[core_instance]
        by_global = {g.index: value for g, value in zip(core.accessor.globals, snapshot.globals)}

        def global_value(index: int) -> int | None:
            value = by_global.get(index)
            return int.from_bytes(value, "little") if value is not None else None

        return OwnerState(snapshot.memories[memories.index(0)], global_value)

    outcome = zero_free_memory(parsed, owner_state)
    note("info" if outcome.applied else "detail", outcome.message)


def processed_by(parsed: Component) -> str | None:
    """What our custom section in ``parsed`` says produced it ("hatch-component-init X.Y"), if it has one."""
    for section in parsed.sections:
        if section.id != 0:
            continue
        reader = Reader(parsed.raw, section.payload_start, section.end, parsed.base)
        try:
            if reader.name() == PROCESSED_BY_SECTION:
                return bytes(reader.take(section.end - reader.pos)).decode("utf-8", "replace")
        except ComponentInitError:
            continue  # a malformed custom section is someone else's; it says nothing about us
    return None


def _refuse_already_initialized(parsed: Component, init_name: str) -> None:
    """An output of ours without the init export: say so, instead of "no such export".

    The name is read every way the run reads it (`resolve_init_name`), so
    Wizer's spelling finds an export we kept as surely as ours does.
    """
    producer = processed_by(parsed)
    if producer is None:
        return

    def present(iface: str | None, func: str) -> bool | None:
        for export in parsed.exports:
            if iface is None and export.name == func and export.sort == Sort.FUNC:
                return True
            if iface is not None and export.name == iface and export.sort == Sort.INSTANCE:
                names = instance_export_names(parsed, export.index)
                return True if names is None or func in names else None
        return None

    if resolve_init_name(init_name, present):
        return
    raise MissingInitExportError(
        f"the component was already pre-initialized (by {producer}, as its `{PROCESSED_BY_SECTION}` custom "
        f"section records), and its init export `{init_name}` was removed then. Pre-initialize the original "
        "component instead, or keep the export next time with --keep-init-func (hook option `keep-init-func`)"
    )


def _processed_by() -> bytes:
    payload = encode_name(PROCESSED_BY_SECTION) + f"hatch-component-init {__version__}".encode()
    return b"\x00" + encode_u32(len(payload)) + payload


def pre_initialize_file(input_path: Path, output_path: Path, **kwargs: object) -> bytes:
    """Read ``input_path``, pre-initialize it and write ``output_path`` atomically; returns the output bytes.

    ``output_path`` may be ``input_path``: it is replaced only once the output is complete and valid.
    """
    data = Path(input_path).read_bytes()
    output, check = pre_initialize_unchecked(data, **kwargs)  # type: ignore[arg-type]
    pending = PendingWrite(Path(output_path), output)  # written while the check runs
    try:
        check()
    except BaseException:
        pending.discard()
        raise
    pending.commit()
    return output
