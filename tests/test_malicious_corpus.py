"""The scanner flags every hostile sample, at least at the sample's expected verdict, without
ever running the payload.

Samples come from ``tests/payloads`` (each is proven to trigger by ``test_payloads_trigger.py``).
A sample expected "malicious" uses a callable on the denylist; "suspicious" ones hide the callable
so that only the trick itself can be flagged (EXT opcodes, names built at load time).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlward import ScanOptions, Verdict, scan

try:
    from tests.payloads import ALL_SAMPLES, Sample
except ImportError:  # pragma: no cover - tests/ on sys.path instead of the repo root
    from payloads import ALL_SAMPLES, Sample


def _describe(artifact: object) -> str:
    findings = getattr(artifact, "findings", ())
    lines = [
        f"  {f.severity.value:8} {f.rule_id}: {f.title} {dict(f.evidence) if f.evidence else ''}"
        for f in findings
    ]
    return "\n".join(lines) or "  (no findings)"


@pytest.mark.parametrize("sample", ALL_SAMPLES, ids=lambda s: s.name)
def test_scanner_flags_sample(sample: Sample, tmp_path: Path) -> None:
    out_dir = tmp_path / "artifact"
    out_dir.mkdir()
    marker = tmp_path / f"marker-{sample.name}"
    path = sample.build(out_dir, marker)

    report = scan([path], ScanOptions())

    assert not marker.exists(), f"{sample.name}: scanning ran the payload"
    assert len(report.artifacts) == 1
    artifact = report.artifacts[0]
    expected = Verdict(sample.expected)
    assert artifact.verdict.rank >= expected.rank, (
        f"{sample.name}: verdict {artifact.verdict.value}, expected at least {expected.value} "
        f"({sample.description})\n{_describe(artifact)}"
    )


def test_advisory_samples_are_named_in_reports() -> None:
    """Every advisory sample carries an id or URL a reader can look up."""
    for sample in ALL_SAMPLES:
        if sample.advisory is not None:
            advisory = sample.advisory
            assert advisory.startswith(("GHSA-", "CVE-", "https://")), (sample.name, advisory)
