"""Registers our build hooks with Hatch (entry point group `hatch`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hatchling.plugin import hookimpl

from .component_init import ComponentInitBuildHook
from .componentize import ComponentizePyBuildHook

if TYPE_CHECKING:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface


@hookimpl
def hatch_register_build_hook() -> list[type[BuildHookInterface]]:  # type: ignore[type-arg]
    return [ComponentizePyBuildHook, ComponentInitBuildHook]
