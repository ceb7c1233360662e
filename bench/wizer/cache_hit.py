"""The Hatch hook's snapshot-cache hit on the 18 MB component, in a fresh process."""

from __future__ import annotations

import json
import shutil

from .common import Bench, WORK, log, median, probe


def run(bench: Bench) -> None:
    r = bench.results
    log("Hatch hook: snapshot cache hit on the 18 MB component")
    project = WORK / "hook-project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "build").mkdir(parents=True)
    shutil.copyfile(bench.app, project / "build" / "app.wasm")
    shutil.copytree(bench.data, project / "data")
    shutil.rmtree(WORK / "hook-cache", ignore_errors=True)
    # A cache dir of its own, emptied here: the miss below fills it from scratch.
    env = bench.env | {"HATCH_COMPONENT_INIT_CACHE_DIR": str(WORK / "hook-cache")}
    config = json.dumps({"component": "build/app.wasm", "destination": "pkg/app.wasm", "dirs": {"data": "/data"}})
    try:
        first = probe(env, "cache-hit", str(project), config)  # its first call is the miss that fills it
    except (RuntimeError, ImportError) as e:
        r.cache_hit = {"error": str(e)[-800:]}
        return
    runs = [probe(env, "cache-hit", str(project), config) for _ in range(bench.rounds)]
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
