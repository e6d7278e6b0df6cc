"""One benchmark for the whole catalog: every spec with a native counterpart, on every installed backend.

Each row times lossbridge against the framework's own object, built from the spec's
:class:`~lossbridge.Convention` (data, not a per-spec table): the native object is the one
``Convention.native`` names (``torch.nn.BCELoss``, ``keras.losses.Huber``, ``optax.adam``), made with
the framework's defaults, and lossbridge's is ``lossbridge.get(spec, backend=..., convention=...)`` with
the preset of that native name, so both compute the same numbers (checked once per row: ``agree``).
Inputs come from the spec's input domains (the conformance kit's samplers), in the backend's
argument order.

- torch: loss forward + backward against ``torch.nn`` (eager; ``torch.compile`` for a few losses in
  the full run), one optimizer ``step()`` against ``torch.optim``'s default step; a closure optimizer
  (L-BFGS) times ``step(closure)`` against torch's with the same closure; a gradient transform whose
  torch counterpart is a function (``clip_grad_norm_``) times its ``step()`` against that function. In
  the full run a few optimizers also run ``fused=False, compile=True`` (mode ``compiled``) against the
  fastest of torch's default, ``foreach`` and ``fused`` steps. Mode ``state``: bytes of optimizer state
  (and any cache lossbridge keeps) after one step, against ``torch.optim``'s.
- JAX: ``jax.jit`` of ``value_and_grad`` of the mean loss against ``optax.losses``; one jitted
  ``update`` + ``apply_updates`` against the ``optax`` transformation (required arguments such as
  ``optax.clip``'s ``max_delta`` take the convention's values, the same on both sides). Mode ``memory``
  (full run): the bytes the compiled ``jit(value_and_grad)`` allocates beyond its arguments, from XLA's
  compiled memory analysis (``lower(...).compile().memory_analysis()``: ``temp_size_in_bytes`` +
  ``output_size_in_bytes``; :func:`jax_extra_bytes`), exact and deterministic, nothing executed. Mode
  ``state``: bytes of the optimizer state pytree after one update (sum of the leaves' ``nbytes``;
  :func:`pytree_bytes`) against ``tx.init(params)``'s after one update.
- TensorFlow: loss forward + backward (GradientTape) in a ``tf.function`` (graph) and with
  ``jit_compile=True`` (XLA) against ``keras.losses``; one ``apply`` against ``keras.optimizers``.
  Mode ``memory`` (full run): the peak of TensorFlow's CPU allocator during one forward + gradient
  (``tf.config.experimental.get_memory_info("CPU:0")`` after ``reset_memory_stats``; outputs included,
  every tensor and XLA buffer, at the allocator's chunk granularity; :func:`tf_peak_extra_mb`), in graph
  mode and under XLA (size labels ``<size>/graph``, ``<size>/xla``). Mode ``state``: bytes of
  ``optimizer.variables`` after ``build`` and one ``apply`` (:func:`optimizer_variable_bytes`).
- NumPy (no native framework): the bound loss (checks, reduction, analytic gradient) against the
  spec's own ``fn`` + ``vjp`` called directly: the binding's overhead. Peak memory (tracemalloc) too.

Also: the Adam step of each torch mode against the memory-bandwidth floor (7 arrays x 4 bytes x
parameters / measured copy bandwidth) and, in the full run, peak extra memory of forward + backward of
every torch loss against ``torch.nn`` (mode ``memory``: cross-entropies and BCE on 4096x32000, the rest
at 1e7 elements; :func:`memory_table`). JAX and TensorFlow measure their ``memory`` rows at the same sizes
(:func:`memory_shape`) inside each loss's rows of the full run (so ``--no-extras`` keeps them); coupled
losses have none. Cross-check of the JAX analysis against the process (``VmHWM`` of a fresh process per
side, the first call after compiling, when this was written; lossbridge / Optax): multiclass sparsemax at
1e7, analysis 915.5 / 186.9 MB, ``VmHWM`` 919.7 / 195.5 MB; mse at 1e7, 38.1 / 38.1 MB and 38.8 / 38.8 MB;
sparse cross-entropy at 4096x32000, 500.0 / 500.1 MB and 700 / 693 MB (both sides pay the same one-time
runtime pages there; a second call reuses freed pages, so the process figure is not stable and the
analysis is what the rows use). TensorFlow's allocator peak against a fresh process's first-call
``VmHWM`` (graph mode, lossbridge / Keras): sparse cross-entropy at 4096x32000, 2149 / 1250 MB and
2219 / 1843 MB; hinge at 1e7, 214 / 128 MB and 294 / 180 MB (the same direction; ``VmHWM`` adds tracing
and runtime pages). Schedules are not timed (a scalar per step).

Rows that miss their target carry the measured cause and what would be needed, read from
``benchmarks/reasons/*.toml`` (format: ``benchmarks/reasons/README.md``); a missed row without one is
``explained: false``, and the summary counts met / explained / unexplained per backend, kind and mode.

Timing: warm-up (tracing, compiling), then ``repeats`` samples of an auto-sized inner loop, lossbridge
and native interleaved so machine load hits both alike; the median of each. The default clock is CPU
time (``--clock cpu``: the calling thread's for torch and NumPy, the process's for JAX and TensorFlow),
steady on a shared machine; ``--clock wall`` uses ``perf_counter``. A coupled loss (every row against
every other) stops at 1e4 elements; rows that cannot be built say why (``status``, ``reason``). Speed is
reported, never asserted. Writes ``reports/bench.json`` (``bench.partial.json`` after every spec while
running) and ``reports/bench.png``.

    python -m benchmarks [--quick] [--only SPEC[,SPEC]] [--backend B[,B]] [--kind loss|optimizer] [--reasons DIR]
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import lossbridge
from lossbridge.bound import bind
from lossbridge.registry import native_keys, normalize
from lossbridge.spec import domain

__all__ = ["Plan", "Row", "main", "run"]

#: The framework whose objects are each backend's native counterpart.
FRAMEWORK = {"torch": "torch", "jax": "optax", "tensorflow": "keras"}
#: Where a convention's names are looked up when ``Convention.native`` itself is not importable.
NATIVE_MODULES = {
    ("torch", "loss"): ("torch.nn",),
    ("torch", "optimizer"): ("torch.optim",),
    ("keras", "loss"): ("keras.losses",),
    ("keras", "optimizer"): ("keras.optimizers",),
    ("optax", "loss"): ("optax.losses",),
    ("optax", "optimizer"): ("optax", "optax.contrib"),
}
#: The issue's targets (lossbridge time / native time), per backend, kind and mode.
TARGETS = {
    ("torch", "loss", "eager"): 1.3,
    ("torch", "loss", "compiled"): 1.0,
    ("torch", "optimizer", "eager"): 1.0,
    ("torch", "optimizer", "compiled"): 1.0,  # compile=True against torch's fastest mode (fused where it exists)
    ("torch", "loss", "memory"): 1.0,  # peak extra memory of forward + backward
    ("torch", "optimizer", "state"): 1.0,  # bytes of optimizer state (and lossbridge's caches) after one step
    ("jax", "loss", "jit"): 1.1,
    ("jax", "optimizer", "jit"): 1.0,
    ("tensorflow", "loss", "graph"): 1.3,
    ("tensorflow", "loss", "xla"): 1.0,
    ("tensorflow", "optimizer", "graph"): 1.3,
    ("tensorflow", "optimizer", "xla"): 1.0,
    ("jax", "loss", "memory"): 1.0,  # XLA's compiled memory analysis: temp + output bytes of jit(value_and_grad)
    ("jax", "optimizer", "state"): 1.0,  # bytes of the state pytree after one update
    ("tensorflow", "loss", "memory"): 1.0,  # peak of TF's CPU allocator during one forward + gradient
    ("tensorflow", "optimizer", "state"): 1.0,  # bytes of optimizer.variables after one apply
}
#: Peak memory within this of native's meets a 1.0x target: torch's VmHWM counts 4 kB pages, TensorFlow's
#: allocator rounds to its chunks; JAX's compiled memory analysis and state bytes are exact (no slack).
MEMORY_SLACK_MB = {"torch": 1.0, "tensorflow": 1.0}
COUPLED_MAX = 10_000  # a coupled loss's pairs grow as rows squared
CLASSES = 10  # the last axis of every loss input: a batch of n / 10 rows over 10 classes
COMPILED_LOSSES = ("mse", "binary_crossentropy", "sparse_categorical_crossentropy")
BACKENDS = ("numpy", "torch", "jax", "tensorflow")


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats of one run (``--quick`` or the full run)."""

    loss_sizes: dict[str, tuple[int, ...]]
    optimizer_sizes: dict[str, tuple[tuple[int, int], ...]]
    repeats: int
    sample_seconds: float
    torch_compile: bool
    memory: bool
    adam_sizes: tuple[tuple[int, int], ...]
    slow: bool = True  # rows whose warm-up alone takes tens of seconds (JAX CTC's compilation): full run only


FULL = Plan(
    loss_sizes={"numpy": (1_000, 100_000), "torch": (1_000, 100_000, 1_000_000),
                "jax": (1_000, 100_000), "tensorflow": (1_000, 100_000)},
    optimizer_sizes={"torch": ((1_000_000, 10), (10_000_000, 200)), "jax": ((1_000_000, 10),),
                     "tensorflow": ((1_000_000, 10),)},
    repeats=5,
    sample_seconds=0.02,
    torch_compile=True,
    memory=True,
    adam_sizes=((1_000_000, 10), (10_000_000, 200)),
)
QUICK = Plan(
    loss_sizes={"numpy": (1_000,), "torch": (1_000,), "jax": (1_000,), "tensorflow": (1_000,)},
    optimizer_sizes={"torch": ((100_000, 10),), "jax": ((100_000, 10),), "tensorflow": ((100_000, 10),)},
    repeats=3,
    sample_seconds=0.005,
    torch_compile=False,
    memory=False,
    adam_sizes=((1_000_000, 10),),
    slow=False,
)


@dataclass
class Row:
    """One measurement: lossbridge and the native object, same inputs, same mode."""

    backend: str
    spec: str
    kind: str
    mode: str
    size: str
    native: str = ""
    convention: str | None = None
    lossbridge_s: float | None = None
    native_s: float | None = None
    ratio: float | None = None
    target: float | None = None
    meets: bool | None = None
    peak_mb_lossbridge: float | None = None
    peak_mb_native: float | None = None
    agree: bool | None = None
    status: str = "ok"
    reason: str = ""
    cause: str = ""
    needed: str = ""
    explained: bool | None = None
    ratio_spread: list[float] | None = None  # quartiles of the interleaved repeats' ratios (timed rows)
    within_spread: bool | None = None  # a miss with no entry whose lower quartile meets the target

    def finish(self, ours: float, native: float, ratios: tuple[float, ...] = ()) -> Row:
        self.lossbridge_s, self.native_s = ours, native
        if len(ratios) >= 3:  # the interleaved repeats' ratios: lower quartile, upper quartile
            low, _, high = statistics.quantiles(ratios, n=4, method="inclusive")
            self.ratio_spread = [low, high]
        return self._judge(ours / native if native > 0 else None)

    def finish_memory(self, ours_mb: float, native_mb: float) -> Row:
        """A memory row (mode ``memory`` or ``state``): the ratio of megabytes, no times. Within
        :data:`MEMORY_SLACK_MB` of native's peak counts as meeting the target (page-granular high-water
        marks, allocator chunks); JAX's analysis and state bytes are exact."""
        self.peak_mb_lossbridge, self.peak_mb_native = ours_mb, native_mb
        self._judge(ours_mb / native_mb if native_mb > 0 else None)
        slack = MEMORY_SLACK_MB.get(self.backend, 0.0) if self.mode == "memory" else 0.0  # state: exact bytes
        if self.target is not None and (self.meets is False or native_mb <= 0):
            self.meets = ours_mb <= native_mb * self.target + slack  # native 0 (SGD without momentum): no ratio
        return self

    def _judge(self, ratio: float | None) -> Row:
        self.ratio = ratio
        self.target = TARGETS.get((self.backend, self.kind, self.mode))
        if self.target is not None and self.ratio is not None:
            self.meets = self.ratio <= self.target
        return self


@dataclass
class Task:
    """The rows of one spec on one backend (all its sizes and modes)."""

    backend: str
    spec: Any
    kind: str
    run: Callable[[Plan], Iterator[Row]]
    label: str = field(default="")


# ---------------------------------------------------------------------------------------------
# timing


#: The clock of each backend under ``--clock cpu`` (the default): CPU seconds, steady on a shared
#: machine where wall-clock time counts the time other processes hold the cores. torch (one intra-op
#: thread; CPU autograd runs on the calling thread) and NumPy compute on the calling thread; JAX and
#: TensorFlow run on their own thread pools, so the whole process's CPU time is counted.
CPU_CLOCKS: dict[str, Callable[[], float]] = {
    "numpy": time.thread_time, "torch": time.thread_time, "jax": time.process_time, "tensorflow": time.process_time,
}
_CLOCK: dict[str, Callable[[], float]] = dict(CPU_CLOCKS)


class Timing(NamedTuple):
    """Median seconds per call of each side, and each interleaved repeat's ratio ours / native."""

    ours: float
    native: float
    ratios: tuple[float, ...]


def _timed_pair(
    ours: Callable[[], Any], native: Callable[[], Any], plan: Plan, sync: Callable[[Any], Any] = lambda x: x,
    *, backend: str = "torch", warmup: int = 2,
) -> Timing:
    """Median seconds per call of each callable, interleaved, after ``warmup`` calls of each (``backend``
    picks the clock), and the ratio of each repeat's pair (the run's own spread)."""
    clock = _CLOCK.get(backend, time.perf_counter)
    for fn in (ours, native) * warmup:
        sync(fn())
    once = 1e-7
    for fn in (ours, native):
        start = time.perf_counter()
        sync(fn())
        once = max(once, time.perf_counter() - start)
    inner = max(1, min(2000, int(plan.sample_seconds / once)))
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(plan.repeats):
        for fn, out in ((ours, samples[0]), (native, samples[1])):
            start = clock()
            for _ in range(inner):
                sync(fn())
            out.append((clock() - start) / inner)
    ratios = tuple(a / b for a, b in zip(*samples, strict=True) if b > 0)
    return Timing(statistics.median(samples[0]), statistics.median(samples[1]), ratios)


def _close(a: Any, b: Any, tol: float = 2e-3) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return bool(np.allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.max(np.abs(b), initial=0.0)))))


def _size_label(n: int) -> str:
    exp = round(float(np.log10(n)))
    return f"1e{exp}" if 10**exp == n else str(n)


# ---------------------------------------------------------------------------------------------
# native objects and inputs, from the conventions


def native_object(spec: Any, framework: str, kind: str) -> tuple[str, dict[str, Any], Any]:
    """``(path, preset, object)``: the framework object ``Convention.native`` names, else one of its names."""
    conv = spec.conventions[framework]
    presets = native_keys(framework, conv)
    candidates: list[tuple[str, str]] = []
    first = conv.native.split()[0] if conv.native else ""
    if first.count("."):
        module, _, attr = first.rpartition(".")
        candidates.append((module, attr))
    for name in conv.names:
        candidates += [(module, name) for module in NATIVE_MODULES[(framework, kind)]]
    for module_name, attr in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        obj = getattr(module, attr, None)
        if obj is not None and callable(obj):
            return f"{module_name}.{attr}", dict(presets.get(normalize(attr), {})), obj
    raise LookupError(f"no importable native object for {conv.native!r}")


def loss_inputs(
    spec: Any, convention: str | None, preset: dict[str, Any], n: int, classes: int = CLASSES,
) -> list[tuple[Any, bool, bool]]:
    """``(array, integer, differentiable)`` per spec input, sampled from its domain: ``(n / classes, classes)``."""
    rng = np.random.default_rng(0)
    resolved = bind(spec, convention=convention, params=preset).params
    shape = (max(n // classes, 1), classes)
    out = []
    for decl in spec.inputs:
        dom = domain(decl.domain_for(resolved))
        x = np.asarray(dom.sample(rng, shape, np.float64, False))
        out.append((x, dom.integer, decl.differentiable))
    return out


def _loss_sizes(spec: Any, plan: Plan, backend: str) -> tuple[int, ...]:
    """The plan's sizes; a coupled loss (every row against every other: Circle, NT-Xent) stops at 1e4."""
    sizes = plan.loss_sizes[backend]
    if not spec.coupled:
        return sizes
    return tuple(n for n in sizes if n <= COUPLED_MAX) or sizes[:1]


def _ctc_inputs(
    framework: str | None, n: int, frames: int = 50, length: int = 10,
) -> list[tuple[np.ndarray, bool, bool]]:
    """CTC in each framework's own argument list (its ``NativeInputs``; ``None``: the spec's own order,
    Optax's layout): n = batch x frames x 10 classes, ``length`` labels per sequence."""
    rng = np.random.default_rng(0)
    classes = CLASSES
    batch = max(n // (frames * classes), 2)
    logits = rng.normal(size=(batch, frames, classes))
    labels = rng.integers(1, classes, size=(batch, length))
    if framework == "torch":
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        return [(log_probs.transpose(1, 0, 2).copy(), False, True), (labels, True, False),
                (np.full(batch, frames), True, False), (np.full(batch, length), True, False)]
    if framework == "keras":
        return [(labels, True, False), (logits, False, True)]
    if framework is None:  # the spec's inputs: labels right-padded to the frame count, logits, their paddings
        padded, label_paddings = np.zeros((batch, frames), np.int64), np.ones((batch, frames))
        padded[:, :length], label_paddings[:, :length] = labels, 0.0
        return [(padded, True, False), (logits, False, True), (label_paddings, False, False),
                (np.zeros((batch, frames)), False, False)]
    return [(logits, False, True), (np.zeros((batch, frames)), False, False), (labels, True, False),
            (np.zeros((batch, length)), False, False)]


#: Losses whose native argument list is not the spec's inputs: a small explicit table, native order.
NATIVE_INPUTS: dict[str, Callable[[str | None, int], list[tuple[np.ndarray, bool, bool]]]] = {"ctc": _ctc_inputs}


#: Rows not timed, with the measured reason (found by this benchmark; see the report).
NOT_RUN = {
    ("tensorflow", "ctc"): "not timed: the graph-mode step (tf.function + GradientTape) of lossbridge's CTC and "
    "keras.losses.CTC at 2x50x10 had not finished warming up after 3 minutes (resident memory past 4 GB)",
    **{("tensorflow", name): f"no native counterpart to time: Keras has no standalone {name} transform, only the "
       f"{option}= option every keras.optimizers.Optimizer applies inside apply() before its own update (lossbridge: "
       f"chain({name}, optimizer)); a row would time an optimizer pair, not the transform"
       for name, option in (("clip", "clipvalue"), ("clip_by_norm", "clipnorm"),
                            ("clip_by_global_norm", "global_clipnorm"))},
}
#: CTC under jax.jit: lossbridge's value_and_grad did not finish compiling in 390 s at 2x50x10 (10 labels;
#: optax.losses.ctc_loss: 3.7 s), and compiled in 15.5 s at 2x10x10 with 3 labels (optax: 2.6 s), measured on
#: this machine while writing this: so 10 frames and 3 labels there, and only the plan's first size (a new
#: shape is a new compilation).
CTC_SHAPE = {"optax": {"frames": 10, "length": 3}}


def _native_args(
    spec: Any, framework: str, preset: dict[str, Any], n: int, backend: Any, classes: int = CLASSES,
) -> list[Any]:
    """``(array, integer, differentiable)`` per positional argument, in the backend's (native) order."""
    if spec.name == "ctc":
        return _ctc_inputs(framework, n, **CTC_SHAPE.get(framework, {}))
    if spec.name in NATIVE_INPUTS:
        return NATIVE_INPUTS[spec.name](framework, n)
    return _spec_order(backend, spec, loss_inputs(spec, framework, preset, n, classes))


def _required(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    p = params.get(name)
    return p is not None and (p.default is inspect.Parameter.empty or p.default is None)


def _lr_kwargs(native: Any, framework: str) -> dict[str, Any]:
    """The learning rate where the native constructor requires one (the same value for both sides)."""
    key = "lr" if framework == "torch" else "learning_rate"
    return {key: 1e-3} if _required(native, key) else {}


def _require_class(path: str, native: Any) -> None:
    if not inspect.isclass(native):
        raise TypeError(f"{path} is a function, not an optimizer class: no native step to time")


def _tree_shapes(total: int, count: int) -> list[tuple[int, int]]:
    size = total // count
    rows = max(1, int(np.sqrt(size)))
    return [(rows, size // rows)] * count


# ---------------------------------------------------------------------------------------------
# per backend


def _spec_order(backend: Any, spec: Any, items: list[Any]) -> list[Any]:
    return [items[k] for k in backend.argument_order(spec)]


def _torch_loss_rows(spec: Any, plan: Plan, backend: Any) -> Iterator[Row]:
    import torch

    path, preset, native_cls = native_object(spec, "torch", "loss")
    native = native_cls() if inspect.isclass(native_cls) else native_cls
    ours = lossbridge.get(spec.name, backend="torch", convention="torch", **preset)
    compiled: tuple[Any, Any] | None = None
    for n in _loss_sizes(spec, plan, "torch"):
        row = Row("torch", spec.name, "loss", "eager", _size_label(n), path, "torch")
        args = []
        for x, integer, diff in _native_args(spec, "torch", preset, n, backend):
            t = torch.tensor(x, dtype=torch.int64 if integer else torch.float32)
            args.append(t.requires_grad_(True) if diff and not integer else t)
        leaves = [a for a in args if a.requires_grad]

        def call(fn: Any, args: list[Any] = args, leaves: list[Any] = leaves) -> Callable[[], None]:
            def run() -> None:
                for leaf in leaves:
                    leaf.grad = None
                fn(*args).sum().backward()

            return run

        with torch.no_grad():
            row.agree = _close(ours(*args).sum(), native(*args).sum())
        yield row.finish(*_timed_pair(call(ours), call(native), plan))
        if plan.torch_compile and spec.name in COMPILED_LOSSES:
            if compiled is None:
                torch._dynamo.reset()  # lossbridge's forward is one code object for every spec: a fresh cache
                torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
                compiled = (torch.compile(ours, fullgraph=True, dynamic=True),
                            torch.compile(_plain(native), fullgraph=True, dynamic=True))
            row = Row("torch", spec.name, "loss", "compiled", _size_label(n), path, "torch", agree=row.agree)
            yield row.finish(*_timed_pair(call(compiled[0]), call(compiled[1]), plan))


def _plain(module: Any) -> Callable[..., Any]:
    def native(*args: Any) -> Any:  # its own code object: its own Dynamo cache
        return module(*args)

    return native


#: The closure optimizers' row (torch L-BFGS): 100k parameters in 10 tensors, 5 iterations per step
#: (the same keywords on both sides).
CLOSURE_SIZE = (100_000, 10)
CLOSURE_HYPER = {"max_iter": 5}
#: Optimizers timed with ``compile=True`` in the full run (the compile time of every optimizer would not
#: fit the 15 minutes): against torch's fastest mode for each (default, ``foreach=True``, ``fused=True``).
COMPILED_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")


def native_kwargs(spec: Any, framework: str, native: Any, preset: dict[str, Any], *, skip: int = 0) -> dict[str, Any]:
    """The native callable's required keyword arguments, valued from the spec under the framework's convention.

    A parameter without a default (after the first ``skip`` positional ones: the parameters of
    ``clip_grad_norm_``) takes the convention's value of the spec parameter it maps to
    (``Convention.kwargs``, the framework-wide renames, else the same name), else the spec's default.
    The learning rate is :func:`_lr_kwargs`'s.
    """
    from lossbridge.conventions import FRAMEWORK_KWARGS

    try:
        params = list(inspect.signature(native).parameters.values())[skip:]
    except (TypeError, ValueError):
        return {}
    conv = spec.conventions[framework]
    hyper = dict(bind(spec, convention=framework, params=preset).hyper)
    out = {}
    for p in params:
        if p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in ("lr", "learning_rate"):
            continue
        target = conv.kwargs.get(p.name) or FRAMEWORK_KWARGS.get(framework, {}).get(p.name) or p.name
        if isinstance(target, str) and target in hyper:
            out[p.name] = hyper[target]
    return out


def _torch_params(total: int, count: int) -> list[Any]:
    import torch

    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in _tree_shapes(total, count)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def _torch_optimizer_rows(spec: Any, plan: Plan) -> Iterator[Row]:
    path, preset, native_cls = native_object(spec, "torch", "optimizer")
    ours_cls = lossbridge.get(spec.name, backend="torch", convention="torch", **preset)
    if not inspect.isclass(native_cls):
        yield from _torch_transform_rows(spec, plan, path, preset, native_cls, ours_cls)
        return
    kw = _lr_kwargs(native_cls, "torch")
    if _needs_closure(native_cls) or _needs_closure(ours_cls):
        yield from _torch_closure_rows(spec, plan, path, native_cls, ours_cls, kw)
        return
    for k, (total, count) in enumerate(plan.optimizer_sizes["torch"]):
        size = f"{total / 1e6:g}M/{count}"
        row = Row("torch", spec.name, "optimizer", "eager", size, path, "torch")
        sides = []
        for make in (ours_cls, native_cls):
            params = _torch_params(total, count)
            sides.append((make(params, **kw), params))
        sides[0][0].step()
        sides[1][0].step()
        row.agree = _close(sides[0][1][0].detach(), sides[1][1][0].detach(), 1e-4)
        yield row.finish(*_timed_pair(sides[0][0].step, sides[1][0].step, plan))
        if k == 0:  # state bytes do not depend on timing: once, at the first size
            state = Row("torch", spec.name, "optimizer", "state", size, path, "torch", agree=row.agree)
            yield state.finish_memory(*(state_bytes(opt, ps) / 2**20 for opt, ps in sides))
        if plan.torch_compile and spec.name in COMPILED_OPTIMIZERS:
            yield _torch_compiled_row(spec, plan, path, native_cls, ours_cls, kw, total, count)


def _needs_closure(cls: Any) -> bool:
    """``step(closure)`` without a default (torch's L-BFGS: its signature has one, its class says so)."""
    import torch

    if isinstance(cls, type) and issubclass(cls, torch.optim.LBFGS):
        return True
    try:
        p = inspect.signature(cls.step).parameters.get("closure")
    except (TypeError, ValueError):
        return False
    return p is not None and p.default is inspect.Parameter.empty


def _torch_native_modes(native_cls: Any) -> list[tuple[str, dict[str, Any]]]:
    """torch's modes of an optimizer class: its default step, ``foreach=True``, ``fused=True`` where it exists."""
    from benchmarks.bench_torch import _has_fused

    modes: list[tuple[str, dict[str, Any]]] = [("default", {})]
    if "foreach" in inspect.signature(native_cls).parameters:
        modes.append(("foreach", {"foreach": True}))
    if _has_fused(native_cls):
        modes.append(("fused", {"fused": True}))
    return modes


def _torch_compiled_row(
    spec: Any, plan: Plan, path: str, native_cls: Any, ours_cls: Any, kw: dict[str, Any], total: int, count: int,
) -> Row:
    """lossbridge's spec update through ``torch.compile`` (``fused=False, compile=True``) against the fastest
    of torch's modes, each timed interleaved with it; ``native`` names the mode that was fastest."""
    params = _torch_params(total, count)
    ours = ours_cls(params, fused=False, compile=True, **kw)
    ours.step()
    results = []
    for label, options in _torch_native_modes(native_cls):
        native_params = _torch_params(total, count)
        native = native_cls(native_params, **kw, **options)
        native.step()
        results.append((*_timed_pair(ours.step, native.step, plan)[:2], label, native_params))
    best = min(results, key=lambda r: r[1])
    row = Row("torch", spec.name, "optimizer", "compiled", f"{total / 1e6:g}M/{count}",
              path if best[2] == "default" else f"{path}({best[2]}=True)", "torch")
    fresh = _torch_params(total, count)  # one step each from the same point: do the values agree?
    ref = _torch_params(total, count)
    ours_cls(fresh, fused=False, compile=True, **kw).step()
    native_cls(ref, **kw).step()
    row.agree = _close(fresh[0].detach(), ref[0].detach(), 1e-4)
    return row.finish(statistics.median(r[0] for r in results), best[1])


def _torch_closure_rows(
    spec: Any, plan: Plan, path: str, native_cls: Any, ours_cls: Any, kw: dict[str, Any],
) -> Iterator[Row]:
    """An optimizer whose ``step`` needs a closure (L-BFGS): one ``step(closure)`` from the same start.

    The objective is an ill-conditioned separable quadratic (curvatures 1 to 100), so all
    :data:`CLOSURE_HYPER` ``max_iter`` iterations run; each timed call resets the parameters and builds a
    fresh optimizer (both sides alike, with the same keywords). One size, :data:`CLOSURE_SIZE`, no extra
    warm-up and at most 3 repeats: lossbridge's step took 4.4 s there when this was written.
    """
    import torch

    total, count = CLOSURE_SIZE
    kw = {**kw, **{k: v for k, v in CLOSURE_HYPER.items() if k in inspect.signature(native_cls).parameters}}
    gen = torch.Generator().manual_seed(0)
    shapes = _tree_shapes(total, count)
    curv = [torch.linspace(1.0, 100.0, int(np.prod(s))).reshape(s) for s in shapes]
    start = [torch.randn(s, generator=gen) for s in shapes]
    runners, finals = [], []
    for make in (ours_cls, native_cls):
        params = [torch.nn.Parameter(x.clone()) for x in start]

        def closure(params: list[Any] = params) -> Any:
            for p in params:
                p.grad = None
            loss = sum(0.5 * (c * p * p).sum() for c, p in zip(curv, params, strict=True))
            loss.backward()
            return loss

        def run(make: Any = make, params: list[Any] = params, closure: Any = closure) -> Any:
            with torch.no_grad():
                for p, x in zip(params, start, strict=True):
                    p.copy_(x)
            return make(params, **kw).step(closure)

        run()
        finals.append(params[0].detach().clone())
        runners.append(run)
    row = Row("torch", spec.name, "optimizer", "eager", f"{total / 1e6:g}M/{count}", path, "torch")
    row.agree = _close(finals[0], finals[1], 1e-4)
    short = Plan(**{**asdict(plan), "repeats": min(plan.repeats, 3)})
    yield row.finish(*_timed_pair(runners[0], runners[1], short, warmup=0))


def _torch_transform_rows(
    spec: Any, plan: Plan, path: str, preset: dict[str, Any], native_fn: Any, ours_cls: Any,
) -> Iterator[Row]:
    """A gradient transform whose torch counterpart is a function of the parameters (``clip_grad_norm_``):
    lossbridge's transform ``step()`` against that function, as a step, with the same arguments."""
    import torch

    kw = native_kwargs(spec, "torch", native_fn, preset, skip=1)
    for total, count in plan.optimizer_sizes["torch"]:
        row = Row("torch", spec.name, "optimizer", "eager", f"{total / 1e6:g}M/{count}", path, "torch")
        ours_params, native_params = _torch_params(total, count), _torch_params(total, count)
        ours = ours_cls(ours_params, **kw)
        ours.step()
        native_fn(native_params, **kw)
        row.agree = _close(ours_params[0].grad, native_params[0].grad, 1e-4)
        with torch.no_grad():
            yield row.finish(*_timed_pair(ours.step, lambda p=native_params: native_fn(p, **kw), plan))


def _jax_loss_rows(spec: Any, plan: Plan, backend: Any) -> Iterator[Row]:
    import jax
    import jax.numpy as jnp

    path, preset, native = native_object(spec, "optax", "loss")
    if ("jax", spec.name) in NOT_RUN:
        raise RuntimeError(NOT_RUN[("jax", spec.name)])
    if spec.name == "ctc" and not plan.slow:
        raise RuntimeError("not timed in --quick: jax.jit of lossbridge's CTC value_and_grad compiles for 15-45 s "
                           "at 10x10x10 (see CTC_SHAPE); the full run times it")
    ours = lossbridge.get(spec.name, backend="jax", convention="optax", **preset)
    sizes = _loss_sizes(spec, plan, "jax")
    for n in sizes[:1] if spec.name == "ctc" else sizes:  # see CTC_SHAPE
        row = Row("jax", spec.name, "loss", "jit", _size_label(n), path, "optax")
        args, argnums_list = [], []
        for i, (x, integer, diff) in enumerate(_native_args(spec, "optax", preset, n, backend)):
            args.append(jnp.asarray(x, jnp.int32 if integer else jnp.float32))
            if diff and not integer:
                argnums_list.append(i)
        argnums = tuple(argnums_list)

        def make(fn: Any, args: list[Any] = args, argnums: tuple[int, ...] = argnums) -> Callable[[], Any]:
            step = jax.jit(jax.value_and_grad(lambda *a: jnp.mean(fn(*a)), argnums=argnums))
            return lambda: step(*args)

        row.agree = _close(jnp.mean(ours(*args)), jnp.mean(native(*args)))
        yield row.finish(*_timed_pair(make(ours), make(native), plan, jax.block_until_ready, backend="jax"))
        if plan.memory and spec.name in NATIVE_INPUTS:  # CTC: its jit row's shape (CTC_SHAPE: compile time)
            memory = Row("jax", spec.name, "loss", "memory", row.size, path, "optax", agree=row.agree)
            structs = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in args]
            yield memory.finish_memory(*(jax_extra_bytes(fn, structs, argnums) / 2**20 for fn in (ours, native)))
    if plan.memory and spec.name not in NATIVE_INPUTS and not spec.coupled:  # coupled: pairs grow as rows^2
        rows, classes, label = memory_shape(spec)
        memory = Row("jax", spec.name, "loss", "memory", label, path, "optax", agree=row.agree)
        structs, argnums_list = [], []
        for i, (_, integer, diff, shape) in enumerate(_memory_arrays(spec, "optax", preset, backend, rows, classes, 8)):
            structs.append(jax.ShapeDtypeStruct(shape, jnp.int32 if integer else jnp.float32))
            if diff and not integer:
                argnums_list.append(i)
        yield memory.finish_memory(*(jax_extra_bytes(fn, structs, tuple(argnums_list)) / 2**20
                                     for fn in (ours, native)))


def jax_extra_bytes(fn: Callable[..., Any], args: list[Any], argnums: tuple[int, ...]) -> int:
    """Bytes the compiled ``jax.jit(jax.value_and_grad(mean of fn))`` allocates beyond its arguments.

    XLA's memory analysis of the compiled program at these shapes (``args`` may be
    ``jax.ShapeDtypeStruct``: nothing runs): ``temp_size_in_bytes`` (every intermediate buffer of the
    buffer assignment, at its peak-sharing layout) + ``output_size_in_bytes`` (the value and the
    gradients). Deterministic: no allocator, no page granularity.
    """
    import jax
    import jax.numpy as jnp

    step = jax.jit(jax.value_and_grad(lambda *a: jnp.mean(fn(*a)), argnums=argnums))
    stats = step.lower(*args).compile().memory_analysis()
    if stats is None:
        raise RuntimeError("XLA gave no memory analysis on this device")
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)


def _jax_optimizer_rows(spec: Any, plan: Plan) -> Iterator[Row]:
    import jax
    import optax

    path, preset, native_fn = native_object(spec, "optax", "optimizer")
    kw = {**_lr_kwargs(native_fn, "optax"), **native_kwargs(spec, "optax", native_fn, preset)}  # optax.clip's max_delta
    txs = (lossbridge.get(spec.name, backend="jax", convention="optax", **preset, **kw), native_fn(**kw))
    for k, (total, count) in enumerate(plan.optimizer_sizes["jax"]):
        row = Row("jax", spec.name, "optimizer", "jit", f"{total / 1e6:g}M/{count}", path, "optax")
        rng = np.random.default_rng(0)
        params = [jax.numpy.asarray(rng.normal(size=s), jax.numpy.float32) for s in _tree_shapes(total, count)]
        grads = [jax.numpy.asarray(rng.normal(size=s), jax.numpy.float32) for s in _tree_shapes(total, count)]
        runners, carries = [], []
        needs = OBJECTIVE_ARGS.get(spec.name, ())
        if needs:  # the objective's curvatures take the gradients' place: the step computes the gradients
            grads = [jax.numpy.linspace(1.0, 100.0, int(np.prod(s)), dtype=jax.numpy.float32).reshape(s)
                     for s in _tree_shapes(total, count)]
        for tx in txs:
            if needs:
                step = jax.jit(lambda p, s, c, tx=tx, n=needs: _optax_objective_step(optax, jax, tx, p, s, c, n))
            else:
                step = jax.jit(lambda p, s, g, tx=tx: _optax_step(optax, tx, p, s, g))  # no constants baked in
            carry = [params, tx.init(params)]

            def run(step: Any = step, carry: list[Any] = carry, grads: list[Any] = grads) -> Any:
                carry[0], carry[1] = step(carry[0], carry[1], grads)
                return carry[0]

            runners.append(run)
            carries.append(carry)
        first = [jax.block_until_ready(r()) for r in runners]
        row.agree = _close(first[0][0], first[1][0], 1e-4)
        if k == 0:  # state bytes after one update (they do not depend on timing): once, at the first size
            state = Row("jax", spec.name, "optimizer", "state", row.size, path, "optax", agree=row.agree)
            state.finish_memory(*(pytree_bytes(carry[1]) / 2**20 for carry in carries))
        yield row.finish(*_timed_pair(runners[0], runners[1], plan, jax.block_until_ready, backend="jax"))
        if k == 0:
            yield state


def pytree_bytes(tree: Any) -> int:
    """Bytes of every array leaf of a pytree (an Optax state): the sum of ``nbytes``; Python scalars count
    as NumPy would store them."""
    import jax

    leaves = jax.tree_util.tree_leaves(tree)
    return sum(int(getattr(leaf, "nbytes", None) or np.asarray(leaf).nbytes) for leaf in leaves)


def _optax_step(optax: Any, tx: Any, params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state


#: Optax transformations whose ``update`` needs the objective (its value, its function): the keywords
#: both sides get, from the quadratic 0.5 * sum(c * p**2), c from 1 to 100 (gradients computed in the step).
OBJECTIVE_ARGS = {"polyak_sgd": ("value",), "sophia": ("obj_fn",), "lbfgs": ("value", "grad", "value_fn")}


def _optax_objective_step(
    optax: Any, jax: Any, tx: Any, params: Any, state: Any, curv: Any, needs: tuple[str, ...],
) -> tuple[Any, Any]:
    def objective(ps: Any) -> Any:
        return sum(0.5 * (c * p * p).sum() for c, p in zip(curv, ps, strict=True))

    value, grads = jax.value_and_grad(objective)(params)
    given = {"value": value, "grad": grads, "value_fn": objective, "obj_fn": objective}
    updates, state = tx.update(grads, state, params, **{k: given[k] for k in needs})
    return optax.apply_updates(params, updates), state


def _tf_loss_rows(spec: Any, plan: Plan, backend: Any) -> Iterator[Row]:
    import tensorflow as tf

    path, preset, native_cls = native_object(spec, "keras", "loss")
    if ("tensorflow", spec.name) in NOT_RUN:
        raise RuntimeError(NOT_RUN[("tensorflow", spec.name)])
    for n in _loss_sizes(spec, plan, "tensorflow"):
        args, watched_list = [], []
        for i, (x, integer, diff) in enumerate(_native_args(spec, "keras", preset, n, backend)):
            args.append(tf.constant(x, tf.int64 if integer else tf.float32))  # int32 CTC labels fail: see NOT_RUN
            if diff and not integer:
                watched_list.append(i)
        watched = tuple(watched_list)
        agree = None
        for mode, jit in (("graph", False), ("xla", True)):
            row = Row("tensorflow", spec.name, "loss", mode, _size_label(n), path, "keras", agree=agree)
            ours = lossbridge.get(spec.name, backend="tensorflow", convention="keras", **preset)
            native = native_cls() if inspect.isclass(native_cls) else native_cls
            if agree is None:
                row.agree = agree = _close(tf.reduce_sum(ours(*args)), tf.reduce_sum(native(*args)))

            def make(fn: Any, jit: bool = jit, args: list[Any] = args, watched: tuple[int, ...] = watched) -> Any:
                step = _tf_loss_step(tf, fn, jit, watched)
                return lambda: step(*args)

            yield row.finish(*_timed_pair(make(ours), make(native), plan, backend="tensorflow"))
    if plan.memory:
        yield from _tf_memory_rows(spec, backend, path, preset, native_cls, agree)


def _tf_loss_step(tf: Any, fn: Any, jit: bool, watched: tuple[int, ...]) -> Any:
    """Forward + backward of ``sum(fn(*args))`` as a ``tf.function`` (``jit_compile=jit``): the value and the
    gradients of the ``watched`` arguments."""

    @tf.function(jit_compile=jit)
    def step(*a: Any) -> Any:
        with tf.GradientTape() as tape:
            for i in watched:
                tape.watch(a[i])
            total = tf.reduce_sum(fn(*a))
        return total, tape.gradient(total, [a[i] for i in watched])

    return step


def tf_peak_extra_mb(step: Callable[..., Any], args: list[Any], repeats: int = 1) -> float:
    """Peak memory one call of ``step(*args)`` adds to TensorFlow's CPU allocator (MB), in this process.

    The first call traces (and, under XLA, compiles) at these shapes; then, per repeat,
    ``tf.config.experimental.reset_memory_stats("CPU:0")`` and the allocator's ``peak`` during one call
    minus its ``current`` before it: every tensor and XLA buffer the call allocates (outputs included), at
    the allocator's chunk granularity; the median of ``repeats`` calls (graph mode's executor orders
    independent ops differently from call to call, so its peak varies: 1e7-element hinge gave 124-157 MB
    for Keras over three runs). Memory a kernel takes from ``malloc`` directly (oneDNN scratchpads) is not
    counted.
    """
    import tensorflow as tf

    out = step(*args)
    del out
    peaks = []
    for _ in range(repeats):
        tf.config.experimental.reset_memory_stats("CPU:0")
        base = tf.config.experimental.get_memory_info("CPU:0")["current"]
        out = step(*args)
        peaks.append((tf.config.experimental.get_memory_info("CPU:0")["peak"] - base) / 2**20)
        del out
    return statistics.median(peaks)


TF_MEMORY_REPEATS = 3  # graph-mode memory rows: the median peak of this many calls (XLA's is one buffer plan)


def _tf_memory_rows(
    spec: Any, backend: Any, path: str, preset: dict[str, Any], native_cls: Any, agree: bool | None,
) -> Iterator[Row]:
    """Mode ``memory`` on TensorFlow: :func:`tf_peak_extra_mb` of forward + gradient, lossbridge against
    ``keras.losses``, in graph mode (size label ``<size>/graph``) and under XLA (``<size>/xla``), at
    :func:`memory_shape`'s size (a sampled block of rows, tiled)."""
    import tensorflow as tf

    if spec.coupled or spec.name in NATIVE_INPUTS:
        return
    rows, classes, label = memory_shape(spec)
    args, watched_list = [], []
    for i, (x, integer, diff, shape) in enumerate(
        _memory_arrays(spec, "keras", preset, backend, rows, classes, TILE_ROWS)
    ):
        args.append(tf.constant(_tiled(x, shape), tf.int64 if integer else tf.float32))
        if diff and not integer:
            watched_list.append(i)
    ours = lossbridge.get(spec.name, backend="tensorflow", convention="keras", **preset)
    native = native_cls() if inspect.isclass(native_cls) else native_cls
    for mode, jit in (("graph", False), ("xla", True)):
        row = Row("tensorflow", spec.name, "loss", "memory", f"{label}/{mode}", path, "keras", agree=agree)
        repeats = 1 if jit else TF_MEMORY_REPEATS
        peaks = [tf_peak_extra_mb(_tf_loss_step(tf, fn, jit, tuple(watched_list)), args, repeats)
                 for fn in (ours, native)]
        yield row.finish_memory(*peaks)


def _tf_optimizer_rows(spec: Any, plan: Plan) -> Iterator[Row]:
    import keras
    import tensorflow as tf

    if ("tensorflow", spec.name) in NOT_RUN:
        raise RuntimeError(NOT_RUN[("tensorflow", spec.name)])
    path, preset, native_cls = native_object(spec, "keras", "optimizer")
    _require_class(path, native_cls)
    kw = _lr_kwargs(native_cls, "keras")
    for k, (total, count) in enumerate(plan.optimizer_sizes["tensorflow"]):
        shapes = _tree_shapes(total, count)
        rng = np.random.default_rng(1)
        grads = [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
        agree = None
        for mode, jit in (("graph", False), ("xla", True)):
            row = Row("tensorflow", spec.name, "optimizer", mode, f"{total / 1e6:g}M/{count}", path, "keras")
            runners, firsts, states = [], [], []
            for make in (lambda: lossbridge.get(spec.name, backend="tensorflow", convention="keras", **preset, **kw),
                         lambda: native_cls(**kw)):
                rng = np.random.default_rng(0)
                variables = [keras.Variable(rng.normal(size=s).astype("float32")) for s in shapes]
                opt = make()
                opt.build(variables)
                step = _tf_apply(tf, opt, grads, variables, jit)
                step()
                firsts.append(variables[0].numpy())
                states.append(optimizer_variable_bytes(opt, variables))
                runners.append(step)
            row.agree = agree = _close(firsts[0], firsts[1], 1e-4) if agree is None else agree
            yield row.finish(*_timed_pair(runners[0], runners[1], plan, backend="tensorflow"))
            if k == 0 and not jit:  # state bytes after one apply: once, at the first size
                state = Row("tensorflow", spec.name, "optimizer", "state", row.size, path, "keras", agree=agree)
                yield state.finish_memory(states[0] / 2**20, states[1] / 2**20)


def optimizer_variable_bytes(opt: Any, params: list[Any]) -> int:
    """Bytes of a Keras optimizer's ``variables`` (its state after ``build`` and one ``apply``: slots,
    iterations, a variable learning rate), each counted once, the model's own variables skipped."""
    skip = {id(v) for v in params}
    seen: dict[int, int] = {}
    for v in opt.variables:
        if id(v) not in skip:
            seen[id(v)] = int(np.prod(v.shape, dtype=np.int64)) * np.dtype(v.dtype).itemsize
    return sum(seen.values())


def _tf_apply(tf: Any, opt: Any, grads: list[Any], variables: list[Any], jit: bool) -> Any:
    """``opt.apply(grads, variables)`` as a ``tf.function`` closing over both (no traced arguments)."""
    return tf.function(lambda: opt.apply(grads, variables), jit_compile=jit)


def _numpy_loss_rows(spec: Any, plan: Plan, backend: Any) -> Iterator[Row]:
    import tracemalloc

    from lossbridge.backends.numpy import xp

    ours = lossbridge.get(spec.name, backend="numpy")
    names = {p.name for p in spec.params}
    params = {k: v for k, v in ours.bound.params.items() if k in names}
    for n in _loss_sizes(spec, plan, "numpy"):
        row = Row("numpy", spec.name, "loss", "eager", _size_label(n), "spec fn + vjp (no binding)")
        items = []
        own = NATIVE_INPUTS.get(spec.name)
        for x, integer, _ in own(None, n) if own else loss_inputs(spec, None, {}, n):
            items.append(x.astype(np.int64 if integer else np.float32))
        args = _spec_order(backend, spec, items)

        def raw(items: list[Any] = items) -> Any:
            value = spec.fn(*items, xp=xp, **params)
            total = xp.mean(value)
            if spec.vjp is not None:
                spec.vjp(*items, xp.full(value.shape, 1.0 / max(value.size, 1), dtype=value.dtype), xp=xp, **params)
            return total

        def bound(args: list[Any] = args) -> Any:
            return ours.value_and_grad(*args)

        row.agree = _close(bound()[0], raw())
        peaks = []
        for fn in (bound, raw):
            tracemalloc.start()
            fn()
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        row.peak_mb_lossbridge, row.peak_mb_native = peaks
        yield row.finish(*_timed_pair(bound, raw, plan, backend="numpy"))


# ---------------------------------------------------------------------------------------------
# the extra tables: Adam against the bandwidth floor, peak memory of sparse cross-entropy


def copy_bandwidth(nbytes: int = 256 * 2**20) -> float:
    """Measured copy bandwidth in bytes per second (read + write), the best of NumPy and torch."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    best = []
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, src)
        best.append(time.perf_counter() - start)
    rate = 2 * nbytes / min(best)
    try:
        import torch
    except ImportError:
        return rate
    a, b = torch.from_numpy(src), torch.from_numpy(dst)
    best = []
    for _ in range(5):
        start = time.perf_counter()
        b.copy_(a)
        best.append(time.perf_counter() - start)
    return max(rate, 2 * nbytes / min(best))


def adam_floor_rows(plan: Plan, bandwidth: float) -> Iterator[dict[str, Any]]:
    """Adam's step in each torch mode, and its ratio to 7 x 4 bytes x params / bandwidth."""
    import torch

    from benchmarks.bench_torch import _has_fused

    ours_cls = lossbridge.get("adam", backend="torch", convention="torch")
    modes: list[tuple[str, Any, dict[str, Any]]] = [
        ("torch default", torch.optim.Adam, {}),
        ("torch foreach", torch.optim.Adam, {"foreach": True}),
        ("lossbridge default", ours_cls, {}),
        ("lossbridge spec eager", ours_cls, {"fused": False}),
    ]
    if _has_fused(torch.optim.Adam):
        modes.insert(2, ("torch fused", torch.optim.Adam, {"fused": True}))
    if plan.torch_compile:
        modes.append(("lossbridge spec compiled", ours_cls, {"fused": False, "compile": True}))
    for total, count in plan.adam_sizes:
        floor = 7 * 4 * total / bandwidth
        for label, make, options in modes:
            gen = torch.Generator().manual_seed(0)
            params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in _tree_shapes(total, count)]
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            opt = make(params, lr=1e-3, **options)
            seconds = _timed_pair(opt.step, lambda: None, plan).ours
            yield {"mode": label, "size": f"{total / 1e6:g}M/{count}", "seconds": seconds,
                   "floor_seconds": floor, "ratio_to_floor": seconds / floor}


def _vm_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


#: The large-class-count memory rows (a language model's vocabulary: 4096 x 32000 float32, 500 MB per
#: input), each side in its own process; every other torch loss is measured at :data:`MEMORY_N` elements.
MEMORY_LARGE = {"sparse_categorical_crossentropy": (4096, 32000), "categorical_crossentropy": (4096, 32000),
                "binary_crossentropy": (4096, 32000)}
MEMORY_N = 10_000_000  # (1e6, 10): 40 MB per float32 input, far above allocator noise
#: Sizes other than MEMORY_N: lossbridge's CTC took 80 s and 3.2 GB at 1e7 (20000 x 50 x 10)
MEMORY_SIZES = {"ctc": 1_000_000}
TILE_ROWS = 512  # memory rows sample this many rows from the domains and tile them


def memory_shape(spec: Any) -> tuple[int, int, str]:
    """``(rows, classes, size label)`` of a loss's memory row on every backend (:data:`MEMORY_LARGE`,
    :data:`MEMORY_SIZES`, else :data:`MEMORY_N` elements over :data:`CLASSES` classes)."""
    if spec.name in MEMORY_LARGE:
        rows, classes = MEMORY_LARGE[spec.name]
        return rows, classes, f"{rows}x{classes}"
    n = MEMORY_SIZES.get(spec.name, MEMORY_N)
    return n // CLASSES, CLASSES, _size_label(n)


def _memory_arrays(
    spec: Any, framework: str, preset: dict[str, Any], backend: Any, rows: int, classes: int, block: int,
) -> list[tuple[np.ndarray, bool, bool, tuple[int, ...]]]:
    """``(block array, integer, differentiable, full shape)`` per native argument of a memory row: ``block``
    rows sampled from the domains (the harness's input builder), the full shape ``rows`` long (tile the
    block to fill it: :func:`_tiled`)."""
    block = min(rows, block)
    out = []
    for x, integer, diff in _native_args(spec, framework, preset, block * classes, backend, classes):
        x = np.asarray(x)
        shape = (rows, *x.shape[1:]) if x.ndim and x.shape[0] == block else x.shape
        out.append((x, integer, diff, tuple(shape)))
    return out


def _tiled(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if x.shape == shape:
        return x
    reps = -(-shape[0] // x.shape[0])
    return np.tile(x, (reps, *(1,) * (x.ndim - 1)))[: shape[0]]


def _torch_loss_pair(spec: Any, rows: int, classes: int) -> tuple[Any, Any, list[Any], list[Any]]:
    """``(ours, native, args, small_args)`` of a torch loss row (as :func:`_torch_loss_rows` builds them)."""
    import torch

    from lossbridge.registry import default_registry

    backend = default_registry().backend("torch")
    _, preset, native_cls = native_object(spec, "torch", "loss")
    native = native_cls() if inspect.isclass(native_cls) else native_cls
    ours = lossbridge.get(spec.name, backend="torch", convention="torch", **preset)

    def tensors(n: int, c: int) -> list[Any]:
        out = []
        for x, integer, diff in _native_args(spec, "torch", preset, n, backend, c):
            t = torch.tensor(x, dtype=torch.int64 if integer else torch.float32)
            out.append(t.requires_grad_(True) if diff and not integer else t)
        return out

    block = min(rows, TILE_ROWS) if spec.name not in NATIVE_INPUTS else rows
    args = tensors(block * classes, classes)
    if block < rows:  # sampling 1e8 values from a domain takes seconds: tile a sampled block of rows
        reps = -(-rows // block)
        args = [
            (t.detach().repeat(reps, *(1,) * (t.ndim - 1))[:rows].requires_grad_(t.requires_grad)
             if t.ndim and t.shape[0] == block else t)
            for t in args
        ]
    return ours, native, args, tensors(8 * classes, classes)


def peak_extra_mb(name: str, which: str, rows: int, classes: int) -> float:
    """Peak resident memory one forward + backward of loss ``name`` adds (MB), in this process.

    The inputs exist and the path is warmed up on a small batch first; the peak is the kernel's
    high-water mark (``VmHWM``), reset to the current size just before (``clear_refs`` 5). Not
    ``ru_maxrss``: Linux keeps it across ``exec``, so a child of a large process reads its parent's.
    """
    ours, native, args, small = _torch_loss_pair(lossbridge.spec(name), rows, classes)
    fn = ours if which == "ours" else native
    fn(*small).sum().backward()
    Path("/proc/self/clear_refs").write_text("5")
    base = _vm_kb("VmRSS")
    fn(*args).sum().backward()
    return (_vm_kb("VmHWM") - base) / 1024


def _memory_child(jobs: list[tuple[str, int, int]]) -> list[dict[str, float | str]]:
    """``peak_extra_mb`` of each job and side (``{"native": MB, "ours": MB}``, an error message where one fails).

    One fresh process imports torch and lossbridge once and forks a clean copy of itself per job and side
    (it runs no torch op itself, so the forks start with the same heap): what one measurement allocates
    or frees never shows in another, and the imports are paid once.
    """
    import subprocess

    root = str(Path(__file__).resolve().parents[1])
    code = f"""
import json, os, sys, warnings
sys.path.insert(0, {root!r})
warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(1)
from benchmarks._catalog_bench import peak_extra_mb
out = []
for name, rows, classes in {jobs!r}:
    out.append({{}})
    for which in ("native", "ours"):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                result = peak_extra_mb(name, which, rows, classes)
            except BaseException as exc:
                result = f"{{type(exc).__name__}}: {{exc}}".splitlines()[0][:300]
            os.write(write, json.dumps(result).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
        out[-1][which] = json.loads(data) if data else f"the measuring process died (wait status {{status}})"
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:300]}")
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def memory_table(only: set[str] | None) -> Iterator[Row]:
    """Peak extra memory of forward + backward, lossbridge against ``torch.nn``, for every torch loss.

    :data:`MEMORY_LARGE` at 4096 x 32000, every other torch loss (not coupled) at :data:`MEMORY_N`
    elements over 10 classes (:data:`MEMORY_SIZES` for a few), each side in a clean process
    (:func:`_memory_child`).
    """
    names = [e.name for e in lossbridge.catalog() if e.kind == "loss" and (only is None or e.name in only)
             and "torch" in lossbridge.spec(e.name).conventions and not lossbridge.spec(e.name).coupled]
    jobs = [(n, *MEMORY_LARGE[n]) for n in names if n in MEMORY_LARGE]
    jobs += [(n, MEMORY_SIZES.get(n, MEMORY_N) // CLASSES, CLASSES) for n in names if n not in MEMORY_LARGE]
    if not jobs:
        return
    for (name, rows, classes), peaks in zip(jobs, _memory_child(jobs), strict=True):
        spec = lossbridge.spec(name)
        size = f"{rows}x{classes}" if name in MEMORY_LARGE else _size_label(rows * classes)
        row = Row("torch", name, "loss", "memory", size, native_object(spec, "torch", "loss")[0], "torch")
        native, ours = peaks["native"], peaks["ours"]
        if isinstance(native, str) or isinstance(ours, str):
            row.status, row.reason = "not run", str(native if isinstance(native, str) else ours)
        elif native < 1.0:
            row.peak_mb_lossbridge, row.peak_mb_native = float(ours), float(native)
            row.status, row.reason = "not run", (f"native peak {native:.1f} MB: below what VmHWM resolves here "
                                                 f"(lossbridge {ours:.1f} MB)")
        else:
            row.finish_memory(float(ours), float(native))
        yield row


def state_bytes(opt: Any, params: list[Any]) -> int:
    """Bytes of every tensor storage an optimizer holds (its state and any cache), not the params' or grads'.

    Storages are counted once (a flat buffer and its per-parameter views are one storage).
    """
    import torch

    skip = {p.untyped_storage().data_ptr() for p in params}
    skip |= {p.grad.untyped_storage().data_ptr() for p in params if p.grad is not None}
    seen: dict[int, int] = {}

    def walk(obj: Any, depth: int) -> None:
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            if storage.data_ptr() not in skip:
                seen[storage.data_ptr()] = storage.nbytes()
        elif depth <= 0:
            return
        elif isinstance(obj, dict):
            for value in obj.values():
                walk(value, depth - 1)
        elif isinstance(obj, (list, tuple, set)):
            for value in obj:
                walk(value, depth - 1)
        elif hasattr(obj, "__dict__") and not callable(obj) and type(obj).__module__.startswith("lossbridge"):
            walk(vars(obj), depth - 1)

    walk(dict(opt.state), 4)
    walk({k: v for k, v in vars(opt).items() if k not in ("state", "param_groups", "defaults")}, 6)
    return sum(seen.values())


# ---------------------------------------------------------------------------------------------
# per-row reasons: benchmarks/reasons/*.toml


#: The default directory of the reason files (``--reasons`` changes it).
REASONS_DIR = Path(__file__).resolve().parent / "reasons"
REASON_KEYS = {"backend", "kind", "mode", "spec", "sizes", "cause", "needed"}
REASON_REQUIRED = ("backend", "kind", "mode", "spec", "cause", "needed")
REASON_VALUES = {
    "backend": ("torch", "jax", "tensorflow", "numpy"),
    "kind": ("loss", "optimizer"),
    "mode": ("eager", "compiled", "jit", "graph", "xla", "memory", "state"),
}


class ReasonsError(ValueError):
    """A reason file that does not parse or breaks the format (the message names the file and entry)."""


@dataclass(frozen=True)
class Reason:
    """One ``[[row]]`` entry of a reason file: why the rows it matches miss their target."""

    file: str
    entry: int  # 1-based, in the file's order
    backend: str
    kind: str
    mode: str
    spec: str
    sizes: tuple[str, ...] | None
    cause: str
    needed: str

    @property
    def where(self) -> str:
        return f"{self.file} entry {self.entry} ({self.backend}/{self.kind}/{self.mode} {self.spec})"

    def matches(self, row: Row) -> bool:
        return (row.backend, row.kind, row.mode, row.spec) == (self.backend, self.kind, self.mode, self.spec) and (
            self.sizes is None or row.size in self.sizes
        )


def load_reasons(directory: Path, spec_names: set[str] | None = None) -> list[Reason]:
    """Every entry of ``directory/*.toml`` (sorted by file name), validated.

    Raises :class:`ReasonsError` naming the file and entry on a TOML syntax error, a top-level key other
    than ``row``, an unknown or missing key, a value of the wrong type, an unknown backend, kind or mode,
    or (when ``spec_names`` is given) a spec that is not a canonical catalog name.
    """
    import tomllib

    out: list[Reason] = []
    for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
        name = path.name
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ReasonsError(f"{name}: not valid TOML: {exc}") from exc
        extra = set(data) - {"row"}
        if extra:
            raise ReasonsError(f"{name}: unknown top-level key(s) {sorted(extra)}: entries are [[row]] tables")
        entries = data.get("row", [])
        if not isinstance(entries, list):
            raise ReasonsError(f"{name}: 'row' must be an array of tables ([[row]])")
        for i, entry in enumerate(entries, 1):
            out.append(_reason(name, i, entry, spec_names))
    return out


def _reason(name: str, i: int, entry: Any, spec_names: set[str] | None) -> Reason:
    label = f"{name} entry {i}"
    if not isinstance(entry, dict):
        raise ReasonsError(f"{label}: not a table")
    if entry.get("spec"):
        label += f" (spec {entry['spec']!r})"
    unknown = set(entry) - REASON_KEYS
    if unknown:
        raise ReasonsError(f"{label}: unknown key(s) {sorted(unknown)} (allowed: {', '.join(sorted(REASON_KEYS))})")
    missing = [k for k in REASON_REQUIRED if k not in entry]
    if missing:
        raise ReasonsError(f"{label}: missing key(s) {missing}")
    for key in REASON_REQUIRED:
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ReasonsError(f"{label}: {key} must be a non-empty string, got {entry[key]!r}")
    for key, allowed in REASON_VALUES.items():
        if entry[key] not in allowed:
            raise ReasonsError(f"{label}: {key} = {entry[key]!r} is not one of {', '.join(allowed)}")
    if spec_names is not None and entry["spec"] not in spec_names:
        raise ReasonsError(f"{label}: spec {entry['spec']!r} is not a catalog name (use the canonical name)")
    sizes = entry.get("sizes")
    if sizes is not None and (
        not isinstance(sizes, list) or not sizes or not all(isinstance(s, str) and s for s in sizes)
    ):
        raise ReasonsError(f"{label}: sizes must be a non-empty list of size labels such as \"1e5\" or \"1M/10\", "
                           f"got {sizes!r}")
    return Reason(name, i, entry["backend"], entry["kind"], entry["mode"], entry["spec"],
                  None if sizes is None else tuple(sizes), entry["cause"].strip(), entry["needed"].strip())


def _within_spread(row: Row) -> bool:
    """A timed miss whose repeats' lower quartile meets the target: the run cannot tell it from the target."""
    return (row.ratio_spread is not None and row.target is not None and row.mode not in ("memory", "state")
            and row.ratio_spread[0] <= row.target)


def attach_reasons(
    rows: list[Row], reasons: list[Reason], ran: set[tuple[str, str, str]], *, every_size: bool = True,
) -> list[dict[str, Any]]:
    """Give every row that misses its target the cause and what is needed; return the warnings.

    A missed row with no matching entry gets ``explained = False``, one with an entry ``True`` (the first
    entry in file order wins; a second is a warning). A timed miss with no entry whose interleaved repeats'
    lower-quartile ratio meets the target is ``within_spread``: explained by this run's own measurement (the
    quartiles are its cause), and counted apart in the summary. ``ran`` holds ``(backend, kind, spec)`` of every
    task this run planned: an entry inside the run's scope (its spec ran there, its mode was measured for
    that backend and kind, and one of its sizes, if it names sizes, was measured) that matches no row, or
    only rows meeting their target, is stale: a warning. Entries outside the scope (``--only``,
    ``--quick``) say nothing; with ``every_size=False`` (``--quick``: not every size of the full run was
    measured) an entry without ``sizes`` whose rows all meet their target says nothing either.
    """
    warnings_: list[dict[str, Any]] = []
    used: dict[int, list[Row]] = {id(r): [] for r in reasons}
    for row in rows:
        if row.status != "ok" or row.meets is None:
            continue
        found = [r for r in reasons if r.matches(row)]
        for r in found:
            used[id(r)].append(row)
        if row.meets:
            continue
        if found:
            row.cause, row.needed, row.explained = found[0].cause, found[0].needed, True
            for extra in found[1:]:
                warnings_.append({"kind": "duplicate", "file": extra.file, "entry": extra.entry,
                                  "message": f"{extra.where}: {row.backend}/{row.kind}/{row.mode} {row.spec} "
                                  f"{row.size} already has a reason ({found[0].where}); ignored"})
        elif _within_spread(row):
            low, high = row.ratio_spread or (0.0, 0.0)
            row.explained = row.within_spread = True
            row.cause = (f"measured in this run: median {row.ratio:.3f}x, the interleaved repeats' ratios' quartiles "
                         f"{low:.3f}-{high:.3f}x straddle the target {row.target:.1f}x: not separable from the "
                         f"target in this run (no entry in benchmarks/reasons/)")
            row.needed = ("re-measure on an idle machine (python -m benchmarks --only SPEC --backend B); if it still "
                          "misses there, profile it and write an entry")
        else:
            row.explained = False
    measured: dict[tuple[str, str, str], set[str]] = {}
    for row in rows:
        if row.status == "ok":
            measured.setdefault((row.backend, row.kind, row.mode), set()).add(row.size)
    for r in reasons:
        sizes = measured.get((r.backend, r.kind, r.mode))
        in_scope = (r.backend, r.kind, r.spec) in ran and sizes is not None and (
            r.sizes is None or bool(set(r.sizes) & sizes)
        )
        if not in_scope:
            continue
        hits = used[id(r)]
        if not hits:
            why = "matches no row of this run (spec, mode or sizes renamed or not measured?)"
        elif all(h.meets for h in hits) and (every_size or r.sizes is not None):
            why = f"every row it matches now meets its target ({', '.join(h.size for h in hits)})"
        else:
            continue
        warnings_.append({"kind": "stale", "file": r.file, "entry": r.entry,
                          "message": f"stale reason: {r.where}: {why}"})
    return warnings_


# ---------------------------------------------------------------------------------------------
# the run


def _installed_backends() -> list[str]:
    available = set(lossbridge.available_backends())
    return [b for b in BACKENDS if b in available]


def tasks(backends: list[str], only: set[str] | None, kinds: set[str]) -> list[Task]:
    """Every (backend, spec) pair to time: specs with a convention for the backend's framework."""
    from lossbridge.registry import default_registry

    registry = default_registry()
    out = []
    for backend_name in backends:
        backend = registry.backend(backend_name)
        framework = FRAMEWORK.get(backend_name)
        for entry in lossbridge.catalog():
            if entry.kind not in kinds or (only is not None and entry.name not in only):
                continue
            spec = lossbridge.spec(entry.name)
            if framework is None:
                if entry.kind != "loss" or not spec.conventions or spec.fn is None:
                    continue
            elif framework not in spec.conventions:
                continue
            run = _runner(backend_name, entry.kind, spec, backend)
            if run is not None:
                out.append(Task(backend_name, spec, entry.kind, run, f"{backend_name} {entry.name}"))
    return out


def _runner(backend_name: str, kind: str, spec: Any, backend: Any) -> Callable[[Plan], Iterator[Row]] | None:
    table: dict[tuple[str, str], Callable[..., Iterator[Row]]] = {
        ("numpy", "loss"): lambda plan: _numpy_loss_rows(spec, plan, backend),
        ("torch", "loss"): lambda plan: _torch_loss_rows(spec, plan, backend),
        ("torch", "optimizer"): lambda plan: _torch_optimizer_rows(spec, plan),
        ("jax", "loss"): lambda plan: _jax_loss_rows(spec, plan, backend),
        ("jax", "optimizer"): lambda plan: _jax_optimizer_rows(spec, plan),
        ("tensorflow", "loss"): lambda plan: _tf_loss_rows(spec, plan, backend),
        ("tensorflow", "optimizer"): lambda plan: _tf_optimizer_rows(spec, plan),
    }
    return table.get((backend_name, kind))


_TTY = sys.stderr.isatty()


def _progress(done: int, total: int, label: str, started: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    bar = "#" * filled + "-" * (width - filled)
    line = f"[{bar}] {done}/{total} {time.perf_counter() - started:5.0f}s {label:<48.48}"
    sys.stderr.write(f"\r{line}" if _TTY else f"{line}\n")
    sys.stderr.flush()


def _clear() -> None:
    if _TTY:
        sys.stderr.write("\r\033[K")


def _fmt(row: Row) -> str:
    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x * 1e3:.3f}"

    def cell(seconds: float | None, mb: float | None) -> str:
        if row.mode == "state" and mb is not None:  # exact bytes: a 4-byte step counter shows
            return f"{round(mb * 2**20)}B"
        return f"{mb:.1f}MB" if row.mode == "memory" and mb is not None else ms(seconds)

    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    target = "-" if row.target is None else f"{row.target:.1f}x"
    verdict = {True: "ok", False: "MISS", None: ""}[row.meets]
    if row.meets is False:
        verdict += " (within spread)" if row.within_spread else " (explained)" if row.explained else " (no reason)"
    if row.status != "ok":
        verdict, ratio = row.status, row.reason[:60]
    agree = {True: "", False: " (values differ)", None: ""}[row.agree]
    return (f"{row.backend:<10} {row.spec:<32} {row.kind:<9} {row.mode:<8} {row.size:>16} "
            f"{cell(row.lossbridge_s, row.peak_mb_lossbridge):>10} {cell(row.native_s, row.peak_mb_native):>10} "
            f"{ratio:>7} {target:>6} {verdict}{agree}")


HEADER = (f"{'backend':<10} {'spec':<32} {'kind':<9} {'mode':<8} {'size':>16} "
          f"{'lb ms':>10} {'native ms':>10} {'ratio':>7} {'target':>6}")


def machine() -> dict[str, Any]:
    """CPU count and model, platform, package versions (without importing the frameworks)."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for package in ("numpy", "torch", "tensorflow", "jax", "jaxlib", "optax", "keras", "lossbridge"):
        versions[package] = None
        for dist in (package, f"{package}-cpu"):  # TensorFlow installs as tensorflow-cpu too
            try:
                versions[package] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "platform": platform.platform(), "versions": versions}


#: issue 14's import budget: ``import lossbridge`` after NumPy, in a fresh process
IMPORT_TARGET_SECONDS = 0.15
_FRAMEWORKS = {"torch": ("torch",), "jax": ("jax", "optax"), "tensorflow": ("tensorflow", "keras")}
_IMPORT_PROBE = (
    "import sys, time, numpy; t = time.perf_counter(); import lossbridge; dt = time.perf_counter() - t; "
    "backend = sys.argv[1]; backend == '-' or (__import__(backend) if sys.argv[2:] else "
    "lossbridge.get('mse', backend=backend)); "
    "print(dt); print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & "
    "{'torch', 'tensorflow', 'keras', 'jax', 'optax'})))"
)


def _probe_import(backend: str, alone: bool = False) -> tuple[float, list[str]]:
    """``(seconds of import lossbridge after numpy, frameworks in sys.modules after get(mse, backend))``;
    ``alone``: after a plain ``import <backend>`` instead (what the framework itself pulls in)."""
    args = [sys.executable, "-c", _IMPORT_PROBE, backend] + (["alone"] if alone else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = out.stdout.splitlines()
    return float(lines[0]), (lines[1].split() if len(lines) > 1 else [])


def import_cost(backends: list[str], repeats: int = 5) -> dict[str, Any]:
    """Issue 14 item 6, measured: the median seconds of ``import lossbridge`` after NumPy in fresh processes
    (target :data:`IMPORT_TARGET_SECONDS`), and for each installed framework backend the frameworks a
    ``lossbridge.get("mse", backend=B)`` loads: only B's own, and what ``import B`` alone loads (TensorFlow
    2.21 itself imports JAX and Keras when they are installed), are expected."""
    times = sorted(_probe_import("-")[0] for _ in range(repeats))
    loads = {}
    for backend in backends:
        if backend in _FRAMEWORKS:
            loaded = _probe_import(backend)[1]
            itself = _probe_import(backend, alone=True)[1]
            loads[backend] = {"loaded": loaded, "framework_alone_loads": itself,
                              "only_its_own": set(loaded) <= set(_FRAMEWORKS[backend]) | set(itself)}
    median = times[len(times) // 2]
    return {"seconds_over_numpy": median, "all_seconds": times, "target_seconds": IMPORT_TARGET_SECONDS,
            "meets": median <= IMPORT_TARGET_SECONDS, "frameworks_after_get": loads}


def run(
    plan: Plan, backends: list[str], only: set[str] | None, kinds: set[str], out_dir: Path, *,
    plot: bool = True, threads: int = 1, extras: bool = True, reasons_dir: Path | None = None,
) -> dict[str, Any]:
    """Run every task, print the table, write ``bench.json`` (and ``bench.png``); return the report.

    The reason files (``reasons_dir``, default :data:`REASONS_DIR`) are read and validated first: a
    malformed one stops the run before anything is timed (:class:`ReasonsError`).
    """
    started = time.perf_counter()
    reasons_dir = REASONS_DIR if reasons_dir is None else reasons_dir
    reasons = load_reasons(reasons_dir, {e.name for e in lossbridge.catalog()})
    warnings.filterwarnings("ignore")
    if "torch" in backends:
        import torch

        torch.set_num_threads(threads)
    todo = tasks(backends, only, kinds)
    rows: list[Row] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / "bench.partial.json"  # rewritten after every spec: an interrupted run keeps its rows

    def emit(row: Row) -> None:
        rows.append(row)
        _explain(row, reasons)
        _clear()
        print(_fmt(row), flush=True)

    print(HEADER, flush=True)
    for i, task in enumerate(todo):
        _progress(i, len(todo), task.label, started)
        try:
            for row in task.run(plan):
                emit(row)
                _progress(i, len(todo), task.label, started)
        except Exception as exc:  # a row that cannot be built says why, and the run goes on
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            framework = FRAMEWORK.get(task.backend)
            emit(Row(task.backend, task.spec.name, task.kind, "-", "-", status="not run", reason=reason,
                     convention=framework,
                     native=task.spec.conventions[framework].native if framework else ""))
            if os.environ.get("LOSSBRIDGE_BENCH_DEBUG"):
                traceback.print_exc()
        partial.write_text(json.dumps([asdict(r) for r in rows], default=str) + "\n")
    _progress(len(todo), len(todo), "done", started)
    if _TTY:
        sys.stderr.write("\n")
    report: dict[str, Any] = {
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {"plan": asdict(plan), "backends": backends, "only": sorted(only) if only else None,
                     "kinds": sorted(kinds), "torch_threads": threads,
                     "clock": {b: getattr(_CLOCK.get(b), "__name__", "perf_counter") for b in backends}},
        "targets": {"/".join(k): v for k, v in TARGETS.items()},
    }
    if extras:
        cost = report["import"] = import_cost(backends)
        owns = ", ".join(f"{b}: {' '.join(v['loaded']) or '-'}" for b, v in cost["frameworks_after_get"].items())
        print(f"\nimport lossbridge after numpy: {cost['seconds_over_numpy'] * 1e3:.0f} ms (median of "
              f"{len(cost['all_seconds'])} fresh processes; target {IMPORT_TARGET_SECONDS * 1e3:.0f} ms)"
              + (f"; frameworks loaded by get(..., backend=B): {owns}" if owns else ""))
    if extras and "torch" in backends and "optimizer" in kinds and (only is None or "adam" in only):
        try:
            bandwidth = copy_bandwidth()
            floor_rows = list(adam_floor_rows(plan, bandwidth))
            report["adam_bandwidth_floor"] = {"copy_bandwidth_gb_s": bandwidth / 1e9, "rows": floor_rows}
            print(f"\nAdam step vs the memory-bandwidth floor (7 x 4 B x params / {bandwidth / 1e9:.1f} GB/s copy)")
            for r in floor_rows:
                print(f"  {r['mode']:<26} {r['size']:>9} {r['seconds'] * 1e3:9.3f} ms"
                      f"  floor {r['floor_seconds'] * 1e3:8.3f} ms  {r['ratio_to_floor']:6.2f}x floor")
        except Exception as exc:
            report["adam_bandwidth_floor"] = {"error": f"{type(exc).__name__}: {exc}"}
    if extras and plan.memory and "torch" in backends and "loss" in kinds:
        print("\nPeak extra memory of loss forward + backward (each side in a fresh process)")
        memory: list[Row] = []
        try:
            for row in memory_table(only):
                memory.append(row)
                emit(row)
        except Exception as exc:
            emit(Row("torch", "-", "loss", "memory", "-", status="not run", convention="torch",
                     reason=f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
        report["memory"] = [asdict(r) for r in memory]
    report["warnings"] = attach_reasons(rows, reasons, {(t.backend, t.kind, t.spec.name) for t in todo},
                                        every_size=plan == FULL)
    report["reasons"] = {"dir": str(reasons_dir), "files": sorted({r.file for r in reasons}),
                         "entries": len(reasons), "attached": sum(bool(r.explained) for r in rows)}
    report["rows"] = [asdict(r) for r in rows]
    report["summary"] = summary(rows)
    report["seconds"] = time.perf_counter() - started
    (out_dir / "bench.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    partial.unlink(missing_ok=True)
    if plot:
        plot_ratios(rows, out_dir / "bench.png")
    print_summary(report["summary"])
    print_warnings(report["warnings"])
    print(f"\nwrote {out_dir / 'bench.json'}" + (f" and {out_dir / 'bench.png'}" if plot else "")
          + f" in {report['seconds']:.0f} s")
    return report


def _explain(row: Row, reasons: list[Reason]) -> None:
    """The row's reason as it is printed (:func:`attach_reasons` sets it again, with the warnings)."""
    if row.status == "ok" and row.meets is False:
        found = next((r for r in reasons if r.matches(row)), None)
        row.explained = found is not None or _within_spread(row)
        row.within_spread = found is None and _within_spread(row)
        if found is not None:
            row.cause, row.needed = found.cause, found.needed


def summary(rows: list[Row]) -> dict[str, Any]:
    """Per backend, kind and mode: rows, meeting the target, missing it (explained or not), not run; the worst."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r.backend}/{r.kind}/{r.mode}"
        g = groups.setdefault(key, {"rows": 0, "meets": 0, "misses": 0, "explained": 0, "within_spread": 0,
                                    "unexplained": 0,
                                    "not_run": 0, "target": r.target, "median_ratio": None, "worst": None,
                                    "ratios": []})
        g["rows"] += 1
        if r.status != "ok":
            g["not_run"] += 1
            continue
        g["target"] = r.target if g["target"] is None else g["target"]
        g["meets"] += bool(r.meets)
        g["misses"] += r.meets is False
        g["explained"] += r.meets is False and bool(r.explained)
        g["within_spread"] += r.meets is False and bool(r.within_spread)
        g["unexplained"] += r.meets is False and not r.explained
        if r.ratio is not None:
            g["ratios"].append(r.ratio)
            if g["worst"] is None or r.ratio > g["worst"][1]:
                g["worst"] = (f"{r.spec} {r.size}", r.ratio)
    for g in groups.values():
        ratios = g.pop("ratios")
        g["median_ratio"] = statistics.median(ratios) if ratios else None
    return groups


def print_warnings(items: list[dict[str, Any]]) -> None:
    if items:
        print(f"\nWarnings ({len(items)})")
        for w in items:
            print(f"  {w['message']}")


def print_summary(groups: dict[str, Any]) -> None:
    print("\nSummary (ratio = lossbridge / native; explained = missed with a reason in benchmarks/reasons/, or, in\n"
          "brackets, within the run's spread: the repeats' lower-quartile ratio meets the target)")
    for key, g in sorted(groups.items()):
        target = "-" if g["target"] is None else f"{g['target']:.1f}x"
        med = "-" if g["median_ratio"] is None else f"{g['median_ratio']:.2f}x"
        worst = "-" if g["worst"] is None else f"{g['worst'][0]} {g['worst'][1]:.2f}x"
        print(f"  {key:<28} target {target:>5}  rows {g['rows']:>3}  met {g['meets']:>3}  explained "
              f"{g['explained']:>3} [{g.get('within_spread', 0):>2}]  unexplained {g['unexplained']:>3}  "
              f"not run {g['not_run']:>2}  median {med:>6}"
              f"  worst {worst}")


def plot_ratios(rows: list[Row], path: Path) -> None:
    """One panel per backend: each row's ratio (log scale), its target and 1.0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_backend: dict[str, list[Row]] = {}
    for r in rows:
        if r.ratio is not None:
            by_backend.setdefault(r.backend, []).append(r)
    panels = max(len(by_backend), 1)
    height = max(3.0, 0.16 * max((len(v) for v in by_backend.values()), default=10) + 1.5)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, height), squeeze=False)
    for ax, (backend, chosen) in zip(axes[0], sorted(by_backend.items()), strict=False):
        labels = [f"{r.spec} {r.mode} {r.size}" for r in chosen]
        ys = np.arange(len(chosen))
        colors = ["tab:green" if r.meets else "tab:red" if r.meets is False else "tab:gray" for r in chosen]
        ax.scatter([r.ratio for r in chosen], ys, c=colors, s=14, zorder=3)
        ax.scatter([r.target for r in chosen if r.target], [y for y, r in zip(ys, chosen) if r.target],
                   marker="|", c="k", s=40, zorder=2)
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(ys, labels, fontsize=6)
        ax.invert_yaxis()
        ax.set_title(f"{backend}: lossbridge / native")
        ax.grid(axis="x", which="both", alpha=0.3)
    if not by_backend:
        axes[0][0].text(0.5, 0.5, "no rows", ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quick_specs() -> set[str]:
    """``--quick``'s specs: those every framework has (torch, Keras and Optax conventions), a core set."""
    return {e.name for e in lossbridge.catalog() if e.kind in ("loss", "optimizer")
            and set(FRAMEWORK.values()) <= set(lossbridge.spec(e.name).conventions)}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The command's options (shared with ``lossbridge bench``)."""
    parser = parser or argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one small size, fewer repeats and, unless --only is given, only the specs every "
                        "framework has (under 2 minutes)")
    parser.add_argument("--only", metavar="SPEC[,SPEC]", help="only these specs (names or aliases)")
    parser.add_argument("--backend", metavar="B[,B]", help=f"only these backends ({', '.join(BACKENDS)})")
    parser.add_argument("--kind", choices=("loss", "optimizer"), help="only losses or only optimizers")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output directory (default reports/)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu (default): CPU seconds (thread for torch/NumPy, process for JAX/TF), steady "
                        "on a shared machine; wall: perf_counter")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--no-extras", action="store_true", help="skip the Adam floor and memory tables")
    parser.add_argument("--reasons", type=Path, default=None, metavar="DIR",
                        help="the per-row reason files (default benchmarks/reasons/; see its README.md)")
    return parser


def run_args(args: argparse.Namespace) -> int:
    """Run from parsed options; 2 on a bad filter."""
    installed = _installed_backends()
    backends = installed
    if args.backend:
        backends = [b.strip() for b in args.backend.split(",") if b.strip()]
        missing = [b for b in backends if b not in installed]
        if missing:
            print(f"benchmarks: backend(s) not installed or unknown: {', '.join(missing)} "
                  f"(installed: {', '.join(installed)})", file=sys.stderr)
            return 2
    only = None
    if args.only:
        try:
            only = {lossbridge.spec(s.strip()).name for s in args.only.split(",") if s.strip()}
        except lossbridge.UnknownNameError as exc:
            print(f"benchmarks: {exc}", file=sys.stderr)
            return 2
    kinds = {args.kind} if args.kind else {"loss", "optimizer"}
    _CLOCK.clear()
    if args.clock == "cpu":
        _CLOCK.update(CPU_CLOCKS)
    if args.quick and only is None:
        only = quick_specs()
    try:
        run(QUICK if args.quick else FULL, backends, only, kinds, args.out, plot=not args.no_plot,
            threads=args.threads, extras=not args.no_extras, reasons_dir=getattr(args, "reasons", None))
    except ReasonsError as exc:
        print(f"benchmarks: reason file error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_args(build_parser().parse_args(argv))
