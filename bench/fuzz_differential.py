"""A million-case differential run of the pickle analysis against CPython's unpicklers.

Usage: python bench/fuzz_differential.py [--cases N] [--jobs J]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import fuzzing


def _chunk(bounds: tuple[int, int]) -> list[tuple[int, list[str]]]:
    start, count = bounds
    _, failures = fuzzing.run(count, start=start)
    return [(seed, sorted(f"{m}.{n}" for m, n in gap)) for seed, gap in failures]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--start", type=int, default=10_000_000)
    args = parser.parse_args()
    step = 10_000
    chunks = [
        (s, min(step, args.start + args.cases - s))
        for s in range(args.start, args.start + args.cases, step)
    ]
    started = time.perf_counter()
    failures: list[tuple[int, list[str]]] = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for result in pool.map(_chunk, chunks):
            failures.extend(result)
    elapsed = time.perf_counter() - started
    print(
        f"differential fuzz: {args.cases} cases in {elapsed:.1f}s "
        f"({args.cases / elapsed:.0f}/s), {len(failures)} with a missed global"
    )
    for seed, names in failures[:20]:
        print(f"  seed {seed}: missed {', '.join(names)}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
