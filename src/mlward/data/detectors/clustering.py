"""Activation clustering (Chen et al. 2018), done as the paper describes.

Per class: centre, reduce to a few principal components (the paper's ICA diverges on
rank-deficient features such as constant pixels), split in two, and call the smaller
group poisoned only when the split is real (silhouette) and the group is small. ART's default
clusters raw activations without the per-class reduction and flags by size alone.
"""

from __future__ import annotations

import numpy as np

from mlward.data.detectors.base import AuditInput
from mlward.data.results import SampleFlag

_COMPONENTS = 10
_MAX_SHARE = 0.45
_MIN_SILHOUETTE = 0.2


class ActivationClustering:
    name = "activation-clustering"

    def run(self, data: AuditInput) -> list[SampleFlag]:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score

        flags = []
        for label in data.labels:
            rows = np.flatnonzero(data.y == label)
            if len(rows) < 20:
                continue
            centred = data.features[rows] - data.features[rows].mean(axis=0)
            components = min(_COMPONENTS, centred.shape[1], len(rows) - 1)
            reduced = PCA(n_components=components, random_state=data.seed).fit_transform(centred)
            groups = KMeans(2, n_init=10, random_state=data.seed).fit_predict(reduced)
            sizes = np.bincount(groups, minlength=2)
            small = int(np.argmin(sizes))
            share = sizes[small] / len(rows)
            silhouette = float(silhouette_score(reduced, groups))
            if share > _MAX_SHARE or silhouette < _MIN_SILHOUETTE or sizes[small] < 3:
                continue
            for row in rows[groups == small]:
                flags.append(
                    SampleFlag(
                        int(row),
                        int(label),
                        self.name,
                        round(silhouette, 3),
                        f"in the smaller of two clusters of class {label} "
                        f"({sizes[small]} of {len(rows)} rows, silhouette {silhouette:.2f})",
                        counts_as_poison=False,
                    )
                )
        return flags
