"""mlward sign / verify: exit codes, exact failure messages for every kind of tampering, and
schema validation of every bundle written."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

import mlward
from mlward.cli.main import main
from mlward.provenance.errors import KeyMaterialError
from mlward.provenance.hashing import HashingOptions
from mlward.provenance.oms import manifest_from_statement, read_bundle, sign_statement
from mlward.provenance.signers import (
    CertificateSigner,
    CertificateVerifier,
    KeySigner,
    KeyVerifier,
)
from tests.sign_support import (
    Pki,
    make_model,
    make_pki,
    validate_bundle,
    validate_every_written_bundle,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLWARD_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _schema_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    validate_every_written_bundle(monkeypatch)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model")


def _sign_key(pki: Pki, model: Path, sig: Path, *extra: str) -> None:
    code = main(
        ["sign", "key", "--private-key", str(pki.key), "--signature", str(sig), *extra, str(model)]
    )
    assert code == 0
    validate_bundle(sig)


def _verify_key(pki: Pki, model: Path, sig: Path, *extra: str, public: Path | None = None) -> int:
    return main(
        [
            "verify",
            "key",
            "--public-key",
            str(public or pki.public),
            "--signature",
            str(sig),
            *extra,
            str(model),
        ]
    )


def test_sign_and_verify_key(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig)
    out = capsys.readouterr().out
    assert out.startswith(f"signed {model} -> {sig} (key ")
    assert _verify_key(pki, model, sig) == 0
    assert capsys.readouterr().out.startswith(f"verified: {model} matches {sig}")


def test_default_signature_inside_model_is_ignored(
    pki: Pki, model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(model)
    assert main(["sign", "key", "--private_key", str(pki.key), "."]) == 0
    statement = validate_bundle(model / "model.sig")
    assert "model.sig" in statement["predicate"]["serialization"]["ignore_paths"]  # type: ignore[index]
    assert main(["verify", "key", "--public_key", str(pki.public), "."]) == 0


def test_file_changed(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig)
    (model / "sub" / "deeper" / "adapter.bin").write_bytes(b"poisoned weights")
    capsys.readouterr()
    assert _verify_key(pki, model, sig) == 1
    assert capsys.readouterr().out.splitlines()[:2] == [
        "verification FAILED: the model differs from what was signed: 1 changed",
        "  changed: sub/deeper/adapter.bin",
    ]


def test_file_added_and_removed(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig)
    (model / "payload.pkl").write_bytes(b"cos\nsystem\n")
    (model / "config.json").unlink()
    capsys.readouterr()
    assert _verify_key(pki, model, sig) == 1
    assert capsys.readouterr().out.splitlines()[:3] == [
        "verification FAILED: the model differs from what was signed: 1 added, 1 missing",
        "  added (not signed): payload.pkl",
        "  missing: config.json",
    ]
    # Extra files can be tolerated on request, a missing one never.
    assert _verify_key(pki, model, sig, "--ignore-unsigned-files") == 1
    (model / "config.json").write_text('{"hidden": 16}')
    assert _verify_key(pki, model, sig, "--ignore-unsigned-files") == 0


def test_result_object_lists_differences(pki: Pki, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    mlward.sign(model, KeySigner.from_file(pki.key), sig)
    (model / "weights.bin").write_bytes(b"x")
    (model / "new").write_bytes(b"y")
    (model / "empty").unlink()
    result = mlward.verify(model, KeyVerifier.from_file(pki.public), sig)
    assert not result.ok
    assert result.failure == "content-mismatch"
    assert (result.added, result.missing, result.changed) == (
        ("new",),
        ("empty",),
        ("weights.bin",),
    )
    assert result.root_digest is not None and result.signer is not None


def test_signature_bytes_altered(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig)
    bundle = json.loads(sig.read_text())
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(bundle))
    capsys.readouterr()
    assert _verify_key(pki, model, sig) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "verification FAILED: signature invalid: the envelope's signature does not match its "
        "payload for this key"
    )


def test_payload_altered(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-pointing a digest in the statement (to match a poisoned file) breaks the signature."""
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig)
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "00" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))
    capsys.readouterr()
    assert _verify_key(pki, model, sig) == 1
    assert "signature invalid" in capsys.readouterr().out


def test_wrong_key(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig)
    capsys.readouterr()
    assert _verify_key(pki, model, sig, public=pki.other_public) == 1
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("verification FAILED: untrusted signer: signed by another key (hint ")
    # Without the hint, the signature check itself rejects the other key.
    bundle = json.loads(sig.read_text())
    del bundle["verificationMaterial"]["publicKey"]["hint"]
    sig.write_text(json.dumps(bundle))
    assert _verify_key(pki, model, sig, public=pki.other_public) == 1
    assert "signature invalid" in capsys.readouterr().out


def _sign_cert(pki: Pki, model: Path, sig: Path, *extra: str) -> None:
    code = main(
        [
            "sign", "certificate", "--private-key", str(pki.leaf_key),
            "--signing-certificate", str(pki.leaf), "--certificate-chain", str(pki.intermediate),
            "--signature", str(sig), *extra, str(model),
        ]
    )  # fmt: skip
    assert code == 0
    validate_bundle(sig)


def test_certificate_sign_and_verify(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _sign_cert(pki, model, sig)
    bundle = json.loads(sig.read_text())
    assert len(bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]) == 2
    capsys.readouterr()
    assert (
        main(
            [
                "verify",
                "certificate",
                "--certificate-chain",
                str(pki.root),
                "--signature",
                str(sig),
                str(model),
            ]
        )
        == 0
    )
    assert "signed by certificate CN=mlward test signer" in capsys.readouterr().out


def test_untrusted_chain(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _sign_cert(pki, model, sig)
    capsys.readouterr()
    code = main(
        [
            "verify",
            "certificate",
            "--certificate-chain",
            str(pki.other_root),
            "--signature",
            str(sig),
            str(model),
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith(
        "verification FAILED: untrusted signer: certificate CN=mlward test signer,O=mlward tests "
        "(issuer CN=mlward test intermediate,O=mlward tests) does not chain to a trusted root"
    )
    assert "fix: Pass the root CA" in out


def test_certificate_without_signing_usage(pki: Pki) -> None:
    with pytest.raises(KeyMaterialError, match="not allowed to sign"):
        CertificateSigner.from_files(pki.server_leaf_key, pki.server_leaf, [pki.intermediate])


def test_key_mismatch_with_certificate(pki: Pki) -> None:
    with pytest.raises(KeyMaterialError, match="not the private key's pair"):
        CertificateSigner.from_files(pki.key, pki.leaf, [pki.intermediate])


def test_method_mismatch(pki: Pki, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    mlward.sign(
        model, CertificateSigner.from_files(pki.leaf_key, pki.leaf, [pki.intermediate]), sig
    )
    result = mlward.verify(model, KeyVerifier.from_file(pki.public), sig)
    assert result.failure == "untrusted-signer"
    assert (
        result.message
        == "untrusted signer: the model was signed with a certificate, not with a key"
    )
    key_sig = tmp_path / "key.sig"
    mlward.sign(model, KeySigner.from_file(pki.key), key_sig)
    result = mlward.verify(model, CertificateVerifier.from_files([pki.root]), key_sig)
    assert (
        result.message
        == "untrusted signer: the model was signed with a key, not a certificate chain"
    )


def test_malformed_signature_file(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    sig.write_text("{not json")
    assert _verify_key(pki, model, sig) == 1
    assert capsys.readouterr().out.startswith(
        "verification FAILED: not an OMS signature bundle: not JSON"
    )
    sig.write_text(
        json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {},
            }
        )
    )
    assert _verify_key(pki, model, sig) == 1
    assert "dsseEnvelope is missing" in capsys.readouterr().out


def test_inconsistent_root_digest_is_reported(pki: Pki, model: Path, tmp_path: Path) -> None:
    """A validly signed statement whose subject does not match its resources is refused."""
    signer = KeySigner.from_file(pki.key)
    sig = tmp_path / "model.sig"
    result = mlward.sign(model, signer, sig)
    statement = json.loads(result.bundle.payload)
    statement["subject"][0]["digest"]["sha256"] = "11" * 32
    sign_statement(statement, signer).write(sig)
    verdict = mlward.verify(model, KeyVerifier.from_file(pki.public), sig)
    assert verdict.failure == "malformed-signature"
    assert "does not match its resources" in verdict.message


def test_usage_and_input_errors_exit_2(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["verify", "key", str(model)])  # --public-key is required
    assert usage.value.code == 2
    assert _verify_key(pki, model, tmp_path / "absent.sig") == 2
    assert "cannot read the signature" in capsys.readouterr().err
    assert _verify_key(pki, tmp_path / "no-model", tmp_path / "absent.sig") == 2
    assert (
        main(
            [
                "sign",
                "key",
                "--private-key",
                str(pki.public),
                "--signature",
                str(tmp_path / "s"),
                str(model),
            ]
        )
        == 2
    )
    assert "is not a PEM private key" in capsys.readouterr().err


def test_symlink_refused_unless_allowed(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(b"outside")
    os.symlink(target, model / "link.bin")
    sig = tmp_path / "model.sig"
    assert (
        main(["sign", "key", "--private-key", str(pki.key), "--signature", str(sig), str(model)])
        == 2
    )
    assert "is a symbolic link" in capsys.readouterr().err
    _sign_key(pki, model, sig, "--allow-symlinks")
    assert _verify_key(pki, model, sig) == 2  # the verifier did not allow links
    assert _verify_key(pki, model, sig, "--allow_symlinks") == 0


def test_ignore_paths_recorded_and_applied(
    pki: Pki, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig, "--ignore-paths", "model/sub", "--ignore-paths", "model/config.json")
    statement = validate_bundle(sig)
    names = {r["name"] for r in statement["predicate"]["resources"]}  # type: ignore[index]
    assert "config.json" not in names and not any(n.startswith("sub/") for n in names)
    # The verifier applies the recorded ignore paths without being told again.
    (model / "config.json").write_text("changed")
    (model / "sub" / "new.bin").write_bytes(b"new")
    assert _verify_key(pki, model, sig) == 0


def test_sharded_and_blake3_bundles(pki: Pki, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "sharded.sig"
    _sign_key(pki, model, sig, "--shard-size", "1000")
    statement = validate_bundle(sig)
    assert statement["predicate"]["serialization"]["shard_size"] == 1000  # type: ignore[index]
    assert _verify_key(pki, model, sig) == 0
    pytest.importorskip("blake3")
    sig = tmp_path / "blake3.sig"
    _sign_key(pki, model, sig, "--hash-algorithm", "blake3")
    assert _verify_key(pki, model, sig, "--paranoid") == 0
    (model / "weights.bin").write_bytes(b"changed")
    assert _verify_key(pki, model, sig) == 1


def test_cached_verify_still_detects_change(pki: Pki, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig)
    assert _verify_key(pki, model, sig) == 0  # warm cache
    (model / "weights.bin").write_bytes(b"sleepy pickle")
    assert _verify_key(pki, model, sig) == 1
    assert _verify_key(pki, model, sig, "--paranoid") == 1


def test_p384_key_and_encrypted_key(tmp_path: Path, model: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.sign_support import new_key, write_private, write_public

    key = new_key(ec.SECP384R1())
    private = write_private(tmp_path / "p384.pem", key, password="s3cret")
    public = write_public(tmp_path / "p384.pub", key)
    sig = tmp_path / "model.sig"
    assert (
        main(
            [
                "sign",
                "key",
                "--private-key",
                str(private),
                "--password",
                "s3cret",
                "--signature",
                str(sig),
                str(model),
            ]
        )
        == 0
    )
    validate_bundle(sig)
    assert (
        main(["verify", "key", "--public-key", str(public), "--signature", str(sig), str(model)])
        == 0
    )
    with pytest.raises(KeyMaterialError, match="is encrypted"):
        KeySigner.from_file(private)


def test_json_output(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _sign_key(pki, model, sig)
    (model / "empty").unlink()
    capsys.readouterr()
    assert _verify_key(pki, model, sig, "--json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and document["missing"] == ["empty"]


def test_sign_statement_for_other_attestations(pki: Pki, tmp_path: Path) -> None:
    """Any in-toto statement signs into the same kind of bundle (for lineage and ML-BOMs)."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {}},
    }
    bundle = sign_statement(statement, KeySigner.from_file(pki.key))
    path = tmp_path / "attestation.sig"
    bundle.write(path)
    verified = KeyVerifier.from_file(pki.public).verify_bundle(read_bundle(path))
    assert json.loads(verified.payload) == statement
    from mlward.provenance.errors import VerificationFailure
    from mlward.provenance.verify import verify_statement

    checked = verify_statement(path, KeyVerifier.from_file(pki.public))
    assert checked.statement == statement and checked.signer.startswith("key ")
    with pytest.raises(VerificationFailure, match="untrusted signer"):
        verify_statement(path, KeyVerifier.from_file(pki.other_public))
    with pytest.raises(Exception, match="predicateType"):
        manifest_from_statement(statement)


def test_hashing_options_reach_the_api(pki: Pki, model: Path, tmp_path: Path) -> None:
    result = mlward.sign(
        model,
        KeySigner.from_file(pki.key),
        tmp_path / "s.sig",
        HashingOptions(shard_size=512, cache=False),
    )
    assert result.manifest.serialization.method == "shards"
    verdict = mlward.verify(
        model, KeyVerifier.from_file(pki.public), tmp_path / "s.sig", HashingOptions(cache=False)
    )
    assert verdict.ok, verdict.summary()


def test_optional_extras_are_named(
    monkeypatch: pytest.MonkeyPatch, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlward.provenance.errors import MissingExtraError
    from mlward.provenance.hashing import hash_model
    from mlward.provenance.signers import SigstoreSigner, SigstoreVerifier

    monkeypatch.setitem(sys.modules, "sigstore", None)
    monkeypatch.setitem(sys.modules, "blake3", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'mlward\[sigstore\]'"):
        SigstoreSigner(identity_token="token")
    with pytest.raises(MissingExtraError, match="sigstore"):
        SigstoreVerifier(identity="me@example.com", oidc_issuer="https://issuer.example")
    with pytest.raises(MissingExtraError, match=r"mlward\[blake3\]"):
        hash_model(model, HashingOptions(algorithm="blake3", cache=False))
    assert main(["sign", "sigstore", "--signature", str(model.parent / "s.sig"), str(model)]) == 2
    assert "mlward[sigstore]" in capsys.readouterr().err


def test_schemas_reject_what_is_not_an_oms_bundle(pki: Pki, model: Path, tmp_path: Path) -> None:
    import copy

    import jsonschema

    from tests.sign_support import validate_document

    sig = tmp_path / "model.sig"
    result = mlward.sign(model, KeySigner.from_file(pki.key), sig)
    good = json.loads(result.bundle.to_json())
    validate_document(good)
    statement = json.loads(result.bundle.payload)

    def with_statement(change: dict[str, object]) -> dict[str, object]:
        document = copy.deepcopy(good)
        changed = {**statement, **change}
        document["dsseEnvelope"]["payload"] = base64.b64encode(
            json.dumps(changed).encode()
        ).decode()
        return document

    bad_bundles = [
        {k: v for k, v in good.items() if k != "dsseEnvelope"},
        {**good, "mediaType": "application/json"},
        {**good, "verificationMaterial": {}},
        with_statement({"subject": []}),
        with_statement({"predicate": {"resources": [], "serialization": {"method": "files"}}}),
        with_statement(
            {
                "predicate": {
                    **statement["predicate"],
                    "resources": [{"name": "x", "algorithm": "md5", "digest": "ab"}],
                }
            }
        ),
    ]
    for bad in bad_bundles:
        with pytest.raises(jsonschema.ValidationError):
            validate_document(bad)


def _signer_pairs(pki: Pki) -> dict[str, tuple[object, object]]:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.sign_support import new_key

    p384 = new_key(ec.SECP384R1())
    p521 = new_key(ec.SECP521R1())
    return {
        "key-p256": (KeySigner.from_file(pki.key), KeyVerifier.from_file(pki.public)),
        "key-p384": (KeySigner(p384), KeyVerifier(p384.public_key())),
        "key-p521": (KeySigner(p521), KeyVerifier(p521.public_key())),
        "certificate": (
            CertificateSigner.from_files(pki.leaf_key, pki.leaf, [pki.intermediate]),
            CertificateVerifier.from_files([pki.root]),
        ),
    }


@pytest.mark.parametrize("method", ["key-p256", "key-p384", "key-p521", "certificate"])
def test_signer_contract(pki: Pki, method: str, tmp_path: Path) -> None:
    """Every local signer: sign -> write -> read -> verify gives the payload back; any change
    to the payload is a signature-invalid failure."""
    from mlward.provenance.oms import encode_statement, parse_bundle

    signer, verifier = _signer_pairs(pki)[method]
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": "cd" * 32}}],
        "predicateType": "https://example.com/test/v1",
        "predicate": {"method": method},
    }
    path = tmp_path / "s.sig"
    sign_statement(statement, signer).write(path)  # type: ignore[arg-type]
    verified = verifier.verify_bundle(read_bundle(path))  # type: ignore[attr-defined]
    assert verified.payload == encode_statement(statement)
    document = json.loads(path.read_text())
    changed = encode_statement({**statement, "predicate": {"method": "other"}})
    document["dsseEnvelope"]["payload"] = base64.b64encode(changed).decode()
    from mlward.provenance.errors import VerificationFailure

    with pytest.raises(VerificationFailure) as failure:
        verifier.verify_bundle(parse_bundle(json.dumps(document)))  # type: ignore[attr-defined]
    assert failure.value.kind == "signature-invalid"


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ([{"name": "a", "algorithm": "sha256", "digest": "ab"}] * 2, "listed twice"),
        ([{"name": "a", "algorithm": "sha256", "digest": "abc"}], "odd-length digest"),
        ([{"name": "a", "algorithm": "sha256", "digest": "AB"}], "no algorithm or hex digest"),
        ([{"name": "", "algorithm": "sha256", "digest": "ab"}], "has no name"),
        (["a"], "is not an object"),
    ],
)
def test_malformed_resources_are_named(resources: list[object], message: str) -> None:
    from mlward.provenance.errors import BundleFormatError

    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": "00" * 32}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False},
            "resources": resources,
        },
    }
    with pytest.raises(BundleFormatError, match=message):
        manifest_from_statement(statement)
