"""The ``component-init`` build hook: pre-initialize a component and ship the snapshot in the wheel.

Where the snapshot goes, per build:

- wheel (``standard``): written outside the project (the snapshot cache, or a
  temp dir) and force-included at ``destination``. Force-including from
  outside the root replaces an in-tree file at that path, so the source tree is
  never touched and a second build sees the same raw input.
- wheel (``editable``): the package is imported from the source tree, so the
  snapshot is written to the tree at ``destination`` (like an in-place
  extension build) and ``clean`` removes it again.
- sdist: no snapshot; only makes sure the sdist carries what the wheel build
  needs (the component, unless an earlier hook rebuilds it, and the ``dirs``).

With ``init-func = false`` nothing is run: the component itself, once Wasmtime
has checked it (and its free allocator memory zeroed unless `zero-free-memory =
false`, see no_init.py), takes the snapshot's place above (and `precompile` and
`loader` work the same); it is not put in the snapshot cache, which holds runs.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import time
from functools import cached_property
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

from hatch_component_init.debris import staging_dir, sweep, sweep_cache, sweep_staging
from hatch_component_init.file_cache import StagedCache, cache_warnings, place
from hatch_component_init.fileio import PendingWrite
from hatch_component_init.guest_output import LinePrefixer
from hatch_component_init.options import InitOptions, WasiOptions

from .cache import SnapshotCache, default_cache_dir, file_digest
from .edge import ReportsErrors
from .config import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_PY_HOOK,
    PRECOMPILE_ONLY,
    OptionReader,
    SharedOptionChecks,
    reader_for,
)
from .keys import editable_inputs, inputs_key, snapshot_key
from .loader import missing_wasmtime_warning, render_loader
from .precompile import Precompiled, ship_precompiled
from .tree import damaged_record_warning, editable_target, ledger_path, read_ledger, write_in_tree

__all__ = ["PRECOMPILE_ENV", "SKIP_ENV", "ComponentInitBuildHook"]

#: Set to 1 to ship the raw component (e.g. to bisect a problem introduced by pre-initialization).
SKIP_ENV = "HATCH_COMPONENT_INIT_SKIP"
#: Set to 0 for a universal wheel (a release's fallback for other platforms, or a quicker development build):
#: `precompile` is then ignored (no `.cwasm`, a pure wheel with the `.wasm`, whose loader compiles it with
#: Wasmtime's cache). Hatch has no notion of build variants; like its own HATCH_BUILD_* switches, an
#: environment variable reaches every frontend (isolated or not).
PRECOMPILE_ENV = "HATCH_COMPONENT_INIT_PRECOMPILE"

_PRODUCER_HOOK = COMPONENTIZE_PY_HOOK


def _enabled(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"0", "false", "no", "off"}


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


class ComponentInitBuildHook(ReportsErrors, SharedOptionChecks, BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = COMPONENT_INIT_HOOK

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Temp dirs holding a snapshot until the builder has copied it into the wheel.
        self._staging: list[Path] = []
        #: Set by an editable install's rebuild on load (hatch/editable.py): checks the snapshot by
        #: compiling it for the load that follows, instead of validating it; False: not compiled, validate.
        self.compile_check: Callable[[bytes], bool] | None = None

    # -- options ------------------------------------------------------------------------------

    @cached_property
    def options(self) -> OptionReader:
        return reader_for(self.PLUGIN_NAME, self.config, self.root)

    @cached_property
    def config_component(self) -> str:
        return str(self.options.value("component"))

    @cached_property
    def config_destination(self) -> str:
        return str(self.options.value("destination"))

    @cached_property
    def config_init_func(self) -> str | None:
        """The init call to run; None for `init-func = false`: the component is shipped as it is."""
        value = self.options.value("init-func")
        return None if value is False else str(value)

    @cached_property
    def config_keep_init_func(self) -> bool:
        return bool(self.options.value("keep-init-func"))

    @cached_property
    def config_reset_first_call(self) -> bool:
        return bool(self.options.value("reset-first-call"))

    @cached_property
    def config_zero_free_memory(self) -> bool:
        return bool(self.options.value("zero-free-memory"))

    @cached_property
    def config_wasi(self) -> bool:
        return bool(self.options.value("wasi"))

    @cached_property
    def config_dirs(self) -> dict[str, str]:
        """Host directory (relative to the root) -> guest path, both as written in the table."""
        return dict(self.options.value("dirs"))

    @cached_property
    def config_env(self) -> dict[str, str]:
        return dict(self.options.value("env"))

    @cached_property
    def config_cache(self) -> bool:
        return bool(self.options.value("cache"))

    @cached_property
    def config_timeout(self) -> float:
        return float(self.options.value("timeout"))

    @cached_property
    def config_max_memory(self) -> int | None:
        value = self.options.value("max-memory")
        return None if value is None else int(value)

    @cached_property
    def config_precompile(self) -> bool | str:
        """`True`, `False`, or `"only"` (the `.cwasm` without the `.wasm`)."""
        value = self.options.value("precompile")
        return value if value == PRECOMPILE_ONLY else bool(value)

    @cached_property
    def config_loader(self) -> str | None:
        value = self.options.value("loader")
        return None if value is None else str(value)

    @cached_property
    def config_rebuild_on_load(self) -> bool:
        return bool(self.options.value("rebuild-on-load"))

    @cached_property
    def config_host(self) -> str | None:
        """`module:function` whose function defines host imports for init; imported only for a run."""
        value = self.options.value("host")
        return None if value is None else str(value)

    @property
    def host_option(self) -> str:
        """How messages name the `host` option, as hatchling words its own."""
        return self.options.error("host", "").rstrip()

    def host_module(self) -> Path | None:
        """The file of the `host` module (the part of it the cache key covers), found without running it."""
        if self.config_host is None:
            return None
        from .host import module_file, not_found

        found = module_file(self.config_host, Path(self.root))
        if found is None:
            from hatch_component_init.errors import MissingPathError

            raise MissingPathError(self.options.error("host", not_found(self.config_host)))
        return found

    def _host_key(self, host_module: Path | None) -> tuple[str, Path] | None:
        return None if host_module is None or self.config_host is None else (self.config_host, host_module)

    def editable_inputs(self) -> dict[str, str]:
        """What an editable install's in-tree snapshot is made from (keys.editable_inputs); the loader
        compares it with the record of the last build to decide whether to rebuild (hatch/editable.py)."""
        producer = self.producer_hook()
        if producer is not None:
            app = producer.app_key(default_cache_dir())
        elif self.component_path.is_file():
            app = file_digest(str(self.component_path))
        else:
            app = "missing"
        if self.config_init_func is None:
            # No run to key; what is shipped still depends on whether free memory is zeroed.
            kept = None if self.config_zero_free_memory else "init-func = false, zero-free-memory = false"
            return editable_inputs(app, kept)
        return editable_inputs(app, inputs_key(self.init_options, self._host_key(self.host_module())))

    def producer_hook(self) -> Any:
        """The configured `componentize-py` hook that writes our input component, if there is one."""
        from .componentize import ComponentizePyBuildHook

        table = self.hook_tables().get(_PRODUCER_HOOK)
        if not isinstance(table, Mapping):
            return None
        hook = ComponentizePyBuildHook(
            self.root, dict(table), self.build_config, self.metadata, self.directory, self.target_name, self.app
        )
        if hook.output_path.resolve() != self.component_path.resolve():
            return None
        return hook

    @cached_property
    def init_options(self) -> InitOptions:
        assert self.config_init_func is not None, "`init-func = false`: there is no init run to configure"
        return InitOptions(
            init_func=self.config_init_func,
            keep_init_func=self.config_keep_init_func,
            wasi=WasiOptions(
                enabled=self.config_wasi,
                dirs=tuple((Path(self.root, host), guest) for host, guest in self.config_dirs.items()),
                env=tuple(self.config_env.items()),
            ),
            timeout=self.config_timeout,
            max_memory=self.config_max_memory,
            code_cache=self.config_cache,
            reset_first_call=self.config_reset_first_call,
            zero_free_memory=self.config_zero_free_memory,
        )

    def dependencies(self) -> list[str]:
        # Called while the frontend asks for build requirements: a mistake fails before anything is installed.
        self.validate_without_files()
        return []

    # -- paths ----------------------------------------------------------------------------------

    @property
    def component_path(self) -> Path:
        return Path(self.root, self.config_component)

    @property
    def editable_path(self) -> Path:
        """Where ``destination`` lives in the source tree, undoing the target's `sources` rewrites."""
        return self.tree_path(self.config_destination)

    def tree_path(self, wheel_path: str) -> Path:
        """Where ``wheel_path`` lives in the source tree, undoing the target's `sources` rewrites."""
        sources: dict[str, str] = getattr(self.build_config, "sources", None) or {}
        return editable_target(Path(self.root), wheel_path, sources)

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- the build ------------------------------------------------------------------------------

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        self.validate()
        if self.target_name == "sdist":
            self._prepare_sdist(build_data)
            return
        self._sweep_debris()

        if version == "editable" and self.editable_path.resolve() == self.component_path.resolve():
            if self.config_init_func is not None:
                self.app.display_warning(
                    f"Editable install: `{self.config_destination}` is the input component itself, so the raw "
                    "component is used; set `destination` to another path to use the pre-initialized one"
                )
            if self.config_loader:
                # No snapshot is made, so there is nothing to rebuild on load either.
                self._install_loader_in_tree(self.editable_path, rebuilds=False)
            return
        rebuilds = version == "editable" and self.config_loader is not None and self.config_rebuild_on_load
        # Taken before the snapshot is made: an edit while it is made leaves the record older, not newer.
        inputs = self.editable_inputs() if rebuilds else None
        snapshot = self._snapshot_for_wheel(build_data, self.editable_path if version == "editable" else None)
        if version == "editable":
            self._install_in_tree(snapshot, inputs)
            if self.config_loader:
                self._install_loader_in_tree(self.editable_path, rebuilds=self.config_rebuild_on_load)
        else:
            self._keep_dirs_out_of_the_wheel()
            precompiles = self._precompiles()
            only = precompiles and self.config_precompile == PRECOMPILE_ONLY
            if only:
                # No `.wasm` at `destination`: not the snapshot, nor a file of the tree there (an editable
                # install's snapshot), which the wheel's file selection would otherwise pick up.
                if self._inside_root(self.editable_path):
                    self._exclude_from_wheel([f"/{self._relative(self.editable_path)}"])
            else:
                build_data["force_include"][str(snapshot)] = self.config_destination
            precompiled = self._ship_precompiled(snapshot, build_data, only) if precompiles else None
            if self.config_loader:
                self._ship_loader(build_data, precompiled, only)

    def _sweep_debris(self) -> None:
        """Remove what killed builds left: in the caches, the staging dirs, and next to the in-tree snapshot."""
        in_tree = self.editable_path
        removed = [*sweep_cache(default_cache_dir()), *sweep_staging(), *sweep([in_tree.parent], of=in_tree.name)]
        for path in removed:
            self.app.display_debug(f"Removed `{path}`, left by a build that was stopped")

    def _precompiles(self) -> bool:
        if self.config_precompile and _disabled(PRECOMPILE_ENV):
            self.app.display_warning(
                f"{PRECOMPILE_ENV}={os.environ[PRECOMPILE_ENV]}: `precompile` is ignored, this is a universal "
                f"wheel (`py3-none-any`: no `.cwasm`; the component is compiled when it is first loaded)"
            )
            return False
        return bool(self.config_precompile)

    def _ship_precompiled(self, snapshot: Path, build_data: dict[str, Any], only: bool) -> tuple[str, Precompiled]:
        from .cache import PrecompiledCache

        return ship_precompiled(
            snapshot,
            destination=self.config_destination,
            dependencies=self.metadata.core.dependencies,
            hook_name=self.PLUGIN_NAME,
            # Staged: the wheel is assembled after this hook, and another build may prune the cache meanwhile.
            cache=StagedCache(PrecompiledCache(default_cache_dir()), self._staging_path) if self.config_cache else None,
            stage=self._stage,
            build_data=build_data,
            report=self.app.display_success,
            warn=self.app.display_warning,
            only=only,
        )

    def _ship_loader(
        self, build_data: dict[str, Any], precompiled: tuple[str, Precompiled] | None, only: bool
    ) -> None:
        """Put the loader module into the wheel at the `loader` path."""
        loader = self.config_loader
        assert loader is not None
        if precompiled is None:
            # With a `.cwasm` the wheel already requires wasmtime (ship_precompiled added it).
            self._warn_without_wasmtime()
        source = render_loader(loader, None if only else self.config_destination, precompiled)
        build_data["force_include"][str(self._stage(source))] = loader
        if precompiled is None:
            what = f"`{self.config_destination}`"
        elif only:
            what = f"`{precompiled[0]}` alone (`precompile = \"{PRECOMPILE_ONLY}\"`)"
        else:
            what = f"`{precompiled[0]}`, else `{self.config_destination}`"
        self.app.display_info(f"Loader `{loader}`: `load()` uses {what}")

    def _install_loader_in_tree(self, component: Path, *, rebuilds: bool) -> None:
        """Editable installs import from the source tree: write the loader there, next to the in-tree ``component``.

        It never uses a `.cwasm` (none is made for editable installs), so it compiles
        the component once per change: with Winch and our code cache when it rebuilds
        (hatch/editable.py), else with Wasmtime's cache.
        """
        loader = self.config_loader
        assert loader is not None
        self._warn_without_wasmtime()
        target = self.tree_path(loader)
        root = Path(self.root)
        source = render_loader(
            target.relative_to(root).as_posix(),
            component.relative_to(root).as_posix(),
            editable_root="." if rebuilds else None,
        )
        write_in_tree(target, source)
        no_cwasm = " (`precompile` applies to regular wheels only)" if self.config_precompile else ""
        how = "Winch and hatch-component-init's code cache" if rebuilds else "Wasmtime's cache"
        rebuild = "; it rebuilds the component when the app changed" if rebuilds else ""
        self.app.display_info(
            f"Editable install: wrote the loader to `{target.relative_to(root).as_posix()}` in the source tree; it "
            f"compiles `{component.relative_to(root).as_posix()}` with {how}{no_cwasm}{rebuild}"
        )

    def _warn_without_wasmtime(self) -> None:
        warning = missing_wasmtime_warning(self.metadata.core.dependencies, self.PLUGIN_NAME)
        if warning is not None:
            self.app.display_warning(warning)

    def _keep_dirs_out_of_the_wheel(self) -> None:
        """Ship nothing from `dirs`, even a directory inside a package: init read it, the snapshot holds the result."""
        hosts = [Path(self.root, host) for host in self.config_dirs]
        self._exclude_from_wheel([f"/{self._relative(host)}/" for host in hosts if self._inside_root(host)])

    def _exclude_from_wheel(self, patterns: list[str]) -> None:
        """Keep the files of the tree that match ``patterns`` (gitignore style, from the root) out of the wheel."""
        if not patterns or self.build_config is None:  # None: a hook made outside a builder, which selects no files
            return
        # hatchling has no build-data key that removes files; its file selection asks `exclude_spec`,
        # computed once per build, so ours are added to the project's own patterns (they come last and win).
        import pathspec

        config = self.build_config
        ours = pathspec.GitIgnoreSpec.from_lines(patterns)
        config.exclude_spec = ours if config.exclude_spec is None else config.exclude_spec + ours

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:  # noqa: ARG002
        self._remove_staging()
        self.warn_about_the_wheel(self.app, self.metadata.core.requires_python, artifact_path)

    def clean(self, versions: list[str]) -> None:  # noqa: ARG002
        self._remove_from_tree(self.editable_path)
        if self.config_loader:
            self._remove_from_tree(self.tree_path(self.config_loader))

    def _remove_from_tree(self, target: Path) -> None:
        # Only a file an editable build wrote, and only while it is unchanged since.
        ledger = ledger_path(target)
        damaged: list[Path] = []
        recorded = (read_ledger(target, damaged) or {}).get("sha256")
        for path in damaged:
            self.app.display_warning(damaged_record_warning(path, self._relative(target)))
        if recorded is None:
            return
        try:
            if hashlib.sha256(target.read_bytes()).hexdigest() == recorded:
                target.unlink()
        except FileNotFoundError:
            pass
        ledger.unlink(missing_ok=True)

    def _snapshot_for_wheel(self, build_data: dict[str, Any], tree: Path | None = None) -> Path:
        """A file outside the project holding what the wheel ships at ``destination``.

        ``tree``: an editable build's in-tree target, written too while a new snapshot is checked.
        """
        component = self._read_component(build_data)
        if self.config_init_func is None:
            return self._as_it_is(component)
        if _enabled(SKIP_ENV):
            self.app.display_warning(
                f"{SKIP_ENV} is set: shipping `{self.config_component}` at `{self.config_destination}` "
                "without pre-initialization"
            )
            return self._stage(component)

        started = time.perf_counter()
        cache = SnapshotCache(default_cache_dir()) if self.config_cache else None
        key = None
        host_module = self.host_module()
        if cache is not None:
            key = snapshot_key(component, self.init_options, self._host_key(host_module))
            # Staged: the wheel is assembled after this hook, and another build may prune the cache meanwhile.
            hit = cache.get(key, stage=self._staging_path())
            self.app.display_debug(f"Snapshot cache key {key} in {cache.directory}")
            for line in cache_warnings(cache):
                self.app.display_warning(line)
            if hit is not None:
                self.app.display_success(
                    f"Pre-initialized `{self.config_component}` -> `{self.config_destination}` "
                    f"from the cache ({_megabytes(hit.stat().st_size)}, Wasmtime not run) "
                    f"in {time.perf_counter() - started:.2f} s"
                )
                return hit

        self.app.display_waiting(
            f"Pre-initializing `{self.config_component}` ({_megabytes(len(component))}) "
            f"by running `{self.config_init_func}`"
        )
        snapshot, check = self._run_engine(component, host_module)
        path = self._keep_checked(snapshot, check, cache, key, tree)
        self.app.display_success(
            f"Pre-initialized `{self.config_component}` -> `{self.config_destination}`: "
            f"{_megabytes(len(component))} -> {_megabytes(len(snapshot))} in {time.perf_counter() - started:.1f} s"
        )
        return path

    def _keep_checked(
        self, snapshot: bytes, check: Callable[[], None], cache: SnapshotCache | None, key: str | None,
        tree: Path | None,
    ) -> Path:
        """Write ``snapshot`` to the snapshot cache (else a staging dir), and to ``tree``, while ``check`` runs;
        keep what was written only if it passes. Returns the file outside the project."""
        cached = None
        if cache is not None and key is not None:
            try:
                cached = cache.start_put(key, snapshot)
            except OSError as e:
                self.app.display_warning(f"Could not write the snapshot cache in `{cache.directory}`: {e}")
        outside = cached if cached is not None else PendingWrite(self._staging_path(), snapshot)
        writes = [outside]
        try:
            if tree is not None:
                tree.parent.mkdir(parents=True, exist_ok=True)
                writes.append(PendingWrite(tree, snapshot))
            check()
        except BaseException:
            for write in writes:
                write.discard()
            raise
        path = outside.path
        try:
            if cached is None:
                outside.commit()
            else:
                assert cache is not None
                try:
                    path = self._stage_entry(cache.finish_put(cached), snapshot)
                except OSError as e:
                    self.app.display_warning(f"Could not write the snapshot cache in `{cache.directory}`: {e}")
                    path = self._stage(snapshot)
        except BaseException:
            for write in writes[1:]:
                write.discard()
            raise
        for write in writes[1:]:
            write.commit()
        return path

    def _as_it_is(self, component: bytes) -> Path:
        """`init-func = false`: the component, checked by Wasmtime, its free allocator memory zeroed unless
        `zero-free-memory = false` (never cached: there is no run to save)."""
        from hatch_component_init.errors import ComponentInitError
        from hatch_component_init.runtime import check_component

        started = time.perf_counter()
        try:
            check_component(component)
        except ComponentInitError as e:
            # Its traceback is shown by the hook edge with `-v` (hatch/edge.py).
            message = f"Component `{self.config_component}` for build hook `{self.PLUGIN_NAME}` is not valid: {e}"
            raise ComponentInitError(message) from e
        shipped = component
        if self.config_zero_free_memory:
            from hatch_component_init.no_init import zero_free_memory_without_init

            shipped = zero_free_memory_without_init(component, on_note=self._note)
        how = "as it is" if shipped is component else "with its free allocator memory zeroed"
        self.app.display_success(
            f"Shipping `{self.config_component}` -> `{self.config_destination}` {how} (`init-func = false`): "
            f"{_megabytes(len(shipped))}, checked by Wasmtime in {time.perf_counter() - started:.1f} s"
        )
        return self._stage(shipped)

    def _read_component(self, build_data: dict[str, Any]) -> bytes:
        try:
            return self.component_path.read_bytes()
        except FileNotFoundError:
            from hatch_component_init.errors import MissingPathError

            raise MissingPathError(self._missing_component_message(build_data)) from None

    def _missing_component_message(self, build_data: dict[str, Any]) -> str:
        hooks = list(build_data.get("build_hooks", ()))
        position = hooks.index(self.PLUGIN_NAME) if self.PLUGIN_NAME in hooks else len(hooks)
        before = ", ".join(f"`{hook}`" for hook in hooks[:position]) or "none"
        # A `componentize-py` hook listed after this one is refused earlier, by validate().
        return (
            f"Component `{self.config_component}` for build hook `{self.PLUGIN_NAME}` does not exist. "
            f"Build hooks that ran before `{self.PLUGIN_NAME}`: {before}. "
            f"Build it first, e.g. with the `{_PRODUCER_HOOK}` build hook listed before `{self.PLUGIN_NAME}`."
        )

    def _producer(self, build_data: dict[str, Any]) -> str | None:
        """The name of a configured hook that writes our input, if there is one."""
        hook_config: dict[str, Any] = getattr(self.build_config, "hook_config", None) or {}
        producer = hook_config.get(_PRODUCER_HOOK)
        if _PRODUCER_HOOK not in build_data.get("build_hooks", ()) or not isinstance(producer, dict):
            return None
        output = producer.get("output")
        if isinstance(output, str) and Path(self.root, output).resolve() == self.component_path.resolve():
            return _PRODUCER_HOOK
        return None

    def _run_engine(self, component: bytes, host_module: Path | None) -> tuple[bytes, Callable[[], None]]:
        """The snapshot, and the check that it is valid (``compile_check``, when set, may stand in for it)."""
        # Imported here: reading options (and a cache hit) must not pay for loading Wasmtime.
        from hatch_component_init.api import pre_initialize_unchecked
        from hatch_component_init.errors import ComponentInitError

        from .host import load_fresh

        options = self.init_options
        self.app.display_debug(f"Options: {options}")
        host = None
        if self.config_host is not None and host_module is not None:
            # A module that cannot be imported fails here, its message naming the option.
            host = load_fresh(self.config_host, Path(self.root), host_module, self.host_option)
        # Guests write in arbitrary chunks; show whole lines, marked as the guest's (panic reports with `hatch -v`).
        guest_output = LinePrefixer(lambda line: self.app.display_info(f"  {line}"), hide_panics=self.app.verbosity < 1)
        try:
            snapshot, check = pre_initialize_unchecked(
                component,
                init_func=options.init_func,
                keep_init_func=options.keep_init_func,
                wasi=options.wasi if options.wasi.enabled else None,
                timeout=options.timeout,
                max_memory=options.max_memory,
                on_output=guest_output,
                host=host,
                code_cache=options.code_cache,
                reset_first_call=options.reset_first_call,
                zero_free_memory=options.zero_free_memory,
                on_note=self._note,
            )
        except ComponentInitError as e:
            raise self._failed(e) from e
        finally:
            guest_output.flush()

        def checked() -> None:
            try:
                if self.compile_check is None or not self.compile_check(snapshot):
                    check()
            except ComponentInitError as e:
                raise self._failed(e) from e

        return snapshot, checked

    def _failed(self, e: Exception) -> Exception:
        """Our paragraph for a failed run (its traceback is shown by the hook edge only with `-v`)."""
        from hatch_component_init.errors import ComponentInitError, HostError, InitFailedError, MissingInitExportError
        from hatch_component_init.init_hints import init_failure_hint

        # A HostError here can only come from the host definitions (we pass no runtime callback).
        blame = f"{self.host_option} `{self.config_host}`: " if isinstance(e, HostError) else ""
        message = f"Pre-initializing `{self.config_component}` failed: {blame}{e}"
        if isinstance(e, InitFailedError):
            hint = init_failure_hint(e.guest_stderr, self.init_options.wasi, Path(self.root))
            message += hint and f"\n{hint}"  # a line of its own
        if isinstance(e, MissingInitExportError):
            message += (
                " If the component needs no init, set `init-func = false` to ship it as it is "
                "(`precompile` and `loader` work the same)."
            )
        return ComponentInitError(message)

    def _note(self, level: str, text: str) -> None:
        """A step of the run: applied ones in the build's output, why one did nothing with `hatch -v`."""
        if level == "warning":
            self.app.display_warning(f"`{self.config_component}`: {text}")
        elif level == "info":
            self.app.display_info(f"`{self.config_component}`: {text}")
        else:
            self.app.display_debug(f"`{self.config_component}`: {text}")

    # -- where snapshots are put -----------------------------------------------------------------

    def _stage(self, data: bytes) -> Path:
        """Write ``data`` to a fresh temp dir outside the project, removed after the build."""
        path = self._staging_path()
        path.write_bytes(data)
        return path

    def _stage_entry(self, entry: Path, data: bytes) -> Path:
        """A hard link to the cache's new ``entry`` that the build owns (``data`` again if it was pruned meanwhile)."""
        path = self._staging_path()
        try:
            place(entry, path)
        except OSError:
            path.write_bytes(data)
        return path

    def _staging_path(self) -> Path:
        """A path named like ``destination`` in a fresh temp dir outside the project, removed after the build."""
        directory = staging_dir()
        self._staging.append(directory)
        # finalize() does not run when the build fails: remove it at exit then.
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        return directory / Path(self.config_destination).name

    def _remove_staging(self) -> None:
        while self._staging:
            shutil.rmtree(self._staging.pop(), ignore_errors=True)

    def _install_in_tree(self, snapshot: Path, inputs: dict[str, str] | None) -> None:
        target = self.editable_path
        data = snapshot.read_bytes()
        self._remove_staging()
        write_in_tree(target, data, inputs)
        what = "component" if self.config_init_func is None else "pre-initialized component"
        self.app.display_info(
            f"Editable install: wrote the {what} to `{self._relative(target)}` "
            "in the source tree (removed by `hatch clean`)"
        )

    # -- sdist ----------------------------------------------------------------------------------

    def _prepare_sdist(self, build_data: dict[str, Any]) -> None:
        """Make the sdist carry what a wheel build needs, even where VCS ignores it; run nothing."""
        producer = self._producer(build_data)
        if producer is not None:
            self.app.display_debug(f"`{self.config_component}` is rebuilt by `{producer}` when the wheel is built")
        elif self.component_path.is_file() and self._inside_root(self.component_path):
            build_data["artifacts"].append(f"/{self._relative(self.component_path)}")
        else:
            self.app.display_warning(
                f"Component `{self.config_component}` is not in the project and no build hook makes it: "
                "a wheel cannot be built from this sdist"
            )
        for name in self.config_dirs:
            host = Path(self.root, name)
            if host.is_dir() and self._inside_root(host):
                build_data["artifacts"].append(f"/{self._relative(host)}/")
        host_module = self.host_module()
        if host_module is not None and self._inside_root(host_module):
            build_data["artifacts"].append(f"/{self._relative(host_module)}")

    def _inside_root(self, path: Path) -> bool:
        return path.resolve().is_relative_to(Path(self.root).resolve())
