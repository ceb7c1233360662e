"""The exceptions this package raises; the CLI and the Hatch hook turn them into messages."""

from __future__ import annotations

import traceback

__all__ = [
    "ComponentInitError",
    "InitExportError",
    "MissingInitExportError",
    "InitFailedError",
    "InvalidComponentError",
    "OutputInvalidError",
    "UnsupportedComponentError",
    "ConfigError",
    "OptionTypeError",
    "OptionValueError",
    "MissingPathError",
    "BuildStepError",
    "PrecompileError",
    "RebuildError",
    "release_frames",
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

    def __init__(self, message: str, offset: int | None = None) -> None:
        #: The input's byte our parser does not know (an opcode), when the refusal is about one byte:
        #: if Wasmtime calls the input malformed there or before, it is malformed, not unsupported.
        self.offset = offset
        super().__init__(message)


class InitExportError(ComponentInitError):
    """The init function is missing, has the wrong signature, or its arguments are bad."""


class MissingInitExportError(InitExportError):
    """The component has no function export of the init function's name."""


class InitFailedError(ComponentInitError):
    """Instantiating the component or running its init function failed (trap, limit, WASI exit).

    ``guest_stderr`` is the end of what the guest wrote to stderr (its own
    account of the failure, e.g. a Python traceback), for the hints the CLI
    and the hook add (init_hints.py).
    """

    def __init__(self, message: str, *, guest_stderr: str = "") -> None:
        self.guest_stderr = guest_stderr
        super().__init__(message)


class HostError(InitFailedError):
    """The caller's host definitions or runtime callback failed (not the guest)."""


class OutputInvalidError(ComponentInitError):
    """The rewritten component does not validate: a bug in this tool, never the input's fault."""


class ConfigError(ComponentInitError):
    """An option given to the API, the CLI or the hook is invalid."""


class OptionTypeError(ConfigError, TypeError):
    """A hook option has the wrong type (a ``TypeError`` too, as hatchling's own option errors are)."""


class OptionValueError(ConfigError, ValueError):
    """A hook option has a bad value, or the hooks' tables do not fit together."""


class MissingPathError(ConfigError, FileNotFoundError):
    """A file or directory that an option names does not exist (or is not the kind it must be)."""


class BuildStepError(ComponentInitError):
    """A tool a hook runs for the build (componentize-py, pip) failed, or is missing from the build environment.

    ``output`` is what the tool ``tool`` printed (for componentize-py, often the
    app's own Python traceback); the hooks show it before the message.
    """

    def __init__(self, message: str, *, tool: str = "", output: str = "") -> None:
        self.tool = tool
        self.output = output
        super().__init__(message)


class PrecompileError(ComponentInitError):
    """Compiling the component ahead of time for this machine is impossible here, or Wasmtime failed at it."""


class RebuildError(ComponentInitError):
    """An editable install's rebuild on load failed; the last good snapshot was kept."""


def release_frames(error: BaseException) -> None:
    """Drop the local variables of the finished frames in ``error``'s tracebacks, its causes' too.

    After a failed init they hold the Wasmtime store. Left to the garbage
    collector (an exception and its frames form cycles), the store can outlive
    the interpreter's shutdown; freeing it then calls back into Python from a
    Wasmtime thread, which prints a Rust panic ("panic in a function that
    cannot unwind") after an otherwise clean exit.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending += [current.__cause__, current.__context__]
