"""Optimizers with global state (Prodigy, D-Adapt AdamW) as torch optimizers against the NumPy backend.

The global state lives in ``optimizer.state["global"]``; the partial sums run over the tensors of
ALL param groups; a ``state_dict`` round trip mid-run continues the same trajectory.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch

import lossbridge
from lossbridge import InputError


def _problem() -> tuple[list[np.ndarray], Any]:
    rng = np.random.default_rng(5)
    start = [rng.normal(size=(4, 3)), rng.normal(size=(3,)), rng.normal(size=(2,))]
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))

    def grad(p: list[np.ndarray]) -> list[np.ndarray]:
        r = (a @ p[0] + p[1] - b) / len(a)
        return [a.T @ r, r.sum(axis=0), np.sin(p[2])]

    return start, grad


@pytest.mark.parametrize(
    ("name", "hyper"),
    [("prodigy", {}), ("prodigy", {"weight_decay": 0.1, "safeguard_warmup": True}),
     ("dadapt_adamw", {}), ("dadapt_adamw", {"weight_decay": 0.1, "lr": 0.5})],
)
def test_torch_global_matches_numpy(name: str, hyper: dict[str, Any]) -> None:
    start, grad = _problem()
    ref = lossbridge.get(name, **hyper)
    current = [p.copy() for p in start]
    tensors = [torch.tensor(p, requires_grad=True) for p in start]
    cls = lossbridge.get(name, backend="torch")
    opt = cls([{"params": tensors[:2]}, {"params": tensors[2:]}], **hyper)
    for t in range(50):
        g = grad(current)
        ref.step(current, g)
        for p, gi in zip(tensors, g, strict=True):
            p.grad = torch.tensor(gi)
        opt.step()
        if t == 20:  # a state_dict round trip (through torch.save) continues the same run
            buffer = io.BytesIO()
            torch.save(opt.state_dict(), buffer)
            buffer.seek(0)
            opt = cls([{"params": tensors[:2]}, {"params": tensors[2:]}], **hyper)
            opt.load_state_dict(torch.load(buffer))
        for a, e in zip(tensors, current, strict=True):
            assert np.max(np.abs(a.detach().numpy() - e)) <= 1e-10 * np.max(np.abs(e))
    np.testing.assert_allclose(float(opt.state["global"]["d"]), float(ref._state.glob["d"]), rtol=1e-10)


def test_torch_global_refuses_differing_groups() -> None:
    cls = lossbridge.get("prodigy", backend="torch")
    a, b = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = cls([{"params": [a]}, {"params": [b], "lr": 0.5}])
    a.grad, b.grad = torch.ones(3), torch.ones(2)
    with pytest.raises(InputError, match="same hyperparameters"):
        opt.step()
