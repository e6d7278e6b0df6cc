"""Prodigy and D-Adapt AdamW against the real ``optax.contrib`` in float64 (JAX x64).

Both need a sum over ALL parameter tensors (the spec model's ``global_slots``); the problem has two
tensors (a vector and a matrix), so a per-tensor implementation would diverge. Each case runs 100
float64 steps of the least-squares problem plus a non-convex term (``_optimizer_oracle.least_squares``),
every run on its own iterates, and every iterate must agree to 1e-10 relative. The Optax side is
``optax.contrib.<name>(**native)`` through ``inject_hyperparams`` (``betas`` and ``safeguard_warmup``
static), so one case per optimizer changes the learning rate after step 50; lossbridge runs on the
NumPy backend under ``convention="optax"`` with the same native keyword arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

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
    native: dict[str, Any]
    new_lr: float | None = None


CASES = [
    Case("prodigy", {}),
    Case("prodigy", {"learning_rate": 0.5}, new_lr=0.1),
    Case("prodigy", {"betas": (0.8, 0.99), "beta3": 0.9, "eps": 1e-6, "estim_lr0": 1e-3, "estim_lr_coef": 0.5,
                     "weight_decay": 0.1}),
    Case("prodigy", {"safeguard_warmup": True, "weight_decay": 0.01}),
    Case("dadapt_adamw", {}),
    Case("dadapt_adamw", {"learning_rate": 0.5}, new_lr=0.1),
    Case("dadapt_adamw", {"betas": (0.8, 0.99), "eps": 1e-6, "estim_lr0": 1e-3, "weight_decay": 0.1}),
]


def _optax(optax: Any, case: Case) -> Trajectory:
    start, grad = least_squares()
    fn = getattr(optax.contrib, case.name)
    static = tuple(k for k in ("betas", "safeguard_warmup") if k in case.native)
    tx = optax.inject_hyperparams(fn, static_args=static)(**case.native)
    return trajectory(OptaxSteps(optax, tx, start), start, grad, case.new_lr)


def _ours(case: Case) -> Trajectory:
    start, grad = least_squares()
    opt = lossbridge.get(case.name, convention="optax", **case.native)
    return trajectory(LossbridgeSteps(opt, start), start, grad, case.new_lr)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_optax_global_optimizer(optax: Any, case: Case) -> None:
    assert_same(_ours(case), _optax(optax, case))


def test_optax_global_state_matches(optax: Any) -> None:
    """d and the weighted numerator after 100 steps equal Optax's estim_lr / numerator_weighted."""
    import numpy as np

    start, grad = least_squares()
    for name in ("prodigy", "dadapt_adamw"):
        opt = lossbridge.get(name, convention="optax")
        steps = LossbridgeSteps(opt, start)
        trajectory(steps, start, grad)
        tx = getattr(optax.contrib, name)()
        theirs = OptaxSteps(optax, tx, start)
        trajectory(theirs, start, grad)
        glob = opt._state.glob
        np.testing.assert_allclose(glob["d"], float(theirs.state.estim_lr), rtol=1e-10)
        np.testing.assert_allclose(glob["numerator"], float(theirs.state.numerator_weighted), rtol=1e-10)
        assert float(glob["d"]) > 1e-6  # d actually adapted on this problem
