"""``mlward log``: init, append (files, JSON lines, stdin), show, prove, verify and exit codes."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from mlward.cli.main import ExitCode, main

SCAN = {
    "kind": "artifact-scan",
    "subjects": [{"name": "model.pt", "digest": {"sha256": "ab" * 32}}],
    "payload": {"verdict": "clean"},
}


def _init(tmp_path: Path, log: str) -> tuple[str, str]:
    key = str(tmp_path / "log.key")
    assert main(["log", "init", log, "--origin", "example.com/models", "--key-out", key]) == 0
    return key, key + ".pub"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().out


def _session(tmp_path: Path, log: str, capsys: pytest.CaptureFixture[str]) -> None:
    key, pub = _init(tmp_path, log)
    assert (Path(key).stat().st_mode & 0o777) == 0o600
    entries = tmp_path / "entries.jsonl"
    entries.write_text(json.dumps(SCAN) + "\n" + json.dumps({"kind": "gate-decision"}) + "\n")
    code, out = _run(["log", "append", log, "-e", str(entries), "--key", key], capsys)
    assert code == ExitCode.OK and "appended 2 entries (0..1); size 2" in out
    array = tmp_path / "batch.json"
    array.write_text(json.dumps([SCAN, SCAN, SCAN]))
    code, out = _run(["log", "append", log, "-e", str(array), "--key", key], capsys)
    assert "size 5" in out and "checkpoint signed" in out
    code, out = _run(["log", "show", log], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    assert rows[1]["kind"] == "gate-decision" and rows[0]["subjects"] == SCAN["subjects"]
    code, out = _run(["log", "show", log, "--checkpoint"], capsys)
    assert out.startswith("example.com/models\n5\n")
    assert _run(["log", "verify", log, "--public-key", pub], capsys) == (
        ExitCode.OK,
        "log OK: 5 entries, 2 signed checkpoints verified, 5 entries covered by a signature\n",
    )
    proof = tmp_path / "proof.json"
    assert main(["log", "prove", log, "--index", "3", "-o", str(proof)]) == ExitCode.OK
    capsys.readouterr()
    code, out = _run(["log", "verify", "--proof", str(proof), "--public-key", pub], capsys)
    assert code == ExitCode.OK and "proof OK" in out
    forged = json.loads(proof.read_text())
    forged["entry"] = forged["entry"].replace("clean", "dirty")
    proof.write_text(json.dumps(forged))
    code, out = _run(["log", "verify", "--proof", str(proof), "--public-key", pub], capsys)
    assert code == ExitCode.FINDINGS and "proof FAILED" in out
    code, out = _run(["log", "prove", log, "--consistency", "2"], capsys)
    assert json.loads(out)["new_size"] == 5


def test_cli_session_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = str(tmp_path / "evidence.db")
    _session(tmp_path, log, capsys)
    conn = sqlite3.connect(log)
    conn.execute("UPDATE tlog_entries SET body = replace(body, 'clean', 'dirty') WHERE idx = 2")
    conn.commit()
    conn.close()
    code, out = _run(["log", "verify", log, "--public-key", str(tmp_path / "log.key.pub")], capsys)
    assert code == ExitCode.FINDINGS
    assert "root-mismatch" in out and "log FAILED" in out


def test_cli_session_postgres(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _session(tmp_path, postgres_url, capsys)


def test_cli_unsigned_tail_and_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = str(tmp_path / "evidence.db")
    key, pub = _init(tmp_path, log)
    monkeypatch.setenv("MLWARD_LOG", log)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"kind": "signature"})))
    code, out = _run(["log", "append"], capsys)
    assert code == ExitCode.OK and "NOT signed" in out
    code, out = _run(["log", "verify", "--public-key", pub], capsys)
    assert code == ExitCode.FINDINGS and out.startswith("unsigned: entries 0..0")
    assert _run(["log", "verify", "--public-key", pub, "--allow-unsigned"], capsys)[0] == 0
    assert main(["log", "checkpoint", "--key", key]) == ExitCode.OK
    capsys.readouterr()
    assert _run(["log", "verify", "--public-key", pub], capsys)[0] == ExitCode.OK


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = str(tmp_path / "evidence.db")
    key, _ = _init(tmp_path, log)
    capsys.readouterr()
    assert main(["log", "init", log, "--origin", "other", "--key-out", key]) == ExitCode.ERROR
    assert "never overwritten" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "coffee"}')
    assert main(["log", "append", log, "-e", str(bad)]) == ExitCode.ERROR
    assert "artifact-scan" in capsys.readouterr().err  # the fix lists the kinds
    other = tmp_path / "other.key"
    assert (
        main(["log", "init", str(tmp_path / "o.db"), "--origin", "o", "--key-out", str(other)]) == 0
    )
    bad.write_text('{"kind": "signature"}')
    assert main(["log", "append", log, "-e", str(bad), "--key", str(other)]) == ExitCode.ERROR
    assert "not the key of the log" in capsys.readouterr().err
    assert main(["log", "prove", log, "--index", "0"]) == ExitCode.ERROR
    assert "not in a tree" in capsys.readouterr().err
