"""First start of an installed wheel: the precompiled component against compiling it (bench/first_start.py)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int)


def main(args: argparse.Namespace) -> int:
    from bench import first_start

    sys.argv = ["first_start.py", *(["--rounds", str(args.rounds)] if args.rounds is not None else [])]
    return first_start.main()
