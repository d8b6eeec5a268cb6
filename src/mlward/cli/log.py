"""``mlward log``: the tamper-evident evidence log (init, append, show, prove, verify, checkpoint).

Keys are files: ``log init`` writes the signer key (keep it secret; it signs checkpoints) and a
``.pub`` verifier key (publish it; ``log verify`` trusts only the key it is given, never one
read from the database).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from mlward import api
from mlward.cli.main import ExitCode
from mlward.errors import InputError, LogError

if TYPE_CHECKING:
    from mlward.api import EvidenceEntry, NoteSigner, NoteVerifier

# Every command's parser is built on each run, so this module imports the log itself (and the
# cryptography package) only through api, on first use.

_OK, _FOUND, _ERROR = ExitCode.OK, ExitCode.FINDINGS, ExitCode.ERROR
_LOG_HELP = "a SQLite file path or a postgresql:// URL (default: $MLWARD_LOG)"


def add_parser(commands: Any) -> None:
    log_cmd = commands.add_parser(
        "log",
        help="tamper-evident log of evidence: append, show, prove, verify",
        description=(
            "An append-only Merkle log (RFC 9162) of evidence entries with signed checkpoints "
            "(C2SP signed notes), in SQLite or PostgreSQL. Exit codes: 0 success; 1 the log or "
            "a proof does not verify; 2 error."
        ),
    )
    sub = log_cmd.add_subparsers(dest="log_command", required=True)

    def with_log(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("log", nargs="?", metavar="LOG", help=_LOG_HELP)

    init = sub.add_parser("init", help="create a log and its checkpoint signing key")
    with_log(init)
    init.add_argument("--origin", required=True, help="the log's name, e.g. example.com/models")
    init.add_argument("--key-out", required=True, metavar="FILE", help="write the signer key here")

    append = sub.add_parser("append", help="append evidence entries (JSON) as one batch")
    with_log(append)
    append.add_argument(
        "--entries",
        "-e",
        action="append",
        default=[],
        metavar="FILE",
        help="a JSON object, a JSON array or JSON lines of entries ('-' for stdin); repeatable",
    )
    append.add_argument("--key", metavar="FILE", help="signer key: sign a checkpoint (advised)")

    show = sub.add_parser("show", help="print entries as JSON lines, or the latest checkpoint")
    with_log(show)
    show.add_argument("--index", type=int, help="only this entry")
    show.add_argument("--start", type=int, default=0)
    show.add_argument("--stop", type=int)
    show.add_argument("--checkpoint", action="store_true", help="print the latest checkpoint")

    prove = sub.add_parser("prove", help="an inclusion proof for an entry, or a consistency proof")
    with_log(prove)
    prove.add_argument("--index", type=int, help="the entry to prove")
    prove.add_argument(
        "--size", type=int, help="tree size (default: latest checkpoint covering the entry)"
    )
    prove.add_argument("--consistency", type=int, metavar="OLD_SIZE", help="prove OLD -> --size")
    prove.add_argument("--output", "-o", metavar="FILE")

    verify = sub.add_parser(
        "verify", help="recompute the whole log and check it, or check a proof file"
    )
    with_log(verify)
    verify.add_argument("--public-key", required=True, metavar="FILE", help="verifier key file")
    verify.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a signed checkpoint kept outside the database: detects a rollback too",
    )
    verify.add_argument("--proof", metavar="FILE", help="check this inclusion proof instead")
    verify.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="exit 0 even when newest entries are not yet covered by a signed checkpoint",
    )

    checkpoint = sub.add_parser("checkpoint", help="sign a checkpoint of the current tree")
    with_log(checkpoint)
    checkpoint.add_argument("--key", required=True, metavar="FILE", help="signer key")


def _read(path: str, what: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise InputError(
            f"cannot read {what} {path}: {exc.strerror}", fix="Check the path."
        ) from exc


def _write_new(path: str, text: str, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise InputError(
            f"cannot create {path}: {exc.strerror}",
            fix="Pick a new file name; an existing key is never overwritten.",
        ) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _location(args: argparse.Namespace) -> str:
    location = args.log or os.environ.get("MLWARD_LOG")
    if not location:
        raise InputError(
            "no log given", fix="Pass LOG (a file or postgresql:// URL) or set MLWARD_LOG."
        )
    return str(location)


def read_signer(path: str | None) -> NoteSigner | None:
    """The log's signer key from a file (``--key``/``--log-key``), or None without one."""
    return None if path is None else api.NoteSigner.from_text(_read(path, "signer key"))


def _entries(text: str, source: str) -> list[EvidenceEntry]:
    try:
        parsed = json.loads(text)
        documents = parsed if isinstance(parsed, list) else [parsed]
    except ValueError:
        try:  # JSON lines: one entry per line
            documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise LogError(
                f"{source} is not JSON: {exc}", fix="Write a JSON object, array or JSON lines."
            ) from exc
    return [api.EvidenceEntry.from_input(document) for document in documents]


def run(args: argparse.Namespace) -> ExitCode:
    command = args.log_command
    if command == "verify" and args.proof:
        return _verify_proof(args)
    location = _location(args)
    if command == "init":
        return _init(args, location)
    if command == "append":
        return _append(args, location)
    if command == "show":
        return _show(args, location)
    if command == "prove":
        return _prove(args, location)
    if command == "verify":
        return _verify(args, location)
    if command == "checkpoint":
        with api.open_log(location, signer=read_signer(args.key)) as log:
            sys.stdout.write(log.sign_checkpoint())
        return _OK
    return _ERROR


def _init(args: argparse.Namespace, location: str) -> ExitCode:
    signer = api.NoteSigner.generate(args.origin)
    for path in (args.key_out, args.key_out + ".pub"):
        if os.path.lexists(path):
            raise InputError(
                f"{path} exists", fix="Pick a new --key-out; an existing key is never overwritten."
            )
    with api.open_log(location) as log:
        log.initialize(args.origin)
    _write_new(args.key_out, signer.to_text() + "\n", 0o600)
    _write_new(args.key_out + ".pub", signer.verifier.to_text() + "\n", 0o644)
    sys.stdout.write(
        f"log {args.origin} at {log.location}\n"
        f"signer key:   {args.key_out} (secret: it signs checkpoints)\n"
        f"verifier key: {args.key_out}.pub (publish it: log verify --public-key)\n"
    )
    return _OK


def _append(args: argparse.Namespace, location: str) -> ExitCode:
    sources = args.entries or ["-"]
    entries = [e for source in sources for e in _entries(_read(source, "entries"), source)]
    with api.open_log(location, signer=read_signer(args.key)) as log:
        result = log.append(entries)
    last = result.first_index + result.count - 1
    signed = "checkpoint signed" if result.checkpoint else "NOT signed: pass --key"
    sys.stdout.write(
        f"appended {result.count} entries ({result.first_index}..{last}); size {result.size}; "
        f"root {base64.b64encode(result.root_hash).decode()}; {signed}\n"
    )
    return _OK


def _show(args: argparse.Namespace, location: str) -> ExitCode:
    with api.open_log(location) as log:
        if args.checkpoint:
            note = log.latest_checkpoint()
            if note is None:
                raise LogError(
                    "the log has no signed checkpoint", fix="Run 'mlward log checkpoint'."
                )
            sys.stdout.write(note)
            return _OK
        start, stop = args.start, args.stop
        if args.index is not None:
            start, stop = args.index, args.index + 1
        for index, body in log.entries(start, stop):
            entry = json.loads(body)
            sys.stdout.write(json.dumps({"index": index, **entry}, ensure_ascii=False) + "\n")
    return _OK


def _prove(args: argparse.Namespace, location: str) -> ExitCode:
    with api.open_log(location) as log:
        if args.consistency is not None:
            document = log.prove_consistency(args.consistency, args.size).to_json()
        elif args.index is not None:
            document = log.prove_inclusion(args.index, args.size).to_json()
        else:
            raise LogError("nothing to prove", fix="Pass --index N or --consistency OLD_SIZE.")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise InputError(
                f"cannot write {args.output}: {exc.strerror}", fix="Check the path."
            ) from exc
    else:
        sys.stdout.write(text)
    return _OK


def _verifier(path: str) -> NoteVerifier:
    return api.NoteVerifier.from_text(_read(path, "verifier key"))


def _verify_proof(args: argparse.Namespace) -> ExitCode:
    try:
        document = json.loads(_read(args.proof, "proof"))
    except ValueError as exc:
        raise LogError(f"{args.proof} is not JSON", fix="Pass a file from 'log prove'.") from exc
    from mlward.provenance.tlog import InclusionProof

    proof = InclusionProof.from_json(document)
    if proof.verify(_verifier(args.public_key)):
        sys.stdout.write(
            f"proof OK: entry {proof.index} is in the signed tree of {proof.size} entries\n"
        )
        return _OK
    sys.stdout.write(
        f"proof FAILED: entry {proof.index} is not proven to be in a signed tree of "
        f"{proof.size} entries\n"
    )
    return _FOUND


def _verify(args: argparse.Namespace, location: str) -> ExitCode:
    trusted = _read(args.checkpoint, "checkpoint") if args.checkpoint else None
    report = api.verify_log(location, _verifier(args.public_key), trusted=trusted)
    problems = [p for p in report.problems if not (args.allow_unsigned and p.kind == "unsigned")]
    for problem in report.problems:
        sys.stdout.write(f"{problem.kind}: {problem.message}\n")
    verdict = "FAILED" if problems else "OK"
    sys.stdout.write(
        f"log {verdict}: {report.size} entries, {report.checkpoints_verified} signed checkpoints "
        f"verified, {report.signed_size} entries covered by a signature\n"
    )
    return _FOUND if problems else _OK
