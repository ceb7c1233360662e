"""A bounds-checked cursor over a binary, and the LEB128 encoders that mirror it."""

from __future__ import annotations

from ..errors import InvalidComponentError

__all__ = ["Reader", "encode_s32", "encode_s64", "encode_name", "encode_u32", "encode_vec"]


class Reader:
    """Reads primitives from ``data[pos:end]``; every read checks the bytes are there.

    ``base`` is the offset of ``data[0]`` in the whole file, so errors point at
    the right byte even inside nested modules.
    """

    __slots__ = ("data", "pos", "end", "base")

    def __init__(self, data: memoryview, pos: int = 0, end: int | None = None, base: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.base = base

    def error(self, message: str, pos: int | None = None) -> InvalidComponentError:
        return InvalidComponentError(message, self.base + (self.pos if pos is None else pos))

    def at_end(self) -> bool:
        return self.pos >= self.end

    def u8(self) -> int:
        if self.pos >= self.end:
            raise self.error("unexpected end of data")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > self.end:
            raise self.error(f"unexpected end of data: {n} bytes announced, {self.end - self.pos} left")
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def _uleb(self, bits: int) -> int:
        result = 0
        shift = 0
        data, pos, end = self.data, self.pos, self.end
        while True:
            if pos >= end:
                raise self.error("unexpected end of data in LEB128 integer")
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift >= bits:  # at most ceil(bits / 7) bytes
                raise self.error("LEB128 integer too long", pos - 1)
        if result >> bits:
            raise self.error(f"integer too large for u{bits}", pos - 1)
        self.pos = pos
        return result

    def u32(self) -> int:
        return self._uleb(32)

    def u64(self) -> int:
        return self._uleb(64)

    def _sleb(self, bits: int) -> int:
        result = 0
        shift = 0
        data, pos, end = self.data, self.pos, self.end
        while True:
            if pos >= end:
                raise self.error("unexpected end of data in LEB128 integer")
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift >= bits:  # at most ceil(bits / 7) bytes
                raise self.error("LEB128 integer too long", pos - 1)
        if b & 0x40:
            result -= 1 << shift
        if not -(1 << (bits - 1)) <= result < (1 << (bits - 1)):
            raise self.error(f"integer too large for s{bits}", pos - 1)
        self.pos = pos
        return result

    def s32(self) -> int:
        return self._sleb(32)

    def s33(self) -> int:
        return self._sleb(33)

    def s64(self) -> int:
        return self._sleb(64)

    def count(self, min_item_size: int = 1) -> int:
        """A vector length, refused when the remaining bytes cannot hold that many items."""
        pos = self.pos
        n = self.u32()
        if n * min_item_size > self.end - self.pos:
            raise self.error(f"vector of {n} items does not fit in the {self.end - self.pos} bytes left", pos)
        return n

    def name(self) -> str:
        n = self.u32()
        raw = self.take(n)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise self.error("name is not valid UTF-8") from None

    def sub(self, n: int) -> Reader:
        """A reader over the next ``n`` bytes, which this reader skips."""
        start = self.pos
        self.take(n)
        return Reader(self.data, start, start + n, self.base)


def encode_u32(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _encode_signed(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        done = (value == 0 and not b & 0x40) or (value == -1 and b & 0x40)
        out.append(b if done else b | 0x80)
        if done:
            return bytes(out)


encode_s32 = _encode_signed
encode_s64 = _encode_signed


def encode_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    return encode_u32(len(raw)) + raw


def encode_vec(items: list[bytes]) -> bytes:
    return encode_u32(len(items)) + b"".join(items)
