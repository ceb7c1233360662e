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


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


class Running:
    """A fresh instance of a component, with every import but WASI trapping; ``env`` and ``argv`` go to WASI."""

    def __init__(
        self, data: bytes, *, wasi: bool = True, env: dict[str, str] | None = None, argv: list[str] | None = None
    ) -> None:
        self.component = cm.Component(engine(), data)
        self.store = wasmtime.Store(engine())
        self.output: list[tuple[str, bytes]] = []
        linker = cm.Linker(engine())
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
