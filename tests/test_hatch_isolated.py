"""`requires = ["hatchling", "hatch-component-init"]` is enough: isolated builds with the four frontends users run.

hatch-component-init is not on the package index, so each frontend gets our
wheel (built from this checkout) through a local find-links folder:
PIP_FIND_LINKS for `python -m build` and `pip wheel`, UV_FIND_LINKS for
`uv build` and `hatch build` (both install build requirements with uv).
Everything else (hatchling, componentize-py, wasmtime) comes from the index.
Each build gets an empty hook cache, so componentize-py really runs inside
the isolated environment that the hook's declared build dependency gave it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_HOOK,
    build_own_wheel,
    check_greeter_wheel,
    find_links_env,
    hatch_home_env,
    make_project,
    run_build,
)

pytestmark = pytest.mark.slow

BUILT = "Building component `build/greeter.wasm` with componentize-py 0.25.1"
WHEEL = "greeter-1.0-py3-none-any.whl"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheelhouse")
    build_own_wheel(directory)
    return directory


def tool(name: str) -> str:
    """A command installed next to this Python (the test extras put hatch and uv there)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed"
    return found


def frontend_command(frontend: str, out: Path) -> list[str]:
    return {
        "build": [sys.executable, "-m", "build", "--outdir", str(out), "."],
        "pip": [sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "--wheel-dir", str(out), "."],
        # Its build environment's Python; uv would otherwise pick any Python it finds.
        "uv": [tool("uv"), "build", "--python", sys.executable, "--out-dir", str(out), "."],
        "hatch": [tool("hatch"), "build", str(out)],
    }[frontend]


@pytest.fixture
def isolated(tmp_path: Path, wheelhouse: Path) -> dict[str, str]:
    """The environment of an isolated build: our wheel offered, a private Hatch home, an empty hook cache."""
    return {
        **find_links_env(wheelhouse),
        **hatch_home_env(tmp_path / "hatch-home"),
        "HATCH_COMPONENT_INIT_CACHE_DIR": str(tmp_path / "hook-cache"),
        "HATCH_COMPONENT_INIT_SKIP": "",
    }


# `python -m build` (sdist, then the wheel from it) is the cold build here, and `uv build` with an empty hook cache
# is the README's (test_docs.py), whose wheel is installed and run there. `pip wheel`, `uv build` from the sdist and
# `hatch build` then rebuild here, each in an isolated environment of its own, on the first build's hook cache.
def test_isolated_rebuild_with_another_frontend_hits_both_caches(tmp_path: Path, isolated: dict[str, str]) -> None:
    # Each isolated build installs its frontend's packages into a fresh temp environment, and `uv build`
    # builds the wheel from the unpacked sdist (which adds PKG-INFO); the componentize-py key covers
    # only what the app imports from there, so a build with nothing changed runs neither tool.
    project = make_project(tmp_path / "greeter", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK)
    assert 'requires = ["hatchling", "hatch-component-init"]\n' in (project / "pyproject.toml").read_text()
    # `python -m build`: the sdist, then the wheel from the unpacked sdist; componentize-py was installed by
    # the frontend (nothing here provides it) and ran in its environment.
    first = run_build(frontend_command("build", tmp_path / "out"), cwd=project, env=isolated, timeout=900)
    assert BUILT in first
    assert "[guest stdout] init: loaded greeting 'Hello'" in first
    (sdist,) = (tmp_path / "out").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    assert {"greeter-1.0/app.py", "greeter-1.0/wit/greeter.wit", "greeter-1.0/data/greeting.txt"} <= names
    check_greeter_wheel(tmp_path / "out" / WHEEL)
    # The wheel was built from the unpacked sdist: nothing was written into the project.
    assert not (project / "build").exists()
    # Then `pip wheel`, from the project: the hook key needs componentize-py's version, so the hit also shows that
    # the frontend installed componentize-py (nothing here provides it). So do the next two.
    by_pip = run_build(frontend_command("pip", tmp_path / "out-pip"), cwd=project, env=isolated, timeout=900)
    assert "Built component `build/greeter.wasm` from the cache" in by_pip and BUILT not in by_pip, by_pip
    check_greeter_wheel(tmp_path / "out-pip" / WHEEL)
    # Then `uv build`, from the sdist too.
    second = run_build(frontend_command("uv", tmp_path / "out2"), cwd=project, env=isolated, timeout=900)
    assert "Built component `build/greeter.wasm` from the cache" in second
    assert "Wasmtime not run" in second
    assert BUILT not in second
    check_greeter_wheel(tmp_path / "out2" / WHEEL)
    # Then `hatch build`, from the project.
    third = run_build(frontend_command("hatch", tmp_path / "out3"), cwd=project, env=isolated, timeout=900)
    assert "Built component `build/greeter.wasm` from the cache" in third and BUILT not in third, third
    check_greeter_wheel(tmp_path / "out3" / WHEEL)
    # `hatch clean` removes what the hooks made (the componentize-py output) and nothing else.
    assert (project / "build" / "greeter.wasm").is_file()
    run_build([tool("hatch"), "clean"], cwd=project, env=isolated, timeout=900)
    assert not (project / "build" / "greeter.wasm").exists()
    assert (project / "app.py").is_file()
    assert (project / "data" / "greeting.txt").is_file()


def test_uv_ignores_pip_find_links(tmp_path: Path, isolated: dict[str, str]) -> None:
    # Why the docs tell uv and hatch users to set UV_FIND_LINKS: with PIP_FIND_LINKS alone, uv cannot
    # find hatch-component-init and the build stops while installing the build requirements.
    project = make_project(tmp_path / "greeter", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK)
    env = {**os.environ, **isolated}
    del env["UV_FIND_LINKS"]
    result = subprocess.run(
        frontend_command("uv", tmp_path / "out"), cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0
    assert "hatch-component-init" in result.stderr
    assert BUILT not in result.stderr + result.stdout
