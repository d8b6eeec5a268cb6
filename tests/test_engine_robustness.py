"""No input makes the scanner raise: mutated containers of every kind go through the whole engine.

Every mutated file must come back as a result (any verdict), never an exception, and a damaged
file may never be called clean unless what is left still parses completely.
"""

from __future__ import annotations

import io
import pickle
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from mlward import ScanOptions
from mlward.scanning.engine import Scanner

CASES_PER_SEED = 300


def _seeds() -> dict[str, bytes]:
    import joblib
    import numpy as np
    import torch

    out: dict[str, bytes] = {}
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2)}, buffer)
    out["torch_zip"] = buffer.getvalue()
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buffer, _use_new_zipfile_serialization=False)
    out["torch_legacy"] = buffer.getvalue()
    buffer = io.BytesIO()
    joblib.dump({"a": np.arange(20), "o": np.array([1, "x"], dtype=object)}, buffer, compress=3)
    out["joblib_zlib"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"k": 1}, None], dtype=object), allow_pickle=True)
    out["npy_object"] = buffer.getvalue()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = pickle.dumps([1, 2, 3], protocol=0)
        info = tarfile.TarInfo("inner.pkl")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    out["tar"] = buffer.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/b.pkl", pickle.dumps({"x": 1.5}, protocol=5))
    out["zip_deflated"] = buffer.getvalue()
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        at = rng.randrange(len(buf))
        roll = rng.random()
        if roll < 0.5:
            buf[at] = rng.randrange(256)
        elif roll < 0.7:
            del buf[at : at + rng.randrange(1, 64)]
        elif roll < 0.85:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        else:
            del buf[at:]
        if not buf:
            buf = bytearray(b"\x80")
    return bytes(buf)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind", ["torch_zip", "torch_legacy", "joblib_zlib", "npy_object", "tar", "zip_deflated"]
)
def test_mutated_containers_never_raise(tmp_path: Path, kind: str) -> None:
    seed = _seeds()[kind]
    scanner = Scanner(ScanOptions())
    rng = random.Random(kind)
    path = tmp_path / "sample.bin"
    verdicts = set()
    for _ in range(CASES_PER_SEED):
        path.write_bytes(_mutate(seed, rng))
        result = scanner.scan_file(str(path))
        verdicts.add(result.verdict.value)
    # The mutations must really exercise the damaged paths, not only flip harmless bytes.
    assert "inconclusive" in verdicts or "suspicious" in verdicts
