"""``mlward provenance record|verify`` (signed SLSA provenance of a training run) and
``mlward lineage`` (the chain data -> run -> model -> signatures -> decisions in the log).

Exit codes: ``provenance record`` 0 recorded; ``provenance verify`` 0 verified, 1 failed (the
report says why); ``lineage`` 0 when the log holds evidence about the model, 1 when it holds
none; 2 usage or input errors (raised as ``MlwardError`` to ``main``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from typing import Any

from mlward.cli.main import ExitCode, add_log_append_flags
from mlward.errors import InputError, OptionsError

_DEFAULT_PROVENANCE = "provenance.json"  # mlward.provenance.lineage.DEFAULT_PROVENANCE
_LOG_HELP = "evidence log: a SQLite file path or a postgresql:// URL (default: $MLWARD_LOG)"


def _signing_flags(parser: argparse.ArgumentParser, *, certificate: bool) -> None:
    parser.add_argument("--private-key", required=True, metavar="PRIVATE_KEY", help="PEM key")
    parser.add_argument("--password", help="password of an encrypted private key")
    if certificate:
        parser.add_argument(
            "--signing-certificate",
            required=True,
            metavar="CERTIFICATE_PATH",
            help="PEM certificate of the signing key",
        )
        parser.add_argument(
            "--certificate-chain",
            action="append",
            default=[],
            metavar="CERTIFICATE_PATH",
            help="PEM intermediates to put in the bundle; repeatable",
        )


def _record_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model_path", metavar="MODEL_PATH", help="the trained model (file or folder)"
    )
    parser.add_argument(
        "--output",
        "-o",
        default=_DEFAULT_PROVENANCE,
        metavar="FILE",
        help=f"provenance bundle to write (default: {_DEFAULT_PROVENANCE})",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="PATH",
        help="a training dataset (file or folder), hashed in full; repeatable",
    )
    parser.add_argument("--base-model", metavar="PATH", help="the model training started from")
    parser.add_argument(
        "--code", metavar="DIR", help="the training code's git checkout (its HEAD commit)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training parameter (VALUE read as JSON when it parses, else text); repeatable",
    )
    parser.add_argument("--params", metavar="FILE", help="a JSON object of training parameters")
    parser.add_argument(
        "--metric", action="append", default=[], metavar="KEY=VALUE", help="a metric; repeatable"
    )
    parser.add_argument("--metrics", metavar="FILE", help="a JSON object of metrics")
    parser.add_argument("--run-id", help="the run's id (default: a new UUID)")
    parser.add_argument("--started", metavar="TIME", help="start time, e.g. 2026-01-31T12:00:00Z")
    parser.add_argument("--finished", metavar="TIME", help="end time (default: now)")
    parser.add_argument("--builder-id", help="URI of the training platform (SLSA builder.id)")
    parser.add_argument(
        "--environment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="record every installed Python distribution as name==version (default: on)",
    )
    add_log_append_flags(parser, "statement")


def _verify_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_path", metavar="MODEL_PATH", help="the model (file or folder)")
    parser.add_argument(
        "--provenance",
        default=_DEFAULT_PROVENANCE,
        metavar="FILE",
        help=f"provenance bundle to check (default: {_DEFAULT_PROVENANCE})",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_parser(commands: Any) -> None:
    """Add ``provenance`` and ``lineage`` to the top-level subparsers."""
    provenance = commands.add_parser(
        "provenance",
        help="signed SLSA provenance of training runs: record, verify",
        description="Record a training run as a signed in-toto statement with an SLSA "
        "Provenance v1 predicate (datasets, base model, code, parameters, environment, "
        "metrics; the model's root digest as subject), or verify one against a model.",
    )
    sub = provenance.add_subparsers(dest="provenance_command", required=True, metavar="COMMAND")
    record = sub.add_parser(
        "record",
        help="record and sign a training run",
        description="Exit 0 when recorded, 2 on errors.",
    )
    methods = record.add_subparsers(dest="method", required=True, metavar="METHOD")
    key = methods.add_parser("key", help="sign with an EC private key (P-256/P-384)")
    _signing_flags(key, certificate=False)
    _record_flags(key)
    cert = methods.add_parser("certificate", help="sign with a key and its X.509 certificate")
    _signing_flags(cert, certificate=True)
    _record_flags(cert)

    verify = sub.add_parser(
        "verify",
        help="check a provenance bundle's signature and that the model is its subject",
        description="Exit 0 when verified, 1 when verification fails, 2 on errors.",
    )
    methods = verify.add_subparsers(dest="method", required=True, metavar="METHOD")
    key = methods.add_parser("key", help="verify with the signer's EC public key")
    key.add_argument("--public-key", required=True, metavar="PUBLIC_KEY", help="PEM public key")
    _verify_flags(key)
    cert = methods.add_parser("certificate", help="verify a certificate chain to trusted roots")
    cert.add_argument(
        "--certificate-chain",
        action="append",
        required=True,
        metavar="CERTIFICATE_PATH",
        help="PEM root CA (and intermediates) to trust; repeatable",
    )
    _verify_flags(cert)

    lineage = commands.add_parser(
        "lineage",
        help="show a model's chain data -> run -> model -> signatures -> decisions",
        description="Find everything the evidence log holds about a model (by its root "
        "digest): the training runs that produced it and their datasets and base model, its "
        "signatures, gate decisions and other evidence. Exit 0 when the log names the model, "
        "1 when it holds nothing about it, 2 on errors.",
    )
    lineage.add_argument(
        "model", metavar="MODEL", help="model file or folder, or its root digest as sha256:<hex>"
    )
    lineage.add_argument("--log", metavar="LOG", help=_LOG_HELP)
    lineage.add_argument("--format", choices=("text", "dot", "mermaid"), default="text")
    lineage.add_argument("--output", "-o", metavar="FILE", help="write the result here")
    lineage.add_argument(
        "--ignore-paths",
        action="append",
        default=[],
        metavar="PATH",
        help="leave this file or folder (relative to the model) out of its digest, e.g. a "
        "signature kept inside it; repeatable",
    )


def _read_json_object(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except OSError as exc:
        raise InputError(
            f"cannot read {what} {path}: {exc.strerror}", fix="Check the path."
        ) from exc
    except ValueError as exc:
        raise OptionsError(f"{what} {path} is not JSON: {exc}", fix="Write a JSON object.") from exc
    if not isinstance(value, dict):
        raise OptionsError(f"{what} {path} is not a JSON object", fix='Write {"key": value}.')
    return value


def _pairs(items: list[str], flag: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise OptionsError(f"{flag} {item!r} is not KEY=VALUE", fix=f"Write {flag} lr=0.01.")
        try:
            found[key] = json.loads(text)
        except ValueError:
            found[key] = text
    return found


def _log_location(value: str | None) -> str | None:
    return value or os.environ.get("MLWARD_LOG") or None


def _write(text: str, output: str | None) -> None:
    if not output:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise InputError(
            f"cannot write {output}: {exc.strerror}", fix="Pass an --output path you can write."
        ) from exc


def _record(args: argparse.Namespace) -> int:
    from mlward import api
    from mlward.cli.sign import signer_from_args
    from mlward.provenance.lineage import DEFAULT_BUILDER_ID, TrainingRun

    signer = signer_from_args(args)
    parameters = _read_json_object(args.params, "--params") if args.params else {}
    parameters.update(_pairs(args.param, "--param"))
    metrics = _read_json_object(args.metrics, "--metrics") if args.metrics else {}
    metrics.update(_pairs(args.metric, "--metric"))
    run = TrainingRun(
        model_path=args.model_path,
        datasets=tuple(args.dataset),
        base_model=args.base_model,
        code=args.code,
        parameters=parameters,
        metrics=metrics,
        run_id=args.run_id,
        started_on=args.started,
        finished_on=args.finished,
        builder_id=args.builder_id or DEFAULT_BUILDER_ID,
        environment=args.environment,
    )
    from mlward.cli.log import read_signer

    log_signer = read_signer(args.log_key)
    result = api.record_provenance(
        run, signer, args.output, log=_log_location(args.log), log_signer=log_signer
    )
    sys.stdout.write(result.summary() + "\n")
    return int(ExitCode.OK)


def _verify(args: argparse.Namespace) -> int:
    from mlward import api
    from mlward.cli.sign import verifier_from_args

    verifier = verifier_from_args(args)
    result = api.verify_provenance(args.model_path, args.provenance, verifier)
    if args.json:
        sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")
    else:
        sys.stdout.write(result.summary() + "\n")
    return int(ExitCode.OK if result.ok else ExitCode.FINDINGS)


def _lineage(args: argparse.Namespace) -> int:
    from mlward import api
    from mlward.provenance.hashing import HashingOptions
    from mlward.provenance.lineage_render import RENDERERS

    location = _log_location(args.log)
    if not location:
        raise InputError(
            "no log given", fix="Pass --log (a file or postgresql:// URL) or set MLWARD_LOG."
        )
    hashing = HashingOptions(ignore_paths=tuple(args.ignore_paths))
    result = api.lineage(args.model, location, hashing=hashing)
    _write(RENDERERS[args.format](result), args.output)
    found = any(node.log_index is not None for node in result.nodes)
    return int(ExitCode.OK if found else ExitCode.FINDINGS)


def run(args: argparse.Namespace) -> int:
    if args.command == "lineage":
        return _lineage(args)
    if args.provenance_command == "record":
        return _record(args)
    return _verify(args)
