"""The public entry points: ``get``, ``spec``, ``catalog`` and ``available_backends``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any

from lossbridge._versions import warn_unverified_version
from lossbridge.bound import BoundLoss, bind, translate_kwargs
from lossbridge.registry import Registry, default_registry
from lossbridge.spec._model import LossSpec, OptimizerSpec, ScheduleSpec

__all__ = ["CatalogEntry", "available_backends", "catalog", "get", "spec"]


def get(
    name: str,
    /,
    backend: str = "numpy",
    convention: str | None = None,
    *,
    registry: Registry | None = None,
    **params: Any,
) -> Any:
    """The loss, optimizer or schedule ``name`` as ``backend``'s native object.

    Parameters
    ----------
    name:
        A spec name or alias, or a framework's own name for it (``"BCEWithLogitsLoss"``,
        ``"KLDivergence"``, ``"softmax_cross_entropy_with_integer_labels"``), matched case- and
        separator-insensitively. Under a convention, that framework's names win and may preset
        parameters (``"BCEWithLogitsLoss"`` is BCE with ``from_logits=True``).
    backend:
        ``"numpy"`` (default), ``"torch"``, ``"tensorflow"``, ``"jax"`` or a plugin's backend.
    convention:
        ``None`` for lossbridge's own defaults, or ``"torch"``, ``"keras"``, ``"optax"``,
        ``"caffe"`` to reproduce that framework exactly.
    **params:
        Parameters, under the spec's names or the framework's own (``betas``, ``learning_rate``,
        ``epsilon``, ``weight``); they override the name's preset and the convention's values.

    Examples
    --------
    >>> import lossbridge
    >>> loss = lossbridge.get("mse")
    >>> float(loss([0.0, 1.0], [0.5, 1.0]))
    0.125
    """
    reg = registry or default_registry()
    found = reg.resolve(name, convention)
    target = reg.backend(backend)
    kind = found.spec.kind
    accepted = {"loss": target.loss_options, "optimizer": target.optimizer_options}.get(kind, ())
    options = {k: params.pop(k) for k in list(params) if k in accepted}
    given = target.translate_params(found.spec, translate_kwargs(found.spec, convention, params))
    bound = bind(found.spec, convention=convention, params={**found.preset, **given})
    if isinstance(bound, BoundLoss) and found.alternatives:
        bound = replace(bound, alternatives=_alternatives(found.alternatives, convention, params))
    warn_unverified_version(bound.convention)
    override = reg.override(found.spec.name, target.name, kind)
    if override is not None and _takes(override, options):
        native = override(bound, **options)
        if native is not None:
            return native
    if kind == "loss":
        return target.materialize_loss(bound, **options)
    if kind == "schedule":
        return target.materialize_schedule(bound)
    return target.materialize_optimizer(bound, **options)


def _takes(factory: Any, options: dict[str, Any]) -> bool:
    """Whether an override ``factory`` accepts the backend ``options`` given (keywords); one that does not
    leaves the call to the generic adapter, which honours them (an option is never dropped)."""
    if not options:
        return True
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return True
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = {p.name for p in params if p.kind in named}
    return set(options) <= names


def _alternatives(
    alternatives: tuple[tuple[Any, Any], ...], convention: str | None, params: dict[str, Any]
) -> tuple[BoundLoss, ...]:
    """The other specs a shared framework name means, bound with the parameters they take."""
    out = []
    for spec_, preset in alternatives:
        given = translate_kwargs(spec_, convention, params)
        known = {p.name for p in spec_.all_params()}
        bound = bind(spec_, convention=convention, params={**preset, **{k: v for k, v in given.items() if k in known}})
        assert isinstance(bound, BoundLoss)
        out.append(bound)
    return tuple(out)


def spec(
    name: str, /, *, convention: str | None = None, registry: Registry | None = None
) -> LossSpec | OptimizerSpec | ScheduleSpec:
    """The spec declaration ``name`` resolves to (under ``convention``): formula, parameters, conventions."""
    return (registry or default_registry()).resolve(name, convention).spec


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
