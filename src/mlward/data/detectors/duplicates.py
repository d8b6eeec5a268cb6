"""Exact and near duplicates that carry different labels: one of each pair is wrong."""

from __future__ import annotations

import numpy as np

from mlward.data.detectors.base import AuditInput
from mlward.data.results import SampleFlag

# Near means within this share of the median nearest-neighbour distance.
_NEAR = 0.05


class ConflictingDuplicates:
    name = "duplicates"

    def run(self, data: AuditInput) -> list[SampleFlag]:
        from sklearn.neighbors import NearestNeighbors

        if len(data.y) < 3:
            return []
        distance, found = NearestNeighbors(n_neighbors=2).fit(data.features).kneighbors()
        typical = float(np.median(distance[:, 0])) or 1.0
        flags = []
        for row in range(len(data.y)):
            for d, other in zip(distance[row], found[row], strict=True):
                if d <= _NEAR * typical and data.y[other] != data.y[row]:
                    kind = "exact" if d == 0 else "near"
                    flags.append(
                        SampleFlag(
                            row,
                            int(data.y[row]),
                            self.name,
                            1.0,
                            f"{kind} duplicate of row {other}, which is labelled "
                            f"{data.y[other]} (this row: {data.y[row]})",
                        )
                    )
                    break
        return flags
