"""Dataset snapshots (a digest of the whole and of each row) and diffs between versions.

The store is deliberately small (``SnapshotStore.put``/``get``): a JSON-lines file under
``.mlward/`` today, the provenance log later, without the callers changing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from mlward.data.dataset import Dataset
from mlward.data.results import DataDiff, FeatureShift, SampleDigest, Snapshot
from mlward.errors import InputError

DEFAULT_STORE = os.path.join(".mlward", "snapshots.jsonl")


def row_digests(dataset: Dataset) -> tuple[list[str], list[str]]:
    """(features-only digest, features+label digest) per row; float64 bytes, little-endian."""
    x = np.ascontiguousarray(dataset.x, dtype="<f8")
    features = [hashlib.sha256(row.tobytes()).hexdigest() for row in x]
    full = [
        hashlib.sha256(f"{f}:{dataset.class_name(int(label))}".encode()).hexdigest()
        for f, label in zip(features, dataset.y, strict=True)
    ]
    return features, full


def snapshot(dataset: Dataset) -> Snapshot:
    _, full = row_digests(dataset)
    whole = hashlib.sha256("\n".join(full).encode()).hexdigest()
    return Snapshot(
        source=dataset.source,
        digest=whole,
        rows=len(dataset),
        features=int(dataset.x.shape[1]),
        created_at=datetime.now(UTC).isoformat(),
        samples=tuple(
            SampleDigest(i, d, int(label))
            for i, (d, label) in enumerate(zip(full, dataset.y, strict=True))
        ),
    )


class SnapshotStore(Protocol):
    def put(self, snap: Snapshot) -> str: ...

    def get(self, digest: str) -> Snapshot | None: ...


class JsonLinesStore:
    """One snapshot per line, appended; readable with any JSON tool."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_STORE) -> None:
        self.path = os.fspath(path)

    def put(self, snap: Snapshot) -> str:
        folder = os.path.dirname(self.path)
        try:
            if folder:
                os.makedirs(folder, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(snap), separators=(",", ":")) + "\n")
        except OSError as exc:
            raise InputError(
                f"cannot write the snapshot store {self.path}: {exc.strerror}",
                fix="Pass --store with a path you can write to.",
            ) from exc
        return self.path

    def get(self, digest: str) -> Snapshot | None:
        if not os.path.exists(self.path):
            return None
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if record["digest"] == digest:
                    samples = tuple(SampleDigest(**s) for s in record.pop("samples"))
                    return Snapshot(**record, samples=samples)
        return None


# An aligned pair of rows is one row changed in place when at most this share of its features
# differ (a stamped trigger, an edited value); otherwise it is a removal and an addition.
_CHANGED_SHARE = 0.25


def _aligned_pairs(
    old: Dataset,
    new: Dataset,
    old_full: list[str],
    new_full: list[str],
    unmatched_old: set[int],
    unmatched_new: set[int],
) -> list[tuple[int, int]]:
    from difflib import SequenceMatcher

    if old.x.shape[1] != new.x.shape[1]:
        return []
    pairs = []
    matcher = SequenceMatcher(None, old_full, new_full, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace":
            continue
        for i, j in zip(range(i1, i2), range(j1, j2), strict=False):
            if i not in unmatched_old or j not in unmatched_new:
                continue
            differing = float(np.mean(old.x[i] != new.x[j]))
            if differing <= _CHANGED_SHARE:
                pairs.append((i, j))
    return pairs


def diff(old: Dataset, new: Dataset) -> DataDiff:
    """Every added, removed, changed and relabelled row, and how classes and features moved.

    Rows are matched by content first (identical features: the same row, relabelled if its
    label differs), then by name or by aligning the two sequences like a text diff (changed
    in place, when most features are equal); the rest are added or removed. Duplicated rows
    are matched one to one.
    """
    old_features, old_full = row_digests(old)
    new_features, new_full = row_digests(new)
    unmatched_old = set(range(len(old)))
    unmatched_new = set(range(len(new)))
    relabelled: list[tuple[int, int, int, int]] = []
    # Same features and label: unchanged.
    by_full: dict[str, list[int]] = defaultdict(list)
    for i in range(len(old)):
        by_full[old_full[i]].append(i)
    for j in range(len(new)):
        bucket = by_full.get(new_full[j])
        if bucket:
            i = bucket.pop(0)
            unmatched_old.discard(i)
            unmatched_new.discard(j)
    # Same features, other label: relabelled.
    by_features: dict[str, list[int]] = defaultdict(list)
    for i in sorted(unmatched_old):
        by_features[old_features[i]].append(i)
    for j in sorted(unmatched_new):
        bucket = by_features.get(new_features[j])
        if bucket:
            i = bucket.pop(0)
            unmatched_old.discard(i)
            unmatched_new.discard(j)
            relabelled.append((i, j, int(old.y[i]), int(new.y[j])))
    # Same name (image files), or aligned like a text diff and mostly equal: changed in place.
    changed: list[tuple[int, int]] = []
    if old.row_names and new.row_names:
        where = {name: i for i, name in enumerate(old.row_names) if i in unmatched_old}
        pairs = [
            (where[new.row_names[j]], j) for j in sorted(unmatched_new) if new.row_names[j] in where
        ]
    else:
        pairs = _aligned_pairs(old, new, old_full, new_full, unmatched_old, unmatched_new)
    for i, j in pairs:
        unmatched_old.discard(i)
        unmatched_new.discard(j)
        changed.append((i, j))
    names = sorted(set(old.classes) | set(new.classes))
    old_counts = dict.fromkeys(names, 0)
    new_counts = dict.fromkeys(names, 0)
    for label in old.y:
        old_counts[old.class_name(int(label))] += 1
    for label in new.y:
        new_counts[new.class_name(int(label))] += 1
    shifts: list[FeatureShift] = []
    if old.x.shape[1] == new.x.shape[1] and len(old) and len(new):
        old_mean = old.x.mean(axis=0)
        new_mean = new.x.mean(axis=0)
        spread = old.x.std(axis=0)
        spread[spread < 1e-12] = 1.0
        shift = (new_mean - old_mean) / spread
        labels = old.feature_names or tuple(f"f{i}" for i in range(old.x.shape[1]))
        order = np.argsort(-np.abs(shift))
        shifts = [
            FeatureShift(labels[k], float(old_mean[k]), float(new_mean[k]), float(shift[k]))
            for k in order
            if abs(shift[k]) > 1e-9
        ]
    return DataDiff(
        old=old.source,
        new=new.source,
        added=tuple(sorted(unmatched_new)),
        removed=tuple(sorted(unmatched_old)),
        changed=tuple(changed),
        relabelled=tuple(relabelled),
        class_counts=tuple((n, old_counts[n], new_counts[n]) for n in names),
        feature_shift=tuple(shifts),
        added_audit=None,
    )
