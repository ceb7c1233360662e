"""The `loader` option: write a small module that loads the shipped component, precompiled when it fits.

The module is ``loader_template.py`` (a real, importable module) with its block
of settings replaced: where the component and its `.cwasm` are relative to the
module, and what the `.cwasm` must look like (SHA-256, size, wasmtime version,
platform) to be handed to Wasmtime. The output is a pure function of those
settings, so the same inputs give the same bytes.
"""

from __future__ import annotations

import posixpath
from importlib import resources
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hatch_component_init.__about__ import __version__

if TYPE_CHECKING:
    from .precompile import Precompiled

__all__ = ["missing_wasmtime_warning", "relative_to", "render_loader"]

_BEGIN = "# -- settings written by the build hook: begin --\n"
_END = "# -- settings written by the build hook: end --\n"
_TYPES = {
    "COMPONENT": "str | None",
    "PRECOMPILED": "str | None",
    "PRECOMPILED_SHA256": "str | None",
    "PRECOMPILED_SIZE": "int | None",
    "WASMTIME_VERSION": "str | None",
    "TARGET": "str | None",
    "PLATFORM": "tuple[str, str] | None",
    "EDITABLE_ROOT": "str | None",
}
_COMMENTS = {
    "COMPONENT": 'The component, relative to this file (None: not shipped, `precompile = "only"`).',
    "PRECOMPILED": "Its precompiled form, relative to this file (None: none was built).",
    "PRECOMPILED_SHA256": "SHA-256 (hex) of the precompiled file as built; anything else is not handed to Wasmtime.",
    "PRECOMPILED_SIZE": "Its size in bytes.",
    "WASMTIME_VERSION": "The wasmtime that compiled it; Wasmtime loads it in any release of the same major version.",
    "TARGET": "The target triple it was compiled for, with the architecture's baseline CPU features only.",
    "PLATFORM": "(architecture, operating system) of that target: what Wasmtime requires of the host.",
    "EDITABLE_ROOT": "An editable install's project root, relative to this file: load() rebuilds what changed "
    "(None: never).",
}


def relative_to(loader: str, target: str) -> str:
    """``target`` (a POSIX path in the wheel or the tree) as seen from the directory of ``loader``."""
    return posixpath.relpath(target, posixpath.dirname(loader) or ".")


def render_loader(
    loader: str,
    component: str | None,
    precompiled: tuple[str, Precompiled] | None = None,
    editable_root: str | None = None,
) -> bytes:
    """The source of the module at ``loader`` for ``component`` and, optionally, its (path, `.cwasm`).

    ``component`` None: the wheel ships the `.cwasm` alone (``precompile = "only"``).

    All paths are POSIX paths relative to the same root (the wheel, or the
    source tree for an editable install). ``editable_root`` (the project root,
    for an editable install's loader that rebuilds on load) too.
    """
    template = resources.files(__package__).joinpath("loader_template.py").read_text(encoding="utf-8")
    head, rest = template.split(_BEGIN, 1)
    _old, tail = rest.split(_END, 1)
    settings: dict[str, object] = {
        "COMPONENT": None if component is None else relative_to(loader, component),
        "PRECOMPILED": None,
        "PRECOMPILED_SHA256": None,
        "PRECOMPILED_SIZE": None,
        "WASMTIME_VERSION": None,
        "TARGET": None,
        "PLATFORM": None,
        "EDITABLE_ROOT": None if editable_root is None else relative_to(loader, editable_root),
    }
    if precompiled is not None:
        path, artifact = precompiled
        settings.update(
            PRECOMPILED=relative_to(loader, path),
            PRECOMPILED_SHA256=artifact.sha256,
            PRECOMPILED_SIZE=artifact.size,
            WASMTIME_VERSION=artifact.wasmtime_version,
            TARGET=artifact.target,
            PLATFORM=artifact.platform,
        )
    block = "".join(f"#: {_COMMENTS[name]}\n{name}: {_TYPES[name]} = {value!r}\n" for name, value in settings.items())
    stamp = f"# Written by hatch-component-init {__version__}.\n"
    return (head + _BEGIN + stamp + block + _END + tail).encode("utf-8")


# -- what the hook says about it -----------------------------------------------------------------


def missing_wasmtime_warning(dependencies: Iterable[str], hook_name: str) -> str | None:
    """A warning when the project's own ``dependencies`` do not name wasmtime, which the loader imports."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    for dependency in dependencies:
        try:
            if canonicalize_name(Requirement(dependency).name) == "wasmtime":
                return None
        except InvalidRequirement:
            continue
    return (
        f"Option `loader` for build hook `{hook_name}`: the generated module imports wasmtime, "
        "but the project does not depend on it; add `wasmtime` to `[project] dependencies`"
    )
