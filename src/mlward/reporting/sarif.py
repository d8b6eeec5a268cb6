"""SARIF 2.1.0 output for code-scanning dashboards (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from mlward.reporting._common import describe_location, normalise_evidence
from mlward.results import ArtifactResult, Finding, ScanReport, Severity
from mlward.rules import RULES

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/mlward/mlward"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "warning",
    Severity.INFO: "note",
}

# GitHub code scanning ranks security alerts by this CVSS-like score (>= 9.0 is critical).
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
}

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def render_sarif(report: ScanReport) -> str:
    # ensure_ascii keeps lone surrogates from undecodable file names writable as UTF-8.
    return json.dumps(sarif_log(report), indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def sarif_log(report: ScanReport) -> dict[str, Any]:
    rules, rule_index = _rules(report)
    results = [
        _result(finding, artifact, index, rule_index[finding.rule_id])
        for index, artifact in enumerate(report.artifacts)
        for finding in artifact.findings
    ]
    summary = report.summary
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "mlward",
                "version": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        # Every scanned file is listed, so clean ones are on record too; results point here.
        "artifacts": [_artifact(artifact) for artifact in report.artifacts],
        "results": results,
        "properties": {
            "schemaVersion": report.schema_version,
            "startedAt": report.started_at,
            "verdict": report.verdict.value,
            "summary": {
                "artifacts": summary.artifacts,
                "clean": summary.clean,
                "suspicious": summary.suspicious,
                "malicious": summary.malicious,
                "inconclusive": summary.inconclusive,
                "findings": summary.findings,
                "durationSeconds": summary.duration_s,
            },
        },
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def artifact_uri(path: str) -> str:
    """A URI reference for a scanned path: relative stays relative, absolute becomes file://."""
    # surrogateescape turns undecodable file-name bytes back into their own %XX escapes.
    if _WINDOWS_DRIVE.match(path):
        rest = path[2:].replace("\\", "/")
        return "file:///" + path[:2] + quote(rest, safe="/", errors="surrogateescape")
    if path.startswith("/"):
        return "file://" + quote(path, safe="/", errors="surrogateescape")
    # Quoting ':' too keeps a first segment like "c:model.pkl" from reading as a scheme.
    return quote(path, safe="/", errors="surrogateescape")


def _rules(report: ScanReport) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One rule per distinct id, sorted; its default level is the worst severity it reported."""
    first: dict[str, Finding] = {}
    worst: dict[str, Severity] = {}
    fixes: dict[str, str] = {}
    for artifact in report.artifacts:
        for finding in artifact.findings:
            rule_id = finding.rule_id
            first.setdefault(rule_id, finding)
            if rule_id not in worst or finding.severity.rank > worst[rule_id].rank:
                worst[rule_id] = finding.severity
            if finding.fix and rule_id not in fixes:
                fixes[rule_id] = finding.fix
    rules: list[dict[str, Any]] = []
    for rule_id in sorted(first):
        title = first[rule_id].title
        severity = worst[rule_id]
        properties: dict[str, Any] = {"tags": ["security"], "severity": severity.value}
        if severity in _SECURITY_SEVERITY:
            properties["security-severity"] = _SECURITY_SEVERITY[severity]
        rule: dict[str, Any] = {
            "id": rule_id,
            "name": title,
            "shortDescription": {"text": title},
            "fullDescription": {"text": RULES.get(rule_id, title)},
            "defaultConfiguration": {"level": _LEVEL[severity]},
            "properties": properties,
        }
        if rule_id in fixes:
            rule["help"] = {"text": f"fix: {fixes[rule_id]}"}
        rules.append(rule)
    return rules, {rule["id"]: index for index, rule in enumerate(rules)}


def _artifact(artifact: ArtifactResult) -> dict[str, Any]:
    return {
        "location": {"uri": artifact_uri(artifact.path)},
        "length": artifact.size,
        "properties": {
            "verdict": artifact.verdict.value,
            "formats": list(artifact.formats),
            "durationSeconds": artifact.duration_s,
        },
    }


def _result(
    finding: Finding, artifact: ArtifactResult, artifact_index: int, rule_index: int
) -> dict[str, Any]:
    location = finding.location
    where = describe_location(location)
    message = f"{finding.message} ({where})" if where else finding.message
    artifact_location: dict[str, Any] = {"uri": artifact_uri(location.path)}
    if location.path == artifact.path:
        # The index must name the run.artifacts entry with this same uri, or viewers disagree.
        artifact_location["index"] = artifact_index
    physical: dict[str, Any] = {"artifactLocation": artifact_location}
    # A region addresses the file on disk, so an offset inside a container member goes only
    # into the properties below; SARIF has no region for bytes in a compressed member.
    if location.member is None and location.offset is not None and location.offset >= 0:
        physical["region"] = {"byteOffset": location.offset}
    sarif_location: dict[str, Any] = {"physicalLocation": physical}
    if location.member is not None:
        sarif_location["logicalLocations"] = [{"name": location.member, "kind": "resource"}]
    properties: dict[str, Any] = {
        "severity": finding.severity.value,
        "verdict": artifact.verdict.value,
        "incomplete": finding.incomplete,
        "evidence": normalise_evidence(finding.evidence),
        "member": location.member,
        "offset": location.offset,
        "pickleIndex": location.pickle_index,
        "opcode": location.opcode,
    }
    if finding.fix:
        properties["fix"] = finding.fix
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": message},
        "locations": [sarif_location],
        "properties": properties,
    }
