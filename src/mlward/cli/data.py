"""`mlward data audit|snapshot|diff`: thin commands over mlward.api's dataset use cases.

Exit codes follow the scan command: 0 nothing suspicious, 1 poisoned or suspicious rows found
(audit) or flagged among the rows that arrived (diff), 2 an error.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mlward.cli.main import add_log_append_flags
from mlward.errors import InputError

if TYPE_CHECKING:
    from mlward.data.results import DataAuditReport


def _dataset_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--label", metavar="COLUMN", help="label column of a CSV/Parquet file")
    command.add_argument("--labels", metavar="FILE", help="labels (.npy) for a features-only .npy")


def add_parser(commands: Any) -> None:
    """``data`` (audit, snapshot, diff) and ``model`` (backdoor-scan)."""
    _add_data(commands)
    _add_model(commands)


def _add_data(commands: Any) -> None:
    data = commands.add_parser(
        "data",
        help="audit training data for poison, snapshot it, diff versions",
        description="Find poisoned and mislabelled rows; record and compare versions.",
    )
    sub = data.add_subparsers(dest="data_command", required=True)
    audit = sub.add_parser(
        "audit",
        help="find poisoned, mislabelled and duplicated rows",
        description=(
            "Reads .npy/.npz, CSV, Parquet or a folder of class folders of images. Exit codes: "
            "0 nothing suspicious, 1 suspicious rows or a poisoned class, 2 an error."
        ),
    )
    audit.add_argument("dataset", metavar="DATASET")
    _dataset_flags(audit)
    space = audit.add_mutually_exclusive_group()
    space.add_argument(
        "--features", metavar="FILE", help="features to audit in (.npy, one row per sample)"
    )
    space.add_argument(
        "--model", metavar="MODEL", help="torch model: audit its penultimate activations"
    )
    space.add_argument(
        "--reference-model", action="store_true", help="learn features with a small MLP first"
    )
    audit.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="trust this global when loading --model (repeatable)",
    )
    audit.add_argument("--test", metavar="DATASET", help="test set, to find train/test overlap")
    audit.add_argument("--format", choices=("text", "json"), default="text")
    audit.add_argument("--output", "-o", metavar="FILE", help="write the report here")
    audit.add_argument(
        "--write-filtered",
        metavar="OUT",
        help="write the dataset without the rows held as poison (.npz/.csv/.parquet); "
        "isolated label errors stay, listed for review",
    )
    audit.add_argument(
        "--write-repaired",
        metavar="OUT",
        help="write the filtered dataset with trigger carriers kept under the class they look "
        "like without the trigger: a model retrained on it learns to ignore the trigger",
    )
    audit.add_argument(
        "--drop-review",
        action="store_true",
        help="with --write-filtered/--write-repaired, also drop the isolated label errors "
        "kept for review",
    )
    audit.add_argument("--seed", type=int, default=0)
    snap = sub.add_parser("snapshot", help="record a content digest of a dataset and of each row")
    snap.add_argument("dataset", metavar="DATASET")
    _dataset_flags(snap)
    snap.add_argument(
        "--store", metavar="FILE", help="snapshot store (default .mlward/snapshots.jsonl)"
    )
    add_log_append_flags(snap, "snapshot")
    snap.add_argument("--format", choices=("text", "json"), default="text")
    diff = sub.add_parser(
        "diff",
        help="rows added, removed, changed and relabelled between two versions",
        description="Compares two versions row by row and audits the rows that arrived.",
    )
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--label", metavar="COLUMN", help="label column of CSV/Parquet files")
    diff.add_argument("--no-audit", action="store_true", help="skip the detectors")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument("--output", "-o", metavar="FILE", help="write the report here")


def _add_model(commands: Any) -> None:
    model = commands.add_parser("model", help="examine a model's behaviour (backdoors)")
    sub = model.add_subparsers(dest="model_command", required=True)
    scan = sub.add_parser(
        "backdoor-scan",
        help="reverse-engineer a minimal trigger per class (Neural Cleanse-style)",
        description=(
            "Loads a whole torch model through the safe loader and searches every class for a "
            "minimal trigger on a clean labelled sample. Exit codes: 0 no backdoor found, "
            "1 a suspected target class, 2 an error."
        ),
    )
    scan.add_argument("model", metavar="MODEL")
    scan.add_argument("--data", required=True, metavar="SAMPLE", help="clean labelled sample")
    _dataset_flags(scan)
    scan.add_argument("--allow", action="append", default=[], metavar="MODULE.NAME")
    scan.add_argument("--trigger-png", metavar="FILE", help="save the recovered trigger here")
    scan.add_argument("--format", choices=("text", "json"), default="text")
    scan.add_argument("--seed", type=int, default=0)


def _run_model(args: argparse.Namespace) -> int:
    from mlward import api
    from mlward.data import render

    result = api.backdoor_scan(
        args.model,
        args.data,
        label=args.label,
        labels=args.labels,
        allow=args.allow,
        trigger_png=args.trigger_png,
        seed=args.seed,
    )
    renderer = render.render_backdoor_json if args.format == "json" else render.render_backdoor_text
    sys.stdout.write(renderer(result))
    return 1 if result.backdoored else 0


def _write(text: str, output: str | None) -> None:
    if not output:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise InputError(
            f"cannot write the report to {output}: {exc.strerror}",
            fix="Pass an --output path in a folder you can write to.",
        ) from exc


def _say_written(report: DataAuditReport, args: argparse.Namespace) -> None:
    """One stderr line per dataset written: how many rows, and what stayed in on purpose."""
    review = (
        f", keeping {len(report.review_rows)} rows listed for review (--drop-review drops them)"
        if report.review_rows and not args.drop_review
        else ""
    )
    if args.write_filtered:
        dropped = report.left_out(repaired=False, drop_review=args.drop_review)
        sys.stderr.write(
            f"mlward: wrote {report.rows - len(dropped)} rows to {args.write_filtered}{review}\n"
        )
    if args.write_repaired:
        rows = report.rows - len(report.left_out(repaired=True, drop_review=args.drop_review))
        sys.stderr.write(
            f"mlward: wrote {rows} rows to {args.write_repaired}, "
            f"{len(report.restored_labels)} trigger "
            f"carriers relabelled to the class they look like without the trigger{review}\n"
        )


def run(args: argparse.Namespace) -> int:
    if args.command == "model":
        return _run_model(args)
    return _run_data(args)


def _run_data(args: argparse.Namespace) -> int:
    from mlward import api
    from mlward.data import render

    if args.data_command == "audit":
        report = api.audit_data(
            args.dataset,
            label=args.label,
            labels=args.labels,
            features=args.features,
            model=args.model,
            reference_model=args.reference_model,
            allow=args.allow,
            test=args.test,
            write_filtered=args.write_filtered,
            write_repaired=args.write_repaired,
            drop_review=args.drop_review,
            seed=args.seed,
        )
        renderer = render.render_audit_json if args.format == "json" else render.render_audit_text
        _write(renderer(report), args.output)
        _say_written(report, args)
        return 1 if report.suspicious_rows or report.poisoned else 0
    if args.data_command == "snapshot":
        from mlward.cli.log import read_signer
        from mlward.data.snapshot import DEFAULT_STORE, JsonLinesStore

        snap, where = api.snapshot_data(
            args.dataset,
            label=args.label,
            labels=args.labels,
            store=JsonLinesStore(args.store or DEFAULT_STORE),
            log=args.log,
            log_signer=read_signer(args.log_key),
        )
        if args.log:
            sys.stderr.write(f"mlward: appended the snapshot to the evidence log {args.log}\n")
        if args.format == "json":
            import json

            sys.stdout.write(
                json.dumps(
                    {
                        "source": snap.source,
                        "digest": snap.digest,
                        "rows": snap.rows,
                        "store": where,
                    }
                )
                + "\n"
            )
        else:
            sys.stdout.write(render.render_snapshot_text(snap, where))
        return 0
    result = api.diff_data(args.old, args.new, label=args.label, audit_added=not args.no_audit)
    diff_renderer = render.render_diff_json if args.format == "json" else render.render_diff_text
    _write(diff_renderer(result), args.output)
    flagged = result.added_audit is not None and bool(result.added_audit.suspicious_rows)
    return 1 if flagged else 0
