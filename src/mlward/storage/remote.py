"""Remote artifacts through fsspec (s3://, gs://, hf://, https://, memory://, ...).

Only the byte ranges the scanner asks for are fetched (fsspec's block cache makes the many small
reads of a zip directory one request), so a large checkpoint is not downloaded to be checked.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from mlward.errors import InputError
from mlward.storage.blobs import BytesBlob

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BLOCK = 4 << 20


def is_url(path: str) -> bool:
    return bool(_URL.match(path)) and not path.startswith("file://")


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise InputError(
            f"{url}: remote paths need fsspec", fix="pip install 'mlward[remote]'"
        ) from exc
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as exc:
        raise InputError(
            f"{url}: no filesystem for this URL ({exc})",
            fix="Install the fsspec backend it names (s3fs, gcsfs, huggingface_hub, aiohttp).",
        ) from exc


def expand(url: str) -> list[str]:
    """The URL of every file at or under ``url``, sorted."""
    fs, root = _filesystem(url)
    try:
        if fs.isdir(root):
            return sorted(fs.unstrip_protocol(p) for p in fs.find(root))
        if fs.exists(root):
            return [url]
    except OSError as exc:
        raise InputError(f"{url}: {exc}", fix="Check the URL and your credentials.") from exc
    raise InputError(f"{url}: no such object", fix="Check the URL you passed to scan.")


class RemoteBlob:
    """A Blob over one remote object, read by range."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        self._handle.seek(offset)
        return self._handle.read(min(length, self.size - offset))

    def stream(self) -> contextlib.AbstractContextManager[tuple[BinaryIO, int]]:
        # Pickles are analysed from memory: the unpickler makes many tiny reads.
        return BytesBlob(self.read(0, self.size)).stream()


@contextlib.contextmanager
def open_blob(url: str) -> Iterator[RemoteBlob]:
    fs, path = _filesystem(url)
    try:
        size = int(fs.info(path).get("size") or 0)
        handle = fs.open(path, "rb", block_size=_BLOCK)
    except OSError as exc:
        raise InputError(f"{url}: {exc}", fix="Check the URL and your credentials.") from exc
    try:
        yield RemoteBlob(handle, size)
    finally:
        handle.close()
