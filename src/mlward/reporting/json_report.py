"""Machine-readable scan report; its shape is fixed by schemas/scan-report.schema.json."""

from __future__ import annotations

import functools
import json
import math
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from mlward.reporting._common import normalise_evidence
from mlward.results import Verdict

if TYPE_CHECKING:
    from mlward.results import ArtifactResult, Finding, MemberResult, ScanReport, ScanSummary

SCHEMA_RESOURCE = "scan-report.schema.json"
_VERDICT_VALUES = {verdict: verdict.value for verdict in Verdict}


def load_report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every ``render_json`` output satisfies."""
    from importlib import resources  # only tests and tools ask for the schema

    text = resources.files("mlward.schemas").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema = json.loads(text)
    if not isinstance(schema, dict):
        msg = f"{SCHEMA_RESOURCE} must hold a JSON object"
        raise TypeError(msg)
    return schema


def render_json(report: ScanReport) -> str:
    """Indented at the top, one line per artifact.

    json.dumps with ``indent`` runs the pure-Python encoder, which takes longer than scanning
    a thousand small files; compact pieces use the C encoder and still diff line by line.
    """
    data = report_to_dict(report, with_artifacts=False)
    lines = [f"  {_dumps(key)}: {_dumps(value)}," for key, value in data.items()]
    rows = ",\n".join(f"    {_artifact_json(artifact)}" for artifact in report.artifacts)
    body = f'  "artifacts": [\n{rows}\n  ]' if rows else '  "artifacts": []'
    return "{\n" + "\n".join(lines) + "\n" + body + "\n}\n"


def _string(text: str) -> str:
    return encode_basestring_ascii(text)  # what json.dumps writes for a str with ensure_ascii


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


# ensure_ascii keeps lone surrogates from undecodable file names writable as UTF-8. One encoder
# for every call: json.dumps builds a new one whenever an option differs from its defaults.
_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False)


@functools.lru_cache(maxsize=64)
def _formats_json(formats: tuple[str, ...]) -> str:
    return _dumps(formats)  # a handful of distinct format lists, repeated on every member


def _artifact_json(artifact: ArtifactResult) -> str:
    """``_dumps(_artifact(artifact))`` written by template instead of built as dicts and
    encoded (a checkpoint lists thousands of members): the same text in a third of the time.
    Verdicts are read from ``_value_``; hashing an Enum member for a table lookup runs Python."""
    duration = artifact.duration_s
    if not math.isfinite(duration):
        _dumps(duration)  # raises, as json.dumps(allow_nan=False) would
    members = ", ".join(
        f'{{"member": {_string(m.member)}, "formats": {_formats_json(m.formats)}, '
        f'"verdict": "{m.verdict._value_}", '
        f'"size": {"null" if m.size is None else m.size}}}'
        for m in artifact.members
    )
    findings = (
        _dumps([_finding(finding) for finding in artifact.findings]) if artifact.findings else "[]"
    )
    return (
        f'{{"path": {_string(artifact.path)}, "formats": {_formats_json(artifact.formats)}, '
        f'"verdict": "{artifact.verdict._value_}", "size": {int(artifact.size)}, '
        f'"duration_s": {float(duration)!r}, "imports": {_strings(artifact.imports)}, '
        f'"untrusted_imports": {_strings(artifact.untrusted_imports)}, '
        f'"members": [{members}], "findings": {findings}}}'
    )


def _strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_string(value) for value in values) + "]"


def report_to_dict(report: ScanReport, *, with_artifacts: bool = True) -> dict[str, Any]:
    """The report as plain JSON data, keys in a fixed order so output is stable."""
    data: dict[str, Any] = {
        "schema_version": report.schema_version,
        "tool": {"name": "mlward", "version": report.tool_version},
        "started_at": report.started_at,
        "verdict": report.verdict.value,
        "summary": _summary(report.summary),
    }
    if with_artifacts:
        data["artifacts"] = [_artifact(artifact) for artifact in report.artifacts]
    return data


def _summary(summary: ScanSummary) -> dict[str, Any]:
    return {
        "artifacts": summary.artifacts,
        "clean": summary.clean,
        "suspicious": summary.suspicious,
        "malicious": summary.malicious,
        "inconclusive": summary.inconclusive,
        "findings": summary.findings,
        "duration_s": summary.duration_s,
    }


def _artifact(artifact: ArtifactResult, *, with_lists: bool = True) -> dict[str, Any]:
    data = {
        "path": artifact.path,
        "formats": artifact.formats,
        "verdict": _VERDICT_VALUES[artifact.verdict],
        "size": artifact.size,
        "duration_s": artifact.duration_s,
        "imports": artifact.imports,
        "untrusted_imports": artifact.untrusted_imports,
    }
    if with_lists:
        data["members"] = [_member(member) for member in artifact.members]
        data["findings"] = [_finding(finding) for finding in artifact.findings]
    return data


def _member(member: MemberResult) -> dict[str, Any]:
    # Checkpoints list thousands of members: tuples go out as arrays without copying, and enum
    # values come from a table rather than the slower Enum.value descriptor.
    return {
        "member": member.member,
        "formats": member.formats,
        "verdict": _VERDICT_VALUES[member.verdict],
        "size": member.size,
    }


def _finding(finding: Finding) -> dict[str, Any]:
    location = finding.location
    return {
        "rule_id": finding.rule_id,
        "title": finding.title,
        "severity": finding.severity.value,
        "message": finding.message,
        "location": {
            "path": location.path,
            "member": location.member,
            "offset": location.offset,
            "pickle_index": location.pickle_index,
            "opcode": location.opcode,
        },
        "evidence": normalise_evidence(finding.evidence),
        "incomplete": finding.incomplete,
        "fix": finding.fix,
    }
