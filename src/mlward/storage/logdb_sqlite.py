"""The transparency log in one SQLite file (WAL mode; writers serialised by BEGIN IMMEDIATE)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from mlward.errors import LogError
from mlward.storage.logdb import SCHEMA_VERSION, EntryRow, NodeKey, NodeRow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tlog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tlog_entries (
  idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_nodes (
  level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tlog_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
"""
# Writers queue behind each other for this long before giving up with an error.
_BUSY_TIMEOUT_MS = 120_000


def _blob(value: object) -> bytes:
    """SQLite columns take any type; a value someone rewrote as text (or a number) must reach
    verification as bytes that differ, not crash it."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else repr(value).encode()


class _SqliteView:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def size(self) -> int:
        row = self._conn.execute("SELECT MAX(idx) FROM tlog_entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM tlog_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        # Point lookups on the primary key: in-process, one each is cheaper than a big IN query.
        found: dict[NodeKey, bytes] = {}
        leaf = "SELECT leaf_hash FROM tlog_entries WHERE idx = ?"
        inner = "SELECT hash FROM tlog_nodes WHERE level = ? AND idx = ?"
        for key in keys:
            if key[0] == 0:
                row = self._conn.execute(leaf, (key[1],)).fetchone()
            else:
                row = self._conn.execute(inner, key).fetchone()
            if row is not None:
                found[key] = _blob(row[0])
        return found

    def entries(self, start: int, stop: int) -> list[tuple[int, bytes]]:
        rows = self._conn.execute(
            "SELECT idx, body FROM tlog_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, stop),
        )
        return [(int(i), _blob(b)) for i, b in rows]

    def iter_entries(self) -> Iterator[tuple[int, bytes]]:
        for i, body in self._conn.execute("SELECT idx, body FROM tlog_entries ORDER BY idx"):
            yield int(i), _blob(body)

    def iter_level(self, level: int) -> Iterator[tuple[int, bytes]]:
        if level == 0:
            rows = self._conn.execute("SELECT idx, leaf_hash FROM tlog_entries ORDER BY idx")
        else:
            query = "SELECT idx, hash FROM tlog_nodes WHERE level = ? ORDER BY idx"
            rows = self._conn.execute(query, (level,))
        for i, digest in rows:
            yield int(i), _blob(digest)

    def levels(self) -> dict[int, int]:
        rows = self._conn.execute("SELECT level, COUNT(*) FROM tlog_nodes GROUP BY level")
        counts = {int(level): int(count) for level, count in rows}
        counts[0] = int(self._conn.execute("SELECT COUNT(*) FROM tlog_entries").fetchone()[0])
        return counts

    def checkpoints(self) -> list[tuple[int, str]]:
        rows = self._conn.execute("SELECT size, note FROM tlog_checkpoints ORDER BY size")
        return [(int(s), str(n)) for s, n in rows]

    def latest_checkpoint(self) -> tuple[int, str] | None:
        row = self._conn.execute(
            "SELECT size, note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO tlog_meta VALUES (?, ?)", (key, value))

    def add(
        self,
        entries: Sequence[EntryRow],
        nodes: Sequence[NodeRow],
        checkpoint: tuple[int, str] | None,
    ) -> None:
        self._conn.executemany("INSERT INTO tlog_entries VALUES (?, ?, ?)", entries)
        self._conn.executemany("INSERT INTO tlog_nodes VALUES (?, ?, ?)", nodes)
        if checkpoint is not None:
            self._conn.execute("INSERT INTO tlog_checkpoints VALUES (?, ?)", checkpoint)


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.location = path
        try:
            # Autocommit mode: transactions are opened explicitly, BEGIN IMMEDIATE for writers.
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1e3)
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                raise LogError(
                    f"{path}: SQLite cannot use write-ahead logging here",
                    fix="Put the log on a local file system (not a network share).",
                )
            # A killed writer loses at most its open transaction; NORMAL only risks the last
            # commits on power loss, never the file's consistency.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self.writing() as view:
                for statement in _SCHEMA.split(";"):
                    self._conn.execute(statement)
                version = view.meta("schema")
                if version is None:
                    view.set_meta("schema", SCHEMA_VERSION)
                elif version != SCHEMA_VERSION:
                    raise LogError(
                        f"{path}: log schema {version} is not {SCHEMA_VERSION}",
                        fix="Open it with the mlward version that wrote it.",
                    )
        except sqlite3.DatabaseError as exc:
            raise LogError(
                f"{path}: cannot open the log database: {exc}",
                fix="Pass the path of an mlward log (or a new file) you can write to.",
            ) from exc

    @contextmanager
    def reading(self) -> Iterator[_SqliteView]:
        self._conn.execute("BEGIN")
        try:
            yield _SqliteView(self._conn)
        finally:
            self._conn.execute("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[_SqliteView]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteView(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
