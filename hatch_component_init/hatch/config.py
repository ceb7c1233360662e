"""The options of our build hooks: one schema table per hook, checked before any hook does work.

Every option of every hook is declared once in :data:`SCHEMAS` (type, default,
value rules). Hatchling runs hooks one after another, so each of our hooks
checks the tables of *all* our hooks present in the build (and their order)
before it does anything: a typo in the `component-init` table fails the build
before the `componentize-py` hook spends seconds building the component.

Messages are worded the way hatchling words its own, e.g.
``Option `dirs` for build hook `component-init` must be a table of strings``;
wrong types raise :class:`OptionTypeError` (a :class:`TypeError`), bad values
:class:`OptionValueError` (a :class:`ValueError`), missing paths
:class:`MissingPathError` (a :class:`FileNotFoundError`): all our
:class:`ConfigError`, which the hooks' edge (hatch/edge.py) reports as one
paragraph. A rule that raises a plain ``TypeError``/``ValueError``/``OSError``
is converted to those by :func:`as_option_error`, so it is reported the same way.

To add an option: add an :class:`Option` to the hook's table (and a `check`
for rules beyond its type); both hooks then validate it, and unknown-key
suggestions include it.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from hatch_component_init.errors import ComponentInitError, MissingPathError, OptionTypeError, OptionValueError
from hatch_component_init.options import DEFAULT_INIT_FUNC, DEFAULT_TIMEOUT
from hatch_component_init.suggest import close_matches, similar_directory

__all__ = [
    "COMPONENTIZE_PY_HOOK",
    "COMPONENT_INIT_HOOK",
    "DEFAULT_COMPONENTIZE_PY",
    "HATCH_OWN_OPTIONS",
    "PRECOMPILE_ONLY",
    "SCHEMAS",
    "Option",
    "OptionReader",
    "SharedOptionChecks",
    "componentize_py_requirement",
    "hook_tables",
    "reader_for",
    "validate_build",
]

COMPONENTIZE_PY_HOOK = "componentize-py"
COMPONENT_INIT_HOOK = "component-init"
#: The componentize-py release this package is tested with; what the hook installs unless told otherwise.
DEFAULT_COMPONENTIZE_PY = "0.25.1"

#: Options that Hatch itself reads from every build hook table; never ours to refuse.
HATCH_OWN_OPTIONS = frozenset(
    {"dependencies", "enable-by-default", "require-runtime-dependencies", "require-runtime-features"}
)

#: A value rule: gets the reader (for the hook name, the root and other options), the option and
#: the value of the right type; returns the value to use or raises with ``reader.error(...)``.
Check = Callable[["OptionReader", str, Any], Any]
#: A rule that looks at the file system (e.g. "this directory exists"); run by ``validate()`` only.
FileCheck = Callable[["OptionReader", str, Any], None]


@dataclass(frozen=True)
class Option:
    """One option of a hook table.

    ``kind`` is one of :data:`KINDS`. ``default`` is used when the key is absent
    (or an empty string); it may be a callable taking the reader, for defaults
    that follow another option. ``required`` options have no default.
    """

    kind: str
    default: Any = None
    required: bool = False
    check: Check | None = None
    check_files: FileCheck | None = None


class OptionReader:
    """Typed, checked access to one hook's table; every problem names the option and the hook."""

    def __init__(
        self, hook_name: str, config: Mapping[str, Any], schema: Mapping[str, Option], root: str | Path = "."
    ) -> None:
        self.hook_name = hook_name
        self.config = config
        self.schema = schema
        self.root = Path(root)
        self._values: dict[str, Any] = {}

    def error(self, option: str, problem: str) -> str:
        return f"Option `{option}` for build hook `{self.hook_name}` {problem}"

    def unknown_options(self) -> list[str]:
        """Keys that neither the hook nor Hatch understands, in table order."""
        return [key for key in self.config if key not in self.schema and key not in HATCH_OWN_OPTIONS]

    def value(self, option: str) -> Any:
        """The option's value: type-checked, rule-checked, or its default."""
        if option not in self._values:
            spec = self.schema[option]
            try:
                value = _read(self, option, spec)
                if value is not None and spec.check is not None:
                    value = spec.check(self, option, value)
            except (TypeError, ValueError, OSError) as e:
                raise as_option_error(self, option, e) from None
            self._values[option] = value
        return self._values[option]

    def validate(self, *, files: bool = True) -> None:
        """Check every key of the table; raise on the first problem.

        ``files=False`` skips the rules that look at the file system.
        """
        for key in self.unknown_options():
            raise OptionValueError(self.unknown_message(key))
        values = {option: self.value(option) for option in self.schema}
        if not files:
            return
        for option, spec in self.schema.items():
            if values[option] is not None and spec.check_files is not None:
                try:
                    spec.check_files(self, option, values[option])
                except (TypeError, ValueError, OSError) as e:
                    raise as_option_error(self, option, e) from None

    def unknown_message(self, key: str) -> str:
        known = sorted(self.schema)
        close = close_matches(key, known)
        if close:
            return f"Unknown option `{key}` for build hook `{self.hook_name}`; did you mean `{close[0]}`?"
        listing = ", ".join(f"`{name}`" for name in known)
        return f"Unknown option `{key}` for build hook `{self.hook_name}`; its options are {listing}"


def as_option_error(reader: OptionReader, option: str, error: Exception) -> Exception:
    """A value rule's ``TypeError``/``ValueError``/``OSError`` about ``option`` as our own option error.

    Our rules raise our types already; this reports a rule written with a
    builtin (e.g. for a new option) the same way, as long as its message names
    the option (``reader.error(...)``). Any other exception is a bug and stays
    as it is, so the hooks' edge reports it as one.
    """
    if isinstance(error, ComponentInitError) or not str(error).startswith(reader.error(option, "")):
        return error
    if isinstance(error, TypeError):
        return OptionTypeError(str(error))
    if isinstance(error, OSError):
        return MissingPathError(str(error))
    return OptionValueError(str(error))


# -- types ---------------------------------------------------------------------------------------


def _read(reader: OptionReader, option: str, spec: Option) -> Any:
    raw = reader.config.get(option)
    if raw is None or (spec.kind in ("string", "string-or-false") and raw == ""):
        # An empty string is how TOML users "unset" a string; treat it like a missing key.
        if spec.required:
            raise OptionValueError(reader.error(option, "is required"))
        return spec.default(reader) if callable(spec.default) else spec.default
    check_type = KINDS[spec.kind]
    return check_type(reader, option, raw)


def _string(reader: OptionReader, option: str, value: Any) -> str:
    if not isinstance(value, str):
        raise OptionTypeError(reader.error(option, "must be a string"))
    return value


def _string_or_false(reader: OptionReader, option: str, value: Any) -> str | bool:
    # `false` is the one non-string value: "none of these"; `true` would say nothing.
    if value is False:
        return False
    if not isinstance(value, str):
        raise TypeError(reader.error(option, "must be a string, or `false`"))
    return value


def _boolean(reader: OptionReader, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionTypeError(reader.error(option, "must be a boolean"))
    return value


#: The one string `precompile` takes besides a boolean: ship the precompiled component alone.
PRECOMPILE_ONLY = "only"


def _boolean_or_only(reader: OptionReader, option: str, value: Any) -> bool | str:
    if isinstance(value, bool) or value == PRECOMPILE_ONLY:
        return value
    error = OptionValueError if isinstance(value, str) else OptionTypeError
    raise error(reader.error(option, f'must be a boolean, or `"{PRECOMPILE_ONLY}"`'))


def _string_list(reader: OptionReader, option: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise OptionTypeError(reader.error(option, "must be an array of strings"))
    return list(value)


def _string_table(reader: OptionReader, option: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise OptionTypeError(reader.error(option, "must be a table of strings"))
    return dict(value)


def _positive_number(reader: OptionReader, option: str, value: Any) -> float:
    # bool is an int subclass; `timeout = true` is a typo, not a second.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionTypeError(reader.error(option, "must be a number"))
    if not (value > 0 and math.isfinite(value)):
        raise OptionValueError(reader.error(option, "must be a positive number"))
    return float(value)


def _positive_integer(reader: OptionReader, option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionTypeError(reader.error(option, "must be an integer"))
    if value <= 0:
        raise OptionValueError(reader.error(option, "must be a positive integer"))
    return value


KINDS: dict[str, Callable[[OptionReader, str, Any], Any]] = {
    "string": _string,
    "string-or-false": _string_or_false,
    "boolean": _boolean,
    "boolean-or-only": _boolean_or_only,
    "string-list": _string_list,
    "string-table": _string_table,
    "positive-number": _positive_number,
    "positive-integer": _positive_integer,
}


# -- value rules ----------------------------------------------------------------------------------


def relative_path(reader: OptionReader, option: str, value: str, *, inside: str = "the project") -> str:
    """``value`` as a normalized POSIX path that stays below the directory it is relative to."""
    path = value.replace("\\", "/")
    normalized = posixpath.normpath(path)
    if (
        PurePosixPath(path).is_absolute()
        or PureWindowsPath(path).drive
        or normalized == "."
        or normalized.split("/")[0] == ".."
    ):
        raise OptionValueError(reader.error(option, f"must be a relative path inside {inside}, not `{value}`"))
    return normalized


def _inside_wheel(reader: OptionReader, option: str, value: str) -> str:
    return relative_path(reader, option, value, inside="the wheel")


def _init_func(reader: OptionReader, option: str, value: str | bool) -> str | bool:
    from hatch_component_init.errors import ComponentInitError
    from hatch_component_init.wave import parse_spec

    if value is False:
        return value
    assert isinstance(value, str)
    try:
        parse_spec(value)
    except ComponentInitError as e:
        raise OptionValueError(reader.error(option, f"is not a valid init call: {e}")) from None
    return value


def _without_init(reader: OptionReader) -> bool:
    """`init-func = false`: the component is shipped as it is, with no init run."""
    return reader.value("init-func") is False


def _for_init(check: Check | None = None) -> Check:
    """``check``, after refusing the option when there is no init run for it to configure.

    Only a key written in the table is refused: defaults configure nothing.
    """

    def checked(reader: OptionReader, option: str, value: Any) -> Any:
        if option in reader.config and _without_init(reader):
            problem = (
                "configures the init run, but `init-func = false` ships the component without one: "
                f"remove `{option}`, or name the component's init function in `init-func`"
            )
            raise ValueError(reader.error(option, problem))
        return value if check is None else check(reader, option, value)

    return checked


def _needs_wasi(reader: OptionReader, option: str, value: dict[str, str]) -> None:
    if value and not reader.value("wasi"):
        raise OptionValueError(reader.error(option, "needs `wasi = true`"))


def _dirs(reader: OptionReader, option: str, value: dict[str, str]) -> dict[str, str]:
    _needs_wasi(reader, option, value)
    if any(not host or not guest for host, guest in value.items()):
        raise OptionValueError(reader.error(option, "must map non-empty host paths to non-empty guest paths"))
    return value


def _dirs_exist(reader: OptionReader, option: str, value: dict[str, str]) -> None:
    for host in value:
        path = reader.root / host
        if not path.exists():
            close = similar_directory(reader.root, host)
            if close is not None:
                raise MissingPathError(
                    reader.error(option, f"names directory `{host}`, which does not exist; did you mean `{close}`?")
                )
            raise MissingPathError(reader.error(option, f"names directory `{host}`, which does not exist"))
        if not path.is_dir():
            raise MissingPathError(reader.error(option, f"names `{host}`, which is not a directory"))


def _env(reader: OptionReader, option: str, value: dict[str, str]) -> dict[str, str]:
    _needs_wasi(reader, option, value)
    if any(not name or "=" in name for name in value):
        raise OptionValueError(reader.error(option, "must have non-empty variable names without `=`"))
    return value


_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _module(reader: OptionReader, option: str, value: str) -> str:
    if not _MODULE.match(value):
        raise OptionValueError(reader.error(option, f"must be a Python module name such as `app`, not `{value}`"))
    return value


def _path_exists(reader: OptionReader, option: str, value: str) -> None:
    if not (reader.root / value).exists():
        raise MissingPathError(reader.error(option, f"names `{value}`, which does not exist"))


def _paths_exist(reader: OptionReader, option: str, value: list[str]) -> None:
    for entry in value:
        if not (reader.root / entry).is_dir():
            raise MissingPathError(reader.error(option, f"names directory `{entry}`, which does not exist"))


def _requirements(reader: OptionReader, option: str, value: list[str]) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    for item in value:
        try:
            Requirement(item)
        except InvalidRequirement as e:
            raise OptionValueError(reader.error(option, f"has an invalid requirement `{item}`: {e}")) from None
    return value


def componentize_py_requirement(version: str | None) -> str:
    """The build requirement for a `componentize-py-version` value (a version, or a specifier set)."""
    if version is None:
        return f"componentize-py=={DEFAULT_COMPONENTIZE_PY}"
    return f"componentize-py=={version}" if version[:1].isdigit() else f"componentize-py{version}"


def _host(reader: OptionReader, option: str, value: str) -> str:
    # Only the syntax here: importing runs the project's code, which waits until the hook runs.
    from hatch_component_init.errors import ConfigError
    from hatch_component_init.host_spec import check_host_spec

    try:
        check_host_spec(value, reader.error(option, "").rstrip())
    except ConfigError as e:
        raise OptionValueError(str(e)) from None
    return value


def _host_module_exists(reader: OptionReader, option: str, value: str) -> None:
    from .host import module_file, not_found

    if module_file(value, reader.root) is None:
        raise MissingPathError(reader.error(option, not_found(value)))


def _componentize_py_version(reader: OptionReader, option: str, value: str) -> str:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    value = value.strip()
    try:
        Version(value)
    except InvalidVersion:
        try:
            if not SpecifierSet(value):
                raise InvalidSpecifier(value)
        except InvalidSpecifier:
            problem = f"must be a version such as `0.25.1` or a specifier such as `>=0.25,<0.26`, not `{value}`"
            raise OptionValueError(reader.error(option, problem)) from None
    return value


def _precompile(reader: OptionReader, option: str, value: bool | str) -> bool | str:
    if value and PurePosixPath(reader.value("destination")).suffix == ".cwasm":
        problem = (
            "needs a `destination` whose suffix is not `.cwasm`: "
            "the precompiled component goes next to it, with that suffix"
        )
        raise OptionValueError(reader.error(option, problem))
    return value


def _loader(reader: OptionReader, option: str, value: str) -> str:
    path = relative_path(reader, option, value, inside="the wheel")
    if not path.endswith(".py") or not all(part.isidentifier() for part in path[: -len(".py")].split("/")):
        problem = (
            f"must be the path of a Python module inside the wheel, such as `mypackage/_component.py`, not `{value}`"
        )
        raise OptionValueError(reader.error(option, problem))
    return path


# -- the tables -----------------------------------------------------------------------------------

SCHEMAS: dict[str, dict[str, Option]] = {
    COMPONENTIZE_PY_HOOK: {
        "wit": Option("string", default="wit", check_files=_path_exists),
        "world": Option("string"),
        "module": Option("string", required=True, check=_module),
        "python-path": Option("string-list", default=lambda reader: ["."], check_files=_paths_exist),
        "output": Option("string", required=True, check=relative_path),
        "requirements": Option("string-list", default=lambda reader: [], check=_requirements),
        "componentize-py-version": Option("string", check=_componentize_py_version),
        "cache": Option("boolean", default=True),
    },
    COMPONENT_INIT_HOOK: {
        "component": Option("string", required=True),
        "destination": Option("string", default=lambda reader: reader.value("component"), check=_inside_wheel),
        # `false`: ship the component as it is (still validated, precompiled, loaded); the options
        # marked `_for_init` configure the init run and are refused then.
        "init-func": Option("string-or-false", default=DEFAULT_INIT_FUNC, check=_init_func),
        "keep-init-func": Option("boolean", default=False, check=_for_init()),
        "reset-first-call": Option("boolean", default=True, check=_for_init()),
        "zero-free-memory": Option("boolean", default=True),
        "wasi": Option("boolean", default=True, check=_for_init()),
        "dirs": Option("string-table", default=lambda reader: {}, check=_for_init(_dirs), check_files=_dirs_exist),
        "env": Option("string-table", default=lambda reader: {}, check=_for_init(_env)),
        "cache": Option("boolean", default=True),
        "timeout": Option("positive-number", default=DEFAULT_TIMEOUT, check=_for_init()),
        "max-memory": Option("positive-integer", check=_for_init()),
        # `"only"`: the `.cwasm` without the `.wasm` (hatch/precompile.py).
        "precompile": Option("boolean-or-only", default=False, check=_precompile),
        "loader": Option("string", check=_loader),
        "rebuild-on-load": Option("boolean", default=True),
        "host": Option("string", check=_for_init(_host), check_files=_host_module_exists),
    },
}


def reader_for(hook_name: str, config: Mapping[str, Any], root: str | Path) -> OptionReader:
    return OptionReader(hook_name, config, SCHEMAS[hook_name], root)


def validate_build(root: str | Path, hook_tables: Mapping[str, Any], *, files: bool = True) -> None:
    """Check every option of every one of our hooks in ``hook_tables`` (hook name -> table, in run order).

    ``files=False`` skips the rules that look at the file system (for checks
    made before the build starts, e.g. while build requirements are computed).
    """
    for name, table in hook_tables.items():
        if name in SCHEMAS and isinstance(table, Mapping):
            reader_for(name, table, root).validate(files=files)
    _check_order(root, list(hook_tables), hook_tables)


def _check_order(root: str | Path, order: Iterable[str], hook_tables: Mapping[str, Any]) -> None:
    """A `componentize-py` hook that writes the `component-init` input must run before it."""
    names = list(order)
    if COMPONENTIZE_PY_HOOK not in names or COMPONENT_INIT_HOOK not in names:
        return
    if names.index(COMPONENTIZE_PY_HOOK) < names.index(COMPONENT_INIT_HOOK):
        return
    output = reader_for(COMPONENTIZE_PY_HOOK, hook_tables[COMPONENTIZE_PY_HOOK], root).value("output")
    component = reader_for(COMPONENT_INIT_HOOK, hook_tables[COMPONENT_INIT_HOOK], root).value("component")
    if Path(root, output).resolve() != Path(root, component).resolve():
        return
    raise OptionValueError(
        f"Component `{component}` for build hook `{COMPONENT_INIT_HOOK}` is written by build hook "
        f"`{COMPONENTIZE_PY_HOOK}`, which runs after `{COMPONENT_INIT_HOOK}`: hooks run in the order of their "
        f"tables, so put `[tool.hatch.build.hooks.{COMPONENTIZE_PY_HOOK}]` above "
        f"`[tool.hatch.build.hooks.{COMPONENT_INIT_HOOK}]`."
    )


def check_component_input(root: str | Path, hook_tables: Mapping[str, Any]) -> None:
    """A `component-init` input that does not exist must be written by a hook that runs before it.

    Only when every earlier hook is one of ours is it known what they write (the
    `componentize-py` hook's `output`); after another plugin's hook the check
    waits until `component-init` runs.
    """
    from .component_path import check_component_made

    names = list(hook_tables)
    if COMPONENT_INIT_HOOK not in names or not isinstance(hook_tables[COMPONENT_INIT_HOOK], Mapping):
        return
    earlier = names[: names.index(COMPONENT_INIT_HOOK)]
    if any(name not in SCHEMAS or not isinstance(hook_tables[name], Mapping) for name in earlier):
        return
    component = str(reader_for(COMPONENT_INIT_HOOK, hook_tables[COMPONENT_INIT_HOOK], root).value("component"))
    written: dict[str, tuple[str, str]] = {}
    if COMPONENTIZE_PY_HOOK in earlier:
        output = reader_for(COMPONENTIZE_PY_HOOK, hook_tables[COMPONENTIZE_PY_HOOK], root).value("output")
        written[COMPONENTIZE_PY_HOOK] = ("output", str(output))
    check_component_made(root, COMPONENT_INIT_HOOK, component, written, producer=COMPONENTIZE_PY_HOOK)


def hook_tables(build_config: Any, hook_name: str, config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The tables of every hook of this build, in the order they run (just ours when built alone)."""
    tables = getattr(build_config, "hook_config", None)
    if isinstance(tables, Mapping) and hook_name in tables:
        return tables
    return {hook_name: config}


class SharedOptionChecks:
    """What both hooks do with the build's options: one schema checks every hook table of the
    build, before either hook does any work (mixed into each hook, ahead of hatchling's base)."""

    PLUGIN_NAME: str
    build_config: Any
    config: Mapping[str, Any]
    root: str
    target_name: str

    def hook_tables(self) -> Mapping[str, Any]:
        return hook_tables(self.build_config, self.PLUGIN_NAME, self.config)

    def validate(self) -> None:
        """Check the options of every one of our hooks in this build, before any of them does work."""
        validate_build(self.root, self.hook_tables())
        if self.target_name != "sdist":  # an sdist only warns: it may be built before the component exists
            check_component_input(self.root, self.hook_tables())

    def first_of_ours(self) -> bool:
        """Whether this hook is the first of our hooks in the build: the one that says what concerns all."""
        ours = [name for name in self.hook_tables() if name in SCHEMAS]
        return not ours or ours[0] == self.PLUGIN_NAME

    def warn_about_the_wheel(self, app: Any, requires_python: str | None, artifact: str) -> None:
        """After a wheel is built, what about its metadata the user should fix (said once per build)."""
        from .python_tag import missing_requires_python

        warning = missing_requires_python(requires_python, artifact) if self.first_of_ours() else None
        if warning is not None:
            app.display_warning(warning)

    def validate_without_files(self) -> None:
        """The checks that need no file system, for while the frontend asks for build requirements."""
        validate_build(self.root, self.hook_tables(), files=False)
