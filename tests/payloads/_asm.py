"""A tiny pickle opcode assembler for hand-built hostile streams.

Every helper returns :class:`Ops`, a ``bytes`` subclass whose ``+`` keeps the type, so payloads
read like the opcode listing they produce::

    call(glob("os", "system"), "echo hi")    # c os\\nsystem\\n ( X'echo hi' t R

Python literals passed where an argument is expected are encoded with binary opcodes by
:func:`lit` (``bytes`` literals become BINBYTES); pass :class:`Ops` to splice raw opcodes. The C
unpickler accepts any opcode whatever the PROTO header says, so these helpers never check the
protocol; :func:`text` and :func:`string0` give the protocol-0 spellings where a sample needs them.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = [
    "ADDITEMS",
    "APPEND",
    "APPENDS",
    "BINPERSID",
    "BUILD",
    "DICT",
    "DUP",
    "EMPTY_DICT",
    "EMPTY_LIST",
    "EMPTY_SET",
    "EMPTY_TUPLE",
    "LIST",
    "MARK",
    "NEWFALSE",
    "NEWOBJ",
    "NEWOBJ_EX",
    "NEWTRUE",
    "NONE",
    "OBJ",
    "PERSID",
    "POP",
    "POP_MARK",
    "REDUCE",
    "SETITEM",
    "SETITEMS",
    "STACK_GLOBAL",
    "STOP",
    "TUPLE",
    "TUPLE1",
    "TUPLE2",
    "TUPLE3",
    "Ops",
    "binget",
    "binput",
    "build",
    "call",
    "frame",
    "get",
    "glob",
    "inject_prefix",
    "lit",
    "long_binget",
    "long_binput",
    "memoize",
    "ops",
    "pickle_bytes",
    "put",
    "sglob",
    "split_pickles",
    "string0",
    "text",
    "tup",
]


class Ops(bytes):
    """Raw opcode bytes; concatenation keeps the type so literals and opcodes mix safely."""

    def __add__(self, other: bytes) -> Ops:  # type: ignore[override]
        return Ops(bytes(self) + bytes(other))

    def __radd__(self, other: bytes) -> Ops:
        return Ops(bytes(other) + bytes(self))


def ops(*parts: Any) -> Ops:
    """Concatenate opcodes and literals (literals are encoded with :func:`lit`)."""
    return Ops(b"".join(bytes(p) if isinstance(p, Ops) else bytes(lit(p)) for p in parts))


MARK = Ops(b"(")
STOP = Ops(b".")
POP = Ops(b"0")
POP_MARK = Ops(b"1")
DUP = Ops(b"2")
NONE = Ops(b"N")
NEWTRUE = Ops(b"\x88")
NEWFALSE = Ops(b"\x89")
TUPLE = Ops(b"t")
TUPLE1 = Ops(b"\x85")
TUPLE2 = Ops(b"\x86")
TUPLE3 = Ops(b"\x87")
EMPTY_TUPLE = Ops(b")")
EMPTY_LIST = Ops(b"]")
EMPTY_DICT = Ops(b"}")
EMPTY_SET = Ops(b"\x8f")
LIST = Ops(b"l")
DICT = Ops(b"d")
APPEND = Ops(b"a")
APPENDS = Ops(b"e")
SETITEM = Ops(b"s")
SETITEMS = Ops(b"u")
ADDITEMS = Ops(b"\x90")
REDUCE = Ops(b"R")
BUILD = Ops(b"b")
STACK_GLOBAL = Ops(b"\x93")
NEWOBJ = Ops(b"\x81")
NEWOBJ_EX = Ops(b"\x92")
OBJ = Ops(b"o")
PERSID = Ops(b"P")
BINPERSID = Ops(b"Q")
MEMOIZE = Ops(b"\x94")


def lit(value: Any) -> Ops:
    """Encode a Python literal with binary opcodes (no memo, so it never disturbs memo indices)."""
    if isinstance(value, Ops):
        return value
    if value is None:
        return NONE
    if value is True:
        return NEWTRUE
    if value is False:
        return NEWFALSE
    if isinstance(value, int):
        if 0 <= value < 0x100:
            return Ops(b"K" + bytes([value]))
        if 0 <= value < 0x10000:
            return Ops(b"M" + struct.pack("<H", value))
        if -(2**31) <= value < 2**31:
            return Ops(b"J" + struct.pack("<i", value))
        raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return Ops(b"\x8a" + bytes([len(raw)]) + raw)
    if isinstance(value, float):
        return Ops(b"G" + struct.pack(">d", value))
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        if len(raw) < 256:
            return Ops(b"\x8c" + bytes([len(raw)]) + raw)
        return Ops(b"X" + struct.pack("<I", len(raw)) + raw)
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if len(raw) < 256:
            return Ops(b"C" + bytes([len(raw)]) + raw)
        return Ops(b"B" + struct.pack("<I", len(raw)) + raw)
    if isinstance(value, tuple):
        return tup(*value)
    if isinstance(value, list):
        if not value:
            return EMPTY_LIST
        return EMPTY_LIST + MARK + ops(*value) + APPENDS
    if isinstance(value, dict):
        if not value:
            return EMPTY_DICT
        body = Ops(b"")
        for key, item in value.items():
            body = body + lit(key) + lit(item)
        return EMPTY_DICT + MARK + body + SETITEMS
    raise TypeError(f"cannot encode {type(value).__name__} as a pickle literal")


def text(value: str) -> Ops:
    """Protocol-0 UNICODE opcode: raw-unicode-escape text ended by a newline."""
    return Ops(b"V" + value.encode("raw-unicode-escape") + b"\n")


def string0(value: str) -> Ops:
    """Protocol-0 STRING opcode: a quoted Python literal (escapes are decoded by the loader)."""
    return Ops(b"S" + repr(value).encode("ascii") + b"\n")


def glob(module: str, name: str) -> Ops:
    """GLOBAL opcode (text module and name)."""
    return Ops(b"c" + module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n")


def sglob(module: Any, name: Any) -> Ops:
    """STACK_GLOBAL with module and name pushed as literals or given as opcodes."""
    return lit(module) + lit(name) + STACK_GLOBAL


def tup(*items: Any) -> Ops:
    if not items:
        return EMPTY_TUPLE
    body = ops(*items)
    if len(items) == 1:
        return body + TUPLE1
    if len(items) == 2:
        return body + TUPLE2
    if len(items) == 3:
        return body + TUPLE3
    return MARK + body + TUPLE


def call(func: Ops, *args: Any) -> Ops:
    """``func(*args)`` through REDUCE."""
    return func + tup(*args) + REDUCE


def build(obj: Ops, state: Any) -> Ops:
    """``obj`` then BUILD with ``state``."""
    return obj + lit(state) + BUILD


def put(index: int) -> Ops:
    return Ops(b"p" + str(index).encode() + b"\n")


def get(index: int) -> Ops:
    return Ops(b"g" + str(index).encode() + b"\n")


def binput(index: int) -> Ops:
    return Ops(b"q" + bytes([index]))


def binget(index: int) -> Ops:
    return Ops(b"h" + bytes([index]))


def long_binput(index: int) -> Ops:
    return Ops(b"r" + struct.pack("<I", index))


def long_binget(index: int) -> Ops:
    return Ops(b"j" + struct.pack("<I", index))


def memoize() -> Ops:
    return MEMOIZE


def frame(body: bytes, declared: int | None = None) -> Ops:
    """FRAME opcode followed by ``body``; ``declared`` overrides the announced length."""
    size = len(body) if declared is None else declared
    return Ops(b"\x95" + struct.pack("<Q", size) + bytes(body))


def pickle_bytes(body: bytes, proto: int | None = 2) -> bytes:
    """A complete pickle: optional PROTO header, ``body``, STOP."""
    head = b"" if proto is None or proto < 2 else b"\x80" + bytes([proto])
    return head + bytes(body) + b"."


def inject_prefix(pickle_data: bytes, payload: bytes) -> bytes:
    """Run ``payload`` (which leaves one value) first, discard its result, then the original pickle.

    The loaded value is unchanged. The payload goes after PROTO and before any FRAME, so frame
    lengths stay valid; it must not use the memo.
    """
    if pickle_data[:1] == b"\x80":
        return pickle_data[:2] + bytes(payload) + bytes(POP) + pickle_data[2:]
    return bytes(payload) + bytes(POP) + pickle_data


def split_pickles(data: bytes, count: int) -> tuple[list[bytes], bytes]:
    """Split the first ``count`` concatenated pickles off ``data``; return them and the rest."""
    import io
    import pickletools

    stream = io.BytesIO(data)
    parts: list[bytes] = []
    for _ in range(count):
        start = stream.tell()
        for opcode, _arg, _pos in pickletools.genops(stream):
            if opcode.name == "STOP":
                break
        parts.append(data[start : stream.tell()])
    return parts, data[stream.tell() :]
