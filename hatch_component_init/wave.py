"""The init SPEC: an export name, optionally called with arguments written in WAVE.

`component-init`, `example:demo/setup.init`, `load("words", true)`. Values are
parsed into a small tree first, then converted against the function's real
parameter types, so the error can say which argument does not fit. Which export
a name means is decided here too (`resolve_init_name`), for every caller.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from .errors import InitExportError

__all__ = ["InitCall", "init_name_readings", "parse_spec", "convert_args", "resolve_init_name", "wit_type_name"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class InitCall:
    name: str
    args: tuple[Any, ...] | None  # parsed WAVE values; None when the spec has no parentheses


@dataclass(frozen=True, slots=True)
class _Label:
    name: str
    payload: tuple[Any, ...] | None = None


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<char>'(?:[^'\\]|\\.|\\u\{[0-9a-fA-F]+\})')
    | (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|inf|nan)(?![\w-]))
    | (?P<label>%?[a-zA-Z][a-zA-Z0-9-]*)
    | (?P<punct>[\[\](),{}:])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _unescape(body: str, spec: str) -> str:
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and body[i + 2 : i + 3] == "{":
            end = body.find("}", i)
            try:
                out.append(chr(int(body[i + 3 : end], 16)))
            except (ValueError, OverflowError):
                raise InitExportError(f"bad unicode escape `{body[i:end + 1]}` in the init call `{spec}`") from None
            i = end + 1
        else:
            raise InitExportError(f"bad escape `\\{nxt}` in the init call `{spec}`")
    return "".join(out)


class _Parser:
    def __init__(self, text: str, spec: str) -> None:
        self.spec = spec
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise InitExportError(f"cannot parse the arguments of the init call `{spec}` near `{text[pos:pos + 20]}`")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise InitExportError(f"the init call `{self.spec}` ends too early")
        self.i += 1
        return tok

    def expect(self, punct: str) -> None:
        kind, val = self.next()
        if (kind, val) != ("punct", punct):
            raise InitExportError(f"expected `{punct}` but found `{val}` in the init call `{self.spec}`")

    def values_until(self, close: str) -> tuple[Any, ...]:
        items: list[Any] = []
        while self.peek() != ("punct", close):
            items.append(self.value())
            if self.peek() == ("punct", ","):
                self.next()
            elif self.peek() != ("punct", close):
                self.expect(close)
        self.next()
        return tuple(items)

    def value(self) -> Any:
        kind, val = self.next()
        if kind == "str":
            return _unescape(val[1:-1], self.spec)
        if kind == "char":
            s = _unescape(val[1:-1], self.spec)
            if len(s) != 1:
                raise InitExportError(f"`{val}` is not a single character in the init call `{self.spec}`")
            return ("char", s)
        if kind == "num":
            if re.fullmatch(r"[-+]?\d+", val):
                return int(val)
            return float(val)
        if kind == "label":
            if val in ("true", "false"):
                return val == "true"
            name = val.lstrip("%")
            if self.peek() == ("punct", "("):
                self.next()
                return _Label(name, self.values_until(")"))
            return _Label(name)
        if val == "[":
            return list(self.values_until("]"))
        if val == "(":
            return ("tuple", self.values_until(")"))
        raise InitExportError(f"unexpected `{val}` in the init call `{self.spec}`")


def init_name_readings(name: str) -> list[tuple[str | None, str]]:
    """Each way to read an init name as (exported instance or None, function), in the order tried.

    `f` is a function export. `iface.f` is function `f` of the exported instance
    `iface`, whose name may hold dots itself (`a:b/c@1.0.0.f`), so every dot is
    tried, the last first. `a:b/c.f@1.0.0` is how `wasmtime wizer` writes the same
    function: the interface's version after the function name. Function names
    are plain labels, never holding `.` or `@`, so no name has two meanings.
    """
    readings: list[tuple[str | None, str]] = [(None, name)]
    for i in [i for i, ch in enumerate(name) if ch == "."][::-1]:
        iface, func = name[:i], name[i + 1 :]
        if "@" in func and "@" not in iface:
            func, _, version = func.partition("@")
            iface = f"{iface}@{version}"
        if iface and func and "@" not in func and "." not in func:
            readings.append((iface, func))
    return readings


def resolve_init_name(name: str, lookup: Callable[[str | None, str], _T | None]) -> _T | None:
    """The first reading of ``name`` (see `init_name_readings`) for which ``lookup`` finds something."""
    for iface, func in init_name_readings(name):
        found = lookup(iface, func)
        if found is not None:
            return found
    return None


def parse_spec(spec: str) -> InitCall:
    spec = spec.strip()
    if not spec:
        raise InitExportError("the init function name is empty")
    if "(" not in spec:
        return InitCall(spec, None)
    name, _, rest = spec.partition("(")
    name = name.strip()
    if not name:
        raise InitExportError(f"the init call `{spec}` names no function")
    p = _Parser("(" + rest, spec)
    p.expect("(")
    try:
        args = p.values_until(")")
    except RecursionError:
        raise InitExportError(f"the arguments of the init call `{spec[:40]}...` are nested too deeply") from None
    if p.peek() is not None:
        raise InitExportError(f"unexpected `{p.peek()[1]}` after the arguments of the init call `{spec}`")  # type: ignore[index]
    return InitCall(name, args)


def _int_ranges() -> dict[type, tuple[int, int]]:
    # Wasmtime is imported here, not at the top: the Hatch hooks check `init-func` with parse_spec
    # and must not pay for loading Wasmtime when the snapshot comes from the cache.
    from wasmtime import component as cm

    return {
        cm.S8: (-(1 << 7), 1 << 7), cm.S16: (-(1 << 15), 1 << 15), cm.S32: (-(1 << 31), 1 << 31),
        cm.S64: (-(1 << 63), 1 << 63), cm.U8: (0, 1 << 8), cm.U16: (0, 1 << 16), cm.U32: (0, 1 << 32),
        cm.U64: (0, 1 << 64),
    }  # fmt: skip


def _convert(value: Any, ty: Any, where: str) -> Any:
    from wasmtime import component as cm

    def bad(expected: str) -> InitExportError:
        return InitExportError(f"{where}: expected {expected}, got `{_show(value)}`")

    if isinstance(ty, cm.Bool):
        if not isinstance(value, bool):
            raise bad("a bool (`true` or `false`)")
        return value
    for cls, (lo, hi) in _int_ranges().items():
        if isinstance(ty, cls):
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(f"an integer ({cls.__name__.lower()})")
            if not lo <= value < hi:
                raise InitExportError(f"{where}: {value} is out of range for {cls.__name__.lower()}")
            return value
    if isinstance(ty, (cm.F32, cm.F64)):
        if isinstance(value, _Label) and value.name in ("inf", "nan") and value.payload is None:
            return math.inf if value.name == "inf" else math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if isinstance(ty, cm.Char):
        if not (isinstance(value, tuple) and value[0] == "char"):
            raise bad("a char such as 'x'")
        return value[1]
    if isinstance(ty, cm.String):
        if not isinstance(value, str):
            raise bad('a string such as "text"')
        return value
    if isinstance(ty, cm.ListType):
        if not isinstance(value, list):
            raise bad("a list such as [1, 2]")
        elem = ty.element
        return [_convert(v, elem, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(ty, cm.OptionType):
        if isinstance(value, _Label) and value.name == "none" and value.payload is None:
            return None
        if isinstance(value, _Label) and value.name == "some" and value.payload and len(value.payload) == 1:
            return _convert(value.payload[0], ty.payload, f"{where} (some)")
        raise bad("`none` or `some(...)`")
    if isinstance(ty, cm.EnumType):
        names = ty.names
        if isinstance(value, _Label) and value.payload is None and value.name in names:
            return value.name
        raise bad("one of " + ", ".join(f"`{n}`" for n in names))
    raise InitExportError(
        f"{where}: parameters of type {wit_type_name(ty)} cannot be given on the command line; "
        "supported: bool, integers, floats, char, string, list, option and enum"
    )


def wit_type_name(ty: Any) -> str:
    """The WIT word for a wasmtime-py type (`TupleType` -> tuple, `U32` -> u32)."""
    return type(ty).__name__.removesuffix("Type").lower()


def _show(value: Any) -> str:
    if isinstance(value, _Label):
        return value.name + (f"({', '.join(map(_show, value.payload))})" if value.payload is not None else "")
    if isinstance(value, tuple) and value and value[0] == "char":
        return repr(value[1])
    if isinstance(value, tuple) and value and value[0] == "tuple":
        return "(" + ", ".join(map(_show, value[1])) + ")"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(_show, value)) + "]"
    return str(value)


def convert_args(call: InitCall, params: list[tuple[str, Any]]) -> list[Any]:
    """Check the parsed arguments against the function's parameters and convert them for Wasmtime."""
    args = call.args or ()
    if len(args) != len(params):
        sig = ", ".join(f"{n}: {wit_type_name(t)}" for n, t in params)
        raise InitExportError(
            f"the init function `{call.name}` takes {len(params)} argument(s) ({sig}) but "
            f"{len(args)} were given"
        )
    return [_convert(v, t, f"argument `{n}` of `{call.name}`") for v, (n, t) in zip(args, params)]
