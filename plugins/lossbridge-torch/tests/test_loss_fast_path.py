"""The eager fast path of torch losses (reduction folded into the spec-gradient Function) and the
compile-friendly namespace: the same values and gradients as the general path and the NumPy float64
reference, the core's errors for invalid values, and one compiled graph for every batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lossbridge_torch import TorchBackend

import lossbridge
from lossbridge import InputError


def _generic(name: str, **params: object) -> torch.nn.Module:
    """The generic spec-path module under the torch convention: the fast path this file tests. (The torch
    convention's ``lossbridge.get`` returns the verified F.* kernel for these losses: test_native_loss_paths.)"""
    native = lossbridge.get(name, backend="torch", convention="torch", **params)
    return TorchBackend().materialize_loss(native.bound)


def _reference(name: str, args: list[torch.Tensor], **params: object) -> tuple[float, np.ndarray]:
    """Value and prediction gradient from the NumPy backend in float64 (truth first there)."""
    ref = lossbridge.get(name, convention="torch", **params)
    pred, *rest = (a.detach().double().numpy() if a.is_floating_point() else a.numpy() for a in args)
    order = [*rest[:1], pred, *rest[1:]]
    value, grads = ref.value_and_grad(*order)
    return float(value), np.asarray(grads[0] if isinstance(grads, tuple) else grads)


def _ours(loss: torch.nn.Module, args: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    pred = args[0].detach().clone().requires_grad_(True)
    value = loss(pred, *args[1:])
    (grad,) = torch.autograd.grad(value, pred)
    return value, grad


def _took_fast_path(value: torch.Tensor) -> bool:
    """The fast path's value comes from ONE autograd node, the reduction folded into the spec's Function
    (``SpecReduced``); the general path's from the reduction's nodes over the spec's values."""
    return value.grad_fn is not None and value.grad_fn.name().startswith("SpecReduced")


CASES = [
    ("mse", {}, lambda g: [torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randn(8, 5, generator=g,
                                                                                            dtype=torch.float64)]),
    ("huber", {}, lambda g: [3 * torch.randn(8, 5, generator=g, dtype=torch.float64),
                             torch.randn(8, 5, generator=g, dtype=torch.float64)]),
    ("mae", {}, lambda g: [torch.randn(8, 5, generator=g, dtype=torch.float64),
                           torch.randn(8, 5, generator=g, dtype=torch.float64)]),
    ("sparse_categorical_crossentropy", {"ignore_index": 2},
     lambda g: [torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (8,), generator=g)]),
    ("sparse_categorical_crossentropy", {"weight": torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=torch.float64)},
     lambda g: [torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (8,), generator=g)]),
]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(("name", "params", "make"), CASES, ids=[f"{c[0]}-{sorted(c[1])}" for c in CASES])
def test_fast_path_matches_the_float64_reference(name: str, params: dict, make: object, reduction: str) -> None:
    args = make(torch.Generator().manual_seed(0))  # type: ignore[operator]
    loss = _generic(name, reduction=reduction, **params)
    value, grad = _ours(loss, args)
    assert _took_fast_path(value), f"fast path not taken: {value.grad_fn}"
    ref_params = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    ref_value, ref_grad = _reference(name, args, reduction=reduction, **ref_params)
    np.testing.assert_allclose(float(value.detach()), ref_value, rtol=1e-12)
    np.testing.assert_allclose(grad.numpy(), ref_grad, rtol=1e-10, atol=1e-14)


def test_fast_path_equals_the_general_path_with_sample_weights_of_one() -> None:
    """A ``sample_weight`` call takes the general path; weights of one give the same numbers."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    loss = _generic("huber")
    fast, fast_grad = _ours(loss, [x, y])
    assert _took_fast_path(fast)
    pred = x.clone().requires_grad_(True)
    general = loss(pred, y, sample_weight=torch.ones(6, 4))
    assert not _took_fast_path(general)
    (general_grad,) = torch.autograd.grad(general, pred)
    torch.testing.assert_close(fast.detach(), general.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(fast_grad, general_grad, rtol=1e-6, atol=0)


def test_fast_path_second_order() -> None:
    """The folded Function's backward is made of differentiable ops: Hessian-vector products work."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64)
    loss = _generic("mse")
    (grad,) = torch.autograd.grad(loss(x, y), x, create_graph=True)
    (hvp,) = torch.autograd.grad(grad, x, torch.ones_like(x))
    torch.testing.assert_close(hvp, torch.full_like(x, 2.0 / x.numel()))


@pytest.mark.parametrize(("name", "bad"), [("margin_ranking", 0.5), ("margin_ranking", float("nan")),
                                            ("margin_ranking", float("inf")), ("margin_ranking", 1 - 2**-24),
                                            ("hinge_embedding", 0.0), ("multilabel_soft_margin", 2.0),
                                            ("multilabel_soft_margin", 1e-30), ("multilabel_soft_margin", 1 - 2**-24),
                                            ("multilabel_soft_margin", float("nan"))])
def test_fused_set_checks_still_raise_the_core_error(name: str, bad: float) -> None:
    loss = _generic(name)
    x1, x2 = torch.randn(4, 3), torch.randn(4, 3)
    y = torch.ones(4, 3) if name != "hinge_embedding" else -torch.ones(4, 3)
    args = (x1, x2, y) if name == "margin_ranking" else (x1, y)
    loss(*args)  # valid
    y[2, 1] = bad
    with pytest.raises(InputError, match="expected"):
        loss(*args)


@pytest.mark.parametrize("bad", [0.5, -2.0, 1e-30, -1e-30, 1 - 2**-24, -1 - 2**-23, float("nan"), float("inf")])
def test_fused_three_value_set_check_is_exact(bad: float) -> None:
    """{-1, 0, 1} labels (hinge): -0.0 and every allowed value pass; anything else, however close, fails
    (float32: 1 - 2**-24 is the float below 1, -1 - 2**-23 the one below -1)."""
    loss = lossbridge.get("hinge", backend="torch")
    pred = torch.randn(2, 4)
    y = torch.tensor([[-1.0, 0.0, 1.0, -0.0], [1.0, 1.0, -1.0, 0.0]])
    loss(pred, y)  # valid
    y[1, 2] = bad
    assert y[1, 2].item() not in (-1.0, 0.0, 1.0)  # float32 kept it distinct
    with pytest.raises(InputError, match="expected"):
        loss(pred, y)


@pytest.mark.parametrize("bad", [0.5, 1 - 2**-24, float("nan")])
def test_fused_per_sample_set_check_in_blocks(bad: float) -> None:
    """A per-sample label set (cosine_embedding's y) is checked in blocks of 16384 labels: every block counts
    (the value placed in the last, partial block fails as one in the first), and valid labels pass."""
    loss = lossbridge.get("CosineEmbeddingLoss", backend="torch", convention="torch")
    n = 3 * 16384 + 5
    g = torch.Generator().manual_seed(4)
    x1, x2 = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    loss(x1, x2, y)  # valid
    assert loss.native_calls == 1
    for where in (0, n - 1):
        z = y.clone()
        z[where] = bad
        with pytest.raises(InputError, match="expected"):
            loss(x1, x2, z)


def test_namespace_sign_propagates_nan_and_keeps_signs() -> None:
    xp = TorchBackend().namespace()
    x = torch.tensor([float("nan"), -0.0, 0.0, -2.0, 3.0, float("inf"), -float("inf"), 1e-45])
    out = xp.sign(x)
    assert torch.isnan(out[0])
    assert out[1:].tolist() == [0.0, 0.0, -1.0, 1.0, 1.0, -1.0, 1.0]


def test_namespace_take_along_axis_equals_the_general_form() -> None:
    xp = TorchBackend().namespace()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, generator=g)
    idx = torch.tensor([[0], [5], [-1], [2]])
    torch.testing.assert_close(xp.take_along_axis(x, idx, axis=-1), torch.take_along_dim(x, idx % 6, dim=-1))
    broadcast = torch.tensor([[1, 2]])  # broadcast along the batch axis: the compat path
    torch.testing.assert_close(xp.take_along_axis(x, broadcast, axis=-1), torch.take_along_dim(x, broadcast, dim=-1))


@pytest.mark.parametrize("name", ["mse", "sparse_categorical_crossentropy"])
def test_compiled_loss_does_not_recompile_per_batch_size(name: str) -> None:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    loss = _generic(name)
    compiled = torch.compile(loss, fullgraph=True, dynamic=True, backend="eager")
    for n in (5, 7, 9):
        x = torch.randn(n, 4, requires_grad=True)
        y = torch.randint(0, 4, (n,)) if name != "mse" else torch.randn(n, 4)
        compiled(x, y).backward()
    counts = torch._dynamo.utils.counters["stats"]
    assert counts["unique_graphs"] == 1, dict(counts)
