"""The audit on more rows than the bundled sets have: the kernel reference model is
approximated on large training sets, and triggers are stamped on a sample of the other rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.pipeline import Pipeline

from mlward.data import audit
from mlward.data import scenarios as sc
from mlward.data.dataset import Dataset
from mlward.data.detectors import kernel, separation
from mlward.data.detectors.base import ReferenceModel, choose_model, classifier
from mlward.data.features import standardise
from mlward.data.results import ClassState


def _clusters(rows: int) -> tuple[np.ndarray, np.ndarray]:
    # Three clusters per class: a hyperplane cannot separate them, a kernel can.
    x, y = make_classification(
        n_samples=rows,
        n_features=10,
        n_informative=6,
        n_classes=3,
        n_clusters_per_class=3,
        class_sep=2.0,
        flip_y=0.0,
        random_state=0,
    )
    return standardise(x), y.astype(np.int64)


def test_kernel_model_is_exact_on_few_rows_and_approximated_on_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, y = _clusters(900)
    train, held = slice(0, 600), slice(600, None)
    exact = kernel.KernelModel(0).fit(x[train], y[train])
    assert isinstance(exact.model_, kernel._PairwiseSvm)
    monkeypatch.setattr(kernel, "_EXACT_KERNEL_ROWS", 300)
    approximate = kernel.KernelModel(0).fit(x[train], y[train])
    assert isinstance(approximate.model_, Pipeline)
    assert list(approximate.classes_) == [0, 1, 2]
    proba = approximate.predict_proba(x[held])
    assert proba.shape == (300, 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    # The approximation keeps the kernel's accuracy (within a few rows of 300).
    assert approximate.score(x[held], y[held]) >= exact.score(x[held], y[held]) - 0.03


def test_coupling_recovers_the_distribution_behind_consistent_pairs() -> None:
    p = np.array([[0.6, 0.3, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]])
    pairwise = np.full((2, 4, 4), 0.5)
    for i in range(4):
        for j in range(4):
            if i != j and p[0, i] + p[0, j] > 0:
                pairwise[0, i, j] = p[0, i] / (p[0, i] + p[0, j])
            if i != j:
                pairwise[1, i, j] = p[1, i] / (p[1, i] + p[1, j])
    assert np.allclose(kernel.couple(pairwise), p, atol=1e-9)


def test_the_exact_kernel_model_ranks_flipped_rows_by_pairwise_probabilities() -> None:
    """Four overlapping classes, 10% of the labels flipped at random: out-of-fold, the exact
    kernel model gives most flips little probability and few clean rows (one-vs-rest scores
    calibrated by CalibratedClassifierCV gave 72 flips and 35 clean rows p <= 0.125)."""
    from mlward.data.detectors.label_noise import cross_validated_proba

    scenario = sc.random_flips("synthetic", rate=0.1, seed=400)
    x, y = standardise(scenario.train.x), scenario.train.y
    proba = cross_validated_proba(x, y, 0, reference=ReferenceModel("kernel"))
    assert np.allclose(proba.sum(axis=1), 1.0)
    low = proba[np.arange(len(y)), y] <= 0.125
    assert (low & scenario.poisoned).sum() >= 80
    assert (low & ~scenario.poisoned).sum() <= 20
    # Two classes: the pair's sigmoid alone, oriented towards the right class.
    two = np.isin(y, (0, 1))
    model = kernel.KernelModel(0).fit(x[two], y[two])
    assert model.score(x[two], y[two]) >= 0.8


def test_the_exact_kernel_model_takes_a_class_too_small_to_hold_out() -> None:
    # One row of class 2: no fold can hold it out, so its pairs' sigmoids are fitted on the
    # training rows' own decisions instead of failing.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(41, 3))
    y = np.array([0] * 20 + [1] * 20 + [2], dtype=np.int64)
    x[y == 1] += 3.0
    x[40] += (-3.0, 6.0, 0.0)
    model = kernel.KernelModel(0).fit(x, y)
    proba = model.predict_proba(x)
    assert proba.shape == (41, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert model.score(x[:40], y[:40]) >= 0.9


def test_the_approximated_model_is_regularised_as_the_data_needs() -> None:
    """At C=1 the approximation's logistic regression underfits many rows; its C is chosen on
    held-out rows, and the exact SVM keeps C=1."""
    train = sc.clean("digits_shifted", seed=0).train
    x, y = standardise(train.x[:4000]), train.y[:4000]
    assert kernel.choose_strength(x[:3000], y[:3000], 0) == 1.0
    strength = kernel.choose_strength(x, y, 0)
    assert strength > 1.0
    fit, held = slice(0, 3500), slice(3500, None)
    chosen = kernel.KernelModel(0, strength).fit(x[fit], y[fit]).score(x[held], y[held])
    plain = kernel.KernelModel(0, 1.0).fit(x[fit], y[fit]).score(x[held], y[held])
    assert chosen > plain
    # ...and the detectors' models are built with it.
    built = classifier(0, ReferenceModel("kernel", strength))
    assert isinstance(built, kernel.KernelModel) and built.strength == strength


def test_triggers_are_probed_on_a_seeded_sample_of_the_other_rows() -> None:
    few = np.arange(0, 2 * separation._PROBE_ROWS, 2, dtype=np.intp)[: separation._PROBE_ROWS]
    assert separation._probes(few, 0) is few
    many = np.arange(3, 3 + 3 * separation._PROBE_ROWS, 3, dtype=np.intp)
    probes = separation._probes(many, 0)
    assert len(probes) == separation._PROBE_ROWS
    assert np.all(np.diff(probes) > 0)
    assert np.isin(probes, many).all()
    assert np.array_equal(probes, separation._probes(many, 0))


@pytest.mark.slow
def test_audit_of_many_rows_finds_a_backdoor_with_the_approximated_model() -> None:
    """4,000 rows of shifted digits: the kernel model is chosen and approximated, triggers are
    probed on a sample; every target still holds."""
    scenario = sc.badnets("digits_shifted", rate=0.05, seed=0)
    rows = np.arange(4000)
    data = Dataset(scenario.train.x[rows], scenario.train.y[rows], "shifted", (8, 8))
    model = choose_model(standardise(data.x), data.y, 0)
    assert model.family == "kernel" and model.strength > 1.0
    report = audit.audit(data)
    flagged = np.zeros(len(rows), dtype=bool)
    flagged[list(report.suspicious_rows)] = True
    poisoned = scenario.poisoned[rows]
    f1 = 2 * int((flagged & poisoned).sum()) / int(flagged.sum() + poisoned.sum())
    assert f1 >= 0.9
    assert (flagged & ~poisoned).sum() / (~poisoned).sum() <= 0.02
    verdicts = {c.label: c.state for c in report.classes}
    assert verdicts[scenario.target] is ClassState.POISONED


def test_the_audit_draws_rows_from_its_own_stream_not_the_data_makers() -> None:
    """The flips were picked with ``default_rng(0)``; the model choice's sample (seed 0) must
    not draw those same rows first (it did: 1,132 of its 1,500 rows were flipped, and the
    linear model won at 13% accuracy)."""
    scenario = sc.random_flips("digits_shifted", rate=0.1, seed=0)
    assert choose_model(standardise(scenario.train.x), scenario.train.y, 0).family == "kernel"


def test_the_mixture_model_fits_classes_too_small_for_its_clusters() -> None:
    # Class 2 has 5 rows: too few for a cluster of its own (30 rows at least), so it gets one
    # (regularised); the others, 80 rows each, the two asked for.
    from mlward.data.detectors.mixture import MixtureModel

    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.normal(size=(80, 3)), rng.normal(size=(80, 3)) + 4.0, rng.normal(size=(5, 3)) - 4.0]
    )
    y = np.array([0] * 80 + [1] * 80 + [2] * 5, dtype=np.int64)
    model = MixtureModel(0, clusters=2).fit(x, y)
    assert [d.n_components for d in model.densities_] == [2, 2, 1]
    proba = model.predict_proba(x)
    assert np.allclose(proba.sum(axis=1), 1.0) and model.score(x, y) >= 0.95
