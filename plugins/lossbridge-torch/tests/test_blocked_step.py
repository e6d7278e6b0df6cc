"""The eager flat path's recorded program (see ``lossbridge_torch.recorded_programs``) against the per-tensor loop.

The spec's update runs once per group and step for real while recorded; every other chunk replays
the recorded torch calls, writing into registers and slots in place. The values must be the
per-tensor loop's bit for bit (the sign of zero included), for every elementwise spec with a torch
convention, in float32 and float64, with tensors cut into several chunks, packed small tensors, a
changed learning rate (a new recording) and a tensor learning rate.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from lossbridge_torch import eager_chunk_bytes, record_update, recorded_programs

import lossbridge

from ._bitwise import same_bits

CASES = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}),
    ("adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}),
    ("nadam", {"lr": 0.01}),
    ("nadam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("radam", {"lr": 0.01}),
    ("radam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamax", {"lr": 0.01, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("adadelta", {"lr": 0.5, "weight_decay": 0.1}),
    ("asgd", {"lr": 0.01, "t0": 3.0}),
    ("rprop", {"lr": 0.01}),
    ("rprop", {"lr": 0.01, "step_sizes": (1e-4, 1.0)}),
]
# a 0-d, small tensors packed into one chunk, and large ones cut into several chunks
SHAPES = [(3, 4), (), (5,), (1500,), (7, 1), (40, 70), (9,)]
STEPS = 5


def _params(dtype: torch.dtype) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype)) for s in SHAPES]


def _grads(params: list[torch.nn.Parameter], t: int) -> None:
    gen = torch.Generator().manual_seed(100 + t)
    for p in params:
        g = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        if t == 2:  # exact zeros: signs of zero and sign() at 0
            g = torch.where(g.abs() < 0.5, torch.zeros_like(g), g)
        p.grad = g


def _per_tensor(cls: type) -> type:
    return type(cls.__name__, (cls,), {"_group_mode": "off"})


def _flat_cls(cls: type) -> type:
    return type(cls.__name__, (cls,), {})


def _programs(opt: torch.optim.Optimizer) -> list[Any]:
    return recorded_programs(opt, "flat")


@pytest.fixture
def small_chunks() -> Any:
    """Chunks of 1 KB per array: the test tensors span several chunks and several are packed into one."""
    with eager_chunk_bytes(1024):
        yield


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "kw"), CASES, ids=[f"{n}-{k}" for k, (n, _) in enumerate(CASES)])
def test_torch_replayed_program_equals_per_tensor(name: str, kw: dict[str, Any], dtype: torch.dtype) -> None:
    cls = lossbridge.get(name, backend="torch", convention="torch")
    assert cls.bound.spec.elementwise
    flat_cls = _flat_cls(cls)
    flat = flat_cls(a := _params(dtype), fused=False, **kw)
    ref = _per_tensor(cls)(b := _params(dtype), fused=False, **kw)
    for t in range(STEPS):
        if t == 3:  # a scheduled lr: a new recording, the old program kept for its own hyperparameters
            for opt in (flat, ref):
                opt.param_groups[0]["lr"] = kw["lr"] / 2
        _grads(a, t)
        _grads(b, t)
        flat.step()
        ref.step()
        for p, q in zip(a, b, strict=True):
            assert same_bits(p, q), f"{name}: step {t}"
    assert flat_cls._flat_ok
    programs = _programs(flat)
    assert programs and all(prog is not None for prog in programs), f"{name}: not replayed"
    for p, q in zip(a, b, strict=True):
        for slot, value in ref.state[q].items():
            assert same_bits(flat.state[p][slot], value), f"{name}: slot {slot}"


@pytest.mark.usefixtures("small_chunks")
def test_torch_replay_with_a_tensor_lr() -> None:
    cls = lossbridge.get("adamax", backend="torch", convention="torch")
    lr_a, lr_b = torch.tensor(0.01, dtype=torch.float64), torch.tensor(0.01, dtype=torch.float64)
    flat = _flat_cls(cls)(a := _params(torch.float64), fused=False, lr=lr_a)
    ref = _per_tensor(cls)(b := _params(torch.float64), fused=False, lr=lr_b)
    for t in range(STEPS):
        for lr in (lr_a, lr_b):  # changed in place, as a scheduler may: the program reads it every step
            lr.fill_(0.01 / (t + 1))
        _grads(a, t)
        _grads(b, t)
        flat.step()
        ref.step()
    for p, q in zip(a, b, strict=True):
        assert same_bits(p, q)


def test_torch_program_writes_in_place() -> None:
    """RMSprop's recorded chunk allocates nothing: every call writes into a register or its slot."""
    cls = lossbridge.get("rmsprop", backend="torch", convention="torch")
    opt = _flat_cls(cls)(params := _params(torch.float32), fused=False, lr=0.01)
    _grads(params, 0)
    opt.step()
    (program,) = _programs(opt)
    (variant,) = program.variants.values()
    calls = [line for line in variant.source.splitlines() if line.startswith("    v") and "(" in line]
    assert calls and all("out=" in line for line in calls), variant.source


def test_torch_program_selects_a_branch() -> None:
    """A ``where`` on a value of the step (ASGD's averaging switch) runs only the chosen branch."""
    cls = lossbridge.get("asgd", backend="torch", convention="torch")
    opt = _flat_cls(cls)(params := _params(torch.float64), fused=False, lr=0.01, t0=2.0)
    for t in range(5):
        _grads(params, t)
        opt.step()
    (program,) = _programs(opt)
    assert program.selects and len(program.variants) == 2  # mu == 1 for the first steps, then not
    assert all("where" not in v.source for v in program.variants.values())


def test_torch_recording_refuses_value_reads() -> None:
    """An update that reads a chunk's values in Python cannot be replayed: it runs per chunk."""
    p, g, m = torch.randn(8), torch.randn(8), torch.zeros(8)
    step = torch.tensor(1.0)

    def reads_values(param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any) -> Any:
        scale = 2.0 if bool(grad[0] > 0) else 1.0
        return -scale * grad, {"m": state["m"] + grad}

    delta, values, program = record_update(reads_values, p, g, {"m": m}, step)
    assert program is None
    assert torch.equal(values["m"], g)

    def plain(param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any) -> Any:
        return -0.5 * grad / step, {"m": state["m"] * 0.9 + grad}

    delta, values, program = record_update(plain, p, g, {"m": m}, step)
    assert program is not None
    scalars, key = program.scalars(step)
    variant = program.variant(key)
    outs = variant.chunk(scalars, variant.registers(8, p), p, g, m.clone())
    assert same_bits(outs[0], delta) and same_bits(outs[1], values["m"])


# -- specs that are not elementwise: one recorded program per shape, replayed tensor by tensor -------
SHAPE_CASES = [
    ("adafactor", "torch", {"lr": 0.01}),
    ("adafactor", "torch", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    ("muon", "torch", {"lr": 0.01}),
    ("lamb", None, {"lr": 0.01}),
    ("lars", None, {"lr": 0.01}),
    ("novograd", None, {"lr": 0.01}),
    ("sm3", None, {"lr": 0.01}),
    ("fromage", None, {"lr": 0.01}),
]
# above the list update's size (8192 elements): tensor by tensor, shapes repeated
LARGE_SHAPES = [(100, 90), (9000,), (100, 90), (9000,), (90, 100)]


@pytest.mark.parametrize(("name", "conv", "kw"), SHAPE_CASES,
                         ids=[f"{n}-{k}" for k, (n, _, _) in enumerate(SHAPE_CASES)])
def test_torch_replayed_per_shape_equals_per_tensor(name: str, conv: str | None, kw: dict[str, Any]) -> None:
    cls = lossbridge.get(name, backend="torch", convention=conv)
    assert not cls.bound.spec.elementwise

    def params() -> list[torch.nn.Parameter]:
        gen = torch.Generator().manual_seed(0)
        return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float32)) for s in LARGE_SHAPES]

    fast = _flat_cls(cls)(a := params(), fused=False, **kw)
    ref = _per_tensor(cls)(b := params(), fused=False, **kw)
    for t in range(4):
        _grads(a, t)
        _grads(b, t)
        fast.step()
        ref.step()
        for p, q in zip(a, b, strict=True):
            assert same_bits(p, q), f"{name}: step {t}"
    for p, q in zip(a, b, strict=True):
        for slot, value in ref.state[q].items():
            assert same_bits(fast.state[p][slot], value), f"{name}: slot {slot}"
    replayed = [prog for prog in recorded_programs(fast, "shape") if prog is not None]
    assert replayed or name == "muon", f"{name}: no shape was replayed"


@pytest.mark.parametrize("name", ["nadam", "radam", "adamax", "rmsprop", "asgd", "adafactor"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
def test_torch_low_precision_replay_equals_per_tensor(name: str, dtype: torch.dtype) -> None:
    """Low precision: a shared 0-d slot the update returns in float32 (NAdam's mu_product for a bfloat16
    parameter) is rebound as the per-tensor path does, not rounded into the parameter's dtype."""
    cls = lossbridge.get(name, backend="torch", convention="torch")

    def params() -> list[torch.nn.Parameter]:
        gen = torch.Generator().manual_seed(0)
        return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in [(300, 200), (50000,), (300, 200)]]

    fast = _flat_cls(cls)(a := params(), fused=False, lr=0.01)
    ref = _per_tensor(cls)(b := params(), fused=False, lr=0.01)
    for t in range(4):
        for ps in (a, b):
            gen = torch.Generator().manual_seed(10 + t)
            for p in ps:
                p.grad = torch.randn(p.shape, generator=gen).to(dtype)
        fast.step()
        ref.step()
        for p, q in zip(a, b, strict=True):
            assert same_bits(p, q), f"{name} {dtype}: step {t}"
