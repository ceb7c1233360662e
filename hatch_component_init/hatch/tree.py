"""Files that editable builds write into the source tree, and the record kept of each.

An editable install imports the package from the source tree, so the
`component-init` hook writes the snapshot (and the `loader` module) there.
Each such file has a record (a "ledger", in our cache directory, not in the
tree) of its SHA-256, so that ``hatch clean`` removes our files and nothing
else, and, for the snapshot, of the inputs it was made from, so that the
loader can tell when the app changed since (hatch/editable.py).

A record vouches for itself like every cache entry: it carries the SHA-256 of
the rest of it, checked when it is read. A damaged record is removed and
counts as none: the snapshot is rebuilt, and `hatch clean` leaves the file
(nothing vouches that it is ours).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hatch_component_init.file_cache import default_cache_dir
from hatch_component_init.fileio import atomic_write

__all__ = ["damaged_record_warning", "editable_target", "ledger_path", "read_ledger", "write_in_tree"]

#: The field of a record holding the SHA-256 of the rest of it.
_CHECK = "check"


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


def read_ledger(target: Path, damaged: list[Path] | None = None) -> dict[str, Any] | None:
    """The record of ``target``, if there is an intact one; a damaged one is removed (and added to ``damaged``)."""
    ledger = ledger_path(target)
    try:
        text = ledger.read_bytes()
    except OSError:
        return None
    try:
        found = json.loads(text)
        intact = isinstance(found, dict) and found.pop(_CHECK, None) == _checksum(found)
    except ValueError:
        intact = False
    if not intact:
        with contextlib.suppress(OSError):
            ledger.unlink()
        if damaged is not None:
            damaged.append(ledger)
        return None
    return found  # type: ignore[no-any-return]


def damaged_record_warning(ledger: Path, target: str) -> str:
    """What ``hatch clean`` says of a damaged record of the in-tree file ``target``, which it then leaves."""
    return (
        f"Removed a damaged entry of the editable cache, `{ledger}` (its content no longer matches the SHA-256 "
        f"it carries); `{target}` is left in the source tree, remove it yourself if it is not yours"
    )


def _checksum(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def write_in_tree(target: Path, data: bytes, inputs: Mapping[str, str] | None = None) -> None:
    """Write ``data`` to ``target`` in the source tree and record it (with the ``inputs`` it was made from)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != data:
        atomic_write(target, data)
    record: dict[str, Any] = {"path": str(target), "sha256": hashlib.sha256(data).hexdigest()}
    if inputs is not None:
        record["inputs"] = dict(inputs)
    record[_CHECK] = _checksum(record)
    ledger = ledger_path(target)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(ledger, json.dumps(record, sort_keys=True).encode())
