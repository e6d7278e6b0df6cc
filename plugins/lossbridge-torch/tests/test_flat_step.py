"""Whole-group (flat) updates of elementwise specs (``lossbridge_torch._flat``) against the per-tensor loop.

The eager flat path must give the per-tensor path's values bit for bit (the spec's ``update`` over a
concatenation is the concatenation of its updates: ``OptimizerSpec.elementwise``); the compiled
path within float rounding. The state keeps torch's per-parameter layout (``state[p][slot]`` shaped
like ``p``), survives ``state_dict`` / ``load_state_dict`` (and a deep copy), and any change made
to it from outside (a slot replaced by hand, a step of another engine) is picked up.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

import lossbridge

# shapes: small ones (flat), a 0-d and a non-contiguous-free mix, one large tensor (per tensor eagerly)
SHAPES = [(3, 4), (5,), (), (2, 3, 2), (7, 1), (40000,)]
CASES = [
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    ("adamw", {"lr": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("nadam", {"lr": 0.01}),  # a shared 0-d slot (mu_product)
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("adagrad", {"lr": 0.1}),
    ("adadelta", {"lr": 0.5}),
    ("adamax", {"lr": 0.01}),
    ("radam", {"lr": 0.01}),
    ("asgd", {"lr": 0.01, "t0": 3.0}),
    ("rprop", {"lr": 0.01}),
]
STEPS = 6


def _params(dtype: torch.dtype = torch.float64, shapes: list[Any] = SHAPES) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype)) for s in shapes]


def _grads(params: list[torch.nn.Parameter], t: int) -> None:
    gen = torch.Generator().manual_seed(100 + t)
    for k, p in enumerate(params):
        p.grad = None if (t % 3 == 1 and k == 1) else torch.randn(p.shape, generator=gen, dtype=p.dtype)


def _run(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], steps: int = STEPS) -> None:
    for t in range(steps):
        _grads(params, t)
        opt.step()


def _per_tensor(cls: type) -> type:
    return type(cls.__name__, (cls,), {"_group_mode": "off"})


def _flat(cls: type) -> type:
    return type(cls.__name__, (cls,), {})


@pytest.mark.parametrize(("name", "kw"), CASES, ids=[f"{n}-{k}" for k, (n, _) in enumerate(CASES)])
def test_torch_flat_equals_per_tensor(name: str, kw: dict[str, Any]) -> None:
    cls = lossbridge.get(name, backend="torch", convention="torch")
    assert cls.bound.spec.elementwise
    flat_cls = _flat(cls)
    flat = flat_cls(a := _params(), fused=False, **kw)
    ref = _per_tensor(cls)(b := _params(), fused=False, **kw)
    _run(flat, a)
    _run(ref, b)
    assert flat_cls._flat_ok, f"{name}: the flat update failed and fell back"
    assert flat.__dict__.get("_flat_cache"), f"{name}: no flat group was built"
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)
        assert set(flat.state[p]) == set(ref.state[q])
        for slot, value in ref.state[q].items():
            assert flat.state[p][slot].shape == value.shape, f"{slot}: torch's per-parameter layout"
            assert torch.equal(flat.state[p][slot], value), f"{name}: slot {slot}"


def test_torch_flat_state_is_views_of_one_buffer() -> None:
    cls = _flat(lossbridge.get("adam", backend="torch", convention="torch"))
    opt = cls(params := _params(shapes=[(3, 4), (5,), (2, 2)]), fused=False)
    _run(opt, params, 1)
    bases = {opt.state[p]["m"]._base.data_ptr() for p in params if opt.state[p]["m"]._base is not None}
    assert len(bases) == 1, "m of every parameter views one flat buffer"


def test_torch_flat_state_dict_round_trip() -> None:
    cls = lossbridge.get("adam", backend="torch", convention="torch")
    opt = _flat(cls)(a := _params(), fused=False, lr=0.01)
    _run(opt, a, 3)
    saved = copy.deepcopy(opt.state_dict())
    for state in saved["state"].values():
        assert all(v.ndim == 0 or not v._is_view() or v.numel() > 0 for v in state.values())
    # a fresh optimizer on copies of the parameters, loaded, continues exactly as the original
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    other = _flat(cls)(b, fused=False, lr=0.01)
    other.load_state_dict(saved)
    for t in range(3, 6):
        _grads(a, t)
        _grads(b, t)
        opt.step()
        other.step()
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)
        assert torch.equal(opt.state[p]["v"], other.state[q]["v"])


def test_torch_flat_picks_up_state_changed_outside() -> None:
    cls = lossbridge.get("sgd", backend="torch", convention="torch")
    opt = _flat(cls)(a := _params(shapes=[(3,), (4,)]), fused=False, lr=0.1, momentum=0.9)
    ref = _per_tensor(cls)(b := _params(shapes=[(3,), (4,)]), fused=False, lr=0.1, momentum=0.9)
    _run(opt, a, 2)
    _run(ref, b, 2)
    opt.state[a[0]]["momentum_buffer"] = torch.zeros(3, dtype=torch.float64)  # replaced by hand
    ref.state[b[0]]["momentum_buffer"] = torch.zeros(3, dtype=torch.float64)
    slot = next(k for k in opt.state[a[1]] if k != "step")
    opt.state[a[1]][slot].mul_(0.5)  # written in place through the view
    ref.state[b[1]][slot].mul_(0.5)
    for t in range(2, 5):
        _grads(a, t)
        _grads(b, t)
        opt.step()
        ref.step()
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)


def test_torch_flat_float32_and_complex() -> None:
    cls = lossbridge.get("adam", backend="torch", convention="torch")
    for dtype in (torch.float32, torch.complex64):
        a, b = _params(dtype, [(3, 4), (5,), (6,)]), _params(dtype, [(3, 4), (5,), (6,)])
        _run(_flat(cls)(a, fused=False, lr=0.01), a)
        _run(_per_tensor(cls)(b, fused=False, lr=0.01), b)
        for p, q in zip(a, b, strict=True):
            assert torch.equal(p, q), dtype


def test_torch_flat_mixed_dtypes_split_into_groups() -> None:
    cls = lossbridge.get("adam", backend="torch", convention="torch")

    def make() -> list[torch.nn.Parameter]:
        return _params(torch.float64, [(3,), (4,)]) + _params(torch.float32, [(2, 2), (5,)])

    a, b = make(), make()
    _run(_flat(cls)(a, fused=False), a)
    _run(_per_tensor(cls)(b, fused=False), b)
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)


def test_torch_flat_not_used_for_a_spec_without_the_flag() -> None:
    cls = lossbridge.get("lamb", backend="torch")
    assert not cls.bound.spec.elementwise
    opt = cls(params := _params(shapes=[(3,), (4,)]), fused=False)
    _run(opt, params, 2)
    assert not opt.__dict__.get("_flat_cache")


def test_torch_flat_compiled_close_to_per_tensor() -> None:
    pytest.importorskip("torch._inductor")
    cls = lossbridge.get("adam", backend="torch", convention="torch")
    # one group of small tensors (gathered into one vector), one of large ones (batched, in place)
    small, large = [(3, 4), (5,)], [(40000,), (33000,)]
    a = _params(torch.float64, small) + _params(torch.float64, large)
    b = _params(torch.float64, small) + _params(torch.float64, large)
    opt = _flat(cls)([{"params": a[:2]}, {"params": a[2:]}], fused=False, compile=True, lr=0.01)
    _run(opt, a, 3)
    assert type(opt)._flat_compiled, "torch.compile of the flat update failed"
    _run(_per_tensor(cls)([{"params": b[:2]}, {"params": b[2:]}], fused=False, lr=0.01), b, 3)
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
