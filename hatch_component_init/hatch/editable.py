"""Editable installs that rebuild on load: the loader's side of an editable install.

An editable install imports the package from the source tree, where the
editable build wrote the snapshot and the loader. When the loader is asked for
the component, :func:`refresh` compares what the snapshot was made from (the
record the build kept, hatch/tree.py) with the project's inputs now, keyed the
way the caches key them (keys.editable_inputs). When they
differ it runs our two hooks again, with the project's own configuration read
by hatchling, so a rebuild is an editable build of our hooks: same code, same
caches. A lock makes concurrent loads of one tree take turns, so one rebuilds
and the others find it done.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hatch_component_init.errors import RebuildError

from .config import COMPONENT_INIT_HOOK, COMPONENTIZE_PY_HOOK
from .tree import ledger_path, read_ledger

__all__ = ["REBUILD_ENV", "development_load", "refresh"]

#: Set to 0 to load an editable install's component as it is (the loader reads it; named here for messages).
REBUILD_ENV = "HATCH_COMPONENT_INIT_REBUILD"
_PREFIX = "hatch-component-init"


def refresh(root: str, component: str) -> str | None:
    """Rebuild the in-tree snapshot ``component`` of the project at ``root`` if its inputs changed.

    Returns (and prints to stderr, one line) what was rebuilt and why, or None
    when nothing changed. A failed rebuild raises :class:`RebuildError` and
    leaves the snapshot in the tree as it was.
    """
    target = Path(component)
    with _locked(ledger_path(target).with_suffix(".lock")):
        app = _Collector()
        try:
            hooks, build_data = _hooks(Path(root), app)
            init = hooks[COMPONENT_INIT_HOOK]
            current = init.editable_inputs()
        except Exception as e:  # e.g. pyproject.toml no longer valid, a `dirs` entry removed
            raise RebuildError(_failed(target, root, "its inputs could not be read", app, e)) from None
        damaged: list[Path] = []
        recorded = (read_ledger(target, damaged) or {}).get("inputs")
        if recorded == current:
            return None
        why = _why(recorded, current, init)
        if damaged:
            why = f"its record in the editable cache, `{damaged[0]}`, was damaged (removed)"
        producer = init.producer_hook()
        rebuilds_app = producer is not None and _changed(recorded, current, "app")
        pre_init = init.config_init_func is not None  # `init-func = false` ships the component as it is
        ran = (("componentize-py", rebuilds_app), ("pre-init", pre_init))
        steps = ", then ".join(step for step, runs in ran if runs) or "copy"
        started = time.perf_counter()
        init.compile_check = lambda snapshot: _compile_ahead(target, snapshot)
        try:
            for hook in hooks.values():
                hook.initialize("editable", build_data)
        except Exception as e:  # the loader's edge: every failure becomes one error that says what to do
            raise RebuildError(_failed(target, root, why, app, e)) from None
        finally:
            for hook in hooks.values():
                hook.finalize("editable", build_data, "")
    seconds = time.perf_counter() - started
    line = f"{_PREFIX}: rebuilt {_shown(target, root)} ({steps}) because {why}, in {seconds:.1f} s"
    print(line, file=sys.stderr, flush=True)
    return f"rebuilt because {why}"


#: The snapshot a rebuild just compiled for the load that follows: (path, bytes, engine, component).
_compiled: tuple[Path, bytes, Any, Any] | None = None


def _compile_ahead(target: Path, snapshot: bytes) -> bool:
    """The rebuild's check of a new snapshot: compile it for the load that follows (validating it on the way).

    Wasmtime validates what it compiles, so the load's compile stands in for
    the separate validation. Returns False (validate instead) when Winch
    cannot compile it; the load then says why and compiles with Cranelift.
    The lock held by the rebuild keeps other processes from replacing the
    snapshot meanwhile; the load uses the compiled one only if the file still
    holds these bytes.
    """
    global _compiled
    import wasmtime
    import wasmtime.component

    engine = _development_engine()
    try:
        component = wasmtime.component.Component(engine, snapshot)
    except wasmtime.WasmtimeError:
        return False  # a feature Winch lacks, or a snapshot that is not valid: the validation tells which
    _compiled = (target.resolve(), snapshot, engine, component)
    # Kept for the next processes' loads, written while this one finishes the rebuild and loads.
    _development_code(engine, snapshot, component)
    return True


def _development_code(engine: Any, snapshot: bytes, compiled: Any = None) -> Any:
    """``snapshot`` compiled for ``engine`` (``compiled``, or from our code cache, or compiled now), kept in the cache."""
    from hatch_component_init.compile_cache import DevelopmentCache, load_or_compile

    return load_or_compile(engine, snapshot, "winch", kind=DevelopmentCache, store_later=True, compiled=compiled)


def _development_engine() -> Any:
    import wasmtime

    from hatch_component_init.winch import use_winch

    config = wasmtime.Config()
    use_winch(config)
    return wasmtime.Engine(config)


def development_load(path: str) -> tuple[Any, Any]:
    """An editable install's loader's engine and the in-tree snapshot at ``path`` compiled for it.

    A rebuilt snapshot is new, so its first load compiles it: with Winch, about
    3x faster than Cranelift (an 18 MB componentize-py app: 7.0 s instead of
    23.2 s on a loaded 2-core machine); its code runs slower, so pass your own
    engine to `load()` to compile with Cranelift. The compiled snapshot is kept
    in our code cache (compile_cache.DevelopmentCache), written while the host
    goes on, so that the next loads of the same snapshot map it; a snapshot
    this process just rebuilt was compiled by the rebuild. Raises
    ``wasmtime.WasmtimeError`` when Winch cannot compile it.
    """
    global _compiled
    with open(path, "rb") as f:
        snapshot = f.read()
    ahead, _compiled = _compiled, None
    if ahead is not None and ahead[0] == Path(path).resolve() and ahead[1] == snapshot:
        return ahead[2], ahead[3]
    engine = _development_engine()
    return engine, _development_code(engine, snapshot)


def _hooks(root: Path, app: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our hooks of the project's wheel target, configured as a build would configure them."""
    from hatchling.builders.wheel import WheelBuilder

    builder = WheelBuilder(str(root), app=app)
    tables = builder.config.hook_config
    directory = str(root / "dist")
    # The classes hatchling's plugin manager registers for our names (hatch/hooks.py), as a build finds
    # them: not imported from here, since the hook module imports the loader code that imports this one.
    hooks = {}
    for name, config in tables.items():
        if name not in (COMPONENTIZE_PY_HOOK, COMPONENT_INIT_HOOK):
            continue
        hook_class = builder.plugin_manager.build_hook.get(name)
        if hook_class is None:
            raise LookupError(f"hatchling finds no build hook `{name}`: install hatch-component-init here")
        hooks[name] = hook_class(str(root), config, builder.config, builder.metadata, directory, "wheel", app)
    build_data = builder.get_default_build_data()
    builder.set_build_data_defaults(build_data)
    build_data["build_hooks"] = tuple(tables)
    return hooks, build_data


def _changed(recorded: Any, current: dict[str, str], part: str) -> bool:
    return not isinstance(recorded, dict) or recorded.get(part) != current[part]


def _why(recorded: Any, current: dict[str, str], init: Any) -> str:
    if not isinstance(recorded, dict):
        return "there is no record of what the snapshot in the tree was made from"
    reasons = []
    if _changed(recorded, current, "app"):
        if init.producer_hook() is not None:
            reasons.append("the app changed (a file on its python path, its WIT or its site-packages)")
        else:
            reasons.append(f"`{init.config_component}` changed")
    if _changed(recorded, current, "init"):
        reasons.append("the pre-init options, `dirs` or `host` module changed")
    return " and ".join(reasons)


def _shown(path: Path, root: str) -> str:
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _failed(target: Path, root: str, why: str, app: _Collector, error: Exception) -> str:
    shown = _shown(target, root)
    paragraph = (
        f"Rebuilding `{shown}` for this editable install failed ({why}). `load()` loaded nothing and "
        f"`{shown}` is still the last snapshot that was built; fix the error below and load again, or set "
        f"{REBUILD_ENV}=0 to load that snapshot as it is."
    )
    guest = "\n".join(line for line in app.lines if line.startswith("  "))
    details = "\n".join(part for part in (guest, str(error).strip()) if part)
    return f"{paragraph}\n{details}" if details else paragraph


class _Collector:
    """Hatchling's `Application` for a rebuild: keeps the lines a build would print, shows none of them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @property
    def verbosity(self) -> int:
        return 0

    def _keep(self, message: str = "", **_kwargs: Any) -> None:
        self.lines.append(message)

    display = display_info = display_waiting = display_success = display_warning = display_error = _keep
    display_mini_header = _keep

    def display_debug(self, message: str = "", level: int = 1, **_kwargs: Any) -> None:
        pass

    def abort(self, message: str = "", code: int = 1, **_kwargs: Any) -> None:
        raise RebuildError(message)

    def get_safe_application(self) -> Any:
        from hatchling.bridge.app import SafeApplication

        return SafeApplication(self)  # type: ignore[arg-type]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if needed) across processes, held while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        if sys.platform == "win32":
            import msvcrt

            f.seek(0)
            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ten seconds; a rebuild can take longer
                    continue
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
