"""One error tree; every error carries the text a user needs to fix the problem."""

from __future__ import annotations


class MlwardError(Exception):
    """Base of every error mlward raises on purpose."""

    def __init__(self, message: str, *, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}"


class OptionsError(MlwardError):
    """An option, flag or policy file is invalid."""


class PolicyError(MlwardError):
    """A policy or allowlist file cannot be read."""


class InputError(MlwardError):
    """A path given to mlward does not exist or cannot be read."""


class UnsafeModelError(MlwardError):
    """The file is not clean under the allowlist; nothing from it was loaded."""

    def __init__(self, path: str, untrusted: tuple[str, ...], problems: tuple[str, ...]) -> None:
        lines = [f"refused to load {path}: the scan did not call it clean"]
        lines += [f"  untrusted global: {name}" for name in untrusted]
        lines += [f"  {problem}" for problem in problems]
        if untrusted and not problems:
            fix = (
                f"If you trust the code that defines them, pass allow={untrusted!r} "
                f"(or --allow {' --allow '.join(untrusted)} on the command line)."
            )
        elif untrusted:
            fix = (
                f"allow={untrusted!r} would admit the globals, but the other problems listed "
                "cannot be allowed: do not load this file."
            )
        else:
            fix = "Do not load this file; get the model from a source you trust."
        super().__init__("\n".join(lines), fix=fix)
        self.path = path
        self.untrusted = untrusted
        self.problems = problems


class ConversionError(MlwardError):
    """The source cannot be converted without losing or faking something."""


class LogError(MlwardError):
    """A transparency log or one of its entries, keys or checkpoints is unusable."""
