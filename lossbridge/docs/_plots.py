"""Pictures of a spec, drawn with matplotlib (Agg) on the NumPy backend.

* a loss: its value and its gradient as functions of one prediction entry, one line per convention
  that changes them (conventions giving the same curve share a line);
* an optimizer: trajectories on Rosenbrock's function and on an ill-conditioned quadratic, one per
  convention, all with the same learning rate;
* a schedule: the value against the step, one line per convention.

The same picture is what the site shows and what ``plot_spec(spec, path)`` writes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import lossbridge
from lossbridge._api import spec as lookup
from lossbridge.bound import BoundLoss, bind
from lossbridge.errors import LossbridgeError
from lossbridge.spec import LossSpec, OptimizerSpec, ScheduleSpec, domain

__all__ = ["Curve", "loss_curves", "optimizer_paths", "plot_spec", "sample_inputs", "schedule_curves", "schedule_lr"]

_POINTS = 81
_STEPS = 200
_ROSENBROCK_START = np.array([-1.2, 1.0])
_QUADRATIC_START = np.array([-4.0, 1.5])
_QUADRATIC_SCALE = np.array([1.0, 25.0])  # condition number 25


@dataclass
class Curve:
    """One line of a picture: its label (the conventions that give it) and its data."""

    label: str
    x: np.ndarray
    y: np.ndarray
    extra: np.ndarray | None = None


def _conventions(spec: Any) -> list[str | None]:
    return [None, *sorted(spec.conventions)]


def _label(conv: str | None) -> str:
    return "lossbridge" if conv is None else conv


def _coincide(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two lines are the same in a picture: equal to 1e-4 of the data's scale."""
    if a is None or b is None:
        return a is None and b is None
    if a.shape != b.shape:
        return False
    finite = np.abs(np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]]))
    scale = float(finite.max()) if finite.size else 1.0
    return bool(np.allclose(a, b, rtol=1e-6, atol=1e-4 * scale, equal_nan=True))


def _merge(curves: list[Curve]) -> list[Curve]:
    """Curves that coincide share one line, labelled with every convention that gives it."""
    out: list[Curve] = []
    for c in curves:
        for seen in out:
            if all(_coincide(u, v) for u, v in ((seen.x, c.x), (seen.y, c.y), (seen.extra, c.extra))):
                seen.label += f", {c.label}"
                break
        else:
            out.append(c)
    return out


def _shape(spec: LossSpec, *, picture: bool) -> tuple[int, ...]:
    if spec.elementwise:
        base = (1,) if picture else (4,)
        return (2,) * (spec.min_ndim - 1) + base if spec.min_ndim > 1 else base
    return (3, 4) if spec.min_ndim <= 2 else (2, 3, 5)


def sample_inputs(
    spec: LossSpec, params: dict[str, Any], *, picture: bool = False, seed: int = 0
) -> dict[str, np.ndarray]:
    """Valid float64 inputs of ``spec`` under resolved ``params``, sampled from the declared domains."""
    rng = np.random.default_rng(seed)
    shape = _shape(spec, picture=picture)
    out = {}
    for decl in spec.inputs:
        dom = domain(decl.domain_for(params))
        out[decl.name] = np.asarray(dom.sample(rng, shape, np.float64, False))
    return out


def _sweep_range(spec: LossSpec, params: dict[str, Any], name: str) -> tuple[float, float]:
    decl = next(i for i in spec.inputs if i.name == name)
    dom = domain(decl.domain_for(params))
    shape = (200, 4) if not spec.elementwise else (800,)
    values = np.asarray(dom.sample(np.random.default_rng(1), shape, np.float64, False), dtype=np.float64)
    low, high = np.percentile(values, [1, 99])
    return (float(low), float(high)) if high > low else (float(low) - 1.0, float(low) + 1.0)


def _value_and_grad(bound: BoundLoss, xp: Any, arrays: list[np.ndarray], k: int, first: int) -> tuple[float, float]:
    """The loss and its derivative in ``arrays[k].flat[0]``: the spec's gradient, else central differences."""
    try:
        value, grad = bound.value_and_grad(xp, *arrays, check_values=False)  # spec order, every convention
        return float(value), float(np.asarray(grad[first]).flat[0])
    except NotImplementedError:  # no analytic gradient declared
        t = float(arrays[k].flat[0])
        h = 1e-6 * max(1.0, abs(t))
        shifted = []
        for step in (h, -h):
            moved = [a.copy() for a in arrays]
            moved[k].flat[0] = t + step
            shifted.append(float(bound(xp, *moved, check_values=False)))
        return float(bound(xp, *arrays, check_values=False)), (shifted[0] - shifted[1]) / (2 * h)


def _loss_curve(spec: LossSpec, conv: str | None) -> Curve:
    bound = bind(spec, convention=conv, params={"reduction": "sum", "dtype": "float64"})
    assert isinstance(bound, BoundLoss)
    resolved = dict(bound.params)
    inputs = sample_inputs(spec, resolved, picture=True)
    k = next(j for j, i in enumerate(spec.inputs) if i.differentiable)
    name = spec.inputs[k].name
    low, high = _sweep_range(spec, resolved, name)
    xs = np.linspace(low, high, _POINTS)
    import array_api_compat.numpy as xp

    values, grads = np.empty(_POINTS), np.empty(_POINTS)
    first = [i.name for i in spec.inputs if i.differentiable].index(name)
    for n, t in enumerate(xs):
        arrays = [inputs[i.name].copy() for i in spec.inputs]
        arrays[k].flat[0] = t
        values[n], grads[n] = _value_and_grad(bound, xp, arrays, k, first)
    return Curve(_label(conv), xs, values, grads)


def loss_curves(spec: LossSpec) -> list[Curve]:
    """Value (``y``) and gradient (``extra``) against the first prediction entry, per convention."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        curves = []
        for conv in _conventions(spec):
            try:
                curves.append(_loss_curve(spec, conv))
            except LossbridgeError:
                if conv is None:  # a convention with its own call form (Keras's two-array CTC) is left out
                    raise
        return _merge(curves)


def _rosenbrock(p: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = p
    value = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    return value, np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


def _quadratic(p: np.ndarray) -> tuple[float, np.ndarray]:
    return 0.5 * float(np.sum(_QUADRATIC_SCALE * p**2)), _QUADRATIC_SCALE * p


def _hessian(fn: Callable[[np.ndarray], tuple[float, np.ndarray]], p: np.ndarray) -> np.ndarray:
    """The Hessian of a problem at ``p`` (closed form: both problems are 2-D)."""
    if fn is _quadratic:
        return np.diag(_QUADRATIC_SCALE * np.ones_like(p))
    x, y = p
    return np.array([[2 - 400 * (y - x**2) + 800 * x**2, -400 * x], [-400 * x, 200.0]])


_PROBLEMS: dict[str, tuple[Callable[[np.ndarray], tuple[float, np.ndarray]], np.ndarray]] = {
    "Rosenbrock": (_rosenbrock, _ROSENBROCK_START),
    "ill-conditioned quadratic": (_quadratic, _QUADRATIC_START),
}


def _run(name: str, conv: str | None, lr: float, problem: str) -> np.ndarray:
    fn, start = _PROBLEMS[problem]
    spec = lookup(name)
    if getattr(spec, "role", "optimizer") == "transform":  # pictured before plain SGD
        from lossbridge.chain import chain

        opt = chain(lossbridge.get(name, convention=conv), lossbridge.get("sgd", lr=lr))
    else:
        opt = lossbridge.get(name, convention=conv, lr=lr)
    params = [start.copy()]
    closure = getattr(spec, "closure_step", None) is not None  # L-BFGS: the objective at trial points
    state = None if closure else opt.init(params)
    path = [start.copy()]
    for _ in range(_STEPS):
        if closure:

            def objective(p: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
                v, g = fn(p[0])
                return v, [g]

            opt.step(params, objective)
        else:
            value, grad = fn(params[0])
            needs = set(getattr(spec, "needs", ()))
            extra: dict[str, Any] = {"value": value} if "value" in needs else {}
            if "hessian_diag" in needs:
                hessian = _hessian(fn, params[0])
                extra["hvp"] = lambda v, h=hessian: [h @ v[0]]
            updates, state = opt.update([grad], state, params, **extra)
            params = [params[0] + updates[0]]
        path.append(params[0].copy())
        if not np.all(np.isfinite(params[0])) or np.max(np.abs(params[0])) > 1e6:
            break
    return np.array(path)


def _pick_lr(spec: OptimizerSpec, problem: str) -> float:
    """The learning rate a picture uses: of the default lr x (0.01 .. 100), the best on ``problem``."""
    fn = _PROBLEMS[problem][0]
    default = float(spec.param("lr").default or 1e-3) if "lr" in {p.name for p in spec.params} else 0.01
    best, best_value = default, np.inf
    for factor in (0.01, 0.1, 1.0, 10.0, 100.0):  # a larger one must halve the final value to be chosen
        try:
            end = _run(spec.name, None, default * factor, problem)[-1]
        except LossbridgeError:
            continue
        value = fn(end)[0] if np.all(np.isfinite(end)) else np.inf
        if value < best_value * 0.5:
            best, best_value = default * factor, value
    return best


def optimizer_paths(spec: OptimizerSpec) -> dict[str, tuple[float, list[Curve]]]:
    """Per problem: the learning rate used and one trajectory (x, y) per distinct convention."""
    out = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for problem in _PROBLEMS:
            lr = _pick_lr(spec, problem)
            curves = []
            for conv in _conventions(spec):
                path = _run(spec.name, conv, lr, problem)
                curves.append(Curve(_label(conv), path[:, 0], path[:, 1]))
            out[problem] = (lr, _merge(curves))
    return out


def _horizon(spec: ScheduleSpec) -> int:
    steps = [
        int(p.default)
        for p in spec.params
        if p.kind == "int" and isinstance(p.default, int) and p.default > 0 and ("step" in p.name or "iter" in p.name)
    ]
    return int(np.clip(2 * max(steps, default=100), 20, 4000))


def schedule_lr(spec: ScheduleSpec, conv: str | None) -> dict[str, Any]:
    """``{"lr": ...}`` where the convention leaves ``lr`` to the optimizer (torch schedulers), else ``{}``."""
    params = bind(spec, convention=conv).params
    if "lr" in params and params["lr"] is None:
        default = spec.param("lr").default
        return {"lr": 0.1 if default is None else default}
    return {}


def _children(spec: ScheduleSpec) -> dict[str, Any]:
    warm = lossbridge.get("polynomial_decay", lr=1.0, init_value=0.0, end_value=0.5, decay_steps=10)
    decay = lossbridge.get("exponential_decay", lr=0.5, decay_rate=0.9, decay_steps=1)
    out: dict[str, Any] = {"schedules": [warm, decay]}
    if any(p.name == "boundaries" for p in spec.params):
        out["boundaries"] = [10]
    return out


def schedule_curves(spec: ScheduleSpec) -> list[Curve]:
    """The schedule's value at steps 0 .. horizon, per convention."""
    steps = np.arange(_horizon(spec), dtype=np.float64)
    curves = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for conv in _conventions(spec):
            if any(p.name == "schedules" for p in spec.params):  # a composite: as its snippet builds it
                if conv is not None:
                    continue
                steps = np.arange(40, dtype=np.float64)
                schedule = lossbridge.get(spec.name, **_children(spec))
            else:
                schedule = lossbridge.get(spec.name, convention=conv, **schedule_lr(spec, conv))
            values = np.array([float(schedule(np.float64(s))) for s in steps])
            curves.append(Curve(_label(conv), steps, values))
    return _merge(curves)


def _figure(ncols: int) -> tuple[Any, Sequence[Any]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols, 3.2), dpi=80, squeeze=False)
    return fig, list(axes[0])


def _draw_loss(spec: LossSpec, axes: Sequence[Any]) -> None:
    k = next(j for j, i in enumerate(spec.inputs) if i.differentiable)
    xlabel = f"{spec.inputs[k].name}" + ("" if spec.elementwise else "[0]")
    for c in loss_curves(spec):
        axes[0].plot(c.x, c.y, label=c.label)
        axes[1].plot(c.x, c.extra, label=c.label)
    for ax, title in zip(axes, ("value", "gradient")):
        ax.set_title(f"{spec.name}: {title}")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)


def _contours(ax: Any, problem: str) -> None:
    fn = _PROBLEMS[problem][0]
    xs, ys = (np.linspace(-2, 2, 80), np.linspace(-1, 3, 80)) if problem == "Rosenbrock" else (
        np.linspace(-4.5, 4.5, 80),
        np.linspace(-2, 2, 80),
    )
    grid = np.array([[fn(np.array([x, y]))[0] for x in xs] for y in ys])
    ax.contour(xs, ys, np.log1p(grid), levels=15, colors="0.8", linewidths=0.6)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])


def _draw_optimizer(spec: OptimizerSpec, axes: Sequence[Any]) -> None:
    for ax, (problem, (lr, curves)) in zip(axes, optimizer_paths(spec).items()):
        _contours(ax, problem)
        for c in curves:
            ax.plot(c.x, c.y, marker=".", markersize=2, linewidth=1, label=c.label)
        ax.plot(*_PROBLEMS[problem][1], "k*")
        ax.set_title(f"{spec.name}, lr={lr:g}: {problem}", fontsize=9)
        ax.legend(fontsize=7)


def _draw_schedule(spec: ScheduleSpec, axes: Sequence[Any]) -> None:
    ax = axes[0]
    curves = schedule_curves(spec)
    for c in curves:
        ax.plot(c.x, c.y, label=c.label)
    finite = np.concatenate([c.y[np.isfinite(c.y)] for c in curves])
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    ax.set_title(f"{spec.name} (default parameters)")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_spec(spec: LossSpec | OptimizerSpec | ScheduleSpec | str, path: str | Path) -> Path:
    """Write the spec's picture (as on its page of the site) to ``path`` (PNG); return the path."""
    found = lookup(spec) if isinstance(spec, str) else spec
    fig, axes = _figure(1 if isinstance(found, ScheduleSpec) else 2)
    try:
        if isinstance(found, LossSpec):
            _draw_loss(found, axes)
        elif isinstance(found, OptimizerSpec):
            _draw_optimizer(found, axes)
        else:
            _draw_schedule(found, axes)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return Path(path)
