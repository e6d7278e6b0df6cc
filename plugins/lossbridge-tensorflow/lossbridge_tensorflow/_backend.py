"""The TensorFlow/Keras backend: ``keras.losses.Loss`` and ``keras.optimizers.Optimizer`` objects.

TensorFlow and Keras are imported inside the methods only, so loading the plugin stays cheap.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lossbridge.backends.base import Backend
from lossbridge.bound import BoundLoss, BoundOptimizer

if TYPE_CHECKING:
    from lossbridge.demo import DigitsData, TrainingResult

__all__ = ["TensorflowBackend"]


def _cast(x: np.ndarray, dtype: str) -> Any:
    import tensorflow as tf

    x = np.asarray(x)
    return tf.constant(x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x)


def _fresh(optimizer: Any) -> Any:
    """``optimizer`` itself if unused, else a new one from its config (a Keras optimizer builds once)."""
    return type(optimizer).from_config(optimizer.get_config()) if optimizer.built else optimizer



#: Keyword arguments that go to ``keras.optimizers.Optimizer`` itself rather than to the spec.
KERAS_BASE_OPTIONS = (
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "name",
)

class TensorflowBackend(Backend):
    """Losses as ``keras.losses.Loss``, optimizers as ``keras.optimizers.Optimizer`` subclasses."""

    name = "tensorflow"
    aliases = ("tf", "keras")
    requires = ("tensorflow", "keras")
    distribution = "\"lossbridge-tensorflow[cpu]\" (or [gpu])"
    loss_order = "truth_first"
    loss_options = ("validate", "name", "check_finite")
    #: Keras's base-optimizer options: ``lossbridge.get`` passes them to ``keras.optimizers.Optimizer``
    #: itself (Keras's implementation is the native behaviour; see ``_optimizers.KERAS_BASE_OPTIONS``)
    optimizer_options = (*KERAS_BASE_OPTIONS, "check_finite", "exclude_layers", "exclude_embeddings")

    def namespace(self) -> Any:
        from lossbridge_tensorflow import array_api

        return array_api

    def translate_params(self, spec: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        """Keras's own loss keywords: its ``reduction`` check and message, its ``axis=-1`` (see ``_losses``)."""
        if getattr(spec, "kind", None) != "loss":
            return dict(params)
        from ._losses import keras_loss_params

        return keras_loss_params(spec, params)

    def materialize_loss(self, bound: BoundLoss, **options: Any) -> Any:
        from ._losses import make_keras_loss

        return make_keras_loss(bound, backend=self, **options)

    def materialize_optimizer(self, bound: BoundOptimizer, **options: Any) -> Any:
        if getattr(bound.spec, "closure_step", None) is not None:
            from lossbridge.errors import BackendError

            raise BackendError(
                f"{bound.spec.name}: the tensorflow backend has no closure-step optimizers (OptimizerSpec."
                "closure_step: a step that evaluates the objective at trial points, such as L-BFGS); Keras's "
                "optimizer API applies gradients only (apply_gradients) and Keras has no L-BFGS. Use the torch, "
                "jax or numpy backend"
            )
        from ._optimizers import KerasOptimizer

        return KerasOptimizer(bound, **options)

    def materialize_schedule(self, bound: Any) -> Any:
        """A ``keras.optimizers.schedules.LearningRateSchedule`` (float32, serializable)."""
        from ._schedules import KerasSchedule

        return KerasSchedule.from_bound(bound)

    # -- the conformance harness ------------------------------------------------------------------
    def loss_value_and_grad(
        self,
        loss: Any,
        inputs: Mapping[str, np.ndarray],
        *,
        sample_weight: np.ndarray | None,
        differentiable: Sequence[str],
        dtype: str,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        import tensorflow as tf

        tensors = {name: _cast(x, dtype) for name, x in inputs.items()}
        spec_inputs = loss.spec.inputs
        args = [tensors[spec_inputs[k].name] for k in self.argument_order(loss.spec)]  # Keras: truth first
        weight = None if sample_weight is None else _cast(sample_weight, dtype)
        watched = [tensors[n] for n in differentiable]
        with tf.GradientTape() as tape:
            for t in watched:
                tape.watch(t)
            value = loss(*args, sample_weight=weight)
            total = tf.reduce_sum(value)
        grads = tape.gradient(total, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return np.asarray(value.numpy(), dtype=np.float64), {
            n: np.asarray(g.numpy(), dtype=np.float64) for n, g in zip(differentiable, grads, strict=True)
        }

    def optimizer_trajectory(
        self,
        optimizer: Any,
        params: Sequence[np.ndarray],
        grads: Sequence[Sequence[np.ndarray]],
        *,
        dtype: str,
    ) -> list[list[np.ndarray]]:
        import keras
        import tensorflow as tf

        opt = _fresh(optimizer)
        variables = [keras.Variable(np.asarray(p, dtype=dtype), dtype=dtype) for p in params]
        opt.build(variables)  # as model.fit does, before the traced train step
        step = tf.function(lambda g: opt.apply(g, variables))
        out = []
        for step_grads in grads:
            step([_cast(g, dtype) for g in step_grads])
            out.append([np.asarray(v.numpy(), dtype=np.float64) for v in variables])
        return out

    # -- the seed example ---------------------------------------------------------------------------
    # -- portable optimizer state ------------------------------------------------------------------
    def export_optimizer_state(self, optimizer: Any, *, params: Any = None, **_: Any) -> Any:
        """A lossbridge Keras optimizer's or a ``keras.optimizers`` optimizer's state (portable)."""
        if "keras" not in sys.modules:  # not imported: the object cannot be a Keras optimizer
            return None
        from ._state import export_state

        return export_state(optimizer, params=params)

    def import_optimizer_state(
        self, optimizer: Any, portable: Any, *, state: Any = None, params: Any = None, convert: bool = False
    ) -> Any:
        """Load a portable state into a lossbridge Keras optimizer (built over ``params`` if needed)."""
        if "keras" not in sys.modules:
            return NotImplemented
        from ._state import import_state

        return import_state(optimizer, portable, params=params, convert=convert)

    def train_digits(self, data: DigitsData) -> TrainingResult:
        """Dense(64, relu) -> Dense(10) as a compiled Keras model, one ``train_on_batch`` per mini-batch."""
        import keras

        import lossbridge
        from lossbridge.demo import TrainingResult

        model = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
        )
        model.set_weights([data.init["w1"], data.init["b1"], data.init["w2"], data.init["b2"]])
        model.compile(
            loss=lossbridge.get("sparse_categorical_crossentropy", backend="tensorflow", from_logits=True),
            optimizer=lossbridge.get("adam", backend="tensorflow", lr=data.lr),
        )
        result = TrainingResult(self.name)
        start = time.perf_counter()
        for epoch in range(data.epochs):
            losses = [
                float(model.train_on_batch(data.x_train[idx], data.y_train[idx]))
                for idx in data.batches(epoch)
            ]
            result.train_loss.append(float(np.mean(losses)))
        result.seconds = time.perf_counter() - start
        logits = model.predict(data.x_val, verbose=0)
        result.val_accuracy = float(np.mean(np.argmax(logits, axis=1) == data.y_val))
        return result
