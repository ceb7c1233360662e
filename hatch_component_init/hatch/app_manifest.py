"""What each componentize-py build of some sources took from `site-packages`, kept beside the components cache.

The components cache is looked up in two steps, like ccache's direct mode: the
sources give a key before anything runs (keys.componentize_source_key), and
this manifest lists, most recent first, the sets of `site-packages` entries
that builds of those sources imported (site_packages.imported_tops). A lookup
tries each set: its key (keys.componentize_key) covers what provides those
entries in the environment the lookup runs in, so a manifest only says where
to look; a wrong or damaged one costs a miss, never a wrong component.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from hatch_component_init.fileio import atomic_write

from .cache import prune_least_recently_used

__all__ = ["MANIFESTS_DIR", "manifest_path", "read_manifest", "record_imports"]

#: Beside `components/`, whose entries it points to.
MANIFESTS_DIR = "component-imports"
_SUFFIX = ".json"
#: Sets kept per source key: one per environment that provides other versions of what the app imports.
MAX_SETS = 8
#: Manifests kept (a few hundred bytes each); the least recently used beyond this are removed.
MAX_MANIFESTS = 64


def manifest_path(cache_dir: Path, source_key: str) -> Path:
    return cache_dir / MANIFESTS_DIR / f"{source_key}{_SUFFIX}"


def read_manifest(path: Path) -> list[list[str]]:
    """The recorded sets of imported entries, most recent first; none when the file is missing or not ours."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    with contextlib.suppress(OSError):  # recently used: kept by pruning (a read-only cache is still read)
        os.utime(path)
    sets = found.get("imports") if isinstance(found, dict) else None
    if not isinstance(sets, list):
        return []
    return [entry for entry in sets if isinstance(entry, list) and all(isinstance(name, str) for name in entry)]


def record_imports(path: Path, imports: set[str]) -> None:
    """Put ``imports`` first in the manifest at ``path`` (written atomically), and prune old manifests."""
    entry = sorted(imports)
    sets = [entry, *(known for known in read_manifest(path) if known != entry)][:MAX_SETS]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"imports": sets}).encode())
    with contextlib.suppress(OSError):
        others = [other for other in path.parent.glob(f"*{_SUFFIX}") if other != path]
        prune_least_recently_used(others, MAX_MANIFESTS - 1, Path.unlink)
