"""Pre-initialize WebAssembly components, and ship them pre-initialized in wheels with Hatch."""

from __future__ import annotations

from .__about__ import __version__
from .api import pre_initialize, pre_initialize_file
from .errors import (
    ComponentInitError,
    ConfigError,
    InitExportError,
    InitFailedError,
    InvalidComponentError,
    OutputInvalidError,
    UnsupportedComponentError,
)
from .options import WasiOptions

__all__ = [
    "ComponentInitError",
    "ConfigError",
    "InitExportError",
    "InitFailedError",
    "InvalidComponentError",
    "OutputInvalidError",
    "UnsupportedComponentError",
    "WasiOptions",
    "__version__",
    "pre_initialize",
    "pre_initialize_file",
]
