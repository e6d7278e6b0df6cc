"""The catalogue of bad inputs on the NumPy backend (docs/guide/bad-inputs.md): each bad input gets
a clear lossbridge error naming the argument, what was expected and what came, or the documented
native behaviour. Torch, JAX and TensorFlow rows: tests/matrix/test_bad_inputs_backends.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import InputError, ParameterError


def _get(name: str, **kw: Any) -> Any:
    return lossbridge.get(name, backend="numpy", **kw)


# (row id, call, error type, fragments the message must contain: argument, expectation, what came)
ROWS: list[tuple[str, Callable[[], Any], type[Exception], tuple[str, ...]]] = [
    ("wrong_shape", lambda: _get("mse")(np.ones((4, 3)), np.ones((4, 2))), InputError, ("y_true", "(4, 2)", "(4, 3)")),
    ("integer_prediction", lambda: _get("mse")(np.ones(3), np.ones(3, dtype=np.int64)), InputError,
     ("y_pred", "floating-point", "int64")),
    ("float_class_labels", lambda: _get("sparse_categorical_crossentropy", from_logits=True)(
        np.array([0.0, 1.5]), np.zeros((2, 3))), InputError, ("y_true", "integer class indices", "float64")),
    ("label_out_of_range", lambda: _get("sparse_categorical_crossentropy", from_logits=True)(
        np.array([0, 5]), np.zeros((2, 3))), InputError, ("y_true", "[0, 2]", "[0, 5]")),
    ("negative_label", lambda: _get("sparse_categorical_crossentropy", from_logits=True)(
        np.array([0, -1]), np.zeros((2, 3))), InputError, ("y_true", "[0, 2]", "[-1, 0]")),
    ("probability_above_one", lambda: _get("binary_crossentropy")(np.array([0.0, 1.0]), np.array([0.5, 1.5])),
     InputError, ("y_pred", "probabilities in [0, 1]", "1.5")),
    ("binary_label_two", lambda: _get("binary_crossentropy")(np.array([0.0, 2.0]), np.array([0.5, 0.5])),
     InputError, ("y_true", "[0, 1]", "2")),
    ("empty_batch", lambda: _get("mse")(np.zeros((0, 3)), np.zeros((0, 3))), InputError,
     ("y_pred", "non-empty batch", "(0, 3)")),
    ("nan_with_check_finite", lambda: _get("mse", check_finite=True)(np.zeros(2), np.array([np.nan, 1.0])),
     InputError, ("y_pred", "finite", "nan", "(0,)")),
    ("inf_sample_weight_with_check_finite", lambda: _get("mse", check_finite=True)(
        np.zeros(2), np.zeros(2), sample_weight=np.array([np.inf, 1.0])), InputError,
     ("sample_weight", "finite", "inf")),
    ("mixed_frameworks", lambda: _get("mse")(np.zeros(2), _Foreign()), InputError, ("y_pred",)),
    ("unknown_keyword", lambda: _get("huber", detla=1.0), ParameterError, ("detla", "delta")),
    ("parameter_out_of_range", lambda: _get("adam", lr=-1.0), ParameterError, ("lr", "[0, inf)", "-1")),
    ("unknown_reduction", lambda: _get("mse", reduction="avg"), ParameterError, ("reduction", "'mean'", "'avg'")),
    ("param_shape_changed", lambda: _step_twice((4, 3), (1, 3)), InputError,
     ("params['w']", "(4, 3)", "(1, 3)", "fresh state")),
    ("grad_shape", lambda: _get("adam").step([np.ones(3)], [np.ones(4)]), InputError, ("grads", "(3,)", "(4,)")),
    ("grad_count", lambda: _get("adam").step([np.ones(3)], [np.ones(3), np.ones(3)]), InputError,
     ("grads", "1 arrays", "2")),
    ("integer_parameter", lambda: _get("adam").step([np.ones(3, dtype=np.int64)], [np.ones(3, dtype=np.int64)]),
     InputError, ("params", "floating-point", "int64")),
    ("sparse_gradient", lambda: _sparse_step(), InputError, ("grads", "dense", "sparse", ".toarray()")),
    ("nan_gradient_with_check_finite", lambda: _get("adam", check_finite=True).step(
        {"w": np.ones(3)}, {"w": np.array([0.0, np.inf, 0.0])}), InputError, ("grads['w']", "finite", "inf", "(1,)")),
]


class _Foreign:
    """An array of another framework (its module is not NumPy's)."""

    __module__ = "torch"
    shape = (2,)
    dtype = "float32"


def _step_twice(first: tuple[int, ...], second: tuple[int, ...]) -> None:
    opt = _get("adam")
    opt.step({"w": np.ones(first)}, {"w": np.ones(first)})
    opt.step({"w": np.ones(second)}, {"w": np.ones(second)})


def _sparse_step() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    _get("adam").step([np.ones((2, 3))], [sparse.csr_matrix(np.ones((2, 3)))])


@pytest.mark.parametrize(("row", "call", "error", "fragments"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_gets_a_clear_error(
    row: str, call: Callable[[], Any], error: type[Exception], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{row}: {fragment!r} not in {message!r}"


def test_nan_passes_silently_without_check_finite() -> None:
    """Every framework propagates NaN; lossbridge does too unless check_finite=True is asked for."""
    assert np.isnan(_get("mse")(np.zeros(2), np.array([np.nan, 1.0])))
    opt = _get("adam")
    params = [np.ones(3)]
    opt.step(params, [np.array([np.nan, 0.0, 0.0])])
    assert np.isnan(params[0][0]) and np.all(np.isfinite(params[0][1:]))


def test_integral_float_labels_under_keras_are_accepted() -> None:
    """Keras casts integral float class labels (its convention); a non-integral one is refused."""
    loss = _get("sparse_categorical_crossentropy", convention="keras", from_logits=True, dtype="float64")
    assert np.isfinite(loss(np.array([0.0, 2.0]), np.zeros((2, 3))))


def test_shape_check_allows_a_fresh_state_and_a_new_dtype() -> None:
    opt = _get("adam")
    opt.step({"w": np.ones((4, 3))}, {"w": np.ones((4, 3))})
    state = opt.init({"w": np.ones((1, 3))})  # a fresh state for the new shape works
    opt.update({"w": np.ones((1, 3))}, state, {"w": np.ones((1, 3))})
    opt.step({"w": np.ones((4, 3), dtype=np.float32)}, {"w": np.ones((4, 3), dtype=np.float32)})


def test_check_finite_off_is_the_default_and_free() -> None:
    loss = _get("mse")
    assert loss.check_finite is False and _get("adam").check_finite is False


def test_complex_parameters_follow_optax_complex_math() -> None:
    """Complex parameters are supported on NumPy as Optax supports them (second moments of |g|^2)."""
    params = [np.ones(3, dtype=complex)]
    _get("adam").step(params, [np.full(3, 1.0 + 1.0j)])
    assert params[0].dtype == np.complex128 and np.all(np.isfinite(params[0]))
    np.testing.assert_allclose(params[0], 1.0 - 1e-3 * (1.0 + 1.0j) / np.sqrt(2.0), rtol=1e-6)
