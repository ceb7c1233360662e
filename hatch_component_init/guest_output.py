"""Guest output shown line by line with a prefix, so build logs tell it apart from ours."""

from __future__ import annotations

from typing import Callable

__all__ = ["LinePrefixer"]


class LinePrefixer:
    """An output sink that emits whole lines as ``[guest stdout] text`` through ``emit``."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.pending: dict[str, bytes] = {}

    def __call__(self, stream: str, data: bytes) -> None:
        buf = self.pending.get(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self.emit(f"[guest {stream}] {line.decode('utf-8', 'replace')}")
        self.pending[stream] = rest

    def flush(self) -> None:
        for stream, rest in sorted(self.pending.items()):
            if rest:
                self.emit(f"[guest {stream}] {rest.decode('utf-8', 'replace')}")
        self.pending.clear()
