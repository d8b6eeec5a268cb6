"""Spectral signatures (Tran et al. 2018), centred per class as the method requires.

ART scores rows by their projection on the top singular vector of the *uncentred* class
features, which mostly measures distance from the origin. Here each class is centred first, so
the top direction is the one along which the class varies most: where a poisoned minority
separates from the rest. The cut is adaptive (a robust z-score), not a guessed poison rate.
"""

from __future__ import annotations

import numpy as np

from mlward.data.detectors.base import AuditInput, robust_z
from mlward.data.results import SampleFlag

_MIN_Z = 5.0


class SpectralSignatures:
    name = "spectral"

    def run(self, data: AuditInput) -> list[SampleFlag]:
        flags = []
        for label in data.labels:
            rows = np.flatnonzero(data.y == label)
            if len(rows) < 10:
                continue
            centred = data.features[rows] - data.features[rows].mean(axis=0)
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            projection = centred @ vt[0]
            score = projection**2
            # The robust z of the signed projection, both sides: squared scores are heavy
            # tailed, so a z on them flags the tail of any Gaussian class.
            z = np.abs(robust_z(projection))
            for row, s, zz in zip(rows, score, z, strict=True):
                if zz >= _MIN_Z:
                    flags.append(
                        SampleFlag(
                            int(row),
                            int(label),
                            self.name,
                            round(float(zz), 3),
                            f"projection on class {label}'s top centred direction is "
                            f"{s:.1f}, {zz:.1f} robust deviations above the class median",
                            counts_as_poison=False,
                        )
                    )
        return flags
