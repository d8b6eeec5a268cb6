"""Default deny without false alarms: every benign artifact in tests/corpus scans clean.

Each sample is built with the real producer library (torch, numpy, scikit-learn, pandas, scipy,
xgboost, lightgbm, joblib, the standard library), loaded once with the real loader to prove it is
a genuine artifact, and then scanned: the verdict must be CLEAN with nothing above INFO. Samples
that pickle a class defined in this test package (outside every allowlist) must instead be
SUSPICIOUS, name the class, offer the ``--allow`` fix, and scan clean once that class is allowed.
Samples that import a global reviewed as unsafe (pandas data backed by pyarrow arrays) must be
SUSPICIOUS because of that global alone, with a message that says what loading it does.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.corpus is imported as a package from the repository root
    sys.path.insert(0, str(ROOT))

from tests.corpus import (  # noqa: E402
    ALL_BENIGN,
    UNSAFE_SAMPLES,
    USER_CLASS_SAMPLES,
    BenignSample,
    load_artifact,
)


class CorpusBuilder:
    """Builds each sample at most once per session, on first use, into one temporary folder."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._built: dict[str, Path] = {}

    def path(self, sample: BenignSample) -> Path:
        for module in sample.requires:
            pytest.importorskip(module)
        if sample.name not in self._built:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # deprecations of the producers, not ours
                self._built[sample.name] = sample.build(self.out_dir)
        return self._built[sample.name]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusBuilder:
    return CorpusBuilder(tmp_path_factory.mktemp("benign_corpus"))


@pytest.fixture(scope="session")
def api() -> Any:
    """mlward's public scan API (imported here so a missing API fails these tests only)."""
    import mlward

    return mlward


def _describe(artifact: Any) -> str:
    lines = [f"{artifact.path}: {artifact.verdict.value} (formats {artifact.formats})"]
    for f in artifact.findings:
        lines.append(f"  [{f.severity.value}] {f.rule_id if hasattr(f, 'rule_id') else ''} "
                     f"{f.message}")
    return "\n".join(lines)


def _scan_one(api: Any, path: Path, **options: Any) -> Any:
    report = api.scan([path], api.ScanOptions(**options))
    assert len(report.artifacts) == 1, f"expected one artifact for {path}"
    return report.artifacts[0]


def _ids(samples: tuple[BenignSample, ...]) -> list[str]:
    return [s.name for s in samples]


def test_corpus_is_broad() -> None:
    assert len(ALL_BENIGN) >= 100
    loaders = {s.loader for s in ALL_BENIGN}
    assert loaders == {"pickle", "torch", "joblib", "numpy"}
    assert USER_CLASS_SAMPLES
    assert all(s.user_globals for s in USER_CLASS_SAMPLES)
    assert not any(s.user_globals for s in ALL_BENIGN)
    assert UNSAFE_SAMPLES
    assert all(s.unsafe_globals and not s.user_globals for s in UNSAFE_SAMPLES)
    assert not any(s.unsafe_globals for s in ALL_BENIGN + USER_CLASS_SAMPLES)


@pytest.mark.parametrize("sample", ALL_BENIGN + USER_CLASS_SAMPLES + UNSAFE_SAMPLES,
                         ids=_ids(ALL_BENIGN + USER_CLASS_SAMPLES + UNSAFE_SAMPLES))
def test_real_loader_reads_sample(corpus: CorpusBuilder, sample: BenignSample) -> None:
    """Sanity: the artifact is genuine, the library that wrote it loads it back."""
    path = corpus.path(sample)
    assert path.is_file() and path.stat().st_size > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_artifact(sample.loader, path)


@pytest.mark.parametrize("sample", ALL_BENIGN, ids=_ids(ALL_BENIGN))
def test_benign_sample_scans_clean(api: Any, corpus: CorpusBuilder, sample: BenignSample) -> None:
    art = _scan_one(api, corpus.path(sample))
    assert art.verdict is api.Verdict.CLEAN, _describe(art)
    assert all(f.severity is api.Severity.INFO for f in art.findings), _describe(art)


@pytest.mark.parametrize("sample", USER_CLASS_SAMPLES, ids=_ids(USER_CLASS_SAMPLES))
def test_user_class_is_suspicious_and_named(
    api: Any, corpus: CorpusBuilder, sample: BenignSample
) -> None:
    path = corpus.path(sample)
    art = _scan_one(api, path)
    assert art.verdict is api.Verdict.SUSPICIOUS, _describe(art)
    for name in sample.user_globals:
        naming = [f for f in art.findings if name in f.message]
        assert naming, f"no finding names {name}\n{_describe(art)}"
        # The message says the class is reconstructed and what that runs.
        assert any(re.search(r"reconstruct", f.message, re.I) for f in naming), _describe(art)
        assert any(re.search(r"\brun", f.message, re.I) for f in naming), _describe(art)
        assert any(f"--allow {name}" in (f.fix or "") for f in naming), (
            f"no finding offers '--allow {name}' as its fix\n{_describe(art)}"
        )


@pytest.mark.parametrize("sample", USER_CLASS_SAMPLES, ids=_ids(USER_CLASS_SAMPLES))
def test_allowing_user_class_makes_it_clean(
    api: Any, corpus: CorpusBuilder, sample: BenignSample
) -> None:
    art = _scan_one(api, corpus.path(sample), allow=tuple(sample.user_globals))
    assert art.verdict is api.Verdict.CLEAN, _describe(art)
    assert all(f.severity is api.Severity.INFO for f in art.findings), _describe(art)


@pytest.mark.parametrize("sample", UNSAFE_SAMPLES, ids=_ids(UNSAFE_SAMPLES))
def test_reviewed_unsafe_global_is_suspicious_and_explained(
    api: Any, corpus: CorpusBuilder, sample: BenignSample
) -> None:
    art = _scan_one(api, corpus.path(sample))
    assert art.verdict is api.Verdict.SUSPICIOUS, _describe(art)
    raised = [f for f in art.findings if f.severity is not api.Severity.INFO]
    # Only the reviewed-unsafe global is a problem: every other global these pickles import
    # (pandas classes, pyarrow type factories, py_buffer) is allowlisted.
    flagged = {f.evidence.get("global") for f in raised}
    assert flagged == set(sample.unsafe_globals), _describe(art)
    for name in sample.unsafe_globals:
        naming = [f for f in raised if f.evidence.get("global") == name]
        for f in naming:
            assert f.severity is api.Severity.MEDIUM, _describe(art)
            assert f.evidence.get("reviewed") == "unsafe", _describe(art)
            assert "reviewed and is deliberately not on any allowlist" in f.message, f.message
            # The reason from pyarrow.toml's [[unsafe]] table: what calling it does.
            assert "NEVER validates" in f.message, f.message
            assert "out of bounds" in f.message, f.message
            assert f"--allow {name}" in (f.fix or ""), f.fix


@pytest.mark.parametrize("sample", UNSAFE_SAMPLES, ids=_ids(UNSAFE_SAMPLES))
def test_allowing_reviewed_unsafe_global_makes_it_clean(
    api: Any, corpus: CorpusBuilder, sample: BenignSample
) -> None:
    art = _scan_one(api, corpus.path(sample), allow=tuple(sample.unsafe_globals))
    assert art.verdict is api.Verdict.CLEAN, _describe(art)
    assert all(f.severity is api.Severity.INFO for f in art.findings), _describe(art)
