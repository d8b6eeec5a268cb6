"""Thin command line: parse flags, call the API, render, return a documented exit code."""

from __future__ import annotations

import argparse
import enum
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mlward import __version__
from mlward.api import scan
from mlward.errors import InputError, MlwardError, PolicyError
from mlward.options import ScanOptions
from mlward.results import ScanReport, Verdict


class ExitCode(enum.IntEnum):
    """0: nothing at or above --fail-on. 1: findings at or above it. 2: errors or inconclusive."""

    OK = 0
    FINDINGS = 1
    ERROR = 2


_FAIL_ON = {"suspicious": Verdict.SUSPICIOUS, "malicious": Verdict.MALICIOUS}


# Commands that live in modules of their own, each with add_parser(commands) and run(args).
_COMMAND_MODULES = {
    "bom": "mlward.cli.bom",
    "data": "mlward.cli.data",
    "lineage": "mlward.cli.provenance",
    "log": "mlward.cli.log",
    "model": "mlward.cli.data",
    "provenance": "mlward.cli.provenance",
    "sign": "mlward.cli.sign",
    "verify": "mlward.cli.sign",
}
_COMMANDS = frozenset({"scan", "convert", *_COMMAND_MODULES})


def add_log_append_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--log``/``--log-key`` for commands that also append ``what`` to the evidence log."""
    parser.add_argument(
        "--log",
        metavar="LOG",
        default=os.environ.get("MLWARD_LOG"),
        help=f"also append the {what} to this evidence log (a SQLite file or a postgresql:// "
        "URL; default: $MLWARD_LOG), where lineage finds it",
    )
    parser.add_argument(
        "--log-key", metavar="FILE", help="the log's signer key: sign a checkpoint (advised)"
    )


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``only``, just that command's parser (each run needs one, and
    building them all, with their modules, adds to the start-up time of every scan)."""
    parser = argparse.ArgumentParser(
        prog="mlward",
        description="Security for the ML lifecycle. Scan model files without loading them.",
    )
    parser.add_argument("--version", action="version", version=f"mlward {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    if only in (None, "scan"):
        _add_scan(commands)
    if only in (None, "convert"):
        _add_convert(commands)
    for module in dict.fromkeys(
        module for name, module in _COMMAND_MODULES.items() if only in (None, name)
    ):
        importlib.import_module(module).add_parser(commands)
    return parser


def _add_scan(commands: Any) -> None:
    scan_cmd = commands.add_parser(
        "scan",
        help="scan model files and directories for code that runs when they are loaded",
        description=(
            "Scan files and directories (recursively) by content. Exit codes: 0 nothing at or "
            "above --fail-on; 1 findings at or above it; 2 errors or inconclusive results."
        ),
    )
    scan_cmd.add_argument("paths", nargs="+", metavar="PATH")
    scan_cmd.add_argument("--format", choices=("json", "sarif", "text"), default="text")
    scan_cmd.add_argument("--output", "-o", metavar="FILE", help="write the report here")
    scan_cmd.add_argument(
        "--fail-on",
        choices=sorted(_FAIL_ON),
        default=None,
        help="lowest verdict that makes the exit code 1 (default: suspicious)",
    )
    scan_cmd.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="trust this global (exact name, or a prefix ending in .*); repeatable",
    )
    scan_cmd.add_argument(
        "--policy",
        metavar="FILE",
        help="TOML policy file with [scan] allow = [...] and fail_on = ...",
    )
    scan_cmd.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=0,
        help="worker processes (default 0: automatic, all cores when there are many files)",
    )
    scan_cmd.add_argument(
        "--list-untrusted",
        action="store_true",
        help="print only the untrusted globals found, one per line: what --allow would need",
    )
    scan_cmd.add_argument(
        "--inconclusive-ok",
        action="store_true",
        help="exit 0 instead of 2 when the only problem is an inconclusive result",
    )
    scan_cmd.add_argument("--verbose", "-v", action="store_true", help="show info findings")
    scan_cmd.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="enter linked folders (linked files are always scanned, and reported as links)",
    )


def _add_convert(commands: Any) -> None:
    convert_cmd = commands.add_parser(
        "convert",
        help="convert a model to a format that cannot carry code",
        description=(
            "PyTorch checkpoints become safetensors, scikit-learn models become skops. The "
            "source is loaded only if it scans clean; the result is read back, compared and "
            "scanned. Exit 0 on success, 2 when the source is refused or cannot be converted."
        ),
    )
    convert_cmd.add_argument("source", metavar="IN")
    convert_cmd.add_argument("target", metavar="OUT")
    convert_cmd.add_argument("--allow", action="append", default=[], metavar="MODULE.NAME")
    convert_cmd.add_argument(
        "--drop-non-tensors",
        action="store_true",
        help="write the tensors alone when the checkpoint also holds other values",
    )


def _run_convert(args: argparse.Namespace) -> ExitCode:
    from mlward.api import convert

    result = convert(
        args.source, args.target, allow=args.allow, drop_non_tensors=args.drop_non_tensors
    )
    dropped = f", dropped {len(result.dropped)} non-tensor values" if result.dropped else ""
    sys.stdout.write(
        f"converted {result.source} -> {result.target} ({result.target_format}, "
        f"{result.items} items{dropped}); read back equal; scan: {result.target_verdict.value}\n"
    )
    return ExitCode.OK if result.target_verdict is Verdict.CLEAN else ExitCode.FINDINGS


def _read_policy(path: str) -> dict[str, object]:
    import tomllib  # only policy files need it; start-up time is most of a small scan

    try:
        with open(path, encoding="utf-8") as handle:
            document = tomllib.loads(handle.read())
    except OSError as exc:
        raise PolicyError(
            f"cannot read policy file {path}: {exc.strerror}", fix="Check the --policy path."
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(
            f"policy file {path} is not valid TOML: {exc}", fix="Fix the TOML syntax."
        ) from exc
    section = document.get("scan", {})
    if not isinstance(section, dict):
        raise PolicyError(f"{path}: [scan] must be a table", fix="Write [scan] then allow = [...].")
    unknown = set(section) - {"allow", "fail_on"}
    if unknown:
        raise PolicyError(
            f"{path}: unknown keys in [scan]: {', '.join(sorted(unknown))}",
            fix="Use only allow and fail_on.",
        )
    allow = section.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
        raise PolicyError(
            f"{path}: allow must be a list of strings", fix='Write allow = ["pkg.Class"].'
        )
    fail_on = section.get("fail_on")
    if fail_on is not None and fail_on not in _FAIL_ON:
        raise PolicyError(
            f"{path}: fail_on must be suspicious or malicious", fix='Write fail_on = "malicious".'
        )
    return section


def _progress_bar(stream: object) -> tuple[Callable[[int, int, str], None], Callable[[], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=stream, stderr=True)  # type: ignore[arg-type]
    bar = Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )
    task = bar.add_task("", total=None)
    bar.start()

    def update(done: int, total: int, path: str) -> None:
        bar.update(task, completed=done, total=total, description=os.path.basename(path)[-40:])

    return update, bar.stop


def _exit_code(report: ScanReport, fail_on: Verdict, inconclusive_ok: bool) -> ExitCode:
    if any(
        a.verdict.rank >= fail_on.rank and a.verdict is not Verdict.INCONCLUSIVE
        for a in report.artifacts
    ):
        return ExitCode.FINDINGS
    if not inconclusive_ok and any(a.verdict is Verdict.INCONCLUSIVE for a in report.artifacts):
        return ExitCode.ERROR
    return ExitCode.OK


def _run_scan(args: argparse.Namespace) -> ExitCode:
    allow = list(args.allow)
    fail_on_name = args.fail_on
    if args.policy:
        section = _read_policy(args.policy)
        allow.extend(section.get("allow", []))  # type: ignore[arg-type]
        fail_on_name = fail_on_name or section.get("fail_on")
    fail_on = _FAIL_ON[fail_on_name or "suspicious"]
    show_progress = sys.stderr.isatty() and not args.list_untrusted
    progress, stop = _progress_bar(sys.stderr) if show_progress else (None, lambda: None)
    try:
        report = scan(
            args.paths,
            ScanOptions(
                allow=tuple(allow),
                jobs=args.jobs,
                progress=progress,
                follow_symlinks=args.follow_symlinks,
            ),
        )
    finally:
        stop()
    if args.list_untrusted:
        names = sorted({name for a in report.artifacts for name in a.untrusted_imports})
        text = "".join(f"{name}\n" for name in names)
    elif args.format == "text":
        from mlward.reporting.text import render_text

        text = render_text(report, verbose=args.verbose)
    else:
        # Imported on use: only the chosen renderer's dependencies are loaded.
        from mlward.reporting import RENDERERS

        text = RENDERERS[args.format](report)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise InputError(
                f"cannot write the report to {args.output}: {exc.strerror}",
                fix="Pass an --output path in a folder you can write to.",
            ) from exc
        s = report.summary
        sys.stderr.write(
            f"mlward: {s.artifacts} artifacts: {s.malicious} malicious, {s.suspicious} suspicious, "
            f"{s.inconclusive} inconclusive, {s.clean} clean; report written to {args.output}\n"
        )
    else:
        sys.stdout.write(text)
    return _exit_code(report, fail_on, args.inconclusive_ok)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    first = arguments[0] if arguments else None
    args = _parser(first if first in _COMMANDS else None).parse_args(arguments)
    try:
        if args.command == "scan":
            return int(_run_scan(args))
        if args.command == "convert":
            return int(_run_convert(args))
        if args.command in _COMMAND_MODULES:
            return int(importlib.import_module(_COMMAND_MODULES[args.command]).run(args))
    except MlwardError as exc:
        sys.stderr.write(f"mlward: error: {exc}\n")
        return int(ExitCode.ERROR)
    except KeyboardInterrupt:
        sys.stderr.write("mlward: interrupted\n")
        return int(ExitCode.ERROR)
    return int(ExitCode.ERROR)


def run() -> NoReturn:
    """The ``mlward`` command: main(), then an exit that skips interpreter teardown.

    Freeing a large report and every imported module object by object takes longer than
    scanning a hundred small files; the operating system reclaims the memory at once. Nothing
    here relies on atexit handlers, and output is flushed first.
    """
    # A command runs for seconds: collect young objects less often, and never walk what was
    # imported (which lives until exit anyway).
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or int(ExitCode.ERROR)
    os._exit(code)


if __name__ == "__main__":
    run()
