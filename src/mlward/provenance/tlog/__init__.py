"""Tamper-evident evidence log: RFC 9162 Merkle tree, proofs, C2SP signed checkpoints."""

from mlward.provenance.tlog.entry import EvidenceEntry, EvidenceKind, Subject
from mlward.provenance.tlog.log import (
    AppendResult,
    ConsistencyProof,
    InclusionProof,
    LogProblem,
    LogVerification,
    TransparencyLog,
)
from mlward.provenance.tlog.note import Checkpoint, NoteSigner, NoteVerifier

__all__ = [
    "AppendResult",
    "Checkpoint",
    "ConsistencyProof",
    "EvidenceEntry",
    "EvidenceKind",
    "InclusionProof",
    "LogProblem",
    "LogVerification",
    "NoteSigner",
    "NoteVerifier",
    "Subject",
    "TransparencyLog",
]
