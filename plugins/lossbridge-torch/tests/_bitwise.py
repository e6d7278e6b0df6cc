"""Bit-for-bit tensor comparison, shared by the torch plugin's replay tests (signed zeros and NaN payloads count)."""

from __future__ import annotations

import torch


def bits(t: torch.Tensor) -> torch.Tensor:
    """``t``'s bits as integers of its width."""
    ints = {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.detach().contiguous().view(ints)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape, same dtype and the same bits."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(bits(a), bits(b))
