"""Shared launcher of the distributed tests: each runs its training in a child process (process groups,
forced host devices and strategies stay out of the pytest process) and reads its verdict from the output."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

#: guards against a hang (a rank waiting for a dead peer), not a time budget: a test takes seconds
#: on an idle machine, minutes when the cores are shared
TIMEOUT = 300


def require(*modules: str) -> None:
    """Skip unless installed; found, not imported (the test runs them in its child process only)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def run_child(args: list[str], marker: str, **env: str) -> None:
    """Run ``python *args`` with ``env`` added to this process's environment; it must exit 0 and print ``marker``."""
    done = subprocess.run([sys.executable, *args], env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert marker in done.stdout
