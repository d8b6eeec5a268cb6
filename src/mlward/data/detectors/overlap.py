"""Training rows that also appear in the test set: leaked evaluation, or planted copies."""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from mlward.data.detectors.base import AuditInput
from mlward.data.results import SampleFlag


def _digests(rows: NDArray[np.float64]) -> list[str]:
    contiguous = np.ascontiguousarray(rows, dtype=np.float64)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in contiguous]


class TrainTestOverlap:
    name = "train-test-overlap"

    def run(self, data: AuditInput) -> list[SampleFlag]:
        if data.test_x is None:
            return []
        test = {d: i for i, d in enumerate(_digests(data.test_x))}
        flags = []
        for row, digest in enumerate(_digests(data.x)):
            if digest in test:
                flags.append(
                    SampleFlag(
                        row,
                        int(data.y[row]),
                        self.name,
                        1.0,
                        f"identical to test row {test[digest]}",
                        counts_as_poison=False,
                    )
                )
        return flags
