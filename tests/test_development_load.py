"""Development loads of an editable install: the snapshot compiled with Winch, kept in our code cache.

Each rebuilt snapshot is new, so its first load compiles it; the compiled code
then goes to our cache (not Wasmtime's, which compresses it before the first
answer), written on a thread the interpreter waits for, and later loads of the
same snapshot map it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hatch_support import COMPONENT_INIT_HOOK, DEV_MODE_DIRS, RAW_COMPONENT, build_in_process, make_project
from test_hatch_editable import answer_component, load_answer

from hatch_component_init.compile_cache import DevelopmentCache
from wat_support import wat

#: The component answers 7 (`answer`), nothing to initialise.
SEVEN = wat(
    """
(component
  (core module $m (func (export "answer") (result i32) (i32.const 7)))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""
)

#: Init stores ANSWER; `answer` returns it through a tail call, which Wasmtime 50's Winch does not compile.
TAIL_CALL_WAT = """
(component
  (core module $m
    (global $answer (mut i32) (i32.const 0))
    (func (export "init") (global.set $answer (i32.const ANSWER)))
    (func $get (result i32) (global.get $answer))
    (func (export "answer") (result i32) (return_call $get)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""

#: Loads the component at argv[1] as an editable install's loader does, answers, and exits at once.
LOAD_AND_EXIT = """
import sys, wasmtime
from wasmtime.component import Linker
from hatch_component_init.hatch.editable import development_load
engine, component = development_load(sys.argv[1])
store = wasmtime.Store(engine)
print(Linker(engine).instantiate(store, component).get_func(store, "answer")(store))
"""


@pytest.fixture(autouse=True)
def no_compile_left_by_another_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild keeps its compile for the load that follows; another test's, in this process, is not for ours."""
    from hatch_component_init.hatch import editable

    monkeypatch.setattr(editable, "_compiled", None)


def entries(cache: Path) -> list[Path]:
    folder = cache / DevelopmentCache.KIND
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.usefixtures("snapshot_cache_dir")
def test_loads_keep_the_compiled_snapshot_and_map_it_until_it_changes(tmp_path: Path, snapshot_cache_dir: Path) -> None:
    project = editable_project(tmp_path, answer_component(42))

    got, _ = load_answer(project)
    assert got == {"answer": 42, "how": "compiled greeter.wasm with Winch (no precompiled component was built)"}
    (entry,) = entries(snapshot_cache_dir)
    os.utime(entry, (1_000_000_000, 1_000_000_000))

    # The same snapshot: its entry is used (and marked used), nothing new is written.
    assert load_answer(project)[0] == got
    assert entries(snapshot_cache_dir) == [entry]
    assert entry.stat().st_mtime > 1_000_000_000

    # A new snapshot is never answered from the old one's code.
    (project / RAW_COMPONENT).write_bytes(answer_component(43))
    assert load_answer(project)[0]["answer"] == 43
    assert len(entries(snapshot_cache_dir)) == 2
    assert load_answer(project)[0]["answer"] == 43
    assert len(entries(snapshot_cache_dir)) == 2


def test_a_host_that_exits_at_once_still_leaves_a_whole_entry(tmp_path: Path) -> None:
    """The entry is written on a thread that the interpreter waits for at exit: no temp file is left behind."""
    component = tmp_path / "seven.wasm"
    component.write_bytes(SEVEN)
    cache = tmp_path / "cache"
    env = {**os.environ, "HATCH_COMPONENT_INIT_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-c", LOAD_AND_EXIT, str(component)], env=env, capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "7", "")
    assert [path.suffix for path in (cache / DevelopmentCache.KIND).iterdir()] == [".cwasm"]


def test_a_damaged_entry_is_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hatch_component_init.hatch.editable import development_load

    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / "cache"))
    component = tmp_path / "seven.wasm"
    component.write_bytes(SEVEN)

    def answer() -> int:
        result = instantiate_answer(*development_load(str(component)))
        join_cache_writes()
        return result

    assert answer() == 7
    (entry,) = entries(tmp_path / "cache")
    entry.write_bytes(b"\0" * entry.stat().st_size)  # same name and size, wrong contents
    assert answer() == 7
    (rewritten,) = entries(tmp_path / "cache")
    assert rewritten.read_bytes() != b"\0" * rewritten.stat().st_size


def test_an_unwritable_cache_only_costs_a_compile(tmp_path: Path) -> None:
    component = tmp_path / "seven.wasm"
    component.write_bytes(SEVEN)
    env = {**os.environ, "HATCH_COMPONENT_INIT_CACHE_DIR": "/proc/self/no-cache-here"}
    result = subprocess.run([sys.executable, "-c", LOAD_AND_EXIT, str(component)], env=env, capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "7", "")


def editable_project(tmp_path: Path, component: bytes) -> Path:
    table = COMPONENT_INIT_HOOK.replace('dirs = { "data" = "/data" }\n', "") + 'loader = "greeter_pkg/_component.py"\n'
    project = make_project(tmp_path / "greeter", table, component, wheel_options=DEV_MODE_DIRS)
    build_in_process(project, version="editable")
    return project


def instantiate_answer(engine: object, component: object) -> int:
    import wasmtime
    from wasmtime.component import Linker

    store = wasmtime.Store(engine)  # type: ignore[arg-type]
    return int(Linker(engine).instantiate(store, component).get_func(store, "answer")(store))  # type: ignore[arg-type]


def record_cache_lookups(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each lookup in our development code cache from now on found an entry."""
    from hatch_component_init import compile_cache

    load = compile_cache._load
    found: list[bool] = []

    def recording(cache: compile_cache.CompiledCache, key: str, deserialize: object) -> object:
        component = load(cache, key, deserialize)  # type: ignore[arg-type]
        if isinstance(cache, DevelopmentCache):
            found.append(component is not None)
        return component

    monkeypatch.setattr(compile_cache, "_load", recording)
    return found


def record_validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each snapshot validated on its own (not by compiling it) from now on."""
    from hatch_component_init import api

    validate = api.validate_component
    sizes: list[int] = []

    def recording(data: bytes, *args: object) -> None:
        sizes.append(len(data))
        validate(data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "validate_component", recording)
    return sizes


def join_cache_writes() -> None:
    for thread in [t for t in threading.enumerate() if t.name == "component-init-cache"]:
        thread.join()


def test_a_rebuild_compiles_the_snapshot_once_for_the_load_that_follows(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild checks the new snapshot by compiling it for the load; the load uses that compile,
    and the compile is kept in the cache for the next processes' loads."""
    from hatch_component_init.hatch import editable

    project = editable_project(tmp_path, answer_component(42))
    target = project / "greeter_pkg" / "greeter.wasm"
    (project / RAW_COMPONENT).write_bytes(answer_component(43))
    lookups, validations = record_cache_lookups(monkeypatch), record_validations(monkeypatch)
    assert editable.refresh(str(project), str(target)) == "rebuilt because `build/greeter.wasm` changed"
    # The compile was the check: no separate validation, and no second compile (nor a cache lookup for one).
    assert (validations, lookups) == ([], [])
    assert editable._compiled is not None
    path, snapshot, _, compiled = editable._compiled
    assert (path, snapshot) == (target.resolve(), target.read_bytes())
    engine, component = editable.development_load(str(target))
    assert component is compiled and editable._compiled is None
    assert instantiate_answer(engine, component) == 43
    assert lookups == []
    # A later load (here: the same process) maps the entry the rebuild kept; never the consumed compile.
    join_cache_writes()
    assert len(entries(snapshot_cache_dir)) == 1
    engine, component = editable.development_load(str(target))
    assert component is not compiled and lookups == [True]
    assert instantiate_answer(engine, component) == 43


def test_a_load_writes_its_entry_while_the_host_goes_on(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first load of a snapshot leaves writing its entry to a thread of its own: the host goes on meanwhile."""
    from hatch_component_init import compile_cache
    from hatch_component_init.hatch.editable import development_load

    store = compile_cache._store
    writers: list[threading.Thread] = []

    def recording(*args: object) -> None:
        writers.append(threading.current_thread())
        store(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(compile_cache, "_store", recording)
    component = tmp_path / "seven.wasm"
    component.write_bytes(SEVEN)
    assert instantiate_answer(*development_load(str(component))) == 7
    join_cache_writes()
    assert len(writers) == 1 and writers[0] is not threading.current_thread()
    assert len(entries(snapshot_cache_dir)) == 1


@pytest.mark.usefixtures("snapshot_cache_dir")
def test_what_winch_cannot_compile_is_validated_and_loaded_with_cranelift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hatch_component_init.hatch import editable

    project = editable_project(tmp_path, answer_component(42))
    target = project / "greeter_pkg" / "greeter.wasm"
    tail_call = wat(TAIL_CALL_WAT.replace("ANSWER", "44"))
    (project / RAW_COMPONENT).write_bytes(tail_call)
    validations = record_validations(monkeypatch)
    assert editable.refresh(str(project), str(target)) is not None
    assert editable._compiled is None
    assert validations == [len(target.read_bytes())]
    got, _ = load_answer(project)
    assert got["answer"] == 44
    assert "Winch could not compile it" in str(got["how"])


@pytest.mark.usefixtures("snapshot_cache_dir")
def test_an_invalid_snapshot_is_neither_loaded_nor_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot Wasmtime refuses (a bug of ours, made here by breaking the rewrite) fails the rebuild:
    the tree keeps the last snapshot and its record, and the load says what failed."""
    import hatch_component_init.api as api
    from hatch_component_init.errors import RebuildError
    from hatch_component_init.hatch import editable
    from hatch_component_init.hatch.tree import ledger_path

    project = editable_project(tmp_path, answer_component(42))
    target = project / "greeter_pkg" / "greeter.wasm"
    before, record = target.read_bytes(), ledger_path(target).read_bytes()
    rewrite = api.rewrite_component

    def broken(*args: object, **kwargs: object) -> bytes:
        output = rewrite(*args, **kwargs)  # type: ignore[arg-type]
        return output + b"\xff\x00"  # a section no reader knows

    monkeypatch.setattr(api, "rewrite_component", broken)
    (project / RAW_COMPONENT).write_bytes(answer_component(43))
    with pytest.raises(RebuildError, match="does not validate"):
        editable.refresh(str(project), str(target))
    assert editable._compiled is None
    assert (target.read_bytes(), ledger_path(target).read_bytes()) == (before, record)
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
