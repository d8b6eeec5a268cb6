"""Wrong labels: rows that a cross-validated model and their neighbours both place elsewhere.

Either signal alone flags clean but unusual rows; a flip is flagged only when a model that
never saw the row gives its label little probability AND most of its nearest neighbours
carry another label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlward.data.detectors.base import AuditInput, classifier
from mlward.data.results import SampleFlag

# Probability a held-out model must give the row's own label, at most, to count as disagreeing.
_MAX_OWN_PROBABILITY = 0.1
_NEIGHBOURS = 10
# Share of neighbours with the row's own label, at most.
_MAX_NEIGHBOUR_AGREEMENT = 0.3


def cross_validated_proba(
    features: NDArray[np.float64], y: NDArray[np.int64], seed: int, folds: int = 5
) -> NDArray[np.float64]:
    """Out-of-fold class probabilities, one column per label 0..max(y)."""
    from sklearn.model_selection import StratifiedKFold

    classes = int(y.max()) + 1
    proba = np.zeros((len(y), classes))
    smallest = int(min(c for c in np.bincount(y) if c > 0))
    splitter = StratifiedKFold(
        n_splits=max(2, min(folds, smallest)), shuffle=True, random_state=seed
    )
    for train, held in splitter.split(features, y):
        model: Any = classifier(seed)
        model.fit(features[train], y[train])
        proba[np.ix_(held, model.classes_)] = model.predict_proba(features[held])
    return proba


def neighbour_agreement(
    features: NDArray[np.float64], y: NDArray[np.int64], neighbours: int = _NEIGHBOURS
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Share of each row's nearest neighbours (itself excluded) with its label, and their vote."""
    from sklearn.neighbors import NearestNeighbors

    count = min(neighbours, len(y) - 1)
    index = NearestNeighbors(n_neighbors=count + 1).fit(features)
    _, found = index.kneighbors(features)
    others = found[:, 1:]
    agreement = (y[others] == y[:, None]).mean(axis=1)
    votes = np.array([np.bincount(y[row]).argmax() for row in others], dtype=np.int64)
    return np.asarray(agreement, dtype=np.float64), votes


class LabelNoise:
    name = "label-noise"

    def run(self, data: AuditInput) -> list[SampleFlag]:
        proba = cross_validated_proba(data.features, data.y, data.seed)
        own = proba[np.arange(len(data.y)), data.y]
        agreement, votes = neighbour_agreement(data.features, data.y)
        predicted = proba.argmax(axis=1)
        flags = []
        for row in np.flatnonzero(
            (own <= _MAX_OWN_PROBABILITY) & (agreement <= _MAX_NEIGHBOUR_AGREEMENT)
        ):
            flags.append(
                SampleFlag(
                    int(row),
                    int(data.y[row]),
                    self.name,
                    round(float(1.0 - own[row]), 4),
                    f"labelled {data.y[row]}, but a held-out model gives that label "
                    f"p={own[row]:.2f} (it says {predicted[row]}) and "
                    f"{agreement[row]:.0%} of its {_NEIGHBOURS} nearest neighbours agree "
                    f"(most say {votes[row]})",
                    suggested=int(predicted[row]),
                )
            )
        return flags
