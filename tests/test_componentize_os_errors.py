"""componentize-py failing at the operating system's level: the cause in our paragraph, its Rust backtrace only with -v.

The quick tests run a stand-in that prints what componentize-py 0.25 prints when its
output cannot be written (a full disk); the slow test makes the real one write to
``/dev/full``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hatch_support import COMPONENTIZE_HOOK, RAW_COMPONENT, failed_build, make_project

from hatch_component_init.hatch.componentize import ComponentizePyBuildHook, os_error_cause, without_backtrace

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")

#: componentize-py 0.25.1's stderr when its output went to /dev/full (the frames shortened).
FULL_DISK = """\
Traceback (most recent call last):
  File "/venv/bin/componentize-py", line 8, in <module>
    sys.exit(script())
             ^^^^^^^^
AssertionError: No space left on device (os error 28)

Stack backtrace:
   0: <anyhow::Error as core::convert::From<core::io::error::Error>>::from
   1: <componentize_py::ComponentGenerator>::generate::{closure#0}
   2: tokio::runtime::context::runtime::enter_runtime
   3: componentize_py::command::run
   4: _PyEval_EvalFrameDefault
             at /tmp/python-build/Python-3.11.7/Python/ceval.c:4769:23
   5: _start
"""
FULL_DISK_MESSAGE = (
    f"componentize-py failed (exit code 1) building `{RAW_COMPONENT}` for build hook `componentize-py`: "
    "No space left on device (os error 28); the operating system refused it (a full disk, a permission), not the app"
)


def test_the_cause_is_read_from_the_error_and_its_causes() -> None:
    assert os_error_cause(FULL_DISK) == "No space left on device (os error 28)"
    chained = "Error: failed to write `out.wasm`\n\nCaused by:\n    0: Permission denied (os error 13)\n"
    assert os_error_cause(chained) == "Permission denied (os error 13)"
    # The app's own failure is not the system's, even when a frame below mentions an OS error.
    app = "Traceback (most recent call last):\n  File \"app.py\", line 3\nNameError: name 'x' is not defined\n"
    assert os_error_cause(app + "Stack backtrace:\n   0: io (os error 2)\n") is None
    assert without_backtrace(FULL_DISK).endswith("AssertionError: No space left on device (os error 28)")


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """componentize-py replaced by a process that prints what it prints on a full disk, and fails."""
    printed = tmp_path / "stderr.txt"
    printed.write_text(FULL_DISK)

    def stand_in(_hook: ComponentizePyBuildHook, output: Path) -> list[str]:
        script = "import sys; sys.stderr.write(open(sys.argv[1]).read()); sys.exit(1)"
        return [sys.executable, "-c", script, str(printed)]

    monkeypatch.setattr(ComponentizePyBuildHook, "command", stand_in)


@pytest.mark.usefixtures("full_disk")
def test_a_full_disk_is_named_in_the_paragraph_without_the_backtrace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HATCH_VERBOSE", raising=False)
    failure = failed_build(make_project(tmp_path / "p", COMPONENTIZE_HOOK), capsys)
    assert failure.message == FULL_DISK_MESSAGE
    assert "Stack backtrace" not in failure.output and "anyhow" not in failure.output
    assert "[componentize-py] AssertionError: No space left on device (os error 28)" in failure.output


@pytest.mark.usefixtures("full_disk")
def test_the_backtrace_is_shown_with_verbosity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCH_VERBOSE", "1")
    failure = failed_build(make_project(tmp_path / "p", COMPONENTIZE_HOOK), capsys)
    assert failure.message == FULL_DISK_MESSAGE
    assert "[componentize-py] Stack backtrace:" in failure.output
    assert "[componentize-py]    0: <anyhow::Error as core::convert::From<core::io::error::Error>>::from" in failure.output


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_componentize_py_writing_to_a_full_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HATCH_VERBOSE", raising=False)
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    (project / "build").mkdir()
    # The hook builds next to the output under this name (this process's PID), then renames.
    (project / "build" / f".greeter.wasm.{os.getpid()}.partial").symlink_to("/dev/full")
    failure = failed_build(project, capsys)
    assert failure.message == FULL_DISK_MESSAGE
    assert "Stack backtrace" not in failure.output
    assert not (project / RAW_COMPONENT).exists()
