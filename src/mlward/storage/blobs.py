"""Random-access views of bytes to scan: a file read once through its descriptor, or memory.

Every reader works on one Blob, so the bytes that are checked are the bytes that were read:
nothing reopens a path between a check and a use.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
from collections.abc import Iterator
from typing import BinaryIO, Protocol


class Blob(Protocol):
    size: int

    def read(self, offset: int, length: int) -> bytes: ...

    def stream(self) -> contextlib.AbstractContextManager[tuple[BinaryIO, int]]:
        """A seekable reader positioned at the blob's first byte, and that position.

        Reads end at the blob's last byte. Files are memory-mapped, so bytes the analysis
        seeks over (raw arrays in joblib files) are never read.
        """
        ...


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

    def stream(self) -> contextlib.AbstractContextManager[tuple[BinaryIO, int]]:
        return self.stream_range(0, self.size)

    def stream_range(
        self, start: int, size: int
    ) -> contextlib.AbstractContextManager[tuple[BinaryIO, int]]:
        if size <= _SMALL:
            # Small members are cheaper to read than to map.
            return BytesBlob(self.read(start, size)).stream()
        return _mapped(self._fd, start, size)


_SMALL = 1 << 20


@contextlib.contextmanager
def _mapped(fd: int, start: int, size: int) -> Iterator[tuple[BinaryIO, int]]:
    if size == 0:
        yield io.BytesIO(b""), 0
        return
    aligned = start - start % mmap.ALLOCATIONGRANULARITY
    view = mmap.mmap(fd, size + (start - aligned), access=mmap.ACCESS_READ, offset=aligned)
    try:
        view.seek(start - aligned)
        yield view, start - aligned  # type: ignore[misc]
    finally:
        view.close()


class BytesBlob:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes:
        if offset == 0 and length >= self.size:
            return self._data
        return self._data[offset : offset + length]

    def stream(self) -> contextlib.AbstractContextManager[tuple[BinaryIO, int]]:
        # nullcontext, not a generator-based context manager: it costs a third as much, and
        # every small pickle is read through here.
        return contextlib.nullcontext((io.BytesIO(self._data), 0))


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

    def stream(self) -> contextlib.AbstractContextManager[tuple[BinaryIO, int]]:
        parent = self._parent
        if isinstance(parent, FileBlob):
            return parent.stream_range(self._start, self.size)
        return BytesBlob(self.read(0, self.size)).stream()


class BlobFile(io.RawIOBase):
    """A read-only file over a Blob, for readers that want a file (tar, 7z)."""

    def __init__(self, blob: Blob) -> None:
        self._blob = blob
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._blob.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._blob.read(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)
