"""L-BFGS under each framework's convention against the REAL framework, float64.

lossbridge's ``lbfgs`` on the NumPy backend (``step(params, closure)``) against ``torch.optim.LBFGS``
(``step(closure)``) and ``optax.lbfgs`` (Optax's documented loop with
``optax.value_and_grad_from_state``), built with their NATIVE keyword arguments, on the least-squares
problem plus a non-convex term over a vector and a matrix parameter (both frameworks treat them as
one vector). Every side evaluates the same objective in its own framework.

torch: 20 ``step(closure)`` calls. Each call runs up to ``max_iter`` (20) iterations with up to
``max_eval`` (25) evaluations, so 20 calls are up to 400 L-BFGS iterations, more than 100 steps of any
per-tensor optimizer; the iterates are compared after every call. Optax: 100 updates (one iteration
each). Relative error (max |a - e| / max |e| per parameter) <= 1e-10 at every step.

Also: the torch class is a ``torch.optim.Optimizer`` with torch's one-group rule; the JAX
transformation is an ``optax.GradientTransformationExtraArgs`` that runs under ``jax.jit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import least_squares_problem, optax_loop_step, quadratic_plus_cos_value

RTOL = 1e-10
TORCH_CALLS = 20
OPTAX_STEPS = 100


def _problem() -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    return least_squares_problem(11)


_numpy_closure = quadratic_plus_cos_value(*_problem()[1:])


def _lossbridge_path(convention: str, native: dict[str, Any], steps: int) -> tuple[list[list[np.ndarray]], list[float]]:
    opt = lossbridge.get("lbfgs", backend="numpy", convention=convention, **native)
    params = [p.copy() for p in _problem()[0]]
    path, losses = [], []
    for _ in range(steps):
        losses.append(opt.step(params, _numpy_closure))
        path.append([p.copy() for p in params])
    return path, losses


def _assert_same(actual: list[list[np.ndarray]], expected: list[list[np.ndarray]]) -> None:
    assert len(actual) == len(expected)
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        for k, (a, e) in enumerate(zip(got, want, strict=True)):
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= RTOL, f"step {t}, parameter {k}: relative error {err:.3g}"


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", name="torch")
def torch_module() -> Any:
    return pytest.importorskip("torch")


def _torch_path(torch: Any, cls: Any, native: dict[str, Any]) -> tuple[list[list[np.ndarray]], list[float]]:
    start, mats, targets = _problem()
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start]
    mats_t = [torch.tensor(a) for a in mats]
    targets_t = [torch.tensor(b) for b in targets]
    opt = cls(params, **native)

    def closure() -> Any:
        opt.zero_grad()
        loss = sum(
            0.5 * torch.mean((a @ p - b) ** 2) + 0.1 * torch.sum(torch.cos(2 * p))
            for p, a, b in zip(params, mats_t, targets_t, strict=True)
        )
        loss.backward()
        return loss

    path, losses = [], []
    for _ in range(TORCH_CALLS):
        losses.append(float(opt.step(closure).detach()))
        path.append([p.detach().numpy().copy() for p in params])
    return path, losses


TORCH_CASES = [
    {},
    {"line_search_fn": "strong_wolfe"},
    {"history_size": 3, "line_search_fn": "strong_wolfe"},
    {"history_size": 3, "lr": 0.5, "max_iter": 5},
    {"lr": 0.8, "max_iter": 7, "max_eval": 9, "tolerance_grad": 1e-5, "tolerance_change": 1e-7,
     "line_search_fn": "strong_wolfe", "history_size": 4},
]


@pytest.mark.parametrize("native", TORCH_CASES, ids=lambda n: "-".join(f"{k}={v}" for k, v in n.items()) or "default")
def test_torch_lbfgs_matches_torch_optim(torch, native) -> None:
    expected, expected_losses = _torch_path(torch, torch.optim.LBFGS, native)
    actual, losses = _lossbridge_path("torch", native, TORCH_CALLS)
    _assert_same(actual, expected)
    np.testing.assert_allclose(losses, expected_losses, rtol=RTOL)


@pytest.mark.parametrize("native", TORCH_CASES[:3], ids=["default", "strong_wolfe", "history3"])
def test_torch_lbfgs_class_matches_torch_optim(torch, native) -> None:
    # lossbridge's torch optimizer class, step(closure) as torch's: the same iterates
    cls = lossbridge.get("LBFGS", backend="torch", convention="torch")
    assert issubclass(cls, torch.optim.Optimizer)
    expected, expected_losses = _torch_path(torch, torch.optim.LBFGS, native)
    actual, losses = _torch_path(torch, cls, native)
    _assert_same(actual, expected)
    np.testing.assert_allclose(losses, expected_losses, rtol=RTOL)


def test_torch_lbfgs_state_dict_is_a_snapshot_and_a_loaded_state_is_owned(torch) -> None:
    # the memory is written in place (one row per kept pair): a state_dict taken earlier does not change, an
    # optimizer loading it does not write into it or into the saving optimizer, and a state_dict of the
    # layout before the ring buffer (rows oldest first, no head) continues the same run
    import copy

    cls = lossbridge.get("LBFGS", backend="torch", convention="torch")
    native = {"history_size": 3, "max_iter": 4}
    start, mats, targets = _problem()
    closure_np = quadratic_plus_cos_value(mats, targets)

    def run(opt: Any, params: list[Any], calls: int) -> list[np.ndarray]:
        def closure() -> Any:
            value, grads = closure_np([p.detach().numpy() for p in params])
            for p, g in zip(params, grads, strict=True):
                p.grad = torch.tensor(g)
            return torch.tensor(value)

        for _ in range(calls):
            opt.step(closure)
        return [p.detach().numpy().copy() for p in params]

    params = [torch.tensor(p, requires_grad=True) for p in start]
    saver = cls(params, **native)
    at_save = run(saver, params, 3)
    saved = saver.state_dict()
    frozen = copy.deepcopy(saved)
    expected = run(saver, params, 3)  # the saver continues: its memory rows change in place
    head = int(frozen["state"][0]["head"])
    old_layout = copy.deepcopy(frozen)
    for k in ("s_mem", "y_mem", "rho"):
        old_layout["state"][0][k] = torch.roll(old_layout["state"][0][k], -head, dims=0)
    del old_layout["state"][0]["head"]
    for sd in (saved, old_layout):
        resumed = [torch.tensor(p, requires_grad=True) for p in at_save]
        loader = cls(resumed, **native)
        loader.load_state_dict(sd)
        got = run(loader, resumed, 3)
        for a, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, e)
    for k, v in frozen["state"][0].items():  # the state_dict taken at step 3 is as it was
        assert torch.equal(saved["state"][0][k], v), k


def test_torch_lbfgs_refuses_param_groups_as_torch_does(torch) -> None:
    cls = lossbridge.get("LBFGS", backend="torch", convention="torch")
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        cls([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="parameter groups"):
        torch.optim.LBFGS([{"params": [a]}, {"params": [b]}])


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", name="optax")
def optax_module() -> Any:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _jax_objective(jnp: Any) -> Any:
    _, mats, targets = _problem()

    def f(params: list[Any]) -> Any:
        return sum(
            0.5 * jnp.mean((jnp.asarray(a) @ p - jnp.asarray(b)) ** 2) + 0.1 * jnp.sum(jnp.cos(2 * p))
            for p, a, b in zip(params, mats, targets, strict=True)
        )

    return f


def _optax_path(optax: Any, tx: Any, line_search: bool) -> list[list[np.ndarray]]:
    import jax
    import jax.numpy as jnp

    f = _jax_objective(jnp)
    params = [jnp.asarray(p) for p in _problem()[0]]
    state = tx.init(params)
    value_and_grad = optax.value_and_grad_from_state(f) if line_search else None

    @jax.jit
    def step(params: Any, state: Any) -> Any:
        if line_search:
            value, grad = value_and_grad(params, state=state)
            updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        else:
            grad = jax.grad(f)(params)
            updates, state = tx.update(grad, state, params)
        return optax.apply_updates(params, updates), state

    path = []
    for _ in range(OPTAX_STEPS):
        params, state = step(params, state)
        path.append([np.asarray(p) for p in params])
    return path


OPTAX_CASES = [
    ({}, True),
    ({"memory_size": 3}, True),
    ({"scale_init_precond": False}, True),
    # without a line search, optax.lbfgs stores negative-curvature pairs and a fixed lr >= 0.05 makes it
    # chaotic on the non-convex term (two runs 1e-16 apart diverge within 100 steps): a stable lr is used
    ({"linesearch": None, "learning_rate": 0.02}, False),
    ({"linesearch": None, "learning_rate": 0.02, "memory_size": 4}, False),
]


_REFERENCE: dict[str, list[list[np.ndarray]]] = {}


def _optax_reference(optax: Any, native: dict[str, Any], line_search: bool) -> list[list[np.ndarray]]:
    """optax.lbfgs's own path (computed once per case: compiling the line search's loops takes seconds)."""
    key = repr(sorted(native.items()))
    if key not in _REFERENCE:
        _REFERENCE[key] = _optax_path(optax, optax.lbfgs(**native), line_search)
    return _REFERENCE[key]


@pytest.mark.parametrize(("native", "line_search"), OPTAX_CASES,
                         ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else "")
def test_optax_lbfgs_matches_optax(optax, native, line_search) -> None:
    expected = _optax_reference(optax, native, line_search)
    actual, _ = _lossbridge_path("optax", native, OPTAX_STEPS)
    _assert_same(actual, expected)


@pytest.mark.parametrize(("native", "line_search"), [OPTAX_CASES[0], OPTAX_CASES[3]], ids=["zoom", "no_linesearch"])
def test_optax_lbfgs_transformation_in_optax_loop_under_jit(optax, native, line_search) -> None:
    # lossbridge's JAX transformation in Optax's documented loop (value_and_grad_from_state, jit)
    tx = lossbridge.get("lbfgs", backend="jax", convention="optax", **native)
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    expected = _optax_reference(optax, native, line_search)
    actual = _optax_path(optax, tx, line_search)
    _assert_same(actual, expected)


# -- the same spec on every backend that runs it (the conformance kit skips closure-step specs) -----
# Each side evaluates the SAME objective numbers (NumPy's, or one jitted JAX function), so what is
# compared is the spec's arithmetic on each backend's namespace.
CROSS_RTOL = 1e-12
#: JAX: XLA's CPU code contracts a * b + c into fused multiply-adds inside the jitted loops (one rounding
#: where NumPy and torch round twice); over a step's up to 20 line-search evaluations (and 20 iterations
#: under the torch convention) this reaches a few 1e-12 relative
JAX_CROSS_RTOL = 1e-11
#: Optax-convention updates compared across backends: not a framework oracle (test_optax_lbfgs_matches_optax
#: runs Optax's 100). Measured over 100: the largest difference is within the first 40 in both cases (zoom:
#: 1.4e-12 at update 17, then <= 1.8e-15; fixed step: 1.3e-14 at update 35, then <= 7.6e-15), so 40 keep the
#: check and leave the test's time to the compile of its step
CROSS_OPTAX_STEPS = 40


def _numpy_path(convention: str | None, native: dict[str, Any], steps: int, closure: Any) -> list[list[np.ndarray]]:
    opt = lossbridge.get("lbfgs", backend="numpy", convention=convention, **native)
    params = [p.copy() for p in _problem()[0]]
    path = []
    for _ in range(steps):
        opt.step(params, closure)
        path.append([p.copy() for p in params])
    return path


def _assert_cross(actual: list[list[Any]], expected: list[list[np.ndarray]], rtol: float = CROSS_RTOL) -> None:
    for t, (a, e) in enumerate(zip(actual, expected, strict=True), start=1):
        for k, (x, y) in enumerate(zip(a, e, strict=True)):
            err = np.max(np.abs(np.asarray(x) - y)) / np.max(np.abs(y))
            assert err <= rtol, f"step {t}, parameter {k}: {err:.3g}"


@pytest.mark.parametrize("convention", [None, "torch"])
def test_torch_lbfgs_numpy_and_torch_backends_agree(torch, convention) -> None:
    native = {"line_search_fn": "strong_wolfe", "history_size": 5} if convention == "torch" else {"history_size": 5}
    cls = lossbridge.get("lbfgs", backend="torch", convention=convention, **native)
    params = [torch.tensor(p, requires_grad=True) for p in _problem()[0]]
    opt = cls(params)

    def closure() -> Any:  # NumPy's numbers, handed to torch
        value, grads = _numpy_closure([p.detach().numpy() for p in params])
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.tensor(g)
        return torch.tensor(value)

    on_torch = []
    for _ in range(TORCH_CALLS):
        opt.step(closure)
        on_torch.append([p.detach().numpy().copy() for p in params])
    _assert_cross(on_torch, _numpy_path(convention, native, TORCH_CALLS, _numpy_closure))


@pytest.mark.parametrize(("convention", "native", "steps"), [
    ("optax", {}, CROSS_OPTAX_STEPS),
    ("optax", {"linesearch": None, "learning_rate": 0.02}, CROSS_OPTAX_STEPS),
    ("torch", {"line_search_fn": "strong_wolfe", "history_size": 5}, 10),
    # no line search: the last of max_iter iterations moves x without evaluating it, so the state's value must
    # read as unknown, or value_and_grad_from_state hands the next step a stale gradient (a 1e-8 drift).
    # lr 0.5: with torch's lr 1 the non-convex transient at steps 3-5 amplifies XLA's and NumPy's different
    # rounding to 1.4e-11 before both converge to 1e-14
    ("torch", {"history_size": 5, "max_iter": 5, "lr": 0.5}, 10),
    (None, {}, 5),
], ids=["optax-zoom", "optax-fixed", "torch-strong_wolfe", "torch-fixed", "default"])
def test_optax_lbfgs_numpy_and_jax_backends_agree(optax, convention, native, steps) -> None:
    import jax
    import jax.numpy as jnp

    tx = lossbridge.get("lbfgs", backend="jax", convention=convention, **native)
    f = _jax_objective(jnp)
    jitted = jax.jit(jax.value_and_grad(f))

    def value_fn_numbers(params: Any) -> Any:  # the same compiled objective for both sides
        return jax.pure_callback(
            lambda *ps: jitted(list(ps))[0], jax.ShapeDtypeStruct((), jnp.float64), *params
        )

    @jax.custom_jvp
    def value_fn(params: Any) -> Any:
        return value_fn_numbers(params)

    @value_fn.defjvp
    def _jvp(primals: Any, tangents: Any) -> Any:
        (params,), (dirs,) = primals, tangents
        grads = jax.pure_callback(lambda *ps: jitted(list(ps))[1], [jax.ShapeDtypeStruct(p.shape, p.dtype)
                                                                     for p in params], *params)
        return value_fn(params), sum(jnp.sum(g * d) for g, d in zip(grads, dirs, strict=True))

    def numpy_closure(params: list[np.ndarray]) -> Any:
        value, grads = jitted([jnp.asarray(p) for p in params])
        return float(value), [np.asarray(g) for g in grads]

    params = [jnp.asarray(p) for p in _problem()[0]]
    state = tx.init(params)
    step = optax_loop_step(tx, value_fn)
    on_jax = []
    for _ in range(steps):
        params, state = step(params, state)
        on_jax.append(params)
    _assert_cross(on_jax, _numpy_path(convention, native, steps, numpy_closure), JAX_CROSS_RTOL)


def test_keras_lbfgs_is_refused_on_the_tensorflow_backend() -> None:
    pytest.importorskip("tensorflow")
    with pytest.raises(lossbridge.BackendError, match="closure_step"):
        lossbridge.get("lbfgs", backend="tensorflow")
