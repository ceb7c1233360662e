"""Third-party pure-Python packages for a componentize-py app, installed into a private folder.

componentize-py bundles what is on its python path; the `requirements` of the
`componentize-py` hook are installed with pip (``--target``) into a folder in
our cache directory, which the hook adds to that path. The folder is keyed by
the requirement strings and what decides how pip resolves them (hatch/keys.py),
so it is installed once and reused; pin versions to control what a fresh install picks.

Like every cache entry, a folder vouches for itself: it is named
``<key>-<digest of its files>``, and checked before componentize-py reads it;
a damaged one (a file changed, removed or added) is removed and installed
again. The `__pycache__` folders componentize-py's guest Python writes there
are left out of the digest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hatch_component_init.errors import BuildStepError, OptionValueError
from hatch_component_init.fileio import in_progress_owner

from .cache import prune_least_recently_used
from .digests import tree_digest
from .keys import requirements_key

__all__ = ["REQUIREMENTS_DIR", "install_requirements"]

REQUIREMENTS_DIR = "requirements"
#: Installed folders kept; the least recently used beyond this are removed.
MAX_ENTRIES = 16


def install_requirements(
    requirements: list[str], cache_dir: Path, hook_name: str, warn: Callable[[str], None] = lambda line: None
) -> tuple[Path, bool]:
    """The folder holding ``requirements``, installed now if needed; and whether it was installed now.

    ``warn`` is told about a damaged folder, which is removed and installed again.
    """
    key = requirements_key(requirements)
    parent = cache_dir / REQUIREMENTS_DIR
    found = _intact_folder(parent, key, warn)
    if found is not None:
        try:
            os.utime(found)  # recently used: kept by pruning
        except OSError:
            pass  # a read-only cache: still good
        return found, False

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
        target = parent / f"{key}-{_folder_digest(partial)}"
        try:
            os.rename(partial, target)
        except OSError:
            if not target.is_dir():  # not another build that got there first
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    _prune(parent, keep=target)
    return target, True


def _folder_digest(folder: Path) -> str:
    """What a folder vouches for: its files' paths and bytes, without the bytecode the guest writes there."""
    return tree_digest(folder, lambda path, is_dir: is_dir and os.path.basename(path) == "__pycache__")


def _intact_folder(parent: Path, key: str, warn: Callable[[str], None]) -> Path | None:
    """The folder of ``key`` whose files match the digest in its name; damaged ones are removed, and told."""
    try:
        found = sorted(entry for entry in parent.iterdir() if entry.name.startswith(f"{key}-"))
    except OSError:
        return None
    for folder in found:
        if folder.is_dir() and _folder_digest(folder) == folder.name[len(key) + 1 :]:
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        warn(
            f"Removed a damaged entry of the {REQUIREMENTS_DIR} cache, `{folder}` (its files no longer match the "
            "digest in its name); it is installed again"
        )
    return None


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
        entries = [entry for entry in parent.iterdir() if entry != keep and in_progress_owner(entry.name) is None]
    except OSError:
        return
    prune_least_recently_used(entries, MAX_ENTRIES - 1, shutil.rmtree)
