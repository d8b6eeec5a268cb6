"""Errors of signing and hashing; part of mlward's one error tree (``mlward.errors``)."""

from __future__ import annotations

from mlward.errors import InputError, MlwardError


class HashingError(InputError):
    """A model cannot be hashed as asked: a symlink, a special file, a file that changed."""


class KeyMaterialError(InputError):
    """A key or certificate file cannot be read or is not usable for this method."""


class BundleFormatError(MlwardError):
    """A signature file is not an OMS bundle mlward can read.

    Verification reports this as a failure (the signature does not prove anything); signing
    never raises it.
    """


class MissingExtraError(MlwardError):
    """An optional feature needs a package that is not installed."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the {module!r} package, which is not installed",
            fix=f"pip install 'mlward[{extra}]'",
        )


class VerificationFailure(MlwardError):
    """The signature does not hold: ``kind`` says why (one of ``FAILURE_KINDS``)."""

    def __init__(self, kind: str, message: str, *, fix: str) -> None:
        super().__init__(message, fix=fix)
        self.kind = kind


SIGNATURE_INVALID = "signature-invalid"
UNTRUSTED_SIGNER = "untrusted-signer"
MALFORMED = "malformed-signature"
CONTENT_MISMATCH = "content-mismatch"
FAILURE_KINDS = (SIGNATURE_INVALID, UNTRUSTED_SIGNER, MALFORMED, CONTENT_MISMATCH)
