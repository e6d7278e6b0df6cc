"""The eager spec path's list updates (one spec ``update`` over a whole param group, through
``torch._foreach_*``) against the per-tensor path and against torch.optim, in float64.

Every optimizer spec with a torch convention runs here; the list path must give the per-tensor
path's values exactly (each foreach kernel computes the per-tensor op) and torch.optim's within
1e-10, over steps where some parameters have no gradient (so step counts differ inside a group).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import lossbridge

# spec name -> [(native torch.optim class name, native kwargs)]; each case runs the list path, the
# per-tensor path and torch.optim with the same native keyword arguments
CASES: dict[str, list[dict[str, Any]]] = {
    "sgd": [{"lr": 0.05}, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
            {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "maximize": True}],
    "adam": [{"lr": 0.01}, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}],
    "adamw": [{"lr": 0.01, "betas": (0.8, 0.9)}],
    "rmsprop": [{"lr": 0.01}, {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1}],
    "adagrad": [{"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.1}],
    "adamax": [{"lr": 0.01, "weight_decay": 0.1}],
    "nadam": [{"lr": 0.01}, {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1}],
    "radam": [{"lr": 0.01}, {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1}],
    "adadelta": [{"lr": 0.5, "weight_decay": 0.1}],
    "asgd": [{"lr": 0.01, "t0": 3.0}],
    "rprop": [{"lr": 0.01}],
    "adafactor": [{"lr": 0.01}],
}
NATIVE = {
    "sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adamax": "Adamax",
    "nadam": "NAdam", "radam": "RAdam", "adadelta": "Adadelta", "asgd": "ASGD", "rprop": "Rprop",
    "adafactor": "Adafactor",
}
SHAPES = [(3,), (4, 5), (2, 3, 4), (), (5, 2), (4, 5)]
STEPS = 8


def _cases() -> list[Any]:
    return [pytest.param(name, kw, id=f"{name}-{k}") for name, kws in CASES.items() for k, kw in enumerate(kws)]


def _params() -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64) + 0.5) for s in SHAPES]


def _run(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> list[list[torch.Tensor]]:
    """Steps on a least-squares-plus-sine objective; parameter 1 has no gradient every third step."""
    history = []
    for t in range(STEPS):
        opt.zero_grad()
        loss = sum(((p - 0.3) ** 2).sum() + torch.sin(3.0 * p).sum() for p in params)
        loss.backward()
        if t % 3 == 1:
            params[1].grad = None
        opt.step()
        history.append([p.detach().clone() for p in params])
    return history


def _per_tensor(cls: type) -> type:
    """The same optimizer with list updates switched off (the per-tensor loop)."""
    return type(cls.__name__, (cls,), {"_group_mode": "off"})


@pytest.mark.parametrize(("name", "kw"), _cases())
def test_torch_list_update_equals_per_tensor_and_torch_optim(name: str, kw: dict[str, Any]) -> None:
    cls = lossbridge.get(name, backend="torch", convention="torch")
    listed = _run(cls(params := _params(), fused=False, **kw), params)
    assert cls._group_mode != "off", f"{name}: the list namespace could not run this spec"
    single = _run(_per_tensor(cls)(params := _params(), fused=False, **kw), params)
    for t, (a, b) in enumerate(zip(listed, single, strict=True)):
        for p, q in zip(a, b, strict=True):
            assert torch.equal(p, q), f"{name} step {t + 1}: list path differs from the per-tensor path"
    native_cls = getattr(torch.optim, NATIVE[name], None)
    if native_cls is None:
        pytest.skip(f"torch.optim.{NATIVE[name]} is not in this torch")
    native = _run(native_cls(params := _params(), **kw), params)
    for t, (a, b) in enumerate(zip(listed, native, strict=True)):
        for p, q in zip(a, b, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=f"{name} step {t + 1} vs torch.optim")


@pytest.mark.parametrize(
    "name", sorted(e.name for e in lossbridge.catalog(kind="optimizer") if lossbridge.spec(e.name).gradient_driven)
)
def test_torch_list_update_equals_per_tensor_for_every_optimizer_spec(name: str) -> None:
    # lossbridge's own defaults (no convention): per-tensor norms (LAMB, LARS), 0-d slots, shape branches
    cls = lossbridge.get(name, backend="torch")
    listed = _run(cls(params := _params(), fused=False), params)
    single = _run(_per_tensor(cls)(params := _params(), fused=False), params)
    for t, (a, b) in enumerate(zip(listed, single, strict=True)):
        for p, q in zip(a, b, strict=True):
            assert torch.equal(p, q), f"{name} step {t + 1}: list path differs from the per-tensor path"


def test_torch_large_tensors_run_tensor_by_tensor_next_to_listed_small_ones() -> None:
    # a group mixing tensors above and below the list threshold: both paths, one result
    cls = lossbridge.get("adam", backend="torch", convention="torch")
    gen = torch.Generator().manual_seed(1)
    shapes = [(3,), (100, 100), (7,)]

    def make() -> list[torch.nn.Parameter]:
        gen.manual_seed(1)
        return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]

    listed = _run(cls(params := make(), fused=False, lr=0.01), params)
    native = _run(torch.optim.Adam(params := make(), lr=0.01), params)
    for p, q in zip(listed[-1], native[-1], strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_torch_list_namespace_writes_only_its_own_temporaries() -> None:
    from lossbridge_torch import TensorList, foreach_namespace

    xp = foreach_namespace()
    f64 = torch.float64
    a = TensorList([torch.ones(3, dtype=f64), torch.ones(2, dtype=f64)])
    b = TensorList([torch.full((3,), 2.0, dtype=f64), torch.full((2,), 2.0, dtype=f64)])
    named = a * b  # a result held by a name: later operations must not write into it
    shifted = named + 1.0
    rooted = xp.sqrt(named)
    negated = 1.0 - named
    reused = (a * b) + 1.0  # a pure temporary: may be written in place
    viewed = xp.reshape(a, (-1,)) * 3.0  # a view of an input: never written in place
    picked = xp.where(torch.tensor(True), a, b)  # picks a whole list: a copy, never the input itself
    assert all(torch.equal(t, torch.ones_like(t)) for t in a.ts)
    assert all(torch.equal(t, torch.full_like(t, 2.0)) for t in (*b.ts, *named.ts))
    assert all(torch.equal(t, torch.full_like(t, 3.0)) for t in (*shifted.ts, *reused.ts, *viewed.ts))
    assert all(torch.equal(t, torch.full_like(t, 2.0**0.5)) for t in rooted.ts)
    assert all(torch.equal(t, torch.full_like(t, -1.0)) for t in negated.ts)
    assert all(p is not q and torch.equal(p, q) for p, q in zip(picked.ts, a.ts, strict=True))
    norms = xp.sqrt(xp.sum(a * a))  # a per-tensor reduction: one 0-d value per tensor, broadcast back
    assert [float(n) for n in norms.ts] == [3.0**0.5, 2.0**0.5]
    assert all(torch.equal(t, torch.ones_like(t) / n) for t, n in zip((a / norms).ts, norms.ts, strict=True))
