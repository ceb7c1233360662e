"""Where a failure of our build hooks becomes Hatch's kind of error: one paragraph, exit code 1, no traceback.

An exception escaping a hook reaches the build frontend through hatchling and
pyproject-hooks, which print 20-30 lines of their frames above our message.
Hatch's own way is ``app.abort(message)``: it prints the message and raises
``SystemExit``, which every frontend (`hatch build`, `python -m build`,
`pip wheel`, `uv build`) reports as a failed backend without a traceback.
So every entry point hatchling calls on our hooks goes through
:func:`reported`, the one place our exceptions turn into messages.

The traceback is still there for whoever asks: with verbosity 1 or more
(``hatch -v build``, which hands ``HATCH_VERBOSE`` to the backend, or
``HATCH_VERBOSE=1`` in the environment of any frontend) it is printed above the
message. What a tool we ran printed (componentize-py's output, with the app's
own Python traceback) comes first too.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from hatch_component_init.errors import BuildStepError, ComponentInitError, release_frames

__all__ = ["ENTRY_POINTS", "VERBOSE_HINT", "ReportsErrors", "failure_message", "reported"]

#: The methods hatchling calls on a build hook.
ENTRY_POINTS = ("dependencies", "initialize", "finalize", "clean")
#: How a user gets the traceback; said in the message of an error that is our bug.
VERBOSE_HINT = "`hatch -v build`, or HATCH_VERBOSE=1 with any other frontend"

Method = TypeVar("Method", bound=Callable[..., Any])


def failure_message(hook_name: str, error: BaseException) -> str:
    """The one paragraph a user reads for ``error``, raised by the build hook ``hook_name``."""
    if isinstance(error, ComponentInitError) or _names_the_hook(hook_name, error):
        text = str(error)
    elif isinstance(error, OSError):
        # The machine's fault, not the project's or ours (a full disk, a permission).
        text = f"Build hook `{hook_name}` failed: {error}"
    else:
        text = (
            f"Build hook `{hook_name}` failed with an unexpected {type(error).__name__}: {error}. This is a bug "
            f"in hatch-component-init; please report it with the traceback that {VERBOSE_HINT} shows"
        )
    # One paragraph: an engine's multi-line explanation stays, its blank lines go.
    return "\n".join(line for line in text.splitlines() if line.strip())


def _names_the_hook(hook_name: str, error: BaseException) -> bool:
    """A builtin error worded for the user the way hatchling words its own (``Option `x` for build hook `y` ...``).

    Our code raises our own types; this keeps a message written in hatchling's
    style with a builtin (``ValueError``, ``TypeError``, ``FileNotFoundError``)
    from being reported as a bug.
    """
    return isinstance(error, (TypeError, ValueError, OSError)) and f"for build hook `{hook_name}`" in str(error)


def reported(method: Method) -> Method:
    """``method`` of a build hook, with any exception it raises reported through ``self.app.abort``."""

    @functools.wraps(method)
    def entry_point(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - every failure is reported, ours or not
            app = self.app
            if app.verbosity >= 1:
                app.display_error(traceback.format_exc().rstrip())
            if isinstance(error, BuildStepError) and error.output:
                app.display_error("\n".join(f"  [{error.tool}] {line}" for line in error.output.splitlines()))
            message = failure_message(self.PLUGIN_NAME, error)
            # The frames hold the Wasmtime store after a failed init; see release_frames.
            release_frames(error)
            app.abort(message)
            raise  # not reached: abort exits; for an app whose abort returns

    entry_point.reports_errors = True  # type: ignore[attr-defined]
    return entry_point  # type: ignore[return-value]


class ReportsErrors:
    """Mixed into a build hook: each of :data:`ENTRY_POINTS` it defines reports its failures the Hatch way."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ENTRY_POINTS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "reports_errors", False):
                setattr(cls, name, reported(method))
