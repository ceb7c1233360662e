"""Editable installs rebuild on load: a real `pip install -e` of the greeter, then hosts in fresh processes.

Each test installs the project (its own copy) into a throw-away venv that
sees the test venv's packages (hatch-component-init, componentize-py,
wasmtime) through a `.pth` file, without build isolation, so that the build
and the loads share one environment as in a developer's venv. Each test then
edits the app and loads it in new host processes, never reinstalling. The installs share their
hook caches, so only the first runs componentize-py on the unedited app.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import BUILDS_ENV
from hatch_support import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_HOOK,
    DESTINATION,
    DEV_MODE_DIRS,
    make_project,
)

REBUILT = "hatch-component-init: rebuilt greeter_pkg/greeter.wasm"
#: Both hooks, as the other hook tests configure them, and the loader.
HOOKS = COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK + 'loader = "greeter_pkg/_component.py"\n'

FORCE_INCLUDE = '\n\n[tool.hatch.build.targets.wheel.force-include]\n"data" = "greeter_pkg/data"\n'

#: The host: loads through the generated loader, greets Ada, reports the answer and how it loaded.
HOST = """
import json, wasmtime
from wasmtime.component import Linker
from greeter_pkg._component import load
loaded = load()
engine, component = loaded
linker = Linker(engine)
linker.add_wasip2()
store = wasmtime.Store(engine)
store.set_wasi(wasmtime.WasiConfig())
greet = linker.instantiate(store, component).get_func(store, "greet")
answer = greet(store, "Ada")
greet.post_return(store)
print(json.dumps({"answer": answer, "how": loaded.how}))
"""


class Install:
    def __init__(self, base: Path, cache: Path) -> None:
        self.project = base / "greeter"
        self.venv = base / "venv"
        self.env = {
            **os.environ,
            "VIRTUAL_ENV": str(self.venv),
            "HATCH_COMPONENT_INIT_CACHE_DIR": str(cache),
        }
        self.env.pop("HATCH_COMPONENT_INIT_REBUILD", None)
        self.env.pop("PYTHONPATH", None)
        self.python = self.venv / "bin" / "python"

    def create(self) -> None:
        # The `force-include` comes with the editable wheel too (site-packages/greeter_pkg/data/...).
        make_project(self.project, HOOKS, wheel_options=DEV_MODE_DIRS + FORCE_INCLUDE)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv)], check=True)
        site = Path(sysconfig.get_path("purelib", vars={"base": str(self.venv), "platbase": str(self.venv)}))
        # The test venv's packages, with their own .pth files (hatch-component-init is installed editable).
        (site / "_test_venv.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
        result = subprocess.run(
            [str(self.python), "-m", "pip", "install", "--no-build-isolation", "--no-deps", "-e", str(self.project)],
            env=self.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    def answer_with(self, ending: str) -> str:
        """Edit the app so that `greet("Ada")` answers ``"Hello, Ada" + ending``; returns that answer."""
        app = self.project / "app.py"
        lines = app.read_text().splitlines(keepends=True)
        (index,) = [i for i, line in enumerate(lines) if line.lstrip().startswith('return f"{greeting}, {name}')]
        lines[index] = f'        return f"{{greeting}}, {{name}}{ending}"\n'
        app.write_text("".join(lines))
        return f"Hello, Ada{ending}"

    def edit(self, old: str, new: str) -> None:
        app = self.project / "app.py"
        text = app.read_text()
        assert old in text
        app.write_text(text.replace(old, new))

    def mount_data(self, folder: Path, greeting: str | None) -> None:
        """Point the `dirs` option at ``folder`` (outside the project: no input of componentize-py), holding
        ``greeting`` as `greeting.txt` (none if None)."""
        folder.mkdir()
        if greeting is not None:
            (folder / "greeting.txt").write_text(greeting + "\n")
        pyproject = self.project / "pyproject.toml"
        text, count = re.subn(r'^dirs = \{ "[^"]+" = "/data" \}$', f'dirs = {{ "{folder}" = "/data" }}', pyproject.read_text(), flags=re.M)
        assert count == 1
        pyproject.write_text(text)

    def start(self, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(self.python), "-c", HOST], env={**self.env, **env}, cwd=self.project.parent,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def load(self, **env: str) -> tuple[int, dict[str, str], str]:
        """Run the host in a fresh process: (exit code, what it printed as JSON, its stderr)."""
        process = self.start(**env)
        stdout, stderr = process.communicate(timeout=600)
        lines = stdout.strip().splitlines()
        return process.returncode, json.loads(lines[-1]) if process.returncode == 0 else {}, stderr

    @property
    def snapshot(self) -> bytes:
        return (self.project / DESTINATION).read_bytes()


def test_without_hatch_component_init_the_loader_says_so_and_loads(tmp_path: Path) -> None:
    """An editable install used from an environment without us (e.g. built with isolation) loads what is there."""
    from wat_support import wat

    from hatch_component_init.hatch.loader import render_loader

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.wasm").write_bytes(wat('(component (core module $m) (core instance (instantiate $m)))'))
    (package / "_component.py").write_bytes(render_loader("pkg/_component.py", "pkg/app.wasm", editable_root="."))
    code = (
        "import sys; sys.modules['hatch_component_init'] = None\n"  # makes importing it fail
        "from pkg._component import load\nprint(load().how)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "compiled app.wasm (no precompiled component was built)"
    assert "pkg._component: an editable install whose component is rebuilt when the app changes, but " in result.stderr
    assert "set HATCH_COMPONENT_INIT_REBUILD=0" in result.stderr
    env = {**os.environ, "HATCH_COMPONENT_INIT_REBUILD": "0"}
    quiet = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert (quiet.returncode, quiet.stderr) == (0, "")


#: Init stores ANSWER in a global that `answer` returns.
ANSWER_WAT = """
(component
  (core module $m
    (global $answer (mut i32) (i32.const 0))
    (func (export "init") (global.set $answer (i32.const ANSWER)))
    (func (export "answer") (result i32) (global.get $answer)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""

LOAD_ANSWER = """
import json, sys, wasmtime
from wasmtime.component import Linker
from greeter_pkg._component import load
loaded = load()
store = wasmtime.Store(loaded.engine)
answer = Linker(loaded.engine).instantiate(store, loaded.component).get_func(store, "answer")
print(json.dumps({"answer": answer(store), "how": loaded.how}))
"""


def answer_component(answer: int) -> bytes:
    from wat_support import wat

    return wat(ANSWER_WAT.replace("ANSWER", str(answer)))


def load_answer(project: Path, **env: str) -> tuple[dict[str, object], str]:
    result = subprocess.run(
        [sys.executable, "-c", LOAD_ANSWER], cwd=project, env={**os.environ, **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@pytest.mark.usefixtures("snapshot_cache_dir")
@pytest.mark.parametrize("rebuild_on_load", [True, False])
def test_a_changed_component_file_is_pre_initialized_again(tmp_path: Path, rebuild_on_load: bool) -> None:
    """Without a `componentize-py` hook the input is the component file: a new one is pre-initialized on load."""
    from hatch_support import RAW_COMPONENT, build_in_process

    table = COMPONENT_INIT_HOOK.replace('dirs = { "data" = "/data" }\n', "")
    table += 'loader = "greeter_pkg/_component.py"\n' + f"rebuild-on-load = {str(rebuild_on_load).lower()}\n"
    project = make_project(tmp_path / "greeter", table, answer_component(42), wheel_options=DEV_MODE_DIRS)
    build_in_process(project, version="editable")
    assert load_answer(project)[0]["answer"] == 42

    (project / RAW_COMPONENT).write_bytes(answer_component(43))
    got, stderr = load_answer(project)
    if rebuild_on_load:
        assert got["answer"] == 43
        assert f"{REBUILT} (pre-init) because `build/greeter.wasm` changed, in " in stderr
        assert str(got["how"]).endswith("; rebuilt because `build/greeter.wasm` changed)")
        assert load_answer(project) == ({"answer": 43, "how": got["how"].split("; rebuilt")[0] + ")"}, "")
    else:
        assert (got["answer"], stderr) == (42, "")
        assert got["how"] == "compiled greeter.wasm (no precompiled component was built)"


@pytest.fixture(scope="session")
def editable_cache() -> Path:
    """The hook caches of this module's installs, shared by the xdist workers of the run (the caches are made for
    concurrent builds): the later installs hit what the first one built."""
    return Path(os.environ[BUILDS_ENV]) / "editable-cache"


@pytest.fixture
def install(tmp_path: Path, editable_cache: Path) -> Install:
    """A fresh editable install of its own for each test: no test sees another's edits or depends on their order."""
    installed = Install(tmp_path, editable_cache)
    installed.create()
    return installed


@pytest.mark.slow
def test_1_the_install_loads_without_a_rebuild_and_the_opt_out_loads_what_is_there(install: Install) -> None:
    install.answer_with("!")  # as installed
    before = install.snapshot
    code, got, stderr = install.load()
    assert code == 0, stderr
    # Compiled with Winch: ~3x faster to compile than Cranelift, which each rebuilt snapshot needs once.
    assert got == {"answer": "Hello, Ada!", "how": "compiled greeter.wasm with Winch (no precompiled component was built)"}
    assert REBUILT not in stderr
    # Opted out: an edit is not rebuilt, and the snapshot there is what loads.
    install.answer_with("? (edited twice)")
    code, got, stderr = install.load(HATCH_COMPONENT_INIT_REBUILD="0")
    assert code == 0, stderr
    assert got["answer"] == "Hello, Ada!"
    assert REBUILT not in stderr and install.snapshot == before


@pytest.mark.slow
def test_2_an_edit_shows_up_in_a_fresh_process(install: Install) -> None:
    edited = install.answer_with("? (edited)")
    code, got, stderr = install.load()
    assert code == 0, stderr
    assert got["answer"] == edited
    assert "rebuilt because the app changed" in got["how"]
    (line,) = [line for line in stderr.splitlines() if line.startswith(REBUILT)]
    assert line.startswith(f"{REBUILT} (componentize-py, then pre-init) because the app changed ("), line
    assert line.endswith(" s")
    # Rebuilt once: the next process loads what is there.
    code, got, stderr = install.load()
    assert (code, got["answer"], REBUILT in stderr) == (0, edited, False)


@pytest.mark.slow
def test_4_two_concurrent_loads_both_succeed(install: Install, tmp_path: Path) -> None:
    # A data change: the rebuild is pre-init alone (the lock is the same one around componentize-py's step,
    # which test_2 runs), so the two loads contend without a componentize-py run.
    install.mount_data(tmp_path / "hola", "Hola")
    first, second = install.start(), install.start()
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    answers = [json.loads(stdout.strip().splitlines()[-1])["answer"] for stdout, _ in outputs]
    assert answers == ["Hola, Ada!"] * 2
    # One rebuilt; the other waited for it and found nothing left to do.
    assert sum(stderr.count(REBUILT) for _, stderr in outputs) == 1, outputs


@pytest.mark.slow
def test_5_a_failed_rebuild_raises_and_keeps_the_last_snapshot(install: Install, tmp_path: Path) -> None:
    code, got, _ = install.load()  # up to date first
    there = got["answer"]
    before = install.snapshot
    install.edit("def greet(self, name: str) -> str:", "def greet(self, name: str) -> str:\n        return (")
    code, _, stderr = install.load()
    assert code != 0
    assert "RebuildError: Rebuilding `greeter_pkg/greeter.wasm` for this editable install failed (the app changed" in stderr
    assert "set HATCH_COMPONENT_INIT_REBUILD=0 to load that snapshot as it is" in stderr
    assert "componentize-py failed" in stderr and "SyntaxError" in stderr  # the guest's own error
    assert install.snapshot == before
    code, got, stderr = install.load(HATCH_COMPONENT_INIT_REBUILD="0")
    assert (code, got.get("answer")) == (0, there), stderr

    # Pre-init fails: the app as installed again (componentize-py's output is a hit), but `dirs` now mounts a
    # folder without the greeting. The guest's own error is in ours.
    install.edit("        return (\n", "")
    install.mount_data(tmp_path / "no-greeting", None)
    code, _, stderr = install.load()
    assert code != 0
    assert "Rebuilding `greeter_pkg/greeter.wasm` for this editable install failed" in stderr
    assert "Pre-initializing `build/greeter.wasm` failed" in stderr
    assert "FileNotFoundError" in stderr and "/data/greeting.txt" in stderr, stderr
    assert install.snapshot == before

    # Fixed, with another greeting: the next load rebuilds (pre-init only) and answers with it.
    install.mount_data(tmp_path / "bonjour", "Bonjour")
    code, got, stderr = install.load()
    assert (code, got.get("answer")) == (0, "Bonjour, Ada!"), stderr
    assert REBUILT in stderr and "componentize-py" not in stderr, stderr


@pytest.mark.usefixtures("snapshot_cache_dir")
def test_a_project_that_cannot_be_read_raises_from_load(tmp_path: Path) -> None:
    from hatch_support import RAW_COMPONENT, build_in_process

    table = COMPONENT_INIT_HOOK.replace('dirs = { "data" = "/data" }\n', "") + 'loader = "greeter_pkg/_component.py"\n'
    project = make_project(tmp_path / "greeter", table, answer_component(42), wheel_options=DEV_MODE_DIRS)
    build_in_process(project, version="editable")
    before = (project / DESTINATION).read_bytes()
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + "\n[broken\n")
    result = subprocess.run([sys.executable, "-c", LOAD_ANSWER], cwd=project, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert (
        "hatch_component_init.errors.RebuildError: Rebuilding `greeter_pkg/greeter.wasm` for this editable install "
        "failed (its inputs could not be read)." in result.stderr
    )
    assert (project / DESTINATION).read_bytes() == before and (project / RAW_COMPONENT).is_file()


@pytest.mark.usefixtures("snapshot_cache_dir")
def test_what_winch_cannot_compile_is_compiled_with_cranelift(tmp_path: Path) -> None:
    """Winch lacks tail calls (Wasmtime 50): the loader falls back to Cranelift and says why."""
    from hatch_support import build_in_process

    from wat_support import wat

    tail_call = wat(
        ANSWER_WAT.replace("ANSWER", "42").replace(
            '(func (export "answer") (result i32) (global.get $answer))',
            '(func $get (result i32) (global.get $answer))\n    (func (export "answer") (result i32) (return_call $get))',
        )
    )
    table = COMPONENT_INIT_HOOK.replace('dirs = { "data" = "/data" }\n', "") + 'loader = "greeter_pkg/_component.py"\n'
    project = make_project(tmp_path / "greeter", table, tail_call, wheel_options=DEV_MODE_DIRS)
    build_in_process(project, version="editable")
    got, _ = load_answer(project)
    assert got["answer"] == 42
    assert str(got["how"]).startswith(
        "compiled greeter.wasm (no precompiled component was built; Winch could not compile it: "
    ), got["how"]
    assert "tail calls" in str(got["how"])
