"""Keep the project free of the bytecode componentize-py's guest Python writes while it builds.

componentize-py imports the app inside its own (WebAssembly) CPython with the
python-path directories mounted, and that interpreter caches bytecode there:
every build left `__pycache__/app.cpython-3XX.pyc` (the guest's version) in the
project, which `hatch clean` does not remove. Nothing on the host reaches that
interpreter's settings (measured with componentize-py 0.25.1:
PYTHONDONTWRITEBYTECODE and PYTHONPYCACHEPREFIX in the subprocess's
environment change nothing), so the files the run added are removed after it.
Bytecode that was there before the build is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .keys import make_skip

__all__ = ["bytecode_files", "no_new_bytecode"]

_PYCACHE = "__pycache__"


def bytecode_files(directories: Iterable[Path]) -> set[Path]:
    """Every ``__pycache__`` directory and ``.pyc`` in it under ``directories`` (not in environments or VCS)."""
    skip = make_skip([])
    found: set[Path] = set()
    for top in directories:
        for directory, subdirectories, _files in os.walk(top):
            kept = []
            for name in subdirectories:
                path = os.path.join(directory, name)
                if name == _PYCACHE:
                    found.add(Path(path))
                    found.update(Path(path, entry) for entry in os.listdir(path) if entry.endswith(".pyc"))
                elif not skip(path, True):
                    kept.append(name)
            subdirectories[:] = kept
    return found


@contextmanager
def no_new_bytecode(directories: Iterable[Path]) -> Iterator[None]:
    """Remove, on the way out, the bytecode files and ``__pycache__`` folders that appeared meanwhile."""
    directories = [path for path in directories if path.is_dir()]
    before = bytecode_files(directories)
    try:
        yield
    finally:
        added = bytecode_files(directories) - before
        for path in sorted(added, key=lambda item: len(item.parts), reverse=True):  # files before their folder
            try:
                if path.name == _PYCACHE:
                    path.rmdir()  # only when empty: a file someone else put there stays
                else:
                    path.unlink()
            except OSError:
                pass
