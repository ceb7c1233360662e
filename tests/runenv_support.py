"""The runenv app (tests/fixtures/runenv): pre-initialize it and run the output in fresh instances."""

from __future__ import annotations

from typing import Any

from conftest import FIXTURES
from wat_support import Running

from hatch_component_init import WasiOptions, pre_initialize

RUNENV = FIXTURES / "runenv"
DATA = RUNENV / "data"


def initialize(
    component: bytes, allocator: list[str] | None = None, **kwargs: Any
) -> tuple[bytes, list[tuple[str, str]], bytes]:
    """Pre-initialize with /data granted: the output, the first-call step's notes, and what init printed.

    The free-memory step's notes go to ``allocator``, if given."""
    notes: list[tuple[str, str]] = []
    printed: list[bytes] = []
    kwargs.setdefault("wasi", WasiOptions(dirs=((DATA, "/data"),)))

    def note(level: str, message: str) -> None:
        if "allocator" not in message:
            notes.append((level, message))
        elif allocator is not None:
            allocator.append(message)

    out = pre_initialize(
        component,
        on_note=note,
        on_output=lambda _s, d: printed.append(d),
        **kwargs,
    )
    return out, notes, b"".join(printed)


def two_instances(component: bytes) -> list[tuple[Any, ...]]:
    """(MODE, argv, a random number, state, stdout) seen by two fresh instances with their own env and argv."""
    seen = []
    for mode, argv in [("one", ["app", "--one"]), ("two", ["app", "--two", "x"])]:
        running = Running(component, env={"MODE": mode}, argv=argv)
        state = running.call("state")
        seen.append((running.call("setting", "MODE"), running.call("arguments"), running.call("dice"), state, running.stdout()))
    return seen
