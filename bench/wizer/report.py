"""The wizer comparison's report: the table and the notes of bench/results.md."""

from __future__ import annotations

import re
from typing import Any

from .common import Results, STARTUP_REPEAT, TARGETS, fit, mb, median




def ratio_row(label: str, ours: float | None, anchor: float | None, fmt: str, target: str | None) -> str:
    if ours is None or anchor is None:
        return f"| {label} | {fmt.format(ours) if ours is not None else '-'} | {fmt.format(anchor) if anchor is not None else '-'} | - | - | - |"
    ratio = ours / anchor
    met = "-"
    if target:
        met = "yes" if ratio <= TARGETS[target] else "**no**"
    goal = f"≤ {TARGETS[target]:g}" if target else "-"
    return f"| {label} | {fmt.format(ours)} | {fmt.format(anchor)} | **{ratio:.2f}** | {goal} | {met} |"


def report(r: Results) -> str:
    def med(kind: dict[str, list[dict[str, Any]]], name: str, key: str) -> float | None:
        return median([run[key] for run in kind[name] if run["rc"] == 0])

    rebuilt = {name: [e[name] for e in r.rebuilt if name in e] for name in ("ours", "anchor")}

    m = r.machine
    lines = [
        "# Benchmark: hatch-component-init vs `wasmtime wizer`",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM; {m['os']}; load average (1/5/15 min) "
        f"{m.get('load', '?')} at the start, {m.get('load_end', '?')} at the end.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in r.versions.items()) + ".  ",
        f"Input: bench/app built by componentize-py, {mb(r.input_size)}; its init indexes {mb(r.data_size)} "
        f"of generated text and records.  ",
        f"Medians of {r.rounds} alternating runs after a warm-up. Ours: `component-init IN -o OUT -f component-init "
        "--dir DATA::/data -q`; anchor: `wasmtime wizer -S cli=y --keep-init-func=true -f component-init "
        "--dir DATA::/data -o OUT IN`.",
        "",
        "| | ours | anchor | ours/anchor | target | met |",
        "|---|---:|---:|---:|---:|:---:|",
        ratio_row("wall time, code cache warm (s)", med(r.warm, "ours", "wall"), med(r.warm, "anchor", "wall"),
                  "{:.2f}", "warm"),
        ratio_row("wall time, first run on a freshly rebuilt component (s)", med(rebuilt, "ours", "wall"),
                  med(rebuilt, "anchor", "wall"), "{:.2f}", "rebuilt"),
        ratio_row("wall time, code cache cold (s)", med(r.cold, "ours", "wall"), med(r.cold, "anchor", "wall"),
                  "{:.2f}", "cold"),
        ratio_row("peak RSS, warm (MB)", scale(med(r.warm, "ours", "rss")), scale(med(r.warm, "anchor", "rss")),
                  "{:.0f}", "rss"),
        ratio_row("peak RSS, cold (MB)", scale(med(r.cold, "ours", "rss")), scale(med(r.cold, "anchor", "rss")),
                  "{:.0f}", None),
        ratio_row("peak RSS, freshly rebuilt (MB)", scale(med(rebuilt, "ours", "rss")),
                  scale(med(rebuilt, "anchor", "rss")), "{:.0f}", None),
        ratio_row("output size (MB)", scale(med(r.warm, "ours", "size")), scale(med(r.warm, "anchor", "size")),
                  "{:.2f}", "size"),
        ratio_row("start-up: instantiate + first call, first instance in a fresh process (ms)",
                  scale(median(r.startup_first["ours"]), 1e-3), scale(median(r.startup_first["anchor"]), 1e-3),
                  "{:.1f}", "startup"),
        ratio_row(f"start-up: instantiate + first call, next {STARTUP_REPEAT - 1} instances (ms)",
                  scale(median(r.startup["ours"]), 1e-3), scale(median(r.startup["anchor"]), 1e-3), "{:.2f}",
                  "startup"),
        ratio_row("loading the output, code cache warm (ms)", scale(median(r.startup_load["ours"]), 1e-3),
                  scale(median(r.startup_load["anchor"]), 1e-3), "{:.0f}", None),
    ]  # fmt: skip
    hit = r.cache_hit
    if "hit" in hit:
        ok = "yes" if hit["hit"] <= TARGETS["cache_hit"] else "**no**"
        lines.append(
            f"| Hatch hook, snapshot cache hit (s) | {hit['hit']:.3f} | - | - | ≤ {TARGETS['cache_hit']:g} s | {ok} |"
        )
    lines += ["", "Cold runs: each run of either tool gets a fresh, empty HOME/XDG_CACHE_HOME (ours: "
              "HATCH_COMPONENT_INIT_CACHE_DIR too); cache files it wrote "
              f"there: ours {fmt_list([run['cache_entries_written'] for run in r.cold['ours']])}, "
              f"anchor {fmt_list([run['cache_entries_written'] for run in r.cold['anchor']])} (non-zero = it compiled "
              "from scratch and used that cache). Cache files written by warm runs: "
              f"ours {fmt_list(r.warm_cache_entries_written['ours'])}, "
              f"anchor {fmt_list(r.warm_cache_entries_written['anchor'])} (0 = everything came from the cache). "
              "Peak RSS is each tool process's own (wait4); on Linux it cannot be lower than the peak RSS of the "
              f"process that spawned it, here {mb(r.rss_floor)}."]  # fmt: skip
    if r.rebuilt:
        lines += ["", rebuilt_note(r)]
    if "hit" in hit:
        lines += [
            "",
            f"Hatch hook: `initialize` on a cache hit takes {hit['hit'] * 1000:.0f} ms in a fresh process "
            f"(best {hit['hit_best'] * 1000:.0f} ms once the process is warm); importing the hook takes "
            f"{hit['import'] * 1000:.0f} ms (Wasmtime {'**is**' if hit['wasmtime_imported'] else 'is not'} imported "
            f"on a hit); the whole process {hit['process']:.2f} s. The miss that filled the cache took "
            f"{hit['miss']:.1f} s. Snapshot served from the cache: {hit['from_cache']}.",
        ]
    elif hit:
        lines += ["", f"Hatch hook: not measurable: {hit.get('error', '?')}"]

    lines += ["", "## Do the outputs work?", "",
              f"Each output in a fresh instance, `query(\"{r.checks.get('word', '')}\")` (prints a line) then "
              "`stats()`, compared with the raw component running `component-init` itself then the same calls.", "",
              "| check | ours | anchor |", "|---|---|---|"]  # fmt: skip
    for key in ("query", "stats", "byte-identical across runs"):
        lines.append(f"| {key} | {r.checks.get(f'ours {key}')} | {r.checks.get(f'anchor {key}')} |")
    lines.append("| exports | " + " | ".join(", ".join(r.checks.get(f"{name} exports") or []) for name in ("ours", "anchor")) + " |")
    lines.append(f"| cold-cache output = warm-cache output | {r.checks.get('ours cold output = warm output')} | - |")

    if r.synthetic:
        lines += ["", "## Synthetic components: growth with memory size", "",
                  "One core module, memory of N MiB; init fills every 4th 64 KiB page with non-zero bytes (a quarter "
                  f"of the memory is data). Median of {r.synthetic_reps} run(s) each; outputs checked by a checksum "
                  "of the whole memory against the raw component running init.", "",
                  "| memory (MiB) | ours (s) | ours output (MB) | ours peak RSS (MB) | anchor (s) | anchor output (MB) | anchor peak RSS (MB) |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for row in r.synthetic:
            cells = [str(row["mib"])]
            for name in ("ours", "anchor"):
                e = row[name]
                if e["ok"]:
                    bad = "" if e.get("correct") else " (WRONG checksum)"
                    cells += [f"{e['wall']:.2f}{bad}", f"{e['size'] / 1e6:.1f}", f"{e['rss'] / 1e6:.0f}"]
                else:
                    cells += [f"fails after {e['failed_after']:.1f} s (¹)", "-", "-"]
            lines.append("| " + " | ".join(cells) + " |")
        # One note per distinct message (thread ids differ from run to run).
        errors = {re.sub(r"\(\d+\)", "", row[name]["error"]).replace("  ", " ")
                  for row in r.synthetic for name in ("ours", "anchor") if not row[name]["ok"]}  # fmt: skip
        for error in sorted(errors):
            lines.append(f"\n(¹) {error.replace(chr(96), chr(39))}")
        for name in ("ours", "anchor"):
            ok = [row for row in r.synthetic if row[name]["ok"]]
            t = fit([(row["mib"], row[name]["wall"]) for row in ok])
            s = fit([(row["mib"], row[name]["size"]) for row in ok])
            if t and s:
                lines.append(
                    f"\n{name.capitalize()}: time ≈ {t[0]:.2f} s + {t[1] * 1000:.1f} ms/MiB, output ≈ {s[0] / 1e6:.2f} MB + "
                    f"{s[1] / 1e6:.3f} MB/MiB of memory (fit over {', '.join(str(row['mib']) for row in ok)} MiB)."
                )
            failed = [row for row in r.synthetic if not row[name]["ok"]]
            if failed:
                lines.append(f"\n{name.capitalize()} fails at {', '.join(str(row['mib']) for row in failed)} MiB.")

    if r.phases:
        def stage(name: str) -> float | None:
            return median([run["stages"].get(name) for run in r.phases])

        rows = [("imports (hatch_component_init, wasmtime)", median([run["import"] for run in r.phases]))]
        for name in ("parse", "instrument"):
            rows.append((name, stage(name)))
        load, read, reset, total = (stage(n) for n in ("run: load instrumented code (cache)",
                                                        "run: read state back (accessor calls)",
                                                        "run: reset WASI handles", "run (total)"))  # fmt: skip
        rows.append(("load the instrumented component (code cache hit)", load))
        data_modules = stage("run: compile the data modules") or 0.0
        rows.append(("compile the data modules (the app's initial data)", data_modules))
        if None not in (load, read, total):
            rows.append(("instantiate + the guest's init", total - load - read - data_modules))  # type: ignore[operator]
        # read_back includes the resets: shown apart.
        rows.append(("read the state back (accessor calls)", read - (reset or 0.0) if read is not None else None))
        rows.append(("reset WASI handles", reset))
        segs, rewrite_total = stage("rewrite: encode data segments"), stage("rewrite (total)")
        rows.append(("snapshot -> data segments", segs))
        if None not in (segs, rewrite_total):
            rows.append(("rest of the rewrite", rewrite_total - segs))  # type: ignore[operator]
        rows.append(("validate the output (on threads, while it is written)", stage("validate output")))
        rows.append(("write the output and validate it, together", median([run["write"] for run in r.phases])))
        in_process = median([run["total"] for run in r.phases])
        lines += ["", f"## Where our time goes: stages, no profiler (median of {len(r.phases)}, cache warm)", "",
                  f"In-process up to the unvalidated output: {in_process:.2f} s; the CLI's wall time adds the "
                  "imports and the write, which overlaps the validation.", "", "| stage | s |", "|---|---:|"]  # fmt: skip
        lines += [f"| {name} | {value:.2f} |" for name, value in rows if value is not None]

    p = r.profile
    if p:
        lines += ["", f"## Where our time goes (cProfile, 18 MB component, cache warm: {p['total']:.2f} s in-process)",
                  "", "| function | cumulative (s) | own (s) | calls |", "|---|---:|---:|---:|"]  # fmt: skip
        for row in p["cumulative"][:16]:
            lines.append(f"| `{row['func']}` | {row['cumtime']:.2f} | {row['tottime']:.2f} | {row['calls']} |")
    lines += ["", f"Benchmark run took {r.elapsed / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def rebuilt_note(r: Results) -> str:
    """The paragraph under the table about the freshly rebuilt case: premise, per-variant times, checks."""
    def walls(name: str) -> str:
        return fmt_list([f"{e[name]['wall']:.2f}" if e[name]["rc"] == 0 else f"rc {e[name]['rc']}"
                         for e in r.rebuilt if name in e])  # fmt: skip

    premises = [e["premise"] for e in r.rebuilt]
    holds = all(p["holds"] for p in premises)
    differ = sorted({d for p in premises for d in p["differ"]})
    code = max(p["code_bytes"] for p in premises)
    text = (
        f"First run on a freshly rebuilt component: {len(r.rebuilt)} rebuilds of bench/app, each app.py plus one line "
        f"(`BUILD_TAG = \"rebuild-K\"`); their core modules' code ({mb(code)}) is "
        f"{'byte-identical to the base build' if all(p['code_identical'] for p in premises) else '**not** identical to the base build'}"
        f", what differs: {', '.join(differ) or 'nothing'}"
        f"{'' if holds else ' (**the premise of this case does not hold**)'}. "
        "Both tools start with their caches warm for the base app only (the warm runs' home) and run each rebuild "
        "once, the first time they see it, alternating which goes first. "
        f"Per rebuild (s): ours {walls('ours')}, anchor {walls('anchor')}; cache files written: "
        f"ours {fmt_list([e['ours']['cache_entries_written'] for e in r.rebuilt if 'ours' in e])}, "
        f"anchor {fmt_list([e['anchor']['cache_entries_written'] for e in r.rebuilt if 'anchor' in e])}."
    )
    c = r.rebuilt_checks
    if "error" in c:
        text += f" Outputs not checked: {c['error']}."
    elif c:
        text += (f" Outputs of {c['variant']} in a fresh instance against it running its own init: "
                 f"`stats()` ours: {c.get('ours stats')}, anchor: {c.get('anchor stats')}; "
                 f"`query()` ours: {c.get('ours query')}, anchor: {c.get('anchor query')}.")  # fmt: skip
    return text


def scale(value: float | None, unit: float = 1e6) -> float | None:
    return None if value is None else value / unit


def fmt_list(values: list[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"
