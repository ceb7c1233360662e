"""Our stages on the 18 MB component, timed without a profiler."""

from __future__ import annotations


from .common import Bench, WORK, log, probe


def run(bench: Bench) -> None:
    log("our stages on the 18 MB component, timed without a profiler (code cache warm)")
    out = WORK / "phases.wasm"
    bench.results.phases = [
        probe(bench.env, "phases", str(bench.app), str(bench.data), str(out)) for _ in range(max(3, bench.rounds))
    ]
    out.unlink(missing_ok=True)
