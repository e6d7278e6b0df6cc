"""Issue 12 leftovers against the REAL frameworks in float64: values and input gradients to 1e-10,
optimizer trajectories (100 steps) to 1e-10 per step.

* torch ``CTCLoss`` unbatched: ``(T, C)`` log_probs, ``(S,)`` targets, 0-d / one-element lengths;
* Keras ``circle(..., ref_labels=, ref_embeddings=)``: a separate reference set;
* Optax ``triplet_margin_loss(axis=...)`` and ``dice_loss``'s rank expansion;
* torch ``Adafactor(d=..., eps=(eps1, eps2))``, Optax ``adafactor``'s keywords (``decay_rate`` is
  lossbridge's ``-beta2_decay``), Optax ``adadelta(learning_rate=None)`` (no scaling, no sign flip);
* torch ``Adagrad(fused=True)``: the verified fused kernel equals the spec's own update.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import (
    Case,
    LossbridgeSteps,
    OptaxSteps,
    TorchSteps,
    assert_same,
    case_ids,
    least_squares,
    lossbridge_trajectory,
    optax_injected,
    optax_module,
    optax_trajectory,
    trajectory,
)


def _close(actual: Any, expected: Any, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=rtol, atol=atol)


def _rng() -> np.random.Generator:
    return np.random.default_rng(1212)


def _fixed_gradients() -> tuple[list[np.ndarray], Any]:
    """A start (a vector, a matrix, a 3-D tensor) and a fixed gradient sequence, not taken at the
    iterates: large steps (Optax's adafactor default has no learning-rate factor) on the least-squares
    problem would amplify last-bit differences of the two sides' iterates beyond 1e-10."""
    rng = np.random.default_rng(31)
    start = [rng.normal(size=(3,)), rng.normal(size=(4, 3)), rng.normal(size=(2, 3, 4))]
    sequence = iter([[rng.normal(size=p.shape) for p in start] for _ in range(100)])
    return start, lambda _params: next(sequence)


def _open_loop(make: Any, case: Case) -> Any:
    start, grad = _fixed_gradients()
    return trajectory(make(start), start, grad, case.new_lr)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    torch = pytest.importorskip("torch")
    pytest.importorskip("lossbridge_torch")
    return torch


T, C, S = 7, 4, 3


def _unbatched() -> tuple[np.ndarray, np.ndarray]:
    """Logits (T, C) and a label sequence (S,) with a repeat (it needs S + 1 frames)."""
    rng = _rng()
    logits = 2.0 * rng.normal(size=(T, C))
    return logits, np.array([2, 2, 1])


LENGTH_FORMS = {
    "0-d": lambda torch, n: torch.tensor(n),
    "one-element": lambda torch, n: torch.tensor([n]),
    "tuple": lambda torch, n: (n,),
}


@pytest.mark.parametrize("frames", [T, T - 2, 3])  # 3 frames: no alignment for 2 2 1
@pytest.mark.parametrize("form", sorted(LENGTH_FORMS))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_torch_ctc_unbatched_values_and_gradients(torch: Any, reduction: str, form: str, frames: int) -> None:
    """``CTCLoss()((T, C), (S,), (), ())``: one sequence; 'none' gives a 0-d value, 'mean' divides by its
    length; gradients through torch's log_softmax agree on the torch backend; NumPy's ``.grad`` is
    d loss / d log_probs in the (T, C) layout (torch's leaf gradient minus exp(log_probs) on used frames)."""
    logits, targets = _unbatched()
    make = LENGTH_FORMS[form]
    kwargs = {"reduction": reduction, "zero_infinity": True}
    x = torch.from_numpy(logits).requires_grad_()
    expected = torch.nn.CTCLoss(**kwargs)(torch.log_softmax(x, -1), torch.from_numpy(targets), make(torch, frames),
                                          make(torch, S))
    (g_expected,) = torch.autograd.grad(expected, x)
    y = x.detach().clone().requires_grad_()
    ours = lossbridge.get("CTCLoss", backend="torch", convention="torch", **kwargs)
    got = ours(torch.log_softmax(y, -1), torch.from_numpy(targets), make(torch, frames), make(torch, S))
    (g_got,) = torch.autograd.grad(got, y)
    assert tuple(got.shape) == tuple(expected.shape) == ()
    _close(got.detach().numpy(), expected.detach().numpy())
    _close(g_got.numpy(), g_expected.numpy())

    lp = torch.from_numpy(_log_softmax(logits)).requires_grad_()
    leaf = torch.nn.CTCLoss(**kwargs)(lp, torch.from_numpy(targets), torch.tensor(frames), torch.tensor(S))
    leaf.backward()
    loss = lossbridge.get("CTCLoss", convention="torch", **kwargs)
    value, grad = loss.value_and_grad(targets, _log_softmax(logits), np.asarray(frames), np.asarray([S]))
    assert np.shape(value) == () and grad.shape == (T, C)
    _close(value, leaf.detach().numpy())
    used = (np.arange(T) < frames)[:, None] * (float(leaf.detach()) > 0)  # zero_infinity: no alignment, no gradient
    used = used / S if reduction == "mean" else used  # the cotangent of torch's per-length mean
    _close(grad + np.exp(_log_softmax(logits)) * used, lp.grad.numpy())


def test_torch_ctc_unbatched_without_zero_infinity_is_inf(torch: Any) -> None:
    logits, targets = _unbatched()
    lp = _log_softmax(logits)
    expected = torch.nn.CTCLoss(reduction="none")(torch.from_numpy(lp), torch.from_numpy(targets), torch.tensor(3),
                                                  torch.tensor(S))
    got = lossbridge.get("CTCLoss", convention="torch", reduction="none")(targets, lp, np.asarray(3), np.asarray(S))
    assert np.isinf(float(expected)) and np.isinf(float(got))


def test_torch_ctc_unbatched_refuses_several_lengths(torch: Any) -> None:
    logits, targets = _unbatched()
    loss = lossbridge.get("CTCLoss", convention="torch")
    with pytest.raises(lossbridge.errors.InputError, match="one length"):
        loss(targets, _log_softmax(logits), np.array([T, T]), np.array([S]))


TORCH_ADAFACTOR = [  # torch refuses d < 1
    Case("Adafactor", {"d": 1.5}),
    Case("Adafactor", {"d": 2.0, "eps": (None, 1e-2), "lr": 0.02}),
    Case("Adafactor", {"d": 3.0, "eps": (1e-20, 1e-3), "weight_decay": 0.1}, new_lr=0.02),
]


@pytest.mark.parametrize("case", TORCH_ADAFACTOR, ids=case_ids(TORCH_ADAFACTOR))
def test_torch_adafactor_d_and_eps_keywords(torch: Any, case: Case) -> None:
    """``torch.optim.Adafactor(d=..., eps=(eps1, eps2))``: d is the clipping threshold, eps a pair."""
    opt = lossbridge.get(case.name, convention="torch", **case.native)
    assert_same(_open_loop(lambda start: LossbridgeSteps(opt, start), case),
                _open_loop(lambda start: TorchSteps(torch, case.name, case.native, start), case))


def _torch_params(torch: Any, dtype: Any) -> list[Any]:
    rng = _rng()
    return [torch.tensor(rng.normal(size=s), dtype=dtype, requires_grad=True) for s in ((5,), (3, 4), (2, 3, 2))]


def _torch_run(torch: Any, make: Any, dtype: Any, steps: int = 100, **kwargs: Any) -> list[np.ndarray]:
    params = _torch_params(torch, dtype)
    opt = make(params, **kwargs)
    rng = np.random.default_rng(5)
    for _ in range(steps):
        for p in params:
            p.grad = torch.tensor(rng.normal(size=tuple(p.shape)), dtype=dtype)
        opt.step()
    return [p.detach().double().numpy() for p in params]


ADAGRAD = [
    {},
    {"weight_decay": 0.1},
    {"maximize": True, "lr": 0.05},
    {"initial_accumulator_value": 0.3, "lr_decay": 0.01, "eps": 1e-6},
]


@pytest.mark.parametrize("kwargs", ADAGRAD, ids=[str(k) or "default" for k in ADAGRAD])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_adagrad_fused_kernel_equals_the_spec_update(torch: Any, dtype: str, kwargs: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``fused=True`` runs ``torch._fused_adagrad_`` (counted here) and equals the spec's own update
    (``fused=False``) and torch's ``Adagrad(fused=True)``: float64 to 1e-10, float32 to float32 rounding."""
    calls = []
    kernel = torch._fused_adagrad_
    monkeypatch.setattr(torch, "_fused_adagrad_", lambda *a, **k: (calls.append(1), kernel(*a, **k))[1])
    tdtype = getattr(torch, dtype)
    cls = lossbridge.get("Adagrad", backend="torch", convention="torch")
    fused = _torch_run(torch, cls, tdtype, fused=True, **kwargs)
    assert len(calls) == 100
    spec = _torch_run(torch, cls, tdtype, fused=False, **kwargs)
    native = _torch_run(torch, torch.optim.Adagrad, tdtype, fused=True, **kwargs)
    rtol = 1e-10 if dtype == "float64" else 1e-5
    for a, b, c in zip(fused, spec, native, strict=True):
        _close(a, b, rtol=rtol, atol=rtol)
        _close(a, c, rtol=rtol, atol=rtol)


def test_torch_adagrad_fused_refuses_what_the_kernel_does_not_compute(torch: Any) -> None:
    """eps = 0: the spec's step is 0 where the sum is 0, the kernel's 0/0; fused=True is refused, never
    silently replaced."""
    cls = lossbridge.get("Adagrad", backend="torch", convention="torch")
    with pytest.raises(RuntimeError, match="fused"):
        cls(_torch_params(torch, torch.float64), eps=0.0, fused=True)


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    keras = pytest.importorskip("keras")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _circle_case(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = _rng()
    labels = rng.integers(0, 3, size=n)
    ref_labels = rng.integers(0, 3, size=m)
    emb, ref = _unit(rng.normal(size=(n, 4))), _unit(rng.normal(size=(m, 4)))
    ref[0], ref_labels[0] = emb[0], labels[0]  # a same-label pair at cosine distance 0 (the clamp's corner)
    return labels, emb, ref_labels, ref


@pytest.mark.parametrize("remove_diagonal", [True, False])
@pytest.mark.parametrize(("n", "m"), [(5, 6), (6, 4)])
def test_keras_circle_reference_set(keras: Any, n: int, m: int, remove_diagonal: bool) -> None:
    """``keras.losses.circle(y_true, y_pred, ref_labels=, ref_embeddings=)``: values (one per query) and the
    gradient with respect to y_pred (the reference embeddings a constant), Keras's rectangular eye(N, M)."""
    import tensorflow as tf

    labels, emb, ref_labels, ref = _circle_case(n, m)
    kwargs = {"remove_diagonal": remove_diagonal, "gamma": 16.0, "margin": 0.3}
    pred = tf.Variable(emb)
    with tf.GradientTape() as tape:
        out = keras.losses.circle(labels, pred, ref_labels=ref_labels, ref_embeddings=tf.constant(ref), **kwargs)
        total = tf.reduce_sum(out)
    expected, expected_grad = out.numpy(), tape.gradient(total, pred).numpy()
    loss = lossbridge.get("circle", convention="keras", reduction="none", dtype="float64", ref_labels=ref_labels,
                          ref_embeddings=ref, **kwargs)
    _close(loss(labels, emb), expected)
    summed = lossbridge.get("circle", convention="keras", reduction="sum", dtype="float64", ref_labels=ref_labels,
                            ref_embeddings=ref, **kwargs)
    value, grad = summed.value_and_grad(labels, emb)
    _close(value, expected.sum())
    _close(grad, expected_grad)


def test_keras_circle_reference_set_on_the_tensorflow_backend(keras: Any) -> None:
    """The same through lossbridge's Keras loss (TensorFlow backend), differentiated by TensorFlow."""
    import tensorflow as tf

    labels, emb, ref_labels, ref = _circle_case(5, 7)
    pred = tf.Variable(emb)
    with tf.GradientTape() as tape:
        expected = tf.reduce_sum(keras.losses.circle(labels, pred, ref_labels=ref_labels, ref_embeddings=ref))
    g_expected = tape.gradient(expected, pred)
    ours = lossbridge.get("circle", backend="tensorflow", convention="keras", reduction="sum", dtype="float64",
                          ref_labels=ref_labels, ref_embeddings=ref)
    with tf.GradientTape() as tape:
        got = ours(labels, pred)
    _close(got.numpy(), expected.numpy())
    _close(tape.gradient(got, pred).numpy(), g_expected.numpy())


def test_keras_circle_reference_set_config_round_trip(keras: Any) -> None:
    """get_config keeps the reference arrays (as lists); from_config rebuilds the same loss."""
    labels, emb, ref_labels, ref = _circle_case(4, 5)
    loss = lossbridge.get("circle", backend="tensorflow", convention="keras", dtype="float64",
                          ref_labels=ref_labels, ref_embeddings=ref)
    config = loss.get_config()
    assert config["ref_embeddings"] == ref.tolist() and config["ref_labels"] == ref_labels.tolist()
    again = type(loss).from_config(config)
    _close(again(labels, emb).numpy(), loss(labels, emb).numpy())


# -- optax ------------------------------------------------------------------------------------------
optax = pytest.fixture(scope="module", name="optax")(optax_module)


@pytest.mark.parametrize("axis", [0, 1, -2])
def test_optax_triplet_margin_loss_axis(optax: Any, axis: int) -> None:
    """``triplet_margin_loss(a, p, n, axis=...)``: the embeddings along any axis, values keep the others,
    gradients of all three inputs (NumPy, and the JAX backend with axis given per call)."""
    import jax
    import jax.numpy as jnp

    rng = _rng()
    a, p, n = rng.normal(size=(3, 3, 4, 5))
    kw = {"norm_degree": 2, "margin": 0.5}

    def native(*x: Any) -> Any:
        return jnp.sum(optax.losses.triplet_margin_loss(*x, axis=axis, **kw))

    expected = optax.losses.triplet_margin_loss(a, p, n, axis=axis, **kw)
    expected_grads = jax.grad(native, argnums=(0, 1, 2))(a, p, n)
    loss = lossbridge.get("triplet_margin_loss", convention="optax", axis=axis, **kw)
    _close(loss(a, p, n), expected)
    summed = lossbridge.get("triplet_margin_loss", convention="optax", axis=axis, reduction="sum", **kw)
    value, grads = summed.value_and_grad(a, p, n)
    _close(value, np.sum(expected))
    for g, e in zip(grads, expected_grads, strict=True):
        _close(g, e)
    on_jax = lossbridge.get("triplet_margin_loss", backend="jax", convention="optax", **kw)
    _close(on_jax(a, p, n, axis=axis), expected)
    got = jax.grad(lambda *x: jnp.sum(on_jax(*x, axis=axis)), argnums=(0, 1, 2))(a, p, n)
    for g, e in zip(got, expected_grads, strict=True):
        _close(g, e)


@pytest.mark.parametrize("lower", ["predictions", "targets"])
def test_optax_dice_loss_rank_expansion(optax: Any, lower: str) -> None:
    """``dice_loss((N, H, W), (N, H, W, 1))`` and the other way round: Optax gives the lower-rank one a
    trailing axis; values and the gradient in the caller's shape, on NumPy and the JAX backend."""
    import jax
    import jax.numpy as jnp

    rng = _rng()
    logits = rng.normal(size=(2, 5, 4, 1))
    masks = (rng.random(size=(2, 5, 4, 1)) > 0.5).astype(np.float64)
    if lower == "predictions":
        logits = logits[..., 0]
    else:
        masks = masks[..., 0]
    expected = optax.losses.dice_loss(logits, masks)
    expected_grad = jax.grad(lambda x: jnp.sum(optax.losses.dice_loss(x, masks)))(logits)
    loss = lossbridge.get("dice_loss", convention="optax")
    _close(loss(masks, logits), expected)
    grad = lossbridge.get("dice_loss", convention="optax", reduction="sum").grad(masks, logits)
    assert grad.shape == logits.shape
    _close(grad, expected_grad)
    on_jax = lossbridge.get("dice_loss", backend="jax", convention="optax")
    _close(on_jax(logits, masks), expected)
    _close(jax.grad(lambda x: jnp.sum(on_jax(x, masks)))(logits), expected_grad)


# the factoring threshold, momentum's dtype and factored stay Python values (static) on Optax's side, as
# on ours. decay_rate is injected (a float64 array): Optax then computes 1 - t^-c in float64, which
# lossbridge computes with decay_dtype=None (a Python decay_rate makes Optax take XLA's float32 pow,
# whose last bit differs from a correctly rounded one; test_optimizer_conventions covers that form).
_STATIC = ("min_dim_size_to_factor", "dtype_momentum", "factored")
OPTAX_ADAFACTOR = [
    Case("adafactor", {}),
    Case("adafactor", {"learning_rate": 0.05, "decay_rate": 0.6, "decay_offset": -3}),  # as if 3 steps were taken
    Case("adafactor", {"learning_rate": 0.05, "min_dim_size_to_factor": 2, "eps": 1e-20}, new_lr=0.01),
    Case("adafactor", {"learning_rate": 0.05, "min_dim_size_to_factor": 2, "factored": False}),
    Case("adafactor", {"learning_rate": 0.05, "multiply_by_parameter_scale": False, "clipping_threshold": None}),
    # dtype_momentum given: inject_hyperparams would read its default (jnp.float32, a callable) as a schedule
    Case("adafactor", {"learning_rate": 0.02, "momentum": 0.9, "weight_decay_rate": 0.1, "dtype_momentum": "float32"}),
    Case("adafactor", {"learning_rate": 0.02, "momentum": 0.8, "dtype_momentum": "float64",
                       "min_dim_size_to_factor": 2}),
    Case("adafactor", {"learning_rate": 0.02, "weight_decay_rate": None, "clipping_threshold": 0.5}),
]


def _jax_dtypes(native: dict[str, Any]) -> dict[str, Any]:
    import jax.numpy as jnp

    return {k: getattr(jnp, v) if k == "dtype_momentum" else v for k, v in native.items()}


@pytest.mark.parametrize("case", OPTAX_ADAFACTOR, ids=case_ids(OPTAX_ADAFACTOR))
def test_optax_adafactor_keywords(optax: Any, case: Case) -> None:
    """``optax.adafactor``'s own keywords: decay_rate (negated into beta2_decay), decay_offset, factored,
    multiply_by_parameter_scale, clipping_threshold=None, momentum (float32 accumulator by default),
    weight_decay_rate=None, eps, and learning_rate=None (its default: no learning-rate factor)."""
    native = Case(case.name, {"decay_rate": 0.8, **_jax_dtypes(case.native)}, case.new_lr)
    opt = lossbridge.get("adafactor", convention="optax", decay_dtype=None, **native.native)
    tx = optax_injected(optax, "adafactor", native.native, _STATIC)
    assert_same(_open_loop(lambda start: LossbridgeSteps(opt, start), native),
                _open_loop(lambda start: OptaxSteps(optax, tx, start), native))


def test_optax_adafactor_decay_rate_is_the_negated_exponent(optax: Any) -> None:
    hyper = lossbridge.get("adafactor", convention="optax", decay_rate=0.7).bound.hyper
    assert hyper["beta2_decay"] == -0.7
    assert hyper["lr"] == 1.0  # Optax's default learning_rate=None: no learning-rate factor
    assert lossbridge.get("adafactor", convention="optax", learning_rate=None).bound.hyper["lr"] == 1.0


OPTAX_ADADELTA = [
    Case("adadelta", {"learning_rate": None}),
    Case("adadelta", {"learning_rate": None, "rho": 0.95, "eps": 1e-4, "weight_decay": 0.1}),
    Case("adadelta", {"learning_rate": 0.5}),
]


@pytest.mark.parametrize("case", OPTAX_ADADELTA, ids=case_ids(OPTAX_ADADELTA))
def test_optax_adadelta_learning_rate_none(optax: Any, case: Case) -> None:
    """``optax.adadelta(learning_rate=None)``: no scaling and no sign flip (the update is +d)."""
    assert_same(lossbridge_trajectory(case, "optax"), optax_trajectory(optax, case))


def test_optax_adadelta_learning_rate_none_on_the_jax_backend(optax: Any) -> None:
    """The JAX backend's transformation, jitted, against optax.adadelta() itself (learning_rate None)."""
    import jax
    import jax.numpy as jnp

    start, grad = least_squares()

    class Steps:
        def __init__(self, tx: Any) -> None:
            self.params, self.state, self.update = [jnp.asarray(p) for p in start], None, jax.jit(tx.update)
            self.state = tx.init(self.params)

        def set_lr(self, lr: float) -> None:  # pragma: no cover - no lr change here
            raise AssertionError

        def step(self, grads: list[np.ndarray]) -> list[np.ndarray]:
            updates, self.state = self.update([jnp.asarray(g) for g in grads], self.state, self.params)
            self.params = optax.apply_updates(self.params, updates)
            return [np.asarray(p) for p in self.params]

    ours = lossbridge.get("adadelta", backend="jax", convention="optax", learning_rate=None)
    assert_same(trajectory(Steps(ours), start, grad), trajectory(Steps(optax.adadelta()), start, grad))
