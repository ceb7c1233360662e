"""The code cache: compiled instrumented components kept between runs. Initial data travels in
data modules, so the instrumented component (and its compiled code) stays the same when only
the data changes, and the cached code runs with the new data."""

from __future__ import annotations

from pathlib import Path

import pytest

import test_engine_shapes as shapes
from hatch_component_init import WasiOptions, pre_initialize, pre_initialize_with
from hatch_component_init.api import _pipeline
from hatch_component_init.compile_cache import CompiledCache
from hatch_component_init.data_modules import MERGE_GAP
from hatch_component_init.instrument import instrument
from hatch_component_init.options import InitOptions
from hatch_component_init.runtime import run_init
from hatch_component_init.wasm.component import parse_component
from hatch_component_init.wasm.core_module import parse_core_module
from wat_support import Running, wat


def app(text: str, value: int, extra: str = "") -> bytes:
    """An app whose init derives state from its data and a global; only ``text`` and ``value`` vary."""
    return wat(
        f"""
(component
  (core module $m
    (memory 1)
    (global $g (mut i32) (i32.const {value}))
    (global $k i32 (i32.const 5))
    (data (i32.const 16) "{text}")
    {extra}
    (func (export "init") (local $i i32) (local $s i32)
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 16)))
        (local.set $s (i32.add (local.get $s) (i32.load8_u offset=16 (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (i32.store (i32.const 1024) (local.get $s))
      (global.set $g (i32.mul (global.get $g) (i32.const 3))))
    (func (export "get") (param i32) (result i32)
      (if (result i32) (i32.eqz (local.get 0))
        (then (i32.add (global.get $g) (global.get $k)))
        (else (i32.load (local.get 0))))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (param "a" u32) (result u32) (canon lift (core func $i "get"))))
"""
    )


FIRST = app("first build data", 7)
SECOND = app("SECOND BUILD DATA", 1000)


def expected(component: bytes, addresses: tuple[int, ...] = (0, 16, 1024)) -> list[int]:
    """What ``get`` answers after the raw component runs its own init."""
    raw = Running(component)
    raw.call("component-init")
    return [raw.call("get", a) for a in addresses]


def inline(component: bytes) -> bytes:
    """The output through the path that keeps the data in the instrumented component (a caller's runtime)."""
    options = InitOptions(wasi=WasiOptions())
    output, check = _pipeline(
        component, "component-init", False, lambda i, p, check_code: run_init(i, p, options, None, check_code), move_data=False
    )
    check()
    return output


def test_instrumented_component_is_the_same_when_only_data_and_global_values_change() -> None:
    first, first_plan = instrument(parse_component(memoryview(FIRST)), move_data=True)
    second, second_plan = instrument(parse_component(memoryview(SECOND)), move_data=True)
    assert first == second
    assert [d.import_name for d in first_plan.data_modules] == [d.import_name for d in second_plan.data_modules]
    assert first_plan.data_modules != second_plan.data_modules
    # Without moving, the data is in the bytes Wasmtime compiles.
    assert instrument(parse_component(memoryview(FIRST)))[0] != instrument(parse_component(memoryview(SECOND)))[0]


def test_a_rebuilt_app_reuses_the_compiled_code_and_snapshots_its_own_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path))
    entries = tmp_path / CompiledCache.KIND
    first = pre_initialize(FIRST)
    cached = sorted(entries.iterdir())
    assert len(cached) == 1
    second = pre_initialize(SECOND)
    assert sorted(entries.iterdir()) == cached  # the second build compiled nothing
    for output, source in ((first, FIRST), (second, SECOND)):
        out = Running(output)
        assert not out.has("component-init")
        assert [out.call("get", a) for a in (0, 16, 1024)] == expected(source)
    assert expected(FIRST) != expected(SECOND)
    assert second == inline(SECOND)


def test_a_damaged_cache_entry_is_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path))
    reference = pre_initialize(FIRST)
    (entry,) = (tmp_path / CompiledCache.KIND).iterdir()
    entry.write_bytes(b"\0" * entry.stat().st_size)  # same name and size, wrong contents
    assert pre_initialize(FIRST) == reference
    (rewritten,) = (tmp_path / CompiledCache.KIND).iterdir()
    assert rewritten.read_bytes() != b"\0" * entry.stat().st_size


@pytest.mark.parametrize("raced", [False, True], ids=["alone", "another-run-removes-it-first"])
def test_an_entry_wasmtime_cannot_load_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raced: bool) -> None:
    """An intact file Wasmtime refuses (as from another engine configuration) costs a compile, nothing else."""
    import hashlib

    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path))
    reference = pre_initialize(FIRST)
    (entry,) = (tmp_path / CompiledCache.KIND).iterdir()
    junk = b"not a compiled component"
    key = entry.name.split("-")[0]
    entry.unlink()
    refused = tmp_path / CompiledCache.KIND / f"{key}-{hashlib.sha256(junk).hexdigest()}.cwasm"
    refused.write_bytes(junk)
    if raced:
        unlink = Path.unlink

        def removed_by_another_run_first(path: Path, missing_ok: bool = False) -> None:
            if path == refused:
                unlink(path)  # the other run refused it too, a moment earlier: ours finds nothing to remove
            unlink(path, missing_ok)

        monkeypatch.setattr(Path, "unlink", removed_by_another_run_first)
    assert pre_initialize(FIRST) == reference
    (replaced,) = (tmp_path / CompiledCache.KIND).iterdir()
    assert replaced.read_bytes() != junk


def test_an_unwritable_cache_only_costs_a_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", "/proc/self/no-cache-here")
    out = Running(pre_initialize(SECOND))
    assert [out.call("get", a) for a in (0, 16, 1024)] == expected(SECOND)


# Segments the data module merges, or must not: overlapping, backwards, sparse, in two memories.
# With the app's own segment at 16: how many segments the data module gets for each.
SEGMENTS = {
    "adjacent and close": ('(data (i32.const 100) "aaaa") (data (i32.const 104) "bbbb") (data (i32.const 120) "cccc")', 1),
    "overlapping": ('(data (i32.const 200) "xxxxxxxx") (data (i32.const 204) "yy") (data (i32.const 202) "z")', 3),
    "backwards": ('(data (i32.const 300) "later") (data (i32.const 290) "earlier")', 2),
    # Merging 490 and 510 would write zeros over 500, which an earlier segment wrote.
    "backwards then over an earlier one": (
        '(data (i32.const 500) "keep") (data (i32.const 490) "a") (data (i32.const 510) "b")', 3),
    "sparse": (f'(data (i32.const 400) "near") (data (i32.const {400 + 4 + MERGE_GAP + 1}) "far!")', 2),
    "high offset": ('(data (i32.const 0x8000) "high")', 2),
}


@pytest.mark.parametrize("name", SEGMENTS)
def test_merged_segments_write_what_the_originals_wrote(name: str) -> None:
    segments, merged = SEGMENTS[name]
    component = app("some data here!!", 3, segments)
    _, plan = instrument(parse_component(memoryview(component)), move_data=True)
    (data,) = plan.data_modules
    assert len(parse_core_module(memoryview(data.wasm)).data_segments) == merged
    output = pre_initialize(component)
    addresses = (0, 16, 100, 104, 120, 200, 204, 300, 290, 294, 400, 400 + 4 + MERGE_GAP + 1, 0x8000, 1024, 490, 500, 510)
    out = Running(output)
    assert [out.call("get", a) for a in addresses] == expected(component, addresses)
    assert output == inline(component)


MEMORY64_AND_PASSIVE = wat(
    """
(component
  (core module $m
    (memory $a 1)
    (memory $b i64 1)
    (global $f (mut f64) (f64.const 2.5))
    (global $v (mut v128) (v128.const i32x4 1 2 3 4))
    (data $p "passive!")
    (data (memory $b) (i64.const 32) "sixty-four")
    (data (memory $a) (i32.const 8) "thirty-two")
    (func (export "init")
      (memory.init $a $p (i32.const 64) (i32.const 0) (i32.const 8))
      (global.set $f (f64.mul (global.get $f) (f64.const 2)))
      (i64.store $b (i64.const 48) (i64.load $b (i64.const 32))))
    (func (export "get") (param i32) (result i32)
      (i32.add
        (i32.add (i32.load $a (local.get 0)) (i32.load $b (i64.extend_i32_u (local.get 0))))
        (i32.add (i32.trunc_f64_s (global.get $f)) (i32x4.extract_lane 3 (global.get $v))))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (param "a" u32) (result u32) (canon lift (core func $i "get"))))
"""
)


def test_memory64_several_memories_passive_segments_and_float_globals() -> None:
    _, plan = instrument(parse_component(memoryview(MEMORY64_AND_PASSIVE)), move_data=True)
    assert plan.data_modules
    output = pre_initialize(MEMORY64_AND_PASSIVE)
    out = Running(output)
    addresses = (0, 8, 32, 48, 64)
    assert [out.call("get", a) for a in addresses] == expected(MEMORY64_AND_PASSIVE, addresses)
    assert output == inline(MEMORY64_AND_PASSIVE)


GLOBAL_OFFSET = wat(
    """
(component
  (core module $base (global (export "at") i32 (i32.const 40)))
  (core instance $base (instantiate $base))
  (core module $m
    (import "base" "at" (global $at i32))
    (memory 1)
    (data (global.get $at) "offset by a global")
    (func (export "init") (i32.store (i32.const 0) (i32.load (i32.const 40))))
    (func (export "get") (param i32) (result i32) (i32.load (local.get 0))))
  (core instance $i (instantiate $m (with "base" (instance $base))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (param "a" u32) (result u32) (canon lift (core func $i "get"))))
"""
)

NAME_TAKEN = wat(
    """
(component
  (import "ci-data-m0" (func $f))
  (core module $m
    (memory 1)
    (data (i32.const 4) "data")
    (func (export "init") (i32.store (i32.const 0) (i32.load (i32.const 4))))
    (func (export "get") (param i32) (result i32) (i32.load (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (param "a" u32) (result u32) (canon lift (core func $i "get"))))
"""
)


@pytest.mark.parametrize(
    "component",
    [shapes.START_AND_TABLE, shapes.TWO_MODULES_SHARED_MEMORY, GLOBAL_OFFSET, NAME_TAKEN],
    ids=["start function", "data into an imported memory", "offset from a global", "import name taken"],
)
def test_data_stays_in_place_where_moving_it_could_change_what_init_sees(component: bytes) -> None:
    _, plan = instrument(parse_component(memoryview(component)), move_data=True)
    assert plan.data_modules == []
    assert pre_initialize(component) == inline(component)


@pytest.mark.parametrize(
    "component",
    [shapes.GLOBALS, shapes.MEMORY_GROW, shapes.TWICE, shapes.NESTED, shapes.MULTI_MEMORY, shapes.SHARED_MEMORY,
     shapes.NAN_PAYLOADS, shapes.SHADOW_STACK],
    ids=["globals", "memory growth", "instantiated twice", "nested", "multi-memory", "shared memory",
         "nan payloads", "shadow stack"],
)  # fmt: skip
def test_moving_the_data_gives_the_same_output(component: bytes) -> None:
    assert pre_initialize(component) == inline(component)


def test_the_cache_keeps_the_most_recently_used_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path))
    entries = tmp_path / CompiledCache.KIND
    # Different code each: a different constant in `get`.
    apps = [app("data", 1, f'(func (export "v{n}") (result i32) (i32.const {n}))') for n in range(CompiledCache.DEFAULT_MAX_ENTRIES + 1)]
    for component in apps:
        pre_initialize(component)
    assert len(list(entries.iterdir())) == CompiledCache.DEFAULT_MAX_ENTRIES == 8
    pre_initialize(apps[-1])  # the newest is still there: nothing compiled, nothing pruned
    assert len(list(entries.iterdir())) == 8


def test_no_code_cache_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / "cache"))
    out = Running(pre_initialize(FIRST, code_cache=False))
    assert [out.call("get", a) for a in (0, 16, 1024)] == expected(FIRST)
    (tmp_path / "in.wasm").write_bytes(SECOND)
    done = subprocess.run(
        [sys.executable, "-m", "hatch_component_init", "in.wasm", "-o", "out.wasm", "--no-code-cache", "-q"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Running((tmp_path / "out.wasm").read_bytes()).call("get", 0) == expected(SECOND)[0]
    assert not (tmp_path / "cache").exists()
    done = subprocess.run(
        [sys.executable, "-m", "hatch_component_init", "in.wasm", "-o", "out.wasm", "-q"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "cache" / CompiledCache.KIND).iterdir())) == 1


def test_a_runtime_of_your_own_gets_the_data_in_place() -> None:
    from hatch_component_init.runtime import make_engine
    from wasmtime import Store
    from wasmtime import component as cm

    seen: list[bytes] = []

    class Invoker:
        def __init__(self, instance: cm.Instance, store: Store) -> None:
            self.instance, self.store = instance, store

        def call(self, name: str, *args: int) -> object:
            return self.instance.get_func(self.store, name)(self.store, *args)

    def run(instrumented: bytes) -> Invoker:
        seen.append(instrumented)
        engine = make_engine()
        store = Store(engine)
        linker = cm.Linker(engine)
        instance = linker.instantiate(store, cm.Component(engine, instrumented))
        instance.get_func(store, "component-init")(store)
        return Invoker(instance, store)

    output = pre_initialize_with(SECOND, run)
    assert not [n for n in parse_component(memoryview(seen[0])).import_names if n.startswith("ci-data-")]
    assert output == pre_initialize(SECOND)


def test_code_that_changes_a_table_is_refused_before_it_runs_and_never_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hatch_component_init import UnsupportedComponentError

    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path))
    for code_cache in (True, False, True):
        with pytest.raises(UnsupportedComponentError, match="changes a table at run time"):
            pre_initialize(shapes.TABLE_MUTATION, code_cache=code_cache)
    assert not (tmp_path / CompiledCache.KIND).exists() or not list((tmp_path / CompiledCache.KIND).iterdir())

    def run(instrumented: bytes) -> object:
        raise AssertionError("the runtime callback ran refused code")

    with pytest.raises(UnsupportedComponentError, match="changes a table at run time"):
        pre_initialize_with(shapes.TABLE_MUTATION, run)


def test_the_validation_stubs_of_two_snapshots_of_an_app_are_the_same_bytes() -> None:
    """So the stub compile that validates a rebuilt app's output comes from Wasmtime's code cache."""
    from hatch_component_init.wasm.component import stub_component

    first, second = pre_initialize(FIRST), pre_initialize(SECOND)
    assert first != second
    stubs = [stub_component(parse_component(memoryview(out), with_data=False)) for out in (first, second)]
    assert stubs[0] == stubs[1]


def test_an_entry_written_by_another_version_is_never_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit skips the table-mutation scan, so an entry another release wrote (which may scan
    otherwise: here, not at all) must not vouch for code this release would refuse."""
    import hatch_component_init.api as api
    import hatch_component_init.compile_cache as compile_cache
    from hatch_component_init import ComponentInitError, UnsupportedComponentError

    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path))
    entries = tmp_path / CompiledCache.KIND
    with monkeypatch.context() as other_release:
        other_release.setattr(compile_cache, "__version__", "0.0.1+scans-nothing")
        other_release.setattr(api, "refuse_table_mutation", lambda parsed: None)
        try:
            pre_initialize(shapes.TABLE_MUTATION)
        except ComponentInitError:
            pass  # whatever the lax release made of it, it compiled and cached the code first
    (written,) = entries.iterdir()
    with pytest.raises(UnsupportedComponentError, match="changes a table at run time"):
        pre_initialize(shapes.TABLE_MUTATION)
    # And code both releases accept is compiled again under this one's key, not loaded from the other's.
    with monkeypatch.context() as other_release:
        other_release.setattr(compile_cache, "__version__", "0.0.1+scans-nothing")
        pre_initialize(FIRST)
    assert len(list(entries.iterdir())) == 2
    reference = pre_initialize(FIRST)
    assert len(list(entries.iterdir())) == 3
    assert reference == pre_initialize(FIRST, code_cache=False)
    assert written.exists()


def test_the_suite_writes_its_caches_into_its_own_directory(session_cache_dirs: Path) -> None:
    """conftest's session fixture: neither our caches nor Wasmtime's land in the user's cache directory."""
    from hatch_component_init.file_cache import default_cache_dir

    assert default_cache_dir().is_relative_to(session_cache_dirs)
    component = app("session cache", 2, '(func (export "session-cache-probe") (result i32) (i32.const 77))')
    pre_initialize(component)  # compiles (our code cache), then validates the output (Wasmtime's cache)
    assert list((default_cache_dir() / CompiledCache.KIND).iterdir())
    assert list((session_cache_dirs / "wasmtime").rglob("*"))


def _compiled_by(entry: Path) -> list[str]:
    """Which compiler's engine loads the cached code: each engine refuses the other's."""
    from wasmtime import WasmtimeError
    from wasmtime import component as cm

    from hatch_component_init.runtime import make_engine

    loads = []
    for name, baseline in (("winch", True), ("cranelift", False)):
        try:
            cm.Component.deserialize_file(make_engine(epoch=True, baseline=baseline, code_cache=False), str(entry))
            loads.append(name)
        except WasmtimeError:
            pass
    return loads


#: init gets its value through a tail call, which Wasmtime 50's Winch does not compile.
TAIL_CALL = app(
    "tail call", 1, '(func $five (result i32) (i32.const 5)) (func (export "five") (result i32) (return_call $five))'
)


def test_winch_compiles_init_and_cranelift_what_winch_cannot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path))
    entries = tmp_path / CompiledCache.KIND
    pre_initialize(FIRST)
    (first,) = entries.iterdir()
    assert _compiled_by(first) == ["winch"]
    output = pre_initialize(TAIL_CALL)
    (tail,) = set(entries.iterdir()) - {first}
    assert _compiled_by(tail) == ["cranelift"]
    assert [Running(output).call("get", a) for a in (0, 16, 1024)] == expected(TAIL_CALL)
