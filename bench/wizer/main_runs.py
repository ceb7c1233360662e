"""Wall time (code caches warm and cold), peak RSS and output size, ours and the anchor alternating."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from .common import Bench, WORK, count_files, home_env, log, mb


def run(bench: Bench) -> None:
    r = bench.results
    outputs = {name: WORK / f"{name}.wasm" for name in ("ours", "anchor")}
    # The rebuilt variants are reused from earlier bench runs (stamps), and so would be the
    # caches' entries for them: an empty home makes each tool meet each variant for the first time.
    shutil.rmtree(bench.home, ignore_errors=True)
    log("warm-up: one run of each (fills the code caches)")
    for name in ("ours", "anchor"):
        run = bench.tool(name, bench.app, outputs[name], bench.env)
        if run.rc != 0:
            raise SystemExit(f"{name} failed on the app:\n{run.stderr[-3000:]}")
    cache_dir = bench.home / ".cache"
    for i in range(bench.rounds):
        order = ("ours", "anchor") if i % 2 == 0 else ("anchor", "ours")
        for name in order:
            before = count_files(cache_dir)
            run = bench.tool(name, bench.app, outputs[name], bench.env)
            r.warm_cache_entries_written[name].append(count_files(cache_dir) - before)
            r.warm[name].append(asdict(run) | {"stderr": run.stderr[-500:]})
            log(f"warm {i + 1}/{bench.rounds} {name}: {run.wall:.2f} s, {mb(run.rss)} RSS, rc={run.rc}")
    for i in range(bench.rounds):
        order = ("ours", "anchor") if i % 2 == 0 else ("anchor", "ours")
        for name in order:
            cold_home = Path(tempfile.mkdtemp(prefix=f"cold-{name}-", dir=WORK))
            try:
                assert count_files(cold_home) == 0
                run = bench.tool(name, bench.app, WORK / f"{name}-cold.wasm", home_env(cold_home))
                # Proof that it was cold: it started from an empty cache dir and filled it.
                run.cache_entries_written = count_files(cold_home)
            finally:
                shutil.rmtree(cold_home, ignore_errors=True)
            r.cold[name].append(asdict(run) | {"stderr": run.stderr[-500:]})
            log(
                f"cold {i + 1}/{bench.rounds} {name}: {run.wall:.2f} s, {mb(run.rss)} RSS, "
                f"{run.cache_entries_written} cache files written"
            )
    cold_same = all(
        run["digest"] == r.warm[name][0]["digest"] for name in ("ours",) for run in r.cold[name] if run["rc"] == 0
    )
    r.checks["ours cold output = warm output"] = cold_same
