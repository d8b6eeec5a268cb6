"""Transparency log benchmark: batched appends per second, and inclusion and consistency proof
times at 1,000,000 entries, on SQLite and (when its server binaries are on this machine)
PostgreSQL, against the targets of issue 4. Every number is measured in this run.

    .venv/bin/python bench/log_bench.py [--entries 1000000] [--batch 10000] [--no-postgres]

Each backend: build a log of --entries evidence entries in batches of --batch, a signed
checkpoint per batch (timed: append() calls only; entries are built before); then time
--proofs inclusion proofs at random indexes and --proofs consistency proofs from random old
sizes to the full size (each proof is also checked, untimed); then one full verification.
Results go to stdout and to bench/results/log-<UTC>.json. Exit 0 when the targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlward.provenance.tlog import (  # noqa: E402
    EvidenceEntry,
    EvidenceKind,
    NoteSigner,
    Subject,
    TransparencyLog,
)

TARGET_APPENDS_PER_S = 20_000  # SQLite, batched
TARGET_INCLUSION_MS = 1.0  # at 1,000,000 entries


def log(msg: str) -> None:
    print(f"[log-bench] {msg}", file=sys.stderr, flush=True)


def _batch(start: int, count: int) -> list[EvidenceEntry]:
    # A realistic scan entry: one subject with a full SHA-256 digest, a small payload.
    return [
        EvidenceEntry(
            EvidenceKind.ARTIFACT_SCAN,
            (Subject(f"models/model-{i}.pt", {"sha256": f"{i:064x}"}),),
            {"verdict": "clean", "findings": 0, "scanner": "mlward 0.1.0", "n": i},
        )
        for i in range(start, start + count)
    ]


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "mean_ms": statistics.fmean(ordered) * 1e3,
        "p50_ms": ordered[len(ordered) // 2] * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
    }


def measure(location: str, entries: int, batch: int, proofs: int) -> dict[str, Any]:
    signer = NoteSigner.generate("bench.mlward.local/log")
    rng = random.Random(1)
    appended, append_seconds = 0, 0.0
    with TransparencyLog.open(location, signer) as tlog:
        while appended < entries:
            count = min(batch, entries - appended)
            items = _batch(appended, count)
            started = time.perf_counter()
            tlog.append(items)
            append_seconds += time.perf_counter() - started
            appended += count
            if appended % (10 * batch) == 0 or appended == entries:
                log(f"{location}: {appended:,} entries, {appended / append_seconds:,.0f}/s")
        size = tlog.size()
        inclusion: list[float] = []
        for _ in range(proofs):
            index = rng.randrange(size)
            started = time.perf_counter()
            proof = tlog.prove_inclusion(index)
            inclusion.append(time.perf_counter() - started)
            if not proof.verify(signer.verifier):
                raise SystemExit(f"inclusion proof for {index} does not verify")
        consistency: list[float] = []
        for _ in range(proofs):
            old = rng.randrange(1, size)
            started = time.perf_counter()
            cproof = tlog.prove_consistency(old, size)
            consistency.append(time.perf_counter() - started)
            if not cproof.verify():
                raise SystemExit(f"consistency proof {old} -> {size} does not verify")
        log(f"{location}: full verification of {size:,} entries ...")
        started = time.perf_counter()
        report = tlog.verify(signer.verifier)
        verify_seconds = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"verification failed: {report.problems}")
    return {
        "entries": size,
        "batch": batch,
        "appends_per_s": appended / append_seconds,
        "append_seconds": append_seconds,
        "inclusion": _ms(inclusion),
        "consistency": _ms(consistency),
        "verify_seconds": verify_seconds,
        "checkpoints": report.checkpoints_verified,
    }


def _print(name: str, result: dict[str, Any], targets: bool) -> list[str]:
    missed: list[str] = []
    inc, con = result["inclusion"], result["consistency"]
    rate_ok = result["appends_per_s"] >= TARGET_APPENDS_PER_S
    inc_ok = inc["mean_ms"] < TARGET_INCLUSION_MS
    print(f"\n{name}: {result['entries']:,} entries in batches of {result['batch']:,}")
    rate_target = f"target >= {TARGET_APPENDS_PER_S:,}/s" if targets else "no target"
    print(f"  appends/s (batched)   {result['appends_per_s']:>12,.0f}   {rate_target}", end="")
    print(f"  {'MET' if rate_ok else 'MISSED'}" if targets else "")
    inc_target = f"target < {TARGET_INCLUSION_MS} ms" if targets else "no target"
    print(
        f"  inclusion proof       {inc['mean_ms']:>9.3f} ms   (p50 {inc['p50_ms']:.3f}, "
        f"p99 {inc['p99_ms']:.3f})   {inc_target}",
        end="",
    )
    print(f"  {'MET' if inc_ok else 'MISSED'}" if targets else "")
    print(
        f"  consistency proof     {con['mean_ms']:>9.3f} ms   (p50 {con['p50_ms']:.3f}, "
        f"p99 {con['p99_ms']:.3f})"
    )
    print(
        f"  full verify           {result['verify_seconds']:>9.1f} s    "
        f"({result['checkpoints']} signed checkpoints)"
    )
    if targets and not rate_ok:
        missed.append(f"{name} appends/s")
    if targets and not inc_ok:
        missed.append(f"{name} inclusion proof")
    return missed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--proofs", type=int, default=2_000)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args(argv)

    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlward-log-bench-") as tmp:
        results["sqlite"] = measure(
            os.path.join(tmp, "log.db"), args.entries, args.batch, args.proofs
        )
        size = os.path.getsize(os.path.join(tmp, "log.db"))
        results["sqlite"]["file_bytes"] = size
    missed += _print("SQLite", results["sqlite"], targets=True)
    print(f"  database file         {results['sqlite']['file_bytes'] / 2**20:>9.1f} MiB")

    if not args.no_postgres:
        from tests.pg_server import find_bin_dir, postgres_server

        bin_dir = find_bin_dir()
        if bin_dir is None:
            print("\nPostgreSQL: server binaries not found; skipped (apt-get install postgresql)")
        else:
            with postgres_server(bin_dir) as url:
                results["postgres"] = measure(url, args.entries, args.batch, args.proofs)
            # The targets are set for SQLite; PostgreSQL (fsync off, loopback) is informative.
            _print("PostgreSQL (local server, fsync off)", results["postgres"], targets=False)

    results["missed"] = missed
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"log-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nload average at start {results['load_average']}; results in {out}")
    print("targets:", "all met" if not missed else "MISSED " + ", ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
