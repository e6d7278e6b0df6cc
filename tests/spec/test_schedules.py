"""Schedule specs on NumPy: textbook values, Caffe lr-policy transcriptions, validation, use as an lr."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossbridge

T = np.arange(300)


def values(name: str, convention: str | None = None, **params) -> np.ndarray:
    sched = lossbridge.get(name, convention=convention, **params)
    return np.asarray([sched(t) for t in T])


def test_textbook_step_and_exponential() -> None:
    np.testing.assert_allclose(values("exponential_decay", lr=0.1, decay_rate=0.5, decay_steps=40, staircase=True),
                               [0.1 * 0.5 ** (t // 40) for t in T], rtol=1e-14)
    np.testing.assert_allclose(values("exponential_decay", lr=0.1, decay_rate=0.9, decay_steps=7),
                               [0.1 * 0.9 ** (t / 7) for t in T], rtol=1e-13)


def test_textbook_cosine_with_warmup() -> None:
    w, n, peak = 20, 200, 0.3
    want = [peak * t / w if t < w else 0.5 * peak * (1 + math.cos(math.pi * min(t - w, n) / n)) for t in T]
    got = values("cosine_decay", lr=0.0, peak_value=peak, warmup_steps=w, decay_steps=n)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_textbook_restarts_cycle_lengths() -> None:
    got = values("cosine_restarts", lr=1.0, first_decay_steps=10, t_mul=2.0)
    starts = [0, 10, 30, 70, 150]  # cycles of 10, 20, 40, 80
    for s in starts:
        assert got[s] == pytest.approx(1.0, abs=1e-12)
    assert got[9] == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 10)), rel=1e-12)


def test_textbook_polynomial_and_piecewise() -> None:
    got = values("polynomial_decay", lr=1.0, init_value=0.1, end_value=0.0, power=2.0, decay_steps=100)
    np.testing.assert_allclose(got, [0.1 * (1 - min(t, 100) / 100) ** 2 for t in T], rtol=1e-12, atol=1e-16)
    got = values("piecewise_constant", lr=1.0, boundaries=[10, 50], scales=[0.5, 0.1])
    np.testing.assert_allclose(got, [1.0 if t < 10 else 0.5 if t < 50 else 0.05 for t in T], rtol=1e-15)


def test_one_cycle_peaks_at_max_lr() -> None:
    got = values("one_cycle", lr=0.5, total_steps=300, pct_start=0.3)
    assert got[0] == pytest.approx(0.5 / 25) and got.max() == pytest.approx(0.5)
    assert int(np.argmax(got)) == 89  # torch's phase end pct_start * T - 1


# -- Caffe lr policies: float64 transcription of SGDSolver<Dtype>::GetLearningRate() in
#    src/caffe/solvers/sgd_solver.cpp (BVLC/caffe), iter_ = 0 at the first update. -----------------------------
def caffe_lr(policy: str, it: int, *, base_lr: float, gamma: float = 0.0, power: float = 0.0, stepsize: int = 1,
             stepvalue: tuple[int, ...] = (), max_iter: int = 1, state: dict | None = None) -> float:
    if policy == "fixed":
        return base_lr
    if policy == "step":
        return base_lr * gamma ** (it // stepsize)
    if policy == "exp":
        return base_lr * gamma**it
    if policy == "inv":
        return base_lr * (1.0 + gamma * it) ** (-power)
    if policy == "multistep":  # current_step_ advances at most once per iteration
        if state["current_step"] < len(stepvalue) and it >= stepvalue[state["current_step"]]:
            state["current_step"] += 1
        return base_lr * gamma ** state["current_step"]
    if policy == "poly":
        return base_lr * (1.0 - it / max_iter) ** power
    if policy == "sigmoid":
        return base_lr * (1.0 / (1.0 + math.exp(-gamma * (it - stepsize))))
    raise ValueError(policy)


CAFFE = [  # (lr_policy, the solver fields that policy reads)
    ("fixed", {"base_lr": 0.01}),
    ("step", {"base_lr": 0.01, "gamma": 0.1, "stepsize": 100}),
    ("exp", {"base_lr": 0.01, "gamma": 0.99}),
    ("inv", {"base_lr": 0.01, "gamma": 1e-4, "power": 0.75}),
    ("multistep", {"base_lr": 0.01, "gamma": 0.5, "stepvalue": (50, 120, 200)}),
    ("poly", {"base_lr": 0.01, "power": 0.9, "max_iter": 300}),
    ("sigmoid", {"base_lr": 0.01, "gamma": -0.05, "stepsize": 150}),
]


@pytest.mark.parametrize(("policy", "solver"), CAFFE, ids=[c[0] for c in CAFFE])
def test_caffe_lr_policy(policy: str, solver: dict) -> None:
    """``lossbridge.get(lr_policy, convention="caffe", **solver_fields)`` against the C++ transcription."""
    native = {k: (list(v) if isinstance(v, tuple) else v) for k, v in solver.items()}
    sched = lossbridge.get(policy, convention="caffe", **native)
    state = {"current_step": 0}
    want = [caffe_lr(policy, it, state=state, **solver) for it in T]
    np.testing.assert_allclose([sched(it) for it in T], want, rtol=1e-12, atol=1e-18)


def test_caffe_every_lr_policy_is_covered() -> None:
    convs = [lossbridge.spec(e.name).conventions.get("caffe") for e in lossbridge.catalog("schedule")]
    declared = {name for conv in convs if conv is not None for name in conv.names}
    assert declared == {policy for policy, _ in CAFFE}


# -- every native name resolves ---------------------------------------------------------------------------------------
def _native_names() -> list[tuple[str, str, str, dict]]:
    out = []
    for entry in lossbridge.catalog("schedule"):
        for fw, conv in lossbridge.spec(entry.name).conventions.items():
            last = conv.native.split()[-1].split(".")[-1]
            out += [(entry.name, fw, name, dict(preset)) for name, preset in {last: {}, **conv.names}.items()]
    return out


@pytest.mark.parametrize(("spec_name", "framework", "native", "preset"), _native_names(),
                         ids=[f"{fw}-{n}" for _, fw, n, _ in _native_names()])
def test_native_name_resolves_with_preset(spec_name: str, framework: str, native: str, preset: dict) -> None:
    """Each framework name resolves under its convention, through ``lossbridge.get``, with its preset."""
    sched = lossbridge.get(native, convention=framework)
    assert sched.spec.name == spec_name
    for key, value in preset.items():
        assert sched.bound.params[key] == value


def test_native_keywords_map_onto_spec_params() -> None:
    """``Convention.kwargs`` maps NATIVE -> SPEC: every key is a native keyword, every value a spec parameter."""
    for entry in lossbridge.catalog("schedule"):
        spec = lossbridge.spec(entry.name)
        names = {p.name for p in spec.params}
        for fw, conv in spec.conventions.items():
            for native, ours in conv.kwargs.items():
                targets = (ours,) if isinstance(ours, str) else ours
                assert set(targets) <= names, (entry.name, fw, native, ours)
                assert native not in names or native in targets or fw == "torch", (entry.name, fw, native)


def test_torch_keywords_through_get() -> None:
    sched = lossbridge.get("CosineAnnealingLR", convention="torch", lr=1.0, T_max=10, eta_min=0.1)
    assert sched.bound.params["decay_steps"] == 10 and sched.bound.params["end_value"] == 0.1
    assert sched(10) == pytest.approx(0.1, rel=1e-14)
    assert sched(20) == pytest.approx(1.0, rel=1e-14)  # torch's cosine keeps going past T_max


# -- new shapes: cyclic, piecewise interpolation, warmup + exponential, composition -------------------------------
def test_textbook_cyclic_modes() -> None:
    up, down, low, high = 10, 5, 0.1, 1.0

    def tri(t: int) -> float:
        k = t % (up + down)
        return k / up if k <= up else 1 - (k - up) / down

    cycles = [1 + t // (up + down) for t in T]
    got = values("cyclic", lr=low, max_lr=high, step_size_up=up, step_size_down=down)
    np.testing.assert_allclose(got, [low + (high - low) * tri(t) for t in T], rtol=1e-12)
    got = values("cyclic", lr=low, max_lr=high, step_size_up=up, step_size_down=down, mode="triangular2")
    np.testing.assert_allclose(got, [low + (high - low) * tri(t) / 2 ** (c - 1) for t, c in zip(T, cycles)],
                               rtol=1e-12)
    got = values("cyclic", lr=low, max_lr=high, step_size_up=up, mode="exp_range", gamma=0.99)
    np.testing.assert_allclose(got, [low + (high - low) * (1 - abs(t % 20 - 10) / 10) * 0.99**t for t in T],
                               rtol=1e-12)
    mom = values("cyclic", step_size_up=up, step_size_down=down, quantity="momentum")
    np.testing.assert_allclose(mom, [0.9 - 0.1 * tri(t) for t in T], rtol=1e-12)


def test_textbook_piecewise_interpolate() -> None:
    got = values("piecewise_interpolate", lr=2.0, boundaries=[10, 30], scales=[0.5, 0.1])
    want = [2 - t / 10 if t < 10 else 1 - 0.9 * (t - 10) / 20 if t < 30 else 0.1 for t in T]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    got = values("piecewise_interpolate", lr=2.0, boundaries=[10], scales=[0.5], interpolate_type="cosine")
    want = [1 + 0.5 * (1 + math.cos(math.pi * t / 10)) if t < 10 else 1.0 for t in T]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_textbook_warmup_exponential() -> None:
    got = values("exponential_decay", lr=0.0, peak_value=0.2, warmup_steps=20, decay_rate=0.5, decay_steps=10)
    want = [0.2 * t / 20 if t < 20 else 0.2 * 0.5 ** ((t - 20) / 10) for t in T]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_join_and_chain() -> None:
    warm = lossbridge.get("polynomial_decay", lr=1.0, init_value=0.0, end_value=0.5, decay_steps=10)
    decay = lossbridge.get("exponential_decay", lr=0.5, decay_rate=0.9, decay_steps=1)
    got = values("join_schedules", schedules=[warm, decay], boundaries=[10])
    np.testing.assert_allclose(got, [0.05 * t if t < 10 else 0.5 * 0.9 ** (t - 10) for t in T], rtol=1e-12)
    factor = lossbridge.get("constant", lr=None, factor=0.1, total_iters=5)  # a factor: lr filled with 1
    got = values("chained_schedules", lr=2.0, schedules=[factor, decay])
    np.testing.assert_allclose(got, [2.0 * (0.1 if t < 5 else 1.0) * 0.9**t for t in T], rtol=1e-12)
    with pytest.raises(lossbridge.ParameterError, match="boundaries"):
        lossbridge.get("join_schedules", schedules=[warm, decay], boundaries=[1, 2])(0)
    with pytest.raises(lossbridge.ParameterError, match="decay_steps"):
        lossbridge.get("join_schedules", schedules=[factor, warm])(0)


# -- validation ------------------------------------------------------------------------------------------------------
def test_piecewise_validation() -> None:
    with pytest.raises(lossbridge.ParameterError, match="increasing"):
        lossbridge.get("piecewise_constant", boundaries=[5, 3])(0)
    with pytest.raises(lossbridge.ParameterError, match="one scale per boundary"):
        lossbridge.get("piecewise_constant", boundaries=[5, 8], scales=[0.1])(0)
    with pytest.raises(lossbridge.ParameterError, match="values"):
        lossbridge.get("piecewise_constant", boundaries=[5], values=[1.0])(0)
    with pytest.raises(lossbridge.ParameterError):
        lossbridge.get("piecewise_constant", boundaries=3)


def test_parameter_ranges_and_torch_lr_none() -> None:
    with pytest.raises(lossbridge.ParameterError):
        lossbridge.get("cosine_decay", decay_steps=0)
    with pytest.raises(lossbridge.ParameterError, match="anneal_strategy"):
        lossbridge.get("one_cycle", anneal_strategy="exp")
    with pytest.raises(lossbridge.ParameterError, match="lr is None"):
        lossbridge.get("cosine_decay", convention="torch")(0)


def test_schedule_as_numpy_optimizer_lr() -> None:
    sched = lossbridge.get("exponential_decay", lr=0.1, decay_rate=0.5, decay_steps=1)
    opt = lossbridge.get("sgd", lr=sched)
    params = [np.ones(1)]
    for _ in range(3):
        opt.step(params, [np.ones(1)])
    np.testing.assert_allclose(params[0], [1 - 0.1 - 0.05 - 0.025], rtol=1e-14)


def test_specs_run_on_array_api_strict() -> None:
    xp = pytest.importorskip("array_api_strict")
    step = xp.asarray([0.0, 5.0, 50.0, 500.0], dtype=xp.float64)
    children = [lossbridge.get("cosine_decay", decay_steps=40), lossbridge.get("exponential_decay", decay_rate=0.9)]
    for entry in lossbridge.catalog("schedule"):
        spec = lossbridge.spec(entry.name)
        params = {"lr": 0.1} if spec.param("lr").nullable else {}
        if "schedules" in {p.name for p in spec.params}:
            params["schedules"] = children
        bound = lossbridge.bound.bind(spec, params=params)
        want = lossbridge.get(entry.name, **params)
        got = bound(xp, step)
        np.testing.assert_allclose(np.asarray(got), [want(float(t)) for t in (0, 5, 50, 500)], rtol=1e-14)
