"""What a snapshot holds: the state read from every stateful core instance after init."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ComponentState", "CoreState", "MemoryState"]


@dataclass(slots=True)
class MemoryState:
    pages: int
    #: Non-zero page runs: (byte offset, contents); everything else is zero.
    chunks: list[tuple[int, bytes]]


@dataclass(slots=True)
class CoreState:
    memories: list[MemoryState]
    globals: list[bytes]


@dataclass(slots=True)
class ComponentState:
    cores: dict[int, CoreState] = field(default_factory=dict)
    nested: dict[int, ComponentState] = field(default_factory=dict)
