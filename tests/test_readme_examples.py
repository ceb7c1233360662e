"""The documentation's code examples, checked for what they print and build (tests/test_docs.py runs every block).

The host functions example moved from the README to docs/python-api.md; sections are found by
heading at any level, so moving them within or between pages only means changing `PAGE`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from wasmtime import component as cm
from wat_support import engine, wat

PAGE = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"


def section(heading: str) -> str:
    """The text under the heading ``heading`` (any level), up to the next heading of that level or above."""
    lines = PAGE.read_text().splitlines(keepends=True)
    found: list[str] = []
    level = 0
    in_fence = False
    for line in lines:
        if line.startswith("```"):
            in_fence = not in_fence
        heading_match = None if in_fence else re.match(r"^(#+) (.*)$", line.rstrip("\n"))
        if level and heading_match and len(heading_match.group(1)) <= level:
            break
        if level:
            found.append(line)
        elif heading_match and heading_match.group(2) == heading:
            level = len(heading_match.group(1))
    assert level, f"{PAGE.name} has no section `{heading}`"
    return "".join(found)


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def host_example_app() -> str:
    """The component the example runs on: the page's `limit.wat` file block."""
    (text,) = re.findall(r"^<!-- file: limit\.wat -->\n```wat\n(.*?)^```", PAGE.read_text(), re.M | re.S)
    return text


def test_host_functions_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code = fenced(section("Your own runtime: `pre_initialize_with`"), "python")[-1]
    (tmp_path / "limit.wasm").write_bytes(wat(host_example_app()))
    monkeypatch.chdir(tmp_path)

    exec(compile(code, str(PAGE), "exec"), {"__name__": "__main__"})

    # The value printed is init's (get(1) = 1001), read while the host answers 0.
    assert capsys.readouterr().out == "1001\n"
    out = cm.Component(engine(), (tmp_path / "limit.init.wasm").read_bytes())
    assert set(out.type.exports(engine())) == {"limit"}


def test_host_functions_example_world_is_the_component_it_runs_on() -> None:
    (wit,) = fenced(section("Your own runtime: `pre_initialize_with`"), "wit")
    package = re.search(r"^package ([\w:-]+);", wit, re.M)
    interface = re.search(r"^interface ([\w-]+) \{\n  get: func\(key: u32\) -> u32;\n\}", wit, re.M)
    exports = set(re.findall(r"^  export ([\w-]+): func", wit, re.M))
    assert package is not None and interface is not None
    component = cm.Component(engine(), wat(host_example_app()))
    assert set(component.type.imports(engine())) == {f"{package.group(1)}/{interface.group(1)}"}
    assert set(component.type.exports(engine())) == exports == {"component-init", "limit"}
