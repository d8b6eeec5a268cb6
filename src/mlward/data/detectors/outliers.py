"""Rows far from everything else in their class: worth a look, not proof of poison."""

from __future__ import annotations

import numpy as np

from mlward.data.detectors.base import AuditInput, robust_z
from mlward.data.results import SampleFlag

_MIN_Z = 6.0


class Outliers:
    name = "outliers"

    def run(self, data: AuditInput) -> list[SampleFlag]:
        from sklearn.neighbors import NearestNeighbors

        flags = []
        for label in data.labels:
            rows = np.flatnonzero(data.y == label)
            if len(rows) < 10:
                continue
            count = min(5, len(rows) - 1)
            distance, _ = (
                NearestNeighbors(n_neighbors=count + 1).fit(data.features[rows]).kneighbors()
            )
            score = distance[:, :count].mean(axis=1)
            z = robust_z(np.log(score + 1e-12))
            for row, zz in zip(rows, z, strict=True):
                if zz >= _MIN_Z:
                    flags.append(
                        SampleFlag(
                            int(row),
                            int(label),
                            self.name,
                            round(float(zz), 3),
                            f"its nearest neighbours in class {label} are {zz:.1f} robust "
                            "deviations farther than usual",
                            counts_as_poison=False,
                        )
                    )
        return flags
