"""Result types shared by every layer: frozen, plain data, no behaviour beyond derivation."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = "1.0"


class Severity(enum.Enum):
    """How bad one finding is: HIGH and CRITICAL mean malicious, LOW and MEDIUM suspicious."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class Verdict(enum.Enum):
    """What a scan concludes about an artifact.

    INCONCLUSIVE means part of the artifact could not be read (unparseable, unsupported, a limit
    reached) and nothing worse was found in the part that could; it is never a clean result.
    """

    CLEAN = "clean"
    INCONCLUSIVE = "inconclusive"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"

    @property
    def rank(self) -> int:
        return _VERDICT_RANK[self]


_VERDICT_RANK = {
    Verdict.CLEAN: 0,
    Verdict.INCONCLUSIVE: 1,
    Verdict.SUSPICIOUS: 2,
    Verdict.MALICIOUS: 3,
}


@dataclass(frozen=True)
class Location:
    """Where a finding sits: the file, the member chain inside containers, the byte offset."""

    path: str
    member: str | None = None
    offset: int | None = None
    pickle_index: int | None = None
    opcode: str | None = None


@dataclass(frozen=True)
class Finding:
    """One observation; ``incomplete`` means the scan could not see everything."""

    rule_id: str
    title: str
    severity: Severity
    message: str
    location: Location
    # A plain dict so results cross process boundaries (--jobs); treat it as read-only.
    evidence: Mapping[str, Any] = field(default_factory=dict)
    incomplete: bool = False
    fix: str | None = None


def verdict_of(findings: Iterable[Finding]) -> Verdict:
    """Threats outrank incompleteness: a payload seen before a parse error is still a payload."""
    if not findings:
        return Verdict.CLEAN
    worst = Severity.INFO
    incomplete = False
    for finding in findings:
        if finding.severity.rank > worst.rank:
            worst = finding.severity
        incomplete = incomplete or finding.incomplete
    if worst.rank >= Severity.HIGH.rank:
        return Verdict.MALICIOUS
    if worst.rank >= Severity.LOW.rank:
        return Verdict.SUSPICIOUS
    if incomplete:
        return Verdict.INCONCLUSIVE
    return Verdict.CLEAN


@dataclass(frozen=True)
class MemberResult:
    """One unit inside an artifact that was read as a format of its own (a zip member, a pickle)."""

    member: str
    formats: tuple[str, ...]
    verdict: Verdict
    size: int | None = None


@dataclass(frozen=True)
class ArtifactResult:
    """Everything learned about one file given to the scanner (or found under a given directory)."""

    path: str
    formats: tuple[str, ...]
    verdict: Verdict
    findings: tuple[Finding, ...]
    imports: tuple[str, ...]
    members: tuple[MemberResult, ...]
    size: int
    duration_s: float

    @property
    def untrusted_imports(self) -> tuple[str, ...]:
        names = {
            str(f.evidence["global"])
            for f in self.findings
            if "global" in f.evidence and f.evidence.get("trusted") is False
        }
        return tuple(sorted(names))


@dataclass(frozen=True)
class ScanSummary:
    """Counts over every artifact of one scan, and how long it took."""

    artifacts: int
    clean: int
    suspicious: int
    malicious: int
    inconclusive: int
    findings: int
    duration_s: float

    @classmethod
    def of(cls, artifacts: Iterable[ArtifactResult], duration_s: float) -> ScanSummary:
        items = list(artifacts)
        count = dict.fromkeys(Verdict, 0)
        for item in items:
            count[item.verdict] += 1
        return cls(
            artifacts=len(items),
            clean=count[Verdict.CLEAN],
            suspicious=count[Verdict.SUSPICIOUS],
            malicious=count[Verdict.MALICIOUS],
            inconclusive=count[Verdict.INCONCLUSIVE],
            findings=sum(len(item.findings) for item in items),
            duration_s=duration_s,
        )


@dataclass(frozen=True)
class ScanReport:
    """One scan: every artifact's result and the summary; renderers take nothing else."""

    tool_version: str
    started_at: str
    artifacts: tuple[ArtifactResult, ...]
    summary: ScanSummary
    schema_version: str = SCHEMA_VERSION

    @property
    def verdict(self) -> Verdict:
        worst = Verdict.CLEAN
        for artifact in self.artifacts:
            if artifact.verdict.rank > worst.rank:
                worst = artifact.verdict
        return worst
