"""The `component-init` command, run as a subprocess: exit codes, messages, files left behind."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hatch_component_init.cli import _seconds, _size
from hatch_component_init.guest_output import LinePrefixer
from test_engine_shapes import ARGS, GLOBALS, TABLE_MUTATION
from wat_support import BUMP_ALLOCATOR, PREOPENS_IMPORT, Running, wat

FIXTURES = Path(__file__).parent / "fixtures"
GREETER_DATA = FIXTURES / "greeter" / "data"

TRAPPING = wat(
    """
(component
  (core module $m
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 1)) unreachable))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init"))))
"""
)

CORE_MODULE = wat('(module (func (export "component-init")))')

# Init stores what `wasi:cli/environment` gives it; `env` and `args` return it from the snapshot.
ENV_PROBE = wat(
    f"""
(component
  (type $env-iface (instance
    (type $pair (tuple string string))
    (type $pairs (list $pair))
    (type $strings (list string))
    (export "get-environment" (func (result $pairs)))
    (export "get-arguments" (func (result $strings)))))
  (import "wasi:cli/environment@0.2.0" (instance $env (type $env-iface)))
{BUMP_ALLOCATOR}
  (alias export $env "get-environment" (func $get-env))
  (alias export $env "get-arguments" (func $get-args))
  (core func $get-env (canon lower (func $get-env) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $get-args (canon lower (func $get-args) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "env" "get-environment" (func $get-env (param i32)))
    (import "env" "get-arguments" (func $get-args (param i32)))
    ;; init stores the two lists as (pointer, length) pairs at 16 and 24
    (func (export "init") (call $get-env (i32.const 16)) (call $get-args (i32.const 24)))
    (func (export "env") (result i32) (i32.const 16))
    (func (export "args") (result i32) (i32.const 24)))
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "env" (instance (export "get-environment" (func $get-env)) (export "get-arguments" (func $get-args))))))
  (type $pair (tuple string string))
  (type $pairs (list $pair))
  (type $strings (list string))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "env") (result $pairs) (canon lift (core func $i "env") (memory (core memory $libc "memory"))))
  (func (export "args") (result $strings) (canon lift (core func $i "args") (memory (core memory $libc "memory")))))
"""
)


def cli(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120):
    """Run `python -m hatch_component_init ARGS`; return the CompletedProcess (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "hatch_component_init", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def assert_clean_failure(r: subprocess.CompletedProcess[str], code: int = 1, *needles: str) -> None:
    """Exit ``code``, no Python traceback of ours, and every needle in stderr."""
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert "hatch_component_init/" not in r.stderr, r.stderr
    assert r.stdout == ""
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)
    if code == 1:
        assert r.stderr.startswith("component-init: error: "), r.stderr
    else:
        assert r.stderr.startswith("usage: component-init"), r.stderr


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.fixture
def globals_wasm(tmp_path: Path) -> Path:
    path = tmp_path / "in.wasm"
    path.write_bytes(GLOBALS)
    return path


# ---------------------------------------------------------------- success


def test_success_writes_an_initialized_component(globals_wasm: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wasm"
    r = cli(globals_wasm, "-o", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert f"wrote `{out}`" in r.stderr
    assert listing(tmp_path) == ["in.wasm", "out.wasm"]
    assert globals_wasm.read_bytes() == GLOBALS
    running = Running(out.read_bytes())
    assert not running.has("component-init")
    assert running.call("a") == -7  # the state init left, without running init


def test_keep_init_func_and_quiet(globals_wasm: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wasm"
    r = cli(globals_wasm, "-o", out, "--keep-init-func", "-q")
    assert (r.returncode, r.stderr) == (0, "")
    running = Running(out.read_bytes())
    assert running.has("component-init")
    assert running.call("a") == -7


def test_init_call_with_arguments(tmp_path: Path) -> None:
    (tmp_path / "args.wasm").write_bytes(ARGS)
    spec = 'component-init(true, -12, "hello", blue)'
    r = cli(tmp_path / "args.wasm", "-o", tmp_path / "out.wasm", "--init-func", spec)
    assert r.returncode == 0, r.stderr
    assert Running((tmp_path / "out.wasm").read_bytes()).call("h") == -12


def test_output_equal_to_input_is_replaced_atomically(globals_wasm: Path, tmp_path: Path) -> None:
    before = globals_wasm.stat()
    os.chmod(globals_wasm, 0o640)
    r = cli(globals_wasm, "-o", globals_wasm)
    assert r.returncode == 0, r.stderr
    after = globals_wasm.stat()
    assert listing(tmp_path) == ["in.wasm"]
    # Replaced by a rename (a new inode), not rewritten in place, and the mode is kept.
    assert after.st_ino != before.st_ino
    assert after.st_mode & 0o777 == 0o640
    assert Running(globals_wasm.read_bytes()).call("a") == -7


def test_output_through_a_symlink_replaces_the_target(globals_wasm: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.wasm"
    target.write_bytes(b"old")
    link = tmp_path / "link.wasm"
    link.symlink_to(target.name)
    r = cli(globals_wasm, "-o", link)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink()
    assert Running(target.read_bytes()).call("a") == -7
    assert listing(tmp_path) == ["in.wasm", "link.wasm", "real.wasm"]


def test_relative_paths_and_the_console_script_agree(globals_wasm: Path, tmp_path: Path) -> None:
    r = cli("in.wasm", "-o", "a.wasm", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    script = Path(sys.executable).parent / "component-init"
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    r2 = subprocess.run([str(script), "in.wasm", "-o", "b.wasm"], capture_output=True, text=True, cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert (tmp_path / "a.wasm").read_bytes() == (tmp_path / "b.wasm").read_bytes()
    bad = subprocess.run([str(script), "in.wasm"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("component-init ")


def test_no_wasi_for_a_component_without_imports(globals_wasm: Path, tmp_path: Path) -> None:
    r = cli(globals_wasm, "-o", tmp_path / "out.wasm", "--no-wasi")
    assert r.returncode == 0, r.stderr
    assert Running((tmp_path / "out.wasm").read_bytes(), wasi=False).call("a") == -7


def test_env_pass_through_and_values_reach_the_guest(tmp_path: Path) -> None:
    src = tmp_path / "probe.wasm"
    src.write_bytes(ENV_PROBE)
    env = dict(os.environ, CI_TEST_PASSED_THROUGH="from the host", CI_TEST_NOT_GIVEN="secret")
    r = cli(src, "-o", tmp_path / "out.wasm", "--env", "CI_TEST_PASSED_THROUGH", "--env", "A=b=c",
            "--env", "EMPTY=", "--dir", tmp_path, "--dir", f"{tmp_path}::/guest", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = Running((tmp_path / "out.wasm").read_bytes())
    # Exactly what was given, in order: nothing else of ours leaks through.
    assert out.call("env") == [("CI_TEST_PASSED_THROUGH", "from the host"), ("A", "b=c"), ("EMPTY", "")]
    assert out.call("args") == []


# Init keeps the guest paths of the granted directories, in order; `names` returns them joined by ";".
DIR_NAMES_PROBE = wat(
    f"""
(component $root
{PREOPENS_IMPORT}
{BUMP_ALLOCATOR}
  (alias export $pre "get-directories" (func $get-dirs))
  (core func $get-dirs (canon lower (func $get-dirs) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "pre" "get-directories" (func $get-dirs (param i32)))
    (func (export "init")
      (local $entry i32) (local $end i32) (local $out i32) (local $len i32)
      (call $get-dirs (i32.const 16))
      ;; entries of (descriptor, string ptr, string len) at [16]; names are copied to 256..
      (local.set $entry (i32.load (i32.const 16)))
      (local.set $end (i32.add (local.get $entry) (i32.mul (i32.load (i32.const 20)) (i32.const 12))))
      (local.set $out (i32.const 256))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $entry) (local.get $end)))
        (local.set $len (i32.load offset=8 (local.get $entry)))
        (memory.copy (local.get $out) (i32.load offset=4 (local.get $entry)) (local.get $len))
        (i32.store8 (i32.add (local.get $out) (local.get $len)) (i32.const 59))
        (local.set $out (i32.add (i32.add (local.get $out) (local.get $len)) (i32.const 1)))
        (local.set $entry (i32.add (local.get $entry) (i32.const 12)))
        (br $next)))
      (i32.store (i32.const 200) (i32.const 256))
      (i32.store (i32.const 204) (i32.sub (local.get $out) (i32.const 256))))
    (func (export "names") (result i32) (i32.const 200)))
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "pre" (instance (export "get-directories" (func $get-dirs))))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "names") (result string) (canon lift (core func $i "names") (memory (core memory $libc "memory")))))
"""
)


def test_dir_without_guest_path_is_granted_at_its_host_path(tmp_path: Path) -> None:
    src = tmp_path / "probe.wasm"
    src.write_bytes(DIR_NAMES_PROBE)
    (tmp_path / "data").mkdir()
    r = cli(src, "-o", tmp_path / "out.wasm", "--dir", tmp_path / "data", "--dir", "data", "--dir", f"{tmp_path}::/guest",
            cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    names = Running((tmp_path / "out.wasm").read_bytes()).call("names")
    assert names == f"{tmp_path / 'data'};data;/guest;"


# ---------------------------------------------------------------- usage errors (exit 2)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "the following arguments are required"),
        (["in.wasm"], "-o/--output"),
        (["in.wasm", "-o", "out.wasm", "--bogus"], "unrecognized arguments: --bogus"),
        (["in.wasm", "-o", "out.wasm", "--timeout", "soon"], "argument --timeout"),
        (["in.wasm", "-o", "out.wasm", "--timeout", "-1"], "argument --timeout"),
        (["in.wasm", "-o", "out.wasm", "--timeout", "nan"], "argument --timeout"),
        (["in.wasm", "-o", "out.wasm", "--max-memory", "lots"], "argument --max-memory"),
        (["in.wasm", "-o", "out.wasm", "--max-memory", "0"], "argument --max-memory"),
        (["in.wasm", "-o", "out.wasm", "--max-memory", "99999999999999999999999"], "too large"),
        (["in.wasm", "-o", "out.wasm", "--dir", "::/guest"], "argument --dir"),
        (["in.wasm", "-o", "out.wasm", "--dir", "host::"], "argument --dir"),
        (["in.wasm", "-o", "out.wasm", "--env", "=value"], "argument --env"),
        (["in.wasm", "-o", "out.wasm", "--no-wasi", "--env", "A=1"], "--no-wasi"),
        (["in.wasm", "-o", "out.wasm", "--no-wasi", "--dir", "."], "--no-wasi"),
        (["in.wasm", "-o", "out.wasm", "-f", "init(1,"], "-f/--init-func"),
        (["in.wasm", "-o", "out.wasm", "-f", 'init("\\u{zz}")'], "-f/--init-func"),
    ],
)
def test_usage_errors_exit_2(globals_wasm: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    r = cli(*args, cwd=tmp_path)
    assert_clean_failure(r, 2, needle)
    assert listing(tmp_path) == ["in.wasm"]


# ---------------------------------------------------------------- failures (exit 1)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--dir", "missing-dir"], ["--dir `missing-dir`", "does not exist"]),
        (["--dir", "in.wasm::/x"], ["`in.wasm` is not a directory"]),
        (["--env", "CI_TEST_SURELY_NOT_SET"], ["--env `CI_TEST_SURELY_NOT_SET`", "--env CI_TEST_SURELY_NOT_SET=VALUE"]),
    ],
)
def test_bad_grants_are_refused(globals_wasm: Path, tmp_path: Path, args: list[str], needles: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI_TEST_SURELY_NOT_SET"}
    r = cli("in.wasm", "-o", "out.wasm", *args, cwd=tmp_path, env=env)
    assert_clean_failure(r, 1, *needles)
    assert listing(tmp_path) == ["in.wasm"]


def test_missing_input(tmp_path: Path) -> None:
    r = cli(tmp_path / "nope.wasm", "-o", tmp_path / "out.wasm")
    assert_clean_failure(r, 1, "cannot read the input", "nope.wasm", "No such file")
    assert listing(tmp_path) == []


def test_input_is_a_directory(tmp_path: Path) -> None:
    r = cli(tmp_path, "-o", tmp_path / "out.wasm")
    assert_clean_failure(r, 1, "cannot read the input", "is a directory")
    assert listing(tmp_path) == []


def test_output_directory_missing_or_output_is_a_directory(globals_wasm: Path, tmp_path: Path) -> None:
    r = cli(globals_wasm, "-o", tmp_path / "no" / "out.wasm")
    assert_clean_failure(r, 1, "cannot write", "does not exist")
    r = cli(globals_wasm, "-o", tmp_path)
    assert_clean_failure(r, 1, "cannot write", "is a directory")
    assert listing(tmp_path) == ["in.wasm"]


def _unwritable_directory(tmp_path: Path) -> Path:
    """A directory nobody can create files in, root included where possible."""
    proc = Path("/proc/self")
    if proc.is_dir():
        return proc  # procfs directories take no new files, whoever asks
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("no directory here that root cannot write")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked


def test_output_directory_not_writable(globals_wasm: Path, tmp_path: Path) -> None:
    locked = _unwritable_directory(tmp_path)
    before = sorted(os.listdir(locked))
    out = locked / "out.wasm"
    r = cli(globals_wasm, "-o", out)
    # Refused up front ("not writable") where the OS says so, else when the write fails: never written.
    assert_clean_failure(r, 1, f"cannot write `{out}`")
    assert "not writable" in r.stderr or "nothing was written" in r.stderr, r.stderr
    assert not out.exists()
    assert sorted(os.listdir(locked)) == before


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        (os.urandom(300), ["is not a valid WebAssembly component", "bad magic number"]),
        (b"", ["is not a valid WebAssembly component"]),
        (GLOBALS[:100], ["is not a valid WebAssembly component", "unexpected end", "offset"]),
        (GLOBALS[:8] + b"\x01\xff\xff\xff\xff\x0f", ["is not a valid WebAssembly component", "offset"]),
        (b"\x00asm\x0e\x00\x01\x00", ["unsupported component binary version"]),
        (CORE_MODULE, ["core module", "not supported yet", "wasm-tools component new"]),
        (TABLE_MUTATION, ["changes a table", "table.set"]),
    ],
    ids=["random", "empty", "truncated", "huge-section", "version", "core-module", "unsupported"],
)
def test_bad_inputs_are_refused(tmp_path: Path, data: bytes, needles: list[str]) -> None:
    src = tmp_path / "bad.wasm"
    src.write_bytes(data)
    out = tmp_path / "out.wasm"
    out.write_bytes(b"previous output")
    r = cli(src, "-o", out)
    assert_clean_failure(r, 1, "bad.wasm", *needles)
    assert out.read_bytes() == b"previous output"
    assert src.read_bytes() == data
    assert listing(tmp_path) == ["bad.wasm", "out.wasm"]


def test_failure_with_output_equal_to_input_leaves_it_alone(tmp_path: Path) -> None:
    src = tmp_path / "in.wasm"
    src.write_bytes(TABLE_MUTATION)
    ino = src.stat().st_ino
    r = cli(src, "-o", src)
    assert_clean_failure(r, 1)
    assert src.read_bytes() == TABLE_MUTATION
    assert src.stat().st_ino == ino
    assert listing(tmp_path) == ["in.wasm"]


def test_missing_init_export_lists_the_exports(globals_wasm: Path, tmp_path: Path) -> None:
    r = cli(globals_wasm, "-o", tmp_path / "out.wasm", "-f", "setup")
    assert_clean_failure(
        r, 1, "in.wasm", "no function export `setup`", "`component-init`", "`a`", "`v1`", "-f/--init-func"
    )
    assert "ci-" not in r.stderr  # our accessor exports are not the user's business
    assert listing(tmp_path) == ["in.wasm"]


def test_bad_init_arguments(tmp_path: Path) -> None:
    (tmp_path / "args.wasm").write_bytes(ARGS)
    r = cli(tmp_path / "args.wasm", "-o", tmp_path / "out.wasm", "-f", 'component-init(1, 2, "x", blue)')
    assert_clean_failure(r, 1, "expected a bool")
    r = cli(tmp_path / "args.wasm", "-o", tmp_path / "out.wasm")
    assert_clean_failure(r, 1, "takes arguments", "-f 'component-init(...)'")
    assert listing(tmp_path) == ["args.wasm"]


def test_init_that_traps(tmp_path: Path) -> None:
    (tmp_path / "trap.wasm").write_bytes(TRAPPING)
    r = cli(tmp_path / "trap.wasm", "-o", tmp_path / "out.wasm")
    assert_clean_failure(r, 1, "trap.wasm", "the init function `component-init` failed", "unreachable")
    assert listing(tmp_path) == ["trap.wasm"]


# ---------------------------------------------------------------- a real guest


@pytest.fixture(scope="module")
def greeter_file(greeter_component: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-greeter") / "greeter.wasm"
    path.write_bytes(greeter_component)
    return path


@pytest.mark.slow
def test_guest_output_is_prefixed_on_stderr(greeter_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wasm"
    r = cli(greeter_file, "-o", out, "--dir", f"{GREETER_DATA}::/data")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # our stdout stays clean for pipes
    lines = r.stderr.splitlines()
    assert "[guest stdout] init: loaded greeting 'Hello'" in lines
    assert "[guest stderr] init: a line on stderr" in lines
    running = Running(out.read_bytes())
    assert running.call("state") == "init-runs=1 greeting=Hello"
    assert not running.has("component-init")


@pytest.mark.slow
def test_guest_failure_shows_the_trap_and_guest_stderr(greeter_file: Path, tmp_path: Path) -> None:
    r = cli(greeter_file, "-o", tmp_path / "out.wasm", "-q")  # no --dir: the data file is not there
    assert r.returncode == 1
    message = r.stderr
    assert message.startswith("component-init: error: ")
    assert "[guest" not in message  # -q: no live output, but the error still carries the guest's stderr
    assert "the init function `component-init` failed" in message
    assert "FileNotFoundError" in message and "/data/greeting.txt" in message
    assert "hatch_component_init/" not in message
    assert listing(tmp_path) == []


@pytest.mark.slow
def test_no_wasi_with_a_guest_that_needs_it(greeter_file: Path, tmp_path: Path) -> None:
    r = cli(greeter_file, "-o", tmp_path / "out.wasm", "--no-wasi")
    assert_clean_failure(r, 1, "wasi:")
    assert listing(tmp_path) == []


# ---------------------------------------------------------------- pieces, in process


def test_a_dir_is_split_at_its_first_double_colon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # HOST::GUEST: the host is what comes before the first `::`, the guest path all that follows it.
    from hatch_component_init.cli import _parser, _wasi

    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    parser = _parser()
    args = parser.parse_args(["in.wasm", "-o", "out.wasm", "--dir", "data::/in::side", "--dir", "data"])
    wasi = _wasi(args, parser)
    assert wasi is not None and wasi.dirs == ((Path("data"), "/in::side"), (Path("data"), "data"))


def test_size_and_seconds_parsing() -> None:
    assert _size("512") == 512
    assert _size("4k") == 4096
    assert _size("16MiB") == 16 << 20
    assert _size("2G") == 2 << 30
    assert _seconds("1.5") == 1.5
    assert _seconds("0") is None
    assert _seconds("inf") is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0", "`0` must be positive"),
        ("-1K", "`-1K` must be positive"),
        ("lots", "`lots` is not a size in bytes (e.g. 512M)"),
        ("8589934592G", "`8589934592G` is too large (at most 9223372036854775807 bytes)"),
    ],
)
def test_a_size_that_is_not_a_limit_is_refused(text: str, why: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        _size(text)
    assert str(info.value) == why


def test_the_parser_converts_sizes_and_times_and_says_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    from hatch_component_init import __version__
    from hatch_component_init.cli import _parser, main

    args = _parser().parse_args(["in.wasm", "-o", "out.wasm", "--max-memory", "64K", "--timeout", "2.5"])
    assert (args.max_memory, args.timeout) == (64 << 10, 2.5)
    assert _parser().parse_args(["in.wasm", "-o", "out.wasm"]).max_memory is None
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"component-init {__version__}\n"


def test_line_prefixer_splits_streams_and_lines() -> None:
    lines: list[str] = []
    p = LinePrefixer(lines.append)
    p("stdout", b"hel")
    p("stderr", b"err\npart")
    p("stdout", b"lo\n\nwor")
    p("stdout", b"ld \xff\n")
    assert lines == ["[guest stderr] err", "[guest stdout] hello", "[guest stdout] ", "[guest stdout] world \ufffd"]
    p.flush()
    assert lines[-1] == "[guest stderr] part"
    p.flush()
    assert len(lines) == 5


def test_line_prefixer_bounds_long_lines_and_drops_carriage_returns() -> None:
    lines: list[str] = []
    p = LinePrefixer(lines.append, max_line=10)
    p("stdout", b"windows\r\n")
    for _ in range(5):
        p("stdout", b"x" * 7)  # 35 bytes, no newline: shown in pieces of at most 10
    assert lines[0] == "[guest stdout] windows"
    assert lines[1:] == ["[guest stdout] " + "x" * 10] * 3
    assert len(p.pending["stdout"]) == 5


def test_main_in_process(globals_wasm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hatch_component_init.cli import main

    assert main([str(globals_wasm), "-o", str(tmp_path / "out.wasm"), "-q"]) == 0
    assert main([str(tmp_path / "missing.wasm"), "-o", str(tmp_path / "x.wasm")]) == 1
    assert "cannot read the input" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(globals_wasm)])
    assert exc.value.code == 2


@pytest.mark.slow
def test_no_wasi_runs_a_component_that_imports_wasi_resources(greeter_component: bytes, tmp_path: Path) -> None:
    # Every import (WASI resources included) is a stand-in that traps only when called:
    # the greeter starts, and its init fails at its first WASI call, which the message names.
    src = tmp_path / "greeter.wasm"
    src.write_bytes(greeter_component)
    proc = subprocess.run(
        [sys.executable, "-m", "hatch_component_init", str(src), "-o", str(tmp_path / "out.wasm"), "--no-wasi"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "wasi:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.wasm").exists()
