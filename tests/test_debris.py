"""What killed runs leave behind is removed by the next run, and never changes a key or an answer.

The kills are real: a build or a command in a subprocess, signalled when the file
of the phase under test appears (polled for, not waited for with a sleep).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hatch_support import COMPONENTIZE_HOOK, RAW_COMPONENT, build_in_process, make_project, wheel_member
from wat_support import Running, wat

from hatch_component_init.debris import MAX_AGE, STAGING_PREFIX, sweep, sweep_staging
from hatch_component_init.fileio import PendingWrite, in_progress_owner
from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and PIDs")

TESTS = Path(__file__).resolve().parent
#: An init that fills 4 MiB of memory with non-zero words: the snapshot is big enough that the
#: files being written stay on disk long enough to be seen; `word(i)` reads the i-th word back.
FILLS_4_MIB = wat(
    """
(component
  (core module $m
    (memory (export "memory") 64)
    (func (export "init") (local $i i32)
      (loop $l
        (i32.store (local.get $i) (i32.mul (i32.add (local.get $i) (i32.const 1)) (i32.const -1640531535)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 4194304)))))
    (func (export "word") (param i32) (result i32) (i32.load (i32.shl (local.get 0) (i32.const 2)))))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "word") (param "i" u32) (result u32) (canon lift (core func $i "word"))))
"""
)


def expected_word(i: int) -> int:
    return ((4 * i + 1) * 0x9E3779B1) & 0xFFFFFFFF


def check_filled(snapshot: bytes) -> None:
    run = Running(snapshot, wasi=False)
    for i in (0, 1, 1 << 18, (1 << 20) - 1):
        assert run.call("word", i) == expected_word(i)


def dead_pid() -> int:
    """The PID of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def poll_for(pattern: str, directory: Path, proc: subprocess.Popen[str]) -> Path | None:
    """The first file in ``directory`` whose name matches ``pattern``, polled for while ``proc`` runs."""
    rx = re.compile(pattern)
    while proc.poll() is None:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if rx.fullmatch(name):
                return directory / name
    return None


def wait_for(pattern: str, directory: Path, proc: subprocess.Popen[str]) -> Path:
    found = poll_for(pattern, directory, proc)
    if found is None:
        raise AssertionError(f"`{pattern}` never appeared in {directory}: {proc.communicate()}")
    return found


# -- the sweep itself ---------------------------------------------------------------------------


def test_the_debris_of_a_process_that_is_gone_is_removed(tmp_path: Path) -> None:
    gone, alive = dead_pid(), os.getpid()
    debris = [f".app.wasm.{gone}.abcd_123.tmp", f".app.wasm.{gone}.partial", f".k.{gone}.partial"]
    kept = [f".app.wasm.{alive}.abcd_123.tmp", f".app.wasm.{alive}.partial", ".app.wasm.tmp", f"notes.{gone}.partial"]
    for name in debris[:2] + kept:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / debris[2]).mkdir()  # a pip install into a partial folder
    (tmp_path / debris[2] / "pkg.py").write_text("")
    removed = sweep([tmp_path])
    assert sorted(path.name for path in removed) == sorted(debris)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


def test_debris_older_than_the_limit_is_removed_whoever_made_it(tmp_path: Path) -> None:
    # A PID reused since (or a process of another machine sharing the cache) looks alive.
    old, recent = tmp_path / f".app.wasm.{os.getpid()}.abcd_123.tmp", tmp_path / f".b.wasm.{os.getpid()}.partial"
    old.write_bytes(b"x")
    recent.write_bytes(b"x")
    long_ago = time.time() - MAX_AGE - 60
    os.utime(old, (long_ago, long_ago))
    assert sweep([tmp_path]) == [old]
    assert recent.exists()


def test_only_the_named_files_debris_is_swept_next_to_a_project_file(tmp_path: Path) -> None:
    gone = dead_pid()
    (tmp_path / f".app.wasm.{gone}.partial").write_bytes(b"x")
    (tmp_path / f".other.wasm.{gone}.partial").write_bytes(b"x")  # not ours to judge
    assert [path.name for path in sweep([tmp_path], of="app.wasm")] == [f".app.wasm.{gone}.partial"]


def test_staging_dirs_of_runs_that_are_gone_are_removed(tmp_path: Path) -> None:
    gone = dead_pid()
    theirs = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{gone}-", dir=tmp_path))
    (theirs / "app.wasm").write_bytes(b"x")
    ours = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=tmp_path))
    unrelated = tmp_path / f"{STAGING_PREFIX}notes"
    unrelated.mkdir()
    old = unrelated.parent / f"{STAGING_PREFIX}abcd1234"  # an earlier release's name, without a PID
    old.mkdir()
    long_ago = time.time() - MAX_AGE - 60
    os.utime(old, (long_ago, long_ago))
    assert sorted(sweep_staging(tmp_path)) == sorted([theirs, old])
    assert ours.is_dir() and unrelated.is_dir()


@pytest.mark.parametrize("through_link", [False, True], ids=["file", "symlink"])
def test_a_pending_write_is_a_temp_file_of_this_process_next_to_the_file_it_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through_link: bool
) -> None:
    # Only a name the sweep knows, in the target's own folder, is removed once its writer is killed;
    # and only a writer that is a daemon lets a process interrupted mid-write exit at once.
    real = tmp_path / "real" / "app.wasm"
    real.parent.mkdir()
    real.write_bytes(b"old")
    target = real
    if through_link:  # written through: the temp file goes next to the file the link names
        target = tmp_path / "links" / "app-link.wasm"
        target.parent.mkdir()
        target.symlink_to(real)
    release = threading.Event()
    real_fsync = os.fsync

    def slow_disk(fd: int) -> None:  # holds the write pending while it is looked at
        if threading.current_thread().name == "component-init-write":
            release.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_disk)
    pending = PendingWrite(target, b"new")
    try:
        (writer,) = [t for t in threading.enumerate() if t.name == "component-init-write"]
        assert writer.daemon
        (temp,) = [name for name in os.listdir(real.parent) if name != real.name]
        assert temp.startswith(f".{real.name}.") and in_progress_owner(temp) == os.getpid()
    finally:
        release.set()
    pending.commit()
    assert real.read_bytes() == b"new" and os.listdir(real.parent) == [real.name]
    assert target.is_symlink() == through_link


# -- killed builds ------------------------------------------------------------------------------

HOOK = f'[tool.hatch.build.hooks.component-init]\ncomponent = "{RAW_COMPONENT}"\ndestination = "greeter_pkg/app.wasm"\n'
BUILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from hatch_support import build_in_process
build_in_process(Path(sys.argv[2]))
"""


def test_a_build_killed_while_it_writes_the_snapshot_leaves_nothing_after_the_next(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", HOOK, raw_component=FILLS_4_MIB)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    for _ in range(3):  # the temp file lives while the snapshot is written and checked; a busy machine may miss it
        shutil.rmtree(snapshot_cache_dir, ignore_errors=True)
        proc = subprocess.Popen([sys.executable, "-c", BUILD, str(TESTS), str(project)], env=env, text=True)
        try:
            found = poll_for(rf"\..*\.wasm\.{proc.pid}\.\w+\.tmp", snapshot_cache_dir / "snapshots", proc)
            proc.kill()  # SIGKILL: nothing of the build runs any more
        finally:
            proc.kill()
            proc.wait()
        if found is not None:
            break
        for wheel in (project / "dist").glob("*.whl"):
            wheel.unlink()
    left = [*(snapshot_cache_dir / "snapshots").iterdir(), *temp.iterdir()]
    assert any(path.name.endswith(".tmp") for path in left) and any(STAGING_PREFIX in path.name for path in left)

    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    wheel = build_in_process(project)
    check_filled(wheel_member(wheel, "greeter_pkg/app.wasm"))
    assert [path.suffix for path in (snapshot_cache_dir / "snapshots").iterdir()] == [".wasm"]
    assert list(temp.iterdir()) == []  # the killed build's staging dir, and this build's own (finalized)


STAND_IN = """
import os, sys, time
output, project = sys.argv[1], sys.argv[2]
# What componentize-py's guest Python leaves next to the app, then a component being written.
os.makedirs(os.path.join(project, "__pycache__"), exist_ok=True)
open(os.path.join(project, "__pycache__", "app.cpython-312.pyc"), "wb").write(b"guest bytecode")
with open(output, "wb") as f:
    f.write(b"\\0asm component")
    f.flush()
    time.sleep(300)
"""
KILLED_COMPONENTIZE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from hatch_support import build_in_process
from hatch_component_init.hatch.componentize import ComponentizePyBuildHook
ComponentizePyBuildHook.command = lambda hook, output: [sys.executable, "-c", sys.argv[3], str(output), hook.root]
build_in_process(Path(sys.argv[2]))
"""


def test_a_build_killed_while_componentize_py_runs_leaves_nothing_after_the_next(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    (project / "build").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_COMPONENTIZE, str(TESTS), str(project), STAND_IN], text=True, start_new_session=True
    )
    try:
        partial = wait_for(rf"\.greeter\.wasm\.{proc.pid}\.partial", project / "build", proc)
        while not (project / "__pycache__" / "app.cpython-312.pyc").exists():
            assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)  # the build and componentize-py, as a CI timeout's kill does
    finally:
        proc.kill()
        proc.wait()
    assert partial.exists() and (project / "__pycache__").exists()

    def stand_in(_hook: ComponentizePyBuildHook, output: Path) -> list[str]:
        return [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(b'\\0asm component')", str(output)]

    monkeypatch.setattr(ComponentizePyBuildHook, "command", stand_in)
    build_in_process(project)
    assert os.listdir(project / "build") == ["greeter.wasm"]
    assert not (project / "__pycache__").exists()
    # And the component was cached: the killed build's partial file was not taken for a source.
    assert len(list((snapshot_cache_dir / "components").iterdir())) == 1


def test_the_journal_of_a_build_still_running_is_left_alone(tmp_path: Path) -> None:
    from hatch_component_init.hatch.bytecode import no_new_bytecode, remove_interrupted_bytecode

    journal = tmp_path / "journal.json"
    app = tmp_path / "app"
    app.mkdir()
    with no_new_bytecode([app], journal):
        (app / "__pycache__").mkdir()
        (app / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"")
        assert remove_interrupted_bytecode(journal) == []  # this process is alive: its run goes on
        assert (app / "__pycache__").exists() and journal.exists()
    assert not (app / "__pycache__").exists() and not journal.exists()


# -- our in-progress files are never an input ---------------------------------------------------


def test_a_partial_output_next_to_the_output_changes_no_key(tmp_path: Path, snapshot_cache_dir: Path) -> None:
    # Another build in the same folder writes its componentize-py output there (or a killed one left it).
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    (project / "build").mkdir()
    hook = ComponentizePyBuildHook(str(project), {"wit": "wit", "world": "greeter", "module": "app",
                                                  "output": RAW_COMPONENT}, None, None, str(project / "dist"), "wheel")  # fmt: skip
    before = hook.source_key(None, snapshot_cache_dir)
    (project / "build" / f".greeter.wasm.{dead_pid()}.partial").write_bytes(b"\0asm half")
    (project / f".app.py.{os.getpid()}.abcd_123.tmp").write_bytes(b"print('half')")
    assert hook.source_key(None, snapshot_cache_dir) == before
    (project / "build" / "notes.txt").write_text("the app's own file counts")
    assert hook.source_key(None, snapshot_cache_dir) != before


# -- the command, interrupted at each phase -----------------------------------------------------

#: When to signal: the file that marks the phase (a regular expression, with {pid}), in which directory.
PHASES = {
    # Made just before the entry's temp file: unlike that one, it stays, so the poll cannot miss it.
    "code cache entry being written": (r"instrumented", "cache"),
    "output being written": (r"\.out\.wasm\.{pid}\.\w+\.tmp", "."),
    "output in place": (r"out\.wasm", "."),
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", list(PHASES))
def test_the_command_interrupted_at_each_phase_leaves_no_temp_file(
    tmp_path: Path, phase: str, sig: signal.Signals
) -> None:
    src, out = tmp_path / "in.wasm", tmp_path / "out.wasm"
    src.write_bytes(FILLS_4_MIB)
    env = {**os.environ, "HATCH_COMPONENT_INIT_CACHE_DIR": str(tmp_path / "cache")}
    pattern, where = PHASES[phase]
    command = [sys.executable, "-m", "hatch_component_init", str(src), "-o", str(out)]
    caught = 0
    for _ in range(4):
        if caught == 2:
            break
        out.unlink(missing_ok=True)
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)  # each run compiles and writes its code cache entry
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # A run may end before a busy machine lets the poll see the file: that run is checked all the same.
            if poll_for(pattern.format(pid=proc.pid), tmp_path / where, proc) is not None:
                proc.send_signal(sig)
                caught += 1
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
        assert "Traceback" not in stderr, stderr
        if "component-init: wrote" in stderr:
            # Done before the signal came (which may then end the process the default way).
            assert proc.returncode in (0, -sig), stderr
            check_filled(out.read_bytes())
        elif proc.returncode == -sig:
            assert stderr == ""  # stopped the default way, before the command had started its work
        else:
            assert proc.returncode == 1, stderr
            assert f"interrupted by {sig.name}; nothing was written and `{out}` is unchanged" in stderr
            assert not out.exists()
        assert sorted(os.listdir(tmp_path)) == ["cache", "in.wasm"] + (["out.wasm"] if out.exists() else [])
        # A run stopped while Wasmtime ran may leave the code cache's temp file (it exits at once, not
        # to wait for guest code): the next run removes it.
        left = list((tmp_path / "cache").rglob("*.tmp"))
        if left:
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr
            assert not [path for path in left if path.exists()]
    assert caught, "the phase's file was never seen"


#: The command with its writer thread slow to start: the window between the output's temp file
#: appearing and the command holding it (3 in 6 interrupted runs left the temp file) made wide.
SLOW_START = """
import sys, threading, time
from hatch_component_init.cli import main
start = threading.Thread.start
def slow(self):
    if self.name == "component-init-write":
        time.sleep(0.5)
    start(self)
threading.Thread.start = slow
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_as_the_temp_file_appears_leaves_no_temp_file(tmp_path: Path, sig: signal.Signals) -> None:
    src, out = tmp_path / "in.wasm", tmp_path / "out.wasm"
    src.write_bytes(FILLS_4_MIB)
    env = {**os.environ, "HATCH_COMPONENT_INIT_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_START, str(src), "-o", str(out)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(rf"\.out\.wasm\.{proc.pid}\.\w+\.tmp", tmp_path, proc)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, stderr
    assert f"interrupted by {sig.name}; nothing was written and `{out}` is unchanged" in stderr
    assert sorted(os.listdir(tmp_path)) == ["cache", "in.wasm"]
