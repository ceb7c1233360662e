"""The binary codec: parse -> re-encode gives the input back, byte for byte."""

from __future__ import annotations

import pytest

import test_engine_shapes as shapes
from hatch_component_init import InvalidComponentError, UnsupportedComponentError
from hatch_component_init.rewrite import reencode
from hatch_component_init.wasm.component import Sort, parse_component
from hatch_component_init.wasm.core_module import parse_core_module

FIXTURES = {name: value for name, value in vars(shapes).items() if isinstance(value, (bytes, bytearray))}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_wat_fixture_round_trips(name: str) -> None:
    data = FIXTURES[name]
    assert reencode(parse_component(memoryview(data))) == data


@pytest.mark.slow
def test_componentize_py_component_round_trips(greeter_component: bytes) -> None:
    parsed = parse_component(memoryview(greeter_component))
    assert reencode(parsed) == greeter_component
    # What DESIGN.md measured for componentize-py output.
    assert parsed.count(Sort.CORE_MODULE) == 14
    assert parsed.count(Sort.CORE_INSTANCE) == 64
    assert sum(len(m.memories) for m in parsed.modules.values()) == 1


def test_index_spaces_of_a_nested_component() -> None:
    parsed = parse_component(memoryview(shapes.NESTED))
    assert parsed.count(Sort.COMPONENT) == 1
    assert parsed.count(Sort.INSTANCE) == 2
    # Aliases and exports both define functions: 3 aliases + 3 exports.
    assert parsed.count(Sort.FUNC) == 6
    (inner,) = parsed.components.values()
    assert inner.count(Sort.CORE_INSTANCE) == 1


def test_core_module_is_refused_with_a_hint() -> None:
    from wat_support import wat

    with pytest.raises(UnsupportedComponentError, match="core modules are not supported yet"):
        parse_component(memoryview(wat("(module)")))


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00asm", b"hello world, not wasm", b"\x00asm\x0d\x00\x01\x00\x07\xff\xff\xff\xff\x0f"],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidComponentError):
        parse_component(memoryview(data))


@pytest.mark.parametrize("cut", [9, 20, 57, 100, -1])
def test_truncated_component_is_refused(cut: int) -> None:
    with pytest.raises(InvalidComponentError):
        parse_component(memoryview(shapes.TWICE[:cut]))


def test_core_module_view() -> None:
    from wat_support import wat

    m = parse_core_module(
        memoryview(wat('(module (import "a" "m" (memory 1)) (memory 2 5) (global (mut i64) (i64.const 3)) (export "x" (memory 1)))'))
    )
    assert m.imported_memories == 1
    assert [(mem.index, mem.limits.minimum, mem.limits.maximum) for mem in m.memories] == [(1, 2, 5)]
    assert [(g.index, g.mutable) for g in m.globals] == [(0, True)]
    assert m.exports == {"x": (2, 1)}
