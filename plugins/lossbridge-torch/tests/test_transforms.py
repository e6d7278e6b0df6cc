"""Gradient transforms on torch: ``step()`` rewrites ``p.grad``; chains, param groups, state, accumulation."""

from __future__ import annotations

import copy

import pytest
import torch
from lossbridge_torch import SpecTransform, TransformChain

import lossbridge


def _params() -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(4, 3, generator=gen, dtype=torch.float64)),
            torch.nn.Parameter(torch.randn(3, generator=gen, dtype=torch.float64))]


def _set_grads(params: list[torch.nn.Parameter], scale: float = 3.0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale for p in params]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    return grads


def test_transform_class_rewrites_grads_not_params() -> None:
    params = _params()
    before = [p.detach().clone() for p in params]
    grads = _set_grads(params)
    Clip = lossbridge.get("clip_grad_norm_", backend="torch", convention="torch")
    assert issubclass(Clip, SpecTransform) and isinstance(Clip(params, max_norm=1.0), torch.optim.Optimizer)
    clip = Clip(params, max_norm=1.0)
    clip.step()
    ref = [g.clone().requires_grad_(False) for g in grads]
    holders = [torch.nn.Parameter(torch.zeros_like(g)) for g in ref]
    for h, g in zip(holders, ref, strict=True):
        h.grad = g
    torch.nn.utils.clip_grad_norm_(holders, 1.0)
    for p, b, h in zip(params, before, holders, strict=True):
        assert torch.equal(p.detach(), b)
        torch.testing.assert_close(p.grad, h.grad, rtol=1e-14, atol=0)
    assert float(clip.state["global"]["norm"]) > 1.0


def test_param_groups_must_agree_for_a_global_transform() -> None:
    a, b = _params()
    _set_grads([a, b])
    Clip = lossbridge.get("clip_by_global_norm", backend="torch")
    clip = Clip([{"params": [a]}, {"params": [b], "max_norm": 2.0}])
    with pytest.raises(lossbridge.InputError, match="same hyperparameters"):
        clip.step()
    per_tensor = lossbridge.get("clip_by_norm", backend="torch")([{"params": [a]}, {"params": [b], "threshold": 0.5}])
    per_tensor.step()
    assert float(torch.linalg.vector_norm(b.grad)) == pytest.approx(0.5, rel=1e-14)


def test_chain_factory_and_torch_names() -> None:
    params = _params()
    Chained = lossbridge.chain(lossbridge.get("clip_grad_value_", backend="torch", convention="torch", clip_value=0.1),
                               torch.optim.SGD)
    opt = Chained(params, lr=1.0)
    assert isinstance(opt, TransformChain) and opt.param_groups is opt.optimizer.param_groups
    before = [p.detach().clone() for p in params]
    grads = _set_grads(params)
    opt.step()
    for p, b, g in zip(params, before, grads, strict=True):
        torch.testing.assert_close(p.detach(), b - g.clamp(-0.1, 0.1), rtol=1e-14, atol=1e-15)


def test_ema_transform_state_dict_round_trip() -> None:
    params = _params()
    ema = lossbridge.get("ema", backend="torch", decay=0.5)(params)
    _set_grads(params)
    ema.step()
    saved = copy.deepcopy(ema.state_dict())  # as torch.save / torch.load would give it
    fresh = lossbridge.get("ema", backend="torch", decay=0.5)(params)
    fresh.load_state_dict(saved)
    _set_grads(params, 1.0)
    ema.step()
    expected = [p.grad.clone() for p in params]
    _set_grads(params, 1.0)
    fresh.step()
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, e, rtol=1e-15, atol=0)


def test_chain_accumulate_leaves_params_until_the_kth_step() -> None:
    params = _params()
    opt = lossbridge.chain(lossbridge.get("centralize", backend="torch"), torch.optim.SGD(params, lr=0.1),
                           accumulate=2)
    before = [p.detach().clone() for p in params]
    _set_grads(params)
    opt.step()
    opt.zero_grad()
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before, strict=True))
    _set_grads(params)
    opt.step()
    assert not torch.equal(params[0].detach(), before[0])


def test_chain_refuses_an_optimizer_before_a_transform() -> None:
    params = _params()
    with pytest.raises(lossbridge.ParameterError, match="not a lossbridge torch transform"):
        lossbridge.chain(torch.optim.SGD(params, lr=0.1), lossbridge.get("clip", backend="torch")(params))
