"""What to change when init failed for want of what it was not given: a file (`dirs`), a variable (`env`).

The guest says what it missed only in its own words, on its stderr: a Python
app's traceback ends with ``FileNotFoundError: ... No such file or directory:
'/data/words.txt'`` or, after a frame of ``os``, ``KeyError: 'API_KEY'``. The
host cannot learn it any other way: the guest's libc refuses a path outside
every granted directory before any WASI call is made. So the hint is read from
that text, and said only when the guest's words name what was missing.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from .options import WasiOptions
from .suggest import close_matches, project_paths

__all__ = ["init_failure_hint"]

#: A missing file as Python words it (`... No such file or directory: '/data/x'`), or as C and Go do
#: (`open /data/x: no such file or directory`).
_MISSING_FILE = re.compile(
    r"no such file or directory: (?P<q>['\"])(?P<quoted>.+?)(?P=q)\s*$"
    r"|(?:^|\s)(?P<plain>\S*/\S*): no such file or directory",
    re.IGNORECASE | re.MULTILINE,
)
#: A `KeyError` raised by `os.environ[...]`: the frame of `os`'s `__getitem__`, then the error.
_MISSING_VARIABLE = re.compile(
    r"""File "[^"\n]*\bos(?:\.py)?>?", line \d+, in __getitem__\n(?:[^\n]*\n)*?KeyError: (['"])(?P<name>[^'"\n]+)\1"""
)


def init_failure_hint(stderr: str, wasi: WasiOptions | None, base: Path) -> str:
    """One line saying which option would give init what it missed, or "" when the guest's words name nothing.

    ``wasi`` is what init was given; ``base`` is where relative host paths start
    (the project root for the hook, the current directory for the command),
    searched for a directory that would serve.
    """
    if wasi is None or not wasi.enabled:
        return ""
    found = list(_MISSING_FILE.finditer(stderr))
    if found:
        path = found[-1]["quoted"] or found[-1]["plain"]
        try:
            return _missing_file_message(path, wasi, base)
        except OSError:
            return ""  # a directory we may not search: no hint rather than a failure of our own
    variable = list(_MISSING_VARIABLE.finditer(stderr))
    if variable:
        name = variable[-1]["name"]
        if name not in dict(wasi.env):
            return _missing_variable_message(name)
    return ""


def _guest_path(path: str) -> PurePosixPath:
    """``path`` as the guest resolves it: a relative path starts at `/`, the guest's working directory."""
    return PurePosixPath("/", path)


def _missing_file_message(path: str, wasi: WasiOptions, base: Path) -> str:
    wanted = _guest_path(path)
    mounts = [(Path(host), _guest_path(guest)) for host, guest in wasi.dirs]
    for host, guest in sorted(mounts, key=lambda mount: len(mount[1].parts), reverse=True):
        if wanted.is_relative_to(guest):
            on_host = host / wanted.relative_to(guest)
            if on_host.exists():
                return ""  # granted and there: the guest failed for another reason
            return (
                f"The guest looked for `{wanted}` in the directory granted at `{guest}`, but "
                f"`{_shown(on_host, base)}` does not exist on the host."
            )
    near = _near_mount(wanted, mounts)
    if near is not None:
        meant, host, guest = near
        return (
            f"The guest looked for `{wanted}`, outside every directory granted to init; did you mean `{meant}`? "
            f"(`{_shown(host, base)}` is granted at `{guest}`)"
        )
    serving = _serving_directory(wanted, [host for host, _ in mounts], base)
    if serving is not None:
        host, guest = serving
        return (
            f"The guest looked for `{wanted}`, outside every directory granted to init; `{host}` holds it: "
            f'grant it with `dirs = {{ "{host}" = "{guest}" }}` (hook) or `--dir {host}::{guest}` (command).'
        )
    if mounts:
        granted = ", ".join(f"`{guest}`" for _, guest in mounts)
        return (
            f"The guest looked for `{wanted}`, outside every directory granted to init ({granted}): grant the "
            "directory that holds it with `dirs` (hook) or `--dir` (command)."
        )
    return (
        f"The guest looked for `{wanted}`, but init is given no directory: grant the one that holds it with "
        "`dirs` (hook) or `--dir` (command)."
    )


def _near_mount(wanted: PurePosixPath, mounts: list[tuple[Path, PurePosixPath]]) -> tuple[PurePosixPath, Path, PurePosixPath] | None:
    """A typo in the guest path: the file is in a granted directory whose guest path is close to ``wanted``'s."""
    by_guest = {str(guest): (host, guest) for host, guest in mounts}
    for parent in wanted.parents:
        rest = wanted.relative_to(parent)
        for close in close_matches(str(parent), list(by_guest)):
            host, guest = by_guest[close]
            if (host / rest).exists():
                return guest / rest, host, guest
    return None


def _serving_directory(wanted: PurePosixPath, hosts: list[Path], base: Path) -> tuple[str, str] | None:
    """A host directory (as shown, relative to ``base`` where it can be) and the guest path it should be granted at.

    For ``/data/words.txt`` that is a directory holding ``words.txt``, to be
    granted at ``/data``: the project's directories (and the granted ones) are
    searched, a directory named like the guest's (`data`) first. Only a guest
    directory below `/` is suggested.
    """
    parents = [parent for parent in wanted.parents if parent != PurePosixPath("/")]
    directories = [Path(root, directory) for root in [base, *hosts] for directory in [".", *project_paths(root, directories=True)]]
    for guest in parents:  # the deepest guest directory first: the least to grant
        rest = wanted.relative_to(guest).as_posix()
        candidates = [directory for directory in directories if (directory / rest).is_file()]
        if candidates:
            named = [c for c in candidates if c.resolve().name == guest.name]
            chosen = min(named or candidates, key=lambda c: len(c.resolve().parts))
            return _shown(chosen, base), str(guest)
    return None


def _shown(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` where it is inside it, else as an absolute path."""
    resolved = path.resolve()
    try:
        shown = resolved.relative_to(base.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()
    return shown or "."


def _missing_variable_message(name: str) -> str:
    return (
        f"The guest read the environment variable `{name}`, which init is not given: set it with "
        f'`env = {{ {name} = "..." }}` (hook) or `--env {name}=...` (command).'
    )
