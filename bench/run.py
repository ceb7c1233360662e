"""Benchmark: hatch-component-init against `wasmtime wizer`, side by side, on the same inputs.

    pip install -e '.[bench]'
    python bench/run.py [--quick]

What it does (everything it builds goes to bench/work/, which is gitignored):

1. Generates a corpus (a few MB of words and records) deterministically, and
   builds bench/app/ (a componentize-py app whose `component-init` indexes it
   into ~50 MB of Python state and prints) into an ~18 MB component; also N
   rebuilt variants of it (app.py plus one line `BUILD_TAG = "rebuild-K"`,
   built in parallel), checked to have the base's core module code byte for
   byte and different data: what an edit-and-rebuild of an app produces.
2. Pre-initializes the app with ours (`component-init` CLI) and the anchor
   (`wasmtime wizer`), alternating, after a warm-up that starts from an empty
   cache home: wall time with the code caches warm (Wasmtime's and ours), wall
   time cold (each run gets a fresh, empty home holding every cache dir;
   checked), peak RSS, output size.
3. First run on a freshly rebuilt component: with the caches warm for the base
   app only, each tool pre-initializes each rebuilt variant once (the first
   time it sees it; which tool goes first alternates). Checks both outputs of
   the first variant against that variant running init itself.
4. The start-up of each output (instantiate + first call, in a separate
   process, cache warm). Checks both outputs against the raw component
   running init itself.
5. Synthetic WAT components with 16-1024 MiB of memory: how our time and
   output size grow per MiB (the anchor too, where it works).
6. The Hatch hook's snapshot-cache hit on the 18 MB component.
7. Our stages timed, and a cProfile of ours, on the 18 MB component.

Writes bench/results.md (and bench/work/results.json) and prints the table.
No numbers here are asserted anywhere; they depend on the machine.

Each measure is a module of bench/wizer/ (`run(bench)`); this script prepares the app and runs them in order.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wizer import cache_hit, check_outputs, main_runs, phases, profile, rebuilt, startup, synthetic  # noqa: E402
from bench.wizer.common import BENCH, Bench, REBUILT_VARIANTS, RESULTS, SYNTHETIC_MIB, WORK, own_peak_rss  # noqa: E402
from bench.wizer.report import report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds instead of 5, synthetic runs once, 2 rebuilt variants")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per measurement")
    parser.add_argument("--synthetic", default=",".join(map(str, SYNTHETIC_MIB)),
                        help="memory sizes (MiB) of the synthetic components, comma-separated; empty to skip")  # fmt: skip
    parser.add_argument("--rebuilt", type=int, default=None,
                        help=f"rebuilt variants of the app to measure a first run on ({REBUILT_VARIANTS}, 2 with --quick; 0 to skip)")  # fmt: skip
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    variants = args.rebuilt if args.rebuilt is not None else (2 if args.quick else REBUILT_VARIANTS)
    sizes = tuple(int(s) for s in args.synthetic.split(",") if s.strip())
    started = time.perf_counter()
    bench = Bench(rounds, sizes, synthetic_reps=1 if args.quick else 2, rebuilt=variants)
    bench.prepare()
    bench.results.checks["word"] = bench.word
    main_runs.run(bench)
    rebuilt.run(bench)
    check_outputs.run(bench)
    startup.run(bench)
    if sizes:
        synthetic.run(bench)
    cache_hit.run(bench)
    if not args.no_profile:
        phases.run(bench)
        profile.run(bench)
    bench.results.elapsed = time.perf_counter() - started
    bench.results.rss_floor = own_peak_rss()
    if hasattr(os, "getloadavg"):
        bench.results.machine["load_end"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    (WORK / "results.json").write_text(json.dumps(asdict(bench.results), indent=1, default=repr))
    text = report(bench.results)
    RESULTS.write_text(text)
    update_readme(text)
    print(text)
    return 0


README = BENCH.parent / "README.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def update_readme(text: str) -> None:
    """Put the headline table (the report up to its first subsection) between the README's markers."""
    readme = README.read_text(encoding="utf-8")
    if README_START not in readme or README_END not in readme:
        print(f"[bench] {README} has no {README_START} ... {README_END} markers; not updated", file=sys.stderr)
        return
    head = text.split("\n## ", 1)[0]
    body = "\n".join(line for line in head.splitlines() if not line.startswith("# ")).strip()
    before, rest = readme.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    README.write_text(f"{before}{README_START}\n{body}\n{README_END}{after}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
