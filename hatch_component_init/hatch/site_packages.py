"""What componentize-py takes from the build environment's `site-packages`, found without running it.

componentize-py 0.25 appends a `site-packages` directory to the python path
(:func:`componentize_site_dirs`) and mounts each path entry in its guest
Python at a numbered directory (`/0`, `/1`, ...). Two things of it reach the
component: the modules (and files) the app's top level imports from it, whose
code objects keep their guest paths (`/1/packaging/version.py`), so
:func:`imported_tops` finds them in the built component's bytes; and, imported
or not, the WebAssembly extension modules and `componentize-py.toml` files it
links in (:func:`linked_distributions`). Distributions are read through their
RECORD files (the installer's own list of files and hashes), which costs
milliseconds where hashing their files would cost seconds.

The rules of what enters which key are in hatch/keys.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from .digests import path_digest

__all__ = [
    "componentize_py_version",
    "componentize_site_dirs",
    "imported_tops",
    "linked_distributions",
    "provider_digests",
]

#: Files of a dist-info directory that record how, not what, was installed.
_INSTALLER_FILES = frozenset({"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"})
#: The characters of an entry name in a guest path (ASCII: module and distribution names).
_NAME = rb"[A-Za-z0-9_.+!~\-]"


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


def imported_tops(component: bytes, mounts: Iterable[int]) -> set[str]:
    """The top-level entries (`packaging`, `six.py`, `x-1.0.dist-info`) of the guest directories ``mounts``
    whose paths the component's memory holds: what its build imported or opened there.

    Python keeps strings in one, two or four bytes a character; each width is searched.
    ``__pycache__`` is left out: bytecode the guest wrote is made from a source file that is found too.
    """
    wanted = {str(mount) for mount in mounts}
    if not wanted:
        return set()
    found: set[str] = set()
    for match in set(_GUEST_PATH.findall(component)):
        # One (mount, name) pair per width; the others are empty.
        for mount, name in zip(match[::2], match[1::2]):
            if mount and mount.replace(b"\0", b"").decode() in wanted:
                found.add(name.replace(b"\0", b"").decode())
    found.discard("__pycache__")
    return found


def _guest_path(width: int) -> bytes:
    """`N/name` after a `/`, in characters of ``width`` bytes (little-endian, as Wasm memory holds them)."""
    pad = b"\0" * (width - 1)
    return pad + rb"((?:[0-9]" + pad + rb"){1,4})/" + pad + rb"((?:" + _NAME + pad + rb")+)"


#: All three widths in one pass over the component (each pass over 18 MB costs ~11 ms).
_GUEST_PATH = re.compile(rb"/(?:" + rb"|".join(_guest_path(width) for width in (1, 2, 4)) + rb")")


def _dist_infos(site_dir: Path) -> list[str]:
    try:
        return sorted(name for name in os.listdir(site_dir) if name.endswith(".dist-info"))
    except OSError:
        return []


def _record_rows(dist_info: str) -> list[list[str]] | None:
    """The non-empty rows of a distribution's RECORD whose files are inside the site directory
    (not scripts, whose paths start with `../`); None without a readable RECORD."""
    try:
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    return [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith(("../", "/"))]


def _record_digest(dist_info: str, rows: list[list[str]] | None) -> str:
    """The installed files of one distribution with their hashes, as its RECORD lists them.

    Lines outside the site directory (scripts, whose first line names the
    environment's interpreter), compiled files, and the installer's own
    bookkeeping are left out: they differ between two installs of the same files.
    """
    if rows is None:
        return "no RECORD"
    name = os.path.basename(dist_info)
    lines = []
    for row in rows:
        path = row[0]
        if path.endswith(".pyc"):
            continue
        if path.startswith(f"{name}/") and path[len(name) + 1 :] in _INSTALLER_FILES:
            continue
        lines.append(",".join(row[:2]))
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def provider_digests(site_dirs: list[Path], tops: Iterable[str], mounts: list[int] | None = None) -> list[list[str]]:
    """For each of ``tops``: what provides it now, as Python's import would find it.

    The first site directory holding an entry of that name wins (with ``mounts``,
    its guest directory is named: the paths the component holds); the entry is
    stood for by the distributions whose RECORD lists files under it (each by
    dist-info name and RECORD digest: its version and every file's hash), or,
    for an entry no distribution owns, by its own digest; ``missing`` if no
    site directory has it.
    """
    owners_by_dir: dict[Path, dict[str, list[str]]] = {}
    result = []
    for top in sorted(tops):
        provided = ["missing"]
        for position, site_dir in enumerate(site_dirs):
            if not os.path.lexists(site_dir / top):
                continue
            if site_dir not in owners_by_dir:
                owners_by_dir[site_dir] = _owners(site_dir)
            owners = owners_by_dir[site_dir].get(top)
            provided = owners if owners else ["loose", path_digest(site_dir / top, _no_bytecode, with_dirs=False)]
            if mounts is not None:
                provided = [f"/{mounts[position]}", *provided]
            break
        result.append([top, *provided])
    return result


def _owners(site_dir: Path) -> dict[str, list[str]]:
    """Top-level entry of ``site_dir`` -> the `dist-info:digest` of each distribution installing files under it."""
    owners: dict[str, set[str]] = {}
    for name in _dist_infos(site_dir):
        dist_info = os.path.join(site_dir, name)
        rows = _record_rows(dist_info)
        stamp = f"{name}:{_record_digest(dist_info, rows)}"
        for top in {row[0].split("/", 1)[0] for row in rows or ()} | {name}:
            owners.setdefault(top, set()).add(stamp)
    return {top: sorted(stamps) for top, stamps in owners.items()}


def _no_bytecode(path: str, is_dir: bool) -> bool:
    return is_dir and os.path.basename(path) == "__pycache__"


def linked_distributions(site_dirs: list[Path]) -> list[str]:
    """The distributions whose files componentize-py links in whether the app imports them or not:
    WebAssembly extension modules (`*-wasm32-wasi.so`, `*.abi3.so` starting with the Wasm magic)
    and `componentize-py.toml` files (bindings of their own). Each as `dist-info:digest`."""
    linked = []
    for site_dir in site_dirs:
        for name in _dist_infos(site_dir):
            dist_info = os.path.join(site_dir, name)
            rows = _record_rows(dist_info) or []
            if any(_linked(site_dir, row[0]) for row in rows):
                linked.append(f"{name}:{_record_digest(dist_info, rows)}")
    return linked


def _linked(site_dir: Path, path: str) -> bool:
    if path.rsplit("/", 1)[-1] == "componentize-py.toml":
        return True
    if not path.endswith(("-wasm32-wasi.so", ".abi3.so")):
        return False
    try:
        with open(site_dir / path, "rb") as f:
            return f.read(4) == b"\0asm"
    except OSError:
        return False
