"""Init names: ours (`iface@1.0.0.func`) and Wizer's (`iface.func@1.0.0`) name the same function."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hatch_component_init import InitExportError
from hatch_component_init.wave import init_name_readings
from test_cli import cli
from wat_support import Running, snapshot, wat

IFACE = "local:local/init@0.1.0"
WIZER_CALL = 'local:local/init.add-string@0.1.0("hello")'
OUR_CALL = 'local:local/init@0.1.0.add-string("hello")'

# `add-string` appends its argument to a buffer; `get` returns the buffer. Both live in the
# exported, versioned interface `local:local/init@0.1.0`.
VERSIONED = wat(
    """
(component
  (core module $m
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 4096))
    (global $len (mut i32) (i32.const 0))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $p))
    (func (export "add-string") (param $p i32) (param $n i32)
      (memory.copy (i32.add (i32.const 1024) (global.get $len)) (local.get $p) (local.get $n))
      (global.set $len (i32.add (global.get $len) (local.get $n))))
    (func (export "get") (result i32)
      (i32.store (i32.const 16) (i32.const 1024))
      (i32.store (i32.const 20) (global.get $len))
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (func $add (param "s" string)
    (canon lift (core func $i "add-string") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func $get (result string) (canon lift (core func $i "get") (memory (core memory $i "memory"))))
  (instance $init (export "add-string" (func $add)) (export "get" (func $get)))
  (export "local:local/init@0.1.0" (instance $init)))
"""
)


def _iface_export(running: Running, name: str) -> object:
    iface = running.instance.get_export_index(running.store, IFACE)
    assert iface is not None
    return running.instance.get_export_index(running.store, name, iface)


def _get(running: Running) -> str:
    return running.instance.get_func(running.store, _iface_export(running, "get"))(running.store)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("component-init", [(None, "component-init")]),
        ("example:demo/setup.init", [(None, "example:demo/setup.init"), ("example:demo/setup", "init")]),
        ("local:local/init@0.1.0.add-string", [(None, "local:local/init@0.1.0.add-string"), (IFACE, "add-string")]),
        (
            "local:local/init.add-string@0.1.0",
            [
                (None, "local:local/init.add-string@0.1.0"),
                ("local:local/init.add-string@0.1", "0"),
                (IFACE, "add-string"),
            ],
        ),
    ],
)
def test_readings_of_a_name(name: str, expected: list[tuple[str | None, str]]) -> None:
    assert init_name_readings(name) == expected


def test_wizer_form_with_arguments() -> None:
    assert _get(Running(VERSIONED)) == ""
    out = Running(snapshot(VERSIONED, init_func=WIZER_CALL))
    assert _get(out) == "hello"  # the state init left, without calling it
    assert _iface_export(out, "add-string") is None


def test_wizer_form_with_keep_init_func() -> None:
    out = Running(snapshot(VERSIONED, init_func=WIZER_CALL, keep_init_func=True))
    assert _iface_export(out, "add-string") is not None
    assert _get(out) == "hello"


def test_both_forms_give_the_same_output() -> None:
    assert snapshot(VERSIONED, init_func=WIZER_CALL) == snapshot(VERSIONED, init_func=OUR_CALL)


def test_wrong_version_lists_the_exports() -> None:
    with pytest.raises(InitExportError, match=r"no function export `local:local/init.add-string@0.2.0`") as info:
        snapshot(VERSIONED, init_func='local:local/init.add-string@0.2.0("x")')
    assert f"`{IFACE}.add-string`" in str(info.value)
    assert "interface.name@version" in str(info.value)


def test_wizer_form_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "in.wasm").write_bytes(VERSIONED)
    r = cli(tmp_path / "in.wasm", "-o", tmp_path / "out.wasm", "-f", WIZER_CALL)
    assert r.returncode == 0, r.stderr
    out = Running((tmp_path / "out.wasm").read_bytes())
    assert _get(out) == "hello"
    assert _iface_export(out, "add-string") is None
    r = cli(tmp_path / "in.wasm", "-o", tmp_path / "kept.wasm", "-f", WIZER_CALL, "--keep-init-func")
    assert r.returncode == 0, r.stderr
    assert _iface_export(Running((tmp_path / "kept.wasm").read_bytes()), "add-string") is not None


def test_wasmtime_wizer_reads_the_name_the_same_way(tmp_path: Path, wasmtime_cli: Path) -> None:
    # The anchor: `wasmtime wizer` given the same spelling initializes the same function.
    (tmp_path / "in.wasm").write_bytes(VERSIONED)
    r = subprocess.run(
        [str(wasmtime_cli), "wizer", "--keep-init-func=true", "-f", WIZER_CALL, "-o", str(tmp_path / "w.wasm"), str(tmp_path / "in.wasm")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert _get(Running((tmp_path / "w.wasm").read_bytes())) == "hello"


@pytest.mark.parametrize("form", ["wizer", "ours"])
def test_our_kept_output_initializes_again_in_either_form(form: str) -> None:
    # Chained runs on an output of ours: the second name must find the export the first kept.
    call = {"wizer": 'local:local/init.add-string@0.1.0("{}")', "ours": 'local:local/init@0.1.0.add-string("{}")'}[form]
    first = snapshot(VERSIONED, init_func=call.format("a"), keep_init_func=True)
    second = snapshot(first, init_func=call.format("b"), keep_init_func=True)
    assert _get(Running(second)) == "ab"
    third = snapshot(second, init_func=call.format("c"))
    assert _get(Running(third)) == "abc"
    assert _iface_export(Running(third), "add-string") is None


def test_wizer_form_on_an_output_without_the_export_says_it_was_removed() -> None:
    first = snapshot(VERSIONED, init_func=WIZER_CALL)
    with pytest.raises(InitExportError, match=r"already pre-initialized .* `local:local/init.add-string@0.1.0` was removed"):
        snapshot(first, init_func=WIZER_CALL)
