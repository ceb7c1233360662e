"""The `component-init` command: a thin layer over :func:`pre_initialize_file`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .__about__ import __version__
from .errors import ComponentInitError, ConfigError
from .guest_output import LinePrefixer
from .options import DEFAULT_INIT_FUNC, DEFAULT_TIMEOUT, WasiOptions

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="component-init",
        description="Pre-initialize a WebAssembly component: run its init function once and write a "
        "component that starts in the resulting state.",
    )
    p.add_argument("input", metavar="INPUT", type=Path, help="the component to pre-initialize")
    p.add_argument("-o", "--output", metavar="OUTPUT", type=Path, required=True,
                   help="where to write the result (may equal INPUT: it is replaced atomically)")
    p.add_argument("-f", "--init-func", metavar="SPEC", default=DEFAULT_INIT_FUNC,
                   help="the init export: `name`, `interface.name`, optionally with WAVE arguments, "
                   f"e.g. 'load(\"words\", true)' (default: {DEFAULT_INIT_FUNC})")
    p.add_argument("--keep-init-func", action="store_true", help="keep the init export in the output")
    p.add_argument("--dir", metavar="HOST[::GUEST]", action="append", default=[],
                   help="grant the guest read-only access to a host directory during init (repeatable)")
    p.add_argument("--env", metavar="NAME[=VALUE]", action="append", default=[],
                   help="set an environment variable for init, or pass ours through with NAME alone (repeatable)")
    p.add_argument("--no-wasi", action="store_true", help="provide no WASI at all: every import traps if called")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT,
                   help=f"stop an init that runs longer than this (default: {DEFAULT_TIMEOUT:g}; 0 for no limit)")
    p.add_argument("--max-memory", metavar="BYTES", type=_size, default=None,
                   help="stop an init whose memory grows past this size (suffixes K, M, G allowed)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the guest's output or the summary")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p  # fmt: skip


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
    return value


def _wasi(args: argparse.Namespace) -> WasiOptions | None:
    if args.no_wasi:
        if args.dir or args.env:
            raise ConfigError("--no-wasi cannot be combined with --dir or --env: without WASI nothing can be granted")
        return None
    dirs = []
    for spec in args.dir:
        host, sep, guest = spec.partition("::")
        if not host or (sep and not guest):
            raise ConfigError(f"--dir `{spec}` must be HOST or HOST::GUEST")
        path = Path(host)
        if not path.is_dir():
            raise ConfigError(f"--dir `{spec}`: the host directory `{host}` does not exist")
        dirs.append((path, guest or host))
    env = []
    for spec in args.env:
        name, sep, value = spec.partition("=")
        if not name:
            raise ConfigError(f"--env `{spec}` must be NAME or NAME=VALUE")
        if not sep:
            if name not in os.environ:
                raise ConfigError(f"--env `{name}`: no such variable in this environment to pass through")
            value = os.environ[name]
        env.append((name, value))
    return WasiOptions(dirs=tuple(dirs), env=tuple(env))


def _fail(message: str) -> int:
    print(f"component-init: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .api import pre_initialize  # heavy imports (wasmtime) only once the arguments are good
    from .fileio import atomic_write

    out = LinePrefixer(lambda line: print(line, file=sys.stderr))
    try:
        wasi = _wasi(args)
        try:
            data = args.input.read_bytes()
        except OSError as e:
            return _fail(f"cannot read the input `{args.input}`: {e.strerror or e}")
        if not args.output.parent.is_dir() and str(args.output.parent):
            return _fail(f"cannot write `{args.output}`: the directory `{args.output.parent}` does not exist")
        start = time.perf_counter()
        try:
            result = pre_initialize(
                data,
                init_func=args.init_func,
                keep_init_func=args.keep_init_func,
                wasi=wasi,
                timeout=args.timeout or None,
                max_memory=args.max_memory,
                on_output=None if args.quiet else out,
            )
        finally:
            out.flush()
        try:
            atomic_write(args.output, result)
        except OSError as e:
            return _fail(f"cannot write `{args.output}`: {e.strerror or e}")
    except ComponentInitError as e:
        return _fail(f"{args.input}: {e}")
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written")
    if not args.quiet:
        print(
            f"component-init: wrote {args.output} ({len(result):,} bytes from {len(data):,}) "
            f"in {time.perf_counter() - start:.2f} s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
