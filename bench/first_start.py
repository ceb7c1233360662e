"""Benchmark: the first start of an installed wheel, with the precompiled component against compiling it.

    pip install -e '.[bench]'
    python bench/first_start.py [--rounds N]

What it does (everything goes to bench/work/first-start/, which is gitignored):

1. Builds sample_project/'s wheel (both hooks; `component-init` with
   `precompile = true` and `loader = "lexicon/_component.py"`) with
   `pip wheel --no-build-isolation`, the hook's snapshot cache in
   bench/work/hook-cache.
2. Installs it into a fresh venv with `pip install --no-index`, wasmtime coming
   from a wheelhouse that `pip download` fills once.
3. Times, in a fresh process with a new, empty Wasmtime cache each time
   (HOME and XDG dirs moved), from before `import wasmtime` to the first answer
   (`anagrams("listen")`): through the generated `load()` (which must report
   that it deserialized the `.cwasm`), and by compiling the shipped `.wasm`
   with Wasmtime's cache on (what the first start costs without it). Also the
   second start of the latter (cache warm), for context. Rounds alternate.

Prints a table and writes bench/first_start.md. The ratio's target is 0.1 or less;
nothing asserts it (tests check behaviour, never time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SAMPLE = ROOT / "sample_project"
WORK = BENCH / "work" / "first-start"
RESULTS = BENCH / "first_start.md"
TARGET_RATIO = 0.1

#: Runs inside the installed venv. argv: mode ("loader" or "compile"). Prints one JSON line.
PROBE = r"""
import sys, time
started = time.perf_counter()
import wasmtime
from wasmtime.component import Component, Linker
mode = sys.argv[1]
if mode == "loader":
    from lexicon import _component
    loaded = _component.load()
    engine, component, how = loaded.engine, loaded.component, loaded.how
else:
    import lexicon, os
    config = wasmtime.Config()
    config.cache = True
    engine = wasmtime.Engine(config)
    component = Component.from_file(engine, os.path.join(os.path.dirname(lexicon.__file__), "lexicon.wasm"))
    how = "compiled lexicon.wasm"
loaded = time.perf_counter()
linker = Linker(engine)
linker.add_wasip2()
store = wasmtime.Store(engine)
store.set_wasi(wasmtime.WasiConfig())
instance = linker.instantiate(store, component)
answer = instance.get_func(store, "anagrams")(store, "listen")
done = time.perf_counter()
import json
print(json.dumps({"first_answer": done - started, "load": loaded - started, "answer": answer, "how": how}))
"""


def log(message: str) -> None:
    print(f"[first-start {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result  # type: ignore[no-any-return]


def build_wheel() -> Path:
    project = WORK / "sample"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns(".venv", "dist", "build", "__pycache__", "*.wasm", "*.cwasm", "_component.py"))
    dist = WORK / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    env = {**os.environ, "HATCH_COMPONENT_INIT_CACHE_DIR": str(BENCH / "work" / "hook-cache")}
    log("building sample_project's wheel (componentize-py, pre-init, precompile; cached steps are skipped)")
    run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--wheel-dir", str(dist), "."],
        cwd=project, env=env)  # fmt: skip
    (wheel,) = dist.glob("lexicon-*.whl")
    return wheel


def install(wheel: Path) -> Path:
    wheelhouse = WORK / "wheelhouse"
    wasmtime = version("wasmtime")
    if not list(wheelhouse.glob(f"wasmtime-{wasmtime}-*.whl")):
        log(f"downloading the wasmtime {wasmtime} wheel once")
        run([sys.executable, "-m", "pip", "download", f"wasmtime=={wasmtime}", "--no-deps", "--only-binary=:all:",
             "--dest", str(wheelhouse)])  # fmt: skip
    venv = WORK / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index",
         "--find-links", str(wheelhouse), str(wheel)])  # fmt: skip
    return python


def probe(python: Path, mode: str, home: Path) -> dict[str, object]:
    env = dict(os.environ)
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("PYTHONPATH", None)
    result = run([str(python), "-c", PROBE, mode], env=env, cwd=str(WORK))
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel()
    python = install(wheel)
    samples: dict[str, list[dict[str, object]]] = {"loader": [], "compile": [], "compile, cache warm": []}
    for i in range(args.rounds):
        for mode in ("loader", "compile") if i % 2 == 0 else ("compile", "loader"):
            home = Path(tempfile.mkdtemp(prefix=f"home-{mode}-", dir=WORK))
            try:
                got = probe(python, mode, home)
                samples[mode].append(got)
                if mode == "compile":
                    samples["compile, cache warm"].append(probe(python, mode, home))
            finally:
                shutil.rmtree(home, ignore_errors=True)
            log(f"round {i + 1}/{args.rounds} {mode}: first answer after {got['first_answer']:.3f} s ({got['how']})")
    for got in samples["loader"]:
        if not str(got["how"]).startswith("precompiled"):
            raise SystemExit(f"the loader did not use the precompiled component: {got['how']}")
    answers = {json.dumps(got["answer"]) for runs in samples.values() for got in runs}
    if len(answers) != 1:
        raise SystemExit(f"the runs disagree: {answers}")

    def med(mode: str, key: str) -> float:
        return statistics.median(float(got[key]) for got in samples[mode])  # type: ignore[arg-type]

    ratio = med("loader", "first_answer") / med("compile", "first_answer")
    package = Path(run([str(python), "-c", "import lexicon, os; print(os.path.dirname(lexicon.__file__))"]).stdout.strip())
    size_text = ", ".join(f"{name} {(package / name).stat().st_size / 1e6:.1f} MB" for name in ("lexicon.wasm", "lexicon.cwasm"))
    from wizer.common import machine  # bench/wizer/, next to this script

    host = machine()
    lines = [
        "# First start of the installed sample wheel: precompiled vs compiled",
        "",
        f"Machine: {host['cpu']}, {host['cores']} cores, {host['os']}, load {host['load']}; wasmtime {version('wasmtime')}, "
        f"python {platform.python_version()}. Wheel: `{wheel.name}` ({size_text}).",
        f"Each start is a fresh process with a new, empty Wasmtime cache; median of {args.rounds} alternating rounds; "
        "time from before `import wasmtime` to the first answer (`anagrams(\"listen\")`).",
        "",
        "| first start | load (s) | first answer (s) |",
        "|---|---:|---:|",
        f"| generated `load()`, precompiled `lexicon.cwasm` | {med('loader', 'load'):.3f} | {med('loader', 'first_answer'):.3f} |",
        f"| compiling `lexicon.wasm` (Wasmtime's cache on, empty) | {med('compile', 'load'):.3f} | {med('compile', 'first_answer'):.3f} |",
        f"| compiling `lexicon.wasm`, second start (cache warm) | {med('compile, cache warm', 'load'):.3f} | {med('compile, cache warm', 'first_answer'):.3f} |",
        "",
        f"**precompiled / compiled, first start: {ratio:.3f}x** (target ≤ {TARGET_RATIO}x: "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}). Every run gave the same answer: {answers.pop()}.",
        "",
        "Command: `python bench/first_start.py`",
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
