"""The outputs against the raw component running its own init: same results, same printed output."""

from __future__ import annotations

from .common import Bench, WORK, compare_calls, log, probe


def run(bench: Bench) -> None:
    r = bench.results
    log("checking the outputs against the raw component running its own init")
    calls = [f"query={bench.word}", "stats"]
    reference = probe(
        bench.env, "call", str(bench.app), "--init", "component-init", "--dir", f"{bench.data}::/data", *calls
    )
    if not reference["results"][0]["ok"]:
        raise SystemExit(f"the raw component's own init failed: {reference['results'][0]}")
    ours = probe(bench.env, "call", str(WORK / "ours.wasm"), *calls)
    anchor = probe(bench.env, "call", str(WORK / "anchor.wasm"), *calls)
    checks = r.checks
    checks["reference"] = reference["results"]
    checks["ours"] = ours["results"]
    checks["anchor"] = anchor["results"]
    for name, got in (("ours", ours), ("anchor", anchor)):
        checks.update({f"{name} {key}": verdict for key, verdict in compare_calls(reference, got).items()})
        checks[f"{name} exports"] = got["exports"]
    for name in ("ours", "anchor"):
        digests = {run["digest"] for run in r.warm[name] if run["digest"]}
        checks[f"{name} byte-identical across runs"] = len(digests) == 1
