"""Pre-initialization against `wasmtime wizer` (bench/run.py's figures: time, memory, size, start-up, cache hit)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--synthetic")
    parser.add_argument("--rebuilt", type=int)
    parser.add_argument("--no-profile", action="store_true")


def main(args: argparse.Namespace) -> int:
    from bench import run

    argv = [flag for name, flag in (("quick", "--quick"), ("no_profile", "--no-profile")) if getattr(args, name)]
    for name in ("rounds", "synthetic", "rebuilt"):
        if getattr(args, name) is not None:
            argv += [f"--{name}", str(getattr(args, name))]
    sys.argv = ["run.py", *argv]
    return run.main()
