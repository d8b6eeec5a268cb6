"""A SCAn-style two-population test per class, confirmed by transferring the shared trigger.

A backdoor puts rows of other classes, carrying a trigger, under one label. In a feature space
whitened by the within-class covariance of the whole dataset such a class splits in two. The
test per class, with no guess of how much poison there is:

1. split the class in two (k-means in the whitened space);
2. for each group, estimate what its rows share that the other classes lack: features the
   group holds (nearly) fixed at a value the other classes do not take (a patch, fixed tabular
   values), else the median difference to each row's nearest row of another class (a blend);
3. stamp that estimate on the rows of the other classes and ask the reference model trained on
   all rows: a real trigger sends most of them to this class, a natural sub-style of the class
   (a slanted 1) mostly shares nothing that transfers;
4. the group must also be foreign: poison is taken from other classes, so a model trained
   without the group (and without the trigger's own features) places most of it elsewhere.
   The few sub-styles that do transfer (digits whose strokes push other rows to their class)
   still read as their class;
5. removal counts are adaptive: a model trained without the trigger group decides, row by row,
   which rows of the class it cannot place there (p < 0.5), whichever group k-means chose.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlward.data.detectors.base import AuditInput, classifier, sampler
from mlward.data.results import SampleFlag

# Groups smaller than this share of a class are outliers, not a population (the outlier
# detector reports those).
_MIN_GROUP_SHARE = 0.02
_MIN_GROUP_ROWS = 4
_SPLIT_TRIES = 3
# Share of other-class rows the estimated trigger must send to the class (half: a trigger
# inside the data's range moves only 51-57% under the reference model; false groups that
# transfer as well are stopped by the foreign test)...
_MIN_TRANSFER = 0.5
# Transfer shares are estimated on at most this many rows of the other classes (a share's
# standard error is at most 1.2 points there): on 6,000 shifted digits, stamping and
# predicting every other row took 40 of a 70-second audit.
_PROBE_ROWS = 1500
# ...and by how much more than the other group's estimate does.
_MIN_TRANSFER_MARGIN = 0.3
# A learned trigger moves rows only through its carriers: under a model trained without the
# group, a backdoor's additive pattern moved 0-4% of the other rows (BadNets square, blend,
# random patch and 1% triggers, seeds 100, 102, 400-402 and 600-609), while patterns of clean groups
# that pass the transfer test kept moving 50-82% (a style of the class that looks like it: six
# 6s of one hand, digits with 10% random flips, seed 403, were held as a trigger). A pattern
# that moves this share without the group is the class's own look.
_NATURAL_TRANSFER = 0.25
# Rows a kernel model ranks shared-value groups on (a share's standard error is at most 2.9
# points there); every kept group is tested on the probe rows.
_RANKING_PROBES = 300
# Neighbours the nearest-neighbour transfer model votes with.
_LOCAL_NEIGHBOURS = 5
# A feature is part of a patch when the group's spread in it is this small a share of the
# feature's overall spread, and its value lies this many overall deviations from the others'.
_FIXED_SPREAD = 0.25
_FIXED_OFFSET = 0.5
_MIN_CLASSES_FOR_ADDITIVE = 4
# Shared exact values: a value counts when this many times more common in the class than in
# the others, and a group needs this many such features (one shared value is a category,
# not a trigger).
_SHARED_LIFT = 1.3
# ...and the conjunction of them this many times (values inside the data's range are common
# one by one; only together are they specific).
_SHARED_JOINT_LIFT = 5.0
_SHARED_MIN_FEATURES = 2
# A value joins a group, under the first growth rule, while this share of the group holds it.
_SHARED_KEEP = 0.8
# Starting values tried per growth rule (the first rule walks every candidate per start), and
# groups tested per rule and class.
_SHARED_STARTS_KEPT = 32
_SHARED_STARTS = 128
# Common values that start growth too, when paired with another value they are rare outside,
# and the share of other rows such a group's values must move to be tested further.
_PAIRED_STARTS = 16
_PAIRED_MIN_MOVED = 0.25
_SHARED_GROUPS = 3
# ...and most of its rows must look like another class once those features are left out.
_MIN_FOREIGN = 0.5
# ...or this share, for a group of values no more common in the class than elsewhere (see
# ``paired_values``): those conjunctions also describe a few rows of a class drawn alike.
_MIN_FOREIGN_PAIRED = 0.8
# Share of a group that must hold one exact value for it to count as fixed wherever it lies.
_EXACT_SHARE = 0.8
# A row carries a fixed value within this many of the group's (robust) deviations around it;
# the MAD of a normal is 0.6745 of its standard deviation.
_CARRIER_DEVIATIONS = 3.0
_MAD_SCALE = 1.4826
# A second-pass carrier holds most of the refined pattern in its gap (clean rows of the
# target class hold up to about half of it where the trigger resembles the class).
_REFINED_ALIGNMENT = 0.7
# A carrier is relabelled only if the features its trigger leaves tell the other rows' classes
# with at most this much less cross-validated accuracy than whole rows do.
_ORIGIN_SLACK = 0.05


def whiten(features: NDArray[np.float64], y: NDArray[np.int64], seed: int) -> NDArray[np.float64]:
    """Project onto the main directions of within-class variation, scaled to unit variance."""
    from sklearn.decomposition import PCA

    centred = features.copy()
    for label in np.unique(y):
        centred[y == label] -= features[y == label].mean(axis=0)
    components = max(1, min(20, features.shape[1], len(y) - 1))
    pca = PCA(n_components=components, whiten=True, random_state=seed).fit(centred)
    return np.asarray(pca.transform(features), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Trigger:
    """What a group shares: fixed values in some features, or an additive pattern."""

    fixed: NDArray[np.bool_]
    value: NDArray[np.float64]
    shift: NDArray[np.float64] | None
    # How far a row may stray from each fixed value and still carry it (a blended patch
    # varies with the pixels under it).
    tolerance: NDArray[np.float64] | None = None

    def stamp(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        stamped = rows.copy()
        if self.shift is not None:
            return stamped + self.shift
        stamped[:, self.fixed] = self.value[self.fixed]
        return stamped

    def carried_by(
        self, rows: NDArray[np.float64], spread: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        """Rows holding every fixed value (to within the group's own spread in it)."""
        tolerance = 0.1 * spread if self.tolerance is None else self.tolerance
        close = np.abs(rows[:, self.fixed] - self.value[self.fixed]) <= tolerance[self.fixed]
        return np.asarray(close.all(axis=1), dtype=np.bool_)

    def alignment(self, gaps: NDArray[np.float64]) -> NDArray[np.float64]:
        """How much of the additive pattern each row's gap to its nearest other row holds."""
        assert self.shift is not None
        norm = float(self.shift @ self.shift) or 1.0
        return np.asarray(gaps @ self.shift / norm, dtype=np.float64)

    def rewrites_half(self, width: int) -> bool:
        """Whether the fixed values cover half of a ``width``-feature row or more."""
        return self.shift is None and 2 * int(self.fixed.sum()) >= width

    def describe(self) -> str:
        if self.shift is not None:
            return "an additive pattern"
        return f"fixed values in {int(self.fixed.sum())} features"


@dataclass(frozen=True, eq=False)
class _Reference:
    """What every group of one class is measured against: the spread of each feature over
    all rows and over the class, and the other classes' median."""

    spread: NDArray[np.float64]
    class_spread: NDArray[np.float64]
    others_median: NDArray[np.float64]

    @classmethod
    def of(
        cls, features: NDArray[np.float64], others: NDArray[np.intp], rows: NDArray[np.intp]
    ) -> _Reference:
        return cls(
            features.std(axis=0) + 1e-12,
            features[rows].std(axis=0) + 1e-12,
            np.median(features[others], axis=0),
        )


def fixed_trigger(
    features: NDArray[np.float64],
    group: NDArray[np.intp],
    others: NDArray[np.intp],
    rows: NDArray[np.intp],
    reference: _Reference | None = None,
) -> Trigger:
    """Features the group holds (nearly) fixed at a value the other classes do not take.

    "Fixed" is relative to the whole class's spread in that feature: a compact class (iris)
    is not a trigger just because it is narrower than the dataset. ``reference``: the class's
    ``_Reference``, when many groups of it are measured (computed here otherwise).
    """
    if reference is None:
        reference = _Reference.of(features, others, rows)
    inside = features[group]
    spread = reference.spread
    value = np.median(inside, axis=0)
    # A value nearly every row of the group holds exactly counts even inside the others' range
    # (a trigger at the 95th percentile): a population does not agree to the last digit by
    # chance, unless the others mostly hold that value too (blank pixels).
    exact = np.zeros(features.shape[1], dtype=np.bool_)
    for column in range(features.shape[1]):
        values, counts = np.unique(inside[:, column], return_counts=True)
        top = int(np.argmax(counts))
        if counts[top] >= _EXACT_SHARE * len(group):
            value[column] = values[top]
            exact[column] = float(np.mean(features[others, column] == values[top])) < 0.5
    offset = np.abs(value - reference.others_median)
    fixed = (
        (inside.std(axis=0) < _FIXED_SPREAD * reference.class_spread)
        & (offset > _FIXED_OFFSET * spread)
    ) | exact
    # The group's spread around the value, measured robustly: k-means groups hold a few clean
    # rows too, and one of them would widen the tolerance until clean rows carry the trigger.
    deviation = _MAD_SCALE * np.median(np.abs(inside - value), axis=0)
    tolerance = np.maximum(0.1 * spread, _CARRIER_DEVIATIONS * deviation)
    return Trigger(np.asarray(fixed, dtype=np.bool_), value, None, tolerance)


def at_edge(features: NDArray[np.float64], trigger: Trigger, group: NDArray[np.intp]) -> bool:
    """Whether every fixed value lies at or beyond the edge of the range the rows outside
    ``group`` take (no clean row holds it by nature)."""
    rest = np.ones(len(features), dtype=bool)
    rest[group] = False
    inside = features[rest][:, trigger.fixed]
    value = trigger.value[trigger.fixed]
    return bool(np.all((value >= inside.max(axis=0)) | (value <= inside.min(axis=0))))


def _probes(others: NDArray[np.intp], seed: int) -> NDArray[np.intp]:
    """The other-class rows a trigger is stamped on to see where it sends them: all of them,
    or a seeded sample of ``_PROBE_ROWS`` on large data."""
    if len(others) <= _PROBE_ROWS:
        return others
    chosen = sampler(seed).choice(others, _PROBE_ROWS, replace=False)
    return np.sort(chosen).astype(np.intp)


def _nearest_model(data: AuditInput) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=_LOCAL_NEIGHBOURS).fit(data.features, data.y)


def conjunction_transfer(
    full: Any, outside: NDArray[np.float64], label: int
) -> Callable[[NDArray[np.intp], NDArray[np.float64]], float]:
    """(columns, values) -> the share of ``outside`` rows that ``full`` puts in ``label`` once
    those columns hold those values; for ranking conjunctions only (a kernel model scores at
    most ``_RANKING_PROBES`` of the rows)."""
    if not hasattr(full, "coef_"):
        # A kernel model predicts every row afresh, and these shares only rank the groups
        # (each kept group is then tested on every probe row): on fewer rows, spread evenly
        # over them. Measured on digits with 20% of labels flipped, where the kernel SVM is
        # chosen and keeps most rows as support vectors: 1,440 conjunctions took 83 s of a
        # 102-second audit.
        if len(outside) > _RANKING_PROBES:
            outside = outside[np.linspace(0, len(outside) - 1, _RANKING_PROBES).astype(np.intp)]

        def predicted(columns: NDArray[np.intp], values: NDArray[np.float64]) -> float:
            stamped = outside.copy()
            stamped[:, columns] = values
            return float(np.mean(full.predict(stamped) == label))

        return predicted
    # A linear model's scores change only in the stamped columns: one product per conjunction
    # instead of a prediction over every feature (hundreds of conjunctions per class).
    coef = np.asarray(full.coef_, dtype=np.float64)
    base = outside @ coef.T + np.asarray(full.intercept_, dtype=np.float64)

    def scored(columns: NDArray[np.intp], values: NDArray[np.float64]) -> float:
        scores = base + (values - outside[:, columns]) @ coef[:, columns].T
        if scores.shape[1] == 1:  # two classes: one score, positive for classes_[1]
            picked = (scores[:, 0] > 0).astype(np.intp)
        else:
            picked = scores.argmax(axis=1)
        return float(np.mean(full.classes_[picked] == label))

    return scored


def nearest_gaps(
    features: NDArray[np.float64], rows: NDArray[np.intp], others: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Each of ``rows`` minus its nearest row of another class (one search per class; every
    group tested is a subset of it)."""
    from sklearn.neighbors import NearestNeighbors

    outside = features[others]
    _, nearest = NearestNeighbors(n_neighbors=1).fit(outside).kneighbors(features[rows])
    return np.asarray(features[rows] - outside[nearest[:, 0]], dtype=np.float64)


def additive_trigger(gaps: NDArray[np.float64]) -> Trigger:
    """The median difference between a group's rows and their nearest rows of other classes
    (``gaps``, one row per group row)."""
    shift = np.median(gaps, axis=0)
    none = np.zeros(gaps.shape[1], dtype=np.bool_)
    return Trigger(none, shift, np.asarray(shift, dtype=np.float64))


# A class's candidate values: (feature, value) pairs far more common in it than in the others,
# most class-specific first, and the rest (see ``class_values``).
ClassValues = tuple[list[tuple[int, float]], list[tuple[int, float]]]


def _smallest_group(rows: NDArray[np.intp]) -> float:
    """The fewest rows of a class a group may hold (fewer are outliers, not a population)."""
    return max(_MIN_GROUP_ROWS, _MIN_GROUP_SHARE * len(rows))


def shared_values(
    features: NDArray[np.float64],
    rows: NDArray[np.intp],
    others: NDArray[np.intp],
    transfer: Callable[[NDArray[np.intp], NDArray[np.float64]], float] | None = None,
    values: ClassValues | None = None,
) -> list[NDArray[np.intp]]:
    """Groups of a class's rows that share one exact value in several features at once, each
    value far more common in this class than in the others, the strongest evidence (rows times
    the log of the conjunction's lift over the others) first.

    Groups grow greedily from a starting value, most class-specific first, by two rules, and
    the best ``_SHARED_GROUPS`` of each are kept:

    - while most of the group keeps up: a trigger whose values only its carriers hold in the
      class (fixed values at the data's extremes) is found whole;
    - by whichever value most raises the evidence: a trigger splits off from clean rows that
      share part of it (a cross in the centre of a 9, whose clean rows are blank at its
      corners too), where the first rule stops at the clean rows' shared blanks.

    Every value of a feature is a candidate, not only its mode (a trigger at the 95th
    percentile is rarely the class's most common value).

    With ``transfer`` (a conjunction's columns and values -> the share of other-class rows it
    sends to the class), the ``_SHARED_GROUPS`` groups whose conjunction moves most rows times
    the group's size are added, from every group either rule grew: a trigger inside the range
    of a class's own strokes (16 in three pixels of a 4) shares less with the class than its
    natural styles do, so it never ranks high on evidence, but stamping its values is cheap.
    ``values``: the class's ``class_values``, when the caller already has them.
    """
    smallest = _smallest_group(rows)
    items, _ = values or class_values(features, rows, others)
    table = _SharedTable.of(features, rows, others, items, smallest)
    starts = (range(min(_SHARED_STARTS_KEPT, len(items))), range(min(_SHARED_STARTS, len(items))))
    return list(_grown_groups(table, rows, starts, transfer).values())


def paired_values(
    features: NDArray[np.float64],
    rows: NDArray[np.intp],
    others: NDArray[np.intp],
    transfer: Callable[[NDArray[np.intp], NDArray[np.float64]], float] | None = None,
    values: ClassValues | None = None,
) -> list[NDArray[np.intp]]:
    """Groups grown as in ``shared_values``, but from values no more common in the class
    than elsewhere that, paired with one other value, form a conjunction the other classes
    hardly hold: a trigger made of common values (a cross over the centre of digits, whose
    16s and 0s the other classes' strokes hold as often; at 1% poison its carriers are a
    tenth of the class and no value of it is a candidate there)."""
    smallest = _smallest_group(rows)
    items, common = values or class_values(features, rows, others)
    paired = _paired_starts(features, rows, others, items, common, smallest)
    if not paired:
        return []
    table = _SharedTable.of(features, rows, others, items + paired, smallest)
    added = range(len(items), len(items) + len(paired))
    # A group is worth the trigger tests only if stamping its conjunction already moves a
    # fair share of the other rows (the fixed trigger then tested holds these values and
    # must move half): each test stamps and predicts over up to 1,500 rows.
    kept = _grown_groups(table, rows, (added, added), transfer, _PAIRED_MIN_MOVED)
    return list(kept.values())


def class_values(
    features: NDArray[np.float64], rows: NDArray[np.intp], others: NDArray[np.intp]
) -> ClassValues:
    """The (feature, value) pairs enough of the class's rows for a group (not all) hold:
    those far more common in the class than in the others, most class-specific first, and
    the rest."""
    smallest = _smallest_group(rows)
    candidates: list[tuple[float, int, float]] = []
    common: list[tuple[int, float]] = []
    for column in range(features.shape[1]):
        values, counts = np.unique(features[rows, column], return_counts=True)
        for value, count in zip(values, counts, strict=True):
            if count < smallest or count >= len(rows):
                continue
            outside = float(np.mean(features[others, column] == value))
            lift = (count / len(rows)) / max(outside, 1.0 / len(others))
            if lift >= _SHARED_LIFT:
                candidates.append((lift, column, float(value)))
            else:
                common.append((column, float(value)))
    candidates.sort(reverse=True)
    return [(c, v) for _, c, v in candidates], common


def _grown_groups(
    table: _SharedTable,
    rows: NDArray[np.intp],
    starts: tuple[range, range],
    transfer: Callable[[NDArray[np.intp], NDArray[np.float64]], float] | None,
    least_moved: float = 0.0,
) -> dict[bytes, NDArray[np.intp]]:
    """The best ``_SHARED_GROUPS`` groups each growth rule makes from its ``starts``
    (candidate indices), then those whose conjunction moves most rows (see ``shared_values``);
    with ``least_moved``, only groups whose conjunction moves at least that share."""
    groups: dict[bytes, NDArray[np.intp]] = {}
    # Every group grown, with the conjunction it shares (candidate indices).
    grown: dict[bytes, tuple[NDArray[np.intp], list[int]]] = {}
    for grow, firsts in zip((table.grow_while_kept, table.grow), starts, strict=True):
        found: dict[bytes, tuple[float, NDArray[np.intp]]] = {}
        for first in firsts:
            holding, used = grow(first)
            if len(used) < _SHARED_MIN_FEATURES or holding.sum() < table.smallest:
                continue
            held_in, held_out = table.counts(holding, used)
            if table.lift(held_in, held_out) < _SHARED_JOINT_LIFT:
                continue
            group = np.asarray(rows[holding], dtype=np.intp)
            # Evidence, not lift alone: many rows sharing a conjunction rare elsewhere beat a
            # handful sharing a very rare one.
            found[group.tobytes()] = (float(table.evidence(held_in, held_out)), group)
            grown.setdefault(group.tobytes(), (group, sorted(used)))
        ranked = sorted(found.values(), key=lambda item: -item[0])
        for _, group in ranked[:_SHARED_GROUPS]:
            groups.setdefault(group.tobytes(), group)
    if transfer is None:
        return groups
    moves = {
        key: transfer(table.columns[used], table.values[used])
        for key, (group, used) in grown.items()
    }
    # Weighed by the group's size: a handful of rows sharing thirty stroke values is a
    # template of the class that moves anything it is stamped on, not a population.
    moved = sorted(
        ((len(grown[key][0]) * share, key) for key, share in moves.items()), reverse=True
    )
    for _, key in moved[:_SHARED_GROUPS]:
        groups.setdefault(key, grown[key][0])
    return {key: group for key, group in groups.items() if moves[key] >= least_moved}


def _paired_starts(
    features: NDArray[np.float64],
    rows: NDArray[np.intp],
    others: NDArray[np.intp],
    items: list[tuple[int, float]],
    common: list[tuple[int, float]],
    smallest: float,
) -> list[tuple[int, float]]:
    """Values no more common in the class than elsewhere that, paired with one other value,
    form a conjunction the other classes hardly hold: growth starts for a trigger made of
    common values (a cross over the centre of digits, whose 16s and 0s the other classes'
    strokes hold as often; at 1% poison its carriers are a tenth of the class)."""
    if not common:
        return []
    every = items + common
    columns = np.array([c for c, _ in every], dtype=np.intp)
    values = np.array([v for _, v in every])
    # Pairs are only ranked here (every group grown is judged on all rows): on large data the
    # other classes are sampled, spread evenly over them, as the trigger probes are.
    if len(others) > _PROBE_ROWS:
        others = others[np.linspace(0, len(others) - 1, _PROBE_ROWS).astype(np.intp)]
    inside = (features[np.ix_(rows, columns)] == values).astype(np.float32)
    outside = (features[np.ix_(others, columns)] == values).astype(np.float32)
    loose = np.arange(len(items), len(every))
    held_in = inside[:, loose].T @ inside
    held_out = outside[:, loose].T @ outside
    lift = (held_in / len(rows)) / np.maximum(held_out / len(others), 1.0 / len(others))
    pairs = (
        (held_in >= smallest)
        & (lift >= _SHARED_JOINT_LIFT)
        & (columns[loose][:, None] != columns[None, :])  # two features, not two values of one
    )
    # Each common value's strongest pair, by the evidence groups are ranked on.
    best = np.where(pairs, held_in * np.log(np.maximum(lift, 1.0)), 0.0).max(axis=1)
    keep = np.flatnonzero(best > 0)
    ranked = keep[np.argsort(-best[keep], kind="stable")][:_PAIRED_STARTS]
    return [common[int(i)] for i in ranked]


@dataclass(frozen=True, eq=False)
class _SharedTable:
    """Which of a class's rows (``inside``) and of the others' (``outside``) hold each
    candidate value (one column per candidate, most class-specific first)."""

    inside: NDArray[np.bool_]
    outside: NDArray[np.bool_]
    columns: NDArray[np.intp]  # the feature each candidate is a value of
    smallest: float
    values: NDArray[np.float64]  # ...and the value

    @classmethod
    def of(
        cls,
        features: NDArray[np.float64],
        rows: NDArray[np.intp],
        others: NDArray[np.intp],
        items: list[tuple[int, float]],
        smallest: float,
    ) -> _SharedTable:
        """The table of ``items`` ((feature, value) pairs) over ``rows`` and ``others``."""
        columns = np.array([c for c, _ in items], dtype=np.intp)
        values = np.array([v for _, v in items], dtype=np.float64)
        return cls(
            features[np.ix_(rows, columns)] == values,
            features[np.ix_(others, columns)] == values,
            columns,
            smallest,
            values,
        )

    def lift(self, held_in: Any, held_out: Any) -> Any:
        floor = 1.0 / len(self.outside)
        return (held_in / len(self.inside)) / np.maximum(held_out / len(self.outside), floor)

    def evidence(self, held_in: Any, held_out: Any) -> Any:
        score = held_in * np.log(np.maximum(self.lift(held_in, held_out), 1.0))
        return np.where(held_in >= self.smallest, score, -np.inf)

    def counts(self, holding: NDArray[np.bool_], used: set[int]) -> tuple[int, int]:
        """Rows of the class in ``holding``, and rows of the others holding every value used
        (candidate indices)."""
        return int(holding.sum()), int(self.outside[:, sorted(used)].all(axis=1).sum())

    def grow_while_kept(self, first: int) -> tuple[NDArray[np.bool_], set[int]]:
        """Walk the candidates in order, adding each one most of the group still holds."""
        holding = self.inside[:, first].copy()
        used = {first}
        taken = self.columns == self.columns[first]  # one value per feature
        start = 0
        while True:
            # Every candidate up to the next one added is judged on the same group, so one
            # count over the rest finds it.
            held = self.inside[holding, start:].sum(axis=0)
            fits = np.flatnonzero((held >= _SHARED_KEEP * holding.sum()) & ~taken[start:])
            if not len(fits):
                return holding, used
            pick = start + int(fits[0])
            holding &= self.inside[:, pick]
            used.add(pick)
            taken |= self.columns == self.columns[pick]
            start = pick + 1

    def grow(self, first: int) -> tuple[NDArray[np.bool_], set[int]]:
        holding = self.inside[:, first].copy()
        held_out = self.outside[:, first].copy()
        used = {first}
        taken = self.columns == self.columns[first]  # one value per feature
        best = float(self.evidence(holding.sum(), held_out.sum()))
        while True:
            gains = self.evidence(
                self.inside[holding].sum(axis=0), self.outside[held_out].sum(axis=0)
            )
            gains[taken] = -np.inf
            pick = int(np.argmax(gains))
            # Ties count: once no other class holds the conjunction, another value all of
            # the group shares leaves the evidence as it is.
            if not gains[pick] >= best:
                break
            best = float(gains[pick])
            holding &= self.inside[:, pick]
            held_out &= self.outside[:, pick]
            used.add(pick)
            taken |= self.columns == self.columns[pick]
        return holding, used


@dataclass(frozen=True)
class ClassTest:
    label: int
    groups: tuple[int, ...]
    transfer: tuple[tuple[float, float], ...]  # per group: (fixed values, additive pattern)
    poisoned: bool
    # Per trigger that transferred: the share of its group a model trained without it
    # places in another class.
    foreign: tuple[float, ...] = ()


class Separation:
    name = "separation"

    def __init__(self) -> None:
        self.tests: list[ClassTest] = []

    @staticmethod
    def _split(
        space: NDArray[np.float64], rows: NDArray[np.intp], seed: int
    ) -> list[NDArray[np.intp]] | None:
        """Two groups of the class; a handful of outliers split off is set aside, and the rest
        split again (outliers are the outlier detector's job, and would hide the poison)."""
        from sklearn.cluster import KMeans

        smallest = _smallest_group(rows)
        for _ in range(_SPLIT_TRIES):
            if len(rows) < 2 * smallest:
                return None
            split = KMeans(2, n_init=10, random_state=seed).fit_predict(space[rows])
            groups = [rows[split == g] for g in (0, 1)]
            sizes = [len(g) for g in groups]
            if min(sizes) >= smallest:
                return groups
            rows = groups[int(np.argmax(sizes))]
        return None

    def _candidates(
        self,
        space: NDArray[np.float64],
        data: AuditInput,
        rows: NDArray[np.intp],
        others: NDArray[np.intp],
        probes: NDArray[np.intp],
        full: Any,
    ) -> Iterator[tuple[list[NDArray[np.intp]], float]]:
        """Splits of the class to test, best first, each with the share of its group that must
        look foreign: k-means in the whitened space, then the rows that hold one exact value in
        several features at once (a trigger inside the data's range moves a row too little in
        the whole space for k-means to split it off); ``full`` is the reference model trained
        on every row, ``probes`` the other-class rows that conjunctions are stamped on."""
        split = self._split(space, rows, data.seed)
        if split is not None:
            yield split, _MIN_FOREIGN
        # Cheapest test first: each group's trigger must transfer before the foreign test (a
        # model fit) runs, so several groups can be tried.
        moved = conjunction_transfer(full, data.features[probes], int(data.y[rows[0]]))
        values = class_values(data.features, rows, others)
        tried = set()
        for shared in shared_values(data.features, rows, others, moved, values):
            tried.add(shared.tobytes())
            yield [shared, np.setdiff1d(rows, shared).astype(np.intp)], _MIN_FOREIGN
        # Last, and held to a higher bar: a conjunction of common values is also what a few
        # rows of a class drawn alike share (four 3s sharing eleven stroke values moved 63% of
        # the other rows to 3, and two of the four looked like other digits without them).
        for shared in paired_values(data.features, rows, others, moved, values):
            if shared.tobytes() not in tried:
                yield [shared, np.setdiff1d(rows, shared).astype(np.intp)], _MIN_FOREIGN_PAIRED

    @staticmethod
    def _testable(data: AuditInput, trigger: Trigger, group: NDArray[np.intp]) -> bool:
        """Whether the transfer and foreign tests say anything about this trigger. Stamping
        half of a row's features or more makes it whatever class they come from, and the
        rest cannot show where the row belongs (iris: four rows of one class sharing two of
        four measurements to the millimetre move most other rows). There only a minority of
        the class holding values at or beyond the edge of every other row's range still
        marks a trigger: a whole class can lie at the edge (setosa's short petals)."""
        if not trigger.rewrites_half(data.features.shape[1]):
            return True
        minority = 2 * len(group) < int(np.sum(data.y == data.y[group[0]]))
        return minority and at_edge(data.features, trigger, group)

    @staticmethod
    def _transfer(
        data: AuditInput,
        full: Any,
        local: Callable[[], Any],
        trigger: Trigger,
        group: NDArray[np.intp],
        probes: NDArray[np.intp],
        additive: bool,
    ) -> float:
        """The share of other-class rows (``probes``) the trigger, stamped on them, sends to the
        group's class under the reference model. A trigger the tests cannot judge (``_testable``)
        moves nothing. Where fixed values rewrite half of a row or more (and so, being testable,
        lie at the edge of the data's range), ``local`` builds a nearest-neighbour model that is
        asked too: a linear model cannot learn a trigger that contradicts its strongest feature
        (iris: the top of petal width, the virginica end, sent to setosa), while the rows nearest
        such a stamped row are the carriers themselves."""
        if (
            (trigger.shift is None and not trigger.fixed.any())
            or (trigger.shift is not None and not additive)
            # Says nothing either way, so it cannot outweigh the other group's trigger.
            or not Separation._testable(data, trigger, group)
        ):
            return 0.0
        label = data.y[group[0]]
        stamped = trigger.stamp(data.features[probes])
        moved = float(np.mean(full.predict(stamped) == label))
        if moved < _MIN_TRANSFER and trigger.rewrites_half(data.features.shape[1]):
            moved = max(moved, float(np.mean(local().predict(stamped) == label)))
        return moved

    @staticmethod
    def _natural(
        data: AuditInput,
        without: Any,
        trigger: Trigger,
        group: NDArray[np.intp],
        probes: NDArray[np.intp],
    ) -> bool:
        """Whether the pattern still sends the other rows to the group's class under
        ``without``, a model that never saw the group (see ``_NATURAL_TRANSFER``)."""
        stamped = trigger.stamp(data.features[probes])
        moved = float(np.mean(without.predict(stamped) == data.y[group[0]]))
        return moved >= _NATURAL_TRANSFER

    @staticmethod
    def _kept(data: AuditInput, group: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Every row but ``group``'s."""
        keep = np.ones(len(data.y), dtype=bool)
        keep[group] = False
        return keep

    @staticmethod
    def _fit_without(
        data: AuditInput, group: NDArray[np.intp], columns: NDArray[np.bool_] | None = None
    ) -> Any:
        """The reference model trained on every row but ``group``'s (on ``columns`` only)."""
        keep = Separation._kept(data, group)
        features = data.features[keep] if columns is None else data.features[keep][:, columns]
        model: Any = classifier(data.seed, data.model)
        model.fit(features, data.y[keep])
        return model

    @staticmethod
    def _foreign_share(
        data: AuditInput, group: NDArray[np.intp], columns: NDArray[np.bool_], without: Any = None
    ) -> float:
        """The share of the group a model trained without it, on ``columns`` only, places in
        another class (the trigger's own features are left out: a value beyond the data's range
        would otherwise pull the rows to whichever class lies that way).

        Poison is taken from other classes; rows of a class that merely share a natural value
        (benign tumours with concavity 0) still look like their class without it."""
        if not columns.any():
            return 0.0
        # ``without``: the model already trained without the group on every column, if any.
        model = (
            without
            if without is not None and columns.all()
            else Separation._fit_without(data, group, columns)
        )
        placed = model.predict(data.features[group][:, columns])
        return float(np.mean(placed != data.y[group[0]]))

    @staticmethod
    def _without(
        data: AuditInput, group: NDArray[np.intp], rows: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """For each of ``rows``: the probability of its label, and the label predicted, by a
        model trained without ``group``."""
        model = Separation._fit_without(data, group)
        proba = model.predict_proba(data.features[rows])
        own = proba[:, list(model.classes_).index(data.y[rows[0]])]
        return (
            np.asarray(own, dtype=np.float64),
            np.asarray(model.classes_[proba.argmax(axis=1)], dtype=np.int64),
        )

    @staticmethod
    def _origin(
        data: AuditInput, group: NDArray[np.intp], trigger: Trigger, rows: NDArray[np.intp]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], bool]:
        """For each of ``rows``: the class it looks like with the trigger taken off, and that
        class's probability, from a model trained without ``group`` (the k-means group and
        every carrier). Fixed values are left out (the row's own values under them are gone);
        an additive pattern is subtracted.

        Also whether that is to be trusted: the features a fixed trigger leaves must tell the
        other rows' classes about as well as the whole row does. Iris with three of four
        features fixed keeps only sepal width (53% against 96%), and relabelled by it the
        carriers cost victims 5.9 points; petal width alone still tells 97%."""
        from sklearn.model_selection import cross_val_score

        keep = Separation._kept(data, group)
        columns = ~trigger.fixed if trigger.shift is None else np.ones_like(trigger.fixed)
        if not columns.any():
            return data.y[rows].copy(), np.zeros(len(rows)), False
        reliable = True
        if not columns.all():
            left, whole = (
                float(
                    cross_val_score(
                        classifier(data.seed, data.model), features, data.y[keep], cv=3
                    ).mean()
                )
                for features in (data.features[keep][:, columns], data.features[keep])
            )
            reliable = left >= whole - _ORIGIN_SLACK
        model = Separation._fit_without(data, group, columns)
        bare = data.features[rows] if trigger.shift is None else data.features[rows] - trigger.shift
        proba = model.predict_proba(bare[:, columns])
        return (
            np.asarray(model.classes_[proba.argmax(axis=1)], dtype=np.int64),
            np.asarray(proba.max(axis=1), dtype=np.float64),
            reliable,
        )

    def run(self, data: AuditInput) -> list[SampleFlag]:
        space = whiten(data.features, data.y, data.seed)
        full: Any = classifier(data.seed, data.model)
        full.fit(data.features, data.y)
        spread = data.features.std(axis=0) + 1e-12
        local = functools.cache(lambda: _nearest_model(data))
        # With few classes the median gap to the nearest row of another class is just the
        # difference between classes, not a shared pattern: only fixed values count there.
        additive = len(data.labels) >= _MIN_CLASSES_FOR_ADDITIVE
        flags: list[SampleFlag] = []
        for label in data.labels:
            rows = np.flatnonzero(data.y == label)
            others = np.flatnonzero(data.y != label)
            if len(rows) < 2 * _MIN_GROUP_ROWS or len(others) == 0:
                continue
            found: tuple[int, int] | None = None
            # Per row of the whole dataset, only this class's rows filled in.
            gaps = np.zeros_like(data.features)
            gaps[rows] = nearest_gaps(data.features, rows, others)
            groups: list[NDArray[np.intp]] = []
            foreign: list[float] = []
            probes = _probes(others, data.seed)
            reference = _Reference.of(data.features, others, rows)
            for groups, bar in self._candidates(space, data, rows, others, probes, full):
                triggers = [
                    (
                        fixed_trigger(data.features, g, others, rows, reference),
                        additive_trigger(gaps[g]),
                    )
                    for g in groups
                ]
                transfer = [
                    tuple(self._transfer(data, full, local, t, g, probes, additive) for t in pair)
                    for g, pair in zip(groups, triggers, strict=True)
                ]
                for kind in (0, 1):  # fixed values first: they also say which rows carry them
                    best = int(np.argmax([transfer[0][kind], transfer[1][kind]]))
                    high, low = transfer[best][kind], transfer[1 - best][kind]
                    if high < _MIN_TRANSFER or high - low < _MIN_TRANSFER_MARGIN:
                        continue
                    # An additive pattern's foreign test trains the same model (every column).
                    without = self._fit_without(data, groups[best]) if kind == 1 else None
                    if without is not None and self._natural(
                        data, without, triggers[best][1], groups[best], probes
                    ):
                        continue
                    # Poison is taken from other classes: a model that never saw the group
                    # places most of it there. A natural sub-style of the class (a pattern
                    # that happens to push other rows here too) still looks like the class.
                    # The share is measured without the trigger's fixed features.
                    columns = ~triggers[best][kind].fixed
                    # Fixed values most of the rest of the class holds too are the class's own
                    # look (setosa's short petals), not something the group brought with it.
                    rest = data.features[groups[1 - best]]
                    if kind == 0 and triggers[best][0].carried_by(rest, spread).mean() >= 0.5:
                        continue
                    foreign.append(self._foreign_share(data, groups[best], columns, without))
                    if foreign[-1] >= bar:
                        found = (best, kind)
                        break
                if found is not None:
                    break
            if not groups:
                continue
            self.tests.append(
                ClassTest(
                    int(label),
                    (len(groups[0]), len(groups[1])),
                    (transfer[0], transfer[1]),  # type: ignore[arg-type]
                    found is not None,
                    tuple(foreign),
                )
            )
            if found is None:
                continue
            candidate = groups[found[0]]
            trigger = triggers[found[0]][found[1]]
            own, predicted = self._without(data, candidate, rows)
            how = np.full(len(rows), "", dtype=object)
            if trigger.shift is None:
                carrying = trigger.carried_by(data.features[rows], spread)
                how[carrying] = "holds the fixed values"
                # Values inside the data's range are also held by chance: where the other
                # classes' rows hold them often enough for a clean row of this class to, a
                # carrier must also be placed elsewhere without the group.
                natural = float(np.mean(trigger.carried_by(data.features[others], spread)))
                if natural * len(rows) >= 1.0:
                    carrying &= own < 0.5
                    how[carrying] = "holds the fixed values and is placed elsewhere without them"
            else:
                # A blend is also carried by rows the model still places here: a row carries it
                # when its gap to the nearest row of another class runs along the pattern.
                aligned = trigger.alignment(gaps[rows]) >= 0.5
                carrying = (own < 0.5) | aligned
                how[aligned] = "its gap to the nearest other-class row runs along the pattern"
                how[own < 0.5] = "placed elsewhere without the group"
            if additive and carrying.sum() >= _MIN_GROUP_ROWS:
                # Second pass: the pattern the rows flagged so far add to their nearest rows of
                # other classes. It also catches carriers a fixed value misses (a blend over a
                # pixel that is not blank), and it is estimated from the flagged rows, not the
                # k-means group, which holds clean rows too; a few poisoned rows left behind
                # keep a backdoor alive. Such a row must also look foreign: clean rows of a
                # class whose own shape runs along the pattern hold it too.
                refined = additive_trigger(gaps[rows[carrying]])
                second = (
                    (refined.alignment(gaps[rows]) >= _REFINED_ALIGNMENT) & (own < 0.5) & ~carrying
                )
                how[second] = "its gap holds the refined pattern"
                carrying = carrying | second
            # Trained without the carriers too: those outside the k-means group would teach the
            # trigger to the whole-row model.
            origin, sure, restorable = self._origin(
                data, np.union1d(candidate, rows[carrying]), trigger, rows
            )
            header = (
                f"class {label} holds a group of {len(candidate)} rows sharing "
                f"{trigger.describe()}; stamped on the other classes it moves "
                f"{transfer[found[0]][found[1]]:.0%} of their rows to {label} (a trigger)"
            )
            for row, p, other, hit, via, came, certainty in zip(
                rows, own, predicted, carrying, how, origin, sure, strict=True
            ):
                if hit:
                    taken = int(came) if restorable and came != label and certainty >= 0.5 else None
                    flags.append(
                        SampleFlag(
                            int(row),
                            int(label),
                            self.name,
                            round(float(max(1.0 - p, 0.5)), 4),
                            f"{header}; this row carries it ({via}), and a model trained "
                            f"without the group gives its label p={p:.2f} (it says {other})"
                            + (
                                f"; without the trigger it looks like class {taken} "
                                f"(p={certainty:.2f})"
                                if taken is not None
                                else ""
                            ),
                            suggested=taken,
                        )
                    )
        return flags
