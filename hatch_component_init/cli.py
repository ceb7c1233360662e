"""The `component-init` command: a thin layer over :func:`pre_initialize`.

Exit status: 0 when OUTPUT was written; 1 when the run was refused, failed or
was interrupted (one paragraph on stderr, OUTPUT not created or changed);
2 for usage errors (argparse's convention).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from collections.abc import Iterator
from typing import Any, Callable

from .__about__ import __version__
from .errors import ComponentInitError, InitFailedError, InvalidComponentError
from .guest_output import LinePrefixer
from .host_spec import check_host_spec
from .init_hints import init_failure_hint
from .options import DEFAULT_INIT_FUNC, DEFAULT_TIMEOUT, WasiOptions
from .suggest import similar_directory

__all__ = ["main"]

#: Largest --max-memory accepted: Wasmtime takes the limit as a signed 64-bit number.
MAX_MEMORY_LIMIT = (1 << 63) - 1
#: Stack of the thread that runs the pipeline: Wasmtime runs guest code on it, so give it room.
WORKER_STACK = 64 << 20


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="component-init",
        description="Pre-initialize a WebAssembly component: run its init function once and write a "
        "component that starts in the resulting state.",
    )
    p.add_argument("input", metavar="INPUT", type=Path, help="the component to pre-initialize")
    p.add_argument("-o", "--output", metavar="OUTPUT", type=Path, required=True,
                   help="where to write the result; may equal INPUT (replaced atomically)")
    p.add_argument("-f", "--init-func", metavar="SPEC", default=DEFAULT_INIT_FUNC,
                   help="the init export: `name`, `interface.name` or `interface.name@version`, optionally with WAVE arguments, "
                   f"e.g. 'load(\"words\", true)' (default: {DEFAULT_INIT_FUNC})")
    p.add_argument("--keep-init-func", action="store_true", help="keep the init export in the output")
    p.add_argument("--dir", metavar="HOST[::GUEST]", action="append", default=[],
                   help="grant the guest read-only access to a host directory during init (repeatable)")
    p.add_argument("--env", metavar="NAME[=VALUE]", action="append", default=[],
                   help="set an environment variable for init, or pass ours through with NAME alone (repeatable)")
    p.add_argument("--host", metavar="MODULE:FUNCTION", default=None,
                   help="call FUNCTION(linker) of MODULE (imported from the current directory) to define "
                        "host functions, instances and resources for init")
    p.add_argument("--no-wasi", action="store_true", help="provide no WASI at all: every import traps if called")
    p.add_argument("--no-reset-first-call", action="store_true",
                   help="keep componentize-py's first-call setup as init left it (build-time environment, "
                        "arguments and random state in every instance); by default it runs again in each instance")
    p.add_argument("--no-zero-free-memory", action="store_true",
                   help="keep the bytes of the allocator's free memory in the snapshot; by default they are zeroed "
                        "where wasi-libc's malloc is recognised with certainty")
    p.add_argument("--no-init", action="store_true",
                   help="run nothing: only zero the allocator's free memory in the component's initial memory "
                        "(for a component with no init export, e.g. a componentize-py app)")
    p.add_argument("--no-code-cache", action="store_true",
                   help="compile every time; by default the compiled code is kept in the cache directory for later runs")
    p.add_argument("--timeout", metavar="SECONDS", type=_seconds, default=DEFAULT_TIMEOUT,
                   help=f"stop an init that runs longer than this (default: {DEFAULT_TIMEOUT:g}; 0 or inf for no limit)")
    p.add_argument("--max-memory", metavar="BYTES", type=_size, default=None,
                   help="stop an init whose memory grows past this size (suffixes K, M, G allowed)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the guest's output or the summary")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="say why an optional step changed nothing; on failure, also show Wasmtime's full error "
                        "(the wasm backtrace) and the guest's Rust panic lines")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}", help="show the version and exit")
    return p  # fmt: skip


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number of seconds") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"`{text}` must be a positive number of seconds, or 0 for no limit")
    if value == 0 or value >= threading.TIMEOUT_MAX:
        return None  # no limit (a timer cannot wait that long anyway)
    return value


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = units.get(t[-1:], 1)
    try:
        value = int(t[:-1] if t[-1:] in units else t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a size in bytes (e.g. 512M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"`{text}` must be positive")
    if value > MAX_MEMORY_LIMIT:
        raise argparse.ArgumentTypeError(f"`{text}` is too large (at most {MAX_MEMORY_LIMIT} bytes)")
    return value


class _Refused(Exception):
    """A failure the CLI reports itself (exit 1), with the full message."""


def _wasi(args: argparse.Namespace, parser: argparse.ArgumentParser) -> WasiOptions | None:
    """WASI options from --dir/--env/--no-wasi: malformed values are usage errors, missing things failures."""
    if args.no_wasi:
        if args.dir or args.env:
            parser.error("--no-wasi cannot be combined with --dir or --env: without WASI nothing can be granted")
        return None
    dirs = []
    for spec in args.dir:
        host, sep, guest = spec.partition("::")
        if not host or (sep and not guest):
            parser.error(f"argument --dir: `{spec}` must be HOST or HOST::GUEST")
        path = Path(host)
        if not path.exists():
            close = similar_directory(Path.cwd(), host)
            if close is not None:
                raise _Refused(f"--dir `{spec}`: the host directory `{host}` does not exist; did you mean `{close}`?")
            raise _Refused(f"--dir `{spec}`: the host directory `{host}` does not exist")
        if not path.is_dir():
            raise _Refused(f"--dir `{spec}`: `{host}` is not a directory")
        dirs.append((path, guest or host))
    env = []
    for spec in args.env:
        name, sep, value = spec.partition("=")
        if not name:
            parser.error(f"argument --env: `{spec}` must be NAME or NAME=VALUE")
        if not sep:
            if name not in os.environ:
                raise _Refused(
                    f"--env `{name}`: there is no variable `{name}` in this environment to pass through; "
                    f"set it, or give its value with --env {name}=VALUE"
                )
            value = os.environ[name]
        env.append((name, value))
    return WasiOptions(dirs=tuple(dirs), env=tuple(env))


def _check_init_spec(spec: str, parser: argparse.ArgumentParser) -> None:
    from .wave import parse_spec

    try:
        parse_spec(spec)
    except ComponentInitError as e:
        parser.error(f"argument -f/--init-func: {e}")
    except Exception:  # a parser bug must not become a traceback
        parser.error(f"argument -f/--init-func: cannot parse `{spec}`")


def _refuse_init_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """--no-init runs nothing: an option that configures the init run is a mistake, not something to ignore."""
    given = [flag for flag, value in (
        ("-f/--init-func", args.init_func != DEFAULT_INIT_FUNC), ("--keep-init-func", args.keep_init_func),
        ("--dir", args.dir), ("--env", args.env), ("--host", args.host), ("--no-wasi", args.no_wasi),
        ("--no-reset-first-call", args.no_reset_first_call), ("--timeout", args.timeout != DEFAULT_TIMEOUT),
        ("--max-memory", args.max_memory is not None),
    ) if value]  # fmt: skip
    if given:
        parser.error(f"argument --no-init: {given[0]} configures the init run, and --no-init runs nothing")


def _check_output(output: Path) -> None:
    """Refuse an OUTPUT that cannot be written before spending time on init."""
    parent = output.parent
    if not parent.is_dir():
        raise _Refused(f"cannot write `{output}`: the directory `{parent}` does not exist")
    if output.is_dir():
        raise _Refused(f"cannot write `{output}`: it is a directory; give a file name with -o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _Refused(f"cannot write `{output}`: the directory `{parent}` is not writable")


def _explain(e: ComponentInitError, input_path: Path) -> str:
    if isinstance(e, InvalidComponentError):
        return (
            f"`{input_path}` is not a valid WebAssembly component: {e}. "
            "Check that the file is complete and is a component."
        )
    return f"`{input_path}`: {e}"


def _hint(e: ComponentInitError, wasi: WasiOptions | None) -> str:
    """For an init that failed for want of a file or a variable, which option gives it (init_hints.py)."""
    if not isinstance(e, InitFailedError):
        return ""
    return init_failure_hint(e.guest_stderr, wasi, Path.cwd())


def _internal_error(e: BaseException, input_path: Path) -> str:
    if isinstance(e, MemoryError):
        return f"`{input_path}`: ran out of memory; nothing was written"
    frames = traceback.extract_tb(e.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return (
        f"`{input_path}`: internal error {type(e).__name__}{where}: {e}. This is a bug in hatch-component-init "
        f"{__version__}; please report it with the input component. Nothing was written."
    )


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; raised in the main thread by our handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class _SignalGuard:
    """Turn SIGINT and SIGTERM into :class:`Interrupted`, until ``deferring``: then they are only noted."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.saved: dict[int, Any] = {}
        self.deferring = False
        self.pending: int | None = None
        #: The thread running the pipeline, once started.
        self.worker: threading.Thread | None = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.deferring:
            if self.pending is None:
                self.pending = signum
            return
        self.deferring = True  # one interruption is enough: later signals must not replace it
        raise Interrupted(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Note a signal while the block runs, and raise it after the block (not within it)."""
        was = self.deferring
        self.deferring = True
        try:
            yield
        finally:
            if not was:  # else: already interrupted, or past the point of no return; it stays noted
                signum, self.pending = self.pending, None
                if signum is not None:
                    raise Interrupted(signum)  # `deferring` stays set: one interruption is enough
                self.deferring = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.saved[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        self.deferring = True
        for sig, old in self.saved.items():
            signal.signal(sig, old)
        self.saved.clear()


def _run_in_worker(func: Callable[[], bytes], guard: _SignalGuard) -> bytes:
    """Run ``func`` in a worker thread so a signal reaches us even while Wasmtime runs guest code.

    Python runs signal handlers only between bytecodes of the main thread; a
    guest stuck in a loop inside Wasmtime would otherwise delay Ctrl-C until
    the timeout. Returns the result; an exception of ``func`` is re-raised here.
    """
    if threading.current_thread() is not threading.main_thread():
        return func()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as e:  # re-raised in the main thread
            box["error"] = e

    old = threading.stack_size()
    try:
        threading.stack_size(WORKER_STACK)
    except (ValueError, RuntimeError):  # platform without settable stack sizes
        pass
    try:
        worker = guard.worker = threading.Thread(target=target, name="component-init", daemon=True)
        worker.start()
    finally:
        threading.stack_size(old)
    while worker.is_alive():
        worker.join(0.1)
    error = box.pop("error", None)
    if error is not None:
        # Raised from a local that is then dropped: the exception's traceback holds this frame, and a
        # frame that still held the exception would keep both (and the Wasmtime store) alive until exit.
        try:
            raise error
        finally:
            del error
    return box["result"]  # type: ignore[no-any-return]


def _abandon(worker: threading.Thread | None, code: int) -> None:
    """Exit now if a worker ran guest code: it cannot be stopped from Python, only left behind.

    Even a worker that looks stopped: Wasmtime's own threads (its WASI output
    streams) may still call back into Python, which an interpreter shutdown
    turns into a Rust panic, and a late signal would find the default
    handlers back. Measured: a guest that printed, then a burst of signals,
    under load, ended the CLI by SIGTERM or SIGABRT in ~5% of runs when only
    a live worker made it exit here.
    """
    if worker is not None:
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)


def _details(e: BaseException) -> None:
    """Wasmtime's own words behind a failure (the wasm backtrace), for -v."""
    cause = e.__cause__
    while cause is not None:
        print(f"component-init: details: {type(cause).__name__}:\n{str(cause).rstrip()}", file=sys.stderr)
        cause = cause.__cause__


def _fail(message: str) -> int:
    print(f"component-init: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        wasi = _wasi(args, parser)
    except _Refused as e:
        return _fail(str(e))
    _check_init_spec(args.init_func, parser)
    if args.no_init:
        _refuse_init_options(args, parser)
    if args.host is not None:
        try:
            check_host_spec(args.host, "--host")
        except ComponentInitError as e:
            parser.error(str(e))

    guard = _SignalGuard()
    guard.install()
    try:
        try:
            return _run(args, wasi, guard)
        finally:
            guard.deferring = True  # the outcome is decided; a signal from now on is only noted
    except Interrupted as e:
        # Only raised before the output is written (writing starts with `deferring` set).
        _fail(f"interrupted by {e.name}; nothing was written and `{args.output}` is unchanged")
        _abandon(guard.worker, 1)
        return 1
    finally:
        guard.restore()


def _run(args: argparse.Namespace, wasi: WasiOptions | None, guard: _SignalGuard) -> int:
    from .api import pre_initialize_unchecked  # heavy imports (wasmtime) only once the arguments are good
    from .fileio import PendingWrite
    from .host_spec import load_host

    try:
        _check_output(args.output)
        try:
            data = args.input.read_bytes()
        except IsADirectoryError:
            raise _Refused(f"cannot read the input `{args.input}`: it is a directory, not a component file") from None
        except OSError as e:
            raise _Refused(f"cannot read the input `{args.input}`: {e.strerror or e}") from None
    except _Refused as e:
        return _fail(str(e))
    _sweep_debris(args.output)

    out = LinePrefixer(lambda line: print(line, file=sys.stderr, flush=True), hide_panics=not args.verbose)
    notes: list[tuple[str, str]] = []  # (level, sentence), told after the output is written

    try:
        host = None if args.host is None else load_host(args.host, Path.cwd(), "--host")
    except ComponentInitError as e:
        return _fail(str(e))

    def work() -> tuple[bytes, Callable[[], None]]:
        if args.no_init:
            from .no_init import zero_free_memory_without_init

            if args.no_zero_free_memory:
                notes.append(("detail", "free allocator memory was kept, as asked: the output is the input"))
                return data, lambda: None
            # Checked inside: the output is written once it is known to be valid.
            return zero_free_memory_without_init(data, on_note=lambda level, text: notes.append((level, text))), lambda: None
        try:
            return pre_initialize_unchecked(
                data,
                init_func=args.init_func,
                keep_init_func=args.keep_init_func,
                wasi=wasi,
                timeout=args.timeout,
                max_memory=args.max_memory,
                on_output=None if args.quiet else out,
                host=host,
                code_cache=not args.no_code_cache,
                reset_first_call=not args.no_reset_first_call,
                zero_free_memory=not args.no_zero_free_memory,
                on_note=lambda level, text: notes.append((level, text)),
            )
        finally:
            out.flush()

    start = time.perf_counter()
    pending = None
    checked = False
    try:
        result, check = _run_in_worker(work, guard)
        try:
            # The disk writes while the output is checked. Its temp file exists from inside the
            # constructor on: a signal before `pending` is set would leave it behind, so it waits.
            with guard.held():
                pending = PendingWrite(args.output, result)
        except OSError as e:
            return _fail(f"cannot write `{args.output}`: {e.strerror or e}; nothing was written")
        check()
        # Set before `checked`: from here on a signal is only noted, and `pending` is committed below.
        guard.deferring = True
        checked = True
    except ComponentInitError as e:
        code = _fail(_explain(e, args.input))
        hint = _hint(e, wasi)
        if hint:
            print(f"component-init: hint: {hint}", file=sys.stderr)
        if args.verbose:
            _details(e)
        return code
    except Exception as e:  # includes MemoryError and RecursionError; Interrupted passes through
        return _fail(_internal_error(e, args.input))
    finally:
        if pending is not None and not checked:
            with guard.held():  # a signal now must not stop the removal half-way
                pending.discard()  # failed, or interrupted: the partial file goes, the output is untouched

    # The output is complete and valid: a signal no longer stops the run (`deferring`), it only gets noted.
    try:
        pending.commit()
    except OSError as e:
        return _fail(f"cannot write `{args.output}`: {e.strerror or e}; nothing was written")
    if not args.quiet:
        late = f" (a {signal.Signals(guard.pending).name} arrived while writing)" if guard.pending else ""
        print(
            f"component-init: wrote `{args.output}` ({len(result):,} bytes from {len(data):,}) "
            f"in {time.perf_counter() - start:.2f} s{late}",
            file=sys.stderr,
        )
    _tell(notes, quiet=args.quiet, verbose=args.verbose)
    return 0


def _sweep_debris(output: Path) -> None:
    """Remove what killed runs left: temp files in the code cache and next to the output."""
    from .debris import sweep, sweep_cache
    from .file_cache import default_cache_dir

    sweep_cache(default_cache_dir())
    sweep([output.parent], of=output.name)


def _tell(notes: list[tuple[str, str]], *, quiet: bool, verbose: bool) -> None:
    """The run's notes: steps applied with the summary, warnings always, why a step did nothing with -v."""
    for level, text in notes:
        if level == "warning":
            print(f"component-init: warning: {text}", file=sys.stderr)
        elif (level == "info" and not quiet) or (level == "detail" and verbose):
            print(f"component-init: {text}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
