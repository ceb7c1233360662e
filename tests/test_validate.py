"""Output validation: module validation plus a compile of the stubbed component catch what a compile would."""

from __future__ import annotations

import pytest

from hatch_component_init import OutputInvalidError
from hatch_component_init.runtime import validate_component
from wat_support import wat

GOOD = """
(component
  (core module $m
    (memory 1)
    (func (export "f") (result i32) (i32.const 7))
    (data (i32.const 0) "hello"))
  (core instance $i (instantiate $m))
  (func (export "f") (result u32) (canon lift (core func $i "f"))))
"""


def test_valid_component_passes() -> None:
    validate_component(wat(GOOD))


def test_invalid_code_inside_a_module_is_caught() -> None:
    data = bytearray(wat(GOOD))
    # `i32.const 7; end` -> `i64.const 7; end`: the body no longer returns an i32.
    pos = data.index(b"\x41\x07\x0b")
    data[pos] = 0x42
    with pytest.raises(OutputInvalidError, match="bug in hatch-component-init"):
        validate_component(bytes(data))


def test_invalid_component_level_typing_is_caught() -> None:
    broken = wat(
        """
(component
  (core module $m (func (export "f") (result i64) (i64.const 7)))
  (core instance $i (instantiate $m))
  (core module $n (import "x" "f" (func (result i64))))
  (core instance (instantiate $n (with "x" (instance $i)))))
"""
    )
    # Swap the import's result type to i32 inside the second module: instantiation no longer type-checks.
    patched = bytearray(broken)
    second = patched.index(b"\x00asm\x01\x00\x00\x00", patched.index(b"\x00asm\x01\x00\x00\x00") + 8)
    pos = patched.index(b"\x60\x00\x01\x7e", second)
    patched[pos + 3] = 0x7F
    with pytest.raises(OutputInvalidError):
        validate_component(bytes(patched))


def test_only_modules_identical_to_known_valid_ones_skip_validation() -> None:
    from hatch_component_init.wasm.component import core_modules, parse_component

    good = wat(GOOD)
    data = bytearray(good)
    pos = data.index(b"\x41\x07\x0b")
    data[pos] = 0x42  # invalid, and the same length as the good module
    (bad_module,) = core_modules(parse_component(memoryview(bytes(data))))
    (good_module,) = core_modules(parse_component(memoryview(good)))
    with pytest.raises(OutputInvalidError):
        validate_component(bytes(data), [good_module.raw])
    # The same bytes as a module Wasmtime already compiled (as the input's are): not validated again.
    validate_component(bytes(data), [bad_module.raw])
