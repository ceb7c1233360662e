"""Guest output shown line by line with a prefix, so build logs tell it apart from ours."""

from __future__ import annotations

from typing import Callable

__all__ = ["LinePrefixer"]

#: A line longer than this is shown in pieces: a guest that never writes a newline must not pile up memory.
MAX_LINE = 16 * 1024


class LinePrefixer:
    """An output sink that emits whole lines as ``[guest stdout] text`` through ``emit``."""

    def __init__(self, emit: Callable[[str], None], max_line: int = MAX_LINE) -> None:
        self.emit = emit
        self.max_line = max_line
        self.pending: dict[str, bytes] = {}

    def __call__(self, stream: str, data: bytes) -> None:
        buf = self.pending.get(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self._emit(stream, line)
        while len(rest) > self.max_line:
            self._emit(stream, rest[: self.max_line])
            rest = rest[self.max_line :]
        self.pending[stream] = rest

    def _emit(self, stream: str, line: bytes) -> None:
        text = line.removesuffix(b"\r").decode("utf-8", "replace")
        self.emit(f"[guest {stream}] {text}")

    def flush(self) -> None:
        for stream, rest in sorted(self.pending.items()):
            if rest:
                self._emit(stream, rest)
        self.pending.clear()
