"""Zip archives read the tolerant way torch's reader does: the central directory is the truth.

Python's zipfile refuses a member whose CRC is wrong or whose local header names another file;
torch.load reads such files anyway. So this reader takes names, sizes and offsets from the
central directory, uses the local header only to find where data starts, and never checks CRCs
(it reports disagreements as findings instead).
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from mlward.storage.blobs import Blob

_EOCD = EOCD_MAGIC = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_CENTRAL = b"PK\x01\x02"
_LOCAL = LOCAL_MAGIC = b"PK\x03\x04"


class ZipFormatError(ValueError):
    pass


class InflateLimit(Exception):
    """A member inflates past the bytes the scan may still spend."""


# Named tuples rather than dataclasses: a checkpoint has thousands of members, and building
# a frozen dataclass costs several times more.
class ZipMember(NamedTuple):
    name: str
    method: int
    compressed_size: int
    size: int
    crc: int
    header_offset: int
    flags: int
    external_attr: int


def sniff(head: bytes) -> bool:
    return head.startswith((_LOCAL, _EOCD))


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 1:
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body)) if len(body) >= 8 else []
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
            break
        pos += 4 + length
    return size, csize, offset


_CENTRAL_ENTRY = struct.Struct("<4sHHHHHHIIIHHHHHII")


def read_directory(blob: Blob, max_members: int) -> list[ZipMember]:
    tail_len = min(blob.size, 65557)
    tail = blob.read(blob.size - tail_len, tail_len)
    at = tail.rfind(_EOCD)
    if at < 0:
        raise ZipFormatError("no end-of-central-directory record")
    eocd_pos = blob.size - tail_len + at
    (_, _, _, _, count, cd_size, cd_offset, _) = struct.unpack_from("<4sHHHHIIH", tail, at)
    cd_end = eocd_pos
    loc = blob.read(eocd_pos - 20, 20) if eocd_pos >= 20 else b""
    if len(loc) == 20 and loc.startswith(_EOCD64_LOCATOR):
        (eocd64_pos,) = struct.unpack_from("<Q", loc, 8)
        rec = blob.read(eocd64_pos, 56)
        if rec.startswith(b"PK\x06\x06"):
            count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec, 32)
            cd_end = eocd_pos - 20 - 56
            if cd_end < 0 or blob.read(cd_end, 4) != b"PK\x06\x06":
                cd_end = eocd64_pos
    # Data prepended to the archive shifts every offset; zip readers (and torch) allow that.
    shift = max(0, cd_end - (cd_offset + cd_size))
    if count > max_members:
        raise ZipFormatError(f"{count} members exceed the limit of {max_members}")
    directory = blob.read(cd_offset + shift, cd_size)
    members: list[ZipMember] = []
    pos = 0
    while pos + 46 <= len(directory) and len(members) < count:
        if directory[pos : pos + 4] != _CENTRAL:
            raise ZipFormatError(f"bad central directory entry at {cd_offset + pos}")
        (
            _,
            _,
            _,
            flags,
            method,
            _,
            _,
            crc,
            csize,
            size,
            name_len,
            extra_len,
            comment_len,
            _,
            _,
            attr,
            offset,
        ) = _CENTRAL_ENTRY.unpack_from(directory, pos)
        raw_name = directory[pos + 46 : pos + 46 + name_len]
        extra = directory[pos + 46 + name_len : pos + 46 + name_len + extra_len]
        if extra_len and 0xFFFFFFFF in (size, csize, offset):
            size, csize, offset = _zip64_extra(extra, size, csize, offset)
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        members.append(ZipMember(name, method, csize, size, crc, offset + shift, flags, attr))
        pos += 46 + name_len + extra_len + comment_len
    return members


class MemberData(NamedTuple):
    start: int
    local_name: str


_LOCAL_READ = 30 + 226  # the fixed header and any usual name, in one read


def locate(blob: Blob, member: ZipMember) -> MemberData:
    offset = member.header_offset
    header = blob.read(offset, _LOCAL_READ)
    if len(header) < 30 or not header.startswith(_LOCAL):
        raise ZipFormatError(f"member {member.name!r}: no local header at {offset}")
    name_len, extra_len = _NAME_EXTRA.unpack_from(header, 26)
    raw = header[30 : 30 + name_len] if 30 + name_len <= len(header) else b""
    if len(raw) != name_len:
        raw = blob.read(offset + 30, name_len)
    return MemberData(offset + 30 + name_len + extra_len, raw.decode("utf-8", "replace"))


_NAME_EXTRA = struct.Struct("<HH")


def inflate(data: bytes, expected: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(-15)
    out = decompressor.decompress(data, limit + 1)
    if len(out) > limit:
        raise InflateLimit(f"member inflates past {limit} bytes")
    return out


def crc_ok(data: bytes, member: ZipMember) -> bool:
    return (zlib.crc32(data) & 0xFFFFFFFF) == member.crc
