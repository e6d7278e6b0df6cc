"""ADOPT, AdEMAMix, simplified AdEMAMix and MADGRAD against the real ``optax.contrib`` in float64 (JAX x64).

Each case runs 100 float64 steps of the least-squares problem plus a non-convex term
(``_optimizer_oracle.least_squares``); every run computes its gradients from its own iterates, and
every iterate must agree to 1e-10 relative. The Optax side is ``optax.contrib.<name>(**native)``,
through ``inject_hyperparams`` (so one case per optimizer can change the learning rate after step 50)
or called plainly; lossbridge runs on the NumPy backend under ``convention="optax"`` with the same
native keyword arguments (``learning_rate``, ``b1``, ``b2``, ``b3``). None of these optimizers is in
``torch.optim`` 2.13 or ``keras.optimizers`` 3.15, so Optax is the only framework oracle.

Facts pinned here: MADGRAD's step weight ``(lr + eps) * sqrt(count + 1)`` takes the square root of
an int32 count in float32, so with a Python-float ``learning_rate`` the whole weight is float32 (the
convention's default) and with an array learning rate (``inject_hyperparams``) only the root is
(``step_weight_dtype="sqrt_float32"``). ``inject_hyperparams`` would treat ADOPT's callable
``clip_value_fn`` as a schedule, so it is passed as a static argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import (
    LossbridgeSteps,
    OptaxSteps,
    Trajectory,
    assert_same,
    case_ids,
    least_squares,
    optax_module,
    trajectory,
)


@pytest.fixture(scope="module", name="optax")
def optax_fixture() -> Iterator[Any]:
    yield from optax_module()


class Case(NamedTuple):
    name: str  # the optax.contrib function
    native: dict[str, Any]  # its keyword arguments (the lossbridge side gets them too, unless ``ours``)
    ours: dict[str, Any] | None = None  # lossbridge's keyword arguments when they differ
    new_lr: float | None = None  # set after LR_CHANGE_STEP steps (both sides)


def _pow0(count: Any) -> Any:
    return count**0.0  # a clipping bound of 1, which binds on this problem (x**0.25 does not)


_SQRT32 = {"step_weight_dtype": "sqrt_float32"}  # an injected (array) learning rate: only sqrt(t) is float32
_MADGRAD_WD = {"learning_rate": 0.01, "momentum": 0.5, "weight_decay": 0.1, "eps": 1e-4}
_ADEMAMIX_ALL = {
    "learning_rate": 0.01, "b1": 0.8, "b2": 0.99, "b3": 0.99, "alpha": 3.0, "eps": 1e-6, "eps_root": 1e-8,
    "weight_decay": 0.1,
}  # fmt: skip
INJECTED = [
    Case("adopt", {"learning_rate": 0.01}),
    Case("adopt", {"learning_rate": 0.01, "b1": 0.8, "b2": 0.99, "eps": 1e-4}),
    Case("adopt", {"learning_rate": 0.01, "nesterov": True}),
    Case("adopt", {"learning_rate": 0.01, "use_clipping": False}),
    Case("adopt", {"learning_rate": 0.01, "clip_value_fn": _pow0}, {"learning_rate": 0.01, "clip_exponent": 0.0}),
    Case("adopt", {"learning_rate": 0.01}, new_lr=0.02),
    Case("ademamix", {"learning_rate": 0.01}),
    Case("ademamix", _ADEMAMIX_ALL),
    Case("ademamix", {"learning_rate": 0.01}, new_lr=0.02),
    Case("simplified_ademamix", {"learning_rate": 1e-3}),
    Case("simplified_ademamix", {"learning_rate": 2e-3, "b1": 0.9, "b2": 0.99, "alpha": 2.0, "weight_decay": 0.1}),
    Case("simplified_ademamix", {"learning_rate": 1e-3}, new_lr=5e-4),
    Case("madgrad", {"learning_rate": 0.01}, {"learning_rate": 0.01, **_SQRT32}),
    Case("madgrad", _MADGRAD_WD, {**_MADGRAD_WD, **_SQRT32}),
    Case("madgrad", {"learning_rate": 0.01}, {"learning_rate": 0.01, **_SQRT32}, new_lr=0.02),
]
PLAIN = [
    Case("adopt", {"learning_rate": 0.01}),
    Case("ademamix", {"learning_rate": 0.01, "b3": 0.999}),
    Case("simplified_ademamix", {"learning_rate": 1e-3, "alpha": 1.0}),
    Case("madgrad", {"learning_rate": 0.01}),  # a Python-float lr: the whole step weight is float32
    Case("madgrad", _MADGRAD_WD),
]


class StrongLrSteps(OptaxSteps):
    """Sets a new learning rate as a strongly typed float64 array, as ``inject_hyperparams`` stores it.

    A weakly typed ``jnp.asarray(python_float)`` would turn MADGRAD's float64-times-float32 step weight
    into float32 from then on, which is the plain-call behaviour, not the injected one.
    """

    def set_lr(self, lr: float) -> None:
        self.state.hyperparams["learning_rate"] = self.jnp.asarray(lr, dtype=self.jnp.float64)


def _lossbridge(case: Case, **extra: Any) -> Trajectory:
    start, grad = least_squares()
    opt = lossbridge.get(case.name, convention="optax", **(case.native if case.ours is None else case.ours), **extra)
    return trajectory(LossbridgeSteps(opt, start), start, grad, case.new_lr)


def _optax(tx: Any, new_lr: float | None = None, *, jit: bool = True) -> Trajectory:
    start, grad = least_squares()
    return trajectory(StrongLrSteps(pytest.importorskip("optax"), tx, start, jit=jit), start, grad, new_lr)


def _injected(optax: Any, case: Case) -> Any:
    static = ("clip_value_fn",) if case.name == "adopt" else ()  # a callable: not a schedule
    return optax.inject_hyperparams(getattr(optax.contrib, case.name), static_args=static)(**case.native)


@pytest.mark.parametrize("case", INJECTED, ids=case_ids(INJECTED))
def test_optax_contrib_injected(optax: Any, case: Case) -> None:
    assert_same(_lossbridge(case), _optax(_injected(optax, case), case.new_lr))


@pytest.mark.parametrize("case", PLAIN, ids=case_ids(PLAIN))
def test_optax_contrib_plain_call(optax: Any, case: Case) -> None:
    assert_same(_lossbridge(case), _optax(getattr(optax.contrib, case.name)(**case.native)))


def test_optax_madgrad_exact_step_weight_misses_optax(optax: Any) -> None:
    """Why the convention rounds: exact float64 step weights miss optax by far more than 1e-10."""
    case = PLAIN[-1]
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(_lossbridge(case, step_weight_dtype=None), _optax(optax.contrib.madgrad(**case.native)))


def _alpha(count: Any) -> Any:
    return 5.0 * np.minimum(np.asarray(count, dtype=np.float64), 50.0) / 50.0


def _beta_3(count: Any) -> Any:
    return 0.9 + 0.099 * np.minimum(np.asarray(count, dtype=np.float64), 50.0) / 50.0


def test_optax_ademamix_alpha_and_b3_schedules(optax: Any) -> None:
    """Schedules of the update count as ``alpha`` and ``b3``, called by both sides with the count so far.

    They are float64 functions written here: ``optax.linear_schedule`` returns float32 for Optax's int32
    count even under x64 (0.9 comes back as 0.90000004), which is the schedule's convention, not AdEMAMix's.
    """
    tx = optax.contrib.ademamix(learning_rate=0.01, alpha=_alpha, b3=_beta_3)
    case = Case("ademamix", {"learning_rate": 0.01, "alpha": _alpha, "b3": _beta_3})
    assert_same(_lossbridge(case), _optax(tx, jit=False))  # NumPy schedules: not traceable


JAX_BACKEND = [PLAIN[0], PLAIN[3]]  # ADOPT (its first-step special case) and MADGRAD (its float32 step weight)


@pytest.mark.parametrize("case", JAX_BACKEND, ids=case_ids(JAX_BACKEND))
def test_optax_jax_backend_is_a_matching_gradient_transformation(optax: Any, case: Case) -> None:
    """``lossbridge.get(name, backend="jax", convention="optax", ...)`` is an Optax transformation that
    matches ``optax.contrib`` step for step, jitted, and chains with Optax's own transforms."""
    import jax

    ours = lossbridge.get(case.name, backend="jax", convention="optax", **case.native)
    assert isinstance(ours, optax.GradientTransformation)
    theirs = getattr(optax.contrib, case.name)(**case.native)
    start, grad = least_squares()
    actual = trajectory(OptaxSteps(optax, ours, start, jit=True), start, grad)
    assert_same(actual, trajectory(OptaxSteps(optax, theirs, start, jit=True), start, grad))
    chained = optax.chain(optax.clip_by_global_norm(1.0), ours)
    updates, _ = jax.jit(chained.update)(grad(start), chained.init(start), start)
    assert all(np.all(np.isfinite(np.asarray(u))) for u in updates)


@pytest.mark.parametrize(
    ("name", "native", "expected"),
    [
        ("adopt", {"learning_rate": 0.1, "b1": 0.8, "b2": 0.99, "nesterov": True}, {"beta_1": 0.8, "beta_2": 0.99}),
        ("AdEMAMix", {"learning_rate": 0.1, "b3": 0.99, "alpha": 8.0}, {"beta_3": 0.99, "alpha": 8.0}),
        ("simplified-ademamix", {"learning_rate": 0.1, "b1": 0.9}, {"beta_1": 0.9, "alpha": 0.0}),
        ("MADGRAD", {"learning_rate": 0.1, "momentum": 0.5}, {"momentum": 0.5, "step_weight_dtype": "float32"}),
    ],
)
def test_optax_native_names_and_keywords(name: str, native: dict[str, Any], expected: dict[str, Any]) -> None:
    opt = lossbridge.get(name, convention="optax", **native)
    assert opt.hyper["lr"] == 0.1
    assert {k: opt.hyper[k] for k in expected} == expected
