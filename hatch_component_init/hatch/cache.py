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

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from hatch_component_init.__about__ import __version__
from hatch_component_init.file_cache import (
    CACHE_DIR_ENV,
    FileCache,
    default_cache_dir,
    file_digest,
    prune_least_recently_used,
)
from hatch_component_init.versions import wasmtime_version

if TYPE_CHECKING:
    from hatch_component_init.options import InitOptions

__all__ = [
    "CACHE_DIR_ENV",
    "ComponentCache",
    "FileCache",
    "PrecompiledCache",
    "SnapshotCache",
    "default_cache_dir",
    "file_digest",
    "inputs_key",
    "prune_least_recently_used",
    "snapshot_key",
    "tree_digest",
]

#: Bump when the meaning of a key changes, so old entries are never mistaken for new ones.
_KEY_FORMAT = 1


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
    return inputs_key(options, host, hashlib.sha256(component).hexdigest())


def inputs_key(options: InitOptions, host: tuple[str, Path] | None = None, component: str | None = None) -> str:
    """:func:`snapshot_key` of a component whose SHA-256 (hex) is ``component``; None leaves the component out."""
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
        "component": component,
        "init-func": options.init_func,
        "keep-init-func": options.keep_init_func,
        "reset-first-call": options.reset_first_call,
        "zero-free-memory": options.zero_free_memory,
        "max-memory": options.max_memory,
        "wasi": wasi,
        "host": None if host is None else {"spec": host[0], "module": file_digest(str(host[1]))},
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()


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
