"""Files kept between runs in the user's cache directory: keyed, written atomically, pruned.

The engine keeps compiled instrumented components here (compile_cache.py) and
the Hatch hooks their snapshots, componentize-py outputs and precompiled
components (hatch/cache.py), each kind in its own subdirectory.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Callable

from .fileio import PendingWrite, atomic_copy

__all__ = ["CACHE_DIR_ENV", "FileCache", "default_cache_dir", "prune_least_recently_used"]

#: Environment variable that moves the cache (tests, CI caches, read-only homes).
CACHE_DIR_ENV = "HATCH_COMPONENT_INIT_CACHE_DIR"


def default_cache_dir() -> Path:
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "hatch-component-init" / "Cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hatch-component-init"


class FileCache:
    """Files stored as ``<dir>/<kind>/<key><suffix>``, the least recently used ones pruned."""

    #: Components and snapshots of real apps are 20-60 MB each; a few versions per project is plenty.
    DEFAULT_MAX_ENTRIES = 16
    KIND = "files"
    SUFFIX = ".wasm"

    def __init__(self, directory: Path, max_entries: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_entries = self.DEFAULT_MAX_ENTRIES if max_entries is None else max_entries

    @property
    def entries(self) -> Path:
        return self.directory / self.KIND

    def path_for(self, key: str) -> Path:
        return self.entries / f"{key}{self.SUFFIX}"

    def get(self, key: str) -> Path | None:
        path = self.path_for(key)
        try:
            # Touching marks the entry as recently used for pruning.
            os.utime(path)
        except OSError:
            return None
        return path

    def find(self, key: str) -> Path | None:
        """The entry stored as ``<key>-<anything>`` (e.g. its checksum), if there is one."""
        try:
            found = sorted(self.entries.glob(f"{key}-*{self.SUFFIX}"))
        except OSError:
            return None
        return self.get(found[0].name[: -len(self.SUFFIX)]) if found else None

    def put(self, key: str, data: bytes) -> Path:
        """Store ``data`` under ``key`` atomically: a concurrent reader sees all of it or nothing."""
        return self.finish_put(self.start_put(key, data))

    def start_put(self, key: str, data: bytes) -> PendingWrite:
        """Begin :meth:`put` (the data is written on a thread); :meth:`finish_put` or ``discard()`` it."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return PendingWrite(path, data)

    def finish_put(self, pending: PendingWrite) -> Path:
        """Put the entry begun by :meth:`start_put` in place."""
        pending.commit()
        self.prune(keep=pending.path)
        return pending.path

    def put_file(self, key: str, source: Path) -> Path:
        """Store a copy of the file ``source`` under ``key``, atomically."""
        path = self.path_for(key)
        atomic_copy(source, path)
        self.prune(keep=path)
        return path

    def prune(self, keep: Path) -> None:
        try:
            entries = [entry for entry in self.entries.glob(f"*{self.SUFFIX}") if entry != keep]
        except OSError:
            return
        prune_least_recently_used(entries, self.max_entries - 1, _unlink)


def _unlink(path: Path) -> None:
    path.unlink()


def prune_least_recently_used(entries: list[Path], keep: int, remove: Callable[[Path], None]) -> None:
    """Remove all but the ``keep`` most recently used (touched) of ``entries``."""
    dated = []
    for entry in entries:
        try:
            dated.append((entry.stat().st_mtime, entry))
        except OSError:
            continue  # removed meanwhile by another build
    dated.sort(key=lambda pair: pair[0], reverse=True)
    for _mtime, stale in dated[max(keep, 0) :]:
        # Another build may be pruning too; the cache stays correct either way.
        with contextlib.suppress(OSError):
            remove(stale)
