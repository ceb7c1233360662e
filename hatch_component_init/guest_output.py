"""Guest output shown line by line with a prefix, so build logs tell it apart from ours.

A componentize-py app whose Python code raised prints the traceback, then its
runtime's Rust panic report (``thread '<unnamed>' (1) panicked at
runtime/src/lib.rs:…:``, ``Python function threw an unexpected exception``,
``note: run with `RUST_BACKTRACE=1` …``): three lines that say nothing the
traceback did not, and point at a backtrace variable that does not apply. A
panic report that follows a Python traceback on the same stream is left out
unless asked for (``-v``, ``hatch -v``); a panic with no traceback before it is
the guest's own account of its failure (a Rust app's) and is always shown.
"""

from __future__ import annotations

import re
from typing import Callable

__all__ = ["LinePrefixer"]

#: A line longer than this is shown in pieces: a guest that never writes a newline must not pile up memory.
MAX_LINE = 16 * 1024
#: The first line of a Rust panic report (the thread's id is there since Rust 1.88).
_PANIC = re.compile(rb"^thread '[^']*'(?: \(\d+\))? panicked at ")
#: The last line of the first panic report of a process.
_PANIC_END = b"note: run with `RUST_BACKTRACE=1`"
_TRACEBACK = b"Traceback (most recent call last):"
#: Lines held as a panic report before giving up on it (it never ended as one does) and showing them.
_MAX_HELD = 32


class LinePrefixer:
    """An output sink that emits whole lines as ``[guest stdout] text`` through ``emit``.

    ``hide_panics``: leave out the Rust panic report that follows a Python
    traceback (see the module's docstring).
    """

    def __init__(self, emit: Callable[[str], None], max_line: int = MAX_LINE, *, hide_panics: bool = False) -> None:
        self.emit = emit
        self.max_line = max_line
        self.hide_panics = hide_panics
        self.pending: dict[str, bytes] = {}
        #: Per stream, lines not shown yet: blank lines that may open a panic report, or the report so far.
        self.held: dict[str, list[bytes]] = {}
        self.in_panic: set[str] = set()
        self.after_traceback: set[str] = set()

    def __call__(self, stream: str, data: bytes) -> None:
        buf = self.pending.get(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self._line(stream, line)
        while len(rest) > self.max_line:
            self._line(stream, rest[: self.max_line])
            rest = rest[self.max_line :]
        self.pending[stream] = rest

    def _line(self, stream: str, line: bytes) -> None:
        if not self.hide_panics:
            self._emit(stream, line)
            return
        line = line.removesuffix(b"\r")
        held = self.held.setdefault(stream, [])
        if stream in self.in_panic:
            held.append(line)
            if line.startswith(_PANIC_END):
                held.clear()  # a whole report, after a traceback: left out
                self.in_panic.discard(stream)
            elif len(held) > _MAX_HELD:
                self._release(stream)
            return
        if not line.strip():
            held.append(line)  # shown with the next line, unless that one opens a panic report
            return
        if stream in self.after_traceback and _PANIC.match(line):
            held.append(line)
            self.in_panic.add(stream)
            return
        self._release(stream)
        if line.startswith(_TRACEBACK):
            self.after_traceback.add(stream)
        self._emit(stream, line)

    def _release(self, stream: str) -> None:
        """Show the lines held for ``stream``: they were not a panic report after all."""
        self.in_panic.discard(stream)
        for line in self.held.pop(stream, []):
            self._emit(stream, line)

    def _emit(self, stream: str, line: bytes) -> None:
        text = line.removesuffix(b"\r").decode("utf-8", "replace")
        self.emit(f"[guest {stream}] {text}")

    def flush(self) -> None:
        for stream, rest in sorted(self.pending.items()):
            if rest:
                self._line(stream, rest)
        for stream in sorted(self.held):
            self._release(stream)
        self.pending.clear()
