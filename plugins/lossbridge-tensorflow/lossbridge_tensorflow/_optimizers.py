"""Optimizers as :class:`keras.optimizers.Optimizer` subclasses running the spec's ``update``.

``build`` creates the spec's state slots (``init``) as optimizer variables; ``update_step`` runs
``update`` through the Array API namespace for ``tf.Tensor`` and assigns the increment and the
new slots. Everything else is Keras's own machinery, so ``model.fit``, ``tf.function``,
``jit_compile=True``, learning-rate schedules, ``clipnorm``/``clipvalue``/``global_clipnorm``,
``use_ema``, gradient accumulation and loss scaling work as for Keras's own optimizers.

Weight decay belongs to the spec (its ``weight_decay`` parameter, decoupled or L2 as the
convention says), never to Keras's base ``weight_decay`` option, so it cannot be applied twice.
Importing this module imports TensorFlow and Keras; the backend imports it lazily.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

import lossbridge
from lossbridge.bound import BoundOptimizer, bind
from lossbridge.errors import InputError, ParameterError
from lossbridge_tensorflow import array_api as xp
from lossbridge_tensorflow._backend import KERAS_BASE_OPTIONS

__all__ = ["KERAS_BASE_OPTIONS", "KerasOptimizer"]



def _apply_delta(optimizer: Any, variable: Any, delta: Any) -> None:
    """``variable += delta``; a graph ``delta`` computed as ``0 - step`` (a spec's ``decay - lr * d`` without
    weight decay) is applied as ``variable -= step``: the same values (``v + (0 - s)`` is ``v - s`` in IEEE
    arithmetic), one pass over the tensor fewer in graph mode (the ``Sub`` is pruned), as Keras's own
    ``assign_sub``. Eager tensors and every other delta are added as they are."""
    op = getattr(delta, "op", None) if not tf.executing_eagerly() else None
    if op is not None and op.type == "Sub" and len(op.inputs) == 2:
        zero, step = op.inputs
        value = tf.get_static_value(zero) if zero.op.type == "Const" else None
        if value is not None and getattr(value, "size", 1) == 1 and float(value) == 0.0 and step.shape == delta.shape:
            optimizer.assign_sub(variable, step)
            return
    optimizer.assign_add(variable, delta)


def _read(v: Any) -> Any:
    """A tensor holding the current value of a keras/tf variable (or the tensor itself)."""
    if isinstance(v, keras.Variable):
        v = v.value
    return tf.convert_to_tensor(v)


#: Keras's per-variable labels by name (``Convention.masks`` options of a keras convention): a list of
#: regexes searched in ``variable.path`` (Muon's ``exclude_layers``), or a flag for a fixed keyword in
#: the lower-cased path (Muon's ``exclude_embeddings``), with Keras's default when not given.
_KERAS_FLAG_LABELS = {"exclude_embeddings": ("embedding", True)}


def _pop_labels(convention: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The label options the convention declares (``Convention.masks``), removed from ``kwargs``."""
    masks = getattr(convention, "masks", None) or {}
    labels = {k: kwargs.pop(k) for k in list(kwargs) if k in masks}
    for key, (_, default) in _KERAS_FLAG_LABELS.items():
        if key in masks:
            labels.setdefault(key, default)
    for key, value in labels.items():
        if key in _KERAS_FLAG_LABELS:
            labels[key] = bool(value)
        elif value is None or isinstance(value, str):
            labels[key] = [] if value is None else [value]
        else:
            labels[key] = [str(v) for v in value]
    return labels


def _split_kwargs(spec_params: set[str], kwargs: Mapping[str, Any], owner: str) -> tuple[dict, dict]:
    hyper, base = {}, {}
    for key, value in kwargs.items():
        if key in spec_params:
            hyper[key] = value
        elif key in KERAS_BASE_OPTIONS:
            base[key] = value
        else:
            valid = ", ".join(sorted(spec_params | set(KERAS_BASE_OPTIONS) | {"learning_rate"}))
            raise ParameterError(f"{owner}: unknown parameter {key!r}; valid: {valid}")
    return hyper, base


@keras.saving.register_keras_serializable(package="lossbridge")
class KerasOptimizer(keras.optimizers.Optimizer):
    """A lossbridge optimizer spec as a Keras optimizer.

    Parameters
    ----------
    spec:
        A spec name (``"adam"``) or an already bound spec.
    convention:
        ``None`` (lossbridge's defaults) or a framework, e.g. ``"keras"``.
    learning_rate:
        A float or a ``keras.optimizers.schedules.LearningRateSchedule``; ``lr`` is accepted as
        its alias. Unset takes the spec's/convention's ``lr``. An ``lr`` of ``None`` (Optax's
        adadelta default: no lr scaling, no sign flip) is run as such: Keras's ``learning_rate``
        then holds 1.0, which the updates ignore.
    **kwargs:
        The spec's hyperparameters (``beta1=0.8``) and Keras's base options (``clipnorm``,
        ``clipvalue``, ``global_clipnorm``, ``use_ema``, ``ema_momentum``, ...).
    """

    def __init__(
        self,
        spec: str | BoundOptimizer,
        convention: str | None = None,
        *,
        learning_rate: Any = None,
        hyper: Mapping[str, Any] | None = None,
        check_finite: bool = False,
        **kwargs: Any,
    ) -> None:
        if isinstance(spec, BoundOptimizer):
            bound = spec
            labels = _pop_labels(bound.convention, kwargs)
            given, base = _split_kwargs(set(bound.hyper), {**(hyper or {}), **kwargs}, bound.spec.name)
            bound = bound.with_hyper(**given) if given else bound
        else:
            found = lossbridge.spec(spec)
            labels = _pop_labels(found.conventions.get(convention) if convention else None, kwargs)
            names = {p.name for p in found.params}
            given, base = _split_kwargs(names, {**(hyper or {}), **kwargs}, found.name)
            bound = bind(found, convention=convention, params=given)
            if not isinstance(bound, BoundOptimizer):
                raise ParameterError(f"{found.name} is a loss, not an optimizer; use KerasLoss")
        if bound.spec.role == "transform":
            raise lossbridge.BackendError(
                f"{bound.spec.name} is a gradient transform; on Keras give it as the optimizer's own option "
                "(clipnorm=, clipvalue=, global_clipnorm=, use_ema=, gradient_accumulation_steps=), e.g. "
                "lossbridge.get('adam', backend='tensorflow', global_clipnorm=1.0)"
            )
        if getattr(bound.spec, "needs", ()):
            raise lossbridge.BackendError(
                f"{bound.spec.name}: its step needs {', '.join(bound.spec.needs)} besides the gradient "
                "(OptimizerSpec.needs), which a Keras optimizer's apply_gradients does not receive; the "
                "tensorflow backend does not support it yet: use backend='jax' (Optax's update(..., value=, "
                "obj_fn=)), 'torch' (step(closure)) or 'numpy'"
            )
        if learning_rate is None:
            learning_rate = bound.hyper["lr"]
        # lr=None (Optax's adadelta default: no lr scaling and no sign flip): Keras needs a learning
        # rate, so the optimizer holds 1.0 and every update gives the spec lr=None instead
        lr_free = learning_rate is None
        if lr_free:
            learning_rate = 1.0
        base.setdefault("name", bound.spec.name)
        super().__init__(learning_rate=learning_rate, **base)
        self.lr_free = lr_free
        self.bound = bound
        self.spec = bound.spec
        self.check_finite = bool(check_finite)
        self.labels = labels
        self._exact_learning_rate(learning_rate)

    def _exact_learning_rate(self, learning_rate: Any) -> None:
        """Keep a constant learning rate exact (float64) unless the convention rounds ``lr``.

        Keras stores it as a ``floatx`` (float32) variable; only a convention whose
        ``hyper_dtype`` covers ``lr`` (Keras's own) wants that, and then Keras's own variable is
        kept. A float64 variable is cast to each parameter's dtype in ``update_step``, so float32
        models are unaffected.
        """
        conv = self.bound.convention
        rounded = getattr(conv, "rounded", None)
        if conv is not None and conv.hyper_dtype and (rounded is None or "lr" in rounded):
            return
        old = self._learning_rate
        if not isinstance(old, keras.Variable) or old.dtype == "float64":
            return
        self._untrack_variable(old)
        with keras.name_scope(self.name, caller=self):
            self._learning_rate = keras.Variable(
                float(learning_rate),
                name="learning_rate",
                dtype="float64",
                trainable=False,
                aggregation="only_first_replica",
            )

    # -- Keras's optimizer interface ---------------------------------------------------------------
    def build(self, var_list: list[Any]) -> None:
        """Create the spec's state slots for every variable, initialized by the spec's ``init``."""
        if self.built:
            return
        super().build(var_list)
        self._lb_slots: list[dict[str, Any]] = []
        for var in var_list:
            over = self._variable_overrides(var)
            with tf.init_scope():
                state = (self.bound.with_hyper(**over) if over else self.bound).init(_read(var), xp=xp)
            self._lb_slots.append({k: self._slot_variable(var, k, v) for k, v in state.items()})
        if self.spec.global_slots:
            # the spec's global state (shared by all variables), in the variables' lowest dtype
            dtype = min((tf.as_dtype(v.dtype) for v in var_list), key=lambda d: d.size, default=tf.float32)
            with tf.init_scope():
                glob = self.bound.init_global(dtype=dtype, xp=xp)
            self._lb_glob = {k: self._global_variable(k, v) for k, v in glob.items()}

    def _global_variable(self, name: str, value: Any) -> Any:
        value = tf.convert_to_tensor(value)

        def initializer(shape: Any, dtype: Any = None) -> Any:
            return value

        return self.add_variable(shape=(), dtype=value.dtype, initializer=initializer, name=f"lossbridge_{name}")

    def apply(self, grads: Any, trainable_variables: Any = None) -> Any:
        """Keras's ``apply``; with ``check_finite=True`` the gradients are checked first (see
        :func:`~lossbridge_tensorflow._losses.check_finite_tensor`: eager ``InputError`` naming
        ``grads[<variable path>]``, a run-time check inside ``tf.function``, none under XLA)."""
        if getattr(self, "check_finite", False):
            from ._losses import check_finite_tensor

            variables = trainable_variables if trainable_variables is not None else self._trainable_variables
            paths = [getattr(v, "path", getattr(v, "name", str(k))) for k, v in enumerate(variables)]
            checked = []
            for k, g in enumerate(grads):
                name = f"grads[{paths[k]!r}]" if k < len(paths) else f"grads[{k}]"
                if isinstance(g, tf.IndexedSlices):
                    g = tf.IndexedSlices(check_finite_tensor(g.values, name), g.indices, g.dense_shape)
                elif g is not None:
                    g = check_finite_tensor(tf.convert_to_tensor(g), name)
                checked.append(g)
            grads = checked
        return super().apply(grads, trainable_variables)

    # -- atomic loads: every count and shape is checked before any variable changes -------------
    def set_weights(self, weights: Any) -> None:
        """Keras's ``set_weights``, atomic: a wrong number of arrays or a wrong shape is refused
        (``InputError``, a ``ValueError``) before any variable changes (Keras's own assigns one by
        one, stopping at the first bad shape, and ignores extra or missing arrays)."""
        if self.built:
            weights = list(weights)
            self._check_loadable([tuple(getattr(w, "shape", ())) for w in weights], "set_weights")
        super().set_weights(weights)

    def load_own_variables(self, store: Any) -> None:
        """Keras's ``load_own_variables``, atomic: a wrong shape is refused before any variable
        changes. A store with another number of arrays is skipped with Keras's own warning."""
        if len(store.keys()) == len(self.variables):
            missing = [str(i) for i in range(len(self.variables)) if str(i) not in store]
            if missing:
                raise InputError(f"{self.spec.name}: cannot load the optimizer state (nothing was loaded): "
                                 f"the store lacks the entries {missing}")
            self._check_loadable([tuple(store[str(i)].shape) for i in range(len(self.variables))],
                                 "load_own_variables")
        super().load_own_variables(store)

    def _check_loadable(self, shapes: list[tuple[int, ...]], what: str) -> None:
        variables = list(self._variables)
        where = f"{self.spec.name}: {what} refused (nothing was loaded)"
        if len(shapes) != len(variables):
            raise InputError(f"{where}: expected {len(variables)} arrays (one per optimizer variable), "
                             f"got {len(shapes)}")
        for variable, shape in zip(variables, shapes, strict=True):
            if tuple(variable.shape) != shape:
                path = getattr(variable, "path", getattr(variable, "name", "?"))
                raise InputError(f"{where}: variable {path} has shape {tuple(variable.shape)}, the array {shape}")

    def _backend_update_step(self, grads: Any, trainable_variables: Any, learning_rate: Any) -> None:
        """Keras's per-variable loop, or for a spec with ``global_slots`` one update over all variables."""
        if not self.spec.global_slots:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        return self._global_update_step(list(grads), list(trainable_variables), learning_rate)

    @tf.autograph.experimental.do_not_convert
    def _global_update_step(self, grads: list[Any], variables: list[Any], learning_rate: Any) -> None:
        """The spec's partial sums over ALL variables (in ``apply``'s order), then each variable's update."""
        if tf.distribute.has_strategy():
            raise lossbridge.BackendError(f"{self.spec.name}: an optimizer with global_slots under a "
                                          "tf.distribute strategy is not supported yet")
        glob = {k: _read(v) for k, v in self._lb_glob.items()}
        gdtype = next(iter(glob.values())).dtype
        ps, gs, sts, steps, slot_vars = [], [], [], [], []
        for g, var in zip(grads, variables, strict=True):
            dtype = var.dtype
            slots = self._lb_slots[self._get_variable_index(var)]
            slot_vars.append(slots)
            sts.append({k: _read(v) for k, v in slots.items()})
            ps.append(_read(var))
            gs.append(tf.cast(tf.convert_to_tensor(g), dtype))
            steps.append(tf.cast(self.iterations + 1, dtype))
        lr = None if getattr(self, "lr_free", False) else tf.cast(learning_rate, gdtype)
        deltas, news, new_glob = self.bound.update_all(ps, gs, sts, glob, steps=steps, xp=xp, lr=lr)
        for var, delta, new, old, slots in zip(variables, deltas, news, sts, slot_vars, strict=True):
            self.assign_add(var, tf.cast(delta, var.dtype))
            for k, value in new.items():
                if value is not old.get(k):
                    self.assign(slots[k], value)
        for k, value in new_glob.items():
            self.assign(self._lb_glob[k], tf.cast(value, glob[k].dtype))

    def _slot_variable(self, var: Any, name: str, value: Any) -> Any:
        value = tf.convert_to_tensor(value)

        def initializer(shape: Any, dtype: Any = None) -> Any:
            return value

        if tuple(value.shape) == tuple(var.shape) and value.dtype == tf.as_dtype(var.dtype):
            return self.add_variable_from_reference(var, name=name, initializer=initializer)
        path = getattr(var, "path", getattr(var, "name", "var")).replace("/", "_").replace(":", "_")
        return self.add_variable(
            shape=tuple(value.shape), dtype=value.dtype, initializer=initializer, name=f"{path}_{name}"
        )

    def slots_of(self, variable: Any) -> dict[str, Any]:
        """The spec's state of one variable (after ``build``): ``{spec slot name: tensor}``.

        What the spec's per-parameter helpers take, e.g. schedule-free's evaluation point
        ``schedule_free_eval_params(variable, opt.slots_of(variable))`` (the state holds ``z`` and ``b1``).
        """
        if not getattr(self, "built", False) or not hasattr(self, "_lb_slots"):
            raise InputError(f"{self.spec.name}: the optimizer is not built yet (call build(variables) or apply)")
        return {k: _read(v) for k, v in self._lb_slots[self._get_variable_index(variable)].items()}

    def _variable_overrides(self, variable: Any) -> dict[str, Any]:
        """Per-variable hyperparameters from Keras's per-variable labels.

        ``exclude_from_weight_decay(var_list=..., var_names=[...])`` (Keras's base-optimizer method,
        matched by Keras's own ``_use_weight_decay`` on the variable's name) runs the spec with
        ``weight_decay=0`` for the excluded variables, as Keras's AdamW/Lion/Lamb skip them. (Not for a
        spec with ``global_slots``: its hyperparameters are shared by all variables.)

        The convention's label options (``Convention.masks``, e.g. Muon's ``exclude_layers=[...]``:
        regexes searched in ``variable.path``, and ``exclude_embeddings``: ``"embedding"`` in the
        lower-cased path, Keras's ``_should_use_adamw``) replace the mask's hyperparameters (Muon's
        ``use_adam=True``) for the variables they match.
        """
        over: dict[str, Any] = {}
        if "weight_decay" in self.bound.hyper and not self._use_weight_decay(variable):
            over["weight_decay"] = 0.0
        labels = getattr(self, "labels", None)
        if labels:
            masks = self.bound.convention.masks if self.bound.convention is not None else {}
            path = str(getattr(variable, "path", getattr(variable, "name", "")))
            for key, value in labels.items():
                if key in _KERAS_FLAG_LABELS:
                    hit = value and _KERAS_FLAG_LABELS[key][0] in path.lower()
                else:
                    hit = any(re.search(pattern, path) for pattern in value)
                if hit:
                    over.update(masks[key])
        return over

    @tf.autograph.experimental.do_not_convert  # spec code has no tensor-dependent Python control flow
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """One spec ``update`` for one variable; step ``iterations + 1`` in the variable's dtype."""
        dtype = variable.dtype
        slots = self._lb_slots[self._get_variable_index(variable)]
        state = {k: _read(v) for k, v in slots.items()}
        grad = tf.cast(tf.convert_to_tensor(gradient), dtype)
        step = tf.cast(self.iterations + 1, dtype)
        lr = None if getattr(self, "lr_free", False) else tf.cast(learning_rate, dtype)
        over = self._variable_overrides(variable)
        delta, new_state = self.bound.update(_read(variable), grad, state, step=step, xp=xp, lr=lr, **over)
        _apply_delta(self, variable, delta)
        for k, new in new_state.items():
            if new is not state.get(k):
                self.assign(slots[k], new)

    def get_config(self) -> dict[str, Any]:
        """Keras's base options plus the spec name, convention and hyperparameters."""
        config = super().get_config()
        config.pop("weight_decay", None)
        conv = self.bound.convention
        config.update(
            {
                "spec": self.spec.name,
                "convention": conv.framework if conv is not None else None,
                "hyper": {k: v for k, v in self.bound.hyper.items() if k != "lr" and not callable(v)},
            }
        )
        if getattr(self, "lr_free", False):  # lr=None round-trips (the 1.0 Keras holds is not the lr)
            config["learning_rate"] = None
            config["hyper"]["lr"] = None
        if getattr(self, "check_finite", False):
            config["check_finite"] = True
        config.update(getattr(self, "labels", None) or {})
        return config

    def __repr__(self) -> str:
        conv = self.bound.convention.framework if self.bound.convention else None
        return f"<lossbridge keras optimizer {self.spec.name!r} convention={conv!r}>"
