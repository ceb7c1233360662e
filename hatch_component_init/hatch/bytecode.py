"""Keep the project free of the bytecode componentize-py's guest Python writes while it builds.

componentize-py imports the app inside its own (WebAssembly) CPython with the
python-path directories mounted, and that interpreter caches bytecode there:
every build left `__pycache__/app.cpython-3XX.pyc` (the guest's version) in the
project, which `hatch clean` does not remove. Nothing on the host reaches that
interpreter's settings (measured with componentize-py 0.25.1:
PYTHONDONTWRITEBYTECODE and PYTHONPYCACHEPREFIX in the subprocess's
environment change nothing), so the files the run added are removed after it.
Bytecode that was there before the build is left alone.

A build killed while componentize-py runs cannot clean up; so the run notes
what was there before in a journal (in our cache directory), removed once it
has cleaned up, and the next build finds the journal of a process that is gone
and removes what that run added.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hatch_component_init.debris import process_gone
from hatch_component_init.fileio import atomic_write

from .keys import make_skip

__all__ = ["bytecode_files", "no_new_bytecode", "remove_interrupted_bytecode"]

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
def no_new_bytecode(directories: Iterable[Path], journal: Path | None = None) -> Iterator[None]:
    """Remove, on the way out, the bytecode files and ``__pycache__`` folders that appeared meanwhile.

    ``journal``: where to note what was there before, for :func:`remove_interrupted_bytecode`
    should this process be killed before it cleans up (not noted where it cannot be written).
    """
    directories = [path for path in directories if path.is_dir()]
    before = bytecode_files(directories)
    noted = journal is not None and _note(journal, directories, before)
    try:
        yield
    finally:
        _remove(bytecode_files(directories) - before)
        if noted and journal is not None:
            with contextlib.suppress(OSError):
                journal.unlink()


def remove_interrupted_bytecode(journal: Path) -> list[Path]:
    """Remove the bytecode a killed run of :func:`no_new_bytecode` added (its ``journal`` says what it found)."""
    try:
        record = json.loads(journal.read_text())
        pid = int(record["pid"])
        directories = [Path(entry) for entry in record["directories"]]
        before = {Path(entry) for entry in record["before"]}
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError):
        record = None  # damaged: it cannot say what was there before; only the journal goes
    if record is not None:
        if not process_gone(pid):
            return []  # still running, in another build
        removed = _remove(bytecode_files([path for path in directories if path.is_dir()]) - before)
    else:
        removed = []
    with contextlib.suppress(OSError):
        journal.unlink()
    return removed


def _note(journal: Path, directories: list[Path], before: set[Path]) -> bool:
    record = {"pid": os.getpid(), "directories": [str(path) for path in directories], "before": sorted(map(str, before))}
    try:
        journal.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(journal, json.dumps(record).encode())
    except OSError:
        return False  # a read-only cache: a killed run's bytecode then stays, as it did before
    return True


def _remove(added: set[Path]) -> list[Path]:
    removed = []
    for path in sorted(added, key=lambda item: len(item.parts), reverse=True):  # files before their folder
        try:
            if path.name == _PYCACHE:
                path.rmdir()  # only when empty: a file someone else put there stays
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed
