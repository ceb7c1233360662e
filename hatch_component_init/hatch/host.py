"""The `component-init` hook's `host` option: the file it names, and importing that file for a run.

The snapshot cache keys on the host module's bytes, and a cache hit must not
run (or even import) anything, so the file is found the way ``import`` would
find it, without executing any code. A miss then imports it afresh, so a
build process that imported an older copy (or another project's module of
the same name) never runs code other than the file the key covers.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.machinery import PathFinder
from pathlib import Path

from hatch_component_init.errors import ConfigError
from hatch_component_init.host_spec import load_host, module_name
from hatch_component_init.options import HostDefiner

__all__ = ["load_fresh", "module_file", "not_found"]


def not_found(spec: str) -> str:
    return f"names module `{module_name(spec)}`, which is neither in the project root nor on the Python path"


def module_file(spec: str, root: Path) -> Path | None:
    """The file ``import`` would load the module of ``spec`` from, with ``root`` first on the path.

    Parent packages are searched through their directories, not imported. None
    when there is no such module, or it has no source file (a namespace package).
    """
    importlib.invalidate_caches()  # a module written moments ago (by a test, an earlier hook) is seen
    parts = module_name(spec).split(".")
    search: list[str] | None = [str(root), *sys.path]
    found = None
    for depth in range(1, len(parts) + 1):
        if search is None:
            return None  # a parent is a plain module, not a package
        found = PathFinder.find_spec(".".join(parts[:depth]), search)
        if found is None:
            return None
        search = None if found.submodule_search_locations is None else list(found.submodule_search_locations)
    if found is None or found.origin is None or not os.path.isfile(found.origin):
        return None
    return Path(found.origin)


def load_fresh(spec: str, root: Path, expected: Path, option: str) -> HostDefiner:
    """Import the module of ``spec`` from its source as it is now and return its function.

    ``option`` names the option in messages (e.g. "Option `host` for build hook `component-init`").

    ``expected`` is the file :func:`module_file` found (the one the cache key
    covers); importing anything else is refused.
    """
    name = module_name(spec)
    previous = sys.modules.pop(name, None)
    writes_bytecode = sys.dont_write_bytecode
    # A build leaves no __pycache__ in the project, and a same-second edit of the same size cannot
    # be shadowed by a .pyc we wrote.
    sys.dont_write_bytecode = True
    try:
        host = load_host(spec, root, option)
        loaded = getattr(sys.modules.get(name), "__file__", None)
    finally:
        sys.dont_write_bytecode = writes_bytecode
        if previous is not None:
            # Whoever imported that name before us keeps their module.
            sys.modules[name] = previous
    if loaded is None or not os.path.samefile(loaded, expected):
        raise ConfigError(
            f"{option} `{spec}`: importing `{name}` loaded `{loaded}`, not `{expected}`; a package of the "
            "same name was already imported by this build process, so give the host module another name"
        )
    return host
