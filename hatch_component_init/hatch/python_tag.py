"""The warning for a project without `requires-python`, whose pure wheel hatchling tags `py2.py3`.

Hatchling derives a pure wheel's Python tag from `requires-python`; without it
the wheel claims Python 2 too (`py2.py3-none-any`), which nothing that loads a
component can run. Said after the wheel is built, naming the tag it got and
the line that fixes it (the Python running the build is known to work).
"""

from __future__ import annotations

import sys
from pathlib import PurePath

__all__ = ["missing_requires_python"]


def missing_requires_python(requires_python: str | None, wheel: str) -> str | None:
    """The warning for ``wheel`` (its path) when the project sets no `requires-python`, else None."""
    if requires_python or not wheel.endswith(".whl"):
        return None
    tag = "-".join(PurePath(wheel).stem.split("-")[-3:])
    if not tag.startswith("py2"):
        return None  # a platform tag (e.g. from `precompile`) or an explicit one: the Python tag is not guessed
    line = f'requires-python = ">={sys.version_info.major}.{sys.version_info.minor}"'
    return (
        f"The project sets no `requires-python`, so the wheel is tagged `{tag}`, as if it ran on Python 2; "
        f"add `{line}` to the `[project]` table of pyproject.toml for a `py3` wheel"
    )
