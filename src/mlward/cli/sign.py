"""``mlward sign`` and ``mlward verify``: OMS model signatures, shaped like the reference CLI.

The subcommands and flags follow ``model_signing`` so users can switch without relearning
(``sign key --private_key K --signature model.sig MODEL``); each flag is accepted with hyphens
and with the reference's underscores. Exit codes: 0 signed / verified; 1 verification failed
(the report says exactly why); 2 usage or input errors (raised as ``MlwardError`` to ``main``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from mlward.cli.main import add_log_append_flags
from mlward.provenance.hashing import DEFAULT_SHARD_SIZE, HashingOptions
from mlward.provenance.oms import DEFAULT_SIGNATURE

COMMANDS = ("sign", "verify")
_VERIFIED, _FAILED = 0, 1


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """Add ``--some-flag`` with the reference's ``--some_flag`` spelling as an alias."""
    spellings = [f"--{name}"]
    if "-" in name:
        spellings.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*spellings, **kwargs)


def _common(parser: argparse.ArgumentParser, *, signing: bool) -> None:
    parser.add_argument("model_path", metavar="MODEL_PATH", help="model file or folder")
    _flag(
        parser,
        "signature",
        metavar="SIGNATURE_PATH",
        default=DEFAULT_SIGNATURE,
        help=f"signature file to {'write' if signing else 'read'} (default: {DEFAULT_SIGNATURE})",
    )
    _flag(
        parser,
        "ignore-paths",
        action="append",
        default=[],
        metavar="PATH",
        help="leave this file or folder out (relative to the current folder, as in "
        "model_signing); repeatable",
    )
    parser.add_argument(
        "--ignore-git-paths",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="leave the model root's .git, .github, .gitattributes, .gitignore out (default: on)",
    )
    if signing:
        add_log_append_flags(parser, "signature")
    _flag(
        parser,
        "allow-symlinks",
        action="store_true",
        help="hash what links point to instead of refusing them",
    )
    _flag(
        parser,
        "jobs",
        type=int,
        default=0,
        help="hashing threads (default 0: one per core, or per large file)",
    )
    _flag(
        parser,
        "paranoid",
        action="store_true",
        help="re-hash every byte instead of trusting the digest cache for unchanged files "
        "(signing always does)",
    )
    _flag(parser, "no-cache", action="store_true", help="neither read nor write the digest cache")
    if signing:
        _flag(
            parser,
            "hash-algorithm",
            choices=("sha256", "blake3"),
            default="sha256",
            help="digest for files and shards (blake3 needs mlward[blake3]; default sha256)",
        )
        _flag(
            parser,
            "shard-size",
            type=int,
            default=0,
            metavar="BYTES",
            help="one digest per shard of this many bytes instead of per file, e.g. "
            f"{DEFAULT_SHARD_SIZE} (model_signing's shard size); sha256 only",
        )
    else:
        _flag(
            parser,
            "ignore-unsigned-files",
            action="store_true",
            help="check only the files the signature covers; do not report extra files",
        )
        _flag(parser, "json", action="store_true", help="print the result as JSON")


def add_parser(commands: Any) -> None:
    """Add ``sign`` and ``verify`` to the top-level subparsers."""
    sign = commands.add_parser(
        "sign",
        help="sign a model (OpenSSF Model Signing format)",
        description="Hash a model file or folder and write an OMS signature bundle. "
        "Exit 0 when signed, 2 on errors.",
    )
    methods = sign.add_subparsers(dest="method", required=True, metavar="METHOD")
    key = methods.add_parser("key", help="sign with an EC private key (P-256/P-384)")
    _common(key, signing=True)
    _flag(key, "private-key", required=True, metavar="PRIVATE_KEY", help="PEM private key")
    _flag(key, "password", help="password of an encrypted private key")
    cert = methods.add_parser("certificate", help="sign with a key and its X.509 certificate")
    _common(cert, signing=True)
    _flag(cert, "private-key", required=True, metavar="PRIVATE_KEY", help="PEM private key")
    _flag(cert, "password", help="password of an encrypted private key")
    _flag(
        cert,
        "signing-certificate",
        required=True,
        metavar="CERTIFICATE_PATH",
        help="PEM certificate of the signing key",
    )
    _flag(
        cert,
        "certificate-chain",
        action="append",
        default=[],
        metavar="CERTIFICATE_PATH",
        help="PEM intermediates to put in the bundle; repeatable",
    )
    keyless = methods.add_parser("sigstore", help="keyless signing with Sigstore (online)")
    _common(keyless, signing=True)
    _flag(keyless, "identity-token", metavar="TOKEN", help="OIDC identity token to use")
    _flag(keyless, "use-ambient-credentials", action="store_true", help="use CI credentials")
    _flag(keyless, "use-staging", action="store_true", help="use Sigstore's staging instance")
    _flag(keyless, "trust-config", metavar="PATH", help="custom Sigstore client trust config")

    verify = commands.add_parser(
        "verify",
        help="verify a model against its OMS signature",
        description="Check the signature and that the model is exactly what was signed. "
        "Exit 0 when verified, 1 when verification fails (with what differs), 2 on errors.",
    )
    methods = verify.add_subparsers(dest="method", required=True, metavar="METHOD")
    key = methods.add_parser("key", help="verify with the signer's EC public key")
    _common(key, signing=False)
    _flag(key, "public-key", required=True, metavar="PUBLIC_KEY", help="PEM public key")
    cert = methods.add_parser("certificate", help="verify a certificate chain to trusted roots")
    _common(cert, signing=False)
    _flag(
        cert,
        "certificate-chain",
        action="append",
        required=True,
        metavar="CERTIFICATE_PATH",
        help="PEM root CA (and intermediates) to trust; repeatable",
    )
    keyless = methods.add_parser("sigstore", help="verify a Sigstore keyless signature (online)")
    _common(keyless, signing=False)
    _flag(keyless, "identity", required=True, help="expected signer identity (e-mail, URI)")
    _flag(keyless, "identity-provider", required=True, help="expected OIDC issuer URL")
    _flag(keyless, "use-staging", action="store_true", help="use Sigstore's staging instance")
    _flag(keyless, "trust-config", metavar="PATH", help="custom Sigstore client trust config")


def _ignore_paths(model_path: str, paths: list[str]) -> tuple[str, ...]:
    """Ignore paths are given relative to the current folder (as in model_signing)."""
    root = os.path.realpath(model_path)
    kept = []
    for path in paths:
        target = os.path.realpath(path)
        if target == root or target.startswith(root + os.sep):
            kept.append(os.path.relpath(target, root))
        else:
            sys.stderr.write(f"mlward: warning: --ignore-paths {path} is outside {model_path}\n")
    return tuple(kept)


def _progress() -> tuple[Callable[[int, int, str], None] | None, Callable[[], None]]:
    """A transient Rich bar on stderr while files are hashed; nothing when stderr is no tty."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("hashing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=Console(file=sys.stderr),
        transient=True,
    )
    task = bar.add_task("", total=None)
    bar.start()

    def update(done: int, total: int, name: str) -> None:
        bar.update(task, completed=done, total=total, description=name[-40:])

    return update, bar.stop


def _hashing(
    args: argparse.Namespace,
    *,
    signing: bool,
    progress: Callable[[int, int, str], None] | None = None,
) -> HashingOptions:
    return HashingOptions(
        algorithm=args.hash_algorithm if signing else "sha256",
        shard_size=args.shard_size if signing else 0,
        allow_symlinks=args.allow_symlinks,
        ignore_paths=_ignore_paths(args.model_path, args.ignore_paths),
        ignore_git_paths=args.ignore_git_paths,
        jobs=args.jobs,
        cache=not args.no_cache,
        paranoid=args.paranoid,
        progress=progress,
    )


def _run_sign(args: argparse.Namespace) -> int:
    from mlward.api import sign
    from mlward.cli.log import read_signer

    signer = signer_from_args(args)
    progress, stop = _progress()
    try:
        result = sign(
            args.model_path,
            signer,
            args.signature,
            _hashing(args, signing=True, progress=progress),
            log=args.log,
            log_signer=read_signer(args.log_key),
        )
    finally:
        stop()
    resources = len(result.manifest.resources)
    sys.stdout.write(
        f"signed {args.model_path} -> {result.signature_path} ({result.signer}; "
        f"{resources} resources; root digest sha256:{result.root_digest})\n"
    )
    if args.log:
        sys.stdout.write(f"appended the signature to the evidence log {args.log}\n")
    return 0


def signer_from_args(args: argparse.Namespace) -> Any:
    """The signer a ``key``, ``certificate`` or ``sigstore`` subcommand's flags name (shared
    by ``sign`` and ``provenance record``)."""
    from mlward.provenance import signers

    if args.method == "key":
        return signers.KeySigner.from_file(args.private_key, args.password)
    if args.method == "certificate":
        return signers.CertificateSigner.from_files(
            args.private_key, args.signing_certificate, args.certificate_chain, args.password
        )
    return signers.SigstoreSigner(
        identity_token=args.identity_token,
        staging=args.use_staging,
        trust_config=args.trust_config,
        use_ambient_credentials=args.use_ambient_credentials,
    )


def verifier_from_args(args: argparse.Namespace) -> Any:
    """The verifier a ``key``, ``certificate`` or ``sigstore`` subcommand's flags name."""
    from mlward.provenance import signers

    if args.method == "key":
        return signers.KeyVerifier.from_file(args.public_key)
    if args.method == "certificate":
        return signers.CertificateVerifier.from_files(args.certificate_chain)
    return signers.SigstoreVerifier(
        identity=args.identity,
        oidc_issuer=args.identity_provider,
        staging=args.use_staging,
        trust_config=args.trust_config,
    )


def _run_verify(args: argparse.Namespace) -> int:
    from mlward.api import verify

    verifier = verifier_from_args(args)
    progress, stop = _progress()
    try:
        result = verify(
            args.model_path,
            verifier,
            args.signature,
            _hashing(args, signing=False, progress=progress),
            ignore_unsigned_files=args.ignore_unsigned_files,
        )
    finally:
        stop()
    if args.json:
        sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")
    else:
        sys.stdout.write(result.summary() + "\n")
    return _VERIFIED if result.ok else _FAILED


def run(args: argparse.Namespace) -> int:
    """Run ``sign`` or ``verify``; errors propagate to ``main`` as exit code 2."""
    if args.command == "sign":
        return _run_sign(args)
    return _run_verify(args)
