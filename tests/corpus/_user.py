"""Samples that pickle user-defined classes (benign, but outside every allowlist)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from . import BenignSample
from ._common import SEED, write_pickle

_PKG = __name__.rsplit(".", 1)[0]  # "tests.corpus" (or "corpus" when tests/ is on sys.path)

MYNET = f"{_PKG}.user_models.MyNet"
CLIP = f"{_PKG}.user_transformers.ClipTransformer"
CONFIG = f"{_PKG}.user_config.TrainingConfig"


def _mod(name: str) -> Any:
    return importlib.import_module(f"{_PKG}.{name}")


def _mynet() -> Any:
    import torch

    torch.manual_seed(SEED)
    return _mod("user_models").MyNet()


def _clip_pipeline() -> Any:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.RandomState(SEED)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    clip = _mod("user_transformers").ClipTransformer(margin=0.1)
    return Pipeline([("clip", clip), ("scale", StandardScaler()),
                     ("clf", LogisticRegression())]).fit(X, y)


def _config_checkpoint() -> Any:
    return {"epoch": 2, "config": _mod("user_config").TrainingConfig(), "metrics": [0.5, 0.25]}


def _torch(name: str, make: Any, legacy: bool, user_global: str) -> BenignSample:
    def build(out_dir: Path) -> Path:
        import torch

        path = out_dir / f"{name}.pt"
        torch.save(make(), path, _use_new_zipfile_serialization=not legacy)
        return path

    return BenignSample(name, build, "torch", ("torch",), (user_global,))


def _pickle(name: str, make: Any, protocol: int, requires: tuple[str, ...],
            user_global: str) -> BenignSample:
    def build(out_dir: Path) -> Path:
        return write_pickle(make(), out_dir / f"{name}.pkl", protocol)

    return BenignSample(name, build, "pickle", requires, (user_global,))


def _joblib(name: str, make: Any, user_global: str) -> BenignSample:
    def build(out_dir: Path) -> Path:
        import joblib

        path = out_dir / f"{name}.joblib"
        joblib.dump(make(), path, compress=3)
        return path

    return BenignSample(name, build, "joblib", ("joblib", "sklearn"), (user_global,))


def samples() -> list[BenignSample]:
    return [
        _torch("user_mynet_torch", _mynet, False, MYNET),
        _torch("user_mynet_torch_legacy", _mynet, True, MYNET),
        _pickle("user_mynet_pickle_p4", _mynet, 4, ("torch",), MYNET),
        _pickle("user_clip_pipeline_p5", _clip_pipeline, 5, ("sklearn",), CLIP),
        _pickle("user_clip_pipeline_p0", _clip_pipeline, 0, ("sklearn",), CLIP),
        _joblib("user_clip_pipeline_joblib", _clip_pipeline, CLIP),
        _pickle("user_config_checkpoint_p2", _config_checkpoint, 2, (), CONFIG),
        _torch("user_config_checkpoint_torch", _config_checkpoint, False, CONFIG),
    ]
