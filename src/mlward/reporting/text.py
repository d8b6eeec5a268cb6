"""Plain-text report for people at a terminal: one line per artifact, findings under it."""

from __future__ import annotations

import json

from mlward.reporting._common import describe_location, normalise_evidence, safe_text
from mlward.results import ArtifactResult, Finding, ScanReport, Severity, Verdict

_VERDICT_WIDTH = max(len(verdict.value) for verdict in Verdict)
_SEVERITY_WIDTH = max(len(severity.value) for severity in Severity)
# Detail lines start under the rule id, so the severity column stays a clean left edge.
_DETAIL_INDENT = " " * (2 + _SEVERITY_WIDTH + 2)


def render_text(report: ScanReport, *, verbose: bool = False) -> str:
    """Every artifact, worst findings first; INFO findings only with ``verbose``.

    Incomplete findings are always shown, whatever their severity: they are why an artifact
    is inconclusive rather than clean.
    """
    lines: list[str] = []
    hidden = 0
    for artifact in report.artifacts:
        shown = [f for f in artifact.findings if verbose or _always_shown(f)]
        hidden += len(artifact.findings) - len(shown)
        lines.append(_artifact_line(artifact))
        if verbose and artifact.imports:
            imports = ", ".join(safe_text(name) for name in artifact.imports)
            lines.append(f"  imports: {imports}")
        # sorted() is stable, so equal severities keep the engine's order.
        for finding in sorted(shown, key=lambda f: -f.severity.rank):
            lines.extend(_finding_lines(finding, verbose=verbose))
    if not report.artifacts:
        lines.append("No artifacts scanned.")
    lines.append("")
    lines.append(_summary_line(report, hidden))
    return "\n".join(lines) + "\n"


def _always_shown(finding: Finding) -> bool:
    return finding.severity is not Severity.INFO or finding.incomplete


def _artifact_line(artifact: ArtifactResult) -> str:
    formats = ", ".join(safe_text(name) for name in artifact.formats) or "unknown format"
    verdict = artifact.verdict.value.upper().ljust(_VERDICT_WIDTH)
    return f"{verdict}  {safe_text(artifact.path)}  ({formats})"


def _finding_lines(finding: Finding, *, verbose: bool) -> list[str]:
    severity = finding.severity.value.upper().ljust(_SEVERITY_WIDTH)
    lines = [f"  {severity}  {safe_text(finding.rule_id)}  {safe_text(finding.message)}"]
    where = describe_location(finding.location)
    if where:
        lines.append(f"{_DETAIL_INDENT}at {safe_text(where)}")
    if finding.incomplete:
        lines.append(f"{_DETAIL_INDENT}incomplete: part of this artifact could not be read")
    if verbose and finding.evidence:
        items = normalise_evidence(finding.evidence).items()
        # JSON spelling, so the evidence reads the same as in the JSON report.
        evidence = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in items)
        lines.append(f"{_DETAIL_INDENT}evidence: {safe_text(evidence)}")
    if finding.fix:
        lines.append(f"{_DETAIL_INDENT}fix: {safe_text(finding.fix)}")
    return lines


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _summary_line(report: ScanReport, hidden: int) -> str:
    summary = report.summary
    counts = (
        f"{summary.malicious} malicious, {summary.suspicious} suspicious, "
        f"{summary.inconclusive} inconclusive, {summary.clean} clean"
    )
    line = (
        f"{report.verdict.value.upper()}: {_plural(summary.artifacts, 'artifact')} ({counts}), "
        f"{_plural(summary.findings, 'finding')} in {_seconds(summary.duration_s)}"
    )
    if hidden:
        line += f"; {_plural(hidden, 'info finding')} hidden (--verbose shows them)"
    return line


def _seconds(duration: float) -> str:
    # Small scans take milliseconds; "0.00s" would say nothing.
    return f"{duration * 1000:.1f} ms" if duration < 1 else f"{duration:.2f}s"
