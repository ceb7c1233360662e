"""The two facts of docs/security.md: what the caches' SHA-256 check guards against, and the shared hash secret."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from runenv_support import initialize
from test_first_call import runenv_component  # noqa: F401 - a fixture
from wat_support import Running, snapshot, wat

from hatch_component_init.compile_cache import CompiledCache


def answers(number: int) -> bytes:
    """A component whose init stores ``number``, which `answer` returns."""
    return wat(
        f"""
(component
  (core module $m
    (global $answer (mut i32) (i32.const 0))
    (func (export "init") (global.set $answer (i32.const {number})))
    (func (export "answer") (result i32) (global.get $answer)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""
    )


def test_a_cache_writer_chooses_the_code_that_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SHA-256 in an entry's name is checked against its bytes; whoever writes both passes the check."""
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / "cache"))
    entries = tmp_path / "cache" / CompiledCache.KIND
    one, two = answers(1), answers(2)

    assert Running(snapshot(one)).call("answer") == 1
    (first,) = entries.iterdir()  # the compiled code of `one`'s instrumented component
    assert Running(snapshot(two)).call("answer") == 2
    (second,) = set(entries.iterdir()) - {first}
    # A writer puts the code compiled from `two` under the key of `one`, named with its own SHA-256.
    key = first.name.rpartition("-")[0]
    code = second.read_bytes()
    first.unlink()
    (entries / f"{key}-{hashlib.sha256(code).hexdigest()}{CompiledCache.SUFFIX}").write_bytes(code)

    # The next run of `one` loads that code and runs it as `one`'s init: its snapshot answers 2.
    assert Running(snapshot(one)).call("answer") == 2


def test_damage_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the check does guard against: the same entry with a byte changed is not loaded."""
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / "cache"))
    entries = tmp_path / "cache" / CompiledCache.KIND
    one = answers(1)
    snapshot(one)
    (entry,) = entries.iterdir()
    code = bytearray(entry.read_bytes())
    code[len(code) // 2] ^= 1
    entry.write_bytes(bytes(code))
    assert Running(snapshot(one)).call("answer") == 1
    assert entry.read_bytes() != bytes(code)  # removed and written again, from a fresh compile


@pytest.mark.slow
def test_every_instance_of_a_componentize_py_app_shares_its_hash_secret(runenv_component: bytes) -> None:  # noqa: F811
    # Each instance draws its own random numbers (WASI's random) but hashes with the one secret
    # componentize-py fixed in the component; running it reads the hash of any key it is given.
    pre_initialized, _, _ = initialize(runenv_component)
    for component in (runenv_component, pre_initialized):
        first, second = Running(component), Running(component)
        assert first.call("dice") != second.call("dice")
        assert first.call("hash-of", "x") == second.call("hash-of", "x")
        assert first.call("hash-of", "x") != first.call("hash-of", "y")
    assert Running(runenv_component).call("hash-of", "x") == Running(pre_initialized).call("hash-of", "x")
