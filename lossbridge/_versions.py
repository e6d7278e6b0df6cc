"""Warn once when a convention is used with a framework version it was not verified against."""

from __future__ import annotations

import re
import threading
import warnings
from typing import Any

from lossbridge.conventions import VERIFIED_VERSIONS

__all__ = ["UnverifiedVersionWarning", "warn_unverified_version"]

_WARNED: set[str] = set()
_LOCK = threading.Lock()


class UnverifiedVersionWarning(UserWarning):
    """A convention runs with a framework version outside the range it was verified against."""


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


def warn_unverified_version(convention: Any) -> None:
    """Warn (once per framework) if the installed framework is outside the convention's verified range.

    Reads the installed distribution's version from its metadata: nothing is imported.
    """
    framework = getattr(convention, "framework", None)
    if not isinstance(framework, str) or framework not in VERIFIED_VERSIONS or framework in _WARNED:
        return
    dist, low, high = VERIFIED_VERSIONS[framework]
    import importlib.metadata  # here, not at the top: it costs ~15 ms of `import lossbridge`

    try:
        installed = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return  # not installed: the convention runs on another backend, nothing to compare
    with _LOCK:
        if framework in _WARNED:
            return
        _WARNED.add(framework)
    if not _tuple(low) <= _tuple(installed) < _tuple(high):
        warnings.warn(
            f"convention {framework!r} was verified against {dist} >={low},<{high}; {dist} {installed} is "
            "installed, so its numbers may differ from this version's",
            UnverifiedVersionWarning,
            stacklevel=3,
        )
