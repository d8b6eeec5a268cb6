"""safetensors: an 8-byte header length, a JSON header, then raw tensor bytes. It cannot carry code,
but a crafted header can still lie: offsets that overlap or leave gaps (readers disagree on what
the tensors are), bytes hidden after the last tensor, sizes that do not match shapes.

Only the header is read, so a file of any size is checked in microseconds.
"""

from __future__ import annotations

import json
import struct
from typing import NamedTuple

from mlward.storage.blobs import Blob

MAX_HEADER = 100 << 20

# Bits per element of every dtype the format defines (sub-byte floats pack several per byte).
BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
}


class Problem(NamedTuple):
    """One thing wrong with the header; ``hiding`` marks lies, the rest are plain damage."""

    message: str
    hiding: bool


def sniff(blob: Blob, head: bytes) -> bool:
    if len(head) < 10 or head[8:9] != b"{":
        return False
    length: int = struct.unpack_from("<Q", head, 0)[0]
    return 2 <= length <= MAX_HEADER  # a length past the file's end is a finding, not a miss


def check(blob: Blob) -> tuple[int, list[Problem]]:
    """Tensor count and every problem found in the header of a sniffed safetensors file."""
    (length,) = struct.unpack_from("<Q", blob.read(0, 8), 0)
    if 8 + length > blob.size:
        return 0, [Problem(f"header length {length} runs past the end of the file", hiding=True)]
    try:
        header = json.loads(blob.read(8, length))
    except (ValueError, UnicodeDecodeError) as exc:
        return 0, [Problem(f"header is not valid JSON: {exc}", hiding=False)]
    if not isinstance(header, dict):
        return 0, [Problem("header is not a JSON object", hiding=False)]
    problems: list[Problem] = []
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        problems.append(Problem("__metadata__ must map strings to strings", hiding=False))
    data_size = blob.size - 8 - length
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if not isinstance(info, dict):
            problems.append(Problem(f"tensor {name!r}: entry is not an object", hiding=False))
            continue
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in BITS:
            problems.append(Problem(f"tensor {name!r}: unknown dtype {dtype!r}", hiding=False))
            continue
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            problems.append(Problem(f"tensor {name!r}: bad shape {shape!r}", hiding=False))
            continue
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            problems.append(Problem(f"tensor {name!r}: bad data_offsets {offsets!r}", hiding=False))
            continue
        count = 1
        for dim in shape:
            count *= dim
        expected = (count * BITS[dtype] + 7) // 8
        if offsets[1] - offsets[0] != expected:
            problems.append(
                Problem(
                    f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for a {dtype} tensor of "
                    f"shape {shape} (needs {expected})",
                    hiding=False,
                )
            )
        if offsets[1] > data_size:
            problems.append(
                Problem(f"tensor {name!r}: data runs past the end of the file", hiding=False)
            )
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    position = 0
    for begin, end, name in spans:
        if begin < position:
            problems.append(Problem(f"tensor {name!r} overlaps the tensor before it", hiding=True))
        elif begin > position:
            problems.append(
                Problem(f"{begin - position} unused bytes before tensor {name!r}", hiding=True)
            )
        position = max(position, end)
    if position < data_size:
        problems.append(
            Problem(f"{data_size - position} bytes after the last tensor belong to none", True)
        )
    return len(spans), problems
