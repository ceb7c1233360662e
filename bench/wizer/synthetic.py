"""Synthetic WAT components of 16-1024 MiB of memory: how time and output size grow per MiB."""

from __future__ import annotations

from typing import Any

from .common import Bench, WORK, log, median, probe, synthetic_wat


def run(bench: Bench) -> None:
    r = bench.results
    for mib in bench.synthetic_sizes:
        src = WORK / f"synthetic-{mib}.wasm"
        if not src.exists():
            wat = src.with_suffix(".wat")
            wat.write_text(synthetic_wat(mib))
            probe(bench.env, "wat2wasm", str(wat), str(src))  # Wasmtime stays out of this process
        reference = probe(bench.env, "call", str(src), "--init", "component-init", "checksum")
        row: dict[str, Any] = {"mib": mib, "input": src.stat().st_size}
        for name in ("ours", "anchor"):
            out = WORK / f"synthetic-{mib}-{name}.wasm"
            runs = []
            for _ in range(bench.synthetic_reps):
                run = bench.tool(name, src, out, bench.env, dirs=False)
                runs.append(run)
                if run.rc != 0:
                    break
            ok = [run for run in runs if run.rc == 0]
            entry: dict[str, Any] = {
                "ok": len(ok) == len(runs),
                "wall": median([run.wall for run in ok]),
                "rss": median([run.rss for run in ok]),
                "size": ok[0].size if ok else None,
            }
            if not entry["ok"]:
                failed = runs[-1]
                lines = [ln.strip() for ln in failed.stderr.splitlines() if ln.strip()]
                at = next((i for i, ln in enumerate(lines) if "panicked" in ln or "rror" in ln), 0)
                # A Rust panic: `thread 'main' panicked at FILE:LINE:` then the message.
                message = " ".join(lines[at : at + 2]) if "panicked" in "".join(lines[at : at + 1]) else "".join(lines[at : at + 1])
                entry["error"] = f"exit {failed.rc}: {message[:300]}"
                entry["failed_after"] = failed.wall
            else:
                got = probe(bench.env, "call", str(out), "checksum")["results"][0]
                entry["correct"] = got["ok"] and got["value"] == reference["results"][1]["value"]
            out.unlink(missing_ok=True)
            row[name] = entry
            log(f"synthetic {mib} MiB {name}: {entry}")
        r.synthetic.append(row)
