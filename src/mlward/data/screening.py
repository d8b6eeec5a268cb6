"""Input-level screening at inference time: does this input carry a trigger?

Both screens are fitted on clean, labelled rows and pick their threshold from a false-rejection
rate on those rows (1% by default); ``score`` then rates single inputs, ``flags`` says which to
hold back. Usable from Python now and from the service later.

* ``Strip`` (Gao et al. 2019): blend the input with random clean rows; a trigger keeps
  dominating, so the predictions stay confident. The score is the Shannon entropy of each
  blended prediction, taken over the class axis, then averaged over the blends (ART 1.20.1
  sums along the wrong axis). Low entropy means a trigger.
* ``MahalanobisScreen`` (Lee et al. 2018, used against backdoors): the penultimate activations
  of the model, found by hook, against class-conditional Gaussians with a shared covariance
  fitted on clean rows. A triggered input is predicted as the target class but its activations
  lie far from that class's clean ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlward.data.dataset import Dataset
from mlward.data.features import model_input, penultimate
from mlward.errors import OptionsError


def _torch() -> Any:
    from mlward.data.backdoor_model import _torch as load

    return load()


def _as_inputs(rows: Dataset | NDArray[np.float64], like: Dataset) -> Any:
    if isinstance(rows, Dataset):
        return model_input(rows)
    x = np.asarray(rows, dtype=np.float64).reshape(-1, like.x.shape[1])
    return model_input(Dataset(x, np.zeros(len(x), dtype=np.int64), image_shape=like.image_shape))


def _check_rate(false_rejection: float) -> None:
    if not 0 < false_rejection < 0.5:
        raise OptionsError(
            f"false_rejection must be between 0 and 0.5, got {false_rejection}",
            fix="Pass the share of clean inputs you accept to hold back, e.g. 0.01.",
        )


class Strip:
    """STRIP with the entropy taken over the class axis of each blended prediction."""

    def __init__(
        self,
        model: Any,
        clean: Dataset,
        *,
        blends: int = 32,
        alpha: float = 0.5,
        false_rejection: float = 0.01,
        seed: int = 0,
    ) -> None:
        _check_rate(false_rejection)
        torch = _torch()
        self.model = model.eval()
        self.like = clean
        self.alpha = alpha
        self.blends = blends
        self.generator = torch.Generator().manual_seed(seed)
        self.pool = model_input(clean)
        entropies = self.score(clean)
        self.threshold = float(np.quantile(entropies, false_rejection))

    def score(self, rows: Dataset | NDArray[np.float64]) -> NDArray[np.float64]:
        """Mean entropy of the blended predictions, per input (low: likely triggered)."""
        torch = _torch()
        inputs = _as_inputs(rows, self.like)
        scores = np.empty(inputs.shape[0])
        with torch.no_grad():
            for i in range(inputs.shape[0]):
                chosen = torch.randint(
                    0, self.pool.shape[0], (self.blends,), generator=self.generator
                )
                blended = self.alpha * inputs[i : i + 1] + (1 - self.alpha) * self.pool[chosen]
                probability = torch.softmax(self.model(blended), dim=1)
                # Entropy of each blended prediction over its classes (dim=1), then the mean.
                entropy = -(probability * torch.log(probability.clamp_min(1e-12))).sum(dim=1)
                scores[i] = float(entropy.mean())
        return scores

    def flags(self, rows: Dataset | NDArray[np.float64]) -> NDArray[np.bool_]:
        return np.asarray(self.score(rows) < self.threshold, dtype=np.bool_)


class MahalanobisScreen:
    """Distance of the penultimate activations from the predicted class's clean ones."""

    def __init__(
        self, model: Any, clean: Dataset, *, false_rejection: float = 0.01, seed: int = 0
    ) -> None:
        _check_rate(false_rejection)
        from sklearn.covariance import LedoitWolf

        self.model = model.eval()
        self.like = clean
        self.classes = max(len(clean.classes), int(clean.y.max()) + 1)
        # Half the clean rows fit the Gaussians, the other half sets the threshold: distances
        # of the rows a fit has seen are smaller than those of new inputs.
        order = np.random.default_rng(seed).permutation(len(clean))
        fit = clean.subset(np.sort(order[: len(clean) // 2]).astype(np.intp))
        calibrate = clean.subset(np.sort(order[len(clean) // 2 :]).astype(np.intp))
        features = penultimate(self.model, model_input(fit), self.classes)
        self.means = np.zeros((self.classes, features.shape[1]))
        centred = np.empty_like(features)
        for label in range(self.classes):
            rows = fit.y == label
            if rows.any():
                self.means[label] = features[rows].mean(axis=0)
                centred[rows] = features[rows] - self.means[label]
        # Shrunk (Ledoit-Wolf): activations often have more dimensions than a sample has
        # rows per class, and an unshrunk inverse makes every new input look far away.
        self.precision = LedoitWolf().fit(centred).precision_
        self.threshold = float(np.quantile(self.score(calibrate), 1 - false_rejection))

    def score(self, rows: Dataset | NDArray[np.float64]) -> NDArray[np.float64]:
        """Squared Mahalanobis distance to the predicted class (high: likely triggered)."""
        torch = _torch()
        inputs = _as_inputs(rows, self.like)
        with torch.no_grad():
            predicted = self.model(inputs).argmax(dim=1).numpy()
        features = penultimate(self.model, inputs, self.classes)
        offset = features - self.means[predicted]
        return np.asarray(
            np.einsum("ij,jk,ik->i", offset, self.precision, offset), dtype=np.float64
        )

    def flags(self, rows: Dataset | NDArray[np.float64]) -> NDArray[np.bool_]:
        return np.asarray(self.score(rows) > self.threshold, dtype=np.bool_)
