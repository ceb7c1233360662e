"""The installed wasmtime version, for cache keys and messages, read without importing anything heavy.

`importlib.metadata` costs ~20 ms to import and wasmtime itself ~80 ms; a
cache hit of the Hatch hook needs neither, and the engine's start-up is
measured against a Rust tool.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["wasmtime_version"]


def wasmtime_version() -> str:
    """The installed wasmtime version, read without importing it (that costs ~80 ms)."""
    import importlib.util

    spec = importlib.util.find_spec("wasmtime")
    if spec is not None and spec.origin:
        site_dir = Path(spec.origin).parent.parent
        # The dist-info next to the package is the one that installed it (if there is just one).
        found = list(site_dir.glob("wasmtime-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len("wasmtime-") : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmtime")
    except PackageNotFoundError:
        return "unknown"
