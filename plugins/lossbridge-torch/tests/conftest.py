"""Test configuration of lossbridge-torch: narrowly scoped warning filters and shared fixtures."""

from __future__ import annotations

from typing import Any


def pytest_configure(config: Any) -> None:
    # Importing torch._inductor (first torch.compile) imports torch.utils.mkldnn, which uses the
    # deprecated torch.jit.script_method at import time; nothing of ours calls it.
    config.addinivalue_line(
        "filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
    )
    # One intra-op thread: the suite runs many tiny ops on a 2-core CI machine, where torch's
    # default thread pool (and inductor's OpenMP kernels) only adds contention.
    import torch

    torch.set_num_threads(1)
