"""scipy.sparse matrices and arrays (the formats sklearn text features and graphs use)."""

from __future__ import annotations

from typing import Any

from . import BenignSample
from ._common import SEED, joblib_sample, pickle_sample

REQ = ("scipy",)
FORMATS = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")


def _dense() -> Any:
    import numpy as np

    rng = np.random.RandomState(SEED)
    dense = rng.normal(size=(6, 6))
    dense[np.abs(dense) < 0.8] = 0.0
    return dense


def _matrices(kind: str) -> dict[str, Any]:
    from scipy import sparse

    dense = _dense()
    out: dict[str, Any] = {}
    for fmt in FORMATS:
        cls = getattr(sparse, f"{fmt}_{kind}")
        out[fmt] = cls(dense)
    out["csr_int"] = getattr(sparse, f"csr_{kind}")(dense.astype("int32"))
    out["csr_bool"] = getattr(sparse, f"csr_{kind}")(dense > 0)
    return out


def samples() -> list[BenignSample]:
    out: list[BenignSample] = []
    for kind in ("matrix", "array"):
        for proto in (2, 5):
            out.append(
                pickle_sample(f"scipy_sparse_{kind}_p{proto}", lambda k=kind: _matrices(k), proto,
                              REQ)
            )
        for fmt in ("csr", "csc", "coo"):
            out.append(
                pickle_sample(f"scipy_{fmt}_{kind}_p4", lambda k=kind, f=fmt: _matrices(k)[f], 4,
                              REQ)
            )
    out.append(joblib_sample("scipy_sparse_joblib", lambda: _matrices("matrix"), 3, REQ))

    def npz_sample() -> BenignSample:
        from pathlib import Path

        def build(out_dir: Path) -> Path:
            from scipy import sparse

            path = out_dir / "scipy_save_npz.npz"
            sparse.save_npz(path, _matrices("matrix")["csr"])
            return path

        return BenignSample(name="scipy_save_npz", build=build, loader="numpy", requires=REQ)

    out.append(npz_sample())
    return out
