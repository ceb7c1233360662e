"""Content-addressed caches of pre-initialized components (and, in ``components/``, of
componentize-py outputs: hatch/app_key.py), kept outside any build directory.

Builds happen in throw-away places (``pip wheel .`` and ``python -m build``
copy the project to a temp dir), so the cache lives in the user's cache dir.
A key covers everything that can change the snapshot: the input bytes, the
options, the files the guest may read, the file of the `host` module (not
what it imports; host functions must be deterministic), and the versions of
this tool and of Wasmtime. A hit never imports Wasmtime: hashing an 18 MB component takes
~10 ms, a Wasmtime run takes seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from hatch_component_init.__about__ import __version__
from hatch_component_init.fileio import atomic_write

if TYPE_CHECKING:
    from hatch_component_init.options import InitOptions

__all__ = [
    "CACHE_DIR_ENV",
    "ComponentCache",
    "FileCache",
    "PrecompiledCache",
    "SnapshotCache",
    "default_cache_dir",
    "prune_least_recently_used",
    "snapshot_key",
    "tree_digest",
]

#: Environment variable that moves the cache (tests, CI caches, read-only homes).
CACHE_DIR_ENV = "HATCH_COMPONENT_INIT_CACHE_DIR"
#: Bump when the meaning of a key changes, so old entries are never mistaken for new ones.
_KEY_FORMAT = 1
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "hatch-component-init" / "Cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hatch-component-init"


def wasmtime_version() -> str:
    """The installed wasmtime version, read without importing it (that costs ~80 ms)."""
    import importlib.util

    spec = importlib.util.find_spec("wasmtime")
    if spec is not None and spec.origin:
        site_dir = Path(spec.origin).parent.parent
        # The dist-info next to the package is the one that installed it (if there is just one).
        found = list(site_dir.glob("wasmtime-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len("wasmtime-") : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmtime")
    except PackageNotFoundError:
        return "unknown"


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root: Path, skip: Callable[[str, bool], bool] | None = None, *, with_dirs: bool = True) -> str:
    """A digest of every path and file under ``root``, independent of walk order and timestamps.

    ``skip(path, is_dir)`` leaves out a file or a whole directory (``path`` as
    os.walk gives it: ``root`` joined with the relative path). ``with_dirs=False``
    leaves out directories themselves (not their files), so that a directory a
    build creates for a skipped file does not count.
    """
    entries: list[list[str]] = []
    for current, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if skip is not None:
            dirnames[:] = [name for name in dirnames if not skip(os.path.join(current, name), True)]
        relative = os.path.relpath(current, root).replace(os.sep, "/")
        for name in dirnames:
            path = os.path.join(current, name)
            if os.path.islink(path):
                entries.append([f"{relative}/{name}", "link", os.readlink(path)])
            elif with_dirs:
                entries.append([f"{relative}/{name}", "dir"])
        for name in sorted(filenames):
            path = os.path.join(current, name)
            if skip is not None and skip(path, False):
                continue
            if os.path.isfile(path):
                entries.append([f"{relative}/{name}", "file", file_digest(path)])
            else:
                # A dangling link or a special file: what the guest sees is only its name.
                entries.append([f"{relative}/{name}", "other"])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def path_digest(path: Path, skip: Callable[[str, bool], bool] | None = None, *, with_dirs: bool = True) -> str:
    """:func:`tree_digest` of a directory, the content digest of a file, or a marker for a missing path."""
    if path.is_dir():
        return tree_digest(path, skip, with_dirs=with_dirs)
    if path.is_file():
        return file_digest(str(path))
    return "missing"


def snapshot_key(component: bytes, options: InitOptions, host: tuple[str, Path] | None = None) -> str:
    """The cache key of pre-initializing ``component`` with ``options``.

    The timeout is left out on purpose: it can only stop a run, never change a
    successful one's result. ``host`` is the hook's `host` value with the file
    of the module it names: the key covers that file's bytes and nothing it
    imports, and assumes the host functions answer the same every time.
    """
    wasi: dict[str, Any] | None = None
    if options.wasi.enabled:
        wasi = {
            "dirs": [[guest, tree_digest(host)] for host, guest in options.wasi.dirs],
            # Order is kept: the guest can observe the order of its environment.
            "env": [list(pair) for pair in options.wasi.env],
        }
    header = {
        "format": _KEY_FORMAT,
        "hatch-component-init": __version__,
        "wasmtime": wasmtime_version(),
        "component": hashlib.sha256(component).hexdigest(),
        "init-func": options.init_func,
        "keep-init-func": options.keep_init_func,
        "max-memory": options.max_memory,
        "wasi": wasi,
        "host": None if host is None else {"spec": host[0], "module": file_digest(str(host[1]))},
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()


class FileCache:
    """Files stored as ``<dir>/<kind>/<key><suffix>``, the least recently used ones pruned."""

    #: Components and snapshots of real apps are 20-60 MB each; a few versions per project is plenty.
    DEFAULT_MAX_ENTRIES = 16
    KIND = "files"
    SUFFIX = ".wasm"

    def __init__(self, directory: Path, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.directory = Path(directory)
        self.max_entries = max_entries

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

    def put(self, key: str, data: bytes) -> Path:
        """Store ``data`` under ``key`` atomically: a concurrent reader sees all of it or nothing."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        self.prune(keep=path)
        return path

    def put_file(self, key: str, source: Path) -> Path:
        """Store a copy of the file ``source`` under ``key``, atomically."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        self.prune(keep=path)
        return path

    def prune(self, keep: Path) -> None:
        try:
            entries = [entry for entry in self.entries.glob(f"*{self.SUFFIX}") if entry != keep]
        except OSError:
            return
        prune_least_recently_used(entries, self.max_entries - 1, _unlink)


class SnapshotCache(FileCache):
    """Pre-initialized components, keyed by :func:`snapshot_key`."""

    KIND = "snapshots"

    @property
    def snapshots(self) -> Path:
        return self.entries


class ComponentCache(FileCache):
    """componentize-py outputs, keyed by ``componentize_key`` (hatch/app_key.py)."""

    KIND = "components"


class PrecompiledCache(FileCache):
    """Precompiled (serialized) snapshots, keyed by ``precompile_key`` (hatch/precompile.py)."""

    KIND = "precompiled"
    SUFFIX = ".cwasm"


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
