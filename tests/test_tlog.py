"""The transparency log: RFC 9162 known answers and proofs, C2SP notes, and on SQLite and
PostgreSQL alike: appends, proofs, every kind of tampering made directly in the database,
concurrent writers in several processes, and a writer killed mid-append."""

from __future__ import annotations

import base64
import hashlib
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from mlward.errors import LogError
from mlward.provenance.tlog import (
    Checkpoint,
    EvidenceEntry,
    EvidenceKind,
    InclusionProof,
    NoteSigner,
    NoteVerifier,
    Subject,
    TransparencyLog,
    merkle,
)
from mlward.provenance.tlog.note import open_checkpoint, open_note

ORIGIN = "example.com/mlward-test-log"
REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# Known answers
# ---------------------------------------------------------------------------------------------

# The RFC 6962 / RFC 9162 test leaves and roots used by every Certificate Transparency client.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_ct_known_roots() -> None:
    leaves = [merkle.leaf_hash(x) for x in CT_LEAVES]
    for n in range(1, 9):
        assert merkle.root_of(leaves[:n]).hex() == CT_ROOTS[n - 1]
    assert merkle.root_of([]) == hashlib.sha256(b"").digest()


def _mth(d: list[bytes]) -> bytes:
    if len(d) == 1:
        return merkle.leaf_hash(d[0])
    k = merkle._split(len(d))
    return merkle.node_hash(_mth(d[:k]), _mth(d[k:]))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) written exactly as RFC 9162 §2.1.3.1 defines it."""
    if len(d) <= 1:
        return []
    k = merkle._split(len(d))
    return [*_path(m, d[:k]), _mth(d[k:])] if m < k else [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) written exactly as RFC 9162 §2.1.4.1 defines it."""
    if m == len(d):
        return [] if b else [_mth(d)]
    k = merkle._split(len(d))
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


def test_proofs_match_the_rfc_definitions_and_verify() -> None:
    for n in range(1, 40):
        d = [i.to_bytes(2, "big") for i in range(n)]
        nodes = {
            (level, j): _mth(d[j << level : (j + 1) << level])
            for level in range(7)
            for j in range(n >> level)
        }
        root = _mth(d)
        assert merkle.range_hash(0, n, nodes.__getitem__) == root
        for m in range(n):
            proof = merkle.build_proof(merkle.inclusion_ranges(m, n), lambda _k: nodes)
            assert proof == _path(m, d)
            assert merkle.verify_inclusion(m, n, merkle.leaf_hash(d[m]), proof, root)
            assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(b"x"), proof, root)
            if proof:
                assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(d[m]), proof[:-1], root)
        for m in range(1, n + 1):
            ranges = merkle.consistency_ranges(m, n) if m < n else []
            proof = merkle.build_proof(ranges, lambda _k: nodes)
            if m < n:
                assert proof == _subproof(m, d, True)
            assert merkle.verify_consistency(m, n, _mth(d[:m]), root, proof)
            if m < n:
                assert not merkle.verify_consistency(m, n, _mth(d[:m]), b"\x00" * 32, proof)
                assert not merkle.verify_consistency(m, n, merkle.leaf_hash(b"x"), root, proof)


# Go's golang.org/x/mod/sumdb/note documentation example (C2SP signed-note).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
    "vqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_signed_note_matches_the_go_reference() -> None:
    signer = NoteSigner.from_text(GO_SKEY)
    assert signer.to_text() == GO_SKEY
    assert signer.verifier.to_text() == GO_VKEY
    assert signer.sign_note(GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, NoteVerifier.from_text(GO_VKEY)) == GO_TEXT


def test_signed_note_rejections() -> None:
    verifier = NoteVerifier.from_text(GO_VKEY)
    with pytest.raises(LogError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), verifier)
    other = NoteSigner.generate("PeterNeumann").verifier
    with pytest.raises(LogError, match="no signature by"):
        open_note(GO_NOTE, other)
    with pytest.raises(LogError):
        open_note(GO_TEXT, verifier)
    with pytest.raises(LogError):
        NoteVerifier.from_text(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    # An extra signature by another key is ignored, as the spec requires.
    extra = NoteSigner.generate("witness.example").sign_note(GO_TEXT).split("\n\n")[1]
    assert open_note(GO_NOTE + extra, verifier) == GO_TEXT


def test_checkpoint_format() -> None:
    signer = NoteSigner.generate(ORIGIN)
    cp = Checkpoint(ORIGIN, 42, bytes(range(32)))
    note = cp.sign(signer)
    lines = note.split("\n")
    assert lines[:3] == [ORIGIN, "42", base64.b64encode(bytes(range(32))).decode()]
    assert lines[3] == "" and lines[4].startswith(f"— {ORIGIN} ")
    assert open_checkpoint(note, signer.verifier) == cp
    with pytest.raises(LogError, match="size"):
        Checkpoint.from_text(f"{ORIGIN}\n042\n{lines[2]}\n")


def test_entries_are_canonical_and_validated() -> None:
    entry = EvidenceEntry(
        EvidenceKind.GATE_DECISION,
        (Subject("model.pt", {"sha256": "ab" * 32}),),
        {"z": 1, "a": ["é", 1.5, None, True]},
        timestamp="2026-11-27T12:00:00Z",
    )
    data = entry.to_bytes()
    assert data.startswith(b'{"kind":"gate-decision","payload":{"a":["\xc3\xa9",1.5,null,true]')
    assert EvidenceEntry.from_bytes(data) == entry
    assert EvidenceEntry.from_bytes(data).to_bytes() == data
    with pytest.raises(LogError, match="digest"):
        Subject("m", {"sha256": "XYZ"})
    with pytest.raises(LogError, match=r"NaN|nan"):
        EvidenceEntry(EvidenceKind.EVALUATION, payload={"x": float("nan")})
    with pytest.raises(LogError, match="RFC 3339"):
        EvidenceEntry(EvidenceKind.EVALUATION, timestamp="yesterday")
    with pytest.raises(LogError, match="not a JSON value"):
        EvidenceEntry(EvidenceKind.EVALUATION, payload={"x": object()})
    with pytest.raises(LogError):
        EvidenceEntry.from_bytes(b'{"kind":"nope"}')


# ---------------------------------------------------------------------------------------------
# Both backends
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "log.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


def _entry(i: int, kind: EvidenceKind = EvidenceKind.ARTIFACT_SCAN) -> EvidenceEntry:
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return EvidenceEntry(kind, (Subject(f"model-{i}.pt", {"sha256": digest}),), {"n": i})


def _filled(location: str, signer: NoteSigner, batches: tuple[int, ...]) -> TransparencyLog:
    log = TransparencyLog.open(location, signer)
    n = 0
    for count in batches:
        log.append([_entry(i) for i in range(n, n + count)])
        n += count
    return log


def _sql(location: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL directly against the log's database, as an attacker with write access would."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            cursor = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []
    import sqlite3

    conn = sqlite3.connect(location, isolation_level=None)
    try:
        return list(conn.execute(statement, params).fetchall())
    finally:
        conn.close()


def _rewrite_hashes(location: str) -> None:
    """The careful attacker: recompute every stored leaf and subtree hash from the entries, so
    the stored tree is self-consistent again and only the signed checkpoints can tell."""
    rows = _sql(location, "SELECT idx, body FROM tlog_entries ORDER BY idx")
    leaves = [merkle.leaf_hash(bytes(body)) for _, body in rows]
    _sql(location, "DELETE FROM tlog_nodes")
    for (index, _), leaf in zip(rows, leaves, strict=True):
        _sql(location, "UPDATE tlog_entries SET leaf_hash = ? WHERE idx = ?", (leaf, index))
    level, current = 0, leaves
    while len(current) > 1:
        parents = [
            merkle.node_hash(current[i], current[i + 1]) for i in range(0, len(current) - 1, 2)
        ]
        level += 1
        for index, digest in enumerate(parents):
            _sql(location, "INSERT INTO tlog_nodes VALUES (?, ?, ?)", (level, index, digest))
        current = parents


def test_append_prove_and_verify(location: str, signer: NoteSigner) -> None:
    with _filled(location, signer, (1, 6, 10, 16)) as log:
        assert log.size() == 33
        result = log.append([_entry(33), _entry(34)])
        assert (result.first_index, result.count, result.size) == (33, 2, 35)
        assert result.checkpoint is not None
        assert open_checkpoint(result.checkpoint, signer.verifier).root_hash == result.root_hash
        leaves = [merkle.leaf_hash(body) for _, body in log.entries()]
        assert log.root() == merkle.root_of(leaves) == result.root_hash
        for index in range(35):
            proof = log.prove_inclusion(index)
            assert proof.verify(signer.verifier)
            assert InclusionProof.from_json(proof.to_json()) == proof
        old_proof = log.prove_inclusion(3, size=7)
        assert old_proof.verify(signer.verifier)  # a checkpoint was signed at size 7
        assert old_proof.root_hash == merkle.root_of(leaves[:7])
        for old in (1, 7, 17, 20, 33, 35):
            assert log.prove_consistency(old).verify()
        report = log.verify(signer.verifier)
        assert report.ok, report.problems
        assert (report.size, report.checkpoints_verified, report.signed_size) == (35, 5, 35)
        assert log.prove_inclusion(0).entry == next(log.entries())[1]


def test_wrong_signer_and_empty_log(location: str, signer: NoteSigner) -> None:
    with TransparencyLog.open(location, signer) as log:
        assert log.size() == 0 and log.root() == merkle.EMPTY_ROOT
        assert log.verify(signer.verifier).ok
        log.append([_entry(0)])
    with TransparencyLog.open(location, NoteSigner.generate("other.example/log")) as log:
        with pytest.raises(LogError, match="not the key of the log"):
            log.append([_entry(1)])
        assert log.size() == 1
    with TransparencyLog.open(location) as log:
        report = log.verify(NoteSigner.generate(ORIGIN).verifier)  # same name, other key
        assert {p.kind for p in report.problems} == {"bad-checkpoint", "unsigned"}


def _kinds(location: str, signer: NoteSigner, trusted: str | None = None) -> set[str]:
    with TransparencyLog.open(location) as log:
        report = log.verify(signer.verifier, trusted)
    assert not report.ok
    return {p.kind for p in report.problems}


def test_tamper_edit_entry(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (20,)).close()
    body = _entry(5).to_bytes().replace(b'"n":5', b'"n":6')
    _sql(location, "UPDATE tlog_entries SET body = ? WHERE idx = 5", (body,))
    assert {"hash-mismatch", "root-mismatch"} <= _kinds(location, signer)


def test_tamper_edit_entry_and_rewrite_every_hash(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (20,)).close()
    body = _entry(5).to_bytes().replace(b'"n":5', b'"n":6')
    _sql(location, "UPDATE tlog_entries SET body = ? WHERE idx = 5", (body,))
    _rewrite_hashes(location)
    assert _kinds(location, signer) == {"root-mismatch"}


def test_tamper_delete_entry(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (20,)).close()
    _sql(location, "DELETE FROM tlog_entries WHERE idx = 7")
    assert {"missing", "root-mismatch"} <= _kinds(location, signer)


def test_tamper_delete_and_renumber(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (20,)).close()
    _sql(location, "DELETE FROM tlog_entries WHERE idx = 7")
    for index in range(8, 20):
        _sql(location, "UPDATE tlog_entries SET idx = ? WHERE idx = ?", (index - 1, index))
    _rewrite_hashes(location)
    assert _kinds(location, signer) == {"truncated", "unsigned"}


def test_tamper_truncate_tail(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (10, 10)).close()
    _sql(location, "DELETE FROM tlog_entries WHERE idx >= 15")
    assert "truncated" in _kinds(location, signer)


def test_tamper_insert_entry(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (20,)).close()
    for index in range(19, 9, -1):
        _sql(location, "UPDATE tlog_entries SET idx = ? WHERE idx = ?", (index + 1, index))
    forged = _entry(99).to_bytes()
    _sql(
        location,
        "INSERT INTO tlog_entries VALUES (?, ?, ?)",
        (10, merkle.leaf_hash(forged), forged),
    )
    _rewrite_hashes(location)
    assert _kinds(location, signer) == {"root-mismatch", "unsigned"}


def test_tamper_append_without_key(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (20,)).close()
    forged = _entry(99).to_bytes()
    _sql(
        location,
        "INSERT INTO tlog_entries VALUES (?, ?, ?)",
        (20, merkle.leaf_hash(forged), forged),
    )
    _rewrite_hashes(location)
    assert _kinds(location, signer) == {"unsigned"}


def test_tamper_reorder(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (20,)).close()
    _sql(location, "UPDATE tlog_entries SET idx = -1 WHERE idx = 3")
    _sql(location, "UPDATE tlog_entries SET idx = 3 WHERE idx = 4")
    _sql(location, "UPDATE tlog_entries SET idx = 4 WHERE idx = -1")
    assert _kinds(location, signer) == {"hash-mismatch", "root-mismatch"}
    _rewrite_hashes(location)
    assert _kinds(location, signer) == {"root-mismatch"}


def test_tamper_internal_hash(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (20,)).close()
    _sql(location, "UPDATE tlog_nodes SET hash = ? WHERE level = 2 AND idx = 1", (b"\x00" * 32,))
    assert _kinds(location, signer) == {"hash-mismatch"}


def test_tamper_checkpoints(location: str, signer: NoteSigner) -> None:
    _filled(location, signer, (10, 10)).close()
    (note,) = _sql(location, "SELECT note FROM tlog_checkpoints WHERE size = 20")[0]
    lines = str(note).split("\n")
    lines[2] = base64.b64encode(b"\x01" * 32).decode()
    _sql(location, "UPDATE tlog_checkpoints SET note = ? WHERE size = 20", ("\n".join(lines),))
    assert _kinds(location, signer) == {"bad-checkpoint", "unsigned"}
    _sql(location, "DELETE FROM tlog_checkpoints WHERE size = 20")
    _sql(location, "UPDATE tlog_checkpoints SET size = 20 WHERE size = 10")  # relabelled
    assert _kinds(location, signer) == {"bad-checkpoint", "unsigned"}
    _sql(location, "DELETE FROM tlog_checkpoints")
    assert _kinds(location, signer) == {"unsigned"}


def test_rollback_needs_a_checkpoint_kept_elsewhere(location: str, signer: NoteSigner) -> None:
    with _filled(location, signer, (10, 10)) as log:
        kept = log.latest_checkpoint()
    assert kept is not None
    _sql(location, "DELETE FROM tlog_entries WHERE idx >= 10")
    _sql(location, "DELETE FROM tlog_nodes WHERE level > 0")
    _sql(location, "DELETE FROM tlog_checkpoints WHERE size > 10")
    _rewrite_hashes(location)
    with TransparencyLog.open(location) as log:
        assert log.verify(signer.verifier).ok  # the documented limit: a clean rollback
    assert _kinds(location, signer, trusted=kept) == {"truncated"}


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    from mlward.provenance.tlog import *
    location, key, writer, batches, per_batch = sys.argv[1:6]
    signer = NoteSigner.from_text(key)
    with TransparencyLog.open(location, signer) as log:
        for b in range(int(batches)):
            print("batch", b, flush=True)
            log.append(
                [
                    EvidenceEntry(EvidenceKind.TRAINING_RUN, payload={"w": writer, "b": b, "i": i})
                    for i in range(int(per_batch))
                ]
            )
    print("done", flush=True)
    """
)


def _writer(location: str, signer: NoteSigner, name: str, batches: int, per_batch: int) -> Any:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WRITER,
            location,
            signer.to_text(),
            name,
            str(batches),
            str(per_batch),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_concurrent_writers_lose_nothing(location: str, signer: NoteSigner) -> None:
    TransparencyLog.open(location, signer).close()  # created once, then raced on
    writers = [_writer(location, signer, f"w{k}", 15, 40) for k in range(4)]
    for proc in writers:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.endswith("done\n")
    import json

    with TransparencyLog.open(location) as log:
        seen = [json.loads(body)["payload"] for _, body in log.entries()]
        report = log.verify(signer.verifier)
    assert report.ok, report.problems
    assert len(seen) == 4 * 15 * 40
    assert {(p["w"], p["b"], p["i"]) for p in seen} == {
        (f"w{k}", b, i) for k in range(4) for b in range(15) for i in range(40)
    }
    assert report.checkpoints_verified == 4 * 15


def test_writer_killed_mid_append_leaves_a_consistent_log(
    location: str, signer: NoteSigner
) -> None:
    """SIGKILL at several points of a large batch (building it, hashing, inside the write
    transaction): only whole batches remain, the log verifies and stays writable."""
    per_batch = 8_000
    for fraction in (0.35, 0.7, 0.95):
        proc = _writer(location, signer, f"victim-{fraction}", 50, per_batch)
        assert proc.stdout is not None
        starts: list[float] = []
        for line in proc.stdout:
            if line.startswith("batch"):
                starts.append(time.monotonic())
                if len(starts) == 3:
                    break
        # One batch takes about starts[2] - starts[1]; kill that fraction into the next one.
        time.sleep(fraction * (starts[2] - starts[1]))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        with TransparencyLog.open(location, signer) as log:
            assert log.size() % per_batch == 0
            report = log.verify(signer.verifier)
            assert report.ok, report.problems
    with TransparencyLog.open(location, signer) as log:
        size = log.size()
        assert size >= 3 * 2 * per_batch
        assert log.append([_entry(0)]).size == size + 1
        assert log.verify(signer.verifier).ok


def test_api_append_and_verify(tmp_path: Path) -> None:
    from mlward import api

    location = tmp_path / "evidence.db"
    signer = api.NoteSigner.generate(ORIGIN)
    entries = [_entry(i, kind) for i, kind in enumerate(api.EvidenceKind)]
    result = api.append_evidence(location, entries, signer=signer)
    assert (result.first_index, result.count) == (0, len(api.EvidenceKind))
    assert api.verify_log(location, signer.verifier).ok
    with api.open_log(location) as log:
        kinds = [api.EvidenceEntry.from_bytes(body).kind for _, body in log.entries()]
    assert kinds == list(api.EvidenceKind)
    empty = api.append_evidence(location, [], signer=signer)
    assert (empty.count, empty.size, empty.checkpoint) == (0, len(kinds), None)
