"""Public use cases: the only entry points for the CLI, the service and Python users."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlward import __version__
from mlward.errors import ConversionError, InputError, UnsafeModelError
from mlward.options import Limits, ScanOptions
from mlward.results import ArtifactResult, ScanReport, ScanSummary
from mlward.scanning import workers
from mlward.scanning.engine import Scanner
from mlward.storage import remote

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from mlward.conversion import ConversionResult
    from mlward.data.backdoor_model import BackdoorScan
    from mlward.data.dataset import Dataset
    from mlward.data.results import DataAuditReport, DataDiff, Snapshot
    from mlward.data.snapshot import SnapshotStore
    from mlward.provenance.bom import BomResult
    from mlward.provenance.hashing import HashingOptions
    from mlward.provenance.lineage import (
        Lineage,
        ProvenanceRecord,
        ProvenanceVerification,
        TrainingRun,
    )
    from mlward.provenance.oms import Signer
    from mlward.provenance.tlog import (
        AppendResult,
        EvidenceEntry,
        EvidenceKind,
        LogVerification,
        NoteSigner,
        NoteVerifier,
        Subject,
        TransparencyLog,
    )
    from mlward.provenance.verify import SignResult, VerificationResult, Verifier

__all__ = [
    "AppendResult",
    "ConversionError",
    "ConversionResult",
    "EvidenceEntry",
    "EvidenceKind",
    "LogVerification",
    "NoteSigner",
    "NoteVerifier",
    "Subject",
    "TransparencyLog",
    "UnsafeModelError",
    "append_evidence",
    "audit_data",
    "backdoor_scan",
    "bom",
    "convert",
    "diff_data",
    "iter_files",
    "lineage",
    "load",
    "open_log",
    "read_dataset",
    "record_provenance",
    "scan",
    "sign",
    "snapshot_data",
    "torch_load",
    "verify",
    "verify_log",
    "verify_provenance",
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
_PARALLEL_FROM = 64


def _automatic_jobs(files: int) -> int:
    if files < _PARALLEL_FROM:
        return 1
    return max(1, min(os.cpu_count() or 1, 8, files // (_PARALLEL_FROM // 2)))


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
    scanner = Scanner(options)
    if jobs > 1 and len(files) > 1 and workers.can_fork():
        results = workers.scan_parallel(scanner, files, jobs, progress)
    else:
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


# Loading and conversion are imported on first use: a scan never needs them, and start-up time
# is most of a small scan's time.
def load(
    path: str | os.PathLike[str],
    allow: Iterable[str] = (),
    *,
    map_location: Any = None,
    limits: Limits | None = None,
) -> Any:
    """Load a pickle, PyTorch checkpoint, joblib or NumPy file only if it scans clean.

    Raises UnsafeModelError otherwise; nothing from a refused file is imported or run.
    """
    from mlward.scanning import safe_load

    return safe_load.load(path, allow, map_location=map_location, limits=limits)


def torch_load(
    path: str | os.PathLike[str],
    allow: Iterable[str] = (),
    *,
    map_location: Any = None,
    limits: Limits | None = None,
) -> Any:
    """``torch.load`` for a checkpoint whose scan is clean; refuses anything else."""
    from mlward.scanning import safe_load

    return safe_load.torch_load(path, allow, map_location=map_location, limits=limits)


def convert(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    allow: Iterable[str] = (),
    drop_non_tensors: bool = False,
    limits: Limits | None = None,
) -> ConversionResult:
    """Convert a clean PyTorch or scikit-learn file to safetensors or skops, verified."""
    from mlward import conversion

    return conversion.convert(
        source, target, allow=allow, drop_non_tensors=drop_non_tensors, limits=limits
    )


def open_log(
    location: str | os.PathLike[str], *, signer: NoteSigner | None = None
) -> TransparencyLog:
    """The evidence log at a SQLite file path (created if missing) or a ``postgresql://`` URL.

    With a signer every append also stores a signed checkpoint, so nothing goes unprotected.
    """
    from mlward.provenance.tlog import TransparencyLog

    return TransparencyLog.open(os.fspath(location), signer)


def append_evidence(
    location: str | os.PathLike[str],
    entries: Iterable[EvidenceEntry],
    *,
    signer: NoteSigner | None = None,
) -> AppendResult:
    """Append a batch of evidence atomically: every entry lands, in order, or none does."""
    with open_log(location, signer=signer) as log:
        return log.append(entries)


def verify_log(
    location: str | os.PathLike[str], verifier: NoteVerifier, *, trusted: str | None = None
) -> LogVerification:
    """Recompute the whole log and check it against its signed checkpoints (and ``trusted``,
    a signed checkpoint kept outside the database, which also catches a rollback)."""
    with open_log(location) as log:
        return log.verify(verifier, trusted)


def __getattr__(name: str) -> Any:
    # The log's types (those in __all__) are imported on first use: they pull in the
    # cryptography package, which a scan never needs.
    if name in __all__:
        from mlward.provenance import tlog

        if name in tlog.__all__:
            return getattr(tlog, name)
    raise AttributeError(f"module 'mlward.api' has no attribute {name!r}")


def sign(
    model_path: str | os.PathLike[str],
    signer: Signer,
    signature_path: str | os.PathLike[str] | None = None,
    hashing: HashingOptions | None = None,
    *,
    log: str | os.PathLike[str] | None = None,
    log_signer: NoteSigner | None = None,
) -> SignResult:
    """Sign a model file or folder into an OMS bundle (``mlward.provenance.signers``), written
    to ``model.sig`` unless ``signature_path`` says otherwise. With ``log``, the signature is
    also appended to that evidence log (and a checkpoint signed with ``log_signer``)."""
    # Imported on use: cryptography is not needed to scan.
    from mlward.provenance.oms import DEFAULT_SIGNATURE
    from mlward.provenance.verify import sign_model

    result = sign_model(model_path, signer, signature_path or DEFAULT_SIGNATURE, hashing)
    if log is not None:
        name = os.path.basename(os.path.normpath(os.fspath(model_path))) or os.fspath(model_path)
        append_evidence(log, [result.evidence(name)], signer=log_signer)
    return result


def verify(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
    signature_path: str | os.PathLike[str] | None = None,
    hashing: HashingOptions | None = None,
    *,
    ignore_unsigned_files: bool = False,
) -> VerificationResult:
    """Verify a model against its OMS bundle; the result says exactly what differs."""
    from mlward.provenance.oms import DEFAULT_SIGNATURE
    from mlward.provenance.verify import verify_model

    return verify_model(
        model_path,
        verifier,
        signature_path or DEFAULT_SIGNATURE,
        hashing,
        ignore_unsigned_files=ignore_unsigned_files,
    )


def record_provenance(
    run: TrainingRun,
    signer: Signer,
    output_path: str | os.PathLike[str] | None = None,
    *,
    log: str | os.PathLike[str] | None = None,
    log_signer: NoteSigner | None = None,
    hashing: HashingOptions | None = None,
) -> ProvenanceRecord:
    """Record a training run as signed SLSA provenance (``provenance.json`` unless
    ``output_path`` says otherwise) and, with ``log``, append it to the evidence log."""
    from dataclasses import replace

    from mlward.provenance import lineage as _lineage

    record = _lineage.record(
        run,
        signer,
        output_path or _lineage.DEFAULT_PROVENANCE,
        hashing,
        tool_version=__version__,
    )
    if log is None:
        return record
    appended = append_evidence(log, [record.evidence()], signer=log_signer)
    return replace(record, log_index=appended.first_index)


def verify_provenance(
    model_path: str | os.PathLike[str],
    provenance_path: str | os.PathLike[str],
    verifier: Verifier,
    hashing: HashingOptions | None = None,
) -> ProvenanceVerification:
    """Check a provenance bundle's signature and that the model on disk is its subject."""
    from mlward.provenance import lineage as _lineage

    return _lineage.verify(model_path, provenance_path, verifier, hashing)


def _model_digest(model: str, hashing: HashingOptions | None) -> tuple[str, str | None]:
    """(root digest, path) of a model path, or of a ``sha256:<hex>`` digest given instead."""
    import re

    from mlward.provenance.hashing import root_digest

    if re.fullmatch(r"sha256:[0-9a-f]{64}", model) and not os.path.exists(model):
        return model[len("sha256:") :], None
    if not os.path.lexists(model):
        raise InputError(
            f"{model}: no such file or directory",
            fix="Pass the model's folder or file, or its root digest as sha256:<hex>.",
        )
    return root_digest(model, hashing), model


def lineage(
    model: str | os.PathLike[str],
    log: str | os.PathLike[str],
    *,
    hashing: HashingOptions | None = None,
) -> Lineage:
    """The chain data -> run -> model -> signatures -> decisions that the log holds for a
    model (a path, hashed to its root digest, or ``sha256:<hex>``)."""
    from mlward.provenance.lineage import build_lineage

    location = os.fspath(log)
    if "://" not in location and not os.path.exists(location):
        raise InputError(
            f"the log {location} does not exist",
            fix="Pass --log (a SQLite file or postgresql:// URL) or set MLWARD_LOG.",
        )
    digest, path = _model_digest(os.fspath(model), hashing)
    with open_log(location) as opened:
        return build_lineage(opened.entries(), digest, model_path=path, log=opened.location)


def bom(
    model_dir: str | os.PathLike[str],
    *,
    datasets: Sequence[str | os.PathLike[str]] = (),
    provenance: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    hashing: HashingOptions | None = None,
) -> BomResult:
    """A validated CycloneDX 1.6 ML-BOM of a model: its root digest, model card fields, the
    datasets, and the Python packages its pickles import (found by scanning it)."""
    from mlward.provenance.bom import build_bom

    path = os.fspath(model_dir)
    if not os.path.lexists(path):
        raise InputError(f"{path}: no such file or directory", fix="Check MODEL_DIR.")
    report = scan(path)
    imports = sorted({name for artifact in report.artifacts for name in artifact.imports})
    return build_bom(
        path,
        imports=imports,
        scan_verdict=report.verdict.value,
        datasets=[os.fspath(d) for d in datasets],
        provenance=os.fspath(provenance) if provenance else None,
        hashing=hashing,
        output=os.fspath(output) if output else None,
        tool_version=__version__,
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
    write_repaired: str | os.PathLike[str] | None = None,
    drop_review: bool = False,
    seed: int = 0,
) -> DataAuditReport:
    """Find poisoned, mislabelled and duplicated rows; no guess of the poison rate is needed.

    Features, in order of preference: ``features`` (an array or a .npy path, one row per
    sample), ``model`` (penultimate activations of a torch model, loaded through the safe
    loader; ``allow`` admits its own classes), ``reference_model`` (hidden layer of a small
    MLP trained here), else the standardised input. ``write_filtered`` writes the dataset
    without the rows held as poison; the label errors listed for review
    (``report.review_rows``: isolated, no more common than natural label noise, not held as
    poison) stay in it unless ``drop_review``. ``write_repaired`` writes the filtered dataset
    with the trigger carriers put back under the class they look like without the trigger
    (``report.restored_labels``), which also unlearns a trigger's natural pull.
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
        write_dataset(audit_module.filtered(data, report, drop_review=drop_review), write_filtered)
    if write_repaired is not None:
        write_dataset(audit_module.repaired(data, report, drop_review=drop_review), write_repaired)
    return report


def snapshot_data(
    dataset: Dataset | str | os.PathLike[str],
    *,
    label: str | None = None,
    labels: str | None = None,
    store: SnapshotStore | None = None,
    log: str | os.PathLike[str] | None = None,
    log_signer: NoteSigner | None = None,
) -> tuple[Snapshot, str]:
    """Digest a dataset (whole and per row) and record it; returns it and where it went.

    With ``log`` (and ``dataset`` given as a path), the snapshot is also appended to that
    evidence log. Its subject is the digest of every byte of the dataset's files, the digest
    ``provenance record`` gives a training run's datasets, so ``lineage`` joins the two."""
    from mlward.data.snapshot import JsonLinesStore, snapshot

    data = _dataset(dataset, label, labels)
    snap = snapshot(data)
    where = (store or JsonLinesStore()).put(snap)
    if log is not None:
        if not isinstance(dataset, (str, os.PathLike)):
            raise InputError(
                "a dataset snapshot in the log needs the dataset's files",
                fix="Pass the dataset as a path when you give a log.",
            )
        from mlward.provenance.lineage import DATASET, hash_input
        from mlward.provenance.tlog import EvidenceEntry, EvidenceKind, Subject

        files = hash_input(os.fspath(dataset), DATASET)
        entry = EvidenceEntry(
            EvidenceKind.DATASET_SNAPSHOT,
            subjects=(Subject(files.name, {"sha256": files.digest}),),
            payload={
                "rows": snap.rows,
                "features": snap.features,
                "rows_sha256": snap.digest,
                "files": files.files,
                "store": where,
            },
        )
        append_evidence(log, [entry], signer=log_signer)
    return snap, where


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
    review = tuple(r for r in report.review_rows if r in arrived)
    scoped = replace(
        report,
        flags=flags,
        suspicious_rows=rows,
        review_rows=review,
        restored_labels=tuple(p for p in report.restored_labels if p[0] in arrived),
        classes=audit_module.class_verdicts(after, list(flags), set(rows), set(review)),
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
