"""Storage for the transparency log: a dumb, transactional table of entries, subtree hashes
and signed checkpoints. The log's meaning (hashing, proofs, signatures) lives in
``mlward.provenance.tlog``; a store only keeps rows and serialises writers.

Two backends behind one protocol: SQLite for a file path, PostgreSQL for a database URL.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

# (level, index) of a complete subtree; level 0 is the leaf hashes, kept in the entry rows.
NodeKey = tuple[int, int]
# (level >= 1, index, hash) and (index, leaf hash, entry bytes).
NodeRow = tuple[int, int, bytes]
EntryRow = tuple[int, bytes, bytes]

SCHEMA_VERSION = "1"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class LogView(Protocol):
    """A consistent snapshot of the log, valid inside ``reading()`` or ``writing()``."""

    def size(self) -> int:
        """One more than the highest entry index (0 when empty)."""

    def meta(self, key: str) -> str | None: ...

    def nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hashes of these subtrees; missing ones are left out."""

    def entries(self, start: int, stop: int) -> list[tuple[int, bytes]]: ...

    def iter_entries(self) -> Iterator[tuple[int, bytes]]:
        """Every stored entry in index order, streamed."""

    def iter_level(self, level: int) -> Iterator[tuple[int, bytes]]:
        """Every stored subtree hash of one level in index order, streamed."""

    def levels(self) -> dict[int, int]:
        """How many subtree hashes each level stores."""

    def checkpoints(self) -> list[tuple[int, str]]:
        """Every stored signed checkpoint as (tree size, note), smallest first."""

    def latest_checkpoint(self) -> tuple[int, str] | None: ...


class LogWriter(LogView, Protocol):
    """The single writer's view: whatever it adds commits atomically when the block ends."""

    def set_meta(self, key: str, value: str) -> None: ...

    def add(
        self,
        entries: Sequence[EntryRow],
        nodes: Sequence[NodeRow],
        checkpoint: tuple[int, str] | None,
    ) -> None: ...


class LogStore(Protocol):
    location: str

    def reading(self) -> AbstractContextManager[LogView]: ...

    def writing(self) -> AbstractContextManager[LogWriter]:
        """An exclusive write transaction: other writers wait, readers keep their snapshot."""

    def close(self) -> None: ...


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def open_store(location: str) -> LogStore:
    """The store at a file path (SQLite, created if missing) or a ``postgresql://`` URL."""
    if is_postgres(location):
        from mlward.storage.logdb_postgres import PostgresStore

        return PostgresStore(location)
    from mlward.storage.logdb_sqlite import SqliteStore

    return SqliteStore(location)
