"""Encoders for the component-level items pre-initialization adds or rewrites."""

from __future__ import annotations

from .component import encode_sort
from .reader import encode_name, encode_u32, encode_vec

__all__ = [
    "STRING",
    "U32",
    "U64",
    "alias_core_export",
    "alias_instance_export",
    "canon_lift",
    "core_instantiate",
    "export",
    "func_type",
    "section",
]

STRING = 0x73
U32 = 0x79
U64 = 0x77
_LATIN1_UTF16 = 0x02
_MEMORY_OPT = 0x03


def section(sid: int, items: list[bytes]) -> bytes:
    payload = encode_vec(items)
    return bytes([sid]) + encode_u32(len(payload)) + payload


def core_instantiate(module: int, args: list[tuple[str, int]]) -> bytes:
    return b"\x00" + encode_u32(module) + encode_vec([encode_name(n) + b"\x12" + encode_u32(i) for n, i in args])


def alias_core_export(sort: int, core_instance: int, name: str) -> bytes:
    return encode_sort(sort) + b"\x01" + encode_u32(core_instance) + encode_name(name)


def alias_instance_export(sort: int, instance: int, name: str) -> bytes:
    return encode_sort(sort) + b"\x00" + encode_u32(instance) + encode_name(name)


def func_type(params: list[tuple[str, int]], result: int | None) -> bytes:
    out = b"\x40" + encode_vec([encode_name(n) + bytes([t]) for n, t in params])
    return out + (b"\x00" + bytes([result]) if result is not None else b"\x01\x00")


def canon_lift(core_func: int, memory: int, type_index: int) -> bytes:
    """Lift with strings as latin1+utf16: any byte string is valid latin-1, so bytes cross unchanged."""
    opts = [bytes([_LATIN1_UTF16]), bytes([_MEMORY_OPT]) + encode_u32(memory)]
    return b"\x00\x00" + encode_u32(core_func) + encode_vec(opts) + encode_u32(type_index)


def export(name: str, sort: int, index: int) -> bytes:
    return b"\x00" + encode_name(name) + encode_sort(sort) + encode_u32(index) + b"\x00"
