"""Third-party pure-Python packages for a componentize-py app, installed into a private folder.

componentize-py bundles what is on its python path; the `requirements` of the
`componentize-py` hook are installed with pip (``--target``) into a folder in
our cache directory, which the hook adds to that path. The folder is keyed by
the requirement strings and what decides how pip resolves them (hatch/keys.py),
so it is installed once and reused; pin versions to control what a fresh install picks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from hatch_component_init.errors import BuildStepError, OptionValueError

from .cache import prune_least_recently_used
from .keys import requirements_key

__all__ = ["REQUIREMENTS_DIR", "install_requirements"]

REQUIREMENTS_DIR = "requirements"
#: Installed folders kept; the least recently used beyond this are removed.
MAX_ENTRIES = 16


def install_requirements(requirements: list[str], cache_dir: Path, hook_name: str) -> tuple[Path, bool]:
    """The folder holding ``requirements``, installed now if needed; and whether it was installed now."""
    key = requirements_key(requirements)
    parent = cache_dir / REQUIREMENTS_DIR
    target = parent / key
    if target.is_dir():
        os.utime(target)  # recently used: kept by pruning
        return target, False

    import importlib.util

    if importlib.util.find_spec("pip") is None:
        raise BuildStepError(
            f"Option `requirements` for build hook `{hook_name}` needs pip in the build environment: isolated "
            "builds install it (the hook declares it as a build dependency); without build isolation, "
            "install pip into the environment"
        )
    parent.mkdir(parents=True, exist_ok=True)
    partial = parent / f".{key}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        sys.executable, "-m", "pip", "install", "--target", str(partial),
        "--no-compile", "--disable-pip-version-check", "--no-input", "--no-warn-script-location", "--quiet",
        *requirements,
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BuildStepError(
                f"Installing the `requirements` of build hook `{hook_name}` ({', '.join(requirements)}) "
                f"failed (pip exit code {result.returncode}); pip's output is above",
                tool="pip",
                output=(result.stderr or result.stdout).strip(),
            )
        _check_pure(partial, hook_name)
        try:
            os.rename(partial, target)
        except OSError:
            if not target.is_dir():  # not another build that got there first
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    _prune(parent, keep=target)
    return target, True


def _check_pure(folder: Path, hook_name: str) -> None:
    """Refuse compiled packages: pip installed them for this machine, and the component cannot load them."""
    for wheel_file in sorted(folder.glob("*.dist-info/WHEEL")):
        text = wheel_file.read_text(encoding="utf-8", errors="replace")
        if "root-is-purelib: true" not in text.lower():
            distribution = wheel_file.parent.name.removesuffix(".dist-info")
            raise OptionValueError(
                f"Option `requirements` for build hook `{hook_name}`: `{distribution}` is not a pure-Python "
                "package (pip installed compiled code built for this machine), and a componentize-py "
                "component can only use pure-Python packages from it"
            )


def _prune(parent: Path, keep: Path) -> None:
    try:
        entries = [entry for entry in parent.iterdir() if entry != keep and not entry.name.startswith(".")]
    except OSError:
        return
    prune_least_recently_used(entries, MAX_ENTRIES - 1, shutil.rmtree)
