"""The shared reduction and weighting layer against NumPy formulas written here."""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np
import pytest

from lossbridge import InputError
from lossbridge.conventions import KERAS_REDUCTION, TORCH_REDUCTION
from lossbridge.reduction import cotangent, reduce_loss

rng = np.random.default_rng(0)
VALUES = rng.uniform(size=(4, 3))
WEIGHT = np.array([0.5, 1.0, 2.0, 0.0])


def _reduce(**kw: object) -> np.ndarray:
    return reduce_loss(VALUES, xp=xp, elementwise=True, **kw)  # type: ignore[arg-type]


def test_torch_rule_means_over_elements() -> None:
    assert _reduce(reduction="mean", rule=TORCH_REDUCTION) == pytest.approx(VALUES.mean(), rel=1e-15)
    assert _reduce(reduction="sum", rule=TORCH_REDUCTION) == pytest.approx(VALUES.sum(), rel=1e-15)
    np.testing.assert_array_equal(_reduce(reduction="none", rule=TORCH_REDUCTION), VALUES)


def test_keras_rule_means_the_last_axis_then_divides_by_the_batch() -> None:
    per_sample = VALUES.mean(axis=-1)
    np.testing.assert_allclose(_reduce(reduction="none", rule=KERAS_REDUCTION), per_sample, rtol=1e-15)
    got = _reduce(reduction="mean", rule=KERAS_REDUCTION, sample_weight=WEIGHT)
    assert got == pytest.approx((per_sample * WEIGHT).sum() / 4, rel=1e-15)  # sum_over_batch_size


def test_weighted_mean_divides_by_the_weights_under_the_torch_rule() -> None:
    got = _reduce(reduction="mean", rule=TORCH_REDUCTION, sample_weight=WEIGHT)
    expected = (VALUES * WEIGHT[:, None]).sum() / (WEIGHT[:, None] * np.ones((4, 3))).sum()
    assert got == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("rule", [TORCH_REDUCTION, KERAS_REDUCTION])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cotangent_is_the_derivative_of_the_reduction(rule: object, reduction: str) -> None:
    kw = {"xp": xp, "elementwise": True, "rule": rule, "reduction": reduction, "sample_weight": WEIGHT}
    cot = cotangent(VALUES, **kw)  # type: ignore[arg-type]
    h = 1e-6
    for idx in np.ndindex(VALUES.shape):
        bumped = VALUES.copy()
        bumped[idx] += h
        numeric = (np.sum(reduce_loss(bumped, **kw)) - np.sum(reduce_loss(VALUES, **kw))) / h  # type: ignore[arg-type]
        assert cot[idx] == pytest.approx(numeric, abs=1e-8)


def test_sample_weight_of_the_wrong_shape_is_an_error_naming_both_shapes() -> None:
    with pytest.raises(InputError, match=r"sample_weight: expected shape \(4, 3\) or a leading part of it, got \(3,\)"):
        _reduce(reduction="mean", rule=TORCH_REDUCTION, sample_weight=np.ones(3))
