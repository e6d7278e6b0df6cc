"""Optax's ranking_softmax_loss through the core's shared path on NumPy, against Optax in float64.

The mask of valid items (Optax's ``where=``) and the per-item weights (``weights=``) are spec data
(``LossSpec.masking``) applied by :class:`lossbridge.bound.BoundLoss` (``mask_inputs``,
``weigh_items``, ``evaluate(keep=...)``), so every backend gets them from one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.bound import bind


@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    previous = jax.config.values["jax_enable_x64"]
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_optax_ranking_softmax_where_and_weights_through_the_core(optax: Any, reduction: str, weighted: bool) -> None:
    import jax.numpy as jnp

    rng = np.random.default_rng(5)
    scores = rng.normal(size=(4, 6))
    labels = rng.integers(0, 3, size=(4, 6)).astype(np.float64)
    where = rng.random((4, 6)) < 0.6
    where[2] = False  # a list with no valid item: 0, not counted in the mean
    weights = rng.uniform(0.5, 2.0, size=(4, 6))
    reduce_fn = {"mean": jnp.mean, "sum": jnp.sum, "none": None}[reduction]
    kw = {"weights": jnp.asarray(weights)} if weighted else {}
    expected = optax.losses.ranking_softmax_loss(
        jnp.asarray(scores), jnp.asarray(labels), where=jnp.asarray(where), reduce_fn=reduce_fn, **kw
    )
    bound = bind(lossbridge.spec("ranking_softmax"), convention="optax", params={"reduction": reduction})
    inputs, keep = bound.mask_inputs(np, (labels, scores), where)
    if weighted:
        inputs, used = bound.weigh_items(np, inputs, weights)
        assert used
    got = bound.evaluate(np, *inputs, keep=keep)
    e = np.asarray(expected)
    assert np.shape(got) == e.shape
    np.testing.assert_allclose(got, e, rtol=1e-10, atol=1e-300)
