"""The error types of lossbridge: every message names the argument, what was expected and what came."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BackendError",
    "InputError",
    "LossbridgeError",
    "ParameterError",
    "PluginError",
    "SpecError",
    "UnknownNameError",
    "close_matches",
]


class LossbridgeError(Exception):
    """Base class of every error lossbridge raises on purpose."""


class UnknownNameError(LossbridgeError, LookupError):
    """No registered spec (loss, optimizer, schedule) has this name or alias."""

    def __str__(self) -> str:  # LookupError/KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BackendError(LossbridgeError, LookupError):
    """The backend is unknown, or its framework is not installed."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ParameterError(LossbridgeError, ValueError, TypeError):
    """A hyperparameter is unknown or outside its valid range."""


class InputError(LossbridgeError, ValueError):
    """An array given to a loss or optimizer has the wrong shape, dtype or values."""


class PluginError(LossbridgeError):
    """A plugin misbehaved; ``plugin`` names it."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class SpecError(PluginError):
    """A spec is malformed; raised when it is registered, naming its plugin."""


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The closest few ``candidates`` to ``word`` (for "did you mean" hints)."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)
