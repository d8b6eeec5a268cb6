"""Results of a dataset audit, snapshot and diff: frozen, plain data for the renderers."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ClassState(enum.Enum):
    """What the audit concludes about one class."""

    CLEAN = "clean"
    NOISY = "noisy"  # scattered wrong labels
    POISONED = "poisoned"  # a coherent foreign subpopulation: a backdoor or targeted flips


@dataclass(frozen=True)
class SampleFlag:
    """One detector's reason to suspect one row (by its index in the input order)."""

    row: int
    label: int
    detector: str
    score: float
    reason: str
    # Outliers and overlaps are worth a look but are not evidence of poison by themselves.
    counts_as_poison: bool = True
    # The class the evidence says the row belongs to, when a detector can tell.
    suggested: int | None = None


@dataclass(frozen=True)
class ClassVerdict:
    label: int
    name: str
    rows: int
    flagged: int
    state: ClassState
    reason: str


@dataclass(frozen=True)
class DetectorRun:
    name: str
    flagged: int
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class DataAuditReport:
    source: str
    rows: int
    features: int
    feature_source: str
    flags: tuple[SampleFlag, ...]
    # Rows held as poison by the combined verdict, sorted; the filtered dataset leaves them out.
    suspicious_rows: tuple[int, ...]
    classes: tuple[ClassVerdict, ...]
    detectors: tuple[DetectorRun, ...]
    seconds: float
    # Rows only the label-noise detector flags, in classes with no more of them than natural
    # label errors leave: reported for review, not held as poison, kept by the filtered
    # dataset unless asked (``drop_review``).
    review_rows: tuple[int, ...] = ()
    # Trigger carriers and the class each looks like with the trigger taken off: a repaired
    # dataset keeps them under that label, so a model retrained on it learns to ignore the
    # trigger instead of only not learning it.
    restored_labels: tuple[tuple[int, int], ...] = ()
    # The reference model the model-based detectors trained, in words (see ``choose_model``).
    reference_model: str = ""

    @property
    def removed_rows(self) -> tuple[int, ...]:
        """The rows the filtered dataset leaves out, sorted: those held as poison."""
        return self.suspicious_rows

    def left_out(self, *, repaired: bool, drop_review: bool = False) -> tuple[int, ...]:
        """The rows a filtered (or, with ``repaired``, a repaired) dataset leaves out, sorted:
        a repaired one keeps the trigger carriers it relabels; ``drop_review``, the label
        errors listed for review go too."""
        rows = set(self.suspicious_rows)
        if drop_review:
            rows |= set(self.review_rows)
        if repaired:
            rows -= {row for row, _ in self.restored_labels}
        return tuple(sorted(rows))

    @property
    def estimated_poison_rate(self) -> float:
        return len(self.suspicious_rows) / self.rows if self.rows else 0.0

    @property
    def poisoned(self) -> bool:
        return any(c.state is not ClassState.CLEAN for c in self.classes)


@dataclass(frozen=True)
class SampleDigest:
    row: int
    digest: str
    label: int


@dataclass(frozen=True)
class Snapshot:
    """A content digest of a whole dataset and of each row (features and label)."""

    source: str
    digest: str
    rows: int
    features: int
    created_at: str
    samples: tuple[SampleDigest, ...]


@dataclass(frozen=True)
class FeatureShift:
    feature: str
    old_mean: float
    new_mean: float
    # Difference in means in units of the old standard deviation.
    shift: float


@dataclass(frozen=True)
class DataDiff:
    old: str
    new: str
    added: tuple[int, ...]  # rows of NEW
    removed: tuple[int, ...]  # rows of OLD
    changed: tuple[tuple[int, int], ...]  # (old row, new row): same position, new features
    relabelled: tuple[tuple[int, int, int, int], ...]  # (old row, new row, old label, new label)
    class_counts: tuple[tuple[str, int, int], ...]  # (class, old count, new count)
    feature_shift: tuple[FeatureShift, ...]
    added_audit: DataAuditReport | None
