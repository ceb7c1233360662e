"""Winch, Wasmtime's baseline compiler: compiles ~3x faster than Cranelift, its code runs slower.

wasmtime-py's ``Config.strategy`` names only "auto" and "cranelift"; the C API
takes Winch as strategy 2.
"""

from __future__ import annotations

import wasmtime
from wasmtime import _ffi as ffi

__all__ = ["use_winch"]

#: Wasmtime's C API value for its baseline compiler.
_WINCH = 2


def use_winch(config: wasmtime.Config) -> None:
    """Make engines of ``config`` compile with Winch."""
    ffi.wasmtime_config_strategy_set(config.ptr(), _WINCH)
