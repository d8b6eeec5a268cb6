"""A user-defined scikit-learn transformer: benign, outside every allowlisted library."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class ClipTransformer(TransformerMixin, BaseEstimator):
    """Clips every feature to the range seen in training, widened by ``margin``."""

    def __init__(self, margin: float = 0.0) -> None:
        self.margin = margin

    def fit(self, X: Any, y: Any = None) -> ClipTransformer:
        X = np.asarray(X, dtype=float)
        self.low_ = X.min(axis=0) - self.margin
        self.high_ = X.max(axis=0) + self.margin
        return self

    def transform(self, X: Any) -> Any:
        return np.clip(np.asarray(X, dtype=float), self.low_, self.high_)
