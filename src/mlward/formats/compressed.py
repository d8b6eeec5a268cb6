"""Single-stream compression codecs (what joblib writes, and plain .gz/.bz2/.xz/.lz4/.zst files).

Decompression streams with a byte limit and a ratio limit, so a bomb becomes a finding.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import NamedTuple, Protocol

from mlward.storage.blobs import Blob

# joblib < 0.10 wrote b"ZF" + a hex length padded to 19 bytes, then one zlib stream.
_JOBLIB_ZFILE = b"ZF"
_CHUNK = 1 << 20


class DecompressionLimit(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnsupportedCodec(Exception):
    def __init__(self, codec: str, fix: str) -> None:
        super().__init__(codec)
        self.codec = codec
        self.fix = fix


# One decompression step: (input, output room) -> (output, input still pending, stream ended).
Step = Callable[[bytes, int], tuple[bytes, bytes, bool]]


class Codec(NamedTuple):
    name: str
    magic: tuple[bytes, ...]
    make: Callable[[], Step]
    skip: int = 0


def _zlib_step(wbits: int) -> Step:
    d = zlib.decompressobj(wbits)

    def step(data: bytes, room: int) -> tuple[bytes, bytes, bool]:
        piece = d.decompress(data, room)
        return piece, d.unconsumed_tail, d.eof

    return step


def _zlib() -> Step:
    return _zlib_step(zlib.MAX_WBITS)


def _gzip() -> Step:
    return _zlib_step(16 + zlib.MAX_WBITS)


class _Buffered(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _drain(d: _Buffered) -> Step:
    # bz2, lzma and lz4 keep unread input inside; b"" drains it until they ask for more.
    def step(data: bytes, room: int) -> tuple[bytes, bytes, bool]:
        piece = d.decompress(data, room)
        while not d.eof and not d.needs_input and len(piece) < room:
            more = d.decompress(b"", room - len(piece))
            if not more:
                break
            piece += more
        return piece, b"", bool(d.eof)

    return step


# bz2 and lzma are imported when a stream needs them: together they cost more start-up time
# than scanning a small file.
def _bz2() -> Step:
    import bz2

    return _drain(bz2.BZ2Decompressor())


def _lzma() -> Step:
    import lzma

    return _drain(lzma.LZMADecompressor())


def _lz4() -> Step:
    try:
        import lz4.frame  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as exc:
        raise UnsupportedCodec("lz4", "pip install lz4") from exc
    return _drain(lz4.frame.LZ4FrameDecompressor())


def _zstd() -> Step:
    try:
        import zstandard  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as exc:
        raise UnsupportedCodec("zstd", "pip install zstandard") from exc
    d = zstandard.ZstdDecompressor().decompressobj()

    def step(data: bytes, room: int) -> tuple[bytes, bytes, bool]:
        return d.decompress(data), b"", bool(d.eof)

    return step


CODECS: tuple[Codec, ...] = (
    Codec("gzip", (b"\x1f\x8b",), _gzip),
    Codec("bz2", (b"BZh",), _bz2),
    Codec("xz", (b"\xfd7zXZ\x00",), _lzma),
    Codec("lzma", (b"\x5d\x00\x00",), _lzma),
    Codec("lz4", (b"\x04\x22\x4d\x18",), _lz4),
    Codec("zstd", (b"\x28\xb5\x2f\xfd",), _zstd),
    Codec("joblib-zfile", (_JOBLIB_ZFILE,), _zlib, skip=21),
    # zlib streams (joblib's default codec) start with 0x78 and a header checksum.
    Codec("zlib", (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"), _zlib),
)


FIRST_BYTES = frozenset(magic[0] for codec in CODECS for magic in codec.magic)


def sniff(head: bytes) -> Codec | None:
    if not head or head[0] not in FIRST_BYTES:
        return None
    for codec in CODECS:
        if head.startswith(codec.magic):
            if codec.name == "joblib-zfile" and not _looks_like_zfile(head):
                continue
            return codec
    return None


def _looks_like_zfile(head: bytes) -> bool:
    length = head[2:21].strip(b" \x00")
    return length.startswith(b"0x") and all(c in b"0123456789abcdefx" for c in length.lower())


def _chunks(blob: Blob, start: int) -> Iterator[bytes]:
    pos = start
    while pos < blob.size:
        chunk = blob.read(pos, _CHUNK)
        if not chunk:
            return
        pos += len(chunk)
        yield chunk


def decompress(codec: Codec, blob: Blob, max_bytes: int, max_ratio: int) -> bytes:
    """Whole decompressed stream, or DecompressionLimit once a bound is passed."""
    step = codec.make()
    out = bytearray()
    consumed = 0
    for chunk in _chunks(blob, codec.skip):
        consumed += len(chunk)
        pending = chunk
        while True:
            piece, pending, done = step(pending, max_bytes + 1 - len(out))
            out += piece
            _check(out, consumed, max_bytes, max_ratio)
            if done:
                return bytes(out)  # loaders never read past the end of the stream
            if not pending:
                break
    return bytes(out)


def _check(out: bytearray, consumed: int, max_bytes: int, max_ratio: int) -> None:
    if len(out) > max_bytes:
        raise DecompressionLimit(f"decompresses past the limit of {max_bytes} bytes")
    if len(out) > 1 << 24 and len(out) > consumed * max_ratio:
        raise DecompressionLimit(f"decompression ratio above {max_ratio}:1 (a compression bomb)")
