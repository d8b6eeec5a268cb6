"""OMS v1.0 bundles: a Sigstore bundle v0.3 holding a DSSE envelope with an in-toto Statement v1.

The statement's subject is the model (its name and root digest); the predicate
(``https://model_signing/signature/v1.0``) lists one resource per file or shard and how the model
was serialized. ``sign_statement`` signs any in-toto statement the same way, so lineage and
ML-BOM attestations share the signers and the envelope format.

Reading is strict and never raises a bare exception: anything malformed is a
``BundleFormatError`` that names the field.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mlward.provenance.errors import BundleFormatError, KeyMaterialError
from mlward.provenance.manifest import (
    FILES,
    Manifest,
    Resource,
    Serialization,
    check_resource_name,
)
from mlward.provenance.manifest import root_digest_of as _root_digest_of

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# model_signing 0.2 signed one subject per file with this type; verifiers still read it.
LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"
# The reference CLI's default signature file name (relative to the current folder).
DEFAULT_SIGNATURE = "model.sig"
_HEX = re.compile(r"^[0-9a-f]+$")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def legacy_pae(payload_type: str, payload: bytes) -> bytes:
    """The PAE that model_signing 0.2 signed by mistake ("DSSEV1", the payload as a Python
    bytes literal). Verification only: mlward never signs it."""
    return f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode()


class Signer(Protocol):
    """Anything that turns a DSSE payload into a complete Sigstore bundle document."""

    def sign_dsse(self, payload_type: str, payload: bytes) -> dict[str, Any]: ...

    def describe(self) -> str: ...


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope_bundle(
    payload_type: str, payload: bytes, signature: bytes, material: Mapping[str, Any]
) -> dict[str, Any]:
    """The bundle document for a locally made signature (key or certificate)."""
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": dict(material),
        "dsseEnvelope": {
            "payload": b64encode(payload),
            "payloadType": payload_type,
            "signatures": [{"sig": b64encode(signature), "keyid": ""}],
        },
    }


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle: the envelope's parts decoded, the original document kept for Sigstore."""

    media_type: str
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]
    material: Mapping[str, Any]
    document: Mapping[str, Any]

    def to_json(self) -> str:
        return json.dumps(self.document, indent=2) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: an interrupted run never leaves half a signature behind."""
        target = os.fspath(path)
        temporary = f"{target}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(self.to_json())
            os.replace(temporary, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise KeyMaterialError(
                f"cannot write the signature to {os.fspath(path)}: {exc.strerror}",
                fix="Pass a --signature path in a folder you can write to.",
            ) from exc

    def statement(self) -> dict[str, Any]:
        """The payload as a JSON object (not yet checked as an OMS statement)."""
        return parse_statement(self.payload)


def parse_statement(payload: bytes) -> dict[str, Any]:
    """A DSSE payload as a JSON object; ``BundleFormatError`` when it is not one."""
    try:
        value = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleFormatError(
            f"the signed payload is not JSON: {exc}",
            fix="The signature file is damaged; sign the model again.",
        ) from exc
    if not isinstance(value, dict):
        raise BundleFormatError(
            "the signed payload is not a JSON object",
            fix="The signature file is damaged; sign the model again.",
        )
    return value


def _bad(what: str) -> BundleFormatError:
    return BundleFormatError(
        f"not an OMS signature bundle: {what}",
        fix="Check that --signature names a file written by mlward sign or model_signing sign.",
    )


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise _bad(f"{field} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{field} is not valid base64") from None


def parse_bundle(text: str | bytes) -> Bundle:
    """Decode a bundle document; checks structure only, never the signature."""
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise _bad("the document is not a JSON object")
    media_type = document.get("mediaType")
    if not isinstance(media_type, str) or not media_type.startswith(
        "application/vnd.dev.sigstore.bundle"
    ):
        raise _bad(f"mediaType {media_type!r} is not a Sigstore bundle")
    material = document.get("verificationMaterial")
    if not isinstance(material, dict):
        raise _bad("verificationMaterial is missing")
    envelope = document.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        raise _bad("dsseEnvelope is missing (a message-signature bundle is not an OMS bundle)")
    payload = _b64(envelope.get("payload"), "dsseEnvelope.payload")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        raise _bad("dsseEnvelope.payloadType is missing")
    raw_signatures = envelope.get("signatures")
    if not isinstance(raw_signatures, list) or not raw_signatures:
        raise _bad("dsseEnvelope.signatures is empty")
    signatures = []
    for index, entry in enumerate(raw_signatures):
        if not isinstance(entry, dict):
            raise _bad(f"dsseEnvelope.signatures[{index}] is not an object")
        signatures.append(_b64(entry.get("sig"), f"dsseEnvelope.signatures[{index}].sig"))
    return Bundle(
        media_type=media_type,
        payload_type=payload_type,
        payload=payload,
        signatures=tuple(signatures),
        material=material,
        document=document,
    )


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise KeyMaterialError(
            f"cannot read the signature {os.fspath(path)}: {exc.strerror}",
            fix="Pass the signature file with --signature (default: model.sig).",
        ) from exc
    return parse_bundle(data)


def statement_for(manifest: Manifest) -> dict[str, Any]:
    """The in-toto statement that signs a model manifest."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": manifest.model_name, "digest": {"sha256": manifest.root_digest_hex}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": manifest.serialization.to_json(),
            "resources": [
                {"name": r.name, "algorithm": r.algorithm, "digest": r.digest_hex}
                for r in manifest.resources
            ],
        },
    }


def encode_statement(statement: Mapping[str, Any]) -> bytes:
    return json.dumps(statement, indent=2, ensure_ascii=False).encode("utf-8")


def sign_statement(statement: Mapping[str, Any], signer: Signer) -> Bundle:
    """Sign any in-toto statement into a bundle (DSSE, in-toto payload type)."""
    if statement.get("_type") != STATEMENT_TYPE:
        raise BundleFormatError(
            f"refusing to sign: _type is {statement.get('_type')!r}, not {STATEMENT_TYPE}",
            fix="Build an in-toto Statement v1.",
        )
    document = signer.sign_dsse(IN_TOTO_PAYLOAD_TYPE, encode_statement(statement))
    return parse_bundle(json.dumps(document))


def _manifest_bad(what: str) -> BundleFormatError:
    return BundleFormatError(
        f"the signed statement is not an OMS v1.0 model signature: {what}",
        fix="Sign the model again with mlward sign or model_signing sign (v1.0 or later).",
    )


_HEX_RUN = re.compile(r"[0-9a-f]*")


def _fast_resources(entries: list[Any], method: str) -> list[Resource] | None:
    """The resources of a well-formed list in a few passes (a model may list 100,000 files);
    None sends anything unusual to the entry-by-entry check, which names the problem."""
    try:
        names = [e["name"] for e in entries]
        algorithms = [e["algorithm"] for e in entries]
        hexes = [e["digest"] for e in entries]
        if not all(type(v) is str and v for v in (*names, *algorithms, *hexes)):
            return None
        if not _HEX_RUN.fullmatch("".join(hexes)) or len(set(names)) != len(names):
            return None
        digests = [bytes.fromhex(h) for h in hexes]
        if method != FILES:
            for name in names:
                check_resource_name(name, method)
    except (TypeError, KeyError, ValueError):
        return None
    return list(map(Resource, names, algorithms, digests))


def _checked_resources(entries: list[Any], method: str) -> list[Resource]:
    resources: list[Resource] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _manifest_bad(f"resources[{index}] is not an object")
        res_name, algorithm, digest = entry.get("name"), entry.get("algorithm"), entry.get("digest")
        if not isinstance(res_name, str) or not res_name:
            raise _manifest_bad(f"resources[{index}] has no name")
        if not isinstance(algorithm, str) or not isinstance(digest, str) or not _HEX.match(digest):
            raise _manifest_bad(f"resource {res_name!r} has no algorithm or hex digest")
        if len(digest) % 2:
            raise _manifest_bad(f"resource {res_name!r} has an odd-length digest")
        try:
            check_resource_name(res_name, method)
        except ValueError as exc:
            raise _manifest_bad(str(exc)) from exc
        if res_name in seen:
            raise _manifest_bad(f"resource {res_name!r} is listed twice")
        seen.add(res_name)
        resources.append(Resource(res_name, algorithm, bytes.fromhex(digest)))
    return resources


def manifest_from_statement(statement: Mapping[str, Any]) -> Manifest:
    """The manifest a verified statement describes; checks the root digest against resources."""
    if statement.get("_type") != STATEMENT_TYPE:
        raise _manifest_bad(f"_type is {statement.get('_type')!r}")
    if statement.get("predicateType") == LEGACY_PREDICATE_TYPE:
        return _legacy_manifest(statement)
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise _manifest_bad(f"predicateType is {statement.get('predicateType')!r}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise _manifest_bad("it must have exactly one subject")
    name = subjects[0].get("name")
    digest_set = subjects[0].get("digest")
    if not isinstance(name, str) or not isinstance(digest_set, dict):
        raise _manifest_bad("the subject has no name or digest")
    expected_root = digest_set.get("sha256")
    if not isinstance(expected_root, str) or not _HEX.match(expected_root):
        raise _manifest_bad("the subject has no sha256 root digest")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise _manifest_bad("the predicate is missing")
    try:
        serialization = Serialization.from_json(predicate.get("serialization"))
    except ValueError as exc:
        raise _manifest_bad(str(exc)) from exc
    entries = predicate.get("resources")
    if not isinstance(entries, list):
        raise _manifest_bad("predicate.resources is not a list")
    resources = _fast_resources(entries, serialization.method)
    if resources is None:
        resources = _checked_resources(entries, serialization.method)
    # The root digest covers the resources in the order they were signed.
    actual_root = _root_digest_of(r.digest for r in resources).hex()
    if actual_root != expected_root:
        raise _manifest_bad(
            f"the subject's root digest {expected_root} does not match its resources "
            f"({actual_root})"
        )
    return Manifest(name, serialization, tuple(resources))


def _legacy_manifest(statement: Mapping[str, Any]) -> Manifest:
    """A model_signing 0.2 statement: each subject is a file with its SHA-256; there is no root
    digest and no serialization record (files, SHA-256, no symlinks is what 0.2 did)."""
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        raise _manifest_bad("the legacy statement has no subject list")
    resources = []
    for index, subject in enumerate(subjects):
        name = subject.get("name") if isinstance(subject, dict) else None
        digests = subject.get("digest") if isinstance(subject, dict) else None
        digest = digests.get("sha256") if isinstance(digests, dict) else None
        if not isinstance(name, str) or not isinstance(digest, str) or not _HEX.match(digest):
            raise _manifest_bad(f"legacy subject[{index}] has no name or sha256 digest")
        resources.append(Resource(name, "sha256", bytes.fromhex(digest)))
    return Manifest("compat-undefined-not-present", Serialization(), tuple(resources))
