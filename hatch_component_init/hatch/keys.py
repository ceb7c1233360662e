"""Every cache key of the Hatch hooks: what each covers, what it leaves out, and why.

A key is the SHA-256 of a JSON header; the file caches store an entry as
``<key>-<sha256 of the entry>`` (file_cache.FileCache), the requirements
folders as ``<key>-<digest of its files>`` (hatch/requirements.py), so a key
says what an entry was made from and the name's checksum vouches for its bytes. Each key
covers the version of hatch-component-init and a format number (bumped when
the meaning of a key changes), because an entry also vouches for the checks
this release ran on it. A key covers what can change the entry; what only
stops a run, or is written by the build itself, is left out, so that a
rebuild with nothing changed is served from the cache.

- componentize-py outputs (``components/``): :func:`componentize_source_key`,
  then :func:`componentize_key`, in the way of ccache's direct mode: the
  sources are keyed before the build; the packages of the build environment
  the component took are found in it after the build and recorded (hatch/app_manifest.py),
  and a lookup checks those packages in the environment it runs in.
- the installed `requirements` folder (``requirements/``): :func:`requirements_key`.
- snapshots (``snapshots/``): :func:`snapshot_key` (:func:`inputs_key` without the component).
- precompiled components (``precompiled/``): :func:`precompile_key`.
- an editable install's in-tree snapshot, rebuilt on load when these change: :func:`editable_inputs`.

The engine's code cache (``instrumented/``, ``development/``) is keyed in
compile_cache.py, next to the engine that runs without the hooks: the
instrumented component's bytes, the compiler, and the Wasmtime and
hatch-component-init versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hatch_component_init.__about__ import __version__
from hatch_component_init.file_cache import file_digest
from hatch_component_init.fileio import in_progress_owner
from hatch_component_init.versions import wasmtime_version

from .config import COMPONENT_INIT_HOOK, COMPONENTIZE_PY_HOOK
from .digests import path_digest, tree_digest
from .site_packages import componentize_py_version, linked_distributions, provider_digests

if TYPE_CHECKING:
    from hatch_component_init.options import InitOptions

__all__ = [
    "SKIPPED_DIR_NAMES",
    "componentize_key",
    "componentize_source_key",
    "editable_inputs",
    "inputs_key",
    "make_skip",
    "precompile_key",
    "project_file_digest",
    "requirements_key",
    "site_mounts",
    "snapshot_key",
    "written_by_a_build",
]


def _key(header: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode()).hexdigest()


# -- componentize-py outputs ----------------------------------------------------------------------

_COMPONENTIZE_FORMAT = 2

#: Directories never read by an app: version control and the caches of tools.
SKIPPED_DIR_NAMES = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr", "_darcs", ".jj",
        "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".hypothesis",
    }
)  # fmt: skip
#: A directory holding one of these is a Python environment (venv, virtualenv, conda).
_ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")
#: Our hooks' tables: their options that can change a component are keyed on their own.
_OWN_HOOKS = (COMPONENTIZE_PY_HOOK, COMPONENT_INIT_HOOK)


def written_by_a_build(name: str) -> bool:
    """Our own temp and partial files (fileio.py names them): a build's, or a killed build's, never the app's.

    A componentize-py output being written next to ``output`` (by this build or
    another in the same folder) would otherwise change the key, and make the
    "sources changed during the build" check fail.
    """
    return in_progress_owner(name) is not None


def make_skip(excluded: Iterable[Path]) -> Callable[[str, bool], bool]:
    """What a python-path digest leaves out: ``excluded`` paths, our in-progress files, VCS, environments, caches."""
    excluded_paths = {os.path.realpath(path) for path in excluded}

    def skip(path: str, is_dir: bool) -> bool:
        if written_by_a_build(os.path.basename(path)):
            return True
        if is_dir:
            if os.path.basename(path) in SKIPPED_DIR_NAMES:
                return True
            if any(os.path.exists(os.path.join(path, marker)) for marker in _ENVIRONMENT_MARKERS):
                return True
        return path in excluded_paths

    return skip


def project_file_digest(path: str | Path) -> str | None:
    """The digest of a `pyproject.toml` as its meaning, not its bytes: parsed, without our hooks' tables.

    A comment, the layout, or an option of our hooks then changes no key: none
    of them reaches a component, unless the app's top level reads the file's
    text or our tables (docs/building.md says so). None (use the bytes) when it is not valid TOML.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    _drop_own_hooks(data, ("tool", "hatch", "build", "hooks"))
    targets = _table(data, ("tool", "hatch", "build", "targets"))
    for target in list(targets or ()):
        _drop_own_hooks(data, ("tool", "hatch", "build", "targets", target, "hooks"))
    return _key({"pyproject.toml": data})


def _table(data: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        data = data.get(name) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else None


def _drop_own_hooks(data: dict[str, Any], path: tuple[str, ...]) -> None:
    """Remove our hooks' tables at ``path``, and the tables left empty by that (as if never written)."""
    hooks = _table(data, path)
    if hooks is None or not any(name in hooks for name in _OWN_HOOKS):
        return
    for name in _OWN_HOOKS:
        hooks.pop(name, None)
    for depth in range(len(path), 0, -1):
        table = _table(data, path[:depth])
        if table:
            break
        parent = _table(data, path[: depth - 1]) if depth > 1 else data
        assert parent is not None
        del parent[path[depth - 1]]


def site_mounts(root: Path, python_path: Iterable[str], site_dirs: list[Path], installed: int = 0) -> list[int]:
    """The guest directories (`/N`) componentize-py mounts ``site_dirs`` at, after ``python_path``
    (relative to ``root``) and the ``installed`` folders the hook adds (the `requirements`, there
    whenever it runs); it leaves out entries that do not exist."""
    before = sum(1 for entry in python_path if Path(root, entry).exists()) + installed
    return list(range(before, before + sum(1 for directory in site_dirs if directory.exists())))


def componentize_source_key(
    *,
    root: Path,
    wit: str,
    world: str | None,
    module: str,
    python_path: list[str],
    requirements: str | None,
    excluded: Iterable[Path],
    site_dirs: list[Path],
) -> str:
    """The part of a componentize-py build's key known before it runs: the app's sources and the tool.

    In: every file under each `python-path` entry, by relative path and bytes
    (the app's top level runs at build time, so a data file it reads is in the
    component); the files under `wit` (walked as a python-path entry is, so
    that a `wit` of "." leaves out what the build writes), `world`, `module`,
    the `python-path` entries as written, ``requirements`` (the key of their installed folder,
    whose contents that key fixes); the componentize-py and hatch-component-init
    versions; of the build environment's `site-packages`, the distributions
    componentize-py links in whether they are imported or not
    (site_packages.linked_distributions).

    Out: what the build writes (``excluded``: the output, `dist/`, our cache,
    an editable build's in-tree files), version control, environments and tool
    caches (:func:`make_skip`); the project's `pyproject.toml` counts by its
    meaning without our hooks' tables (:func:`project_file_digest`); the
    `PKG-INFO` an sdist build writes at the root from that file's `[project]`
    table is left out, so a wheel built from the unpacked sdist (`uv build`,
    `python -m build`) has the key of one built from the tree (`hatch build`).
    The rest of `site-packages` is for :func:`componentize_key`.
    """
    root_real = os.path.realpath(root)
    project_file = os.path.join(root_real, "pyproject.toml")
    skip = make_skip([*excluded, Path(root_real, "PKG-INFO")])

    def rule(path: str) -> str | None:
        return project_file_digest(path) if path == project_file else None

    header = {
        "format": _COMPONENTIZE_FORMAT,
        "hatch-component-init": __version__,
        "componentize-py": componentize_py_version(),
        # Walked like the python path: a `wit = "."` (the WIT next to the app) would otherwise count what the
        # build writes, and every build would find its sources changed while it ran.
        "wit": [wit, path_digest(Path(os.path.realpath(root / wit)), skip, with_dirs=False, rule=rule)],
        "world": world,
        "module": module,
        # Walked from their real location, so that `skip` sees the same paths as `excluded`.
        "python-path": [
            [entry, path_digest(Path(os.path.realpath(root / entry)), skip, with_dirs=False, rule=rule)]
            for entry in python_path
        ],
        "requirements": requirements,
        # Not where the directories are: componentize-py mounts each at a numbered guest directory,
        # and an isolated build makes a new environment each time.
        "site-packages-linked": linked_distributions([directory for directory in site_dirs if directory.exists()]),
    }
    return _key(header)


def componentize_key(source_key: str, tops: Iterable[str], site_dirs: list[Path], mounts: list[int]) -> str:
    """The key of a component built from sources with ``source_key`` that imported ``tops`` from `site-packages`.

    In: each of ``tops`` (the top-level entries whose paths the component
    holds: site_packages.imported_tops) with what provides it in ``site_dirs``
    now, as Python's import finds it: the guest directory it is mounted at
    (``mounts``: :func:`site_mounts`), each distribution's dist-info name
    (name and version) and RECORD (every installed file's hash), or the
    entry's own digest, or `missing`. So an imported package upgraded, or a
    data file of it changed, is another key.

    Out: every other distribution of the environment (the build frontend and
    its dependencies, which differ from `uv build` to `hatch build` to
    `python -m build`): componentize-py bundles only what the app imports.
    Traded away: a package the app's top level imports only if it is there
    (`try: import x` / `except ImportError`) is not seen when it is installed
    later, and a `site-packages` file read without importing its package
    counts only if its path stays in the component's memory.
    """
    existing = [directory for directory in site_dirs if directory.exists()]
    return _key({"source": source_key, "imports": provider_digests(existing, tops, mounts)})


# -- the installed `requirements` folder ------------------------------------------------------------

#: 2: folders are named with the digest of their files.
_REQUIREMENTS_FORMAT = 2
#: pip settings that change what a requirement resolves to (others, e.g. cache or log paths, do not).
_RESOLUTION_ENV = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_CONSTRAINT",
    "PIP_PRE",
    "PIP_ONLY_BINARY",
    "PIP_NO_BINARY",
)


def requirements_key(requirements: list[str]) -> str:
    """The folder of the `requirements` of the `componentize-py` hook.

    In: the requirement strings as written, and what decides how pip resolves
    them (the Python version, the platform, pip's index settings); our version,
    since a folder vouches that it passed our checks (pure Python only), which a hit skips.
    Out: what the index offers meanwhile: a folder is installed once and reused,
    so pin versions to control what a fresh install picks.
    """
    header = {
        "format": _REQUIREMENTS_FORMAT,
        "hatch-component-init": __version__,
        "requirements": requirements,
        "python": list(sys.version_info[:2]),
        "platform": sys.platform,
        "pip-env": {name: os.environ[name] for name in _RESOLUTION_ENV if name in os.environ},
    }
    return _key(header)


# -- snapshots ------------------------------------------------------------------------------------

_SNAPSHOT_FORMAT = 1


def snapshot_key(component: bytes, options: InitOptions, host: tuple[str, Path] | None = None) -> str:
    """The key of pre-initializing ``component`` with ``options``: :func:`inputs_key` with its SHA-256."""
    return inputs_key(options, host, hashlib.sha256(component).hexdigest())


def inputs_key(options: InitOptions, host: tuple[str, Path] | None = None, component: str | None = None) -> str:
    """The key of a snapshot of the component whose SHA-256 (hex) is ``component`` (None leaves it out).

    In: the component's bytes, the options that change a run (`init-func`,
    `keep-init-func`, `reset-first-call`, `zero-free-memory`, `max-memory`, `wasi`, the `env`
    pairs in their order, which the guest can observe, and each `dirs` tree
    by path and bytes), ``host``: the hook's `host` value with the bytes of
    the module's file, and the Wasmtime version.
    Out: the timeout, which can only stop a run, never change a successful
    one's result; what the `host` module imports: host functions must answer
    the same every time.
    """
    wasi: dict[str, Any] | None = None
    if options.wasi.enabled:
        wasi = {
            "dirs": [[guest, tree_digest(host)] for host, guest in options.wasi.dirs],
            "env": [list(pair) for pair in options.wasi.env],
        }
    header = {
        "format": _SNAPSHOT_FORMAT,
        "hatch-component-init": __version__,
        "wasmtime": wasmtime_version(),
        "component": component,
        "init-func": options.init_func,
        "keep-init-func": options.keep_init_func,
        "reset-first-call": options.reset_first_call,
        "zero-free-memory": options.zero_free_memory,
        "max-memory": options.max_memory,
        "wasi": wasi,
        "host": None if host is None else {"spec": host[0], "module": file_digest(str(host[1]))},
    }
    return _key(header)


# -- precompiled components -------------------------------------------------------------------------

#: Bump when what goes into a `.cwasm` changes for the same inputs (e.g. engine settings).
_PRECOMPILE_FORMAT = 1


def precompile_key(component_sha256: str, target: str, wasmtime: str) -> str:
    """The key of the `.cwasm` of a component.

    In: the component's bytes, the target triple and the compiling Wasmtime's
    version (its machine code loads only in the same major version).
    Out: the build machine's CPU: the code is made for the architecture's baseline.
    """
    header = {
        "format": _PRECOMPILE_FORMAT,
        "hatch-component-init": __version__,
        "wasmtime": wasmtime,
        "component": component_sha256,
        "target": target,
    }
    return _key(header)


# -- editable installs --------------------------------------------------------------------------------


def editable_inputs(app: str, init: str | None) -> dict[str, str]:
    """What an editable install's in-tree snapshot is made from; the loader rebuilds when it differs.

    ``app``: the :func:`componentize_key` of the component the `componentize-py`
    hook wrote, when it writes our input (its source key, and the packages that
    component imported as the environment provides them now), else the input
    component's SHA-256. ``init``: :func:`inputs_key` without the component
    (options, `dirs`, `host` module); None for `init-func = false`, which runs nothing.
    """
    return {"app": app, "init": "init-func = false" if init is None else init}
