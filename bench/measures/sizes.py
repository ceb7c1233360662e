"""Output sizes: componentize-py alone, `wasmtime wizer`, ours with and without zeroing free allocator memory.

    python bench/runner.py sizes [--rounds N]

Builds tests/fixtures/one_global (init sets one global) and sample_project (init indexes a
word list) with componentize-py, then writes each variant: componentize-py's
own output, `wasmtime wizer`'s, ours by default, ours with
`--no-zero-free-memory`, and ours with `--no-init` on componentize-py's output.
Reports the .wasm size, its deflated size (zlib level 6, what a wheel's zip
stores) and the start-up (instantiate + first call, median of N in one
process, code compiled beforehand). Each output must answer as the
default one does. Writes bench/sizes.md and its table into docs/performance.md
(between the `sizes` markers). Working files go to bench/work/sizes/.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
WORK = BENCH / "work" / "sizes"
RESULTS = BENCH / "sizes.md"
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- sizes:start -->", "<!-- sizes:end -->"

#: (name, app directory, world, module, --dir grants for init, the call that answers)
APPS = [
    ("tiny app", ROOT / "tests" / "fixtures" / "one_global", "tiny", "app", [], ("answer", ())),
    ("sample", ROOT / "sample_project", "lexicon", "app", [f"{ROOT / 'sample_project' / 'data'}::/data"],
     ("anagrams", ("listen",))),
]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=9)


def _run(command: list[str]) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _outputs(name: str, app: Path, world: str, module: str, dirs: list[str]) -> dict[str, Path]:
    from bench.wizer.common import find_wasmtime_cli

    folder = WORK / name.replace(" ", "-")
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "componentize-py.wasm"
    cpy = Path(sys.executable).parent / "componentize-py"
    _run([str(cpy), "-d", str(app / "wit"), "-w", world, "componentize", "-p", str(app), module, "-o", str(raw)])
    grants = [arg for d in dirs for arg in ("--dir", d)]
    ours = [sys.executable, "-m", "hatch_component_init", str(raw), "-q", *grants]
    out = {"componentize-py alone": raw}
    out["wasmtime wizer"] = folder / "wizer.wasm"
    _run([str(find_wasmtime_cli()), "wizer", "-S", "cli=y", "--keep-init-func=true", "-f", "component-init", *grants, "-o",
          str(out["wasmtime wizer"]), str(raw)])  # fmt: skip
    out["ours"] = folder / "ours.wasm"
    _run([*ours, "-o", str(out["ours"])])
    out["ours, --no-zero-free-memory"] = folder / "ours-kept.wasm"
    _run([*ours, "-o", str(out["ours, --no-zero-free-memory"]), "--no-zero-free-memory"])
    out["ours, --no-init"] = folder / "ours-no-init.wasm"
    _run([sys.executable, "-m", "hatch_component_init", str(raw), "-q", "--no-init", "-o", str(out["ours, --no-init"])])
    return out


def _start_up(path: Path, call: tuple[str, tuple[object, ...]], rounds: int) -> tuple[float, object]:
    """Median ms of instantiate + first call (compiled once beforehand), and the answer."""
    import wasmtime
    from wasmtime.component import Component, Linker

    engine = wasmtime.Engine()
    component = Component(engine, path.read_bytes())
    linker = Linker(engine)
    linker.add_wasip2()
    times, answer = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        instance = linker.instantiate(store, component)
        answer = instance.get_func(store, call[0])(store, *call[1])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), answer


def main(args: argparse.Namespace) -> int:
    rows = ["| app | output | .wasm (MB) | deflated (MB) | / componentize-py | start-up (ms) |",
            "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, app, world, module, dirs, call in APPS:
        outputs = _outputs(name, app, world, module, dirs)
        base = outputs["componentize-py alone"].stat().st_size
        reference = None
        for label, path in outputs.items():
            data = path.read_bytes()
            try:
                ms, answer = _start_up(path, call, args.rounds)
                start_up = f"{ms:.1f}"
            except Exception as e:  # wizer's output of an init that printed traps at the next print
                answer, start_up = None, "fails: " + str(e).splitlines()[-1].strip()
            if label == "ours":
                reference = answer
            rows.append(f"| {name} | {label} | {len(data) / 1e6:.2f} | {len(zlib.compress(data, 6)) / 1e6:.2f} | "
                        f"{len(data) / base:.2f} | {start_up} |")  # fmt: skip
            print(f"[sizes] {name} / {label}: {len(data):,} bytes, answer {answer!r}", file=sys.stderr)
        for label, path in outputs.items():
            if label.startswith("ours") and label != "ours, --no-init" and _start_up(path, call, 1)[1] != reference:
                raise SystemExit(f"{name} / {label} answers differently from ours by default")
    table = "\n".join(rows)
    RESULTS.write_text(f"# Output sizes\n\n{__doc__.split(chr(10) + chr(10))[0]}\n\n{table}\n")
    docs = DOCS.read_text()
    before, rest = docs.split(START, 1)
    DOCS.write_text(f"{before}{START}\n{table}\n{END}{rest.split(END, 1)[1]}")
    print(table)
    return 0
