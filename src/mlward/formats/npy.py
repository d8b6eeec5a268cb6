"""NumPy ``.npy``: magic, a Python-literal header, then raw data or (object dtype) a pickle."""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

MAGIC = b"\x93NUMPY"


class NpyFormatError(ValueError):
    pass


class NpyHeader(NamedTuple):
    version: tuple[int, int]
    descr: object
    fortran_order: bool
    shape: tuple[int, ...]
    data_offset: int

    @property
    def has_object(self) -> bool:
        return _descr_has_object(self.descr)


def sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _descr_has_object(descr: object) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        for field in descr:
            if isinstance(field, tuple) and len(field) >= 2 and _descr_has_object(field[1]):
                return True
        return False
    if isinstance(descr, tuple) and descr:
        return _descr_has_object(descr[0])
    return True  # an unknown description: treat as able to hold objects


# The header numpy.save writes for a plain dtype, exactly: parsed without compiling the text as
# Python (ast.literal_eval costs more than the rest of a small file's scan). Anything else goes
# to literal_eval, so both read the same literal; integers follow Python's rules (no leading 0).
_INT = "(?:0|[1-9][0-9]*)"
_STANDARD_HEADER = re.compile(
    r"\{'descr': '([ -&(-\[\]-~]*)', 'fortran_order': (True|False), 'shape': \(("
    + f"|{_INT},|{_INT}(?:, {_INT})+,?"
    + r")\), \}[ ]*\n?",
    re.ASCII,
)


def _standard_header(text: str) -> dict[str, object] | None:
    match = _STANDARD_HEADER.fullmatch(text)
    if match is None:
        return None
    descr, fortran, dims = match.groups()
    shape = tuple(int(part) for part in dims.split(",") if part.strip())
    return {"descr": descr, "fortran_order": fortran == "True", "shape": shape}


def read_header(head: bytes) -> NpyHeader:
    """Parse the header from the first bytes of the file (the header is at most a few KiB)."""
    if not head.startswith(MAGIC) or len(head) < 10:
        raise NpyFormatError("not an .npy file")
    major, minor = head[6], head[7]
    if major == 1:
        (length,) = struct.unpack_from("<H", head, 8)
        start = 10
    elif major in (2, 3):
        (length,) = struct.unpack_from("<I", head, 8)
        start = 12
    else:
        raise NpyFormatError(f"unknown .npy version {major}.{minor}")
    raw = head[start : start + length]
    if len(raw) < length:
        raise NpyFormatError("header runs past the end of the data read")
    text = raw.decode("utf-8" if major == 3 else "latin-1")
    header = _standard_header(text)
    if header is None:
        import ast  # only unusual headers need it; keeps start-up short

        try:
            header = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise NpyFormatError(f"header is not a Python literal: {exc}") from exc
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
        raise NpyFormatError("header lacks descr, fortran_order or shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise NpyFormatError(f"bad shape {shape!r}")
    return NpyHeader(
        (major, minor), header["descr"], bool(header["fortran_order"]), shape, start + length
    )
