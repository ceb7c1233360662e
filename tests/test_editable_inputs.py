"""What makes an editable install's loader rebuild its in-tree snapshot: each input, and only the inputs.

`editable.refresh` rebuilds when the hook's `editable_inputs()` (the
snapshot cache's key of the options, `dirs` and `host` module, plus the
component's digest) differs from the record the last build kept. Here a
WAT component without componentize-py is built editable in process; then
exactly one thing changes and `refresh` must (or must not) rebuild, and the
snapshot in the tree must then be the one the new inputs make.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime
from hatch_support import COMPONENTIZE_HOOK, DESTINATION, DEV_MODE_DIRS, RAW_COMPONENT, build_in_process, make_project
from wasmtime import component as cm

from wat_support import engine, printing_component, wat

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

#: Init stores n + seed() (`init-with`) or 1000 + seed() (`other-init`); `answer` returns it.
#: `seed` is the build's host function (the `host` option); nothing after init calls it.
SEEDED = wat(
    """
(component
  (import "example:build/seed" (instance $h (export "seed" (func (result u32)))))
  (alias export $h "seed" (func $seed))
  (core func $seed (canon lower (func $seed)))
  (core module $m
    (import "" "seed" (func $seed (result i32)))
    (global $g (mut i32) (i32.const 0))
    (func (export "init-with") (param i32) (global.set $g (i32.add (local.get 0) (call $seed))))
    (func (export "other-init") (global.set $g (i32.add (i32.const 1000) (call $seed))))
    (func (export "answer") (result i32) (global.get $g)))
  (core instance $i (instantiate $m (with "" (instance (export "seed" (func $seed))))))
  (func (export "init-with") (param "n" u32) (canon lift (core func $i "init-with")))
  (func (export "other-init") (canon lift (core func $i "other-init")))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""
)

BUILD_HOST = """\
from pathlib import Path

SEED = 10
PAUSE = Path(__file__).with_name("pause")


def define(linker):
    if PAUSE.is_file():  # the lock test: say that a rebuild runs, then wait for the test's go-ahead
        import os, time

        with open(Path(__file__).with_name("rebuilds.log"), "a") as log:
            log.write(f"{os.getpid()}\\n")
        go = Path(__file__).with_name("go")
        for _ in range(6000):
            if go.exists():
                break
            time.sleep(0.01)
    with linker.root() as root, root.add_instance("example:build/seed") as inst:
        inst.add_func("seed", lambda store: SEED)


def define_twenty(linker):
    with linker.root() as root, root.add_instance("example:build/seed") as inst:
        inst.add_func("seed", lambda store: 20)
"""

TABLE = f"""\
[tool.hatch.build.hooks.component-init]
component = "{RAW_COMPONENT}"
destination = "{DESTINATION}"
loader = "greeter_pkg/_component.py"
init-func = "init-with(1)"
dirs = {{ "data" = "/data" }}
env = {{ "A" = "1", "B" = "2" }}
host = "build_host:define"
timeout = 300
max-memory = 67108864
"""

REBUILT_FOR_OPTIONS = "rebuilt because the pre-init options, `dirs` or `host` module changed"


def editable(tmp_path: Path, before: str = "") -> tuple[Path, Path]:
    """The project, built editable, with the hook tables ``before`` ahead of ours; returns (root, the in-tree
    snapshot)."""
    project = make_project(tmp_path / "greeter", before + TABLE, SEEDED, wheel_options=DEV_MODE_DIRS)
    (project / "build_host.py").write_text(BUILD_HOST)
    build_in_process(project, version="editable")
    return project, project / DESTINATION


def refresh(project: Path, target: Path) -> str | None:
    from hatch_component_init.hatch.editable import refresh

    return refresh(str(project), str(target))


def answer(snapshot: bytes) -> tuple[int, bool]:
    """(what init stored, whether the init export is still there), without calling init or `seed`."""
    component = cm.Component(engine(), snapshot)
    store = wasmtime.Store(engine())
    linker = cm.Linker(engine())
    linker.add_wasip2()
    store.set_wasi(wasmtime.WasiConfig())
    linker.define_unknown_imports_as_traps(component)
    instance = linker.instantiate(store, component)
    get = instance.get_func(store, "answer")
    assert get is not None
    return int(get(store)), instance.get_func(store, "init-with") is not None


def option(old: str, new: str) -> Callable[[Path], None]:
    """Edit the `component-init` table: ``old`` (a whole line of TABLE, or "" to add ``new``) becomes ``new``."""

    def edit(project: Path) -> None:
        pyproject = project / "pyproject.toml"
        text = pyproject.read_text()
        if old:
            assert text.count(old + "\n") == 1, old
            text = text.replace(old + "\n", new + "\n" if new else "")
        else:
            text = text.replace('host = "build_host:define"\n', f'host = "build_host:define"\n{new}\n')
        pyproject.write_text(text)

    return edit


#: An `env` value changed: a pre-init option, which the answer (11) does not depend on.
ENV_CHANGED = option('env = { "A" = "1", "B" = "2" }', 'env = { "A" = "2", "B" = "2" }')


def write(relative: str, text: str) -> Callable[[Path], None]:
    def edit(project: Path) -> None:
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)

    return edit


def rename(old: str, new: str) -> Callable[[Path], None]:
    return lambda project: (project / old).rename(project / new)


def mkdir(relative: str) -> Callable[[Path], None]:
    return lambda project: (project / relative).mkdir()


def edit_host(project: Path) -> None:
    module = project / "build_host.py"
    module.write_text(module.read_text().replace("SEED = 10", "SEED = 30"))


def new_component(project: Path) -> None:
    (project / RAW_COMPONENT).write_bytes(wat(FIVE_HUNDRED_WAT))


#: SEEDED with init-with storing 500 + seed(): a new component file.
FIVE_HUNDRED_WAT = """
(component
  (import "example:build/seed" (instance $h (export "seed" (func (result u32)))))
  (alias export $h "seed" (func $seed))
  (core func $seed (canon lower (func $seed)))
  (core module $m
    (import "" "seed" (func $seed (result i32)))
    (global $g (mut i32) (i32.const 0))
    (func (export "init-with") (param i32) (global.set $g (i32.add (i32.const 500) (call $seed))))
    (func (export "answer") (result i32) (global.get $g)))
  (core instance $i (instantiate $m (with "" (instance (export "seed" (func $seed))))))
  (func (export "init-with") (param "n" u32) (canon lift (core func $i "init-with")))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""

#: (id, the change, what the rebuilt snapshot answers, or None to check only that it was rebuilt).
#: The built snapshot answers 1 + 10: init-with(1), seed() = 10.
REBUILDS: list[tuple[str, Callable[[Path], None], int | None]] = [
    ("init-func", option('init-func = "init-with(1)"', 'init-func = "other-init"'), 1010),
    ("init-arguments", option('init-func = "init-with(1)"', 'init-func = "init-with(2)"'), 12),
    ("init-func-default", option('init-func = "init-with(1)"', ""), None),  # component-init: a failed rebuild
    ("keep-init-func", option("", "keep-init-func = true"), 11),
    ("reset-first-call", option("", "reset-first-call = false"), 11),
    ("max-memory-changed", option("max-memory = 67108864", "max-memory = 134217728"), 11),
    ("max-memory-removed", option("max-memory = 67108864", ""), 11),
    ("env-value", option('env = { "A" = "1", "B" = "2" }', 'env = { "A" = "9", "B" = "2" }'), 11),
    ("env-name", option('env = { "A" = "1", "B" = "2" }', 'env = { "Z" = "1", "B" = "2" }'), 11),
    ("env-added", option('env = { "A" = "1", "B" = "2" }', 'env = { "A" = "1", "B" = "2", "C" = "3" }'), 11),
    ("env-removed", option('env = { "A" = "1", "B" = "2" }', 'env = { "A" = "1" }'), 11),
    # The guest can observe the order of its environment: the order is an input (hatch/keys.py).
    ("env-reordered", option('env = { "A" = "1", "B" = "2" }', 'env = { "B" = "2", "A" = "1" }'), 11),
    ("dirs-file-edited", write("data/greeting.txt", "Bonjour"), 11),
    ("dirs-file-added", write("data/more/extra.txt", "x"), 11),
    ("dirs-file-renamed", rename("data/greeting.txt", "data/salutation.txt"), 11),
    ("dirs-empty-dir-added", mkdir("data/empty"), 11),
    ("dirs-guest-path", option('dirs = { "data" = "/data" }', 'dirs = { "data" = "/files" }'), 11),
    ("dirs-host-dir", option('dirs = { "data" = "/data" }', 'dirs = { "wit" = "/data" }'), 11),
    ("host-module-edited", edit_host, 31),
    ("host-function", option('host = "build_host:define"', 'host = "build_host:define_twenty"'), 21),
]
# `wasi = false` needs a table without `dirs` and `env`: see test_wasi_counts.


@pytest.mark.parametrize(("change", "expected"), [pytest.param(c, e, id=i) for i, c, e in REBUILDS])
def test_each_input_of_the_snapshot_rebuilds_it(tmp_path: Path, change: Callable[[Path], None], expected: int | None) -> None:
    from hatch_component_init.errors import RebuildError

    project, target = editable(tmp_path)
    built = target.read_bytes()
    assert answer(built) == (11, False)
    assert refresh(project, target) is None  # just built: nothing changed

    change(project)
    if expected is None:
        # Nothing to answer: init-func's default, `component-init`, is not exported; the rebuild was tried.
        with pytest.raises(RebuildError, match="the pre-init options, `dirs` or `host` module changed"):
            refresh(project, target)
        assert target.read_bytes() == built
        return
    assert refresh(project, target) == REBUILT_FOR_OPTIONS
    assert answer(target.read_bytes())[0] == expected
    # The record now holds the new inputs: loading again does not rebuild.
    assert refresh(project, target) is None


def test_keep_init_func_is_in_the_rebuilt_snapshot(tmp_path: Path) -> None:
    project, target = editable(tmp_path)
    option("", "keep-init-func = true")(project)
    assert refresh(project, target) == REBUILT_FOR_OPTIONS
    assert answer(target.read_bytes()) == (11, True)


def test_wasi_counts(tmp_path: Path) -> None:
    project, target = editable(tmp_path)
    option('dirs = { "data" = "/data" }', "")(project)
    option('env = { "A" = "1", "B" = "2" }', "")(project)
    assert refresh(project, target) == REBUILT_FOR_OPTIONS
    assert refresh(project, target) is None
    option("", "wasi = false")(project)
    assert refresh(project, target) == REBUILT_FOR_OPTIONS
    assert answer(target.read_bytes())[0] == 11
    assert refresh(project, target) is None


def test_a_new_component_file_rebuilds_it(tmp_path: Path) -> None:
    project, target = editable(tmp_path)
    new_component(project)
    assert refresh(project, target) == "rebuilt because `build/greeter.wasm` changed"
    assert answer(target.read_bytes())[0] == 510
    assert refresh(project, target) is None


def touch_data(project: Path) -> None:
    import os

    os.utime(project / "data" / "greeting.txt", (1_000_000_000, 1_000_000_000))
    os.utime(project / "data", (1_000_000_000, 1_000_000_000))


def rewrite_same(project: Path) -> None:
    for name in ("data/greeting.txt", "build_host.py", RAW_COMPONENT):
        (project / name).write_bytes((project / name).read_bytes())


def comment(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("timeout = 300\n", "# the limit\ntimeout = 300\n"))


#: Changes that cannot change the snapshot: the loader must not rebuild (and must keep serving what is there).
NO_REBUILD: list[tuple[str, Callable[[Path], None]]] = [
    # A timeout can only stop a run, never change a finished one (hatch/keys.py's snapshot_key).
    ("timeout", option("timeout = 300", "timeout = 120")),
    ("timeout-removed", option("timeout = 300", "")),
    # The code cache only keeps the compiled instrumented component.
    ("cache", option("", "cache = false")),
    ("precompile", option("", "precompile = true")),
    ("timestamps-only", touch_data),
    ("same-bytes-rewritten", rewrite_same),
    ("pyproject-comment", comment),
    ("env-same-pairs-as-a-table", option('env = { "A" = "1", "B" = "2" }', "env.A = \"1\"\nenv.B = \"2\"")),
    ("file-outside-dirs", write("notes.txt", "not an input")),
]


@pytest.mark.parametrize("change", [pytest.param(c, id=i) for i, c in NO_REBUILD])
def test_what_is_not_an_input_does_not_rebuild(tmp_path: Path, change: Callable[[Path], None]) -> None:
    from hatch_component_init.hatch.tree import ledger_path

    project, target = editable(tmp_path)
    built, record = target.read_bytes(), ledger_path(target).read_bytes()
    change(project)
    assert refresh(project, target) is None
    assert (target.read_bytes(), ledger_path(target).read_bytes()) == (built, record)


def test_the_inputs_key_covers_each_input_on_its_own(tmp_path: Path) -> None:
    """`editable_inputs()` itself: every rebuilding change above gives a key of its own, and none is the base."""
    from hatch_component_init.hatch.editable import _Collector, _hooks

    def inputs(project: Path) -> dict[str, str]:
        hooks, _ = _hooks(project, _Collector())
        return hooks["component-init"].editable_inputs()  # type: ignore[no-any-return]

    keys = {}
    for name, change, _ in REBUILDS:
        project = make_project(tmp_path / name, TABLE, SEEDED, wheel_options=DEV_MODE_DIRS)
        (project / "build_host.py").write_text(BUILD_HOST)
        base = inputs(project)
        assert inputs(project) == base
        change(project)
        changed = inputs(project)
        assert changed["app"] == base["app"], name
        keys[name] = changed["init"]
        assert keys[name] != base["init"], name
    assert len(set(keys.values())) == len(keys)


#: Refreshes the editable tree given on the command line, as a loader does, and prints what it did.
REFRESH = """
import sys
from pathlib import Path
Path(sys.argv[3]).write_text("refreshing")
from hatch_component_init.hatch.editable import refresh
print(repr(refresh(sys.argv[1], sys.argv[2])))
"""


def test_concurrent_loads_take_turns_and_rebuild_once(tmp_path: Path) -> None:
    """Two loader processes find the same change: the lock makes the second wait, then find it done.

    The first rebuild waits inside the host function (the project's own code) until the test lets
    it go; by then the second process has had time to read the stale record. Without the lock it
    would rebuild too (and enter the host function a second time)."""
    project, target = editable(tmp_path)
    (project / "pause").write_text("")
    option('env = { "A" = "1", "B" = "2" }', 'env = { "A" = "1", "B" = "3" }')(project)
    log = project / "rebuilds.log"

    def start(marker: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", REFRESH, str(project), str(target), str(tmp_path / marker)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def wait_for(done: Callable[[], bool]) -> None:
        """Until ``done()`` (a guard against hanging, not a measure: 10 minutes)."""
        for _ in range(60_000):
            if done():
                return
            time.sleep(0.01)

    first = start("first")
    try:
        # The first rebuild is in the host function, holding the lock.
        wait_for(lambda: log.is_file() and bool(log.read_text().strip()) or first.poll() is not None)
        assert first.poll() is None, first.communicate()
        second = start("second")
        wait_for(lambda: (tmp_path / "second").exists() or second.poll() is not None)
        try:
            second.wait(timeout=3)  # blocked on the lock; without it, it reads the stale record and rebuilds
        except subprocess.TimeoutExpired:
            pass
    finally:
        (project / "go").write_text("")
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    results = [stdout.strip().splitlines()[-1] for stdout, _ in outputs]
    assert results == [repr(REBUILT_FOR_OPTIONS), "None"], outputs
    assert len(log.read_text().split()) == 1  # one rebuild ran init
    assert answer(target.read_bytes())[0] == 11
    (project / "pause").unlink()
    assert refresh(project, target) is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_record_rebuilds_the_snapshot_and_says_so(tmp_path: Path, damage: str) -> None:
    from hatch_component_init.hatch.tree import ledger_path

    project, target = editable(tmp_path)
    ledger = ledger_path(target)
    text = ledger.read_bytes()
    # "flip": a record that still parses, with one of its digits changed.
    digit = text.index(b'"sha256": "') + len(b'"sha256": "')
    changed = {
        "flip": text[:digit] + (b"0" if text[digit : digit + 1] != b"0" else b"1") + text[digit + 1 :],
        "truncate": text[: len(text) // 2],
        "empty": b"",
    }[damage]
    ledger.write_bytes(changed)
    assert refresh(project, target) == f"rebuilt because its record in the editable cache, `{ledger}`, was damaged (removed)"
    assert answer(target.read_bytes())[0] == 11
    assert refresh(project, target) is None  # a fresh, intact record


def test_clean_leaves_a_file_whose_record_is_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hatch_component_init.hatch.component_init import ComponentInitBuildHook
    from hatch_component_init.hatch.tree import ledger_path

    project, target = editable(tmp_path)
    ledger = ledger_path(target)
    ledger.write_bytes(ledger.read_bytes().replace(b'"sha256": "', b'"sha256": "0', 1))
    capsys.readouterr()
    config = {"component": RAW_COMPONENT, "destination": DESTINATION}
    ComponentInitBuildHook(str(project), config, None, None, str(project), "wheel").clean(["editable"])
    warnings = [line for line in capsys.readouterr().err.splitlines() if "damaged" in line]
    assert len(warnings) == 1 and str(ledger) in warnings[0] and DESTINATION in warnings[0]
    assert target.exists() and not ledger.exists()


def test_the_line_a_rebuild_prints_names_the_snapshot_the_steps_and_every_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, target = editable(tmp_path)
    new_component(project)
    ENV_CHANGED(project)
    capsys.readouterr()
    why = "`build/greeter.wasm` changed and the pre-init options, `dirs` or `host` module changed"
    started = time.perf_counter()
    assert refresh(project, target) == f"rebuilt because {why}"
    took = time.perf_counter() - started
    (line,) = capsys.readouterr().err.splitlines()
    start = f"hatch-component-init: rebuilt {DESTINATION} (pre-init) because {why}, in "
    assert line.startswith(start) and line.endswith(" s"), line
    # The time the rebuild took, to a tenth of a second: no more than the call to it took.
    assert 0 <= float(line[len(start) : -len(" s")]) <= round(took, 1) + 0.05, (line, took)


def test_the_line_reaches_a_buffered_stderr_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that replaced stderr with a buffered file (a log) has the line before the load goes on."""
    import io

    project, target = editable(tmp_path)
    edit_host(project)
    log = tmp_path / "stderr.log"
    with (
        open(log, "wb", buffering=0) as raw,
        io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16)) as buffered,
        monkeypatch.context() as patch,  # undone before the file is closed
    ):
        patch.setattr(sys, "stderr", buffered)
        assert refresh(project, target) == REBUILT_FOR_OPTIONS
        assert log.read_text().startswith(f"hatch-component-init: rebuilt {DESTINATION} (pre-init) because")


def componentize_py_writes_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stands in for componentize-py's run, writing SEEDED: the hook's own work around the run still happens."""
    from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

    def run(self: ComponentizePyBuildHook, installed_version: str) -> None:
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        self.output_path.write_bytes(SEEDED)

    monkeypatch.setattr(ComponentizePyBuildHook, "_run_componentize_py", run)


APP_CHANGED = "the app changed (a file on its python path, its WIT or its site-packages)"
COMPONENTIZE_PY = f"{COMPONENTIZE_HOOK}cache = false\n\n"


@pytest.mark.parametrize(
    ("change", "steps", "why"),
    [
        pytest.param(write("app.py", "# edited\n"), "componentize-py, then pre-init", APP_CHANGED, id="app"),
        # Only the build's output folder, `dist`, is left out of the app: a folder spelled otherwise is the app's.
        pytest.param(
            write("DIST/helper.py", ""), "componentize-py, then pre-init", APP_CHANGED, id="app-folder-named-DIST"
        ),
        pytest.param(
            ENV_CHANGED,
            "pre-init",
            "the pre-init options, `dirs` or `host` module changed",
            id="pre-init-options",
        ),
    ],
)
def test_with_componentize_py_the_line_says_whether_the_app_was_built_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[Path], None],
    steps: str,
    why: str,
) -> None:
    componentize_py_writes_seeded(monkeypatch)
    project, target = editable(tmp_path, COMPONENTIZE_PY)
    assert refresh(project, target) is None
    change(project)
    capsys.readouterr()
    assert refresh(project, target) == f"rebuilt because {why}"
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"hatch-component-init: rebuilt {DESTINATION} ({steps}) because {why}, in "), line
    assert answer(target.read_bytes())[0] == 11
    assert refresh(project, target) is None


def test_a_component_gone_when_read_names_the_hooks_that_ran_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hatch_component_init.errors import RebuildError

    componentize_py_writes_seeded(monkeypatch)
    project, target = editable(tmp_path, COMPONENTIZE_PY)
    removed_while_rebuilding(project, monkeypatch)
    write("app.py", "# edited\n")(project)
    with pytest.raises(RebuildError, match="Build hooks that ran before `component-init`: `componentize-py`. "):
        refresh(project, target)


def test_the_projects_other_hooks_do_not_stop_a_rebuild(tmp_path: Path) -> None:
    """A hook of another plugin listed before ours (hatchling's `version`) is not ours to run again."""
    project, target = editable(tmp_path, '[tool.hatch.build.hooks.version]\npath = "greeter_pkg/_version.py"\n\n')
    ENV_CHANGED(project)
    assert refresh(project, target) == REBUILT_FOR_OPTIONS
    assert answer(target.read_bytes())[0] == 11


def test_a_project_without_requires_python_rebuilds_too(tmp_path: Path) -> None:
    """The rebuild is no wheel: the hooks' check of a wheel's `requires-python` has no wheel to look at."""
    project, target = editable(tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('requires-python = ">=3.11"\n', ""))
    ENV_CHANGED(project)
    assert refresh(project, target) == REBUILT_FOR_OPTIONS
    assert refresh(project, target) is None


def test_a_snapshot_without_a_record_is_rebuilt_and_says_why(tmp_path: Path) -> None:
    from hatch_component_init.hatch.tree import ledger_path

    project, target = editable(tmp_path)
    ledger_path(target).unlink()
    assert refresh(project, target) == "rebuilt because there is no record of what the snapshot in the tree was made from"
    assert refresh(project, target) is None


def test_with_init_func_false_a_rebuild_copies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project, target = editable(tmp_path)
    option('init-func = "init-with(1)"', "init-func = false")(project)
    for line in ('dirs = { "data" = "/data" }', 'env = { "A" = "1", "B" = "2" }', 'host = "build_host:define"'):
        option(line, "")(project)  # options of the init run, which `init-func = false` refuses
    option("timeout = 300", "")(project)
    option("max-memory = 67108864", "")(project)
    capsys.readouterr()
    assert refresh(project, target) == REBUILT_FOR_OPTIONS
    assert f"rebuilt {DESTINATION} (copy) because" in capsys.readouterr().err
    assert target.read_bytes() == (project / RAW_COMPONENT).read_bytes()


#: Init writes two lines to stderr, then traps.
PRINTS_THEN_TRAPS = printing_component(
    "stderr",
    """(data (i32.const 1024) "first line\\nsecond line\\n")
    (func (export "init")
      (call $write (call $get-stderr) (i32.const 1024) (i32.const 23) (i32.const 16))
      unreachable)""",
)


def prints_then_traps(project: Path, _: pytest.MonkeyPatch) -> None:
    (project / RAW_COMPONENT).write_bytes(PRINTS_THEN_TRAPS)
    option('init-func = "init-with(1)"', 'init-func = "component-init"')(project)


def removed_while_rebuilding(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the component passes the hook's checks, then is gone when it is read (another process
    removed it)."""
    from hatch_component_init.hatch.component_init import ComponentInitBuildHook

    validate = ComponentInitBuildHook.validate

    def then_removed(self: ComponentInitBuildHook) -> None:
        validate(self)
        (project / RAW_COMPONENT).unlink()

    monkeypatch.setattr(ComponentInitBuildHook, "validate", then_removed)


def hooks_not_registered(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hatch-component-init importable, but hatchling does not see its entry point (e.g. only on PYTHONPATH)."""
    from hatch_component_init.hatch import hooks

    monkeypatch.setattr(hooks, "hatch_register_build_hook", lambda: [])
    edit_host(project)


#: (id, the change (given the test's monkeypatch), the reason the paragraph gives, the guest's lines, what the
#: error says). The guest's lines come first, indented as the build shows them; the error is the last line.
FAILED_REBUILDS: list[tuple[str, Callable[[Path, pytest.MonkeyPatch], None], str, list[str], str]] = [
    (
        "missing-init-export",
        lambda project, _: option('init-func = "init-with(1)"', 'init-func = "missing-export"')(project),
        "the pre-init options, `dirs` or `host` module changed",
        [],
        "no function export `missing-export`",
    ),
    (
        "guest-output",
        prints_then_traps,
        "`build/greeter.wasm` changed and the pre-init options, `dirs` or `host` module changed",
        ["  [guest stderr] first line", "  [guest stderr] second line"],
        "(the guest's output above says why)",
    ),
    (
        "pyproject-unreadable",
        lambda project, _: write("pyproject.toml", "[project\n")(project),
        "its inputs could not be read",
        [],
        "Expected ']' at the end of a table declaration (at line 1, column 9)",
    ),
    (
        "component-removed-meanwhile",
        lambda project, monkeypatch: (removed_while_rebuilding(project, monkeypatch), new_component(project)),
        "`build/greeter.wasm` changed",
        [],
        "Build hooks that ran before `component-init`: none. Build it first",
    ),
    (
        "hooks-not-registered",
        hooks_not_registered,
        "its inputs could not be read",
        [],
        "hatchling finds no build hook `component-init`: install hatch-component-init here",
    ),
]


@pytest.mark.parametrize(
    ("change", "why", "guest", "error"), [pytest.param(c, w, g, e, id=i) for i, c, w, g, e in FAILED_REBUILDS]
)
def test_a_failed_rebuild_is_one_paragraph_then_the_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Path, pytest.MonkeyPatch], None],
    why: str,
    guest: list[str],
    error: str,
) -> None:
    from hatch_component_init.errors import RebuildError

    project, target = editable(tmp_path)
    built = target.read_bytes()
    change(project, monkeypatch)
    with pytest.raises(RebuildError) as raised:
        refresh(project, target)
    paragraph, *details = str(raised.value).split("\n")
    assert paragraph == (
        f"Rebuilding `{DESTINATION}` for this editable install failed ({why}). `load()` loaded nothing and "
        f"`{DESTINATION}` is still the last snapshot that was built; fix the error below and load again, or set "
        "HATCH_COMPONENT_INIT_REBUILD=0 to load that snapshot as it is."
    )
    # Only the guest's own lines come before the error, none of the build's progress lines.
    assert details[: len(guest)] == guest, details
    assert not [line for line in details[len(guest) :] if line.startswith("  ")], details
    assert error in details[-1], details
    assert details[-1] == details[-1].strip()
    assert target.read_bytes() == built


def test_a_failure_without_a_message_is_the_paragraph_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare `assert` of ours fails with an empty message: the error ends with the paragraph, no empty line."""
    from hatch_component_init.errors import RebuildError
    from hatch_component_init.hatch.component_init import ComponentInitBuildHook

    project, target = editable(tmp_path)

    def bare_assert(self: ComponentInitBuildHook) -> dict[str, str]:
        raise AssertionError

    monkeypatch.setattr(ComponentInitBuildHook, "editable_inputs", bare_assert)
    with pytest.raises(RebuildError) as raised:
        refresh(project, target)
    assert str(raised.value).endswith("to load that snapshot as it is."), str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_snapshot_outside_the_project_is_named_by_its_path(tmp_path: Path) -> None:
    from hatch_component_init.hatch.editable import _shown

    (tmp_path / "project").mkdir()
    assert _shown(tmp_path / "project" / "pkg" / "app.wasm", str(tmp_path / "project")) == "pkg/app.wasm"
    assert _shown(tmp_path / "elsewhere.wasm", str(tmp_path / "project")) == str(tmp_path / "elsewhere.wasm")


def test_the_rebuilds_application_keeps_lines_and_aborts_with_our_error() -> None:
    from hatch_component_init.errors import RebuildError
    from hatch_component_init.hatch.editable import _Collector

    app = _Collector()
    assert app.verbosity == 0
    app.display_info("one")
    app.display_warning("  two")
    app.display_debug("not kept")
    assert app.lines == ["one", "  two"]
    with pytest.raises(RebuildError, match="^stop$"):
        app.abort("stop")
    safe = app.get_safe_application()
    safe.display_info("three")
    assert app.lines[-1] == "three"
