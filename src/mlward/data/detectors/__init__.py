"""Detectors, one per module, all behind ``Detector.run(AuditInput) -> list[SampleFlag]``."""

from __future__ import annotations

from mlward.data.detectors.base import AuditInput, Detector
from mlward.data.detectors.clustering import ActivationClustering
from mlward.data.detectors.duplicates import ConflictingDuplicates
from mlward.data.detectors.label_noise import LabelNoise
from mlward.data.detectors.outliers import Outliers
from mlward.data.detectors.overlap import TrainTestOverlap
from mlward.data.detectors.separation import Separation
from mlward.data.detectors.spectral import SpectralSignatures


def all_detectors() -> list[Detector]:
    """Every detector, in the order they run (fresh instances: some keep per-run details)."""
    return [
        Separation(),
        LabelNoise(),
        SpectralSignatures(),
        ActivationClustering(),
        ConflictingDuplicates(),
        Outliers(),
        TrainTestOverlap(),
    ]


__all__ = ["AuditInput", "Detector", "all_detectors"]
