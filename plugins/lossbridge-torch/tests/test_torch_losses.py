"""Losses as torch.nn.Module: drop-in behaviour, dtypes, layouts, errors and torch.compile."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossbridge
from lossbridge import InputError, ParameterError


def _ce(**params: object) -> torch.nn.Module:
    return lossbridge.get("sparse_categorical_crossentropy", backend="torch", convention="torch", **params)


def test_loss_is_an_nn_module_that_drops_in_for_torch_losses() -> None:
    mse = lossbridge.get("mse", backend="torch")
    assert isinstance(mse, torch.nn.Module)
    model = torch.nn.Linear(3, 2).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    mse(model(x), y).backward()
    ours = model.weight.grad.clone()
    model.zero_grad()
    torch.nn.MSELoss()(model(x), y).backward()
    torch.testing.assert_close(ours, model.weight.grad, rtol=1e-12, atol=0)
    assert "mse" in repr(mse)


def test_reduction_is_a_torch_style_attribute() -> None:
    mse = lossbridge.get("mse", backend="torch", reduction="sum")
    x, y = torch.randn(4, 2), torch.randn(4, 2)
    torch.testing.assert_close(mse(x, y), F.mse_loss(x, y, reduction="sum"))
    mse.reduction = "none"
    assert mse(x, y).shape == (4, 2)
    with pytest.raises(ParameterError, match=r"'reduction' expects one of .*got 'avg'"):
        mse.reduction = "avg"


def test_torch_keyword_names_are_aliases_of_the_spec_names() -> None:
    w = torch.tensor([1.0, 3.0, 2.0])
    by_torch_name, by_spec_name = _ce(weight=w), _ce(class_weight=w)
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    torch.testing.assert_close(by_torch_name(x, y), by_spec_name(x, y))
    torch.testing.assert_close(by_torch_name(x, y), F.cross_entropy(x, y, weight=w))
    assert torch.equal(by_torch_name.weight, w)
    with pytest.raises(ParameterError, match="either 'weight' or 'class_weight'"):
        _ce(weight=w, class_weight=w)


def test_ignore_index_defaults_to_torch_under_the_torch_convention() -> None:
    loss = _ce()
    assert loss.ignore_index == -100
    x, y = torch.randn(4, 3), torch.tensor([0, -100, 2, 1])
    torch.testing.assert_close(loss(x, y), F.cross_entropy(x, y))


def test_dtype_and_device_follow_the_inputs() -> None:
    loss = _ce(weight=torch.tensor([1.0, 2.0, 3.0]))
    x32, y = torch.randn(4, 3, requires_grad=True), torch.tensor([0, 1, 2, 1])
    out = loss(x32, y)
    out.backward()
    assert out.dtype == torch.float32 and x32.grad.dtype == torch.float32
    x64 = x32.detach().double().requires_grad_()
    assert loss(x64, y).dtype == torch.float64  # float32 class weights are cast to the input's dtype
    moved = loss.to("cpu", torch.float64)
    assert moved.weight.dtype == torch.float64 and moved.bound.class_weight is moved.weight


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_is_computed_in_float32(dtype: torch.dtype) -> None:
    logits = (torch.randn(64, 10) * 4).to(dtype).requires_grad_()
    labels = torch.randint(0, 10, (64,))
    out = _ce()(logits, labels)
    out.backward()
    assert out.dtype == dtype and logits.grad.dtype == dtype
    expected = F.cross_entropy(logits.detach().float(), labels)
    eps = float(torch.finfo(dtype).eps)
    assert abs(float(out.detach()) - float(expected)) <= 2 * eps * abs(float(expected))


def test_three_input_losses_take_the_spec_order() -> None:
    a, p, n = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)
    loss = lossbridge.get("triplet_margin", backend="torch", convention="torch")
    torch.testing.assert_close(loss(a, p, n), F.triplet_margin_loss(a, p, n))


def test_sample_weight_keyword() -> None:
    mse = lossbridge.get("mse", backend="torch")
    x, y = torch.randn(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64)
    w = torch.rand(4).double()
    expected = ((x**2) * w[:, None]).sum() / (w.sum() * 2)  # weighted mean over the weights
    torch.testing.assert_close(mse(x, y, sample_weight=w), expected, rtol=1e-12, atol=0)


def test_mixed_frameworks_in_one_call_are_an_input_error() -> None:
    mse = lossbridge.get("mse", backend="torch")
    expected = r"y_true \(argument 2\): expected a torch\.Tensor .* got numpy\.ndarray"
    with pytest.raises(InputError, match=expected):
        mse(torch.zeros(3), np.zeros(3))
    with pytest.raises(InputError, match=r"sample_weight: expected a torch\.Tensor"):
        mse(torch.zeros(3), torch.zeros(3), sample_weight=[1.0, 1.0, 1.0])


def test_bad_inputs_name_the_argument() -> None:
    mse = lossbridge.get("mse", backend="torch")
    with pytest.raises(InputError, match=r"y_true: expected shape \(3,\) .*got \(4,\)"):
        mse(torch.zeros(3), torch.zeros(4))
    with pytest.raises(InputError, match="y_pred: expected a floating-point array, got dtype int64"):
        mse(torch.zeros(3, dtype=torch.int64), torch.zeros(3))
    with pytest.raises(InputError, match=r"y_true: expected class indices in \[0, 2\]"):
        _ce()(torch.zeros(2, 3), torch.tensor([0, 5]))
    bce = lossbridge.get("bce", backend="torch")
    with pytest.raises(InputError, match="y_pred: expected probabilities"):
        bce(torch.tensor([1.5, 0.5]), torch.tensor([1.0, 0.0]))
    with pytest.raises(TypeError, match="expected 2 arrays"):
        mse(torch.zeros(3))


def test_k_dim_class_axis_first_under_the_torch_convention() -> None:
    x, y = torch.randn(2, 5, 3, 4), torch.randint(0, 5, (2, 3, 4))
    loss = _ce(reduction="none")
    assert loss.bound.rules.class_axis == 1
    torch.testing.assert_close(loss(x, y), F.cross_entropy(x, y, reduction="none"))
    own = lossbridge.get("sparse_categorical_crossentropy", backend="torch", from_logits=True,
                         reduction="none")
    assert own.bound.rules.class_axis == -1
    torch.testing.assert_close(own(x.movedim(1, -1), y), F.cross_entropy(x, y, reduction="none"))


def _graph_breaks(fn: object, *args: torch.Tensor) -> int:
    torch._dynamo.reset()
    return torch._dynamo.explain(fn)(*args).graph_break_count


@pytest.mark.parametrize(
    ("name", "params", "make"),
    [
        ("mse", {}, lambda: (torch.randn(8, 3), torch.randn(8, 3))),
        ("bce", {"from_logits": True}, lambda: (torch.randn(8, 3), torch.randint(0, 2, (8, 3)).float())),
        ("sparse_categorical_crossentropy", {"weight": torch.rand(4), "label_smoothing": 0.1},
         lambda: (torch.randn(8, 4), torch.tensor([0, 1, 2, 3, -100, 1, 2, 3]))),
        ("triplet_margin", {}, lambda: (torch.randn(8, 3), torch.randn(8, 3), torch.randn(8, 3))),
    ],
    ids=["mse", "bce", "ce", "triplet"],
)
def test_losses_trace_without_graph_breaks(name: str, params: dict, make: object) -> None:
    loss = lossbridge.get(name, backend="torch", convention="torch", **params)
    args = make()  # type: ignore[operator]
    assert _graph_breaks(loss, *args) == 0
    compiled = torch.compile(loss, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(*args), loss(*args))


def test_dynamic_shapes_compile_without_graph_breaks() -> None:
    # array_api_compat's clip calls math.isnan on its bounds, a graph break for symbolic floats;
    # the plugin's namespace routes scalar bounds to torch.clamp
    bce = lossbridge.get("bce", backend="torch", convention="keras")  # clips p to [1e-7, 1 - 1e-7]
    compiled = torch.compile(bce, fullgraph=True, dynamic=True, backend="eager")
    for n in (5, 9):
        p, y = torch.rand(n, 3) * 0.9 + 0.05, torch.randint(0, 2, (n, 3)).float()
        torch.testing.assert_close(compiled(p, y), bce(p, y))


def test_torch_compile_fullgraph_inductor_values_and_gradients() -> None:
    loss = _ce()
    x, y = torch.randn(16, 10, requires_grad=True), torch.randint(0, 10, (16,))
    compiled = torch.compile(loss, fullgraph=True)
    out = compiled(x, y)
    out.backward()
    x2 = x.detach().clone().requires_grad_()
    F.cross_entropy(x2, y).backward()
    torch.testing.assert_close(out, F.cross_entropy(x2.detach(), y))
    torch.testing.assert_close(x.grad, x2.grad)


def test_importing_lossbridge_and_loading_plugins_does_not_import_torch() -> None:
    code = (
        "import sys, lossbridge; lossbridge.available_backends(); lossbridge.catalog();"
        "import lossbridge_torch, lossbridge_torch.plugin;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ctc_module_takes_torch_native_arguments() -> None:
    """``CTCLoss()(log_probs (T, N, C), targets, input_lengths, target_lengths)`` with tuple lengths, and a
    user ``distance_function`` for TripletMarginWithDistanceLoss differentiated by autograd."""
    torch.manual_seed(0)
    log_probs = torch.randn(6, 2, 4, dtype=torch.float64).log_softmax(-1).requires_grad_()
    targets = torch.tensor([[1, 2, 3], [2, 2, 0]])
    ours = lossbridge.get("CTCLoss", backend="torch", convention="torch", reduction="sum")
    native = torch.nn.CTCLoss(reduction="sum")
    value = ours(log_probs, targets, (6, 5), (3, 2))
    torch.testing.assert_close(value, native(log_probs, targets, (6, 5), (3, 2)), rtol=1e-12, atol=0)
    (grad,) = torch.autograd.grad(value, log_probs)
    assert grad.shape == log_probs.shape
    with pytest.raises(InputError, match="input_lengths"):
        ours(log_probs, targets, torch.ones(2, 6), (3, 2))
    x = [torch.randn(5, 3, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    triplet = lossbridge.get("TripletMarginWithDistanceLoss", backend="torch", convention="torch",
                             distance_function=torch.nn.PairwiseDistance(p=1.0))
    ref = torch.nn.TripletMarginWithDistanceLoss(distance_function=torch.nn.PairwiseDistance(p=1.0))
    torch.testing.assert_close(triplet(*x), ref(*x), rtol=1e-12, atol=0)


def test_margin_ranking_takes_torch_argument_order():
    # torch's MarginRankingLoss(x1, x2, y): both scores first, then the sign labels
    import lossbridge

    gen = torch.Generator().manual_seed(3)
    x1 = torch.randn(6, dtype=torch.float64, generator=gen, requires_grad=True)
    x2 = torch.randn(6, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    ours = lossbridge.get("MarginRankingLoss", backend="torch", convention="torch", margin=0.3)(x1, x2, y)
    (g1, g2) = torch.autograd.grad(ours, (x1, x2))
    native = torch.nn.MarginRankingLoss(margin=0.3)(x1, x2, y)
    (n1, n2) = torch.autograd.grad(native, (x1, x2))
    torch.testing.assert_close(ours, native, rtol=1e-12, atol=0)
    torch.testing.assert_close((g1, g2), (n1, n2), rtol=1e-12, atol=0)
