"""Test setup for the TensorFlow backend: quiet TF logging, float64 oracles, narrow warning filters."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from typing import Any


def pytest_configure(config: Any) -> None:
    # TensorFlow's own modules still use deprecated NumPy/Python APIs on import in some versions.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:tensorflow.*")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:keras.*")
    config.addinivalue_line("filterwarnings", "ignore:.*np.find_common_type.*:DeprecationWarning")
    # other helpers' half-installed plugins in a shared dev venv; never ours (CI has only ours)
    config.addinivalue_line(
        "filterwarnings", "ignore:lossbridge plugin '(?!tensorflow):lossbridge.PluginWarning"
    )
