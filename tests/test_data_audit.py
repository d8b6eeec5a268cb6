"""Dataset audit: acceptance scenarios, held-out variations, and the detectors' contracts.

Scenarios are generated in code (scikit-learn's bundled data), seeded; the thresholds are the
issue's acceptance figures. Held-out cases use seeds, triggers, positions, blends, rates and
data sets the detectors were not tuned on (tuning used seeds 0-2, the 3x3 square trigger).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification

from mlward.api import audit_data
from mlward.data import audit as audit_module
from mlward.data import scenarios as sc
from mlward.data.dataset import Dataset
from mlward.data.detectors.base import AuditInput, ReferenceModel, choose_model
from mlward.data.detectors.label_noise import LabelNoise, _Pair, _wins
from mlward.data.detectors.separation import Separation, fixed_trigger, shared_values
from mlward.data.detectors.spectral import SpectralSignatures
from mlward.data.features import standardise
from mlward.data.results import ClassState

BACKDOORS = {
    "badnets-5%": lambda: sc.badnets(rate=0.05),
    "badnets-10%": lambda: sc.badnets(rate=0.10),
    "tabular-5%": lambda: sc.tabular_backdoor("breast_cancer", rate=0.05),
}
FLIPS = {
    "random-10%": lambda: sc.random_flips(rate=0.10),
    "targeted-30%": lambda: sc.targeted_flips(source=3, target=8, fraction=0.3),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BACKDOORS))
def test_backdoor_acceptance(name: str) -> None:
    scenario = BACKDOORS[name]()
    report = audit_data(scenario.train)
    kept = audit_module.filtered(scenario.train, report)
    m = sc.measure(scenario, report.suspicious_rows, retrain_on=kept)
    assert m.f1 >= 0.9, m
    assert m.attack_success_before is not None and m.attack_success_before > 0.5, m
    assert m.attack_success_after is not None and m.attack_success_after <= 0.05, m
    assert m.clean_accuracy_baseline - m.clean_accuracy_after <= 0.01, m
    poisoned = [c.label for c in report.classes if c.state is ClassState.POISONED]
    assert poisoned == [scenario.target]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FLIPS))
def test_label_flip_acceptance(name: str) -> None:
    scenario = FLIPS[name]()
    report = audit_data(scenario.train)
    m = sc.measure(
        scenario, report.suspicious_rows, retrain_on=audit_module.filtered(scenario.train, report)
    )
    assert m.f1 >= 0.8, m
    assert m.clean_accuracy_baseline - m.clean_accuracy_after <= 0.01, m


def test_targeted_flip_names_the_class() -> None:
    scenario = sc.targeted_flips(source=3, target=8, fraction=0.3)
    report = audit_data(scenario.train)
    poisoned = {c.label: c.reason for c in report.classes if c.state is ClassState.POISONED}
    assert list(poisoned) == [8]
    assert "class 3" in poisoned[8]


@pytest.mark.parametrize("dataset", ["digits", "breast_cancer", "wine"])
def test_clean_control_flags_at_most_two_percent(dataset: str) -> None:
    scenario = sc.clean(dataset)
    report = audit_data(scenario.train)
    assert len(report.suspicious_rows) <= 0.02 * len(scenario.train)
    assert not any(c.state is ClassState.POISONED for c in report.classes)


def test_filter_keeps_an_isolated_boundary_row_for_review() -> None:
    # Clean wine, seed 101: one row whose neighbours and a held-out model say another class is
    # a real boundary row; without it retrained victims lose 3.1 points of accuracy.
    scenario = sc.clean("wine", seed=101)
    report = audit_data(scenario.train)
    # Listed for review, not held as poison: the data set is clean.
    assert report.review_rows and report.suspicious_rows == ()
    assert not report.poisoned and report.estimated_poison_rate == 0.0
    assert report.removed_rows == ()
    assert len(audit_module.filtered(scenario.train, report)) == len(scenario.train)
    dropped = audit_module.filtered(scenario.train, report, drop_review=True)
    assert len(dropped) == len(scenario.train) - len(report.review_rows)
    m = sc.measure(
        scenario, report.suspicious_rows, retrain_on=audit_module.filtered(scenario.train, report)
    )
    assert m.clean_accuracy_baseline - m.clean_accuracy_after <= 0.01, m


@pytest.mark.slow
def test_flips_across_most_classes_are_all_held_as_poison() -> None:
    # Random flips leave a tenth of every class mislabelled. Seed 403: the 7 flips found in
    # breast_cancer's larger class (242 rows) are no more than natural label noise leaves in a
    # class that size, but the other class shows the labels were flipped across the board, so
    # they are held as poison too, not kept for review.
    scenario = sc.random_flips("breast_cancer", rate=0.1, seed=403)
    report = audit_data(scenario.train)
    assert report.review_rows == ()
    assert report.removed_rows == report.suspicious_rows
    held = np.zeros(len(scenario.train), dtype=bool)
    held[list(report.suspicious_rows)] = True
    quieter = scenario.poisoned & (scenario.train.y == 1)
    assert int((held & quieter).sum()) >= 7


def test_a_few_flips_over_quiet_classes_are_more_than_natural_noise() -> None:
    # Wine with 3% random flips, seed 700: four flips, one or two per class, under every
    # class's floor; but together they are 3% of those classes' rows, more than natural label
    # errors leave (clean wine: none at all), so none is kept back for review.
    scenario = sc.random_flips("wine", rate=0.03, seed=700)
    report = audit_data(scenario.train)
    assert report.review_rows == ()
    assert set(report.suspicious_rows) == set(np.flatnonzero(scenario.poisoned).tolist())


def test_scattered_neighbours_do_not_make_a_clean_row_look_mislabelled() -> None:
    # Ten overlapping classes in 64 features, 20 informative: the reference model is right
    # about half the time, and with ten classes a third of the rows have no neighbour sharing
    # their label by chance alone. No agreement was enough before: 6.4% of these clean rows
    # were flagged.
    x, y = make_classification(
        n_samples=2000,
        n_features=64,
        n_informative=20,
        n_classes=10,
        flip_y=0.0,
        random_state=0,
    )
    report = audit_data(Dataset(x.astype(np.float64), y.astype(np.int64), "mixed", None))
    assert len(report.suspicious_rows) <= 0.02 * len(y)


@pytest.mark.slow
@pytest.mark.parametrize(
    "factory",
    [
        # A random 4x4 blob top right reads as a 7 to victims that never saw poison (ASR 0.31);
        # wine's and breast_cancer's triggers sit at features' extremes that lean to the target
        # (breast_cancer seed 402: ASR 0.73 without any poison).
        lambda: sc.badnets(
            rate=0.03, seed=100, trigger="random", size=4, position="top-right", target=7
        ),
        lambda: sc.tabular_backdoor("wine", seed=100, rate=0.08),
        lambda: sc.tabular_backdoor("breast_cancer", rate=0.05, seed=402, target=0),
        # Three of iris's four features fixed; petal length alone still tells the class.
        lambda: sc.tabular_backdoor("iris", rate=0.07, seed=400, target=1),
    ],
    ids=["random4-top-right", "wine", "breast_cancer", "iris"],
)
def test_repaired_dataset_unlearns_a_trigger_that_pulls_by_itself(
    factory: Callable[[], sc.Scenario],
) -> None:
    scenario = factory()
    report = audit_data(scenario.train)
    restored = dict(report.restored_labels)
    assert restored and set(restored) <= set(np.flatnonzero(scenario.poisoned).tolist())
    assert scenario.target not in restored.values()
    right = sum(scenario.clean_train.y[row] == label for row, label in restored.items())
    assert right >= 0.9 * len(restored)
    # Three victims: one network's initialisation moves wine's 54 test rows by a row or two.
    filtered, repaired = (
        sc.measure(scenario, report.suspicious_rows, retrain_on=kept, seeds=(0, 1, 2))
        for kept in (
            audit_module.filtered(scenario.train, report),
            audit_module.repaired(scenario.train, report),
        )
    )
    # Removing even exactly the poisoned rows leaves the trigger's own pull.
    assert filtered.attack_success_after is not None and filtered.attack_success_after > 0.1
    assert repaired.attack_success_after is not None and repaired.attack_success_after <= 0.05
    assert repaired.clean_accuracy_baseline - repaired.clean_accuracy_after <= 0.01


def test_carriers_are_removed_where_what_the_trigger_leaves_cannot_tell_the_class() -> None:
    # Iris, seed 401: the trigger sets three of four features to their maxima, virginica's own
    # look, and leaves sepal width, which tells 53% of the rows' classes (whole rows: 96%).
    # Relabelled by it the carriers cost victims 5.9 points.
    scenario = sc.tabular_backdoor("iris", rate=0.07, seed=401, target=2)
    report = audit_data(scenario.train)
    assert set(report.suspicious_rows) >= set(np.flatnonzero(scenario.poisoned).tolist())
    assert report.restored_labels == ()
    assert len(audit_module.repaired(scenario.train, report)) == len(
        audit_module.filtered(scenario.train, report)
    )


HELD_OUT_BACKDOORS = [
    lambda: sc.badnets(rate=0.05, seed=100, target=4),
    lambda: sc.badnets(rate=0.10, seed=101, trigger="checker", position="top-left"),
    lambda: sc.badnets(rate=0.08, seed=102, trigger="blend", blend=0.2, target=5),
    lambda: sc.badnets(rate=0.05, seed=103, trigger="cross", position="centre", target=3),
    lambda: sc.tabular_backdoor("wine", seed=100, rate=0.08),
    lambda: sc.tabular_backdoor("breast_cancer", seed=101, target=1),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(HELD_OUT_BACKDOORS)))
def test_held_out_backdoors(case: int) -> None:
    scenario = HELD_OUT_BACKDOORS[case]()
    report = audit_data(scenario.train)
    m = sc.measure(scenario, list(report.suspicious_rows), retrain=False)
    assert m.f1 >= 0.9, (scenario.name, m)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [100, 101])
def test_held_out_flips_and_clean(seed: int) -> None:
    flips = sc.random_flips(seed=seed)
    m = sc.measure(flips, list(audit_data(flips.train).suspicious_rows), retrain=False)
    assert m.f1 >= 0.8, (flips.name, m)
    clean = sc.clean(seed=seed)
    assert len(audit_data(clean.train).suspicious_rows) <= 0.02 * len(clean.train)


def _input(scenario: sc.Scenario) -> AuditInput:
    return AuditInput(scenario.train.x, scenario.train.y, standardise(scenario.train.x))


def test_separation_finds_trigger_group_and_only_it() -> None:
    scenario = sc.badnets(rate=0.05, seed=1)
    flags = Separation().run(_input(scenario))
    rows = {f.row for f in flags}
    assert rows == set(np.flatnonzero(scenario.poisoned))
    assert all("trigger" in f.reason for f in flags)


def test_label_noise_flags_random_flips_with_reasons() -> None:
    scenario = sc.random_flips(rate=0.1, seed=1)
    flags = LabelNoise().run(_input(scenario))
    m = sc.measure(scenario, [f.row for f in flags], retrain=False)
    assert m.f1 >= 0.85
    flag = flags[0]
    assert flag.suggested is not None and flag.suggested != flag.label


def test_flips_among_their_true_class_are_asked_again_without_the_flips_found() -> None:
    """Digits, 10% flipped (seed 400): a model trained on the flips gives some of them
    p=0.12-0.37 although none of their neighbours shares the label. Asked again without the
    flips found first, 117 of the 126 flips are flagged (110 before), and the same 7 clean
    rows."""
    scenario = sc.random_flips(rate=0.1, seed=400)
    rows = {f.row for f in LabelNoise().run(_input(scenario))}
    flips = set(np.flatnonzero(scenario.poisoned).tolist())
    assert len(rows & flips) >= 116
    assert len(rows - flips) <= 7
    assert {280, 359, 386, 657, 960, 1146, 1216} <= rows


def test_spectral_is_centred() -> None:
    # A class shifted far from the origin: an uncentred score would rank rows by their norm,
    # flagging the ones farthest out; centred, a tight class with no minority flags nothing.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) + 100.0
    y = np.zeros(200, dtype=np.int64)
    flags = SpectralSignatures().run(AuditInput(x, y, x))
    assert flags == []
    x[:10, 0] += 8.0  # a minority offset along one direction
    flags = SpectralSignatures().run(AuditInput(x, y, x))
    assert {f.row for f in flags} == set(range(10))


def test_reference_model_family_follows_the_shape_of_the_classes() -> None:
    # make_classification's classes are pairs of elliptical clusters at hypercube corners: a
    # hyperplane gets about a third wrong, an RBF SVM about a tenth, a Gaussian mixture per
    # class 1%. Digits are close to linearly separable. Concentric shells (Gaussian quantiles)
    # are neither a hyperplane's nor one Gaussian per class's: the kernel model.
    from sklearn.datasets import make_gaussian_quantiles

    synthetic = sc.clean("synthetic", seed=0).train
    chosen = choose_model(standardise(synthetic.x), synthetic.y, 0)
    assert chosen.family == "mixture" and chosen.clusters >= 2
    digits = sc.clean("digits", seed=0).train
    assert choose_model(standardise(digits.x), digits.y, 0).family == "linear"
    x, y = make_gaussian_quantiles(n_samples=600, n_features=4, n_classes=3, random_state=0)
    assert choose_model(standardise(x), y.astype(np.int64), 0).family == "kernel"


def test_random_flips_among_elliptical_clusters() -> None:
    """make_classification, 10% random flips (seed 400): the mixture model gives most flips
    p <= 0.05, and Euclidean neighbours, blind to the clusters' shapes, need not disagree as
    much. The kernel model with neighbours required to disagree found 68 rows (F1 0.74)."""
    scenario = sc.random_flips("synthetic", rate=0.1, seed=400)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.f1 >= 0.9 and m.false_positive_rate <= 0.01, m


@pytest.mark.slow
def test_fixed_value_trigger_in_overlapping_classes() -> None:
    # k-means splits this class along its natural clusters, not the poison: the rows sharing
    # exact values in four features are the candidate that transfers.
    scenario = sc.tabular_backdoor("synthetic", seed=0, features=4, target=2)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.recall == 1.0 and m.f1 >= 0.85, m


def test_shared_values_ignore_a_class_without_a_conjunction() -> None:
    # Benign tumours share zeros (concavity) with each other: a group, but not a foreign one.
    clean = sc.clean("breast_cancer", seed=0).train
    x = standardise(clean.x)
    data = AuditInput(clean.x, clean.y, x)
    for label in (0, 1):
        rows = np.flatnonzero(clean.y == label)
        others = np.flatnonzero(clean.y != label)
        for group in shared_values(x, rows, others):
            columns = ~fixed_trigger(x, group, others, rows).fixed
            assert Separation._foreign_share(data, group, columns) < 0.5


def test_trigger_inside_the_data_range() -> None:
    # Three pixels set to their 95th percentile: common values one by one, a conjunction no
    # other class holds; the rows sharing it are the candidate, and its values count as fixed.
    scenario = sc.tabular_backdoor("digits_tabular", seed=0, quantile=0.95, target=4)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.recall == 1.0 and m.f1 >= 0.9, m


def test_blend_second_pass_leaves_no_carrier_behind() -> None:
    # A 0.2 blend over the whole image: rows whose blank pixels were not blank carry the
    # pattern but not its fixed values; the refined additive pattern catches them.
    scenario = sc.badnets(rate=0.08, seed=0, trigger="blend", blend=0.2, target=5)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.recall == 1.0 and m.false_positive_rate <= 0.01, m


def test_few_classes_take_the_kernel_model_from_a_smaller_gain() -> None:
    """Iris, 10% random flips (seed 401): an RBF SVM reads the noisy labels 7 points better
    than a linear model, under the 10-point bar for many classes; with three classes the
    kernel model is chosen, and 7 of the 10 flips are found with no clean row (the linear
    model: 6, and one clean row)."""
    scenario = sc.random_flips("iris", rate=0.1, seed=401)
    features = standardise(scenario.train.x)
    assert choose_model(features, scenario.train.y, 0).family == "kernel"
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.f1 >= 0.8 and m.false_positive_rate == 0.0, m


def test_random_flips_on_two_classes() -> None:
    scenario = sc.random_flips("breast_cancer", seed=0)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.f1 >= 0.85 and m.false_positive_rate <= 0.01, m


def _reference_input(scenario: sc.Scenario, model: ReferenceModel | None = None) -> AuditInput:
    """The audit's view of the scenario, with the model it chooses unless ``model`` is given."""
    features = standardise(scenario.train.x)
    chosen = choose_model(features, scenario.train.y, 0) if model is None else model
    return AuditInput(scenario.train.x, scenario.train.y, features, model=chosen)


def test_label_noise_natural_confusion_is_not_a_targeted_flip() -> None:
    # Held out: 0s flipped to 3s. Seven clean 8s written like 1s also lean towards 1, far more
    # than the usual pair, but they sit on the boundary between the classes, not inside 1.
    scenario = sc.targeted_flips(seed=100, source=0, target=3)
    flags = LabelNoise().run(_input(scenario))
    targeted = [f for f in flags if "targeted" in f.reason]
    assert targeted and {(f.label, f.suggested) for f in targeted} == {(3, 0)}


def test_label_noise_quiet_where_classes_overlap() -> None:
    # make_classification's clusters overlap: rows in a region that three classes share are
    # not mislabelled (held out: the detector was not tuned on these seeds). The audit reads
    # them with the mixture model (seed 204: 1 row flagged). Read by the kernel model, rows of
    # one class inside another's cluster are listed (seed 204: 20 rows, 1.9%; with
    # one-vs-rest probabilities, which also missed a third of the random flips, 1.0%).
    for seed in (203, 204):
        scenario = sc.clean("synthetic", seed=seed)
        flags = LabelNoise().run(_reference_input(scenario, ReferenceModel("kernel")))
        assert len({f.row for f in flags}) <= 0.02 * len(scenario.train)
        assert len(audit_data(scenario.train).suspicious_rows) <= 0.01 * len(scenario.train)


def test_label_noise_targeted_flips_on_three_classes() -> None:
    # Wine: the reverse pair (real 0s leaning to 1) is the only other busy pair; it must not
    # hide the flip.
    scenario = sc.targeted_flips("wine", seed=200, source=2, target=0)
    flags = LabelNoise().run(_reference_input(scenario))
    m = sc.measure(scenario, [f.row for f in flags], retrain=False)
    assert m.f1 >= 0.8
    assert any("targeted" in f.reason for f in flags)


def test_label_noise_targeted_flips_between_overlapping_classes() -> None:
    # Iris, 10 of 35 virginica labelled versicolor: the boundary they pull leaves 8 real
    # virginica leaning to versicolor against 5 flips leaning back. Taking the busier side
    # flagged 19 of the 25 rows still labelled virginica (20% of the clean rows); a side whose
    # suspects would be half its class is no targeted flip, and the flips' side takes over.
    for seed in (602, 605):
        scenario = sc.targeted_flips("iris", seed=seed, source=2, target=1)
        flags = LabelNoise().run(_reference_input(scenario))
        m = sc.measure(scenario, [f.row for f in flags], retrain=False)
        assert m.false_positive_rate <= 0.025 and m.f1 >= 0.8, (seed, m)
        assert {(f.label, f.suggested) for f in flags if "targeted" in f.reason} == {(1, 2)}


def test_label_noise_the_deeper_side_of_a_pair_holds_the_flips() -> None:
    # Iris seed 404: 7 real virginica lean to versicolor against 5 flips leaning back, and the
    # busier side's 12 suspects are under half its class, so only where the leaning rows sit
    # tells the sides apart (flips 90% among virginica, the leaning virginica 70% among
    # versicolor). Taking the busier side flagged 12 clean rows, 13% of them.
    scenario = sc.targeted_flips("iris", seed=404, source=2, target=1)
    flags = LabelNoise().run(_reference_input(scenario))
    m = sc.measure(scenario, [f.row for f in flags], retrain=False)
    assert m.false_positive_rate <= 0.02 and m.precision >= 0.8, m
    assert {(f.label, f.suggested) for f in flags if "targeted" in f.reason} == {(1, 2)}


def test_a_side_that_would_outnumber_its_class_holds_no_flips() -> None:
    def side(depth: float, count: int, outnumbered: bool) -> _Pair:
        return _Pair(count, 5, 0.5, 1e-4, depth, depth, (), outnumbered)

    flips, pulled = side(0.9, 5, False), side(0.95, 8, True)
    assert _wins(flips, pulled) and not _wins(pulled, flips)  # the deeper side is outnumbered
    # Both valid: the deeper side wins however many rows lean on the other.
    assert _wins(side(0.9, 5, False), side(0.7, 8, False))
    assert not _wins(side(0.7, 8, False), side(0.9, 5, False))
    # The other side does not lean like flips: the busier side of the raw counts wins.
    assert _wins(side(0.9, 5, False), None)
    # A crowded side whose label does not run through the source class never wins.
    edge = replace(side(0.7, 30, False), pervasive=False)
    assert not _wins(edge, None) and not _wins(edge, side(0.6, 5, False))


def test_overlapping_clusters_are_no_targeted_flips() -> None:
    # Clean make_classification, seed 606, read by the kernel model (the audit's mixture
    # model sees no leaning pair there): one cluster of class 2 overlaps one of class 3, and
    # 30 rows of 2 lean to 3 against 6 for the usual pair, their neighbours 70% in class 3:
    # enough for a crowded pair, and 4.2% of the clean rows were flagged as targeted flips.
    # Only 71% of class 3's rows have a 2 among their neighbours; flipping a third of a class
    # leaves one beside nearly every row of it.
    scenario = sc.clean("synthetic", seed=606)
    flags = LabelNoise().run(_reference_input(scenario, ReferenceModel("kernel")))
    assert not any("targeted" in f.reason for f in flags)
    assert len({f.row for f in flags}) <= 0.02 * len(scenario.train)
    report = audit_data(scenario.train)
    assert len(report.suspicious_rows) <= 0.02 * report.rows
    assert not any(c.state is ClassState.POISONED for c in report.classes)


def test_label_noise_flips_that_did_not_lean_do_not_hide_the_others() -> None:
    # Wine, 10 rows of class 2 labelled 0 (seed 401) and iris, 10 setosa labelled virginica
    # (seed 606): the flips that lean sit among the ones that do not, which carry their label,
    # so their neighbours looked only 60-70% of the source class and no flip was found.
    for dataset, seed, source, target in (("wine", 401, 2, 0), ("iris", 606, 0, 2)):
        scenario = sc.targeted_flips(dataset, seed=seed, source=source, target=target)
        flags = LabelNoise().run(_reference_input(scenario))
        m = sc.measure(scenario, [f.row for f in flags], retrain=False)
        assert m.f1 >= 0.9 and m.false_positive_rate <= 0.02, (dataset, m)


def test_label_noise_suggests_the_class_of_the_pass_that_found_the_row() -> None:
    # breast_cancer 5%, seed 302: row 127 is found by the second pass (p=0.06 once the first
    # flips are left out) while the first pass still predicted its own label.
    scenario = sc.tabular_backdoor("breast_cancer", rate=0.05, seed=302, target=0)
    flags = [f for f in audit_data(scenario.train).flags if f.detector == "label-noise"]
    assert any(f.row == 127 for f in flags)
    for flag in flags:
        assert flag.suggested is not None and flag.suggested != flag.label
        assert f"(it says {flag.suggested})" in flag.reason


def test_label_noise_second_pass_on_three_classes() -> None:
    # Wine, 12 random flips: the flips left after the first pass drag the few boundaries, so
    # two of them keep p=0.17-0.18 against a bound of 0.167 (F1 0.737 with one pass).
    scenario = sc.random_flips("wine", rate=0.1, seed=402)
    flags = LabelNoise().run(_reference_input(scenario))
    m = sc.measure(scenario, [f.row for f in flags], retrain=False)
    assert m.f1 >= 0.8 and m.false_positive_rate == 0.0, m


def test_stamping_half_the_features_is_no_trigger() -> None:
    # Iris has four features: rows of one class sharing two or three exact measurements move
    # every other row there when stamped, and the rest cannot show where they belong.
    scenario = sc.random_flips("iris", rate=0.1, seed=404)
    report = audit_data(scenario.train)
    assert not [f for f in report.flags if f.detector == "separation"]
    # A real trigger there lies at the edge of the data's range and is still found.
    backdoor = sc.tabular_backdoor("iris", rate=0.07, seed=206, target=2)
    m = sc.measure(backdoor, list(audit_data(backdoor.train).suspicious_rows), retrain=False)
    assert m.recall == 1.0 and m.f1 >= 0.9, m


def test_random_flips_on_imbalanced_classes_are_no_targeted_flips() -> None:
    # Classes of 60/30/10%: random flips out of the big class outnumber the others, so its
    # pairs lean most. Counted against the other pairs per row of their source class, they
    # are no targeted flips; averaged per pair, 70 clean rows of the middle class were
    # flagged (8% of the clean rows).
    scenario = sc.random_flips("imbalanced", rate=0.1, seed=700)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.false_positive_rate <= 0.02 and m.precision >= 0.85, m


def test_targeted_flips_on_two_classes() -> None:
    # 30% of benign tumours labelled malignant: with two classes the only other pair is the
    # reverse, which leans a quarter as much per row of its source. No targeted-flip test ran
    # on two classes before: F1 0.23.
    scenario = sc.targeted_flips("breast_cancer", seed=700, source=1, target=0)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.f1 >= 0.9 and m.false_positive_rate <= 0.02, m


def test_label_noise_passes_again_while_it_finds_flips() -> None:
    # breast_cancer, 10% random flips, seed 403: each pass without the flips found moves the
    # boundary back further; one pass after the first found 29 rows (F1 0.81), three 37.
    scenario = sc.random_flips("breast_cancer", rate=0.1, seed=403)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.f1 >= 0.86 and m.false_positive_rate <= 0.01, m
    # Each reason quotes the pass that found the row, under the bound (0.25 for two classes);
    # quoting the last pass, one row of 20% flips (seed 400) read p=0.26.
    report = audit_data(sc.random_flips("breast_cancer", rate=0.2, seed=400).train)
    quoted = [
        float(f.reason.split("that label p=")[1].split(" ")[0])
        for f in report.flags
        if f.detector == "label-noise" and "that label p=" in f.reason
    ]
    assert len(quoted) >= 30 and max(quoted) <= 0.25


def test_rows_the_moved_boundary_made_look_flipped_are_cleared() -> None:
    # Wine, 40% of class 1 labelled 2 (seed 403): real 1s at the edge the flips moved looked
    # mislabelled as 2 (3.8% of clean rows flagged). Asked again by a model trained without
    # the flips found and without them, they keep their label.
    scenario = sc.targeted_flips("wine", seed=403, source=1, target=2, fraction=0.4)
    m = sc.measure(scenario, list(audit_data(scenario.train).suspicious_rows), retrain=False)
    assert m.f1 >= 0.9 and m.false_positive_rate <= 0.01, m
