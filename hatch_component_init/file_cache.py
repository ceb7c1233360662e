"""Files kept between runs in the user's cache directory: keyed, written atomically, pruned.

The engine keeps compiled instrumented components here (compile_cache.py) and
the Hatch hooks their snapshots, componentize-py outputs and precompiled
components (hatch/cache.py), each kind in its own subdirectory.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

from .fileio import PendingWrite, atomic_copy, partial_path

__all__ = [
    "CACHE_DIR_ENV",
    "FileCache",
    "StagedCache",
    "cache_warnings",
    "damaged_entry_warning",
    "default_cache_dir",
    "prune_least_recently_used",
    "read_only_cache_warning",
]

#: Environment variable that moves the cache (tests, CI caches, read-only homes).
CACHE_DIR_ENV = "HATCH_COMPONENT_INIT_CACHE_DIR"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
#: What a touch or a removal of an entry fails with in a cache that cannot be written (a read-only mount, no
#: permission).
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
#: Cache directories this process has said are read-only: said once per build, not once per cache kind.
_told_read_only: set[str] = set()


def default_cache_dir() -> Path:
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "hatch-component-init" / "Cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hatch-component-init"


class FileCache:
    """Files stored as ``<dir>/<kind>/<key>-<sha256 of the content><suffix>``, the least recently used ones pruned.

    Every entry vouches for itself: a lookup checks the bytes against the
    checksum in the name, because a damaged entry would otherwise be shipped
    (a snapshot in a wheel) or break every later build with an error that never
    mentions the cache. A damaged entry is removed (in a read-only cache, skipped)
    and the lookup is a miss, so the step runs again; :attr:`damaged` lists those
    entries, for the caller to tell the user.
    """

    #: Components and snapshots of real apps are 20-60 MB each; a few versions per project is plenty.
    DEFAULT_MAX_ENTRIES = 16
    KIND = "files"
    SUFFIX = ".wasm"

    def __init__(self, directory: Path, max_entries: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_entries = self.DEFAULT_MAX_ENTRIES if max_entries is None else max_entries
        #: Entries that lookups found damaged, oldest first.
        self.damaged: list[Path] = []
        #: Those of :attr:`damaged` that could not be removed (a read-only cache), with the reason.
        self.kept_damaged: dict[Path, str] = {}
        #: Set when an entry could not be touched or removed because the cache cannot be written.
        self.read_only = False

    @property
    def entries(self) -> Path:
        return self.directory / self.KIND

    def path_for(self, key: str, digest: str) -> Path:
        """Where the entry of ``key`` whose content has SHA-256 ``digest`` (hex) is stored."""
        return self.entries / f"{key}-{digest}{self.SUFFIX}"

    def get(self, key: str, stage: Path | None = None, *, link: bool = True) -> Path | None:
        """The intact entry of ``key``, if there is one; damaged ones are removed (and listed in :attr:`damaged`).

        With ``stage`` (a path the caller owns: a build's staging dir, its output), the entry is
        hard-linked there (``link=False``, or where that fails: copied), the staged bytes are the ones
        checked, and ``stage`` is returned: what the caller uses is then verified and cannot be
        pruned by another build meanwhile.
        """
        try:
            found = sorted(self.entries.glob(f"{glob.escape(key)}-*{self.SUFFIX}"))
        except OSError:
            return None
        for path in found:
            digest = path.name[len(key) + 1 : -len(self.SUFFIX)]
            if not _SHA256.fullmatch(digest):
                continue  # another key's entry that only starts like this one (or not ours)
            if stage is None:
                hit = path if self._intact(path, path, digest) else None
            else:
                hit = self._staged(path, digest, Path(stage), link)
            if hit is not None:
                self._touch(path)
                return hit
        return None

    def _touch(self, path: Path) -> None:
        """Mark the entry as recently used for pruning (a hard link shares the time, so staging keeps it)."""
        try:
            os.utime(path)
        except OSError as e:
            # A read-only cache (a shared CI cache mounted read-only) cannot be touched, and its entries are still good.
            self._note_refused(e)

    def _note_refused(self, error: OSError) -> None:
        """Remember that the cache cannot be written, where ``error`` says so."""
        if error.errno in _READ_ONLY:
            self.read_only = True

    def _staged(self, entry: Path, digest: str, stage: Path, link: bool) -> Path | None:
        partial = partial_path(stage)
        try:
            place(entry, partial, link=link)
        except FileNotFoundError:
            return None  # removed meanwhile by another build's pruning
        except OSError:
            partial.unlink(missing_ok=True)
            return None
        try:
            if not self._intact(partial, entry, digest):
                return None
            os.replace(partial, stage)
        finally:
            partial.unlink(missing_ok=True)
        return stage

    def _intact(self, path: Path, entry: Path, digest: str) -> bool:
        """Whether ``path`` (the entry, or a copy of it) holds the bytes the entry's name vouches for."""
        try:
            # The size first: an empty (or truncated to nothing) entry needs no hashing to be refused.
            intact = path.stat().st_size > 0 and file_digest(path) == digest
        except OSError:
            return False  # removed meanwhile by another build's pruning
        if not intact:
            try:
                entry.unlink()
            except FileNotFoundError:
                pass  # another build removed it meanwhile; either way the lookup is a miss
            except OSError as e:
                # It stays, and each lookup skips it: saying it was removed would be false.
                self.kept_damaged[entry] = e.strerror or type(e).__name__
                self._note_refused(e)
            self.damaged.append(entry)
        return intact

    def put(self, key: str, data: bytes) -> Path:
        """Store ``data`` under ``key`` atomically: a concurrent reader sees all of it or nothing."""
        return self.finish_put(self.start_put(key, data))

    def start_put(self, key: str, data: bytes) -> PendingWrite:
        """Begin :meth:`put` (the data is written on a thread); :meth:`finish_put` or ``discard()`` it."""
        path = self.path_for(key, hashlib.sha256(data).hexdigest())
        path.parent.mkdir(parents=True, exist_ok=True)
        return PendingWrite(path, data)

    def finish_put(self, pending: PendingWrite) -> Path:
        """Put the entry begun by :meth:`start_put` in place."""
        pending.commit()
        self.prune(keep=pending.path)
        return pending.path

    def put_file(self, key: str, source: Path) -> Path:
        """Store a copy of the file ``source`` under ``key``, atomically."""
        # Hashed before copying: if ``source`` changes meanwhile, the entry fails its check and is made again.
        path = self.path_for(key, file_digest(source))
        atomic_copy(source, path)
        self.prune(keep=path)
        return path

    def prune(self, keep: Path) -> None:
        try:
            entries = [entry for entry in self.entries.glob(f"*{self.SUFFIX}") if entry != keep]
        except OSError:
            return
        prune_least_recently_used(entries, self.max_entries - 1, _unlink)


class StagedCache:
    """A :class:`FileCache` whose hits and new entries are handed out as files the build owns.

    What goes into a wheel is force-included by path when the wheel is
    assembled, later in the build; another build's pruning could remove a cache
    entry before then. Each path this returns is a hard link (or a copy) in a
    fresh place from ``place()``, which only the build removes.
    """

    def __init__(self, cache: FileCache, place: Callable[[], Path]) -> None:
        self.cache = cache
        self._place = place
        self.KIND = cache.KIND

    @property
    def damaged(self) -> list[Path]:
        return self.cache.damaged

    @property
    def kept_damaged(self) -> dict[Path, str]:
        return self.cache.kept_damaged

    @property
    def read_only(self) -> bool:
        return self.cache.read_only

    @property
    def directory(self) -> Path:
        return self.cache.directory

    def get(self, key: str) -> Path | None:
        return self.cache.get(key, stage=self._place())

    def put(self, key: str, data: bytes) -> Path:
        entry = self.cache.put(key, data)
        staged = self._place()
        try:
            place(entry, staged)
        except OSError:  # pruned already by another build: the bytes are here
            staged.write_bytes(data)
        return staged


def place(source: Path, target: Path, *, link: bool = True) -> None:
    """Make ``target`` a hard link to ``source`` (``link=False``, or where that fails: a copy)."""
    if link:
        try:
            os.link(source, target)
            return
        except FileNotFoundError:
            raise
        except OSError:
            pass  # another file system, a file system without links, an immutable entry: copy
    shutil.copyfile(source, target)


def cache_warnings(cache: FileCache | StagedCache) -> list[str]:
    """What to tell the user after lookups in ``cache``: each damaged entry (removed or skipped), and (once per
    process and cache directory) that the cache is read-only."""
    lines = [damaged_entry_warning(cache.KIND, path, cache.kept_damaged.get(path)) for path in cache.damaged]
    cache.damaged.clear()
    cache.kept_damaged.clear()
    where = str(cache.directory)
    if cache.read_only and where not in _told_read_only:
        _told_read_only.add(where)
        lines.append(read_only_cache_warning(where))
    return lines


def read_only_cache_warning(directory: str) -> str:
    return (
        f"The cache in `{directory}` is read-only: its entries are used as they are, and what is "
        "not in it is made without being cached"
    )


def damaged_entry_warning(kind: str, path: Path, kept: str | None = None) -> str:
    """What to tell the user about an entry :meth:`FileCache.get` found damaged (``kind``: its KIND): removed,
    or where removing it failed (``kept``: why), skipped."""
    if kept is not None:
        return (
            f"Skipped a damaged entry of the {kind} cache, `{path}` (its bytes no longer match the SHA-256 "
            f"in its name), which could not be removed ({kept}); it is made again"
        )
    return (
        f"Removed a damaged entry of the {kind} cache, `{path}` (its bytes no longer match the SHA-256 "
        "in its name); it is made again"
    )


def file_digest(path: str | Path) -> str:
    """The SHA-256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
