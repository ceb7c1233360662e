"""Did-you-mean: the names a typo likely meant, and the project's files and directories to look in.

Every "did you mean" of the package (option names, the `component` path, the
init export, `dirs` and `--dir` directories) picks its candidates with
:func:`close_matches`, so a typo is judged the same way wherever it is made.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["close_matches", "project_paths", "similar_directory"]

#: How alike (difflib's ratio) a candidate must be; difflib's own default.
CUTOFF = 0.6
#: Directories never searched: VCS, environments, caches, build outputs.
_SKIPPED = frozenset({"__pycache__", "node_modules", "dist", "site-packages"})
#: Enough to find a path in a project; a huge tree is not walked to the end for a hint.
_MAX_ENTRIES = 5_000
_SEPARATORS = re.compile(r"[-_.@/\s]+")


def close_matches(wanted: str, candidates: Iterable[str], limit: int = 1) -> list[str]:
    """The candidates ``wanted`` most likely meant, best first (none when nothing is close).

    difflib's ratio first; then a candidate equal to ``wanted`` but for case and
    separators (`python_path` for `python-path`, which difflib scores like any
    other difference); then one that ``wanted`` is a whole word of (`init` for
    `component-init`).
    """
    names = list(dict.fromkeys(candidates))
    found = difflib.get_close_matches(wanted, names, n=limit, cutoff=CUTOFF)
    key = _SEPARATORS.sub("", wanted).lower()
    found += [name for name in names if _SEPARATORS.sub("", name).lower() == key]
    words = set(_SEPARATORS.split(wanted.lower())) - {""}
    found += [name for name in names if words and words <= set(_SEPARATORS.split(name.lower()))]
    return list(dict.fromkeys(found))[:limit]


def project_paths(root: Path, *, directories: bool = False) -> list[str]:
    """The files (or the directories) under ``root``, as relative POSIX paths, sorted per directory.

    Hidden folders (.git, .venv), environments and build outputs are left out:
    they hold nothing a user's option means.
    """
    found: list[str] = []
    seen = 0
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if not name.startswith(".")
            and name not in _SKIPPED
            and not Path(directory, name, "pyvenv.cfg").exists()
        )
        base = Path(directory).relative_to(root)
        for name in subdirectories if directories else sorted(filenames):
            found.append((base / name).as_posix())
        seen += len(filenames) + len(subdirectories)
        if seen > _MAX_ENTRIES:
            break
    return found


def similar_directory(base: Path, wanted: str) -> str | None:
    """An existing directory that the missing directory ``wanted`` (relative to ``base``, or absolute) likely meant.

    Looked for under the nearest ancestor of ``wanted`` that exists, and said
    the way ``wanted`` was written (relative to ``base``, or absolute).
    """
    target = Path(base, wanted)
    anchor = target.parent
    while not anchor.is_dir() and anchor != anchor.parent:
        anchor = anchor.parent
    try:
        rest = target.relative_to(anchor).as_posix()
    except ValueError:
        return None
    close = close_matches(rest, project_paths(anchor, directories=True))
    if not close:
        return None
    found = anchor / close[0]
    if Path(wanted).is_absolute():
        return found.as_posix()
    return Path(os.path.relpath(found, base)).as_posix()
