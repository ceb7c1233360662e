"""Content-addressed caches of the hooks' outputs, kept outside any build directory.

Builds happen in throw-away places (``pip wheel .`` and ``python -m build``
copy the project to a temp dir), so the caches live in the user's cache dir.
What each one's key covers is in hatch/keys.py. A hit never imports Wasmtime:
hashing an 18 MB component takes ~10 ms, a Wasmtime run takes seconds.
"""

from __future__ import annotations

from pathlib import Path

from hatch_component_init.file_cache import (
    CACHE_DIR_ENV,
    FileCache,
    default_cache_dir,
    file_digest,
    prune_least_recently_used,
)

__all__ = [
    "CACHE_DIR_ENV",
    "ComponentCache",
    "FileCache",
    "PrecompiledCache",
    "SnapshotCache",
    "default_cache_dir",
    "file_digest",
    "prune_least_recently_used",
]


class SnapshotCache(FileCache):
    """Pre-initialized components, keyed by ``keys.snapshot_key``."""

    KIND = "snapshots"

    @property
    def snapshots(self) -> Path:
        return self.entries


class ComponentCache(FileCache):
    """componentize-py outputs, keyed by ``keys.componentize_key`` (found through hatch/app_manifest.py)."""

    KIND = "components"


class PrecompiledCache(FileCache):
    """Precompiled (serialized) snapshots, keyed by ``keys.precompile_key``."""

    KIND = "precompiled"
    SUFFIX = ".cwasm"
