"""torch materialization of polyak_sgd, sophia, noisy_sgd: ``step(closure)`` supplies what the step needs.

* polyak_sgd on torch equals the NumPy backend fed the same values (1e-12);
* sophia's Hessian estimate (autograd hvp with Rademacher vectors) is the exact diagonal for a
  separable quadratic, with a closure that does not call backward and with backward(create_graph=True),
  and the whole sophia run then equals the NumPy backend given the exact Hessian-vector product;
* noisy_sgd draws from a torch.Generator seeded with ``key``, reproducibly, through state_dict.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lossbridge
from lossbridge.errors import InputError

_RNG = np.random.default_rng(3)
_X = _RNG.normal(size=(6, 3))
_Y = _RNG.normal(size=(6, 2))
_START = [_RNG.normal(size=(3, 2)), _RNG.normal(size=(2,))]


def _loss_torch(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r = torch.as_tensor(_X) @ w + b - torch.as_tensor(_Y)
    return 0.5 * (r * r).sum(-1).mean() + 0.1 * torch.sin(w).sum()


def _value_grad_np(p: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    r = _X @ p[0] + p[1] - _Y
    value = float(0.5 * np.mean(np.sum(r * r, -1)) + 0.1 * np.sum(np.sin(p[0])))
    r = r / len(_X)
    return value, [_X.T @ r + 0.1 * np.cos(p[0]), r.sum(0)]


@pytest.mark.parametrize("hyper", [{}, {"max_learning_rate": 0.3, "f_min": -1.0, "scaling": 0.8}])
def test_polyak_sgd_torch_equals_numpy(hyper: dict) -> None:
    w, b = (torch.tensor(p.copy(), requires_grad=True) for p in _START)
    opt = lossbridge.get("polyak_sgd", backend="torch", convention="optax")([w, b], **hyper)

    seen: list = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _loss_torch(w, b)
        loss.backward()
        seen.append((float(loss.detach()), [w.grad.numpy().copy(), b.grad.numpy().copy()]))
        return loss

    ref = lossbridge.get("polyak_sgd", backend="numpy", convention="optax", **hyper)
    params = [p.copy() for p in _START]
    for _ in range(30):
        opt.step(closure)
        value, grads = seen[-1]  # the same value and gradients, given to the NumPy backend
        assert value == pytest.approx(_value_grad_np(params)[0], rel=1e-12)
        ref.step(params, grads, value=value)
        for ours, theirs in zip((w, b), params):
            np.testing.assert_allclose(ours.detach().numpy(), theirs, rtol=1e-12, atol=1e-14)
    assert float(opt.state["global"]["step_size"]) > 0


def test_polyak_sgd_torch_needs_a_closure() -> None:
    w = torch.ones(2, requires_grad=True)
    opt = lossbridge.get("polyak_sgd", backend="torch")([w])
    w.grad = torch.ones(2)
    with pytest.raises(InputError, match="closure"):
        opt.step()


_A = torch.tensor([[1.0, 2.5], [0.5, 4.0], [3.0, 1.5]], dtype=torch.float64)


def _quadratic(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * (_A * w * w).sum() + torch.sin(w).sum() * 0.0  # separable: Hessian diag(A)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
@pytest.mark.parametrize("create_graph", [False, True], ids=["no-backward", "backward-create-graph"])
def test_sophia_torch_hessian_estimate_is_exact_for_separable_quadratic(create_graph: bool) -> None:
    w = torch.ones(3, 2, dtype=torch.float64, requires_grad=True)
    opt = lossbridge.get("sophia", backend="torch")([w], update_interval=1, beta_2=0.0, lr=0.01)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _quadratic(w)
        if create_graph:
            loss.backward(create_graph=True)
        return loss

    opt.step(closure)
    # with Rademacher r, r * (H r) = r^2 diag(A) = diag(A) exactly
    torch.testing.assert_close(opt.state[w]["h"], _A, rtol=0, atol=0)
    torch.testing.assert_close(w.grad, _A * 1.0)  # the gradient at the step's point, detached
    assert not w.grad.requires_grad


def test_sophia_torch_run_equals_numpy_with_exact_hvp() -> None:
    hyper = {"lr": 0.05, "update_interval": 3, "gamma": 0.5}
    w = torch.tensor(_START[0].copy(), requires_grad=True)
    opt = lossbridge.get("sophia", backend="torch", convention="optax")([w], **hyper)
    a = _A.numpy()
    ref = lossbridge.get("sophia", backend="numpy", convention="optax", **hyper)
    params = [_START[0].copy()]
    for _ in range(25):
        opt.step(lambda: _quadratic(w))
        ref.step(params, [a * params[0]], hvp=lambda v: [a * v[0]])
        np.testing.assert_allclose(w.detach().numpy(), params[0], rtol=1e-12, atol=1e-14)


def test_noisy_sgd_torch_generator_and_state_dict() -> None:
    def run(steps: int, opt: torch.optim.Optimizer, w: torch.Tensor) -> None:
        for _ in range(steps):
            opt.zero_grad()
            (w * w).sum().backward()
            opt.step()

    Noisy = lossbridge.get("noisy_sgd", backend="torch", convention="optax")
    w1 = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt1 = Noisy([w1], lr=1.0, eta=1.0, gamma=0.0, key=9)
    run(1, opt1, w1)
    gen = torch.Generator().manual_seed(9)
    torch.testing.assert_close(w1.detach(), -torch.randn(4, generator=gen, dtype=torch.float64))
    # reproducible through state_dict: 3 more steps equal 3 steps of a reloaded copy
    w2 = w1.detach().clone().requires_grad_(True)
    opt2 = Noisy([w2], lr=1.0, eta=1.0, gamma=0.0, key=9)
    opt2.load_state_dict(opt1.state_dict())
    run(3, opt1, w1)
    run(3, opt2, w2)
    torch.testing.assert_close(w1, w2, rtol=0, atol=0)
