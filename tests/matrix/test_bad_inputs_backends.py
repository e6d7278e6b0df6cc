"""The catalogue of bad inputs on torch, JAX and TensorFlow (docs/guide/bad-inputs.md): mixed
frameworks, meta and fake tensors (shape-only evaluation), sparse gradients, integer labels."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

META_CASES = [
    ("mse", {}, lambda m, torch: (m(4, 3), m(4, 3)), True),
    ("CrossEntropyLoss", {"convention": "torch"}, lambda m, torch: (m(4, 3), m(4, dtype=torch.long)), False),
    ("CrossEntropyLoss", {"convention": "torch", "ignore_index": 1, "label_smoothing": 0.1},
     lambda m, torch: (m(4, 3, 5), m(4, 5, dtype=torch.long)), False),
    ("NLLLoss", {"convention": "torch"}, lambda m, torch: (m(4, 3), m(4, dtype=torch.long)), False),
    ("MultiMarginLoss", {"convention": "torch"}, lambda m, torch: (m(4, 3), m(4, dtype=torch.long)), False),
    ("MultiLabelMarginLoss", {"convention": "torch"}, lambda m, torch: (m(4, 3), m(4, 3, dtype=torch.long)), False),
    ("CTCLoss", {"convention": "torch"},
     lambda m, torch: (m(6, 2, 4), m(2, 3, dtype=torch.long), m(2, dtype=torch.long), m(2, dtype=torch.long)), False),
    ("GaussianNLLLoss", {"convention": "torch"}, lambda m, torch: (m(4, 3), m(4, 3), m(4, 1)), False),
    ("BCEWithLogitsLoss", {"convention": "torch"}, lambda m, torch: (m(4, 3), m(4, 3)), False),
]


@pytest.mark.parametrize(("name", "kw", "make", "weighted"), META_CASES, ids=[f"{c[0]}-{k}" for k, c in
                                                                            enumerate(META_CASES)])
def test_torch_meta_and_fake_tensors_evaluate_shapes_only(name, kw, make, weighted) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    from torch._subclasses.fake_tensor import FakeTensorMode

    loss = lossbridge.get(name, backend="torch", **kw)

    def meta(*shape: int, **k: object) -> object:
        return torch.empty(*shape, device="meta", **k)

    extra = {"sample_weight": meta(4)} if weighted else {}
    out = loss(*make(meta, torch), **extra)
    assert out.device.type == "meta" and out.shape == ()
    with FakeTensorMode():
        def fake(*shape: int, **k: object) -> object:
            return torch.empty(*shape, **k)

        assert loss(*make(fake, torch)).shape == ()


def test_torch_mixed_frameworks_name_the_argument() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(InputError, match=r"y_pred \(argument 1\): expected a torch.Tensor .* got numpy.ndarray"):
        lossbridge.get("mse", backend="torch")(np.array([0.0, 1.0]), torch.tensor([0.3, 0.6]))


def test_torch_sparse_gradient_is_refused_with_the_alternative() -> None:
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(InputError, match=r"sparse gradient.*dense gradients"):
        lossbridge.get("adam", backend="torch")([p]).step()


def test_jax_mixed_frameworks_name_the_argument() -> None:
    jnp = pytest.importorskip("jax.numpy")
    torch = pytest.importorskip("torch")
    with pytest.raises(InputError, match=r"y_pred: expected an array for the jax backend, got torch\.Tensor"):
        lossbridge.get("mse", backend="jax")(torch.tensor([0.0, 1.0]), jnp.array([0.3, 0.6]))


def test_tensorflow_mixed_frameworks_name_the_argument() -> None:
    pytest.importorskip("tensorflow")
    torch = pytest.importorskip("torch")
    with pytest.raises(InputError, match=r"y_true: expected a tf\.Tensor.*got torch\.Tensor"):
        lossbridge.get("binary_crossentropy", backend="tensorflow")(torch.tensor([0.0, 1.0]), torch.tensor([0.3, 0.6]))


def test_tensorflow_integer_labels_for_binary_crossentropy_get_a_clear_error() -> None:
    """Was a raw TypeError (issue 17); now the argument, the expectation and the dtype are named."""
    tf = pytest.importorskip("tensorflow")
    with pytest.raises(InputError, match="y_true: expected a floating-point array, got dtype int32"):
        lossbridge.get("binary_crossentropy", backend="tensorflow")(tf.constant([0, 1]), tf.constant([0.3, 0.6]))


def test_torch_pair_losses_take_torch_argument_order() -> None:
    """torch.nn.CosineEmbeddingLoss(input1, input2, target): ours took (target, input1, input2)."""
    torch = pytest.importorskip("torch")
    x1, x2 = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    ours = lossbridge.get("CosineEmbeddingLoss", backend="torch", convention="torch", margin=0.2)(x1, x2, y)
    assert abs(float(ours) - float(torch.nn.CosineEmbeddingLoss(margin=0.2)(x1, x2, y))) < 1e-12


def test_torch_check_finite_is_opt_in() -> None:
    """``check_finite=True`` on the torch loss refuses NaN, naming the argument and index; off by
    default (torch propagates NaN). ``lossbridge.get(..., check_finite=True)`` needs the option in
    ``TorchBackend.loss_options``; the module takes it already."""
    torch = pytest.importorskip("torch")
    from lossbridge.bound import bind
    from lossbridge.registry import default_registry

    backend = default_registry().backend("torch")
    bound = bind(lossbridge.spec("mse"), convention="torch", params={})
    nan = torch.tensor([float("nan"), 1.0])
    assert torch.isnan(backend.materialize_loss(bound)(nan, torch.zeros(2)))
    message = r"y_pred: expected finite values \(check_finite=True\), got nan at index \(0,\)"
    with pytest.raises(InputError, match=message):
        backend.materialize_loss(bound, check_finite=True)(nan, torch.zeros(2))
    meta = torch.empty(2, device="meta")
    assert backend.materialize_loss(bound, check_finite=True)(meta, meta).device.type == "meta"


def test_torch_complex_parameters_match_torch_optim() -> None:
    """Complex parameters: torch.optim.Adam's answer (it steps them as pairs of reals)."""
    torch = pytest.importorskip("torch")
    ours_p = torch.nn.Parameter(torch.ones(3, dtype=torch.complex128))
    native_p = torch.nn.Parameter(torch.ones(3, dtype=torch.complex128))
    ours, native = lossbridge.get("adam", backend="torch")([ours_p]), torch.optim.Adam([native_p], lr=1e-3)
    for _ in range(3):
        for p in (ours_p, native_p):
            p.grad = torch.tensor([1 + 1j, -2 + 0.5j, 0.25j], dtype=torch.complex128)
        ours.step()
        native.step()
    assert torch.allclose(ours_p.detach(), native_p.detach(), rtol=1e-12, atol=0)


def test_tensorflow_integer_labels_under_keras_convention_are_cast_as_keras_does() -> None:
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    y, p = tf.constant([0, 1]), tf.constant([0.3, 0.6])
    ours = lossbridge.get("BinaryCrossentropy", backend="tensorflow", convention="keras")(y, p)
    assert abs(float(ours) - float(keras.losses.BinaryCrossentropy()(y, p))) < 1e-6
