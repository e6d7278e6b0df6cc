"""The third oracle: under convention="keras", lossbridge matches keras.losses / keras.optimizers.

Every registered spec whose keras convention names a ``keras.losses.*`` / ``keras.optimizers.*``
class is compared with that class in float64: losses on values and input gradients, optimizers
over 100 steps of a least-squares problem with the same gradients fed to both (rel err <= 1e-10).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

import lossbridge
from lossbridge.spec import domain

TOL = 1e-10

#: spec parameter name -> Keras constructor argument, where they differ
KERAS_NAMES = {
    "lr": "learning_rate",
    "eps": "epsilon",
    "eps1": "epsilon_1",
    "eps2": "epsilon_2",
    "beta2_decay": "beta_2_decay",
}

#: extra non-default variants, (spec, params) - the default of every keras spec always runs
LOSS_VARIANTS = [
    ("binary_crossentropy", {"from_logits": True}),
    ("binary_crossentropy", {"label_smoothing": 0.1}),
    ("categorical_crossentropy", {"from_logits": True}),
    ("categorical_crossentropy", {"label_smoothing": 0.2}),
    ("sparse_categorical_crossentropy", {"from_logits": True}),
    ("huber", {"delta": 0.5}),
]
OPTIMIZER_VARIANTS = [
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.5, "weight_decay": 0.01}),
    ("adam", {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99}),
    ("adam", {"amsgrad": True}),
    ("adam", {"weight_decay": 0.01}),
    ("adamw", {"weight_decay": 0.05}),
    ("lamb", {"lr": 0.01}),
]

#: Keras defaults that Keras itself cannot run in float64: Muon's rms_rate=0.2 multiplies a float32
#: square root into float64 tensors (TypeError in Keras); tests/conventions covers the default in float32.
DEFAULT_CASE: dict[str, dict[str, Any]] = {"muon": {"rms_rate": None}}


def _keras_class(kind: str, name: str) -> Any | None:
    """The Keras class ``lossbridge.get(name, convention="keras")`` stands for (by Keras's own names)."""
    spec = lossbridge.spec(name)
    conv = spec.conventions.get("keras")
    prefix = f"keras.{'losses' if kind == 'loss' else 'optimizers'}."
    if conv is None or not conv.native.startswith(prefix):
        return None
    module = keras.losses if kind == "loss" else keras.optimizers
    key = lossbridge.registry.normalize(name)
    same = [n for n in conv.names if lossbridge.registry.normalize(n) == key and n[:1].isupper()]
    return getattr(module, same[0] if same else conv.native[len(prefix) :], None)


def _cases(kind: str, variants: list[tuple[str, dict[str, Any]]]) -> Iterator[Any]:
    names = sorted(c.name for c in lossbridge.catalog(kind=kind))
    for name in names:
        if _keras_class(kind, name) is None:
            continue
        if kind == "loss" and len(lossbridge.spec(name).inputs) != 2:
            continue  # CTC's padded-label form is tested against Keras in tests/conventions
        yield pytest.param(name, dict(DEFAULT_CASE.get(name, {})), id=f"{name}-default")
        for vname, params in variants:
            if vname == name:
                yield pytest.param(
                    name, params, id=f"{name}-" + "-".join(f"{k}={v}" for k, v in params.items())
                )


def _keras_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    return {KERAS_NAMES.get(k, k): v for k, v in params.items()}


# -- losses ---------------------------------------------------------------------------------------
def _loss_inputs(spec: Any, params: dict[str, Any], rng: np.random.Generator) -> list[np.ndarray]:
    resolved = lossbridge.get(spec.name, convention="keras", **params).bound.params
    shape = (8, 5)
    return [domain(i.domain_for(resolved)).sample(rng, shape, np.float64, False) for i in spec.inputs]


def _value_and_grad(fn: Any, y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None) -> tuple:
    pred = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(pred)
        value = fn(tf.constant(y_true), pred, sample_weight=None if weight is None else tf.constant(weight))
    return value.numpy(), tape.gradient(value, pred).numpy()


@pytest.mark.parametrize(("name", "params"), list(_cases("loss", LOSS_VARIANTS)))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_loss_matches_keras(name: str, params: dict[str, Any], weighted: bool) -> None:
    spec = lossbridge.spec(name)
    assert [i.role for i in spec.inputs][:2] == ["target", "prediction"]
    y_true, y_pred = _loss_inputs(spec, params, np.random.default_rng(len(name)))
    weight = np.random.default_rng(1).uniform(0.2, 2.0, size=8) if weighted else None
    native = _keras_class("loss", name)(**_keras_kwargs(params), dtype="float64")
    ours = lossbridge.get(name, backend="tensorflow", convention="keras", dtype="float64", **params)
    want_v, want_g = _value_and_grad(native, y_true, y_pred, weight)
    got_v, got_g = _value_and_grad(ours, y_true, y_pred, weight)
    np.testing.assert_allclose(got_v, want_v, rtol=TOL, atol=0)
    np.testing.assert_allclose(got_g, want_g, rtol=TOL, atol=TOL * np.abs(want_g).max())


@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_crossentropy_uses_logits_behind_softmax_like_keras(name: str) -> None:
    """Keras's TF backend reads ``_keras_logits`` of a softmax output; so must convention="keras"."""
    rng = np.random.default_rng(3)
    logits = tf.constant(rng.normal(size=(8, 5)) * 20.0)  # saturated: the probability path clips
    labels = rng.integers(0, 5, size=8)
    y_true = labels if name.startswith("sparse") else np.eye(5)[labels]
    probs = keras.activations.softmax(logits)
    assert hasattr(probs, "_keras_logits")
    native = _keras_class("loss", name)(dtype="float64")
    ours = lossbridge.get(name, backend="tensorflow", convention="keras", dtype="float64")
    want, got = native(y_true, probs).numpy(), ours(y_true, probs).numpy()
    np.testing.assert_allclose(got, want, rtol=TOL)
    plain = tf.identity(probs)  # no attached logits: the clipped probability path
    np.testing.assert_allclose(ours(y_true, plain).numpy(), native(y_true, plain).numpy(), rtol=TOL)
    assert abs(float(ours(y_true, plain)) - got) > 1e-3  # the two paths differ on these inputs

    @tf.function
    def graph(y: Any, z: Any) -> tuple[Any, Any]:
        p = tf.nn.softmax(z)  # a Softmax graph op: Keras uses its input as the logits
        return ours(y, p), native(y, p)

    g_ours, g_native = graph(tf.constant(y_true), logits)
    np.testing.assert_allclose(g_ours.numpy(), g_native.numpy(), rtol=TOL)


# -- optimizers -----------------------------------------------------------------------------------
def _least_squares_grads(a: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Gradients of 0.5 * mean ||a @ w + b - y||^2 with respect to w and b."""
    r = (a @ w + b - y) / len(a)
    return [a.T @ r, r.sum(axis=0)]


def _stepper(optimizer: Any, variables: list[Any]) -> Any:
    """``optimizer.apply`` on ``variables`` as one graph (built eagerly first, as model.fit does)."""
    optimizer.build(variables)
    step = tf.function(lambda grads: optimizer.apply(grads, variables))
    return lambda grads: step([tf.constant(g) for g in grads])


@pytest.mark.parametrize(("name", "params"), list(_cases("optimizer", OPTIMIZER_VARIANTS)))
def test_optimizer_matches_keras_100_steps(name: str, params: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    a, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 3))
    start = [rng.normal(size=(5, 3)), rng.normal(size=3)]
    native = _keras_class("optimizer", name)(**_keras_kwargs(params))
    ours = lossbridge.get(name, backend="tensorflow", convention="keras", **params)
    v_native = [keras.Variable(p, dtype="float64") for p in start]
    v_ours = [keras.Variable(p, dtype="float64") for p in start]
    step_native, step_ours = _stepper(native, v_native), _stepper(ours, v_ours)
    worst = 0.0
    for _ in range(100):
        grads = _least_squares_grads(a, y, *(v.numpy() for v in v_native))
        step_native(grads)
        step_ours(grads)
        for n, o in zip(v_native, v_ours, strict=True):
            want, got = n.numpy(), o.numpy()
            worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
    assert worst <= TOL, f"{name} {params}: worst relative error {worst:.3g} over 100 steps"
