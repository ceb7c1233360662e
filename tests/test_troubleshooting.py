"""docs/troubleshooting.md lists every message the tool can print, and no message it no longer prints.

The messages of the page are the lines of its ```text blocks; the messages of the
code are the templates tests/message_catalog.py reads from the source.
"""

from __future__ import annotations

import re
from pathlib import Path

import message_catalog
import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md"
TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def page_messages(text: str) -> set[str]:
    return {line.strip() for block in TEXT_BLOCK.findall(text) for line in block.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def code_messages() -> dict[str, list[str]]:
    return message_catalog.collect()


def test_every_message_of_the_code_is_on_the_page(code_messages: dict[str, list[str]]) -> None:
    missing = {text: places for text, places in code_messages.items() if text not in page_messages(PAGE.read_text())}
    assert not missing, "messages not in docs/troubleshooting.md:\n" + "\n".join(
        f"{text}    [{places[0]}]" for text, places in sorted(missing.items())
    )


def test_every_message_on_the_page_is_in_the_code(code_messages: dict[str, list[str]]) -> None:
    stale = page_messages(PAGE.read_text()) - set(code_messages)
    assert not stale, "docs/troubleshooting.md lists messages the code no longer has:\n" + "\n".join(sorted(stale))


def test_the_catalog_reads_messages_the_way_they_are_written() -> None:
    # A few known messages, one of each way a message is built, with their computed parts as `…`.
    found = message_catalog.collect()
    for text in [
        "Option `…` for build hook `…` must be a string",  # OptionReader.error(option, problem)
        "unexpected end of data: … bytes announced, … left",  # a binary reader's error(...)
        "Build hook `…` failed: …",  # the hooks' edge words it
        "the guest exited with status …",  # one branch of `a if test else b`
        "Component `…` for build hook `…` does not exist, and no build hook that runs before `…` writes it; did you mean …?",
        "cannot write `…`: the directory `…` is not writable",  # the command's refusal
    ]:
        assert text in found, text
