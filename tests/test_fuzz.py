"""Hostile input: mutated and hand-made components against the README's promise, stage by stage.

What "Guarantees" -> "Hostile input" promises, and what every input here is checked for:

- nothing crashes or hangs: every run ends with an output or a ComponentInitError
  (hangs: a subprocess time-out or CI's job limit catches them, not a timing assert);
- an input Wasmtime refuses is refused before init runs, with InvalidComponentError
  carrying an offset inside the input; the one exception is a feature we do not
  support met before the fault (UnsupportedComponentError): raised by
  ``parse_component`` itself (e.g. an unknown canonical built-in, a custom page size),
  or because the first thing Wasmtime met is a feature it was not configured for;
- an input Wasmtime accepts is never called invalid (and never an OutputInvalidError).

Wasmtime compiling the input as it is, with the pre-initializer's engine
configuration, is the oracle for "malformed".

The parse stage (parse_component + instrument) gets thousands of mutations of
every WAT fixture and some hundreds of the componentize-py greeter, aimed at
the bytes that carry structure (section headers, vector counts) since a flip
inside 10 MB of code says little about the parser. The whole pipeline runs
on fewer mutations. Mutations are seeded: a failure names the seed and index
that reproduce it (`mutations(seed_bytes, seed, n)[index]`).

``HCI_FUZZ_SCALE`` multiplies every count: `HCI_FUZZ_SCALE=40 pytest tests/test_fuzz.py`
runs about 2 million mutated inputs (the default, 1, about 55,000).
"""

from __future__ import annotations

import os
import random
import re
import traceback
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator

import pytest
import wasmtime
from wasmtime import component as cm

import test_engine_shapes
from hatch_component_init import (
    ComponentInitError,
    InvalidComponentError,
    OutputInvalidError,
    UnsupportedComponentError,
    pre_initialize,
)
from hatch_component_init import api
from hatch_component_init.instrument import instrument
from hatch_component_init.wasm.component import Component, parse_component
from hatch_component_init.wasm.reader import encode_u32
from wat_support import engine, wat

SCALE = float(os.environ.get("HCI_FUZZ_SCALE", "1"))

#: Every component fixture of the engine-shape tests (module-level bytes), picked up by name.
WAT_SEEDS = {
    name: value
    for name, value in vars(test_engine_shapes).items()
    if name.isupper() and isinstance(value, bytes) and value[:4] == b"\x00asm"
}

#: Values written over LEB128 fields: each is "more than any input holds" in its own way.
HUGE = [
    encode_u32(0xFFFFFFFF),
    encode_u32(0x7FFFFFFF),
    encode_u32(1 << 31),
    encode_u32(1 << 28),
    encode_u32(100_000),
    b"\xff\xff\xff\xff\xff\x7f",  # too long for a u32
    b"\x80\x80\x80\x80\x80\x00",  # over-long zero
    b"\xff\xff\xff\xff\x7f",  # 2**35 - 1: fits 5 bytes, not 32 bits
    b"\x00",
]


def _leb_len(data: bytes | bytearray, pos: int) -> int:
    n = 0
    while pos + n < len(data) and data[pos + n] & 0x80 and n < 10:
        n += 1
    return n + 1


def structure(data: bytes) -> tuple[list[int], list[int]]:
    """(LEB positions of section sizes and vector counts, positions worth mutating) of a parsable seed."""
    lebs: set[int] = set()
    focus: set[int] = set()

    def add_section(base: int, start: int, payload: int, end: int, sid: int, small: bool) -> None:
        lebs.add(base + start + 1)
        if payload < end and sid != 0:
            lebs.add(base + payload)  # most sections open with a vector count
        focus.update(range(base + start, base + min(end, payload + 48)))
        if small and end - start < 20_000:
            focus.update(range(base + start, base + end))

    def walk(c: Component) -> None:
        for s in c.sections:
            add_section(c.base, s.start, s.payload_start, s.end, s.id, s.id not in (0, 1, 4))
        for m in c.modules.values():
            for s in m.sections:
                add_section(m.base, s.start, s.payload_start, s.end, s.id, s.id not in (0, 10, 11))
        for sub in c.components.values():
            walk(sub)

    walk(parse_component(memoryview(data)))
    return sorted(lebs), sorted(focus)


def mutations(data: bytes, seed: int, n: int) -> Iterator[bytes]:
    """``n`` seeded mutations of ``data``: flips, bytes, truncations, insertions, deletions, splices, huge LEBs."""
    rng = random.Random(seed)
    lebs, focus = structure(data)

    def pos(d: bytearray) -> int:
        if focus and len(d) == len(data) and rng.random() < 0.9:
            return rng.choice(focus)
        return rng.randrange(len(d)) if d else 0

    for _ in range(n):
        d = bytearray(data)
        for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 4)):
            if not d:
                break
            kind = rng.randrange(8)
            i = pos(d)
            if kind == 0:
                d[i] ^= 1 << rng.randrange(8)
            elif kind == 1:
                d[i] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)))
            elif kind == 2:
                del d[i:]
            elif kind == 3:
                d[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif kind == 4:
                del d[i : i + rng.randint(1, 16)]
            elif kind == 5:
                j = rng.randrange(len(d))
                d[i:i] = d[j : j + rng.randint(1, 32)]
            else:
                # A huge count or size over a structural LEB (or any byte, sometimes).
                at = rng.choice(lebs) if lebs and len(d) == len(data) and rng.random() < 0.8 else i
                d[at : at + _leb_len(d, at)] = rng.choice(HUGE)
        yield bytes(d)


def structural_mutations(data: bytes, sample: int | None = None, seed: int = 0) -> Iterator[bytes]:
    """Each huge value over each section size and vector count of ``data`` (or ``sample`` of those pairs)."""
    lebs, _ = structure(data)
    pairs = [(at, value) for at in lebs for value in HUGE]
    if sample is not None and sample < len(pairs):
        pairs = random.Random(seed).sample(pairs, sample)
    for at, value in pairs:
        d = bytearray(data)
        d[at : at + _leb_len(d, at)] = value
        yield bytes(d)


# ---------------------------------------------------------------- the oracle


def wasmtime_refusal(data: bytes) -> str | None:
    """Why Wasmtime refuses to compile ``data`` as a component (the pre-initializer's features), or None."""
    try:
        cm.Component(engine(), data)
    except wasmtime.WasmtimeError as e:
        return str(e)
    return None


def wasmtime_accepts(data: bytes) -> bool:
    return wasmtime_refusal(data) is None


_OFFSET = re.compile(r"at offset (0x[0-9a-f]+)")


def _offset_in(message: str) -> int | None:
    found = _OFFSET.findall(message)
    return int(found[-1], 16) if found else None


def unsupported_first(e: ComponentInitError, parse_refusal: ComponentInitError | None, refusal: str) -> bool:
    """Whether ``e`` is an allowed answer to an input Wasmtime refuses: a feature we lack, met before the fault.

    Either the first thing Wasmtime met is a feature it was not configured for,
    or our parser refused a feature before it reached the fault: where both
    name an offset, ours must come first (a byte our parser does not know, at
    the very offset Wasmtime calls malformed, is the fault, not a feature).
    """
    if not isinstance(e, UnsupportedComponentError):
        return False
    if "feature" in refusal:
        return True
    if str(e) != str(parse_refusal):
        return False
    ours, theirs = _offset_in(str(e)), _offset_in(refusal)
    return ours is None or theirs is None or ours < theirs


def _describe(e: BaseException) -> str:
    frame = traceback.extract_tb(e.__traceback__)[-1]
    return f"{type(e).__name__} at {os.path.basename(frame.filename)}:{frame.lineno}: {e}"


def _offset_problem(e: InvalidComponentError, data: bytes) -> str | None:
    if e.offset is None:
        return "InvalidComponentError without an offset"
    if not 0 <= e.offset <= len(data):
        return f"offset {e.offset} outside the {len(data)}-byte input"
    return None


def check_parse(inputs: Iterable[bytes], label: str) -> Counter[str]:
    """Parse and instrument every input; return the outcomes by name.

    Fails on anything but a ComponentInitError, on an InvalidComponentError
    without an offset in the input, and on an InvalidComponentError for an
    input Wasmtime accepts.
    """
    failures = []
    outcomes: Counter[str] = Counter()
    for index, data in enumerate(inputs):
        problem = None
        try:
            instrument(parse_component(memoryview(data)))
            outcomes["ok"] += 1
        except InvalidComponentError as e:
            outcomes[type(e).__name__] += 1
            problem = _offset_problem(e, data)
            if problem is None and wasmtime_accepts(data):
                problem = f"refused as invalid, but Wasmtime accepts it: {e}"
        except ComponentInitError as e:
            outcomes[type(e).__name__] += 1
        except BaseException as e:  # noqa: BLE001 - the assertion below reports it
            problem = _describe(e)
        if problem is not None:
            failures.append(f"{label} #{index}: {problem}; input {data[:64].hex()}... ({len(data)} bytes)")
    assert not failures, "\n".join(failures[:20])
    return outcomes


def check_full(data: bytes, label: str) -> str:
    """Run the whole pipeline; return the outcome's name; fail where it breaks the promise for this input."""

    def fail(message: str) -> None:
        pytest.fail(f"{label}: {message}; input {data.hex()[:400]}")

    try:
        parse_component(memoryview(data))
        parse_refusal: ComponentInitError | None = None
    except ComponentInitError as e:
        parse_refusal = e
    refusal = wasmtime_refusal(data)
    try:
        pre_initialize(data, timeout=1, max_memory=64 << 20)
    except OutputInvalidError as e:  # a ComponentInitError, but our bug, not the input's fault
        fail(f"a bug reported for this input: {e}")
    except InvalidComponentError as e:
        problem = _offset_problem(e, data)
        if problem is not None:
            fail(problem)
        if refusal is None:
            fail(f"refused as invalid, but Wasmtime accepts it: {e}")
        return type(e).__name__
    except ComponentInitError as e:
        if refusal is not None and not unsupported_first(e, parse_refusal, refusal):
            fail(f"Wasmtime refuses this input, but it was not refused as invalid: {type(e).__name__}: {e}")
        return type(e).__name__
    except BaseException as e:  # noqa: BLE001
        fail(_describe(e))
    if refusal is not None:
        fail(f"Wasmtime refuses this input, but it was pre-initialized: {refusal}")
    return "ok"


# ---------------------------------------------------------------- parse stage


@pytest.mark.parametrize("name", sorted(WAT_SEEDS))
def test_parse_stage_on_wat_mutations(name: str) -> None:
    seed = WAT_SEEDS[name]
    outcomes = check_parse(mutations(seed, zlib.crc32(name.encode()), int(3000 * SCALE)), name)
    outcomes += check_parse(structural_mutations(seed), f"{name} structural")
    # Not a vacuous run: the mutations get past the parser's first checks, and are refused too.
    assert outcomes["ok"] > 0 and outcomes["InvalidComponentError"] > 0, outcomes


@pytest.mark.slow
def test_parse_stage_on_greeter_mutations(greeter_component: bytes) -> None:
    # ~0.05 s per input (CPython's 10 MB of code is scanned for table mutations): aim at the structure.
    outcomes = check_parse(structural_mutations(greeter_component, int(60 * SCALE), seed=7), "greeter structural")
    outcomes += check_parse(mutations(greeter_component, 11, int(120 * SCALE)), "greeter")
    assert outcomes["ok"] > 0 and outcomes["InvalidComponentError"] > 0, outcomes


COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"


def test_deep_nesting_is_refused() -> None:
    nested = COMPONENT_HEADER
    for _ in range(3000):
        nested = COMPONENT_HEADER + b"\x04" + encode_u32(len(nested)) + nested
    with pytest.raises(UnsupportedComponentError, match="nested more than 100 levels"):
        parse_component(memoryview(nested))
    with pytest.raises(UnsupportedComponentError, match="nested more than 100 levels"):
        pre_initialize(nested)


def test_truncated_deep_nesting_is_refused_at_the_outermost_section() -> None:
    nested = COMPONENT_HEADER
    for _ in range(3000):
        nested = COMPONENT_HEADER + b"\x04" + encode_u32(len(nested)) + nested
    with pytest.raises(InvalidComponentError, match="bytes announced") as info:
        pre_initialize(nested[:-1])
    # The outermost section announces more than is left: refused where its payload starts.
    assert info.value.offset == len(COMPONENT_HEADER) + 1 + _leb_len(nested, len(COMPONENT_HEADER) + 1)


def test_huge_start_result_count_is_refused_before_allocating() -> None:
    data = COMPONENT_HEADER + b"\x09\x07\x00\x00" + encode_u32(0xFFFFFFFF)
    with pytest.raises(InvalidComponentError, match="start function with 4294967295 results") as info:
        pre_initialize(data)
    assert info.value.offset == 12  # the result count


def test_unknown_index_is_refused_at_the_index() -> None:
    # An export section: one export, plain name "f", sort func, index 5, of a component that has no functions.
    section = b"\x01" + b"\x00\x01f" + b"\x01" + encode_u32(5) + b"\x00"
    data = COMPONENT_HEADER + b"\x0b" + encode_u32(len(section)) + section
    with pytest.raises(InvalidComponentError, match="unknown func 5") as info:
        pre_initialize(data)
    assert data[info.value.offset] == 5


def test_malformed_code_met_by_the_table_scan_is_refused_at_its_byte() -> None:
    data = bytearray(
        wat(
            """
(component
  (core module $m
    (table 2 funcref)
    (func $f)
    (func (export "init") nop (table.set (i32.const 0) (ref.func $f)))
    (elem declare func $f))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
        )
    )
    at = data.index(b"\x01\x41\x00\xd2")  # the `nop` before `i32.const 0; ref.func`
    data[at] = 0xFF  # no such opcode
    with pytest.raises(InvalidComponentError, match="unknown opcode 0xff") as info:
        pre_initialize(bytes(data))
    assert info.value.offset == at


# ------------------------------------------- what our parser skips, Wasmtime finds


def _module_code_range(data: bytes) -> range:
    (module,) = parse_component(memoryview(data)).modules.values()
    code = module.section(10)
    assert code is not None
    return range(module.base + code.payload_start, module.base + code.end)


#: Well formed, but its init returns an i64 where its type says i32: only a validator sees it.
TYPE_MISMATCH = """
(component
  (core module $m
    (table 2 funcref)
    (func $f)
    (func (export "init") (result i32) (i64.const 1)) {extra}
    (elem declare func $f))
  (core instance $i (instantiate $m))
  (func (export "component-init") (result u32) (canon lift (core func $i "init"))))
"""


def test_invalid_function_body_is_refused_at_its_offset() -> None:
    data = wat(TYPE_MISMATCH.format(extra=""))
    with pytest.raises(InvalidComponentError, match="type mismatch") as info:
        pre_initialize(data)
    assert info.value.offset in _module_code_range(data)


def test_malformed_input_is_reported_as_malformed_even_if_also_unsupported() -> None:
    # Mutating a table is refused as unsupported, but only for an input that is a component at all.
    table_set = '(func (export "set") (table.set (i32.const 0) (ref.func $f)))'
    with pytest.raises(UnsupportedComponentError, match="table.set"):
        pre_initialize(wat(TYPE_MISMATCH.format(extra=table_set).replace("(result i32) (i64.const 1)", "(result i32) (i32.const 1)")))
    data = wat(TYPE_MISMATCH.format(extra=table_set))
    with pytest.raises(InvalidComponentError, match="type mismatch") as info:
        pre_initialize(data)
    assert info.value.offset in _module_code_range(data)


def test_fault_in_a_skipped_nested_type_section_is_refused_at_its_byte() -> None:
    data = test_engine_shapes.NESTED
    (inner,) = parse_component(memoryview(data)).components.values()
    types = next(s for s in inner.sections if s.id == 7)
    bad = bytearray(data)
    at = inner.base + types.payload_start + 1
    bad[at] = 0xFF  # not a type constructor
    with pytest.raises(InvalidComponentError, match="component defined type") as info:
        pre_initialize(bytes(bad))
    assert info.value.offset == at


def test_an_unsupported_feature_met_before_the_fault_is_what_is_reported() -> None:
    # A custom page size, then (in the export section) a name that is not kebab-case: Wasmtime refuses it.
    custom_pages = wat(
        """
(component
  (core module $m (memory 1 (pagesize 1)) (func (export "init")))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
    )
    data = custom_pages.replace(b"component-init", b"component_init")
    assert not wasmtime_accepts(data)
    with pytest.raises(UnsupportedComponentError, match="custom page size"):
        pre_initialize(data)


def test_an_unknown_canonical_opcode_wasmtime_calls_malformed_is_refused_as_invalid() -> None:
    data = bytearray(test_engine_shapes.GLOBALS)
    canon = next(s for s in parse_component(memoryview(data)).sections if s.id == 8)
    at = canon.payload_start + 1  # the first built-in's opcode (canon lift, 0x00)
    data[at] = 0x30  # no canonical built-in has it
    assert "invalid leading byte (0x30)" in (wasmtime_refusal(bytes(data)) or "")
    with pytest.raises(InvalidComponentError, match="invalid leading byte") as info:
        pre_initialize(bytes(data))
    assert info.value.offset == at
    assert check_full(bytes(data), "opcode 0x30") == "InvalidComponentError"
    # The oracle: our parser's "not a built-in this tool knows", at the byte Wasmtime calls malformed, is no excuse.
    with pytest.raises(UnsupportedComponentError, match="not one this tool knows") as parsed:
        parse_component(memoryview(data))
    assert not unsupported_first(parsed.value, parsed.value, wasmtime_refusal(bytes(data)) or "")


def test_the_oracle_fails_an_output_made_from_an_input_wasmtime_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    import test_fuzz

    data = test_engine_shapes.GLOBALS[:-1]
    assert not wasmtime_accepts(data)
    monkeypatch.setattr(test_fuzz, "pre_initialize", lambda data, **options: b"an output")
    with pytest.raises(pytest.fail.Exception, match="Wasmtime refuses this input, but it was pre-initialized"):
        check_full(data, "truncated")


def test_an_instrumentation_fault_is_reported_as_our_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    real = api.instrument

    def faulty(parsed: Component, **options: bool):  # type: ignore[no-untyped-def]
        instrumented, plan = real(parsed, **options)
        return instrumented + b"\x01\x01\x00", plan  # a core module section holding one byte

    monkeypatch.setattr(api, "instrument", faulty)
    with pytest.raises(OutputInvalidError, match="Wasmtime accepts the input but not the instrumented component"):
        pre_initialize(test_engine_shapes.GLOBALS)


# ---------------------------------------------------------------- whole pipeline


def test_pipeline_on_wat_mutations() -> None:
    outcomes: Counter[str] = Counter()
    for name, seed in sorted(WAT_SEEDS.items()):
        for index, data in enumerate(mutations(seed, len(seed), int(250 * SCALE))):
            outcomes[check_full(data, f"{name} #{index}")] += 1
    # The mutations reach every stage: some parse, run and snapshot fine, some only Wasmtime refuses.
    assert outcomes["ok"] > 0 and outcomes["InvalidComponentError"] > 0, outcomes


@pytest.mark.slow
def test_pipeline_on_greeter_mutations(greeter_component: bytes) -> None:
    lebs, _ = structure(greeter_component)
    rng = random.Random(3)
    cases = [greeter_component[: len(greeter_component) // 2], greeter_component[:-1]]
    for at in rng.sample(lebs, 2):
        d = bytearray(greeter_component)
        d[at : at + _leb_len(d, at)] = encode_u32(0xFFFFFFFF)
        cases.append(bytes(d))
    # Component type bodies are skipped by our parser: Wasmtime is the one to refuse these.
    types = [s for s in parse_component(memoryview(greeter_component)).sections if s.id == 7]
    for _ in range(3):
        s = rng.choice(types)
        d = bytearray(greeter_component)
        d[rng.randrange(s.payload_start + 1, s.end)] = 0xFF
        cases.append(bytes(d))
    for index, data in enumerate(cases):
        assert check_full(data, f"greeter #{index}") == "InvalidComponentError"
