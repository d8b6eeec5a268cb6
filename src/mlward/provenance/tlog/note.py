"""C2SP signed notes with Ed25519 keys, and C2SP tlog-checkpoint bodies.

Key and line formats follow the specs (and Go's sumdb/note): key ID = SHA-256(name || 0x0A ||
0x01 || public key)[:4]; verifier key ``name+hex(id)+base64(0x01 || public key)``; signer key
``PRIVATE+KEY+name+hex(id)+base64(0x01 || seed)``; signature line ``— name base64(id || sig)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mlward.errors import LogError
from mlward.provenance.tlog.merkle import HASH_SIZE

_ED25519 = b"\x01"
_SIG_PREFIX = "— "
_MAX_SIGNATURES = 100
_SIZE = re.compile(r"^(0|[1-9][0-9]*)$")


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise LogError(
            f"key name {name!r} is not valid",
            fix="Use a non-empty name without spaces or '+', e.g. example.com/mlward-log.",
        )


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public_key).digest()[:4]


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LogError(f"{what} is not base64", fix=f"Check the {what}.") from exc


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 note verifier key: the trust anchor, kept outside the log's database."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise LogError("an Ed25519 public key has 32 bytes", fix="Check the verifier key.")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def to_text(self) -> str:
        encoded = base64.b64encode(_ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_text(cls, text: str) -> NoteVerifier:
        parts = text.strip().split("+", 2)  # base64 may hold '+' too
        fix = "A verifier key reads name+1234abcd+base64; use the .pub file 'log init' wrote."
        if len(parts) != 3 or len(parts[1]) != 8:
            raise LogError("not a note verifier key", fix=fix)
        raw = _b64decode(parts[2], "verifier key")
        if raw[:1] != _ED25519 or len(raw) != 33:
            raise LogError("verifier key is not an Ed25519 key", fix=fix)
        verifier = cls(parts[0], raw[1:])
        if verifier.key_id.hex() != parts[1].lower():
            raise LogError("verifier key ID does not match its key", fix=fix)
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 note signer key; its name is the log's origin."""

    name: str
    seed: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.seed) != 32:
            raise LogError("an Ed25519 private key has 32 bytes", fix="Check the signer key.")

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        from cryptography.hazmat.primitives import serialization

        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return cls(name, raw)

    @property
    def verifier(self) -> NoteVerifier:
        from cryptography.hazmat.primitives import serialization

        public = (
            Ed25519PrivateKey.from_private_bytes(self.seed)
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        return NoteVerifier(self.name, public)

    def to_text(self) -> str:
        encoded = base64.b64encode(_ED25519 + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    @classmethod
    def from_text(cls, text: str) -> NoteSigner:
        parts = text.strip().split("+", 4)
        fix = "A signer key reads PRIVATE+KEY+name+1234abcd+base64; use the file 'log init' wrote."
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or len(parts[3]) != 8:
            raise LogError("not a note signer key", fix=fix)
        raw = _b64decode(parts[4], "signer key")
        if raw[:1] != _ED25519 or len(raw) != 33:
            raise LogError("signer key is not an Ed25519 key", fix=fix)
        signer = cls(parts[2], raw[1:])
        if signer.verifier.key_id.hex() != parts[3].lower():
            raise LogError("signer key ID does not match its key", fix=fix)
        return signer

    def sign_note(self, text: str) -> str:
        """The text followed by a blank line and this key's signature line."""
        _check_text(text)
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(text.encode())
        encoded = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{text}\n{_SIG_PREFIX}{self.name} {encoded}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or any(c < " " and c != "\n" for c in text):
        raise LogError(
            "note text must end in a newline, hold no blank line and no control characters",
            fix="This is a bug in the caller; report it.",
        )


def open_note(note: str, verifier: NoteVerifier) -> str:
    """The note's text if ``verifier`` signed it; a failed signature by that key rejects it."""
    if any(c < " " and c != "\n" for c in note):
        raise LogError("note holds control characters", fix="Use the note as the log wrote it.")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise LogError("not a signed note", fix="Use the note as the log wrote it.")
    text, lines = note[: split + 1], note[split + 2 :].splitlines()
    if not lines or len(lines) > _MAX_SIGNATURES:
        raise LogError("signed note has no (or too many) signatures", fix="Re-sign the note.")
    verified = False
    for line in lines:
        if not line.startswith(_SIG_PREFIX) or line.count(" ") != 2:
            raise LogError(f"malformed signature line {line!r}", fix="Re-sign the note.")
        name, encoded = line[len(_SIG_PREFIX) :].split(" ")
        raw = _b64decode(encoded, "note signature")
        if len(raw) < 5:
            raise LogError("note signature is too short", fix="Re-sign the note.")
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue  # other keys (witnesses, cosigners) are ignored
        if len(raw) != 68 or not verifier.verify(text.encode(), raw[4:]):
            raise LogError(
                f"the signature by {name} does not verify",
                fix="The note was changed after signing or signed by another key with this name.",
            )
        verified = True
    if not verified:
        raise LogError(
            f"the note carries no signature by {verifier.name} ({verifier.key_id.hex()})",
            fix="Pass the verifier key of the key that signs this log's checkpoints.",
        )
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, root hash (extension lines kept)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        fix = "Use the checkpoint as the log wrote it."
        if len(lines) < 4 or lines[-1] != "" or not lines[0]:
            raise LogError("not a checkpoint: it needs origin, size and root lines", fix=fix)
        if not _SIZE.match(lines[1]):
            raise LogError(f"checkpoint size {lines[1]!r} is not a decimal number", fix=fix)
        root = _b64decode(lines[2], "checkpoint root hash")
        if len(root) != HASH_SIZE:
            raise LogError("checkpoint root hash is not 32 bytes", fix=fix)
        if any(not line for line in lines[3:-1]):
            raise LogError("checkpoint has an empty extension line", fix=fix)
        return cls(lines[0], int(lines[1]), root, tuple(lines[3:-1]))

    def sign(self, signer: NoteSigner) -> str:
        return signer.sign_note(self.to_text())


def open_checkpoint(note: str, verifier: NoteVerifier) -> Checkpoint:
    checkpoint = Checkpoint.from_text(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise LogError(
            f"checkpoint origin {checkpoint.origin!r} is not the key name {verifier.name!r}",
            fix="Pass the verifier key of this log.",
        )
    return checkpoint
