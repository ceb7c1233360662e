"""The exceptions this package raises; the CLI and the Hatch hook turn them into messages."""

from __future__ import annotations

__all__ = [
    "ComponentInitError",
    "InitExportError",
    "InitFailedError",
    "InvalidComponentError",
    "OutputInvalidError",
    "UnsupportedComponentError",
    "ConfigError",
    "PrecompileError",
]


class ComponentInitError(Exception):
    """Base of every error this package reports on purpose."""


class InvalidComponentError(ComponentInitError):
    """The input is not a well-formed WebAssembly component."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        if offset is not None:
            message = f"{message} (at offset {offset:#x})"
        super().__init__(message)


class UnsupportedComponentError(ComponentInitError):
    """The component is well formed but uses something we cannot snapshot soundly."""


class InitExportError(ComponentInitError):
    """The init function is missing, has the wrong signature, or its arguments are bad."""


class InitFailedError(ComponentInitError):
    """Instantiating the component or running its init function failed (trap, limit, WASI exit)."""


class HostError(InitFailedError):
    """The caller's host definitions or runtime callback failed (not the guest)."""


class OutputInvalidError(ComponentInitError):
    """The rewritten component does not validate: a bug in this tool, never the input's fault."""


class ConfigError(ComponentInitError):
    """An option given to the API, the CLI or the hook is invalid."""


class PrecompileError(ComponentInitError):
    """Compiling the component ahead of time for this machine is impossible here, or Wasmtime failed at it."""
