"""Schedules under each framework's convention (NumPy backend, float64) against the real framework.

Every case builds lossbridge's schedule the framework's way: ``lossbridge.get(native_name,
convention=..., **native_kwargs)`` with the framework's own class/function name and keyword arguments
(the core resolves ``Convention.names`` and applies ``Convention.kwargs``), and compares 1,000
consecutive steps with the framework's object: the lr torch's scheduler puts in the optimizer before
update ``t`` (``scheduler.step()`` after ``optimizer.step()``), Keras's ``schedule(t)`` and Optax's
``schedule(count)`` with ``t`` the number of updates already taken. torch and Optax in float64 at
1e-12; Keras computes its schedules in float32 (its hyperparameters pass through float32 even for a
float64 step), so at 1e-6. ``test_every_native_name_has_an_oracle`` checks that the case lists cover
every name the schedule conventions declare.

``test_schedules_agree_across_frameworks`` needs torch, TensorFlow and JAX at once (tox env ``all``):
a torch LRScheduler, a Keras LearningRateSchedule and an Optax schedule made from one spec and
convention give the same learning rates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.registry import normalize

STEPS = 1000


def close(ours_values: np.ndarray, theirs: np.ndarray, rtol: float, scale: float) -> None:
    np.testing.assert_allclose(ours_values, theirs, rtol=rtol, atol=rtol * scale)


def trajectory(sched: Any) -> np.ndarray:
    """A NumPy schedule's values at steps 0..STEPS-1 (it takes an array of steps)."""
    return np.asarray(sched(np.arange(STEPS, dtype=np.float64)))


# -- torch ------------------------------------------------------------------------------------------------------
TORCH_CASES = [
    ("ConstantLR", {}),
    ("ConstantLR", {"factor": 0.5, "total_iters": 7}),
    ("StepLR", {"step_size": 30, "gamma": 0.5}),
    ("ExponentialLR", {"gamma": 0.995}),
    ("MultiStepLR", {"milestones": [100, 250, 600], "gamma": 0.3}),
    ("LinearLR", {}),
    ("LinearLR", {"start_factor": 0.1, "end_factor": 1.0, "total_iters": 200}),
    ("PolynomialLR", {"total_iters": 500, "power": 2.0}),
    ("CosineAnnealingLR", {"T_max": 300, "eta_min": 0.001}),
    ("CosineAnnealingWarmRestarts", {"T_0": 70}),
    ("CosineAnnealingWarmRestarts", {"T_0": 50, "T_mult": 2, "eta_min": 1e-4}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS, "three_phase": True, "anneal_strategy": "linear"}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 40}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 30, "step_size_down": 11, "mode": "triangular2"}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 25, "mode": "exp_range", "gamma": 0.998}),
]
# children given by name: (native name, kwargs) pairs, built natively for torch and by lossbridge for ours
SEQUENTIAL = [("LinearLR", {"start_factor": 0.1, "total_iters": 50}), ("CosineAnnealingLR", {"T_max": 400}),
              ("StepLR", {"step_size": 100, "gamma": 0.5})]
CHAINED = [("ConstantLR", {"factor": 0.1, "total_iters": 20}), ("ExponentialLR", {"gamma": 0.998}),
           ("MultiStepLR", {"milestones": [300, 700], "gamma": 0.5})]
COMPOSED_CASES = [("SequentialLR", SEQUENTIAL, {"milestones": [50, 450]}), ("ChainedScheduler", CHAINED, {})]
MOMENTUM = {"OneCycleLR", "CyclicLR"}


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def torch_trajectory(torch: Any, make: Any, base_lr: float) -> tuple[list, list]:
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=base_lr, momentum=0.9)
    sched = make(opt)
    lrs, moms = [], []
    for _ in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        p.grad = torch.ones_like(p)
        opt.step()
        if len(lrs) < STEPS:
            sched.step()
    return lrs, moms


@pytest.mark.parametrize(("native_name", "native"), TORCH_CASES, ids=lambda x: str(x))
def test_torch_schedule_matches_lr_scheduler(torch: Any, native_name: str, native: dict) -> None:
    base_lr = 0.1
    cls = getattr(torch.optim.lr_scheduler, native_name)
    lrs, moms = torch_trajectory(torch, lambda opt: cls(opt, **native), base_lr)
    extra = {} if native_name in MOMENTUM else {"lr": base_lr}  # torch: lr None = the group's lr
    mine = trajectory(lossbridge.get(native_name, convention="torch", **native, **extra))
    close(mine, np.asarray(lrs), 1e-12, max(lrs))
    if native_name in MOMENTUM:
        mom = lossbridge.get(native_name, convention="torch", **native, quantity="momentum")
        close(trajectory(mom), np.asarray(moms), 1e-12, 1.0)


@pytest.mark.parametrize(("native_name", "children", "native"), COMPOSED_CASES, ids=lambda x: str(x)[:20])
def test_torch_composed_schedule_matches(torch: Any, native_name: str, children: list, native: dict) -> None:
    base_lr = 0.1
    lr_scheduler = torch.optim.lr_scheduler

    def make(opt: Any) -> Any:
        made = [getattr(lr_scheduler, name)(opt, **kw) for name, kw in children]
        if native_name == "ChainedScheduler":
            return lr_scheduler.ChainedScheduler(made)
        return lr_scheduler.SequentialLR(opt, made, **native)

    lrs, _ = torch_trajectory(torch, make, base_lr)
    ours_children = [lossbridge.get(name, convention="torch", **kw) for name, kw in children]
    mine = lossbridge.get(native_name, convention="torch", lr=base_lr, schedulers=ours_children, **native)
    close(trajectory(mine), np.asarray(lrs), 1e-12, max(lrs))


# -- Keras ------------------------------------------------------------------------------------------------------
KERAS_CASES = [
    ("ExponentialDecay", {"decay_steps": 100, "decay_rate": 0.96}),
    ("ExponentialDecay", {"decay_steps": 70, "decay_rate": 0.5, "staircase": True}),
    ("PiecewiseConstantDecay", {"boundaries": [100, 500], "values": [1.0, 0.5, 0.1]}),
    ("PolynomialDecay", {"decay_steps": 500, "end_learning_rate": 0.001, "power": 2.0}),
    ("PolynomialDecay", {"decay_steps": 300, "cycle": True, "power": 0.5}),
    ("InverseTimeDecay", {"decay_steps": 10, "decay_rate": 0.5}),
    ("InverseTimeDecay", {"decay_steps": 30, "decay_rate": 0.5, "staircase": True}),
    ("CosineDecay", {"decay_steps": 500, "alpha": 0.1}),
    ("CosineDecay", {"decay_steps": 600, "warmup_target": 0.3, "warmup_steps": 100}),
    ("CosineDecayRestarts", {"first_decay_steps": 100}),
    ("CosineDecayRestarts", {"first_decay_steps": 90, "t_mul": 1.0, "m_mul": 0.8, "alpha": 0.05}),
]


@pytest.fixture(scope="module")
def keras() -> Any:
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


@pytest.mark.parametrize(("native_name", "native"), KERAS_CASES, ids=lambda x: str(x))
def test_keras_schedule_matches_learning_rate_schedule(keras: Any, native_name: str, native: dict) -> None:
    kwargs = dict(native)
    if native_name != "PiecewiseConstantDecay":
        kwargs["initial_learning_rate"] = 0.1 if "warmup_target" not in native else 0.01
    theirs = getattr(keras.optimizers.schedules, native_name)(**kwargs)
    if "warmup_target" in native:  # Keras's warmup branches in Python on the step: one scalar step at a time
        values = np.asarray([float(theirs(t)) for t in range(STEPS)])
    else:  # Keras computes in float32
        values = np.asarray(theirs(keras.ops.arange(STEPS, dtype="int64")), dtype=np.float64)
    mine = lossbridge.get(native_name, convention="keras", **kwargs)
    close(trajectory(mine), values, 1e-6, float(np.max(values)))


# -- Optax ------------------------------------------------------------------------------------------------------
OPTAX_CASES = [
    ("constant_schedule", {"value": 0.3}),
    ("exponential_decay", {"init_value": 0.1, "transition_steps": 50, "decay_rate": 0.9, "transition_begin": 20}),
    ("exponential_decay",
     {"init_value": 0.1, "transition_steps": 50, "decay_rate": 0.5, "staircase": True, "end_value": 0.001}),
    ("warmup_exponential_decay_schedule",
     {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 50, "transition_steps": 30, "decay_rate": 0.8,
      "transition_begin": 20, "staircase": True, "end_value": 1e-3}),
    ("polynomial_schedule",
     {"init_value": 0.1, "end_value": 0.001, "power": 2.0, "transition_steps": 500, "transition_begin": 50}),
    ("linear_schedule", {"init_value": 0.0, "end_value": 0.1, "transition_steps": 200}),
    ("cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 500, "alpha": 0.1, "exponent": 2.0}),
    ("warmup_cosine_decay_schedule",
     {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 100, "decay_steps": 800, "end_value": 1e-3}),
    ("warmup_constant_schedule", {"init_value": 0.01, "peak_value": 0.1, "warmup_steps": 100}),
    ("cosine_onecycle_schedule", {"transition_steps": 800, "peak_value": 0.5}),
    ("linear_onecycle_schedule", {"transition_steps": 800, "peak_value": 0.5}),
    ("sgdr_schedule", {"cosine_kwargs": [
        {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 20, "decay_steps": 300},
        {"init_value": 0.01, "peak_value": 0.05, "warmup_steps": 10, "decay_steps": 200, "end_value": 1e-3},
        {"init_value": 0.0, "peak_value": 0.02, "warmup_steps": 0, "decay_steps": 600}]}),
]
TABLE = {100: 10.0, 300: 0.1, 301: 0.5, 600: 0.2}  # Optax's boundaries_and_scales


@pytest.fixture(scope="module")
def optax() -> Any:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return pytest.importorskip("optax")


def optax_values(schedule: Any) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    # int64 counts: with Optax's own int32 count its schedules compute in float32 (int32 / int -> float32)
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(STEPS, dtype=jnp.int64)), dtype=np.float64)


@pytest.mark.parametrize(("native_name", "native"), OPTAX_CASES, ids=lambda x: str(x)[:40])
def test_optax_schedule_matches_optax(optax: Any, native_name: str, native: dict) -> None:
    theirs = optax_values(getattr(optax, native_name)(**native))
    mine = lossbridge.get(native_name, convention="optax", **native)
    close(trajectory(mine), theirs, 1e-12, float(np.max(theirs)))


@pytest.mark.parametrize("native_name", ["piecewise_constant_schedule", "piecewise_interpolate_schedule"])
@pytest.mark.parametrize("interpolate_type", ["linear", "cosine"])
def test_optax_piecewise_schedules(optax: Any, native_name: str, interpolate_type: str) -> None:
    """Optax's ``boundaries_and_scales`` is the spec's pair (``boundaries``, ``scales``)."""
    kind = {"interpolate_type": interpolate_type} if "interpolate" in native_name else {}
    theirs = optax_values(getattr(optax, native_name)(init_value=0.01, boundaries_and_scales=TABLE, **kind))
    pair = (list(TABLE), list(TABLE.values()))  # the pair form; the dict form is tested below
    mine = lossbridge.get(native_name, convention="optax", init_value=0.01, boundaries_and_scales=pair, **kind)
    close(trajectory(mine), theirs, 1e-12, float(np.max(theirs)))


def test_optax_boundaries_and_scales_as_a_dict(optax: Any) -> None:
    """Drop-in form: Optax's dict ``boundaries_and_scales={b: s}``, split into the spec's pair."""
    theirs = optax_values(optax.piecewise_constant_schedule(init_value=0.01, boundaries_and_scales=TABLE))
    mine = lossbridge.get("piecewise_constant_schedule", convention="optax", init_value=0.01,
                          boundaries_and_scales=TABLE)
    close(trajectory(mine), theirs, 1e-12, float(np.max(theirs)))


def test_optax_join_schedules_of_lossbridge_and_optax_children(optax: Any) -> None:
    first = lossbridge.get("exponential_decay", convention="optax", init_value=0.1, transition_steps=10,
                           decay_rate=0.9)
    second = lossbridge.get("cosine_decay_schedule", convention="optax", init_value=0.1, decay_steps=100)
    theirs = optax_values(optax.join_schedules(
        [optax.exponential_decay(0.1, 10, 0.9), optax.cosine_decay_schedule(0.1, 100), optax.constant_schedule(0.3)],
        [200, 500],
    ))
    third = lossbridge.get("constant_schedule", convention="optax", value=0.3)
    mine = lossbridge.get("join_schedules", convention="optax", schedules=[first, second, third], boundaries=[200, 500])
    close(trajectory(mine), theirs, 1e-12, 0.3)


# -- every declared name ---------------------------------------------------------------------------------------
def _declared() -> list[tuple[str, str]]:
    out = []
    for entry in lossbridge.catalog("schedule"):
        for fw, conv in lossbridge.spec(entry.name).conventions.items():
            out += [(fw, name) for name in conv.names]
    return out


def test_every_native_name_has_an_oracle() -> None:
    """Every torch/Keras/Optax name the schedule conventions declare has an oracle case above.

    Caffe's lr policies are checked against their C++ transcription in ``tests/spec/test_schedules.py``.
    """
    covered = {("torch", n) for n, _ in TORCH_CASES} | {("torch", n) for n, *_ in COMPOSED_CASES}
    covered |= {("keras", n) for n, _ in KERAS_CASES} | {("optax", n) for n, _ in OPTAX_CASES}
    covered |= {("optax", "piecewise_constant_schedule"), ("optax", "piecewise_interpolate_schedule"),
                ("optax", "join_schedules")}
    declared = {(fw, normalize(n)) for fw, n in _declared() if fw != "caffe"}
    missing = sorted(declared - {(fw, normalize(n)) for fw, n in covered})
    assert not missing


# -- one spec, three frameworks ------------------------------------------------------------------------------------
CROSS_CASES = [
    ("CosineAnnealingLR", "torch", {"T_max": 300, "eta_min": 1e-3}),
    ("CosineAnnealingWarmRestarts", "torch", {"T_0": 50, "T_mult": 2}),
    ("CyclicLR", "torch", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 40, "mode": "triangular2"}),
    ("OneCycleLR", "torch", {"max_lr": 0.5, "total_steps": STEPS}),
    ("CosineDecay", "keras", {"initial_learning_rate": 0.01, "decay_steps": 600, "warmup_target": 0.3,
                              "warmup_steps": 100}),
    ("warmup_exponential_decay_schedule", "optax",
     {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 50, "transition_steps": 30, "decay_rate": 0.8}),
    ("piecewise_interpolate_schedule", "optax",
     {"init_value": 0.01, "boundaries_and_scales": (list(TABLE), list(TABLE.values())), "interpolate_type": "cosine"}),
]


@pytest.mark.parametrize(("native_name", "convention", "native"), CROSS_CASES, ids=lambda x: str(x)[:30])
def test_schedules_agree_across_frameworks(torch: Any, keras: Any, optax: Any, native_name: str, convention: str,
                                           native: dict) -> None:
    """torch LRScheduler, Keras LearningRateSchedule and Optax schedule of one spec and convention agree."""
    import jax
    import jax.numpy as jnp
    import tensorflow as tf

    base_lr = 0.1
    given = dict(native)
    if convention == "torch" and native_name not in MOMENTUM:
        given["lr"] = base_lr  # absolute for Keras and Optax; torch's scheduler gets it as the group's lr anyway
    cls = lossbridge.get(native_name, backend="torch", convention=convention, **given)
    lrs, _ = torch_trajectory(torch, cls, base_lr)
    on_keras = lossbridge.get(native_name, backend="tensorflow", convention=convention, **given)
    keras_values = on_keras(tf.range(STEPS, dtype=tf.int64)).numpy()
    on_optax = jax.jit(jax.vmap(lossbridge.get(native_name, backend="jax", convention=convention, **given)))
    optax_values_ = np.asarray(on_optax(jnp.arange(STEPS)))
    scale = float(np.max(lrs))
    assert keras_values.dtype == np.float32 and optax_values_.dtype == np.float64
    close(optax_values_, np.asarray(lrs), 1e-12, scale)
    close(keras_values, np.asarray(lrs), 1e-6, scale)
