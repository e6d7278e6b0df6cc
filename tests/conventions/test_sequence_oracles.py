"""CTC under the torch, Keras and Optax conventions against the real frameworks in float64.

The spec's input form is batch-major with paddings (labels padded to T); each test converts the
framework's own form (time-major log-probs and lengths for torch, 0-padded labels for Keras).
Values and input gradients are compared to 1e-10: torch's autograd through its own ``log_softmax``,
``jax.grad`` of ``optax.losses.ctc_loss`` and of Keras's JAX kernel, all in float64. Keras's
``keras.losses.CTC`` on TensorFlow computes in float32 whatever the dtype, so it is compared at 1e-5.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge

N, T, C = 3, 5, 4
LENGTHS = np.array([5, 4, 5])
LABEL_LENGTHS = np.array([2, 1, 2])


def _close(actual: Any, expected: Any, rtol: float = 1e-10, atol: float = 1e-13) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=rtol, atol=atol)


def _paddings(lengths: np.ndarray) -> np.ndarray:
    return (np.arange(T)[None] >= lengths[:, None]).astype(float)


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels padded with 0 (Keras's form) to T, logits, label and frame paddings."""
    rng = np.random.default_rng(3)
    logits = 2.0 * rng.normal(size=(N, T, C))
    labels = rng.integers(1, C, size=(N, T))
    labels[0, :2] = 2  # a repeat
    lpad = _paddings(LABEL_LENGTHS)
    return np.where(lpad > 0, 0, labels), logits, lpad, _paddings(LENGTHS)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _torch_case(infeasible: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    labels, logits, lpad, _ = _data()
    lengths = LENGTHS.copy()
    if infeasible:
        lengths[0] = 2  # labels 2 2 need 3 frames: inf, or 0 with zero_infinity
    return labels, logits, lpad, _paddings(lengths), lengths


def _torch_native(torch: Any, log_probs: Any, labels: np.ndarray, lengths: np.ndarray, **kwargs: Any) -> Any:
    """torch.nn.CTCLoss in its own form: time-major (T, N, C) log-probabilities and lengths."""
    native = torch.nn.CTCLoss(**kwargs)
    return native(log_probs.transpose(0, 1), torch.from_numpy(labels), torch.from_numpy(lengths),
                  torch.from_numpy(LABEL_LENGTHS))


def _torch_ours(reduction: str, **params: Any) -> Any:
    """torch's mean divides by the target length first (the preset); 'sum' and 'none' do not."""
    normalize = {} if reduction == "mean" else {"normalize_by_length": False}
    return lossbridge.get("CTCLoss", convention="torch", reduction=reduction, **normalize, **params)


@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_torch_ctc_values_every_reduction(torch: Any, reduction: str, zero_infinity: bool) -> None:
    labels, logits, lpad, fpad, lengths = _torch_case(infeasible=True)
    lp = _log_softmax(logits)
    expected = _torch_native(torch, torch.from_numpy(lp), labels, lengths, reduction=reduction,
                             zero_infinity=zero_infinity).numpy()
    got = _torch_ours(reduction, zero_infinity=zero_infinity)(labels, lp, lpad, fpad)
    _close(got, expected)


def test_torch_ctc_default_is_the_length_normalized_mean(torch: Any) -> None:
    labels, logits, lpad, fpad, lengths = _torch_case(infeasible=False)
    lp = _log_softmax(logits)
    expected = _torch_native(torch, torch.from_numpy(lp), labels, lengths).numpy()
    _close(lossbridge.get("ctc_loss", convention="torch")(labels, lp, lpad, fpad), expected)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_torch_ctc_gradients(torch: Any, reduction: str) -> None:
    """Through torch's log_softmax the gradients agree exactly; on a leaf log_probs torch's own backward
    returns exp(log_probs) - gamma, ours -gamma (the value's derivative): they differ by exactly
    cotangent * exp(log_probs) on every frame that is used (see the spec's usage)."""
    labels, logits, lpad, fpad, lengths = _torch_case(infeasible=True)
    x = torch.from_numpy(logits).requires_grad_()
    lp = torch.log_softmax(x, dim=-1)
    lp.retain_grad()
    _torch_native(torch, lp, labels, lengths, reduction=reduction, zero_infinity=True).backward()
    via_logits = _torch_ours(reduction, zero_infinity=True, from_logits=True).grad(labels, logits, lpad, fpad)
    _close(via_logits, x.grad.numpy())
    log_probs = lp.detach().numpy()
    ours = _torch_ours(reduction, zero_infinity=True).grad(labels, log_probs, lpad, fpad)
    cot = 1.0 / (N * np.maximum(LABEL_LENGTHS, 1)) if reduction == "mean" else np.ones(N)
    used = (fpad == 0) & np.array([False, True, True])[:, None]  # row 0 has no alignment
    _close(ours + cot[:, None, None] * np.exp(log_probs) * used[..., None], lp.grad.numpy())


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    keras = pytest.importorskip("keras")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


def test_keras_ctc_float64_values_and_gradients_through_keras_jax_kernel(keras: Any) -> None:
    """Keras's own CTC code for the JAX backend, run in float64 (its TensorFlow kernel is float32 only)."""
    jax = pytest.importorskip("jax")
    from keras.src.backend.jax import nn as keras_jax_nn

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        labels, logits, lpad, _ = _data()
        weight = np.array([0.5, 2.0, 1.0])

        def native(z: Any) -> Any:
            return keras_jax_nn.ctc_loss(labels, z, LABEL_LENGTHS, np.full(N, T), mask_index=0)

        values, pullback = jax.vjp(jax.jit(native), jax.numpy.asarray(logits))
        expected_value, expected_grad = np.asarray(values), np.asarray(pullback(jax.numpy.asarray(weight))[0])
    finally:
        jax.config.update("jax_enable_x64", previous)
    every_frame = np.zeros((N, T))  # Keras uses every frame
    loss = lossbridge.get("CTC", convention="keras", reduction="none", dtype="float64")
    _close(loss(labels, logits, lpad, every_frame), expected_value)
    summed = lossbridge.get("CTC", convention="keras", reduction="sum", dtype="float64")
    _close(summed.grad(labels, logits, lpad, every_frame, sample_weight=weight), expected_grad)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_keras_ctc_loss_class(keras: Any, reduction: str) -> None:
    labels, logits, lpad, _ = _data()
    weight = np.array([0.5, 2.0, 1.0])
    native = keras.losses.CTC(reduction=reduction, dtype="float64")
    expected = keras.ops.convert_to_numpy(native(labels, logits, sample_weight=weight))
    loss = lossbridge.get("CTC", convention="keras", reduction=reduction, dtype="float64")
    # TensorFlow's kernel computes CTC in float32 even for float64 inputs (keras/src/backend/tensorflow/nn.py)
    _close(loss(labels, logits, lpad, np.zeros((N, T)), sample_weight=weight), expected, rtol=1e-5)


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("blank", [0, 3])
def test_optax_ctc_values_and_gradients(optax: Any, blank: int) -> None:
    import jax

    labels, logits, lpad, fpad = _data()
    labels = np.where(labels == blank, (blank + 1) % C, labels)
    fpad[2, 1] = 1.0  # a padded frame in the middle is skipped
    weight = np.array([1.5, 0.5, 1.0])

    def native(z: Any) -> Any:
        return optax.losses.ctc_loss(z, fpad, labels, lpad, blank_id=blank)

    values, pullback = jax.vjp(jax.jit(native), jax.numpy.asarray(logits))
    _close(lossbridge.get("ctc_loss", convention="optax", blank_id=blank)(labels, logits, lpad, fpad), values)
    summed = lossbridge.get("ctc_loss", convention="optax", blank_id=blank, reduction="sum")
    _close(summed.grad(labels, logits, lpad, fpad, sample_weight=weight), pullback(jax.numpy.asarray(weight))[0])
