"""lossbridge schedules as torch LRSchedulers: against torch's own schedulers, state_dict, momentum cycling."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

torch = pytest.importorskip("torch")

STEPS = 1000
CASES = [  # torch's own class names and keyword arguments, for lossbridge and for torch
    ("StepLR", {"step_size": 30, "gamma": 0.5}),
    ("ExponentialLR", {"gamma": 0.995}),
    ("MultiStepLR", {"milestones": [100, 250, 600], "gamma": 0.3}),
    ("LinearLR", {"start_factor": 0.1, "end_factor": 1.0, "total_iters": 200}),
    ("CosineAnnealingLR", {"T_max": 300, "eta_min": 1e-3}),
    ("CosineAnnealingWarmRestarts", {"T_0": 50, "T_mult": 2}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 40, "mode": "triangular2"}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 25, "mode": "exp_range", "gamma": 0.998}),
]


def _run(make: Any, opt_cls: Any = None, base_lr: float = 0.1) -> tuple[list[float], list[float], Any]:
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    q = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt_cls = opt_cls or (lambda groups: torch.optim.SGD(groups, lr=base_lr, momentum=0.9))
    opt = opt_cls([{"params": [p]}, {"params": [q], "lr": base_lr / 2}])
    sched = make(opt)
    lrs, moms = [], []
    for t in range(STEPS):
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append(opt.param_groups[0].get("momentum", opt.param_groups[0].get("betas", (0,))[0]))
        p.grad, q.grad = torch.ones_like(p), torch.ones_like(q)
        opt.step()
        if t < STEPS - 1:
            sched.step()
    return lrs, moms, sched


@pytest.mark.parametrize(("native", "native_kwargs"), CASES, ids=lambda x: str(x)[:40])
def test_torch_scheduler_matches_native(native: str, native_kwargs: dict) -> None:
    ours = lossbridge.get(native, backend="torch", convention="torch", **native_kwargs)
    assert issubclass(ours, torch.optim.lr_scheduler.LRScheduler)
    mine, my_mom, _ = _run(ours)
    theirs, their_mom, _ = _run(lambda opt: getattr(torch.optim.lr_scheduler, native)(opt, **native_kwargs))
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(my_mom, their_mom, rtol=1e-12, atol=1e-13)


def test_torch_cyclic_drives_adam_beta1() -> None:
    kwargs = {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 30}
    adam = lambda groups: torch.optim.Adam(groups, lr=1e-3)  # noqa: E731
    mine, my_beta, _ = _run(lossbridge.get("CyclicLR", backend="torch", convention="torch", **kwargs), adam)
    theirs, their_beta, _ = _run(lambda o: torch.optim.lr_scheduler.CyclicLR(o, **kwargs), adam)
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(my_beta, their_beta, rtol=1e-12)


def test_torch_cyclic_drives_lossbridge_adam_as_torch_adam() -> None:
    """A lossbridge torch optimizer under a lossbridge CyclicLR (beta_1 cycled) follows torch's Adam + CyclicLR."""
    kwargs = {"base_lr": 1e-3, "max_lr": 1e-2, "step_size_up": 5}
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    q = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    ours = lossbridge.get("adam", backend="torch", convention="torch", lr=1e-3)([p])
    theirs = torch.optim.Adam([q], lr=1e-3)
    pairs = [(p, ours, lossbridge.get("CyclicLR", backend="torch", convention="torch", **kwargs)(ours)),
             (q, theirs, torch.optim.lr_scheduler.CyclicLR(theirs, **kwargs))]
    for t in range(30):
        for x, opt, sched in pairs:
            x.grad = torch.sin(3 * x.detach() + t)
            opt.step()
            sched.step()
    np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)
    assert ours.param_groups[0]["beta_1"] == pytest.approx(theirs.param_groups[0]["betas"][0], rel=1e-12)


def _children(opt: Any, lossbridge_made: bool) -> list[Any]:
    specs = [("LinearLR", {"start_factor": 0.1, "total_iters": 50}), ("CosineAnnealingLR", {"T_max": 400}),
             ("MultiStepLR", {"milestones": [100, 100, 300], "gamma": 0.5})]
    if lossbridge_made:
        return [lossbridge.get(n, backend="torch", convention="torch", **kw)(opt) for n, kw in specs]
    return [getattr(torch.optim.lr_scheduler, n)(opt, **kw) for n, kw in specs]


@pytest.mark.parametrize("lossbridge_children", [False, True], ids=["torch-children", "lossbridge-children"])
def test_torch_sequential_lr_drop_in(lossbridge_children: bool) -> None:
    """``SequentialLR(optimizer, schedulers, milestones)`` over torch's or lossbridge's schedulers."""
    ours = lossbridge.get("SequentialLR", backend="torch", convention="torch")
    mine, _, _ = _run(lambda opt: ours(opt, _children(opt, lossbridge_children), milestones=[50, 450]))
    theirs, _, _ = _run(
        lambda opt: torch.optim.lr_scheduler.SequentialLR(opt, _children(opt, False), milestones=[50, 450])
    )
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("lossbridge_children", [False, True], ids=["torch-children", "lossbridge-children"])
def test_torch_chained_scheduler_drop_in(lossbridge_children: bool) -> None:
    """``ChainedScheduler(schedulers)``: the optimizer comes from the children, as in torch."""
    def children(opt: Any, ours: bool) -> list[Any]:
        specs = [("ConstantLR", {"factor": 0.1, "total_iters": 20}), ("ExponentialLR", {"gamma": 0.998}),
                 ("StepLR", {"step_size": 300, "gamma": 0.5})]
        if ours:
            return [lossbridge.get(n, backend="torch", convention="torch", **kw)(opt) for n, kw in specs]
        return [getattr(torch.optim.lr_scheduler, n)(opt, **kw) for n, kw in specs]

    ours = lossbridge.get("ChainedScheduler", backend="torch", convention="torch")
    mine, _, _ = _run(lambda opt: ours(children(opt, lossbridge_children)))
    theirs, _, _ = _run(lambda opt: torch.optim.lr_scheduler.ChainedScheduler(children(opt, False)))
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


def test_torch_unknown_child_scheduler_is_a_clear_error() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    plateau_like = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
    with pytest.raises(lossbridge.ParameterError, match="LambdaLR"):
        lossbridge.get("SequentialLR", backend="torch", convention="torch")(opt, [plateau_like], milestones=[])
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10, three_phase=True)
    with pytest.raises(lossbridge.ParameterError, match="lossbridge's own scheduler"):
        lossbridge.get("SequentialLR", backend="torch", convention="torch")(opt, [one_cycle], milestones=[])


def test_torch_scheduler_overrides_and_native_kwargs() -> None:
    sched_cls = lossbridge.get("CosineAnnealingLR", backend="torch", convention="torch")
    mine, _, _ = _run(lambda opt: sched_cls(opt, T_max=40, eta_min=0.01))
    theirs, _, _ = _run(lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40, eta_min=0.01))
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-13)


def test_torch_one_cycle_drives_adam_beta1() -> None:
    ours = lossbridge.get("OneCycleLR", backend="torch", convention="torch", max_lr=0.01, total_steps=STEPS)
    adam = lambda groups: torch.optim.Adam(groups, lr=1e-3)  # noqa: E731
    mine, my_beta, _ = _run(ours, adam)
    theirs, their_beta, _ = _run(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.01, total_steps=STEPS), adam
    )
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(my_beta, their_beta, rtol=1e-12)


def test_torch_one_cycle_without_momentum_is_a_clear_error() -> None:
    ours = lossbridge.get("OneCycleLR", backend="torch", convention="torch", max_lr=0.01, total_steps=10)
    opt = torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(lossbridge.ParameterError, match="cycle_momentum"):
        ours(opt)
    ours(opt, cycle_momentum=False)


def test_torch_scheduler_state_dict_round_trip() -> None:
    sched_cls = lossbridge.get("StepLR", backend="torch", convention="torch", gamma=0.9)
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = sched_cls(opt, step_size=3)
    for _ in range(7):
        opt.step()
        sched.step()
    state = sched.state_dict()
    torch.save(state, __import__("io").BytesIO())  # picklable
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], lr=0.1)
    resumed = sched_cls(opt2)
    resumed.load_state_dict(state)
    for _ in range(5):
        opt.step()
        sched.step()
        opt2.step()
        resumed.step()
        assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
    assert resumed.bound.params["decay_steps"] == 3


def test_torch_schedule_as_lossbridge_optimizer_scheduler() -> None:
    """Works with lossbridge's own torch optimizers as with torch's."""
    opt_cls = lossbridge.get("sgd", backend="torch", convention="torch", lr=0.1)
    sched_cls = lossbridge.get("ExponentialLR", backend="torch", convention="torch", gamma=0.5)
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = opt_cls([p])
    sched = sched_cls(opt)
    for _ in range(3):
        p.grad = torch.ones_like(p)
        opt.step()
        sched.step()
    assert p.item() == pytest.approx(1 - 0.1 - 0.05 - 0.025, rel=1e-12)
