"""First run on a freshly rebuilt component: each tool meets each rebuilt variant once, caches warm for the base app."""

from __future__ import annotations

from dataclasses import asdict

from .common import Bench, compare_calls, count_files, log, mb, probe


def run(bench: Bench) -> None:
    """Each tool's first run on each rebuilt variant, with the caches warm for the base app only."""
    r = bench.results
    cache_dir = bench.home / ".cache"  # the same home, so the same cache dirs, as the warm runs
    for k, (variant, entry) in enumerate(zip(bench.variants, r.rebuilt)):
        order = ("ours", "anchor") if k % 2 == 0 else ("anchor", "ours")
        entry["first"] = order[0]
        for name in order:
            before = count_files(cache_dir)
            run = bench.tool(name, variant, variant.with_name(f"{name}.wasm"), bench.env)
            run.cache_entries_written = count_files(cache_dir) - before
            entry[name] = asdict(run) | {"stderr": run.stderr[-500:]}
            log(f"rebuilt {entry['variant']} {name}: {run.wall:.2f} s, {mb(run.rss)} RSS, rc={run.rc}, "
                f"{run.cache_entries_written} cache files written")  # fmt: skip
    if not bench.variants:
        return
    # After every timed run, so that these compiles cannot warm a cache for a tool's first sight.
    variant = bench.variants[0]
    log(f"checking both outputs of {variant.parent.name} against it running its own init")
    calls = [f"query={bench.word}", "stats"]
    reference = probe(bench.env, "call", str(variant), "--init", "component-init", "--dir", f"{bench.data}::/data", *calls)
    checks = r.rebuilt_checks
    checks["variant"] = variant.parent.name
    if not reference["results"][0]["ok"]:
        checks["error"] = f"the variant's own init failed: {reference['results'][0]}"
        return
    for name in ("ours", "anchor"):
        out = variant.with_name(f"{name}.wasm")
        if not out.exists():
            checks[f"{name} stats"] = "no output"
            continue
        got = probe(bench.env, "call", str(out), *calls)
        checks.update({f"{name} {key}": verdict for key, verdict in compare_calls(reference, got).items()})
    for other in bench.variants[1:]:  # only the first one's outputs are checked; the rest is 40 MB each
        for name in ("ours", "anchor"):
            other.with_name(f"{name}.wasm").unlink(missing_ok=True)
