"""polyak_sgd, sophia and noisy_sgd under the Optax convention against the REAL Optax, float64.

Closed loop, 100 steps, on least squares plus a non-convex term: each side computes its own value and
gradient (and, for Sophia, Hessian-vector products of the objective) at its own iterate, so the
value / objective / noise each optimizer needs come from its own run. Relative error <= 1e-10 per
step, parameter by parameter.

* JAX backend vs Optax: ``update(..., value=)`` / ``update(..., obj_fn=)`` exactly as Optax's, with the
  same key: Sophia's Rademacher vectors and noisy SGD's noise are the same numbers.
* NumPy backend vs Optax for polyak_sgd (deterministic; the value is passed to ``step``).
* The spec's math on the NumPy namespace vs Optax for sophia and noisy_sgd, fed the draws Optax makes
  (rebuilt here from the same key with JAX's generator): the NumPy backend draws from NumPy's own
  generator (same distribution, other numbers), so its numbers cannot equal Optax's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge

STEPS = 100
RTOL = 1e-10

_RNG = np.random.default_rng(11)
_X = _RNG.normal(size=(8, 4))
_Y = _RNG.normal(size=(8, 3))
_START = (_RNG.normal(size=(4, 3)), _RNG.normal(size=(3,)))


@pytest.fixture(scope="module", name="optax")
def _optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


# -------------------------------------------------------------------------------------- the problem


def _objective_jax(p: Any) -> Any:
    import jax.numpy as jnp

    r = jnp.asarray(_X) @ p[0] + p[1] - jnp.asarray(_Y)
    return 0.5 * jnp.mean(jnp.sum(r * r, axis=-1)) + 0.1 * jnp.sum(jnp.sin(p[0])) + 0.05 * jnp.sum(jnp.cos(p[1]))


def _objective_np(p: list[np.ndarray]) -> float:
    r = _X @ p[0] + p[1] - _Y
    return float(0.5 * np.mean(np.sum(r * r, axis=-1)) + 0.1 * np.sum(np.sin(p[0])) + 0.05 * np.sum(np.cos(p[1])))


def _grad_np(p: list[np.ndarray]) -> list[np.ndarray]:
    r = (_X @ p[0] + p[1] - _Y) / len(_X)
    return [_X.T @ r + 0.1 * np.cos(p[0]), r.sum(axis=0) - 0.05 * np.sin(p[1])]


def _jax_run(tx: Any, extra: str | None) -> list[list[np.ndarray]]:
    """100 jitted closed-loop steps of an Optax(-like) transformation; the iterates as NumPy arrays."""
    import jax
    import optax

    def step(params: Any, state: Any) -> tuple[Any, Any]:
        value, grads = jax.value_and_grad(_objective_jax)(params)
        kwargs = {"value": value} if extra == "value" else {"obj_fn": _objective_jax} if extra == "obj_fn" else {}
        updates, state = tx.update(grads, state, params, **kwargs)
        return optax.apply_updates(params, updates), state

    jitted = jax.jit(step)
    params = [jax.numpy.asarray(p) for p in _START]
    state = tx.init(params)
    path = []
    for _ in range(STEPS):
        params, state = jitted(params, state)
        path.append([np.asarray(p) for p in params])
    return path


_REFERENCE: dict[tuple[str, str], list[list[np.ndarray]]] = {}


def _reference(name: str, native: dict[str, Any], make: Any, extra: str | None) -> list[list[np.ndarray]]:
    """Optax's run, computed once per case (the JAX-backend and NumPy tests compare against the same run)."""
    key = (name, repr(sorted(native.items())))
    if key not in _REFERENCE:
        _REFERENCE[key] = _jax_run(make(), extra)
    return _REFERENCE[key]


def _assert_same(ours: list[list[np.ndarray]], theirs: list[list[np.ndarray]]) -> None:
    assert len(ours) == len(theirs) == STEPS
    for t, (a_step, b_step) in enumerate(zip(ours, theirs)):
        for k, (a, b) in enumerate(zip(a_step, b_step)):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-300, err_msg=f"step {t + 1}, param {k}")
    moved = max(float(np.max(np.abs(a - s))) for a, s in zip(theirs[-1], _START))
    assert moved > 1e-3  # the run did something


# ---------------------------------------------------------------------------------------- polyak_sgd

_POLYAK = [
    {},
    {"max_learning_rate": 0.3, "f_min": -1.0},
    {"scaling": 0.7, "variant": "sps+", "f_min": 0.5, "eps": 1e-3},
]


@pytest.mark.parametrize("native", _POLYAK, ids=["defaults", "capped-fmin", "scaling-sps+"])
def test_optax_polyak_sgd_jax_backend(optax: Any, native: dict[str, Any]) -> None:
    ours = lossbridge.get("polyak_sgd", backend="jax", convention="optax", **native)
    _assert_same(_jax_run(ours, "value"), _reference("polyak", native, lambda: optax.polyak_sgd(**native), "value"))


@pytest.mark.parametrize("native", _POLYAK, ids=["defaults", "capped-fmin", "scaling-sps+"])
def test_optax_polyak_sgd_numpy_backend(optax: Any, native: dict[str, Any]) -> None:
    opt = lossbridge.get("polyak_sgd", backend="numpy", convention="optax", **native)
    params = [p.copy() for p in _START]
    path = []
    for _ in range(STEPS):
        opt.step(params, _grad_np(params), value=_objective_np(params))
        path.append([p.copy() for p in params])
    _assert_same(path, _reference("polyak", native, lambda: optax.polyak_sgd(**native), "value"))


def test_optax_polyak_sgd_names(optax: Any) -> None:
    tx = lossbridge.get("polyak_sgd", backend="jax", convention="optax", scaling=0.5)
    assert tx.bound.hyper["lr"] == 0.5
    assert lossbridge.spec("sps").name == "polyak_sgd"
    # names resolve under the Optax convention (case / separator insensitive)
    assert lossbridge.get("Polyak-SGD", backend="jax", convention="optax").spec.name == "polyak_sgd"
    assert lossbridge.get("noisy_sgd", backend="jax", convention="optax", seed=2).bound.hyper["key"] == 2


# -------------------------------------------------------------------------------------------- sophia

_SOPHIA = [
    ({"learning_rate": 0.01}, None),
    ({"learning_rate": 0.02, "update_interval": 3, "gamma": 0.5, "weight_decay": 0.0}, None),
    ({"learning_rate": 0.01, "clip_threshold": None, "gamma": 1.0, "eps": 0.5, "b1": 0.9, "b2": 0.95}, 5),
]


def _native_sophia(optax: Any, native: dict[str, Any], key: int | None) -> Any:
    import jax

    if key is None:
        return optax.contrib.sophia(**native)
    hessian = optax.contrib.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(key))
    return optax.contrib.sophia(**native, hessian_diagonal_fn=hessian)


@pytest.mark.parametrize(("native", "key"), _SOPHIA, ids=["defaults", "interval3", "noclip-key5"])
def test_optax_sophia_jax_backend(optax: Any, native: dict[str, Any], key: int | None) -> None:
    ours = lossbridge.get("sophia", backend="jax", convention="optax", **native, **({"key": key} if key else {}))
    reference = _reference(f"sophia{key}", native, lambda: _native_sophia(optax, native, key), "obj_fn")
    _assert_same(_jax_run(ours, "obj_fn"), reference)


def _optax_signs(key: int, shapes: list[tuple[int, ...]], refreshes: int) -> list[list[np.ndarray]]:
    """The Rademacher vectors Optax's Hutchinson estimator draws at its refreshes (same key handling:
    split (next, sub) per refresh, one key per leaf from sub), with JAX's generator."""
    import jax
    import optax

    state, out = jax.random.PRNGKey(key), []
    for _ in range(refreshes):
        state, sub = jax.random.split(state)
        template = [jax.numpy.zeros(s) for s in shapes]
        signs = optax.tree.random_like(sub, template, jax.random.rademacher, dtype=jax.numpy.float32)
        out.append([np.asarray(r, dtype=np.float64) for r in signs])
    return out


def _hvp_np(p: list[np.ndarray], v: list[np.ndarray]) -> list[np.ndarray]:
    """The objective's Hessian times ``v`` (closed form)."""
    n = len(_X)
    w_part = _X.T @ (_X @ v[0] + v[1]) / n - 0.1 * np.sin(p[0]) * v[0]
    b_part = (_X @ v[0] + v[1]).sum(axis=0) / n - 0.05 * np.cos(p[1]) * v[1]
    return [w_part, b_part]


@pytest.mark.parametrize(("native", "key"), _SOPHIA, ids=["defaults", "interval3", "noclip-key5"])
def test_optax_sophia_spec_numpy_with_optax_draws(optax: Any, native: dict[str, Any], key: int | None) -> None:
    # the bound spec under Optax's convention from Optax's own keywords (learning_rate, b1, b2)
    bound = lossbridge.get("sophia", backend="numpy", convention="optax", **native).bound
    interval = bound.hyper["update_interval"]
    signs = iter(_optax_signs(key or 0, [p.shape for p in _START], STEPS))
    params = [p.copy() for p in _START]
    states = [bound.init(p, xp=np) for p in params]
    path = []
    for t in range(1, STEPS + 1):
        grads = _grad_np(params)
        if (t - 1) % interval == 0:
            r = next(signs)
            diag = [ri * hi for ri, hi in zip(r, _hvp_np(params, r))]
        else:
            diag = [np.zeros_like(p) for p in params]
        new = []
        for k, (p, g) in enumerate(zip(params, grads)):
            delta, states[k] = bound.update(p, g, states[k], step=np.float64(t), xp=np, hessian_diag=diag[k])
            new.append(p + delta)
        params = new
        path.append([p.copy() for p in params])
    _assert_same(path, _reference(f"sophia{key}", native, lambda: _native_sophia(optax, native, key), "obj_fn"))


# ----------------------------------------------------------------------------------------- noisy_sgd

_NOISY = [{"learning_rate": 0.05}, {"learning_rate": 0.02, "eta": 0.3, "gamma": 0.8, "key": 3}]


@pytest.mark.parametrize("native", _NOISY, ids=["defaults", "eta-gamma-key3"])
def test_optax_noisy_sgd_jax_backend(optax: Any, native: dict[str, Any]) -> None:
    ours = lossbridge.get("noisy_sgd", backend="jax", convention="optax", **native)
    native = {"key": 0, **native}  # Optax warns without a key; 0 is its default
    _assert_same(_jax_run(ours, None), _reference("noisy", native, lambda: optax.noisy_sgd(**native), None))


@pytest.mark.parametrize("native", _NOISY, ids=["defaults", "eta-gamma-key3"])
def test_optax_noisy_sgd_spec_numpy_with_optax_draws(optax: Any, native: dict[str, Any]) -> None:
    import jax

    native = {"key": 0, **native}
    bound = lossbridge.get("noisy_sgd", backend="numpy", convention="optax", **native).bound
    key = jax.random.key(native["key"])
    params = [p.copy() for p in _START]
    path = []
    for t in range(1, STEPS + 1):
        grads = _grad_np(params)
        key, sub = jax.random.split(key)  # add_noise: (next key, sample key), one normal draw per leaf
        template = [jax.numpy.zeros(p.shape) for p in params]
        noise = [np.asarray(n) for n in optax.tree.random_like(sub, target_tree=template, sampler=jax.random.normal)]
        params = [p + bound.update(p, g, {}, step=np.float64(t), xp=np, noise=z)[0]
                  for p, g, z in zip(params, grads, noise)]
        path.append([p.copy() for p in params])
    _assert_same(path, _reference("noisy", native, lambda: optax.noisy_sgd(**native), None))


def test_keras_refuses_oracle_optimizers() -> None:
    """Keras's apply_gradients sees gradients only: the tensorflow backend refuses these specs clearly."""
    pytest.importorskip("keras")
    from lossbridge.errors import BackendError

    for name in ("polyak_sgd", "sophia", "noisy_sgd"):
        with pytest.raises(BackendError, match="needs"):
            lossbridge.get(name, backend="tensorflow", convention="optax")
