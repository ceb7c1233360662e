"""Reading and checking the options of our build hooks, worded the way hatchling words its own.

Each hook reads its options lazily through an :class:`OptionReader`, so a bad
option fails the build with a message that names the option and the hook, e.g.
``Option `dirs` for build hook `component-init` must be a table of strings``.
Like hatchling, wrong types raise :class:`TypeError` and bad values
:class:`ValueError`; Hatch shows either to the user.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

__all__ = ["HATCH_OWN_OPTIONS", "OptionReader"]

#: Options that Hatch itself reads from every build hook table; never ours to warn about.
HATCH_OWN_OPTIONS = frozenset(
    {"dependencies", "enable-by-default", "require-runtime-dependencies", "require-runtime-features"}
)


class OptionReader:
    """Typed access to one hook's table, raising hatchling-style errors that name the option."""

    def __init__(self, hook_name: str, config: Mapping[str, Any]) -> None:
        self.hook_name = hook_name
        self.config = config

    def error(self, option: str, problem: str) -> str:
        return f"Option `{option}` for build hook `{self.hook_name}` {problem}"

    def unknown_options(self, known: Iterable[str]) -> list[str]:
        """Keys that neither the hook nor Hatch understands, in table order."""
        allowed = HATCH_OWN_OPTIONS.union(known)
        return [key for key in self.config if key not in allowed]

    def string(self, option: str, default: str | None = None) -> str:
        """A non-empty string; required when ``default`` is None."""
        value = self.config.get(option)
        if value is None:
            if default is None:
                raise ValueError(self.error(option, "is required"))
            return default
        if not isinstance(value, str):
            raise TypeError(self.error(option, "must be a string"))
        if not value:
            # An empty string is how TOML users "unset" things; treat it like a missing value.
            if default is None:
                raise ValueError(self.error(option, "is required"))
            return default
        return value

    def optional_string(self, option: str) -> str | None:
        value = self.config.get(option)
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(self.error(option, "must be a string"))
        return value or None

    def boolean(self, option: str, *, default: bool) -> bool:
        value = self.config.get(option, default)
        if not isinstance(value, bool):
            raise TypeError(self.error(option, "must be a boolean"))
        return value

    def string_list(self, option: str, default: list[str]) -> list[str]:
        value = self.config.get(option, default)
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise TypeError(self.error(option, "must be an array of strings"))
        return list(value)

    def string_table(self, option: str) -> dict[str, str]:
        value = self.config.get(option, {})
        if not isinstance(value, dict) or not all(
            isinstance(key, str) and isinstance(item, str) for key, item in value.items()
        ):
            raise TypeError(self.error(option, "must be a table of strings"))
        return dict(value)

    def positive_number(self, option: str, default: float) -> float:
        value = self.config.get(option, default)
        # bool is an int subclass; `timeout = true` is a typo, not a second.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(self.error(option, "must be a number"))
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(self.error(option, "must be a positive number"))
        return float(value)

    def optional_positive_int(self, option: str) -> int | None:
        value = self.config.get(option)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(self.error(option, "must be an integer"))
        if value <= 0:
            raise ValueError(self.error(option, "must be a positive integer"))
        return value

    def relative_path(self, option: str, value: str, *, inside: str = "the project") -> str:
        """``value`` as a normalized POSIX path that stays below the directory it is relative to."""
        path = value.replace("\\", "/")
        normalized = posixpath.normpath(path)
        if (
            PurePosixPath(path).is_absolute()
            or PureWindowsPath(path).drive
            or normalized == "."
            or normalized.split("/")[0] == ".."
        ):
            raise ValueError(self.error(option, f"must be a relative path inside {inside}, not `{value}`"))
        return normalized
