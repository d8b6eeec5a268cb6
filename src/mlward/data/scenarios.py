"""Poisoned datasets built in code, with ground truth: for tests, benchmarks and demos.

Everything here is seeded and offline (scikit-learn's bundled data sets or generated data).
A scenario poisons the training split only; the test split stays clean so a model retrained on
filtered data can be measured for clean accuracy and attack success rate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlward.data.dataset import Dataset
from mlward.errors import OptionsError

# digits_shifted: every digit also moved one pixel each way (16,173 rows), to measure an
# audit on more rows than the bundled sets have.
IMAGE_SETS = ("digits", "digits_shifted")
TABULAR_SETS = ("breast_cancer", "wine", "iris", "synthetic", "imbalanced", "digits_tabular")
TRIGGERS = ("square", "checker", "cross", "random", "line")
POSITIONS = ("bottom-right", "top-left", "top-right", "bottom-left", "centre")


@dataclass(frozen=True, eq=False)
class Scenario:
    """A poisoned training set, its ground truth, and what is needed to measure the attack."""

    name: str
    train: Dataset
    poisoned: NDArray[np.bool_]
    test: Dataset
    # Test rows from other classes with the trigger applied (backdoors only), and the label
    # the attacker wants for them; empty for label flips and clean controls.
    triggered_test: NDArray[np.float64]
    target: int | None
    # The training set before poisoning (same rows and order): the clean baseline.
    clean_train: Dataset


# make_classification's settings per generated data set.
_GENERATED: dict[str, dict[str, Any]] = {
    # Four classes of two overlapping clusters each.
    "synthetic": {
        "n_samples": 1500,
        "n_features": 20,
        "n_informative": 10,
        "n_redundant": 4,
        "n_classes": 4,
        "class_sep": 1.5,
    },
    # Three classes of 60%, 30% and 10% of the rows: random flips out of the big class
    # outnumber those out of the others, and make up a third of the small class.
    "imbalanced": {
        "n_samples": 1500,
        "n_features": 15,
        "n_informative": 8,
        "n_redundant": 2,
        "n_classes": 3,
        "weights": [0.6, 0.3, 0.1],
        "class_sep": 1.5,
    },
}


def load(
    name: str, seed: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.int64], tuple[int, ...] | None]:
    """A bundled or generated data set: features, labels, image shape (None for tabular)."""
    from sklearn import datasets

    if name in {"digits", "digits_tabular"}:
        bunch = datasets.load_digits()
        shape = (8, 8) if name == "digits" else None
        return bunch.data.astype(np.float64), bunch.target.astype(np.int64), shape
    if name == "digits_shifted":
        return _shifted_digits()
    if name == "breast_cancer":
        bunch = datasets.load_breast_cancer()
    elif name == "wine":
        bunch = datasets.load_wine()
    elif name == "iris":
        bunch = datasets.load_iris()
    elif name in _GENERATED:
        # No built-in label noise: the generator's default relabels 1% of rows at random,
        # which the ground truth would count as clean.
        x, y = datasets.make_classification(**_GENERATED[name], flip_y=0.0, random_state=seed)
        return x.astype(np.float64), y.astype(np.int64), None
    else:
        raise OptionsError(
            f"unknown scenario data set {name!r}",
            fix=f"Use one of {', '.join(IMAGE_SETS + TABULAR_SETS)}.",
        )
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64), None


def _shifted_digits() -> tuple[NDArray[np.float64], NDArray[np.int64], tuple[int, ...]]:
    """sklearn's digits and their eight one-pixel shifts (the pixel moved out re-enters on the
    other side, where digits are blank)."""
    from sklearn import datasets

    bunch = datasets.load_digits()
    moved = [
        np.roll(bunch.images, (down, right), axis=(1, 2)).reshape(len(bunch.images), -1)
        for down in (0, -1, 1)
        for right in (0, -1, 1)
    ]
    labels = np.tile(bunch.target, len(moved))
    return np.concatenate(moved).astype(np.float64), labels.astype(np.int64), (8, 8)


def _split(name: str, seed: int, test_fraction: float = 0.3) -> tuple[Dataset, Dataset]:
    from sklearn.model_selection import train_test_split

    x, y, shape = load(name, seed)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return (
        Dataset(np.asarray(x_train), np.asarray(y_train), f"{name}:train", shape),
        Dataset(np.asarray(x_test), np.asarray(y_test), f"{name}:test", shape),
    )


def _pattern(kind: str, size: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """A size x size trigger mask in [0, 1]."""
    if kind == "square":
        return np.ones((size, size))
    if kind == "checker":
        return np.asarray(np.indices((size, size)).sum(axis=0) % 2 == 0, dtype=np.float64)
    if kind == "cross":
        mask = np.zeros((size, size))
        mask[size // 2, :] = 1.0
        mask[:, size // 2] = 1.0
        return mask
    if kind == "random":
        return (rng.random((size, size)) > 0.5).astype(np.float64)
    if kind == "line":
        mask = np.zeros((size, size))
        mask[-1, :] = 1.0
        return mask
    raise OptionsError(f"unknown trigger {kind!r}", fix=f"Use one of {', '.join(TRIGGERS)}.")


def _place(position: str, height: int, width: int, size: int) -> tuple[int, int]:
    places = {
        "top-left": (0, 0),
        "top-right": (0, width - size),
        "bottom-left": (height - size, 0),
        "bottom-right": (height - size, width - size),
        "centre": ((height - size) // 2, (width - size) // 2),
    }
    if position not in places:
        raise OptionsError(
            f"unknown trigger position {position!r}", fix=f"Use one of {', '.join(POSITIONS)}."
        )
    return places[position]


def image_trigger(
    shape: tuple[int, ...],
    *,
    trigger: str = "square",
    size: int = 3,
    position: str = "bottom-right",
    blend: float = 1.0,
    value: float = 16.0,
    seed: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(mask, pattern) as flat rows: a triggered row is ``x * (1 - mask) + pattern * mask``.

    ``blend`` < 1 mixes the pattern into the image instead of replacing the pixels.
    """
    height, width = shape[0], shape[1]
    rng = np.random.default_rng(seed + 7919)
    mask = np.zeros((height, width))
    pattern = np.zeros((height, width))
    if trigger == "blend":
        # A full-image random pattern mixed in at `blend`: no patch at all.
        mask[:] = blend
        pattern[:] = rng.random((height, width)) * value
        return mask.ravel(), pattern.ravel()
    patch = _pattern(trigger, size, rng)
    top, left = _place(position, height, width, size)
    # The whole patch is the trigger: a checker's empty cells are set to 0, not left alone.
    mask[top : top + size, left : left + size] = blend
    pattern[top : top + size, left : left + size] = value * patch
    return mask.ravel(), pattern.ravel()


def apply_trigger(
    x: NDArray[np.float64], mask: NDArray[np.float64], pattern: NDArray[np.float64]
) -> NDArray[np.float64]:
    return np.asarray(x * (1.0 - mask) + pattern * mask, dtype=np.float64)


def _choose(rng: np.random.Generator, candidates: NDArray[np.intp], count: int) -> NDArray[np.intp]:
    count = min(count, len(candidates))
    return np.sort(rng.choice(candidates, size=count, replace=False)).astype(np.intp)


def _backdoor(
    label: str,
    train: Dataset,
    test: Dataset,
    rng: np.random.Generator,
    mask: NDArray[np.float64],
    pattern: NDArray[np.float64],
    target: int,
    rate: float,
    image_shape: tuple[int, ...] | None,
) -> Scenario:
    """Stamp the trigger on ``rate`` of the rows of other classes and relabel them."""
    rows = _choose(rng, np.flatnonzero(train.y != target), round(rate * len(train)))
    x = train.x.copy()
    y = train.y.copy()
    x[rows] = apply_trigger(x[rows], mask, pattern)
    y[rows] = target
    return Scenario(
        label,
        Dataset(x, y, label, image_shape),
        _marked(len(train), rows),
        test,
        apply_trigger(test.x[test.y != target], mask, pattern),
        target,
        train,
    )


def _relabelled(
    label: str, train: Dataset, test: Dataset, rows: NDArray[np.intp], y: NDArray[np.int64]
) -> Scenario:
    """Label poisoning: the features as they were, ``rows`` given the labels in ``y``."""
    return Scenario(
        label,
        Dataset(train.x, y, label, train.image_shape),
        _marked(len(train), rows),
        test,
        np.empty((0, train.x.shape[1])),
        None,
        train,
    )


def _marked(count: int, rows: NDArray[np.intp]) -> NDArray[np.bool_]:
    poisoned = np.zeros(count, dtype=bool)
    poisoned[rows] = True
    return poisoned


def badnets(
    dataset: str = "digits",
    *,
    rate: float = 0.05,
    target: int = 0,
    trigger: str = "square",
    size: int = 3,
    position: str = "bottom-right",
    blend: float = 1.0,
    seed: int = 0,
) -> Scenario:
    """BadNets: a pixel patch stamped on rows of other classes, relabelled to ``target``."""
    train, test = _split(dataset, seed)
    if train.image_shape is None:
        raise OptionsError(f"{dataset} is not an image data set", fix="Use digits.")
    rng = np.random.default_rng(seed)
    mask, pattern = image_trigger(
        train.image_shape, trigger=trigger, size=size, position=position, blend=blend, seed=seed
    )
    label = f"badnets-{dataset}-{trigger}{size}-{position}-b{blend:g}-r{rate:g}-s{seed}"
    return _backdoor(label, train, test, rng, mask, pattern, target, rate, train.image_shape)


def tabular_backdoor(
    dataset: str = "breast_cancer",
    *,
    rate: float = 0.05,
    target: int = 0,
    features: int = 3,
    quantile: float = 1.0,
    seed: int = 0,
) -> Scenario:
    """Fixed values in a few features (each set to its training ``quantile``), relabelled."""
    train, test = _split(dataset, seed)
    rng = np.random.default_rng(seed)
    columns = np.sort(rng.choice(train.x.shape[1], size=features, replace=False))
    if dataset == "digits_tabular":
        # Most digit pixels are nearly constant; pick columns that vary so the trigger is a
        # value the clean data also takes.
        varying = np.flatnonzero(train.x.std(axis=0) > 2.0)
        columns = np.sort(rng.choice(varying, size=features, replace=False))
    values = np.quantile(train.x[:, columns], quantile, axis=0)
    mask = np.zeros(train.x.shape[1])
    mask[columns] = 1.0
    pattern = np.zeros(train.x.shape[1])
    pattern[columns] = values
    label = f"tabular-{dataset}-f{features}-q{quantile:g}-r{rate:g}-s{seed}"
    return _backdoor(label, train, test, rng, mask, pattern, target, rate, None)


def random_flips(dataset: str = "digits", *, rate: float = 0.1, seed: int = 0) -> Scenario:
    """Labels of ``rate`` of the rows changed to another class chosen at random."""
    train, test = _split(dataset, seed)
    rng = np.random.default_rng(seed)
    rows = _choose(rng, np.arange(len(train), dtype=np.intp), round(rate * len(train)))
    classes = int(train.y.max()) + 1
    y = train.y.copy()
    y[rows] = (y[rows] + rng.integers(1, classes, size=len(rows))) % classes
    return _relabelled(f"flips-{dataset}-r{rate:g}-s{seed}", train, test, rows, y)


def targeted_flips(
    dataset: str = "digits",
    *,
    source: int = 3,
    target: int = 8,
    fraction: float = 0.3,
    seed: int = 0,
) -> Scenario:
    """``fraction`` of the rows of class ``source`` relabelled to ``target``."""
    train, test = _split(dataset, seed)
    rng = np.random.default_rng(seed)
    members = np.flatnonzero(train.y == source)
    rows = _choose(rng, members, round(fraction * len(members)))
    y = train.y.copy()
    y[rows] = target
    label = f"targeted-{dataset}-{source}to{target}-f{fraction:g}-s{seed}"
    return _relabelled(label, train, test, rows, y)


def clean(dataset: str = "digits", *, seed: int = 0) -> Scenario:
    """No poison: the control for false positives."""
    train, test = _split(dataset, seed)
    label = f"clean-{dataset}-s{seed}"
    return Scenario(
        label,
        Dataset(train.x, train.y, label, train.image_shape),
        np.zeros(len(train), dtype=bool),
        test,
        np.empty((0, train.x.shape[1])),
        None,
        train,
    )


@dataclass(frozen=True)
class Measurement:
    """How well a set of flagged rows matches a scenario's poison, and what filtering buys."""

    flagged: int
    precision: float
    recall: float
    f1: float
    false_positive_rate: float  # share of clean rows flagged
    attack_success_before: float | None
    attack_success_after: float | None
    # The triggered test rows sent to the target by a victim trained on unpoisoned data: what
    # the "trigger" does with no backdoor at all (a 4x4 blob top right already reads as a 7).
    attack_success_clean: float | None
    clean_accuracy_baseline: float  # victim trained on the unpoisoned training set
    clean_accuracy_after: float  # victim trained on the filtered training set
    # What a perfect filter leaves: victims trained without exactly the poisoned rows. Where a
    # trigger sits at the data's extremes, some victims extrapolate it to the target anyway.
    attack_success_ideal: float | None = None
    # ...and their clean accuracy: how much removing poison alone costs (a tenth of a small
    # set flipped and removed leaves the victims fewer rows to learn from).
    clean_accuracy_ideal: float | None = None


def victim_accuracy(
    train: Dataset, test: Dataset, triggered: NDArray[np.float64], target: int | None, seed: int
) -> tuple[float, float | None]:
    """Train the victim model (a small MLP); its clean accuracy and attack success rate."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64,), max_iter=600, random_state=seed),
    )
    model.fit(train.x, train.y)
    accuracy = float(np.mean(model.predict(test.x) == test.y))
    if target is None or len(triggered) == 0:
        return accuracy, None
    return accuracy, float(np.mean(model.predict(triggered) == target))


def _victims(
    scenario: Scenario, train: Dataset, seeds: tuple[int, ...]
) -> tuple[float, float | None]:
    """Mean clean accuracy and attack success of victims trained from each seed: one network's
    initialisation moves a small test set (wine: 54 rows) by a row or two either way."""
    runs = [
        victim_accuracy(train, scenario.test, scenario.triggered_test, scenario.target, seed)
        for seed in seeds
    ]
    attacks = [attack for _, attack in runs if attack is not None]
    return (
        float(np.mean([accuracy for accuracy, _ in runs])),
        float(np.mean(attacks)) if attacks else None,
    )


@functools.lru_cache(maxsize=4)
def _references(
    scenario: Scenario, seeds: tuple[int, ...]
) -> tuple[float, float | None, float | None, float | None, float | None]:
    """What does not depend on the flagged rows, trained once per scenario however many tools
    are measured on it: the unpoisoned victims' accuracy and ASR, the poisoned victims' ASR,
    and the ASR and accuracy left by removing exactly the poisoned rows (None without
    poison)."""
    base, natural = _victims(scenario, scenario.clean_train, seeds)
    before = _victims(scenario, scenario.train, seeds)[1]
    ideal_accuracy, ideal = None, None
    if scenario.poisoned.any():
        perfect = scenario.train.subset(np.flatnonzero(~scenario.poisoned).astype(np.intp))
        ideal_accuracy, ideal = _victims(scenario, perfect, seeds)
    return base, natural, before, ideal, ideal_accuracy


def measure(
    scenario: Scenario,
    flagged_rows: NDArray[np.intp] | list[int] | tuple[int, ...],
    *,
    retrain: bool = True,
    seeds: tuple[int, ...] = (0,),
    retrain_on: Dataset | None = None,
) -> Measurement:
    """Detection scores of ``flagged_rows``; with ``retrain``, victims trained on the poisoned,
    the unpoisoned and the filtered training sets (averaged over ``seeds``). The filtered set
    is ``retrain_on`` (a tool's own filtered or repaired output), else the training set
    without the flagged rows."""
    flagged = np.zeros(len(scenario.train), dtype=bool)
    flagged[np.asarray(flagged_rows, dtype=np.intp)] = True
    truth = scenario.poisoned
    tp = int((flagged & truth).sum())
    precision = tp / max(int(flagged.sum()), 1)
    recall = tp / int(truth.sum()) if truth.any() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fpr = int((flagged & ~truth).sum()) / max(int((~truth).sum()), 1)
    if not retrain:
        return Measurement(
            int(flagged.sum()), precision, recall, f1, fpr, None, None, None, 0.0, 0.0
        )
    base, natural, before, ideal, ideal_accuracy = _references(scenario, seeds)
    kept = (
        scenario.train.subset(np.flatnonzero(~flagged).astype(np.intp))
        if retrain_on is None
        else retrain_on
    )
    after_accuracy, after = _victims(scenario, kept, seeds)
    return Measurement(
        int(flagged.sum()),
        precision,
        recall,
        f1,
        fpr,
        before,
        after,
        natural,
        base,
        after_accuracy,
        ideal,
        ideal_accuracy,
    )
