"""The command line: exit codes, output formats, --allow, --list-untrusted and policy files."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from mlward.cli.main import ExitCode, main
from mlward.reporting.json_report import load_report_schema

GADGET = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R."
USER_CLASS = b"\x80\x02cmypkg.models\nNet\n)\x81}X\x01\x00\x00\x00wK\x01sb."


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    sub = root / "sub"
    sub.mkdir(parents=True)
    (root / "clean.pkl").write_bytes(pickle.dumps({"a": [1, 2.5, "x"]}, protocol=4))
    (sub / "user.pkl").write_bytes(USER_CLASS)
    return root


def test_clean_files_exit_zero(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tree / "clean.pkl")]) == ExitCode.OK
    assert "CLEAN" in capsys.readouterr().out


def test_findings_exit_one_and_directories_are_recursive(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(tree)]) == ExitCode.FINDINGS
    out = capsys.readouterr().out
    assert "sub/user.pkl" in out
    assert "--allow mypkg.models.Net" in out


def test_fail_on_malicious_lets_suspicious_pass(tree: Path) -> None:
    assert main(["scan", "--fail-on", "malicious", str(tree)]) == ExitCode.OK


def test_allow_flag_and_list_untrusted(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--list-untrusted", str(tree)]) == ExitCode.FINDINGS
    assert capsys.readouterr().out == "mypkg.models.Net\n"
    assert main(["scan", "--allow", "mypkg.models.Net", str(tree)]) == ExitCode.OK
    assert main(["scan", "--allow", "mypkg.*", str(tree)]) == ExitCode.OK


def test_prefix_allow_never_covers_a_denylisted_name(tmp_path: Path) -> None:
    (tmp_path / "g.pkl").write_bytes(GADGET)
    assert main(["scan", "--allow", "os.*", str(tmp_path)]) == ExitCode.FINDINGS
    assert main(["scan", "--allow", "os.system", str(tmp_path)]) == ExitCode.OK


def test_policy_file(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[scan]\nallow = ["mypkg.models.Net"]\n')
    assert main(["scan", "--policy", str(policy), str(tree)]) == ExitCode.OK
    policy.write_text('[scan]\nallow = "mypkg.models.Net"\n')
    assert main(["scan", "--policy", str(policy), str(tree)]) == ExitCode.ERROR
    assert "allow must be a list" in capsys.readouterr().err


def test_inconclusive_exits_two_and_can_be_accepted(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    assert main(["scan", str(tmp_path)]) == ExitCode.ERROR
    assert main(["scan", "--inconclusive-ok", str(tmp_path)]) == ExitCode.OK


def test_missing_path_is_an_error_with_a_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(tmp_path / "nope.pt")]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "no such file" in err and "fix:" in err


def test_bad_allow_value_is_an_error(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--allow", "not a name", str(tree)]) == ExitCode.ERROR
    assert "dotted Python name" in capsys.readouterr().err


def test_json_output_matches_the_shipped_schema(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    assert main(["scan", "--format", "json", "--output", str(out), str(tree)]) == ExitCode.FINDINGS
    document = json.loads(out.read_text())
    jsonschema.validate(document, load_report_schema())
    by_path = {Path(a["path"]).name: a for a in document["artifacts"]}
    assert by_path["user.pkl"]["verdict"] == "suspicious"
    assert by_path["user.pkl"]["untrusted_imports"] == ["mypkg.models.Net"]
    assert by_path["clean.pkl"]["verdict"] == "clean"


def test_jobs_give_the_same_verdicts(tree: Path, tmp_path: Path) -> None:
    for i in range(6):
        (tree / f"copy{i}.pkl").write_bytes(GADGET if i % 2 else USER_CLASS)
    single, multi = tmp_path / "one.json", tmp_path / "two.json"
    main(["scan", "--format", "json", "-o", str(single), str(tree)])
    main(["scan", "--format", "json", "-o", str(multi), "--jobs", "2", str(tree)])

    def verdicts(path: Path) -> dict[str, str]:
        return {a["path"]: a["verdict"] for a in json.loads(path.read_text())["artifacts"]}

    assert verdicts(single) == verdicts(multi)


def test_console_script_runs(tree: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlward.cli.main", "scan", "--format", "sarif", str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == ExitCode.FINDINGS
    assert json.loads(result.stdout)["version"] == "2.1.0"


def test_format_choices_match_the_renderer_registry() -> None:
    from mlward.cli.main import _parser
    from mlward.reporting import RENDERERS

    scan_parser = _parser()._subparsers._group_actions[0].choices["scan"]  # type: ignore[union-attr]
    choices = next(a.choices for a in scan_parser._actions if a.dest == "format")
    assert set(choices) == set(RENDERERS)


def test_linked_files_are_scanned_and_linked_folders_reported(tmp_path: Path) -> None:
    import os

    real = tmp_path / "blobs"
    real.mkdir()
    (real / "abc123").write_bytes(GADGET)
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    os.symlink(real / "abc123", snapshot / "pytorch_model.bin")  # the Hugging Face cache layout
    os.symlink(real, snapshot / "linked_dir")
    out = tmp_path / "report.json"
    assert main(["scan", "--format", "json", "-o", str(out), str(snapshot)]) == ExitCode.FINDINGS
    by_name = {Path(a["path"]).name: a for a in json.loads(out.read_text())["artifacts"]}
    assert by_name["pytorch_model.bin"]["verdict"] == "malicious"
    assert any(f["rule_id"] == "MW904" for f in by_name["pytorch_model.bin"]["findings"])
    assert by_name["linked_dir"]["verdict"] == "inconclusive"


def test_unwritable_output_is_an_error_with_a_fix(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-folder" / "report.json"
    assert main(["scan", "--format", "json", "-o", str(target), str(tree)]) == ExitCode.ERROR
    assert "--output" in capsys.readouterr().err
