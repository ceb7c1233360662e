"""Zeroed free allocator memory on componentize-py apps: smaller outputs, the same answers.

The tiny app (tests/fixtures/one_global) is mostly the heap componentize-py's
own build-time run left, much of it freed; the sample's init reuses most of
its free memory. Every componentize-py release the tests pin is checked in
test_componentize_versions.py, on the app it builds there. A componentize-js
app, whose allocator is not wasi-libc's `libc.so`, is left as it is.
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import pytest
import wasmtime
from conftest import FIXTURES, componentize
from js_support import componentize_js
from wat_support import app_engine

from hatch_component_init import WasiOptions, pre_initialize, zero_free_memory_without_init

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).parent.parent / "sample_project"


@functools.lru_cache(maxsize=4)
def _compiled(component: bytes) -> wasmtime.component.Component:
    # Compiled once per output (seconds for an app this size); each call still gets a fresh instance.
    return wasmtime.component.Component(app_engine(), component)


def _call(component: bytes, name: str, *args: object) -> object:
    (result,) = _calls(component, (name, *args))
    return result


def _calls(component: bytes, *calls: tuple[object, ...]) -> list[object]:
    """The results of ``calls`` (each a name and its arguments), in order, in one fresh instance."""
    linker = wasmtime.component.Linker(app_engine())
    linker.add_wasip2()
    linker.add_wasi_http()  # the componentize-js app imports wasi:http (its `fetch`), unused here
    store = wasmtime.Store(app_engine())
    store.set_wasi(wasmtime.WasiConfig())
    store.set_wasi_http()
    instance = linker.instantiate(store, _compiled(component))
    results = []
    for name, *args in calls:
        func = instance.get_func(store, name)  # type: ignore[arg-type]
        results.append(func(store, *args))
        func.post_return(store)
    return results


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


def test_the_sample_answers_the_same_with_and_without(sample_wheel: tuple[Path, str]) -> None:
    # The session's sample build: componentize-py's output (conftest.py's `sample_wheel` keeps its copy's `build/`),
    # and what the hook made of it with the step (the default) and shipped.
    wheel, log = sample_wheel
    raw = (wheel.parents[1] / "build" / "lexicon.wasm").read_bytes()
    with zipfile.ZipFile(wheel) as archive:
        out = archive.read("lexicon/lexicon.wasm")
    assert "`build/lexicon.wasm`: free allocator memory zeroed: " in log, log
    kept, _ = _notes(raw, wasi=WasiOptions(dirs=((SAMPLE / "data", "/data"),)), zero_free_memory=False)
    assert len(out) < len(kept)
    for word in ("listen", "teh", "zzzz"):
        assert _call(out, "anagrams", word) == _call(kept, "anagrams", word)
        assert _call(out, "suggest", word) == _call(kept, "suggest", word)
    assert len(_call(out, "anagrams", "listen")) == 3  # type: ignore[arg-type]


def test_an_init_that_allocates_and_frees_in_patterns_then_run_time_allocation(tmp_path: Path) -> None:
    """Many small objects with every other one freed, large buffers freed around a kept one, the last
    allocation (3 MiB of 0xab) freed next to the top; then calls that allocate and free at run time."""
    raw = componentize(FIXTURES / "alloc_patterns", "patterns", "app", tmp_path / "patterns.wasm")
    out, notes = _notes(raw)
    kept, _ = _notes(raw, zero_free_memory=False)
    assert [level for level, _ in notes] == ["info"], notes
    assert len(kept) - len(out) > 3 << 20  # the freed tail joined the top and was zeroed with it
    calls = [("checksum",), ("churn", 3), ("churn", 5), ("checksum",)]
    expected = _calls(raw, ("component-init",), *calls)[1:]
    assert _calls(out, *calls) == _calls(kept, *calls) == expected
    assert expected[0] != _call(raw, "checksum")  # init's state is what the answers read


def test_a_componentize_js_app_is_left_alone_and_answers_the_same(tmp_path: Path) -> None:
    """Another runtime (SpiderMonkey, its allocator linked into one module): no `libc.so` to recognise."""
    raw = componentize_js(FIXTURES / "js_app", "app", "app.js", tmp_path / "app.wasm")
    out, notes = _notes(raw, init_func="init")
    kept, _ = _notes(raw, init_func="init", zero_free_memory=False)
    assert notes == [("detail", "free allocator memory: nothing to zero, no core instance is linked as `libc.so`")]
    calls = [("lookup", "w1"), ("lookup", "zz"), ("grow", 1000), ("lookup", "w7"), ("grow", 20000)]
    expected = _calls(raw, ("init",), *calls)[1:]
    assert expected[0].startswith("w1=") and expected[1] == "unknown"  # type: ignore[union-attr]
    assert _calls(out, *calls) == _calls(kept, *calls) == expected
    assert _call(raw, "lookup", "w1") == "not initialized"
