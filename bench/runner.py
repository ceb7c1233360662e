"""Run the benchmark's measures: one module per measure in bench/measures/, this small runner.

    pip install -e '.[bench]'
    python bench/runner.py --list
    python bench/runner.py edit_loop [--rounds N]
    python bench/runner.py wizer first_start edit_loop

Each measure module has a one-line docstring, ``add_arguments(parser)`` and
``main(args) -> int``; it writes its own report (``bench/<measure>.md``) and
keeps its working files under bench/work/ (gitignored). Measures run one after
another, never in parallel (they time wall clock on a shared machine).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MEASURES = BENCH / "measures"


def available() -> list[str]:
    return sorted(path.stem for path in MEASURES.glob("*.py") if not path.stem.startswith("_"))


def load(name: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH.parent))
    return importlib.import_module(f"bench.measures.{name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("measures", nargs="*", help="measures to run, in order (see --list)")
    parser.add_argument("--list", action="store_true", help="list the measures and exit")
    known, rest = parser.parse_known_args()
    if known.list or not known.measures:
        for name in available():
            print(f"{name:12} {(load(name).__doc__ or '').strip().splitlines()[0]}")
        return 0
    unknown = [name for name in known.measures if name not in available()]
    if unknown:
        parser.error(f"unknown measure(s) {', '.join(unknown)}; known: {', '.join(available())}")
    status = 0
    for name in known.measures:
        module = load(name)
        measure_parser = argparse.ArgumentParser(prog=f"runner.py {name}")
        module.add_arguments(measure_parser)
        args, rest = measure_parser.parse_known_args(rest)
        status = module.main(args) or status
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
