"""The ``componentize-py`` build hook: build a component from a Python app earlier in the same build.

componentize-py is a dependency of the project being built (list it in
``[build-system] requires``), not of this package: it is run as
``sys.executable`` calling its console-script entry point (the package has no
``__main__``), so that the build environment's copy is used.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from functools import cached_property
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

from .config import OptionReader

__all__ = ["ComponentizePyBuildHook"]

_OPTIONS = ("wit", "world", "module", "python-path", "output")
#: What the `componentize-py` console script does; `python -m componentize_py` does not exist.
_RUN_COMPONENTIZE_PY = (
    "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"
)


class ComponentizePyBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "componentize-py"

    @cached_property
    def options(self) -> OptionReader:
        return OptionReader(self.PLUGIN_NAME, self.config)

    @cached_property
    def config_wit(self) -> str:
        return self.options.string("wit", default="wit")

    @cached_property
    def config_world(self) -> str | None:
        # Optional: componentize-py picks the only world of the package when it is not given.
        return self.options.optional_string("world")

    @cached_property
    def config_module(self) -> str:
        return self.options.string("module")

    @cached_property
    def config_python_path(self) -> list[str]:
        return self.options.string_list("python-path", default=["."])

    @cached_property
    def config_output(self) -> str:
        """The component's path relative to the root; kept inside the project so ``clean`` stays inside it too."""
        return self.options.relative_path("output", self.options.string("output"))

    @property
    def output_path(self) -> Path:
        return Path(self.root, self.config_output)

    def command(self, output: Path) -> list[str]:
        command = [sys.executable, "-c", _RUN_COMPONENTIZE_PY, "-d", self.config_wit]
        if self.config_world is not None:
            command += ["-w", self.config_world]
        command.append("componentize")
        for path in self.config_python_path:
            command += ["-p", path]
        command += [self.config_module, "-o", str(output)]
        return command

    def validate(self) -> None:
        """Read every option now, so that a bad one fails before anything runs."""
        for option in self.options.unknown_options(_OPTIONS):
            self.app.display_warning(f"Unknown option `{option}` for build hook `{self.PLUGIN_NAME}` is ignored")
        self.command(self.output_path)

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:  # noqa: ARG002
        self.validate()
        if self.target_name == "sdist":
            # An sdist ships the app's sources; the component is rebuilt when a wheel is built from it.
            return
        _require_componentize_py()

        output = self.output_path
        output.parent.mkdir(parents=True, exist_ok=True)
        # componentize-py writes its output in place; build next to the target and rename, so
        # a failed or interrupted build never leaves a truncated component for the next hook.
        partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
        command = self.command(partial)
        self.app.display_waiting(f"Building component `{self.config_output}` with componentize-py")
        self.app.display_debug(f"Running: componentize-py {shlex.join(command[3:])}")
        started = time.perf_counter()
        try:
            result = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=False)
            if result.stdout.strip():
                self.app.display_debug(result.stdout.rstrip())
            if result.returncode != 0:
                details = (result.stderr or result.stdout).strip()
                message = f"componentize-py failed (exit code {result.returncode}) building `{self.config_output}`"
                if details:
                    message = f"{message}:\n{details}"
                raise RuntimeError(message)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
        seconds = time.perf_counter() - started
        size = output.stat().st_size / 1_000_000
        self.app.display_success(f"Built component `{self.config_output}` ({size:.1f} MB) in {seconds:.1f} s")

    def clean(self, versions: list[str]) -> None:  # noqa: ARG002
        # Only the file this hook writes: the output directory may hold the user's own files.
        self.output_path.unlink(missing_ok=True)


def _require_componentize_py() -> None:
    import importlib.util

    if importlib.util.find_spec("componentize_py") is None:
        message = (
            "Build hook `componentize-py` needs componentize-py in the build environment; "
            'add it to `[build-system] requires`, e.g. "componentize-py==0.25.1"'
        )
        raise ModuleNotFoundError(message)
