"""Sequence losses: connectionist temporal classification (CTC).

The spec takes one input form, batch-major with padding masks (Optax's form, the labels padded to the
number of frames): ``labels (N, T)`` integers, ``logits (N, T, C)``, ``label_paddings (N, T)`` and
``logit_paddings (N, T)`` (1 marks a padded entry). Every framework's own call maps onto it without
loss, as convention data (:class:`~lossbridge.conventions.NativeInputs`, applied by the shared input
path on every backend): a label sequence is never longer than its input (else no alignment exists),
lengths are suffix paddings, and PyTorch's time-major ``(T, N, C)`` is a transpose. The negative
log-likelihood comes from the log-space forward (alpha) recursion of Graves et al. over the static time
axis; the closed-form gradient from the backward (beta) recursion over the same axis and the posterior
state occupancy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lossbridge.conventions import INPUT_RULES, TORCH_REDUCTION, Convention, InputRules, NativeInputs
from lossbridge.errors import InputError
from lossbridge.spec._domain import DOMAINS, Domain, register_domain
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import log_softmax, one_hot
from lossbridge.spec._params import Param

__all__ = ["CTC", "KERAS_CTC", "OPTAX_CTC", "SPECS", "TORCH_CTC", "ctc", "ctc_vjp"]

#: A finite log(0): impossible states stay finite, so no gradient meets ``-inf - (-inf)``.
LOG_ZERO = -1e30


# -- domains: valid CTC cases for the conformance kit ---------------------------------------------
def _labels(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    """Labels in [1, C) (class 0 is the default blank), shape ``(N, T)``."""
    return rng.integers(1, max(shape[-1], 2), size=shape[:-1]).astype(np.int64)


def _suffix(lengths: np.ndarray, frames: int, dtype: Any) -> np.ndarray:
    return (np.arange(frames)[None, :] >= lengths[:, None]).astype(dtype)


def _label_paddings(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    """Right padding leaving 1 to T // 2 labels: always alignable in T - 1 frames."""
    n, frames = shape[0], shape[-2]
    return _suffix(rng.integers(1, max(frames // 2, 1) + 1, size=n), frames, dtype)


def _logit_paddings(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    """Right padding of at most one frame."""
    n, frames = shape[0], shape[-2]
    return _suffix(frames - rng.integers(0, 2, size=n), frames, dtype)


def _log_probs(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    z = 2.0 * rng.normal(size=shape)
    z = z - z.max(axis=-1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(dtype)


def _check_mask(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    if not bool(xp.all((x == 0) | (x == 1))):
        raise InputError(f"{name}: expected padding indicators in {{0, 1}}, got other values")


for _d in (
    Domain("ctc_labels", "integer label sequences (N, T), padded to the frame count", _labels,
           shape="batch", integer=True),
    Domain("ctc_label_paddings", "label padding indicators (N, T) in {0, 1}, 1 = padded", _label_paddings,
           _check_mask, shape="batch"),
    Domain("ctc_logit_paddings", "frame padding indicators (N, T) in {0, 1}, 1 = padded", _logit_paddings,
           _check_mask, shape="batch"),
    Domain("log_probability", "log-probabilities over the last axis (log-softmax rows)", _log_probs),
):
    if _d.name not in DOMAINS:
        register_domain(_d)


# -- the lattice ------------------------------------------------------------------------------------
def _shift(x: Any, k: int, *, xp: Any) -> Any:
    """``x`` moved ``k`` states to the right along the last axis, LOG_ZERO shifted in."""
    fill = xp.full_like(x[:, :k], LOG_ZERO)  # (N, k) with N possibly unknown (None) when traced
    return xp.concat([fill, x[:, :-k]], axis=-1)


def _ahead(x: Any, k: int, *, xp: Any) -> Any:
    """``x`` moved ``k`` states to the left along the last axis (state ``s`` holds ``x[s + k]``)."""
    fill = xp.full_like(x[:, :k], LOG_ZERO)
    return xp.concat([x[:, k:], fill], axis=-1)


def _emissions(labels: Any, logp: Any, chosen: Any, blank: int, *, xp: Any) -> Any:
    """Log-probabilities of the blank-interleaved label sequence, shape ``(N, T, 2S + 1)``."""
    frames = logp.shape[1]
    emit = xp.matmul(logp, xp.permute_dims(chosen, (0, 2, 1)))  # (N, T, S)
    blanks = xp.broadcast_to(logp[:, :, blank : blank + 1], tuple(emit.shape))
    pairs = xp.stack([blanks, emit], axis=-1)  # blank before each label
    states = xp.reshape(pairs, (-1, frames, 2 * labels.shape[1]))
    return xp.concat([states, logp[:, :, blank : blank + 1]], axis=-1)


def _emissions_grad(g_emit: Any, chosen: Any, blank: int, *, xp: Any) -> Any:
    """The transpose of :func:`_emissions`: d/d log p from d/d emissions, shape ``(N, T, C)``."""
    _, frames, width = g_emit.shape
    pairs = xp.reshape(g_emit[:, :, : width - 1], (-1, frames, (width - 1) // 2, 2))
    g_blank = xp.sum(pairs[..., 0], axis=-1) + g_emit[:, :, width - 1]
    at_blank = xp.astype(xp.arange(chosen.shape[-1]) == blank, g_emit.dtype)
    return xp.matmul(pairs[..., 1], chosen) + xp.expand_dims(g_blank, axis=-1) * at_blank


def _skips(labels: Any, keep: Any, *, xp: Any) -> Any:
    """Where the two-state skip (label to the next, different, label) is allowed, ``(N, 2S + 1)``."""
    differs = xp.concat([xp.zeros_like(keep[:, :1]), labels[:, 1:] != labels[:, :-1]], axis=-1)
    at_label = xp.stack([xp.zeros_like(differs), differs], axis=-1)
    flat = xp.reshape(at_label, (-1, 2 * labels.shape[1]))
    return xp.concat([flat, xp.zeros_like(flat[:, :1])], axis=-1)


def _log_add3(a: Any, b: Any, c: Any, *, xp: Any) -> Any:
    return xp.logaddexp(xp.logaddexp(a, b), c)


def _alphas(emit: Any, skip: Any, frame_pad: Any, *, xp: Any) -> list[Any]:
    """The log forward variables after each frame (emission included); padded frames leave them unchanged."""
    _, frames, width = emit.shape
    start = xp.arange(width) == 0
    alpha = xp.where(start, xp.zeros_like(emit[:, 0, :]), xp.full_like(emit[:, 0, :], LOG_ZERO))
    out = []
    for t in range(frames):  # static: T is a shape
        two_back = xp.where(skip, _shift(alpha, 2, xp=xp), xp.full_like(alpha, LOG_ZERO))
        step = _log_add3(alpha, _shift(alpha, 1, xp=xp), two_back, xp=xp) + emit[:, t, :]
        alpha = xp.where(frame_pad[:, t : t + 1] > 0, alpha, step)
        out.append(alpha)
    return out


def _betas(emit: Any, skip: Any, frame_pad: Any, final: Any, *, xp: Any) -> list[Any]:
    """The log backward variables after each frame: log p(rest of the labels | state s after frame t)."""
    frames = emit.shape[1]
    beta = xp.where(final, xp.zeros_like(emit[:, 0, :]), xp.full_like(emit[:, 0, :], LOG_ZERO))
    skip_ahead = xp.concat([skip[:, 2:], xp.zeros_like(skip[:, :2])], axis=-1)  # s -> s + 2 allowed
    out = [beta] * frames
    for t in range(frames - 1, -1, -1):  # static: T is a shape
        out[t] = beta
        y = beta + emit[:, t, :]
        two_ahead = xp.where(skip_ahead, _ahead(y, 2, xp=xp), xp.full_like(y, LOG_ZERO))
        step = _log_add3(y, _ahead(y, 1, xp=xp), two_ahead, xp=xp)
        beta = xp.where(frame_pad[:, t : t + 1] > 0, beta, step)
    return out


def _log_sum_exp(x: Any, *, xp: Any) -> Any:
    m = xp.max(x, axis=-1, keepdims=True)
    return xp.squeeze(m, axis=-1) + xp.log(xp.sum(xp.exp(x - m), axis=-1))


def _feasible(labels: Any, keep: Any, frame_pad: Any, *, xp: Any) -> Any:
    """An alignment exists: label count plus repeated neighbours fits in the unpadded frames."""
    repeats = xp.sum(xp.astype((labels[:, 1:] == labels[:, :-1]) & keep[:, 1:], frame_pad.dtype), axis=-1)
    need = xp.sum(xp.astype(keep, frame_pad.dtype), axis=-1) + repeats
    return need <= xp.sum(1.0 - frame_pad, axis=-1)


@dataclass(frozen=True)
class _Lattice:
    """What the forward and backward recursions share, built once from the inputs."""

    logp: Any  # (N, T, C) log-probabilities
    chosen: Any  # (N, S, C) one-hot labels
    emit: Any  # (N, T, 2S + 1)
    skip: Any  # (N, 2S + 1) bool
    final: Any  # (N, 2S + 1) bool: the last label or the blank after it
    feasible: Any  # (N,) bool
    length: Any  # (N,) label count, in the prediction's dtype


def _lattice(labels: Any, logits: Any, label_paddings: Any, logit_paddings: Any, blank: int, from_logits: bool,
             *, xp: Any) -> _Lattice:
    logp = log_softmax(logits, xp=xp) if from_logits else logits
    keep = label_paddings == 0
    chosen = one_hot(labels, logp.shape[-1], logp.dtype, xp=xp)
    count = xp.expand_dims(xp.sum(xp.astype(keep, labels.dtype), axis=-1, dtype=labels.dtype), axis=-1)  # int32 stays
    states = xp.arange(2 * labels.shape[1] + 1, dtype=labels.dtype)
    final = (states == 2 * count) | (states == 2 * count - 1)
    return _Lattice(
        logp, chosen, _emissions(labels, logp, chosen, blank, xp=xp), _skips(labels, keep, xp=xp), final,
        _feasible(labels, keep, logit_paddings, xp=xp), xp.sum(xp.astype(keep, logp.dtype), axis=-1),
    )


def _log_likelihood(lat: _Lattice, alpha_last: Any, *, xp: Any) -> Any:
    return _log_sum_exp(xp.where(lat.final, alpha_last, xp.full_like(alpha_last, LOG_ZERO)), xp=xp)


def _scale(lat: _Lattice, normalize_by_length: bool, *, xp: Any) -> Any:
    """The factor each sequence's negative log-likelihood is multiplied by."""
    one = xp.ones_like(lat.length)
    return one / xp.maximum(lat.length, one) if normalize_by_length else one


def ctc(
    labels: Any,
    logits: Any,
    label_paddings: Any,
    logit_paddings: Any,
    /,
    *,
    xp: Any,
    blank: int = 0,
    from_logits: bool = True,
    zero_infinity: bool = False,
    normalize_by_length: bool = False,
) -> Any:
    r"""CTC negative log-likelihood per sequence.

    .. math::
        \ell = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_t p_t(\pi_t), \quad
        \alpha_t(s) = p_t(l'_s)\,\big[\alpha_{t-1}(s) + \alpha_{t-1}(s-1)
        + [l'_s \ne b,\ l'_s \ne l'_{s-2}]\,\alpha_{t-1}(s-2)\big]

    over the blank-interleaved labels :math:`l'` (length :math:`2L + 1`), with
    :math:`\ell = -\log(\alpha_T(2L) + \alpha_T(2L - 1))`; padded frames are skipped; with
    ``normalize_by_length`` the value is divided by :math:`\max(L, 1)`.

    >>> import numpy as np
    >>> logits = np.zeros((1, 2, 2))  # two frames, classes {blank, a}, uniform
    >>> labels, lpad, fpad = np.array([[1, 1]]), np.array([[0.0, 1.0]]), np.zeros((1, 2))
    >>> np.round(ctc(labels, logits, lpad, fpad, xp=np), 6).tolist()  # 3 of 4 paths give "a"
    [0.287682]
    """
    if logits.ndim == 2:  # one unbatched sequence (T, C) (PyTorch's unbatched CTCLoss): a batch of one
        one = [xp.expand_dims(x, axis=0) for x in (labels, logits, label_paddings, logit_paddings)]
        return xp.squeeze(ctc(*one, xp=xp, blank=blank, from_logits=from_logits, zero_infinity=zero_infinity,
                              normalize_by_length=normalize_by_length), axis=0)
    lat = _lattice(labels, logits, label_paddings, logit_paddings, blank, from_logits, xp=xp)
    alpha = _alphas(lat.emit, lat.skip, logit_paddings, xp=xp)[-1]
    nll = -_log_likelihood(lat, alpha, xp=xp) * _scale(lat, normalize_by_length, xp=xp)
    bad = xp.zeros_like(nll) if zero_infinity else xp.full_like(nll, float("inf"))
    return xp.where(lat.feasible, nll, bad)


def ctc_vjp(
    labels: Any,
    logits: Any,
    label_paddings: Any,
    logit_paddings: Any,
    cotangent: Any,
    /,
    *,
    xp: Any,
    blank: int = 0,
    from_logits: bool = True,
    zero_infinity: bool = False,
    normalize_by_length: bool = False,
) -> tuple[Any]:
    r"""d loss / d logits from the forward-backward posteriors.

    .. math::
        \frac{\partial \ell}{\partial \log p_t(c)} = -\gamma_t(c), \quad
        \gamma_t(c) = \sum_{s: l'_s = c} \frac{\alpha_t(s)\,\beta_t(s)}{p(y \mid x)}, \qquad
        \frac{\partial \ell}{\partial z_t(c)} = p_t(c) - \gamma_t(c) \text{ from logits}

    with :math:`\beta_t(s)` the probability of the remaining labels from state :math:`s` after frame
    :math:`t`. Padded frames and sequences without an alignment get a zero gradient.
    """
    if logits.ndim == 2:  # one unbatched sequence (T, C): a batch of one
        one = [xp.expand_dims(x, axis=0) for x in (labels, logits, label_paddings, logit_paddings, cotangent)]
        (g,) = ctc_vjp(*one, xp=xp, blank=blank, from_logits=from_logits, zero_infinity=zero_infinity,
                       normalize_by_length=normalize_by_length)
        return (xp.squeeze(g, axis=0),)
    lat = _lattice(labels, logits, label_paddings, logit_paddings, blank, from_logits, xp=xp)
    alphas = _alphas(lat.emit, lat.skip, logit_paddings, xp=xp)
    betas = _betas(lat.emit, lat.skip, logit_paddings, lat.final, xp=xp)
    used = xp.expand_dims((logit_paddings == 0) & xp.expand_dims(lat.feasible, axis=-1), axis=-1)
    joint = xp.stack(alphas, axis=1) + xp.stack(betas, axis=1)  # log alpha_t(s) beta_t(s), (N, T, 2S + 1)
    # each used frame's states share p(y | x): normalizing by the frame's own sum (not by the total
    # from the last alpha) cancels the rounding the two recursions share, so float32 posteriors of a
    # sure alignment are 1 to the last bit
    log_occupancy = joint - xp.expand_dims(_log_sum_exp(joint, xp=xp), axis=-1)
    occupancy = xp.exp(xp.where(used, log_occupancy, xp.full_like(log_occupancy, LOG_ZERO)))
    weight = xp.where(lat.feasible, cotangent * _scale(lat, normalize_by_length, xp=xp), xp.zeros_like(cotangent))
    g_logp = _emissions_grad(-xp.reshape(weight, (-1, 1, 1)) * occupancy, lat.chosen, blank, xp=xp)
    if not from_logits:
        return (g_logp,)
    # the posteriors of a used frame sum to 1 exactly: the softmax term takes that 1, not a rounded sum
    frame_weight = xp.reshape(weight, (-1, 1, 1)) * xp.astype(used, g_logp.dtype)
    return (g_logp + xp.exp(lat.logp) * frame_weight,)


def _pred_domain(params: Mapping[str, Any]) -> str:
    return "logit" if params.get("from_logits", True) else "log_probability"


_TIME_MAJOR = (
    "Each framework's own call maps onto the spec's inputs (InputRules.native, applied by the shared "
    "input path on every backend): PyTorch's log_probs (T, N, C) are transposed, its targets (N, S) "
    "padded or 1-D concatenated are fitted to T columns, input_lengths and target_lengths become "
    "paddings; Keras's (y_true, y_pred) gives label lengths as the count of non-zero labels and uses "
    "every frame; Optax's (logits, logit_paddings, labels, label_paddings) takes labels of any length "
    "S and whole-number float labels. PyTorch's unbatched call ((T, C) log_probs, (S,) targets, 0-d or "
    "one-element lengths) is one sequence: the spec's inputs are then (T,), (T, C), (T,), (T,) and its "
    "value a scalar. Labels longer than the frames have no alignment. The spec's own "
    "four arrays are still taken under every convention when unambiguous (integer labels, (N, T) "
    "floating paddings)."
)

#: PyTorch ``CTCLoss()(log_probs, targets, input_lengths, target_lengths)``: on every backend the
#: prediction and the target come first (in the backend's order), then the lengths in torch's order.
TORCH_CTC = NativeInputs(
    slots=("targets", "log_probs", "input_lengths", "target_lengths"),
    sources={
        "labels": ("labels", "targets", "target_lengths"),
        "logits": ("time_major", "log_probs"),
        "label_paddings": ("lengths", "target_lengths"),
        "logit_paddings": ("lengths", "input_lengths"),
    },
    frames="logit_paddings",
)

#: Keras ``CTC()(y_true, y_pred)``: label lengths are the count of labels that are not 0 (Keras's
#: mask_index), every frame is used.
KERAS_CTC = NativeInputs(
    slots=("y_true", "y_pred", "", ""),
    sources={
        "labels": ("labels", "y_true"),
        "logits": ("same", "y_pred"),
        "label_paddings": ("count", "y_true"),
        "logit_paddings": ("none", "y_pred"),
    },
    pad_value=0,
    frames="logit_paddings",
)

#: Optax ``ctc_loss(logits, logit_paddings, labels, label_paddings)`` (prediction first, as the JAX
#: backend orders it): labels and their paddings may have any length S.
OPTAX_CTC = NativeInputs(
    slots=("logit_paddings", "logits", "labels", "label_paddings"),
    sources={
        "labels": ("labels", "labels"),
        "logits": ("same", "logits"),
        "label_paddings": ("paddings", "label_paddings"),
        "logit_paddings": ("same", "logit_paddings"),
    },
    frames="logit_paddings",
)

CTC = LossSpec(
    name="ctc",
    aliases=("ctc_loss", "connectionist_temporal_classification"),
    summary="Connectionist temporal classification: -log p(labels | frames), summed over alignments.",
    fn=ctc,
    vjp=ctc_vjp,
    inputs=(
        Input("labels", "target", "ctc_labels", doc="integer labels (N, T), right-padded to the frame count"),
        Input("logits", "prediction", _pred_domain, differentiable=True,
              doc="per-frame class scores (N, T, C): logits, or log-probabilities with from_logits=False"),
        Input("label_paddings", "input", "ctc_label_paddings", doc="(N, T), 1 where labels is padding"),
        Input("logit_paddings", "input", "ctc_logit_paddings", doc="(N, T), 1 where a frame is padding"),
    ),
    params=(
        Param("blank", 0, "index of the blank class (torch blank, optax blank_id, keras mask_index)",
              kind="int", low=0, static=True),
        Param("from_logits", True, "apply log-softmax over the classes first (Optax, Keras); PyTorch "
              "takes log-probabilities as given", kind="bool", static=True),
        Param("zero_infinity", False, "give sequences without any alignment a loss of 0 instead of inf "
              "(PyTorch zero_infinity)", kind="bool", static=True),
        Param("normalize_by_length", False, "divide each sequence's loss by its label count (at least 1), "
              "as PyTorch's reduction='mean' does before averaging (its convention sets it with the mean "
              "reduction)", kind="bool", static=True),
    ),
    tasks=frozenset({"sequence"}),
    formula=r"\ell = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_{t=1}^{T} p_t(\pi_t)",
    references=(
        "Graves, A., Fernández, S., Gomez, F. & Schmidhuber, J. (2006). Connectionist Temporal "
        "Classification: Labelling Unsegmented Sequence Data with Recurrent Neural Networks. ICML. "
        "https://doi.org/10.1145/1143844.1143891",
    ),
    usage=(
        "Sequence labelling without a frame alignment (speech, handwriting, OCR). Labels must not "
        "contain the blank. A sequence whose labels plus repeated neighbours exceed its unpadded "
        "frames has no alignment: its loss is inf (0 with zero_infinity), decided from the lengths, "
        "so its gradient is 0, never NaN. Padded frames (logit_paddings = 1) are skipped wherever "
        "they are, as Optax does. " + _TIME_MAJOR + " The gradient is closed-form (forward-backward "
        "posteriors): p - gamma with respect to logits, -gamma with respect to log-probabilities "
        "(from_logits=False), the exact derivative of the value. PyTorch's own backward returns "
        "exp(log_probs) - gamma instead: the same gradient once log_probs come from a log_softmax "
        "(they differ by a vector normal to the normalized rows), so every gradient upstream of the "
        "log_softmax agrees. The loss is smooth in the scores: no kinks."
    ),
    elementwise=False,
    min_ndim=3,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.CTCLoss", {"from_logits": False, "normalize_by_length": False},
            reduction=replace(TORCH_REDUCTION, mean_params={"normalize_by_length": True}),
            # (T, N, C) is time-major, not torch's (N, C, d1, ...): no class-axis move
            inputs=InputRules(native=TORCH_CTC),
            notes="called as torch's CTCLoss: (log_probs (T, N, C), targets (N, S) padded or 1-D "
            "concatenated, input_lengths, target_lengths); log_probs used as given, blank=0. "
            "reduction='mean' divides each loss by its target length (at least 1) before the batch mean "
            "(the mean reduction sets normalize_by_length=True); 'sum' and 'none' do not divide. "
            "zero_infinity zeroes inf losses and their gradients.",
            names={"CTCLoss": {}, "ctc_loss": {}},
        ),
        "keras": Convention(
            "keras", "keras.losses.CTC",
            inputs=replace(INPUT_RULES["keras"], native=KERAS_CTC),
            notes="called as Keras's CTC: (y_true (N, S) labels with 0 as padding, y_pred (N, T, C) logits); "
            "log-softmax, blank = mask_index = 0, label lengths = count of non-zero labels, every frame "
            "used; TensorFlow computes it in float32 even for float64 inputs.",
            names={"CTC": {}, "ctc": {}},
            kwargs={"mask_index": "blank"},
        ),
        "optax": Convention(
            "optax", "optax.losses.ctc_loss",
            inputs=replace(INPUT_RULES["optax"], native=OPTAX_CTC, cast_labels=True),
            notes="called as Optax's ctc_loss: (logits, logit_paddings, labels, label_paddings), blank_id=0; "
            "labels may be whole-number floats and any length. Optax uses log(0) = -1e5, so sequences "
            "without an alignment get large finite values instead of inf; every alignable sequence agrees.",
            names={"ctc_loss": {}},
            kwargs={"blank_id": "blank"},
        ),
    },
)

SPECS = (CTC,)
