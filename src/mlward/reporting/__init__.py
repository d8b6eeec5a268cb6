"""Renderers: pure functions from a ScanReport to text; the CLI decides where it goes."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlward.reporting.json_report import load_report_schema, render_json
    from mlward.reporting.sarif import render_sarif
    from mlward.reporting.text import render_text
    from mlward.results import ScanReport

# Each renderer's module is imported when it is first used: a run renders one format, and the
# others' imports would add to the start-up time of every scan.
_HOMES = {
    "render_text": "mlward.reporting.text",
    "render_json": "mlward.reporting.json_report",
    "render_sarif": "mlward.reporting.sarif",
    "load_report_schema": "mlward.reporting.json_report",
}


def _lazy(name: str) -> Callable[[ScanReport], str]:
    def render(report: ScanReport) -> str:
        function: Callable[[ScanReport], str] = getattr(importlib.import_module(_HOMES[name]), name)
        return function(report)

    return render


# The one list of output formats; the CLI's --format choices come from its keys.
RENDERERS: dict[str, Callable[[ScanReport], str]] = {
    "text": _lazy("render_text"),
    "json": _lazy("render_json"),
    "sarif": _lazy("render_sarif"),
}

__all__ = ["RENDERERS", "load_report_schema", "render_json", "render_sarif", "render_text"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mlward.reporting' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
