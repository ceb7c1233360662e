"""Real builds: componentize-py, the real engine, and the build frontends users run.

Each frontend builds the greeter fixture project without build isolation, so
the build uses this environment (where hatch-component-init is installed;
`hatch build`, which builds in an environment of its own, is in
test_hatch_isolated.py, with the other frontends' isolated builds, and so
is `python -m build`'s sdist, then the wheel from it);
then the wheel's component runs in Wasmtime to show that the state from init
is there without calling init, and that the guest can still print. (That the
raw component lacks the state is checked in test_componentize_e2e.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    build_in_process,
    check_greeter_wheel,
    make_project,
    python_tool,
    run_build,
    tree_snapshot,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("snapshot_cache_dir")]


check_wheel = check_greeter_wheel


def test_in_process_build(tmp_path: Path, greeter_component: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path / "greeter", COMPONENT_INIT_HOOK, raw_component=greeter_component)
    before = tree_snapshot(project)

    check_wheel(build_in_process(project))
    log = capsys.readouterr().err
    assert "  [guest stdout] init: loaded greeting 'Hello'\n" in log
    assert "  [guest stderr] init: a line on stderr\n" in log
    assert "Pre-initialized `build/greeter.wasm` -> `greeter_pkg/greeter.wasm`: " in log

    # The second build is served from the snapshot cache and ships the same thing.
    check_wheel(build_in_process(project))
    assert "from the cache" in capsys.readouterr().err
    assert {k: v for k, v in tree_snapshot(project).items() if not k.startswith("dist/")} == before


def test_pip_wheel(tmp_path: Path, greeter_component: bytes) -> None:
    # Only `component-init` here (the other frontends run both hooks): the shared component keeps this quick.
    project = make_project(tmp_path / "greeter", COMPONENT_INIT_HOOK, raw_component=greeter_component)
    dist = tmp_path / "dist"
    run_build(
        [*python_tool("pip"), "wheel", "--no-build-isolation", "--no-deps", "--wheel-dir", str(dist), "."],
        cwd=project,
    )
    check_wheel(dist / "greeter-1.0-py3-none-any.whl")
    assert (project / "build" / "greeter.wasm").read_bytes() == greeter_component


def test_wheel_is_reproducible_with_source_date_epoch(
    tmp_path: Path, greeter_component: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two builds with two fresh snapshot caches: the engine runs twice, and the wheels match.
    # (The same project: the WASI adapter keeps a copy of the last stat result, so a copy of
    # the data files with other inodes and timestamps may differ in those bytes; see docs/guarantees.md.)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    project = make_project(tmp_path / "greeter", COMPONENT_INIT_HOOK, raw_component=greeter_component)
    wheels = []
    for name in ("one", "two"):
        monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / f"cache-{name}"))
        wheel = build_in_process(project)
        wheels.append(wheel.read_bytes())
        wheel.unlink()
    assert wheels[0] == wheels[1]
