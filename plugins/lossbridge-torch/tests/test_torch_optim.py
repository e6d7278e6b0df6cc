"""Optimizers as torch.optim.Optimizer subclasses: the behaviours torch users rely on."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

import lossbridge
from lossbridge import InputError, ParameterError


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()


def _batch(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(16, 4, generator=gen, dtype=torch.float64)
    return x, torch.randn(16, 1, generator=gen, dtype=torch.float64)


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: range, sched: Any = None) -> None:
    loss_fn = lossbridge.get("mse", backend="torch")
    for k in steps:
        x, y = _batch(k)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if sched is not None:
            sched.step()


ENGINES = [{}, {"fused": False}]


def test_get_returns_an_optimizer_class_whose_defaults_are_the_given_hyperparameters() -> None:
    Adam = lossbridge.get("adam", backend="torch", lr=0.01, betas=(0.8, 0.95))
    assert isinstance(Adam, type) and issubclass(Adam, torch.optim.Optimizer)
    opt = Adam(_model().parameters())
    group = opt.param_groups[0]
    assert (group["lr"], group["beta_1"], group["beta_2"]) == (0.01, 0.8, 0.95)
    assert Adam(_model().parameters(), lr=0.5).param_groups[0]["lr"] == 0.5


def test_hyperparameters_are_validated_with_the_valid_range() -> None:
    Adam = lossbridge.get("adam", backend="torch")
    with pytest.raises(ParameterError, match=r"'lr' expects float in \[0, inf\), got -1"):
        Adam(_model().parameters(), lr=-1.0)
    with pytest.raises(ParameterError, match=r"unknown parameter.*'momentum'.*valid: lr"):
        Adam(_model().parameters(), momentum=0.9)
    with pytest.raises(ParameterError, match=r"'betas' expects a pair"):
        Adam(_model().parameters(), betas=0.9)
    with pytest.raises(ParameterError, match=r"'lr' expects"):
        Adam([{"params": _model().parameters(), "lr": -2.0}])


@pytest.mark.parametrize("engine", ENGINES, ids=["default", "eager"])
def test_param_groups_with_their_own_hyperparameters(engine: dict[str, Any]) -> None:
    model, reference = _model(), _model()
    Adam = lossbridge.get("adam", backend="torch")
    groups = lambda m: [  # noqa: E731
        {"params": m[0].parameters(), "lr": 0.1, "betas": (0.5, 0.9)},
        {"params": m[2].parameters()},
    ]
    opt = Adam(groups(model), lr=0.01, **engine)
    ref = torch.optim.Adam(groups(reference), lr=0.01)
    assert opt.param_groups[0]["beta_1"] == 0.5 and opt.param_groups[1]["lr"] == 0.01
    _train(model, opt, range(5))
    _train(reference, ref, range(5))
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_step_with_a_closure_returns_the_loss() -> None:
    model = _model()
    opt = lossbridge.get("sgd", backend="torch", lr=0.1, momentum=0.9)(model.parameters())
    x, y = _batch(0)
    loss_fn = lossbridge.get("mse", backend="torch")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    first = opt.step(closure)
    for _ in range(20):
        last = opt.step(closure)
    assert float(last.detach()) < float(first.detach())


def test_zero_grad_and_parameters_without_gradients_are_skipped() -> None:
    model = _model()
    opt = lossbridge.get("adam", backend="torch")(model.parameters(), fused=False)
    frozen = model[2].weight.detach().clone()
    model[2].weight.requires_grad_(False)
    _train(model, opt, range(3))
    assert torch.equal(model[2].weight, frozen)
    assert model[2].weight not in opt.state
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["adam", "sgd", "adafactor", "lamb"])
@pytest.mark.parametrize("engine", ENGINES, ids=["default", "eager"])
def test_state_dict_round_trip_continues_bit_for_bit(name: str, engine: dict[str, Any]) -> None:
    params = {"sgd": {"momentum": 0.9}, "adam": {"amsgrad": True}}.get(name, {})
    cls = lossbridge.get(name, backend="torch", lr=0.01, **params)
    model = _model()
    opt = cls(model.parameters(), **engine)
    _train(model, opt, range(5))
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    _train(model, opt, range(5, 10))
    restored = _model()
    restored.load_state_dict(saved_model)
    opt2 = cls(restored.parameters(), **engine)
    opt2.load_state_dict(saved_opt)
    _train(restored, opt2, range(5, 10))
    for p, q in zip(model.parameters(), restored.parameters(), strict=True):
        assert torch.equal(p, q)


def test_lr_scheduler_drives_it_like_torch_optim() -> None:
    model, reference = _model(), _model()
    opt = lossbridge.get("sgd", backend="torch", convention="torch")(model.parameters(), lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref, step_size=2, gamma=0.5)
    _train(model, opt, range(7), sched)
    _train(reference, ref, range(7), ref_sched)
    assert opt.param_groups[0]["lr"] == ref.param_groups[0]["lr"] == 0.1 * 0.5**3
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "engine", [{}, {"fused": False}, {"fused": False, "compile": True}], ids=["default", "eager", "compiled"]
)
def test_changing_lr_in_param_groups_takes_effect(engine: dict[str, Any]) -> None:
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = lossbridge.get("sgd", backend="torch")(
        [p], lr=1.0, **engine
    )
    p.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    opt.param_groups[0]["lr"] = 0.25
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), -1.25, dtype=torch.float64))


def test_sparse_gradients_get_a_clear_error() -> None:
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = lossbridge.get("adam", backend="torch")(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(InputError, match=r"sparse gradient .*need dense gradients"):
        opt.step()


def test_integer_parameters_are_rejected() -> None:
    with pytest.raises(InputError, match=r"params: expected floating-point or complex tensors, got dtype torch\.int64"):
        lossbridge.get("sgd", backend="torch")([torch.zeros(3, dtype=torch.int64)])


def test_per_group_static_hyperparameters_select_the_formula() -> None:
    a = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = lossbridge.get("sgd", backend="torch")(
        [{"params": [a], "nesterov": True}, {"params": [b]}], lr=0.1, momentum=0.9, fused=False
    )
    for _ in range(2):
        a.grad, b.grad = torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
        opt.step()
    assert not torch.equal(a, b)  # nesterov looks ahead: it moves further
    assert float(a.detach()[0]) < float(b.detach()[0])


def test_compiled_engine_matches_eager_on_a_factored_spec() -> None:
    # adafactor: per-tensor means, norms and shape-dependent slots, all through torch.compile
    cls = lossbridge.get("adafactor", backend="torch", lr=0.01)
    m1, m2 = _model(), _model()
    _train(m1, cls(m1.parameters()), range(3))
    _train(m2, cls(m2.parameters(), compile=True), range(3))
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
