"""The only module that talks to Wasmtime: run init in the instrumented component and read its state."""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import re
import threading
import time
from contextlib import contextmanager
from ctypes import byref, pointer
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as cm

from .async_abi import call_async, call_raw_async, instantiate_async, is_async
from .compile_cache import load_or_compile
from .errors import (
    ComponentInitError,
    HostError,
    InitExportError,
    MissingInitExportError,
    InitFailedError,
    InvalidComponentError,
    OutputInvalidError,
    UnsupportedComponentError,
)
from .host_imports import GUEST_ERRORS, define_imports, extern_items, first_lines, stand_in_called
from .readback import PAGE, read_back
from .instrument import ComponentPlan
from .options import InitOptions, OutputSink
from .state import ComponentState
from .suggest import close_matches
from .versions import wasmtime_version
from .wasm.component import Component, core_modules, parse_component, stub_component
from .winch import use_winch
from .wave import InitCall, convert_args, parse_spec, resolve_init_name, wit_type_name

__all__ = [
    "CompileError",
    "async_api_hint",
    "async_imports",
    "check_component",
    "check_input",
    "make_engine",
    "refuse_malformed_before",
    "run_init",
    "validate_component",
]

GUEST_STDERR_TAIL = 4000


def make_engine(*, epoch: bool = False, baseline: bool = False, code_cache: bool = True) -> wasmtime.Engine:
    """An engine with every feature a component may use.

    ``baseline`` picks Winch, Wasmtime's baseline compiler: the instrumented
    component runs once, for init, so compiling it in 1.4 s instead of 3.4 s
    (an 18 MB componentize-py app) matters more than init running ~50% slower. ``code_cache`` turns on Wasmtime's own code
    cache; the instrumented component has ours (compile_cache.py).
    """
    config = wasmtime.Config()
    if code_cache:
        config.cache = True
    config.cranelift_opt_level = "none"
    if baseline:
        use_winch(config)
    config.wasm_multi_memory = True
    config.wasm_memory64 = True
    config.wasm_threads = True
    config.shared_memory = True
    config.epoch_interruption = epoch
    # Component-model proposals the C API can switch on; wasmtime-py's Config names none of them.
    for feature in ("async", "async_stackful", "more_async_builtins", "map", "implements", "canonical_names"):
        getattr(ffi, f"wasmtime_config_wasm_component_model_{feature}_set")(config.ptr(), True)
    return wasmtime.Engine(config)


def validate_component(data: bytes, known_valid: Iterable[memoryview] = ()) -> None:
    """Check that Wasmtime accepts ``data``; an error here means our rewrite is wrong.

    Compiling the output would cost as much as compiling the input again, so it
    is checked in two cheaper parts that together cover what a compile checks:
    every core module is validated on its own (code, data, types), and the
    component with each module reduced to a stub of the same interface is
    compiled, which type-checks instances, aliases, lifts, lowers and exports.
    Modules byte-identical to one of ``known_valid`` (the input's, which
    Wasmtime compiled) are not validated again; the others are validated on
    worker threads (Wasmtime runs without the GIL) while the stub compiles.
    """
    engine = make_engine()
    known: dict[int, list[memoryview]] = {}
    for raw in known_valid:
        known.setdefault(len(raw), []).append(raw)

    errors: list[BaseException] = []

    def check(modules: list[memoryview]) -> None:
        try:
            for module in modules:
                wasm = bytes(module)
                if not any(wasm == bytes(raw) for raw in known.get(len(wasm), ())):
                    wasmtime.Module.validate(engine, wasm)
        except BaseException as e:  # raised below, in the caller's thread
            errors.append(e)

    try:
        parsed = parse_component(memoryview(data), with_data=False)
        # Two workers, the largest module first: the big module's validation overlaps everything else.
        ordered = sorted((m.raw for m in core_modules(parsed)), key=len, reverse=True)
        workers = [threading.Thread(target=check, args=(ordered[k::2],), daemon=True) for k in (0, 1)]
        for worker in workers:
            worker.start()
        try:
            cm.Component(engine, stub_component(parsed))
        finally:
            for worker in workers:
                worker.join()
        if errors:
            raise errors[0]
    except (wasmtime.WasmtimeError, ComponentInitError) as e:
        raise OutputInvalidError(
            "the pre-initialized component does not validate; this is a bug in hatch-component-init, "
            f"please report it with the input component. Wasmtime said: {first_lines(str(e), 6)}"
        ) from e


class CompileError(InitFailedError):
    """Wasmtime refused to compile the instrumented component: the input's fault or ours (see `check_input`)."""


def check_input(data: bytes, parsed: Component) -> None:
    """Raise InvalidComponentError, at the offset Wasmtime names, if Wasmtime refuses ``data``.

    Our parser reads only what the transform needs (code and type bodies are
    skipped), so the rest of a malformed input first shows up when Wasmtime
    compiles the instrumented component. Checking every input up front would
    cost ~0.07 s (0.35 s with a cold code cache) on an 18 MB componentize-py
    component; this runs only on the way to an error (that compile failed, or
    the input was refused as unsupported), so a malformed input is reported
    as malformed, at its offset, and not as a bug of ours or a missing feature.
    Checks as `validate_component` does; the input itself is compiled only
    when the fault is at the component level, where Wasmtime stops early.
    """
    engine = make_engine()
    for module in core_modules(parsed):
        try:
            wasmtime.Module.validate(engine, bytes(module.raw))
        except wasmtime.WasmtimeError as e:
            # Wasmtime counts a module's offsets from the module's own first byte.
            raise _invalid(f"core module at offset {module.base:#x} is invalid", e, module.base) from e
    try:
        cm.Component(engine, stub_component(parsed))
        return
    except wasmtime.WasmtimeError:
        pass
    # The fault is at the component level, where a compile of the input itself stops early,
    # naming the input's own offset (the stub's offsets differ).
    try:
        cm.Component(engine, bytes(data))
    except wasmtime.WasmtimeError as e:
        raise _invalid("the component is invalid", e, 0) from e


def refuse_malformed_before(data: bytes, offset: int) -> None:
    """Raise InvalidComponentError if Wasmtime calls ``data`` malformed at ``offset`` or before it.

    For an input our parser refused at ``offset`` as a byte it does not know:
    either a newer binary format (unsupported) or a corrupt byte (malformed),
    which only Wasmtime can tell. Compiles the whole input, on the way to an
    error only.
    """
    refusal = _compile_refusal(data)
    if refusal is not None:
        error, cause = refusal
        if isinstance(error, InvalidComponentError) and error.offset is not None and error.offset <= offset:
            raise error from cause


def _compile_refusal(data: bytes) -> tuple[ComponentInitError, wasmtime.WasmtimeError] | None:
    """Our error for Wasmtime's refusal to compile ``data`` (the whole input, a compile's cost), and Wasmtime's; or None."""
    try:
        cm.Component(make_engine(), bytes(data))
    except wasmtime.WasmtimeError as e:
        return _invalid("the component is invalid", e, 0), e
    return None


def check_component(data: bytes) -> None:
    """Raise InvalidComponentError, at the offset Wasmtime names, if Wasmtime refuses ``data``.

    For a component shipped as it is (no init run): the checks of
    `check_input`, which cost a fraction of a compile. A component our parser
    declines (it only needs to be read for a snapshot) is compiled whole.
    """
    try:
        parsed = parse_component(memoryview(data), with_data=False)
    except UnsupportedComponentError:
        refusal = _compile_refusal(data)
        if refusal is not None:
            raise refusal[0] from refusal[1]
        return
    check_input(data, parsed)


_WASMTIME_OFFSET = re.compile(r"\s*\(?at offset (0x[0-9a-fA-F]+|\d+)\)?")


#: How Wasmtime words a refusal of a valid component that uses a component-model proposal it was
#: not configured for. (Core proposals are left out: a corrupt code byte can look like one.)
_FEATURE_OFF = re.compile(r"requires? the component model [\w -]+ feature|the `cm-[\w-]+` feature is not active")


def _invalid(what: str, e: wasmtime.WasmtimeError, base: int) -> ComponentInitError:
    text = _describe(e)
    found = _WASMTIME_OFFSET.search(text)
    offset = base + int(found.group(1), 0) if found else base
    said = " ".join(_WASMTIME_OFFSET.sub("", text).split())
    if _FEATURE_OFF.search(said):
        reason = said.rpartition("Caused by:")[2].strip()
        return UnsupportedComponentError(
            f"the component uses a WebAssembly proposal that {_PYTHON_WASMTIME} cannot switch on, so it "
            f"cannot run it: {reason} (at offset {offset:#x})"
        )
    return InvalidComponentError(f"{what}: Wasmtime says: {said}", offset)


class _Output:
    """Collects guest output, forwards it to the sink, keeps stderr's tail for error messages."""

    def __init__(self, sink: OutputSink | None) -> None:
        self.sink = sink
        self.stderr = bytearray()

    def writer(self, stream: str):  # type: ignore[no-untyped-def]
        def write(data: bytes) -> None:
            if stream == "stderr":
                self.stderr += data
                del self.stderr[:-GUEST_STDERR_TAIL]
            if self.sink is not None:
                self.sink(stream, bytes(data))

        return write

    def text(self) -> str:
        """The end of the guest's stderr."""
        return self.stderr.decode("utf-8", "replace")

    def tail(self) -> str:
        text = self.text().strip()
        if not text:
            return ""
        if self.sink is not None:
            # Already shown as it came (usually the guest's own traceback): once is enough.
            return " (the guest's output above says why)"
        return f"; the guest's stderr ended with:\n{text}"


def settle_access_times(dirs: tuple[tuple[Path, str], ...]) -> None:
    """Read one byte of every file the guest may read, before the guest runs.

    Under Linux's default `relatime`, the first read of a file whose access time
    is not newer than its modification time updates the access time. If the
    guest's read did that, a second build would stat a different access time,
    and stale copies of stat results left in guest memory would differ between
    builds. After this, the guest sees the same times on every build (for 24
    hours under `relatime`; always under `noatime`).
    """
    for host, _ in dirs:
        for root, _dirnames, files in os.walk(host):
            for name in files:
                try:
                    with open(os.path.join(root, name), "rb") as f:
                        f.read(1)
                except OSError:
                    pass  # unreadable for us means unreadable for the guest too


def _wasi_config(options: InitOptions, out: _Output) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.stdout_custom = out.writer("stdout")
    wasi.stderr_custom = out.writer("stderr")
    if options.wasi.env:
        wasi.env = [list(pair) for pair in options.wasi.env]
    for host, guest in options.wasi.dirs:
        wasi.preopen_dir(str(host), guest, False)
    return wasi


@contextmanager
def _deadline(engine: wasmtime.Engine, store: wasmtime.Store, timeout: float | None) -> Iterator[None]:
    if timeout is None or not timeout < threading.TIMEOUT_MAX:
        store.set_epoch_deadline(1 << 62)
        yield
        return
    store.set_epoch_deadline(1)
    timer = threading.Timer(timeout, engine.increment_epoch)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _describe(e: Exception) -> str:
    return first_lines(str(e))


def _function_exports(component: cm.Component, engine: wasmtime.Engine) -> list[str]:
    """The functions a user can name as init: every function export but componentize-py's own."""
    names: list[str] = []
    for name, ext in extern_items(component.type.exports(engine)):
        if isinstance(ext, cm.FuncType):
            names.append(name)
        elif isinstance(ext, cm.ComponentInstanceType):
            names += [
                f"{name}.{n}"
                for n, e in extern_items(ext.exports(engine))
                if isinstance(e, cm.FuncType) and not _componentize_py_internal(name, n, e)
            ]
    return names


def _componentize_py_internal(instance: str, name: str, func: cm.FuncType) -> bool:
    """componentize-py's build-time entry point, `exports.init(app-name, symbols, stub-wasi)`.

    Every componentize-py component exports it; it runs componentize-py's own
    pre-initialization and fails outside that build, so it is never the app's init.
    """
    if (instance, name) != ("exports", "init"):
        return False
    params = [param for param, _type in func.params]
    return params[:1] == ["app-name"]


def _close_names(wanted: str, names: list[str]) -> list[str]:
    """Names a typo of ``wanted`` likely meant (compared without the interface or version part too)."""
    short = {name.rpartition(".")[2].partition("@")[0]: name for name in names}
    close = close_matches(wanted, names)
    close += [short[n] for n in close_matches(wanted.rpartition(".")[2], list(short))]
    return list(dict.fromkeys(close))[:1]


def _find_init(
    instance: cm.Instance, store: wasmtime.Store, component: cm.Component, engine: wasmtime.Engine, call: InitCall, prefix: str
) -> cm.Func:
    def lookup(iface: str | None, name: str) -> cm.Func | None:
        if iface is None:
            return instance.get_func(store, name)
        where = instance.get_export_index(store, iface)
        index = instance.get_export_index(store, name, where) if where is not None else None
        return instance.get_func(store, index) if index is not None else None

    func = resolve_init_name(call.name, lookup)
    if func is None:
        available = [n for n in _function_exports(component, engine) if not n.startswith(prefix)]
        listing = ", ".join(f"`{n}`" for n in available) or "none"
        guess = "".join(f" (did you mean `{n}`?)" for n in _close_names(call.name, available))
        raise MissingInitExportError(
            f"the component has no function export `{call.name}`{guess}. Function exports: {listing}. "
            "Name the init function (`name`, `interface.name` or `interface.name@version`) with "
            "-f/--init-func, or the hook option `init-func`."
        )
    return func


#: Who runs init, for messages about what it cannot do.
_PYTHON_WASMTIME = f"the wasmtime Python package ({wasmtime_version()})"


def async_imports(component: cm.Component, engine: wasmtime.Engine) -> list[str]:
    """The `async func`s ``component`` imports: with any, Wasmtime runs it only through its async API."""
    found: list[str] = []
    for name, ty in extern_items(component.type.imports(engine)):
        if isinstance(ty, cm.FuncType) and is_async(ty):
            found.append(name)
        elif isinstance(ty, cm.ComponentInstanceType):
            found += [f"{name}#{n}" for n, t in extern_items(ty.exports(engine)) if isinstance(t, cm.FuncType) and is_async(t)]
    return found


def _compile(
    instrumented: bytes, plan: ComponentPlan, cache: bool, check_code: Callable[[], None]
) -> tuple[wasmtime.Engine, cm.Component, list[tuple[str, wasmtime.Module]]]:
    """Compile with Winch, or with Cranelift where Winch lacks a feature the component uses; and the
    plan's data modules, for the same engine.

    ``check_code()`` runs before anything is compiled (only code that passed it
    enters the compile cache, so a cache hit skips it).
    """
    engine = make_engine(epoch=True, baseline=True, code_cache=False)
    # The data modules compile on a worker while the component loads: Wasmtime runs both without
    # the GIL, and a cache hit's own work (reading and hashing the entry) is about as long.
    data = _DataModules(engine, plan)
    try:
        component = load_or_compile(engine, instrumented, "winch", use_cache=cache, before_compile=check_code)
        return engine, component, data.result()
    except wasmtime.WasmtimeError:
        data.result(raising=False)
    engine = make_engine(epoch=True, code_cache=False)
    try:
        component = load_or_compile(engine, instrumented, "cranelift-none", use_cache=cache, before_compile=check_code)
    except wasmtime.WasmtimeError as e:
        raise CompileError(f"Wasmtime cannot compile the component: {_describe(e)}") from e
    return engine, component, _DataModules(engine, plan).result()


class _DataModules:
    """The plan's data modules, compiled for ``engine`` on a worker thread (none for a plan without)."""

    def __init__(self, engine: wasmtime.Engine, plan: ComponentPlan) -> None:
        self._modules: list[tuple[str, wasmtime.Module]] = []
        self._error: BaseException | None = None
        self._worker = None
        if plan.data_modules:
            self._worker = threading.Thread(
                target=self._compile, args=(engine, plan), name="component-init-data", daemon=True
            )
            self._worker.start()

    def _compile(self, engine: wasmtime.Engine, plan: ComponentPlan) -> None:
        for data in plan.data_modules:
            try:
                self._modules.append((data.import_name, wasmtime.Module(engine, data.wasm)))
            except wasmtime.WasmtimeError as e:
                self._error = CompileError(
                    f"Wasmtime cannot compile the data module `{data.import_name}`: {_describe(e)}"
                )
                self._error.__cause__ = e
                return
            except BaseException as e:  # raised in the caller's thread
                self._error = e
                return

    def result(self, raising: bool = True) -> list[tuple[str, wasmtime.Module]]:
        if self._worker is not None:
            self._worker.join()
        if self._error is not None and raising:
            raise self._error
        return self._modules


def _define_data_modules(linker: cm.Linker, modules: list[tuple[str, wasmtime.Module]]) -> None:
    root = linker.root()
    try:
        for name, module in modules:
            root.add_module(name, module)
    finally:
        root.close()


def run_init(
    instrumented: bytes,
    plan: ComponentPlan,
    options: InitOptions,
    on_output: OutputSink | None,
    check_code: Callable[[], None] = lambda: None,
) -> ComponentState:
    """Instantiate the instrumented component, call init, reset host handles, read every state.

    ``check_code()`` refuses code that cannot be snapshotted; it is skipped
    when the compiled code comes from the cache (see `_compile`).
    """
    engine, component, data_modules = _compile(instrumented, plan, options.code_cache, check_code)
    # A component importing an `async func` runs only through Wasmtime's async API (async_abi.py);
    # everything else keeps the synchronous path, but for an `async func` init, called through it.
    async_store = bool(async_imports(component, engine))
    store = wasmtime.Store(engine)
    linker = cm.Linker(engine)
    try:
        if options.max_memory is not None:
            store.set_limits(memory_size=options.max_memory)
        out = _Output(on_output)
        wasi = None
        if options.wasi.enabled:
            settle_access_times(options.wasi.dirs)
            wasi = _wasi_config(options, out)
        _define_data_modules(linker, data_modules)
        define_imports(linker, store, component, engine, wasi, options.host)

        call = parse_spec(options.init_func)
        with _deadline(engine, store, options.timeout):
            try:
                if async_store:
                    instance = instantiate_async(linker, store, component)
                else:
                    instance = linker.instantiate(store, component)
            except GUEST_ERRORS as e:
                _refuse_sync_host_for_async(e, options)
                raise InitFailedError(
                    f"instantiating the component failed: {_explain(e, options, plan)}{out.tail()}", guest_stderr=out.text()
                ) from e
            init = _find_init(instance, store, component, engine, call, plan.prefix)
            params = init.type(store).params
            if call.args is None and params:
                sig = ", ".join(f"{n}: {wit_type_name(t)}" for n, t in params)
                raise InitExportError(
                    f"the init function `{call.name}` takes arguments ({sig}); give them as a call, "
                    f"e.g. -f '{call.name}(...)'"
                )
            args = convert_args(call, params)
            try:
                if async_store or is_async(init.type(store)):
                    call_async(init, store, *args)
                else:
                    init(store, *args)
            except GUEST_ERRORS as e:
                raise InitFailedError(
                    f"the init function `{call.name}` failed: {_explain(e, options, plan)}{out.tail()}", guest_stderr=out.text()
                ) from e
            try:
                granted = len(options.wasi.dirs) if options.wasi.enabled else 0
                invoker = WasmtimeInvoker(instance, store, async_calls=async_store)
                return read_back(invoker, plan, granted, call.name)
            except GUEST_ERRORS as e:
                raise InitFailedError(
                    f"reading the state after init failed: {_explain(e, options, plan)}{out.tail()}", guest_stderr=out.text()
                ) from e
    finally:
        # Free the store here and now: left to the garbage collector (a failed init's exception
        # keeps its frames alive), it can be freed during interpreter shutdown, when Wasmtime
        # calls back into Python from its own thread and aborts with a Rust panic.
        linker.close()
        store.close()
        _settle_at_exit()


#: Wasmtime's words when an `async func` import is bound to a function of synchronous type.
_SYNC_FOR_ASYNC = re.compile(
    r"component imports (?:instance `(?P<instance>[^`]+)`.*?instance export `(?P<export>[^`]+)` has the wrong type"
    r"|function `(?P<func>[^`]+)`).*?type mismatch with async",
    re.S,
)


def _refuse_sync_host_for_async(e: Exception, options: InitOptions) -> None:
    """Name the host definition at fault when ``host`` defined an `async func` import with `add_func`."""
    found = _SYNC_FOR_ASYNC.search(str(e))
    if found is None or options.host is None:
        return
    name = getattr(options.host, "__qualname__", repr(options.host))
    imported = found["func"] or f"{found['instance']}#{found['export']}"
    raise HostError(
        f"the host definitions `{name}` define `{imported}`, which the component imports as an "
        f"`async func`, with a synchronous function: {_PYTHON_WASMTIME} can define only those (its `add_func`). "
        "Leave that import out of the host definitions (init then gets a stand-in that traps if called), "
        "or move the call out of init."
    ) from e


#: Wasmtime's words when a component that needs its async API is run without it.
_NEEDS_ASYNC_API = ("`*_async` functions are used instead", "cannot synchronously call an async-lifted export")


def async_api_hint(text: str) -> str:
    """What to tell a caller whose runtime ran a component that needs Wasmtime's async API without it."""
    if not any(words in text for words in _NEEDS_ASYNC_API):
        return ""
    return (
        ". The component imports `async func`s or its init is one: a runtime for it must instantiate it and "
        "call its exports through Wasmtime's async API (`instantiate_async`, `call_async`), which the wasmtime "
        "Python package does not wrap yet; `pre_initialize` runs such components itself"
    )


#: How long after the last store was closed Wasmtime's worker threads may still release Python callbacks.
_SETTLE_SECONDS = 0.25
#: When the last store was closed (monotonic clock), or None before the first.
_last_close: float | None = None


def _settle_at_exit() -> None:
    """Keep the interpreter alive briefly at exit if a store was just closed.

    Wasmtime's WASI streams release our output callbacks on its own worker
    threads. A worker that needs the GIL once Python has begun to finalize is
    ended by Python with a forced unwind, which Rust reports as a panic
    ("panic in a function that cannot unwind") after an otherwise clean exit.
    """
    global _last_close
    if _last_close is None:
        atexit.register(_wait_for_workers)
    _last_close = time.monotonic()


def _wait_for_workers() -> None:
    assert _last_close is not None
    remaining = _SETTLE_SECONDS - (time.monotonic() - _last_close)
    if remaining > 0:
        try:
            time.sleep(remaining)
        except KeyboardInterrupt:
            pass  # Ctrl-C after the work was done (the command's output written): it only ends the wait


class WasmtimeInvoker:
    """Calls the accessor exports of an instance in a Wasmtime store (our own runtime's invoker)."""

    def __init__(
        self,
        instance: cm.Instance,
        store: wasmtime.Store,
        *,
        async_calls: bool = False,
    ) -> None:
        self.instance = instance
        self.store = store
        #: Whether the store runs through Wasmtime's async API, which then takes every call.
        self.async_calls = async_calls

    def _func(self, name: str) -> cm.Func:
        func = self.instance.get_func(self.store, name)
        if func is None:
            raise InitFailedError(f"the instrumented component lacks the accessor export `{name}`")
        return func

    def call(self, name: str, *args: int) -> Any:
        if self.async_calls:
            return call_async(self._func(name), self.store, *args)
        return self._func(name)(self.store, *args)

    def texts(self, name: str, calls: list[tuple[int, ...]]) -> Iterator[bytes]:
        """The latin-1 string results of calling ``name`` with each argument tuple, as bytes, in order.

        For a 38 MB heap, Wasmtime spends ~0.12 s copying results out of the
        guest and Python ~0.1 s decoding them; a worker thread makes the calls
        (Wasmtime runs without the GIL) while this thread decodes, one result
        ahead. The store is only ever used by one thread at a time.
        """
        func = self._func(name)
        params = [ty for _, ty in func.type(self.store).params]
        pending: queue.Queue[Any] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def work() -> None:
            for args in calls:
                if stop.is_set():
                    return
                pending.put(self._raw_call(func, params, args))
            pending.put(None)

        def guarded() -> None:
            try:
                work()
            except BaseException as e:  # handed to the reading thread, which raises it
                pending.put(e)

        worker = threading.Thread(target=guarded, name="component-init-read", daemon=True)
        worker.start()
        try:
            for _ in calls:
                item = pending.get()
                if isinstance(item, BaseException):
                    raise item
                yield _take_latin1(item)
        finally:
            stop.set()
            while worker.is_alive() or not pending.empty():
                try:
                    item = pending.get(timeout=0.05)
                except queue.Empty:
                    continue
                if isinstance(item, ffi.wasmtime_component_val_t):
                    ffi.wasm_byte_vec_delete(byref(item.of.string))
            worker.join()

    def _raw_call(self, func: cm.Func, params: list[Any], args: tuple[int, ...]) -> Any:
        """Call ``func``; its string result stays in Wasmtime's buffer for `_take_latin1`."""
        values = (ffi.wasmtime_component_val_t * len(args))()
        for i, (ty, value) in enumerate(zip(params, args)):
            ty.convert_to_c(self.store, value, pointer(values[i]))
        result = ffi.wasmtime_component_val_t()
        if self.async_calls:
            call_raw_async(func, self.store, values, len(args), byref(result))
        else:
            error = ffi.wasmtime_component_func_call(
                byref(func._func), self.store._context(), values, len(args), byref(result), 1
            )
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)
        if result.kind != ffi.WASMTIME_COMPONENT_STRING.value:
            ffi.wasmtime_component_val_delete(byref(result))
            raise InitFailedError("an accessor export returned something other than a string")
        return result


def _take_latin1(result: Any) -> bytes:
    """The bytes of a string result whose characters are all below 256, and free Wasmtime's buffer."""
    vec = result.of.string
    try:
        if not vec.size:
            return b""
        raw = (ctypes.c_char * vec.size).from_address(ctypes.addressof(vec.data.contents))
        return str(raw, "utf-8").encode("latin-1")
    finally:
        ffi.wasm_byte_vec_delete(byref(vec))


#: Wasmtime's words when the store's memory limit refuses a memory's initial size.
_INITIAL_SIZE_OVER_LIMIT = "exceeds memory limits"


def _explain(e: Exception, options: InitOptions, plan: ComponentPlan) -> str:
    text = _describe(e)
    # Wasmtime's message is a wasm backtrace (often a kilobyte of frames) followed by its cause; the
    # cause says what failed. The backtrace stays in the exception's __cause__ for verbose output.
    lines = []
    for line in str(e).splitlines():
        line = line.strip()
        if not line or re.match(r"(\d+: +0x[0-9a-f]+ - |at )", line) or line in (
            "Caused by:", "wasm backtrace:", "error while executing at wasm backtrace:"
        ) or line.startswith("note: using the `WASMTIME_BACKTRACE_DETAILS"):
            continue
        lines.append(re.sub(r"^\d+: ", "", line))
    reason = stand_in_called(str(e)) or "; ".join(lines) or text
    if "interrupt" in text and options.timeout is not None:
        return f"it ran longer than the time limit of {options.timeout:g} s (raise it with --timeout) [{reason}]"
    message = f"the guest exited with status {e.code}" if isinstance(e, wasmtime.ExitTrap) else reason
    limit = options.max_memory
    if limit is None:
        return message
    if _INITIAL_SIZE_OVER_LIMIT in text:
        return (
            f"a memory's initial size is larger than the memory limit of {limit:,} bytes set by --max-memory / "
            f"`max-memory`; raise the limit [{text}]"
        )
    # A growth the limit refuses is no trap: `memory.grow` returns -1 and the guest fails its own way,
    # after which Wasmtime refuses every call into the instance, so the sizes cannot be read back.
    # The note is given when some memory could have reached the limit, and never otherwise.
    if _can_outgrow(plan, limit):
        return (
            f"{message} (a memory of this component can grow past the memory limit of {limit:,} bytes set by "
            "--max-memory / `max-memory`, and `memory.grow` fails inside the guest when it would; "
            "raise the limit if init needs more)"
        )
    return message


def _can_outgrow(plan: ComponentPlan, limit: int) -> bool:
    """Whether a memory defined in the component may grow past ``limit`` bytes (its maximum allows it)."""
    for core in plan.cores:
        for memory in core.accessor.memories:
            if memory.limits.maximum is None or memory.limits.maximum * PAGE > limit:
                return True
    return any(_can_outgrow(n.plan, limit) for n in plan.nested)
