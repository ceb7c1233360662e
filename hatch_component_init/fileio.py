"""Writing files so that a reader never sees a half-written one."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

__all__ = ["PendingWrite", "atomic_copy", "atomic_write", "in_progress_owner", "partial_path"]

#: Our files that are being written: ``.<name>.<pid>.<random>.tmp`` (:class:`PendingWrite`) and
#: ``.<name>.<pid>.partial`` (:func:`partial_path`). The writer's PID lets a later run tell
#: the debris of a killed process from a file still being written (hatch_component_init/debris.py).
_IN_PROGRESS = re.compile(r"\..+\.(\d+)\.(?:[a-z0-9_]+\.tmp|partial)")


def partial_path(path: Path) -> Path:
    """Where this process builds ``path`` before renaming it into place: a hidden name next to it."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def in_progress_owner(name: str) -> int | None:
    """The PID of the process writing our temp or partial file ``name``; None if ``name`` is not one of them."""
    found = _IN_PROGRESS.fullmatch(name)
    return int(found.group(1)) if found else None


#: Where Linux reports a process's umask (since 4.7), so that reading it changes nothing.
_STATUS = "/proc/self/status"


def _current_umask() -> int:
    """The process's umask, read where the system reports it; elsewhere by setting it and back.

    Setting it is process-wide: for that instant another thread creating a file gets the
    value set, so the value set is the strictest (its files are private meanwhile, never
    writable by others).
    """
    try:
        with open(_STATUS, encoding="utf-8", errors="replace") as status:  # its `Name:` may be any bytes
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and a rename.

    On any failure (including KeyboardInterrupt) the temp file is removed and
    ``path`` keeps its old content. An existing file keeps its permission bits;
    a symlink is written through (its target is replaced, the link stays).
    """
    PendingWrite(path, data).commit()


class PendingWrite:
    """``data`` being written to a temp file next to ``path`` on a thread (the disk works while
    the caller checks the data); :meth:`commit` renames it into place, :meth:`discard` removes it.

    Until ``commit`` returns, ``path`` keeps its old content; see :func:`atomic_write`.
    """

    def __init__(self, path: Path, data: bytes) -> None:
        path = Path(path)
        if path.is_symlink():
            path = Path(os.path.realpath(path))
        self.path = path
        fd, self._tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, args=(fd, data), name="component-init-write", daemon=True)
        try:
            self._thread.start()
        except BaseException:  # no thread to own the descriptor (e.g. "can't start new thread")
            os.close(fd)
            os.unlink(self._tmp)
            raise

    def _write(self, fd: int, data: bytes) -> None:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException as e:  # raised by commit, in the caller's thread
            self._error = e

    def commit(self) -> None:
        try:
            self._thread.join()
            if self._error is not None:
                raise self._error
            if self.path.exists():
                os.chmod(self._tmp, self.path.stat().st_mode & 0o777)
            else:
                os.chmod(self._tmp, 0o666 & ~_current_umask())
            os.replace(self._tmp, self.path)
        except BaseException:
            self.discard()
            raise
        _fsync_dir(self.path.parent)

    def discard(self) -> None:
        self._thread.join()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def atomic_copy(source: Path, path: Path) -> None:
    """Copy the file ``source`` to ``path`` through a partial file and a rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort (not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
