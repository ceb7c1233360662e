"""Mutated components: every run ends with a valid output or a ComponentInitError, never a crash or a hang.

The parse stage (parse_component + instrument) gets thousands of mutations of
every WAT fixture and some hundreds of the componentize-py greeter, aimed at
the bytes that carry structure (section headers, vector counts) since a flip
inside 10 MB of code says little about the parser. The whole pipeline runs
on fewer mutations. Mutations are seeded: a failure names the seed and index
that reproduce it (`mutations(seed_bytes, seed, n)[index]`).

Run a bigger volume by hand with `HCI_FUZZ_SCALE=20 pytest tests/test_fuzz.py`.
"""

from __future__ import annotations

import os
import random
import time
import traceback
import zlib
from collections.abc import Iterator

import pytest

import test_engine_shapes
from hatch_component_init import ComponentInitError, OutputInvalidError, pre_initialize
from hatch_component_init.instrument import instrument
from hatch_component_init.wasm.component import Component, parse_component
from hatch_component_init.wasm.reader import encode_u32

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


def _describe(e: BaseException) -> str:
    frame = traceback.extract_tb(e.__traceback__)[-1]
    return f"{type(e).__name__} at {os.path.basename(frame.filename)}:{frame.lineno}: {e}"


def check_parse(inputs: Iterator[bytes], label: str, *, max_seconds: float = 5.0) -> int:
    """Parse and instrument every input; return how many; fail on anything but ComponentInitError."""
    failures = []
    count = 0
    for index, data in enumerate(inputs):
        count += 1
        t0 = time.perf_counter()
        try:
            instrument(parse_component(memoryview(data)))
        except ComponentInitError:
            pass
        except BaseException as e:  # noqa: BLE001 - the assertion below reports it
            failures.append(f"{label} #{index}: {_describe(e)}; input {data[:64].hex()}... ({len(data)} bytes)")
        elapsed = time.perf_counter() - t0
        if elapsed > max_seconds:
            failures.append(f"{label} #{index}: took {elapsed:.1f} s")
    assert not failures, "\n".join(failures[:20])
    return count


def check_full(data: bytes, label: str, *, max_seconds: float = 30.0) -> str:
    """Run the whole pipeline; return the outcome's name; fail on a crash, a hang or an invalid output."""
    t0 = time.perf_counter()
    try:
        pre_initialize(data, timeout=1, max_memory=64 << 20)
        outcome = "ok"
    except OutputInvalidError as e:  # a ComponentInitError, but our bug, not the input's fault
        pytest.fail(f"{label}: wasmtime accepted the input, but not our output: {e}; input {data.hex()[:400]}")
    except ComponentInitError as e:
        outcome = type(e).__name__
    except BaseException as e:  # noqa: BLE001
        pytest.fail(f"{label}: {_describe(e)}; input {data.hex()[:400]}")
    elapsed = time.perf_counter() - t0
    assert elapsed < max_seconds, f"{label}: took {elapsed:.1f} s"
    return outcome


# ---------------------------------------------------------------- parse stage


@pytest.mark.parametrize("name", sorted(WAT_SEEDS))
def test_parse_stage_on_wat_mutations(name: str) -> None:
    seed = WAT_SEEDS[name]
    n = check_parse(mutations(seed, zlib.crc32(name.encode()), int(3000 * SCALE)), name)
    n += check_parse(structural_mutations(seed), f"{name} structural")
    assert n >= 3000 * SCALE


@pytest.mark.slow
def test_parse_stage_on_greeter_mutations(greeter_component: bytes) -> None:
    # ~0.05 s per input (CPython's 10 MB of code is scanned for table mutations): aim at the structure.
    check_parse(structural_mutations(greeter_component, int(60 * SCALE), seed=7), "greeter structural")
    check_parse(mutations(greeter_component, 11, int(120 * SCALE)), "greeter")


def test_deep_nesting_and_huge_start_results_are_refused() -> None:
    magic = b"\x00asm\x0d\x00\x01\x00"
    nested = magic
    for _ in range(3000):
        nested = magic + b"\x04" + encode_u32(len(nested)) + nested
    start = magic + b"\x09\x07\x00\x00" + encode_u32(0xFFFFFFFF)
    check_parse(iter([nested, start, nested[:-1]]), "constructed")


# ---------------------------------------------------------------- whole pipeline


def test_pipeline_on_wat_mutations() -> None:
    outcomes: dict[str, int] = {}
    for name, seed in sorted(WAT_SEEDS.items()):
        for index, data in enumerate(mutations(seed, len(seed), int(250 * SCALE))):
            outcome = check_full(data, f"{name} #{index}")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # The mutations reach every stage: some parse, run and snapshot fine.
    assert outcomes.get("ok", 0) > 0 and outcomes.get("InvalidComponentError", 0) > 0, outcomes


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
        assert check_full(data, f"greeter #{index}") != "ok"
