"""Hook failures the Hatch way, under every frontend users run: one paragraph, no host traceback.

Each case breaks a project one way (an option typo, a missing `dirs` directory,
a failing init, a failing componentize-py) and builds it with some of `hatch build`,
`python -m build`, `pip wheel` and `uv build` (PAIRS says which and why), as a user would. The output must
hold our message as one line, no traceback of the build machinery (hatchling,
pyproject-hooks, our hook), a non-zero exit, and no wheel. What the guest or
componentize-py printed (the app's own Python traceback) is shown, marked as
theirs, before our line. The traceback of the hook is there only on request
(`hatch -v`, HATCH_VERBOSE).

`python -m build`, `pip wheel` and `uv build` run without build isolation (the
backend's output reaches the user the same way; isolation would only add
downloads); `hatch build` always builds in its own environment, which gets
our wheel from a local folder.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from hatch_support import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_HOOK,
    RAW_COMPONENT,
    find_links_env,
    hatch_home_env,
    make_project,
)
from test_hatch_isolated import tool, wheelhouse  # noqa: F401 - the fixture, shared with the isolated builds
from test_hatch_real_engine import make_probe_project
from test_init_messages import WHAT_FAILED

import test_engine_shapes

pytestmark = pytest.mark.slow

FRONTENDS = ["hatch", "build", "pip", "uv"]


def frontend_command(frontend: str, out: Path, verbose: bool = False) -> list[str]:
    return {
        "hatch": [tool("hatch"), *(["-v"] if verbose else []), "build", "-t", "wheel", str(out)],
        "build": [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(out), "."],
        "pip": [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--wheel-dir", str(out), "."],
        "uv": [tool("uv"), "build", "--no-build-isolation", "--wheel", "--python", sys.executable, "--out-dir", str(out), "."],
    }[frontend]


@dataclass
class Case:
    make: Callable[[Path, bytes], Path]
    message: str
    #: A line that must come before the message: the guest's or componentize-py's own output.
    shown_before: str | None = None


def _option_typo(root: Path, _greeter: bytes) -> Path:
    return make_probe_project(root, test_engine_shapes.GLOBALS, 'dirz = { "data" = "/data" }\n')


def _missing_dirs_directory(root: Path, _greeter: bytes) -> Path:
    return make_probe_project(root, test_engine_shapes.GLOBALS, 'dirs = { "assets" = "/data" }\n')


def _failing_init(root: Path, greeter: bytes) -> Path:
    # No `dirs`: the greeter's init cannot open /data/greeting.txt and raises.
    return make_project(root, f'[tool.hatch.build.hooks.component-init]\ncomponent = "{RAW_COMPONENT}"\n', greeter)


def _failing_componentize_py(root: Path, _greeter: bytes) -> Path:
    hooks = COMPONENTIZE_HOOK.replace('world = "greeter"', 'world = "no-such-world"') + COMPONENT_INIT_HOOK
    return make_project(root, hooks)


CASES = {
    "option-typo": Case(_option_typo, "Unknown option `dirz` for build hook `component-init`; did you mean `dirs`?"),
    "missing-dirs-directory": Case(
        _missing_dirs_directory,
        "Option `dirs` for build hook `component-init` names directory `assets`, which does not exist",
    ),
    "failing-init": Case(
        _failing_init,
        f"Pre-initializing `{RAW_COMPONENT}` failed: {WHAT_FAILED}",
        shown_before="  [guest stderr] Traceback (most recent call last):",
    ),
    "failing-componentize-py": Case(
        _failing_componentize_py,
        f"componentize-py failed (exit code 1) building `{RAW_COMPONENT}` for build hook `componentize-py`; "
        "its output is above",
        shown_before="  [componentize-py] ",
    ),
}


@pytest.fixture
def environment(tmp_path: Path, wheelhouse: Path) -> dict[str, str]:  # noqa: F811
    return {
        **find_links_env(wheelhouse),
        **hatch_home_env(tmp_path / "hatch-home"),
        "HATCH_COMPONENT_INIT_CACHE_DIR": str(tmp_path / "hook-cache"),
        "HATCH_COMPONENT_INIT_SKIP": "",
    }


def quiet_environ() -> dict[str, str]:
    """This process's environment without a verbosity of its own (hatchling reads it as an integer)."""
    import os

    return {name: value for name, value in os.environ.items() if name not in {"HATCH_VERBOSE", "HATCH_QUIET"}}


def build(frontend: str, project: Path, env: dict[str, str], verbose: bool = False) -> tuple[int, list[str]]:
    out = project.parent / "out"
    command = frontend_command(frontend, out, verbose)
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert not list(out.glob("*.whl")), "a wheel was written"
    return result.returncode, (result.stdout + result.stderr).splitlines()


def host_traceback(lines: list[str]) -> list[str]:
    """Lines of a Python traceback that are not the guest's or componentize-py's own output."""
    return [
        line
        for line in lines
        if ("Traceback" in line or line.lstrip().startswith('File "'))
        and "[guest " not in line
        and "[componentize-py]" not in line
    ]


#: Which frontend builds which case. The hook edge turns every failure into its paragraph the same
#: way (the quick suite checks each paragraph: test_hatch_validation.py, test_hatch_build.py,
#: test_componentize_os_errors.py); what a frontend can change is only how it relays the backend's
#: output. So a failing init (the guest's output, then ours) goes through all four frontends, and each
#: other case through two, every frontend relaying at least two kinds of failure.
PAIRS = [
    *(("failing-init", frontend) for frontend in FRONTENDS),
    ("option-typo", "hatch"),
    ("option-typo", "uv"),
    ("missing-dirs-directory", "build"),
    ("missing-dirs-directory", "pip"),
    ("failing-componentize-py", "hatch"),
    ("failing-componentize-py", "pip"),
]


@pytest.mark.parametrize(("case", "frontend"), PAIRS, ids=[f"{case}-{frontend}" for case, frontend in PAIRS])
def test_one_paragraph_no_traceback(
    frontend: str, case: str, tmp_path: Path, environment: dict[str, str], greeter_component: bytes
) -> None:
    spec = CASES[case]
    project = spec.make(tmp_path / "project", greeter_component)
    code, lines = build(frontend, project, {**quiet_environ(), **environment})
    log = "\n".join(lines)
    assert code != 0, log
    # pip indents the backend's output; the message is one line of its own.
    ours = [index for index, line in enumerate(lines) if line.strip() == spec.message]
    assert ours, log
    assert host_traceback(lines) == [], log
    if spec.shown_before is not None:
        theirs = [index for index, line in enumerate(lines) if spec.shown_before in line]
        assert theirs and theirs[0] < ours[0], log


@pytest.mark.parametrize(("frontend", "verbose"), [("hatch", "-v"), ("build", "HATCH_VERBOSE=1")])
def test_traceback_on_request(frontend: str, verbose: str, tmp_path: Path, environment: dict[str, str]) -> None:
    project = _option_typo(tmp_path / "project", b"")
    env = {**quiet_environ(), **environment}
    if verbose == "HATCH_VERBOSE=1":
        env["HATCH_VERBOSE"] = "1"
    code, lines = build(frontend, project, env, verbose=verbose == "-v")
    log = "\n".join(lines)
    assert code != 0
    assert "Traceback (most recent call last):" in log
    assert "hatch_component_init/hatch/config.py" in log  # where the option was refused
    # The message is still the last word of the hook.
    assert lines.index(CASES["option-typo"].message) > max(i for i, line in enumerate(lines) if "Traceback" in line)
