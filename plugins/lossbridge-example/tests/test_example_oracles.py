"""The plugin's conventions against the real frameworks, in float64, where they are installed.

A third-party plugin gets every backend for free; these tests show its conventions reproduce
torch.nn.PoissonNLLLoss, keras.losses.Poisson and optax.lion exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge

rng = np.random.default_rng(7)
COUNTS = rng.poisson(2.0, size=(5, 3)).astype(np.float64)
RATES = rng.uniform(0.3, 4.0, size=(5, 3))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_poisson_torch_convention_matches_poisson_nll_loss(reduction: str) -> None:
    torch = pytest.importorskip("torch")
    log_rate = torch.tensor(np.log(RATES), dtype=torch.float64, requires_grad=True)
    target = torch.tensor(COUNTS)
    native = torch.nn.PoissonNLLLoss(reduction=reduction)(log_rate, target)
    (expected_grad,) = torch.autograd.grad(native.sum(), log_rate)
    ours_input = log_rate.detach().clone().requires_grad_(True)
    ours = lossbridge.get("poisson", backend="torch", convention="torch", reduction=reduction)(ours_input, target)
    (grad,) = torch.autograd.grad(ours.sum(), ours_input)
    np.testing.assert_allclose(ours.detach().numpy(), native.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), rtol=1e-10)


def test_poisson_keras_convention_matches_keras_poisson() -> None:
    keras = pytest.importorskip("keras")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        expected = keras.ops.convert_to_numpy(keras.losses.Poisson()(COUNTS, RATES))
    finally:
        keras.config.set_floatx(previous)
    ours = lossbridge.get("poisson", convention="keras")(COUNTS, RATES)
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def test_lion_optax_convention_matches_optax_lion() -> None:
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    params = [rng.normal(size=(4, 3)), rng.normal(size=3)]
    grads = [[rng.normal(size=p.shape) for p in params] for _ in range(100)]
    native = optax.lion(learning_rate=1e-3)
    state = native.init([jax.numpy.asarray(p) for p in params])
    expected = [jax.numpy.asarray(p) for p in params]
    ours = lossbridge.get("lion", convention="optax", lr=1e-3)
    current = [p.copy() for p in params]
    for g in grads:
        updates, state = native.update([jax.numpy.asarray(x) for x in g], state, expected)
        expected = optax.apply_updates(expected, updates)
        ours.step(current, g)
    for a, e in zip(current, expected):
        np.testing.assert_allclose(a, np.asarray(e), rtol=1e-10)
