"""Evidence entries: the typed JSON documents the transparency log holds, and their encoding.

An entry is encoded once, canonically (keys sorted, no spaces, UTF-8, no NaN or infinity), and
the log hashes and stores exactly those bytes, so ``EvidenceEntry.from_bytes(e.to_bytes())``
round-trips and a verifier recomputes every leaf hash from what is stored.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlward.errors import LogError

ENTRY_VERSION = 1
# The digest algorithms in-toto resource descriptors use for artifacts.
_DIGEST_ALGORITHMS = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake3"})
_HEX = re.compile(r"^[0-9a-f]+$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
# Deep documents are rejected before encoding so a hostile payload cannot exhaust the stack.
_MAX_DEPTH = 64


class EvidenceKind(enum.Enum):
    """What an entry records; each later feature appends its own kind."""

    ARTIFACT_SCAN = "artifact-scan"
    SIGNATURE = "signature"
    DATASET_SNAPSHOT = "dataset-snapshot"
    DATASET_AUDIT = "dataset-audit"
    TRAINING_RUN = "training-run"
    EVALUATION = "evaluation"
    GATE_DECISION = "gate-decision"
    ML_BOM = "ml-bom"


@dataclass(frozen=True)
class Subject:
    """An artifact the entry is about, shaped like an in-toto resource descriptor."""

    name: str
    digest: Mapping[str, str]

    def __post_init__(self) -> None:
        if not self.digest:
            raise LogError(
                f"subject {self.name!r} has no digest",
                fix="Give each subject at least one digest, e.g. {'sha256': '<hex>'}.",
            )
        for algorithm, value in self.digest.items():
            if algorithm not in _DIGEST_ALGORITHMS or not _HEX.match(value):
                raise LogError(
                    f"subject {self.name!r}: bad digest {algorithm}:{value!r}",
                    fix=f"Use lowercase hex with one of {', '.join(sorted(_DIGEST_ALGORITHMS))}.",
                )
        object.__setattr__(self, "digest", dict(sorted(self.digest.items())))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": dict(self.digest)}


def now() -> str:
    """The current time as entries write it: RFC 3339, UTC, microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class EvidenceEntry:
    """One piece of evidence: what happened (kind, payload), to what (subjects), and when."""

    kind: EvidenceKind
    subjects: tuple[Subject, ...] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)
    timestamp: str = field(default_factory=now)

    def __post_init__(self) -> None:
        object.__setattr__(self, "subjects", tuple(self.subjects))
        if not _TIMESTAMP.match(self.timestamp):
            raise LogError(
                f"timestamp {self.timestamp!r} is not RFC 3339 UTC",
                fix="Write it as 2026-01-31T12:00:00Z (UTC, with the Z).",
            )
        _check_json(self.payload, "payload", 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": ENTRY_VERSION,
            "kind": self.kind.value,
            "timestamp": self.timestamp,
            "subjects": [s.to_json() for s in self.subjects],
            "payload": self.payload,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> EvidenceEntry:
        try:
            if document.get("version") != ENTRY_VERSION:
                raise LogError(
                    f"unsupported entry version {document.get('version')!r}",
                    fix="Upgrade mlward to read entries written by a newer version.",
                )
            if set(document) != {"version", "kind", "timestamp", "subjects", "payload"}:
                raise LogError(
                    f"entry fields {sorted(document)} are not the v1 fields",
                    fix="Write version, kind, timestamp, subjects and payload, nothing else.",
                )
            subjects = tuple(
                Subject(name=s["name"], digest=s["digest"]) for s in document["subjects"]
            )
            if not isinstance(document["payload"], dict):
                raise LogError("payload must be a JSON object", fix="Wrap the payload in {...}.")
            return cls(
                kind=EvidenceKind(document["kind"]),
                subjects=subjects,
                payload=document["payload"],
                timestamp=document["timestamp"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LogError(
                f"not an evidence entry: {exc}",
                fix="Write {kind, timestamp, subjects: [{name, digest}], payload} as JSON.",
            ) from exc

    @classmethod
    def from_input(cls, document: Any) -> EvidenceEntry:
        """An entry a person wrote: only ``kind`` is required; the time defaults to now."""
        if not isinstance(document, dict):
            raise LogError("an entry must be a JSON object", fix='Write {"kind": "...", ...}.')
        filled = {
            "version": ENTRY_VERSION,
            "subjects": [],
            "payload": {},
            "timestamp": now(),
            **document,
        }
        if "kind" not in filled or filled["kind"] not in {k.value for k in EvidenceKind}:
            raise LogError(
                f"entry kind {filled.get('kind')!r} is not known",
                fix=f"Use one of {', '.join(k.value for k in EvidenceKind)}.",
            )
        return cls.from_json(filled)

    @classmethod
    def from_bytes(cls, data: bytes) -> EvidenceEntry:
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise LogError(f"entry is not JSON: {exc}", fix="Pass a JSON object.") from exc
        if not isinstance(document, dict):
            raise LogError("entry is not a JSON object", fix="Pass a JSON object.")
        return cls.from_json(document)


def canonical_json(document: Any) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _check_json(value: Any, where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise LogError(f"{where} nests deeper than {_MAX_DEPTH}", fix="Flatten the payload.")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LogError(f"{where} has a non-string key {key!r}", fix="Use string keys.")
            _check_json(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise LogError(f"{where} is {value}", fix="JSON has no NaN or infinity; use null.")
    elif not (value is None or isinstance(value, str | int | bool)):
        raise LogError(
            f"{where} is a {type(value).__name__}, not a JSON value",
            fix="Convert it to a string, number, boolean, list or object first.",
        )
