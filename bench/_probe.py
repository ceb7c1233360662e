"""Measurements that need a process of their own; run by bench/run.py, one JSON object on stdout.

    python bench/_probe.py startup COMPONENT EXPORT REPEAT
        Load COMPONENT (default Wasmtime config, code cache on), then REPEAT
        times: fresh store + WASI + instantiate + first call of EXPORT.
    python bench/_probe.py call COMPONENT [--init INIT] [--dir HOST::GUEST] CALL...
        One fresh instance (DIR preopened); optionally call INIT first; then each CALL
        (`name` or `name=arg` for one string argument). Records each result,
        or the trap's first line, and what the guest printed.
    python bench/_probe.py cache-hit PROJECT_ROOT CONFIG_JSON
        Time the Hatch hook's `initialize` on a snapshot cache hit, in a
        fresh process (imports included in a separate figure).
    python bench/_probe.py wat2wasm WAT WASM
        Compile a WAT (component) text file.
    python bench/_probe.py phases COMPONENT DATA_DIR OUTPUT
        One pre_initialize with its stages timed (imports timed too).
    python bench/_probe.py compare BASE VARIANT...
        For each VARIANT (a rebuild of BASE): which sections of its core modules
        and of the component itself differ from BASE's, byte for byte.
    python bench/_probe.py profile COMPONENT DATA_DIR TOP
        cProfile one pre_initialize of COMPONENT (init `component-init`,
        DATA_DIR at /data) and summarize the top costs.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

_STARTED = time.perf_counter()


def _engine():  # type: ignore[no-untyped-def]
    import wasmtime

    config = wasmtime.Config()
    config.cache = True  # what an application embedding the component would do
    return wasmtime.Engine(config)


def _instance(engine, component, printed: list[str], dirs: list[str] = ()):  # type: ignore[no-untyped-def]
    import wasmtime
    from wasmtime import component as cm

    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.stdout_custom = lambda data: printed.append(bytes(data).decode("utf-8", "replace"))
    wasi.stderr_custom = lambda data: printed.append(bytes(data).decode("utf-8", "replace"))
    for spec in dirs:
        host, _, guest = spec.partition("::")
        wasi.preopen_dir(host, guest or host, False)
    store.set_wasi(wasi)
    linker = cm.Linker(engine)
    linker.add_wasip2()
    return store, linker.instantiate(store, component)


def startup(path: str, export: str, repeat: int) -> dict[str, object]:
    from wasmtime import component as cm

    engine = _engine()
    with open(path, "rb") as f:
        data = f.read()
    started = time.perf_counter()
    component = cm.Component(engine, data)
    load = time.perf_counter() - started
    samples = []
    result = None
    for _ in range(repeat):
        printed: list[str] = []
        started = time.perf_counter()
        store, instance = _instance(engine, component, printed)
        func = instance.get_func(store, export)
        assert func is not None, f"no export {export}"
        result = func(store)
        samples.append(time.perf_counter() - started)
        del store, instance, func
    return {"load": load, "median": statistics.median(samples), "samples": samples, "result": repr(result)}


def call(path: str, init: str | None, dirs: list[str], calls: list[str]) -> dict[str, object]:
    import wasmtime
    from wasmtime import component as cm

    engine = _engine()
    with open(path, "rb") as f:
        component = cm.Component(engine, f.read())
    printed: list[str] = []
    store, instance = _instance(engine, component, printed, dirs)
    results = []
    for spec in ([init] if init else []) + calls:
        name, sep, arg = spec.partition("=")
        func = instance.get_func(store, name)
        if func is None:
            results.append({"call": spec, "ok": False, "error": f"no export `{name}`"})
            continue
        try:
            value = func(store, arg) if sep else func(store)
            results.append({"call": spec, "ok": True, "value": value, "printed": "".join(printed)})
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            first = next((line.strip() for line in str(e).splitlines() if line.strip()), str(e))
            trap = " ".join(str(e).split("Caused by:")[-1].split()) if "Caused by:" in str(e) else ""
            results.append({"call": spec, "ok": False, "error": first, "trap": trap[:200], "printed": "".join(printed)})
            # After a trap the instance refuses every further call: go on with a fresh one.
            printed = []
            store, instance = _instance(engine, component, printed, dirs)
        printed.clear()
    exports = sorted(component.type.exports(engine)) if hasattr(component, "type") else []
    return {"results": results, "exports": [str(e) for e in exports]}


def cache_hit(root: str, config_json: str) -> dict[str, object]:
    imported_at = time.perf_counter()
    from hatch_component_init.hatch.component_init import ComponentInitBuildHook

    import_time = time.perf_counter() - imported_at
    config = json.loads(config_json)
    samples = []
    for _ in range(3):
        hook = ComponentInitBuildHook(root, config, None, None, root, "wheel")
        build_data: dict[str, object] = {"force_include": {}, "build_hooks": ("component-init",), "artifacts": []}
        started = time.perf_counter()
        hook.initialize("standard", build_data)
        samples.append(time.perf_counter() - started)
        included = build_data["force_include"]
    return {
        "first": samples[0],
        "best": min(samples),
        "import": import_time,
        "process": time.perf_counter() - _STARTED,
        "included": included,
        "wasmtime_imported": "wasmtime" in sys.modules,
    }


def profile(path: str, data_dir: str, top: int) -> dict[str, object]:
    import cProfile
    import pstats
    from pathlib import Path

    from hatch_component_init import WasiOptions, pre_initialize

    with open(path, "rb") as f:
        data = f.read()
    wasi = WasiOptions(dirs=((Path(data_dir), "/data"),))
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    output = pre_initialize(data, wasi=wasi, on_output=lambda stream, chunk: None)
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        ours = "hatch_component_init" in filename
        native = filename.endswith("_bindings.py") or filename == "~"
        if not (ours or native) or cumtime < 0.02 * total:
            continue
        where = filename.split("hatch_component_init/")[-1] if ours else filename.rsplit("/", 1)[-1]
        rows.append({"func": f"{where}:{line}({func})" if filename != "~" else func, "calls": calls,
                     "tottime": tottime, "cumtime": cumtime})  # fmt: skip
    rows.sort(key=lambda r: -r["cumtime"])
    by_self = sorted(rows, key=lambda r: -r["tottime"])[:top]
    return {"total": total, "output": len(output), "cumulative": rows[: top * 2], "self": by_self}


#: Core section ids by name, for the report of what a rebuild changed.
_CORE_SECTIONS = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
                  7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount", 13: "tag"}  # fmt: skip


def _sections(raw: memoryview, sections: list) -> list[tuple[int, bytes]]:  # type: ignore[type-arg]
    return [(s.id, bytes(raw[s.start : s.end])) for s in sections]


def compare(base: str, variants: list[str]) -> dict[str, object]:
    """Section-by-section comparison of rebuilt components with the base build (no Wasmtime)."""
    from hatch_component_init.wasm.component import core_modules, parse_component

    def view(path: str):  # type: ignore[no-untyped-def]
        with open(path, "rb") as f:
            c = parse_component(memoryview(f.read()), with_data=False)
        # The component's own sections other than core modules (1) and nested components (4),
        # whose modules are compared one by one below.
        own = [(s.id, bytes(c.raw[s.start : s.end])) for s in c.sections if s.id not in (1, 4)]
        return own, [_sections(m.raw, m.sections) for m in core_modules(c)]

    base_own, base_modules = view(base)
    out = {}
    for path in variants:
        own, modules = view(path)
        code_bytes = 0
        differ: list[str] = []  # "module I: SECTION" for each differing section
        same_shape = len(modules) == len(base_modules)
        for i, (a, b) in enumerate(zip(base_modules, modules)):
            if [sid for sid, _ in a] != [sid for sid, _ in b]:
                same_shape = False
                differ.append(f"module {i}: section list")
                continue
            for (sid, x), (_, y) in zip(a, b):
                if sid == 10:
                    code_bytes += len(y)
                if x != y:
                    differ.append(f"module {i}: {_CORE_SECTIONS.get(sid, sid)}")
        code_same = same_shape and not any(d.endswith((": code", "section list")) for d in differ)
        out[path] = {
            "modules": len(modules),
            "code_identical": code_same,
            "code_bytes": code_bytes,
            "data_differs": any(d.endswith(": data") for d in differ),
            "differ": differ,
            "component_sections_differ": own != base_own,
        }
    return out


def phases(path: str, data_dir: str, output: str) -> dict[str, object]:
    """One pre_initialize of COMPONENT with its stages timed (no profiler, so no profiler overhead)."""
    started = time.perf_counter()
    import importlib
    from pathlib import Path

    from wasmtime import component as cm

    api = importlib.import_module("hatch_component_init.api")
    imported = time.perf_counter() - started
    spent: dict[str, float] = {}

    def timed(module: object, name: str, label: str) -> None:
        original = getattr(module, name, None)
        if not callable(original):
            return
        depth = [0]

        def wrapper(*args: object, **kwargs: object) -> object:
            # Only the outermost call counts: a recursive function (one call per nested
            # component) reaches this wrapper again through the patched name.
            depth[0] += 1
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[label] = spent.get(label, 0.0) + time.perf_counter() - t

        setattr(module, name, wrapper)

    # Stages as api.pre_initialize calls them; a name missing in this version is simply not timed.
    timed(api, "parse_component", "parse")
    timed(api, "find_init_removal", "find init export")
    timed(api, "instrument", "instrument")
    timed(api, "run_init", "run (total)")
    timed(api, "rewrite_component", "rewrite (total)")
    timed(api, "validate_component", "validate output")
    # Each name is patched in the module that looks it up at call time (a `from x import f` copy
    # is looked up in the importing module, so that is where the wrapper must go).
    runtime = importlib.import_module("hatch_component_init.runtime")
    if callable(getattr(runtime, "_compile", None)):
        timed(runtime, "_compile", "run: load instrumented code (cache)")
    else:  # no compile helper in this version: every Component() counts, the output's validation too
        timed(cm, "Component", "run: load instrumented code (cache)")
    timed(runtime, "read_back", "run: read state back (accessor calls)")
    timed(runtime, "_define_data_modules", "run: compile the data modules")
    for module_name, name, label in (
        ("hatch_component_init.readback", "_call_resets", "run: reset WASI handles"),
        ("hatch_component_init.rewrite", "module_segments", "rewrite: encode data segments"),
    ):
        try:
            timed(importlib.import_module(module_name), name, label)
        except ImportError:
            pass
    with open(path, "rb") as f:
        data = f.read()
    wasi = api.WasiOptions(dirs=((Path(data_dir), "/data"),))
    # As the CLI does it: the output is written (temp file, fsync) while it is validated.
    from hatch_component_init.fileio import PendingWrite

    t = time.perf_counter()
    result, check = api.pre_initialize_unchecked(data, wasi=wasi, on_output=lambda stream, chunk: None)
    total = time.perf_counter() - t
    t = time.perf_counter()
    pending = PendingWrite(Path(output), result)
    check()
    pending.commit()
    write = time.perf_counter() - t
    return {"import": imported, "total": total, "write": write, "stages": spent}


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "startup":
        result = startup(args[0], args[1], int(args[2]))
    elif command == "call":
        path, rest = args[0], args[1:]
        init, dirs = None, []
        while rest[:1] in (["--init"], ["--dir"]):
            if rest[0] == "--init":
                init = rest[1]
            else:
                dirs.append(rest[1])
            rest = rest[2:]
        result = call(path, init, dirs, rest)
    elif command == "cache-hit":
        result = cache_hit(args[0], args[1])
    elif command == "wat2wasm":
        import wasmtime

        with open(args[0], encoding="utf-8") as f:
            data = bytes(wasmtime.wat2wasm(f.read()))
        with open(args[1], "wb") as f:
            f.write(data)
        result = {"size": len(data)}
    elif command == "phases":
        result = phases(args[0], args[1], args[2])
    elif command == "compare":
        result = compare(args[0], args[1:])
    elif command == "profile":
        result = profile(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown probe {command}")
    # The last line is ours: anything printed before it (a hook's messages) is ignored.
    sys.stdout.write("\n" + json.dumps(result, default=repr) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
