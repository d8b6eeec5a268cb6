"""The transparency log in PostgreSQL (psycopg 3): writers serialised by an advisory lock."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlward.errors import LogError
from mlward.storage.logdb import SCHEMA_VERSION, EntryRow, NodeKey, NodeRow

if TYPE_CHECKING:
    import psycopg

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tlog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tlog_entries (idx BIGINT PRIMARY KEY, leaf_hash BYTEA NOT NULL,"
    " body BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tlog_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL,"
    " hash BYTEA NOT NULL, PRIMARY KEY (level, idx))",
    "CREATE TABLE IF NOT EXISTS tlog_checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL)",
)
# One fixed lock id for every mlward log writer on a database (any constant would do).
_LOCK_ID = 0x3D6B_A4C1_2F0E_5A77
_FETCH_ROWS = 10_000


class _PostgresView:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def _one(self, query: str, params: Sequence[Any] = ()) -> Any:
        row = self._conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def size(self) -> int:
        top = self._one("SELECT MAX(idx) FROM tlog_entries")
        return 0 if top is None else int(top) + 1

    def meta(self, key: str) -> str | None:
        value = self._one("SELECT value FROM tlog_meta WHERE key = %s", (key,))
        return None if value is None else str(value)

    def nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        levels = [level for level, _ in keys]
        indexes = [index for _, index in keys]
        # One round trip: leaf hashes live with their entries, the rest in tlog_nodes.
        rows = self._conn.execute(
            "SELECT n.level, n.idx, n.hash FROM tlog_nodes n"
            " JOIN unnest(%s::int[], %s::bigint[]) AS k(level, idx)"
            " ON n.level = k.level AND n.idx = k.idx"
            " UNION ALL SELECT 0, e.idx, e.leaf_hash FROM tlog_entries e"
            " WHERE e.idx = ANY(%s::bigint[])",
            (levels, indexes, [index for level, index in keys if level == 0]),
        )
        return {(int(level), int(i)): bytes(h) for level, i, h in rows}

    def entries(self, start: int, stop: int) -> list[tuple[int, bytes]]:
        rows = self._conn.execute(
            "SELECT idx, body FROM tlog_entries WHERE idx >= %s AND idx < %s ORDER BY idx",
            (start, stop),
        )
        return [(int(i), bytes(b)) for i, b in rows]

    def _stream(self, query: str, params: Sequence[Any]) -> Iterator[tuple[int, bytes]]:
        # A server-side cursor streams millions of rows without holding them in memory.
        with self._conn.cursor(name="mlward_tlog_stream") as cursor:
            cursor.itersize = _FETCH_ROWS
            cursor.execute(query, params)
            for i, data in cursor:
                yield int(i), bytes(data)

    def iter_entries(self) -> Iterator[tuple[int, bytes]]:
        return self._stream("SELECT idx, body FROM tlog_entries ORDER BY idx", ())

    def iter_level(self, level: int) -> Iterator[tuple[int, bytes]]:
        if level == 0:
            return self._stream("SELECT idx, leaf_hash FROM tlog_entries ORDER BY idx", ())
        query = "SELECT idx, hash FROM tlog_nodes WHERE level = %s ORDER BY idx"
        return self._stream(query, (level,))

    def levels(self) -> dict[int, int]:
        rows = self._conn.execute("SELECT level, COUNT(*) FROM tlog_nodes GROUP BY level")
        counts = {int(level): int(count) for level, count in rows}
        counts[0] = int(self._one("SELECT COUNT(*) FROM tlog_entries"))
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
        self._conn.execute(
            "INSERT INTO tlog_meta VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (key, value),
        )

    def add(
        self,
        entries: Sequence[EntryRow],
        nodes: Sequence[NodeRow],
        checkpoint: tuple[int, str] | None,
    ) -> None:
        with self._conn.cursor() as cursor:
            # COPY is several times faster than row-by-row INSERTs for large batches.
            with cursor.copy("COPY tlog_entries (idx, leaf_hash, body) FROM STDIN") as copy:
                for row in entries:
                    copy.write_row(row)
            with cursor.copy("COPY tlog_nodes (level, idx, hash) FROM STDIN") as copy:
                for node in nodes:
                    copy.write_row(node)
            if checkpoint is not None:
                cursor.execute("INSERT INTO tlog_checkpoints VALUES (%s, %s)", checkpoint)


class PostgresStore:
    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise LogError(
                "a PostgreSQL log needs psycopg", fix="pip install 'mlward[postgres]'"
            ) from exc
        self._psycopg = psycopg
        self.location = _redact(url)
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise LogError(
                f"cannot connect to {self.location}: {exc}",
                fix="Check the database URL, that the server runs and that you may log in.",
            ) from exc
        with self.writing() as view:
            for statement in _SCHEMA:
                self._conn.execute(statement)
            version = view.meta("schema")
            if version is None:
                view.set_meta("schema", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise LogError(
                    f"{self.location}: log schema {version} is not {SCHEMA_VERSION}",
                    fix="Open it with the mlward version that wrote it.",
                )

    @contextmanager
    def reading(self) -> Iterator[_PostgresView]:
        # REPEATABLE READ: one snapshot for every query of a verification.
        # Set on the connection, they ride on the BEGIN: no extra round trip.
        self._conn.isolation_level = self._psycopg.IsolationLevel.REPEATABLE_READ
        self._conn.read_only = True
        try:
            with self._conn.transaction():
                yield _PostgresView(self._conn)
        except self._psycopg.Error as exc:
            raise LogError(
                f"{self.location}: {exc}", fix="Check the database server and its logs."
            ) from exc

    @contextmanager
    def writing(self) -> Iterator[_PostgresView]:
        # The advisory lock lasts until the transaction ends, so writers append one at a time
        # and each sees the tree the previous one committed.
        self._conn.isolation_level = None
        self._conn.read_only = False
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                yield _PostgresView(self._conn)
        except self._psycopg.Error as exc:
            raise LogError(
                f"{self.location}: {exc}", fix="Check the database server and its logs."
            ) from exc

    def close(self) -> None:
        self._conn.close()


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
