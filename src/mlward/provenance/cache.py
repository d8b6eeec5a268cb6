"""Incremental digest cache: (model root, resource, algorithm) -> file identity and digest.

A file whose size, mtime, ctime, inode and device are unchanged since it was hashed is not read
again. ctime is part of the identity because a user cannot set it (``touch -d`` moves mtime, not
ctime), so restoring a tampered file's mtime does not make a stale digest match. The cache is a
trust input: it lives in the user's own cache folder (mode 0700), and ``paranoid`` re-hashes
everything without reading it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from mlward.provenance.errors import HashingError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
  root TEXT NOT NULL,
  name TEXT NOT NULL,
  spec TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  device INTEGER NOT NULL,
  digest BLOB NOT NULL,
  PRIMARY KEY (root, spec, name)
) WITHOUT ROWID
"""


class FileIdentity(NamedTuple):
    """What must be unchanged for a cached digest to stand for the file's content (a named
    tuple: one is built per file on every run)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def default_cache_path() -> str:
    """``$MLWARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlward``, else ``~/.cache/mlward``."""
    folder = os.environ.get("MLWARD_CACHE_DIR")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "mlward")
    return os.path.join(folder, "digests.sqlite3")


class DigestCache:
    """One SQLite file; read once per hashing run, written once at its end."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise HashingError(
                f"cannot open the digest cache {path}: {exc}",
                fix="Set MLWARD_CACHE_DIR to a folder you can write to, or pass --no-cache.",
            ) from exc

    def load(self, root: str, spec: str) -> dict[str, tuple[tuple[int, ...], bytes]]:
        """Resource name -> (identity as a plain tuple, digest); a plain tuple compares equal
        to the ``FileIdentity`` with the same fields and is cheaper to build."""
        rows = self._db.execute(
            "SELECT name, size, mtime_ns, ctime_ns, inode, device, digest FROM digests "
            "WHERE root = ? AND spec = ?",
            (root, spec),
        )
        return {row[0]: (row[1:6], row[6]) for row in rows}

    def store(self, root: str, spec: str, rows: Iterable[tuple[str, FileIdentity, bytes]]) -> None:
        values = [
            (root, spec, name, i.size, i.mtime_ns, i.ctime_ns, i.inode, i.device, digest)
            for name, i, digest in rows
        ]
        if not values:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO digests (root, spec, name, size, mtime_ns, ctime_ns, "
                "inode, device, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            self._db.execute("COMMIT")
        except sqlite3.Error:
            # A cache that cannot be written only costs time on the next run.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()
