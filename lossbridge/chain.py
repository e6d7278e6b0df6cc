"""Composing gradient transforms with an optimizer: :func:`chain`, on every backend.

A gradient transform (clipping, centralization, an EMA of updates: the specs with
``role="transform"``, see :class:`~lossbridge.spec.OptimizerSpec`) maps gradients to gradients.
``lossbridge.chain(*transforms, optimizer, accumulate=1)`` runs the transforms in order on the
gradients, then the optimizer, as one object native to the backend of its parts:

* JAX: ``optax.chain(*parts)`` (Optax's own transformations and lossbridge's mix freely), wrapped
  in ``optax.MultiSteps(..., every_k_schedule=accumulate)`` when ``accumulate > 1``;
* torch: a ``lossbridge_torch._transforms.TransformChain`` (``step()``, ``zero_grad()``, ``state_dict()``,
  ``param_groups`` of the optimizer). The optimizer is an instance (torch's or lossbridge's); a
  transform is a lossbridge transform class (``lossbridge.get("clip_by_global_norm",
  backend="torch")``, built over the optimizer's parameters) or instance. ``accumulate=k``: each
  ``step()`` adds the current ``.grad`` to a running mean, and every k-th runs the transforms and the
  optimizer on the mean (Optax's ``MultiSteps``, Keras's ``gradient_accumulation_steps``);
* NumPy: a :class:`NumpyChain` with the functional ``init(params)`` / ``update(grads, state, params)``
  and the in-place ``step(params, grads)`` of :class:`~lossbridge.backends.numpy.NumpyOptimizer`.

On TensorFlow/Keras the native form is Keras's base-optimizer options on any lossbridge Keras
optimizer (``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``, ``ema_momentum``,
``ema_overwrite_frequency``, ``gradient_accumulation_steps``, ``loss_scale_factor``), which
``lossbridge.get(..., backend="tensorflow")`` passes to Keras's own base class.

A backend's objects take part through the ``__lossbridge_chain__(parts, accumulate)`` hook: the
first part (or part's class) that has it builds the chain.

Per-parameter labels are the backend's, over one spec: torch param groups (Caffe's ``lr_mult`` and
``decay_mult`` are a group's ``lr=base_lr * lr_mult`` and ``weight_decay=weight_decay * decay_mult``;
torch's LR schedulers scale each group's lr), Optax masks (``weight_decay_mask=``, ``optax.masked``),
Keras's ``optimizer.exclude_from_weight_decay(var_names=[...])`` on lossbridge's Keras optimizers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from lossbridge.backends.numpy import NumpyOptimizer, NumpyOptimizerState, _flatten, _float, xp
from lossbridge.errors import InputError, ParameterError

__all__ = ["NumpyChain", "NumpyChainState", "NumpyTransform", "chain"]


def chain(*parts: Any, accumulate: int = 1) -> Any:
    """The transforms and the optimizer in ``parts`` as one object native to their backend.

    >>> import numpy as np, lossbridge
    >>> opt = lossbridge.chain(lossbridge.get("clip", max_delta=0.5), lossbridge.get("sgd", lr=1.0))
    >>> params = [np.array([1.0, 1.0])]
    >>> opt.step(params, [np.array([2.0, -0.25])])
    >>> params[0]
    array([0.5 , 1.25])
    """
    if not parts:
        raise ParameterError("chain: expected at least one transform or optimizer")
    if not isinstance(accumulate, int) or isinstance(accumulate, bool) or accumulate < 1:
        raise ParameterError(f"chain: accumulate expects an int >= 1, got {accumulate!r}")
    for part in parts:
        hook = getattr(part, "__lossbridge_chain__", None)
        if hook is not None:
            return hook(tuple(parts), accumulate)
    kinds = ", ".join(type(p).__name__ for p in parts)
    raise ParameterError(
        f"chain: none of the parts ({kinds}) is a lossbridge transform or optimizer of a backend that chains "
        "(numpy, torch, jax); on JAX use optax.chain, on Keras the optimizer options (clipnorm=...)"
    )


class NumpyTransform(NumpyOptimizer):
    """A gradient transform over NumPy arrays (``role="transform"``).

    ``update(grads, state, params=None)`` returns the transformed gradients (``params`` only for a
    transform that reads them, e.g. ``adaptive_grad_clip``); ``step(params, grads)`` rewrites
    ``grads`` in place, as the torch transform rewrites ``.grad``.
    """

    def init(self, params: Any) -> NumpyOptimizerState:
        """Fresh state for a tree of parameter (or gradient) arrays."""
        return super().init(params)

    def update(  # type: ignore[override]  # a transform takes no value/hvp (it has no needs)
        self, grads: Any, state: NumpyOptimizerState, params: Any = None
    ) -> tuple[Any, NumpyOptimizerState]:
        """The transformed gradients (the structure of ``grads``) and the new state."""
        g_leaves, rebuild = _flatten(grads)
        gs = [_float(g, "grads") for g in g_leaves]
        if params is None:
            ps: list[Any] = [None] * len(gs)
        else:
            ps = [_float(p, "params") for p in _flatten(params)[0]]
            if len(ps) != len(gs):
                raise InputError(f"grads: expected {len(ps)} arrays like params, got {len(gs)}")
        if len(state.slots) != len(gs):
            raise InputError(f"grads: expected {len(state.slots)} arrays (the state was made for that many), "
                             f"got {len(gs)}")
        count = state.count + 1
        scheduled = {
            k: v(state.count) for k, v in self.bound.hyper.items() if callable(v) and not self.spec.param(k).static
        }
        steps = [np.asarray(count, dtype=np.finfo(g.dtype).dtype) for g in gs]
        if self.spec.global_slots:
            if state.glob is None:
                raise InputError(f"state: {self.spec.name} needs its global state; make the state with init")
            outs, slots, glob = self.bound.update_all(ps, gs, state.slots, state.glob, steps=steps, xp=xp, **scheduled)
            glob = {k: np.asarray(v, dtype=np.asarray(state.glob[k]).dtype) for k, v in glob.items()}
        else:
            pairs = [self.bound.update(p, g, s, step=t, xp=xp, **scheduled)
                     for p, g, s, t in zip(ps, gs, state.slots, steps, strict=True)]
            outs, slots, glob = [o for o, _ in pairs], [s for _, s in pairs], None
        outs = [np.asarray(o, dtype=g.dtype) for o, g in zip(outs, gs, strict=True)]
        return rebuild(outs), NumpyOptimizerState(count, slots, glob)

    def step(self, params: Any, grads: Any) -> None:  # type: ignore[override]
        """Rewrite ``grads`` (arrays, in place) with the transformed gradients."""
        if self._state is None:
            self._state = self.init(params)
        out, self._state = self.update(grads, self._state, params)
        for g, o in zip(_flatten(grads)[0], _flatten(out)[0], strict=True):
            g[...] = o

    def __lossbridge_chain__(self, parts: Sequence[Any], accumulate: int) -> NumpyChain:
        return _numpy_chain(parts, accumulate)

    def __repr__(self) -> str:
        conv = self.bound.convention.framework if self.bound.convention else None
        return f"<lossbridge numpy transform {self.spec.name!r} convention={conv!r} {dict(self.bound.hyper)}>"


class NumpyChainState(NamedTuple):
    """The chain's state: each part's state, the accumulated mean gradient and the micro-step."""

    inner: tuple[NumpyOptimizerState, ...]
    acc: list[np.ndarray] | None = None
    mini_step: int = 0


class NumpyChain:
    """Transforms then (optionally) an optimizer over NumPy arrays; see :func:`chain`.

    A chain of transforms only is itself a transform (its updates are transformed gradients).
    """

    def __init__(self, parts: Sequence[Any], *, accumulate: int = 1) -> None:
        for k, part in enumerate(parts):
            if not isinstance(part, NumpyOptimizer):
                raise ParameterError(f"chain: part {k} ({type(part).__name__}) is not a lossbridge NumPy "
                                     "transform or optimizer")
            if k < len(parts) - 1 and not isinstance(part, NumpyTransform):
                raise ParameterError(f"chain: part {k} ({part.spec.name}) is an optimizer; only the last part may be")
        self.parts = tuple(parts)
        self.accumulate = accumulate
        self._state: NumpyChainState | None = None

    def init(self, params: Any) -> NumpyChainState:
        """Each part's fresh state (and a zero accumulator when ``accumulate > 1``)."""
        acc = None
        if self.accumulate > 1:
            acc = [np.zeros_like(_float(p, "params")) for p in _flatten(params)[0]]
        return NumpyChainState(tuple(p.init(params) for p in self.parts), acc, 0)

    def update(self, grads: Any, state: NumpyChainState, params: Any = None) -> tuple[Any, NumpyChainState]:
        """The updates (zeros on the accumulating calls) and the new state."""
        g_leaves, rebuild = _flatten(grads)
        if self.accumulate > 1:
            assert state.acc is not None
            n = state.mini_step
            acc = [a + (_float(g, "grads") - a) / (n + 1) for g, a in zip(g_leaves, state.acc, strict=True)]
            if n + 1 < self.accumulate:
                zeros = [np.zeros_like(a) for a in acc]
                return rebuild(zeros), NumpyChainState(state.inner, acc, n + 1)
            grads = rebuild(acc)
        updates, inner = grads, []
        for part, st in zip(self.parts, state.inner, strict=True):
            updates, new = part.update(updates, st, params)
            inner.append(new)
        acc_out = None if state.acc is None else [np.zeros_like(a) for a in state.acc]
        return updates, NumpyChainState(tuple(inner), acc_out, 0)

    def step(self, params: Any, grads: Any) -> None:
        """Update ``params`` in place (an optimizer ends the chain) or rewrite ``grads`` (transforms only)."""
        if self._state is None:
            self._state = self.init(params)
        updates, self._state = self.update(grads, self._state, params)
        if isinstance(self.parts[-1], NumpyTransform):
            for g, u in zip(_flatten(grads)[0], _flatten(updates)[0], strict=True):
                g[...] = u
            return
        for p, u in zip(_flatten(params)[0], _flatten(updates)[0], strict=True):
            p += u

    def __lossbridge_chain__(self, parts: Sequence[Any], accumulate: int) -> NumpyChain:
        return _numpy_chain(parts, accumulate)

    def __repr__(self) -> str:
        names = ", ".join(p.spec.name for p in self.parts)
        return f"<lossbridge numpy chain ({names}) accumulate={self.accumulate}>"


def _numpy_chain(parts: Sequence[Any], accumulate: int) -> NumpyChain:
    """A :class:`NumpyChain` of ``parts``, inner chains (without accumulation) spliced in."""
    flat: list[Any] = []
    for part in parts:
        if isinstance(part, NumpyChain):
            if part.accumulate > 1:
                raise ParameterError("chain: an inner chain with accumulate > 1 cannot be chained again")
            flat.extend(part.parts)
        else:
            flat.append(part)
    return NumpyChain(flat, accumulate=accumulate)
