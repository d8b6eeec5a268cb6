"""pyarrow.lib._restore_array was reviewed and judged unsafe: it stays a finding, explained.

Every pickled pyarrow array (pandas 3 str data with pyarrow installed) imports it, and it builds
the array from the pickled buffers without validating them. The reason lives in the ``[[unsafe]]``
table of ``src/mlward/scanning/allowlists/pyarrow.toml``; these tests hold the scanner to it with
a crafted pickle (no pyarrow needed to scan it) and, where pyarrow is installed, check that the
reason is still true: loading that pickle crashes the interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlward import ScanOptions, Severity, Verdict, scan
from mlward.scanning import policy

RESTORE_ARRAY = "pyarrow.lib._restore_array"

# _restore_array((type_for_alias("string"), length=1, null_count=0, offset=0, buffers=[None],
# children=[], dictionary=None)): a string array needs three buffers, this one has one.
WRONG_BUFFER_COUNT = (
    b"\x80\x02"
    b"cpyarrow.lib\n_restore_array\n"
    b"("
    b"cpyarrow.lib\ntype_for_alias\n"
    b"X\x06\x00\x00\x00string\x85R"
    b"K\x01K\x00K\x00"
    b"]Na"
    b"]"
    b"N"
    b"t\x85R."
)


def test_restore_array_is_reviewed_unsafe_not_allowed() -> None:
    lists = policy.read_packaged_lists()
    assert RESTORE_ARRAY in lists.unsafe
    assert RESTORE_ARRAY not in lists.allowed
    assert not set(lists.unsafe) & set(lists.allowed)
    decision = policy.Policy().decide("pyarrow.lib", "_restore_array")
    assert decision.trust is policy.Trust.UNTRUSTED
    assert decision.category == policy.REVIEWED_UNSAFE
    assert "NEVER validates" in decision.reason
    # The names the same pickles need besides it are allowed.
    for name in ("type_for_alias", "py_buffer", "timestamp", "field", "struct"):
        assert policy.Policy().decide("pyarrow.lib", name).trust is policy.Trust.TRUSTED


def test_user_allow_still_overrides_a_reviewed_unsafe_global() -> None:
    decision = policy.Policy([RESTORE_ARRAY]).decide("pyarrow.lib", "_restore_array")
    assert decision.trust is policy.Trust.TRUSTED


def test_crafted_restore_array_pickle_is_suspicious_and_explained(tmp_path: Path) -> None:
    path = tmp_path / "crafted.pkl"
    path.write_bytes(WRONG_BUFFER_COUNT)
    art = scan([path], ScanOptions()).artifacts[0]
    assert art.verdict is Verdict.SUSPICIOUS
    raised = [f for f in art.findings if f.severity is not Severity.INFO]
    assert {f.evidence.get("global") for f in raised} == {RESTORE_ARRAY}
    (finding,) = raised
    assert finding.rule_id == "MW101"
    assert finding.title == "Global reviewed as unsafe to load"
    assert finding.evidence.get("reviewed") == "unsafe"
    assert "crashes the interpreter inside pickle.load" in finding.message
    assert finding.fix is not None and finding.fix.startswith(f"--allow {RESTORE_ARRAY}")


def test_unreviewed_globals_keep_the_generic_message(tmp_path: Path) -> None:
    path = tmp_path / "other.pkl"
    path.write_bytes(b"\x80\x02cpyarrow.lib\nfrom_numpy_dtype\n)R.")
    art = scan([path], ScanOptions()).artifacts[0]
    (finding,) = [f for f in art.findings if f.severity is not Severity.INFO]
    assert finding.title == "Global outside every allowlist"
    assert "reviewed" not in finding.evidence


def test_the_reason_is_true_loading_the_crafted_pickle_crashes(tmp_path: Path) -> None:
    """If a pyarrow release starts validating, this fails: revisit pyarrow.toml's [[unsafe]]."""
    pytest.importorskip("pyarrow")
    path = tmp_path / "crafted.pkl"
    path.write_bytes(WRONG_BUFFER_COUNT)
    code = f"import pickle; pickle.loads(open({str(path)!r}, 'rb').read()); print('loaded')"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode < 0, (
        f"pyarrow now rejects or loads this pickle (rc {done.returncode}, "
        f"{done.stdout!r} {done.stderr[-300:]!r}); review pyarrow.lib._restore_array again"
    )
