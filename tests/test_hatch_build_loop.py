"""The edit-build loop with both hooks, for real: componentize-py, Wasmtime, and the components they ship.

A rebuild with nothing changed is served by both caches (componentize-py's
output, then the snapshot), and any edit to the app or to a file under its
python path is rebuilt and shipped. Third-party packages come from the
`requirements` option.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_HOOK,
    DESTINATION,
    build_in_process,
    check_greeter_wheel,
    failed_build,
    make_project,
    make_pure_wheel,
    wheel_member,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("snapshot_cache_dir")]


def timed_build(project: Path) -> tuple[Path, float]:
    started = time.perf_counter()
    wheel = build_in_process(project)
    return wheel, time.perf_counter() - started


def _install(site: Path, name: str, version: str, text: str) -> None:
    """A one-module distribution as an installer leaves it (its RECORD lists the module)."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (site / f"{name}.py").write_text(text)
    (info / "RECORD").write_text(f"{name}.py,sha256={abs(hash(text))},{len(text)}\n{name}-{version}.dist-info/RECORD,,\n")


def test_rebuilds_hit_both_caches_and_edits_ship(
    tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "greeter", COMPONENTIZE_HOOK + COMPONENT_INIT_HOOK)
    # The app imports a package from the `site-packages` componentize-py sees (through $VIRTUAL_ENV).
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    _install(site, "punctuation", "1.0", "MARK = '!'\n")
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "venv"))
    app = project / "app.py"
    greet = 'return f"{greeting}, {name}!"'
    app.write_text("import punctuation\n" + app.read_text().replace(greet, greet.replace("!", "{punctuation.MARK}")))

    # Bytecode that was there before the build is not ours to remove; the build leaves none of its own.
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"the user's")

    wheel, first = timed_build(project)
    log = capsys.readouterr().err
    assert "Building component `build/greeter.wasm` with componentize-py 0.25.1" in log
    assert "Pre-initializing `build/greeter.wasm`" in log
    shipped = wheel_member(wheel, DESTINATION)
    check_greeter_wheel(wheel)
    assert sorted(path.relative_to(project).as_posix() for path in project.rglob("*.pyc")) == [
        "__pycache__/app.cpython-311.pyc"
    ]
    assert not list(project.glob("greeter_pkg/__pycache__"))

    # Things that change nothing the component is made of: bytecode, VCS, an environment, old wheels.
    (project / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"stale")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / ".venv").mkdir()
    (project / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (project / "dist" / "greeter-0.9-py3-none-any.whl").write_bytes(b"PK old")
    # Nor does a package the app does not import (another frontend's build environment).
    _install(site, "hatchling", "1.27.0", "")

    wheel, rebuild = timed_build(project)
    log = capsys.readouterr().err
    assert "Built component `build/greeter.wasm` from the cache (18." in log
    assert "componentize-py not run" in log
    assert "from the cache" in log.split("Pre-initialized", 1)[1]
    assert "Wasmtime not run" in log
    assert "Building component" not in log
    assert wheel_member(wheel, DESTINATION) == shipped
    with capsys.disabled():  # measured, never asserted (see docs/building.md: The componentize-py cache)
        print(f"\ngreeter, in process: first build {first:.1f} s, no-change rebuild {rebuild:.2f} s ({rebuild / first:.2f}x)")

    # An upgrade of the package it imports, an edit to the app and one to a data file under the python path (here
    # also read by init through `dirs`) are a miss of both caches, and the new package, code and data ship. One
    # rebuild for the three: that each alone changes the keys is checked without a build (test_hatch_keys.py,
    # test_hatch_componentize_cache.py). The edit also imports a package from the `requirements` option, which the
    # hook installs into a folder of its own (only our wheel offered, never the network) and componentize-py bundles;
    # that another requirement is another key is checked without a build
    # (test_hatch_requirements.py::test_the_hook_keys_its_component_by_its_requirements).
    shutil.rmtree(site / "punctuation-1.0.dist-info")
    _install(site, "punctuation", "1.1", "MARK = '?'\n")
    wheels = tmp_path / "wheels"
    make_pure_wheel(wheels, "tinyword", "1.2", {"tinyword/__init__.py": 'TITLE = "dear"\n'})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(COMPONENTIZE_HOOK, COMPONENTIZE_HOOK + 'requirements = ["tinyword>=1"]\n'))
    app.write_text(
        "import tinyword\n"
        + app.read_text().replace('return f"{greeting}, {name}', 'return f"{greeting}, {tinyword.TITLE} {name}')
    )
    (project / "data" / "greeting.txt").write_text("Bonjour\n")
    wheel = build_in_process(project)
    log = capsys.readouterr().err
    assert "Installed `tinyword>=1` for the app in " in log
    assert "Building component `build/greeter.wasm` with componentize-py" in log
    assert "Pre-initializing `build/greeter.wasm`" in log
    check_greeter_wheel(wheel, greeting="Bonjour", greet="Bonjour, dear Ada?")
    (folder,) = (snapshot_cache_dir / "requirements").iterdir()
    assert (folder / "tinyword" / "__init__.py").is_file()
    # The project itself is untouched: the packages live in the private folder only.
    assert not (project / "tinyword").exists()

    # Both caches live in the same directory, pruned the same way.
    assert len(list((snapshot_cache_dir / "components").glob("*.wasm"))) == 2
    assert len(list((snapshot_cache_dir / "snapshots").glob("*.wasm"))) == 2


def test_compiled_requirement_is_refused(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wheels = tmp_path / "wheels"
    make_pure_wheel(wheels, "fastword", "1.0", {"fastword/__init__.py": ""}, pure=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    hooks = COMPONENTIZE_HOOK + 'requirements = ["fastword"]\n' + COMPONENT_INIT_HOOK
    project = make_project(tmp_path / "greeter", hooks)
    message = (
        "^Option `requirements` for build hook `componentize-py`: `fastword-1.0` is not a pure-Python package "
        r"\(pip installed compiled code built for this machine\), and a componentize-py component can only use "
        "pure-Python packages from it$"
    )
    failure = failed_build(project, capsys)
    assert isinstance(failure.error, ValueError)
    assert re.search(message, failure.message)
    assert not (snapshot_cache_dir / "requirements").exists() or not list((snapshot_cache_dir / "requirements").iterdir())
    assert not (project / "build" / "greeter.wasm").exists()


def test_failed_install_names_the_requirement(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    hooks = COMPONENTIZE_HOOK + 'requirements = ["no-such-package-here"]\n' + COMPONENT_INIT_HOOK
    project = make_project(tmp_path / "greeter", hooks)
    failure = failed_build(project, capsys)
    assert failure.message == (
        "Installing the `requirements` of build hook `componentize-py` (no-such-package-here) failed "
        "(pip exit code 1); pip's output is above"
    )
    # pip's own words come first, marked as pip's.
    assert "  [pip] ERROR: " in failure.output and "no-such-package-here" in failure.output.split("[pip]", 1)[1]
