"""README code examples, run as written, so that they cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from wasmtime import component as cm
from wat_support import engine, wat

README = Path(__file__).resolve().parent.parent / "README.md"

# The component of the README's "Host functions during init" example: the world shown there.
HOST_EXAMPLE_APP = """
(component
  (import "example:app/config" (instance $config (export "get" (func (param "key" u32) (result u32)))))
  (alias export $config "get" (func $get))
  (core func $get_l (canon lower (func $get)))
  (core module $m
    (import "host" "get" (func $get (param i32) (result i32)))
    (global $limit (mut i32) (i32.const 0))
    (func (export "init") (global.set $limit (call $get (i32.const 1))))
    (func (export "limit") (result i32) (global.get $limit)))
  (core instance $i (instantiate $m (with "host" (instance (export "get" (func $get_l))))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "limit") (result u32) (canon lift (core func $i "limit")))
)
"""


def section(heading: str) -> str:
    """The text under the level-2 ``heading``, up to the next level-2 heading."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None, f"README has no section `{heading}`"
    return match.group(1)


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def test_host_functions_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (code,) = fenced(section("Host functions during init"), "python")
    (tmp_path / "app.wasm").write_bytes(wat(HOST_EXAMPLE_APP))
    monkeypatch.chdir(tmp_path)

    exec(compile(code, str(README), "exec"), {"__name__": "__main__"})

    # The value printed is init's (get(1) = 1001), read while the host answers 0.
    assert capsys.readouterr().out == "1001\n"
    out = cm.Component(engine(), (tmp_path / "app.init.wasm").read_bytes())
    assert set(out.type.exports(engine())) == {"limit"}


def test_host_functions_example_world_is_the_component_it_runs_on() -> None:
    (wit,) = fenced(section("Host functions during init"), "wit")
    package = re.search(r"^package ([\w:-]+);", wit, re.M)
    interface = re.search(r"^interface ([\w-]+) \{\n  get: func\(key: u32\) -> u32;\n\}", wit, re.M)
    exports = set(re.findall(r"^  export ([\w-]+): func", wit, re.M))
    assert package is not None and interface is not None
    component = cm.Component(engine(), wat(HOST_EXAMPLE_APP))
    assert set(component.type.imports(engine())) == {f"{package.group(1)}/{interface.group(1)}"}
    assert set(component.type.exports(engine())) == exports == {"component-init", "limit"}
