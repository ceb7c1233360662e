"""Helpers for tests that compile WAT components, pre-initialize them and run the result."""

from __future__ import annotations

from typing import Any

import wasmtime
from wasmtime import component as cm

from hatch_component_init import WasiOptions, pre_initialize
from hatch_component_init.runtime import make_engine

#: A core module with a memory and a bump allocator, for lowering functions that return lists or strings.
BUMP_ALLOCATOR = """
  (core module $libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))"""

#: Imports `wasi:filesystem/preopens` as `$pre` (the component must be named `$root`).
PREOPENS_IMPORT = """
  (import "wasi:filesystem/types@0.2.0" (instance $types (export "descriptor" (type (sub resource)))))
  (alias export $types "descriptor" (type $descriptor))
  (type $preopens (instance
    (alias outer $root $descriptor (type $d))
    (type $own (own $d))
    (type $entry (tuple $own string))
    (type $entries (list $entry))
    (export "get-directories" (func (result $entries)))))
  (import "wasi:filesystem/preopens@0.2.0" (instance $pre (type $preopens)))"""

_ENGINE: wasmtime.Engine | None = None


def engine() -> wasmtime.Engine:
    """The engine the pre-initializer validates with, so compiling its output hits the code cache."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = make_engine()
    return _ENGINE


_APP_ENGINE: wasmtime.Engine | None = None


def app_engine() -> wasmtime.Engine:
    """The engine tests run componentize-py and componentize-js outputs with: every feature on, and Winch,
    Wasmtime's baseline compiler (as for init), since a test calls an 18 MB app a few times: 2 s of CPU to
    compile instead of Cranelift's 9 s. Winch lacks some proposals (tail calls): WAT shapes use ``engine``."""
    global _APP_ENGINE
    if _APP_ENGINE is None:
        _APP_ENGINE = make_engine(baseline=True)
    return _APP_ENGINE


#: The `wasmtime` CLI's options for the same reason: `wasmtime run` and `wasmtime serve` of a built app compile
#: it with Winch (the docs pages run the commands as users type them, with Cranelift).
CLI_WINCH = ("-C", "compiler=winch")


def engine_for(data: bytes) -> wasmtime.Engine:
    """``app_engine`` for a built app (componentize-py's are 14 MB and more), ``engine`` for a WAT shape."""
    return app_engine() if len(data) > 1 << 20 else engine()


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def printing_component(stream: str, module_body: str) -> bytes:
    """A component exporting ``component-init`` whose core module ``$m`` can write to WASI's ``stream``
    ("stdout" or "stderr"): ``module_body`` defines ``init`` (and its data) with ``$get-STREAM`` and
    ``$write`` (stream, pointer, length, result pointer) imported over memory ``libc.memory``."""
    return wat(
        f"""
(component $root
  (import "wasi:io/error@0.2.0" (instance $err (export "error" (type (sub resource)))))
  (alias export $err "error" (type $error))
  (type $streams (instance
    (alias outer $root $error (type $e))
    (export "error" (type $error (eq $e)))
    (export "output-stream" (type $os (sub resource)))
    (type $own-error (own $error))
    (type $stream-error (variant (case "last-operation-failed" $own-error) (case "closed")))
    (export "stream-error" (type $se (eq $stream-error)))
    (type $borrow (borrow $os))
    (type $bytes (list u8))
    (type $res (result (error $se)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" $borrow) (param "contents" $bytes) (result $res)))))
  (import "wasi:io/streams@0.2.0" (instance $streams (type $streams)))
  (alias export $streams "output-stream" (type $os))
  (type $std (instance
    (alias outer $root $os (type $o))
    (export "output-stream" (type $os (eq $o)))
    (type $own (own $os))
    (export "get-{stream}" (func (result $own)))))
  (import "wasi:cli/{stream}@0.2.0" (instance $std (type $std)))
  (core module $libc (memory (export "memory") 1))
  (core instance $libc (instantiate $libc))
  (alias export $std "get-{stream}" (func $get))
  (alias export $streams "[method]output-stream.blocking-write-and-flush" (func $write))
  (core func $get (canon lower (func $get)))
  (core func $write (canon lower (func $write) (memory (core memory $libc "memory"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "io" "get-{stream}" (func $get-{stream} (result i32)))
    (import "io" "write" (func $write (param i32 i32 i32 i32)))
    {module_body})
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "io" (instance (export "get-{stream}" (func $get)) (export "write" (func $write))))))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )


class Running:
    """A fresh instance of a component, with every import but WASI trapping; ``env`` and ``argv`` go to WASI."""

    def __init__(
        self, data: bytes, *, wasi: bool = True, env: dict[str, str] | None = None, argv: list[str] | None = None
    ) -> None:
        eng = engine_for(data)
        self.component = cm.Component(eng, data)
        self.store = wasmtime.Store(eng)
        self.output: list[tuple[str, bytes]] = []
        linker = cm.Linker(eng)
        if wasi:
            linker.add_wasip2()
            cfg = wasmtime.WasiConfig()
            cfg.stdout_custom = lambda b: self.output.append(("stdout", bytes(b)))
            cfg.stderr_custom = lambda b: self.output.append(("stderr", bytes(b)))
            if env:
                cfg.env = [[name, value] for name, value in env.items()]
            if argv:
                cfg.argv = argv
            self.store.set_wasi(cfg)
        else:
            linker.define_unknown_imports_as_traps(self.component)
        self.instance = linker.instantiate(self.store, self.component)

    def has(self, name: str) -> bool:
        return self.instance.get_export_index(self.store, name) is not None

    def call(self, name: str, *args: Any) -> Any:
        func = self.instance.get_func(self.store, name)
        assert func is not None, f"no export {name}"
        return func(self.store, *args)

    def stdout(self) -> bytes:
        return b"".join(d for s, d in self.output if s == "stdout")


def snapshot(data: bytes, **kwargs: Any) -> bytes:
    kwargs.setdefault("wasi", WasiOptions())
    return pre_initialize(data, **kwargs)
