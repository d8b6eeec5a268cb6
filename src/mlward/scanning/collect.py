"""What one artifact's scan gathers, and the findings every format reports the same way."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlward.results import Finding, Location, MemberResult, Severity, verdict_of


@dataclass
class Collected:
    """What the scan of one artifact has gathered so far (mutable while it runs)."""

    findings: list[Finding] = field(default_factory=list)
    imports: dict[str, None] = field(default_factory=dict)
    members: list[MemberResult] = field(default_factory=list)

    def absorb(self, child: Collected, label: str, formats: list[str], size: int) -> None:
        """Take in what a member's scan found, and list the member with its own verdict."""
        self.findings.extend(child.findings)
        self.imports.update(child.imports)
        self.members.append(MemberResult(label, tuple(formats), verdict_of(child.findings), size))
        self.members.extend(child.members)


def incomplete(
    path: str, member: str | None, rule: str, title: str, message: str, fix: str
) -> Finding:
    """Part of the artifact could not be read: the verdict becomes inconclusive, never clean."""
    return Finding(
        rule, title, Severity.INFO, message, Location(path, member), incomplete=True, fix=fix
    )


def limit_reached(path: str, member: str | None, limit: str, detail: str) -> Finding:
    return Finding(
        "MW910",
        "Scan limit reached",
        Severity.INFO,
        f"{detail}; the rest was not scanned, so this artifact is not known to be clean.",
        Location(path, member),
        evidence={"limit": limit},
        incomplete=True,
        fix=f"Raise Limits.{limit} if this file is expected to be this large.",
    )


def codec_missing(path: str, member: str | None, what: str, fix: str) -> Finding:
    """An optional reader is not installed: say which, and never call the artifact clean."""
    return incomplete(
        path, member, "MW950", "Codec not available", f"{what} cannot be opened here", fix
    )
