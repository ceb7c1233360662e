"""The hooks' edge (hatch/edge.py): what it makes of each kind of failure, in a real in-process build.

The frontends' side (no traceback under hatch, build, pip and uv) is
tests/test_hatch_frontend_errors.py; here, the words. A rule or a hook step
written with a builtin exception, as a new option might be, is reported like
ours when it is worded for the user; anything else is called a bug, with the
way to get its traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_engine_shapes
from hatch_support import failed_build
from test_hatch_real_engine import make_probe_project

from hatch_component_init.errors import OptionValueError
from hatch_component_init.hatch import config
from hatch_component_init.hatch.component_init import ComponentInitBuildHook

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")


def _plain_value_rule(reader: config.OptionReader, option: str, value: Any) -> Any:
    if value == "nope":
        raise ValueError(reader.error(option, "must not be `nope`"))
    return value


def test_a_new_options_builtin_error_is_one_of_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = {**config.SCHEMAS[config.COMPONENT_INIT_HOOK], "mode": config.Option("string", check=_plain_value_rule)}
    monkeypatch.setitem(config.SCHEMAS, config.COMPONENT_INIT_HOOK, table)
    project = make_probe_project(tmp_path / "probe", test_engine_shapes.GLOBALS, 'mode = "nope"\n')
    failure = failed_build(project, capsys)
    assert isinstance(failure.error, OptionValueError)
    assert failure.message == "Option `mode` for build hook `component-init` must not be `nope`"


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (
            ValueError("Option `loader` for build hook `component-init` clashes with `destination`"),
            "Option `loader` for build hook `component-init` clashes with `destination`",
        ),
        (
            KeyError("build_hooks"),
            "Build hook `component-init` failed with an unexpected KeyError: 'build_hooks'. This is a bug in "
            "hatch-component-init; please report it with the traceback that `hatch -v build`, or HATCH_VERBOSE=1 "
            "with any other frontend shows",
        ),
        (PermissionError(13, "Permission denied", "dist"), "Build hook `component-init` failed: [Errno 13] Permission denied: 'dist'"),
    ],
)
def test_other_failures(
    raised: Exception,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(_hook: object, _build_data: dict[str, Any], _tree: Path | None = None) -> Path:
        raise raised

    monkeypatch.setattr(ComponentInitBuildHook, "_snapshot_for_wheel", fail)
    failure = failed_build(make_probe_project(tmp_path / "probe", test_engine_shapes.GLOBALS), capsys)
    assert failure.error is raised
    assert failure.message == message
    assert "Traceback" not in failure.output


class _RecordingApp:
    """An app whose `abort` records and returns (as a test harness or another host might)."""

    verbosity = 0

    def __init__(self) -> None:
        self.aborted: list[str] = []

    def display_error(self, message: str) -> None:  # pragma: no cover - verbosity 0
        raise AssertionError(message)

    def abort(self, message: str) -> None:
        self.aborted.append(message)


def test_an_entry_point_already_reporting_is_not_wrapped_again() -> None:
    from hatch_component_init.hatch.edge import ReportsErrors, reported

    def initialize(self: Any, version: str, build_data: dict[str, Any]) -> None:
        raise OptionValueError("Option `x` for build hook `probe` is wrong")

    already = reported(initialize)

    class Hook(ReportsErrors):
        PLUGIN_NAME = "probe"
        initialize = already

        def __init__(self) -> None:
            self.app = _RecordingApp()

    assert Hook.__dict__["initialize"] is already
    hook = Hook()
    with pytest.raises(OptionValueError):  # abort returned, so the error goes on, reported once
        hook.initialize("standard", {})
    assert hook.app.aborted == ["Option `x` for build hook `probe` is wrong"]


def test_every_entry_point_a_hook_defines_reports_and_others_are_left_alone() -> None:
    from hatch_component_init.hatch.edge import ENTRY_POINTS, ReportsErrors

    class Hook(ReportsErrors):
        PLUGIN_NAME = "probe"

        def __init__(self) -> None:
            self.app = _RecordingApp()

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            raise KeyError("x")

        def finalize(self, version: str, build_data: dict[str, Any], artifact: str) -> None:
            raise KeyError("y")

        def helper(self) -> None:
            raise KeyError("z")

    assert ENTRY_POINTS == ("dependencies", "initialize", "finalize", "clean")
    hook = Hook()
    for call in (lambda: hook.initialize("standard", {}), lambda: hook.finalize("standard", {}, "a.whl")):
        with pytest.raises(KeyError):
            call()
    assert [m.split(":")[0] for m in hook.app.aborted] == ["Build hook `probe` failed with an unexpected KeyError"] * 2
    with pytest.raises(KeyError):
        hook.helper()
    assert len(hook.app.aborted) == 2
    assert getattr(Hook.initialize, "reports_errors", False) and not hasattr(Hook.helper, "reports_errors")
    # The wrapper keeps the method's name and signature for hatchling's and the debugger's eyes.
    assert Hook.initialize.__name__ == "initialize" and Hook.initialize.__wrapped__.__qualname__.endswith("Hook.initialize")
