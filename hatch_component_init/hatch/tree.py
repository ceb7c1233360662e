"""Files that editable builds write into the source tree, and the record kept of each.

An editable install imports the package from the source tree, so the
`component-init` hook writes the snapshot (and the `loader` module) there.
Each such file has a record (a "ledger", in our cache directory, not in the
tree) of its SHA-256, so that ``hatch clean`` removes our files and nothing
else, and, for the snapshot, of the inputs it was made from, so that the
loader can tell when the app changed since (hatch/editable.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hatch_component_init.file_cache import default_cache_dir
from hatch_component_init.fileio import atomic_write

__all__ = ["editable_target", "ledger_path", "read_ledger", "write_in_tree"]


def editable_target(root: Path, destination: str, sources: Mapping[str, str]) -> Path:
    """Where ``destination`` lives in the source tree, undoing the target's `sources` rewrites."""
    for source, replacement in sources.items():
        if destination.startswith(replacement):
            candidate = Path(root, source + destination[len(replacement) :])
            if candidate.parent.is_dir():
                return candidate
    return Path(root, destination)


def ledger_path(target: Path) -> Path:
    """The record of the in-tree file ``target``: one per resolved path, in our cache directory."""
    name = hashlib.sha256(str(target.resolve()).encode()).hexdigest()
    return default_cache_dir() / "editable" / f"{name}.json"


def read_ledger(target: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(ledger_path(target).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def write_in_tree(target: Path, data: bytes, inputs: Mapping[str, str] | None = None) -> None:
    """Write ``data`` to ``target`` in the source tree and record it (with the ``inputs`` it was made from)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != data:
        atomic_write(target, data)
    record: dict[str, Any] = {"path": str(target), "sha256": hashlib.sha256(data).hexdigest()}
    if inputs is not None:
        record["inputs"] = dict(inputs)
    ledger = ledger_path(target)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(ledger, json.dumps(record, sort_keys=True).encode())
