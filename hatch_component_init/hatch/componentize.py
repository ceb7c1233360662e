"""The ``componentize-py`` build hook: build a component from a Python app earlier in the same build.

componentize-py is declared as a build dependency of the project being built
(:meth:`dependencies`), so isolating frontends install it; it is run as
``sys.executable`` calling its console-script entry point (the package has no
``__main__``), so that the build environment's copy is used.

componentize-py's output differs from run to run (its own pre-initialized
heap), so the next hook's snapshot cache could never hit if it ran on every
build: its outputs are cached too, keyed by everything that can change them
(hatch/keys.py), the packages of the build environment among them only as far
as the component imports them (found through hatch/app_manifest.py).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

from hatch_component_init.errors import BuildStepError
from hatch_component_init.debris import sweep, sweep_cache, sweep_staging
from hatch_component_init.file_cache import cache_warnings
from hatch_component_init.fileio import partial_path

from .cache import ComponentCache, default_cache_dir
from .edge import ReportsErrors
from .config import (
    COMPONENT_INIT_HOOK,
    COMPONENTIZE_PY_HOOK,
    OptionReader,
    SharedOptionChecks,
    componentize_py_requirement,
    reader_for,
)

__all__ = ["ComponentizePyBuildHook"]

#: What the `componentize-py` console script does; `python -m componentize_py` does not exist.
_RUN_COMPONENTIZE_PY = (
    "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"
)


def _load_the_engine_meanwhile() -> None:
    """Import the engine (Wasmtime and the pre-init pipeline, ~0.1 s) while componentize-py runs.

    The `component-init` hook that follows needs it at once; this thread only
    waits on imports while ours waits on componentize-py. Failures are left to
    that hook, which imports the same modules and reports them.
    """

    def load() -> None:
        try:
            import hatch_component_init.api  # noqa: F401
        except Exception:
            pass

    threading.Thread(target=load, name="component-init-import", daemon=True).start()


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


#: componentize-py's Rust errors (anyhow) end with the stack of the Rust code that failed: 30-50 lines
#: of frames that say nothing to the app's author. Shown with `hatch -v`.
_BACKTRACE = "Stack backtrace:"
_OS_ERROR = re.compile(r"\(os error \d+\)")
_ERROR_PREFIX = re.compile(r"^(?:\d+: |[A-Za-z_][\w.]*(?:Error|Exception): |Error: )")


def without_backtrace(output: str) -> str:
    """componentize-py's output up to the Rust backtrace that follows its error."""
    return output.partition(_BACKTRACE)[0].rstrip()


def os_error_cause(output: str) -> str | None:
    """What the operating system said (``No space left on device (os error 28)``), when that is why it failed."""
    found = [line.strip() for line in without_backtrace(output).splitlines() if _OS_ERROR.search(line)]
    return _ERROR_PREFIX.sub("", found[-1]) if found else None


class ComponentizePyBuildHook(ReportsErrors, SharedOptionChecks, BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = COMPONENTIZE_PY_HOOK

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Folders added to the python path for this build (the installed `requirements`).
        self.extra_python_path: list[str] = []
        #: Puts the output in the cache after the build, while the next hook runs (`_cache_output`).
        self._caching: threading.Thread | None = None
        self._cache_warning: str | None = None

    # -- options ------------------------------------------------------------------------------

    @cached_property
    def options(self) -> OptionReader:
        return reader_for(self.PLUGIN_NAME, self.config, self.root)

    @cached_property
    def config_wit(self) -> str:
        return str(self.options.value("wit"))

    @cached_property
    def config_world(self) -> str | None:
        # Optional: componentize-py picks the only world of the package when it is not given.
        world = self.options.value("world")
        return None if world is None else str(world)

    @cached_property
    def config_module(self) -> str:
        return str(self.options.value("module"))

    @cached_property
    def config_python_path(self) -> list[str]:
        return list(self.options.value("python-path"))

    @cached_property
    def config_output(self) -> str:
        """The component's path relative to the root; kept inside the project so ``clean`` stays inside it too."""
        return str(self.options.value("output"))

    @cached_property
    def config_requirements(self) -> list[str]:
        return list(self.options.value("requirements"))

    @cached_property
    def config_componentize_py_version(self) -> str | None:
        version = self.options.value("componentize-py-version")
        return None if version is None else str(version)

    @cached_property
    def config_cache(self) -> bool:
        return bool(self.options.value("cache"))

    @property
    def output_path(self) -> Path:
        return Path(self.root, self.config_output)

    @property
    def requirement(self) -> str:
        """The componentize-py this hook needs, as a requirement string."""
        return componentize_py_requirement(self.config_componentize_py_version)

    def dependencies(self) -> list[str]:
        # Called while the frontend asks for build requirements, before it installs them: a
        # mistake in the options fails here, before componentize-py is even downloaded.
        self.validate_without_files()
        if self.target_name == "sdist":
            return []  # nothing is built for an sdist
        requirements = [self.requirement]
        if self.config_requirements:
            requirements.append("pip")
        return requirements

    def command(self, output: Path) -> list[str]:
        command = [sys.executable, "-c", _RUN_COMPONENTIZE_PY, "-d", self.config_wit]
        if self.config_world is not None:
            command += ["-w", self.config_world]
        command.append("componentize")
        for path in [*self.config_python_path, *self.extra_python_path]:
            command += ["-p", path]
        command += [self.config_module, "-o", str(output)]
        return command

    # -- the build ------------------------------------------------------------------------------

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:  # noqa: ARG002
        self.validate()
        if self.target_name == "sdist":
            # An sdist ships the app's sources; the component is rebuilt when a wheel is built from it.
            return
        started = time.perf_counter()
        cache_dir = default_cache_dir()
        self._sweep_debris(cache_dir)
        requirements_key = self.requirements_key()
        cache = ComponentCache(cache_dir) if self.config_cache else None
        source_key = None
        if cache is not None:
            source_key = self.source_key(requirements_key, cache_dir)
            self.app.display_debug(f"componentize-py source key {source_key} in {cache.directory}")
            self.output_path.parent.mkdir(parents=True, exist_ok=True)
            hit = self._lookup(cache, source_key)
            for line in cache_warnings(cache):
                self.app.display_warning(line)
            if hit is not None:
                self.app.display_success(
                    f"Built component `{self.config_output}` from the cache "
                    f"({_megabytes(hit.stat().st_size)}, componentize-py not run) in {time.perf_counter() - started:.2f} s"
                )
                return

        installed_version = self._require_componentize_py()
        if self.config_requirements:
            self._install_requirements(cache_dir)
        self._run_componentize_py(installed_version)
        if cache is not None and source_key is not None:
            # Checking the sources again (hashing the python path), finding what the output imported and
            # copying it into the cache can wait: the next hook needs only the output, and its init leaves
            # a core idle. `finalize` waits for it and says what went wrong.
            self._caching = threading.Thread(
                target=self._cache_output,
                args=(cache, source_key, requirements_key, cache_dir),
                name="componentize-py-cache",
            )
            self._caching.start()
        seconds = time.perf_counter() - started
        size = _megabytes(self.output_path.stat().st_size)
        self.app.display_success(f"Built component `{self.config_output}` ({size}) in {seconds:.1f} s")

    def _lookup(self, cache: ComponentCache, source_key: str) -> Path | None:
        """The cached output of these sources whose imports the environment provides as it did then,
        copied to `output` (the path returned)."""
        from .app_manifest import manifest_path, read_manifest
        from .keys import componentize_key

        site_dirs = self._site_dirs
        mounts = self._mounts()
        for imports in read_manifest(manifest_path(cache.directory, source_key)):
            # Copied to the output through a partial file, which is what is checked: the output is verified.
            hit = cache.get(componentize_key(source_key, imports, site_dirs, mounts), stage=self.output_path, link=False)
            if hit is not None:
                return hit
        return None

    def _cache_output(
        self, cache: ComponentCache, source_key: str, requirements_key: str | None, cache_dir: Path
    ) -> None:
        self._cache_warning = self._caching_warning(cache, source_key, requirements_key, cache_dir)

    def _caching_warning(
        self, cache: ComponentCache, source_key: str, requirements_key: str | None, cache_dir: Path
    ) -> str | None:
        """Put the output in the cache, under the key of what it imported; what to warn about if it was not."""
        from .app_manifest import manifest_path, record_imports

        try:
            if self.source_key(requirements_key, cache_dir) != source_key:
                # A file changed while componentize-py ran: the output may mix both states.
                return "Sources changed during the build; the component is not cached"
            imports = self.imports_of(self.output_path)
            cache.put_file(self._key_of(source_key, imports), self.output_path)
            record_imports(manifest_path(cache.directory, source_key), imports)
        except Exception as e:  # on a thread: a failing cache costs only a rebuild next time, never the build
            return f"Could not write the componentize-py cache in `{cache.directory}`: {e}"
        return None

    def _wait_for_the_cache(self) -> None:
        if self._caching is not None:
            self._caching.join()
            self._caching = None
        if self._cache_warning is not None:
            self.app.display_warning(self._cache_warning)
            self._cache_warning = None

    def requirements_key(self) -> str | None:
        """The key of the folder the `requirements` are installed in (None without requirements)."""
        if not self.config_requirements:
            return None
        from .keys import requirements_key

        return requirements_key(self.config_requirements)

    def source_key(self, requirements_key: str | None, cache_dir: Path) -> str:
        """The key of the sources and tools, known before componentize-py runs (keys.componentize_source_key)."""
        from .keys import componentize_source_key

        return componentize_source_key(
            root=Path(self.root),
            wit=self.config_wit,
            world=self.config_world,
            module=self.config_module,
            python_path=self.config_python_path,
            requirements=requirements_key,
            excluded=self.build_outputs(cache_dir),
            site_dirs=self._site_dirs,
        )

    @cached_property
    def _site_dirs(self) -> list[Path]:
        """The `site-packages` directories componentize-py sees (found once per hook: it may run `python3`)."""
        from .site_packages import componentize_site_dirs

        return componentize_site_dirs(os.environ)

    def imports_of(self, component: Path) -> set[str]:
        """The `site-packages` entries the component at ``component`` imported when it was built."""
        from .site_packages import imported_tops

        return imported_tops(component.read_bytes(), self._mounts())

    def _mounts(self) -> list[int]:
        """The guest directories componentize-py mounts the `site-packages` directories at."""
        from .keys import site_mounts

        installed = 1 if self.config_requirements else 0  # the `requirements` folder (`extra_python_path`)
        return site_mounts(Path(self.root), self.config_python_path, self._site_dirs, installed)

    def _key_of(self, source_key: str, imports: set[str]) -> str:
        from .keys import componentize_key

        return componentize_key(source_key, imports, self._site_dirs, self._mounts())

    def app_key(self, cache_dir: Path) -> str:
        """The key of the component at `output` as the sources and the environment are now
        (keys.componentize_key); `missing` without one. An editable install's record of its app."""
        if not self.output_path.is_file():
            return "missing"
        source_key = self.source_key(self.requirements_key(), cache_dir)
        return self._key_of(source_key, self.imports_of(self.output_path))

    def build_outputs(self, cache_dir: Path) -> list[Path]:
        """What this build writes into the project, which the cache key must not depend on."""
        root = Path(self.root)
        outputs = [self.output_path, root / "dist", cache_dir]
        if self.directory:
            outputs.append(Path(self.directory))
        init_table = self.hook_tables().get(COMPONENT_INIT_HOOK)
        if isinstance(init_table, Mapping):
            from .tree import editable_target

            reader = reader_for(COMPONENT_INIT_HOOK, init_table, root)
            sources = getattr(self.build_config, "sources", None) or {}
            # An editable build writes the snapshot (and the `loader` module) into the tree.
            for option in ("destination", "loader"):
                if option in reader.schema and reader.value(option) is not None:
                    wheel_path = str(reader.value(option))
                    outputs += [root / wheel_path, editable_target(root, wheel_path, sources)]
        return outputs

    def _sweep_debris(self, cache_dir: Path) -> None:
        """Remove what killed builds left: in the caches, the staging dirs, next to the output, the guest's bytecode."""
        from .bytecode import remove_interrupted_bytecode

        removed = [*sweep_cache(cache_dir), *sweep_staging(), *sweep([self.output_path.parent], of=self.output_path.name)]
        removed += remove_interrupted_bytecode(self._bytecode_journal(cache_dir))
        for path in removed:
            self.app.display_debug(f"Removed `{path}`, left by a build that was stopped")

    def _bytecode_journal(self, cache_dir: Path) -> Path:
        """Where a componentize-py run of this project notes the bytecode that was there before it."""
        import hashlib

        name = hashlib.sha256(os.path.realpath(self.root).encode()).hexdigest()
        return cache_dir / "bytecode" / f"{name}.json"

    def _install_requirements(self, cache_dir: Path) -> None:
        from .requirements import install_requirements

        started = time.perf_counter()
        folder, installed = install_requirements(
            self.config_requirements, cache_dir, self.PLUGIN_NAME, warn=self.app.display_warning
        )
        listing = ", ".join(f"`{item}`" for item in self.config_requirements)
        if installed:
            self.app.display_info(f"Installed {listing} for the app in {time.perf_counter() - started:.1f} s")
        else:
            self.app.display_debug(f"Requirements {listing} already installed in {folder}")
        self.extra_python_path = [str(folder)]

    def _run_componentize_py(self, installed_version: str) -> None:
        output = self.output_path
        output.parent.mkdir(parents=True, exist_ok=True)
        # componentize-py writes its output in place; build next to the target and rename, so
        # a failed or interrupted build never leaves a truncated component for the next hook.
        partial = partial_path(output)
        command = self.command(partial)
        self.app.display_waiting(f"Building component `{self.config_output}` with componentize-py {installed_version}")
        self.app.display_debug(f"Running: componentize-py {shlex.join(command[3:])}")
        from .bytecode import no_new_bytecode

        if COMPONENT_INIT_HOOK in self.hook_tables():
            _load_the_engine_meanwhile()
        try:
            python_path = [Path(self.root, entry) for entry in self.config_python_path]
            with no_new_bytecode(python_path, self._bytecode_journal(default_cache_dir())):
                result = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=False)
            if result.stdout.strip():
                self.app.display_debug(result.stdout.rstrip())
            if result.returncode != 0:
                raise self._failed(result.returncode, (result.stderr or result.stdout).strip())
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)

    def _failed(self, code: int, output: str) -> BuildStepError:
        """componentize-py's failure: its output shown above our paragraph (the Rust backtrace only with -v)."""
        shown = output if self.app.verbosity >= 1 else without_backtrace(output)
        cause = os_error_cause(output)
        if cause is not None:
            return BuildStepError(
                f"componentize-py failed (exit code {code}) building `{self.config_output}` for build hook "
                f"`{self.PLUGIN_NAME}`: {cause}; the operating system refused it (a full disk, a permission), not the app",
                tool="componentize-py",
                output=shown,
            )
        return BuildStepError(
            f"componentize-py failed (exit code {code}) building `{self.config_output}` "
            f"for build hook `{self.PLUGIN_NAME}`; its output is above",
            tool="componentize-py",
            output=shown,
        )

    def _require_componentize_py(self) -> str:
        """componentize-py's version in the build environment; a warning if it is not the one asked for."""
        import importlib.util

        from .site_packages import componentize_py_version

        if importlib.util.find_spec("componentize_py") is None:
            message = (
                f"Build hook `{self.PLUGIN_NAME}` needs componentize-py in the build environment. Isolated builds "
                f'install it by themselves (the hook declares "{self.requirement}" as a build dependency); '
                f'without build isolation, install it first: pip install "{self.requirement}"'
            )
            raise BuildStepError(message)
        installed = componentize_py_version()
        from packaging.requirements import Requirement

        if not Requirement(self.requirement).specifier.contains(installed, prereleases=True):
            self.app.display_warning(
                f"Build hook `{self.PLUGIN_NAME}` asks for {self.requirement}, but componentize-py {installed} "
                "is installed in this environment (a build without isolation); using it"
            )
        return installed

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:  # noqa: ARG002
        self._wait_for_the_cache()
        self.warn_about_the_wheel(self.app, self.metadata.core.requires_python, artifact_path)

    def clean(self, versions: list[str]) -> None:  # noqa: ARG002
        # Only the file this hook writes: the output directory may hold the user's own files.
        self.output_path.unlink(missing_ok=True)
