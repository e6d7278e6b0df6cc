"""Every registered spec runs unchanged on tf.Tensor through the namespace, and agrees with array-api-strict.

Losses: the spec's unreduced values, the shared reduction with sample weights, and the gradient by
``tf.GradientTape`` against central finite differences of the array-api-strict run (float64).
Optimizers: ``init`` and several ``update`` steps, eagerly and compiled by XLA with the
hyperparameters as tensors (as the Keras adapter passes them), state and increments compared at
every step. Inputs come from each spec's own input domains, including their edge values.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import array_api_strict as xs
import numpy as np
import pytest
import tensorflow as tf
from lossbridge_tensorflow import array_api as xp

import lossbridge
from lossbridge.bound import BoundLoss, BoundOptimizer, bind
from lossbridge.spec import LossSpec, OptimizerSpec, domain

SPECS = [lossbridge.spec(entry.name) for entry in lossbridge.catalog() if entry.distribution == "lossbridge"]
LOSSES = [s for s in SPECS if isinstance(s, LossSpec)]
# specs with state shared by all tensors (Prodigy) update through BoundOptimizer.update_all, not the
# per-tensor update these tests call: tests/test_tf_global_optim.py and the kit cover them
# per-tensor updates fed gradients only (Keras refuses closure steps and steps with needs: see _optimizers.py)
OPTIMIZERS = [
    s for s in SPECS if isinstance(s, OptimizerSpec) and not s.global_slots and not s.needs and s.closure_step is None
]
RTOL = {"float32": 2e-5, "float64": 1e-11}


def _cases(specs: list[Any]) -> list[Any]:
    return [
        pytest.param(s, c, id=f"{s.name}-{c or 'lossbridge'}")
        for s in specs
        for c in (None, *sorted(s.conventions))
    ]


@pytest.fixture(autouse=True)
def _quiet_numpy() -> Any:
    with np.errstate(all="ignore"):
        yield


def _close(ours: Any, ref: Any, dtype: str, what: str) -> None:
    a, b = np.asarray(ours), np.asarray(ref)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3, equal_nan=True, err_msg=what)


def _loss_inputs(bound: BoundLoss, dtype: str, edge: bool, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (4, 5) if bound.spec.min_ndim <= 2 else (2, 3, 5)
    return [
        domain(i.domain_for(bound.params)).sample(rng, shape, np.dtype(dtype), edge)
        for i in bound.spec.inputs
    ]


def _dtype(spec: LossSpec, convention: str | None, dtype: str) -> dict[str, Any]:
    """A loss under a convention with a fixed compute dtype (Keras's float32) is built in ``dtype``."""
    conv = spec.conventions.get(convention) if convention else None
    return {"dtype": dtype} if conv is not None and conv.inputs and conv.inputs.compute_dtype else {}


def _pred_index(spec: LossSpec) -> int:
    return next(k for k, i in enumerate(spec.inputs) if i.differentiable)


@pytest.mark.parametrize("edge", (False, True), ids=("typical", "edge"))
@pytest.mark.parametrize("dtype", ("float32", "float64"))
@pytest.mark.parametrize(("spec", "convention"), _cases(LOSSES))
def test_loss_values_match_strict(spec: LossSpec, convention: str | None, dtype: str, edge: bool) -> None:
    bound = bind(spec, convention=convention, params=_dtype(spec, convention, dtype))
    assert isinstance(bound, BoundLoss)
    arrays = _loss_inputs(bound, dtype, edge)
    ours_in, _ = bound.prepare(xp, tuple(tf.constant(a) for a in arrays))
    ref_in, _ = bound.prepare(xs, tuple(xs.asarray(a) for a in arrays))
    _close(bound.values(xp, *ours_in), bound.values(xs, *ref_in), dtype, f"{spec.name} values")
    weight = np.linspace(0.5, 2.0, arrays[_pred_index(spec)].shape[0]).astype(dtype)
    ours = bound(xp, *(tf.constant(a) for a in arrays), sample_weight=tf.constant(weight))
    ref = bound(xs, *(xs.asarray(a) for a in arrays), sample_weight=xs.asarray(weight))
    _close(ours, ref, dtype, f"{spec.name} weighted {bound.reduction}")


@pytest.mark.parametrize(("spec", "convention"), _cases(LOSSES))
def test_loss_values_under_xla(spec: LossSpec, convention: str | None) -> None:
    bound = bind(spec, convention=convention, params=_dtype(spec, convention, "float64"))
    assert isinstance(bound, BoundLoss)
    arrays = _loss_inputs(bound, "float64", edge=False, seed=1)
    compiled = tf.function(lambda *t: bound.values(xp, *t), jit_compile=True, autograph=False)
    ours = compiled(*bound.prepare(xp, tuple(tf.constant(a) for a in arrays))[0])
    ref = bound.values(xs, *bound.prepare(xs, tuple(xs.asarray(a) for a in arrays))[0])
    _close(ours, ref, "float64", f"{spec.name} values under XLA")


def _finite_diff(bound: BoundLoss, arrays: list[np.ndarray], k: int, h: float = 1e-6) -> np.ndarray:
    def f(x: np.ndarray) -> float:
        args = [xs.asarray(x if j == k else a) for j, a in enumerate(arrays)]
        return float(xs.sum(bound(xs, *args, check_values=False)))  # reduction may be 'none'

    out = np.zeros_like(arrays[k])
    for i in np.ndindex(out.shape):
        up, down = arrays[k].copy(), arrays[k].copy()
        up[i] += h
        down[i] -= h
        out[i] = (f(up) - f(down)) / (2 * h)
    return out


@pytest.mark.parametrize(("spec", "convention"), _cases(LOSSES))
def test_loss_gradient_by_tape_matches_finite_differences(spec: LossSpec, convention: str | None) -> None:
    bound = bind(spec, convention=convention, params=_dtype(spec, convention, "float64"))
    assert isinstance(bound, BoundLoss)
    arrays = _loss_inputs(bound, "float64", edge=False, seed=2)
    tensors = [tf.constant(a) for a in arrays]
    diff = [k for k, i in enumerate(spec.inputs) if i.differentiable]
    with tf.GradientTape() as tape:
        for k in diff:
            tape.watch(tensors[k])
        value = xp.sum(bound(xp, *tensors))
    grads = tape.gradient(value, [tensors[k] for k in diff])
    for k, g in zip(diff, grads, strict=True):
        expected = _finite_diff(bound, arrays, k)
        np.testing.assert_allclose(
            np.asarray(g), expected, rtol=1e-5, atol=1e-7, err_msg=f"d/d {spec.inputs[k].name}"
        )


# -- optimizers ---------------------------------------------------------------------------------------

STEPS = 5


def _trajectory(
    bound: BoundOptimizer, ns: Any, dtype: str, *, update: Any = None, hyper: Any = None
) -> list[Any]:
    """Parameters, increments and state after each of ``STEPS`` updates, as NumPy arrays."""
    rng = np.random.default_rng(5)
    param = ns.asarray(rng.normal(size=(3, 4)).astype(dtype))
    state = bound.init(param, xp=ns)
    update = update or (lambda p, g, s, step: bound.update(p, g, s, step=step, xp=ns, **(hyper or {})))
    out = []
    for k in range(1, STEPS + 1):
        grad = ns.asarray(rng.normal(size=(3, 4)).astype(dtype))
        delta, state = update(param, grad, state, ns.asarray(np.asarray(k, dtype=dtype)))
        param = param + delta
        out.append((np.asarray(param), np.asarray(delta), {n: np.asarray(v) for n, v in state.items()}))
    return out


def _compare(ours: list[Any], ref: list[Any], dtype: str, name: str, *, state: bool = True) -> None:
    for k, ((p, d, s), (rp, rd, rs)) in enumerate(zip(ours, ref, strict=True), start=1):
        _close(p, rp, dtype, f"{name} param after step {k}")
        _close(d, rd, dtype, f"{name} increment at step {k}")
        if not state:
            continue
        assert sorted(s) == sorted(rs), f"{name} state slots {sorted(s)} != {sorted(rs)}"
        for slot in s:
            _close(s[slot], rs[slot], dtype, f"{name} slot {slot!r} at step {k}")


@pytest.mark.parametrize("dtype", ("float32", "float64"))
@pytest.mark.parametrize(("spec", "convention"), _cases(OPTIMIZERS))
def test_optimizer_update_matches_strict(spec: OptimizerSpec, convention: str | None, dtype: str) -> None:
    bound = bind(spec, convention=convention)
    assert isinstance(bound, BoundOptimizer)
    _compare(_trajectory(bound, xp, dtype), _trajectory(bound, xs, dtype), dtype, spec.name)


@pytest.mark.parametrize(("spec", "convention"), _cases(OPTIMIZERS))
def test_optimizer_update_under_xla_with_tensor_hyperparameters(
    spec: OptimizerSpec, convention: str | None
) -> None:
    """As the Keras adapter runs it: one compiled step, numeric hyperparameters as tensors."""
    bound = bind(spec, convention=convention)
    assert isinstance(bound, BoundOptimizer)
    numeric = {p.name for p in spec.params if not p.static and isinstance(bound.hyper[p.name], float)}

    @tf.function(jit_compile=True, autograph=False)
    def step_fn(p: tf.Tensor, g: tf.Tensor, s: dict[str, tf.Tensor], step: tf.Tensor) -> Any:
        rounded = bound._rounded(bound.hyper)  # the convention's float32 rounding, done on floats
        tensors = {n: tf.constant(rounded[n], p.dtype) for n in numeric}
        return bound.update(p, g, s, step=step, xp=xp, **tensors)

    # state is not compared: a tensor hyperparameter equal to 0 still runs the slot's update
    # (specs only skip work for a Python 0), so e.g. sgd's momentum buffer fills; steps are equal.
    ours = _trajectory(bound, xp, "float64", update=step_fn)
    _compare(ours, _trajectory(bound, xs, "float64"), "float64", spec.name, state=False)


@pytest.mark.parametrize(("spec", "convention"), _cases(LOSSES))
def test_loss_traces_with_unknown_batch_size(spec: LossSpec, convention: str | None) -> None:
    """As ``model.fit`` traces it: the batch axis is None; values, weights and reduction still work."""
    bound = bind(spec, convention=convention, params=_dtype(spec, convention, "float64"))
    assert isinstance(bound, BoundLoss)
    arrays = _loss_inputs(bound, "float64", edge=False, seed=3)
    weight = np.linspace(0.5, 2.0, arrays[_pred_index(spec)].shape[0])
    signature = [tf.TensorSpec([None, *a.shape[1:]], a.dtype) for a in [*arrays, weight]]

    @tf.function(input_signature=signature, autograph=False)
    def loss(*tensors: tf.Tensor) -> tf.Tensor:
        *inputs, w = tensors
        return bound(xp, *inputs, sample_weight=w, check_values=False)

    ref = bound(xs, *(xs.asarray(a) for a in arrays), sample_weight=xs.asarray(weight))
    _close(loss(*(tf.constant(a) for a in [*arrays, weight])), ref, "float64", f"{spec.name} traced")
