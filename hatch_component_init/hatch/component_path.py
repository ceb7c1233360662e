"""The `component-init` input, checked before any hook runs: a path that nothing will write is a typo.

Hooks run one after another, so a mistyped `component` used to surface only
after the `componentize-py` hook had spent seconds building the right file.
When every hook before `component-init` is one of ours, we know what they
write (the `componentize-py` hook's `output`), so a path that does not exist
and is not written by them fails the build at once, naming the likely path.
After any other hook we cannot know; the hook checks again when it runs.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from hatch_component_init.errors import MissingPathError

from .config import COMPONENT_INIT_HOOK, COMPONENTIZE_PY_HOOK, SCHEMAS, reader_for

__all__ = ["check_component_made", "similar_paths"]

#: Directories never searched for look-alike components: VCS, environments, caches, build outputs.
_SKIPPED = frozenset({"__pycache__", "node_modules", "dist", "site-packages"})
#: Enough to find a component in a project; a huge tree is not walked to the end for a hint.
_MAX_ENTRIES = 5_000


def check_component_made(root: str | Path, hook_tables: Mapping[str, Any]) -> None:
    """Refuse a `component` that does not exist and that no hook running before `component-init` writes."""
    names = list(hook_tables)
    if COMPONENT_INIT_HOOK not in names or not isinstance(hook_tables[COMPONENT_INIT_HOOK], Mapping):
        return
    earlier = names[: names.index(COMPONENT_INIT_HOOK)]
    if any(name not in SCHEMAS for name in earlier):
        return  # another plugin's hook may write it: checked when `component-init` runs
    component = str(reader_for(COMPONENT_INIT_HOOK, hook_tables[COMPONENT_INIT_HOOK], root).value("component"))
    if Path(root, component).exists():
        return
    output = None
    if COMPONENTIZE_PY_HOOK in earlier and isinstance(hook_tables[COMPONENTIZE_PY_HOOK], Mapping):
        output = str(reader_for(COMPONENTIZE_PY_HOOK, hook_tables[COMPONENTIZE_PY_HOOK], root).value("output"))
        if Path(root, output).resolve() == Path(root, component).resolve():
            return
    hints = [f"`{output}` (the `output` of build hook `{COMPONENTIZE_PY_HOOK}`)"] if output else []
    hints += [f"`{path}`" for path in similar_paths(Path(root), component) if path != output]
    missing = (
        f"Component `{component}` for build hook `{COMPONENT_INIT_HOOK}` does not exist, and no build hook "
        f"that runs before `{COMPONENT_INIT_HOOK}` writes it"
    )
    if hints:
        raise MissingPathError(f"{missing}; did you mean {' or '.join(hints)}?")
    raise MissingPathError(
        f"{missing}. Build it first, e.g. with the `{COMPONENTIZE_PY_HOOK}` build hook listed before "
        f"`{COMPONENT_INIT_HOOK}`."
    )


def similar_paths(root: Path, wanted: str, limit: int = 3) -> list[str]:
    """Files in the project whose relative path looks like ``wanted`` (a typo's likely target), best first."""
    wanted = PurePosixPath(wanted.replace("\\", "/")).as_posix()
    # Components only: a `.wit` file next to the app is not what a `component` path means.
    suffixes = {".wasm", PurePosixPath(wanted).suffix}
    candidates = [path for path in _project_files(root) if PurePosixPath(path).suffix in suffixes]
    close = difflib.get_close_matches(wanted, candidates, n=limit, cutoff=0.6)
    # A file with the same name in another directory is a likely target too (`lexicon.wasm` vs `build/lexicon.wasm`).
    name = PurePosixPath(wanted).name
    same_name = sorted(path for path in candidates if PurePosixPath(path).name == name and path not in close)
    return (close + same_name)[:limit]


def _project_files(root: Path) -> list[str]:
    files: list[str] = []
    seen = 0
    for directory, subdirectories, filenames in os.walk(root):
        # Hidden folders (.git, .venv), environments and build outputs hold no component the user means.
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if not name.startswith(".")
            and name not in _SKIPPED
            and not Path(directory, name, "pyvenv.cfg").exists()
        )
        base = Path(directory).relative_to(root)
        for filename in sorted(filenames):
            files.append((base / filename).as_posix())
        seen += len(filenames) + len(subdirectories)
        if seen > _MAX_ENTRIES:
            break
    return files
