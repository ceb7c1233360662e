"""The accessor core module: reads the memories and mutable globals of other core instances.

Components cannot export memories or globals, so the instrumented component
instantiates this module with every stateful core instance as an import and
lifts its functions. Results are written into the accessor's *own* memory and
lifted as latin1+utf16 strings: the guest's memories are never grown to return
data (a memory at its maximum must still be readable), and a latin-1 string
crosses into Python far faster than a ``list<u8>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from .wasm.core_module import NUM_TYPES, GlobalDef, MemoryDef

__all__ = ["AccessorInstance", "build_accessor", "HEADER"]

#: Bytes at the start of the accessor memory that hold the (ptr, len) pair a lifted string needs.
HEADER = 16
#: Bytes each memory contributes to the state dump: its size in pages as a u64.
MEMORY_SIZE_BYTES = 8

_STORE = {"i32": "i32.store", "i64": "i64.store", "f32": "f32.store", "f64": "f64.store", "v128": "v128.store"}


@dataclass(frozen=True, slots=True)
class AccessorInstance:
    """One core instance whose state the accessor reads, named ``i{core_instance}`` in its imports."""

    core_instance: int
    memories: tuple[MemoryDef, ...]
    globals: tuple[GlobalDef, ...]
    resets: tuple[str, ...]  # exported `() -> ()` functions to call before reading
    #: (stack pointer, stack low) globals of a C shadow stack in the first memory, if exported.
    stack: tuple[GlobalDef, GlobalDef] | None = None
    #: wasi-libc's `descriptor_table_get_ref(fd) -> entry or 0`, through which open descriptors are listed.
    descriptors: str | None = None
    #: wasi-libc's (`descriptor_table_remove(fd) -> int`, `__wasilibc_init_stdio() -> int`), called after
    #: the resets to replace the stdio descriptors with fresh ones (see instrument._stdio_renewal).
    stdio_renewal: tuple[str, str] | None = None

    @property
    def import_module(self) -> str:
        return f"i{self.core_instance}"


def memory_export_name(memory: MemoryDef) -> str:
    return f"__component_init_memory_{memory.index}"


def global_export_name(g: GlobalDef) -> str:
    return f"__component_init_global_{g.index}"


def state_size(inst: AccessorInstance) -> int:
    return MEMORY_SIZE_BYTES * len(inst.memories) + sum(NUM_TYPES[g.valtype][1] for g in inst.globals)


def _memtype(m: MemoryDef) -> str:
    idx = "i64 " if m.limits.is64 else ""
    if m.limits.shared:
        # A shared import needs a maximum; any one not below the actual maximum matches.
        top = (1 << 48) if m.limits.is64 else 65536
        return f"{idx}0 {top} shared"
    return f"{idx}0"


def build_accessor(instances: list[AccessorInstance]) -> bytes:
    """Compile the accessor module for ``instances``; its exports are listed by the instrument step."""
    imports: list[str] = []
    funcs: list[str] = []
    resets: list[str] = []
    for inst in instances:
        mod = inst.import_module
        for m in inst.memories:
            imports.append(f'(import "{mod}" "{memory_export_name(m)}" (memory $m{inst.core_instance}_{m.index} {_memtype(m)}))')
        for g in inst.globals:
            t = NUM_TYPES[g.valtype][0]
            imports.append(f'(import "{mod}" "{global_export_name(g)}" (global $g{inst.core_instance}_{g.index} (mut {t})))')
        for name in inst.resets:
            fid = f"$r{len(resets)}"
            imports.append(f'(import "{mod}" "{name}" (func {fid}))')
            resets.append(f"(call {fid})")
        if inst.stdio_renewal is not None:
            remove, init = inst.stdio_renewal
            ci = inst.core_instance
            imports.append(f'(import "{mod}" "{remove}" (func $rm{ci} (param i32) (result i32)))')
            imports.append(f'(import "{mod}" "{init}" (func $stdio{ci} (result i32)))')
            # Errors are ignored: a descriptor that is not there needs no removal.
            resets += [f"(drop (call $rm{ci} (i32.const {fd})))" for fd in range(3)]
            resets.append(f"(drop (call $stdio{ci}))")
        if inst.stack is not None:
            scrub, extra_imports = _scrub_stack(inst)
            imports += extra_imports
            resets.append(scrub)
        if inst.descriptors is not None:
            imports.append(
                f'(import "{mod}" "{inst.descriptors}" (func $fd{inst.core_instance} (param i32) (result i32)))'
            )
            funcs.append(_descriptors_func(inst))
        funcs.append(_state_func(inst))
        for m in inst.memories:
            funcs.append(_read_func(inst, m))
            funcs.append(_scan_func(inst, m))
    wat = "\n".join(
        [
            "(module",
            *imports,
            "(memory $out (export \"memory\") 1)",
            _ENSURE,
            f"(func (export \"reset\") {' '.join(resets)})",
            *funcs,
            ")",
        ]
    )
    return wasmtime.wat2wasm(wat)


# Grows the accessor's own memory so HEADER + n bytes fit; traps (unreachable) if it cannot.
_ENSURE = """
(func $ensure (param $n i32)
  (local $need i32)
  (local.set $need (i32.add (i32.const 16) (local.get $n)))
  (if (i32.gt_u (local.get $need) (i32.shl (memory.size $out) (i32.const 16)))
    (then
      (if (i32.eq (memory.grow $out
                    (i32.sub (i32.shr_u (i32.add (local.get $need) (i32.const 65535)) (i32.const 16))
                             (memory.size $out)))
                  (i32.const -1))
        (then unreachable)))))
(func $ret (param $len i32) (result i32)
  (i32.store $out (i32.const 0) (i32.const 16))
  (i32.store $out (i32.const 4) (local.get $len))
  (i32.const 0))
"""


def _scrub_stack(inst: AccessorInstance) -> tuple[str, list[str]]:
    """Zero the dead part of a C shadow stack: [stack low, stack pointer).

    Nothing live is below the stack pointer, but what init left there (copies
    of stat results, clock readings) would make the snapshot depend on file
    timestamps and inodes. Zeroing it makes outputs reproducible and smaller.
    """
    assert inst.stack is not None
    sp, low = inst.stack
    memory = f"$m{inst.core_instance}_{inst.memories[0].index}"
    t = NUM_TYPES[sp.valtype][0]
    imports = []
    names = []
    for g, export, tag in ((sp, "__stack_pointer", "sp"), (low, "__stack_low", "sl")):
        name = f"${tag}{inst.core_instance}"
        mut = f"(mut {t})" if g.mutable else t
        imports.append(f'(import "{inst.import_module}" "{export}" (global {name} {mut}))')
        names.append(name)
    sp_name, low_name = names
    n = f"({t}.sub (global.get {sp_name}) (global.get {low_name}))"
    scrub = (
        f"(if ({t}.gt_u (global.get {sp_name}) (global.get {low_name}))"
        f" (then (memory.fill {memory} (global.get {low_name}) (i32.const 0) {n})))"
    )
    return scrub, imports


#: Descriptor numbers probed for being open; wasi-libc hands out the lowest free one, so leaks start low.
DESCRIPTORS_PROBED = 1024


def _descriptors_func(inst: AccessorInstance) -> str:
    """One byte per descriptor number: 1 if wasi-libc's descriptor table has an entry for it.

    The lookup neither writes memory nor sets errno, so probing before the
    snapshot leaves no trace in it.
    """
    return f"""(func (export "fds-{inst.core_instance}") (result i32)
  (local $fd i32)
  (call $ensure (i32.const {DESCRIPTORS_PROBED}))
  (loop $next
    (i32.store8 $out offset=16 (local.get $fd)
      (i32.ne (call $fd{inst.core_instance} (local.get $fd)) (i32.const 0)))
    (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
    (br_if $next (i32.lt_u (local.get $fd) (i32.const {DESCRIPTORS_PROBED}))))
  (call $ret (i32.const {DESCRIPTORS_PROBED})))"""


def _state_func(inst: AccessorInstance) -> str:
    body: list[str] = [f"(call $ensure (i32.const {state_size(inst)}))"]
    off = HEADER
    for m in inst.memories:
        size = f"(memory.size $m{inst.core_instance}_{m.index})"
        if not m.limits.is64:
            size = f"(i64.extend_i32_u {size})"
        body.append(f"(i64.store $out offset={off} (i32.const 0) {size})")
        off += MEMORY_SIZE_BYTES
    for g in inst.globals:
        t, width = NUM_TYPES[g.valtype]
        body.append(f"({_STORE[t]} $out offset={off} (i32.const 0) (global.get $g{inst.core_instance}_{g.index}))")
        off += width
    body.append(f"(call $ret (i32.const {off - HEADER}))")
    return f'(func (export "state-{inst.core_instance}") (result i32)\n  ' + "\n  ".join(body) + ")"


def _read_func(inst: AccessorInstance, m: MemoryDef) -> str:
    mem = f"$m{inst.core_instance}_{m.index}"
    addr = "i64" if m.limits.is64 else "i32"
    return f"""(func (export "read-{inst.core_instance}-{m.index}") (param $off {addr}) (param $len i32) (result i32)
  (call $ensure (local.get $len))
  (memory.copy $out {mem} (i32.const 16) (local.get $off) (local.get $len))
  (call $ret (local.get $len)))"""


def _scan_func(inst: AccessorInstance, m: MemoryDef) -> str:
    """One byte per 64 KiB page from ``page``: 1 if any byte of it is non-zero.

    Lets the host skip zero pages without copying them out of the guest.
    """
    mem = f"$m{inst.core_instance}_{m.index}"
    if m.limits.is64:
        base = "(i64.shl (i64.extend_i32_u (i32.add (local.get $page) (local.get $i))) (i64.const 16))"
        addr = "(i64.add (local.get $base) (i64.extend_i32_u (local.get $j)))"
        btype = "i64"
    else:
        base = "(i32.shl (i32.add (local.get $page) (local.get $i)) (i32.const 16))"
        addr = "(i32.add (local.get $base) (local.get $j))"
        btype = "i32"
    return f"""(func (export "scan-{inst.core_instance}-{m.index}") (param $page i32) (param $count i32) (result i32)
  (local $i i32) (local $j i32) (local $base {btype}) (local $acc v128)
  (call $ensure (local.get $count))
  (block $done
    (loop $pages
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $base {base})
      (local.set $j (i32.const 0))
      (local.set $acc (v128.const i64x2 0 0))
      (block $page_done
        (loop $words
          (local.set $acc (v128.or (local.get $acc) (v128.load {mem} {addr})))
          (local.set $acc (v128.or (local.get $acc) (v128.load {mem} offset=16 {addr})))
          (local.set $acc (v128.or (local.get $acc) (v128.load {mem} offset=32 {addr})))
          (local.set $acc (v128.or (local.get $acc) (v128.load {mem} offset=48 {addr})))
          (br_if $page_done (v128.any_true (local.get $acc)))
          (local.set $j (i32.add (local.get $j) (i32.const 64)))
          (br_if $words (i32.lt_u (local.get $j) (i32.const 65536)))))
      (i32.store8 $out offset=16 (local.get $i) (v128.any_true (local.get $acc)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $pages)))
  (call $ret (local.get $count)))"""
