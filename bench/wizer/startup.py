"""Start-up of each output: instantiate and first call, in a fresh process, code cache warm."""

from __future__ import annotations


from .common import Bench, STARTUP_REPEAT, WORK, log, probe


def run(bench: Bench) -> None:
    r = bench.results
    log("start-up of each output (separate processes, code cache warm)")
    for name in ("ours", "anchor"):
        probe(bench.env, "startup", str(WORK / f"{name}.wasm"), "stats", "1")  # fills the cache
    for i in range(bench.rounds):
        for name in ("ours", "anchor") if i % 2 == 0 else ("anchor", "ours"):
            got = probe(bench.env, "startup", str(WORK / f"{name}.wasm"), "stats", str(STARTUP_REPEAT))
            r.startup_first[name].append(got["samples"][0])
            r.startup[name].extend(got["samples"][1:])
            r.startup_load[name].append(got["load"])
