"""Pre-initialize WebAssembly components, and ship them pre-initialized in wheels with Hatch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .__about__ import __version__
from .errors import (
    ComponentInitError,
    ConfigError,
    HostError,
    InitExportError,
    InitFailedError,
    InvalidComponentError,
    OutputInvalidError,
    UnsupportedComponentError,
)
from .options import WasiOptions

if TYPE_CHECKING:
    from .api import Invoker, pre_initialize, pre_initialize_file, pre_initialize_with
    from .no_init import zero_free_memory_without_init

__all__ = [
    "ComponentInitError",
    "ConfigError",
    "HostError",
    "InitExportError",
    "Invoker",
    "InitFailedError",
    "InvalidComponentError",
    "OutputInvalidError",
    "UnsupportedComponentError",
    "WasiOptions",
    "__version__",
    "pre_initialize",
    "pre_initialize_file",
    "pre_initialize_with",
    "zero_free_memory_without_init",
]


def __getattr__(name: str) -> Any:
    # The engine imports Wasmtime; loading the Hatch hook (and serving a snapshot from its
    # cache) must not pay for that.
    if name in ("Invoker", "pre_initialize", "pre_initialize_file", "pre_initialize_with"):
        from . import api

        return getattr(api, name)
    if name == "zero_free_memory_without_init":
        from . import no_init

        return no_init.zero_free_memory_without_init
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
