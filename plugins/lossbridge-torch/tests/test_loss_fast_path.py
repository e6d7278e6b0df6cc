"""The eager fast path of torch losses (reduction folded into the spec-gradient Function) and the
compile-friendly namespace: the same values and gradients as the general path and the NumPy float64
reference, the core's errors for invalid values, and one compiled graph for every batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lossbridge_torch._backend import TorchBackend
from lossbridge_torch._namespace import namespace

import lossbridge
from lossbridge import InputError


def _generic(name: str, **params: object) -> torch.nn.Module:
    """The generic spec-path module under the torch convention: the fast path this file tests. (The torch
    convention's ``lossbridge.get`` returns the verified F.* kernel for these losses: test_native_loss_paths.)"""
    native = lossbridge.get(name, backend="torch", convention="torch", **params)
    return TorchBackend().materialize_loss(native._bound)


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
    return value.detach(), grad


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
    assert loss.__dict__.get("_fast_cache") and any(loss.__dict__["_fast_cache"].values()), "fast path not taken"
    ref_params = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    ref_value, ref_grad = _reference(name, args, reduction=reduction, **ref_params)
    np.testing.assert_allclose(float(value), ref_value, rtol=1e-12)
    np.testing.assert_allclose(grad.numpy(), ref_grad, rtol=1e-10, atol=1e-14)


def test_fast_path_equals_the_general_path_with_sample_weights_of_one() -> None:
    """A ``sample_weight`` call takes the general path; weights of one give the same numbers."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    loss = _generic("huber")
    fast, fast_grad = _ours(loss, [x, y])
    pred = x.clone().requires_grad_(True)
    general = loss(pred, y, sample_weight=torch.ones(6, 4))
    (general_grad,) = torch.autograd.grad(general, pred)
    torch.testing.assert_close(fast, general.detach(), rtol=1e-6, atol=0)
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
                                            ("hinge_embedding", 0.0), ("multilabel_soft_margin", 2.0)])
def test_fused_set_checks_still_raise_the_core_error(name: str, bad: float) -> None:
    loss = _generic(name)
    x1, x2 = torch.randn(4, 3), torch.randn(4, 3)
    y = torch.ones(4, 3) if name != "hinge_embedding" else -torch.ones(4, 3)
    args = (x1, x2, y) if name == "margin_ranking" else (x1, y)
    loss(*args)  # valid
    y[2, 1] = bad
    with pytest.raises(InputError, match="expected"):
        loss(*args)


def test_namespace_sign_propagates_nan_and_keeps_signs() -> None:
    xp = namespace()
    x = torch.tensor([float("nan"), -0.0, 0.0, -2.0, 3.0, float("inf"), -float("inf"), 1e-45])
    out = xp.sign(x)
    assert torch.isnan(out[0])
    assert out[1:].tolist() == [0.0, 0.0, -1.0, 1.0, 1.0, -1.0, 1.0]


def test_namespace_take_along_axis_equals_the_general_form() -> None:
    xp = namespace()
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
