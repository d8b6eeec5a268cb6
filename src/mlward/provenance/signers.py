"""Signers and verifiers: a local EC key, an X.509 certificate chain, Sigstore keyless.

Key and certificate bundles are laid out as the OMS reference writes them: a key bundle names
its key by ``publicKey.hint`` (hex SHA-256 of the PEM public key), a certificate bundle carries
the leaf then the chain in ``x509CertificateChain``; both have no transparency-log entries. The
ECDSA hash follows the curve (P-256: SHA-256, P-384: SHA-384, P-521: SHA-512).

Certificate chains are checked at the leaf's notBefore time, as the reference does: with no
trusted timestamp in the bundle, the question is whether the leaf was valid when it was issued.
Self-signed certificates given to the verifier are the trust anchors; the others only help to
build the chain. The leaf must allow signing (key usage digitalSignature or extended key usage
codeSigning).

Sigstore needs the ``mlward[sigstore]`` extra and the network; it is imported only when used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

if TYPE_CHECKING:
    # X.509 costs a third of start-up; key signing and verifying never need it.
    from cryptography import x509

from mlward.provenance.errors import (
    MALFORMED,
    SIGNATURE_INVALID,
    UNTRUSTED_SIGNER,
    KeyMaterialError,
    MissingExtraError,
    VerificationFailure,
)
from mlward.provenance.oms import (
    BUNDLE_MEDIA_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    Bundle,
    envelope_bundle,
    legacy_pae,
    pae,
)

_CURVE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def _read(path: str | os.PathLike[str], what: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise KeyMaterialError(
            f"cannot read the {what} {os.fspath(path)}: {exc.strerror}",
            fix=f"Pass a readable PEM file with {flag}.",
        ) from exc


def _check_curve(key: ec.EllipticCurvePublicKey, origin: str) -> None:
    if key.curve.name not in _CURVE_HASHES:
        raise KeyMaterialError(
            f"{origin} uses the curve {key.curve.name}, which OMS signatures do not support",
            fix="Use an EC key on P-256 or P-384 (P-521 is also accepted).",
        )


def _ecdsa(key: ec.EllipticCurvePublicKey) -> ec.ECDSA:
    return ec.ECDSA(_CURVE_HASHES[key.curve.name]())


def load_private_key(
    path: str | os.PathLike[str], password: str | None = None
) -> ec.EllipticCurvePrivateKey:
    """An EC private key from a PEM file (encrypted if ``password`` is given)."""
    data = _read(path, "private key", "--private-key")
    try:
        key = serialization.load_pem_private_key(
            data, password.encode() if password is not None else None
        )
    except TypeError as exc:
        raise KeyMaterialError(
            f"the private key {os.fspath(path)} is encrypted"
            if password is None
            else f"the private key {os.fspath(path)} is not encrypted",
            fix="Pass --password for an encrypted key, and only then.",
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyMaterialError(
            f"{os.fspath(path)} is not a PEM private key (or the password is wrong)",
            fix="Pass an EC private key in PEM form, for example from "
            "`openssl ecparam -name prime256v1 -genkey -noout`.",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyMaterialError(
            f"{os.fspath(path)} is not an elliptic-curve key",
            fix="OMS key signatures use EC keys on P-256 or P-384.",
        )
    _check_curve(key.public_key(), os.fspath(path))
    return key


def load_public_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePublicKey:
    data = _read(path, "public key", "--public-key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyMaterialError(
            f"{os.fspath(path)} is not a PEM public key",
            fix="Pass the public half of the signing key in PEM (SubjectPublicKeyInfo) form.",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyMaterialError(
            f"{os.fspath(path)} is not an elliptic-curve key",
            fix="OMS key signatures use EC keys on P-256 or P-384.",
        )
    _check_curve(key, os.fspath(path))
    return key


def load_certificates(paths: Sequence[str | os.PathLike[str]], flag: str) -> list[x509.Certificate]:
    """Every PEM certificate in the given files, in order."""
    from cryptography import x509

    certificates: list[x509.Certificate] = []
    for path in paths:
        data = _read(path, "certificate file", flag)
        try:
            certificates.extend(x509.load_pem_x509_certificates(data))
        except ValueError as exc:
            raise KeyMaterialError(
                f"{os.fspath(path)} holds no readable PEM certificate",
                fix=f"Pass PEM certificates with {flag}.",
            ) from exc
    return certificates


def key_hint(key: ec.EllipticCurvePublicKey) -> str:
    """The reference's key identifier: hex SHA-256 of the PEM SubjectPublicKeyInfo."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def describe_certificate(certificate: x509.Certificate) -> str:
    return (
        f"certificate {certificate.subject.rfc4514_string()} "
        f"(issuer {certificate.issuer.rfc4514_string()})"
    )


class KeySigner:
    """Signs with a local EC private key; the bundle names the key by its hint."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        _check_curve(private_key.public_key(), "the private key")
        self._key = private_key

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], password: str | None = None) -> KeySigner:
        return cls(load_private_key(path, password))

    def _material(self) -> dict[str, Any]:
        return {"publicKey": {"hint": key_hint(self._key.public_key())}, "tlogEntries": []}

    def sign_dsse(self, payload_type: str, payload: bytes) -> dict[str, Any]:
        signature = self._key.sign(pae(payload_type, payload), _ecdsa(self._key.public_key()))
        return envelope_bundle(payload_type, payload, signature, self._material())

    def describe(self) -> str:
        return f"key {key_hint(self._key.public_key())[:16]}"


class CertificateSigner(KeySigner):
    """Signs with the private key of a signing certificate; the bundle carries leaf + chain."""

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        super().__init__(private_key)
        if certificate.public_key() != private_key.public_key():
            raise KeyMaterialError(
                "the signing certificate's public key is not the private key's pair",
                fix="Pass the certificate issued for this --private-key.",
            )
        if not _can_sign(certificate):
            raise KeyMaterialError(
                f"{describe_certificate(certificate)} is not allowed to sign: it has neither "
                "key usage digitalSignature nor extended key usage codeSigning",
                fix="Issue the signing certificate with one of them; verifiers reject it.",
            )
        self._certificate = certificate
        self._chain = tuple(chain)

    @classmethod
    def from_files(
        cls,
        private_key: str | os.PathLike[str],
        certificate: str | os.PathLike[str],
        chain: Sequence[str | os.PathLike[str]] = (),
        password: str | None = None,
    ) -> CertificateSigner:
        leaf = load_certificates([certificate], "--signing-certificate")
        return cls(
            load_private_key(private_key, password),
            leaf[0],
            load_certificates(chain, "--certificate-chain"),
        )

    def _material(self) -> dict[str, Any]:
        der = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in (self._certificate, *self._chain)
        ]
        return {
            "x509CertificateChain": {"certificates": [{"rawBytes": d} for d in der]},
            "tlogEntries": [],
        }

    def describe(self) -> str:
        return describe_certificate(self._certificate)


@dataclass(frozen=True)
class Verified:
    """What a verified envelope carries, and who signed it."""

    payload_type: str
    payload: bytes
    signer: str


def _signature_invalid(detail: str) -> VerificationFailure:
    return VerificationFailure(
        SIGNATURE_INVALID,
        f"signature invalid: {detail}",
        fix="The signature or the signed statement was altered; get the original signature "
        "or sign the model again.",
    )


def _require_v03(bundle: Bundle) -> None:
    if bundle.media_type != BUNDLE_MEDIA_TYPE:
        raise VerificationFailure(
            MALFORMED,
            f"bundle media type is {bundle.media_type}, expected {BUNDLE_MEDIA_TYPE}",
            fix="Sign the model again with mlward sign or model_signing sign.",
        )


def _check_ecdsa(
    key: ec.EllipticCurvePublicKey, bundle: Bundle, legacy_hash: hashes.HashAlgorithm
) -> None:
    signature, payload_type, payload = bundle.signatures[0], bundle.payload_type, bundle.payload
    try:
        key.verify(signature, pae(payload_type, payload), _ecdsa(key))
        return
    except InvalidSignature:
        pass
    # model_signing before 1.0 signed a mis-encoded PAE (and, with certificates, always with
    # SHA-256); the reference still accepts those signatures, so a migrating user can verify
    # old models with mlward too.
    try:
        key.verify(signature, legacy_pae(payload_type, payload), ec.ECDSA(legacy_hash))
    except InvalidSignature:
        raise _signature_invalid(
            "the envelope's signature does not match its payload for this key"
        ) from None


class KeyVerifier:
    """Verifies bundles made with the private half of this public key."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        _check_curve(public_key, "the public key")
        self._key = public_key

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyVerifier:
        return cls(load_public_key(path))

    def verify_bundle(self, bundle: Bundle) -> Verified:
        _require_v03(bundle)
        public_key = bundle.material.get("publicKey")
        if not isinstance(public_key, dict):
            kind = "a certificate" if "x509CertificateChain" in bundle.material else "Sigstore"
            raise VerificationFailure(
                UNTRUSTED_SIGNER,
                f"untrusted signer: the model was signed with {kind}, not with a key",
                fix="Verify with the matching method (mlward verify certificate|sigstore).",
            )
        hint = public_key.get("hint")
        expected = key_hint(self._key)
        if hint and hint != expected:
            raise VerificationFailure(
                UNTRUSTED_SIGNER,
                f"untrusted signer: signed by another key (hint {hint[:16]}…, the public key "
                f"given is {expected[:16]}…)",
                fix="Pass the public key that pairs with the signing key (--public-key).",
            )
        _check_ecdsa(self._key, bundle, _CURVE_HASHES[self._key.curve.name]())
        return Verified(bundle.payload_type, bundle.payload, f"key {expected[:16]}")


def _ca_policy() -> Any:
    from cryptography import x509
    from cryptography.x509.verification import Criticality, ExtensionPolicy

    def is_ca(_policy: Any, _cert: Any, value: x509.BasicConstraints | None) -> None:
        if value is None or not value.ca:
            raise ValueError("an issuing certificate is not a CA (basicConstraints)")

    def can_sign_certs(_policy: Any, _cert: Any, value: x509.KeyUsage | None) -> None:
        if value is not None and not value.key_cert_sign:
            raise ValueError("an issuing certificate's key usage lacks keyCertSign")

    return (
        ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, is_ca)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, can_sign_certs)
    )


def _can_sign(certificate: x509.Certificate) -> bool:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        if usage.digital_signature:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        extended = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        return ExtendedKeyUsageOID.CODE_SIGNING in extended
    except x509.ExtensionNotFound:
        return False


class CertificateVerifier:
    """Verifies certificate bundles whose chain ends at one of the given trust anchors."""

    def __init__(self, certificates: Sequence[x509.Certificate]) -> None:
        if not certificates:
            raise KeyMaterialError(
                "no certificates to trust",
                fix="Pass the root CA (and any intermediates) with --certificate-chain.",
            )
        self._anchors = [c for c in certificates if c.subject == c.issuer]
        self._helpers = [c for c in certificates if c.subject != c.issuer]
        if not self._anchors:
            raise KeyMaterialError(
                "no self-signed root among the certificates to trust",
                fix="Include the root CA certificate in --certificate-chain.",
            )

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike[str]]) -> CertificateVerifier:
        return cls(load_certificates(paths, "--certificate-chain"))

    def _chain(self, bundle: Bundle) -> list[x509.Certificate]:
        from cryptography import x509

        chain = bundle.material.get("x509CertificateChain")
        entries = chain.get("certificates") if isinstance(chain, dict) else None
        if not isinstance(entries, list) or not entries:
            kind = "a key" if "publicKey" in bundle.material else "no certificate chain"
            raise VerificationFailure(
                UNTRUSTED_SIGNER,
                f"untrusted signer: the model was signed with {kind}, not a certificate chain",
                fix="Verify with the matching method (mlward verify key|sigstore).",
            )
        certificates = []
        for entry in entries:
            raw = entry.get("rawBytes") if isinstance(entry, dict) else None
            try:
                certificates.append(x509.load_der_x509_certificate(base64.b64decode(str(raw))))
            except (ValueError, binascii.Error):
                raise VerificationFailure(
                    MALFORMED,
                    "the bundle's certificate chain holds an unreadable certificate",
                    fix="Sign the model again.",
                ) from None
        return certificates

    def verify_bundle(self, bundle: Bundle) -> Verified:
        from cryptography.x509.verification import (
            ExtensionPolicy,
            PolicyBuilder,
            Store,
            VerificationError,
        )

        _require_v03(bundle)
        leaf, *intermediates = self._chain(bundle)
        who = describe_certificate(leaf)
        builder = (
            PolicyBuilder()
            .store(Store(self._anchors))
            .time(leaf.not_valid_before_utc)
            .extension_policies(ca_policy=_ca_policy(), ee_policy=ExtensionPolicy.permit_all())
        )
        try:
            builder.build_client_verifier().verify(leaf, [*intermediates, *self._helpers])
        except VerificationError as exc:
            raise VerificationFailure(
                UNTRUSTED_SIGNER,
                f"untrusted signer: {who} does not chain to a trusted root ({exc})",
                fix="Pass the root CA that issued the signing certificate with "
                "--certificate-chain.",
            ) from None
        if not _can_sign(leaf):
            raise VerificationFailure(
                UNTRUSTED_SIGNER,
                f"untrusted signer: {who} is not allowed to sign (no digitalSignature key "
                "usage, no codeSigning extended key usage)",
                fix="Issue the signing certificate with key usage digitalSignature or extended "
                "key usage codeSigning.",
            )
        key = leaf.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVE_HASHES:
            raise VerificationFailure(
                UNTRUSTED_SIGNER,
                f"untrusted signer: {who} does not hold an EC P-256/P-384/P-521 key",
                fix="Sign with an EC certificate.",
            )
        _check_ecdsa(key, bundle, hashes.SHA256())
        return Verified(bundle.payload_type, bundle.payload, who)


def _sigstore(feature: str) -> Any:
    try:
        import sigstore
    except ImportError:
        raise MissingExtraError(feature, "sigstore", "sigstore") from None
    return sigstore


def _trust_config(staging: bool, trust_config: str | None) -> Any:
    from sigstore.models import ClientTrustConfig

    if trust_config:
        with open(trust_config, encoding="utf-8") as handle:
            return ClientTrustConfig.from_json(handle.read())
    return ClientTrustConfig.staging() if staging else ClientTrustConfig.production()


class SigstoreSigner:
    """Keyless signing: a short-lived Fulcio certificate for an OIDC identity, logged in Rekor.

    The identity token is taken from ``identity_token``, else from ambient credentials (CI),
    else from an interactive browser flow.
    """

    def __init__(
        self,
        *,
        identity_token: str | None = None,
        staging: bool = False,
        trust_config: str | None = None,
        use_ambient_credentials: bool = True,
    ) -> None:
        _sigstore("Sigstore signing")
        self._token = identity_token
        self._staging = staging
        self._trust_config = trust_config
        self._ambient = use_ambient_credentials
        self._who = "sigstore"

    def sign_dsse(self, payload_type: str, payload: bytes) -> dict[str, Any]:
        import json

        from sigstore import dsse, oidc
        from sigstore.sign import SigningContext

        if payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise KeyMaterialError(
                f"Sigstore signs in-toto statements only, not {payload_type}",
                fix="Sign an in-toto Statement v1.",
            )
        config = _trust_config(self._staging, self._trust_config)
        raw = self._token
        if not raw and self._ambient:
            raw = oidc.detect_credential()
        token = (
            oidc.IdentityToken(raw)
            if raw
            else oidc.Issuer(config.signing_config.get_oidc_url()).identity_token()
        )
        self._who = f"sigstore identity {token.identity} ({token.issuer})"
        with SigningContext.from_trust_config(config).signer(token) as signer:
            bundle = signer.sign_dsse(dsse.Statement(payload))
        document: dict[str, Any] = json.loads(bundle.to_json())
        return document

    def describe(self) -> str:
        return self._who


class SigstoreVerifier:
    """Verifies keyless bundles for an expected identity and OIDC issuer."""

    def __init__(
        self,
        *,
        identity: str,
        oidc_issuer: str,
        staging: bool = False,
        trust_config: str | None = None,
    ) -> None:
        _sigstore("Sigstore verification")
        self._identity = identity
        self._issuer = oidc_issuer
        self._staging = staging
        self._trust_config = trust_config

    def verify_bundle(self, bundle: Bundle) -> Verified:
        import json

        from sigstore.errors import VerificationError
        from sigstore.models import Bundle as SigstoreBundle
        from sigstore.verify import Verifier, policy

        config = _trust_config(self._staging, self._trust_config)
        verifier = Verifier(trusted_root=config.trusted_root)
        try:
            parsed = SigstoreBundle.from_json(json.dumps(bundle.document))
            payload_type, payload = verifier.verify_dsse(
                parsed, policy.Identity(identity=self._identity, issuer=self._issuer)
            )
        except VerificationError as exc:
            raise VerificationFailure(
                UNTRUSTED_SIGNER,
                f"untrusted signer or invalid signature: {exc}",
                fix="Check --identity and --identity-provider against who signed the model.",
            ) from None
        except Exception as exc:  # noqa: BLE001 - sigstore raises many types for bad input
            raise VerificationFailure(
                MALFORMED,
                f"not a valid Sigstore bundle: {exc}",
                fix="Sign the model again with mlward sign sigstore.",
            ) from None
        return Verified(payload_type, payload, f"sigstore identity {self._identity}")
