"""Parallel scans: same results as one process, in input order, and nothing lost to a crash."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from mlward.options import ScanOptions
from mlward.results import ArtifactResult
from mlward.scanning import workers
from mlward.scanning.engine import Scanner

pytestmark = pytest.mark.skipif(not workers.can_fork(), reason="needs os.fork")


def _files(tmp_path: Path, count: int) -> list[str]:
    paths = []
    for number in range(count):
        path = tmp_path / f"f{number:03}.pkl"
        if number % 7 == 3:
            # An untrusted global now and then, so verdicts differ between files.
            path.write_bytes(b"cmypkg\nThing\n)R.")
        else:
            path.write_bytes(pickle.dumps({"n": number, "xs": list(range(number % 5))}))
        paths.append(str(path))
    return paths


def _comparable(results: list[ArtifactResult]) -> list[tuple[object, ...]]:
    return [(r.path, r.verdict, r.imports, r.findings, r.members) for r in results]


@pytest.mark.parametrize("jobs", [2, 3])
def test_parallel_results_match_one_process_in_input_order(tmp_path: Path, jobs: int) -> None:
    files = _files(tmp_path, 150)
    scanner = Scanner(ScanOptions())
    serial = [scanner.scan_path(path) for path in files]
    parallel = workers.scan_parallel(scanner, files, jobs, None)
    assert _comparable(parallel) == _comparable(serial)


def test_progress_reaches_the_total(tmp_path: Path) -> None:
    files = _files(tmp_path, 90)
    seen: list[tuple[int, int]] = []
    workers.scan_parallel(Scanner(ScanOptions()), files, 2, lambda d, t, _p: seen.append((d, t)))
    assert seen[-1] == (90, 90)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_worker_that_dies_loses_no_file(tmp_path: Path) -> None:
    files = _files(tmp_path, 120)
    scanner = Scanner(ScanOptions())
    parent = os.getpid()
    real = scanner.scan_path

    def dies_in_the_worker(path: str) -> ArtifactResult:
        if os.getpid() != parent:
            os._exit(3)  # as a segfault in a C library would end it
        return real(path)

    scanner.scan_path = dies_in_the_worker  # type: ignore[method-assign]
    results = workers.scan_parallel(scanner, files, 2, None)
    assert [r.path for r in results] == files
    scanner.scan_path = real  # type: ignore[method-assign]
    assert _comparable(results) == _comparable([real(path) for path in files])
