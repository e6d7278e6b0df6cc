"""Losses as :class:`keras.losses.Loss` subclasses, computed by the one spec over ``tf.Tensor``.

Importing this module imports TensorFlow and Keras; the backend imports it lazily.

Keras's reduction names map onto the shared reduction layer (:mod:`lossbridge.reduction`):

=========================  ==============================================================
Keras ``reduction``        lossbridge
=========================  ==============================================================
``"sum_over_batch_size"``  ``"mean"``, dividing by the number of terms
``"mean"``                 the same (Keras 3 divides by the number of terms)
``"mean_with_sample_weight"``  ``"mean"``, dividing by the sum of the weights
``"sum"``                  ``"sum"``
``"none"`` / ``None``      ``"none"``
=========================  ==============================================================

Keras's input forms (rank squeeze/expand, integral float labels, integer inputs, the loss dtype)
are the keras convention's input rules, applied by the core for every backend. One rule needs a
graph: Keras's TensorFlow backend reads the logits behind a softmax/sigmoid output
(``_keras_logits``, or the input of a ``Softmax``/``Sigmoid`` graph op; see
``keras/src/backend/tensorflow/nn.py`` ``_get_logits``). The convention declares it
(``InputRules.logits_behind``) and this module applies it, by evaluating the spec with
``from_logits=True`` on those logits. Gradients are the spec's one gradient, through
``tf.custom_gradient`` (:func:`spec_gradient_values`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import lossbridge
import lossbridge.conventions
import lossbridge.registry
from lossbridge.bound import BoundLoss, bind, translate_kwargs
from lossbridge.errors import InputError, ParameterError
from lossbridge_tensorflow import array_api as xp

from ._convert import to_tensor

__all__ = [
    "KERAS_REDUCTIONS", "KerasLoss", "KerasNativeLoss", "keras_loss_params", "make_keras_loss", "native_class",
    "spec_gradient_values",
]

#: Keras reduction names and the (lossbridge reduction, weighted-mean normalization) they mean.
KERAS_REDUCTIONS: Mapping[str | None, tuple[str, str | None]] = {
    "sum_over_batch_size": ("mean", "count"),
    "mean": ("mean", "count"),
    "mean_with_sample_weight": ("mean", "weights"),
    "sum": ("sum", None),
    "none": ("none", None),
    None: ("none", None),
    "batchmean": ("batchmean", None),
}

_UNSET: Any = object()

#: The reduction names ``keras.losses.Loss`` accepts (``keras/src/losses/loss.py``
#: ``standardize_reduction``), plus lossbridge's ``"batchmean"``.
_KERAS_ALLOWED = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight", "batchmean")


def keras_loss_params(spec: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a Keras loss, checked and mapped as Keras's own objects do.

    * ``reduction``: an unknown name is Keras's ``ValueError`` with Keras's message
      ("Invalid value for argument `reduction`...").
    * ``axis`` on a loss whose spec has no ``axis`` parameter (Keras's cross-entropies): ``-1`` is
      the spec's layout and is dropped; any other value is Keras's TensorFlow-backend error
      ("Only axis=-1 is currently supported"), raised when the loss is built.
    """
    out = dict(params)
    if "reduction" in out and out["reduction"] not in _KERAS_ALLOWED:
        allowed = ", ".join(repr(r) for r in _KERAS_ALLOWED)
        raise ParameterError(
            f"Invalid value for argument `reduction`. Expected one of {{{allowed}}}. "
            f"Received: reduction={out['reduction']}"
        )
    if "axis" in out and "axis" not in {p.name for p in spec.all_params()}:
        axis = out.pop("axis")
        if axis not in (-1, None):
            raise ParameterError(f"Only axis=-1 is currently supported. Received: axis={axis}")
    return out


def spec_gradient_values(bound: BoundLoss) -> Callable[..., Any]:
    """``values(*prepared)`` for ``bound`` with the spec's ``vjp`` as TensorFlow's gradient.

    Works eagerly, under ``tf.function`` and XLA; non-differentiable inputs get no gradient.
    A spec without a ``vjp`` is differentiated by TensorFlow's autodiff.
    """
    spec = bound.spec
    fn, vjp, params = spec.fn, spec.vjp, bound.spec_params()
    assert fn is not None  # validated at registration
    if vjp is None:
        return lambda *inputs: fn(*inputs, xp=xp, **params)
    positions = [k for k, i in enumerate(spec.inputs) if i.differentiable]

    @tf.custom_gradient
    def values(*inputs: Any) -> Any:
        def grad(cot: Any) -> list[Any]:
            grads: list[Any] = [None] * len(inputs)
            for k, g in zip(positions, vjp(*inputs, cot, xp=xp, **params), strict=True):
                grads[k] = g
            return grads

        return fn(*inputs, xp=xp, **params), grad

    return values


def _with_keras_reduction(bound: BoundLoss, reduction: str | None) -> BoundLoss:
    """``bound`` with the reduction a Keras reduction name means."""
    if reduction not in KERAS_REDUCTIONS:
        valid = ", ".join(repr(k) for k in KERAS_REDUCTIONS)
        raise ParameterError(
            f"{bound.spec.name}: parameter 'reduction' expects one of {valid}, got {reduction!r}"
        )
    name, normalize_by = KERAS_REDUCTIONS[reduction]
    rule = bound.rule if normalize_by is None else dataclasses.replace(bound.rule, normalize_by=normalize_by)
    return dataclasses.replace(bound, reduction=name, rule=rule)


def _reduction_name(bound: BoundLoss) -> str:
    """The name of ``bound``'s reduction, Keras's where Keras has one (``batchmean`` is lossbridge's)."""
    if bound.reduction != "mean":
        return bound.reduction
    return "sum_over_batch_size" if bound.rule.normalize_by == "count" else "mean_with_sample_weight"


def _keras_reduction_name(bound: BoundLoss) -> str:
    """A reduction name ``keras.losses.Loss`` accepts (it validates its own)."""
    name = _reduction_name(bound)
    return "sum" if name == "batchmean" else name


def _dtype_name(dtype: Any) -> str:
    """A dtype name from a string, a NumPy/TF dtype or a Keras ``DTypePolicy`` (its compute dtype)."""
    compute = getattr(dtype, "compute_dtype", None)
    if isinstance(compute, str):
        return compute
    return str(getattr(dtype, "name", dtype))


def _default_name(bound: BoundLoss) -> str:
    """Keras's default name for its own loss (``MeanSquaredError`` -> ``mean_squared_error``), else the spec's."""
    conv = bound.convention
    if conv is None or conv.framework != "keras":
        return bound.spec.name
    cls = conv.native.split()[0].split(".")[-1]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls).lower()


def _attached_logits(y_pred: Any, op_type: str) -> Any | None:
    """The logits Keras's TensorFlow backend would use for ``y_pred``, if any."""
    logits = getattr(y_pred, "_keras_logits", None)
    if logits is not None:
        return logits
    if isinstance(y_pred, tf.Tensor) and not tf.executing_eagerly() and hasattr(y_pred, "op"):
        op = y_pred.op
        if op.type == op_type and len(op.inputs) == 1:
            return op.inputs[0]
    return None


def _differs(default: Any, value: Any) -> bool:
    """Whether a parameter's value differs from its default; array values (Circle's ``ref_embeddings``)
    are compared element by element."""
    if hasattr(value, "shape") or hasattr(default, "shape"):
        if default is _UNSET or default is None or value is None:
            return True
        a, b = np.asarray(default), np.asarray(value)
        return a.shape != b.shape or not bool(np.array_equal(a, b))
    return bool(default != value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray) or hasattr(value, "numpy"):
        return np.asarray(value).tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def check_finite_tensor(x: Any, name: str) -> Any:
    """The opt-in ``check_finite``: ``x``, refused if it holds NaN or infinity.

    Eagerly, an :class:`~lossbridge.errors.InputError` names the argument and the first bad index
    (one host transfer). Inside ``tf.function`` (``model.fit``) the values are not known when the
    graph is built: ``x`` passes through ``tf.debugging.check_numerics``, which raises
    ``tf.errors.InvalidArgumentError`` with the argument's name when the graph runs. XLA
    (``jit_compile=True``) drops that op: there nothing is checked.
    """
    if x is None or not (x.dtype.is_floating or x.dtype.is_complex):
        return x
    if not tf.executing_eagerly():
        if x.dtype.is_complex:
            return x
        return tf.debugging.check_numerics(x, f"{name}: expected finite values (check_finite=True)")
    host = np.asarray(x)
    bad = ~np.isfinite(host)
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        shown = complex(host[index]) if np.iscomplexobj(host) else float(host[index])
        raise InputError(
            f"{name}: expected finite values (check_finite=True), got {shown} at index {index} "
            f"({int(bad.sum())} non-finite of {bad.size})"
        )
    return x


@keras.saving.register_keras_serializable(package="lossbridge")
class KerasLoss(keras.losses.Loss):
    """A lossbridge spec as a Keras loss: ``loss(y_true, y_pred, sample_weight=None)``.

    Parameters
    ----------
    spec:
        A spec name (``"mse"``) or an already bound spec.
    convention:
        ``None`` (lossbridge's defaults) or a framework, e.g. ``"keras"``.
    reduction:
        A Keras reduction name (see the module docstring) or lossbridge's ``"mean"``/``"sum"``/
        ``"none"``; unset takes the convention's default.
    name, dtype:
        As for every Keras loss. With ``dtype`` unset, inputs keep their floating dtype (float64
        in, float64 out); float16/bfloat16 are computed in float32.
    check_finite:
        Refuse NaN and infinity in the inputs and sample weights (off by default, at no cost):
        see :func:`check_finite_tensor` (eager: ``InputError``; ``tf.function``: at run time; XLA: no check).
    **params:
        The spec's parameters.
    """

    def __init__(
        self,
        spec: str | BoundLoss,
        convention: str | None = None,
        *,
        reduction: Any = _UNSET,
        name: str | None = None,
        dtype: Any = None,
        validate: bool = True,
        backend: Any = None,
        check_finite: bool = False,
        **params: Any,
    ) -> None:
        if isinstance(spec, BoundLoss):
            bound = spec
        else:
            found = lossbridge.spec(spec, convention=convention)
            given = translate_kwargs(found, convention, params)
            bound = bind(found, convention=convention, params=given)  # type: ignore[assignment]
        if not isinstance(bound, BoundLoss):
            raise ParameterError(f"{bound.spec.name} is an optimizer, not a loss; use KerasOptimizer")
        if reduction is not _UNSET:
            bound = _with_keras_reduction(bound, reduction)
        if dtype is not None:
            bound = dataclasses.replace(bound, dtype=_dtype_name(dtype))
        elif bound.rules.compute_dtype is not None and bound.dtype is None:
            bound = dataclasses.replace(bound, dtype=keras.config.floatx())  # Keras's loss dtype: floatx
        super().__init__(
            name=name or _default_name(bound), reduction=_keras_reduction_name(bound), dtype=bound.dtype
        )
        self.bound = bound
        self.spec = bound.spec
        self.validate = validate
        self.check_finite = bool(check_finite)
        self._backend = backend or lossbridge.registry.default_registry().backend("tensorflow")
        self._wrapped = {b.spec.name: spec_gradient_values(b) for b in (bound, *bound.alternatives)}

    # -- calling ------------------------------------------------------------------------------------
    def _split(self, args: tuple[Any, ...], sample_weight: Any) -> tuple[list[Any], Any]:
        native = self.bound.rules.native
        n = len(self.spec.inputs) if native is None else native.arity
        if len(args) == n + 1 and sample_weight is None:  # Keras passes sample_weight positionally
            args, sample_weight = args[:n], args[n]
        names = [self.spec.inputs[k].name for k in self._backend.argument_order(self.spec)]
        if native is not None:  # the convention's own call (Keras's CTC(y_true, y_pred)): the rest is derived
            names = [a for a in native.slots if a]
        tensors: list[Any] = [to_tensor(x, names[k] if k < len(names) else "input") for k, x in enumerate(args)]
        tensors += [None] * (len(self.spec.inputs) - len(tensors)) if len(tensors) == n else []
        return list(self._backend.to_spec_order(self.spec, tensors)), sample_weight

    def _logits_behind(self, bound: BoundLoss, inputs: list[Any]) -> BoundLoss:
        """Keras on TensorFlow reads the logits behind a softmax/sigmoid output (the convention says so)."""
        ops = bound.rules.logits_behind
        if not ops or bound.params.get("from_logits", True):
            return bound
        pred_k = next(k for k, i in enumerate(bound.spec.inputs) if i.differentiable)
        op = "Sigmoid" if bound.spec.elementwise else "Softmax"
        logits = _attached_logits(inputs[pred_k], op) if op in ops else None
        if logits is None:
            return bound
        inputs[pred_k] = logits
        return dataclasses.replace(bound, params={**bound.params, "from_logits": True})

    def _evaluate(self, bound: BoundLoss, args: tuple[Any, ...], sample_weight: Any) -> Any:
        inputs, sample_weight = self._split(args, sample_weight)
        weight = None if sample_weight is None else to_tensor(sample_weight, "sample_weight")
        if self.check_finite:
            names = [i.name for i in self.spec.inputs]
            inputs = [check_finite_tensor(x, names[k] if k < len(names) else "input") for k, x in enumerate(inputs)]
            weight = check_finite_tensor(weight, "sample_weight")
        bound = self._logits_behind(bound, inputs)
        check = self.validate and tf.executing_eagerly()
        wrapped = self._wrapped if bound.params is self.bound.params else None

        def wrap(b: BoundLoss) -> Callable[..., Any]:
            return wrapped[b.spec.name] if wrapped is not None else spec_gradient_values(b)

        return bound.evaluate(xp, *inputs, sample_weight=weight, check_values=check, wrap=wrap)

    @tf.autograph.experimental.do_not_convert  # spec code has no tensor-dependent Python control flow
    def __call__(self, *args: Any, sample_weight: Any = None) -> Any:
        """The reduced loss, arguments in Keras order (``y_true, y_pred``)."""
        with tf.name_scope(self.name):
            return _scale_for_replicas(self._evaluate(self.bound, args, sample_weight), self.bound.reduction)

    @tf.autograph.experimental.do_not_convert
    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Unreduced values (one per sample under Keras's convention), as ``keras.losses.Loss.call``."""
        return self._evaluate(dataclasses.replace(self.bound, reduction="none"), (y_true, y_pred), None)

    # -- serialization ------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Keras's ``name``/``reduction``/``dtype``, plus what rebuilding needs: spec, convention, changed params."""
        conv = self.bound.convention
        framework = conv.framework if conv is not None else None
        defaults = bind(self.spec, convention=framework).params  # type: ignore[union-attr]
        params = {k: _jsonable(v) for k, v in self.bound.params.items() if _differs(defaults.get(k, _UNSET), v)}
        if self.bound.class_weight is not None:
            params["class_weight"] = _jsonable(self.bound.class_weight)
        if self.bound.ignore_index is not None and self.bound.ignore_index != defaults.get("ignore_index"):
            params["ignore_index"] = self.bound.ignore_index
        config = {"name": self.name, "reduction": _reduction_name(self.bound), "dtype": self.bound.dtype}
        config["spec"] = self.spec.name
        if framework is not None:
            config["convention"] = framework
        if params:
            config["params"] = params
        if self.check_finite:
            config["check_finite"] = True
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """Rebuild the spec (by its own name: a framework name's preset must not apply) and Keras's options."""
        config = dict(config)
        convention = config.pop("convention", None)
        found = lossbridge.spec(config.pop("spec"))
        bound = bind(found, convention=convention, params=config.pop("params", {}))
        return cls(bound, **config)

    def __repr__(self) -> str:
        conv = self.bound.convention.framework if self.bound.convention else None
        return f"<lossbridge keras loss {self.spec.name!r} convention={conv!r} reduction={self.reduction!r}>"


# -- one class per Keras loss class --------------------------------------------------------------
_NATIVE_CLASSES: dict[str, type[KerasLoss]] = {}


def _keras_class_names(conv: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """The convention's names that are Keras loss classes (``Huber``, ``Tversky``), with their presets."""
    return [(n, p) for n, p in conv.names.items() if n[:1].isupper() and hasattr(keras.losses, n)]


def _native_name(bound: BoundLoss) -> str | None:
    """The Keras class ``bound`` stands for: the most specific class name whose preset it has."""
    conv = bound.convention
    if conv is None or conv.framework != "keras":
        return None
    best: tuple[str, Mapping[str, Any]] | None = None
    for name, preset in _keras_class_names(conv):
        if all(k in bound.params and bound.params[k] == v for k, v in preset.items()):
            if best is None or len(preset) > len(best[1]):
                best = (name, preset)
    return best[0] if best is not None else None


class KerasNativeLoss(KerasLoss):
    """lossbridge's stand-in for one Keras loss class, with that class's constructor and config.

    ``keras.losses.Huber(delta=2.0, reduction="sum", name="h")`` and
    ``lossbridge.get("Huber", backend="tensorflow", convention="keras", delta=2.0, ...)`` take the
    same keywords; ``get_config()`` holds Keras's keys (``name``, ``reduction``) plus the parameters
    that differ from the class's defaults, under Keras's names, and ``from_config`` is
    ``cls(**config)`` as for Keras's own losses. Each class is registered for Keras serialization
    as ``lossbridge>ClassName``, so a saved model reloads without ``custom_objects``.
    """

    native_name: str = ""

    def __init__(
        self,
        bound: BoundLoss | None = None,
        *,
        reduction: Any = _UNSET,
        name: str | None = None,
        dtype: Any = None,
        validate: bool = True,
        backend: Any = None,
        check_finite: bool = False,
        **params: Any,
    ) -> None:
        if bound is None:
            found = lossbridge.registry.default_registry().resolve(self.native_name, "keras")
            given = translate_kwargs(found.spec, "keras", keras_loss_params(found.spec, params))
            if reduction is not _UNSET:
                keras_loss_params(found.spec, {"reduction": reduction})
            bound = bind(found.spec, convention="keras", params={**found.preset, **given})  # type: ignore[assignment]
        elif params:
            raise ParameterError(f"{self.native_name}: parameters are given either bound or as keywords")
        native = getattr(keras.losses, self.native_name, None)
        default = None
        if native is not None:
            default = inspect.signature(native).parameters.get("name", inspect.Parameter("name", 1)).default
        default = default if isinstance(default, str) else None
        super().__init__(
            bound, reduction=reduction, name=name or default, dtype=dtype, validate=validate, backend=backend,
            check_finite=check_finite,
        )

    def get_config(self) -> dict[str, Any]:
        """Keras's ``name`` and ``reduction``, plus the parameters that differ from the class's defaults."""
        found = lossbridge.registry.default_registry().resolve(self.native_name, "keras")
        default = bind(found.spec, convention="keras", params=dict(found.preset))
        assert isinstance(default, BoundLoss)
        conv = self.bound.convention
        native_of: dict[str, str] = {}
        for native, ours in lossbridge.conventions.FRAMEWORK_KWARGS.get("keras", {}).items():
            if isinstance(ours, str):
                native_of[ours] = native
        if conv is not None:
            native_of.update({ours: native for native, ours in conv.kwargs.items() if isinstance(ours, str)})
        config: dict[str, Any] = {"name": self.name, "reduction": _reduction_name(self.bound)}
        for k, v in self.bound.params.items():
            if _differs(default.params.get(k, _UNSET), v):
                config[native_of.get(k, k)] = _jsonable(v)
        if self.bound.class_weight is not None:
            config[native_of.get("class_weight", "class_weight")] = _jsonable(self.bound.class_weight)
        if self.bound.ignore_index != default.ignore_index:
            config[native_of.get("ignore_index", "ignore_index")] = self.bound.ignore_index
        if self.bound.dtype is not None and self.bound.dtype != keras.config.floatx():
            config["dtype"] = self.bound.dtype
        if self.check_finite:
            config["check_finite"] = True
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """As Keras's losses: ``cls(**config)``."""
        return cls(**config)


def native_class(name: str) -> type[KerasLoss]:
    """The :class:`KerasNativeLoss` subclass standing for Keras's loss class ``name`` (made once, registered)."""
    if name not in _NATIVE_CLASSES:
        cls = type(name, (KerasNativeLoss,), {"native_name": name, "__module__": __name__, "__qualname__": name})
        _NATIVE_CLASSES[name] = keras.saving.register_keras_serializable(package="lossbridge", name=name)(cls)
    return _NATIVE_CLASSES[name]


def make_keras_loss(bound: BoundLoss, *, backend: Any = None, **options: Any) -> KerasLoss:
    """A Keras loss for ``bound``: the stand-in class of the Keras loss it reproduces, else :class:`KerasLoss`."""
    name = _native_name(bound)
    if name is None:
        return KerasLoss(bound, backend=backend, **options)
    return native_class(name)(bound, backend=backend, **options)


def register_native_classes() -> None:
    """Register a stand-in class for every Keras loss class a spec's keras convention names."""
    for found, _ in lossbridge.registry.default_registry().specs():
        conv = getattr(found, "conventions", {}).get("keras")
        if getattr(found, "kind", None) == "loss" and conv is not None:
            for name, _preset in _keras_class_names(conv):
                native_class(name)


register_native_classes()


def _scale_for_replicas(value: Any, reduction: str) -> Any:
    """Keras's rule under ``tf.distribute`` (``keras/src/losses/loss.py``, ``scale_loss_for_distribution``).

    A replica's mean is multiplied by ``1 / num_replicas_in_sync``, since the strategy sums the
    replicas' gradients; ``"sum"`` and ``"none"`` are not scaled.
    """
    if reduction not in ("mean", "batchmean"):
        return value
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value if replicas == 1 else value * tf.cast(1.0 / replicas, value.dtype)
