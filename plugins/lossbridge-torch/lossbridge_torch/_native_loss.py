"""Verified native fast paths for losses: ``torch.nn.functional`` kernels under ``convention="torch"``.

Registered through the override hook (``lossbridge_register_overrides``, kind ``"loss"``). A fast path,
not a second definition: :data:`NATIVE_LOSSES` says, as data, which torch function computes which spec
under which parameter values (the preset of one of the torch convention's names), and the factory admits
a bound loss only when

* its convention is torch's own (``bound.convention.framework == "torch"``),
* every spec parameter is either pinned to the value the torch kernel implements (``fixed``) or passed
  to the kernel as a keyword (``kwargs``: plain Python numbers or booleans only), within the kernel's
  range (``accepts``), and
* the shared layer's class weights / ignored label are ones the kernel takes (``extras``).

The object returned is a :class:`TorchLoss` (its repr, ``reduction``, ``validate``, ``weight`` buffer,
state dict and everything else are the generic module's); only its ``forward`` calls the kernel, and only
when the call qualifies (``NativeTorchLoss._qualifies``): no functorch transform (``torch.func``: the
generic path), no ``sample_weight``, no ``check_finite``, plain tensors of one floating dtype (float32 or
float64; int64 class labels where the kernel takes them), shapes related exactly as the spec requires
(``shape``; torch would broadcast mismatched ``mse``/``l1`` shapes with a warning, lossbridge refuses
them, so they are compared here and anything else goes to the generic path, which raises the core's
error), a reduction the kernel has, and no gradient wanted for an input the spec declares
non-differentiable (a target). The value checks (``validate=True``) are the generic module's fused checks
(``TorchLoss._fused_checks_pass``: one ``aminmax`` per checked input, plus one in-place pass over one
temporary per set-valued domain such as binary or sign labels (``|y|`` for {-1, 1}), and ONE host sync;
measured 8-17 us per call at 1e3 elements, at 1e6 0.23 ms for BCE's two [0, 1] ranges, 0.04 ms for 1e5
class labels; class indices and multilabel margin's -1-padded class lists are range checks).
When they do not pass (an invalid value, an ignored label outside ``[0, C)``, or a check they do not
implement), the core's own checks run
(``BoundLoss.prepare``), raising the core's error; if those pass (an ignored label), the kernel runs.
Every other call runs the generic path (``super().forward``). Under ``torch.compile`` the kernel is
traced like any torch op, without value checks (the generic path skips them there too);
``native_calls`` counts eager calls only.

``ctc`` (``CTCLoss``): torch's own argument list (time-major ``(T, N, C)`` log-probabilities, ``(N, S)``
padded or 1-D concatenated int64 targets, int64 input and target lengths; Python lists of lengths are
made tensors first, as the generic module does), every reduction (torch's ``"mean"``: each loss divided
by its target length, at least 1, then the batch mean, which is the spec's ``normalize_by_length`` that
the convention's mean sets) and ``zero_infinity``. Its kernel (:func:`_ctc`) is aten's ``_ctc_loss``
forward and ``_ctc_loss_backward`` in ONE ``autograd.Function`` (the composite ``torch.ctc_loss`` spells
out: zero_infinity's ``where`` and the reduction, folded in), whose gradient is the spec's ``vjp``: torch's
backward returns ``(exp(log_probs) - gamma) * g`` on the used frames of an alignable sequence, the spec's
``vjp`` ``-gamma * g`` (the exact derivative of the value; the two agree only upstream of a log_softmax),
so the ``exp(log_probs) * g`` term torch adds is taken off again (in place, a block of frames at a time:
no input-sized temporary); sequences without an alignment get a zero gradient, as in the spec (torch's
backward with ``zero_infinity=True``; with ``False`` torch gives NaN there). A value gate (``admits``: one
``aminmax`` each of the log-probabilities, lengths and targets, ONE host read, also with
``validate=False``) admits only calls torch's kernel computes as the spec does: finite log-probabilities
(the spec gives NaN where a log-probability is -inf, torch a number), ``0 <= input_lengths <= T``,
target lengths within the targets, used labels in ``[0, C)`` (torch reads them unchecked; padding past a
target's length is masked, in a second read, only when the whole targets fail), ``blank < C``; with
``validate=True`` the same read is the core's check (log-probabilities ``<= 0``), whose failure runs the
core's own check and error. Eager only (``compiled=False``); no second derivative (torch's CTC backward
has none; differentiating it raises torch's own error); unbatched ``(T, C)`` calls and int32 targets take
the generic path. Measured (forward + backward, float32, 1 thread): 25x -> 1.9x at 1e3 (the gate, the
Python Function and the gradient correction, ~150 us over torch's ~170 us), 1.01-1.07x at 1e5/1e6, peak
memory 1.02x torch's at 1e6 (was 35x).

Not covered: array-valued parameters (``pos_weight``/``weight`` of BCE, per-class ``weight`` of
probability-target cross-entropy), class weights of multi-margin; those bound losses are the generic
module.

The conformance kit checks these objects against the spec like any other materialization; the tests in
``tests/test_native_loss_paths.py`` compare value and input gradients with the generic path in float64
at random points and at the spec's kinks, for every reduction.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lossbridge.bound import BoundLoss

__all__ = ["NATIVE_LOSSES", "SHAPE_RULES", "NativeLoss", "native_loss_factory"]


def _positive(*names: str) -> Callable[[Mapping[str, Any]], bool]:
    def accepts(params: Mapping[str, Any]) -> bool:
        return all(params[name] > 0 for name in names)

    return accepts


def _triplet(params: Mapping[str, Any]) -> bool:
    """torch's triplet kernel refuses margin <= 0 and differs from the spec at p = inf."""
    return params["margin"] > 0 and math.isfinite(params["p"])


def _same_shape(shapes: tuple[Any, ...]) -> bool:
    """Every argument has the prediction's shape."""
    first = shapes[0]
    return all(s == first for s in shapes[1:])


def _class_index(shapes: tuple[Any, ...]) -> bool:
    """(N, C, d1, ...) scores and (N, d1, ...) labels (the class axis is 1)."""
    pred, labels = shapes
    return len(pred) >= 2 and labels == pred[:1] + pred[2:]


def _class_index_2d(shapes: tuple[Any, ...]) -> bool:
    """(N, C) scores and (N,) labels (torch's multi-margin kernel takes no spatial axes)."""
    pred, labels = shapes
    return len(pred) == 2 and labels == pred[:1]


def _same_2d(shapes: tuple[Any, ...]) -> bool:
    """(N, D) inputs of one shape."""
    return len(shapes[0]) == 2 and _same_shape(shapes)


def _pair_per_sample(shapes: tuple[Any, ...]) -> bool:
    """Two (N, D) inputs and (N,) labels."""
    x1, x2, y = shapes
    return len(x1) == 2 and x2 == x1 and y == x1[:1]


def _ctc_args(shapes: tuple[Any, ...]) -> bool:
    """torch's batched CTC call: (T, N, C) log-probabilities, (N, S) or 1-D targets, (N,) lengths."""
    lp, targets, input_lengths, target_lengths = shapes
    if len(lp) != 3 or input_lengths != lp[1:2] or target_lengths != lp[1:2]:
        return False
    return len(targets) == 1 or (len(targets) == 2 and targets[0] == lp[1])


#: the shape relations the kernels are used for, by name (the table's ``shape`` field)
SHAPE_RULES: dict[str, Callable[[tuple[Any, ...]], bool]] = {
    "same": _same_shape,
    "class_index": _class_index,
    "class_index_2d": _class_index_2d,
    "same_2d": _same_2d,
    "pair_per_sample": _pair_per_sample,
    "ctc": _ctc_args,
}
_BASIC = frozenset({"mean", "sum", "none"})


@dataclass(frozen=True)
class NativeLoss:
    """One torch kernel for one spec under one of the torch convention's names.

    ``fixed``: spec parameter -> the only value the kernel computes (None included); ``kwargs``: the
    kernel's keyword -> the spec parameter passed to it; ``constants``: keywords always passed;
    ``accepts``: the kernel's range of the parameters; ``extras``: the shared layer's features the
    kernel takes (``"weight"``: class weights, ``"ignore_index"``); ``shape``: a :data:`SHAPE_RULES` name;
    ``labels``: call positions holding int64 labels (all others are floating, of the prediction's dtype);
    ``reductions``: the kernel's reductions; ``below``: the kernel runs only for predictions of fewer
    elements (None: any size), where the generic path was measured faster from that size on (both compute
    the same numbers: a speed choice, not a semantic one); ``compiled``: whether the kernel is also traced
    under ``torch.compile`` (False where the compiled spec path was measured faster).
    """

    spec: str
    native: str  # the torch name (a key of the torch convention's ``names``)
    function: str  # the torch.nn.functional function
    fixed: Mapping[str, Any] = field(default_factory=dict)
    kwargs: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    accepts: Callable[[Mapping[str, Any]], bool] | None = field(default=None, compare=False)
    extras: tuple[str, ...] = ()
    shape: str = "same"
    labels: tuple[int, ...] = ()
    reductions: frozenset[str] = _BASIC
    below: int | None = None
    compiled: bool = True
    native_args: bool = False
    gate: str | None = None

    def keywords(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The kernel's keyword arguments for ``params``, or None when it does not compute them exactly."""
        covered = set(self.fixed) | set(self.kwargs.values())
        if set(params) - covered:  # a parameter this kernel does not know: not the same function
            return None
        for name, value in self.fixed.items():
            if name not in params or not _same(params[name], value):
                return None
        out = dict(self.constants)
        for keyword, name in self.kwargs.items():
            value = params.get(name)
            if isinstance(value, bool):
                out[keyword] = value
            elif isinstance(value, numbers.Real):
                out[keyword] = value if isinstance(value, numbers.Integral) else float(value)
            else:
                return None  # tensors, arrays, None: the generic path
        if self.accepts is not None and not self.accepts(params):
            return None
        return out


def _same(a: Any, b: Any) -> bool:
    if b is None or isinstance(b, (bool, str)):
        return a is b or (type(a) is type(b) and a == b)
    return isinstance(a, numbers.Real) and not isinstance(a, bool) and a == b


#: measured (interleaved, median of 7, forward + backward, float32, 1 thread): torch's gaussian_nll_loss and
#: hinge_embedding_loss are slower than the spec path from 1e5 elements on (1e6: 12.8 ms vs 10.0 ms and
#: 22.7 vs 16.2; 1e5: 1.34 vs 1.10 and 2.87 vs 2.26), and the spec path's peak memory meets torch's for them.
#: (torch's cross-entropy is also slower than the spec path at 1e6, 24.3 vs 19.2 ms, but the spec path holds
#: more logits-sized arrays at once (1625 MB vs 1500 MB at 4096 x 32000): the kernel runs at every size.)
_LARGE = 100_000

_BCE = {"clip_eps": 0.0, "log_min": None, "label_smoothing": 0.0, "pos_weight": None, "weight": None,
        "backward": "torch"}
_CE = {"clip_eps": 0.0, "log_min": None, "normalize": "none"}
#: cross-entropy under torch.compile: the compiled spec path was measured faster than compiled
#: F.cross_entropy from 1e5 elements (0.67-0.99x against 1.0-1.11x through the kernel), so only eager
#: calls take the kernel

#: Which torch kernel computes which spec under which parameters: data, looked up by spec name.
NATIVE_LOSSES: tuple[NativeLoss, ...] = (
    NativeLoss("mse", "MSELoss", "mse_loss", fixed={"scale": 1.0}),
    NativeLoss("mae", "L1Loss", "l1_loss"),
    NativeLoss("huber", "HuberLoss", "huber_loss", fixed={"smooth_l1": False}, kwargs={"delta": "delta"},
               accepts=_positive("delta")),
    NativeLoss("huber", "SmoothL1Loss", "smooth_l1_loss", fixed={"smooth_l1": True}, kwargs={"beta": "delta"},
               accepts=_positive("delta")),
    NativeLoss("binary_crossentropy", "BCELoss", "binary_cross_entropy",
               fixed={**_BCE, "from_logits": False, "sign_labels": False}),
    NativeLoss("binary_crossentropy", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
               fixed={**_BCE, "from_logits": True, "sign_labels": False}),
    NativeLoss("binary_crossentropy", "SoftMarginLoss", "soft_margin_loss",
               fixed={**_BCE, "from_logits": True, "sign_labels": True}),
    NativeLoss("sparse_categorical_crossentropy", "CrossEntropyLoss", "cross_entropy",
               fixed={**_CE, "from_logits": True, "from_log_probs": False, "weight_smoothing": True},
               kwargs={"label_smoothing": "label_smoothing"}, extras=("weight", "ignore_index"),
               shape="class_index", labels=(1,), compiled=False),
    NativeLoss("sparse_categorical_crossentropy", "NLLLoss", "nll_loss",
               fixed={**_CE, "from_logits": False, "from_log_probs": True, "weight_smoothing": True,
                      "label_smoothing": 0.0},
               extras=("weight", "ignore_index"), shape="class_index", labels=(1,)),
    NativeLoss("categorical_crossentropy", "CrossEntropyLoss", "cross_entropy",
               fixed={**_CE, "from_logits": True, "weight": None}, kwargs={"label_smoothing": "label_smoothing"},
               compiled=False),
    NativeLoss("kl_divergence", "KLDivLoss", "kl_div",
               fixed={"log_input": True, "log_target": False, "clip_eps": None, "generalized": False, "axis": None},
               constants={"log_target": False}, reductions=_BASIC | {"batchmean"}),
    NativeLoss("kl_divergence", "KLDivLoss", "kl_div",
               fixed={"log_input": True, "log_target": True, "clip_eps": None, "generalized": False, "axis": None},
               constants={"log_target": True}, reductions=_BASIC | {"batchmean"}),
    NativeLoss("poisson", "PoissonNLLLoss", "poisson_nll_loss",
               kwargs={"log_input": "log_input", "full": "full", "eps": "eps"}),
    NativeLoss("margin_ranking", "MarginRankingLoss", "margin_ranking_loss", fixed={"kink_gradient": 1.0},
               kwargs={"margin": "margin"}),
    NativeLoss("hinge_embedding", "HingeEmbeddingLoss", "hinge_embedding_loss", fixed={"margin_gradient": 1.0},
               kwargs={"margin": "margin"}, below=_LARGE),
    NativeLoss("multilabel_soft_margin", "MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss",
               fixed={"weight": None}, shape="same_2d"),
    NativeLoss("multi_margin", "MultiMarginLoss", "multi_margin_loss",
               fixed={"average_classes": True, "margin_gradient": 0.0}, kwargs={"p": "p", "margin": "margin"},
               shape="class_index_2d", labels=(1,)),
    NativeLoss("multilabel_margin", "MultiLabelMarginLoss", "multilabel_margin_loss",
               fixed={"average_classes": True, "margin_gradient": 0.0, "margin": 1.0}, shape="same_2d", labels=(1,)),
    NativeLoss("cosine_embedding", "CosineEmbeddingLoss", "cosine_embedding_loss",
               fixed={"eps": 9.999999960041972e-13, "eps_form": "add_squared", "kink_gradient": 1.0},
               kwargs={"margin": "margin"}, shape="pair_per_sample"),
    NativeLoss("triplet_margin", "TripletMarginLoss", "triplet_margin_loss",
               fixed={"eps_placement": "difference", "kink_gradient": 1.0, "axis": -1, "distance_function": None},
               kwargs={"margin": "margin", "p": "p", "eps": "eps", "swap": "swap"}, shape="same_2d",
               accepts=_triplet),
    NativeLoss("gaussian_nll", "GaussianNLLLoss", "gaussian_nll_loss", fixed={"straight_through": True},
               kwargs={"full": "full", "eps": "eps"}, below=_LARGE),
    NativeLoss("ctc", "CTCLoss", "ctc_loss", fixed={"from_logits": False, "normalize_by_length": False},
               kwargs={"blank": "blank", "zero_infinity": "zero_infinity"}, shape="ctc", labels=(1, 2, 3),
               compiled=False, native_args=True, gate="ctc"),
)


def _by_spec() -> dict[str, tuple[NativeLoss, ...]]:
    out: dict[str, list[NativeLoss]] = {}
    for entry in NATIVE_LOSSES:
        out.setdefault(entry.spec, []).append(entry)
    return {k: tuple(v) for k, v in out.items()}


_BY_SPEC = _by_spec()
_BACKEND: list[Any] = []


def _torch_backend() -> Any:
    if not _BACKEND:
        from ._backend import TorchBackend

        _BACKEND.append(TorchBackend())
    return _BACKEND[0]


def _match(bound: BoundLoss) -> tuple[NativeLoss, dict[str, Any]] | None:
    """The table entry (and its keywords) that computes ``bound`` exactly, or None."""
    conv = bound.convention
    if conv is None or conv.framework != "torch":
        return None
    rule = bound.rule
    if rule.feature_mean or rule.mask_zero or bound.reduction not in _BASIC | {"batchmean"}:
        return None
    # the convention's own argument list, or a reduction with mean_params: only a kernel that takes them
    native_form = bound.rules.native is not None or bool(rule.mean_params)
    names = {*conv.names, conv.native.split()[0].rsplit(".", 1)[-1]}  # the convention's own torch names
    for entry in _BY_SPEC.get(bound.spec.name, ()):
        if entry.native not in names or (native_form and not entry.native_args):
            continue
        if bound.class_weight is not None and "weight" not in entry.extras:
            continue
        if bound.ignore_index is not None and "ignore_index" not in entry.extras:
            continue
        keywords = entry.keywords(dict(bound.params))
        if keywords is not None:
            return entry, keywords
    return None


def native_loss_factory(spec_name: str) -> Callable[..., Any]:
    """The override factory for ``spec_name``: a ``NativeTorchLoss``, or None (the generic module).

    ``options`` are the backend's loss options (``validate``, ``check_finite``).
    """

    def factory(bound: BoundLoss, **options: Any) -> Any:
        first = _match(bound)
        if first is None:
            return None
        candidates = [first]
        for other in bound.alternatives:  # a name shared by two specs (CrossEntropyLoss): each must be covered
            found = _match(other)
            if found is None or found[0].function != first[0].function:
                return None
            candidates.append(found)
        return _module_class()(bound, tuple(candidates), backend=_torch_backend(), **options)

    factory.__name__ = f"native_{spec_name}"
    return factory


def _ctc(torch: Any) -> tuple[Callable[..., Any], Callable[..., bool | None]]:
    """torch's CTC kernel with the spec's gradient, and its per-call value gate (see the module docstring)."""
    ctc_forward = torch._ctc_loss
    ctc_backward = torch.ops.aten._ctc_loss_backward.Tensor
    inf = float("inf")
    #: elements of exp(log_probs) made at once while the backward takes torch's extra term off
    block = 1 << 16
    aranges: dict[tuple[int, Any], Any] = {}

    def steps(frames: int, device: Any) -> Any:
        """``arange(frames)`` as a column (kept per frame count and device)."""
        found = aranges.get((frames, device))
        if found is None:
            if len(aranges) > 16:
                aranges.clear()
            found = aranges[frames, device] = torch.arange(frames, device=device).unsqueeze(1)
        return found

    class SpecGradientCTC(torch.autograd.Function):
        """``torch.ctc_loss``'s value (aten's ``_ctc_loss`` and the composite's zero_infinity ``where`` and
        reduction, folded into one node); backward: the spec's ``vjp``."""

        @staticmethod
        def forward(ctx: Any, log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any,
                    blank: int, reduction: str, zero_infinity: bool) -> Any:
            # zero_infinity=True only reaches the backward: no gradient for a sequence without an alignment
            nll, log_alpha = ctc_forward(log_probs, targets, input_lengths, target_lengths, blank, True)
            ctx.save_for_backward(log_probs, targets, input_lengths, target_lengths, nll, log_alpha)
            ctx.blank, ctx.reduction = blank, reduction
            out = torch.where(nll == inf, 0.0, nll) if zero_infinity else nll
            if reduction == "mean":  # each loss over its target length (at least 1), then the batch mean
                return (out / target_lengths.clamp_min(1)).mean()
            return out.sum() if reduction == "sum" else out

        @staticmethod
        def backward(ctx: Any, grad: Any) -> tuple[Any, ...]:  # type: ignore[override]
            # with create_graph=True aten's _ctc_loss_backward records its "not implemented" derivative, so a
            # second derivative raises torch's own error, as through torch.nn.CTCLoss
            log_probs, targets, input_lengths, target_lengths, nll, log_alpha = ctx.saved_tensors
            frames, batch, classes = log_probs.shape
            if ctx.reduction == "mean":  # the cotangent of each sequence's loss
                grad = grad / batch / target_lengths.clamp_min(1)
            elif ctx.reduction == "sum":
                grad = grad.expand(batch)
            grad = grad.contiguous()
            out = ctc_backward(grad, log_probs, targets, input_lengths, target_lengths, nll, log_alpha,
                               ctx.blank, True)
            # torch's backward: (exp(log_probs) - gamma) * g on the used frames (t < input_length) of every
            # sequence with a finite loss, 0 elsewhere; the spec's vjp: -gamma * g. Take exp(log_probs) * g
            # off where torch put it, a block of frames at a time (no input-sized temporary).
            used = ((steps(frames, log_probs.device) < input_lengths) * grad.masked_fill(nll == inf, 0.0)).unsqueeze(-1)
            step = max(1, block // max(batch * classes, 1))
            if step >= frames:
                out.addcmul_(torch.exp(log_probs), used, value=-1.0)
            else:
                for t in range(0, frames, step):
                    out[t : t + step].addcmul_(torch.exp(log_probs[t : t + step]), used[t : t + step], value=-1.0)
            return out, None, None, None, None, None, None

    # the C++ apply (as lossbridge_torch._loss does for the spec's Function): the kernel runs eager, outside
    # functorch transforms, on plain tensors (NativeTorchLoss._qualifies), where Function.apply only adds
    # its Python wrapper (~20 us at 1e3)
    apply = super(torch.autograd.Function, SpecGradientCTC).apply  # type: ignore[misc]

    def ctc_loss(log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any, *, reduction: str,
                 blank: int, zero_infinity: bool) -> Any:
        """``torch.ctc_loss`` (the same value) with the spec's gradient."""
        return apply(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)

    def admits(args: tuple[Any, ...], keywords: dict[str, Any], validate: bool) -> bool | None:
        """True: the kernel computes this call as the spec does; False: the generic path; None: the
        log-probabilities fail lossbridge's check (``<= 0``, with ``validate``). One host read."""
        log_probs, targets, input_lengths, target_lengths = args
        frames, _, classes = log_probs.shape
        device = log_probs.device
        if keywords["blank"] >= classes or any(t.device != device for t in args[1:]):
            return False
        # a few reductions and ONE host read; the used labels are masked only when the whole targets fail
        # (padding outside [0, C)): then a second read decides
        low_il, high_il = torch.aminmax(input_lengths)
        low_tl, high_tl = torch.aminmax(target_lengths)
        concatenated = targets.ndim == 1
        size = targets.shape[-1]
        ints = [low_il, high_il, low_tl, target_lengths.sum() if concatenated else high_tl]
        if targets.numel():
            ints += torch.aminmax(targets)
        read = torch.cat([torch.stack(torch.aminmax(log_probs.detach())).double(), torch.stack(ints)]).tolist()
        low, high, low_il_, high_il_, low_tl_, high_tl_, *label_range = read
        if not (-inf < low and high < inf and low_il_ >= 0 and high_il_ <= frames and low_tl_ >= 0
                and high_tl_ <= size):  # NaN fails too
            return False
        if label_range and not (label_range[0] >= 0 and label_range[1] < classes):
            if concatenated:
                used = torch.arange(size, device=targets.device) < target_lengths.sum()
            else:
                used = torch.arange(size, device=targets.device).unsqueeze(0) < target_lengths.unsqueeze(1)
            used_low, used_high = torch.aminmax(torch.where(used, targets, torch.zeros_like(targets)))
            if not (int(used_low) >= 0 and int(used_high) < classes):
                return False
        return None if validate and high > 0 else True

    return ctc_loss, admits


_CLASS: list[Any] = []


def _module_class() -> Any:
    """``NativeTorchLoss``, defined on first use (this module is imported without torch)."""
    if not _CLASS:
        _CLASS.append(_define())
    return _CLASS[0]


def _define() -> Any:
    import torch
    import torch.nn.functional as F

    from ._loss import _PLAIN, TorchLoss
    from ._namespace import namespace

    def _dtypes_fit(args: tuple[Any, ...], labels: tuple[int, ...], dtype: Any) -> bool:
        """int64 at the label positions, the prediction's floating dtype everywhere else."""
        for k, t in enumerate(args):
            if t.dtype is not (torch.int64 if k in labels else dtype):
                return False
        return True

    floating = (torch.float32, torch.float64)
    enums = {"none": 0, "mean": 1, "sum": 2}

    def kl_div(input: Any, target: Any, *, reduction: str, log_target: bool) -> Any:
        # F.kl_div warns on reduction="mean" (KLDivLoss's default, which the spec path computes without a
        # warning): the aten op F.kl_div calls, with the same reduction; batchmean through F (no warning)
        if reduction == "batchmean":
            return F.kl_div(input, target, reduction=reduction, log_target=log_target)
        return torch.kl_div(input, target, enums[reduction], log_target=log_target)

    ctc_kernel, ctc_admits = _ctc(torch)
    #: kernels that are not called through torch.nn.functional
    kernels = {"kl_div": kl_div, "ctc_loss": ctc_kernel}
    #: per-call value gates (NativeLoss.gate)
    gates = {"ctc": ctc_admits}
    is_compiling = torch.compiler.is_compiling
    functorch_active = torch._C._are_functorch_transforms_active

    class NativeTorchLoss(TorchLoss):
        """A :class:`TorchLoss` whose qualifying eager calls run a ``torch.nn.functional`` kernel.

        ``native`` is the table entry of the bound spec; ``native_calls`` counts the calls that took a
        kernel (the others ran the generic path).
        """

        def __init__(self, bound: BoundLoss, candidates: tuple[tuple[NativeLoss, dict[str, Any]], ...],
                     **options: Any) -> None:
            super().__init__(bound, **options)
            self.native = candidates[0][0]
            self.native_calls = 0
            order = tuple(self._backend.argument_order(self.spec))
            # per candidate: kernel, keywords, label positions, shape rule, reductions, the spec position
            # of each call argument, the call positions whose spec input is not differentiable
            plans = []
            for entry, keywords in candidates:
                spec = bound.spec if entry.spec == bound.spec.name else next(
                    b.spec for b in bound.alternatives if b.spec.name == entry.spec)
                spec_order = tuple(self._backend.argument_order(spec))
                fixed = tuple(k for k, s in enumerate(spec_order) if not spec.inputs[s].differentiable)
                kernel = kernels.get(entry.function) or getattr(F, entry.function)
                below = entry.below if entry.below is not None else float("inf")
                # a name shared by two specs (CrossEntropyLoss) is traced through the kernel in any case: the
                # generic path's dispatch by target dtype does not trace with fullgraph=True
                traced = entry.compiled or bool(bound.alternatives)
                gate = gates[entry.gate] if entry.gate is not None else None
                plans.append((kernel, keywords, entry.labels, SHAPE_RULES[entry.shape], entry.reductions,
                              entry.extras, spec_order, fixed, below, traced, gate))
            self._plans = tuple(plans)
            self._arity = len(order)

        def _get_name(self) -> str:  # the generic module's repr
            return "TorchLoss"

        def forward(self, *args: Any, sample_weight: Any | None = None) -> torch.Tensor:
            """The reduced loss: torch's kernel when the call qualifies, else the generic path."""
            if self._bound.rules.native is not None:  # torch's CTC takes lengths as tuples of ints too
                args = tuple(torch.as_tensor(x) if isinstance(x, (list, tuple)) else x for x in args)
            if sample_weight is None and len(args) == self._arity:
                plan = self._qualifies(args)
                if plan is not None:
                    kernel, keywords, extras = plan
                    if not is_compiling():
                        self.__dict__["native_calls"] += 1
                    if extras:
                        bound = self._bound
                        if "weight" in extras:
                            keywords = {**keywords, "weight": self.weight}
                        if "ignore_index" in extras and bound.ignore_index is not None:
                            keywords = {**keywords, "ignore_index": bound.ignore_index}
                    return kernel(*args, reduction=self._bound.reduction, **keywords)
            return super().forward(*args, sample_weight=sample_weight)

        def _qualifies(self, args: tuple[Any, ...]) -> tuple[Any, dict[str, Any], tuple[str, ...]] | None:
            if self.check_finite or functorch_active():
                return None
            compiling = is_compiling()
            for t in args:
                if type(t) not in _PLAIN or t.is_meta:
                    return None
            pred = args[0]
            dtype = pred.dtype
            size = pred.numel()
            if dtype not in floating or size == 0:
                return None
            reduction = self._bound.reduction
            for plan in self._plans:
                kernel, keywords, labels, shape, reductions, extras, spec_order, fixed, below, traced, gate = plan
                if reduction not in reductions or size >= below or (compiling and not traced):
                    continue
                if not _dtypes_fit(args, labels, dtype):
                    continue
                for k in fixed:
                    if args[k].requires_grad:
                        return None
                if not shape(tuple([t.shape for t in args])):
                    return None
                weight = self._buffers["weight"]
                if weight is not None and (weight.dtype is not dtype or weight.device != pred.device):
                    return None
                if gate is not None:  # eager only (compiled=False): the kernel's admission and the value checks
                    verdict = gate(args, keywords, self.validate)
                    if verdict is None:  # lossbridge's value check failed: the core's check and error
                        xp = namespace()
                        spec_args: list[Any] = [None] * len(args)
                        for position, k in enumerate(spec_order):
                            spec_args[k] = args[position]
                        self._bound.prepare(xp, tuple(spec_args), check_values=True)
                    if not verdict:
                        return None
                    return kernel, keywords, extras
                if self.validate and not compiling and not self._nothing_to_check():
                    ordered: list[Any] = [None] * len(args)
                    for position, k in enumerate(spec_order):
                        ordered[k] = args[position]
                    inputs = tuple(ordered)
                    if not self._fused_checks_pass(inputs):
                        # invalid, or a check the fused pass does not do, or an ignored label outside
                        # [0, C): the core's own checks, which raise the core's error
                        xp = namespace()
                        self._bound.select(xp, inputs).prepare(xp, inputs, check_values=True)
                return kernel, keywords, extras
            return None

    return NativeTorchLoss
