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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hatch_component_init.__about__ import __version__

if TYPE_CHECKING:
    from .component_init import ComponentInitBuildHook
    from .precompile import Precompiled

__all__ = ["install_loader_in_tree", "relative_to", "render_loader", "ship_loader"]

_BEGIN = "# -- settings written by the build hook: begin --\n"
_END = "# -- settings written by the build hook: end --\n"
_TYPES = {
    "COMPONENT": "str",
    "PRECOMPILED": "str | None",
    "PRECOMPILED_SHA256": "str | None",
    "PRECOMPILED_SIZE": "int | None",
    "WASMTIME_VERSION": "str | None",
    "TARGET": "str | None",
    "PLATFORM": "tuple[str, str] | None",
}
_COMMENTS = {
    "COMPONENT": "The component, relative to this file.",
    "PRECOMPILED": "Its precompiled form, relative to this file (None: none was built).",
    "PRECOMPILED_SHA256": "SHA-256 (hex) of the precompiled file as built; anything else is not handed to Wasmtime.",
    "PRECOMPILED_SIZE": "Its size in bytes.",
    "WASMTIME_VERSION": "The wasmtime that compiled it; Wasmtime loads it in any release of the same major version.",
    "TARGET": "The target triple it was compiled for, with the architecture's baseline CPU features only.",
    "PLATFORM": "(architecture, operating system) of that target: what Wasmtime requires of the host.",
}


def relative_to(loader: str, target: str) -> str:
    """``target`` (a POSIX path in the wheel or the tree) as seen from the directory of ``loader``."""
    return posixpath.relpath(target, posixpath.dirname(loader) or ".")


def render_loader(loader: str, component: str, precompiled: tuple[str, Precompiled] | None = None) -> bytes:
    """The source of the module at ``loader`` for ``component`` and, optionally, its (path, `.cwasm`).

    All paths are POSIX paths relative to the same root (the wheel, or the
    source tree for an editable install).
    """
    template = resources.files(__package__).joinpath("loader_template.py").read_text(encoding="utf-8")
    head, rest = template.split(_BEGIN, 1)
    _old, tail = rest.split(_END, 1)
    settings: dict[str, object] = {
        "COMPONENT": relative_to(loader, component),
        "PRECOMPILED": None,
        "PRECOMPILED_SHA256": None,
        "PRECOMPILED_SIZE": None,
        "WASMTIME_VERSION": None,
        "TARGET": None,
        "PLATFORM": None,
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


# -- the hook's side ---------------------------------------------------------------------------


def ship_loader(
    hook: ComponentInitBuildHook, build_data: dict[str, Any], precompiled: tuple[str, Precompiled] | None
) -> None:
    """Put the loader module into the wheel at the `loader` path."""
    loader = hook.config_loader
    assert loader is not None
    _warn_without_wasmtime(hook, precompiled is not None)
    source = render_loader(loader, hook.config_destination, precompiled)
    build_data["force_include"][str(hook._stage(source))] = loader
    what = f"`{precompiled[0]}`, else `{hook.config_destination}`" if precompiled else f"`{hook.config_destination}`"
    hook.app.display_info(f"Loader `{loader}`: `load()` uses {what}")


def install_loader_in_tree(hook: ComponentInitBuildHook, component: Path) -> None:
    """Editable installs import from the source tree: write the loader there, next to the in-tree ``component``.

    It never uses a `.cwasm` (none is made for editable installs), so it compiles
    the component with Wasmtime's cache: slow once per change, fast after.
    """
    loader = hook.config_loader
    assert loader is not None
    _warn_without_wasmtime(hook, False)
    target = hook.tree_path(loader)
    root = Path(hook.root)
    source = render_loader(target.relative_to(root).as_posix(), component.relative_to(root).as_posix())
    hook.write_in_tree(target, source)
    no_cwasm = " (`precompile` applies to regular wheels only)" if hook.config_precompile else ""
    hook.app.display_info(
        f"Editable install: wrote the loader to `{target.relative_to(root).as_posix()}` in the source tree; it "
        f"compiles `{component.relative_to(root).as_posix()}` with Wasmtime's cache{no_cwasm}"
    )


def _warn_without_wasmtime(hook: ComponentInitBuildHook, requirement_added: bool) -> None:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    if requirement_added:
        return
    for dependency in hook.metadata.core.dependencies:
        try:
            if canonicalize_name(Requirement(dependency).name) == "wasmtime":
                return
        except InvalidRequirement:
            continue
    hook.app.display_warning(
        f"Option `loader` for build hook `{hook.PLUGIN_NAME}`: the generated module imports wasmtime, "
        "but the project does not depend on it; add `wasmtime` to `[project] dependencies`"
    )
