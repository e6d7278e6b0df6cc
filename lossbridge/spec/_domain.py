"""Input domains: what valid inputs of a loss look like.

A domain does two jobs from one declaration: it generates cases for the conformance kit (for any
spec, a third party's included) and it checks the values a user passes in. Shapes are described
relative to the prediction's shape: ``"same"``, ``"batch"`` (the prediction's shape without its
last, class axis), or ``"broadcast"`` (the prediction's shape, that shape with a last axis of size 1,
or without its last axis: what broadcasts against the prediction, as torch's GaussianNLLLoss ``var``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from lossbridge.errors import InputError

__all__ = ["DOMAINS", "Domain", "domain", "register_domain"]

# a string alias: evaluating np.random here would import numpy.random (~10 ms) with `import lossbridge`
Sampler: TypeAlias = "Callable[[np.random.Generator, tuple[int, ...], Any, bool], np.ndarray]"
Checker = Callable[[Any, Any, str, tuple[int, ...]], None]


@dataclass(frozen=True)
class Domain:
    """A kind of input: how to sample it and how to check it.

    ``sample(rng, prediction_shape, dtype, edge)`` returns a NumPy array; with ``edge=True`` it
    includes the domain's extreme values (probabilities of exactly 0 and 1, logits of +-50).
    ``check(xp, array, argname, prediction_shape)`` raises :class:`InputError` on invalid values.
    """

    name: str
    doc: str
    sample: Sampler
    check: Checker | None = None
    shape: Literal["same", "batch", "broadcast"] = "same"
    integer: bool = False


def _all(xp: Any, condition: Any) -> bool:
    return bool(xp.all(condition))


def _check_between(low: float, high: float, what: str) -> Checker:
    def check(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
        if not _all(xp, (x >= low) & (x <= high)):
            found = f"values in [{float(xp.min(x)):g}, {float(xp.max(x)):g}]"
            raise InputError(f"{name}: expected {what} in [{low:g}, {high:g}], got {found}")

    return check


def _check_in_set(allowed: tuple[float, ...], what: str) -> Checker:
    def check(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
        ok = xp.zeros(x.shape, dtype=xp.bool)
        for value in allowed:
            ok = ok | (x == value)
        if not _all(xp, ok):
            bad = float(xp.max(xp.where(ok, xp.zeros_like(x), x))) or float(xp.min(xp.where(ok, xp.zeros_like(x), x)))
            raise InputError(f"{name}: expected {what} (values in {set(allowed)}), got a value {bad:g}")

    return check


def _check_class_index(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    n_classes = pred_shape[-1]
    if not _all(xp, (x >= 0) & (x < n_classes)):
        raise InputError(
            f"{name}: expected class indices in [0, {n_classes - 1}] for {n_classes} classes, "
            f"got values in [{int(xp.min(x))}, {int(xp.max(x))}]"
        )


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    x = rng.uniform(0.02, 0.98, size=shape)
    if edge and x.size >= 2:
        x.flat[0], x.flat[-1] = 0.0, 1.0
    return x.astype(dtype)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    return rng.normal(size=shape).astype(dtype)


def _logit(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    x = 2.0 * rng.normal(size=shape)
    if edge and x.size >= 2:
        x.flat[0], x.flat[-1] = 50.0, -50.0
    return x.astype(dtype)


def _positive(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    return np.exp(rng.normal(size=shape)).astype(dtype)


def _binary(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    return rng.integers(0, 2, size=shape).astype(dtype)


def _sign(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    return (2 * rng.integers(0, 2, size=shape) - 1).astype(dtype)


def _class_index(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    return rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int64)


def _one_hot(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    index = rng.integers(0, shape[-1], size=shape[:-1])
    return np.eye(shape[-1])[index].astype(dtype)


def _simplex(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    z = rng.normal(size=shape)
    if edge and shape[-1] >= 2:
        z[..., 0] = -80.0  # underflows to an exact zero probability
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)).astype(dtype)


DOMAINS: dict[str, Domain] = {}


def register_domain(d: Domain) -> Domain:
    """Add a domain (plugins may add their own before registering specs that use it)."""
    DOMAINS[d.name] = d
    return d


for _d in (
    Domain("real", "any finite real number", _normal),
    Domain("positive", "strictly positive reals", _positive, _check_between(0.0, np.inf, "positive values")),
    Domain("probability", "probabilities in [0, 1]", _uniform, _check_between(0.0, 1.0, "probabilities")),
    Domain("logit", "unnormalized log-odds / scores, any real", _logit),
    Domain("binary", "labels in {0, 1}", _binary, _check_in_set((0.0, 1.0), "binary labels")),
    Domain("sign", "labels in {-1, 1}", _sign, _check_in_set((-1.0, 1.0), "labels in {-1, 1}")),
    Domain(
        "binary_or_sign",
        "labels in {-1, 1} or {0, 1}",
        _sign,
        _check_in_set((-1.0, 0.0, 1.0), "labels in {-1, 1} or {0, 1}"),
    ),
    Domain("soft_binary", "soft labels in [0, 1]", _uniform, _check_between(0.0, 1.0, "soft labels")),
    Domain(
        "class_index",
        "integer class indices in [0, C), shape of the prediction without its class axis",
        _class_index,
        _check_class_index,
        shape="batch",
        integer=True,
    ),
    Domain("one_hot", "one-hot rows over the last axis", _one_hot, _check_between(0.0, 1.0, "one-hot labels")),
    Domain(
        "simplex", "probability rows over the last axis (sum to 1)", _simplex, _check_between(0.0, 1.0, "probabilities")
    ),
):
    register_domain(_d)


def domain(name: str) -> Domain:
    """The registered domain called ``name``."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise KeyError(f"unknown input domain {name!r}; known: {', '.join(sorted(DOMAINS))}") from None
