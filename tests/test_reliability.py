"""Reliability: runaway inits stop, the guest stays in its sandbox, interruptions leave no trace,
and the output does not depend on the run."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, componentize
from hatch_component_init import InitFailedError, pre_initialize
from hatch_component_init.fileio import atomic_write
from test_cli import TRAPPING, assert_clean_failure, cli, listing
from test_engine_shapes import (
    AT_MAXIMUM,
    GLOBALS,
    IMPORTS,
    MEMORY_GROW,
    NESTED,
    START_AND_TABLE,
    TWICE,
    TWO_MODULES_SHARED_MEMORY,
)
from wat_support import Running, printing_component, wat

LOOP_FOREVER = wat(
    """
(component
  (core module $m
    (global $n (mut i64) (i64.const 0))
    (func (export "init") (loop $l (global.set $n (i64.add (global.get $n) (i64.const 1))) (br $l))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)

START_LOOPS_FOREVER = wat(
    """
(component
  (core module $m
    (func $start (loop $l (br $l)))
    (start $start)
    (func (export "init")))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)

# Grows 16 pages at a time and writes into each new chunk; traps once growth is refused.
GROW_FOREVER = wat(
    """
(component
  (core module $m
    (memory 1)
    (func (export "init")
      (loop $l
        (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
        (i32.store (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 4)) (i32.const 1))
        (br $l))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)

# Grows one page at a time until growth is refused, then stops: the snapshot keeps what it got.
GROW_UNTIL_REFUSED = wat(
    """
(component
  (core module $m
    (memory 1)
    (func (export "init")
      (loop $l
        (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1))
          (then
            (i32.store (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 4)) (memory.size))
            (br $l)))))
    (func (export "pages") (result i32) (memory.size))
    (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "pages") (result u32) (canon lift (core func $i "pages")))
  (func (export "load") (param "a" u32) (result u32) (canon lift (core func $i "load"))))
"""
)

BIG_MINIMUM = wat(
    """
(component
  (core module $m (memory 64) (func (export "init")))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)


# ---------------------------------------------------------------- runaway init


# A run that ignored --timeout would loop forever: the subprocess time-out of `cli` fails the test then.


def test_endless_loop_stops_at_the_timeout(tmp_path: Path) -> None:
    src = tmp_path / "loop.wasm"
    src.write_bytes(LOOP_FOREVER)
    r = cli(src, "-o", tmp_path / "out.wasm", "--timeout", "1", timeout=60)
    assert_clean_failure(r, 1, "loop.wasm", "ran longer than the time limit of 1 s", "--timeout")
    assert listing(tmp_path) == ["loop.wasm"]


def test_timeout_covers_start_functions_during_instantiation(tmp_path: Path) -> None:
    src = tmp_path / "start.wasm"
    src.write_bytes(START_LOOPS_FOREVER)
    r = cli(src, "-o", tmp_path / "out.wasm", "--timeout", "0.5", timeout=60)
    assert_clean_failure(r, 1, "instantiating the component failed", "longer than the time limit of 0.5 s")
    assert listing(tmp_path) == ["start.wasm"]


def test_unbounded_memory_growth_stops_at_max_memory(tmp_path: Path) -> None:
    src = tmp_path / "grow.wasm"
    src.write_bytes(GROW_FOREVER)
    r = cli(src, "-o", tmp_path / "out.wasm", "--max-memory", "16M", "--timeout", "60")
    assert_clean_failure(r, 1, "grow.wasm", "the init function `component-init` failed", "unreachable",
                         "can grow past the memory limit of 16,777,216 bytes set by --max-memory")  # fmt: skip
    assert listing(tmp_path) == ["grow.wasm"]


def test_growth_refused_by_the_limit_names_the_limit() -> None:
    with pytest.raises(InitFailedError) as exc:
        pre_initialize(GROW_FOREVER, max_memory=1 << 20)
    message = str(exc.value)
    assert "`unreachable`" in message
    assert "can grow past the memory limit of 1,048,576 bytes set by --max-memory / `max-memory`" in message


def test_memory_limit_below_the_initial_size_is_refused() -> None:
    with pytest.raises(InitFailedError) as exc:
        pre_initialize(BIG_MINIMUM, max_memory=1 << 20)
    assert str(exc.value).startswith(
        "instantiating the component failed: a memory's initial size is larger than the memory limit of "
        "1,048,576 bytes set by --max-memory / `max-memory`"
    )
    assert pre_initialize(BIG_MINIMUM, max_memory=4 << 20)


# Fails in init without touching memory limits: a trap, with a memory that may never exceed 1 MiB.
TRAP_WITH_SMALL_MEMORY = wat(
    """
(component
  (core module $m
    (memory 1 16)
    (func (export "init") (drop (memory.grow (i32.const 15))) unreachable))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)

TRAP_IN_START = wat(
    """
(component
  (core module $m (memory 1 2) (func $start unreachable) (start $start) (func (export "init")))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)


@pytest.mark.parametrize(
    ("component", "stage"),
    [(TRAPPING, "the init function"), (TRAP_WITH_SMALL_MEMORY, "the init function"), (TRAP_IN_START, "instantiating")],
    ids=["no-memory", "memory-bounded-under-the-limit", "trap-in-start"],
)
def test_failures_unrelated_to_the_limit_do_not_blame_it(component: bytes, stage: str) -> None:
    with pytest.raises(InitFailedError) as exc:
        pre_initialize(component, max_memory=1 << 20)
    message = str(exc.value)
    assert message.startswith(stage) and "`unreachable`" in message, message
    assert "max-memory" not in message and "memory limit" not in message, message


def test_growth_refused_by_the_limit_is_snapshotted_as_is() -> None:
    out = Running(pre_initialize(GROW_UNTIL_REFUSED, max_memory=1 << 20))
    assert out.call("pages") == 16
    assert out.call("load", 16 * 65536 - 4) == 16


# ---------------------------------------------------------------- sandbox


@pytest.fixture(scope="session")
def sandbox_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The handles app (tests/fixtures/handles), whose `escape` export probes the sandbox: the session's build of it
    (test_real_world.py uses it too)."""
    return componentize(FIXTURES / "handles", "handles", "app", tmp_path_factory.mktemp("handles") / "h.wasm")


@pytest.mark.slow
def test_init_cannot_leave_its_sandbox(sandbox_component: bytes, tmp_path: Path) -> None:
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "inside.txt").write_text("inside\n")
    (tmp_path / "outside.txt").write_text("SECRET-OUTSIDE\n")
    (granted / "link-to-outside.txt").symlink_to("../outside.txt")
    src = tmp_path / "sandbox.wasm"
    src.write_bytes(sandbox_component)
    tree_before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        env = dict(os.environ, SANDBOX_SECRET="host-secret")  # set on the host, never granted
        r = cli(src, "-o", tmp_path / "out.wasm", "--init-func", "escape", "--dir", f"{granted}::/granted",
                "--env", "SANDBOX_GIVEN=yes", "--env", f"SANDBOX_PORT={port}", env=env)  # fmt: skip
        assert r.returncode == 0, r.stderr
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected

    text = Running((tmp_path / "out.wasm").read_bytes()).call("report")
    report = dict(line.split(": ", 1) for line in text.splitlines())
    assert report.pop("read-granted") == "allowed 'inside\\n'"
    assert report.pop("env-given") == "allowed 'yes'"
    assert report.pop("env-not-given").startswith("denied KeyError")
    for name in ("read-outside-absolute", "read-outside-dotdot", "read-outside-symlink", "list-root",
                 "write-new-file", "write-existing-file", "mkdir", "unlink", "socket-connect"):  # fmt: skip
        assert report.pop(name).startswith("denied "), name
    assert report == {}
    assert "SECRET-OUTSIDE" not in r.stderr
    # Nothing on the host changed but the new output.
    tree_after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "out.wasm"}
    assert tree_after == tree_before
    assert sorted(p.name for p in granted.iterdir()) == ["inside.txt", "link-to-outside.txt"]


# ---------------------------------------------------------------- interruption


#: Prints a line, then loops forever: a signal sent once the line is seen arrives during init.
PRINTS_THEN_LOOPS = printing_component(
    "stdout",
    """(global $n (mut i64) (i64.const 0))
    (data (i32.const 16) "init started\\n")
    (func (export "init")
      (call $write (call $get-stdout) (i32.const 16) (i32.const 13) (i32.const 64))
      (loop $l (global.set $n (i64.add (global.get $n) (i64.const 1))) (br $l)))""",
)
STARTED = "[guest stdout] init started"


def _start_looping_init(src: Path, out: Path) -> subprocess.Popen[str]:
    """The CLI pre-initializing PRINTS_THEN_LOOPS, returned once init has printed its line (so is running)."""
    src.write_bytes(PRINTS_THEN_LOOPS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hatch_component_init", str(src), "-o", str(out), "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    while STARTED not in (line := proc.stderr.readline()):
        if not line:  # the CLI ended without init starting
            proc.wait()
            raise AssertionError(f"init never started: {''.join(seen)}")
        seen.append(line)
    return proc


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("in_place", [False, True], ids=["new-output", "output-is-input"])
def test_signal_during_init_leaves_no_trace(tmp_path: Path, sig: signal.Signals, in_place: bool) -> None:
    src = tmp_path / "loop.wasm"
    proc = _start_looping_init(src, src if in_place else tmp_path / "out.wasm")
    try:
        proc.send_signal(sig)
        # Shorter than the run's own --timeout: a CLI that waited for the init fails here.
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stderr
    assert f"interrupted by {sig.name}; nothing was written" in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert src.read_bytes() == PRINTS_THEN_LOOPS
    assert listing(tmp_path) == ["loop.wasm"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_burst_of_signals_reports_the_first_one(tmp_path: Path) -> None:
    src = tmp_path / "loop.wasm"
    proc = _start_looping_init(src, src)
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
            proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stderr
    assert stderr.count("component-init: error:") == 1, stderr
    assert "interrupted by SIGINT" in stderr and "Traceback" not in stderr
    assert src.read_bytes() == PRINTS_THEN_LOOPS
    assert listing(tmp_path) == ["loop.wasm"]


def test_atomic_write_cleans_up_after_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.wasm"
    target.write_bytes(b"old")

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert listing(tmp_path) == ["out.wasm"]
    monkeypatch.undo()
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert listing(tmp_path) == ["out.wasm"]


# ---------------------------------------------------------------- reproducibility

_WAT_FIXTURES = {
    "GLOBALS": GLOBALS,
    "MEMORY_GROW": MEMORY_GROW,
    "AT_MAXIMUM": AT_MAXIMUM,
    "TWO_MODULES_SHARED_MEMORY": TWO_MODULES_SHARED_MEMORY,
    "TWICE": TWICE,
    "NESTED": NESTED,
    "START_AND_TABLE": START_AND_TABLE,
    "IMPORTS": IMPORTS,
}

_DIGESTS = """
import hashlib, sys
from pathlib import Path
from hatch_component_init import pre_initialize
for path in sys.argv[1:]:
    print(Path(path).stem, hashlib.sha256(pre_initialize(Path(path).read_bytes())).hexdigest())
"""


def test_wat_outputs_are_identical_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    paths = []
    for name, data in _WAT_FIXTURES.items():
        paths.append(tmp_path / f"{name}.wasm")
        paths[-1].write_bytes(data)
    expected = {name: hashlib.sha256(pre_initialize(data)).hexdigest() for name, data in _WAT_FIXTURES.items()}
    for seed in ("0", "1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", _DIGESTS, *map(str, paths)], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert dict(line.split() for line in r.stdout.splitlines()) == expected, seed
    # And through the command.
    outputs = []
    for seed in ("3", "77"):
        out = tmp_path / f"cli-{seed}.wasm"
        r = cli(paths[0], "-o", out, env=dict(os.environ, PYTHONHASHSEED=seed))
        assert r.returncode == 0, r.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == pre_initialize(GLOBALS)


@pytest.mark.slow
def test_greeter_output_is_identical_across_processes(greeter_component: bytes, tmp_path: Path) -> None:
    src = tmp_path / "greeter.wasm"
    src.write_bytes(greeter_component)
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out-{seed}.wasm"
        r = cli(src, "-o", out, "--dir", f"{FIXTURES / 'greeter' / 'data'}::/data", "-q",
                env=dict(os.environ, PYTHONHASHSEED=seed))  # fmt: skip
        assert r.returncode == 0, r.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
