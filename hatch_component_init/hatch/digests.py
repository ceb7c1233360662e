"""Digests of files and directory trees, independent of walk order and timestamps (what keys are made of)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

from hatch_component_init.file_cache import file_digest

__all__ = ["file_digest", "path_digest", "tree_digest"]

#: ``(path, is_dir) -> True`` to leave a path out of a digest.
Skip = Callable[[str, bool], bool]
#: ``path -> digest`` for a file whose digest is not its bytes' (see hatch/keys.py), or None for its bytes'.
FileRule = Callable[[str], "str | None"]


def tree_digest(root: Path, skip: Skip | None = None, *, with_dirs: bool = True, rule: FileRule | None = None) -> str:
    """A digest of every path and file under ``root``, independent of walk order and timestamps.

    ``skip(path, is_dir)`` leaves out a file or a whole directory (``path`` as
    os.walk gives it: ``root`` joined with the relative path). ``with_dirs=False``
    leaves out directories themselves (not their files), so that a directory a
    build creates for a skipped file does not count. ``rule(path)`` may give a
    file's digest instead of its bytes' SHA-256.
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
                digest = rule(path) if rule is not None else None
                entries.append([f"{relative}/{name}", "file", digest if digest is not None else file_digest(path)])
            else:
                # A dangling link or a special file: what the guest sees is only its name.
                entries.append([f"{relative}/{name}", "other"])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def path_digest(path: Path, skip: Skip | None = None, *, with_dirs: bool = True, rule: FileRule | None = None) -> str:
    """:func:`tree_digest` of a directory, the content digest of a file, or a marker for a missing path."""
    if path.is_dir():
        return tree_digest(path, skip, with_dirs=with_dirs, rule=rule)
    if path.is_file():
        digest = rule(str(path)) if rule is not None else None
        return digest if digest is not None else file_digest(str(path))
    return "missing"
