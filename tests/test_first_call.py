"""componentize-py's first-call setup (env, argv, random seed) runs again in each instance of the output.

The WAT component below has the shape the step looks for: a memory module that
exports `libcomponentize_py_runtime.so:memory_base`, a library linked under
that name with a `dylink.0` section giving 16 bytes of static data at that
base, initially `00 00 07 00 ...`. Its init writes what it is told, so every
rule of the step can be exercised; the componentize-py tests prove the effect.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import componentize
from runenv_support import DATA, RUNENV, initialize, two_instances
from wat_support import CLI_WINCH, Running, snapshot, wat

from hatch_component_init import WasiOptions, pre_initialize, pre_initialize_with
from hatch_component_init.runtime import WasmtimeInvoker

RUNTIME_SHAPED = wat(r"""
(component
  (core module $main
    (memory (export "memory") 1)
    (global (export "libcomponentize_py_runtime.so:memory_base") i32 (i32.const 1024))
    (data (i32.const 1024) "\00\00\07\00"))
  (core instance $main (instantiate $main))
  (core module $rt
    (import "env" "memory" (memory 1))
    (import "env" "__memory_base" (global i32))
    (@custom "dylink.0" "\01\04\10\00\00\00")
    (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
    (func (export "poke16") (param i32 i32) (i32.store16 (local.get 0) (local.get 1)))
    (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))
  (core instance $env
    (export "memory" (memory $main "memory"))
    (export "__memory_base" (global $main "libcomponentize_py_runtime.so:memory_base")))
  (core instance $rt (instantiate $rt (with "env" (instance $env))))
  (core module $app
    (import "libcomponentize_py_runtime.so" "poke" (func $poke (param i32 i32)))
    (func (export "poke") (param i32 i32) (call $poke (local.get 0) (local.get 1))))
  (core instance $app (instantiate $app (with "libcomponentize_py_runtime.so" (instance $rt))))
  (func (export "poke") (param "address" u32) (param "value" u32) (canon lift (core func $app "poke")))
  (func (export "poke16") (param "address" u32) (param "value" u32) (canon lift (core func $rt "poke16")))
  (func (export "peek") (param "address" u32) (result u32) (canon lift (core func $rt "peek")))
)
""")

#: Not componentize-py's: state in a memory and a global, nothing linked as the runtime library.
PLAIN = wat(r"""
(component
  (core module $m
    (memory (export "memory") 1)
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (i32.store8 (i32.const 100) (i32.const 3)) (global.set $g (i32.const 3)))
    (func (export "get") (result i32) (i32.add (global.get $g) (i32.load8_u (i32.const 100)))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "get") (result u32) (canon lift (core func $i "get")))
)
""")


def _run(component: bytes, init: str, **kwargs: object) -> tuple[bytes, list[tuple[str, str]]]:
    notes: list[tuple[str, str]] = []
    out = snapshot(component, init_func=init, keep_init_func=True, on_note=lambda *note: "allocator" in note[1] or notes.append(note), **kwargs)
    return out, notes


def _static_data(component: bytes) -> list[int]:
    running = Running(component)
    return [running.call("peek", address) for address in range(1024, 1028)]


def test_a_once_that_completed_is_reset() -> None:
    out, notes = _run(RUNTIME_SHAPED, "poke(1025, 3)")
    assert _static_data(out) == [0, 0, 7, 0]
    assert notes == [
        ("info", "componentize-py's first-call setup will run again in each instance: it reads the run-time "
                 "environment and arguments and reseeds `random` (one byte reset at address 0x401)"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("init", "data", "why"),
    [
        ("poke(1026, 3)", [0, 0, 3, 0], "the one byte that changed during init went 7 -> 3, not 0 -> 3"),
        ("poke(1024, 1)", [1, 0, 7, 0], "the one byte that changed during init went 0 -> 1, not 0 -> 3"),
        ("poke16(1024, 771)", [3, 3, 7, 0], "2 bytes of its static data changed during init, not exactly one"),
        ("poke(1040, 3)", [0, 0, 7, 0], "0 bytes of its static data changed during init, not exactly one"),
    ],
    ids=["not-from-zero", "not-to-three", "two-bytes", "outside-the-range"],
)
def test_anything_but_one_byte_going_0_to_3_is_left_alone(init: str, data: list[int], why: str) -> None:
    out, notes = _run(RUNTIME_SHAPED, init)
    kept, _ = _run(RUNTIME_SHAPED, init, reset_first_call=False)
    assert out == kept
    assert _static_data(out) == data
    assert notes == [("detail", f"componentize-py's first-call state was left as init left it: {why}")]


def test_opt_out_keeps_the_completed_once() -> None:
    out, notes = _run(RUNTIME_SHAPED, "poke(1025, 3)", reset_first_call=False)
    assert _static_data(out) == [0, 3, 7, 0]
    assert notes == [("detail", "componentize-py's first-call state was kept as init left it, as asked")]


def test_other_components_are_byte_identical_with_or_without_the_step() -> None:
    notes: list[tuple[str, str]] = []
    out = pre_initialize(PLAIN, wasi=WasiOptions(), on_note=lambda *note: "allocator" in note[1] or notes.append(note))
    assert out == pre_initialize(PLAIN, wasi=WasiOptions(), reset_first_call=False)
    assert Running(out).call("get") == 6  # init's state, the byte 3 included, is there
    assert notes == [
        ("detail", "componentize-py's first-call state: nothing to reset, no core instance is linked as "
                   "`libcomponentize_py_runtime.so`"),
    ]  # fmt: skip


@pytest.mark.parametrize(("reset", "data"), [(True, [0, 0, 7, 0]), (False, [0, 3, 7, 0])])
def test_a_callers_runtime_gets_the_step_too(reset: bool, data: list[int]) -> None:
    def run(instrumented: bytes) -> WasmtimeInvoker:
        running = Running(instrumented)
        running.call("poke", 1025, 3)
        return WasmtimeInvoker(running.instance, running.store)

    notes: list[tuple[str, str]] = []
    out = pre_initialize_with(
        RUNTIME_SHAPED, run, init_func="poke", keep_init_func=True, reset_first_call=reset,
        on_note=lambda *note: "allocator" in note[1] or notes.append(note),
    )  # fmt: skip
    assert _static_data(out) == data
    assert [level for level, _ in notes] == ["info" if reset else "detail"]


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hatch_component_init", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_cli_summary_names_the_step_and_opt_out(tmp_path: Path) -> None:
    source = tmp_path / "in.wasm"
    source.write_bytes(RUNTIME_SHAPED)
    out = tmp_path / "out.wasm"
    r = _cli(source, "-o", out, "-f", "poke(1025, 3)", "--keep-init-func")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[-2].startswith("component-init: wrote ")
    assert lines[-1].startswith("component-init: componentize-py's first-call setup will run again in each instance")
    assert _static_data(out.read_bytes()) == [0, 0, 7, 0]

    r = _cli(source, "-o", out, "-f", "poke(1025, 3)", "--keep-init-func", "--no-reset-first-call")
    assert r.returncode == 0, r.stderr
    assert "first-call" not in r.stderr
    assert _static_data(out.read_bytes()) == [0, 3, 7, 0]


def test_cli_verbose_says_why_nothing_was_reset(tmp_path: Path) -> None:
    source = tmp_path / "in.wasm"
    source.write_bytes(RUNTIME_SHAPED)
    quiet = _cli(source, "-o", tmp_path / "a.wasm", "-f", "poke(1026, 3)", "--keep-init-func")
    verbose = _cli(source, "-o", tmp_path / "b.wasm", "-f", "poke(1026, 3)", "--keep-init-func", "-v")
    assert quiet.returncode == verbose.returncode == 0
    assert "first-call" not in quiet.stderr
    assert (
        "component-init: componentize-py's first-call state was left as init left it: "
        "the one byte that changed during init went 7 -> 3, not 0 -> 3"
    ) in verbose.stderr.splitlines()


# ---------------------------------------------------------------- componentize-py 0.25.1

@pytest.fixture(scope="session")
def runenv_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The runenv app built with the componentize-py of the test environment."""
    return componentize(RUNENV, "runenv", "app", tmp_path_factory.mktemp("runenv") / "runenv.wasm")


# That the reset gives each instance its own env, argv and random numbers, with init's state intact, is
# test_componentize_versions.py's test, for this release and two older ones.


@pytest.mark.slow
def test_componentize_py_opt_out_keeps_build_time_state(runenv_component: bytes) -> None:
    out, notes, _ = initialize(runenv_component, reset_first_call=False)
    assert [level for level, _ in notes] == ["detail"]
    one, two = two_instances(out)
    assert one[:2] == two[:2] == (None, [])
    assert one[2] == two[2]  # one random stream for every instance


@pytest.mark.slow
def test_build_time_env_stays_visible_with_a_warning(runenv_component: bytes) -> None:
    wasi = WasiOptions(dirs=((DATA, "/data"),), env=(("BUILD_ONLY", "b"), ("MODE", "build")))
    out, notes, _ = initialize(runenv_component, wasi=wasi)
    assert notes[1] == (
        "warning",
        "the environment variables given to init (`BUILD_ONLY`, `MODE`) stay in the app's `os.environ` at run "
        "time unless the run-time environment sets them: componentize-py adds the run-time environment to "
        "`os.environ`, it does not replace it",
    )
    running = Running(out, env={"MODE": "run"})
    assert running.call("setting", "MODE") == "run"
    assert running.call("setting", "BUILD_ONLY") == "b"


@pytest.mark.slow
def test_wasmtime_cli_run_passes_env_and_arguments(runenv_component: bytes, wasmtime_cli: Path, tmp_path: Path) -> None:
    out, _, _ = initialize(runenv_component)
    app = tmp_path / "app.wasm"
    app.write_bytes(out)

    def run(*args: str) -> str:
        r = subprocess.run([str(wasmtime_cli), "run", *CLI_WINCH, *args], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert run("--env", "MODE=cli", "--invoke", 'setting("MODE")', str(app)) == 'some("cli")'
    assert run("--invoke", "arguments()", str(app), "first", "second") == '["app.wasm", "first", "second"]'
    assert run("--invoke", "dice()", str(app)) != run("--invoke", "dice()", str(app))
