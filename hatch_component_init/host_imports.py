"""What the component's imports are bound to during init: the one place that owns the host side.

WASI p2 (and wasi:http's types) come from Wasmtime, with two overrides that
keep init sandboxed and reproducible: `wasi:random` is a fixed-seed stream and
an outgoing HTTP request traps. Every other import, WASI or not, gets a
stand-in: resource types the guest can name and pass around, and functions
that trap with a message naming the import, so init runs unless it actually
calls one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

import wasmtime
from wasmtime import component as cm

from .async_abi import is_async
from .errors import HostError, InitFailedError

__all__ = [
    "GUEST_ERRORS", "ImportCalled", "define_imports", "extern_items", "first_lines", "stand_in_called",
    "stand_in_message", "wasi_packages_provided",
]  # fmt: skip

#: WASI 0.2 packages that `Linker.add_wasip2` provides.
_WASIP2_PACKAGES = frozenset({"cli", "clocks", "filesystem", "io", "random", "sockets"})
#: Interfaces of those packages that Wasmtime leaves out unless asked (unstable in WASI 0.2).
_NOT_PROVIDED = frozenset({"wasi:clocks/timezone"})
_WASI_NAME = re.compile(r"wasi:(?P<package>[a-z0-9-]+)/(?P<interface>[a-z0-9-]+)@0\.2\.\d+$")


class ImportCalled(Exception):
    """Raised by a stand-in import; Wasmtime turns it into a trap, the message names the import."""


#: What a failed call into the guest raises.
GUEST_ERRORS = (wasmtime.WasmtimeError, wasmtime.Trap, ImportCalled)


def wasi_packages_provided(names: list[str], *, wasi: bool) -> set[str]:
    """Which of the component's import names Wasmtime's own WASI provides (the rest get stand-ins)."""
    if not wasi:
        return set()
    provided = set()
    for name in names:
        m = _WASI_NAME.match(name)
        if m is None or f"wasi:{m['package']}/{m['interface']}" in _NOT_PROVIDED:
            continue
        if m["package"] in _WASIP2_PACKAGES or m["package"] == "http":
            provided.add(name)
    return provided


def define_imports(
    linker: cm.Linker,
    store: wasmtime.Store,
    component: cm.Component,
    engine: wasmtime.Engine,
    wasi_config: wasmtime.WasiConfig | None,
    host: Callable[[cm.Linker], None] | None = None,
) -> None:
    """Bind every import of ``component``: WASI from Wasmtime when ``wasi_config`` is given, then
    whatever ``host`` defines (it may shadow WASI), then stand-ins for everything still missing.

    WASI is the synchronous variant even for a store that runs through Wasmtime's async API:
    the async one (`add_wasip2_async`) needs a Tokio runtime that the C API does not provide
    for its futures, and its clocks abort the process (a Rust panic) when a guest waits.
    Synchronous host functions are called from such a store as from any other."""
    imports = extern_items(component.type.imports(engine))
    provided = wasi_packages_provided([name for name, _ in imports], wasi=wasi_config is not None)
    try:
        if wasi_config is not None:
            linker.add_wasip2()
            store.set_wasi(wasi_config)
            if any(name.startswith("wasi:http/") for name in provided):
                linker.add_wasi_http()
                store.set_wasi_http()
            _override_provided(linker, imports, engine)
    except wasmtime.WasmtimeError as e:
        raise InitFailedError(f"cannot provide the component's imports: {first_lines(str(e))}") from e
    if host is not None:
        _call_host(linker, host)
    try:
        missing = [(n, t) for n, t in imports if n not in provided]
        _define_stand_ins(linker, missing, engine)
        _define_async_stand_ins(linker, missing, engine)
    except wasmtime.WasmtimeError as e:
        raise InitFailedError(f"cannot provide the component's imports: {first_lines(str(e))}") from e


def _call_host(linker: cm.Linker, host: Callable[[cm.Linker], None]) -> None:
    name = getattr(host, "__qualname__", repr(host))
    linker.allow_shadowing = True
    try:
        host(linker)
    except Exception as e:
        raise HostError(f"the host definitions `{name}` failed: {type(e).__name__}: {first_lines(str(e))}") from e
    finally:
        linker.allow_shadowing = False


def stand_in_message(name: str) -> str:
    """What a stand-in says when init calls it."""
    return (
        f"the import `{name}` was called during init, but init is given only WASI and the host "
        "definitions (`host=`, --host, the hook's `host`); define it there, or move that call out of init"
    )


#: How the trap of Wasmtime's own stand-ins (the `async func`s, see `_define_async_stand_ins`) names the import.
_ASYNC_STAND_IN_TRAP = re.compile(r"unknown import: `([^`]+)` has not been defined")


def stand_in_called(text: str) -> str | None:
    """`stand_in_message` for the import named in ``text``, a Wasmtime error from an async stand-in, if it is one."""
    found = _ASYNC_STAND_IN_TRAP.search(text)
    return stand_in_message(found[1]) if found else None


def _stand_in(name: str) -> Callable[..., Any]:
    def call(store: Any, *args: Any) -> Any:
        raise ImportCalled(stand_in_message(name))

    return call


def _refuse_network(name: str) -> Callable[..., Any]:
    def call(store: Any, *args: Any) -> Any:
        raise ImportCalled(
            f"init may not use the network: it called `{name}`. Fetch what init needs before the build "
            "and grant it as a directory (--dir / `dirs`) instead"
        )

    return call


class _ResourceIds:
    """Host resource types for the stand-ins: one per distinct imported resource.

    A resource an interface `use`s from another (WASI 0.3's `terminal-stdin` exports
    `terminal-input`'s resource) is the same type in both instances, and must be
    defined as the same host type in both.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[cm.ResourceType, cm.ResourceType]] = []

    def host_type(self, imported: cm.ResourceType) -> cm.ResourceType:
        for other, host in self.seen:
            if other == imported:
                return host
        host = cm.ResourceType.host(0x6369_0001 + len(self.seen))
        self.seen.append((imported, host))
        return host


def _define_stand_ins(linker: cm.Linker, imports: list[tuple[str, Any]], engine: wasmtime.Engine) -> None:
    ids = _ResourceIds()
    root = linker.root()
    try:
        for name, ty in imports:
            _define_item(root, name, name, ty, engine, ids)
    finally:
        root.close()


def _define_item(
    where: cm.LinkerInstance, name: str, path: str, ty: Any, engine: wasmtime.Engine, ids: _ResourceIds
) -> None:
    if isinstance(ty, cm.FuncType):
        if is_async(ty):
            return  # by `_define_async_stand_ins`, after every other definition
        _unless_defined(lambda: where.add_func(name, _stand_in(path)))
    elif isinstance(ty, cm.ResourceType):
        _unless_defined(lambda: where.add_resource(name, ids.host_type(ty), lambda store, rep: None))
    elif isinstance(ty, cm.ComponentInstanceType):
        exports = extern_items(ty.exports(engine))
        # Resources first: the functions' types refer to them.
        exports.sort(key=lambda item: not isinstance(item[1], cm.ResourceType))
        with where.add_instance(name) as inst:
            for n, t in exports:
                _define_item(inst, n, f"{path}#{n}", t, engine, ids)
    # Modules, components and plain types cannot be stood in for; instantiation names them if they matter.


def _define_async_stand_ins(linker: cm.Linker, imports: list[tuple[str, Any]], engine: wasmtime.Engine) -> None:
    """Trapping stand-ins for the `async func`s among ``imports`` that nothing defined yet.

    Only Wasmtime's own `define_unknown_imports_as_traps` can define a function
    of async type through the C API (its `add_func_async` defines sync-typed
    ones). Given the component itself, it would also define every WASI 0.2
    instance imported under a version other than Wasmtime's (the import
    `wasi:cli/environment@0.2.9`, which Wasmtime provides as 0.2.x by semver)
    afresh, as traps, shadowing WASI. So it is given a component that imports
    only these functions, under their own names (types do not matter: the
    stand-ins are dynamically typed); resources and sync functions around
    them are ours, already defined.
    """
    wat = _async_imports_wat(imports, engine)
    if wat is not None:
        linker.define_unknown_imports_as_traps(cm.Component(engine, wasmtime.wat2wasm(wat)))


def _async_imports_wat(imports: list[tuple[str, Any]], engine: wasmtime.Engine) -> str | None:
    """A component that imports the `async func`s of ``imports`` under the same names, or None if there are none."""
    decls = []
    for name, ty in imports:
        if isinstance(ty, cm.FuncType) and is_async(ty):
            decls.append(f'(import "{name}" (func async))')
        elif isinstance(ty, cm.ComponentInstanceType):
            funcs = [n for n, t in extern_items(ty.exports(engine)) if isinstance(t, cm.FuncType) and is_async(t)]
            if not funcs:
                continue
            # Method and static names must refer to a resource of the instance; a method takes `self` first.
            resources = sorted({f.partition("]")[2].partition(".")[0] for f in funcs if f.startswith(("[method]", "[static]"))})
            items = [f'(export "{r}" (type $r{i} (sub resource)))' for i, r in enumerate(resources)]
            for f in funcs:
                self_param = ""
                if f.startswith("[method]"):
                    self_param = f' (param "self" (borrow $r{resources.index(f[8:].partition(".")[0])}))'
                items.append(f'(export "{f}" (func async{self_param}))')
            decls.append(f'(import "{name}" (instance {" ".join(items)}))')
    return f"(component {' '.join(decls)})" if decls else None


def _unless_defined(define: Callable[[], None]) -> None:
    """Define a stand-in only where the caller's host definitions left a gap."""
    try:
        define()
    except wasmtime.WasmtimeError as e:
        if "defined twice" not in str(e):
            raise


def _override_provided(linker: cm.Linker, imports: list[tuple[str, Any]], engine: wasmtime.Engine) -> None:
    """Shadow the few WASI functions that would break the sandbox or reproducibility."""
    rng = _DeterministicRandom()
    random = {
        "get-random-bytes": lambda store, n: rng.take(n),
        "get-random-u64": lambda store: rng.u64(),
        "get-insecure-random-bytes": lambda store, n: rng.take(n),
        "get-insecure-random-u64": lambda store: rng.u64(),
        "insecure-seed": lambda store: (rng.u64(), rng.u64()),
    }
    linker.allow_shadowing = True
    root = linker.root()
    try:
        for name, ty in imports:
            if not isinstance(ty, cm.ComponentInstanceType):
                continue
            funcs = [n for n, t in extern_items(ty.exports(engine)) if isinstance(t, cm.FuncType)]
            if name.startswith("wasi:random/"):
                overrides = {f: random[f] for f in funcs if f in random}
            elif name.startswith("wasi:http/outgoing-handler@"):
                overrides = {f: _refuse_network(f"{name}#{f}") for f in funcs}
            else:
                continue
            with root.add_instance(name) as inst:
                for func, handler in overrides.items():
                    inst.add_func(func, handler)
    finally:
        root.close()
        linker.allow_shadowing = False


class _DeterministicRandom:
    """A fixed-seed byte stream for `wasi:random`, so the same input snapshots to the same bytes.

    Guests such as CPython seed hash tables and `random` from WASI randomness
    during init; with real entropy every build would differ.
    """

    def __init__(self) -> None:
        self.counter = 0
        self.buffer = b""

    def take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += hashlib.sha256(b"hatch-component-init/%d" % self.counter).digest()
            self.counter += 1
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")


def extern_items(externs: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, type) pairs of a component's or instance's imports or exports."""
    return [(name, ext.ty) for name, ext in externs.items()]


def first_lines(text: str, n: int = 12) -> str:
    """The first ``n`` non-blank lines of a Wasmtime message, on one line."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " ".join(lines[:n])
