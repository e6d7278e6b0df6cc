"""torch's optimizer test matrix (``torch.testing._internal.common_optimizers.optim_db``) run on
lossbridge's optimizers under the torch convention on the torch backend.

``test/test_optim.py`` is not in the wheel, so its checks are re-stated here over the installed
``optim_db`` data: for every OptimizerInfo whose class name ``lossbridge.get(name, backend="torch",
convention="torch")`` resolves, and every config of its ``optim_inputs_func`` (float64, CPU):

* ``trajectory``: 12 steps of ours against ``torch.optim`` with the same keyword arguments, on a
  least-squares + sine problem (two tensors, a matrix and a vector), relative error <= 1e-10 per step;
* ``foreach_true`` / ``foreach_false`` / ``differentiable_false`` / ``capturable_false`` (where the
  OptimizerInfo lists the flag) and ``fused`` (where it lists ``fused``): the same trajectory with the
  flag given to both (torch's meaning: speed hints that never change the result);
* ``closure``: ``step(closure)`` evaluates the closure, returns its loss, and follows torch (an
  optimizer whose OptimizerInfo has ``step_requires_closure``, LBFGS, steps with a closure in every
  check, as test_optim does);
* ``state_dict``: 5 steps, ``state_dict()`` through ``torch.save``/``torch.load(weights_only=True)``,
  loaded into a fresh optimizer on cloned parameters, 5 more steps = 10 uninterrupted steps
  (test_optim's ``test_state_dict_deterministic`` / ``test_save_load_equality_with_weights_only``);
* ``param_groups``: the bias in its own group with half the lr and no weight decay, against torch
  (``test_param_groups_lr`` / ``test_param_groups_weight_decay``);
* ``scheduler<k>``: each scheduler chain of ``scheduler_inputs`` stepped after every step, against
  torch with the same chain (``test_forloop_goes_right_direction`` with ``with_lrsched``);
* ``no_grad_noop``: a parameter without gradient is left alone and gets no state;
* per optimizer, over its default config: ``complex`` (a complex parameter follows torch, which
  updates its real view; where ``supports_complex``), ``differentiable_true`` (the gradient of the
  stepped parameter with respect to the initial one, through the step, against torch), and
  ``load_native_refused`` (a ``torch.optim`` state_dict is refused by ``load_state_dict`` with a
  message naming the differences, and nothing is loaded).

A test counts (covered) only when our optimizer class was constructed and its ``step`` updated state
(see ``conftest.py`` for the strict expected-failure rules; table ``[torch_optim]``).
"""

from __future__ import annotations

import copy
import io
import traceback
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lossbridge_torch")
common_optimizers = pytest.importorskip("torch.testing._internal.common_optimizers")

import lossbridge  # noqa: E402
from lossbridge.errors import LossbridgeError  # noqa: E402

SUITE = "torch_optim"
STEPS = 12
RTOL = 1e-10
DTYPE = torch.float64


def _infos() -> list[tuple[Any, type]]:
    out = []
    for info in common_optimizers.optim_db:
        name = info.optim_cls.__name__
        try:
            ours = lossbridge.get(name, backend="torch", convention="torch")
        except LossbridgeError:
            continue
        out.append((info, ours))
    return out


INFOS = _infos()


def _configs(info: Any) -> list[Any]:
    return list(info.optim_inputs_func(device="cpu", dtype=DTYPE))


def _cases() -> list[Any]:
    cases = []
    for info, ours in INFOS:
        name = info.optim_cls.__name__
        kinds = ["trajectory", "closure", "state_dict", "param_groups", "no_grad_noop"]
        kinds += [f"{flag}_{value}" for flag in ("foreach", "differentiable") if flag in info.supported_impls
                  for value in ("true", "false") if not (flag == "differentiable" and value == "true")]
        if info.has_capturable_arg:
            kinds.append("capturable_false")
        if "fused" in info.supported_impls:
            kinds.append("fused")
        kinds += [f"scheduler{k}" for k in range(len(info.scheduler_inputs))]
        for config in _configs(info):
            for kind in kinds:
                test_id = f"{name}.{kind}[{config.desc}]"
                cases.append(pytest.param(info, ours, config.kwargs, kind, test_id, id=test_id))
        default = _configs(info)[0].kwargs
        once = ["differentiable_true", "load_native_refused"] + (["complex"] if info.supports_complex else [])
        for kind in once:
            test_id = f"{name}.{kind}"
            cases.append(pytest.param(info, ours, default, kind, test_id, id=test_id))
    return cases


# -- the problem ------------------------------------------------------------------------------------
def _params(dtype: Any = DTYPE, seed: int = 0) -> list[Any]:
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 3, generator=gen, dtype=torch.float64).to(dtype)
    b = torch.randn(4, generator=gen, dtype=torch.float64).to(dtype)
    return [torch.nn.Parameter(w), torch.nn.Parameter(b)]


_X = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
_Y = torch.randn(6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def _loss(params: list[Any]) -> Any:
    w, b = params
    if w.is_complex():
        pred = _X.to(w.dtype) @ w.T + b
        return (pred - _Y.to(w.dtype)).abs().pow(2).mean() + torch.sin(torch.view_as_real(w)).sum()
    return ((_X @ w.T + b - _Y) ** 2).mean() + torch.sin(w).sum()


def _snapshot(params: list[Any]) -> Any:
    return torch.cat([torch.view_as_real(p.detach()).flatten() if p.is_complex() else p.detach().flatten()
                      for p in params]).clone()


def _kw(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The config's keyword arguments, with tensors copied (a tensor lr is per optimizer)."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}


def _run(make: Callable[[list[Any]], Any], params: list[Any], steps: int = STEPS,
         schedulers: list[Callable[[Any], Any]] = (), closure: bool = False) -> tuple[Any, Any]:
    opt = make(params)
    scheds = [s(opt) for s in schedulers]
    path = []
    for _ in range(steps):
        def fn() -> Any:
            opt.zero_grad()
            loss = _loss(params)
            loss.backward()
            return loss

        if closure:
            loss = opt.step(fn)
            if not torch.is_tensor(loss) or loss.ndim != 0:
                raise AssertionError(f"step(closure) returned {loss!r}, expected the closure's loss")
        else:
            loss = fn()
            opt.step()
        for s in scheds:
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                s.step(loss.item())
            else:
                s.step()
        path.append(_snapshot(params))
    return torch.stack(path), opt


def _close(got: Any, ref: Any, what: str) -> None:
    """Relative error per element, against at least 1e-6 of the largest magnitude (cancellations)."""
    err = ((got - ref).abs() / ref.abs().clamp_min(1e-6 * ref.abs().max().item() + 1e-300)).max().item()
    if not err <= RTOL:
        raise AssertionError(f"{what}: max relative error {err:.3e} > {RTOL:g} against torch.optim")


def _used(opt: Any, spec_name: str, counter: Any) -> None:
    """``opt`` must be ours and its step must have run (state with a step count)."""
    from lossbridge_torch._lbfgs import ClosureOptimizer
    from lossbridge_torch._optim import SpecOptimizer

    if not (isinstance(opt, (SpecOptimizer, ClosureOptimizer)) and opt.bound.spec.name == spec_name):
        raise AssertionError(f"not lossbridge's {spec_name} optimizer: {type(opt)}")
    if isinstance(opt, ClosureOptimizer):  # one state for all parameters (torch's LBFGS keeps it on the first)
        if not any(opt.state.values()):
            raise AssertionError(f"lossbridge's {spec_name} optimizer never stepped")
        return
    if not any(s and float(s["step"]) > 0 for s in opt.state.values()):
        raise AssertionError(f"lossbridge's {spec_name} optimizer never stepped")


def _counting(ours: type, counter: Any) -> Callable[..., Any]:
    """``ours``, counting every construction: a test counts once our optimizer was built."""

    def make(*args: Any, **kwargs: Any) -> Any:
        counter.hit(ours.bound.spec.name)
        return ours(*args, **kwargs)

    return make


# -- the checks -------------------------------------------------------------------------------------
def _check(info: Any, ours: type, kwargs: dict[str, Any], kind: str, counter: Any) -> None:
    native = info.optim_cls
    spec = ours.bound.spec.name
    ours = _counting(ours, counter)  # type: ignore[assignment]
    # torch's LBFGS: step(closure) only; test_optim steps such an optimizer (step_requires_closure) with one
    needs_closure = bool(info.step_requires_closure)

    def both(extra: dict[str, Any], **run: Any) -> None:
        run.setdefault("closure", needs_closure)
        ref, _ = _run(lambda ps: native(ps, **_kw(kwargs), **extra), _params(), **run)
        got, opt = _run(lambda ps: ours(ps, **_kw(kwargs), **extra), _params(), **run)
        _used(opt, spec, counter)
        _close(got, ref, kind)

    if kind == "trajectory":
        both({})
    elif kind in ("foreach_true", "foreach_false", "differentiable_false", "capturable_false"):
        flag, value = kind.rsplit("_", 1)
        both({flag: value == "true"})
    elif kind == "fused":
        both({"fused": True})
    elif kind == "closure":
        both({}, closure=True)
    elif kind.startswith("scheduler"):
        both({}, schedulers=info.scheduler_inputs[int(kind[len("scheduler"):])])
    elif kind == "state_dict":
        whole, _ = _run(lambda ps: ours(ps, **_kw(kwargs)), _params(), steps=10, closure=needs_closure)
        params = _params()
        first, opt = _run(lambda ps: ours(ps, **_kw(kwargs)), params, steps=5, closure=needs_closure)
        _used(opt, spec, counter)
        buf = io.BytesIO()
        torch.save(opt.state_dict(), buf)
        buf.seek(0)
        saved = torch.load(buf, weights_only=True)
        clones = [torch.nn.Parameter(p.detach().clone()) for p in params]

        def fresh(ps: list[Any]) -> Any:
            o = ours(ps, **_kw(kwargs))
            o.load_state_dict(copy.deepcopy(saved))
            return o

        second, _ = _run(fresh, clones, steps=5, closure=needs_closure)
        _close(torch.cat([first, second]), whole, "state_dict round trip")
    elif kind == "param_groups":
        lr = kwargs.get("lr", native.__init__.__defaults__[0] if native.__init__.__defaults__ else 1e-3)
        lr = float(lr)

        def groups(cls: type) -> Callable[[list[Any]], Any]:
            return lambda ps: cls([{"params": [ps[0]]}, {"params": [ps[1]], "lr": lr / 2, "weight_decay": 0.0}],
                                  **_kw(kwargs))

        ref, _ = _run(groups(native), _params())
        got, opt = _run(groups(ours), _params())
        _used(opt, spec, counter)
        _close(got, ref, "param groups")
    elif kind == "no_grad_noop":
        params = _params()
        extra = torch.nn.Parameter(torch.ones(3, dtype=DTYPE))
        opt = ours([*params, extra], **_kw(kwargs))
        for _ in range(3):
            def fn() -> Any:
                opt.zero_grad()
                loss = _loss(params)
                loss.backward()
                return loss

            if needs_closure:
                opt.step(fn)
            else:
                fn()
                opt.step()
        _used(opt, spec, counter)
        if not torch.equal(extra.detach(), torch.ones(3, dtype=DTYPE)) or opt.state.get(extra):
            raise AssertionError("a parameter without a gradient was changed or got state")
    elif kind == "complex":
        ref, _ = _run(lambda ps: native(ps, **_kw(kwargs)), _params(torch.complex128), closure=needs_closure)
        got, opt = _run(lambda ps: ours(ps, **_kw(kwargs)), _params(torch.complex128), closure=needs_closure)
        _used(opt, spec, counter)
        _close(got, ref, "complex parameters")
    elif kind == "differentiable_true":
        def grad_through_step(cls: type) -> tuple[Any, Any]:
            leaf = torch.randn(5, dtype=DTYPE, generator=torch.Generator().manual_seed(3), requires_grad=True)
            p = leaf.clone()  # a non-leaf: the step is part of the graph, as in torch's tests
            p.grad = torch.sin(3 * leaf)  # the gradient depends on the initial parameter too
            opt = cls([p], **_kw(kwargs), differentiable=True)
            opt.step()
            (p * p).sum().backward()
            return leaf.grad, opt

        ref, _ = grad_through_step(native)
        got, opt = grad_through_step(ours)
        _used(opt, spec, counter)
        _close(got, ref, "gradient through a differentiable step")
    elif kind == "load_native_refused":
        _, theirs = _run(lambda ps: native(ps, **_kw(kwargs)), _params(), steps=2, closure=needs_closure)
        params = _params()
        _, opt = _run(lambda ps: ours(ps, **_kw(kwargs)), params, steps=2, closure=needs_closure)
        _used(opt, spec, counter)
        before = copy.deepcopy(opt.state_dict())
        try:
            opt.load_state_dict(theirs.state_dict())
        except LossbridgeError as exc:
            if spec not in str(exc):
                raise AssertionError(f"the refusal does not name the optimizer: {exc}") from exc
        else:
            raise AssertionError("a torch.optim state_dict was loaded silently")
        after = opt.state_dict()
        if repr(after["param_groups"]) != repr(before["param_groups"]) or any(
            not torch.equal(a, b) for k in before["state"] for a, b in
            zip(before["state"][k].values(), after["state"][k].values(), strict=True)
        ):
            raise AssertionError("the refused state_dict was half-loaded")
        if needs_closure:  # still usable
            _run(lambda _: opt, params, steps=1, closure=True)
        else:
            opt.step()  # still usable
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize(("info", "ours", "kwargs", "kind", "test_id"), _cases())
def test_torch_optim_db(compat: Any, info: Any, ours: type, kwargs: dict[str, Any], kind: str, test_id: str) -> None:
    torch.manual_seed(0)
    try:
        _check(info, ours, kwargs, kind, compat.counter)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        compat.settle(SUITE, test_id, "fail", detail)
        return
    compat.settle(SUITE, test_id, "pass", "")
