"""Gradient transforms on torch run recorded programs (``lossbridge_torch.recorded_programs(t, "transform")``).

A transform's ``step()`` records its update once per shape and replays it for the other tensors of that
shape, writing the new gradient into ``p.grad`` in place; a global transform (clip_by_global_norm) does the
same for its per-tensor partial sums. The gradients must be bit for bit what the spec's update gives through
``BoundOptimizer.update`` / ``update_all`` tensor by tensor (the expected values come from the spec's own
update on the same backend, not from the replay), at signed zeros and clipped bounds included.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from array_api_compat import array_namespace
from lossbridge_torch import recorded_programs

import lossbridge
from lossbridge.bound import bind

from ._bitwise import same_bits

CASES = [
    ("clip", "torch", {"max_delta": 0.5}),
    ("clip", None, {"max_delta": 0.0}),
    ("clip_by_global_norm", "torch", {"max_norm": 1.0}),
    ("clip_by_global_norm", "optax", {"max_norm": 1e6}),  # not clipped: scale 1
    ("clip_by_global_norm", None, {"max_norm": 1.0, "norm_type": 3.0}),
    ("clip_by_norm", None, {"threshold": 1.0}),
    ("centralize", None, {}),
    ("ema", None, {}),
    ("adaptive_grad_clip", None, {}),
]
SHAPES = [(30, 20), (30, 20), (7,), (5, 4, 3), (30, 20), ()]
STEPS = 4


def _grads(t: int, dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(50 + t)
    out = []
    for s in SHAPES:
        g = (torch.randn(s, generator=gen, dtype=torch.float64) * 2).to(dtype)
        if t == 1 and g.ndim:  # exact zeros of both signs and values at the clip bounds
            flat = g.view(-1)
            flat[0], flat[1], flat[2], flat[3] = 0.0, -0.0, 0.5, -0.5
        out.append(g)
    return out


def _reference(name: str, conv: str | None, kw: dict[str, Any], params: list[torch.Tensor],
               grads_per_step: list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """The spec's update tensor by tensor (``update_all`` for a global transform), per step."""
    bound = bind(lossbridge.spec(name), convention=conv, params=kw)
    xp = array_namespace(params[0])
    states = [bound.init(p, xp=xp) for p in params]
    glob = bound.init_global(dtype=params[0].dtype, xp=xp) if bound.spec.global_slots else None
    out = []
    for t, grads in enumerate(grads_per_step):
        steps = [torch.tensor(float(t + 1), dtype=p.dtype) for p in params]
        if bound.spec.global_slots:
            news, states, glob = bound.update_all(params, grads, states, glob, steps=steps, xp=xp)
        else:
            pairs = [bound.update(p, g, s, step=k, xp=xp) for p, g, s, k in zip(params, grads, states, steps,
                                                                               strict=True)]
            news, states = [n for n, _ in pairs], [s for _, s in pairs]
        out.append(news)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "conv", "kw"), CASES, ids=[f"{n}-{k}" for k, (n, _, _) in enumerate(CASES)])
def test_torch_transform_replay_equals_spec_update(name: str, conv: str | None, kw: dict[str, Any],
                                                   dtype: torch.dtype) -> None:
    cls = lossbridge.get(name, backend="torch", convention=conv, **kw)
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype)) for s in SHAPES]
    transform = cls(params)
    grads_per_step = [_grads(t, dtype) for t in range(STEPS)]
    expected = _reference(name, conv, kw, [p.detach().clone() for p in params],
                          [[g.clone() for g in gs] for gs in grads_per_step])
    for t in range(STEPS):
        for p, g in zip(params, grads_per_step[t], strict=True):
            p.grad = g.clone()
        ptrs = [p.grad.data_ptr() for p in params]
        transform.step()
        assert [p.grad.data_ptr() for p in params] == ptrs  # rewritten in place
        for k, (p, want) in enumerate(zip(params, expected[t], strict=True)):
            assert same_bits(p.grad, want), f"{name}: step {t}, tensor {k}"
        assert all(float(transform.state[p]["step"]) == t + 1 for p in params)


@pytest.mark.parametrize("name", ["clip", "clip_by_global_norm"])
def test_torch_transform_is_replayed_in_place(name: str) -> None:
    """clip and clip_by_global_norm record once per shape; clip's program is one clamp into the gradient."""
    cls = lossbridge.get(name, backend="torch", convention="torch")
    params = [torch.nn.Parameter(torch.randn(40, 30)) for _ in range(4)]
    transform = cls(params)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(40, 30) * 3
        transform.step()
    programs = recorded_programs(transform, "transform")
    assert programs and all(prog is not None for prog in programs)
    if name == "clip":
        (program,) = programs
        (variant,) = program.variants.values()
        calls = [line for line in variant.source.splitlines() if line.startswith("    v")]
        assert len(calls) == 1 and "torch.clamp(" in calls[0] and "out=" in calls[0], variant.source


def test_torch_transform_state_dict_round_trip() -> None:
    """The step counters (views of one buffer per run of parameters) save and load as torch's 0-d tensors."""
    cls = lossbridge.get("ema", backend="torch")
    gen = torch.Generator().manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in [(6, 5), (6, 5), (4,)]]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ta, tb = cls(a), cls(b)
    for t in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in a]
        for p, q, g in zip(a, b, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        ta.step()
        if t == 2:  # b's transform is rebuilt from a's saved state, then both go on
            tb = cls(b)
            tb.load_state_dict(copy.deepcopy(ta.state_dict()))
        elif t > 2:
            tb.step()
        if t >= 2:
            for p, q in zip(a, b, strict=True):
                if t > 2:
                    assert same_bits(p.grad, q.grad)
                assert float(ta.state[p]["step"]) == float(tb.state[q]["step"]) == t + 1
    saved = ta.state_dict()["state"][0]["step"]
    assert saved.ndim == 0 and saved.dtype == torch.float32 and float(saved) == 5.0


def test_torch_transform_counter_written_by_hand() -> None:
    """A step counter replaced by hand is taken as the truth (the shared buffer is rebuilt from it)."""
    cls = lossbridge.get("clip", backend="torch", convention="torch")
    params = [torch.nn.Parameter(torch.randn(5)) for _ in range(3)]
    transform = cls(params, clip_value=0.1)
    for p in params:
        p.grad = torch.randn(5)
    transform.step()
    for p in params:
        transform.state[p]["step"] = torch.tensor(7.0)
        p.grad = torch.randn(5)
    transform.step()
    assert [float(transform.state[p]["step"]) for p in params] == [8.0, 8.0, 8.0]
