"""The native loss fast paths (``lossbridge_torch._native_loss``) under ``convention="torch"``.

For each covered torch name: the fast path is taken (``native_calls``), and its value and input
gradients equal the generic spec path's (the same bound loss materialized by the backend without the
override) in float64 to 1e-12, at random points and at the spec's kinks (``spec.kinks``), for every
reduction the kernel has. Bad input still raises the core's error, and calls the kernel does not
cover run the generic path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from lossbridge_torch import NATIVE_LOSSES, TorchBackend

import lossbridge

Maker = Callable[[np.random.Generator], dict[str, np.ndarray]]
N, C = 7, 5


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _real(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.normal(size=(N, C)), "y_pred": rng.normal(size=(N, C))}


def _probabilities(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.uniform(size=(N, C)), "y_pred": rng.uniform(0.01, 0.99, size=(N, C))}


def _logits(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.uniform(size=(N, C)), "y_pred": 3.0 * rng.normal(size=(N, C))}


def _signs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.choice([-1.0, 1.0], size=(N, C)), "y_pred": 2.0 * rng.normal(size=(N, C))}


def _binary(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.choice([0.0, 1.0], size=(N, C)), "y_pred": 2.0 * rng.normal(size=(N, C))}


def _classes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.integers(0, C, size=N), "y_pred": 2.0 * rng.normal(size=(N, C))}


def _classes_spatial(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.integers(0, C, size=(N, 3)), "y_pred": 2.0 * rng.normal(size=(N, C, 3))}


def _log_probs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.integers(0, C, size=N), "y_pred": np.log(_softmax(rng.normal(size=(N, C))))}


def _soft_targets(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": _softmax(rng.normal(size=(N, C))), "y_pred": 2.0 * rng.normal(size=(N, C))}


def _kl(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": _softmax(rng.normal(size=(N, C))), "y_pred": np.log(_softmax(rng.normal(size=(N, C))))}


def _kl_log(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": np.log(_softmax(rng.normal(size=(N, C)))), "y_pred": np.log(_softmax(rng.normal(size=(N, C))))}


def _counts(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.poisson(2.0, size=(N, C)).astype(float), "y_pred": rng.normal(size=(N, C))}


def _counts_rates(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.poisson(2.0, size=(N, C)).astype(float), "y_pred": rng.uniform(0.1, 4.0, size=(N, C))}


def _ranking(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x1": rng.normal(size=N), "x2": rng.normal(size=N), "y": rng.choice([-1.0, 1.0], size=N)}


def _pairs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x1": rng.normal(size=(N, C)), "x2": rng.normal(size=(N, C)), "y": rng.choice([-1.0, 1.0], size=N)}


def _triplets(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"anchor": rng.normal(size=(N, C)), "positive": rng.normal(size=(N, C)),
            "negative": rng.normal(size=(N, C))}


def _gaussian(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y_true": rng.normal(size=(N, C)), "y_pred": rng.normal(size=(N, C)),
            "var": rng.uniform(0.1, 2.0, size=(N, C))}


def _padded(rng: np.random.Generator) -> dict[str, np.ndarray]:
    labels = np.full((N, C), -1)
    for i in range(N):
        chosen = rng.permutation(C)[: rng.integers(1, C)]
        labels[i, : len(chosen)] = chosen
    return {"y_true": labels, "y_pred": rng.normal(size=(N, C))}


#: (torch name, keyword arguments, input maker, loss options): every table entry is covered at least once
CASES: list[tuple[str, dict[str, Any], Maker, dict[str, Any]]] = [
    ("MSELoss", {}, _real, {}),
    ("L1Loss", {}, _real, {}),
    ("HuberLoss", {}, _real, {}),
    ("HuberLoss", {"delta": 0.7}, _real, {}),
    ("SmoothL1Loss", {}, _real, {}),
    ("SmoothL1Loss", {"beta": 0.4}, _real, {}),
    ("BCELoss", {}, _probabilities, {}),
    ("BCEWithLogitsLoss", {}, _logits, {}),
    ("SoftMarginLoss", {}, _signs, {}),
    ("CrossEntropyLoss", {}, _classes, {}),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, _classes_spatial, {}),
    ("sparse_categorical_crossentropy", {"weight": "classes", "label_smoothing": 0.1}, _classes_spatial, {}),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, _soft_targets, {}),
    ("sparse_categorical_crossentropy", {"weight": "classes"}, _classes, {}),
    ("categorical_crossentropy", {}, _soft_targets, {}),
    ("NLLLoss", {}, _log_probs, {}),
    ("NLLLoss", {"weight": "classes"}, _log_probs, {}),
    ("KLDivLoss", {}, _kl, {}),
    ("KLDivLoss", {"log_target": True}, _kl_log, {}),
    ("PoissonNLLLoss", {}, _counts, {}),
    ("PoissonNLLLoss", {"log_input": False, "full": True}, _counts_rates, {}),
    ("MarginRankingLoss", {}, _ranking, {}),
    ("MarginRankingLoss", {"margin": 0.3}, _ranking, {}),
    ("HingeEmbeddingLoss", {"margin": 0.8}, _signs, {}),
    ("MultiLabelSoftMarginLoss", {}, _binary, {}),
    ("MultiMarginLoss", {}, _classes, {}),
    ("MultiMarginLoss", {"p": 2, "margin": 0.5}, _classes, {}),
    ("MultiLabelMarginLoss", {}, _padded, {}),  # its label check: the fused range [-1, C)
    ("MultiLabelMarginLoss", {}, _padded, {"validate": False}),
    ("CosineEmbeddingLoss", {"margin": 0.2}, _pairs, {}),
    ("TripletMarginLoss", {}, _triplets, {}),
    ("TripletMarginLoss", {"p": 1.0, "swap": True, "margin": 0.5}, _triplets, {}),
    ("GaussianNLLLoss", {}, _gaussian, {}),
    ("GaussianNLLLoss", {"full": True, "eps": 1e-3}, _gaussian, {}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}-{make.__name__[1:]}"
       for name, kw, make, _ in CASES]


def test_every_table_entry_is_tested() -> None:
    covered = {(lossbridge.spec(name, convention="torch").name, name) for name, _, _, _ in CASES}
    covered.add(("ctc", "CTCLoss"))  # torch's own argument list: the CTC tests at the end of this file
    names = {name for _, name in covered}
    for entry in NATIVE_LOSSES:
        assert entry.native in names or (entry.spec, entry.native) in covered, entry


def _kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("weight") == "classes":
        return {**kwargs, "weight": torch.linspace(0.5, 2.0, C, dtype=torch.float64)}
    return kwargs


def _pair(name: str, kwargs: dict[str, Any], reduction: str, options: dict[str, Any]) -> tuple[Any, Any]:
    native = lossbridge.get(name, backend="torch", convention="torch", reduction=reduction, **_kwargs(kwargs),
                            **options)
    assert type(native).__name__ == "NativeTorchLoss", type(native)
    for option, value in options.items():
        assert getattr(native, option) == value, option
    generic = TorchBackend().materialize_loss(native.bound, **options)  # the same bound loss, no override
    assert type(generic).__name__ == "TorchLoss"
    return native, generic


def _run(loss: Any, inputs: dict[str, np.ndarray], cot: np.ndarray | None) -> tuple[np.ndarray, list[np.ndarray]]:
    spec = loss.spec
    tensors = {}
    for decl in spec.inputs:
        x = np.asarray(inputs[decl.name])
        floating = np.issubdtype(x.dtype, np.floating)
        t = torch.tensor(x, dtype=torch.float64 if floating else torch.int64)
        tensors[decl.name] = t.requires_grad_(decl.differentiable and floating)
    value = loss(*(tensors[spec.inputs[k].name] for k in TorchBackend().argument_order(spec)))
    (value * torch.as_tensor(cot) if cot is not None else value).sum().backward()
    grads = [t.grad.numpy() for t in tensors.values() if t.requires_grad]
    assert grads
    return value.detach().numpy(), grads


def _reductions(name: str) -> list[str]:
    return ["mean", "sum", "none", "batchmean"] if name == "KLDivLoss" else ["mean", "sum", "none"]


def _where(case: tuple[Any, ...]) -> list[str]:
    """Random points, and the spec's kinks when it declares any (a smooth loss has none)."""
    found = lossbridge.get(case[0], backend="numpy", convention="torch")
    return ["random", "kinks"] if found.spec.kinks is not None else ["random"]


WHERE_CASES = [(*case, where) for case in CASES for where in _where(case)]
WHERE_IDS = [f"{ident}-{where}" for case, ident in zip(CASES, IDS, strict=True) for where in _where(case)]


@pytest.mark.parametrize(("name", "kwargs", "make", "options", "where"), WHERE_CASES, ids=WHERE_IDS)
def test_torch_native_path_equals_spec_path(name: str, kwargs: dict[str, Any], make: Maker,
                                            options: dict[str, Any], where: str) -> None:
    for reduction in _reductions(name):
        native, generic = _pair(name, kwargs, reduction, options)
        rng = np.random.default_rng([len(name), len(kwargs), len(reduction), where == "kinks"])
        inputs = make(rng)
        if where == "kinks":
            spec = native.spec
            inputs = spec.kinks(rng, inputs, dict(native.bound.params))
        cot = None
        if reduction == "none":
            cot = rng.normal(size=np.shape(generic(*(torch.as_tensor(inputs[native.spec.inputs[k].name])
                                                     for k in TorchBackend().argument_order(native.spec)))))
        value, grads = _run(native, inputs, cot)
        assert native.native_calls == 1, (name, reduction)  # the kernel ran
        expected_value, expected_grads = _run(generic, inputs, cot)
        np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-12, err_msg=reduction)
        for got, want in zip(grads, expected_grads, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=reduction)


SAME_SHAPE = [case for case in CASES if case[2] in (_real, _probabilities, _logits, _signs, _binary)]


@pytest.mark.parametrize(("name", "kwargs", "make", "options"), SAME_SHAPE,
                         ids=[IDS[CASES.index(c)] for c in SAME_SHAPE])
def test_torch_shape_mismatch_raises_the_core_error(name: str, kwargs: dict[str, Any], make: Maker,
                                                    options: dict[str, Any]) -> None:
    native, generic = _pair(name, kwargs, "mean", options)
    inputs = make(np.random.default_rng(1))
    pred = torch.tensor(inputs["y_pred"])
    target = torch.tensor(inputs["y_true"][:, :2])  # (N, 2) against (N, C): torch would not broadcast it
    messages = []
    for loss in (generic, native):
        with pytest.raises(lossbridge.InputError) as info:
            loss(pred, target)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    # broadcastable (N, 1) targets: torch would warn and broadcast; the core decides, the kernel never runs
    target = torch.tensor(inputs["y_true"][:, :1])
    outcome = []
    for loss in (generic, native):
        try:
            outcome.append(float(loss(pred, target)))
        except lossbridge.InputError as error:
            outcome.append(str(error))
    assert outcome[0] == outcome[1]
    assert native.native_calls == 0


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


NAN = float("nan")
#: (torch name, arguments) that the core refuses (value checks on)
BAD_VALUES = [
    ("BCELoss", (_t(0.3, NAN, 0.6), _t(1.0, 0.0, 1.0))),  # NaN probability
    ("BCELoss", (_t(0.3, 1.5, 0.6), _t(1.0, 0.0, 1.0))),  # probability above 1
    ("BCELoss", (_t(0.3, 0.5, 0.6), _t(1.0, 2.0, 1.0))),  # label above 1
    ("BCELoss", (_t(0.3, 0.5, 0.6), _t(1.0, NAN, 1.0))),  # NaN label
    ("BCEWithLogitsLoss", (_t(0.3, -4.0, 0.6), _t(1.0, -0.5, 1.0))),  # label below 0
    ("SoftMarginLoss", (_t(0.3, -4.0, 0.6), _t(1.0, 0.5, -1.0))),  # not a sign
    ("CrossEntropyLoss", (torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 3]))),  # class 3 of 3
    ("NLLLoss", (torch.full((2, 3), 0.5, dtype=torch.float64), torch.tensor([0, 1]))),  # log-probability > 0
    ("KLDivLoss", (_t(-0.3, -1.0), _t(0.5, -0.5))),  # negative target probability
    ("PoissonNLLLoss", (_t(0.3, 0.5), _t(1.0, -1.0))),  # negative count
    ("MarginRankingLoss", (_t(0.3, 0.5), _t(1.0, 0.2), _t(1.0, 0.0))),  # not a sign
    ("GaussianNLLLoss", (_t(0.3, 0.5), _t(1.0, 0.2), _t(1.0, -1.0))),  # negative variance
    ("CrossEntropyLoss", (torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, -5]))),  # negative, not ignored
    ("MultiLabelMarginLoss", (torch.zeros(2, 3, dtype=torch.float64), torch.tensor([[0, 3, -1], [1, -1, 0]]))),
]


@pytest.mark.parametrize(("name", "args"), BAD_VALUES, ids=[f"{n}-{k}" for k, (n, _) in enumerate(BAD_VALUES)])
def test_torch_bad_values_raise_the_core_error(name: str, args: tuple[torch.Tensor, ...]) -> None:
    native, generic = _pair(name, {}, "mean", {})
    messages = []
    for loss in (generic, native):
        with pytest.raises(lossbridge.InputError) as info:
            loss(*args)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert native.native_calls == 0


def test_torch_uncovered_calls_run_the_generic_path() -> None:
    native, generic = _pair("MSELoss", {}, "mean", {})
    pred = torch.randn(4, 3, dtype=torch.float64)
    target = torch.randn(4, 3, dtype=torch.float64)
    weights = torch.rand(4, dtype=torch.float64)
    assert torch.equal(native(pred, target, sample_weight=weights), generic(pred, target, sample_weight=weights))
    assert torch.equal(native(pred.float(), target), generic(pred.float(), target))  # mixed dtypes
    native(pred, target.clone().requires_grad_(True)).backward()  # a target gradient: the spec path's
    assert native.native_calls == 0
    native.reduction = "sum"  # the reduction can change after construction
    # the textbook sum in float64 (not the mean times 12: that can differ from a sum by an ulp)
    torch.testing.assert_close(native(pred, target), ((pred - target) ** 2).sum(), rtol=1e-14, atol=0.0)
    assert native.native_calls == 1
    ce, _ = _pair("CrossEntropyLoss", {}, "mean", {})
    ce(torch.randn(2, 3, dtype=torch.float64), torch.tensor([0, 1], dtype=torch.int32))  # int32 labels
    assert ce.native_calls == 0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_ignored_labels_take_the_kernel_after_the_core_check(reduction: str) -> None:
    """An ignored label (-100) fails the fused [0, C) check; the core's check (which masks it) passes,
    and torch's kernel ignores it as the core does."""
    params = {"weight": "classes", "label_smoothing": 0.1}
    native, generic = _pair("sparse_categorical_crossentropy", params, reduction, {})
    assert native.spec.name == "sparse_categorical_crossentropy"
    logits = torch.randn(6, C, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0, -100, 4, 2, -100, 1])
    results = []
    for loss in (native, generic):
        x = logits.clone().requires_grad_(True)
        value = loss(x, labels)
        value.sum().backward()
        results.append((value.detach(), x.grad))
    assert native.native_calls == 1
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)


def test_torch_large_inputs_take_the_generic_path_where_it_is_faster() -> None:
    """``below``: from that many prediction elements the generic path runs (the same numbers)."""
    entry = next(e for e in NATIVE_LOSSES if e.native == "HingeEmbeddingLoss")
    assert entry.below is not None
    native, generic = _pair("HingeEmbeddingLoss", {}, "sum", {})
    g = torch.Generator().manual_seed(4)
    pred = torch.randn(entry.below // 10, 10, dtype=torch.float64, generator=g)
    target = torch.where(torch.rand(pred.shape, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    assert torch.equal(native(pred, target), generic(pred, target))
    assert native.native_calls == 0
    native(pred[:-1], target[:-1])
    assert native.native_calls == 1


def test_torch_other_conventions_and_parameters_are_not_overridden() -> None:
    def kind(name: str, **kwargs: Any) -> str:
        return type(lossbridge.get(name, backend="torch", **kwargs)).__name__

    assert kind("mse") == "TorchLoss"
    assert kind("mse", convention="keras") == "TorchLoss"
    assert kind("mse", convention="torch", scale=0.5) == "TorchLoss"
    assert kind("BCELoss", convention="torch", clip_eps=1e-7) == "TorchLoss"
    assert kind("BCEWithLogitsLoss", convention="torch", pos_weight=[2.0]) == "TorchLoss"
    assert kind("CrossEntropyLoss", convention="torch", weight=torch.ones(3)) == "TorchLoss"  # prob-target weights
    assert kind("TripletMarginLoss", convention="torch", margin=0.0) == "TorchLoss"  # torch's kernel refuses it
    with pytest.raises(lossbridge.ParameterError, match="'p' expects float in"):  # torch's max-norm: refused
        kind("TripletMarginLoss", convention="torch", p=float("inf"))


def test_torch_native_module_keeps_the_generic_interface() -> None:
    native, generic = _pair("SmoothL1Loss", {"beta": 0.5}, "mean", {})
    assert repr(native) == repr(generic)
    assert native.state_dict().keys() == generic.state_dict().keys()
    assert native.reduction == "mean" and native.validate
    ce, ce_generic = _pair("NLLLoss", {"weight": "classes"}, "mean", {})
    assert torch.equal(ce.state_dict()["weight"], ce_generic.state_dict()["weight"])
    quiet = lossbridge.get("SmoothL1Loss", backend="torch", convention="torch", beta=0.5, validate=False)
    assert type(quiet).__name__ == "NativeTorchLoss" and quiet.validate is False
    assert quiet.bound == native.bound


@pytest.mark.parametrize("name", ["MSELoss", "BCELoss", "CrossEntropyLoss"])
def test_torch_compiled_native_path_equals_spec_path(name: str) -> None:
    """Under ``torch.compile(fullgraph=True)`` the kernel is traced (no value checks, as the generic path)."""
    native, generic = _pair(name, {}, "mean", {})
    g = torch.Generator().manual_seed(5)
    pred = torch.rand(6, C, dtype=torch.float64, generator=g)
    target = torch.randint(0, C, (6,), generator=g) if name == "CrossEntropyLoss" else torch.rand(6, C, generator=g,
                                                                                                   dtype=torch.float64)
    torch._dynamo.reset()
    compiled = torch.compile(native, fullgraph=True, backend="eager")
    results = []
    for loss in (compiled, generic):
        x = pred.clone().requires_grad_(True)
        value = loss(x, target)
        value.backward()
        results.append((value.detach(), x.grad))
    assert native.native_calls == 0  # traced, not counted
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)


# -- CTC: torch's own argument list (time-major log-probabilities, targets, lengths) ----------------------------
T, B, K, S = 9, 6, 5, 4  # frames, batch, classes (0 = blank), longest target


def _ctc_case(seed: int, *, concatenated: bool, normalized: bool) -> tuple[torch.Tensor, ...]:
    """Random float64 log-probabilities (log-softmax rows, or any values <= 0) and targets with a repeated
    label (needs a blank between), an empty target, a target longer than its input and one whose repeats
    do not fit: both without an alignment (inf), and a sequence of no frames with an empty target."""
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.normal(size=(T, B, K))
    log_probs = z - np.log(np.exp(z).sum(-1, keepdims=True)) if normalized else z - z.max() - 0.25
    targets = rng.integers(1, K, size=(B, S))
    targets[0, 1] = targets[0, 0]  # a repeated label
    targets[3, :3] = 2  # three repeats: 5 frames at least
    input_lengths = np.array([T, T - 1, 2, 4, T, 0])
    target_lengths = np.array([S, 3, 3, 3, 0, 0])  # 2: 3 labels in 2 frames; 3: 2 2 2 in 4 frames (needs 5)
    targets[4] = rng.integers(-3, 9, size=S)  # padding past the target length: any value, never read
    lp = torch.tensor(log_probs, dtype=torch.float64)
    if concatenated:
        flat = torch.tensor(np.concatenate([targets[n, : target_lengths[n]] for n in range(B)]))
        return lp, flat, torch.tensor(input_lengths), torch.tensor(target_lengths)
    return lp, torch.tensor(targets), torch.tensor(input_lengths), torch.tensor(target_lengths)


def _ctc_run(loss: Any, args: tuple[torch.Tensor, ...], cot: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    x = args[0].detach().clone().requires_grad_(True)
    value = loss(x, *args[1:])
    (grad,) = torch.autograd.grad((value * cot if cot is not None else value).sum(), x)
    return value.detach(), grad


CTC_CASES = [(reduction, zero_infinity, concatenated, normalized)
             for reduction in ("mean", "sum", "none") for zero_infinity in (False, True)
             for concatenated in (False, True) for normalized in (True, False)]


@pytest.mark.parametrize(("reduction", "zero_infinity", "concatenated", "normalized"), CTC_CASES,
                         ids=[f"{r}-zi={z}-{'concat' if c else 'padded'}-{'logsoftmax' if n else 'unnormalized'}"
                              for r, z, c, n in CTC_CASES])
def test_torch_native_ctc_equals_spec_path(reduction: str, zero_infinity: bool, concatenated: bool,
                                           normalized: bool) -> None:
    """torch's CTC kernel with the spec's gradient: value and log-probability gradient equal the spec
    path's (1e-10, float64), including sequences without an alignment (inf, or 0 with zero_infinity; a zero
    gradient either way), empty targets and unnormalized log-probabilities (the spec's -gamma, not torch's
    exp(log_probs) - gamma); the value is also torch's own."""
    native = lossbridge.get("CTCLoss", backend="torch", convention="torch", reduction=reduction,
                            zero_infinity=zero_infinity)
    assert type(native).__name__ == "NativeTorchLoss", type(native)
    generic = TorchBackend().materialize_loss(native.bound)
    for seed in range(3):
        args = _ctc_case(seed, concatenated=concatenated, normalized=normalized)
        cot = torch.tensor(np.random.default_rng(seed).normal(size=B)) if reduction == "none" else None
        calls = native.native_calls
        value, grad = _ctc_run(native, args, cot)
        assert native.native_calls == calls + 1  # the kernel ran
        expected_value, expected_grad = _ctc_run(generic, args, cot)
        if reduction == "none":
            assert bool(torch.isinf(expected_value[[2, 3]]).all()) != zero_infinity
        else:  # one sequence without an alignment: the whole loss is inf unless zero_infinity
            assert bool(torch.isinf(expected_value)) != zero_infinity
        torch.testing.assert_close(value, expected_value, rtol=1e-10, atol=1e-10)
        assert bool(torch.isfinite(grad).all())
        torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-10)
        assert float(grad[:, [2, 3]].abs().max()) == 0.0  # no alignment: no gradient
        assert float(grad[args[2][1]:, 1].abs().max()) == 0.0  # frames past the input length: no gradient
        torch_value = torch.nn.functional.ctc_loss(*args, reduction=reduction, zero_infinity=zero_infinity)
        torch.testing.assert_close(value, torch_value, rtol=1e-12, atol=0)
        if normalized and zero_infinity:  # upstream of a log_softmax the gradient is also torch's own
            scores = []
            for loss in (native, torch.nn.CTCLoss(reduction=reduction, zero_infinity=True)):
                z = args[0].detach().clone().requires_grad_(True)
                out = loss(torch.log_softmax(z, -1), *args[1:])
                (out * cot if cot is not None else out).sum().backward()
                scores.append(z.grad)
            torch.testing.assert_close(scores[0], scores[1], rtol=1e-10, atol=1e-10)


def test_torch_native_ctc_float32_and_length_lists() -> None:
    """float32 log-probabilities (torch's usual dtype) and lengths as Python lists take the kernel too."""
    native = lossbridge.get("CTCLoss", backend="torch", convention="torch")
    generic = TorchBackend().materialize_loss(native.bound)
    lp, targets, input_lengths, target_lengths = _ctc_case(7, concatenated=False, normalized=True)
    lp = lp.float()
    for lengths in ((input_lengths, target_lengths), (input_lengths.tolist(), tuple(target_lengths.tolist()))):
        args = (lp, targets, *lengths)
        value, grad = _ctc_run(native, args, None)
        expected_value, expected_grad = _ctc_run(generic, args, None)
        assert value.dtype == grad.dtype == torch.float32
        torch.testing.assert_close(value, expected_value, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)
    assert native.native_calls == 2


def test_torch_native_ctc_calls_the_kernel_does_not_compute_run_the_spec_path() -> None:
    """The value gate: a -inf log-probability (the spec gives NaN, torch a number), an input length past
    the frames (torch refuses it, the spec uses every frame), a used label outside [0, C) (torch reads it
    unchecked), int32 targets, an unbatched call: the spec path, the same numbers as the generic module."""
    native = lossbridge.get("CTCLoss", backend="torch", convention="torch", reduction="sum", zero_infinity=True)
    generic = TorchBackend().materialize_loss(native.bound)
    lp, targets, input_lengths, target_lengths = _ctc_case(3, concatenated=False, normalized=True)
    minus_inf = lp.clone()
    minus_inf[1, 0, 2] = -float("inf")
    long_input = input_lengths.clone()
    long_input[0] = T + 2
    bad_label = targets.clone()
    bad_label[0, 0] = K
    calls = [
        (minus_inf, targets, input_lengths, target_lengths),
        (lp, targets, long_input, target_lengths),
        (lp, bad_label, input_lengths, target_lengths),
        (lp, targets.to(torch.int32), input_lengths, target_lengths),
        (lp[:, 0], targets[0], input_lengths[0], target_lengths[0]),
    ]
    for args in calls:
        got, want = native(*args), generic(*args)
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
    assert native.native_calls == 0
    native(lp, targets, input_lengths, target_lengths)  # padding values past a target's length are not checked
    assert native.native_calls == 1


def test_torch_native_ctc_value_checks() -> None:
    """Log-probabilities above 0 raise the core's error (validate=True, as the generic module); with
    validate=False torch's kernel computes them as the spec does."""
    lp, targets, input_lengths, target_lengths = _ctc_case(5, concatenated=True, normalized=True)
    bad = lp.clone()
    bad[0, 1, 1] = 0.5
    native = lossbridge.get("CTCLoss", backend="torch", convention="torch")
    generic = TorchBackend().materialize_loss(native.bound)
    messages = []
    for loss in (generic, native):
        with pytest.raises(lossbridge.InputError) as info:
            loss(bad, targets, input_lengths, target_lengths)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "log-probabilities" in messages[0]
    assert native.native_calls == 0
    quiet = lossbridge.get("CTCLoss", backend="torch", convention="torch", zero_infinity=True, validate=False)
    quiet_generic = TorchBackend().materialize_loss(quiet.bound, validate=False)
    args = (bad, targets, input_lengths, target_lengths)
    value, grad = _ctc_run(quiet, args, None)
    expected_value, expected_grad = _ctc_run(quiet_generic, args, None)
    assert quiet.native_calls == 1
    torch.testing.assert_close(value, expected_value, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-10)


def test_torch_native_ctc_has_no_double_backward() -> None:
    """torch's CTC backward has no derivative: a second derivative through the kernel raises torch's own
    error, as through torch.nn.CTCLoss (the spec path, TorchBackend().materialize_loss, has one)."""
    native = lossbridge.get("CTCLoss", backend="torch", convention="torch")
    lp, targets, input_lengths, target_lengths = _ctc_case(6, concatenated=False, normalized=True)
    x = lp.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(native(x, targets, input_lengths, target_lengths), x, create_graph=True)
    with pytest.raises(RuntimeError, match="_ctc_loss_backward is not implemented"):
        torch.autograd.grad(grad.sum(), x)
    (first,) = torch.autograd.grad(native(x, targets, input_lengths, target_lengths), x)
    torch.testing.assert_close(grad.detach(), first, rtol=0, atol=0)  # create_graph: the same first derivative
