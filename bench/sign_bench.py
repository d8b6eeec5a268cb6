"""Signing benchmark: mlward against the reference model_signing (PyPI model-signing 1.1.1).

Usage (from the repo root; ``bench/run.sh`` calls this after the scanner benchmark)::

    .venv/bin/python bench/sign_bench.py [--cases big small] [--repeats 3] [--skip-setup]

Both tools run as subprocesses with the same hashing configuration: SHA-256 over whole files,
the default ignore set (git files), the same EC P-256 key. A run that gives a different root
digest from its peer fails the harness, so the numbers compare the same work.

Cases (datasets in ``bench/.data/sign/``, deterministic, rebuilt only when missing):

- ``big``: a 500 MB model folder (5 files of 100 MB, like sharded safetensors): sign, verify.
- ``small``: 10,000 files of 1-8 KiB in 100 folders: sign, verify.
- re-verify of an unchanged model (both datasets): mlward with its digest cache warm (one
  untimed verify fills it) against model_signing, which has no cache and hashes again.

mlward's sign and plain verify runs pass ``--no-cache``, so they hash every byte like the peer.
Every run is repeated (``--repeats``, default 5; median wall time, spawn to reap; the tools
take turns so load from other work hits both alike), after one untimed warm-up per tool and
with the datasets in the page cache; the load average at each spawn is recorded. The
model_signing venv lives in ``bench/.venvs/model-signing`` (with pyopenssl, which 1.1.1
imports without declaring).

Targets (judged on median wall time): mlward at least as fast on ``big`` (sign and verify), at
least 2x on ``small`` (sign and verify), at least 5x on the cached re-verify. The table also
shows the ratio of CPU time (user + system), which other work on the machine disturbs less.
Results: ``bench/results/sign-<UTC>.json``.
Exit code: 0 targets met, 1 a target missed, 2 the harness failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_bench import (
    BENCH,
    DEV_VENV,
    ROOT,
    Capture,
    Outcome,
    Tool,
    dist_version,
    ensure_peer_env,
    git_rev,
    host_info,
    log,
    measure,
    venv_python,
    warm_page_cache,
)

MB = 1000 * 1000
PEER = "model-signing"
PEER_PIN = "model-signing==1.1.1"
BIG_FILES, BIG_FILE_BYTES = 5, 100 * MB
SMALL_FILES, SMALL_FOLDERS = 10_000, 100
SEED = 20261127


# =============================================================================================
# Datasets and keys
# =============================================================================================


def _build_big(folder: Path) -> None:
    rng = random.Random(SEED)
    folder.mkdir(parents=True)
    for index in range(BIG_FILES):
        path = folder / f"model-{index + 1:05d}-of-{BIG_FILES:05d}.safetensors"
        with open(path, "wb") as handle:
            remaining = BIG_FILE_BYTES
            while remaining:
                n = min(remaining, 16 * MB)
                handle.write(rng.randbytes(n))
                remaining -= n
    (folder / "config.json").write_text('{"architectures": ["Bench"], "hidden_size": 4096}\n')


def _build_small(folder: Path) -> None:
    rng = random.Random(SEED + 1)
    for index in range(SMALL_FILES):
        sub = folder / f"part{index % SMALL_FOLDERS:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"tensor{index:05d}.bin").write_bytes(rng.randbytes(rng.randint(1024, 8192)))


def ensure_datasets(data: Path) -> dict[str, Path]:
    """Build the datasets once; a stamp records what was built."""
    root = data / "sign"
    stamp = root / "stamp.json"
    want = json.dumps(
        {"seed": SEED, "big": [BIG_FILES, BIG_FILE_BYTES], "small": [SMALL_FILES, SMALL_FOLDERS]}
    )
    paths = {"big": root / "big", "small": root / "small"}
    if not (
        stamp.exists() and stamp.read_text() == want and all(p.exists() for p in paths.values())
    ):
        log("building signing datasets (500 MB folder, 10,000 small files) ...")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        _build_big(paths["big"])
        _build_small(paths["small"])
        stamp.write_text(want)
    return paths


def ensure_keys(folder: Path) -> tuple[Path, Path]:
    private, public = folder / "key.pem", folder / "key.pub"
    if private.exists() and public.exists():
        return private, public
    folder.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys\n"
        "from cryptography.hazmat.primitives import serialization as s\n"
        "from cryptography.hazmat.primitives.asymmetric import ec\n"
        "k = ec.generate_private_key(ec.SECP256R1())\n"
        "open(sys.argv[1], 'wb').write(k.private_bytes(s.Encoding.PEM, "
        "s.PrivateFormat.PKCS8, s.NoEncryption()))\n"
        "open(sys.argv[2], 'wb').write(k.public_key().public_bytes(s.Encoding.PEM, "
        "s.PublicFormat.SubjectPublicKeyInfo))\n"
    )
    subprocess.run(
        [str(DEV_VENV / "bin" / "python"), "-c", code, str(private), str(public)], check=True
    )
    return private, public


# =============================================================================================
# Runs
# =============================================================================================


@dataclass
class Run:
    case: str  # e.g. "big sign"
    tool: str
    argv: list[str]
    walls_s: list[float]
    median_s: float
    rc: int | None
    root_digest: str | None
    stderr_tail: str
    load1: list[float]  # 1-minute load average at each spawn: other work skews times
    cpu_s: list[float]  # user + system CPU of the process tree: less sensitive to that load


def _peer_tool() -> Tool:
    def unused(_: Capture) -> Outcome:
        return Outcome("n/a", "", True)

    return Tool(
        "model_signing",
        PEER,
        PEER_PIN,
        venv_python(PEER),
        lambda p: [str(p)],
        unused,
        undeclared=("pyopenssl",),
    )


def _root_digest(signature: Path) -> str | None:
    try:
        bundle = json.loads(signature.read_text())
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        return str(statement["subject"][0]["digest"]["sha256"])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _env(home: Path, cache: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "NO_COLOR": "1",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "MLWARD_CACHE_DIR": str(cache),
    }


@dataclass
class Job:
    tool: str
    argv: list[str]
    cache: Path
    signature: Path | None = None  # read back for the root digest after a sign run


def timed(case: str, jobs: list[Job], work: Path, repeats: int, timeout: float) -> list[Run]:
    """Run the jobs in turns (A B A B ...) so load from other work hits every tool alike."""
    walls: dict[str, list[float]] = {job.tool: [] for job in jobs}
    loads: dict[str, list[float]] = {job.tool: [] for job in jobs}
    cpus: dict[str, list[float]] = {job.tool: [] for job in jobs}
    last: dict[str, tuple[int | None, str]] = {}
    for attempt in range(repeats):
        for job in jobs:
            if job.tool in last and last[job.tool][0] != 0:
                continue
            run_dir = work / f"{case.replace(' ', '_')}__{job.tool}__{attempt}"
            shutil.rmtree(run_dir, ignore_errors=True)
            (run_dir / "home").mkdir(parents=True)
            m, cap = measure(job.argv, _env(run_dir / "home", job.cache), run_dir, timeout, run_dir)
            walls[job.tool].append(m.wall_s)
            loads[job.tool].append(m.load1_before)
            cpus[job.tool].append(m.cpu_user_s + m.cpu_sys_s)
            last[job.tool] = (m.rc, cap.stderr)
    return [
        Run(
            case=case,
            tool=job.tool,
            argv=job.argv,
            walls_s=walls[job.tool],
            median_s=statistics.median(walls[job.tool]),
            rc=last[job.tool][0],
            root_digest=_root_digest(job.signature) if job.signature else None,
            stderr_tail="\n".join(last[job.tool][1].splitlines()[-5:]),
            load1=loads[job.tool],
            cpu_s=cpus[job.tool],
        )
        for job in jobs
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="mlward vs model_signing signing benchmark")
    ap.add_argument("--cases", nargs="*", choices=("big", "small"), default=["big", "small"])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--data", type=Path, default=BENCH / ".data")
    ap.add_argument("--results", type=Path, default=BENCH / "results")
    ap.add_argument("--mlward", type=Path, default=DEV_VENV / "bin" / "mlward")
    ap.add_argument("--skip-setup", action="store_true", help="do not create/check the peer venv")
    args = ap.parse_args(argv)

    mlward = args.mlward.absolute()
    if not (mlward.exists() and os.access(mlward, os.X_OK)):
        log(f"mlward CLI not found at {mlward}: nothing to compare")
        return 2
    peer = _peer_tool()
    try:
        if not args.skip_setup:
            base_python = subprocess.run(
                [str(DEV_VENV / "bin" / "python"), "-c", "import sys; print(sys._base_executable)"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            ensure_peer_env(peer, base_python)
        peer_cli = peer.python.parent / "model_signing"
        datasets = ensure_datasets(args.data)
        private, public = ensure_keys(args.data / "sign" / "keys")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        log(f"setup failed: {exc}")
        return 2
    versions = {"mlward": dist_version(DEV_VENV / "bin" / "python", "mlward"),
                "model_signing": dist_version(peer.python, PEER)}  # fmt: skip
    log(f"mlward {versions['mlward']} vs model_signing {versions['model_signing']}")

    work = args.data / "sign-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runs: list[Run] = []
    failures: list[str] = []

    def cmd(tool: str, action: str, model: Path, signature: Path, *extra: str) -> list[str]:
        if tool == "mlward":
            flag = "--private-key" if action == "sign" else "--public-key"
        else:
            flag = "--private_key" if action == "sign" else "--public_key"
        exe = mlward if tool == "mlward" else peer_cli
        key = private if action == "sign" else public
        return [
            str(exe),
            action,
            "key",
            flag,
            str(key),
            "--signature",
            str(signature),
            *extra,
            str(model),
        ]

    for name in args.cases:
        model = datasets[name]
        log(f"case {name}: warming the page cache ...")
        warm_page_cache(model)
        sigs = {tool: work / f"{name}-{tool}.sig" for tool in ("mlward", "model_signing")}
        no_cache = work / "no-cache"  # never filled: --no-cache runs do not touch it
        warm_cache = work / f"{name}-cache"
        tools = ("mlward", "model_signing")

        def extra(tool: str) -> tuple[str, ...]:
            return ("--no-cache",) if tool == "mlward" else ()

        # Untimed warm-up of both tools (imports, .pyc files).
        timed(f"{name} warmup",
              [Job(t, cmd(t, "sign", model, sigs[t], *extra(t)), no_cache) for t in tools],
              work, 1, args.timeout)  # fmt: skip
        for action in ("sign", "verify"):
            case = f"{name} {action}"
            jobs = [
                Job(t, cmd(t, action, model, sigs[t], *extra(t)), no_cache,
                    sigs[t] if action == "sign" else None)
                for t in tools
            ]  # fmt: skip
            for run in timed(case, jobs, work, args.repeats, args.timeout):
                runs.append(run)
                log(f"{case:<16} {run.tool:<14} {run.median_s:8.3f} s  rc={run.rc}")
                if run.rc != 0:
                    failures.append(f"{case} {run.tool}: exit {run.rc}: {run.stderr_tail}")
        digests = {r.tool: r.root_digest for r in runs if r.case == f"{name} sign"}
        if len(set(digests.values())) != 1 or None in digests.values():
            failures.append(f"{name}: root digests differ, not the same hashing: {digests}")
        # Re-verify an unchanged model: mlward with a warm cache, the peer as it always runs.
        fill = Job("mlward", cmd("mlward", "verify", model, sigs["mlward"]), warm_cache)
        timed(f"{name} fill-cache", [fill], work, 1, args.timeout)
        case = f"{name} re-verify"
        jobs = [Job(t, cmd(t, "verify", model, sigs[t]), warm_cache) for t in tools]
        for run in timed(case, jobs, work, args.repeats, args.timeout):
            runs.append(run)
            log(f"{case:<16} {run.tool:<14} {run.median_s:8.3f} s  rc={run.rc}")
            if run.rc != 0:
                failures.append(f"{case} {run.tool}: exit {run.rc}: {run.stderr_tail}")

    # Report
    targets = {"big sign": 1.0, "big verify": 1.0, "small sign": 2.0, "small verify": 2.0,
               "big re-verify": 5.0, "small re-verify": 5.0}  # fmt: skip
    by_case: dict[str, dict[str, Run]] = {}
    for run in runs:
        by_case.setdefault(run.case, {})[run.tool] = run
    print()
    print(
        f"{'case':<16}{'mlward s':>10}{'model_signing s':>17}{'speed-up':>10}{'target':>8}  met"
        f"{'cpu ratio':>11}{'load':>6}"
    )
    table: list[dict[str, Any]] = []
    missed = []
    for case, pair in by_case.items():
        ours, theirs = pair.get("mlward"), pair.get("model_signing")
        if ours is None or theirs is None:
            continue
        ratio = theirs.median_s / ours.median_s if ours.median_s > 0 else None
        our_cpu, their_cpu = statistics.median(ours.cpu_s), statistics.median(theirs.cpu_s)
        cpu_ratio = their_cpu / our_cpu if our_cpu > 0 else None
        load = statistics.mean(ours.load1 + theirs.load1)
        target = targets.get(case)
        met = ratio is not None and target is not None and ratio >= target
        if target is not None and not met:
            missed.append(case)
        print(
            f"{case:<16}{ours.median_s:>10.3f}{theirs.median_s:>17.3f}"
            f"{(f'{ratio:.2f}x' if ratio else 'n/a'):>10}{(f'{target:g}x' if target else ''):>8}"
            f"  {'yes' if met else 'NO ':<3}"
            f"{(f'{cpu_ratio:.2f}x' if cpu_ratio else 'n/a'):>11}{load:>6.1f}"
        )
        table.append({"case": case, "mlward_s": ours.median_s, "model_signing_s": theirs.median_s,
                      "speedup": ratio, "target": target, "met": met,
                      "cpu_ratio": cpu_ratio, "mean_load1": load})  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"sign-{stamp}.json"
    doc = {
        "kind": "sign-bench",
        "when": stamp,
        "git": git_rev(),
        "host": host_info(),
        "versions": versions,
        "config": {"hashing": "sha256 per file, git paths ignored", "repeats": args.repeats,
                   "big": [BIG_FILES, BIG_FILE_BYTES], "small": [SMALL_FILES, SMALL_FOLDERS]},
        "table": table,
        "runs": [asdict(r) for r in runs],
        "failures": failures,
        "missed": missed,
    }  # fmt: skip
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if failures:
        for failure in failures:
            log(f"FAILED: {failure}")
        return 2
    if missed:
        log(f"targets missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
