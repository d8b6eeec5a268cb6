"""Frozen option objects, validated on construction so bad input fails before any work starts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mlward.errors import OptionsError

_ALLOW_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*(\.\*)?$")


@dataclass(frozen=True)
class Limits:
    """Bounds on the work of one scan; reaching one is an incomplete finding, never a verdict."""

    max_file_bytes: int = 64 * 2**30
    max_pickle_bytes: int = 2 * 2**30
    max_decompressed_bytes: int = 4 * 2**30
    max_decompression_ratio: int = 2000
    max_members: int = 100_000
    max_depth: int = 8
    max_globals: int = 200_000
    # Extra address space one unpickling may take (the memo included): a 10-byte pickle with a
    # huge LONG_BINPUT index otherwise makes CPython's C unpickler allocate tens of GB.
    max_memory_bytes: int = 6 * 2**30
    max_seconds: float = 600.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise OptionsError(
                    f"limit {name} must be positive, got {value!r}",
                    fix=f"Pass a positive value for Limits.{name}.",
                )


@dataclass(frozen=True)
class ScanOptions:
    """What a scan trusts, how hard it works, and how it reports progress.

    ``allow`` adds trusted globals: exact ``module.qualname`` names or ``package.*`` prefixes.
    A prefix never covers a name on the denylist; name such a global exactly to trust it.
    """

    allow: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    # 0 picks for you: one process for a few files, every core for many.
    jobs: int = 0
    follow_symlinks: bool = False
    progress: Callable[[int, int, str], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow", tuple(self.allow))
        for entry in self.allow:
            if not _ALLOW_PATTERN.match(entry):
                raise OptionsError(
                    f"--allow {entry!r} is not a dotted Python name",
                    fix="Use module.qualname (for example mypkg.models.MyNet) or a prefix "
                    "ending in .* (for example mypkg.*).",
                )
        if self.jobs < 0:
            raise OptionsError(
                f"jobs must be 0 (automatic) or more, got {self.jobs}",
                fix="Pass --jobs 0 for automatic, or a number of worker processes.",
            )
