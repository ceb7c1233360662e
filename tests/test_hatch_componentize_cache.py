"""The componentize-py hook's cache, with a stand-in for componentize-py that counts its runs.

Real componentize-py builds are in test_hatch_build_loop.py; here only what the
hook does around the tool: when it runs it, what it stores, what a hit writes.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from hatch_support import COMPONENTIZE_HOOK, RAW_COMPONENT, build_in_process, make_project

from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file that gets one line per run of the stand-in, which writes a component that differs every run."""
    log = tmp_path / "runs.txt"
    log.write_text("")

    def stand_in(_hook: ComponentizePyBuildHook, output: Path) -> list[str]:
        script = (
            "import sys, os; open(sys.argv[2], 'a').write('run\\n'); "
            "open(sys.argv[1], 'wb').write(b'\\0asm component ' + os.urandom(8))"
        )
        return [sys.executable, "-c", script, str(output), str(log)]

    monkeypatch.setattr(ComponentizePyBuildHook, "command", stand_in)
    return log


def count(log: Path) -> int:
    return len(log.read_text().splitlines())


def test_hit_writes_the_cached_component(tmp_path: Path, runs: Path, snapshot_cache_dir: Path) -> None:
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    build_in_process(project)
    first = (project / RAW_COMPONENT).read_bytes()
    (project / RAW_COMPONENT).unlink()  # e.g. `hatch clean`
    build_in_process(project)
    assert count(runs) == 1
    assert (project / RAW_COMPONENT).read_bytes() == first
    (entry,) = (snapshot_cache_dir / "components").glob("*.wasm")
    assert entry.read_bytes() == first


def test_cache_false_runs_every_time(tmp_path: Path, runs: Path, snapshot_cache_dir: Path) -> None:
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + "cache = false\n")
    build_in_process(project)
    build_in_process(project)
    assert count(runs) == 2
    assert not (snapshot_cache_dir / "components").exists()


def test_edit_runs_again(tmp_path: Path, runs: Path) -> None:
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    build_in_process(project)
    (project / "app.py").write_text((project / "app.py").read_text() + "\n# edited\n")
    build_in_process(project)
    assert count(runs) == 2


def test_unwritable_cache_still_builds(tmp_path: Path, runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(blocker / "cache"))
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    build_in_process(project)
    assert (project / RAW_COMPONENT).read_bytes().startswith(b"\0asm component ")


def test_sources_changed_during_the_build_are_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An edit while componentize-py runs: the output cannot be filed under the key of either state.
    def editing_stand_in(_hook: ComponentizePyBuildHook, output: Path) -> list[str]:
        script = "import sys; open(sys.argv[1], 'wb').write(b'\\0asm'); open(sys.argv[2], 'a').write('# edit\\n')"
        return [sys.executable, "-c", script, str(output), str(tmp_path / "p" / "app.py")]

    monkeypatch.setattr(ComponentizePyBuildHook, "command", editing_stand_in)
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    build_in_process(project)
    assert "Sources changed during the build; the component is not cached" in capsys.readouterr().err
    assert not list(snapshot_cache_dir.glob("components/*.wasm"))


# -- what the build environment can change: only what the component imported (hatch/keys.py) ------


def _install(site: Path, name: str, version: str, text: str) -> None:
    """A one-module distribution, with a dist-info whose RECORD lists the module."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (site / f"{name}.py").write_text(text)
    (info / "RECORD").write_text(f"{name}.py,sha256={abs(hash(text))},{len(text)}\n{name}-{version}.dist-info/RECORD,,\n")


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The `site-packages` componentize-py sees (through $VIRTUAL_ENV), with the package the app imports
    (`tinyword`) and one of the build frontend's (`hatchling`) that it does not."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    _install(site, "tinyword", "1.0", "WORD = 'hi'\n")
    _install(site, "hatchling", "1.27.0", "")
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "venv"))
    return site


@pytest.fixture
def importing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in, writing a component whose memory holds `/1/tinyword.py`: the guest path of a module
    it imported from `site-packages` (mounted after the python path's one entry)."""
    log = tmp_path / "runs.txt"
    log.write_text("")

    def stand_in(_hook: ComponentizePyBuildHook, output: Path) -> list[str]:
        script = (
            "import sys, os; open(sys.argv[2], 'a').write('run\\n'); "
            "open(sys.argv[1], 'wb').write(b'\\0asm component ' + os.urandom(8) + b'/1/tinyword.py\\0')"
        )
        return [sys.executable, "-c", script, str(output), str(log)]

    monkeypatch.setattr(ComponentizePyBuildHook, "command", stand_in)
    return log


def test_another_frontends_environment_hits(
    tmp_path: Path, environment: Path, importing_runs: Path, snapshot_cache_dir: Path
) -> None:
    # `uv build`, `hatch build` and `python -m build` install other build tools (and versions of them).
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    build_in_process(project)
    first = (project / RAW_COMPONENT).read_bytes()
    # What it imported from `site-packages` is recorded next to the components cache.
    (manifest,) = (snapshot_cache_dir / "component-imports").glob("*.json")
    assert json.loads(manifest.read_text()) == {"imports": [["tinyword.py"]]}
    shutil.rmtree(environment / "hatchling-1.27.0.dist-info")
    (environment / "hatchling.py").unlink()
    _install(environment, "hatchling", "1.28.0", "x = 1\n")
    _install(environment, "pip", "24.0", "")
    (project / RAW_COMPONENT).unlink()
    build_in_process(project)
    assert count(importing_runs) == 1
    assert (project / RAW_COMPONENT).read_bytes() == first


def test_an_imported_package_upgraded_runs_again(tmp_path: Path, environment: Path, importing_runs: Path) -> None:
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    build_in_process(project)
    first = (project / RAW_COMPONENT).read_bytes()
    shutil.rmtree(environment / "tinyword-1.0.dist-info")
    _install(environment, "tinyword", "1.1", "WORD = 'hello'\n")
    build_in_process(project)
    assert count(importing_runs) == 2
    assert (project / RAW_COMPONENT).read_bytes() != first
    # Both environments' components are kept: going back is a hit.
    shutil.rmtree(environment / "tinyword-1.1.dist-info")
    _install(environment, "tinyword", "1.0", "WORD = 'hi'\n")
    build_in_process(project)
    assert count(importing_runs) == 2
    assert (project / RAW_COMPONENT).read_bytes() == first


def test_a_comment_or_a_component_init_option_in_pyproject_hits(
    tmp_path: Path, environment: Path, importing_runs: Path
) -> None:
    init_table = '[tool.hatch.build.hooks.component-init]\nenable-by-default = false\ncomponent = "build/greeter.wasm"\n'
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK + init_table)
    build_in_process(project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text("# a comment\n" + pyproject.read_text() + "timeout = 120\nmax-memory = 1000000\n")
    build_in_process(project)
    assert count(importing_runs) == 1
    # A change the app's top level could read (another version of the project) runs it again.
    pyproject.write_text(pyproject.read_text().replace('version = "1.0"', 'version = "1.1"'))
    build_in_process(project)
    assert count(importing_runs) == 2


def test_a_package_installed_after_the_build_is_not_seen_until_the_cache_is_cleared(
    tmp_path: Path, environment: Path, runs: Path, snapshot_cache_dir: Path
) -> None:
    # What the key trades away (docs/building.md): an optional import that failed at build time
    # (`try: import x` / `except ImportError`) left nothing in the component to check.
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    build_in_process(project)
    _install(environment, "fastjson", "1.0", "")
    build_in_process(project)
    assert count(runs) == 1
    shutil.rmtree(snapshot_cache_dir / "components")
    build_in_process(project)
    assert count(runs) == 2
