"""Compiled components kept between runs, loaded by mapping the file.

The instrumented component of an app is the same from one build to the next
(its data travels in data modules: data_modules.py), so its compile (~1.4 s
for an 18 MB componentize-py app) is paid once per app code, Wasmtime version
and compiler. Wasmtime's own cache would do the same but decompresses each
entry (~0.13 s for that app); a mapped file loads in milliseconds. Entries are
checked against their SHA-256 before Wasmtime maps them, and a failing cache
(unwritable, damaged, from another Wasmtime) only costs a compile.

An entry also vouches that its code passed the checks run before compiling
(the table-mutation scan), which a hit skips; so the key covers the version of
this tool too: another release may check otherwise, and its entries are never
trusted.

Editable installs keep their loads' compiled snapshots here too, in a kind of
their own (:class:`DevelopmentCache`): Wasmtime's cache would compress each
new snapshot's code (~0.35 s of a 37 MB snapshot's first load) before the
first answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from pathlib import Path
from typing import Callable

import wasmtime
from wasmtime import component as cm

from .__about__ import __version__
from .file_cache import FileCache, default_cache_dir
from .versions import wasmtime_version

__all__ = ["CompiledCache", "DevelopmentCache", "load_or_compile"]

#: Bump when what a key covers, or what an entry vouches for, changes.
_FORMAT = 2


class CompiledCache(FileCache):
    """Serialized instrumented components: ``<key>-<sha256 of the file>.cwasm``."""

    KIND = "instrumented"
    SUFFIX = ".cwasm"
    #: One entry per app (and per Wasmtime version and compiler) in use; each is 20-50 MB for real apps.
    DEFAULT_MAX_ENTRIES = 8


class DevelopmentCache(CompiledCache):
    """Snapshots of editable installs, compiled for the loader's development loads (hatch/editable.py)."""

    KIND = "development"
    #: Each edit makes a new snapshot; only the latest few of a project are loaded again.
    DEFAULT_MAX_ENTRIES = 4


def _key(instrumented: bytes, compiler: str) -> str:
    digest = hashlib.sha256(f"{_FORMAT} {__version__} {wasmtime_version()} {compiler}\0".encode())
    digest.update(instrumented)
    return digest.hexdigest()


def load_or_compile(
    engine: wasmtime.Engine,
    instrumented: bytes,
    compiler: str,
    *,
    use_cache: bool = True,
    before_compile: Callable[[], None] = lambda: None,
    kind: type[CompiledCache] = CompiledCache,
    store_later: bool = False,
    compiled: cm.Component | None = None,
) -> cm.Component:
    """The compiled component, from the cache when an intact entry compiled by ``compiler`` is there.

    ``compiler`` names the engine's configuration (part of the key); a
    WasmtimeError from compiling propagates, nothing is cached then.
    ``use_cache=False`` compiles and leaves the cache alone.
    ``before_compile()`` runs before any compile, and not on a cache hit: the
    cache only holds what it let through. ``kind`` is the cache to use;
    ``store_later`` writes a new entry on a thread (not a daemon: the
    interpreter waits for it at exit) so that the caller can use the
    component meanwhile. ``compiled``: ``instrumented`` already compiled
    for ``engine``, to be kept in the cache (nothing is compiled or loaded).
    """
    if not use_cache:
        before_compile()
        return cm.Component(engine, instrumented)
    cache = kind(default_cache_dir())
    key: str | None = None
    if compiled is not None:
        component = compiled  # nothing to look up: the key is computed where the entry is written
    else:
        key = _key(instrumented, compiler)
        loaded = _load(cache, key, lambda path: cm.Component.deserialize_file(engine, str(path)))
        if loaded is not None:
            return loaded
        before_compile()
        component = cm.Component(engine, instrumented)

    def store() -> None:
        _store(cache, key if key is not None else _key(instrumented, compiler), component)

    if store_later:
        threading.Thread(target=store, name="component-init-cache").start()
    else:
        store()
    return component


def _store(cache: CompiledCache, key: str, component: cm.Component) -> None:
    try:
        artifact = component.serialize()
        cache.put(key, artifact)  # named with its checksum by FileCache, checked by FileCache.get
    except (OSError, wasmtime.WasmtimeError):
        pass  # a cache that cannot be written only means compiling next time too


def _load(cache: CompiledCache, key: str, deserialize: Callable[[Path], cm.Component]) -> cm.Component | None:
    # get() returns only an entry whose bytes match its checksum (a damaged one is removed there).
    path = cache.get(key)
    if path is None:
        return None
    try:
        return deserialize(path)
    except OSError:
        return None  # removed meanwhile by another run's pruning
    except wasmtime.WasmtimeError:
        pass  # compiled for an engine configured otherwise
    # Unusable: make way for the entry the compile that follows writes.
    with contextlib.suppress(OSError):
        path.unlink()
    return None
