"""Schedule-free evaluation parameters (the averaged point x) from lossbridge's state on every backend.

* Optax: ``optax.contrib.schedule_free_eval_params(state, params)`` reads ``state.b1`` and ``state.z``
  (``optax/contrib/_schedule_free.py``). lossbridge's JAX state holds ``b1`` (and ``max_lr``,
  ``weight_sum``) as single 0-d fields and ``z`` as a tree, as Optax's ``ScheduleFreeState`` does, so
  Optax's own function runs on it: after 100 float64 steps it gives the numbers it gives on Optax's
  state (relative 1e-12), also through ``optax.inject_hyperparams`` and a portable save/load.
* torch / NumPy: the spec helper ``schedule_free_eval_params(param, state)`` on the optimizer's
  per-parameter state (``opt.state[p]``; NumPy's ``state.slots[i]``) against a NumPy transcription of
  the paper's x sequence (Defazio et al. 2024, Algorithm 1: constant lr, so c_t = 1/t).
* Keras: the same helper on ``opt.slots_of(variable)`` against ``keras.optimizers.ScheduleFreeAdamW``'s
  own x, recovered from its variable and its ``momentum`` slot exactly as its ``update_step`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.spec._schedule_free import schedule_free_eval_params

STEPS = 100
RNG = np.random.default_rng(13)
A = [RNG.normal(size=(4, 3)), RNG.normal(size=(2, 2))]
B = [RNG.normal(size=4), RNG.normal(size=(2, 2))]
START = [RNG.normal(size=3), RNG.normal(size=(2, 2))]


def grad(params: list[Any]) -> list[np.ndarray]:
    """Least squares plus a non-convex term 0.1 * sum(sin(w)): A^T (A w - b) + 0.1 cos(w)."""
    w0, w1 = (np.asarray(p, dtype=np.float64) for p in params)
    return [A[0].T @ (A[0] @ w0 - B[0]) + 0.1 * np.cos(w0), A[1] * (A[1] * w1 - B[1]) + 0.1 * np.cos(w1)]


def _rel(got: Any, expected: Any) -> float:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)))


def paper_sgd_x(lr: float, b1: float, steps: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Schedule-free SGD (Defazio et al. 2024, Algorithm 1, no warmup, constant lr: c_t = 1/t), float64.

    Returns the final ``y`` (the held parameters) and ``x`` (the evaluation point).
    """
    z = [p.copy() for p in START]
    x = [p.copy() for p in START]
    y = [p.copy() for p in START]
    for t in range(1, steps + 1):
        g = grad(y)
        z = [zi - lr * gi for zi, gi in zip(z, g, strict=True)]
        c = 1.0 / t
        x = [(1.0 - c) * xi + c * zi for xi, zi in zip(x, z, strict=True)]
        y = [(1.0 - b1) * zi + b1 * xi for zi, xi in zip(z, x, strict=True)]
    return y, x


# -- Optax: its own schedule_free_eval_params on lossbridge's JAX state ------------------------------
@pytest.fixture(scope="module")
def optax() -> Any:
    jax = pytest.importorskip("jax")
    pytest.importorskip("lossbridge_jax")
    jax.config.update("jax_enable_x64", True)
    return pytest.importorskip("optax")


OPTAX_CASES = [
    ("schedule_free_adamw", {"learning_rate": 0.01, "b1": 0.8, "weight_decay": 0.01, "warmup_steps": 5}),
    ("schedule_free_adamw", {"learning_rate": 0.005}),
    ("schedule_free_sgd", {"learning_rate": 0.05, "b1": 0.7, "warmup_steps": 3}),
]


def _run(optax: Any, tx: Any, steps: int = STEPS) -> tuple[Any, Any]:
    import jax

    params = [jax.numpy.asarray(p) for p in START]
    state = tx.init(params)

    jnp = jax.numpy

    @jax.jit  # both sides jitted: XLA fuses Optax's float32 warmup the same way on both
    def step(params: Any, state: Any) -> Any:
        w0, w1 = params  # grad() in jax.numpy
        g = [A[0].T @ (A[0] @ w0 - B[0]) + 0.1 * jnp.cos(w0), A[1] * (A[1] * w1 - B[1]) + 0.1 * jnp.cos(w1)]
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return params, state


@pytest.mark.parametrize(("name", "native"), OPTAX_CASES, ids=[f"{n}-{len(k)}" for n, k in OPTAX_CASES])
def test_optax_eval_params_on_lossbridge_state(optax: Any, name: str, native: dict[str, Any]) -> None:
    theirs, their_state = _run(optax, getattr(optax.contrib, name)(**native))
    ours, our_state = _run(optax, lossbridge.get(name, backend="jax", convention="optax", **native))
    assert max(_rel(o, t) for o, t in zip(ours, theirs, strict=True)) <= 1e-12
    expected = optax.contrib.schedule_free_eval_params(their_state, theirs)
    got = optax.contrib.schedule_free_eval_params(our_state, ours)
    assert max(_rel(g, e) for g, e in zip(got, expected, strict=True)) <= 1e-12
    # the 0-d fields are single arrays in the parameters' dtype, equal to Optax's
    for field in ("b1", "max_lr", "weight_sum"):
        ours_f, theirs_f = getattr(our_state, field), getattr(their_state, field)
        assert np.ndim(ours_f) == 0 and ours_f.dtype == theirs_f.dtype
        assert _rel(ours_f, theirs_f) <= 1e-12, field
    assert float(our_state.b1) == native.get("b1", 0.9)
    # the spec helper on state.slots gives the same point
    helper = [schedule_free_eval_params(p, s) for p, s in zip(ours, our_state.slots, strict=True)]
    assert max(_rel(h, e) for h, e in zip(helper, expected, strict=True)) <= 1e-12


def test_optax_eval_params_through_inject_hyperparams(optax: Any) -> None:
    native = {"learning_rate": 0.01, "b1": 0.8}
    tx = lossbridge.get("schedule_free_adamw", backend="jax", convention="optax", **native)
    injected = optax.inject_hyperparams(tx.factory)(lr=0.01)
    theirs, their_state = _run(optax, optax.contrib.schedule_free_adamw(**native), steps=20)
    ours, our_state = _run(optax, injected, steps=20)
    expected = optax.contrib.schedule_free_eval_params(their_state, theirs)
    got = optax.contrib.schedule_free_eval_params(our_state.inner_state, ours)
    assert max(_rel(g, e) for g, e in zip(got, expected, strict=True)) <= 1e-12


def test_optax_eval_params_after_a_portable_round_trip(optax: Any, tmp_path: Any) -> None:
    """The state saved and loaded again (portable state) keeps b1 as a single field; the eval point
    and the next steps are unchanged."""
    import jax

    tx = lossbridge.get("schedule_free_sgd", backend="jax", convention="optax", learning_rate=0.05, b1=0.7)
    params, state = _run(optax, tx, steps=10)
    path = tmp_path / "sf.safetensors"
    lossbridge.save_state(path, tx, state=state, params=params)
    loaded = lossbridge.load_state(path, tx, params=params)
    assert type(loaded) is type(state) and np.ndim(loaded.b1) == 0
    assert jax.tree.structure(loaded) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    before = optax.contrib.schedule_free_eval_params(state, params)
    after = optax.contrib.schedule_free_eval_params(loaded, params)
    assert max(_rel(a, b) for a, b in zip(after, before, strict=True)) == 0.0


# -- torch and NumPy: the spec helper on the optimizer's per-parameter state --------------------------
def test_torch_eval_params_from_optimizer_state() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("lossbridge_torch")
    lr, b1 = 0.05, 0.7
    y_ref, x_ref = paper_sgd_x(lr, b1, STEPS)
    ws = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for p in START]
    opt = lossbridge.get("schedule_free_sgd", backend="torch", lr=lr, beta_1=b1)(ws)
    for _ in range(STEPS):
        for w, g in zip(ws, grad([w.detach().numpy() for w in ws]), strict=True):
            w.grad = torch.from_numpy(g)
        opt.step()
    for w, y, x in zip(ws, y_ref, x_ref, strict=True):
        assert _rel(w.detach().numpy(), y) <= 1e-10
        assert _rel(schedule_free_eval_params(w.detach(), opt.state[w]).numpy(), x) <= 1e-10
        assert float(opt.state[w]["b1"]) == b1


def test_numpy_eval_params_from_optimizer_state() -> None:
    lr, b1 = 0.05, 0.7
    y_ref, x_ref = paper_sgd_x(lr, b1, STEPS)
    opt = lossbridge.get("schedule_free_sgd", lr=lr, beta_1=b1)
    params = [p.copy() for p in START]
    state = opt.init(params)
    for _ in range(STEPS):
        deltas, state = opt.update(grad(params), state, params)
        params = [p + d for p, d in zip(params, deltas, strict=True)]
    for p, s, y, x in zip(params, state.slots, y_ref, x_ref, strict=True):
        assert _rel(p, y) <= 1e-10
        assert _rel(schedule_free_eval_params(p, s), x) <= 1e-10


# -- Keras: the helper on opt.slots_of(variable) against ScheduleFreeAdamW's own x ----------------------
def test_keras_eval_params_from_slots_of() -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("lossbridge_tensorflow")
    native = {"learning_rate": 0.01, "beta_1": 0.8}
    theirs = keras.optimizers.ScheduleFreeAdamW(**native)
    ours = lossbridge.get("schedule_free_adamw", backend="tensorflow", convention="keras", **native)
    their_vars = [keras.Variable(p.copy(), dtype="float64") for p in START]
    our_vars = [keras.Variable(p.copy(), dtype="float64") for p in START]
    for _ in range(STEPS):
        for opt, vs in ((theirs, their_vars), (ours, our_vars)):
            g = [keras.ops.convert_to_tensor(x, dtype="float64") for x in grad([v.numpy() for v in vs])]
            opt.apply_gradients(zip(g, vs, strict=True))
    b1 = float(np.float32(native["beta_1"]))  # Keras holds beta_1 in float32
    for tv, ov in zip(their_vars, our_vars, strict=True):
        momentum = theirs._momentums[theirs._get_variable_index(tv)].numpy()
        expected = (tv.numpy() - (1.0 - b1) * momentum) / b1  # Keras's x recovery (update_step)
        got = schedule_free_eval_params(ov.value, ours.slots_of(ov))
        assert _rel(np.asarray(got), expected) <= 1e-10
