"""Conventions: the parameter values and formula variants that reproduce one framework.

A convention is data over the one definition in :mod:`lossbridge.spec`, never a second copy of a
formula. Each spec carries a mapping ``{framework: Convention}``; ``convention=None`` means
lossbridge's own cited defaults (the spec's parameter defaults and :data:`LOSSBRIDGE_REDUCTION`).

Framework-wide loss behaviour (default reduction, whether elementwise losses are first averaged
over the last axis, how a weighted mean is normalized) is a :class:`Reduction`; the presets below
hold what each framework computes, as read from its own source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "CAFFE_REDUCTION",
    "FRAMEWORK_KWARGS",
    "INPUT_RULES",
    "KERAS_REDUCTION",
    "LOSSBRIDGE_REDUCTION",
    "OPTAX_REDUCTION",
    "TORCH_REDUCTION",
    "VERIFIED_VERSIONS",
    "Convention",
    "InputRules",
    "NativeInputs",
    "Reduction",
]


@dataclass(frozen=True)
class Reduction:
    """How per-element loss values become the number a framework reports.

    Attributes
    ----------
    default:
        The reduction used when the caller names none.
    feature_mean:
        Elementwise losses are first averaged over the last axis, giving one value per sample
        (Keras: ``mean(..., axis=-1)``); otherwise every element is its own term (PyTorch).
    normalize_by:
        ``"weights"``: a weighted mean divides by the sum of the weights (PyTorch's
        ``CrossEntropyLoss(weight=...)``, scikit-learn's ``sample_weight``); ``"count"``: it divides by
        the number of terms (Keras's ``sum_over_batch_size``).
    mask_zero:
        Terms whose value is exactly 0 are masked out of the mean's denominator (Keras's
        ``set_keras_mask(loss, loss > 0)`` of ``Circle``): a mean divides by the number (or the
        summed weights) of the non-zero terms, and a batch of zeros gives 0, not 0/0.
    mean_params:
        Spec parameter values that the ``"mean"`` reduction implies under this framework (PyTorch's
        ``CTCLoss(reduction='mean')`` divides each sequence's loss by its target length before the
        batch mean: ``{"normalize_by_length": True}``); ``"sum"`` and ``"none"`` keep the
        convention's values. Applied by :meth:`lossbridge.bound.BoundLoss.spec_params`.
    """

    default: Literal["mean", "sum", "none"] = "mean"
    feature_mean: bool = False
    normalize_by: Literal["weights", "count"] = "weights"
    mask_zero: bool = False
    mean_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean_params", MappingProxyType(dict(self.mean_params)))

    def __hash__(self) -> int:
        return hash((self.default, self.feature_mean, self.normalize_by, self.mask_zero,
                     tuple(sorted(self.mean_params.items()))))


LOSSBRIDGE_REDUCTION = Reduction("mean", feature_mean=False, normalize_by="weights")
TORCH_REDUCTION = Reduction("mean", feature_mean=False, normalize_by="weights")
KERAS_REDUCTION = Reduction("mean", feature_mean=True, normalize_by="count")
OPTAX_REDUCTION = Reduction("none", feature_mean=False, normalize_by="weights")
CAFFE_REDUCTION = Reduction("mean", feature_mean=False, normalize_by="count")

_PRESETS = {
    "torch": TORCH_REDUCTION,
    "keras": KERAS_REDUCTION,
    "optax": OPTAX_REDUCTION,
    "caffe": CAFFE_REDUCTION,
}


@dataclass(frozen=True)
class NativeInputs:
    """A framework's own argument list for a loss, as data the shared input path maps onto the spec.

    A backend places the positional arrays of a call in the spec's input slots by role (prediction
    and target first, in its own order; the rest in spec order). ``slots`` names what the framework
    passes in each slot, and ``sources`` how each spec input is made from those native arguments,
    with one of a few forms, applied over the Array API by :mod:`lossbridge._inputs` (so every
    backend maps a native call the same way, and autodiff or the spec's gradient flows back through
    the mapping):

    - ``("same", arg)``: the argument as it is;
    - ``("time_major", arg)``: ``(T, N, ...)`` with its first two axes swapped (PyTorch's CTC ``log_probs``);
    - ``("lengths", arg)``: a length per sequence ``(N,)`` (integers), as right-padding indicators
      over the prediction's frames ``(N, T)`` (1 = padded);
    - ``("paddings", arg)``: padding indicators ``(N, S)`` of any length ``S``, as lengths, as above;
    - ``("count", arg)``: the number of entries of ``arg`` (labels ``(N, S)``) that are not
      ``pad_value``, as above (Keras's CTC label length);
    - ``("none", arg)``: nothing padded: zeros ``(N, T)``;
    - ``("labels", arg, lengths_arg)``: label sequences right-padded to the frame count ``T``
      (truncated or zero-padded), from ``(N, S)`` padded ones or, when ``arg`` is 1-D, from the
      concatenation of every sequence, split by the lengths in ``lengths_arg`` (PyTorch).

    A sequence whose label length exceeds the frame count has no alignment: all of its frames are
    marked padded (``frames``), so the spec reports it as such.

    Attributes
    ----------
    slots:
        Per spec input (spec order), the native argument a backend puts there; ``""`` for one the
        native call does not pass (a backend fills the slot with ``None``).
    sources:
        Per spec input, ``(form, native argument[, lengths argument])``.
    pad_value:
        The label value that is padding, for the ``"count"`` form.
    frames:
        The spec input holding the frame paddings, marked all padded for sequences without an alignment.
    """

    slots: tuple[str, ...]
    sources: Mapping[str, tuple[str, ...]]
    pad_value: int = 0
    frames: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", tuple(self.slots))
        object.__setattr__(self, "sources", MappingProxyType({k: tuple(v) for k, v in self.sources.items()}))

    def __hash__(self) -> int:
        return hash((self.slots, tuple(sorted(self.sources.items())), self.pad_value, self.frames))

    @property
    def arity(self) -> int:
        """How many arrays the native call passes (the slots it fills come first in every backend order)."""
        return sum(1 for s in self.slots if s)


@dataclass(frozen=True)
class InputRules:
    """Which input forms a framework accepts for a loss, applied by the shared core path.

    Every backend calls the same path (:meth:`lossbridge.bound.BoundLoss.prepare`), so a rule
    behaves identically on NumPy, torch, JAX and TensorFlow.

    Attributes
    ----------
    match_rank:
        A target one rank off the prediction is squeezed (a trailing axis of size 1) or expanded
        (Keras's ``squeeze_or_expand_to_same_rank``): ``(N, 1)`` targets against ``(N,)``
        predictions, ``(N,)`` labels against ``(N, 1)`` outputs.
    class_axis:
        Where the class axis of inputs with more than two dimensions is: ``1`` for PyTorch's
        ``(N, C, d1, ...)``, ``-1`` for the spec's own layout.
    cast_labels:
        Floating class indices holding whole numbers are cast to integers (Keras's sparse
        cross-entropy); non-integral ones are an error (Keras truncates them silently).
    cast_inputs:
        Integer arrays where floats are expected (predictions, regression or binary targets) are
        cast to the compute dtype (Keras) instead of refused.
    compute_dtype:
        ``None``: compute in the prediction's floating dtype (float16/bfloat16 in float32) and
        return that dtype (PyTorch, Optax, lossbridge). A dtype name: compute in it and return it
        whatever the inputs are (Keras: the loss's ``dtype``, float32 unless given).
    broadcast_weights:
        ``sample_weight`` with trailing axes of size 1 (``(N, 1)``, ``(N, T, 1)``) is accepted and
        broadcast, as Keras does.
    logits_behind:
        Graph ops whose input is read as logits when the prediction comes out of them (Keras on
        TensorFlow reads the logits behind a ``Softmax``/``Sigmoid`` output). Only a backend that has a
        graph can apply it; the TensorFlow backend does, from this declaration.
    check_ranges:
        Floating inputs are checked against their domain's range (probabilities in [0, 1], positive
        values) when values are checked. ``False``: the framework computes whatever it is given
        (Keras: ``MeanSquaredLogarithmicError`` clips negative targets, ``Dice`` takes any label
        values), so out-of-range values are accepted and computed by the formula; class indices are
        still checked.
    native:
        The framework's own argument list for this loss when it differs from the spec's inputs
        (:class:`NativeInputs`: CTC's time-major log-probabilities with lengths, Keras's two-array
        CTC); ``None``: the spec's inputs.
    expand_rank:
        Whichever of the prediction and the target is exactly one rank lower than the other gets a
        trailing axis of size 1 (Optax's ``dice_loss``: ``(N, H, W)`` logits against ``(N, H, W, 1)``
        masks, or the other way round); the gradient comes back without that axis. Unlike
        ``match_rank`` it never squeezes, and it expands the prediction too.
    """

    match_rank: bool = False
    class_axis: int = -1
    cast_labels: bool = False
    cast_inputs: bool = False
    compute_dtype: str | None = None
    broadcast_weights: bool = False
    logits_behind: tuple[str, ...] = ()
    check_ranges: bool = True
    native: NativeInputs | None = None
    expand_rank: bool = False


#: Each framework's input rules; a convention may override them (``Convention.inputs``).
INPUT_RULES: Mapping[str | None, InputRules] = MappingProxyType(
    {
        None: InputRules(),
        "torch": InputRules(class_axis=1),
        "keras": InputRules(
            match_rank=True,
            cast_labels=True,
            cast_inputs=True,
            compute_dtype="float32",
            broadcast_weights=True,
            check_ranges=False,
            logits_behind=("Softmax", "Sigmoid"),
        ),
        "optax": InputRules(check_ranges=False),  # Optax computes whatever it is given
        "caffe": InputRules(),
    }
)

#: Each framework's keyword names for parameters every spec of a kind shares, mapped onto the
#: spec's names (a tuple splits a pair, as torch's ``betas``). Applied only when the spec has the
#: target parameter(s) and not a parameter of the framework's name itself.
FRAMEWORK_KWARGS: Mapping[str, Mapping[str, str | tuple[str, ...]]] = MappingProxyType(
    {
        "torch": {"weight": "class_weight", "betas": ("beta_1", "beta_2")},
        "keras": {"learning_rate": "lr", "epsilon": "eps", "ignore_class": "ignore_index"},
        "optax": {"learning_rate": "lr", "b1": "beta_1", "b2": "beta_2"},
        "caffe": {"base_lr": "lr", "ignore_label": "ignore_index"},
    }
)

#: The framework versions each convention was verified against (``>=`` low, ``<`` high). A
#: backend materializing a convention with an installed framework outside the range warns once.
VERIFIED_VERSIONS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "torch": ("torch", "2.4", "2.14"),
        "keras": ("keras", "3.0", "3.16"),
        "optax": ("optax", "0.2.3", "0.3"),
    }
)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Convention:
    """One framework's behaviour for one spec.

    Attributes
    ----------
    framework:
        ``"torch"``, ``"keras"``, ``"optax"``, ``"caffe"`` or a plugin's own name.
    native:
        The framework object this reproduces, e.g. ``"torch.optim.Adam"``.
    params:
        Parameter values under this convention; they replace the spec's defaults, and a caller's
        own keyword arguments replace them in turn.
    notes:
        How this framework differs from lossbridge's default, in a sentence or two.
    reduction:
        For losses: the framework's :class:`Reduction`; ``None`` takes the framework preset.
    hyper_dtype:
        For optimizers: the dtype the framework keeps scalar hyperparameters in, whatever the
        parameters' dtype (Keras: ``"float32"``). Adapters round hyperparameters through it.
    rounded:
        For optimizers: the hyperparameters the framework actually keeps in ``hyper_dtype``
        (Keras: ``learning_rate`` is a float32 variable, but ``epsilon`` is added as an exact Python
        float); ``None`` rounds every non-static float hyperparameter.
    names:
        The framework's own names that resolve to this spec under this convention, each with the
        parameter values it presets: ``{"BCELoss": {}, "BCEWithLogitsLoss": {"from_logits": True}}``.
        Matched case- and separator-insensitively; under ``convention=None`` they resolve too
        (to lossbridge's defaults plus the preset) unless an alias or another spec claims the key.
    kwargs:
        The framework's keyword names for this spec's parameters, when they differ:
        ``{"beta": "delta"}`` lets ``SmoothL1Loss(beta=...)`` set ``delta``. Framework-wide renames
        (``learning_rate`` -> ``lr``) live in :data:`FRAMEWORK_KWARGS`. A tuple splits a pair
        (``{"eps": ("eps1", "eps2")}``); a name with a leading ``-`` receives the negated value
        (Optax's adafactor ``{"decay_rate": "-beta2_decay"}``: its decay exponent has the other sign).
    inputs:
        For losses: the :class:`InputRules` (accepted input forms, compute dtype); ``None`` takes
        the framework preset from :data:`INPUT_RULES`.
    deprecated:
        Names of ``names`` the framework has deprecated, each with the framework's own advice
        (``{"optimistic_adam": "use `optimistic_adam_v2` instead"}``): resolving one under this
        convention emits a :class:`DeprecationWarning` carrying it, as the framework does.
    state:
        For optimizers: the framework's name of each spec state slot whose value is the same
        quantity (``{"m": "exp_avg", "v": "exp_avg_sq"}`` for ``torch.optim.Adam``; Keras: the
        optimizer attribute holding the per-variable list, ``"_momentums"``; Optax: the state field,
        ``"mu"``), or ``(name, scale)`` when the framework's value is ``scale`` times the spec's
        (Keras's RMSprop momentum is the negated buffer: ``("_momentums", -1.0)``).
        :func:`lossbridge.save_state` reads a native optimizer through it; a slot without an entry
        makes that native optimizer's state unreadable (refused, never guessed).
    slot_dtypes:
        For optimizers: the framework's keyword options that set the dtype one state slot is kept in,
        each mapped to the spec's slot name (Optax: ``{"mu_dtype": "m"}``, SGD's
        ``{"accumulator_dtype": "momentum"}``). An adapter that offers the option (the JAX backend)
        stores that slot in the given dtype; ``None`` keeps the parameter's dtype.
    masks:
        For optimizers: the framework's keyword options that choose per parameter tensor where some
        hyperparameters take other values, each mapped to those values (Optax's
        ``{"mask": {"weight_decay": 0.0}}``: a tree of booleans, or a callable of the parameters,
        and tensors whose entry is False run the same spec with no weight decay).
    """

    framework: str
    native: str
    params: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""
    reduction: Reduction | None = None
    hyper_dtype: str | None = None
    rounded: tuple[str, ...] | None = None
    names: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    kwargs: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    inputs: InputRules | None = None
    deprecated: Mapping[str, str] = field(default_factory=dict)
    state: Mapping[str, str | tuple[str, float]] = field(default_factory=dict)
    slot_dtypes: Mapping[str, str] = field(default_factory=dict)
    masks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slot_dtypes", _frozen(self.slot_dtypes))
        object.__setattr__(self, "masks", _frozen({k: _frozen(v) for k, v in self.masks.items()}))
        object.__setattr__(self, "params", _frozen(self.params))
        object.__setattr__(self, "deprecated", _frozen(self.deprecated))
        object.__setattr__(self, "state", _frozen(self.state))
        unknown = sorted(set(self.deprecated) - set(self.names))
        if unknown:
            raise ValueError(f"Convention.deprecated names {unknown} that are not in names")
        object.__setattr__(self, "names", _frozen({k: _frozen(v) for k, v in self.names.items()}))
        object.__setattr__(self, "kwargs", _frozen(self.kwargs))
        if self.rounded is not None:
            object.__setattr__(self, "rounded", tuple(self.rounded))
        if self.reduction is None:
            preset = _PRESETS.get(self.framework, LOSSBRIDGE_REDUCTION)
            object.__setattr__(self, "reduction", preset)
        if self.inputs is None:
            object.__setattr__(self, "inputs", INPUT_RULES.get(self.framework, INPUT_RULES[None]))
