"""A GitHub Actions workflow's `run:` steps, run here: what a job's commands do on this machine.

The steps that use an action (checkout, setup-python, the caches, artifacts) are
GitHub's to run; the `run:` steps are plain commands, run with the shell and
options GitHub uses on Linux runners (`bash --noprofile --norc -eo pipefail`),
with the step's `env`, in order, each one required to succeed. The `${{ ... }}`
expressions they use are replaced from the contexts given; any other is an error.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatch_support import run_build

REPO = Path(__file__).resolve().parent.parent
#: The example workflow of docs/releasing.md, for a project that uses the hooks.
EXAMPLE_WORKFLOW = REPO / "docs" / "examples" / "release.yml"
#: hatch-component-init's own release workflow.
OWN_WORKFLOW = REPO / ".github" / "workflows" / "release.yml"

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass(frozen=True)
class Step:
    name: str
    run: str
    env: dict[str, str]


def load(workflow: Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(workflow.read_text())
    assert isinstance(data, dict)
    return data


def run_steps(workflow: Path, job: str) -> list[Step]:
    """The `run:` steps of ``job``, in order."""
    steps = load(workflow)["jobs"][job]["steps"]
    found = []
    for step in steps:
        if "run" not in step:
            continue
        assert "if" not in step and "shell" not in step, f"{job}: a `run:` step the suite does not know how to run"
        found.append(Step(step.get("name", ""), step["run"], {k: str(v) for k, v in step.get("env", {}).items()}))
    return found


def expand(text: str, contexts: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in contexts, f"the suite gives no value for `${{{{ {name} }}}}`"
        return contexts[name]

    return _EXPRESSION.sub(value, text)


def run_job(workflow: Path, job: str, cwd: Path, contexts: dict[str, str], env: dict[str, str]) -> str:
    """Run the `run:` steps of ``job`` in ``cwd``, with this Python's `bin` first on PATH; their output."""
    import os

    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    log = []
    for step in run_steps(workflow, job):
        step_env = {**env, "PATH": path, **{name: expand(value, contexts) for name, value in step.env.items()}}
        command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", expand(step.run, contexts)]
        log.append(f"# step: {step.name}\n" + run_build(command, cwd=cwd, env=step_env, timeout=1200))
    return "\n".join(log)
