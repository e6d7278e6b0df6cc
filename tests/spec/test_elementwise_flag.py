"""``OptimizerSpec.elementwise`` is a promise backends rely on: prove it for every spec that sets it.

A backend may run an elementwise spec's ``update`` ONCE over a whole param group flattened into one
vector (the torch adapter does, ``lossbridge_torch._flat``). That is right only if the update of the
concatenation is the concatenation of the per-tensor updates, bit for bit, with 0-d slots shared
(equal for every tensor at one step). Here, on NumPy in float64, for several steps, with the
defaults and with the structural variants (weight decay, AMSGrad, Nesterov, momentum, centered).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

SHAPES = [(3, 4), (5,), (2, 3, 2), (1,)]
#: variants tried where the spec has the parameter (each alone)
VARIANTS: list[dict[str, Any]] = [
    {"weight_decay": 0.1},
    {"amsgrad": True},
    {"nesterov": True, "momentum": 0.9},
    {"momentum": 0.9},
    {"centered": True},
]
#: the elementwise optimizers torch.optim also has: they must keep the flag
CORE = {"adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam", "lion"}
#: optimizers with a norm, mean or shape-dependent state: they must not set it
NOT_ELEMENTWISE = {"lamb", "lars", "novograd", "fromage", "sm3", "adafactor", "muon"}


def _optimizers() -> list[str]:
    return sorted(e.name for e in lossbridge.catalog() if e.kind == "optimizer")


def _flagged() -> list[str]:
    return [n for n in _optimizers() if lossbridge.get(n).bound.spec.elementwise]


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name in _flagged():
        names = {p.name for p in lossbridge.get(name).bound.spec.params}
        cases.append((name, {}))
        cases += [(name, v) for v in VARIANTS if set(v) <= names]
    return cases


def _flatten_state(states: list[dict[str, Any]], params: list[np.ndarray]) -> dict[str, Any]:
    flat = {}
    for k in states[0]:
        values = [s[k] for s in states]
        if all(np.ndim(v) == 0 for v in values):
            assert all(np.array_equal(v, values[0]) for v in values), f"0-d slot {k} differs between tensors"
            flat[k] = values[0]
        else:
            shapes = [np.shape(v) for v in values]
            assert shapes == [p.shape for p in params], f"slot {k} is not shaped like the parameters: {shapes}"
            flat[k] = np.concatenate([np.ravel(v) for v in values])
    return flat


def test_flag_set_where_expected() -> None:
    flagged = set(_flagged())
    assert CORE <= flagged, f"missing the elementwise flag: {sorted(CORE - flagged)}"
    assert not (NOT_ELEMENTWISE & flagged), f"flagged but not elementwise: {sorted(NOT_ELEMENTWISE & flagged)}"


def test_flagged_specs_have_no_global_state() -> None:
    for name in _flagged():
        spec = lossbridge.get(name).bound.spec
        assert not spec.global_slots, name


@pytest.mark.parametrize(("name", "variant"), _cases(), ids=lambda v: str(v) if isinstance(v, dict) else v)
def test_update_of_concatenation_is_concatenation_of_updates(name: str, variant: dict[str, Any]) -> None:
    bound = lossbridge.get(name, **variant).bound
    rng = np.random.default_rng(7)
    params = [rng.normal(size=s) for s in SHAPES]
    states = [bound.init(p, xp=np) for p in params]
    flat_param = np.concatenate([p.ravel() for p in params])
    flat_state = _flatten_state(states, params)
    for t in range(1, 6):
        grads = [rng.normal(size=s) for s in SHAPES]
        step = np.asarray(float(t))
        outs = [bound.update(p, g, s, step=step, xp=np) for p, g, s in zip(params, grads, states, strict=True)]
        flat_grad = np.concatenate([g.ravel() for g in grads])
        delta, new = bound.update(flat_param, flat_grad, flat_state, step=step, xp=np)
        expected = np.concatenate([np.broadcast_to(d, p.shape).ravel() for (d, _), p in zip(outs, params, strict=True)])
        np.testing.assert_array_equal(np.broadcast_to(delta, expected.shape), expected, err_msg=f"delta, step {t}")
        per_tensor = [s for _, s in outs]
        assert set(new) == set(per_tensor[0])
        np.testing.assert_equal(_flatten_state(per_tensor, params), dict(new), err_msg=f"state, step {t}")
        params = [p + d for p, (d, _) in zip(params, outs, strict=True)]
        states = per_tensor
        flat_param = flat_param + delta
        flat_state = new
