"""The problems the portable-state tests share (one copy, used by ``test_portable_across.py`` and
``test_portable_closure_needs.py``).

* The per-tensor problem: least squares over a ``(2, 3)`` matrix and a ``(3,)`` vector parameter plus a
  non-convex term, ``0.5 |A (w_0 + w_1 + b) - B|^2 - 0.1 sum cos w + 0.1 sum sin b`` (:func:`value`,
  :func:`grad`, :func:`value_grad`; :func:`hvp` an estimate of its Hessian for sophia; :func:`jax_loss` and
  :func:`torch_loss` the same objective in JAX and torch for what needs its graph).
* The L-BFGS problem of ``tests/conventions/test_lbfgs_oracles.py``: ``least_squares_problem(11)`` and its
  value and gradient from ``tests/conventions/_optimizer_oracle.py`` (:data:`LBFGS_START`, :func:`objective`).
* :func:`numpy_value_fn`: a JAX objective whose numbers are NumPy's (``jax.pure_callback``), so every
  backend of a test evaluates the same objective numbers and what is compared is the optimizer;
  :func:`optax_loop_step`, Optax's documented L-BFGS loop step over it, jitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..conventions._optimizer_oracle import least_squares_problem, quadratic_plus_cos_value
from ..conventions._optimizer_oracle import optax_loop_step as optax_loop_step  # shared: re-exported

A = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 0.3], [3.0, 0.1, -0.7], [0.2, 0.2, 0.2]])
B = np.array([0.3, -0.2, 1.0, 0.5])
START = [np.array([[0.5, -0.5, 0.1], [0.2, 0.0, -0.3]]), np.array([0.05, -0.1, 0.2])]


def _residual(params: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    w, b = params
    r = A @ (w.sum(axis=0) + b) - B
    return r, A.T @ r


def grad(params: list[np.ndarray]) -> list[np.ndarray]:
    """The gradient of :func:`value`."""
    w, b = params
    _, g = _residual(params)
    return [np.broadcast_to(g, w.shape) + 0.1 * np.sin(w), g + 0.1 * np.cos(b)]


def value(params: list[np.ndarray]) -> float:
    """The objective whose gradient is :func:`grad`."""
    w, b = params
    r, _ = _residual(params)
    return 0.5 * float(r @ r) - 0.1 * float(np.sum(np.cos(w))) + 0.1 * float(np.sum(np.sin(b)))


def value_grad(params: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """:func:`value` and :func:`grad` (a NumPy closure)."""
    return value(params), grad(params)


def value_grad_quadratic(params: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """The least-squares part only (convex, minimum above 0): Polyak steps with f_min = 0 stay stable,
    where the non-convex terms make them chaotic (backends' last-bit differences then grow to 1e-9)."""
    w, _ = params
    r, g = _residual(params)
    return 0.5 * float(r @ r), [np.broadcast_to(g, w.shape).copy(), g]


def hvp(v: list[np.ndarray]) -> list[np.ndarray]:
    """An estimate of the Hessian of :func:`value` times ``v`` (the least-squares part: the sine terms'
    curvature is left out, an estimate like any other)."""
    hz = A.T @ A @ (v[0].sum(axis=0) + v[1])
    return [np.broadcast_to(hz, v[0].shape).copy(), hz]


def jax_loss(params: list[Any]) -> Any:
    """:func:`value` in JAX (sophia's Hessian-vector products need its graph)."""
    import jax.numpy as jnp

    w, b = params
    r = jnp.asarray(A) @ (w.sum(axis=0) + b) - jnp.asarray(B)
    return 0.5 * r @ r - 0.1 * jnp.cos(w).sum() + 0.1 * jnp.sin(b).sum()


def torch_loss(params: list[Any]) -> Any:
    """:func:`value` in torch (with its graph)."""
    import torch

    w, b = params
    r = torch.tensor(A) @ (w.sum(dim=0) + b) - torch.tensor(B)
    return 0.5 * r @ r - 0.1 * torch.cos(w).sum() + 0.1 * torch.sin(b).sum()


# -- the L-BFGS problem of tests/conventions/test_lbfgs_oracles.py -----------------------------------
#: start, matrices and targets of 0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p), per parameter
LBFGS_START, MATS, TARGETS = least_squares_problem(11)
objective = quadratic_plus_cos_value(MATS, TARGETS)


def numpy_value_fn(value_and_grad: Callable[[list[np.ndarray]], tuple[float, list[np.ndarray]]]) -> Any:
    """A JAX objective over a list of float64 arrays whose value and gradient are ``value_and_grad``'s
    NumPy numbers (``jax.pure_callback``, the gradient through a ``custom_jvp``): usable inside JAX's
    L-BFGS loops under ``jax.jit``."""
    import jax
    import jax.numpy as jnp

    @jax.custom_jvp
    def value_fn(params: Any) -> Any:
        return jax.pure_callback(lambda *ps: np.float64(value_and_grad([np.asarray(p) for p in ps])[0]),
                                 jax.ShapeDtypeStruct((), jnp.float64), *params)

    @value_fn.defjvp
    def _jvp(primals: Any, tangents: Any) -> Any:
        (params,), (dirs,) = primals, tangents
        shapes = [jax.ShapeDtypeStruct(p.shape, p.dtype) for p in params]
        grads = jax.pure_callback(lambda *ps: value_and_grad([np.asarray(p) for p in ps])[1], shapes, *params)
        return value_fn(params), sum(jnp.sum(g * d) for g, d in zip(grads, dirs, strict=True))

    return value_fn


class NumpyHolder:
    """What every NumPy-backend side of the portable tests shares: ``self.opt`` (a lossbridge NumPy optimizer)
    over the list ``self.p``, its parameters as float64 copies, and saving and loading its state."""

    opt: Any
    p: list[np.ndarray]

    @property
    def params(self) -> list[np.ndarray]:
        return [x.copy() for x in self.p]

    def save(self, path: Any) -> Any:
        import lossbridge

        return lossbridge.save_state(path, self.opt, params=self.p)

    def load(self, path: Any, **kw: Any) -> Any:
        import lossbridge

        return lossbridge.load_state(path, self.opt, params=self.p, **kw)
