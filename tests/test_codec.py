"""The binary codec: parse -> re-encode gives the input back, byte for byte; LEB128 as the spec reads it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import test_engine_shapes as shapes
from hatch_component_init import InvalidComponentError, UnsupportedComponentError, pre_initialize
from hatch_component_init.rewrite import reencode
from hatch_component_init.wasm.component import Sort, parse_component
from hatch_component_init.wasm.core_module import parse_core_module
from hatch_component_init.wasm.reader import Reader, encode_s32, encode_s64, encode_u32
from test_fuzz import wasmtime_accepts
from wat_support import wat

#: The same examples on every run and machine, and no database of past failures to replay.
PROPERTY = settings(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIXTURES = {name: value for name, value in vars(shapes).items() if isinstance(value, (bytes, bytearray))}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_wat_fixture_round_trips(name: str) -> None:
    data = FIXTURES[name]
    assert reencode(parse_component(memoryview(data))) == data


@pytest.mark.slow
def test_componentize_py_component_round_trips(greeter_component: bytes) -> None:
    parsed = parse_component(memoryview(greeter_component))
    assert reencode(parsed) == greeter_component
    # Counted independently of our parser, from the top-level sections (componentize-py nests no
    # components): each core module section holds one module, each core instance section a vector.
    modules, instances = _top_level_counts(greeter_component)
    assert parsed.count(Sort.CORE_MODULE) == modules > 1
    assert parsed.count(Sort.CORE_INSTANCE) == instances > modules
    # One memory in all: libc's, which every other module imports.
    assert sum(len(m.memories) for m in parsed.modules.values()) == 1


def _leb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            return value, pos


def _top_level_counts(component: bytes) -> tuple[int, int]:
    """(core modules, core instances) defined by the top-level sections (ids 1 and 2) of ``component``."""
    modules = instances = 0
    pos = 8
    while pos < len(component):
        section_id = component[pos]
        size, payload = _leb(component, pos + 1)
        if section_id == 1:
            modules += 1
        elif section_id == 2:
            instances += _leb(component, payload)[0]
        pos = payload + size
    return modules, instances


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


@pytest.mark.parametrize(
    ("sections", "message", "at"),
    [
        # A section id no core module has (14), at the byte where its section starts.
        (b"\x0e\x00", "unknown core section id 14", 8),
        # A global whose mutability byte is 2 (one i32 global: count, valtype 0x7f, then the byte).
        (b"\x06\x06\x01\x7f\x02\x41\x00\x0b", "bad global mutability 2", 8 + 4),
    ],
    ids=["section-id", "global-mutability"],
)
def test_a_malformed_core_module_is_refused_where_the_byte_is(sections: bytes, message: str, at: int) -> None:
    with pytest.raises(InvalidComponentError) as info:
        parse_core_module(memoryview(b"\x00asm\x01\x00\x00\x00" + sections), base=1000)
    assert str(info.value).startswith(message) and info.value.offset == 1000 + at, (str(info.value), info.value.offset)


@pytest.mark.parametrize(
    ("sort", "message"), [(b"\x06", "unknown sort 0x6"), (b"\x00\x05", "unknown core sort 0x5")], ids=["sort", "core-sort"]
)
def test_an_export_of_an_unknown_sort_is_refused_where_the_byte_is(sort: bytes, message: str) -> None:
    """wasm/component.read_sort: an export section's one export, `a`, of a sort no component has."""
    body = b"\x01" + b"\x00\x01a" + sort + b"\x00"
    header = b"\x00asm\x0d\x00\x01\x00" + b"\x0b" + bytes([len(body)])
    with pytest.raises(InvalidComponentError) as info:
        pre_initialize(header + body)
    assert str(info.value) == f"{message} (at offset {len(header) + 4 + len(sort) - 1:#x})"


def test_a_core_instantiation_argument_that_is_not_an_instance_is_refused_where_it_is() -> None:
    """wasm/component._core_instances: `(instantiate 0 (with "a" ...))` whose argument's kind byte is not 0x12."""
    module = b"\x00asm\x01\x00\x00\x00"
    head = b"\x00asm\x0d\x00\x01\x00" + b"\x01" + bytes([len(module)]) + module
    body = b"\x01" + b"\x00\x00" + b"\x01" + b"\x01a" + b"\x00" + b"\x00"  # one instantiation of module 0
    with pytest.raises(InvalidComponentError) as info:
        pre_initialize(head + b"\x02" + bytes([len(body)]) + body)
    assert str(info.value) == f"core instantiation argument must be an instance (at offset {len(head) + 2 + 6:#x})"


def test_core_module_view() -> None:
    from wat_support import wat

    m = parse_core_module(
        memoryview(wat('(module (import "a" "m" (memory 1)) (memory 2 5) (global (mut i64) (i64.const 3)) (export "x" (memory 1)))'))
    )
    assert m.imported_memories == 1
    assert [(mem.index, mem.limits.minimum, mem.limits.maximum) for mem in m.memories] == [(1, 2, 5)]
    assert [(g.index, g.mutable) for g in m.globals] == [(0, True)]
    assert m.exports == {"x": (2, 1)}


# ---------------------------------------------------------------- LEB128


def spec_leb(data: bytes, bits: int, signed: bool) -> tuple[int, int] | None:
    """(value, length) of the LEB128 integer at the start of ``data`` as the core spec defines it, or None if malformed.

    At most ceil(bits / 7) bytes; the unused bits of the last byte must be zero
    (unsigned) or copies of the sign bit (signed), i.e. the value must fit.
    """
    for n in range(min(-(-bits // 7), len(data))):
        if data[n] < 0x80:
            value = sum((data[i] & 0x7F) << (7 * i) for i in range(n + 1))
            if signed:
                width = 7 * (n + 1)
                if value >> (width - 1):
                    value -= 1 << width
                fits = -(1 << (bits - 1)) <= value < 1 << (bits - 1)
            else:
                fits = value < 1 << bits
            return (value, n + 1) if fits else None
    return None


READERS = {"u32": (32, False), "u64": (64, False), "s32": (32, True), "s33": (33, True), "s64": (64, True)}

#: Arbitrary bytes rarely end a LEB128 where it matters, so also build them: continuation bytes, a last byte, junk.
#: The edges are bytes that carry no bits (0x80, 0x00) or all of them (0xFF, 0x7F), and sign bits (0x40, 0xC0).
_EDGY = [0x00, 0x01, 0x0F, 0x10, 0x3F, 0x40, 0x7F]
LEB_LIKE = st.one_of(
    st.binary(max_size=12),
    st.builds(
        lambda more, last, junk: bytes(more) + bytes([last]) + junk,
        st.lists(st.one_of(st.sampled_from([0x80 | b for b in _EDGY]), st.integers(0x80, 0xFF)), max_size=11),
        st.one_of(st.sampled_from(_EDGY), st.integers(0x00, 0x7F)),
        st.binary(max_size=2),
    ),
)


@settings(PROPERTY, max_examples=1000)
@given(data=LEB_LIKE, reader=st.sampled_from(sorted(READERS)))
@example(data=b"\x80\x80\x80\x80\x80\x00", reader="u32")  # over-long zero: 6 bytes for a u32
@example(data=b"\xff\xff\xff\xff\x0f", reader="u32")  # the largest u32
@example(data=b"\xff\xff\xff\xff\x1f", reader="u32")  # one bit too many
@example(data=b"\xff\xff\xff\xff\x7f", reader="s32")  # -1, over-long but within 5 bytes
@example(data=b"\x80\x80\x80\x80\x78", reader="s32")  # the smallest s32
def test_leb128_decoding_follows_the_spec(data: bytes, reader: str) -> None:
    expected = spec_leb(data, *READERS[reader])
    r = Reader(memoryview(data), base=100)
    if expected is None:
        with pytest.raises(InvalidComponentError) as info:
            getattr(r, reader)()
        assert info.value.offset is not None and 100 <= info.value.offset <= 100 + len(data)
    else:
        assert (getattr(r, reader)(), r.pos) == expected


@PROPERTY
@given(st.integers(0, 2**32 - 1))
def test_u32_encoding_round_trips_in_the_fewest_bytes(value: int) -> None:
    encoded = encode_u32(value)
    assert len(encoded) == max(1, -(-value.bit_length() // 7))
    r = Reader(memoryview(encoded))
    assert (r.u32(), r.pos) == (value, len(encoded))


@PROPERTY
@given(st.integers(-(2**63), 2**63 - 1))
def test_signed_encoding_round_trips(value: int) -> None:
    encoded = encode_s64(value)
    assert spec_leb(encoded, 64, True) == (value, len(encoded))
    r = Reader(memoryview(encoded))
    assert (r.s64(), r.pos) == (value, len(encoded))
    if -(2**31) <= value < 2**31:
        r = Reader(memoryview(encode_s32(value)))
        assert r.s32() == value and r.at_end()


# ---------------------------------------------------------------- generated components


@dataclass(frozen=True)
class ModuleSpec:
    memories: tuple[tuple[str, int, int | None], ...]  # (kind: plain/shared/i64, minimum, maximum)
    globals: tuple[tuple[str, bool], ...]  # (value type, mutable)
    data: tuple[bool, ...]  # is_passive, per segment

    def wat(self, name: str, payloads: list[bytes]) -> str:
        parts = [f"(core module ${name}"]
        for i, (kind, lo, hi) in enumerate(self.memories):
            limits = f"{lo}" + (f" {hi}" if hi is not None else "")
            parts.append(f"  (memory $mem{i} {'i64 ' if kind == 'i64' else ''}{limits}{' shared' if kind == 'shared' else ''})")
        for i, (valtype, mutable) in enumerate(self.globals):
            ty = f"(mut {valtype})" if mutable else valtype
            init = {
                "i32": f"(i32.const {i - 2})", "i64": f"(i64.const {i * 1000})", "f32": f"(f32.const {i}.5)",
                "f64": f"(f64.const -{i})", "v128": f"(v128.const i32x4 {i} 0 -1 7)", "funcref": "(ref.null func)",
            }[valtype]  # fmt: skip
            parts.append(f"  (global $g{i} {ty} {init})")
        for passive, payload in zip(self.data, payloads):
            text = "".join(f"\\{b:02x}" for b in payload)
            if passive:
                parts.append(f'  (data "{text}")')
            else:
                i = next(i for i, (_, lo, _) in enumerate(self.memories) if lo > 0)
                const = "i64.const" if self.memories[i][0] == "i64" else "i32.const"
                parts.append(f'  (data (memory $mem{i}) ({const} {16 * len(parts)}) "{text}")')
        parts.append('  (func (export "get") (result i32) (i32.const 7)))')
        return "\n".join(parts)


@st.composite
def module_specs(draw: st.DrawFn) -> ModuleSpec:
    memories = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["plain", "shared", "i64"]))
        lo = draw(st.integers(0, 3))
        hi = draw(st.one_of(st.none(), st.integers(lo, 6))) if kind != "shared" else draw(st.integers(lo, 6))
        memories.append((kind, lo, hi))
    globals_ = draw(
        st.lists(st.tuples(st.sampled_from(["i32", "i64", "f32", "f64", "v128"]), st.booleans()), max_size=4)
    )
    if draw(st.booleans()):
        globals_.append(("funcref", False))
    can_be_active = any(lo > 0 for _, lo, _ in memories)
    data = draw(st.lists(st.booleans() if can_be_active else st.just(True), max_size=3))
    return ModuleSpec(tuple(memories), tuple(globals_), tuple(data))


@dataclass(frozen=True)
class ComponentSpec:
    modules: tuple[ModuleSpec, ...]
    instances: tuple[int, ...]  # the module each core instance instantiates
    nested: tuple[ModuleSpec, ...]  # one nested component per entry, holding that module
    nested_instances: tuple[int, ...]  # the nested component each instance instantiates


@st.composite
def components(draw: st.DrawFn) -> tuple[ComponentSpec, str]:
    modules = tuple(draw(st.lists(module_specs(), min_size=1, max_size=3)))
    instances = tuple(draw(st.lists(st.integers(0, len(modules) - 1), min_size=1, max_size=4)))
    nested = tuple(draw(st.lists(module_specs(), max_size=2)))
    nested_instances = tuple(draw(st.lists(st.integers(0, len(nested) - 1), max_size=3))) if nested else ()
    payloads = draw(st.lists(st.binary(max_size=24), min_size=3, max_size=3))
    lines = ["(component"]
    lines += [m.wat(f"m{i}", payloads) for i, m in enumerate(modules)]
    lines += [f"(core instance $i{k} (instantiate $m{m}))" for k, m in enumerate(instances)]
    for k in range(len(instances)):
        lines.append(f'(func $f{k} (result u32) (canon lift (core func $i{k} "get")))')
        lines.append(f'(export "get{k}" (func $f{k}))')
    for n, m in enumerate(nested):
        lines.append(f"(component $c{n}")
        lines.append(m.wat("m", payloads))
        lines.append("(core instance $i (instantiate $m))")
        lines.append('(func (export "get") (result u32) (canon lift (core func $i "get"))))')
    for k, n in enumerate(nested_instances):
        lines.append(f"(instance $x{k} (instantiate $c{n}))")
        lines.append(f'(alias export $x{k} "get" (func $xg{k}))')
        lines.append(f'(export "x{k}" (func $xg{k}))')
    lines.append(")")
    spec = ComponentSpec(modules, instances, nested, nested_instances)
    return spec, "\n".join(lines)


def _check_module(parsed_module, spec: ModuleSpec) -> None:  # type: ignore[no-untyped-def]
    assert [(m.limits.minimum, m.limits.maximum, m.limits.shared, m.limits.is64) for m in parsed_module.memories] == [
        (lo, hi, kind == "shared", kind == "i64") for kind, lo, hi in spec.memories
    ]
    valtype_bytes = {"i32": 0x7F, "i64": 0x7E, "f32": 0x7D, "f64": 0x7C, "v128": 0x7B, "funcref": 0x70}
    assert [(g.valtype, g.mutable) for g in parsed_module.globals] == [(valtype_bytes[t], m) for t, m in spec.globals]
    assert [passive for passive, _ in parsed_module.data_segments] == list(spec.data)


@settings(PROPERTY, max_examples=60)
@given(components())
def test_generated_components_round_trip_and_parse_as_built(generated: tuple[ComponentSpec, str]) -> None:
    spec, text = generated
    data = wat(text)
    assert wasmtime_accepts(data), text  # the generator builds valid components only
    parsed = parse_component(memoryview(data))
    assert reencode(parsed) == data
    assert parsed.count(Sort.CORE_MODULE) == len(spec.modules)
    assert parsed.count(Sort.CORE_INSTANCE) == len(spec.instances)
    assert parsed.count(Sort.COMPONENT) == len(spec.nested)
    assert parsed.count(Sort.INSTANCE) == len(spec.nested_instances)
    # Lifts and aliases define functions, and so does every export.
    assert parsed.count(Sort.FUNC) == 2 * len(spec.instances) + 2 * len(spec.nested_instances)
    for module, module_spec in zip(parsed.modules.values(), spec.modules):
        _check_module(module, module_spec)
    for inner, module_spec in zip(parsed.components.values(), spec.nested):
        (module,) = inner.modules.values()
        _check_module(module, module_spec)
