"""A learning-rate schedule as ``lr`` of the optimizers outside the per-tensor form, against the real framework.

``lbfgs`` (closure steps), ``polyak_sgd`` (needs the loss value; Optax's ``scaling`` is its lr),
``sophia`` (a Hessian-diagonal estimate) and ``noisy_sgd`` (drawn noise), each given a lossbridge
schedule as its learning rate, float64, relative error <= 1e-10 at every step:

* Optax: ``optax.<name>(learning_rate=S)`` (``polyak_sgd(scaling=S)``) with ``S`` lossbridge's Optax
  schedule, against lossbridge's JAX transformation (100 updates) and lossbridge's NumPy optimizer
  given the NumPy schedule of the same spec and parameters. Optax reads a schedule at its update count
  (0 for the first update). On NumPy and torch, whose random draws are not Optax's, sophia runs with
  ``gamma=0`` (the step m / max(0 * h, eps) does not read the estimate) and noisy_sgd with ``eta=0``.
* torch: ``torch.optim.LBFGS`` with torch's own ``ExponentialLR`` stepped after every ``step(closure)``
  against lossbridge's torch LBFGS with lossbridge's ``ExponentialLR`` scheduler (``max_iter=1``, the
  schedule's one value per step, and torch's default 20 iterations per step; with max_iter=1 torch
  takes no step at all once g.d > -tolerance_change, and neither does lossbridge), NumPy's L-BFGS
  given the NumPy schedule as ``lr`` against the same torch run; lossbridge's torch
  ``polyak_sgd`` / ``sophia`` / ``noisy_sgd`` with lossbridge's scheduler against Optax given the same
  schedule (torch's scheduler after the k-th ``step()`` gives the value at k: Optax's count).
* ``adadelta(learning_rate=None)``, Optax's default (no lr scaling, no sign flip): every backend's
  default under ``convention="optax"`` against ``optax.adadelta()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import least_squares_problem, quadratic_plus_cos_value

RTOL = 1e-10
STEPS = 100
#: exponential decay 0.05 * 0.5 ** (t / 25): a visible change of the lr over the 100 steps
SCHEDULE = {"init_value": 0.05, "transition_steps": 25, "decay_rate": 0.5}


START, MATS, TARGETS = least_squares_problem(7)
value_and_grad = quadratic_plus_cos_value(MATS, TARGETS)


def hvp(vectors: list[np.ndarray]) -> list[np.ndarray]:
    """Stand-in Hessian-vector products (sophia with gamma=0 never reads the estimate: any finite values do)."""
    return [np.zeros_like(v) for v in vectors]


def _assert_same(actual: list[list[Any]], expected: list[list[Any]], rtol: float = RTOL) -> None:
    assert len(actual) == len(expected)
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        for k, (a, e) in enumerate(zip(got, want, strict=True)):
            a, e = np.asarray(a), np.asarray(e)
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= rtol, f"step {t}, parameter {k}: relative error {err:.3g}"


# -- Optax: the native transformation given lossbridge's Optax schedule -------------------------------
@pytest.fixture(scope="module")
def optax() -> Any:
    jax = pytest.importorskip("jax")
    pytest.importorskip("lossbridge_jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", previous)


def _jax_schedule() -> Any:
    return lossbridge.get("exponential_decay", backend="jax", convention="optax", **SCHEDULE)


def _np_schedule() -> Any:
    return lossbridge.get("exponential_decay", convention="optax", **SCHEDULE)


def _objective(jnp: Any) -> Any:
    def f(params: list[Any]) -> Any:
        return sum(
            0.5 * jnp.mean((jnp.asarray(a) @ p - jnp.asarray(b)) ** 2) + 0.1 * jnp.sum(jnp.cos(2 * p))
            for p, a, b in zip(params, MATS, TARGETS, strict=True)
        )

    return f


#: name -> (the Optax function's keyword for the lr, other native keywords, the NumPy/torch variant's
#: keywords that make the numbers independent of the random draws)
OPTAX_SPECS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "lbfgs": ("learning_rate", {}, {}),
    "polyak_sgd": ("scaling", {"max_learning_rate": 5.0, "f_min": -2.0}, {}),
    "sophia": ("learning_rate", {"update_interval": 3}, {"gamma": 0.0, "eps": 0.5}),
    "noisy_sgd": ("learning_rate", {"eta": 0.01, "key": 3}, {"eta": 0.0}),
}


def _native(optax: Any, name: str, lr: Any, extra: dict[str, Any]) -> Any:
    fn = optax.contrib.sophia if name == "sophia" else getattr(optax, name)
    lr_key, native, _ = OPTAX_SPECS[name]
    return fn(**{lr_key: lr, **native, **extra})


def _optax_path(optax: Any, name: str, tx: Any) -> list[list[np.ndarray]]:
    """``STEPS`` updates of ``tx`` in Optax's documented loop for ``name`` (jitted)."""
    import jax
    import jax.numpy as jnp

    f = _objective(jnp)
    params = [jnp.asarray(p) for p in START]
    state = tx.init(params)
    from_state = optax.value_and_grad_from_state(f)

    @jax.jit
    def step(params: Any, state: Any) -> Any:
        if name == "lbfgs":
            value, grad = from_state(params, state=state)
            updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        elif name == "polyak_sgd":
            value, grad = jax.value_and_grad(f)(params)
            updates, state = tx.update(grad, state, params, value=value)
        elif name == "sophia":
            updates, state = tx.update(jax.grad(f)(params), state, params, obj_fn=f)
        else:
            updates, state = tx.update(jax.grad(f)(params), state, params)
        return optax.apply_updates(params, updates), state

    path = []
    for _ in range(STEPS):
        params, state = step(params, state)
        path.append([np.asarray(p) for p in params])
    return path


_REFERENCE: dict[tuple[str, str], list[list[np.ndarray]]] = {}


def _optax_reference(optax: Any, name: str, deterministic: bool) -> list[list[np.ndarray]]:
    """Optax's own path for ``name`` with the schedule (computed once: compiling its loops takes seconds)."""
    extra = OPTAX_SPECS[name][2] if deterministic else {}
    key = (name, repr(sorted(extra.items())))
    if key not in _REFERENCE:
        _REFERENCE[key] = _optax_path(optax, name, _native(optax, name, _jax_schedule(), extra))
    return _REFERENCE[key]


@pytest.mark.parametrize("name", sorted(OPTAX_SPECS))
def test_optax_schedule_as_lr_on_jax(optax: Any, name: str) -> None:
    lr_key, native, _ = OPTAX_SPECS[name]
    expected = _optax_reference(optax, name, deterministic=False)
    ours = lossbridge.get(name, backend="jax", convention="optax", **{lr_key: _jax_schedule(), **native})
    _assert_same(_optax_path(optax, name, ours), expected)


def _numpy_path(name: str, opt: Any) -> list[list[np.ndarray]]:
    params = [p.copy() for p in START]
    path = []
    if name == "lbfgs":
        for _ in range(STEPS):
            opt.step(params, value_and_grad)
            path.append([p.copy() for p in params])
        return path
    state = opt.init(params)
    for _ in range(STEPS):
        value, grads = value_and_grad(params)
        extra = {"value": value} if name == "polyak_sgd" else {"hvp": hvp} if name == "sophia" else {}
        deltas, state = opt.update(grads, state, params, **extra)
        params = [p + d for p, d in zip(params, deltas, strict=True)]
        path.append([p.copy() for p in params])
    return path


@pytest.mark.parametrize("name", sorted(OPTAX_SPECS))
def test_optax_schedule_as_lr_on_numpy(optax: Any, name: str) -> None:
    lr_key, native, deterministic = OPTAX_SPECS[name]
    expected = _optax_reference(optax, name, deterministic=True)
    opt = lossbridge.get(name, convention="optax", **{lr_key: _np_schedule(), **native, **deterministic})
    _assert_same(_numpy_path(name, opt), expected)


# -- torch: LRSchedulers stepped after every step() ----------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    pytest.importorskip("lossbridge_torch")
    return pytest.importorskip("torch")


def _torch_closure_path(torch: Any, opt_cls: Any, sched: Any, native: dict[str, Any], steps: int,
                        backward: bool = True) -> list[list[np.ndarray]]:
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in START]
    mats = [torch.tensor(a) for a in MATS]
    targets = [torch.tensor(b) for b in TARGETS]
    opt = opt_cls(params, **native)
    scheduler = sched(opt)

    def closure() -> Any:
        opt.zero_grad()
        loss = sum(0.5 * torch.mean((a @ p - b) ** 2) + 0.1 * torch.sum(torch.cos(2 * p))
                   for p, a, b in zip(params, mats, targets, strict=True))
        if backward:
            loss.backward()
        return loss

    path = []
    for _ in range(steps):
        opt.step(closure)
        scheduler.step()
        path.append([p.detach().numpy().copy() for p in params])
    return path


LBFGS_CASES = [{"lr": 0.5, "max_iter": 1}, {"lr": 0.5}, {"lr": 1.0, "line_search_fn": "strong_wolfe"}]


@pytest.mark.parametrize("native", LBFGS_CASES, ids=["max_iter1", "max_iter20", "strong_wolfe"])
def test_torch_lbfgs_with_lr_scheduler(torch: Any, native: dict[str, Any]) -> None:
    steps = STEPS if native.get("max_iter") == 1 else 10  # 20 iterations per step: 10 steps are 200
    expected = _torch_closure_path(
        torch, torch.optim.LBFGS, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.97), native, steps
    )
    ours = lossbridge.get("LBFGS", backend="torch", convention="torch")
    sched = lossbridge.get("ExponentialLR", backend="torch", convention="torch", gamma=0.97)
    _assert_same(_torch_closure_path(torch, ours, sched, native, steps), expected)


def test_torch_lbfgs_numpy_schedule_as_lr(torch: Any) -> None:
    """NumPy's L-BFGS given the NumPy schedule of torch's ExponentialLR as lr (read at the iterations
    taken: one per step with max_iter=1) against torch.optim.LBFGS with torch's ExponentialLR."""
    native = {"lr": 0.5, "max_iter": 1}
    expected = _torch_closure_path(
        torch, torch.optim.LBFGS, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.97), native, STEPS
    )
    schedule = lossbridge.get("ExponentialLR", convention="torch", lr=0.5, gamma=0.97)
    opt = lossbridge.get("lbfgs", convention="torch", lr=schedule, max_iter=1)
    _assert_same(_numpy_path("lbfgs", opt), expected)


@pytest.mark.parametrize("name", ["polyak_sgd", "sophia", "noisy_sgd"])
def test_torch_lr_scheduler_matches_optax_schedule(torch: Any, optax: Any, name: str) -> None:
    """lossbridge's torch optimizer driven by lossbridge's torch scheduler of the same schedule spec
    against Optax given the schedule as learning_rate (float64, 100 steps)."""
    _, native, deterministic = OPTAX_SPECS[name]
    expected = _optax_reference(optax, name, deterministic=True)
    cls = lossbridge.get(name, backend="torch", convention="optax", **{**native, **deterministic})
    sched = lossbridge.get("exponential_decay", backend="torch", convention="optax", **SCHEDULE)
    if name == "noisy_sgd":  # a plain step(): gradients set by backward
        params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in START]
        opt = cls(params)
        scheduler = sched(opt)
        path = []
        for _ in range(STEPS):
            _, grads = value_and_grad([p.detach().numpy() for p in params])
            for p, g in zip(params, grads, strict=True):
                p.grad = torch.from_numpy(g)
            opt.step()
            scheduler.step()
            path.append([p.detach().numpy().copy() for p in params])
    else:  # polyak_sgd: the closure gives the loss; sophia: the loss without backward (the optimizer's grads)
        path = _torch_closure_path(torch, cls, sched, {}, STEPS, backward=name == "polyak_sgd")
    _assert_same(path, expected)


# -- adadelta: Optax's default learning_rate=None on every backend -------------------------------------
def test_optax_adadelta_default_lr_none_on_every_backend(optax: Any) -> None:
    import jax.numpy as jnp

    native = optax.adadelta()  # learning_rate=None: theta += d (no scaling, no sign flip)
    params = [jnp.asarray(p) for p in START]
    state = native.init(params)
    expected = []
    for _ in range(20):
        _, grads = value_and_grad([np.asarray(p) for p in params])
        updates, state = native.update([jnp.asarray(g) for g in grads], state, params)
        params = optax.apply_updates(params, updates)
        expected.append([np.asarray(p) for p in params])
    for backend in ("numpy", "jax", "torch", "tensorflow"):
        try:
            opt = lossbridge.get("adadelta", backend=backend, convention="optax")
        except lossbridge.BackendError:
            continue  # the backend's framework is not installed
        assert opt is not None
        path = _adadelta_path(backend, opt, 20)
        _assert_same(path, expected, rtol=1e-12)


def _adadelta_path(backend: str, opt: Any, steps: int) -> list[list[np.ndarray]]:
    path = []
    if backend == "numpy":
        params = [p.copy() for p in START]
        for _ in range(steps):
            opt.step(params, value_and_grad(params)[1])
            path.append([p.copy() for p in params])
    elif backend == "jax":
        import jax.numpy as jnp

        params = [jnp.asarray(p) for p in START]
        state = opt.init(params)
        for _ in range(steps):
            grads = [jnp.asarray(g) for g in value_and_grad([np.asarray(p) for p in params])[1]]
            updates, state = opt.update(grads, state, params)
            params = [p + u for p, u in zip(params, updates, strict=True)]
            path.append([np.asarray(p) for p in params])
    elif backend == "torch":
        import torch

        params = [torch.tensor(p, dtype=torch.float64) for p in START]
        torch_opt = opt(params)
        for _ in range(steps):
            for p, g in zip(params, value_and_grad([p.numpy() for p in params])[1], strict=True):
                p.grad = torch.from_numpy(g)
            torch_opt.step()
            path.append([p.numpy().copy() for p in params])
    else:
        import keras

        assert opt.lr_free and float(opt.learning_rate) == 1.0
        variables = [keras.Variable(p, dtype="float64") for p in START]
        for _ in range(steps):
            grads = value_and_grad([v.numpy() for v in variables])[1]
            opt.apply([keras.ops.convert_to_tensor(g, dtype="float64") for g in grads], variables)
            path.append([v.numpy().copy() for v in variables])
        restored = type(opt).from_config(opt.get_config())
        assert restored.lr_free and restored.bound.hyper["lr"] is None
    return path
