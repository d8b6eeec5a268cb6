"""Random-access views of bytes to scan: a file read once through its descriptor, or memory.

Every reader works on one Blob, so the bytes that are checked are the bytes that were read:
nothing reopens a path between a check and a use.
"""

from __future__ import annotations

import os
from typing import Protocol


class Blob(Protocol):
    size: int

    def read(self, offset: int, length: int) -> bytes: ...


class FileBlob:
    """A regular file read with pread on one open descriptor."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        chunks: list[bytes] = []
        while length > 0:
            chunk = os.pread(self._fd, min(length, 1 << 30), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]


class BytesBlob:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes:
        if offset == 0 and length >= self.size:
            return self._data
        return self._data[offset : offset + length]


class SliceBlob:
    """A window of another blob (a stored zip or tar member) without copying it."""

    def __init__(self, parent: Blob, start: int, size: int) -> None:
        self._parent = parent
        self._start = start
        self.size = max(0, min(size, parent.size - start))

    def read(self, offset: int, length: int) -> bytes:
        if offset >= self.size:
            return b""
        return self._parent.read(self._start + offset, min(length, self.size - offset))
