"""Training lineage: signed SLSA provenance (record, verify, tamper), the git revision reader,
and the chain data -> run -> model -> signatures -> decisions read back from the evidence log,
rendered as text, DOT and Mermaid."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlward import api
from mlward.cli.main import main
from mlward.errors import InputError, OptionsError
from mlward.provenance import hashing
from mlward.provenance.lineage import (
    BUILD_TYPE,
    SLSA_PREDICATE_TYPE,
    TrainingRun,
    build_lineage,
    read_git_head,
)
from mlward.provenance.lineage_render import render_dot, render_mermaid, render_text
from mlward.provenance.signers import (
    CertificateSigner,
    CertificateVerifier,
    KeySigner,
    KeyVerifier,
)
from mlward.provenance.tlog import EvidenceEntry, EvidenceKind, Subject
from tests.sign_support import Pki, make_pki, validate_every_written_bundle

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLWARD_LOG", raising=False)
    validate_every_written_bundle(monkeypatch)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "config.json").write_text('{"hidden": 8}')
    (folder / "sub" / "head.bin").write_bytes(b"head" * 50)
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "train-data"
    folder.mkdir()
    (folder / "part-0.csv").write_text("x,y\n1,0\n2,1\n")
    (folder / "part-1.csv").write_text("x,y\n3,0\n")
    return folder


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        [GIT or "git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def code(tmp_path: Path) -> Path:
    if GIT is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "code"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('train')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "train")
    _git(repo, "remote", "add", "origin", "https://user:secret-token@example.com/org/code.git")
    return repo


def _statement(path: Path) -> dict[str, object]:
    bundle = json.loads(path.read_text())
    statement: dict[str, object] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return statement


# --- record and verify -------------------------------------------------------------------


def test_record_writes_signed_slsa_provenance(
    pki: Pki, model: Path, dataset: Path, code: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "w.bin").write_bytes(b"base weights")
    out = tmp_path / "provenance.json"
    record = api.record_provenance(
        TrainingRun(
            str(model),
            datasets=(str(dataset),),
            base_model=str(base),
            code=str(code),
            parameters={"lr": 0.01, "epochs": 3},
            metrics={"accuracy": 0.93},
            run_id="run-42",
            started_on="2026-11-01T10:00:00Z",
            finished_on="2026-11-01T11:00:00Z",
        ),
        KeySigner.from_file(pki.key),
        out,
    )
    statement = _statement(out)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == SLSA_PREDICATE_TYPE
    subject = statement["subject"][0]  # type: ignore[index]
    assert subject["digest"] == {"sha256": hashing.root_digest(model)}
    assert record.root_digest == hashing.root_digest(model)
    predicate = statement["predicate"]
    definition = predicate["buildDefinition"]  # type: ignore[index]
    assert definition["buildType"] == BUILD_TYPE
    assert definition["externalParameters"]["parameters"] == {"lr": 0.01, "epochs": 3}
    dependencies = {d["name"]: d for d in definition["resolvedDependencies"]}
    # Full content: the dataset's root digest is SHA-256 over the SHA-256 of every file.
    file_digests = [
        hashlib.sha256((dataset / name).read_bytes()).digest()
        for name in ("part-0.csv", "part-1.csv")
    ]
    assert dependencies["train-data"]["digest"] == {
        "sha256": hashlib.sha256(b"".join(file_digests)).hexdigest()
    }
    assert dependencies["train-data"]["annotations"]["mlward.role"] == "dataset"
    assert dependencies["train-data"]["annotations"]["mlward.files"] == 2
    assert dependencies["base"]["digest"] == {"sha256": hashing.root_digest(base)}
    assert dependencies["base"]["annotations"]["mlward.role"] == "base-model"
    head = _git(code, "rev-parse", "HEAD")
    assert dependencies["code"]["digest"] == {"gitCommit": head}
    assert dependencies["code"]["annotations"]["mlward.dirty"] is False
    # The remote's token never reaches a signed record.
    assert dependencies["code"]["uri"] == "git+https://example.com/org/code.git"
    assert "secret-token" not in out.read_text() and "secret-token" not in json.dumps(statement)
    packages = definition["internalParameters"]["packages"]
    assert f"pytest=={importlib.metadata.version('pytest')}" in packages
    details = predicate["runDetails"]  # type: ignore[index]
    assert details["builder"]["id"] == "urn:mlward:builder:local"
    assert details["metadata"] == {
        "invocationId": "run-42",
        "startedOn": "2026-11-01T10:00:00Z",
        "finishedOn": "2026-11-01T11:00:00Z",
    }
    assert details["byproducts"][0]["annotations"] == {"accuracy": 0.93}

    result = api.verify_provenance(model, out, KeyVerifier.from_file(pki.public))
    assert result.ok, result.summary()
    assert result.run_id == "run-42"
    assert ("dataset", "train-data", dependencies["train-data"]["digest"]["sha256"]) in (
        result.inputs
    )
    assert "verified" in result.summary()


def test_changed_dataset_changes_its_digest(pki: Pki, model: Path, dataset: Path) -> None:
    first = api.record_provenance(
        TrainingRun(str(model), datasets=(str(dataset),), environment=False),
        KeySigner.from_file(pki.key),
        model.parent / "a.json",
    )
    with open(dataset / "part-1.csv", "r+b") as handle:
        handle.seek(5)
        handle.write(b"9")  # one byte deep inside a file: a partial digest would miss it
    second = api.record_provenance(
        TrainingRun(str(model), datasets=(str(dataset),), environment=False),
        KeySigner.from_file(pki.key),
        model.parent / "b.json",
    )
    assert first.datasets[0].digest != second.datasets[0].digest


def test_tampered_model_fails_with_a_clear_message(pki: Pki, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "provenance.json"
    api.record_provenance(TrainingRun(str(model)), KeySigner.from_file(pki.key), out)
    before = hashing.root_digest(model)
    (model / "weights.bin").write_bytes(b"sleepy pickle" + bytes(100))
    result = api.verify_provenance(model, out, KeyVerifier.from_file(pki.public))
    assert not result.ok
    assert result.failure == "content-mismatch"
    assert before in result.message and hashing.root_digest(model) in result.message
    assert "not the one this training run produced" in result.message
    assert "FAILED" in result.summary() and "fix:" in result.summary()


def test_added_file_fails(pki: Pki, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "provenance.json"
    api.record_provenance(TrainingRun(str(model)), KeySigner.from_file(pki.key), out)
    (model / "extra.pkl").write_bytes(b"\x80\x04N.")
    result = api.verify_provenance(model, out, KeyVerifier.from_file(pki.public))
    assert result.failure == "content-mismatch"


def test_edited_statement_breaks_the_signature(pki: Pki, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "provenance.json"
    api.record_provenance(
        TrainingRun(str(model), metrics={"accuracy": 0.5}), KeySigner.from_file(pki.key), out
    )
    bundle = json.loads(out.read_text())
    statement = _statement(out)
    statement["predicate"]["runDetails"]["byproducts"][0]["annotations"]["accuracy"] = 0.99  # type: ignore[index]
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    out.write_text(json.dumps(bundle))
    result = api.verify_provenance(model, out, KeyVerifier.from_file(pki.public))
    assert not result.ok and result.failure == "signature-invalid"


def test_wrong_key_fails(pki: Pki, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "provenance.json"
    api.record_provenance(TrainingRun(str(model)), KeySigner.from_file(pki.key), out)
    result = api.verify_provenance(model, out, KeyVerifier.from_file(pki.other_public))
    assert not result.ok and result.failure in ("signature-invalid", "untrusted-signer")


def test_a_model_signature_is_not_provenance(pki: Pki, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    api.sign(model, KeySigner.from_file(pki.key), sig)
    result = api.verify_provenance(model, sig, KeyVerifier.from_file(pki.public))
    assert not result.ok and result.failure == "malformed-signature"
    assert "not an SLSA provenance statement" in result.message


def test_certificate_signed_provenance(pki: Pki, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "provenance.json"
    signer = CertificateSigner.from_files(pki.leaf_key, pki.leaf, [pki.intermediate])
    api.record_provenance(TrainingRun(str(model)), signer, out)
    assert api.verify_provenance(model, out, CertificateVerifier.from_files([pki.root])).ok
    untrusted = api.verify_provenance(model, out, CertificateVerifier.from_files([pki.other_root]))
    assert not untrusted.ok and untrusted.failure == "untrusted-signer"


def test_bundle_inside_the_model_is_left_out(pki: Pki, model: Path) -> None:
    out = model / "provenance.json"
    record = api.record_provenance(TrainingRun(str(model)), KeySigner.from_file(pki.key), out)
    assert record.root_digest == hashing.root_digest(
        model, hashing.HashingOptions(ignore_paths=("provenance.json",))
    )
    assert api.verify_provenance(model, out, KeyVerifier.from_file(pki.public)).ok


def test_bad_inputs_say_what_to_do(pki: Pki, model: Path, tmp_path: Path) -> None:
    signer = KeySigner.from_file(pki.key)
    with pytest.raises(InputError, match="--dataset"):
        api.record_provenance(
            TrainingRun(str(model), datasets=(str(tmp_path / "nope"),)), signer, tmp_path / "p"
        )
    with pytest.raises(InputError, match="not a git repository"):
        api.record_provenance(TrainingRun(str(model), code=str(model)), signer, tmp_path / "p")
    with pytest.raises(OptionsError, match="RFC 3339"):
        TrainingRun(str(model), started_on="yesterday")
    with pytest.raises(OptionsError, match="JSON"):
        TrainingRun(str(model), metrics={"loss": float("nan")})


# --- git ---------------------------------------------------------------------------------


@needs_git
def test_git_head_read_without_git(code: Path, tmp_path: Path) -> None:
    head = _git(code, "rev-parse", "HEAD")
    assert read_git_head(str(code)) == head
    assert read_git_head(str(code / ".git" / "..")) == head
    _git(code, "pack-refs", "--all")  # loose refs gone: read packed-refs
    assert not (code / ".git" / "refs" / "heads" / "main").exists()
    assert read_git_head(str(code)) == head
    worktree = tmp_path / "wt"
    _git(code, "worktree", "add", "-q", "--detach", str(worktree))  # .git is a file there
    assert read_git_head(str(worktree)) == head
    plain = tmp_path / "plain"
    plain.mkdir()
    assert read_git_head(str(plain)) is None


@needs_git
def test_uncommitted_changes_are_recorded(pki: Pki, model: Path, code: Path) -> None:
    (code / "train.py").write_text("print('changed')\n")
    record = api.record_provenance(
        TrainingRun(str(model), code=str(code)), KeySigner.from_file(pki.key), model.parent / "p"
    )
    assert record.code is not None and record.code.dirty is True


# --- lineage from the log ----------------------------------------------------------------


def _chain(pki: Pki, model: Path, dataset: Path, tmp_path: Path) -> tuple[str, str, str]:
    """A log with a dataset snapshot, a training run, a signature and a gate decision for the
    model, plus entries about something else."""
    log = str(tmp_path / "evidence.db")
    data_digest = hashing.root_digest(dataset)
    api.append_evidence(
        log,
        [
            EvidenceEntry(
                EvidenceKind.DATASET_SNAPSHOT,
                subjects=(Subject("train-data", {"sha256": data_digest}),),
                payload={"rows": 3, "files": 2},
            ),
            EvidenceEntry(
                EvidenceKind.SIGNATURE,
                subjects=(Subject("other", {"sha256": "ab" * 32}),),
                payload={"signer": "someone else"},
            ),
        ],
    )
    record = api.record_provenance(
        TrainingRun(
            str(model),
            datasets=(str(dataset),),
            parameters={"lr": 0.01},
            metrics={"accuracy": 0.93},
            run_id="run-7",
            environment=False,
        ),
        KeySigner.from_file(pki.key),
        tmp_path / "provenance.json",
        log=log,
    )
    assert record.log_index == 2
    sign = api.sign(model, KeySigner.from_file(pki.key), tmp_path / "model.sig")
    subject = (Subject("model", {"sha256": sign.root_digest}),)
    api.append_evidence(
        log,
        [
            EvidenceEntry(
                EvidenceKind.SIGNATURE,
                subjects=subject,
                payload={"signer": sign.signer, "method": "key"},
            ),
            EvidenceEntry(
                EvidenceKind.GATE_DECISION,
                subjects=subject,
                payload={"decision": "allow", "policy": "prod-gate"},
            ),
            EvidenceEntry(
                EvidenceKind.ARTIFACT_SCAN, subjects=subject, payload={"verdict": "clean"}
            ),
        ],
    )
    return log, data_digest, record.root_digest


def test_lineage_chain_from_the_log(pki: Pki, model: Path, dataset: Path, tmp_path: Path) -> None:
    log, data_digest, model_digest = _chain(pki, model, dataset, tmp_path)
    lineage = api.lineage(model, log)
    assert lineage.model_digest == model_digest
    assert lineage.entries_read == 6
    kinds = [(n.kind, n.log_index) for n in lineage.nodes]
    assert kinds == [
        ("dataset", None),
        ("run", 2),
        ("model", None),
        ("signature", 3),
        ("decision", 4),
        ("evidence", 5),
    ]
    data = lineage.node(f"dataset:{data_digest}")
    assert data.label == "train-data"
    assert ("snapshot", f"log #0 {data.details[0][1].split(' ', 2)[2]}") == data.details[0]
    assert ("rows", "3") in data.details
    run = lineage.node("run:2")
    assert ("runId", "run-7") in run.details and ("parameters", "lr=0.01") in run.details
    edges = {(e.source, e.target, e.label) for e in lineage.edges}
    assert edges == {
        (f"dataset:{data_digest}", "run:2", "trained on"),
        ("run:2", f"model:{model_digest}", "produced"),
        (f"model:{model_digest}", "signature:3", "signed"),
        (f"model:{model_digest}", "decision:4", "decided"),
        (f"model:{model_digest}", "evidence:5", "artifact-scan"),
    }
    # By digest too, without the model on disk.
    assert api.lineage(f"sha256:{model_digest}", log).edges == lineage.edges

    text = render_text(lineage)
    for line in (
        f"lineage of sha256:{model_digest} ({model})",
        "data:",
        f"  train-data  sha256:{data_digest}",
        "      -> trained on training run",
        "training runs:",
        "      -> produced model",
        "signatures:",
        "decisions:",
        "      decision: allow",
        "      policy: prod-gate",
    ):
        assert line in text.splitlines(), line


def test_lineage_of_an_unknown_model(model: Path, tmp_path: Path) -> None:
    log = str(tmp_path / "evidence.db")
    api.append_evidence(log, [EvidenceEntry(EvidenceKind.EVALUATION, payload={"x": 1})])
    lineage = api.lineage(model, log)
    assert [n.kind for n in lineage.nodes] == ["model"]
    text = render_text(lineage)
    assert "training runs: none found" in text and "signatures: none found" in text
    with pytest.raises(InputError, match="does not exist"):
        api.lineage(model, tmp_path / "missing.db")


def _entry(kind: EvidenceKind, digest: str, payload: dict[str, object], name: str = "m") -> bytes:
    return EvidenceEntry(
        kind,
        subjects=(Subject(name, {"sha256": digest}),),
        payload=payload,
        timestamp="2026-11-01T12:00:00Z",
    ).to_bytes()


D, M, B, E = "d" * 64, "a" * 64, "b" * 64, "e" * 64


def _fixed_lineage() -> list[tuple[int, bytes]]:
    """A base model trained on D, fine-tuned into M on E; M signed and allowed."""
    return [
        (0, _entry(EvidenceKind.DATASET_SNAPSHOT, D, {"rows": 10}, "pretrain")),
        (
            1,
            _entry(
                EvidenceKind.TRAINING_RUN,
                B,
                {
                    "runId": "r1",
                    "inputs": [{"role": "dataset", "name": "pretrain", "digest": {"sha256": D}}],
                },
                "base",
            ),
        ),
        (
            2,
            _entry(
                EvidenceKind.TRAINING_RUN,
                M,
                {
                    "runId": "r2",
                    "inputs": [
                        {"role": "dataset", "name": "tune", "digest": {"sha256": E}},
                        {"role": "base-model", "name": "base", "digest": {"sha256": B}},
                    ],
                },
            ),
        ),
        (3, _entry(EvidenceKind.SIGNATURE, M, {"signer": "key 1234"})),
        (4, _entry(EvidenceKind.GATE_DECISION, M, {"decision": "allow"})),
        (5, b'{"not": "an entry"}'),
    ]


def test_lineage_follows_the_base_model() -> None:
    lineage = build_lineage(_fixed_lineage(), M, log="t.db")
    assert {n.id for n in lineage.of_kind("run")} == {"run:1", "run:2"}
    assert {n.id for n in lineage.of_kind("dataset")} == {f"dataset:{D}", f"dataset:{E}"}
    assert {n.id for n in lineage.of_kind("model")} == {f"model:{M}", f"model:{B}"}
    edges = {(e.source, e.target, e.label) for e in lineage.edges}
    assert (f"model:{B}", "run:2", "base model") in edges
    assert ("run:1", f"model:{B}", "produced") in edges
    assert (f"dataset:{D}", "run:1", "trained on") in edges
    assert lineage.skipped == (5,)
    # The base model's lineage does not claim the fine-tuning run produced it.
    base = build_lineage(_fixed_lineage(), B)
    assert {n.id for n in base.of_kind("run")} == {"run:1"}


GOLDEN_DOT = f"""digraph lineage {{
  rankdir=LR;
  node [fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9];
  "dataset:{D}" [label="pretrain\\nsha256:dddddddddddd", shape=cylinder];
  "dataset:{E}" [label="tune\\nsha256:eeeeeeeeeeee", shape=cylinder];
  "run:1" [label="training run\\nlog #1\\nrunId: r1", shape=box3d];
  "run:2" [label="training run\\nlog #2\\nrunId: r2", shape=box3d];
  "model:{M}" [label="m\\nsha256:aaaaaaaaaaaa", shape=box, penwidth=2];
  "model:{B}" [label="base\\nsha256:bbbbbbbbbbbb", shape=box];
  "signature:3" [label="signature\\nlog #3\\nsigner: key 1234", shape=note];
  "decision:4" [label="gate-decision\\nlog #4\\ndecision: allow", shape=diamond];
  "run:2" -> "model:{M}" [label="produced"];
  "dataset:{E}" -> "run:2" [label="trained on"];
  "model:{B}" -> "run:2" [label="base model"];
  "model:{M}" -> "signature:3" [label="signed"];
  "model:{M}" -> "decision:4" [label="decided"];
  "run:1" -> "model:{B}" [label="produced"];
  "dataset:{D}" -> "run:1" [label="trained on"];
}}
"""


def test_dot_golden() -> None:
    assert render_dot(build_lineage(_fixed_lineage(), M)) == GOLDEN_DOT


def test_mermaid_golden() -> None:
    text = render_mermaid(build_lineage(_fixed_lineage(), M))
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  n0[("pretrain<br/>sha256:dddddddddddd")]' in lines
    assert '  n2[["training run<br/>log #1<br/>runId: r1"]]' in lines
    assert '  n4["m<br/>sha256:aaaaaaaaaaaa"]' in lines
    assert '  n6>"signature<br/>log #3<br/>signer: key 1234"]' in lines
    assert '  n7{"gate-decision<br/>log #4<br/>decision: allow"}' in lines
    assert '  n0 -->|"trained on"| n2' in lines
    assert '  n5 -->|"base model"| n3' in lines
    assert '  n4 -->|"decided"| n7' in lines
    assert "  class n7 decision" in lines
    # Every edge names declared nodes only.
    declared = {line.split("[")[0].split(">")[0].split("{")[0].strip() for line in lines[1:9]}
    assert declared == {f"n{i}" for i in range(8)}


def test_labels_are_escaped() -> None:
    entries = [(0, _entry(EvidenceKind.GATE_DECISION, M, {"decision": 'say "no" <b> & \\'}))]
    lineage = build_lineage(entries, M)
    dot = render_dot(lineage)
    assert 'decision: say \\"no\\" <b> & \\\\"' in dot
    mermaid = render_mermaid(lineage)
    assert "decision: say #quot;no#quot; #lt;b#gt; #amp; \\" in mermaid


# --- command line ------------------------------------------------------------------------


def test_cli_record_verify_lineage(
    pki: Pki,
    model: Path,
    dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = tmp_path / "log.db"
    out = tmp_path / "provenance.json"
    monkeypatch.setenv("MLWARD_LOG", str(log))
    params = tmp_path / "params.json"
    params.write_text('{"batch": 32}')
    code = main(
        [
            "provenance", "record", "key",
            "--private-key", str(pki.key),
            "--dataset", str(dataset),
            "--params", str(params),
            "--param", "lr=0.001",
            "--param", "optimizer=adam",
            "--metric", "accuracy=0.9",
            "--run-id", "cli-run",
            "--no-environment",
            "-o", str(out),
            str(model),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "recorded training run cli-run" in printed and "log entry #0" in printed
    statement = _statement(out)
    definition = statement["predicate"]["buildDefinition"]  # type: ignore[index]
    assert definition["externalParameters"]["parameters"] == {
        "batch": 32,
        "lr": 0.001,
        "optimizer": "adam",
    }
    assert "packages" not in definition["internalParameters"]

    verify = ["provenance", "verify", "key", "--public-key", str(pki.public)]
    assert main([*verify, "--provenance", str(out), str(model)]) == 0
    assert "verified" in capsys.readouterr().out

    for fmt, first in (
        ("text", "lineage of sha256:"),
        ("dot", "digraph"),
        ("mermaid", "flowchart"),
    ):
        assert main(["lineage", str(model), "--format", fmt]) == 0
        assert capsys.readouterr().out.startswith(first)
    graph = tmp_path / "lineage.mmd"
    assert (
        main(["lineage", str(model), "--log", str(log), "--format", "mermaid", "-o", str(graph)])
        == 0
    )
    assert graph.read_text().startswith("flowchart LR")

    (model / "config.json").write_text('{"hidden": 9}')
    assert main([*verify, "--provenance", str(out), "--json", str(model)]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and result["failure"] == "content-mismatch"
    # The changed model has no lineage in the log.
    assert main(["lineage", str(model)]) == 1


def test_cli_errors(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lineage", str(model)]) == 2
    assert "MLWARD_LOG" in capsys.readouterr().err
    key = tmp_path / "missing.pem"
    assert main(["provenance", "record", "key", "--private-key", str(key), str(model)]) == 2
    assert "fix:" in capsys.readouterr().err


def test_signed_but_malformed_provenance_is_reported(pki: Pki, model: Path, tmp_path: Path) -> None:
    from mlward.provenance.oms import sign_statement

    out = tmp_path / "odd.json"
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": hashing.root_digest(model)}}],
        "predicateType": SLSA_PREDICATE_TYPE,
        "predicate": {"buildDefinition": "not an object"},
    }
    out.write_text(sign_statement(statement, KeySigner.from_file(pki.key)).to_json())
    result = api.verify_provenance(model, out, KeyVerifier.from_file(pki.public))
    assert not result.ok and result.failure == "malformed-signature"
    assert "buildDefinition" in result.message


def test_cli_sign_appends_the_signature_to_the_log(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.db"
    signature = tmp_path / "model.sig"
    sign = ["sign", "key", "--private-key", str(pki.key), "--signature", str(signature)]
    assert main([*sign, "--log", str(log), str(model)]) == 0
    assert "appended the signature to the evidence log" in capsys.readouterr().out
    lineage = api.lineage(model, str(log))
    signatures = [node for node in lineage.nodes if node.kind == "signature"]
    assert len(signatures) == 1 and signatures[0].log_index == 0
    with api.open_log(str(log)) as opened:
        _, stored = next(iter(opened.entries()))
    payload = json.loads(stored)["payload"]
    assert payload["signature_sha256"] == hashlib.sha256(signature.read_bytes()).hexdigest()
    # Without --log (and no $MLWARD_LOG) nothing is appended.
    assert main([*sign, str(model)]) == 0
    assert api.lineage(model, str(log)).entries_read == 1


def test_data_snapshot_in_the_log_joins_the_training_run(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn")
    log = tmp_path / "log.db"
    data = tmp_path / "train.csv"
    data.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n")
    store = tmp_path / "snapshots.jsonl"
    snapshot = ["data", "snapshot", str(data), "--label", "y", "--store", str(store)]
    assert main([*snapshot, "--log", str(log)]) == 0
    assert "appended the snapshot to the evidence log" in capsys.readouterr().err
    api.record_provenance(
        TrainingRun(str(model), datasets=(str(data),), run_id="csv-run", environment=False),
        KeySigner.from_file(pki.key),
        tmp_path / "provenance.json",
        log=str(log),
    )
    lineage = api.lineage(model, str(log))
    data_digest = hashing.root_digest(data)
    node = lineage.node(f"dataset:{data_digest}")
    assert node.details[0][0] == "snapshot" and node.details[0][1].startswith("log #0 ")
    assert ("rows", "3") in node.details
    assert (f"dataset:{data_digest}", "run:1", "trained on") in {
        (e.source, e.target, e.label) for e in lineage.edges
    }
