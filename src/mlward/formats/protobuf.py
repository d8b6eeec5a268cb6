"""A minimal protobuf wire-format reader: enough to walk TensorFlow graphs without TensorFlow.

It only splits bytes into (field number, wire type, value); the callers know which fields hold
which messages. Malformed input raises ProtobufError; nothing is evaluated.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class ProtobufError(ValueError):
    pass


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("varint runs past the end")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 10 bytes")


def fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value): an int for scalars, the raw bytes for LENGTH fields."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        key, pos = _varint(view, pos)
        number, kind = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if kind == VARINT:
            value, pos = _varint(view, pos)
            yield number, kind, value
        elif kind == FIXED64:
            if pos + 8 > len(view):
                raise ProtobufError("fixed64 runs past the end")
            yield number, kind, int.from_bytes(view[pos : pos + 8], "little")
            pos += 8
        elif kind == LENGTH:
            length, pos = _varint(view, pos)
            if pos + length > len(view):
                raise ProtobufError("length-delimited field runs past the end")
            yield number, kind, bytes(view[pos : pos + length])
            pos += length
        elif kind == FIXED32:
            if pos + 4 > len(view):
                raise ProtobufError("fixed32 runs past the end")
            yield number, kind, int.from_bytes(view[pos : pos + 4], "little")
            pos += 4
        else:
            raise ProtobufError(f"wire type {kind} is not used by proto3")


def messages(data: bytes, number: int) -> Iterator[bytes]:
    for field, kind, value in fields(data):
        if field == number and kind == LENGTH and isinstance(value, bytes):
            yield value


def string(data: bytes, number: int) -> str | None:
    for value in messages(data, number):
        return value.decode("utf-8", "replace")
    return None
