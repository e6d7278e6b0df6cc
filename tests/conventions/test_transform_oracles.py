"""Gradient transforms against the REAL frameworks: 100 float64 steps, 1e-10 relative per iterate.

* Optax: each transform spec under the Optax convention, chained before ``sgd``/``adam``, on the NumPy
  backend (``lossbridge.chain``) and on JAX (lossbridge's transformation inside ``optax.chain``, with
  Optax's optimizers; inside ``optax.MultiSteps``), against ``optax.chain(optax.<transform>, ...)``.
* torch: ``clip_grad_norm_`` / ``clip_grad_value_`` followed by ``torch.optim.SGD``/``Adam``, against
  lossbridge's transform under the torch convention on NumPy and on torch (a lossbridge transform
  chained before torch's own optimizer and before lossbridge's), and the chain's gradient
  accumulation against the mean gradient fed to ``torch.optim.Adam``.
* Keras: ``lossbridge.get("adam", backend="tensorflow", convention="keras", <option>=...)`` against
  ``keras.optimizers.Adam(<option>=...)`` for each base-optimizer option (Keras's own implementation of
  the option runs on both sides; this verifies it reaches Keras's base class and composes with the
  spec's update).

The problem is ``_optimizer_oracle.least_squares`` (a quadratic plus a cosine term); the thresholds are
chosen so that the clipping is active on some steps and not on others.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import (
    Params,
    assert_same,
    keras_module,
    keras_numpy,
    least_squares,
    optax_module,
    trajectory,
)

keras = pytest.fixture(scope="module", name="keras")(keras_module)
optax = pytest.fixture(scope="module", name="optax")(optax_module)


@pytest.fixture(scope="module", name="torch")
def torch_module() -> Any:
    return pytest.importorskip("torch")


class NumpySteps:
    """A lossbridge NumPy chain (or optimizer) over its own copies of the parameters."""

    def __init__(self, opt: Any, start: Params) -> None:
        self.opt, self.params = opt, [p.copy() for p in start]

    def step(self, grads: Params) -> Params:
        self.opt.step(self.params, [g.copy() for g in grads])
        return [p.copy() for p in self.params]


class OptaxSteps:
    """Any Optax transformation (``optax.chain`` of Optax's and lossbridge's parts)."""

    def __init__(self, optax: Any, tx: Any, start: Params, *, jit: bool = False) -> None:
        import jax
        import jax.numpy as jnp

        self.optax, self.jnp = optax, jnp
        self.params = [jnp.asarray(p) for p in start]
        self.state = tx.init(self.params)
        self.update = jax.jit(tx.update) if jit else tx.update

    def step(self, grads: Params) -> Params:
        updates, self.state = self.update([self.jnp.asarray(g) for g in grads], self.state, self.params)
        self.params = self.optax.apply_updates(self.params, updates)
        return [np.asarray(p, dtype=np.float64) for p in self.params]


def _run(steps_factory: Any) -> list[Params]:
    start, grad = least_squares()
    return trajectory(steps_factory(start), start, grad)


# -- Optax ------------------------------------------------------------------------------------------
class OptaxCase(NamedTuple):
    name: str  # the Optax function (and the lossbridge name under the Optax convention)
    native: dict[str, Any]
    optimizer: str  # "sgd" or "adam"


OPTAX_CASES = [
    OptaxCase("clip", {"max_delta": 0.3}, "sgd"),
    OptaxCase("clip", {"max_delta": 0.3}, "adam"),
    OptaxCase("clip_by_global_norm", {"max_norm": 0.5}, "sgd"),
    OptaxCase("clip_by_global_norm", {"max_norm": 0.5}, "adam"),
    OptaxCase("clip_by_block_rms", {"threshold": 0.2}, "sgd"),
    OptaxCase("clip_by_block_rms", {"threshold": 0.2}, "adam"),
    OptaxCase("adaptive_grad_clip", {"clipping": 0.1}, "sgd"),
    OptaxCase("adaptive_grad_clip", {"clipping": 0.1, "eps": 0.5}, "adam"),
    OptaxCase("centralize", {}, "sgd"),
    OptaxCase("centralize", {}, "adam"),
    OptaxCase("ema", {"decay": 0.8}, "sgd"),
    OptaxCase("ema", {"decay": 0.8, "debias": False}, "adam"),
]
OPTAX_IDS = [f"{c.name}-{c.optimizer}-" + "-".join(f"{k}={v}" for k, v in c.native.items()) for c in OPTAX_CASES]
OPT_ARGS = {"sgd": {"learning_rate": 0.1}, "adam": {"learning_rate": 0.05}}


def _optax_reference(optax: Any, case: OptaxCase) -> list[Params]:
    native = getattr(optax, case.name)(**case.native)
    tx = optax.chain(native, getattr(optax, case.optimizer)(**OPT_ARGS[case.optimizer]))
    return _run(lambda start: OptaxSteps(optax, tx, start, jit=True))


@pytest.mark.parametrize("case", OPTAX_CASES, ids=OPTAX_IDS)
def test_optax_numpy_chain_matches_optax_chain(optax: Any, case: OptaxCase) -> None:
    def ours(start: Params) -> NumpySteps:
        transform = lossbridge.get(case.name, convention="optax", **case.native)
        opt = lossbridge.get(case.optimizer, convention="optax", **OPT_ARGS[case.optimizer])
        return NumpySteps(lossbridge.chain(transform, opt), start)

    assert_same(_run(ours), _optax_reference(optax, case))


@pytest.mark.parametrize("case", OPTAX_CASES, ids=OPTAX_IDS)
def test_optax_jax_transform_in_optax_chain(optax: Any, case: OptaxCase) -> None:
    """lossbridge's JAX transformation composes with Optax's optimizer through ``optax.chain`` (jitted)."""
    ours = lossbridge.get(case.name, backend="jax", convention="optax", **case.native)
    assert isinstance(ours, optax.GradientTransformation)
    tx = optax.chain(ours, getattr(optax, case.optimizer)(**OPT_ARGS[case.optimizer]))
    assert_same(_run(lambda start: OptaxSteps(optax, tx, start, jit=True)), _optax_reference(optax, case))


def test_optax_transform_without_params(optax: Any) -> None:
    """A transform that does not read the parameters runs as ``update(grads, state)`` (Optax's call)."""
    import jax.numpy as jnp

    grads = [jnp.asarray([3.0, 4.0]), jnp.asarray([[12.0]])]
    for name, native in [("clip_by_global_norm", {"max_norm": 1.0}), ("clip", {"max_delta": 2.0}),
                         ("ema", {"decay": 0.5})]:
        ours = lossbridge.get(name, backend="jax", convention="optax", **native)
        theirs = getattr(optax, name)(**native)
        got, _ = ours.update(grads, ours.init(grads))
        want, _ = theirs.update(grads, theirs.init(grads))
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-14)


def test_optax_multisteps_wraps_lossbridge_chain(optax: Any) -> None:
    """``optax.MultiSteps`` over a chain of lossbridge's clip and lossbridge's adam, against Optax's own."""
    ours = optax.MultiSteps(
        optax.chain(
            lossbridge.get("clip_by_global_norm", backend="jax", convention="optax", max_norm=0.5),
            lossbridge.get("adam", backend="jax", convention="optax", learning_rate=0.05),
        ),
        every_k_schedule=3,
    )
    theirs = optax.MultiSteps(optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.05)), every_k_schedule=3)
    assert_same(_run(lambda s: OptaxSteps(optax, ours, s, jit=True)),
                _run(lambda s: OptaxSteps(optax, theirs, s, jit=True)))


def test_optax_accumulate_matches_multisteps(optax: Any) -> None:
    """``lossbridge.chain(..., accumulate=k)`` on NumPy and on JAX is ``optax.MultiSteps(every_k_schedule=k)``.

    MultiSteps keeps its running mean in float32 unless told (``accumulator_dtype``); lossbridge's NumPy
    and torch chains keep it in the gradients' dtype, so the NumPy chain is compared with a float64
    accumulator, and the JAX chain (which IS MultiSteps) with Optax's default.
    """
    import jax.numpy as jnp

    theirs = optax.MultiSteps(optax.chain(optax.clip(0.3), optax.adam(0.05)), every_k_schedule=4,
                              accumulator_dtype=jnp.float64)
    expected = _run(lambda s: OptaxSteps(optax, theirs, s, jit=True))

    def numpy_chain(start: Params) -> NumpySteps:
        parts = (lossbridge.get("clip", convention="optax", max_delta=0.3),
                 lossbridge.get("adam", convention="optax", learning_rate=0.05))
        return NumpySteps(lossbridge.chain(*parts, accumulate=4), start)

    assert_same(_run(numpy_chain), expected)
    jax_chain = lossbridge.chain(lossbridge.get("clip", backend="jax", convention="optax", max_delta=0.3),
                                 optax.adam(0.05), accumulate=4)
    assert isinstance(jax_chain, optax.MultiSteps)
    default = optax.MultiSteps(optax.chain(optax.clip(0.3), optax.adam(0.05)), every_k_schedule=4)
    assert_same(_run(lambda s: OptaxSteps(optax, jax_chain, s, jit=True)),
                _run(lambda s: OptaxSteps(optax, default, s, jit=True)))


# -- torch ------------------------------------------------------------------------------------------
class TorchCase(NamedTuple):
    clip: str  # torch.nn.utils function
    native: dict[str, Any]  # its keyword arguments (after the parameters)
    optimizer: str  # torch.optim class
    opt_native: dict[str, Any]


TORCH_CASES = [
    TorchCase("clip_grad_norm_", {"max_norm": 0.5}, "SGD", {"lr": 0.1, "momentum": 0.9}),
    TorchCase("clip_grad_norm_", {"max_norm": 0.5}, "Adam", {"lr": 0.05}),
    TorchCase("clip_grad_norm_", {"max_norm": 0.5, "norm_type": 1.0}, "Adam", {"lr": 0.05}),
    TorchCase("clip_grad_norm_", {"max_norm": 0.7, "norm_type": 3.0}, "SGD", {"lr": 0.1}),
    TorchCase("clip_grad_value_", {"clip_value": 0.3}, "SGD", {"lr": 0.1}),
    TorchCase("clip_grad_value_", {"clip_value": 0.3}, "Adam", {"lr": 0.05}),
]
TORCH_IDS = [f"{c.clip}-{c.optimizer}-" + "-".join(f"{k}={v}" for k, v in c.native.items()) for c in TORCH_CASES]


class TorchNativeSteps:
    """``torch.nn.utils.<clip>(params, **native)`` then ``torch.optim.<optimizer>.step()``."""

    def __init__(self, torch: Any, case: TorchCase, start: Params) -> None:
        self.torch, self.case = torch, case
        self.params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start]
        self.opt = getattr(torch.optim, case.optimizer)(self.params, **case.opt_native)

    def step(self, grads: Params) -> Params:
        for p, g in zip(self.params, grads, strict=True):
            p.grad = self.torch.tensor(g, dtype=self.torch.float64)
        getattr(self.torch.nn.utils, self.case.clip)(self.params, **self.case.native)
        self.opt.step()
        return [p.detach().numpy().copy() for p in self.params]


class TorchChainSteps:
    """A ``lossbridge.chain`` on torch over float64 tensors."""

    def __init__(self, torch: Any, make: Any, start: Params) -> None:
        self.torch = torch
        self.params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start]
        self.opt = make(self.params)

    def step(self, grads: Params) -> Params:
        for p, g in zip(self.params, grads, strict=True):
            p.grad = self.torch.tensor(g, dtype=self.torch.float64)
        self.opt.step()
        self.opt.zero_grad()
        return [p.detach().numpy().copy() for p in self.params]


@pytest.mark.parametrize("case", TORCH_CASES, ids=TORCH_IDS)
def test_torch_numpy_chain_matches_clip_then_optimizer(torch: Any, case: TorchCase) -> None:
    expected = _run(lambda s: TorchNativeSteps(torch, case, s))

    def ours(start: Params) -> NumpySteps:
        transform = lossbridge.get(case.clip, convention="torch", **case.native)
        return NumpySteps(lossbridge.chain(transform, lossbridge.get(case.optimizer, convention="torch",
                                                                     **case.opt_native)), start)

    assert_same(_run(ours), expected)


@pytest.mark.parametrize("case", TORCH_CASES, ids=TORCH_IDS)
def test_torch_transform_before_torch_and_lossbridge_optimizers(torch: Any, case: TorchCase) -> None:
    """The torch transform chained before torch's own optimizer, and before lossbridge's torch optimizer."""
    expected = _run(lambda s: TorchNativeSteps(torch, case, s))
    clip = lossbridge.get(case.clip, backend="torch", convention="torch", **case.native)
    native_opt = _run(lambda s: TorchChainSteps(
        torch, lambda ps: lossbridge.chain(clip, getattr(torch.optim, case.optimizer)(ps, **case.opt_native)), s))
    assert_same(native_opt, expected)
    ours = lossbridge.get(case.optimizer, backend="torch", convention="torch")
    lb_opt = _run(lambda s: TorchChainSteps(torch, lambda ps: lossbridge.chain(clip, ours(ps, **case.opt_native)), s))
    assert_same(lb_opt, expected)


def test_torch_transform_instance_and_state_dict(torch: Any) -> None:
    """A transform built over the parameters (an instance) chains too; a chain's state_dict round-trips."""
    case = TORCH_CASES[1]
    expected = _run(lambda s: TorchNativeSteps(torch, case, s))
    clip_cls = lossbridge.get("clip_grad_norm_", backend="torch", convention="torch", max_norm=0.5)

    class Restarted(TorchChainSteps):
        """Rebuilds the chain from its state_dict every 10 steps."""

        def __init__(self, start: Params) -> None:
            self.count = 0
            super().__init__(torch, self._make, start)

        def _make(self, ps: list[Any]) -> Any:
            return lossbridge.chain(clip_cls(ps), torch.optim.Adam(ps, **case.opt_native))

        def step(self, grads: Params) -> Params:
            out = super().step(grads)
            self.count += 1
            if self.count % 10 == 0:
                saved = self.opt.state_dict()
                self.opt = self._make(self.params)
                self.opt.load_state_dict(saved)
            return out

    assert_same(_run(Restarted), expected)


def test_torch_chain_accumulate(torch: Any) -> None:
    """``accumulate=3``: the parameters move on every 3rd step, by Adam on the clipped mean gradient."""

    class Reference:
        def __init__(self, start: Params) -> None:
            self.params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start]
            self.opt = torch.optim.Adam(self.params, lr=0.05)
            self.acc: list[np.ndarray] = []

        def step(self, grads: Params) -> Params:
            self.acc.append(grads)
            if len(self.acc) == 3:
                for k, p in enumerate(self.params):
                    p.grad = torch.tensor(np.mean([g[k] for g in self.acc], axis=0), dtype=torch.float64)
                torch.nn.utils.clip_grad_value_(self.params, 0.3)
                self.opt.step()
                self.acc = []
            return [p.detach().numpy().copy() for p in self.params]

    clip = lossbridge.get("clip_grad_value_", backend="torch", convention="torch", clip_value=0.3)
    ours = _run(lambda s: TorchChainSteps(
        torch, lambda ps: lossbridge.chain(clip, torch.optim.Adam(ps, lr=0.05), accumulate=3), s))
    assert_same(ours, _run(Reference))


# -- Keras ------------------------------------------------------------------------------------------
KERAS_OPTIONS = [
    {"clipnorm": 0.3},
    {"clipvalue": 0.1},
    {"global_clipnorm": 0.4},
    {"use_ema": True, "ema_momentum": 0.9},
    {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 7},
    {"gradient_accumulation_steps": 3},
    {"loss_scale_factor": 8.0},
]


class KerasOptSteps:
    """A Keras optimizer object over float64 variables, applied in a compiled train step."""

    def __init__(self, keras: Any, opt: Any, start: Params) -> None:
        self.opt = opt
        self.keras = keras
        self.variables = [keras.Variable(p, dtype="float64") for p in start]

        def apply(grads: list[Any]) -> None:
            self.opt.apply_gradients(zip(grads, self.variables, strict=True))

        if keras.backend.backend() == "tensorflow":
            apply = pytest.importorskip("tensorflow").function(apply)
        self.apply = apply

    def step(self, grads: Params) -> Params:
        self.apply([self.keras.ops.convert_to_tensor(g, dtype="float64") for g in grads])
        return [keras_numpy(v) for v in self.variables]


@pytest.mark.parametrize("options", KERAS_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_keras_base_optimizer_options(keras: Any, options: dict[str, Any]) -> None:
    pytest.importorskip("lossbridge_tensorflow")
    made: list[Any] = []

    def ours(start: Params) -> KerasOptSteps:
        opt = lossbridge.get("Adam", backend="tensorflow", convention="keras", learning_rate=0.01, **options)
        made.append(opt)
        return KerasOptSteps(keras, opt, start)

    def theirs(start: Params) -> KerasOptSteps:
        opt = keras.optimizers.Adam(learning_rate=0.01, **options)
        made.append(opt)
        return KerasOptSteps(keras, opt, start)

    steps_ours, steps_theirs = _keep(ours), _keep(theirs)
    assert_same(_run(steps_ours), _run(steps_theirs))
    for name, value in options.items():
        assert getattr(made[0], name) == value
    if options.get("use_ema"):  # the moving averages of the parameters, then Keras's finalize
        a, b = steps_ours.last, steps_theirs.last
        for x, y in zip(a.opt._model_variables_moving_average, b.opt._model_variables_moving_average, strict=True):
            np.testing.assert_allclose(keras_numpy(x), keras_numpy(y), rtol=1e-10)
        a.opt.finalize_variable_values(a.variables)
        b.opt.finalize_variable_values(b.variables)
        for x, y in zip(a.variables, b.variables, strict=True):
            np.testing.assert_allclose(keras_numpy(x), keras_numpy(y), rtol=1e-10)


def _keep(factory: Any) -> Any:
    """``factory`` that remembers the last stepper it made (``.last``)."""

    class Keep:
        last: Any = None

        def __call__(self, start: Params) -> Any:
            self.last = factory(start)
            return self.last

    return Keep()


def test_keras_options_survive_get_config(keras: Any) -> None:
    pytest.importorskip("lossbridge_tensorflow")
    opt = lossbridge.get("adam", backend="tensorflow", convention="keras", global_clipnorm=1.0,
                         gradient_accumulation_steps=2, use_ema=True)
    clone = type(opt).from_config(opt.get_config())
    assert (clone.global_clipnorm, clone.gradient_accumulation_steps, clone.use_ema) == (1.0, 2, True)


def test_keras_transform_spec_refused_with_a_pointer(keras: Any) -> None:
    pytest.importorskip("lossbridge_tensorflow")
    with pytest.raises(lossbridge.BackendError, match="global_clipnorm"):
        lossbridge.get("clip_by_global_norm", backend="tensorflow")


@pytest.mark.parametrize("name", ["AdamW", "Lion"])
def test_keras_exclude_from_weight_decay(keras: Any, name: str) -> None:
    """Keras's per-variable label: ``exclude_from_weight_decay(var_names=["bias"])`` on our optimizer as on Keras's."""
    pytest.importorskip("lossbridge_tensorflow")

    class Named(KerasOptSteps):
        def __init__(self, opt: Any, start: Params) -> None:
            super().__init__(keras, opt, start)
            self.variables = [keras.Variable(p, dtype="float64", name=n)
                              for p, n in zip(start, ["bias", "kernel"], strict=True)]
            opt.exclude_from_weight_decay(var_names=["bias"])

    def make(opt_factory: Any) -> Any:
        return lambda start: Named(opt_factory(), start)

    native = {"learning_rate": 0.01, "weight_decay": 0.2}
    ours = _run(make(lambda: lossbridge.get(name, backend="tensorflow", convention="keras", **native)))
    theirs = _run(make(lambda: getattr(keras.optimizers, name)(**native)))
    assert_same(ours, theirs)
    plain = _run(lambda start: KerasOptSteps(keras, getattr(keras.optimizers, name)(**native), start))
    with pytest.raises(AssertionError, match="relative error"):  # the exclusion changes the numbers
        assert_same(ours, plain)
