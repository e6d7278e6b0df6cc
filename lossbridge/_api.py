"""The public entry points: ``get``, ``spec``, ``catalog`` and ``available_backends``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lossbridge._bound import bind
from lossbridge.registry import Registry, default_registry
from lossbridge.spec._model import LossSpec, OptimizerSpec

__all__ = ["CatalogEntry", "available_backends", "catalog", "get", "spec"]


def get(
    name: str,
    backend: str = "numpy",
    convention: str | None = None,
    *,
    registry: Registry | None = None,
    **params: Any,
) -> Any:
    """The loss or optimizer ``name`` as ``backend``'s native object.

    Parameters
    ----------
    name:
        A spec name or alias, matched case- and separator-insensitively (``"BCE"``,
        ``"binary-crossentropy"``).
    backend:
        ``"numpy"`` (default), ``"torch"``, ``"tensorflow"``, ``"jax"`` or a plugin's backend.
    convention:
        ``None`` for lossbridge's own defaults, or ``"torch"``, ``"keras"``, ``"optax"``,
        ``"caffe"`` to reproduce that framework exactly.
    **params:
        Hyperparameters; they override the convention's values. For optimizers on torch, they
        become the defaults of the returned ``torch.optim.Optimizer`` class.

    Examples
    --------
    >>> import lossbridge
    >>> loss = lossbridge.get("mse")
    >>> float(loss([0.0, 1.0], [0.5, 1.0]))
    0.125
    """
    reg = registry or default_registry()
    found = reg.spec(name)
    target = reg.backend(backend)
    bound = bind(found, convention=convention, params=target.translate_params(found, params))
    kind = found.kind
    override = reg.override(found.name, target.name, kind)
    if override is not None:
        native = override(bound)
        if native is not None:
            return native
    if kind == "loss":
        return target.materialize_loss(bound)
    return target.materialize_optimizer(bound)


def spec(name: str, *, registry: Registry | None = None) -> LossSpec | OptimizerSpec:
    """The spec declaration of ``name``: formula, parameters, references and conventions."""
    return (registry or default_registry()).spec(name)


@dataclass(frozen=True)
class CatalogEntry:
    """One row of :func:`catalog`."""

    name: str
    kind: str
    aliases: tuple[str, ...]
    tasks: tuple[str, ...]
    summary: str
    conventions: tuple[str, ...]
    distribution: str


def catalog(
    kind: str | None = None, task: str | None = None, *, registry: Registry | None = None
) -> list[CatalogEntry]:
    """Every registered spec, optionally only one ``kind`` (``"loss"``, ``"optimizer"``) or ``task``."""
    reg = registry or default_registry()
    rows = []
    for found, dist in reg.specs():
        tasks = tuple(sorted(getattr(found, "tasks", ())))
        if kind is not None and found.kind != kind:
            continue
        if task is not None and task not in tasks:
            continue
        rows.append(
            CatalogEntry(
                found.name,
                found.kind,
                found.aliases,
                tasks,
                found.summary,
                tuple(sorted(found.conventions)),
                dist,
            )
        )
    return sorted(rows, key=lambda r: (r.kind, r.name))


def available_backends(*, registry: Registry | None = None) -> list[str]:
    """Names of the registered backends whose framework is installed."""
    reg = registry or default_registry()
    return sorted(name for name, b in reg.backends().items() if b.available())
