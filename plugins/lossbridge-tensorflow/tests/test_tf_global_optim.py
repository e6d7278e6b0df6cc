"""Optimizers with global state (Prodigy, D-Adapt AdamW) as Keras optimizers against the NumPy backend.

The global state is two scalar optimizer variables made in ``build``; one ``apply`` sums the spec's
partials over all variables, eagerly and in a ``tf.function``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

import lossbridge


def _problem() -> tuple[list[np.ndarray], Any]:
    rng = np.random.default_rng(5)
    start = [rng.normal(size=(4, 3)), rng.normal(size=(3,)), rng.normal(size=(2,))]
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))

    def grad(p: list[np.ndarray]) -> list[np.ndarray]:
        r = (a @ p[0] + p[1] - b) / len(a)
        return [a.T @ r, r.sum(axis=0), np.sin(p[2])]

    return start, grad


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize(
    ("name", "hyper"),
    [("prodigy", {}), ("prodigy", {"weight_decay": 0.1, "safeguard_warmup": True}),
     ("dadapt_adamw", {"weight_decay": 0.1, "lr": 0.5})],
)
def test_keras_global_matches_numpy(name: str, hyper: dict[str, Any], graph: bool) -> None:
    start, grad = _problem()
    ref = lossbridge.get(name, **hyper)
    current = [p.copy() for p in start]
    opt = lossbridge.get(name, backend="tensorflow", **hyper)
    variables = [keras.Variable(p, dtype="float64") for p in start]
    opt.build(variables)
    apply = lambda g: opt.apply(g, variables)  # noqa: E731
    if graph:
        apply = tf.function(apply)
    for _ in range(40):
        g = grad(current)
        ref.step(current, g)
        apply([tf.constant(gi, dtype="float64") for gi in g])
        for v, e in zip(variables, current, strict=True):
            assert np.max(np.abs(v.numpy() - e)) <= 1e-10 * np.max(np.abs(e))
    np.testing.assert_allclose(float(opt._lb_glob["d"].numpy()), float(ref._state.glob["d"]), rtol=1e-10)
