"""`module:function` references to host definitions, as the CLI's --host and the hook's `host` give them."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from .errors import ConfigError
from .options import HostDefiner

__all__ = ["check_host_spec", "load_host", "module_name"]

_SPEC = re.compile(r"(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<function>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")


def check_host_spec(spec: str, what: str) -> None:
    """Check the syntax alone (cheap, before any work): `package.module:function`."""
    if not isinstance(spec, str) or _SPEC.match(spec) is None:
        raise ConfigError(f"{what} must look like `module:function` (e.g. `build_host:define`), not {spec!r}")


def module_name(spec: str) -> str:
    """The module part of a checked `module:function` spec."""
    return spec.partition(":")[0]


def load_host(spec: str, root: Path, what: str) -> HostDefiner:
    """Import ``module`` with ``root`` first on the path and return its ``function``.

    ``what`` names the option in messages (`--host`, or the hook's option).
    """
    check_host_spec(spec, what)
    m = _SPEC.match(spec)
    assert m is not None
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(m["module"])
    except Exception as e:
        raise ConfigError(
            f"{what} `{spec}`: cannot import `{m['module']}` from `{root}`: {type(e).__name__}: {e}"
        ) from e
    finally:
        try:
            sys.path.remove(str(root))
        except ValueError:
            pass
    target: object = module
    for part in m["function"].split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"{what} `{spec}`: module `{m['module']}` has no `{m['function']}`")
    if not callable(target):
        raise ConfigError(f"{what} `{spec}`: `{m['function']}` is not callable")
    return target  # type: ignore[return-value]
