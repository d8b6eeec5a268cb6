"""Scan a file or directory tree with fickling's library API (run in fickling's own venv).

fickling's CLI (``fickling --check-safety FILE``) reads one raw pickle stream: it cannot walk a
directory and it does not open PyTorch zip checkpoints. Its only multi-file scanner is the
Hugging Face path in ``fickling.cli._scan_huggingface``; this driver applies the same per-file
dispatch to local files, in one process:

* zip (``zipfile.is_zipfile`` or a ``.pt``/``.pth`` name) -> ``fickling.scan_zip_archive``
  (scans the archive's ``.pkl``/``.pickle``/``.bin`` members, e.g. torch's ``data.pkl``);
* a pickle (first byte is the PROTO opcode) or a ``.bin``/``.pkl``/``.pickle`` name ->
  ``fickling.scan_file``;
* anything else (``.npy``, compressed joblib, ...) is skipped, as fickling's own scan skips it.

fickling uses ``fickling.polyglot.find_file_properties`` for that dispatch, which imports torch;
the stdlib checks here avoid that import, which only makes fickling faster and leaner.

Prints one JSON object; exit code 0 = every scanned file likely safe, 1 = something was flagged
or failed to parse (fickling's own convention), 2 = the driver itself failed.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import fickling

RAW_PICKLE_EXTENSIONS = frozenset({".bin", ".pkl", ".pickle"})
ZIP_PICKLE_EXTENSIONS = frozenset({".pt", ".pth"})
PICKLE_PROTO = 0x80


def _iter_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(Path(dirpath) / name for name in sorted(filenames))
    return out


def _scan_one(path: Path) -> tuple[str, list[str]]:
    """Return (status, messages); status is clean, flagged, error or skipped."""
    ext = PurePosixPath(path.name).suffix.lower()
    with open(path, "rb") as f:
        first = f.read(1)
    results: list[Any]
    if zipfile.is_zipfile(path) or ext in ZIP_PICKLE_EXTENSIONS:
        results = list(fickling.scan_zip_archive(str(path), graceful=True).values())
    elif (first and first[0] == PICKLE_PROTO) or ext in RAW_PICKLE_EXTENSIONS:
        results = [fickling.scan_file(str(path), graceful=True)]
    else:
        return "skipped", []
    errors = [e for r in results for e in r.errors]
    if errors:
        return "error", errors[:3]
    if any(not r.is_safe for r in results):
        worst = max(r.severity for r in results)
        return "flagged", [worst.name]
    return "clean", []


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: peer_fickling.py PATH", file=sys.stderr)
        return 2
    counts = {"clean": 0, "flagged": 0, "error": 0, "skipped": 0, "crashed": 0}
    examples: dict[str, list[str]] = {}
    for path in _iter_files(Path(argv[1])):
        try:
            status, messages = _scan_one(path)
        except Exception as exc:  # a fickling crash on one file is a result, not a harness bug
            status, messages = "crashed", [f"{type(exc).__name__}: {exc}"[:300]]
        counts[status] += 1
        if messages and len(examples.setdefault(status, [])) < 3:
            examples[status].append(f"{path.name}: {'; '.join(messages)[:300]}")
    print(
        json.dumps(
            {
                "tool": "fickling",
                "version": fickling.__version__,
                "counts": counts,
                "examples": examples,
            }
        )
    )
    return 1 if counts["flagged"] or counts["error"] or counts["crashed"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
