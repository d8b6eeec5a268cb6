"""Public use cases: the only entry points for the CLI, the service and Python users."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlward import __version__
from mlward.conversion import ConversionError, ConversionResult, convert
from mlward.errors import InputError
from mlward.options import ScanOptions
from mlward.results import ArtifactResult, ScanReport, ScanSummary
from mlward.scanning.engine import Scanner
from mlward.scanning.safe_load import UnsafeModelError, load, torch_load
from mlward.storage import remote

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from mlward.data.backdoor_model import BackdoorScan
    from mlward.data.dataset import Dataset
    from mlward.data.results import DataAuditReport, DataDiff, Snapshot
    from mlward.data.snapshot import SnapshotStore

__all__ = [
    "ConversionError",
    "ConversionResult",
    "UnsafeModelError",
    "audit_data",
    "backdoor_scan",
    "convert",
    "diff_data",
    "iter_files",
    "load",
    "read_dataset",
    "scan",
    "snapshot_data",
    "torch_load",
]

# Version-control metadata holds compressed copies of history, not artifacts anyone loads.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn"})


def iter_files(
    paths: Iterable[str | os.PathLike[str]], *, follow_symlinks: bool = False
) -> Iterator[str]:
    """Every file under the given paths, in a stable order; a missing path is an error."""
    for raw in paths:
        path = os.fspath(raw)
        if remote.is_url(path):
            yield from remote.expand(path)
            continue
        if not os.path.lexists(path):
            raise InputError(
                f"{path}: no such file or directory", fix="Check the path you passed to scan."
            )
        if os.path.isdir(path) and (follow_symlinks or not os.path.islink(path)):
            for root, dirs, files in os.walk(path, followlinks=follow_symlinks):
                dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
                for name in sorted(files):
                    yield os.path.join(root, name)
                if not follow_symlinks:
                    # Linked folders are not entered (loops, escapes); list them so the report
                    # says so instead of skipping them silently.
                    yield from (
                        os.path.join(root, d) for d in dirs if os.path.islink(os.path.join(root, d))
                    )
        else:
            yield path


# Below this many files, starting worker processes costs more than it saves.
_PARALLEL_FROM = 200


def _automatic_jobs(files: int) -> int:
    if files < _PARALLEL_FROM:
        return 1
    return max(1, min(os.cpu_count() or 1, 8, files // (_PARALLEL_FROM // 2)))


_worker_scanner: Scanner | None = None


def _worker_init(options: ScanOptions) -> None:
    global _worker_scanner  # noqa: PLW0603 - one scanner per worker process
    _worker_scanner = Scanner(options)


def _worker_scan_batch(paths: list[str]) -> list[ArtifactResult]:
    assert _worker_scanner is not None
    return [_worker_scanner.scan_path(path) for path in paths]


def scan(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    options: ScanOptions | None = None,
) -> ScanReport:
    """Scan files and directories (recursively) without loading anything they contain."""
    options = options or ScanOptions()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    started_at = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    files = list(iter_files(paths, follow_symlinks=options.follow_symlinks))
    progress = options.progress
    results: list[ArtifactResult] = []
    jobs = options.jobs or _automatic_jobs(len(files))
    if jobs > 1 and len(files) > 1:
        worker_options = ScanOptions(
            allow=options.allow,
            limits=options.limits,
            jobs=1,
            follow_symlinks=options.follow_symlinks,
        )
        # Imported here: it costs a third of start-up, and one-file scans never need it.
        from concurrent.futures import ProcessPoolExecutor

        # Parsed once here so forked workers inherit the allowlists instead of each parsing them.
        Scanner(worker_options)

        # Interleaved batches: a directory sorted by kind would otherwise hand one worker all
        # the slow files; one message per batch keeps the pipe traffic low.
        count = min(len(files), jobs * 4)
        batches = [files[start::count] for start in range(count)]
        ordered: list[ArtifactResult | None] = [None] * len(files)
        done = 0
        with ProcessPoolExecutor(
            jobs, initializer=_worker_init, initargs=(worker_options,)
        ) as pool:
            for start, batch_results in enumerate(pool.map(_worker_scan_batch, batches)):
                for offset, result in enumerate(batch_results):
                    ordered[start + offset * count] = result
                done += len(batch_results)
                if progress is not None and batch_results:
                    progress(done, len(files), batch_results[-1].path)
        results = [result for result in ordered if result is not None]
    else:
        scanner = Scanner(options)
        for done, path in enumerate(files, 1):
            results.append(scanner.scan_path(path))
            if progress is not None:
                progress(done, len(files), path)
    duration = time.perf_counter() - started
    return ScanReport(
        tool_version=__version__,
        started_at=started_at,
        artifacts=tuple(results),
        summary=ScanSummary.of(results, duration),
    )


# Datasets: audit, snapshot, diff. The data package (numpy, scikit-learn) is imported on use,
# so scanning models never needs it.


def read_dataset(
    path: str | os.PathLike[str], *, label: str | None = None, labels: str | None = None
) -> Dataset:
    """Read a dataset (.npy/.npz, .csv, .parquet, or a folder of class folders of images)."""
    from mlward.data.readers import read_dataset as read

    return read(path, label=label, labels=labels)


def _dataset(
    value: Dataset | str | os.PathLike[str], label: str | None = None, labels: str | None = None
) -> Dataset:
    from mlward.data.dataset import Dataset as DatasetType

    if isinstance(value, DatasetType):
        return value
    return read_dataset(value, label=label, labels=labels)


def audit_data(
    dataset: Dataset | str | os.PathLike[str],
    *,
    label: str | None = None,
    labels: str | None = None,
    features: str | os.PathLike[str] | NDArray[np.float64] | None = None,
    model: str | os.PathLike[str] | None = None,
    reference_model: bool = False,
    allow: Iterable[str] = (),
    test: Dataset | str | os.PathLike[str] | None = None,
    write_filtered: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> DataAuditReport:
    """Find poisoned, mislabelled and duplicated rows; no guess of the poison rate is needed.

    Features, in order of preference: ``features`` (an array or a .npy path, one row per
    sample), ``model`` (penultimate activations of a torch model, loaded through the safe
    loader; ``allow`` admits its own classes), ``reference_model`` (hidden layer of a small
    MLP trained here), else the standardised input.
    """
    import numpy as np

    from mlward.data import audit as audit_module
    from mlward.data import features as feature_module
    from mlward.data.readers import write_dataset

    data = _dataset(dataset, label, labels)
    held_out = None if test is None else _dataset(test, label)
    space: NDArray[np.float64] | None
    if features is not None and not isinstance(features, (str, os.PathLike)):
        space = np.asarray(features, dtype=np.float64).reshape(len(data), -1)
        source = "given features"
    elif features is not None:
        space = feature_module.given_features(features, len(data))
        source = f"features from {os.fspath(features)}"
    elif model is not None:
        space = feature_module.torch_model_features(data, model, tuple(allow))
        source = f"penultimate activations of {os.fspath(model)}"
    elif reference_model:
        space = feature_module.reference_model_features(data, seed)
        source = "reference MLP hidden layer"
    else:
        space, source = None, "standardised input"
    report = audit_module.audit(data, space, feature_source=source, test=held_out, seed=seed)
    if write_filtered is not None:
        write_dataset(audit_module.filtered(data, report), write_filtered)
    return report


def snapshot_data(
    dataset: Dataset | str | os.PathLike[str],
    *,
    label: str | None = None,
    labels: str | None = None,
    store: SnapshotStore | None = None,
) -> tuple[Snapshot, str]:
    """Digest a dataset (whole and per row) and record it; returns it and where it went."""
    from mlward.data.snapshot import JsonLinesStore, snapshot

    data = _dataset(dataset, label, labels)
    snap = snapshot(data)
    return snap, (store or JsonLinesStore()).put(snap)


def diff_data(
    old: Dataset | str | os.PathLike[str],
    new: Dataset | str | os.PathLike[str],
    *,
    label: str | None = None,
    audit_added: bool = True,
    seed: int = 0,
) -> DataDiff:
    """What changed between two versions, and the detectors' view of the rows that arrived.

    The detectors run on the whole new version (poison needs the clean rows as contrast) and
    report the flags on added, changed and relabelled rows.
    """
    from dataclasses import replace

    from mlward.data import audit as audit_module
    from mlward.data.snapshot import diff

    before = _dataset(old, label)
    after = _dataset(new, label)
    result = diff(before, after)
    arrived = set(result.added) | {n for _, n in result.changed}
    arrived |= {n for _, n, _, _ in result.relabelled}
    if not audit_added or not arrived:
        return result
    report = audit_module.audit(after, seed=seed)
    flags = tuple(f for f in report.flags if f.row in arrived)
    rows = tuple(r for r in report.suspicious_rows if r in arrived)
    scoped = replace(
        report,
        flags=flags,
        suspicious_rows=rows,
        classes=audit_module.class_verdicts(after, list(flags), set(rows)),
        rows=len(arrived),
    )
    return replace(result, added_audit=scoped)


def backdoor_scan(
    model: str | os.PathLike[str] | Any,
    data: Dataset | str | os.PathLike[str],
    *,
    label: str | None = None,
    labels: str | None = None,
    allow: Iterable[str] = (),
    trigger_png: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> BackdoorScan:
    """Look for a backdoor in a torch classifier, given a clean labelled sample of its data.

    A path is loaded through the safe loader (``allow`` admits the model's own classes); a
    module object is used as it is. ``trigger_png`` saves the most suspicious class's
    recovered trigger (or, when none is suspected, the smallest one) as an image.
    """
    from mlward.data import backdoor_model

    if isinstance(model, (str, os.PathLike)):
        from mlward.data.features import load_torch_model

        model = load_torch_model(model, tuple(allow))
    sample = _dataset(data, label, labels)
    result = backdoor_model.scan(model, sample, seed=seed)
    if trigger_png is not None:
        chosen = (
            result.suspected[0]
            if result.suspected
            else min(result.classes, key=lambda t: t.mask_l1).label
        )
        backdoor_model.trigger_png(result, chosen, trigger_png)
    return result
