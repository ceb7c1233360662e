"""The reference pages cannot drift: their option tables are checked against the code that reads the options."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hatch_component_init.cli import _parser
from hatch_component_init.hatch.config import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_PY_HOOK,
    SCHEMAS,
    componentize_py_requirement,
    reader_for,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: How the page names each kind of option the schema knows.
TYPE_NAMES = {
    "string": "string",
    "string-or-false": "string or `false`",
    "boolean": "boolean",
    "boolean-or-only": 'boolean or `"only"`',
    "string-list": "array of strings",
    "string-table": "table of strings",
    "positive-number": "number",
    "positive-integer": "integer",
}


def option_rows(page: Path, heading: str) -> dict[str, list[str]]:
    """The rows of the first table under ``heading``: first cell (backquotes stripped) -> the other cells."""
    text = page.read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None, f"{page.name} has no section `{heading}`"
    rows = {}
    for line in match.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not line.startswith("| `"):
            continue
        rows[cells[0]] = cells[1:]
    return rows


def as_toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


@pytest.mark.parametrize("hook", [COMPONENTIZE_PY_HOOK, COMPONENT_INIT_HOOK])
def test_hook_options_page_lists_every_option_with_its_type_and_default(hook: str) -> None:
    rows = {name.strip("`"): cells for name, cells in option_rows(DOCS / "hook-options.md", f"`{hook}` options").items()}
    schema = SCHEMAS[hook]
    assert list(rows) == list(schema), "the page's options are the hook's, in its order"
    required = {name: "x" for name, spec in schema.items() if spec.required}
    reader = reader_for(hook, {"component": "build/app.wasm", **required}, ".")
    for name, spec in schema.items():
        type_name, default, meaning = rows[name]
        assert type_name == TYPE_NAMES[spec.kind], name
        assert meaning, name
        if spec.required:
            assert default == "**required**", name
        elif name == "componentize-py-version":  # None in the table; the hook then asks for this release
            assert default == f'`"{componentize_py_requirement(None).split("==")[1]}"`', name
        elif name == "destination":
            assert default == "same as `component`" and reader.value(name) == reader.value("component")
        elif reader.value(name) is None:
            assert default == "none", name
        else:
            assert default == f"`{as_toml(reader.value(name))}`", name


def test_command_page_lists_every_option() -> None:
    documented = set()
    for name in option_rows(DOCS / "cli.md", "Options"):
        documented |= {flag.split()[0] for flag in re.findall(r"`(-[^`]+)`", name)}
    flags = {flag for action in _parser()._actions for flag in action.option_strings} - {"-h", "--help"}
    assert documented == flags


def test_command_page_synopsis_names_each_argument_as_help_does() -> None:
    """The synopsis at the top of docs/cli.md shows each option with the placeholder `--help` gives its value."""
    synopsis = (DOCS / "cli.md").read_text().split("```text\n", 1)[1].split("```", 1)[0]
    words = " ".join(synopsis.split())
    for action in _parser()._actions:
        if action.option_strings == ["-h", "--help"]:
            continue  # argparse's own
        if not action.option_strings:
            assert action.metavar is not None and f"component-init {action.metavar} " in words, action
        elif action.nargs == 0:
            assert any(re.search(rf"\[{re.escape(flag)}\]", words) for flag in action.option_strings), action
        else:
            assert any(f"{flag} {action.metavar}" in words for flag in action.option_strings), action


def test_the_command_page_begins_each_meaning_with_what_help_says() -> None:
    """Each row of docs/cli.md's table starts with the argument's `--help` text (then may say more)."""
    rows = option_rows(DOCS / "cli.md", "Options")

    def plain(text: str) -> str:
        return " ".join(text.replace("`", "").replace("**", "").split())

    for action in _parser()._actions:
        if action.option_strings == ["-h", "--help"]:
            continue  # argparse's own
        names = action.option_strings or [action.metavar]
        (meaning,) = [cells[0] for row, cells in rows.items() if any(re.search(rf"`{re.escape(n)}\b", row) for n in names)]
        assert action.help and plain(meaning).startswith(plain(action.help)), (names, action.help, meaning)


def test_the_command_page_starts_with_what_help_says_the_command_does() -> None:
    description = _parser().description
    assert description
    first = (DOCS / "cli.md").read_text().split("\n\n")[1]
    assert " ".join(first.split()).startswith(description)


def test_python_api_page_lists_every_exported_error() -> None:
    import hatch_component_init

    documented = set(option_rows(DOCS / "python-api.md", "Errors"))
    exported = {f"`{name}`" for name in hatch_component_init.__all__ if name.endswith("Error") and name != "ComponentInitError"}
    assert documented == exported
