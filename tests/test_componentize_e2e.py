"""A real componentize-py app through the engine: state present without init, output still prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from hatch_component_init import WasiOptions, pre_initialize
from wat_support import Running

DATA = Path(__file__).parent / "fixtures" / "greeter" / "data"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def initialized(greeter_component: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    seen: list[tuple[str, bytes]] = []
    out = pre_initialize(
        greeter_component,
        wasi=WasiOptions(dirs=((DATA, "/data"),)),
        on_output=lambda stream, data: seen.append((stream, data)),
    )
    return out, seen


def test_input_is_not_initialized(greeter_component: bytes) -> None:
    assert Running(greeter_component).call("state") == "init-runs=0 greeting=(not initialized)"


def test_state_is_present_without_init(initialized: tuple[bytes, list[tuple[str, bytes]]]) -> None:
    out, _ = initialized
    expected = (DATA / "greeting.txt").read_text().strip()
    running = Running(out)
    assert not running.has("component-init")
    assert running.call("state") == f"init-runs=1 greeting={expected}"
    assert running.call("greet", "Ada") == f"{expected}, Ada!"


def test_output_still_prints_after_init_printed(initialized: tuple[bytes, list[tuple[str, bytes]]]) -> None:
    # Snapshot hygiene: init printed (stdout and stderr), so without the adapter reset
    # the snapshot would hold handles that do not exist in a fresh instance and trap here.
    out, seen = initialized
    assert b"init: loaded greeting" in b"".join(d for s, d in seen if s == "stdout")
    assert b"init: a line on stderr" in b"".join(d for s, d in seen if s == "stderr")
    running = Running(out)
    running.call("greet", "Grace")
    assert b"greet: called for Grace" in running.stdout()


def test_output_is_smaller_and_deterministic(greeter_component: bytes, initialized: tuple[bytes, list[tuple[str, bytes]]]) -> None:
    out, _ = initialized
    again = pre_initialize(greeter_component, wasi=WasiOptions(dirs=((DATA, "/data"),)))
    assert again == out
    # Superseded data segments are dropped, not kept as dead passive segments.
    assert len(out) < len(greeter_component)


def test_core_export_named_like_the_init_export_survives(greeter_component: bytes, initialized: tuple[bytes, list[tuple[str, bytes]]]) -> None:
    # componentize-py's bindings module exports a core function `component-init` too;
    # removing the component export must leave the core one (and validation) intact.
    from hatch_component_init.wasm.component import parse_component

    parsed = parse_component(memoryview(greeter_component))
    assert any("component-init" in m.exports for m in parsed.modules.values())
    out, _ = initialized
    reparsed = parse_component(memoryview(out))
    assert any("component-init" in m.exports for m in reparsed.modules.values())
    assert not [e for e in reparsed.exports if e.name == "component-init"]


def test_deterministic_when_the_data_file_is_brand_new(greeter_component: bytes, tmp_path: Path) -> None:
    # A freshly written file has atime == mtime, so the first read would bump its atime
    # (relatime) and a stale stat buffer in guest memory would differ between builds.
    data = tmp_path / "data"
    data.mkdir()
    (data / "greeting.txt").write_text("Fresh hello\n")
    options = WasiOptions(dirs=((data, "/data"),))
    first = pre_initialize(greeter_component, wasi=options)
    assert pre_initialize(greeter_component, wasi=options) == first
    assert Running(first).call("greet", "Lin") == "Fresh hello, Lin!"
