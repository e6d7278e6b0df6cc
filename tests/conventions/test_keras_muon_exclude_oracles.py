"""Keras Muon's per-variable labels: ``exclude_layers`` and ``exclude_embeddings``.

``keras.optimizers.Muon._should_use_adamw`` gives AdamW to every variable that is not 2-D, whose
lower-cased path contains ``"embedding"`` (``exclude_embeddings=True``, the default) or whose path
matches one of the ``exclude_layers`` regexes (``re.search``). lossbridge's Keras optimizer runs the
same muon spec with ``use_adam=True`` for those variables (``Convention.masks`` of the keras
convention). 100 float64 steps against the real ``keras.optimizers.Muon`` on named variables (a
hidden matrix, an output matrix, an embedding table and a bias), relative error <= 1e-10 per iterate;
the excluded matrices are also checked against lossbridge's NumPy muon with ``use_adam=True`` and
the hidden one against plain Muon.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import STEPS, Params, assert_same, keras_module, quadratic_plus_cos, trajectory

keras = pytest.fixture(scope="module", name="keras")(keras_module)

NAMES = ("hidden_kernel", "output_dense_kernel", "token_embedding_table", "hidden_bias")


def problem() -> tuple[Params, Any]:
    rng = np.random.default_rng(23)
    start = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(5, 3)), rng.normal(size=(4,))]
    mats = [rng.normal(size=(8, p.shape[0])) for p in start]
    targets = [rng.normal(size=(8, *p.shape[1:])) for p in start]
    return start, quadratic_plus_cos(mats, targets)


class _Named:
    """An optimizer over float64 Keras variables named ``NAMES``, applied in a compiled step."""

    def __init__(self, keras: Any, opt: Any, start: Params) -> None:
        import tensorflow as tf

        self.keras, self.opt = keras, opt
        self.variables = [keras.Variable(p, dtype="float64", name=n) for p, n in zip(start, NAMES, strict=True)]

        @tf.function
        def apply(grads: list[Any]) -> None:
            opt.apply_gradients(zip(grads, self.variables, strict=True))

        self.apply = apply

    def set_lr(self, lr: float) -> None:
        self.opt.learning_rate = lr

    def step(self, grads: Params) -> Params:
        self.apply([self.keras.ops.convert_to_tensor(g, dtype="float64") for g in grads])
        return [np.asarray(v.numpy(), dtype=np.float64) for v in self.variables]


CASES = [
    {"exclude_layers": ["output_dense"], "rms_rate": None},
    {"exclude_layers": ["output_.*_kernel"], "exclude_embeddings": False, "rms_rate": None, "learning_rate": 0.01,
     "adam_lr_ratio": 0.5, "adam_weight_decay": 0.1, "weight_decay": 0.01},
    {"rms_rate": None, "nesterov": False},  # the default exclude_embeddings=True alone
]


LABELS = ("exclude_layers", "exclude_embeddings")


def _ours(native: dict[str, Any]) -> Any:
    """lossbridge's Keras optimizer from Keras's native keywords (the labels go to KerasOptimizer)."""
    from lossbridge_tensorflow import KerasOptimizer

    from lossbridge.bound import bind, translate_kwargs

    spec = lossbridge.spec("muon")
    rest = {k: v for k, v in native.items() if k not in LABELS}
    bound = bind(spec, convention="keras", params=translate_kwargs(spec, "keras", rest))
    return KerasOptimizer(bound, **{k: v for k, v in native.items() if k in LABELS})


@pytest.mark.parametrize("native", CASES, ids=["exclude_layers", "regex-no-embeddings", "embeddings-default"])
def test_keras_muon_exclude_matches_keras(keras: Any, native: dict[str, Any]) -> None:
    start, grad = problem()
    ours = trajectory(_Named(keras, _ours(native), start), start, grad)
    theirs = trajectory(_Named(keras, keras.optimizers.Muon(**native), start), start, grad)
    assert_same(ours, theirs)


def test_keras_muon_excluded_follow_adamw_rest_muon(keras: Any) -> None:
    """Per variable, the Keras run equals lossbridge's NumPy muon with or without use_adam=True."""
    native = {"exclude_layers": ["output_dense"], "rms_rate": None}
    start, grad = problem()
    run = trajectory(_Named(keras, _ours(native), start), start, grad)
    for k, use_adam in enumerate((False, True, True, False)):
        alone = [start[k]]
        opt = lossbridge.get("Muon", convention="keras", rms_rate=None, use_adam=use_adam)

        def one(p: Params, k: int = k) -> Params:  # the problem is separable per parameter
            return [grad([*start[:k], p[0], *start[k + 1:]])[k]]

        from ._optimizer_oracle import LossbridgeSteps

        mine = trajectory(LossbridgeSteps(opt, alone), alone, one)
        assert_same(mine, [[params[k]] for params in run])
    plain = trajectory(_Named(keras, _ours({"rms_rate": None, "exclude_embeddings": False}), start), start, grad)
    with pytest.raises(AssertionError, match="relative error"):  # the labels change the embedding's path
        assert_same([[p[2]] for p in plain], [[p[2]] for p in run])
    assert len(run) == STEPS


def test_keras_muon_labels_survive_get_config(keras: Any) -> None:
    opt = _ours({"exclude_layers": ["output_dense"]})
    config = opt.get_config()
    assert config["exclude_layers"] == ["output_dense"] and config["exclude_embeddings"] is True
    again = type(opt).from_config(config)
    assert again.labels == {"exclude_layers": ["output_dense"], "exclude_embeddings": True}


def test_keras_muon_exclude_layers_through_lossbridge_get(keras: Any) -> None:
    opt = lossbridge.get("Muon", backend="tensorflow", convention="keras", exclude_layers=["dense"])
    assert opt.labels == {"exclude_layers": ["dense"], "exclude_embeddings": True}
    with pytest.raises(lossbridge.ParameterError, match="exclude_layers"):
        lossbridge.get("adam", backend="tensorflow", convention="keras", exclude_layers=["dense"])
