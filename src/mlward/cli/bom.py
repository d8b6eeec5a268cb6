"""``mlward bom``: a CycloneDX 1.6 ML-BOM of a model folder, validated before it is written.

Exit codes: 0 written; 2 usage or input errors (raised as ``MlwardError`` to ``main``), among
them a missing ``mlward[bom]`` extra.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlward.cli.main import ExitCode
from mlward.errors import InputError


def add_parser(commands: Any) -> None:
    bom = commands.add_parser(
        "bom",
        help="write a CycloneDX 1.6 ML-BOM of a model",
        description="A machine-learning-model component (hash: the model's OMS root digest; "
        "model card fields from config.json and the README), datasets as data components, "
        "and the Python packages the model's pickles import as library components with "
        "purls. Needs mlward[bom]. Exit 0 when written, 2 on errors.",
    )
    bom.add_argument("model_dir", metavar="MODEL_DIR", help="model folder (or file)")
    bom.add_argument("--output", "-o", metavar="FILE", help="write the BOM here (default: stdout)")
    bom.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="PATH",
        help="a training dataset (file or folder), hashed in full; repeatable",
    )
    bom.add_argument(
        "--provenance",
        metavar="FILE",
        help="a bundle from 'mlward provenance record' for this model: its datasets, base "
        "model, code commit and metrics go into the BOM (check it first with "
        "'mlward provenance verify')",
    )
    bom.add_argument(
        "--ignore-paths",
        action="append",
        default=[],
        metavar="PATH",
        help="leave this file or folder (relative to the model) out of the root digest; repeatable",
    )


def run(args: argparse.Namespace) -> int:
    from mlward import api
    from mlward.provenance.hashing import HashingOptions

    result = api.bom(
        args.model_dir,
        datasets=args.dataset,
        provenance=args.provenance,
        output=args.output,
        hashing=HashingOptions(ignore_paths=tuple(args.ignore_paths)),
    )
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(result.document)
        except OSError as exc:
            raise InputError(
                f"cannot write the BOM to {args.output}: {exc.strerror}",
                fix="Pass an --output path in a folder you can write to.",
            ) from exc
        sys.stderr.write(f"mlward: {result.summary()}; written to {args.output}\n")
    else:
        sys.stdout.write(result.document)
        sys.stderr.write(f"mlward: {result.summary()}\n")
    return int(ExitCode.OK)
