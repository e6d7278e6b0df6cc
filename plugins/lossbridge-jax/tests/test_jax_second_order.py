"""Second order through the spec's one gradient: ``jax.custom_jvp`` makes forward mode and
``jax.hessian`` work; the Hessian equals finite differences of the spec's analytic gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import lossbridge

CASES = [
    ("mse", {}, lambda rng: (rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))),
    ("huber", {"delta": 0.7}, lambda rng: (rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))),
    (
        "binary_crossentropy",
        {"from_logits": True},
        lambda rng: (rng.normal(size=(4, 3)), rng.integers(0, 2, size=(4, 3)).astype(float)),
    ),
    (
        "sparse_categorical_crossentropy",
        {"from_logits": True},
        lambda rng: (rng.normal(size=(4, 5)), rng.integers(0, 5, size=(4,))),
    ),
    ("triplet_margin", {"margin": 5.0}, lambda rng: tuple(rng.normal(size=(3, 4, 3)))),
]


def _fd_hessian(grad_fn, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the spec's analytic gradient (NumPy backend)."""
    flat = x.ravel()
    out = np.zeros((flat.size, flat.size))
    for k in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[k] += h
        down[k] -= h
        out[:, k] = (grad_fn(up.reshape(x.shape)).ravel() - grad_fn(down.reshape(x.shape)).ravel()) / (2 * h)
    return out


@pytest.mark.parametrize(("name", "params", "make"), CASES, ids=[c[0] for c in CASES])
def test_hessian_matches_finite_differences_of_the_analytic_gradient(name, params, make) -> None:
    with jax.enable_x64(True):
        args = make(np.random.default_rng(0))
        loss = lossbridge.get(name, backend="jax", **params)
        reference = lossbridge.get(name, **params)  # NumPy: the spec's vjp, truth first
        spec_args = [args[k] for k in range(len(args))]
        pred = np.asarray(spec_args[0], dtype=np.float64)
        rest = [jnp.asarray(a) for a in spec_args[1:]]
        hessian = jax.hessian(lambda p: loss(p, *rest))(jnp.asarray(pred))
        order = [i.name for i in lossbridge.spec(name).inputs]
        jax_names = list(loss.argnames)

        def analytic(p: np.ndarray) -> np.ndarray:
            by_name = dict(zip(jax_names, [p, *spec_args[1:]], strict=True))
            grads = reference.grad(*(by_name[n] for n in order))
            first = [i.name for i in lossbridge.spec(name).differentiable_inputs].index(jax_names[0])
            return np.asarray(grads[first] if isinstance(grads, tuple) else grads)

        expected = _fd_hessian(analytic, pred)
        np.testing.assert_allclose(np.asarray(hessian).reshape(expected.shape), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "params", "make"), CASES[:4], ids=[c[0] for c in CASES[:4]])
def test_check_grads_forward_and_reverse_to_second_order(name, params, make) -> None:
    with jax.enable_x64(True):
        args = make(np.random.default_rng(1))
        loss = lossbridge.get(name, backend="jax", **params)
        rest = [jnp.asarray(a) for a in args[1:]]
        check_grads(lambda p: loss(p, *rest), (jnp.asarray(args[0]),), order=2, modes=("fwd", "rev"))
