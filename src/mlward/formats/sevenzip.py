"""7-Zip archives: members are extracted into memory, within byte and count limits.

Needs py7zr (``pip install 'mlward[archives]'``); without it a 7z file is inconclusive, never clean.
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

from mlward.storage.blobs import Blob, BlobFile

MAGIC = b"7z\xbc\xaf\x27\x1c"


def sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


class SevenZipUnavailable(Exception):
    fix = "pip install 'mlward[archives]' (py7zr) to open 7z archives."


class SevenZipError(ValueError):
    pass


class SevenZipLimit(Exception):
    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit
        self.detail = detail


class Member(NamedTuple):
    name: str
    data: bytes


def read_members(blob: Blob, max_bytes: int, max_members: int) -> list[Member]:
    try:
        import py7zr
    except ImportError as exc:
        raise SevenZipUnavailable from exc

    budget = [max_bytes]
    outputs: dict[str, bytearray] = {}

    class _Sink(py7zr.Py7zIO):  # type: ignore[misc,unused-ignore]
        def __init__(self, name: str) -> None:
            self.buffer = outputs.setdefault(name, bytearray())

        def write(self, s: bytes | bytearray) -> int:
            budget[0] -= len(s)
            if budget[0] < 0:
                raise SevenZipLimit(
                    "max_decompressed_bytes", f"7z members exceed {max_bytes} bytes"
                )
            self.buffer += s
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            return None

        def size(self) -> int:
            return len(self.buffer)

    class _Factory(py7zr.WriterFactory):
        def create(self, filename: str) -> Any:
            if len(outputs) >= max_members:
                raise SevenZipLimit("max_members", f"more than {max_members} 7z members")
            return _Sink(filename)

    try:
        with py7zr.SevenZipFile(io.BufferedReader(BlobFile(blob)), mode="r") as archive:
            if archive.needs_password():
                raise SevenZipError("the archive is encrypted")
            archive.extractall(factory=_Factory())
    except SevenZipLimit:
        raise
    except SevenZipError:
        raise
    except Exception as exc:
        raise SevenZipError(str(exc) or type(exc).__name__) from exc
    return [Member(name, bytes(data)) for name, data in outputs.items()]
