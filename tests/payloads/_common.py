"""Shared pieces for the hostile samples: the harmless payload, writers and container helpers.

Every payload only creates the marker file it is given (a path inside a temporary directory),
through Python source, a shell command or an argv vector; nothing else is touched.
"""

from __future__ import annotations

import io
import shlex
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import Sample
from ._asm import Ops, pickle_bytes

MARKER_TEXT = "mlward-payload-ran"


def code(marker: Path) -> str:
    """Python statement that writes the marker."""
    return f"open({str(marker)!r}, 'w').write({MARKER_TEXT!r})"


def shell(marker: Path) -> str:
    """Shell command that writes the marker."""
    return f"echo {MARKER_TEXT} > {shlex.quote(str(marker))}"


def argv(marker: Path) -> list[str]:
    """argv vector (absolute program path) that writes the marker."""
    return ["/bin/sh", "-c", shell(marker)]


class Reduce:
    """An object that pickles as ``func(*args)``: lets the real picklers write a payload."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


def exec_payload(marker: Path) -> Reduce:
    """The plain payload object: ``builtins.exec(<write marker>)``."""
    import builtins

    return Reduce(builtins.exec, code(marker))


def raw(
    name: str,
    description: str,
    body: Callable[[Path], bytes],
    expected: str,
    *,
    proto: int | None = 2,
    loader: str = "pickle",
    ext: str = ".pkl",
    advisory: str | None = None,
    setup: str | None = None,
    complete: bool = False,
) -> Sample:
    """A sample whose artifact is one hand-assembled pickle stream.

    ``body(marker)`` returns the opcodes between PROTO and STOP, or with ``complete=True`` the whole
    file content.
    """

    def _build(out_dir: Path, marker: Path) -> Path:
        data = body(marker)
        if not complete:
            data = pickle_bytes(data, proto)
        path = out_dir / f"{name}{ext}"
        path.write_bytes(bytes(data))
        return path

    return Sample(name, description, _build, loader, expected, advisory, setup)


def from_bytes(
    name: str,
    description: str,
    content: Callable[[Path, Path], bytes],
    expected: str,
    *,
    loader: str,
    ext: str,
    advisory: str | None = None,
    setup: str | None = None,
) -> Sample:
    """A sample whose artifact is whatever bytes ``content(out_dir, marker)`` returns."""

    def _build(out_dir: Path, marker: Path) -> Path:
        path = out_dir / f"{name}{ext}"
        path.write_bytes(content(out_dir, marker))
        return path

    return Sample(name, description, _build, loader, expected, advisory, setup)


# --------------------------------------------------------------------------- torch helpers


def small_state_dict() -> Any:
    import collections

    import torch

    generator = torch.Generator().manual_seed(0)
    return collections.OrderedDict(
        [
            ("linear.weight", torch.randn(4, 3, generator=generator)),
            ("linear.bias", torch.zeros(4)),
        ]
    )


def torch_zip_bytes(obj: Any) -> bytes:
    """``torch.save(obj)`` in the default zip format."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def torch_legacy_bytes(obj: Any) -> bytes:
    """``torch.save(obj, _use_new_zipfile_serialization=False)``: five pickles then raw storages."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def zip_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def write_zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for member_name, content in members:
            archive.writestr(member_name, content)
    return buffer.getvalue()


def replace_member(
    data: bytes,
    suffix: str,
    transform: Callable[[bytes], bytes],
    *,
    rename: Callable[[str], str] | None = None,
    compression: int = zipfile.ZIP_STORED,
) -> bytes:
    """Rewrite a torch zip, passing the member ending in ``suffix`` through ``transform``."""
    members = []
    for member_name, content in zip_members(data):
        new_content = transform(content) if member_name.endswith(suffix) else content
        members.append((rename(member_name) if rename else member_name, new_content))
    return write_zip(members, compression)


def patch_zip_headers(data: bytes, patch: Callable[[bytearray, int, bool], None]) -> bytes:
    """Call ``patch(buffer, offset, is_local)`` for every local and central directory header."""
    out = bytearray(data)
    for signature, is_local in ((b"PK\x03\x04", True), (b"PK\x01\x02", False)):
        offset = out.find(signature)
        while offset >= 0:
            patch(out, offset, is_local)
            offset = out.find(signature, offset + 4)
    return bytes(out)


def first_local_header(data: bytes) -> tuple[int, int, int]:
    """(offset, name length, extra length) of the first local file header."""
    offset = data.find(b"PK\x03\x04")
    name_len, extra_len = struct.unpack_from("<HH", data, offset + 26)
    return offset, name_len, extra_len


def ops_or_bytes(value: bytes) -> Ops:
    return value if isinstance(value, Ops) else Ops(value)
