"""Output and wheel sizes: componentize-py alone, `wasmtime wizer`, ours with and without zeroing free allocator memory.

    python bench/runner.py sizes [--rounds N]

Builds tests/fixtures/one_global (init sets one global), sample_project (init
indexes a word list) and tests/fixtures/http_app (a wasi:http app whose init
reads a word list) with componentize-py, then writes each variant:
componentize-py's own output, `wasmtime wizer`'s, ours by default, ours with
`--no-zero-free-memory`, and ours with `--no-init` on componentize-py's output.
Reports the .wasm size, its deflated size (zlib level 6, what a wheel's zip
stores) and the start-up: instantiate + first call, median of N in one process,
code compiled beforehand; for the http app, the median time of a request to
`wasmtime serve`, which instantiates the component for every request. Each of
our outputs must answer as the default one does, and the http app's default
output must answer its requests from the snapshot.

Then builds the sample's wheel three times with the `component-init` hook alone
(its input is the componentize-py output above), with `precompile = false`,
`true` and `"only"`, and reports each wheel's file size and its start-up
through the wheel's own loader: `load()` + instantiate + first call, the first
in a fresh Wasmtime cache, then the median of the next N-1.

Writes bench/sizes.md and its tables into docs/performance.md (between the
`sizes` markers). Working files go to bench/work/sizes/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
WORK = BENCH / "work" / "sizes"
RESULTS = BENCH / "sizes.md"
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- sizes:start -->", "<!-- sizes:end -->"
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE = ROOT / "sample_project"

#: What the http app's default output must answer, with no /data granted when served.
HTTP_ANSWER = ["words=7 initialized=True served=1", "cherry of 7 initialized=True"]


def _wasi_wit(app: Path, folder: Path) -> Path:
    """The app's WIT beside the WASI packages it includes (from spin-sdk), as componentize-py wants them."""
    import spin_sdk

    wit = folder / "wit"
    shutil.rmtree(wit, ignore_errors=True)
    shutil.copytree(app / "wit", wit)
    (wit / "deps").symlink_to(Path(spin_sdk.__file__).parent / "wit" / "deps", target_is_directory=True)
    return wit


#: (name, app directory, world, module, --dir grants for init, the call that answers: export and arguments,
#: or "serve" and the paths to request), and whether its WIT needs the WASI packages
APPS = [
    ("tiny app", FIXTURES / "one_global", "tiny", "app", [], ("answer", ()), False),
    ("sample", SAMPLE, "lexicon", "app", [f"{SAMPLE / 'data'}::/data"], ("anagrams", ("listen",)), False),
    ("http app", FIXTURES / "http_app", "app", "app", [f"{FIXTURES / 'http_app' / 'data'}::/data"],
     ("serve", ("/", "/word/2")), True),
]  # fmt: skip
PRECOMPILE = {"precompile = false": "false", "precompile = true": "true", 'precompile = "only"': '"only"'}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=9)


def _run(command: list[str], **kwargs: object) -> str | None:
    """Run ``command``; None when it succeeded, else the last line it printed."""
    proc = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if proc.returncode == 0:
        return None
    printed = (proc.stdout + proc.stderr).split("Stack backtrace:")[0]
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {proc.returncode}"


def _must(command: list[str], **kwargs: object) -> None:
    failed = _run(command, **kwargs)
    if failed:
        raise SystemExit(f"failed: {' '.join(command)}\n{failed}")


def _outputs(name: str, app: Path, world: str, module: str, dirs: list[str], wasi_wit: bool) -> dict[str, Path | str]:
    """Each variant's file, or why it could not be made."""
    from bench.wizer.common import find_wasmtime_cli

    folder = WORK / name.replace(" ", "-")
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "componentize-py.wasm"
    wit = _wasi_wit(app, folder) if wasi_wit else app / "wit"
    cpy = Path(sys.executable).parent / "componentize-py"
    _must([str(cpy), "-d", str(wit), "-w", world, "componentize", "-p", str(app), module, "-o", str(raw)])
    grants = [arg for d in dirs for arg in ("--dir", d)]
    ours = [sys.executable, "-m", "hatch_component_init", str(raw), "-q", *grants]
    out: dict[str, Path | str] = {"componentize-py alone": raw}
    wizer = folder / "wizer.wasm"
    wasi = ["-S", "cli=y", *(["-S", "http=y"] if wasi_wit else [])]
    failed = _run([str(find_wasmtime_cli()), "wizer", *wasi, "--keep-init-func=true", "-f", "component-init",
                   *grants, "-o", str(wizer), str(raw)])  # fmt: skip
    out["wasmtime wizer"] = f"fails: {failed}" if failed else wizer
    out["ours"] = folder / "ours.wasm"
    _must([*ours, "-o", str(out["ours"])])
    out["ours, --no-zero-free-memory"] = folder / "ours-kept.wasm"
    _must([*ours, "-o", str(out["ours, --no-zero-free-memory"]), "--no-zero-free-memory"])
    out["ours, --no-init"] = folder / "ours-no-init.wasm"
    _must([sys.executable, "-m", "hatch_component_init", str(raw), "-q", "--no-init", "-o", str(out["ours, --no-init"])])
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


def _served(path: Path, call: tuple[str, tuple[str, ...]], rounds: int) -> tuple[float, object]:
    """Median ms of a request to `wasmtime serve` (a fresh instance each), and the bodies of ``call``'s paths."""
    from bench.wizer.common import find_wasmtime_cli

    log = path.with_suffix(".serve.log")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("wb") as out:
        server = subprocess.Popen([str(find_wasmtime_cli()), "serve", "-Scli", "--addr", f"127.0.0.1:{port}", str(path)],
                                  stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while b"Serving HTTP" not in log.read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text().strip() or "wasmtime serve did not start")
            time.sleep(0.1)

        def get(route: str) -> str:
            """The body, or what went wrong (an app without its init's state answers some paths with an error)."""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=60) as response:
                    return response.read().decode()
            except OSError as e:
                return f"{route}: {e}"

        bodies = [get(route) for route in call[1]]
        if bodies[0].startswith(f"{call[1][0]}: "):
            raise RuntimeError(bodies[0])
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            if get(call[1][0]) != bodies[0]:
                raise RuntimeError(f"{call[1][0]} answered {bodies[0]!r} once, then not")
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times), bodies
    finally:
        server.terminate()
        server.wait(timeout=30)


def _sizes_table(rounds: int) -> tuple[list[str], Path]:
    rows = ["| app | output | .wasm (MB) | deflated (MB) | / componentize-py | start-up (ms) |",
            "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    sample_raw = None
    for name, app, world, module, dirs, call, wasi_wit in APPS:
        outputs = _outputs(name, app, world, module, dirs, wasi_wit)
        raw = outputs["componentize-py alone"]
        assert isinstance(raw, Path)
        if name == "sample":
            sample_raw = raw
        base = raw.stat().st_size
        measure: Callable[..., tuple[float, object]] = _served if call[0] == "serve" else _start_up  # type: ignore[assignment]
        answers = {}
        for label, path in outputs.items():
            if isinstance(path, str):
                rows.append(f"| {name} | {label} | | | | {path} |")
                continue
            data = path.read_bytes()
            try:
                ms, answers[label] = measure(path, call, rounds)
                start_up = f"{ms:.1f}"
            except Exception as e:  # wizer's output of an init that printed traps at the next print
                start_up = "fails: " + (str(e).strip().splitlines() or [type(e).__name__])[-1].strip()
            rows.append(f"| {name} | {label} | {len(data) / 1e6:.2f} | {len(zlib.compress(data, 6)) / 1e6:.2f} | "
                        f"{len(data) / base:.2f} | {start_up} |")  # fmt: skip
            print(f"[sizes] {name} / {label}: {len(data):,} bytes, answer {answers.get(label)!r}", file=sys.stderr)
        for label in ("ours", "ours, --no-zero-free-memory"):
            if label not in answers or answers[label] != answers["ours"]:
                raise SystemExit(f"{name} / {label} does not answer as ours by default: {answers.get(label)!r}")
        if call[0] == "serve" and answers["ours"] != HTTP_ANSWER:
            raise SystemExit(f"{name}: served from our output, it answers {answers['ours']!r}, not {HTTP_ANSWER!r}")
    assert sample_raw is not None
    return rows, sample_raw


def _pyproject(precompile: str) -> str:
    """The sample's `pyproject.toml`, the `component-init` hook alone, without what it ships for `--raw`."""
    kept, dropping = [], False
    for line in (SAMPLE / "pyproject.toml").read_text().splitlines(keepends=True):
        if line.startswith("["):
            dropping = line.strip() in ("[tool.hatch.build.hooks.componentize-py]",
                                        "[tool.hatch.build.targets.wheel.force-include]")  # fmt: skip
        if not dropping:
            kept.append(line)
    text = "".join(kept)
    if "precompile = true\n" not in text:
        raise SystemExit("sample_project/pyproject.toml no longer says `precompile = true`")
    return text.replace("precompile = true\n", f"precompile = {precompile}\n")


_LOAD = """
import importlib.util, json, statistics, sys, time
import wasmtime
from wasmtime.component import Linker
spec = importlib.util.spec_from_file_location("loader", sys.argv[1])
loader = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loader)
times = []
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    loaded = loader.load()
    engine, component = loaded
    linker = Linker(engine)
    linker.add_wasip2()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    answer = linker.instantiate(store, component).get_func(store, "anagrams")(store, "listen")
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps({"first": times[0], "then": statistics.median(times[1:]), "answer": answer, "how": loaded.how}))
"""


def _wheels_table(raw: Path, rounds: int) -> list[str]:
    rows = ["| sample wheel | wheel (MB) | its .wasm, deflated (MB) | its .cwasm, deflated (MB) | first start (ms) | start-up (ms) |",
            "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    answers = {}
    for label, value in PRECOMPILE.items():
        project = WORK / "wheels" / value.strip('"')
        shutil.rmtree(project, ignore_errors=True)
        shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns(".venv", "dist", "build", "__pycache__", "*.wasm",
                                                                       "*.cwasm", "_component.py"))  # fmt: skip
        (project / "build").mkdir()
        shutil.copyfile(raw, project / "build" / "lexicon.wasm")
        (project / "pyproject.toml").write_text(_pyproject(value))
        env = {**os.environ, "HATCH_COMPONENT_INIT_CACHE_DIR": str(WORK / "hook-cache")}
        _must([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--wheel-dir",
               str(project / "dist"), "."], cwd=project, env=env)  # fmt: skip
        (wheel,) = (project / "dist").glob("lexicon-*.whl")
        site = project / "site"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
            stored = {Path(info.filename).suffix: info.compress_size for info in archive.infolist()
                      if info.filename.startswith("lexicon/lexicon.")}  # fmt: skip
        home = project / "home"  # a fresh Wasmtime cache, for the loader's fallback compile
        proc = subprocess.run([sys.executable, "-c", _LOAD, str(site / "lexicon" / "_component.py"), str(max(rounds, 2))],
                              capture_output=True, text=True, env={**env, "HOME": str(home),
                              "XDG_CACHE_HOME": str(home / ".cache")})  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"{label}: the wheel's loader failed\n{proc.stderr[-2000:]}")
        result = json.loads(proc.stdout)
        answers[label] = result["answer"]
        mb = {suffix: f"{stored[suffix] / 1e6:.2f}" if suffix in stored else "-" for suffix in (".wasm", ".cwasm")}
        rows.append(f"| {label} | {wheel.stat().st_size / 1e6:.2f} | {mb['.wasm']} | {mb['.cwasm']} | "
                    f"{result['first']:.0f} | {result['then']:.1f} |")  # fmt: skip
        print(f"[sizes] wheel {label}: {wheel.stat().st_size:,} bytes, {result['how']}", file=sys.stderr)
    if len({json.dumps(answer) for answer in answers.values()}) != 1:
        raise SystemExit(f"the sample's wheels answer differently: {answers}")
    return rows


def main(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()[0]
    rows, sample_raw = _sizes_table(args.rounds)
    wheel_rows = _wheels_table(sample_raw, args.rounds)
    load_after = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    loaded = "on a loaded machine: " if max(load_before, load_after) > cores else ""
    notes = [f"Measured {loaded}load average {load_before:.1f} at the start and {load_after:.1f} at the end, "
             f"on {cores} cores.",
             "Checked by the run: each of our outputs answers as ours by default; served from ours by default, "
             "with no `/data` granted, the http app answers " + " and ".join(f"`{body}`" for body in HTTP_ANSWER) + "."]  # fmt: skip
    table = "\n".join([*rows, "", *wheel_rows, "", "\n\n".join(notes)])
    RESULTS.write_text(f"# Output sizes\n\n{__doc__.split(chr(10) + chr(10))[0]}\n\n{table}\n")
    docs = DOCS.read_text()
    before, rest = docs.split(START, 1)
    DOCS.write_text(f"{before}{START}\n{table}\n{END}{rest.split(END, 1)[1]}")
    print(table)
    return 0
