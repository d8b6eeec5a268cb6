"""Public use cases: the only entry points for the CLI, the service and Python users."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlward import __version__
from mlward.conversion import ConversionError, ConversionResult, convert
from mlward.errors import InputError
from mlward.options import ScanOptions
from mlward.provenance.oms import DEFAULT_SIGNATURE
from mlward.results import ArtifactResult, ScanReport, ScanSummary
from mlward.scanning.engine import Scanner
from mlward.scanning.safe_load import UnsafeModelError, load, torch_load
from mlward.storage import remote

if TYPE_CHECKING:
    from mlward.provenance.hashing import HashingOptions
    from mlward.provenance.oms import Signer
    from mlward.provenance.verify import SignResult, VerificationResult, Verifier

__all__ = [
    "ConversionError",
    "ConversionResult",
    "UnsafeModelError",
    "convert",
    "iter_files",
    "load",
    "scan",
    "sign",
    "torch_load",
    "verify",
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


def sign(
    model_path: str | os.PathLike[str],
    signer: Signer,
    signature_path: str | os.PathLike[str] = DEFAULT_SIGNATURE,
    hashing: HashingOptions | None = None,
) -> SignResult:
    """Sign a model file or folder into an OMS bundle (``mlward.provenance.signers``)."""
    # Imported on use: cryptography is not needed to scan.
    from mlward.provenance.verify import sign_model

    return sign_model(model_path, signer, signature_path, hashing)


def verify(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
    signature_path: str | os.PathLike[str] = DEFAULT_SIGNATURE,
    hashing: HashingOptions | None = None,
    *,
    ignore_unsigned_files: bool = False,
) -> VerificationResult:
    """Verify a model against its OMS bundle; the result says exactly what differs."""
    from mlward.provenance.verify import verify_model

    return verify_model(
        model_path, verifier, signature_path, hashing, ignore_unsigned_files=ignore_unsigned_files
    )
