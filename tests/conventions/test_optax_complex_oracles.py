"""Complex parameters under the Optax convention: lossbridge against the REAL optax in complex128.

Optax applies its optimizers to complex parameters (``alias_test.py``'s complex64/complex128 cases):
complex first moments, second moments of :math:`|g|^2`, norms of moduli. lossbridge's one definition
does the same. Each case builds the optimizer from Optax's name and NATIVE keyword arguments
(``lossbridge.get(name, backend="numpy", convention="optax", **native)``) and runs its bound spec on
the NumPy namespace with complex128 arrays, 100 steps of a complex least-squares problem (each side's
gradient from its own iterate, conjugated as Optax's test does), against ``optax.<name>(**native)``
in x64; relative error <= 1e-10 per step.

(The NumPy backend's ``step``/``update`` wrapper accepts real floating arrays only, so the bound spec
is driven directly, with the wrapper's own call: ``bound.update(p, g, state, step=t, xp=numpy)``.)
"""

from __future__ import annotations

from typing import Any

import array_api_compat.numpy as xp
import numpy as np
import pytest

import lossbridge

STEPS = 100
RTOL = 1e-10

CASES = [
    ("adam", {"learning_rate": 0.05}),
    ("adam", {"learning_rate": 0.05, "nesterov": True}),
    ("adamw", {"learning_rate": 0.05, "weight_decay": 0.1}),
    ("amsgrad", {"learning_rate": 0.05}),
    ("nadam", {"learning_rate": 0.05}),
    ("radam", {"learning_rate": 0.05}),
    ("adabelief", {"learning_rate": 0.05}),
    ("yogi", {"learning_rate": 0.05}),
    ("adamax", {"learning_rate": 0.05}),
    ("lamb", {"learning_rate": 0.02, "weight_decay": 0.1}),
    ("lars", {"learning_rate": 0.5, "weight_decay": 0.01}),
    ("novograd", {"learning_rate": 0.05}),
    ("rmsprop", {"learning_rate": 0.01}),
    ("rmsprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.5}),
    ("adagrad", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}),
    ("adafactor", {"learning_rate": 0.05, "min_dim_size_to_factor": 2}),
    ("optimistic_adam_v2", {"learning_rate": 0.01}),
]


@pytest.fixture(scope="module")
def optax() -> Any:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _problem() -> tuple[np.ndarray, Any]:
    rng = np.random.default_rng(7)
    a = rng.normal(size=(6, 3, 4)) + 1j * rng.normal(size=(6, 3, 4))
    b = rng.normal(size=(6, 4)) + 1j * rng.normal(size=(6, 4))
    start = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))

    def grad(p: np.ndarray) -> np.ndarray:
        """conj of the Wirtinger gradient of sum |sum_i a[k, i, j] p[i, j] - b[k, j]|^2 (as Optax's test)."""
        residual = np.einsum("kij,ij->kj", a, p) - b
        return np.einsum("kij,kj->ij", np.conj(a), residual)

    return start, grad


@pytest.mark.parametrize(("name", "native"), CASES, ids=[f"{n}-{'-'.join(map(str, k.items()))}" for n, k in CASES])
def test_optax_complex_parameters_match_optax(optax: Any, name: str, native: dict[str, Any]) -> None:
    import jax
    import jax.numpy as jnp

    start, grad = _problem()
    bound = lossbridge.get(name, backend="numpy", convention="optax", **native).bound
    tx = getattr(optax, name)(**native)

    p, state = start.copy(), bound.init(start, xp=xp)
    q = jnp.asarray(start)
    native_state = tx.init(q)
    native_step = jax.jit(tx.update)
    for t in range(1, STEPS + 1):
        delta, state = bound.update(p, grad(p), state, step=np.asarray(float(t)), xp=xp)
        p = p + delta
        updates, native_state = native_step(jnp.asarray(grad(np.asarray(q))), native_state, q)
        q = optax.apply_updates(q, updates)
        expected = np.asarray(q)
        assert p.dtype == np.complex128
        scale = np.max(np.abs(expected))
        err = np.max(np.abs(p - expected)) / scale
        assert err <= RTOL, f"{name} step {t}: relative error {err:.3e}"
