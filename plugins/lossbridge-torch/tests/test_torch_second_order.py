"""Second order through the spec's one gradient: the ``torch.autograd.Function`` backward is made
of differentiable torch ops, so double backward, Hessians and ``torch.func`` transforms work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lossbridge


def _normal(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64)


CASES = [
    ("mse", {}, lambda g: (_normal(g, 4, 3), _normal(g, 4, 3))),
    ("binary_crossentropy", {"from_logits": True}, lambda g: (_normal(g, 4, 3), torch.randint(0, 2, (4, 3)).double())),
    ("sparse_categorical_crossentropy", {"from_logits": True}, lambda g: (_normal(g, 4, 5), torch.randint(0, 5, (4,)))),
]


def _fd_hessian(name: str, params: dict, pred: np.ndarray, target: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the spec's analytic gradient on the NumPy backend (truth first)."""
    reference = lossbridge.get(name, **params)
    flat = pred.ravel()
    out = np.zeros((flat.size, flat.size))
    for k in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[k] += h
        down[k] -= h
        g_up = reference.grad(target, up.reshape(pred.shape))
        g_down = reference.grad(target, down.reshape(pred.shape))
        out[:, k] = (np.ravel(g_up) - np.ravel(g_down)) / (2 * h)
    return out


@pytest.mark.parametrize(("name", "params", "make"), CASES, ids=[c[0] for c in CASES])
def test_hessian_matches_finite_differences_of_the_analytic_gradient(name, params, make) -> None:
    pred, target = make(torch.Generator().manual_seed(0))
    loss = lossbridge.get(name, backend="torch", **params)
    hessian = torch.autograd.functional.hessian(lambda p: loss(p, target), pred)
    expected = _fd_hessian(name, params, pred.numpy(), target.numpy())
    np.testing.assert_allclose(hessian.reshape(expected.shape).numpy(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "params", "make"), CASES, ids=[c[0] for c in CASES])
def test_gradcheck_and_gradgradcheck(name, params, make) -> None:
    pred, target = make(torch.Generator().manual_seed(1))
    loss = lossbridge.get(name, backend="torch", **params)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: loss(p, target), (pred,))
    assert torch.autograd.gradgradcheck(lambda p: loss(p, target), (pred,))


def test_torch_func_grad_and_vmap_use_the_spec_gradient() -> None:
    loss = lossbridge.get("hinge", backend="torch")
    f = torch.tensor([[1.0, 0.2], [-1.0, 3.0]], dtype=torch.float64)  # margins 0 and 0.8, ...
    y = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    grad = torch.func.grad(lambda p: loss(p, y))(f)
    reference = lossbridge.get("hinge").grad(y.numpy(), f.numpy())
    np.testing.assert_allclose(grad.numpy(), reference, rtol=1e-12)
    per_row = torch.func.vmap(torch.func.grad(lambda p, t: loss(p, t)))(f, y)
    assert per_row.shape == f.shape
