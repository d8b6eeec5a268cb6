"""mlward: security for the ML lifecycle. Scan model files without loading them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mlward.api import (
        audit_data,
        backdoor_scan,
        convert,
        diff_data,
        load,
        scan,
        sign,
        snapshot_data,
        torch_load,
        verify,
    )
    from mlward.errors import ConversionError, UnsafeModelError
    from mlward.options import Limits, ScanOptions
    from mlward.results import (
        ArtifactResult,
        Finding,
        Location,
        ScanReport,
        Severity,
        Verdict,
    )

# Where each public name lives. Imported on first use, so that `import mlward.cli.main` (every
# command line run) loads only what the command needs.
_EXPORTS = {
    "ArtifactResult": "mlward.results",
    "ConversionError": "mlward.errors",
    "Finding": "mlward.results",
    "Limits": "mlward.options",
    "Location": "mlward.results",
    "ScanOptions": "mlward.options",
    "ScanReport": "mlward.results",
    "Severity": "mlward.results",
    "UnsafeModelError": "mlward.errors",
    "Verdict": "mlward.results",
    "audit_data": "mlward.api",
    "backdoor_scan": "mlward.api",
    "convert": "mlward.api",
    "diff_data": "mlward.api",
    "load": "mlward.api",
    "scan": "mlward.api",
    "sign": "mlward.api",
    "snapshot_data": "mlward.api",
    "torch_load": "mlward.api",
    "verify": "mlward.api",
}

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
    "sign",
    "snapshot_data",
    "torch_load",
    "verify",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlward' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
