"""The `component-init` input, checked before any hook runs: a path that nothing will write is a typo.

Hooks run one after another, so a mistyped `component` used to surface only
after the `componentize-py` hook had spent seconds building the right file.
When every hook before `component-init` is one of ours, what they write is
known (the `componentize-py` hook's `output`; config.check_component_input
says which), so a path that does not exist and is not written by them fails
the build at once, naming the likely path. After any other hook that cannot be
known; the hook checks again when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from hatch_component_init.errors import MissingPathError
from hatch_component_init.suggest import close_matches, project_paths

__all__ = ["check_component_made", "similar_paths"]


def check_component_made(
    root: str | Path, hook_name: str, component: str, written: Mapping[str, tuple[str, str]], producer: str
) -> None:
    """Refuse ``component`` (of the hook ``hook_name``) when it does not exist and no earlier hook writes it.

    ``written`` maps each earlier hook that writes a file to that file's option
    and path (``{"componentize-py": ("output", "build/app.wasm")}``); the caller
    knows every earlier hook. ``producer`` is the hook to suggest for making it.
    """
    if Path(root, component).exists():
        return
    target = Path(root, component).resolve()
    if any(Path(root, path).resolve() == target for _option, path in written.values()):
        return
    hints = [f"`{path}` (the `{option}` of build hook `{hook}`)" for hook, (option, path) in written.items()]
    outputs = {path for _option, path in written.values()}
    hints += [f"`{path}`" for path in similar_paths(Path(root), component) if path not in outputs]
    missing = (
        f"Component `{component}` for build hook `{hook_name}` does not exist, and no build hook "
        f"that runs before `{hook_name}` writes it"
    )
    if hints:
        raise MissingPathError(f"{missing}; did you mean {' or '.join(hints)}?")
    raise MissingPathError(f"{missing}. Build it first, e.g. with the `{producer}` build hook listed before `{hook_name}`.")


def similar_paths(root: Path, wanted: str, limit: int = 3) -> list[str]:
    """Files in the project whose relative path looks like ``wanted`` (a typo's likely target), best first."""
    wanted = PurePosixPath(wanted.replace("\\", "/")).as_posix()
    # Components only: a `.wit` file next to the app is not what a `component` path means.
    suffixes = {".wasm", PurePosixPath(wanted).suffix}
    candidates = [path for path in project_paths(root) if PurePosixPath(path).suffix in suffixes]
    close = close_matches(wanted, candidates, limit)
    # A file with the same name in another directory is a likely target too (`lexicon.wasm` vs `build/lexicon.wasm`).
    name = PurePosixPath(wanted).name
    same_name = sorted(path for path in candidates if PurePosixPath(path).name == name and path not in close)
    return (close + same_name)[:limit]

