"""mlward: security for the ML lifecycle. Scan model files without loading them."""

from __future__ import annotations

__version__ = "0.1.0"

from mlward.api import scan  # noqa: E402
from mlward.options import Limits, ScanOptions  # noqa: E402
from mlward.results import (  # noqa: E402
    ArtifactResult,
    Finding,
    Location,
    ScanReport,
    Severity,
    Verdict,
)

__all__ = [
    "ArtifactResult",
    "Finding",
    "Limits",
    "Location",
    "ScanOptions",
    "ScanReport",
    "Severity",
    "Verdict",
    "__version__",
    "scan",
]
