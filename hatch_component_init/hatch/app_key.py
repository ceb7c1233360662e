"""The cache key of a componentize-py build: everything that can change the component it writes.

componentize-py runs the app module's top-level code at build time and bakes
whatever that code read into the component, so the key covers every file
under the `python-path` entries (paths and bytes) and the WIT, not just the
app module. It also appends a `site-packages` directory to the path (see
:func:`componentize_site_dirs`); the key covers the distributions installed
there through their RECORD files (the installer's own list of files and
hashes), which costs milliseconds where hashing the files would cost seconds.

Left out, because they can change without changing the component or are
written by the build itself: version control directories, virtual
environments, `__pycache__` and tool caches, the build's output directories
and the files our hooks write.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from hatch_component_init.__about__ import __version__
from hatch_component_init.fileio import in_progress_owner

from .cache import file_digest, path_digest

__all__ = [
    "SKIPPED_DIR_NAMES",
    "componentize_key",
    "componentize_py_version",
    "componentize_site_dirs",
    "make_skip",
    "own_entries",
    "site_dir_digest",
]

#: Bump when the meaning of a key changes, so old entries are never mistaken for new ones.
_KEY_FORMAT = 1

#: Directories never read by an app: version control and the caches of tools.
SKIPPED_DIR_NAMES = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr", "_darcs", ".jj",
        "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".hypothesis",
    }
)  # fmt: skip
#: A directory holding one of these is a Python environment (venv, virtualenv, conda).
_ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")
#: Files of a dist-info directory that record how, not what, was installed.
_INSTALLER_FILES = frozenset({"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"})


def written_by_a_build(name: str) -> bool:
    """Our own temp and partial files (fileio.py names them): a build's, or a killed build's, never the app's.

    A componentize-py output being written next to ``output`` (by this build or
    another in the same folder) would otherwise change the key, and make the
    "sources changed during the build" check fail.
    """
    return in_progress_owner(name) is not None


def make_skip(excluded: Iterable[Path]) -> Callable[[str, bool], bool]:
    """What :func:`tree_digest` leaves out: ``excluded`` paths, VCS, environments, caches."""
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


def componentize_py_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("componentize-py")
    except PackageNotFoundError:
        return "not installed"


def componentize_site_dirs(env: Mapping[str, str]) -> list[Path]:
    """The `site-packages` directories componentize-py 0.25 appends to the python path, found its way.

    In order: the first `site-packages` under ``$VIRTUAL_ENV/lib``; else that of
    `pipenv --venv`; else ``site.getsitepackages()`` and the user site of the
    `python3` on ``PATH`` (not necessarily the Python running the build).
    """
    venv = env.get("VIRTUAL_ENV")
    if venv is not None:
        found = _find_site_packages(Path(venv, "lib"))
        return [found] if found else []
    path = env.get("PATH")
    pipenv = shutil.which("pipenv", path=path)
    if pipenv:
        result = subprocess.run([pipenv, "--venv"], capture_output=True, text=True, check=False, env=dict(env))
        if result.returncode == 0:
            found = _find_site_packages(Path(result.stdout.strip(), "lib"))
            return [found] if found else []
    python3 = shutil.which("python3", path=path)
    if python3 is None:
        return []
    code = "import site; l = site.getsitepackages(); l.insert(0, site.getusersitepackages()); print(';'.join(l))"
    result = subprocess.run([python3, "-c", code], capture_output=True, text=True, check=False, env=dict(env))
    return [Path(entry) for entry in result.stdout.strip().split(";") if entry]


def _find_site_packages(directory: Path) -> Path | None:
    """Depth-first, in directory order, like componentize-py's own search."""
    if not directory.is_dir():
        return None
    if directory.name == "site-packages":
        return directory.resolve()
    try:
        children = [Path(entry.path) for entry in os.scandir(directory)]
    except OSError:
        return None
    for child in children:
        found = _find_site_packages(child)
        if found is not None:
            return found
    return None


def own_entries(project: str | None) -> Callable[[str], bool]:
    """Whether a `site-packages` entry belongs to an install of ``project`` itself.

    An editable install of the project adds its dist-info and a `.pth` file
    (hatchling's `_<name>.pth`, or `_editable_impl_<name>.pth` and its module)
    that point back at the source tree, which the key covers through the
    python path; counting them would make the first build after an install
    look different from the install's own build.
    """
    if not project:
        return lambda name: False
    normalized = re.sub(r"[-_.]+", "_", project).lower()

    def own(name: str) -> bool:
        lowered = name.lower()
        if lowered.endswith(".dist-info"):
            return re.sub(r"[-_.]+", "_", lowered[: -len(".dist-info")].rsplit("-", 1)[0]) == normalized
        stem = lowered.rsplit(".", 1)[0]
        return stem in {f"_{normalized}", f"_editable_impl_{normalized}"}

    return own


def site_dir_digest(directory: Path, project: str | None = None) -> str:
    """What a `site-packages` directory offers: its entries, and each distribution's files and hashes.

    The entries of an install of ``project`` itself are left out (:func:`own_entries`),
    and so is every top-level entry its RECORD lists: an editable wheel carries
    the target's `force-include` files too (installed as `<package>/...` next
    to the `.pth`), which exist only once the install the build is part of is done.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return "missing"
    own = own_entries(project)
    installed = {
        top for name in names if name.endswith(".dist-info") and own(name)
        for top in _record_tops(os.path.join(directory, name))
    }  # fmt: skip
    entries: list[list[str]] = []
    for name in names:
        path = os.path.join(directory, name)
        if name == "__pycache__" or own(name) or name in installed:
            continue
        if name.endswith(".dist-info"):
            entries.append([name, _record_digest(path, name)])
        elif name.endswith(".pth") and os.path.isfile(path):
            entries.append([name, file_digest(path)])
        else:
            entries.append([name])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def _record_rows(dist_info: str) -> list[list[str]] | None:
    """The non-empty rows of a distribution's RECORD whose files are inside the site directory
    (not scripts, whose paths start with `../`); None without a readable RECORD."""
    try:
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    return [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith(("../", "/"))]


def _record_tops(dist_info: str) -> set[str]:
    """The top-level `site-packages` names of the files a distribution's RECORD lists."""
    return {row[0].split("/", 1)[0] for row in _record_rows(dist_info) or ()}


def _record_digest(dist_info: str, name: str) -> str:
    """The installed files of one distribution with their hashes, as its RECORD lists them.

    Lines outside the site directory (scripts, whose first line names the
    environment's interpreter), compiled files, and the installer's own
    bookkeeping are left out: they differ between two installs of the same files.
    """
    rows = _record_rows(dist_info)
    if rows is None:
        return "no RECORD"
    lines = []
    for row in rows:
        path = row[0]
        if path.endswith(".pyc"):
            continue
        if path.startswith(f"{name}/") and path[len(name) + 1 :] in _INSTALLER_FILES:
            continue
        lines.append(",".join(row[:2]))
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def componentize_key(
    *,
    root: Path,
    wit: str,
    world: str | None,
    module: str,
    python_path: list[str],
    requirements: str | None,
    excluded: Iterable[Path],
    env: Mapping[str, str],
    project: str | None = None,
) -> str:
    """The cache key of building ``module`` with componentize-py.

    ``requirements`` is the key of the installed `requirements` folder (its
    contents are fixed by that key), ``excluded`` the files and directories
    the build writes itself, ``project`` the name of the project being built
    (its own installs are left out of `site-packages`).
    """
    skip = make_skip(excluded)
    header = {
        "format": _KEY_FORMAT,
        "hatch-component-init": __version__,
        "componentize-py": componentize_py_version(),
        "wit": [wit, path_digest(root / wit)],
        "world": world,
        "module": module,
        # Walked from their real location, so that `skip` sees the same paths as `excluded`.
        "python-path": [
            [entry, path_digest(Path(os.path.realpath(root / entry)), skip, with_dirs=False)] for entry in python_path
        ],
        "requirements": requirements,
        # Only contents: componentize-py mounts each path entry at a numbered guest directory, so where
        # a site directory is (a fresh temp dir in each isolated build) does not reach the component.
        "site-packages": [site_dir_digest(directory, project) for directory in componentize_site_dirs(env)],
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()
