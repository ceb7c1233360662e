"""Options of one pre-initialization run: the one place that owns their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from wasmtime.component import Linker

__all__ = [
    "DEFAULT_INIT_FUNC", "DEFAULT_TIMEOUT", "HostDefiner", "InitOptions", "NoteSink", "OutputSink", "WasiOptions",
]  # fmt: skip

DEFAULT_INIT_FUNC = "component-init"
#: Seconds an init function may run before it is stopped.
DEFAULT_TIMEOUT = 300.0

#: Adds host functions, instances and resources for init to the linker (see `pre_initialize(host=...)`).
HostDefiner = Callable[["Linker"], None]

#: Receives guest output: (stream name "stdout" or "stderr", bytes written).
OutputSink = Callable[[str, bytes], None]

#: Receives what a run did besides init: (level, one sentence). Levels: "info" (a line of the
#: run's summary), "warning" (shown as one), "detail" (why a step did nothing; verbose output).
NoteSink = Callable[[str, str], None]


@dataclass(frozen=True, kw_only=True)
class WasiOptions:
    """What the guest may see of the host during init. Nothing is granted by default."""

    enabled: bool = True
    #: (host directory, guest path) pairs, preopened read-only.
    dirs: tuple[tuple[Path, str], ...] = ()
    #: (name, value) pairs set in the guest's environment.
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class InitOptions:
    init_func: str = DEFAULT_INIT_FUNC
    keep_init_func: bool = False
    wasi: WasiOptions = field(default_factory=WasiOptions)
    #: Seconds before a running init is interrupted; None for no limit.
    timeout: float | None = DEFAULT_TIMEOUT
    #: Bytes of linear memory one memory may grow to during init; None for Wasmtime's own limits.
    max_memory: int | None = None
    #: Defines imports for init before the stand-ins fill the rest; None for WASI and stand-ins only.
    host: HostDefiner | None = None
    #: Keep the compiled instrumented component in the cache directory for later runs (compile_cache.py).
    code_cache: bool = True
    #: Let componentize-py's first-call setup (env, argv, random seed) run again in each instance (first_call.py).
    reset_first_call: bool = True
    #: Zero wasi-libc malloc's free memory in the snapshot, where that allocator is recognised (free_memory.py).
    zero_free_memory: bool = True
