"""The componentize-py releases users pin: 0.17.2 (the first with the `wit_world` bindings), 0.21.0 and 0.25.1.

Each builds the runenv app, whose init prints and reads a file; the output is
run in two fresh instances: init's state is there, printing works, and
componentize-py's first-call setup runs again (env, argv, random per instance).
Older releases are installed with `pip install --target` into pytest's cache
directory once, and run from there.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import componentize
from runenv_support import RUNENV, initialize, two_instances

pytestmark = pytest.mark.slow

#: Releases installed for these tests; the test environment's own componentize-py is the newest.
OLDER = ("0.17.2", "0.21.0")
OURS = importlib.metadata.version("componentize-py")


def _install(version: str, cache: pytest.Cache) -> Path:
    target = cache.mkdir(f"componentize-py-{version}")
    if not (target / f"componentize_py-{version}.dist-info").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target", str(target),
             f"componentize-py=={version}"],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    return target


@pytest.fixture(scope="session", params=[*OLDER, OURS])
def versioned_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    version: str = request.param
    installed = None if version == OURS else _install(version, request.config.cache)  # type: ignore[union-attr]
    output = tmp_path_factory.mktemp(f"runenv-{version}") / "runenv.wasm"
    return version, componentize(RUNENV, "runenv", "app", output, componentize_py=installed)


def test_the_range_includes_ours() -> None:
    assert OURS == "0.25.1"


def test_pre_initialized_app_works(versioned_app: tuple[str, bytes]) -> None:
    _, component = versioned_app
    allocator: list[str] = []
    out, notes, printed = initialize(component, allocator)
    assert printed == b"init: reading the note\n"
    assert [level for level, _ in notes] == ["info"]  # the first-call reset was applied
    # Every release's allocator is recognised and its free memory zeroed (the default); that the output is then
    # smaller than without the step is shown on this release's builds (test_free_memory_apps.py).
    (zeroed,) = allocator
    match = re.fullmatch(r"free allocator memory zeroed: ([\d,]+) bytes of wasi-libc malloc's free chunks and top chunk", zeroed)
    assert match and int(match[1].replace(",", "")) > 0, zeroed
    # The instances answer with init's state, each with its own env, argv and random number.
    one, two = two_instances(out)
    assert one[:2] == ("one", ["app", "--one"])
    assert two[:2] == ("two", ["app", "--two", "x"])
    assert one[2] != two[2]
    for seen in (one, two):
        assert seen[3] == "note='kept from init' squares=100"
        assert seen[4] == b"state: printing works\n"
