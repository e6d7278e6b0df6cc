"""Drop-in fidelity of the torch optimizers: torch's flags, complex params, GradScaler, state_dicts."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

import lossbridge  # noqa: E402
from lossbridge.errors import InputError  # noqa: E402


def _problem(dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3, generator=gen, dtype=torch.float64).to(dtype))
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64).to(dtype)
    return w, x


def _run(cls, steps=5, **kw):
    w, x = _problem()
    opt = cls([w], **kw)
    for _ in range(steps):
        opt.zero_grad()
        ((x @ w.T) ** 2).sum().backward()
        opt.step()
    return w.detach().clone()


@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop", "Adagrad"])
def test_torch_maximize_matches_torch(name):
    ours = lossbridge.get(name, backend="torch", convention="torch")
    native = getattr(torch.optim, name)
    kw = {"lr": 0.01, "weight_decay": 0.1, "maximize": True}
    torch.testing.assert_close(_run(ours, **kw), _run(native, **kw), rtol=1e-12, atol=0)


@pytest.mark.parametrize("flags", [{"foreach": True}, {"foreach": False}, {"differentiable": False},
                                   {"capturable": False}, {"fused": True}, {"fused": False}])
def test_torch_flags_are_speed_hints(flags):
    ours = lossbridge.get("Adam", backend="torch", convention="torch")
    torch.testing.assert_close(_run(ours, lr=0.01, **flags), _run(torch.optim.Adam, lr=0.01), rtol=1e-12, atol=0)


def test_torch_fused_rules_follow_torch():
    adam = lossbridge.get("Adam", backend="torch", convention="torch")
    w, _ = _problem()
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        adam([w], fused=True, foreach=True)
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        adam([w], fused=True, differentiable=True)
    radam = lossbridge.get("RAdam", backend="torch", convention="torch")
    with pytest.raises(RuntimeError, match="no verified fused kernel for 'radam'"):
        radam([w], fused=True)


def test_torch_complex_params_follow_torch():
    ours = lossbridge.get("Adam", backend="torch", convention="torch")
    out = []
    for cls in (torch.optim.Adam, ours):
        p = torch.nn.Parameter(torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128))
        opt = cls([p], lr=0.1)
        for _ in range(4):
            opt.zero_grad()
            (p.abs() ** 2).sum().backward()
            opt.step()
        out.append(p.detach().clone())
    torch.testing.assert_close(out[1], out[0], rtol=1e-12, atol=0)


def test_torch_native_state_dict_is_refused_at_load():
    theirs = torch.optim.Adam([_problem()[0]])
    _run_one(theirs)
    w, _ = _problem()
    ours = lossbridge.get("Adam", backend="torch", convention="torch")([w])
    _run_one(ours)
    before = {k: {n: t.clone() for n, t in s.items()} for k, s in ours.state_dict()["state"].items()}
    with pytest.raises(InputError, match=r"adam: cannot load this state_dict \(nothing was loaded\).*betas"):
        ours.load_state_dict(theirs.state_dict())
    after = ours.state_dict()["state"]
    assert all(torch.equal(before[k][n], after[k][n]) for k in before for n in before[k])
    ours.step()  # still usable


def test_torch_state_dict_with_a_wrong_slot_shape_is_refused_before_loading():
    w, _ = _problem()
    ours = lossbridge.get("Adam", backend="torch", convention="torch")([w])
    _run_one(ours)
    edited = copy.deepcopy(ours.state_dict())
    slots = next(iter(edited["state"].values()))
    slots["exp_avg" if "exp_avg" in slots else next(k for k in slots if k != "step")] = torch.zeros(7)
    before = {k: {n: t.clone() for n, t in s.items()} for k, s in ours.state_dict()["state"].items()}
    with pytest.raises(InputError, match=r"nothing was loaded.*has shape \(7,\)"):
        ours.load_state_dict(edited)
    after = ours.state_dict()["state"]
    assert all(torch.equal(before[k][n], after[k][n]) for k in before for n in before[k])


def test_torch_own_state_dict_round_trip_and_older_dict_without_flags():
    ours = lossbridge.get("Adam", backend="torch", convention="torch")
    w, _ = _problem()
    opt = ours([w])
    _run_one(opt)
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        for flag in ("maximize", "foreach", "capturable", "differentiable"):
            group.pop(flag)
    fresh = ours([w])
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["maximize"] is False
    fresh.step()


def _run_one(opt):
    p = opt.param_groups[0]["params"][0]
    opt.zero_grad()
    (p ** 2).sum().backward()
    opt.step()


def test_torch_grad_scaler_steps_our_optimizer():
    ours = lossbridge.get("SGD", backend="torch", convention="torch")
    out = []
    for cls in (torch.optim.SGD, ours):
        w, x = _problem(torch.float32)
        opt = cls([w], lr=0.01, momentum=0.9)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        for k in range(4):
            opt.zero_grad()
            loss = ((x @ w.T) ** 2).sum()
            if k == 2:
                loss = loss * float("inf")  # an overflow step: skipped, scale reduced
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        out.append((w.detach().clone(), scaler.get_scale()))
    torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-6, atol=0)
    assert out[1][1] == out[0][1]
