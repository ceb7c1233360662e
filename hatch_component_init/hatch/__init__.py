"""Hatch build hooks: `componentize-py` builds a component, `component-init` pre-initializes it for the wheel."""

from __future__ import annotations

from .component_init import ComponentInitBuildHook
from .componentize import ComponentizePyBuildHook

__all__ = ["ComponentInitBuildHook", "ComponentizePyBuildHook"]
