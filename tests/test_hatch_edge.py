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
