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


class LogError(MlwardError):
    """A transparency log or one of its entries, keys or checkpoints is unusable."""
