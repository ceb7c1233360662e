"""The `precompile` option: compile the shipped component ahead of time for the build machine's platform.

A wheel then carries Wasmtime's serialized machine code (``.cwasm``) next to
the portable ``.wasm``, so that the first start after ``pip install`` loads it
in milliseconds instead of compiling for seconds. The code is made for the
platform's baseline CPU (Wasmtime's target triple set explicitly turns off the
detection of the build CPU's extra features), so it loads on every CPU of that
architecture, and Wasmtime loads it in every release of the same major version.

With ``precompile = "only"`` the `.cwasm` is all the wheel carries: there is
no ``.wasm`` for the loader to compile where the machine code does not fit, so
the wheel requires the exact wasmtime release that compiled it, the one release
the build has seen load it.

Only the build machine's own platform is supported: the Cranelift that
wasmtime-py ships generates code for its host architecture alone (asking it
for another one aborts the process), and ``wasmtime compile --target`` output
loads only in the same wasmtime major version as the CLI that made it.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from hatch_component_init.errors import ConfigError, PrecompileError
from hatch_component_init.file_cache import cache_warnings, file_digest

from hatch_component_init.versions import wasmtime_version

from .keys import precompile_key
from .loader_template import host_platform

__all__ = [
    "PRECOMPILED_SUFFIX",
    "Precompiled",
    "check_wasmtime_requirements",
    "host_target",
    "precompile",
    "precompiled_destination",
    "wasmtime_requirement",
    "wheel_tag",
]

PRECOMPILED_SUFFIX = ".cwasm"


class ArtifactCache(Protocol):
    """Where `.cwasm` files are kept between builds (hatch/cache.py's `PrecompiledCache`)."""

    KIND: str
    damaged: list[Path]
    read_only: bool
    directory: Path

    def get(self, key: str) -> Path | None: ...

    def put(self, key: str, data: bytes) -> Path: ...


@dataclass(frozen=True)
class Precompiled:
    """A serialized component on disk and what a loader must know to trust it."""

    path: Path
    sha256: str
    size: int
    target: str
    platform: tuple[str, str]
    wasmtime_version: str
    from_cache: bool


def precompiled_destination(destination: str) -> str:
    """``destination`` with its suffix replaced by ``.cwasm`` (added if it has none)."""
    return PurePosixPath(destination).with_suffix(PRECOMPILED_SUFFIX).as_posix()


def host_target(
    found: tuple[str, str] | None = host_platform(),
    machine: str = platform.machine(),
    system: str = sys.platform,
    maxsize: int = sys.maxsize,
    libc: str | None = None,
) -> str:
    """Wasmtime's target triple for this machine, as wasmtime-py's own Cranelift expects it.

    The parameters are this machine's facts (``found``: loader_template's ``host_platform()``;
    ``libc``: read when needed); tests pass another platform's.
    """
    if found is None:
        message = (
            "Option `precompile` for build hook `component-init` is not supported on this platform "
            f"({machine or 'unknown machine'}, {system}, {64 if maxsize > 2**32 else 32}-bit): "
            "precompiled components are made for 64-bit x86_64 and aarch64 Linux, macOS and Windows; "
            "set `precompile = false` (the component still works, it is compiled at its first start)"
        )
        raise PrecompileError(message)
    arch, os_name = found
    if os_name == "linux":
        return f"{arch}-unknown-linux-{_linux_libc() if libc is None else libc}"
    if os_name == "darwin":
        return f"{arch}-apple-darwin"
    return f"{arch}-pc-windows-msvc"


def _linux_libc(libc_name: str | None = None, host_gnu_type: str | None = None) -> str:
    """``musl`` or ``gnu``: from the C library Python is linked to, else the platform it was built for
    (``None``: read this interpreter's)."""
    import sysconfig

    name = platform.libc_ver()[0] if libc_name is None else libc_name
    if not name:
        name = str(sysconfig.get_config_var("HOST_GNU_TYPE") if host_gnu_type is None else host_gnu_type)
    return "musl" if "musl" in name else "gnu"


def compile_component(component: bytes, target: str) -> bytes:
    """Compile and serialize ``component`` with Wasmtime's default engine settings for ``target``.

    The loader deserializes it into an engine with the default settings too
    (plus the code cache, which does not change compiled code); any setting
    that changes code (fuel, epochs, memory layout) would make Wasmtime refuse
    it there.
    """
    import wasmtime
    from wasmtime.component import Component

    config = wasmtime.Config()
    config.target = target
    try:
        return bytes(Component(wasmtime.Engine(config), component).serialize())
    except wasmtime.WasmtimeError as e:
        raise PrecompileError(f"Wasmtime could not compile the component for {target}: {e}") from None


def precompile(
    component: Path,
    cache: ArtifactCache | None,
    stage: Callable[[bytes], Path],
    on_cache_error: Callable[[OSError], None] = lambda error: None,
) -> Precompiled:
    """The `.cwasm` of ``component`` for this machine: from ``cache``, or compiled (and then cached or staged)."""
    target = host_target()
    found = host_platform()
    assert found is not None
    version = wasmtime_version()
    key = precompile_key(file_digest(component), target, version)
    # Wasmtime does not check the machine code it loads: get() returns only an entry whose bytes
    # match the checksum in its name (FileCache), so a damaged one is compiled again, not shipped.
    path = cache.get(key) if cache is not None else None
    from_cache = path is not None
    if path is None:
        data = compile_component(component.read_bytes(), target)
        if cache is not None:
            try:
                path = cache.put(key, data)
            except OSError as e:
                on_cache_error(e)
        if path is None:
            path = stage(data)
    return Precompiled(
        path=path,
        sha256=file_digest(path),
        size=path.stat().st_size,
        target=target,
        platform=found,
        wasmtime_version=version,
        from_cache=from_cache,
    )


# -- what the wheel says about itself ----------------------------------------------------------


def wheel_tag() -> str:
    """``py3-none-<platforms>``: the platforms the installed wasmtime's wheel was built for.

    The machine code runs exactly where that wasmtime runs (same architecture
    and operating system), so its platform tags are the honest claim, and on
    Linux they are `manylinux` tags that an index accepts.
    """
    platforms = _wasmtime_wheel_platforms() or [_platform_tag_of_this_interpreter()]
    return "py3-none-" + ".".join(platforms)


def _wasmtime_wheel_platforms(dist: str = "wasmtime") -> list[str]:
    """The platform tags of the installed ``dist``'s wheel (none if it is not installed)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution(dist).read_text("WHEEL")
    except PackageNotFoundError:
        return []
    return _wheel_platforms(text) if text is not None else []


def _wheel_platforms(wheel: str, machine: str = platform.machine()) -> list[str]:
    """The platform tags of the ``Tag`` lines of a ``WHEEL`` file, each once, in order, without ``any``,
    fat macOS ones narrowed to ``machine``."""
    platforms: list[str] = []
    for line in wheel.splitlines():
        name, _, value = line.partition(":")
        if name.strip() != "Tag":
            continue
        for plat in value.strip().split("-")[-1].split("."):
            plat = _single_arch(plat, machine)
            if plat != "any" and plat not in platforms:
                platforms.append(plat)
    return platforms


def _single_arch(plat: str, machine: str = platform.machine()) -> str:
    """A macOS fat-binary tag narrowed to ``machine``'s architecture: our code is for one."""
    for fat in ("_universal2", "_universal"):
        if plat.startswith("macosx_") and plat.endswith(fat):
            return plat[: -len(fat)] + "_" + machine
    return plat


def _platform_tag_of_this_interpreter() -> str:
    from packaging.tags import platform_tags

    # Like hatchling's own inferred tag: the generic one, not manylinux/musllinux guesses.
    return next(tag for tag in platform_tags() if "manylinux" not in tag and "musllinux" not in tag)


def wasmtime_requirement(version: str, *, exact: bool = False) -> str:
    """The releases whose Wasmtime loads artifacts of ``version``: the same major version, or ``version`` alone."""
    return f"wasmtime=={version}" if exact else f"wasmtime=={version.split('.')[0]}.*"


def check_wasmtime_requirements(dependencies: Iterable[str], version: str) -> str | None:
    """The first of the project's own requirements on wasmtime that excludes ``version``, if any."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    for dependency in dependencies:
        try:
            requirement = Requirement(dependency)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) != "wasmtime":
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            return dependency
    return None


def describe(precompiled: Precompiled, source: str, destination: str, elapsed: float) -> str:
    """The line the build shows for the `.cwasm`."""
    size = f"{precompiled.size / 1_000_000:.1f} MB"
    how = "from the cache, Wasmtime not run" if precompiled.from_cache else f"wasmtime {precompiled.wasmtime_version}"
    return f"Precompiled `{source}` -> `{destination}` for {precompiled.target} ({size}, {how}) in {elapsed:.2f} s"


# -- the hook's side ---------------------------------------------------------------------------


def ship_precompiled(
    shipped: Path,
    *,
    destination: str,
    dependencies: Iterable[str],
    hook_name: str,
    cache: ArtifactCache | None,
    stage: Callable[[bytes], Path],
    build_data: dict[str, Any],
    report: Callable[[str], None],
    warn: Callable[[str], None],
    only: bool = False,
) -> tuple[str, Precompiled]:
    """Put the `.cwasm` of ``shipped`` (the wheel's ``destination``) into the wheel, and make the wheel say
    what it needs to load it. ``dependencies`` are the project's own requirements; ``only``: the wheel
    ships no ``.wasm``, so it requires exactly the wasmtime that compiled the code."""
    started = time.perf_counter()
    version = wasmtime_version()
    if not version[:1].isdigit():
        message = (
            f"Option `precompile` for build hook `{hook_name}` needs wasmtime in the build environment "
            "(its version names the releases that can load the code); add `wasmtime` to `[build-system] requires`"
        )
        raise PrecompileError(message)
    conflict = check_wasmtime_requirements(dependencies, version)
    if conflict is not None:
        message = (
            f"Option `precompile` for build hook `{hook_name}`: the build runs wasmtime {version}, whose "
            f"precompiled code loads only in wasmtime {version.split('.')[0]}.x, but the project requires "
            f"`{conflict}`. Build with a wasmtime that the project's requirements allow."
        )
        raise ConfigError(message)

    def cache_error(error: OSError) -> None:
        warn(f"Could not write the precompiled component to the cache: {error}")

    wheel_path = precompiled_destination(destination)
    artifact = precompile(shipped, cache, stage, on_cache_error=cache_error)
    for line in cache_warnings(cache) if cache is not None else ():
        warn(line)
    build_data["force_include"][str(artifact.path)] = wheel_path
    # Machine code for one platform: the wheel must not claim `none-any`.
    build_data["tag"] = wheel_tag()
    build_data["pure_python"] = False
    requirement = wasmtime_requirement(artifact.wasmtime_version, exact=only)
    build_data["dependencies"].append(requirement)
    alone = f", without `{destination}`" if only else ""
    report(
        describe(artifact, destination, wheel_path, time.perf_counter() - started)
        + f"; wheel tagged `{build_data['tag']}`, requires `{requirement}`{alone}"
    )
    return wheel_path, artifact
