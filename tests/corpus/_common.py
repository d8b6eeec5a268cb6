"""Helpers shared by the corpus modules: writing artifacts and declaring samples compactly."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import BenignSample

# One seed for every random draw in the corpus, so artifacts are the same on every build.
SEED = 1234


def write_pickle(obj: Any, path: Path, protocol: int) -> Path:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)
    return path


def pickle_sample(
    name: str,
    make: Callable[[], Any],
    protocol: int = pickle.HIGHEST_PROTOCOL,
    requires: tuple[str, ...] = (),
    suffix: str = ".pkl",
) -> BenignSample:
    """A sample written by ``pickle.dump(make(), protocol=protocol)``."""

    def build(out_dir: Path) -> Path:
        return write_pickle(make(), out_dir / f"{name}{suffix}", protocol)

    return BenignSample(name=name, build=build, loader="pickle", requires=requires)


def joblib_sample(
    name: str,
    make: Callable[[], Any],
    compress: Any = 0,
    requires: tuple[str, ...] = (),
    protocol: int | None = None,
) -> BenignSample:
    """A sample written by ``joblib.dump(make(), compress=compress)``."""

    def build(out_dir: Path) -> Path:
        import joblib

        path = out_dir / f"{name}.joblib"
        joblib.dump(make(), path, compress=compress, protocol=protocol)
        return path

    return BenignSample(name=name, build=build, loader="joblib", requires=("joblib", *requires))


def torch_sample(
    name: str,
    make: Callable[[], Any],
    legacy: bool = False,
    pickle_protocol: int = 2,
    requires: tuple[str, ...] = (),
) -> BenignSample:
    """A sample written by ``torch.save`` (zip format, or the legacy stream when ``legacy``)."""

    def build(out_dir: Path) -> Path:
        import torch

        path = out_dir / f"{name}.pt"
        torch.save(
            make(),
            path,
            _use_new_zipfile_serialization=not legacy,
            pickle_protocol=pickle_protocol,
        )
        return path

    return BenignSample(name=name, build=build, loader="torch", requires=("torch", *requires))

