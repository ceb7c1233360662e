"""Tests for hatch_component_init.wasm.code_scan: finding table-mutating code."""

from __future__ import annotations

import functools
import random
import struct
import time

import pytest
import wasmtime

from hatch_component_init.errors import InvalidComponentError
from hatch_component_init.wasm import code_scan
from hatch_component_init.wasm.code_scan import find_data_references, find_table_mutation
from hatch_component_init.wasm.reader import encode_u32

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


uleb = encode_u32


def read_uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def code_payload(wasm: bytes) -> bytes:
    """The payload of the code section (id 10) of a core module."""
    assert wasm[:8] == b"\0asm\x01\0\0\0", "not a core module"
    pos = 8
    while pos < len(wasm):
        section_id = wasm[pos]
        size, pos = read_uleb(wasm, pos + 1)
        if section_id == 10:
            return wasm[pos : pos + size]
        pos += size
    raise AssertionError("no code section")


def split_bodies(payload: bytes) -> list[bytes]:
    count, pos = read_uleb(payload, 0)
    bodies = []
    for _ in range(count):
        size, pos = read_uleb(payload, pos)
        bodies.append(payload[pos : pos + size])
        pos += size
    assert pos == len(payload)
    return bodies


def section(bodies: list[bytes]) -> bytes:
    """Assemble a code section payload from bodies (locals + expression)."""
    return uleb(len(bodies)) + b"".join(uleb(len(body)) + body for body in bodies)


@functools.cache
def engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    for feature in (
        "wasm_gc",
        "wasm_function_references",
        "wasm_exceptions",
        "wasm_threads",
        "wasm_multi_memory",
        "wasm_memory64",
        "wasm_tail_call",
        "wasm_relaxed_simd",
        "wasm_wide_arithmetic",
    ):
        setattr(config, feature, True)
    return wasmtime.Engine(config)


def compile_wat(wat: str, *, validate: bool = True) -> bytes:
    """Code section payload of a module; ``validate`` checks it is a module wasmtime accepts."""
    wasm = wasmtime.wat2wasm(wat)
    if validate:
        wasmtime.Module.validate(engine(), wasm)
    return code_payload(wasm)


def decoded_opcode(body: bytes, pos: int) -> tuple[int | None, int]:
    """(prefix or None, opcode) of the instruction at ``pos``."""
    op = body[pos]
    if op in code_scan._PREFIXED:
        return op, read_uleb(body, pos + 1)[0]
    return None, op


# --------------------------------------------------------------------------
# Every instruction, in text form, checked against wasmtime's encoder.
# Immediates are 39 (0x27, a reserved opcode byte) wherever the syntax allows,
# so a reader that stops one byte short runs into an unknown opcode.
# --------------------------------------------------------------------------

NO_IMMEDIATES = """
    unreachable nop else throw_ref end return catch_all drop select i32.eqz i32.eq i32.ne i32.lt_s i32.lt_u
    i32.gt_s i32.gt_u i32.le_s i32.le_u i32.ge_s i32.ge_u i64.eqz i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s
    i64.gt_u i64.le_s i64.le_u i64.ge_s i64.ge_u f32.eq f32.ne f32.lt f32.gt f32.le f32.ge f64.eq f64.ne
    f64.lt f64.gt f64.le f64.ge i32.clz i32.ctz i32.popcnt i32.add i32.sub i32.mul i32.div_s i32.div_u
    i32.rem_s i32.rem_u i32.and i32.or i32.xor i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr i64.clz i64.ctz
    i64.popcnt i64.add i64.sub i64.mul i64.div_s i64.div_u i64.rem_s i64.rem_u i64.and i64.or i64.xor
    i64.shl i64.shr_s i64.shr_u i64.rotl i64.rotr f32.abs f32.neg f32.ceil f32.floor f32.trunc f32.nearest
    f32.sqrt f32.add f32.sub f32.mul f32.div f32.min f32.max f32.copysign f64.abs f64.neg f64.ceil f64.floor
    f64.trunc f64.nearest f64.sqrt f64.add f64.sub f64.mul f64.div f64.min f64.max f64.copysign i32.wrap_i64
    i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u i64.extend_i32_s i64.extend_i32_u
    i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u f32.convert_i32_s f32.convert_i32_u
    f32.convert_i64_s f32.convert_i64_u f32.demote_f64 f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s
    f64.convert_i64_u f64.promote_f32 i32.reinterpret_f32 i64.reinterpret_f64 f32.reinterpret_i32
    f64.reinterpret_i64 i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s i64.extend32_s ref.is_null
    ref.eq ref.as_non_null array.len any.convert_extern extern.convert_any ref.i31 i31.get_s i31.get_u
    i32.trunc_sat_f32_s i32.trunc_sat_f32_u i32.trunc_sat_f64_s i32.trunc_sat_f64_u i64.trunc_sat_f32_s
    i64.trunc_sat_f32_u i64.trunc_sat_f64_s i64.trunc_sat_f64_u i64.add128 i64.sub128 i64.mul_wide_s
    i64.mul_wide_u i8x16.swizzle i8x16.splat i16x8.splat i32x4.splat i64x2.splat f32x4.splat f64x2.splat
    i8x16.eq i8x16.ne i8x16.lt_s i8x16.lt_u i8x16.gt_s i8x16.gt_u i8x16.le_s i8x16.le_u i8x16.ge_s
    i8x16.ge_u i16x8.eq i16x8.ne i16x8.lt_s i16x8.lt_u i16x8.gt_s i16x8.gt_u i16x8.le_s i16x8.le_u
    i16x8.ge_s i16x8.ge_u i32x4.eq i32x4.ne i32x4.lt_s i32x4.lt_u i32x4.gt_s i32x4.gt_u i32x4.le_s
    i32x4.le_u i32x4.ge_s i32x4.ge_u f32x4.eq f32x4.ne f32x4.lt f32x4.gt f32x4.le f32x4.ge f64x2.eq f64x2.ne
    f64x2.lt f64x2.gt f64x2.le f64x2.ge v128.not v128.and v128.andnot v128.or v128.xor v128.bitselect
    v128.any_true f32x4.demote_f64x2_zero f64x2.promote_low_f32x4 i8x16.abs i8x16.neg i8x16.popcnt
    i8x16.all_true i8x16.bitmask i8x16.narrow_i16x8_s i8x16.narrow_i16x8_u f32x4.ceil f32x4.floor
    f32x4.trunc f32x4.nearest i8x16.shl i8x16.shr_s i8x16.shr_u i8x16.add i8x16.add_sat_s i8x16.add_sat_u
    i8x16.sub i8x16.sub_sat_s i8x16.sub_sat_u f64x2.ceil f64x2.floor i8x16.min_s i8x16.min_u i8x16.max_s
    i8x16.max_u f64x2.trunc i8x16.avgr_u i16x8.extadd_pairwise_i8x16_s i16x8.extadd_pairwise_i8x16_u
    i32x4.extadd_pairwise_i16x8_s i32x4.extadd_pairwise_i16x8_u i16x8.abs i16x8.neg i16x8.q15mulr_sat_s
    i16x8.all_true i16x8.bitmask i16x8.narrow_i32x4_s i16x8.narrow_i32x4_u i16x8.extend_low_i8x16_s
    i16x8.extend_high_i8x16_s i16x8.extend_low_i8x16_u i16x8.extend_high_i8x16_u i16x8.shl i16x8.shr_s
    i16x8.shr_u i16x8.add i16x8.add_sat_s i16x8.add_sat_u i16x8.sub i16x8.sub_sat_s i16x8.sub_sat_u
    f64x2.nearest i16x8.mul i16x8.min_s i16x8.min_u i16x8.max_s i16x8.max_u i16x8.avgr_u
    i16x8.extmul_low_i8x16_s i16x8.extmul_high_i8x16_s i16x8.extmul_low_i8x16_u i16x8.extmul_high_i8x16_u
    i32x4.abs i32x4.neg i32x4.all_true i32x4.bitmask i32x4.extend_low_i16x8_s i32x4.extend_high_i16x8_s
    i32x4.extend_low_i16x8_u i32x4.extend_high_i16x8_u i32x4.shl i32x4.shr_s i32x4.shr_u i32x4.add i32x4.sub
    i32x4.mul i32x4.min_s i32x4.min_u i32x4.max_s i32x4.max_u i32x4.dot_i16x8_s i32x4.extmul_low_i16x8_s
    i32x4.extmul_high_i16x8_s i32x4.extmul_low_i16x8_u i32x4.extmul_high_i16x8_u i64x2.abs i64x2.neg
    i64x2.all_true i64x2.bitmask i64x2.extend_low_i32x4_s i64x2.extend_high_i32x4_s i64x2.extend_low_i32x4_u
    i64x2.extend_high_i32x4_u i64x2.shl i64x2.shr_s i64x2.shr_u i64x2.add i64x2.sub i64x2.mul i64x2.eq
    i64x2.ne i64x2.lt_s i64x2.gt_s i64x2.le_s i64x2.ge_s i64x2.extmul_low_i32x4_s i64x2.extmul_high_i32x4_s
    i64x2.extmul_low_i32x4_u i64x2.extmul_high_i32x4_u f32x4.abs f32x4.neg f32x4.sqrt f32x4.add f32x4.sub
    f32x4.mul f32x4.div f32x4.min f32x4.max f32x4.pmin f32x4.pmax f64x2.abs f64x2.neg f64x2.sqrt f64x2.add
    f64x2.sub f64x2.mul f64x2.div f64x2.min f64x2.max f64x2.pmin f64x2.pmax i32x4.trunc_sat_f32x4_s
    i32x4.trunc_sat_f32x4_u f32x4.convert_i32x4_s f32x4.convert_i32x4_u i32x4.trunc_sat_f64x2_s_zero
    i32x4.trunc_sat_f64x2_u_zero f64x2.convert_low_i32x4_s f64x2.convert_low_i32x4_u i8x16.relaxed_swizzle
    i32x4.relaxed_trunc_f32x4_s i32x4.relaxed_trunc_f32x4_u i32x4.relaxed_trunc_f64x2_s_zero
    i32x4.relaxed_trunc_f64x2_u_zero f32x4.relaxed_madd f32x4.relaxed_nmadd f64x2.relaxed_madd
    f64x2.relaxed_nmadd i8x16.relaxed_laneselect i16x8.relaxed_laneselect i32x4.relaxed_laneselect
    i64x2.relaxed_laneselect f32x4.relaxed_min f32x4.relaxed_max f64x2.relaxed_min f64x2.relaxed_max
    i16x8.relaxed_q15mulr_s i16x8.relaxed_dot_i8x16_i7x16_s i32x4.relaxed_dot_i8x16_i7x16_add_s atomic.fence
    ref.i31_shared
""".split()

_RMW_WIDTHS = [("i32", ""), ("i64", ""), ("i32", "8"), ("i32", "16"), ("i64", "8"), ("i64", "16"), ("i64", "32")]
WITH_MEMARG = """
    i32.load i64.load f32.load f64.load i32.load8_s i32.load8_u i32.load16_s i32.load16_u i64.load8_s
    i64.load8_u i64.load16_s i64.load16_u i64.load32_s i64.load32_u i32.store i64.store f32.store f64.store
    i32.store8 i32.store16 i64.store8 i64.store16 i64.store32 v128.load v128.load8x8_s v128.load8x8_u
    v128.load16x4_s v128.load16x4_u v128.load32x2_s v128.load32x2_u v128.load8_splat v128.load16_splat
    v128.load32_splat v128.load64_splat v128.store v128.load32_zero v128.load64_zero memory.atomic.notify
    memory.atomic.wait32 memory.atomic.wait64 i32.atomic.load i64.atomic.load i32.atomic.load8_u
    i32.atomic.load16_u i64.atomic.load8_u i64.atomic.load16_u i64.atomic.load32_u i32.atomic.store
    i64.atomic.store i32.atomic.store8 i32.atomic.store16 i64.atomic.store8 i64.atomic.store16
    i64.atomic.store32
""".split() + [
    f"{ty}.atomic.rmw{width}.{op}{'_u' if width else ''}"
    for op in ("add", "sub", "and", "or", "xor", "xchg", "cmpxchg")
    for ty, width in _RMW_WIDTHS
]

WITH_ONE_INDEX = """
    catch throw rethrow br br_if call return_call call_ref return_call_ref delegate local.get local.set
    local.tee global.get global.set table.get table.set memory.size memory.grow i32.const i64.const ref.null
    ref.func br_on_null br_on_non_null cont.new suspend struct.new struct.new_default array.new
    array.new_default array.get array.get_s array.get_u array.set array.fill data.drop memory.fill elem.drop
    table.grow table.size table.fill memory.discard i8x16.extract_lane_s i8x16.extract_lane_u
    i8x16.replace_lane i16x8.extract_lane_s i16x8.extract_lane_u i16x8.replace_lane i32x4.extract_lane
    i32x4.replace_lane i64x2.extract_lane i64x2.replace_lane f32x4.extract_lane f32x4.replace_lane
    f64x2.extract_lane f64x2.replace_lane
""".split()

WITH_TWO_INDICES = """
    cont.bind switch struct.get struct.get_s struct.get_u struct.set array.new_fixed array.new_data
    array.new_elem array.copy array.init_data array.init_elem memory.init memory.copy table.init table.copy
""".split()

WITH_MEMARG_AND_LANE = """
    v128.load8_lane v128.load16_lane v128.load32_lane v128.load64_lane
    v128.store8_lane v128.store16_lane v128.store32_lane v128.store64_lane
""".split()

# Shared-everything threads: a memory ordering, then indices.
WITH_ORDERING_AND_INDEX = [f"global.atomic.{op}" for op in ("get", "set")] + [
    f"global.atomic.rmw.{op}" for op in ("add", "sub", "and", "or", "xor", "xchg", "cmpxchg")
] + ["table.atomic.get", "table.atomic.set", "table.atomic.rmw.xchg", "table.atomic.rmw.cmpxchg"] + [
    f"array.atomic.{op}" for op in ("get", "get_s", "get_u", "set")
] + [f"array.atomic.rmw.{op}" for op in ("add", "sub", "and", "or", "xor", "xchg", "cmpxchg")]
WITH_ORDERING_AND_TWO_INDICES = [f"struct.atomic.{op}" for op in ("get", "get_s", "get_u", "set")] + [
    f"struct.atomic.rmw.{op}" for op in ("add", "sub", "and", "or", "xor", "xchg", "cmpxchg")
]

_F32_0x27 = float.hex(struct.unpack("<f", b"\x27" * 4)[0])
_F64_0x27 = float.hex(struct.unpack("<d", b"\x27" * 8)[0])
_LANES_39 = " ".join(["39"] * 16)

OTHER_INSTRUCTIONS = [
    "block (type 39)",
    "loop (type 39)",
    "if (type 39)",
    "try (type 39)",
    "br_table 39 39 39",
    "call_indirect 39 (type 39)",
    "return_call_indirect 39 (type 39)",
    "select (result i32)",
    "try_table (type 39) (catch 39 39) (catch_ref 39 39) (catch_all 39) (catch_all_ref 39)",
    f"f32.const {_F32_0x27}",
    f"f64.const {_F64_0x27}",
    "resume 39 (on 39 39) (on 39 switch)",
    "resume_throw 39 39 (on 39 39)",
    "resume_throw_ref 39 (on 39 switch)",
    "ref.test (ref 39)",
    "ref.test (ref null 39)",
    "ref.cast (ref 39)",
    "ref.cast (ref null 39)",
    "br_on_cast 39 (ref null 39) (ref 39)",
    "br_on_cast_fail 39 (ref 39) (ref null 39)",
    f"v128.const i8x16 {_LANES_39}",
    f"i8x16.shuffle {_LANES_39}",
]

# Other encodings of immediates the catalogue above does not produce.
ENCODING_VARIANTS = [
    "i32.load 39 offset=39",  # multi-memory: alignment flag bit 6 + memory index
    "i64.load 300 offset=0x1_0000_0027 align=2",  # two-byte memory index, memory64 offset
    "v128.load8_lane 39 offset=39 39",
    "i32.atomic.rmw.cmpxchg 39 offset=70000",
    "memory.size 300",
    "block (result i32)",
    "block (result funcref)",
    "block (result (ref null 39))",
    "block (result (ref 70000))",
    "block (result (ref null (shared any)))",
    "block (param i32)",
    "loop (type 70000)",
    "select (result (ref 39))",
    "select (result (ref null func))",
    "ref.null func",
    "ref.null exn",
    "ref.null nocont",
    "ref.null (shared func)",
    "ref.test (ref any)",
    "br_on_cast 39 anyref (ref i31)",
    "call_indirect 300 (type 70000)",
    "i32.const -1",
    "i32.const 0x7fffffff",
    "i64.const -0x8000000000000000",
    "br_table " + " ".join(["39"] * 200),
    "try_table (result i32)",
    "table.init 300 70000",
]

CATALOGUE = (
    NO_IMMEDIATES
    + [f"{name} offset=39" for name in WITH_MEMARG]
    + [f"{name} 39" for name in WITH_ONE_INDEX]
    + [f"{name} 39 39" for name in WITH_TWO_INDICES]
    + [f"{name} offset=39 39" for name in WITH_MEMARG_AND_LANE]
    + [f"{name} seqcst 39" for name in WITH_ORDERING_AND_INDEX]
    + [f"{name} acqrel 39 39" for name in WITH_ORDERING_AND_TWO_INDICES]
    + OTHER_INSTRUCTIONS
)

MUTATING_NAMES = {
    "table.set",
    "table.init",
    "elem.drop",
    "table.copy",
    "table.grow",
    "table.fill",
    "table.atomic.set",
    "table.atomic.rmw.xchg",
    "table.atomic.rmw.cmpxchg",
}


@functools.cache
def encoded(texts: tuple[str, ...]) -> list[bytes]:
    """Each instruction text as its body (no locals, the instruction, ``end``), by wasmtime's encoder.

    Flat instruction syntax may leave blocks open; the text parser does not
    care and nothing here is validated.
    """
    wat = "(module\n" + "\n".join(f"(func {text})" for text in texts) + ")"
    return split_bodies(compile_wat(wat, validate=False))


def test_catalogue_covers_every_opcode_the_scanner_knows() -> None:
    bodies = encoded(tuple(CATALOGUE))
    seen = [decoded_opcode(body, 1) for body in bodies]
    known = [(None, op) for op in code_scan._SINGLE] + [
        (prefix, sub) for prefix, subs in code_scan._PREFIXED.items() for sub in subs
    ]
    assert len(seen) == len(set(seen)), "an opcode is listed twice"
    assert sorted(seen, key=repr) == sorted(known, key=repr)
    assert len(known) == 619


@pytest.mark.parametrize("text", CATALOGUE + ENCODING_VARIANTS)
def test_instruction_length_matches_wasmtime_encoder(text: str) -> None:
    index = (CATALOGUE + ENCODING_VARIANTS).index(text)
    body = encoded(tuple(CATALOGUE + ENCODING_VARIANTS))[index]
    assert body[0] == 0 and body[-1] == 0x0B  # no locals; the function's own `end`
    mnemonic = text.split()[0]
    expected_name = mnemonic if mnemonic in MUTATING_NAMES else None

    assert code_scan._decode_instruction(body, 1) == (len(body) - 1, expected_name)
    # The fast path either takes the whole instruction (and the final `end`) or leaves it to Python;
    # it must never stop inside it, and never take a mutating instruction.
    run_end = code_scan._PLAIN_RUN.match(body, 1).end()
    assert run_end in (1, len(body))
    if expected_name is not None:
        assert run_end == 1
    for fast in (True, False):
        assert code_scan._scan_body(body, fast=fast) == expected_name


# --------------------------------------------------------------------------
# Real modules: mutations are found ...
# --------------------------------------------------------------------------

MODULE_TEMPLATE = """
(module
  (import "env" "f0" (func))
  (import "env" "f1" (func (param i32)))
  (table $t 2 funcref)
  (table $t2 2 funcref)
  (elem $e func $first)
  (func $first (drop (i32.const 38)))
  (func $second (param i32) (local.set 0 (i32.const 0xfc0c)) (drop (table.get $t (i32.const 38))))
  (func $third {body})
  (func $fourth (drop (table.size $t)))
)
"""

MUTATIONS = {
    "table.set": "(table.set $t (i32.const 0) (ref.null func))",
    "table.init": "(table.init $t $e (i32.const 0) (i32.const 0) (i32.const 1))",
    "elem.drop": "(elem.drop $e)",
    "table.copy": "(table.copy $t $t2 (i32.const 0) (i32.const 0) (i32.const 1))",
    "table.grow": "(drop (table.grow $t (ref.null func) (i32.const 1)))",
    "table.fill": "(table.fill $t (i32.const 0) (ref.null func) (i32.const 1))",
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_finds_each_mutating_instruction(name: str) -> None:
    payload = compile_wat(MODULE_TEMPLATE.format(body=MUTATIONS[name]))
    # Two imported functions come first: $third is function 2 + 2.
    assert find_table_mutation(payload, 2) == (4, name)
    assert find_table_mutation(payload, 0) == (2, name)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_finds_mutation_after_tricky_immediates(name: str) -> None:
    body = f"""
        (local v128 f64)
        (local.set 0 (v128.const i8x16 0x26 0xfc 0x0c 0xfc 0x8f 0x26 0 0 0 0 0 0 0 0 0 0x26))
        (local.set 1 (f64.const {float.hex(struct.unpack("<d", bytes.fromhex("fc0c26fc11000000"))[0])}))
        (drop (i8x16.extract_lane_u 12 (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
                                           (local.get 0) (local.get 0))))
        (drop (i64.const 0x26fc0c))
        {MUTATIONS[name]}
    """
    payload = compile_wat(MODULE_TEMPLATE.format(body=body))
    assert find_table_mutation(payload, 2) == (4, name)


def test_reports_the_first_mutation() -> None:
    wat = """
    (module
      (import "env" "f" (func))
      (table $t 1 funcref)
      (func (drop (i32.const 38)))
      (func (drop (table.grow $t (ref.null func) (i32.const 1)))
            (table.set $t (i32.const 0) (ref.null func)))
      (func (table.set $t (i32.const 0) (ref.null func))))
    """
    assert find_table_mutation(compile_wat(wat), 1) == (2, "table.grow")


def test_finds_mutation_far_into_the_section() -> None:
    quiet = "(func (drop (i32.const 38)) (drop (i32.const 0x26fc)))\n" * 500
    wat = f"(module (table $t 1 funcref) {quiet} (func (table.fill $t (i32.const 0) (ref.null func) (i32.const 0))))"
    assert find_table_mutation(compile_wat(wat), 7) == (507, "table.fill")


def test_finds_non_canonical_sub_opcode() -> None:
    # table.grow 0 with its sub-opcode 15 written as a 3-byte LEB (0x8F 0x80 0x00): still valid.
    body = b"\x00" + b"\xd0\x70" + b"\x41\x01" + b"\xfc\x8f\x80\x00\x00" + b"\x1a\x0b"
    payload = section([body])
    wasm = wasmtime.wat2wasm("(module (table 1 funcref) (func))")
    old = code_payload(wasm)
    assert wasm.endswith(old)  # the code section is the last one
    wasmtime.Module.validate(engine(), wasm[: -len(old) - 1] + uleb(len(payload)) + payload)
    assert find_table_mutation(payload, 0) == (0, "table.grow")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("table.atomic.set seqcst 0", "table.atomic.set"),
        ("table.atomic.rmw.xchg acqrel 1", "table.atomic.rmw.xchg"),
        ("table.atomic.rmw.cmpxchg seqcst 0", "table.atomic.rmw.cmpxchg"),
    ],
)
def test_finds_shared_everything_table_atomics(text: str, name: str) -> None:
    # wasmtime cannot validate these yet; the encoder is enough to get the bytes right.
    payload = compile_wat(f"(module (func nop) (func i32.const 1 drop {text}))", validate=False)
    assert find_table_mutation(payload, 3) == (4, name)


def test_accepts_memoryview_and_bytearray() -> None:
    payload = compile_wat(MODULE_TEMPLATE.format(body=MUTATIONS["table.set"]))
    assert find_table_mutation(memoryview(payload), 2) == (4, "table.set")
    assert find_table_mutation(bytearray(payload), 2) == (4, "table.set")
    assert find_table_mutation(memoryview(b"\xff" + payload + b"\xff")[1:-1], 2) == (4, "table.set")


# --------------------------------------------------------------------------
# ... and lookalikes are not.
# --------------------------------------------------------------------------

_MANY_LOCALS = "(local " + " i32" * 40 + ")"
_MANY_GLOBALS = "\n".join("(global (mut i32) (i32.const 38))" for _ in range(40))
_MANY_TYPES = "\n".join("(type (func (param i32) (result i32)))" for _ in range(40))
_V128_TRICKY = "v128.const i8x16 0x26 0xfc 0x0c 0xfc 0x0d 0xfc 0x0e 0xfc 0x0f 0xfc 0x11 0xfc 0x8c 0x00 0x26 0xfe"
_F64_FC0C = float.hex(struct.unpack("<d", bytes.fromhex("fc0c26fc0f26fc3f"))[0])
_F32_26FC = float.hex(struct.unpack("<f", bytes.fromhex("26fc0c3f"))[0])

LOOKALIKE_BODIES = {
    "i32.const 38": "(drop (i32.const 38))",
    "i32.const with 0xfc 0x0c": "(drop (i32.const 0x67c)) (drop (i32.const -0x26))",
    "i64.const with 0x26 and 0xfc": "(drop (i64.const 1660)) (drop (i64.const 0x26))",  # LEBs fc 0c and 26
    "local.get 38": f"{_MANY_LOCALS} (drop (local.get 38)) (local.set 38 (i32.const 1660)) (local.tee 38 (i32.const 0)) drop",
    "global.get 38": "(drop (global.get 38)) (global.set 38 (i32.const 38))",
    "memory.copy": "(memory.copy (i32.const 38) (i32.const 38) (i32.const 38))",
    "memory.fill": "(memory.fill (i32.const 38) (i32.const 38) (i32.const 38))",
    "memory.init": "(memory.init $d (i32.const 38) (i32.const 0) (i32.const 0))",
    "data.drop": "(data.drop $d) (drop (i32.const 38))",
    "multi-memory copy/fill/init": "(memory.copy $m2 $m (i32.const 38) (i32.const 0) (i32.const 0))"
    " (memory.fill $m2 (i32.const 0) (i32.const 0) (i32.const 0)) (memory.init $m2 $d (i32.const 0) (i32.const 0) (i32.const 0))",
    "table.get": "(drop (table.get $t (i32.const 38)))",
    "table.size": "(drop (table.size $t)) (drop (i32.const 38))",
    "call_indirect": "(call_indirect $t (type $v) (i32.const 38))",
    "return_call_indirect": "(return_call_indirect $t (type $v) (i32.const 38))",
    "ref.func / ref.null / ref.is_null": "(drop (ref.is_null (ref.func $f))) (drop (ref.null func)) (drop (i32.const 38))",
    "v128.const with 0x26 and 0xfc": f"(drop ({_V128_TRICKY}))",
    "i8x16.shuffle lanes": "(drop (i8x16.shuffle 12 15 17 0 12 12 12 31 1 2 3 4 5 6 7 8"
    f" ({_V128_TRICKY}) ({_V128_TRICKY})))",
    "f64.const with 0xfc 0x0c": f"(drop (f64.const {_F64_FC0C}))",
    "f32.const with 0x26 0xfc": f"(drop (f32.const {_F32_26FC}))",
    "loads and stores with large offsets": "(drop (i32.load offset=1660 (i32.const 0)))"  # offset LEB is fc 0c
    " (drop (i64.load offset=38 align=8 (i32.const 0))) (i32.store8 offset=0x26fc (i32.const 0) (i32.const 38))",
    "multi-memory load": "(drop (i32.load $m2 offset=38 (i32.const 38))) (drop (memory.size $m2)) (drop (memory.grow $m2 (i32.const 0)))",
    "memory64 load": "(drop (i64.load $m64 offset=0x26fc0c26fc0c (i64.const 0)))",
    "SIMD": "(drop (i8x16.extract_lane_s 12 (v128.load8_lane offset=38 12 (i32.const 0) (v128.const i64x2 0 0))))"
    " (v128.store16_lane offset=1660 6 (i32.const 0) (v128.const i64x2 0 0))"
    " (drop (f64x2.relaxed_madd (v128.load offset=38 (i32.const 0)) (v128.const i64x2 0 0) (v128.const i64x2 0 0)))"
    " (drop (i32x4.trunc_sat_f64x2_s_zero (v128.load32_zero offset=1660 (i32.const 0))))",
    "atomics": "(drop (memory.atomic.notify $shared offset=38 (i32.const 0) (i32.const 0))) atomic.fence"
    " (drop (i32.atomic.rmw.add $shared offset=1660 (i32.const 0) (i32.const 38)))"
    " (drop (i64.atomic.rmw32.cmpxchg_u $shared offset=38 (i32.const 0) (i64.const 0) (i64.const 0xfc0c)))",
    "saturating conversions": "(drop (i32.trunc_sat_f32_s (f32.const 38))) (drop (i64.trunc_sat_f64_u (f64.const 38)))",
    "wide arithmetic": "(drop (drop (i64.add128 (i64.const 38) (i64.const 0) (i64.const 0xfc0c) (i64.const 0))))",
    "sign extension": "(drop (i64.extend32_s (i64.const 38)))",
    "br_table with 38 targets": "(block $b (br_table " + "$b " * 38 + "(i32.const 38)))",
    "typed select": "(drop (select (result i32) (i32.const 38) (i32.const 0) (i32.const 1)))",
    "block type index 38": "i32.const 38 block (type 38) end drop",
    "tail calls": "(return_call $f)",
    "exceptions": "(block $h (result exnref) (try_table (catch_all_ref $h) (throw $tag (i32.const 38)))"
    " (unreachable)) (throw_ref)",
    "function references": "(call_ref $v (ref.as_non_null (ref.func $f)))"
    " (block $l (br_on_null $l (ref.func $f)) (drop))",
    "gc": "(drop (struct.get $s 0 (struct.new $s (i32.const 38))))"
    " (drop (array.len (array.new_fixed $a 2 (i32.const 38) (i32.const 0xfc0c))))"
    " (drop (ref.test (ref $s) (ref.null any))) (drop (ref.cast (ref null $s) (ref.null any)))"
    " (drop (block $l (result anyref) (br_on_cast $l anyref (ref $s) (ref.null any))))"
    " (drop (i31.get_u (ref.i31 (i32.const 38))))",
}

LOOKALIKE_MODULE = """
(module
  (type $v (func))
  (type $s (struct (field (mut i32))))
  (type $a (array (mut i32)))
  {types}
  (import "env" "f" (func $f))
  (memory $m 1)
  (memory $m2 1)
  (memory $m64 i64 1)
  (memory $shared 1 1 shared)
  (data $d "\\26\\fc\\0c")
  {globals}
  (table $t 2 funcref)
  (elem declare func $f)
  (tag $tag (param i32))
  ;; The trailing i32.const 38 makes every body a candidate, so the decoder has to get through it.
  (func $g {body} (drop (i32.const 38)))
)
"""


@pytest.mark.parametrize("case", sorted(LOOKALIKE_BODIES))
def test_lookalikes_are_not_reported(case: str) -> None:
    wat = LOOKALIKE_MODULE.format(types=_MANY_TYPES, globals=_MANY_GLOBALS, body=LOOKALIKE_BODIES[case])
    payload = compile_wat(wat)
    [body] = split_bodies(payload)
    # The pre-filter must let the body through, or the decoder would not be exercised at all.
    assert code_scan._CANDIDATE.search(body) is not None
    assert find_table_mutation(payload, 1) is None
    assert code_scan._scan_body(body, fast=False) is None


def test_section_without_candidates_is_not_decoded() -> None:
    payload = compile_wat("(module (func (drop (i32.const 37))) (func (drop (i64.const 0xfb0b))))")
    assert code_scan._CANDIDATE.search(payload) is None
    assert find_table_mutation(payload, 0) is None
    assert find_table_mutation(b"\x00", 0) is None  # no bodies at all


# --------------------------------------------------------------------------
# Malformed input
# --------------------------------------------------------------------------


def _raises(payload: bytes, match: str) -> InvalidComponentError:
    with pytest.raises(InvalidComponentError, match=match) as info:
        find_table_mutation(payload, 0)
    return info.value


def test_truncated_candidate_body() -> None:
    body = b"\x00\x41\x26\x1a\x41"  # i32.const 38, drop, i32.const <missing>
    err = _raises(section([body]), "unexpected end of function body")
    assert err.offset == 2 + 4  # count, size, then the 5th byte of the body


def test_truncated_immediate_at_body_end_does_not_read_the_next_body() -> None:
    # The last instruction's LEB is cut by the body size; the next body would complete it.
    first = b"\x00\x41\x26\x1a\x41\x80"
    second = b"\x00\x0b"
    _raises(section([first, second]), "unexpected end of function body")


def test_unknown_opcode_in_candidate_body() -> None:
    body = b"\x00\x41\x26\x1a\x27\x0b"  # 0x27 is reserved
    err = _raises(section([body]), r"unknown opcode 0x27")
    assert err.offset == 2 + 4


def test_unknown_prefixed_opcode() -> None:
    _raises(section([b"\x00\x41\x26\x1a\xfc\x17\x0b"]), "unknown opcode 0xfc 23")
    _raises(section([b"\x00\x41\x26\x1a\xfd\x9a\x01\x0b"]), "unknown opcode 0xfd 154")


@pytest.mark.parametrize(
    "instruction",
    [
        b"\x20\x80\x80\x80\x80\x80\x00",  # local.get, its index in 6 bytes
        b"\x11\x80\x80\x80\x80\x80\x00\x00",  # call_indirect, its type index in 6 bytes
        b"\x11\x00\x80\x80\x80\x80\x80\x00",  # call_indirect, its table index in 6 bytes
    ],
    ids=["u32", "first-of-two", "second-of-two"],
)
def test_overlong_leb(instruction: bytes) -> None:
    # A u32 takes at most 5 bytes, each of two u32 immediates as well.
    _raises(section([b"\x00\x41\x26\x1a" + instruction + b"\x0b"]), "too long")


@pytest.mark.parametrize("kind", [4, 0xFF])
def test_a_try_table_catch_clause_of_an_unknown_kind_is_refused_where_it_is(kind: int) -> None:
    # try_table (0x1f), empty block type, one catch clause whose kind is none of catch, catch_ref, catch_all(_ref).
    body = b"\x00\x41\x26\x1a\x1f\x40\x01" + bytes([kind]) + b"\x00\x0b\x0b"
    err = _raises(section([body]), "^invalid catch clause \\(at offset")
    assert err.offset == 2 + 7  # count, size, then the clause's kind byte


def test_body_must_end_with_end() -> None:
    _raises(section([b"\x00\x41\x26\x1a"]), "does not end with `end`")


def test_body_overruns_section() -> None:
    payload = section([b"\x00\x41\x26\x1a\x0b"])
    _raises(payload[:-1], "runs past the end of the code section")


def test_truncated_section_header() -> None:
    _raises(b"", "unexpected end of code section")
    _raises(b"\x02\x02\x00\x0b", "unexpected end of code section")
    _raises(b"\x01\x80", "unexpected end of code section")


def test_trailing_bytes_after_last_body() -> None:
    _raises(section([b"\x00\x0b"]) + b"\x00", "unexpected data after the last function body")


def test_invalid_value_type_in_locals() -> None:
    _raises(section([b"\x01\x01\x26\x0b"]), "invalid value type")


def test_malformed_error_offsets_are_section_relative() -> None:
    good = b"\x00\x41\x26\x1a\x0b"
    bad = b"\x00\x41\x26\x1a\xfd\x9a\x01\x0b"
    payload = section([good, bad])
    err = _raises(payload, "unknown opcode")
    assert payload[err.offset : err.offset + 2] == b"\xfd\x9a"


# --------------------------------------------------------------------------
# The fast path agrees with the plain decoder, and the pre-filter hides nothing.
# --------------------------------------------------------------------------


def _outcome(body: bytes, *, fast: bool) -> tuple[object, ...]:
    try:
        return ("ok", code_scan._scan_body(body, fast=fast))
    except code_scan._Malformed as err:
        return ("malformed", err.message, err.pos)


_NOISE_BYTES = bytes([0x00, 0x0B, 0x0C, 0x11, 0x26, 0x27, 0x40, 0x41, 0x63, 0x7F, 0x80, 0x8C, 0xFC, 0xFD, 0xFE, 0xFF])


def _random_stream(rng: random.Random, pool: list[bytes]) -> bytes:
    """A body made of real instruction encodings, sometimes with stray bytes or cut short."""
    pieces = []
    for _ in range(rng.randrange(30)):
        if rng.random() < 0.95:
            pieces.append(rng.choice(pool)[1:-1])  # drop the locals byte and the function's `end`
        else:
            pieces.append(bytes(rng.choices(_NOISE_BYTES, k=rng.randint(1, 3))))
    body = b"\x00" + b"".join(pieces) + b"\x0b"
    if rng.random() < 0.3:
        body = body[: rng.randrange(len(body) + 1)]
    return body


@pytest.mark.parametrize("seed", range(8))
def test_fast_path_agrees_with_plain_decoder(seed: int) -> None:
    # Seeded random streams (deterministic, no extra dependency); 8 x 250 bodies.
    rng = random.Random(seed)
    pool = encoded(tuple(CATALOGUE + ENCODING_VARIANTS))
    for _ in range(250):
        body = _random_stream(rng, pool)
        assert _outcome(body, fast=True) == _outcome(body, fast=False), body.hex()


@pytest.mark.parametrize("seed", range(4))
def test_prefilter_never_hides_a_mutation(seed: int) -> None:
    rng = random.Random(seed)
    pool = encoded(tuple(CATALOGUE))
    for _ in range(100):
        bodies = [
            b"\x00" + b"".join(rng.choice(pool)[1:-1] for _ in range(rng.randrange(12))) + b"\x0b"
            for _ in range(rng.randint(1, 12))
        ]
        first = rng.randrange(6)
        expected = None
        for index, body in enumerate(bodies):
            outcome = _outcome(body, fast=False)
            assert outcome[0] == "ok", outcome  # every piece is a whole instruction
            if outcome[1] is not None:
                expected = (first + index, outcome[1])
                break
        assert find_table_mutation(section(bodies), first) == expected


# --------------------------------------------------------------------------
# Speed: measured and printed (run with -s to see it), never asserted.
# --------------------------------------------------------------------------


def _synthetic_section(instruction_mix: bytes, target_size: int) -> bytes:
    body = b"\x01\x02\x7f" + instruction_mix * 40 + b"\x0b"
    return section([body] * (target_size // (len(body) + 2)))


def test_scan_speed_is_measured() -> None:
    # local.get 0; i32.const 38; i32.add; local.set 1; local.get 1; i32.load offset=1660; drop;
    # block; end; call 3; drop; memory.copy
    mix = b"\x20\x00\x41\x26\x6a\x21\x01" + b"\x20\x01\x28\x02\xfc\x0c\x1a" + b"\x02\x40\x0b" + b"\x10\x03\x1a"
    mix += b"\x41\x00\x41\x00\x41\x00\xfc\x0a\x00\x00"
    candidates = _synthetic_section(mix, 10_000_000)
    no_candidates = candidates.replace(b"\x41\x26", b"\x41\x25").replace(b"\xfc\x0c", b"\xfc\x0b")
    assert code_scan._CANDIDATE.search(no_candidates) is None

    def rate(payload: bytes) -> float:
        start = time.perf_counter()
        assert find_table_mutation(payload, 0) is None
        return len(payload) / 1e6 / (time.perf_counter() - start)

    candidate_body = split_bodies(candidates)[0]
    start = time.perf_counter()
    for _ in range(50):
        code_scan._scan_body(candidate_body, fast=False)
    plain_rate = 50 * len(candidate_body) / 1e6 / (time.perf_counter() - start)
    print(
        f"\ncode_scan on {len(candidates) / 1e6:.1f} MB: pre-filter only {rate(no_candidates):.0f} MB/s, "
        f"every body decoded {rate(candidates):.0f} MB/s, pure-Python decoder {plain_rate:.1f} MB/s"
    )


# --------------------------------------------------------------------------
# Data segment references: every index code can name, nothing else.
# --------------------------------------------------------------------------


def test_data_references_of_every_instruction_that_names_a_segment() -> None:
    wat = """
    (module
      (type $bytes (array (mut i8)))
      (memory 1)
      (data $d0 "a") (data $d1 "b") (data $d2 "c") (data $d3 "d") (data $d4 "e") (data $d5 (i32.const 0) "f")
      (func (memory.init $d1 (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const 1148) (drop))
      (func (data.drop $d4))
      (func (result (ref $bytes)) (array.new_data $bytes $d2 (i32.const 0) (i32.const 1)))
      (func (param (ref $bytes)) (array.init_data $bytes $d3 (local.get 0) (i32.const 0) (i32.const 0) (i32.const 1)))
      (func (memory.copy (i32.const 0) (i32.const 0) (i32.const 0))))
    """
    assert find_data_references(compile_wat(wat, validate=False)) == {1, 2, 3, 4}


def test_data_reference_candidates_that_are_immediates() -> None:
    # `i32.const 1148` is 41 fc 08: the bytes of a memory.init opcode inside an immediate.
    payload = compile_wat("(module (func (drop (i32.const 1148))) (func (drop (i64.const 1148))))")
    assert code_scan._DATA_USE.candidate.search(payload) is not None
    assert find_data_references(payload) == frozenset()


def test_data_reference_with_a_non_canonical_sub_opcode() -> None:
    # memory.init with its sub-opcode 8 written in two bytes, data index 300, memory 0; then data.drop 5.
    body = b"\x00" + b"\x41\x00" * 3 + b"\xfc\x88\x00" + uleb(300) + b"\x00" + b"\xfc\x09\x05" + b"\x0b"
    assert find_data_references(section([b"\x00\x0b", body])) == {300, 5}
    assert find_data_references(memoryview(section([body]))) == {300, 5}


def test_data_reference_scan_reports_malformed_bodies() -> None:
    payload = section([b"\x00\xfc\x08\x01"])
    with pytest.raises(InvalidComponentError, match="unexpected end of function body") as info:
        find_data_references(payload, 0x1000)
    assert info.value.offset == 0x1000 + payload.index(b"\xfc")  # file offset of the cut instruction


@pytest.mark.parametrize("seed", range(4))
def test_data_reference_fast_path_agrees_with_plain_decoder(seed: int) -> None:
    def outcome(body: bytes, fast: bool) -> tuple[object, ...]:
        try:
            return ("ok", code_scan._data_indices_in_body(body, fast=fast))
        except code_scan._Malformed as err:
            return ("malformed", err.message, err.pos)

    rng = random.Random(seed)
    pool = encoded(tuple(CATALOGUE + ENCODING_VARIANTS))
    found = 0
    for _ in range(250):
        body = _random_stream(rng, pool)
        fast = outcome(body, True)
        assert fast == outcome(body, False), body.hex()
        found += fast[0] == "ok" and fast[1] == {39}
    assert found  # the streams do name data segments


@pytest.mark.parametrize("seed", range(4))
def test_prefilter_never_hides_a_data_reference(seed: int) -> None:
    rng = random.Random(seed)
    pool = encoded(tuple(CATALOGUE))
    for _ in range(100):
        bodies = [
            b"\x00" + b"".join(rng.choice(pool)[1:-1] for _ in range(rng.randrange(12))) + b"\x0b"
            for _ in range(rng.randint(1, 12))
        ]
        expected = set().union(*(code_scan._data_indices_in_body(body, fast=False) for body in bodies))
        assert find_data_references(section(bodies)) == expected
