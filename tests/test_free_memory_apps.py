"""Zeroed free allocator memory on componentize-py apps: smaller outputs, the same answers.

The tiny app (tests/fixtures/one_global) is mostly the heap componentize-py's
own build-time run left, much of it freed; the sample's init reuses most of
its free memory. Every componentize-py release the tests pin is checked: where
the allocator is recognised the outputs answer the same, where it is not the
output is byte for byte the one without the step.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import wasmtime
from conftest import FIXTURES, componentize
from runenv_support import DATA, RUNENV, two_instances
from test_componentize_versions import OLDER, OURS, _install

from hatch_component_init import WasiOptions, pre_initialize, zero_free_memory_without_init

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).parent.parent / "sample_project"


_ENGINE = wasmtime.Engine()


@functools.lru_cache(maxsize=4)
def _compiled(component: bytes) -> wasmtime.component.Component:
    # Compiled once per output (seconds for an app this size); each call still gets a fresh instance.
    return wasmtime.component.Component(_ENGINE, component)


def _call(component: bytes, name: str, *args: object) -> object:
    linker = wasmtime.component.Linker(_ENGINE)
    linker.add_wasip2()
    store = wasmtime.Store(_ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, _compiled(component))
    return instance.get_func(store, name)(store, *args)


def _notes(component: bytes, **kwargs: object) -> tuple[bytes, list[tuple[str, str]]]:
    notes: list[tuple[str, str]] = []
    out = pre_initialize(component, on_note=lambda *note: "allocator" in note[1] and notes.append(note), **kwargs)  # type: ignore[arg-type]
    return out, notes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return componentize(FIXTURES / "one_global", "tiny", "app", tmp_path_factory.mktemp("tiny") / "tiny.wasm")


def test_the_tiny_app_is_at_most_0_80_of_componentize_pys_output_and_answers(tiny: bytes) -> None:
    out, notes = _notes(tiny)
    kept, _ = _notes(tiny, zero_free_memory=False)
    assert [level for level, _ in notes] == ["info"], notes
    assert len(out) <= 0.80 * len(tiny) < len(kept)
    assert _call(out, "answer") == _call(kept, "answer") == "set by init"


def test_the_tiny_app_without_init_is_at_most_0_80_and_answers(tiny: bytes) -> None:
    notes: list[tuple[str, str]] = []
    out = zero_free_memory_without_init(tiny, on_note=lambda *note: notes.append(note))
    assert [level for level, _ in notes] == ["info"], notes
    assert len(out) <= 0.80 * len(tiny)
    assert _call(out, "answer") == _call(tiny, "answer") == "unset"
    out_ready = pre_initialize(out)  # and it can still be pre-initialized
    assert _call(out_ready, "answer") == "set by init"


def test_the_sample_answers_the_same_with_and_without(tmp_path: Path) -> None:
    raw = componentize(SAMPLE, "lexicon", "app", tmp_path / "lexicon.wasm")
    wasi = WasiOptions(dirs=((SAMPLE / "data", "/data"),))
    out, notes = _notes(raw, wasi=wasi)
    kept, _ = _notes(raw, wasi=wasi, zero_free_memory=False)
    assert [level for level, _ in notes] == ["info"], notes
    assert len(out) < len(kept)
    for word in ("listen", "teh", "zzzz"):
        assert _call(out, "anagrams", word) == _call(kept, "anagrams", word)
        assert _call(out, "suggest", word) == _call(kept, "suggest", word)
    assert len(_call(out, "anagrams", "listen")) == 3  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [*OLDER, OURS])
def test_each_componentize_py_release_answers_the_same_or_is_left_alone(
    version: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    installed = None if version == OURS else _install(version, request.config.cache)  # type: ignore[union-attr]
    raw = componentize(RUNENV, "runenv", "app", tmp_path / "runenv.wasm", componentize_py=installed)
    wasi = WasiOptions(dirs=((DATA, "/data"),))
    out, notes = _notes(raw, wasi=wasi)
    kept, _ = _notes(raw, wasi=wasi, zero_free_memory=False)
    (level, message), = notes
    print(f"componentize-py {version}: {message}")
    if level == "detail":
        assert out == kept
    else:
        assert len(out) < len(kept)
        for zeroed, original in zip(two_instances(out), two_instances(kept)):
            assert zeroed[:2] == original[:2] and zeroed[3:] == original[3:]  # all but the random number
