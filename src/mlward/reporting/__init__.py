"""Renderers: pure functions from a ScanReport to text; the CLI decides where it goes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlward.reporting.json_report import load_report_schema, render_json
from mlward.reporting.sarif import render_sarif
from mlward.reporting.text import render_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlward.results import ScanReport

# The one list of output formats; the CLI's --format choices come from its keys.
RENDERERS: dict[str, Callable[[ScanReport], str]] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
}

__all__ = ["RENDERERS", "load_report_schema", "render_json", "render_sarif", "render_text"]
