"""CTC under the torch, Keras and Optax conventions, called in each framework's own form, against the
real frameworks in float64.

Each convention maps its framework's own call onto the spec's inputs (``InputRules.native``):
torch ``(log_probs (T, N, C), targets, input_lengths, target_lengths)``, Keras ``(y_true, y_pred)``,
Optax ``(logits, logit_paddings, labels, label_paddings)``. Values and input gradients are compared
to 1e-10: torch's ``F.ctc_loss`` (autograd through its own ``log_softmax``), ``jax.grad`` of
``optax.losses.ctc_loss`` and of Keras's JAX kernel, all in float64. Keras's ``keras.losses.CTC`` on
TensorFlow computes in float32 whatever the dtype, so it is compared at 1e-5.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.bound import bind

N, T, C = 3, 5, 4
LENGTHS = np.array([5, 4, 5])
LABEL_LENGTHS = np.array([2, 1, 2])


def _close(actual: Any, expected: Any, rtol: float = 1e-10, atol: float = 1e-13) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=rtol, atol=atol)


def _paddings(lengths: np.ndarray, steps: int = T) -> np.ndarray:
    return (np.arange(steps)[None] >= lengths[:, None]).astype(float)


def _data() -> tuple[np.ndarray, np.ndarray]:
    """Labels (N, T) padded with 0 (Keras's form), logits (N, T, C)."""
    rng = np.random.default_rng(3)
    logits = 2.0 * rng.normal(size=(N, T, C))
    labels = rng.integers(1, C, size=(N, T))
    labels[0, :2] = 2  # a repeat
    return np.where(_paddings(LABEL_LENGTHS) > 0, 0, labels), logits


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _mean_params_applied() -> bool:
    """The core applies ``Reduction.mean_params`` (torch's per-length mean) in ``BoundLoss.spec_params``."""
    return bind(lossbridge.spec("ctc"), convention="torch").spec_params().get("normalize_by_length") is True


def _gradients_restored() -> bool:
    """The core gives NumPy gradients back in the native layout (``Layout.restore``: time-major)."""
    loss = lossbridge.get("CTCLoss", convention="torch", reduction="sum")
    grad = loss.grad(np.ones((1, 1), dtype=np.int64), np.log(np.full((3, 1, 2), 0.5)), np.array([3]), np.array([1]))
    return grad.shape == (3, 1, 2)


def _needs(reduction: str) -> None:
    if reduction == "mean" and not _mean_params_applied():
        pytest.xfail("needs BoundLoss.spec_params to apply Reduction.mean_params (requested change in bound.py)")


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _torch_case(infeasible: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """targets (N, S = T) padded, time-major log_probs (T, N, C), input lengths."""
    labels, logits = _data()
    lengths = LENGTHS.copy()
    if infeasible:
        lengths[0] = 2  # labels 2 2 need 3 frames: inf, or 0 with zero_infinity
    return labels, np.transpose(_log_softmax(logits), (1, 0, 2)), lengths


def _torch_native(torch: Any, log_probs: Any, targets: Any, lengths: Any, target_lengths: Any = LABEL_LENGTHS,
                  **kwargs: Any) -> Any:
    return torch.nn.CTCLoss(**kwargs)(log_probs, torch.as_tensor(targets), torch.as_tensor(lengths),
                                      torch.as_tensor(target_lengths))


@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_torch_ctc_native_form_values_on_numpy(torch: Any, reduction: str, zero_infinity: bool) -> None:
    """NumPy, truth first: ``loss(targets, log_probs (T, N, C), input_lengths, target_lengths)``; 'mean'
    divides each loss by its target length, 'sum' and 'none' do not, with no parameter to set."""
    _needs(reduction)
    targets, log_probs, lengths = _torch_case(infeasible=True)
    expected = _torch_native(torch, torch.from_numpy(log_probs), targets, lengths, reduction=reduction,
                             zero_infinity=zero_infinity).numpy()
    loss = lossbridge.get("CTCLoss", convention="torch", reduction=reduction, zero_infinity=zero_infinity)
    _close(loss(targets, log_probs, lengths, LABEL_LENGTHS), expected)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_torch_ctc_module_native_call_values_and_gradients(torch: Any, reduction: str) -> None:
    """The torch backend, called exactly as ``nn.CTCLoss``: gradients through torch's log_softmax agree."""
    _needs(reduction)
    targets, _, lengths = _torch_case(infeasible=True)
    _, logits = _data()
    x = torch.from_numpy(np.transpose(logits, (1, 0, 2)).copy()).requires_grad_()
    expected = _torch_native(torch, torch.log_softmax(x, dim=-1), targets, lengths, reduction=reduction,
                             zero_infinity=True)
    (g_expected,) = torch.autograd.grad(expected.sum(), x)
    y = x.detach().clone().requires_grad_()
    ours = lossbridge.get("CTCLoss", backend="torch", convention="torch", reduction=reduction, zero_infinity=True)
    got = ours(torch.log_softmax(y, dim=-1), torch.from_numpy(targets), tuple(lengths), tuple(LABEL_LENGTHS))
    (g_got,) = torch.autograd.grad(got.sum(), y)
    _close(got.detach().numpy(), expected.detach().numpy())
    _close(g_got.numpy(), g_expected.numpy())


def test_torch_ctc_concatenated_targets_and_reduction_setter(torch: Any) -> None:
    """1-D concatenated targets (torch's other form); ``loss.reduction = 'sum'`` drops the per-length division."""
    targets, log_probs, lengths = _torch_case(infeasible=False)
    flat = np.concatenate([targets[i, : LABEL_LENGTHS[i]] for i in range(N)])
    lp = torch.from_numpy(log_probs)
    ours = lossbridge.get("CTCLoss", backend="torch", convention="torch", reduction="none")
    _close(ours(lp, torch.from_numpy(flat), torch.from_numpy(lengths), torch.from_numpy(LABEL_LENGTHS)).numpy(),
           _torch_native(torch, lp, flat, lengths, reduction="none").numpy())
    ours.reduction = "sum"
    _close(ours(lp, torch.from_numpy(flat), torch.from_numpy(lengths), torch.from_numpy(LABEL_LENGTHS)).numpy(),
           _torch_native(torch, lp, flat, lengths, reduction="sum").numpy())


def test_torch_ctc_targets_longer_than_the_frames(torch: Any) -> None:
    """Targets padded to S > T; a target length above T has no alignment (inf, or 0 with zero_infinity)."""
    rng = np.random.default_rng(5)
    _, log_probs, lengths = _torch_case(infeasible=False)
    targets = rng.integers(1, C, size=(N, T + 3))
    target_lengths = np.array([T + 2, 3, 1])
    lp = torch.from_numpy(log_probs)
    for zero_infinity in (False, True):
        expected = _torch_native(torch, lp, targets, lengths, target_lengths, reduction="none",
                                 zero_infinity=zero_infinity).numpy()
        ours = lossbridge.get("CTCLoss", convention="torch", reduction="none", zero_infinity=zero_infinity)
        _close(ours(targets, log_probs, lengths, target_lengths), expected)


def test_torch_ctc_numpy_gradient_in_the_time_major_layout(torch: Any) -> None:
    """NumPy's ``.grad`` is d loss / d log_probs in torch's (T, N, C) layout: -gamma (the value's derivative)."""
    if not _gradients_restored():
        pytest.xfail("needs BoundLoss.value_and_grad to call Layout.restore (requested change in bound.py)")
    targets, log_probs, lengths = _torch_case(infeasible=False)
    lp = torch.from_numpy(log_probs).requires_grad_()
    _torch_native(torch, lp, targets, lengths, reduction="sum").backward()
    ours = lossbridge.get("CTCLoss", convention="torch", reduction="sum").grad(targets, log_probs, lengths,
                                                                             LABEL_LENGTHS)
    assert ours.shape == (T, N, C)
    used = (np.arange(T)[:, None] < lengths[None, :])[..., None]
    # torch's own backward on a leaf log_probs is exp(log_probs) - gamma (see the spec's usage)
    _close(ours + np.exp(log_probs) * used, lp.grad.numpy())


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    keras = pytest.importorskip("keras")
    pytest.importorskip("lossbridge_tensorflow")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


def test_keras_ctc_float64_values_and_gradients_through_keras_jax_kernel(keras: Any) -> None:
    """Keras's own CTC code for the JAX backend, run in float64 (its TensorFlow kernel is float32 only),
    against ``CTC()(y_true, y_pred)`` on the TensorFlow backend, in float64."""
    jax = pytest.importorskip("jax")
    import tensorflow as tf
    from keras.src.backend.jax import nn as keras_jax_nn

    labels, logits = _data()
    labels = labels[:, : T - 1]  # S = T - 1 label slots
    weight = np.array([0.5, 2.0, 1.0])
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        def native(z: Any) -> Any:
            return keras_jax_nn.ctc_loss(labels, z, LABEL_LENGTHS, np.full(N, T), mask_index=0)

        values, pullback = jax.vjp(jax.jit(native), jax.numpy.asarray(logits))
        expected_value, expected_grad = np.asarray(values), np.asarray(pullback(jax.numpy.asarray(weight))[0])
    finally:
        jax.config.update("jax_enable_x64", previous)
    loss = lossbridge.get("CTC", backend="tensorflow", convention="keras", reduction="none", dtype="float64")
    _close(loss(labels, logits), expected_value)
    summed = lossbridge.get("CTC", backend="tensorflow", convention="keras", reduction="sum", dtype="float64")
    z = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = summed(tf.constant(labels), z, sample_weight=tf.constant(weight))
    _close(tape.gradient(out, z).numpy(), expected_grad)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_keras_ctc_loss_class(keras: Any, reduction: str) -> None:
    labels, logits = _data()
    weight = np.array([0.5, 2.0, 1.0])
    native = keras.losses.CTC(reduction=reduction, dtype="float64")
    expected = keras.ops.convert_to_numpy(native(labels, logits, sample_weight=weight))
    loss = lossbridge.get("CTC", backend="tensorflow", convention="keras", reduction=reduction, dtype="float64")
    # TensorFlow's kernel computes CTC in float32 even for float64 inputs (keras/src/backend/tensorflow/nn.py)
    _close(loss(labels, logits, sample_weight=weight).numpy(), expected, rtol=1e-5)


def test_keras_ctc_float_labels_as_keras_passes_them(keras: Any) -> None:
    """Keras converts y_true to the loss dtype before ``call``: whole-number float labels are class indices."""
    labels, logits = _data()
    native = keras.losses.CTC(dtype="float64")
    loss = lossbridge.get("CTC", backend="tensorflow", convention="keras", dtype="float64")
    _close(loss(labels.astype(np.float64), logits).numpy(), keras.ops.convert_to_numpy(native(labels, logits)),
           rtol=1e-5)


def test_keras_ctc_int32_labels(keras: Any) -> None:
    """int32 labels, which Keras accepts (the label count once summed to int64 and met int32 states)."""
    labels, logits = _data()
    native = keras.losses.CTC(dtype="float64")
    loss = lossbridge.get("CTC", backend="tensorflow", convention="keras", dtype="float64")
    _close(loss(labels.astype(np.int32), logits).numpy(), keras.ops.convert_to_numpy(native(labels, logits)),
           rtol=1e-5)


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    pytest.importorskip("lossbridge_jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("blank", [0, 3])
def test_optax_ctc_values_and_gradients(optax: Any, blank: int) -> None:
    """``ctc_loss(logits, logit_paddings, labels, label_paddings, blank_id=)`` on the JAX backend."""
    import jax

    labels, logits = _data()
    labels = np.where(labels == blank, (blank + 1) % C, labels)
    lpad, fpad = _paddings(LABEL_LENGTHS), _paddings(LENGTHS)
    fpad[2, 1] = 1.0  # a padded frame in the middle is skipped
    weight = np.array([1.5, 0.5, 1.0])

    def native(z: Any) -> Any:
        return optax.losses.ctc_loss(z, fpad, labels, lpad, blank_id=blank)

    values, pullback = jax.vjp(jax.jit(native), jax.numpy.asarray(logits))
    ours = lossbridge.get("ctc_loss", backend="jax", convention="optax", blank_id=blank)
    got, our_pullback = jax.vjp(lambda z: ours(z, fpad, labels, lpad), jax.numpy.asarray(logits))
    _close(got, values)
    _close(our_pullback(jax.numpy.asarray(weight))[0], pullback(jax.numpy.asarray(weight))[0])


def test_optax_ctc_float_labels_of_another_length(optax: Any) -> None:
    """Optax takes whole-number float labels and label arrays of any length S (here S = T + 2)."""
    import jax

    labels, logits = _data()
    wide = np.concatenate([labels, np.zeros((N, 2), dtype=labels.dtype)], axis=1).astype(np.float64)
    lpad, fpad = _paddings(LABEL_LENGTHS, T + 2), _paddings(LENGTHS)
    with warnings.catch_warnings():  # Optax's own one_hot of float labels warns (jax deprecation)
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = optax.losses.ctc_loss(logits, fpad, wide, lpad)
        expected_grad = jax.grad(lambda z: optax.losses.ctc_loss(z, fpad, wide, lpad).sum())(logits)
    ours = lossbridge.get("ctc_loss", backend="jax", convention="optax")
    _close(ours(logits, fpad, wide, lpad), expected)
    _close(jax.grad(lambda z: ours(z, fpad, wide, lpad).sum())(logits), expected_grad)
