"""Shared trajectory helpers of the NumPy optimizer tests.

Each test module keeps its own problem (start point and gradient) and its own textbook rules; this
module only runs them: a textbook rule tensor by tensor, lossbridge's optimizer on the same problem,
and the per-tensor relative-error check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]
Grad = Callable[[Params], Params]
#: ``rule(param, grad, state, t) -> new param``: a textbook update, ``t`` 1-based, ``state`` a per-tensor dict
Rule = Callable[[np.ndarray, np.ndarray, dict[str, Any], int], np.ndarray]


def textbook_run(
    rule: Rule, start: Params, grad: Grad, steps: int, *, lr_at: Callable[[int], float] | None = None,
    states: dict[str, dict[str, Any]] | None = None, every: list[Params] | None = None,
) -> Params:
    """``steps`` iterates of ``rule`` from ``start``. ``lr_at(t)`` is put in each tensor's state as ``"lr"``
    before step ``t``; ``states`` (filled in place) exposes the rules' states; ``every`` collects each iterate."""
    params = {k: v.copy() for k, v in start.items()}
    states = {k: {} for k in params} if states is None else states
    for k in params:
        states.setdefault(k, {})
    for t in range(1, steps + 1):
        grads = grad(params)
        for k in params:
            if lr_at is not None:
                states[k]["lr"] = lr_at(t)
        params = {k: rule(params[k], grads[k], states[k], t) for k in params}
        if every is not None:
            every.append(params)
    return params


def lossbridge_run(
    opt: Any, start: Params, grad: Grad, steps: int, *, lr_at: Callable[[int], float | None] | None = None,
    every: list[Params] | None = None,
) -> Params:
    """``steps`` steps of the NumPy optimizer ``opt`` from ``start``; before step ``t``, ``lr_at(t)`` (when it is
    not None) is set as the learning rate; ``every`` collects a copy of each iterate."""
    params = {k: v.copy() for k, v in start.items()}
    for t in range(1, steps + 1):
        lr = None if lr_at is None else lr_at(t)
        if lr is not None:
            opt.set_hyper(lr=lr)
        opt.step(params, grad(params))
        if every is not None:
            every.append({k: v.copy() for k, v in params.items()})
    return params


def assert_close(actual: Params, expected: Params, rtol: float, *, label: str = "") -> None:
    """Every tensor within ``rtol`` of the expected one, relative to its largest magnitude."""
    for k in expected:
        err = np.max(np.abs(actual[k] - expected[k])) / np.max(np.abs(expected[k]))
        assert err <= rtol, f"{label}{k}: relative error {err:.3g}"
