"""What a killed run leaves behind, and its removal by the next run.

A build killed by SIGKILL (or a CI timeout's SIGTERM, which hatchling does
not turn into cleanup) leaves the files it was writing: temp and partial
files in the cache directories (tens of MB each) and next to the outputs,
and its staging directories in the system's temp dir. Pruning counts only
finished entries, so nothing else ever removes them. Each of these names
carries the PID of the process that made it (fileio.py, :func:`staging_dir`):
one whose process is gone, or that is older than :data:`MAX_AGE` (a PID
reused since, or a process of another machine sharing the cache), is debris.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from .fileio import in_progress_owner

__all__ = ["MAX_AGE", "STAGING_PREFIX", "process_gone", "staging_dir", "sweep", "sweep_cache", "sweep_staging"]

#: Older than this, an in-progress file is debris whoever made it: no step of a build takes hours.
MAX_AGE = 6 * 3600
#: Staging directories are ``<tempdir>/hatch-component-init-<pid>-<random>``.
STAGING_PREFIX = "hatch-component-init-"
#: (``mkdtemp`` adds 8 random characters; without a PID: made by an earlier release.)
_STAGING = re.compile(re.escape(STAGING_PREFIX) + r"(?:(\d+)-)?[a-z0-9_]{8}")


def staging_dir() -> Path:
    """A fresh directory outside the project for what this process puts in a wheel, named with its PID."""
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-"))


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (a process of another user counts as running)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


def _is_debris(path: Path, pid: int | None, now: float) -> bool:
    try:
        age = now - path.lstat().st_mtime
    except OSError:
        return False  # removed meanwhile
    return age > MAX_AGE or (pid is not None and process_gone(pid))


def _remove(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        return False  # a read-only cache, or another run removing it too
    return True


def sweep(directories: Iterable[Path], of: str | None = None) -> list[Path]:
    """Remove our temp and partial files (and folders) in ``directories`` that are debris; what was removed.

    ``of``: only those of the file named so (next to a project's file, where other tools write too).
    """
    now = time.time()
    removed = []
    for directory in directories:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if of is not None and not name.startswith(f".{of}."):
                continue
            pid = in_progress_owner(name)
            path = Path(directory, name)
            if pid is not None and _is_debris(path, pid, now) and _remove(path):
                removed.append(path)
    return removed


def sweep_cache(cache_dir: Path) -> list[Path]:
    """:func:`sweep` of every kind of entry in the cache directory ``cache_dir``."""
    try:
        kinds = [entry for entry in Path(cache_dir).iterdir() if entry.is_dir()]
    except OSError:
        return []
    return sweep(kinds)


def sweep_staging(temp_dir: Path | None = None) -> list[Path]:
    """Remove the staging directories of runs that are gone (or older than :data:`MAX_AGE`) from the temp dir."""
    temp_dir = Path(temp_dir or tempfile.gettempdir())
    now = time.time()
    removed = []
    try:
        names = os.listdir(temp_dir)
    except OSError:
        return removed
    for name in names:
        found = _STAGING.fullmatch(name)
        if found is None:
            continue
        path = temp_dir / name
        pid = int(found.group(1)) if found.group(1) else None
        if _is_debris(path, pid, now) and _remove(path):
            removed.append(path)
    return removed
