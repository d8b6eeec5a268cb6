"""The one interface every detector implements, and the shared view they read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from mlward.data.results import SampleFlag


@dataclass(frozen=True, eq=False)
class AuditInput:
    """What detectors see: raw rows, labels, the feature space to work in, optional test rows."""

    x: NDArray[np.float64]
    y: NDArray[np.int64]
    features: NDArray[np.float64]  # standardised; the space the poison tests work in
    seed: int = 0
    test_x: NDArray[np.float64] | None = None
    # Rows an earlier detector already holds as poison: later ones leave them out of models.
    suspected: frozenset[int] = field(default_factory=frozenset)

    @property
    def labels(self) -> NDArray[np.int64]:
        return np.unique(self.y)


class Detector(Protocol):
    name: str

    def run(self, data: AuditInput) -> list[SampleFlag]: ...


def robust_z(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """How many scaled MADs each value lies above the median (the MAD of a normal is 0.6745σ)."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) / 0.6745
    if mad <= 1e-12:
        spread = float(np.std(values))
        mad = spread if spread > 1e-12 else 1.0
    return np.asarray((values - median) / mad, dtype=np.float64)


def classifier(seed: int) -> object:
    """The small reference model every model-based detector trains: fast, calibrated enough."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, C=1.0, random_state=seed)
