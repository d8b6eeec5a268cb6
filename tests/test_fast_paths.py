"""The engine's fast paths for checkpoint members must agree with the full dispatch."""

from __future__ import annotations

import random
import time

import pytest

from mlward.options import ScanOptions
from mlward.scanning import engine
from mlward.scanning.collect import Collected
from mlward.storage.blobs import BytesBlob

SCANNER = engine.Scanner(ScanOptions())

# What checkpoints carry, what formats start with, and text that is nearly a pickle.
SEEDS = [
    b"3\n",
    b"little",
    b"1234567890123456789\n",
    b"PK\x05\x06" + b"\x00" * 18,
    b"GGUF text",
    b"Rar!\x1a\x07\x00",
    b"BZh91AY&SY",
    b"x\x9cabc",
    b"cos\nsystem\n.",
    b"cbuiltins\neval\n(S'1'\ntR.",
    b"(S'x'\np0\n.",
    b"I1\n.",
    b"  {\"a\": 1}",
    b'{"auto_map": {"AutoModel": "x.Y"}}',
    b"[1, 2]",
    b"\x08\x00\x00\x00\x00\x00\x00\x00{}",
    b"\xff\xfe not utf-8",
    b"tab\there\r\n",
    b"",
]


def _full_dispatch(data: bytes) -> tuple[list[str], list[object]]:
    out = Collected()
    formats = SCANNER._scan_blob(BytesBlob(data), "p", "m", 1, out, time.monotonic() + 60, "")
    return formats, out.findings


def _mutations(count: int) -> list[bytes]:
    rng = random.Random(7)
    alphabet = bytes(range(256))
    printable = b"abcxyz0123456789 .:\n\t(){}[]'\"cPGRIS"
    cases = list(SEEDS)
    for _ in range(count):
        seed = bytearray(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 4)):
            pool = printable if rng.random() < 0.8 else alphabet
            position = rng.randint(0, len(seed))
            seed[position:position] = bytes([rng.choice(pool)])
        cases.append(bytes(seed[: engine._TINY_MEMBER]))
    return cases


@pytest.mark.parametrize("data", _mutations(3000))
def test_plain_text_fast_path_only_takes_what_the_dispatch_calls_plain_text(data: bytes) -> None:
    if engine._plain_text(data):
        assert _full_dispatch(data) == (["text"], [])


def test_fast_path_takes_the_members_checkpoints_are_made_of() -> None:
    for data in (b"3\n", b"little", b"1234567890123456789\n"):
        assert engine._plain_text(data)


def _npy_headers() -> list[str]:
    import io

    np = pytest.importorskip("numpy")
    arrays = [
        np.zeros(3),
        np.zeros((2, 3), dtype="<i8"),
        np.zeros(()),
        np.zeros((2,), dtype=[("a", "<f4")]),
        np.zeros(3, dtype=object),
        np.zeros((0, 5)),
        np.zeros((1, 1, 1), order="F"),
        np.zeros(4, dtype=">u2"),
        np.zeros((10, 20, 30)),
    ]
    headers = []
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=True)
        raw = buffer.getvalue()
        headers.append(raw[10 : 10 + int.from_bytes(raw[8:10], "little")].decode("latin-1"))
    rng = random.Random(11)
    pieces = ["0", "1", "01", "(", ")", ",", ", ", "'", "\\", " ", "\n", "\r", "True", "é", "-"]
    mutated = list(headers)
    for _ in range(4000):
        text = list(rng.choice(headers))
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(text) + 1)
            if rng.random() < 0.5:
                text[position:position] = rng.choice(pieces)
            elif text:
                del text[min(position, len(text) - 1)]
        mutated.append("".join(text))
    return mutated


def test_npy_header_fast_path_reads_what_literal_eval_reads() -> None:
    import ast

    from mlward.formats import npy

    taken = 0
    for text in _npy_headers():
        fast = npy._standard_header(text)
        if fast is None:
            continue
        taken += 1
        assert ast.literal_eval(text) == fast, text
        assert isinstance(fast["shape"], tuple)
    assert taken > 100  # the fast path is really exercised
