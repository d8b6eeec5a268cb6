"""Benign model artifacts built with the real producer libraries.

Every sample here is something a mainstream library writes when a user saves a model, an array, a
data frame or a checkpoint the ordinary way. The default-deny scanner must call each of them
clean: every global their pickles import is on an allowlist in
``src/mlward/scanning/allowlists/``. ``USER_CLASS_SAMPLES`` are benign too, but they pickle a class
defined in this test package, outside every allowlist: the scanner must name that class and offer
the ``--allow`` fix. ``UNSAFE_SAMPLES`` are genuine too (pandas data backed by pyarrow arrays), but
they import a global that review found unsafe to load (an allowlist file's ``[[unsafe]]`` table):
the scanner must keep them suspicious, name only that global and say why.

Samples are built lazily (``sample.build(out_dir)``), from tiny data and fixed seeds, so building
the whole corpus takes seconds and gives the same bytes on every run of the same library versions,
except where the producer itself writes run-specific values: legacy-format torch files (and
pickle.dumps of tensors, which embeds one) key storages by memory address, sklearn's text
vectorizers store id(stop_words), and GridSearchCV stores fit timings.

``python scripts/gen_allowlists.py --check`` builds this corpus, records every global its pickles
import and fails if one is not allowlisted.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ALL_BENIGN",
    "UNSAFE_SAMPLES",
    "USER_CLASS_SAMPLES",
    "BenignSample",
    "build_all",
    "load_artifact",
    "missing_requirements",
]

LOADERS = ("pickle", "torch", "joblib", "numpy")


@dataclass(frozen=True)
class BenignSample:
    """One benign artifact: how to build it, which real loader reads it, what it needs."""

    name: str
    build: Callable[[Path], Path]  # (out_dir) -> path of the artifact written
    loader: str  # "pickle" | "torch" | "joblib" | "numpy"
    requires: tuple[str, ...] = ()  # import names needed (pytest.importorskip them)
    # Only for USER_CLASS_SAMPLES: the "module.qualname" of each class outside every allowlist
    # that the pickle imports (the scanner must name it; allowing it makes the artifact clean).
    user_globals: tuple[str, ...] = ()
    # Only for UNSAFE_SAMPLES: the globals reviewed as unsafe (never allowlisted) it imports.
    unsafe_globals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.loader not in LOADERS:
            raise ValueError(f"{self.name}: unknown loader {self.loader!r}; use one of {LOADERS}")


def missing_requirements(sample: BenignSample) -> tuple[str, ...]:
    """The import names in ``sample.requires`` that this environment cannot import."""
    missing = []
    for name in sample.requires:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return tuple(missing)


def load_artifact(loader: str, path: Path) -> Any:
    """Load ``path`` with the real loader (only for artifacts this package built itself)."""
    if loader == "pickle":
        with open(path, "rb") as fh:
            return pickle.load(fh)
    if loader == "torch":
        import torch

        return torch.load(path, map_location="cpu", weights_only=False)
    if loader == "joblib":
        import joblib

        return joblib.load(path)
    if loader == "numpy":
        import numpy as np

        loaded = np.load(path, allow_pickle=True)
        if hasattr(loaded, "files"):  # NpzFile: read every member, then close
            with loaded:
                return {name: loaded[name] for name in loaded.files}
        return loaded
    raise ValueError(f"unknown loader {loader!r}")


def _collect() -> tuple[
    tuple[BenignSample, ...], tuple[BenignSample, ...], tuple[BenignSample, ...]
]:
    from . import _boosting, _numpy, _pandas, _pyarrow, _scipy, _sklearn, _stdlib, _torch, _user

    benign: list[BenignSample] = []
    for module in (_stdlib, _numpy, _torch, _sklearn, _scipy, _pandas, _boosting):
        benign.extend(module.samples())
    benign.extend(_pyarrow.benign_samples())
    user = tuple(_user.samples())
    unsafe = tuple(_pyarrow.unsafe_samples())
    names = [s.name for s in (*benign, *user, *unsafe)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"duplicate corpus sample names: {duplicates}")
    return tuple(benign), user, unsafe


ALL_BENIGN, USER_CLASS_SAMPLES, UNSAFE_SAMPLES = _collect()


def build_all(
    out_dir: Path, samples: tuple[BenignSample, ...] | None = None
) -> dict[str, Path]:
    """Build every sample whose requirements import into ``out_dir``; name -> artifact path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    everything = ALL_BENIGN + USER_CLASS_SAMPLES + UNSAFE_SAMPLES
    for sample in everything if samples is None else samples:
        if missing_requirements(sample):
            continue
        built[sample.name] = sample.build(out_dir)
    return built
