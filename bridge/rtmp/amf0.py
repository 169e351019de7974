"""AMF0 encoding and decoding (Adobe AMF0 specification, sections 2.2-2.12).

Values map to Python as: number -> float, boolean -> bool, string -> str,
object/ECMA array -> dict, null/undefined -> None, strict array -> list.
"""

from __future__ import annotations

import struct
from typing import TypeAlias

AmfValue: TypeAlias = float | int | bool | str | dict[str, "AmfValue"] | list["AmfValue"] | None

NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, LONG_STRING = 0x08, 0x09, 0x0A, 0x0C
_DOUBLE = struct.Struct("!d")
_MAX_DEPTH = 16


class AmfError(ValueError):
    """Malformed or unsupported AMF0 data."""


def encode(*values: AmfValue) -> bytes:
    """Encode a sequence of values (e.g. a command's name, transaction id, arguments)."""
    out = bytearray()
    for value in values:
        _encode_value(out, value)
    return bytes(out)


def _encode_value(out: bytearray, value: AmfValue) -> None:
    if value is None:
        out.append(NULL)
    elif isinstance(value, bool):
        out += bytes([BOOLEAN, int(value)])
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        _encode_string_value(out, value)
    elif isinstance(value, dict):
        out.append(OBJECT)
        for key, item in value.items():
            _encode_key(out, key)
            _encode_value(out, item)
        out += b"\x00\x00" + bytes([OBJECT_END])
    elif isinstance(value, list):
        out.append(STRICT_ARRAY)
        out += struct.pack("!I", len(value))
        for item in value:
            _encode_value(out, item)
    else:
        raise AmfError(f"cannot encode {type(value).__name__} as AMF0")


def _encode_string_value(out: bytearray, value: str) -> None:
    data = value.encode("utf-8")
    if len(data) > 0xFFFF:
        out.append(LONG_STRING)
        out += struct.pack("!I", len(data)) + data
    else:
        out.append(STRING)
        out += struct.pack("!H", len(data)) + data


def _encode_key(out: bytearray, key: str) -> None:
    data = key.encode("utf-8")
    out += struct.pack("!H", len(data)) + data


def decode_all(data: bytes) -> list[AmfValue]:
    """Decode consecutive values until the data is exhausted."""
    reader = _Reader(data)
    values = []
    while not reader.at_end():
        values.append(reader.value(0))
    return values


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    def _take(self, count: int) -> bytes:
        if self._pos + count > len(self._data):
            raise AmfError("AMF0 data truncated")
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def _u16(self) -> int:
        return int(struct.unpack("!H", self._take(2))[0])

    def _u32(self) -> int:
        return int(struct.unpack("!I", self._take(4))[0])

    def _utf8(self, length: int) -> str:
        try:
            return self._take(length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmfError(f"AMF0 string is not UTF-8: {exc}") from None

    def value(self, depth: int) -> AmfValue:
        if depth > _MAX_DEPTH:
            raise AmfError("AMF0 nesting too deep")
        marker = self._take(1)[0]
        if marker == NUMBER:
            return float(_DOUBLE.unpack(self._take(8))[0])
        if marker == BOOLEAN:
            return self._take(1) != b"\x00"
        if marker == STRING:
            return self._utf8(self._u16())
        if marker == LONG_STRING:
            return self._utf8(self._u32())
        if marker in (NULL, UNDEFINED):
            return None
        if marker == OBJECT:
            return self._properties(depth)
        if marker == ECMA_ARRAY:
            self._u32()  # associative count, advisory only
            return self._properties(depth)
        if marker == STRICT_ARRAY:
            return [self.value(depth + 1) for _ in range(self._u32())]
        raise AmfError(f"unsupported AMF0 marker 0x{marker:02x}")

    def _properties(self, depth: int) -> dict[str, AmfValue]:
        result: dict[str, AmfValue] = {}
        while True:
            key = self._utf8(self._u16())
            if not key and self._data[self._pos : self._pos + 1] == bytes([OBJECT_END]):
                self._pos += 1
                return result
            result[key] = self.value(depth + 1)
