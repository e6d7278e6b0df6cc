"""Every framework name the loss-catalog issue lists resolves, under its framework's convention, to a spec.

NumPy backend only (no ML framework is imported). For each listed name: ``lossbridge.spec`` resolves it
under the framework's convention through that framework's own names (not a lossbridge alias that
happens to match), the spec declares a convention for the framework, and ``lossbridge.get`` builds it.
The known cross-framework collisions are checked by value on tiny hand-computed examples.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import lossbridge
from lossbridge.registry import default_registry

TORCH = (
    # losses
    "L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss", "KLDiv",
    "PoissonNLLLoss", "GaussianNLLLoss", "HuberLoss", "SmoothL1Loss", "SoftMarginLoss", "MultiMarginLoss",
    "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiLabelSoftMargin", "HingeEmbeddingLoss",
    "CosineEmbeddingLoss", "MarginRankingLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss", "CTCLoss",
    # optimizers
    "SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop", "Rprop", "ASGD",
    "Adafactor",
    # schedules
    "ConstantLR", "LinearLR", "StepLR", "MultiStepLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR", "CyclicLR", "SequentialLR", "ChainedScheduler",
)  # fmt: skip

KERAS = (
    # losses
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
    "CosineSimilarity", "Huber", "LogCosh", "Hinge", "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson",
    "BinaryCrossentropy", "BinaryFocalCrossentropy", "CategoricalCrossentropy", "CategoricalFocalCrossentropy",
    "SparseCategoricalCrossentropy", "CTC", "Dice", "Tversky", "Circle", "CategoricalGeneralizedCrossEntropy",
    # optimizers
    "SGD", "Adam", "AdamW", "Adamax", "Nadam", "Adagrad", "Adadelta", "RMSprop", "Ftrl", "Lion", "Lamb", "Adafactor",
    # schedules
    "ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay",
    "CosineDecayRestarts",
)  # fmt: skip

OPTAX = (
    # losses
    "sigmoid_binary_cross_entropy", "sigmoid_focal_loss", "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels", "safe_softmax_cross_entropy", "poly_loss_cross_entropy",
    "hinge_loss", "perceptron_loss", "multiclass_hinge_loss", "multiclass_perceptron_loss", "sparsemax_loss",
    "multiclass_sparsemax_loss", "kl_divergence", "kl_divergence_with_log_targets", "convex_kl_divergence",
    "generalized_kl_divergence", "ctc_loss", "squared_error", "l2_loss", "huber_loss", "log_cosh",
    "cosine_similarity", "cosine_distance", "dice_loss", "binary_dice_loss", "multiclass_generalized_dice_loss",
    "ntxent", "triplet_margin_loss", "ranking_softmax_loss",
    # optimizers
    "sgd", "adam", "adamw", "amsgrad", "adamax", "adamaxw", "nadam", "nadamw", "radam", "adagrad", "adadelta",
    "rmsprop", "rprop", "lamb", "lars", "lion", "novograd", "yogi", "adabelief", "adan", "sign_sgd", "signum",
    # schedules
    "constant_schedule", "linear_schedule", "polynomial_schedule", "exponential_decay",
    "piecewise_constant_schedule", "piecewise_interpolate_schedule", "cosine_decay_schedule",
    "cosine_onecycle_schedule", "linear_onecycle_schedule", "warmup_constant_schedule",
    "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule", "sgdr_schedule", "join_schedules",
)  # fmt: skip

CAFFE = (
    # layer types
    "EuclideanLoss", "SoftmaxWithLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "ContrastiveLoss", "InfogainLoss",
    "MultinomialLogisticLoss",
    # solver types
    "SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam",
    # lr_policy values
    "fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid",
)  # fmt: skip

LISTED = {"torch": TORCH, "keras": KERAS, "optax": OPTAX, "caffe": CAFFE}
CASES = [(fw, name) for fw, names in LISTED.items() for name in names]


@pytest.mark.parametrize(("framework", "name"), CASES, ids=[f"{fw}-{n}" for fw, n in CASES])
def test_listed_name_resolves_under_its_convention(framework: str, name: str) -> None:
    with warnings.catch_warnings():
        # a name the framework deprecated resolves with the framework's DeprecationWarning (tested below)
        warnings.simplefilter("ignore", DeprecationWarning)
        found = lossbridge.spec(name, convention=framework)
        assert framework in found.conventions, f"{name!r} -> {found.name!r} has no {framework} convention"
        via = default_registry().resolve(name, framework).via
        assert via == f"{framework} name", f"{name!r} resolved through {via!r}, not a {framework} name"
        assert lossbridge.get(name, convention=framework) is not None


@pytest.mark.parametrize(
    ("framework", "name", "advice"),
    [
        ("optax", "optimistic_adam", "use `optimistic_adam_v2` instead"),
        ("optax", "convex_kl_divergence", "use generalized_kl_divergence"),
    ],
)
def test_deprecated_framework_name_warns_as_the_framework_does(framework: str, name: str, advice: str) -> None:
    with pytest.warns(DeprecationWarning, match=re.escape(advice)):
        deprecated = lossbridge.get(name, convention=framework)
    assert deprecated is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lossbridge.get(name)  # lossbridge's own spelling is not deprecated


@pytest.mark.parametrize(
    ("framework", "spelling", "canonical"),
    [
        ("torch", "bce_with_logits_loss", "BCEWithLogitsLoss"),
        ("torch", "BCEWithLogits", "BCEWithLogitsLoss"),
        ("torch", "smooth-l1", "SmoothL1Loss"),
        ("keras", "binary_crossentropy", "BinaryCrossentropy"),
        ("keras", "kl-divergence", "KLDivergence"),
        ("optax", "SigmoidBinaryCrossEntropy", "sigmoid_binary_cross_entropy"),
        ("caffe", "euclidean_loss", "EuclideanLoss"),
        ("caffe", "MULTISTEP", "multistep"),
    ],
)
def test_names_match_case_and_separator_insensitively(framework: str, spelling: str, canonical: str) -> None:
    registry = default_registry()
    a, b = registry.resolve(spelling, framework), registry.resolve(canonical, framework)
    assert a.spec.name == b.spec.name
    assert dict(a.preset) == dict(b.preset)


def test_hinge_collision_caffe_vs_optax() -> None:
    caffe = lossbridge.spec("HingeLoss", convention="caffe")
    optax = lossbridge.spec("hinge_loss", convention="optax")
    assert caffe.name != optax.name
    # Caffe's HingeLoss (hinge_loss_layer.cpp, L1 norm): per sample sum_k max(0, 1 - t_k s_k) with
    # t_k = +1 for the label, -1 otherwise; summed over samples and divided by the batch size.
    scores = np.array([[0.3, -0.2], [0.5, 2.0]])
    labels = np.array([0, 1])
    expected = (max(0, 1 - 0.3) + max(0, 1 - 0.2) + max(0, 1 + 0.5) + max(0, 1 - 2.0)) / 2
    got = lossbridge.get("HingeLoss", convention="caffe")(labels, scores)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Optax's hinge_loss(scores, labels): elementwise max(0, 1 - y s), labels in {-1, 1}, unreduced.
    got = lossbridge.get("hinge_loss", convention="optax")(np.array([1.0, -1.0]), np.array([0.3, -0.2]))
    np.testing.assert_allclose(got, [0.7, 0.8], rtol=1e-12)


def test_cosine_similarity_sign_keras_vs_optax() -> None:
    a = np.array([[1.0, 2.0, 2.0]])
    b = np.array([[2.0, 1.0, 2.0]])
    cos = 8.0 / 9.0  # (2 + 2 + 4) / (3 * 3)
    keras = lossbridge.get("CosineSimilarity", convention="keras", dtype="float64")(a, b)
    optax = lossbridge.get("cosine_similarity", convention="optax")(a, b)
    np.testing.assert_allclose(keras, -cos, rtol=1e-12)  # Keras: a loss to minimise, -cos
    np.testing.assert_allclose(optax, [cos], rtol=1e-12)  # Optax: the similarity itself, +cos
    distance = lossbridge.get("cosine_distance", convention="optax")(a, b)
    np.testing.assert_allclose(distance, [1.0 - cos], rtol=1e-12)


def test_kl_divergence_input_forms_keras_optax_torch() -> None:
    target = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    pred = np.array([[0.3, 0.3, 0.4], [0.2, 0.5, 0.3]])
    per_sample = np.array([sum(t * np.log(t / p) for t, p in zip(row_t, row_p)) for row_t, row_p in zip(target, pred)])
    assert {
        lossbridge.spec("KLDivergence", convention="keras").name,
        lossbridge.spec("kl_divergence", convention="optax").name,
        lossbridge.spec("KLDivLoss", convention="torch").name,
    } == {"kl_divergence"}  # one formula, three conventions
    # Keras KLDivergence(y_true, y_pred): probabilities; sum over classes, mean over the batch.
    keras = lossbridge.get("KLDivergence", convention="keras", dtype="float64")(target, pred)
    np.testing.assert_allclose(keras, per_sample.mean(), rtol=1e-12)
    # Optax kl_divergence(log_predictions, targets): log-predictions; per sample, unreduced.
    optax = lossbridge.get("kl_divergence", convention="optax")(target, np.log(pred))
    np.testing.assert_allclose(optax, per_sample, rtol=1e-12)
    # Optax kl_divergence_with_log_targets: both in log space.
    optax_log = lossbridge.get("kl_divergence_with_log_targets", convention="optax")(np.log(target), np.log(pred))
    np.testing.assert_allclose(optax_log, per_sample, rtol=1e-12)
    # torch KLDivLoss(input, target): log-input; default "mean" averages over every element.
    torch = lossbridge.get("KLDivLoss", convention="torch")(target, np.log(pred))
    np.testing.assert_allclose(torch, per_sample.sum() / target.size, rtol=1e-12)
    torch_bm = lossbridge.get("KLDivLoss", convention="torch", reduction="batchmean")(target, np.log(pred))
    np.testing.assert_allclose(torch_bm, per_sample.mean(), rtol=1e-12)


def test_loss_catalog_size() -> None:
    losses = lossbridge.catalog(kind="loss")
    assert 35 <= len(losses) <= 50, [entry.name for entry in losses]
