from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def snapshot_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the Hatch hook's snapshot cache into the test's tmp dir (and clear its skip switch)."""
    cache = tmp_path / "snapshot-cache"
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(cache))
    monkeypatch.delenv("HATCH_COMPONENT_INIT_SKIP", raising=False)
    return cache


def componentize(app_dir: Path, world: str, module: str, output: Path) -> bytes:
    """Build ``module`` of ``app_dir`` (with its ``wit/``) into a component with componentize-py (~7 s)."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
            "-d",
            str(app_dir / "wit"),
            "-w",
            world,
            "componentize",
            "-p",
            str(app_dir),
            module,
            "-o",
            str(output),
        ],
        check=True,
        capture_output=True,
    )
    return output.read_bytes()


@pytest.fixture(scope="session")
def greeter_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The raw greeter component (tests/fixtures/greeter), built once per session."""
    output = tmp_path_factory.mktemp("greeter") / "greeter.wasm"
    return componentize(FIXTURES / "greeter", "greeter", "app", output)
