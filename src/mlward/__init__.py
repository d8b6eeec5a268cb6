"""mlward: security for the ML lifecycle. Scan model files without loading them."""

from __future__ import annotations

__version__ = "0.1.0"

from mlward.api import (
    ConversionError,
    UnsafeModelError,
    audit_data,
    backdoor_scan,
    convert,
    diff_data,
    load,
    scan,
    snapshot_data,
    torch_load,
)
from mlward.options import Limits, ScanOptions
from mlward.results import (
    ArtifactResult,
    Finding,
    Location,
    ScanReport,
    Severity,
    Verdict,
)

__all__ = [
    "ArtifactResult",
    "ConversionError",
    "Finding",
    "Limits",
    "Location",
    "ScanOptions",
    "ScanReport",
    "Severity",
    "UnsafeModelError",
    "Verdict",
    "__version__",
    "audit_data",
    "backdoor_scan",
    "convert",
    "diff_data",
    "load",
    "scan",
    "snapshot_data",
    "torch_load",
]
