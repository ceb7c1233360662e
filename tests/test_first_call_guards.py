"""Each recognition guard of the first-call reset (first_call.py), one at a time.

`SHAPE` is the smallest component the step recognises: a memory module that
defines one memory and exports `libcomponentize_py_runtime.so:memory_base`
(a constant i32, 1024), a library without data of its own whose `dylink.0`
gives 16 bytes of static data, linked as `libcomponentize_py_runtime.so` with
an `env` giving it that memory and base. Init (`poke`) stores one byte and
also 42 at address 2000, outside the library's data. Every other component
here is `SHAPE` with one thing changed (`_variant`), so exactly one guard
refuses it: the outcome says why, and the output is byte-identical to the one
made with the reset turned off.
"""

from __future__ import annotations

import pytest
from wat_support import Running, snapshot, wat

from hatch_component_init.options import WasiOptions

SHAPE = r"""
(component
  (core module $main
    (memory (export "memory") 1)
    (global (export "libcomponentize_py_runtime.so:memory_base") i32 (i32.const 1024))
    (data (i32.const 1024) "\00\00\07\00"))
  (core instance $main (instantiate $main))
  (core module $rt
    (import "env" "memory" (memory 1))
    (import "env" "__memory_base" (global i32))
    (@custom "dylink.0" "\01\04\10\00\00\00")
    (func (export "poke") (param i32 i32)
      (i32.store8 (local.get 0) (local.get 1))
      (i32.store8 (i32.const 2000) (i32.const 42)))
    (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))
  (core instance $env
    (export "memory" (memory $main "memory"))
    (export "__memory_base" (global $main "libcomponentize_py_runtime.so:memory_base")))
  (core instance $rt (instantiate $rt (with "env" (instance $env))))
  (core module $app
    (import "libcomponentize_py_runtime.so" "poke" (func $poke (param i32 i32)))
    (func (export "poke") (param i32 i32) (call $poke (local.get 0) (local.get 1))))
  (core instance $app (instantiate $app (with "libcomponentize_py_runtime.so" (instance $rt))))
  ;; EXTRA
  (func (export "poke") (param "address" u32) (param "value" u32) (canon lift (core func $app "poke")))
  (func (export "peek") (param "address" u32) (result u32) (canon lift (core func $rt "peek")))
)
"""

APPLIED = "componentize-py's first-call setup will run again in each instance"
REFUSED = "componentize-py's first-call state was left as init left it: "
NOTHING = "componentize-py's first-call state: nothing to reset, "


def _variant(*edits: tuple[str, str]) -> str:
    """`SHAPE` with each ``old`` (which must occur exactly once) replaced by ``new``."""
    text = SHAPE
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def _run(text: str, init: str = "poke(1025, 3)", **kwargs: object) -> tuple[bytes, list[tuple[str, str]]]:
    notes: list[tuple[str, str]] = []
    out = snapshot(wat(text), init_func=init, keep_init_func=True, on_note=lambda *n: "allocator" in n[1] or notes.append(n), **kwargs)
    return out, notes


def _peek(component: bytes, *addresses: int) -> list[int]:
    running = Running(component)  # a fresh instance: init is not called
    return [running.call("peek", a) for a in addresses]


# ------------------------------------------------------------------ recognised


def test_the_shape_is_recognised_and_the_once_byte_reset() -> None:
    out, notes = _run(SHAPE)
    assert notes == [("info", f"{APPLIED}: it reads the run-time environment and arguments and reseeds `random` "
                              "(one byte reset at address 0x401)")]  # fmt: skip
    # Init's other state is in the output; only the Once byte is back to 0.
    assert _peek(out, 1024, 1025, 1026, 2000) == [0, 0, 7, 42]
    kept, _ = _run(SHAPE, reset_first_call=False)
    assert _peek(kept, 1024, 1025, 1026, 2000) == [0, 3, 7, 42]
    assert out != kept


#: Pages 0 and 1: the library's data at 65528, across the page boundary, and init's 42 on page 1.
_PAGE_1_ONLY = [
    ("(memory (export \"memory\") 1)", "(memory (export \"memory\") 2)"),
    ("i32 (i32.const 1024))", "i32 (i32.const 65528))"),
    ('(data (i32.const 1024) "\\00\\00\\07\\00")', '(data (i32.const 65540) "\\07")'),
    ("(i32.const 2000) (i32.const 42)", "(i32.const 70000) (i32.const 42)"),
]
#: The same, but only page 0 holds anything: the library's data ends on page 1, in zeros.
_PAGE_0_ONLY = [
    ("(memory (export \"memory\") 1)", "(memory (export \"memory\") 2)"),
    ("i32 (i32.const 1024))", "i32 (i32.const 65528))"),
    ('(data (i32.const 1024) "\\00\\00\\07\\00")', '(data (i32.const 65530) "\\07")'),
]

#: Changes that keep the shape recognised, each at a boundary of a byte-level helper:
#: (init, edits, the Once byte's address, where init's 42 is).
RECOGNISED = {
    # _overlay / _initial_bytes: segments straddling either end of the library's data, and
    # segments ending exactly where it starts and starting exactly where it ends; a byte
    # copied wrongly (or missed) counts as a change and the step would refuse.
    "segments-straddling-the-ends": (
        "poke(1030, 3)",
        [('(data (i32.const 1024) "\\00\\00\\07\\00")',
          '(data (i32.const 1022) "\\05\\05\\05") (data (i32.const 1038) "\\06\\06\\06\\06")')],
        0x406, 2000,
    ),
    "segments-touching-the-ends": (
        "poke(1030, 3)",
        [('(data (i32.const 1024) "\\00\\00\\07\\00")',
          '(data (i32.const 1016) "\\09\\09\\09\\09\\09\\09\\09\\09") (data (i32.const 1040) "\\09\\09\\09\\09")')],
        0x406, 2000,
    ),
    # The Once byte at the first and at the last byte of the library's data.
    "once-at-the-first-byte": ("poke(1024, 3)", [], 0x400, 2000),
    "once-at-the-last-byte": ("poke(1039, 3)", [], 0x40F, 2000),
    # _snapshot_bytes / _set_byte: the snapshot holds runs of non-zero pages; the Once byte
    # first in one (page 0 all zeros) and last in one (page 1 all zeros).
    "once-first-in-the-snapshot-s-pages": ("poke(65536, 3)", _PAGE_1_ONLY, 0x10000, 70000),
    "once-last-in-the-snapshot-s-pages": ("poke(65535, 3)", _PAGE_0_ONLY, 0xFFFF, 2000),
    # Passive segments give no initial bytes (and have no offset to check); this one's bytes
    # would even read as an `i32.const 3` offset.
    "passive-segment": (
        "poke(1025, 3)", [('"\\00\\00\\07\\00")', '"\\00\\00\\07\\00") (data "\\41\\03\\0b\\03\\03")')], 0x401, 2000),
    "passive-segment-first": (
        "poke(1025, 3)", [('(data (i32.const 1024)', '(data "\\41\\03\\0b\\03\\03") (data (i32.const 1024)')], 0x401, 2000),
    # An explicit memory index 0 (segment flags 2).
    "segment-with-memory-index-0": (
        "poke(1025, 3)", [("(data (i32.const 1024)", "(data (memory 0) (i32.const 1024)")], 0x401, 2000),
    # _dylink_memory_size: another custom section first, another subsection first, a multi-byte size.
    "other-custom-section-first": (
        "poke(1025, 3)", [('(@custom "dylink.0"', '(@custom "other" "\\01\\04\\00\\00\\00\\00") (@custom "dylink.0"')],
        0x401, 2000),
    "other-subsection-first": (
        "poke(1025, 3)", [('"\\01\\04\\10\\00\\00\\00"', '"\\02\\03\\01\\00\\00\\01\\04\\10\\00\\00\\00"')],
        0x401, 2000),
    # componentize-py puts `dylink.0` first, before the type section.
    "dylink-section-first": (
        "poke(1025, 3)", [('(@custom "dylink.0"', '(@custom "dylink.0" (before first)')], 0x401, 2000),
    "memory-info-in-a-second-dylink-section": (
        "poke(1025, 3)", [('(@custom "dylink.0"', '(@custom "dylink.0" "\\02\\03\\01\\00\\00") (@custom "dylink.0"')],
        0x401, 2000),
    "size-of-two-leb-bytes": (
        "poke(1151, 3)", [('"\\01\\04\\10\\00\\00\\00"', '"\\01\\05\\80\\01\\00\\00\\00"')], 0x47F, 2000),
}


@pytest.mark.parametrize(("init", "edits", "address", "elsewhere"), RECOGNISED.values(), ids=RECOGNISED.keys())
def test_recognised_variants_are_reset(init: str, edits: list[tuple[str, str]], address: int, elsewhere: int) -> None:
    text = _variant(*edits)
    out, notes = _run(text, init)
    assert len(notes) == 1 and notes[0][0] == "info", notes
    assert notes[0][1].endswith(f"(one byte reset at address {address:#x})")
    assert _peek(out, address, elsewhere) == [0, 42]
    kept, _ = _run(text, init, reset_first_call=False)
    assert _peek(kept, address, elsewhere) == [3, 42]


# ------------------------------------------------------------------ refused

#: One change each; the reason the step gives.
REFUSED_VARIANTS = {
    # reset_first_call: the number of core instances linked as the runtime library.
    "two-instances-linked-as-the-runtime": (
        [(";; EXTRA", '(core instance $rt2 (instantiate $rt (with "env" (instance $env))))'
                      ' (core instance $app2 (instantiate $app (with "libcomponentize_py_runtime.so"'
                      ' (instance $rt2))))')],
        "2 core instances are linked as `libcomponentize_py_runtime.so`",
    ),
    "runtime-is-a-bundle-of-exports": (
        [('(with "libcomponentize_py_runtime.so" (instance $rt))',
          '(with "libcomponentize_py_runtime.so" (instance (export "poke" (func $rt "poke"))))')],
        "`libcomponentize_py_runtime.so` core instance is not an instantiation of a module",
    ),
    # _dylink_memory_size
    "runtime-carries-its-own-data": (
        [('(@custom "dylink.0"', '(data (global.get 0) "\\00") (@custom "dylink.0"')],
        "`libcomponentize_py_runtime.so` carries data segments of its own",
    ),
    "runtime-carries-a-passive-segment": (
        [('(@custom "dylink.0"', '(data "\\00") (@custom "dylink.0"')],
        "`libcomponentize_py_runtime.so` carries data segments of its own",
    ),
    "no-dylink-section": (
        [('(@custom "dylink.0" "\\01\\04\\10\\00\\00\\00")', "")],
        "`libcomponentize_py_runtime.so` has no `dylink.0` memory information",
    ),
    "dylink-section-without-memory-info": (
        [('"\\01\\04\\10\\00\\00\\00"', '"\\02\\03\\01\\00\\00"')],
        "`libcomponentize_py_runtime.so` has no `dylink.0` memory information",
    ),
    # First, its end is the type section's start, not the module's end.
    "dylink-section-first-without-memory-info": (
        [('(@custom "dylink.0" "\\01\\04\\10\\00\\00\\00")', '(@custom "dylink.0" (before first) "\\02\\03\\01\\00\\00")')],
        "`libcomponentize_py_runtime.so` has no `dylink.0` memory information",
    ),
    "memory-info-in-another-custom-section": (
        [('(@custom "dylink.0"', '(@custom "dylink.1"')],
        "`libcomponentize_py_runtime.so` has no `dylink.0` memory information",
    ),
    "no-static-data": (
        [('"\\01\\04\\10\\00\\00\\00"', '"\\01\\04\\00\\00\\00\\00"')],
        "`libcomponentize_py_runtime.so` has no static data",
    ),
    # _runtime_data: what `env` gives the library.
    "no-env-instance": (
        [('(import "env" "memory"', '(import "ENV" "memory"'),
         ('(import "env" "__memory_base"', '(import "ENV" "__memory_base"'),
         ('(with "env" (instance $env))', '(with "ENV" (instance $env))')],
        "`libcomponentize_py_runtime.so` is instantiated without an `env` instance",
    ),
    "env-without-memory-base": (
        [('"__memory_base" (global i32)', '"__table_base" (global i32)'),
         ('(export "__memory_base" (global $main', '(export "__table_base" (global $main')],
        "the `env` of `libcomponentize_py_runtime.so` does not give it `memory` and `__memory_base`",
    ),
    "env-without-memory": (
        [('(import "env" "memory"', '(import "env" "mem"'),
         ('(export "memory" (memory $main "memory"))', '(export "mem" (memory $main "memory"))')],
        "the `env` of `libcomponentize_py_runtime.so` does not give it `memory` and `__memory_base`",
    ),
    "memory-from-another-instance": (
        [('(core instance $env\n    (export "memory" (memory $main "memory"))',
          '(core instance $main2 (instantiate $main))\n'
          '  (core instance $env\n    (export "memory" (memory $main2 "memory"))')],
        "its `__memory_base` and its memory come from different core instances",
    ),
    "memory-owner-is-a-bundle-of-exports": (
        [('(core instance $env\n    (export "memory" (memory $main "memory"))\n'
          '    (export "__memory_base" (global $main "libcomponentize_py_runtime.so:memory_base")))',
          '(core instance $bundle\n    (export "memory" (memory $main "memory"))\n'
          '    (export "base" (global $main "libcomponentize_py_runtime.so:memory_base")))\n'
          '  (core instance $env\n    (export "memory" (memory $bundle "memory"))\n'
          '    (export "__memory_base" (global $bundle "base")))')],
        "the memory's core instance is not an instantiation of a module",
    ),
    # _constant_i32_global
    "mutable-memory-base": (
        [('i32 (i32.const 1024))', '(mut i32) (i32.const 1024))'),
         ('"__memory_base" (global i32)', '"__memory_base" (global (mut i32))')],
        "`libcomponentize_py_runtime.so:memory_base` is not a constant i32 global of the memory's module",
    ),
    "i64-memory-base": (
        [('i32 (i32.const 1024))', 'i64 (i64.const 1024))'),
         ('"__memory_base" (global i32)', '"__memory_base" (global i64)')],
        "`libcomponentize_py_runtime.so:memory_base` is not a constant i32 global of the memory's module",
    ),
    "memory-base-from-another-global": (
        [("(core module $main\n", '(core module $main (import "consts" "base" (global $b i32))\n'),
         ("i32 (i32.const 1024))", "i32 (global.get $b))"),
         ("(core instance $main (instantiate $main))",
          '(core module $consts (global (export "base") i32 (i32.const 1024)))'
          ' (core instance $consts (instantiate $consts))'
          ' (core instance $main (instantiate $main (with "consts" (instance $consts))))')],
        "`libcomponentize_py_runtime.so:memory_base` is not a constant i32 global of the memory's module",
    ),
    "memory-base-imported-and-re-exported": (
        [("(core module $main\n", '(core module $main (import "consts" "base" (global i32))\n'),
         ('(global (export "libcomponentize_py_runtime.so:memory_base") i32 (i32.const 1024))',
          '(export "libcomponentize_py_runtime.so:memory_base" (global 0))'),
         ("(core instance $main (instantiate $main))",
          '(core module $consts (global (export "base") i32 (i32.const 1024)))'
          ' (core instance $consts (instantiate $consts))'
          ' (core instance $main (instantiate $main (with "consts" (instance $consts))))')],
        "`libcomponentize_py_runtime.so:memory_base` is not a constant i32 global of the memory's module",
    ),
    "memory-base-an-extended-constant": (
        [("i32 (i32.const 1024))", "i32 (i32.add (i32.const 1000) (i32.const 24)))")],
        "`libcomponentize_py_runtime.so:memory_base` is not a single i32 constant",
    ),
    # _runtime_data: the memory itself.
    "memory-imported-by-the-memory-module": (
        [('(memory (export "memory") 1)', '(import "mem" "memory" (memory 1)) (export "memory" (memory 0))'),
         ("(core instance $main (instantiate $main))",
          '(core module $mem (memory (export "memory") 1))'
          ' (core instance $mem (instantiate $mem))'
          ' (core instance $main (instantiate $main (with "mem" (instance $mem))))')],
        "the memory it is linked to is not one this snapshot holds",
    ),
    "memory-imported-by-a-stateful-memory-module": (
        # The module has state of its own (a mutable global), so the snapshot holds its instance.
        [('(memory (export "memory") 1)',
          '(import "mem" "memory" (memory 1)) (export "memory" (memory 0)) (global (mut i32) (i32.const 5))'),
         ("(core instance $main (instantiate $main))",
          '(core module $mem (memory (export "memory") 1))'
          ' (core instance $mem (instantiate $mem))'
          ' (core instance $main (instantiate $main (with "mem" (instance $mem))))')],
        "the memory it is linked to is not one this snapshot holds",
    ),
    "two-memories": (
        [('(memory (export "memory") 1)', '(memory (export "memory") 1) (memory (export "other") 1)')],
        "the memory's module defines more than that one memory",
    ),
    # reset_first_call: what init changed in the library's data (init also writes 42 at 2000).
    "data-holding-a-second-write": (
        [('"\\01\\04\\10\\00\\00\\00"', '"\\01\\05\\80\\08\\00\\00\\00"')],
        "2 bytes of its static data changed during init, not exactly one",
    ),
    "data-holding-only-the-other-write": (
        [("i32 (i32.const 1024))", "i32 (i32.const 1990))")],
        "the one byte that changed during init went 0 -> 42, not 0 -> 3",
    ),
    # _initial_bytes
    "segment-offset-not-a-constant": (
        [("(data (i32.const 1024)", "(data (offset (i32.add (i32.const 1000) (i32.const 24)))")],
        "a data segment of the memory's module has an offset that is not a constant",
    ),
    "segment-offset-into-a-64-bit-memory": (
        [('(memory (export "memory") 1)', '(memory (export "memory") i64 1)'),
         ("(data (i32.const 1024)", "(data (i64.const 1024)"),
         ('(import "env" "memory" (memory 1))', '(import "env" "memory" (memory i64 1))'),
         ("(i32.store8 (local.get 0) (local.get 1))", "(i32.store8 (i64.extend_i32_u (local.get 0)) (local.get 1))"),
         ("(i32.store8 (i32.const 2000)", "(i32.store8 (i64.const 2000)"),
         ("(i32.load8_u (local.get 0))", "(i32.load8_u (i64.extend_i32_u (local.get 0)))")],
        "a data segment of the memory's module has an offset that is not a constant",
    ),
}


@pytest.mark.parametrize(("edits", "why"), REFUSED_VARIANTS.values(), ids=REFUSED_VARIANTS.keys())
def test_one_change_and_the_step_leaves_the_snapshot_alone(edits: list[tuple[str, str]], why: str) -> None:
    text = _variant(*edits)
    out, notes = _run(text)
    assert notes == [("detail", REFUSED + why)]
    kept, _ = _run(text, reset_first_call=False)
    assert out == kept
    assert _peek(out, 1025, 2000) == [3, 42]


def test_nothing_linked_as_the_runtime_library() -> None:
    text = _variant(
        ('(import "libcomponentize_py_runtime.so"', '(import "libother.so"'),
        ('(with "libcomponentize_py_runtime.so"', '(with "libother.so"'),
    )
    out, notes = _run(text)
    assert notes == [("detail", NOTHING + "no core instance is linked as `libcomponentize_py_runtime.so`")]
    kept, _ = _run(text, reset_first_call=False)
    assert out == kept
    assert _peek(out, 1025, 2000) == [3, 42]


#: Init writes other than one byte going 0 -> 3 inside the library's data.
INITS = {
    "outside-before": ("poke(1023, 3)", "0 bytes of its static data changed during init, not exactly one"),
    "outside-after": ("poke(1040, 3)", "0 bytes of its static data changed during init, not exactly one"),
    "not-from-zero": ("poke(1026, 3)", "the one byte that changed during init went 7 -> 3, not 0 -> 3"),
    "not-to-three": ("poke(1025, 1)", "the one byte that changed during init went 0 -> 1, not 0 -> 3"),
}


@pytest.mark.parametrize(("init", "why"), INITS.values(), ids=INITS.keys())
def test_init_writes_other_than_one_once_byte(init: str, why: str) -> None:
    out, notes = _run(SHAPE, init)
    assert notes == [("detail", REFUSED + why)]
    kept, _ = _run(SHAPE, init, reset_first_call=False)
    assert out == kept


def test_memory_base_is_an_unsigned_address() -> None:
    # `i32.const -8` is address 0xfffffff8, far beyond the memory; read as -8, the library's data
    # would be [-8, 8) and init's 0 -> 3 at address 0 would pass for the Once byte.
    text = _variant(("i32 (i32.const 1024))", "i32 (i32.const -8))"))
    out, notes = _run(text, "poke(0, 3)")
    assert notes == [("detail", REFUSED + "0 bytes of its static data changed during init, not exactly one")]
    kept, _ = _run(text, "poke(0, 3)", reset_first_call=False)
    assert out == kept
    assert _peek(out, 0, 2000) == [3, 42]


def test_a_malformed_dylink_section_is_not_recognised() -> None:
    # Custom sections are not validated: a subsection announcing 16 bytes where 1 follows.
    text = _variant(('"\\01\\04\\10\\00\\00\\00"', '"\\01\\10\\00"'))
    component = wat(text)
    # The error points at the subsection's body: after the section's name, the kind and the size.
    body = component.index(b"\x08dylink.0\x01\x10\x00") + 11
    out, notes = _run(text)
    assert notes == [("detail", REFUSED + "`libcomponentize_py_runtime.so` has a malformed `dylink.0` section: "
                      f"unexpected end of data: 16 bytes announced, 1 left (at offset {body:#x})")]  # fmt: skip
    kept, _ = _run(text, reset_first_call=False)
    assert out == kept


def test_a_memory_base_at_2_gib_is_read_unsigned() -> None:
    # `i32.const -2147483648` is address 0x80000000, in a memory of 2 GiB and one page.
    text = _variant(
        ('(memory (export "memory") 1)', '(memory (export "memory") 32769)'),
        ("i32 (i32.const 1024))", "i32 (i32.const -2147483648))"),
        ('(data (i32.const 1024) "\\00\\00\\07\\00")', '(data (i32.const 0x80000002) "\\07")'),
    )
    out, notes = _run(text, "poke(2147483649, 3)")
    assert notes == [("info", f"{APPLIED}: it reads the run-time environment and arguments and reseeds `random` "
                              "(one byte reset at address 0x80000001)")]  # fmt: skip
    assert _peek(out, 0x80000001, 0x80000002, 2000) == [0, 7, 42]


def test_variables_given_to_init_are_named_when_the_reset_applies() -> None:
    env = (("MODE", "build"), ("BUILD_ONLY", "1"))
    out, notes = _run(SHAPE, wasi=WasiOptions(env=env))
    assert notes[1:] == [(
        "warning",
        "the environment variables given to init (`MODE`, `BUILD_ONLY`) stay in the app's `os.environ` at run time "
        "unless the run-time environment sets them: componentize-py adds the run-time environment to "
        "`os.environ`, it does not replace it",
    )]  # fmt: skip
    assert notes[0][0] == "info" and _peek(out, 1025) == [0]
    # Nothing is said when the reset does not apply, or when init was given no variables.
    assert len(_run(SHAPE, "poke(1025, 1)", wasi=WasiOptions(env=env))[1]) == 1
    assert len(_run(SHAPE)[1]) == 1


def test_the_outcome_says_applied_exactly_when_the_snapshot_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    from hatch_component_init import api

    outcomes = []
    step = api._reset_first_call

    def recorded(*args: object) -> object:
        outcomes.append(step(*args))  # type: ignore[arg-type]
        return outcomes[-1]

    monkeypatch.setattr(api, "_reset_first_call", recorded)
    _run(SHAPE)
    _run(SHAPE, "poke(1025, 1)")
    _run(_variant(("(import \"libcomponentize_py_runtime.so\"", "(import \"libother.so\""),
                  ("(with \"libcomponentize_py_runtime.so\"", "(with \"libother.so\"")))  # fmt: skip
    assert [outcome.applied for outcome in outcomes] == [True, False, False]
