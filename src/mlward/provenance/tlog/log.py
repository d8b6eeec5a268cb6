"""The append-only evidence log: RFC 9162 tree over stored entries, proofs, signed checkpoints,
and a verification that recomputes everything from the stored entries.

What verification can and cannot detect, for someone who can write the database but does not
hold the signing key:

- Any edit, deletion, insertion or reordering of entries, or of stored hashes, at or below the
  size of a signed checkpoint: the recomputed tree no longer matches the signed root.
- The same inside the tail appended after the latest signed checkpoint only if the stored hashes
  were left alone; that tail is therefore reported as unsigned (an error unless allowed). Signing
  on every append (pass a signer) leaves no such tail.
- Forged or edited checkpoints: their signatures fail.
- Not detectable from the database alone: rolling the whole log back to an earlier signed state
  (deleting the newest entries together with their checkpoints), or replacing it with an old
  copy. A checkpoint kept elsewhere (``trusted`` / ``--checkpoint``), e.g. published by CI or a
  witness, closes that gap: the log must still contain it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlward.errors import LogError
from mlward.provenance.tlog import merkle
from mlward.provenance.tlog.entry import EvidenceEntry
from mlward.provenance.tlog.note import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint
from mlward.storage.logdb import LogStore, LogView, LogWriter, open_store

_H = merkle.HASH_SIZE
# Verification lists this many problems of each kind, then counts the rest.
_LISTED_PER_KIND = 10


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class AppendResult:
    """Where a batch landed: indexes first_index .. first_index + count - 1."""

    first_index: int
    count: int
    size: int
    root_hash: bytes
    checkpoint: str | None


@dataclass(frozen=True)
class InclusionProof:
    """Proof that the entry at ``index`` is in the tree of ``size`` entries with ``root_hash``."""

    index: int
    size: int
    entry: bytes
    hashes: tuple[bytes, ...]
    root_hash: bytes
    checkpoint: str | None = None

    def verify(self, verifier: NoteVerifier | None = None) -> bool:
        """The path leads to the root; with a verifier, the signed checkpoint holds that root."""
        leaf = merkle.leaf_hash(self.entry)
        if not merkle.verify_inclusion(self.index, self.size, leaf, self.hashes, self.root_hash):
            return False
        if verifier is None:
            return True
        if self.checkpoint is None:
            return False
        try:
            signed = open_checkpoint(self.checkpoint, verifier)
        except LogError:
            return False
        return signed.size == self.size and signed.root_hash == self.root_hash

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "mlward-inclusion-proof/v1",
            "index": self.index,
            "size": self.size,
            "entry": self.entry.decode("utf-8"),
            "leaf_hash": _b64(merkle.leaf_hash(self.entry)),
            "hashes": [_b64(h) for h in self.hashes],
            "root_hash": _b64(self.root_hash),
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> InclusionProof:
        try:
            if document["type"] != "mlward-inclusion-proof/v1":
                raise ValueError(f"type {document['type']!r}")
            return cls(
                index=int(document["index"]),
                size=int(document["size"]),
                entry=str(document["entry"]).encode("utf-8"),
                hashes=tuple(base64.b64decode(h, validate=True) for h in document["hashes"]),
                root_hash=base64.b64decode(document["root_hash"], validate=True),
                checkpoint=document.get("checkpoint"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LogError(
                f"not an mlward inclusion proof: {exc}",
                fix="Pass a file written by 'mlward log prove'.",
            ) from exc


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the tree of ``old_size`` entries is a prefix of the tree of ``new_size``."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: tuple[bytes, ...]

    def verify(self) -> bool:
        return merkle.verify_consistency(
            self.old_size, self.new_size, self.old_root, self.new_root, self.hashes
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "mlward-consistency-proof/v1",
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": _b64(self.old_root),
            "new_root": _b64(self.new_root),
            "hashes": [_b64(h) for h in self.hashes],
        }


@dataclass(frozen=True)
class LogProblem:
    """One thing verification found wrong; ``kind`` is stable, ``message`` is for people."""

    kind: str
    message: str


@dataclass(frozen=True)
class LogVerification:
    size: int
    checkpoints_verified: int
    signed_size: int
    problems: tuple[LogProblem, ...] = field(default=())

    @property
    def unsigned_entries(self) -> int:
        return self.size - self.signed_size

    @property
    def ok(self) -> bool:
        return not self.problems


class _Problems:
    def __init__(self) -> None:
        self.listed: list[LogProblem] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= _LISTED_PER_KIND:
            self.listed.append(LogProblem(kind, message))

    def result(self) -> tuple[LogProblem, ...]:
        more = [
            LogProblem(kind, f"... and {count - _LISTED_PER_KIND} more {kind} problems")
            for kind, count in self.counts.items()
            if count > _LISTED_PER_KIND
        ]
        return (*self.listed, *more)


class TransparencyLog:
    """An evidence log in a store; appends are atomic batches, signed when a signer is given."""

    def __init__(self, store: LogStore, signer: NoteSigner | None = None) -> None:
        self._store = store
        self._signer = signer

    @classmethod
    def open(cls, location: str, signer: NoteSigner | None = None) -> TransparencyLog:
        return cls(open_store(location), signer)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def location(self) -> str:
        return self._store.location

    def origin(self) -> str | None:
        with self._store.reading() as view:
            return view.meta("origin")

    def initialize(self, origin: str) -> None:
        """Name the log; its checkpoints carry this origin and its signer key has this name."""
        with self._store.writing() as writer:
            current = writer.meta("origin")
            if current is not None and current != origin:
                raise LogError(
                    f"{self.location} is already the log {current!r}",
                    fix="Use a new database for a new log, or the key named after this one.",
                )
            writer.set_meta("origin", origin)

    def size(self) -> int:
        with self._store.reading() as view:
            return view.size()

    def append(self, entries: Iterable[EvidenceEntry]) -> AppendResult:
        """Append a batch atomically: all of it or (on any error or a kill) none of it."""
        bodies = [e.to_bytes() for e in entries]
        with self._store.writing() as writer:
            origin = self._check_origin(writer)
            start = writer.size()
            frontier_keys = merkle.range_nodes(0, start)
            found = writer.nodes(frontier_keys)
            if len(found) != len(frontier_keys):
                raise LogError(
                    f"{self.location}: stored tree hashes are missing",
                    fix="The database was changed outside mlward; run 'mlward log verify'.",
                )
            # The right edge of the tree as a stack of complete subtrees, largest first; each
            # new leaf merges equal-sized neighbours into their parent, as a binary counter.
            stack = [(level, index, found[(level, index)]) for level, index in frontier_keys]
            rows: list[tuple[int, bytes, bytes]] = []
            nodes: list[tuple[int, int, bytes]] = []
            leaf_hash, node_hash = merkle.leaf_hash, merkle.node_hash
            for index, body in enumerate(bodies, start):
                top = (0, index, leaf_hash(body))
                rows.append((index, top[2], body))
                while stack and stack[-1][0] == top[0]:
                    left = stack.pop()
                    top = (top[0] + 1, left[1] >> 1, node_hash(left[2], top[2]))
                    nodes.append(top)
                stack.append(top)
            size = start + len(bodies)
            root = merkle.EMPTY_ROOT
            if stack:
                root = stack[-1][2]
                for _, _, digest in reversed(stack[:-1]):
                    root = node_hash(digest, root)
            note = None
            if self._signer is not None and origin is not None and bodies:
                note = Checkpoint(origin, size, root).sign(self._signer)
            writer.add(rows, nodes, None if note is None else (size, note))
        return AppendResult(start, len(bodies), size, root, note)

    def _check_origin(self, writer: LogWriter) -> str | None:
        origin = writer.meta("origin")
        if self._signer is None:
            return origin
        if origin is None:
            writer.set_meta("origin", self._signer.name)
            return self._signer.name
        if origin != self._signer.name:
            raise LogError(
                f"the signer key {self._signer.name!r} is not the key of the log {origin!r}",
                fix="Pass the signer key this log was initialised with.",
            )
        return origin

    def sign_checkpoint(self) -> str:
        """Sign and store a checkpoint of the current tree (after unsigned appends)."""
        if self._signer is None:
            raise LogError("signing a checkpoint needs the log's key", fix="Pass --key KEY.")
        with self._store.writing() as writer:
            origin = self._check_origin(writer)
            size = writer.size()
            if size == 0 or origin is None:
                raise LogError("the log is empty", fix="Append entries before signing.")
            latest = writer.latest_checkpoint()
            if latest is not None and latest[0] == size:
                return latest[1]
            note = Checkpoint(origin, size, _root(writer, size)).sign(self._signer)
            writer.add((), (), (size, note))
        return note

    def latest_checkpoint(self) -> str | None:
        with self._store.reading() as view:
            latest = view.latest_checkpoint()
        return None if latest is None else latest[1]

    def root(self, size: int | None = None) -> bytes:
        with self._store.reading() as view:
            return _root(view, view.size() if size is None else size)

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Stored entries by index, in pages, from a snapshot per page."""
        page = 1000
        while stop is None or start < stop:
            with self._store.reading() as view:
                end = view.size() if stop is None else stop
                rows = view.entries(start, min(end, start + page))
            if not rows:
                return
            yield from rows
            start = rows[-1][0] + 1

    def prove_inclusion(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof for one entry; by default against the latest signed checkpoint that covers it."""
        with self._store.reading() as view:
            current = view.size()
            checkpoint = None
            if size is None:
                latest = view.latest_checkpoint()
                if latest is not None and index < latest[0] <= current:
                    size, checkpoint = latest
                else:
                    size = current
            else:
                checkpoint = dict(view.checkpoints()).get(size)
            if not 0 <= index < size <= current:
                raise LogError(
                    f"entry {index} is not in a tree of size {size} (the log has {current})",
                    fix="Pick an index below the size, and a size no larger than the log.",
                )
            ranges = merkle.inclusion_ranges(index, size)
            # One lookup for the path and the root: a database answers in one round trip.
            get = _lookup(view, merkle.nodes_for([*ranges, (0, size)]))
            hashes = [merkle.range_hash(start, end, get) for start, end in ranges]
            root = merkle.range_hash(0, size, get)
            rows = view.entries(index, index + 1)
            if not rows:
                raise LogError(f"entry {index} is missing", fix="Run 'mlward log verify'.")
        return InclusionProof(index, size, rows[0][1], tuple(hashes), root, checkpoint)

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        with self._store.reading() as view:
            new = view.size() if new_size is None else new_size
            if not 0 < old_size <= new <= view.size():
                raise LogError(
                    f"no consistency proof from size {old_size} to {new}",
                    fix="Pick 0 < old size <= new size <= the log's size.",
                )
            ranges = merkle.consistency_ranges(old_size, new) if old_size < new else []
            get = _lookup(view, merkle.nodes_for([*ranges, (0, old_size), (0, new)]))
            hashes = [merkle.range_hash(start, end, get) for start, end in ranges]
            old_root, new_root = merkle.range_hash(0, old_size, get), merkle.range_hash(0, new, get)
        return ConsistencyProof(old_size, new, old_root, new_root, tuple(hashes))

    def verify(self, verifier: NoteVerifier, trusted: str | None = None) -> LogVerification:
        """Recompute every leaf and subtree hash from the stored entries and check them, the
        stored hashes, and every signed checkpoint (plus ``trusted``, a checkpoint kept
        elsewhere) against that recomputed tree."""
        problems = _Problems()
        with self._store.reading() as view:
            size = view.size()
            signed = _signed_checkpoints(view, verifier, problems)
            verified = len(signed)
            if trusted is not None:
                outside = open_checkpoint(trusted, verifier)  # a bad one is an error, not a finding
                signed.append((outside.size, outside.root_hash, "the trusted checkpoint"))
            levels = _recompute(view, problems)
            for cp_size, cp_root, what in signed:
                if cp_size > size:
                    problems.add(
                        "truncated",
                        f"{what} covers {cp_size} entries but the log holds {size}: entries "
                        "were deleted",
                    )
                elif _levels_root(levels, cp_size) != cp_root:
                    problems.add(
                        "root-mismatch",
                        f"the tree of the first {cp_size} entries does not match {what}: "
                        "entries were changed, deleted, inserted or reordered",
                    )
        signed_size = max((s for s, _, _ in signed if s <= size), default=0)
        if signed_size < size:
            problems.add(
                "unsigned",
                f"entries {signed_size}..{size - 1} are not covered by a signed checkpoint, so "
                "changes to them cannot be detected",
            )
        return LogVerification(size, verified, signed_size, problems.result())


def _root(view: LogView, size: int) -> bytes:
    return merkle.range_hash(0, size, _lookup(view, merkle.nodes_for([(0, size)])))


def _lookup(view: LogView, keys: set[merkle.NodeKey]) -> Any:
    found = view.nodes(keys)
    if len(found) != len(keys):
        raise LogError(
            "stored tree hashes are missing",
            fix="The database was changed outside mlward; run 'mlward log verify'.",
        )
    return found.__getitem__


def _signed_checkpoints(
    view: LogView, verifier: NoteVerifier, problems: _Problems
) -> list[tuple[int, bytes, str]]:
    signed: list[tuple[int, bytes, str]] = []
    for size, note in view.checkpoints():
        try:
            checkpoint = open_checkpoint(note, verifier)
        except LogError as exc:
            problems.add("bad-checkpoint", f"stored checkpoint at size {size}: {exc.message}")
            continue
        if checkpoint.size != size:
            problems.add(
                "bad-checkpoint",
                f"stored checkpoint at size {size} was signed for size {checkpoint.size}",
            )
            continue
        signed.append((size, checkpoint.root_hash, f"the checkpoint at size {size}"))
    return signed


def _recompute(view: LogView, problems: _Problems) -> list[bytearray]:
    """Every level of the tree, recomputed from the entries, each compared with what is stored.

    Levels are packed 32-byte hashes in bytearrays: a million entries take about 64 MB.
    """
    leaves = bytearray()
    expected = 0
    for index, body in view.iter_entries():
        if index != expected:
            kind = "missing" if index > expected else "unexpected"
            problems.add(kind, f"entry index {index} follows {expected - 1}: entries are {kind}")
            expected = index
        expected += 1
        leaves += merkle.leaf_hash(body)
        try:
            canonical = EvidenceEntry.from_bytes(body).to_bytes() == body
        except LogError:
            canonical = False
        if not canonical:
            problems.add("bad-entry", f"entry {index} is not a canonical evidence entry")
    levels = [leaves]
    stored_levels = view.levels()
    level = 0
    while True:
        _compare_level(view, level, levels[level], problems)
        current = levels[level]
        if len(current) <= _H:
            break
        parent = bytearray()
        pairs_end = (len(current) // (2 * _H)) * 2 * _H
        for offset in range(0, pairs_end, 2 * _H):
            # A pair of siblings is adjacent in the packed level: node hash = H(0x01 || l || r).
            parent += hashlib.sha256(b"\x01" + current[offset : offset + 2 * _H]).digest()
        levels.append(parent)
        level += 1
    for extra in sorted(set(stored_levels) - set(range(len(levels)))):
        problems.add("extra-hashes", f"{stored_levels[extra]} stored hashes at level {extra}")
    return levels


def _compare_level(view: LogView, level: int, computed: bytearray, problems: _Problems) -> None:
    count = len(computed) // _H
    seen = 0
    for index, digest in view.iter_level(level):
        if index >= count:
            problems.add("extra-hashes", f"a stored hash at level {level}, index {index}")
            continue
        seen += 1
        if computed[index * _H : (index + 1) * _H] != digest:
            what = "entry" if level == 0 else f"subtree hash at level {level}, index"
            problems.add(
                "hash-mismatch", f"stored {what} {index} does not match the recomputed hash"
            )
    if seen != count:
        problems.add("missing-hashes", f"{count - seen} hashes at level {level} are missing")


def _levels_root(levels: list[bytearray], size: int) -> bytes:
    def get(key: merkle.NodeKey) -> bytes:
        level, index = key
        if level >= len(levels) or (index + 1) * _H > len(levels[level]):
            raise KeyError(key)
        return bytes(levels[level][index * _H : (index + 1) * _H])

    try:
        return merkle.range_hash(0, size, get)
    except KeyError:
        return b""
