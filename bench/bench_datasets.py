"""Deterministic benchmark datasets for ``bench/scan_bench.py``.

Run with the dev venv (it needs torch, numpy, scikit-learn and joblib)::

    .venv/bin/python bench/bench_datasets.py --data bench/.data

Each dataset is rebuilt only when it is missing or was made by an older builder version. Files
are written to a temporary name and renamed into place, so an interrupted build never leaves a
half-written dataset behind. Metadata (sizes, file counts, opcode count of ``dense.pkl``) goes to
``<data>/meta.json``.

Every byte is a function of the code and the library versions: RNGs are seeded, and the random
``.data/serialization_id`` that ``torch.save`` writes into each zip is overwritten in place with a
value derived from the file name (CRCs fixed up), so two builds are byte-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import os
import pickle
import pickletools
import shutil
import struct
import sys
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump a dataset's version when its builder changes; a stale dataset is then rebuilt.
BUILDER_VERSIONS: dict[str, int] = {"small": 1, "big.pt": 1, "dense.pkl": 1, "big.joblib": 1}
DATASETS: tuple[str, ...] = ("small", "big.pt", "dense.pkl", "big.joblib")

SMALL_MIX: dict[str, int] = {"torch": 350, "sklearn": 250, "joblib": 250, "numpy": 150}
BIG_PT_TENSORS = 16  # 16 x (4096 x 4096) float32 = 1 GiB of tensor data
BIG_PT_SIDE = 4096
DENSE_TARGET_BYTES = 66 * 1024 * 1024
DENSE_FIRST_GUESS = 1_500_000
DENSE_PROTOCOL = 4
BIG_JOBLIB_ARRAYS: tuple[tuple[str, str, int], ...] = (
    # name, dtype, element count: 4 x 50 MB float32 + 2 x 50 MB float64 = 300 MB of array data
    ("embeddings", "float32", 12_500_000),
    ("encoder.weight", "float32", 12_500_000),
    ("decoder.weight", "float32", 12_500_000),
    ("head.weight", "float32", 12_500_000),
    ("optimizer.exp_avg", "float64", 6_250_000),
    ("optimizer.exp_avg_sq", "float64", 6_250_000),
)


def log(msg: str) -> None:
    print(f"[datasets] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# torch zip determinism
# --------------------------------------------------------------------------------------------


def pin_serialization_id(path: Path) -> None:
    """Overwrite torch's random ``.data/serialization_id`` record with a stable value.

    The record is stored uncompressed; its bytes are replaced in place (same length) and its
    CRC-32 is fixed in the local header (if set), the data descriptor and the central directory.
    """
    with zipfile.ZipFile(path) as zf:
        infos = [i for i in zf.infolist() if i.filename.endswith(".data/serialization_id")]
        start_dir: int = zf.start_dir
    if not infos:
        return
    info = infos[0]
    if info.compress_type != zipfile.ZIP_STORED:
        raise RuntimeError(f"{path}: serialization_id is compressed; cannot patch in place")
    digest = hashlib.sha256(path.name.encode()).hexdigest()
    digits = "".join(str(int(c, 16) % 10) for c in digest * 4)
    new = digits[: info.file_size].encode()
    crc = zlib.crc32(new)
    with open(path, "r+b") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            raise RuntimeError(f"{path}: bad local header for serialization_id")
        (old_crc,) = struct.unpack("<I", local[14:18])
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        data_off = info.header_offset + 30 + name_len + extra_len
        if old_crc != 0:
            f.seek(info.header_offset + 14)
            f.write(struct.pack("<I", crc))
        f.seek(data_off)
        f.write(new)
        if info.flag_bits & 0x08:
            desc_off = data_off + info.compress_size
            f.seek(desc_off)
            sig = f.read(4)
            f.seek(desc_off + 4 if sig == b"PK\x07\x08" else desc_off)
            f.write(struct.pack("<I", crc))
        # Walk the central directory to the matching entry.
        f.seek(start_dir)
        target = info.filename.encode()
        while True:
            entry_off = f.tell()
            head = f.read(46)
            if head[:4] != b"PK\x01\x02":
                raise RuntimeError(f"{path}: serialization_id not found in central directory")
            n, e, c = struct.unpack("<HHH", head[28:34])
            name = f.read(n)
            if name == target:
                f.seek(entry_off + 16)
                f.write(struct.pack("<I", crc))
                break
            f.seek(e + c, os.SEEK_CUR)
    with zipfile.ZipFile(path) as zf:
        if zf.read(info.filename) != new:  # also verifies the CRC against the central directory
            raise RuntimeError(f"{path}: serialization_id patch did not verify")


# --------------------------------------------------------------------------------------------
# small/: 1,000 small model files
# --------------------------------------------------------------------------------------------


def _torch_state_dict(i: int) -> dict[str, Any]:
    import torch
    from torch import nn

    torch.manual_seed(i)
    g = torch.Generator().manual_seed(10_000 + i)

    def pick(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=g).item())

    kind = i % 4
    model: nn.Module
    if kind == 0:  # MLP
        dims = [pick(8, 64)] + [pick(8, 96) for _ in range(pick(1, 3))] + [pick(2, 16)]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
    elif kind == 1:  # small CNN with batch norm (float + int64 buffers)
        c1, c2 = pick(4, 16), pick(8, 32)
        model = nn.Sequential(
            nn.Conv2d(3, c1, 3),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3),
            nn.BatchNorm2d(c2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(c2, pick(2, 10)),
        )
    elif kind == 2:  # recurrent
        model = nn.LSTM(pick(4, 32), pick(8, 40), num_layers=pick(1, 2))
    else:  # embedding + layer norm + head, half precision weights
        vocab, dim = pick(32, 256), pick(8, 64)
        model = nn.Sequential(nn.Embedding(vocab, dim), nn.LayerNorm(dim), nn.Linear(dim, 4))
        model = model.half() if i % 8 == 3 else model
    return model.state_dict()


def _sklearn_estimator(i: int) -> Any:
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_classification, make_regression
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(i)
    n = int(rng.integers(60, 300))
    d = int(rng.integers(4, 20))
    x, y = make_classification(
        n_samples=n, n_features=d, n_informative=min(d, 4), n_redundant=0, random_state=i
    )
    kind = i % 11
    est: Any
    if kind == 0:
        est = LogisticRegression(max_iter=200)
    elif kind == 1:
        xr, yr = make_regression(n_samples=n, n_features=d, random_state=i)
        return Ridge(alpha=float(rng.uniform(0.1, 2.0))).fit(xr, yr)
    elif kind == 2:
        est = DecisionTreeClassifier(max_depth=int(rng.integers(3, 8)), random_state=i)
    elif kind == 3:
        est = RandomForestClassifier(
            n_estimators=int(rng.integers(3, 10)), max_depth=int(rng.integers(3, 6)), random_state=i
        )
    elif kind == 4:
        est = GradientBoostingClassifier(n_estimators=int(rng.integers(5, 20)), random_state=i)
    elif kind == 5:
        est = KMeans(n_clusters=int(rng.integers(2, 6)), n_init=2, random_state=i)
    elif kind == 6:
        est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200))
    elif kind == 7:
        est = make_pipeline(StandardScaler(), PCA(n_components=2), SVC(random_state=i))
    elif kind == 8:
        est = KNeighborsClassifier(n_neighbors=int(rng.integers(3, 9)))
    elif kind == 9:
        est = GaussianNB()
    else:
        hidden = (int(rng.integers(8, 32)),)
        est = MLPClassifier(hidden_layer_sizes=hidden, max_iter=60, random_state=i)
    return est.fit(x, y)


def _array_bundle(i: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(50_000 + i)
    rows = int(rng.integers(16, 128))
    cols = int(rng.integers(8, 96))
    return {
        "weights": rng.standard_normal((rows, cols)).astype(np.float32),
        "bias": rng.standard_normal(cols).astype(np.float32),
        "classes": np.arange(int(rng.integers(2, 12))),
        "meta": {"version": i % 5, "name": f"model-{i}", "trained": True},
    }


def _npy_array(i: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(90_000 + i)
    kind = i % 3
    if kind == 0:
        return rng.standard_normal((int(rng.integers(16, 160)), int(rng.integers(8, 64)))).astype(
            np.float32
        )
    if kind == 1:
        return rng.standard_normal(int(rng.integers(200, 12_000)))  # float64
    return rng.integers(0, 50_000, size=(int(rng.integers(64, 512)), 16), dtype=np.int64)


def build_small(dest: Path) -> dict[str, Any]:
    import joblib
    import numpy as np
    import torch

    warnings.filterwarnings("ignore")  # sklearn convergence warnings on toy data
    torch.set_num_threads(1)
    dest.mkdir(parents=True)
    idx = 0
    for kind, count in SMALL_MIX.items():
        sub = dest / kind
        sub.mkdir()
        for k in range(count):
            i = idx
            idx += 1
            if kind == "torch":
                path = sub / f"model_{i:04d}.pt"
                torch.save(_torch_state_dict(i), path)
                pin_serialization_id(path)
            elif kind == "sklearn":
                path = sub / f"estimator_{i:04d}.pkl"
                est = _sklearn_estimator(i)
                path.write_bytes(pickle.dumps(est, protocol=pickle.DEFAULT_PROTOCOL))
            elif kind == "joblib":
                path = sub / f"model_{i:04d}.joblib"
                obj = _sklearn_estimator(i) if k % 2 == 0 else _array_bundle(i)
                joblib.dump(obj, path, compress=3 if (k // 2) % 4 == 1 else 0)
            else:
                path = sub / f"array_{i:04d}.npy"
                np.save(path, _npy_array(i), allow_pickle=False)
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    sizes = sorted(p.stat().st_size for p in files)
    return {
        "files": len(files),
        "bytes": sum(sizes),
        "min_file_bytes": sizes[0],
        "median_file_bytes": sizes[len(sizes) // 2],
        "max_file_bytes": sizes[-1],
        "mix": dict(SMALL_MIX),
    }


# --------------------------------------------------------------------------------------------
# big.pt: 1 GiB torch zip checkpoint, built from file-backed (mmap) tensors
# --------------------------------------------------------------------------------------------


def build_big_pt(dest: Path, scratch: Path) -> dict[str, Any]:
    import numpy as np
    import torch

    scratch.mkdir(parents=True, exist_ok=True)
    numel = BIG_PT_SIDE * BIG_PT_SIDE
    chunk = 4 * 1024 * 1024
    raw_files: list[Path] = []
    state: dict[str, Any] = {}
    try:
        for t in range(BIG_PT_TENSORS):
            raw = scratch / f"tensor_{t:02d}.f32"
            rng = np.random.default_rng(1_000 + t)
            with open(raw, "wb") as f:
                for start in range(0, numel, chunk):
                    n = min(chunk, numel - start)
                    (rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)).tofile(f)
            raw_files.append(raw)
            # shared=True maps the file: pages are file-backed and reclaimable, so the build
            # never holds the 1 GiB as anonymous memory.
            tensor = torch.from_file(str(raw), shared=True, size=numel, dtype=torch.float32)
            state[f"layers.{t}.weight"] = tensor.view(BIG_PT_SIDE, BIG_PT_SIDE)
        state["final_norm.weight"] = torch.ones(BIG_PT_SIDE)
        torch.save(state, dest)
    finally:
        state.clear()
        for raw in raw_files:
            raw.unlink(missing_ok=True)
    pin_serialization_id(dest)
    return {"bytes": dest.stat().st_size, "tensors": BIG_PT_TENSORS + 1}


# --------------------------------------------------------------------------------------------
# dense.pkl: opcode-dense pickle near 66 MiB
# --------------------------------------------------------------------------------------------


def _dense_bytes(n: int) -> bytes:
    return pickle.dumps(
        [{"a": i, "b": float(i), "c": str(i)} for i in range(n)], protocol=DENSE_PROTOCOL
    )


def build_dense(dest: Path) -> dict[str, Any]:
    n = DENSE_FIRST_GUESS
    data = _dense_bytes(n)
    for _ in range(3):  # size is nearly linear in n; two corrections land within a few bytes
        n = round(n * DENSE_TARGET_BYTES / len(data))
        data = _dense_bytes(n)
        if abs(len(data) - DENSE_TARGET_BYTES) < 64:
            break
    opcodes = sum(1 for _ in pickletools.genops(data))
    dest.write_bytes(data)
    info = {"bytes": len(data), "dicts": n, "opcodes": opcodes, "protocol": DENSE_PROTOCOL}
    log(
        f"dense.pkl: {len(data):,} bytes ({len(data) / 2**20:.2f} MiB), {n:,} dicts, "
        f"{opcodes:,} opcodes"
    )
    return info


# --------------------------------------------------------------------------------------------
# big.joblib: ~300 MB of numpy arrays, uncompressed
# --------------------------------------------------------------------------------------------


def build_big_joblib(dest: Path) -> dict[str, Any]:
    import joblib
    import numpy as np

    obj: dict[str, Any] = {"format": "bench-checkpoint", "step": 123_456}
    for k, (name, dtype, count) in enumerate(BIG_JOBLIB_ARRAYS):
        rng = np.random.default_rng(7_000 + k)
        np_dtype = np.float32 if dtype == "float32" else np.float64
        obj[name] = rng.standard_normal(count, dtype=np_dtype)
    joblib.dump(obj, dest, compress=0)
    return {"bytes": dest.stat().st_size, "arrays": len(BIG_JOBLIB_ARRAYS)}


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(p.relative_to(path).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
        return h.hexdigest()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def ensure_datasets(data: Path, names: tuple[str, ...] = DATASETS) -> dict[str, Any]:
    data.mkdir(parents=True, exist_ok=True)
    meta_path = data / "meta.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    scratch = data / ".tmp"
    builders: dict[str, Callable[[Path], dict[str, Any]]] = {
        "small": build_small,
        "big.pt": lambda p: build_big_pt(p, scratch / "raw"),
        "dense.pkl": build_dense,
        "big.joblib": build_big_joblib,
    }
    for name in names:
        final = data / name
        entry = meta.get(name, {})
        if final.exists() and entry.get("builder_version") == BUILDER_VERSIONS[name]:
            continue
        log(f"building {name} ...")
        t0 = time.perf_counter()
        if final.is_dir():
            shutil.rmtree(final)
        elif final.exists():
            final.unlink()
        tmp = scratch / name
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()
        tmp.parent.mkdir(parents=True, exist_ok=True)
        info = builders[name](tmp)
        os.replace(tmp, final)
        info["builder_version"] = BUILDER_VERSIONS[name]
        info["sha256"] = _sha256(final)
        info["build_seconds"] = round(time.perf_counter() - t0, 2)
        meta[name] = info
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        log(f"built {name} in {info['build_seconds']} s: {json.dumps(info, sort_keys=True)}")
    shutil.rmtree(scratch, ignore_errors=True)
    return {k: meta[k] for k in names}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / ".data")
    ap.add_argument("--only", nargs="*", choices=DATASETS, default=list(DATASETS))
    args = ap.parse_args(argv)
    meta = ensure_datasets(args.data, tuple(args.only))
    out = io.StringIO()
    json.dump(meta, out, indent=2, sort_keys=True)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
