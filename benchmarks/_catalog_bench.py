"""One benchmark for the whole catalog: every spec with a native counterpart, on every installed backend.

Each row times lossbridge against the framework's own object, built from the spec's
:class:`~lossbridge.Convention` (data, not a per-spec table): the native object is the one
``Convention.native`` names (``torch.nn.BCELoss``, ``keras.losses.Huber``, ``optax.adam``), made with
the framework's defaults, and lossbridge's is ``lossbridge.get(spec, backend=..., convention=...)`` with
the preset of that native name, so both compute the same numbers (checked once per row: ``agree``).
Inputs come from the spec's input domains (the conformance kit's samplers), in the backend's
argument order.

- torch: loss forward + backward against ``torch.nn`` (eager; ``torch.compile`` for a few losses in
  the full run), one optimizer ``step()`` against ``torch.optim``'s default step.
- JAX: ``jax.jit`` of ``value_and_grad`` of the mean loss against ``optax.losses``; one jitted
  ``update`` + ``apply_updates`` against the ``optax`` transformation.
- TensorFlow: loss forward + backward (GradientTape) in a ``tf.function`` (graph) and with
  ``jit_compile=True`` (XLA) against ``keras.losses``; one ``apply`` against ``keras.optimizers``.
- NumPy (no native framework): the bound loss (checks, reduction, analytic gradient) against the
  spec's own ``fn`` + ``vjp`` called directly: the binding's overhead. Peak memory (tracemalloc) too.

Also: the Adam step of each torch mode against the memory-bandwidth floor (7 arrays x 4 bytes x
parameters / measured copy bandwidth) and, in the full run, peak memory of sparse cross-entropy on
4096x32000 logits (``bench_torch.bench_memory``). Schedules are not timed (a scalar per step).

Timing: warm-up (tracing, compiling), then ``repeats`` samples of an auto-sized inner loop, lossbridge
and native interleaved so machine load hits both alike; the median of each. The default clock is CPU
time (``--clock cpu``: the calling thread's for torch and NumPy, the process's for JAX and TensorFlow),
steady on a shared machine; ``--clock wall`` uses ``perf_counter``. A coupled loss (every row against
every other) stops at 1e4 elements; rows that cannot be built say why (``status``, ``reason``). Speed is
reported, never asserted. Writes ``reports/bench.json`` (``bench.partial.json`` after every spec while
running) and ``reports/bench.png``.

    python -m benchmarks [--quick] [--only SPEC[,SPEC]] [--backend B[,B]] [--kind loss|optimizer]
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
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

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
    ("jax", "loss", "jit"): 1.1,
    ("jax", "optimizer", "jit"): 1.0,
    ("tensorflow", "loss", "graph"): 1.3,
    ("tensorflow", "loss", "xla"): 1.0,
    ("tensorflow", "optimizer", "graph"): 1.3,
    ("tensorflow", "optimizer", "xla"): 1.0,
}
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

    def finish(self, ours: float, native: float) -> Row:
        self.lossbridge_s, self.native_s = ours, native
        self.ratio = ours / native if native > 0 else None
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


def _timed_pair(
    ours: Callable[[], Any], native: Callable[[], Any], plan: Plan, sync: Callable[[Any], Any] = lambda x: x,
    *, backend: str = "torch",
) -> tuple[float, float]:
    """Median seconds per call of each callable, interleaved, after a warm-up (``backend`` picks the clock)."""
    clock = _CLOCK.get(backend, time.perf_counter)
    for fn in (ours, native, ours, native):
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
    return statistics.median(samples[0]), statistics.median(samples[1])


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


def loss_inputs(spec: Any, convention: str | None, preset: dict[str, Any], n: int) -> list[tuple[Any, bool, bool]]:
    """``(array, integer, differentiable)`` per spec input, sampled from its domain: ``(n / 10, 10)``."""
    rng = np.random.default_rng(0)
    resolved = bind(spec, convention=convention, params=preset).params
    shape = (max(n // CLASSES, 1), CLASSES)
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


def _ctc_inputs(framework: str, n: int) -> list[tuple[np.ndarray, bool, bool]]:
    """CTC in each framework's own argument list (its ``NativeInputs``): n = batch x 50 frames x 10 classes."""
    rng = np.random.default_rng(0)
    frames, classes, length = 50, CLASSES, 10
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
    return [(logits, False, True), (np.zeros((batch, frames)), False, False), (labels, True, False),
            (np.zeros((batch, length)), False, False)]


#: Losses whose native argument list is not the spec's inputs: a small explicit table, native order.
NATIVE_INPUTS: dict[str, Callable[[str, int], list[tuple[np.ndarray, bool, bool]]]] = {"ctc": _ctc_inputs}


#: Rows not timed, with the measured reason (found by this benchmark; see the report).
NOT_RUN = {
    ("tensorflow", "ctc"): "not timed: the graph-mode step (tf.function + GradientTape) of lossbridge's CTC and "
    "keras.losses.CTC at 2x50x10 had not finished warming up after 3 minutes (resident memory past 4 GB)",
    ("jax", "ctc"): "not timed: jax.jit of lossbridge's CTC value_and_grad did not finish compiling in 100 s "
    "at 2x50x10 (optax.losses.ctc_loss: 12 s on the same loaded machine)",
}


def _native_args(spec: Any, framework: str, preset: dict[str, Any], n: int, backend: Any) -> list[Any]:
    """``(array, integer, differentiable)`` per positional argument, in the backend's (native) order."""
    if spec.name in NATIVE_INPUTS:
        return NATIVE_INPUTS[spec.name](framework, n)
    return _spec_order(backend, spec, loss_inputs(spec, framework, preset, n))


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


def _torch_optimizer_rows(spec: Any, plan: Plan) -> Iterator[Row]:
    import torch

    path, preset, native_cls = native_object(spec, "torch", "optimizer")
    _require_class(path, native_cls)
    ours_cls = lossbridge.get(spec.name, backend="torch", convention="torch", **preset)
    kw = _lr_kwargs(native_cls, "torch")
    for total, count in plan.optimizer_sizes["torch"]:
        row = Row("torch", spec.name, "optimizer", "eager", f"{total / 1e6:g}M/{count}", path, "torch")
        sides = []
        for make in (ours_cls, native_cls):
            gen = torch.Generator().manual_seed(0)
            params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in _tree_shapes(total, count)]
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            sides.append((make(params, **kw), params))
        sides[0][0].step()
        sides[1][0].step()
        row.agree = _close(sides[0][1][0].detach(), sides[1][1][0].detach(), 1e-4)
        yield row.finish(*_timed_pair(sides[0][0].step, sides[1][0].step, plan))


def _jax_loss_rows(spec: Any, plan: Plan, backend: Any) -> Iterator[Row]:
    import jax
    import jax.numpy as jnp

    path, preset, native = native_object(spec, "optax", "loss")
    if ("jax", spec.name) in NOT_RUN:
        raise RuntimeError(NOT_RUN[("jax", spec.name)])
    ours = lossbridge.get(spec.name, backend="jax", convention="optax", **preset)
    for n in _loss_sizes(spec, plan, "jax"):
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


def _jax_optimizer_rows(spec: Any, plan: Plan) -> Iterator[Row]:
    import jax
    import optax

    path, preset, native_fn = native_object(spec, "optax", "optimizer")
    kw = _lr_kwargs(native_fn, "optax")
    txs = (lossbridge.get(spec.name, backend="jax", convention="optax", **preset, **kw), native_fn(**kw))
    for total, count in plan.optimizer_sizes["jax"]:
        row = Row("jax", spec.name, "optimizer", "jit", f"{total / 1e6:g}M/{count}", path, "optax")
        rng = np.random.default_rng(0)
        params = [jax.numpy.asarray(rng.normal(size=s), jax.numpy.float32) for s in _tree_shapes(total, count)]
        grads = [jax.numpy.asarray(rng.normal(size=s), jax.numpy.float32) for s in _tree_shapes(total, count)]
        runners = []
        for tx in txs:
            step = jax.jit(lambda p, s, g, tx=tx: _optax_step(optax, tx, p, s, g))  # no constants baked in
            carry = [params, tx.init(params)]

            def run(step: Any = step, carry: list[Any] = carry, grads: list[Any] = grads) -> Any:
                carry[0], carry[1] = step(carry[0], carry[1], grads)
                return carry[0]

            runners.append(run)
        first = [jax.block_until_ready(r()) for r in runners]
        row.agree = _close(first[0][0], first[1][0], 1e-4)
        yield row.finish(*_timed_pair(runners[0], runners[1], plan, jax.block_until_ready, backend="jax"))


def _optax_step(optax: Any, tx: Any, params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
    updates, state = tx.update(grads, state, params)
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
                @tf.function(jit_compile=jit)
                def step(*a: Any) -> Any:
                    with tf.GradientTape() as tape:
                        for i in watched:
                            tape.watch(a[i])
                        total = tf.reduce_sum(fn(*a))
                    return total, tape.gradient(total, [a[i] for i in watched])

                return lambda: step(*args)

            yield row.finish(*_timed_pair(make(ours), make(native), plan, backend="tensorflow"))


def _tf_optimizer_rows(spec: Any, plan: Plan) -> Iterator[Row]:
    import keras
    import tensorflow as tf

    path, preset, native_cls = native_object(spec, "keras", "optimizer")
    _require_class(path, native_cls)
    kw = _lr_kwargs(native_cls, "keras")
    for total, count in plan.optimizer_sizes["tensorflow"]:
        shapes = _tree_shapes(total, count)
        rng = np.random.default_rng(1)
        grads = [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
        agree = None
        for mode, jit in (("graph", False), ("xla", True)):
            row = Row("tensorflow", spec.name, "optimizer", mode, f"{total / 1e6:g}M/{count}", path, "keras")
            runners, firsts = [], []
            for make in (lambda: lossbridge.get(spec.name, backend="tensorflow", convention="keras", **preset, **kw),
                         lambda: native_cls(**kw)):
                rng = np.random.default_rng(0)
                variables = [keras.Variable(rng.normal(size=s).astype("float32")) for s in shapes]
                opt = make()
                opt.build(variables)
                step = _tf_apply(tf, opt, grads, variables, jit)
                step()
                firsts.append(variables[0].numpy())
                runners.append(step)
            row.agree = agree = _close(firsts[0], firsts[1], 1e-4) if agree is None else agree
            yield row.finish(*_timed_pair(runners[0], runners[1], plan, backend="tensorflow"))


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
        for x, integer, _ in loss_inputs(spec, None, {}, n):
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
            seconds, _ = _timed_pair(opt.step, lambda: None, plan)
            yield {"mode": label, "size": f"{total / 1e6:g}M/{count}", "seconds": seconds,
                   "floor_seconds": floor, "ratio_to_floor": seconds / floor}


def _vm_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def peak_extra_mb(which: str, rows: int, classes: int) -> float:
    """Peak resident memory one sparse cross-entropy forward + backward adds (MB), in this process.

    The logits and labels exist and both paths are warmed up on a small batch first; the peak is the
    kernel's high-water mark (``VmHWM``), reset to the current size just before (``clear_refs`` 5).
    Not ``ru_maxrss``: Linux keeps it across ``exec``, so a child of a large process reads its parent's.
    """
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    ours = lossbridge.get("sparse_categorical_crossentropy", backend="torch", convention="torch")
    fn = ours if which == "ours" else F.cross_entropy
    small = torch.randn(8, classes, generator=gen, requires_grad=True)
    fn(small, torch.randint(0, classes, (8,), generator=gen)).backward()
    logits = torch.randn(rows, classes, generator=gen).requires_grad_()
    labels = torch.randint(0, classes, (rows,), generator=gen)
    Path("/proc/self/clear_refs").write_text("5")
    base = _vm_kb("VmRSS")
    fn(logits, labels).backward()
    return (_vm_kb("VmHWM") - base) / 1024


def memory_rows(rows: int = 4096, classes: int = 32000) -> list[dict[str, Any]]:
    """Peak extra memory of sparse cross-entropy forward + backward on 4096x32000 float32 logits.

    Each side in a fresh process (:func:`peak_extra_mb`), as ``bench_torch.bench_memory`` does.
    """
    import subprocess

    root = str(Path(__file__).resolve().parents[1])
    peaks = {}
    for which in ("native", "ours"):
        code = (f"import sys; sys.path.insert(0, {root!r}); from benchmarks._catalog_bench import peak_extra_mb; "
                f"print(peak_extra_mb({which!r}, {rows}, {classes}))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peaks[which] = float(out.stdout.strip().splitlines()[-1])
    ratio = peaks["ours"] / peaks["native"] if peaks["native"] > 0 else None
    return [{"backend": "torch", "spec": "sparse_categorical_crossentropy", "size": f"{rows}x{classes}",
             "logits_mb": rows * classes * 4 / 2**20, "peak_mb_native": peaks["native"],
             "peak_mb_lossbridge": peaks["ours"], "ratio": ratio, "target": 1.0,
             "meets": None if ratio is None else ratio <= 1.0}]


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

    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    target = "-" if row.target is None else f"{row.target:.1f}x"
    verdict = {True: "ok", False: "MISS", None: ""}[row.meets]
    if row.status != "ok":
        verdict, ratio = row.status, row.reason[:60]
    agree = {True: "", False: " (values differ)", None: ""}[row.agree]
    return (f"{row.backend:<10} {row.spec:<32} {row.kind:<9} {row.mode:<8} {row.size:>9} "
            f"{ms(row.lossbridge_s):>10} {ms(row.native_s):>10} {ratio:>7} {target:>6} {verdict}{agree}")


HEADER = (f"{'backend':<10} {'spec':<32} {'kind':<9} {'mode':<8} {'size':>9} "
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


def run(
    plan: Plan, backends: list[str], only: set[str] | None, kinds: set[str], out_dir: Path, *,
    plot: bool = True, threads: int = 1, extras: bool = True,
) -> dict[str, Any]:
    """Run every task, print the table, write ``bench.json`` (and ``bench.png``); return the report."""
    started = time.perf_counter()
    warnings.filterwarnings("ignore")
    if "torch" in backends:
        import torch

        torch.set_num_threads(threads)
    todo = tasks(backends, only, kinds)
    rows: list[Row] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / "bench.partial.json"  # rewritten after every spec: an interrupted run keeps its rows
    print(HEADER, flush=True)
    for i, task in enumerate(todo):
        _progress(i, len(todo), task.label, started)
        try:
            for row in task.run(plan):
                rows.append(row)
                _clear()
                print(_fmt(row), flush=True)
                _progress(i, len(todo), task.label, started)
        except Exception as exc:  # a row that cannot be built says why, and the run goes on
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            framework = FRAMEWORK.get(task.backend)
            row = Row(task.backend, task.spec.name, task.kind, "-", "-", status="not run", reason=reason,
                      convention=framework,
                      native=task.spec.conventions[framework].native if framework else "")
            rows.append(row)
            _clear()
            print(_fmt(row), flush=True)
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
        "rows": [asdict(r) for r in rows],
    }
    report["summary"] = summary(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=1, default=str) + "\n")  # rows are safe
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
    if extras and plan.memory and "torch" in backends and "loss" in kinds and (
        only is None or "sparse_categorical_crossentropy" in only
    ):
        try:
            report["memory"] = memory_rows()
            for r in report["memory"]:
                ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
                print(f"\npeak extra memory, sparse CE {r['size']}: torch {r['peak_mb_native']:.0f} MB, "
                      f"lossbridge {r['peak_mb_lossbridge']:.0f} MB ({ratio})")
        except Exception as exc:
            report["memory"] = [{"error": f"{type(exc).__name__}: {exc}"}]
    report["seconds"] = time.perf_counter() - started
    (out_dir / "bench.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    partial.unlink(missing_ok=True)
    if plot:
        plot_ratios(rows, out_dir / "bench.png")
    print_summary(report["summary"])
    print(f"\nwrote {out_dir / 'bench.json'}" + (f" and {out_dir / 'bench.png'}" if plot else "")
          + f" in {report['seconds']:.0f} s")
    return report


def summary(rows: list[Row]) -> dict[str, Any]:
    """Per backend, kind and mode: rows measured, meeting the target, missing it, not run; the worst."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r.backend}/{r.kind}/{r.mode}"
        g = groups.setdefault(key, {"rows": 0, "meets": 0, "misses": 0, "not_run": 0, "target": r.target,
                                    "median_ratio": None, "worst": None, "ratios": []})
        g["rows"] += 1
        if r.status != "ok":
            g["not_run"] += 1
            continue
        g["meets"] += bool(r.meets)
        g["misses"] += r.meets is False
        if r.ratio is not None:
            g["ratios"].append(r.ratio)
            if g["worst"] is None or r.ratio > g["worst"][1]:
                g["worst"] = (f"{r.spec} {r.size}", r.ratio)
    for g in groups.values():
        ratios = g.pop("ratios")
        g["median_ratio"] = statistics.median(ratios) if ratios else None
    return groups


def print_summary(groups: dict[str, Any]) -> None:
    print("\nSummary (ratio = lossbridge / native)")
    for key, g in sorted(groups.items()):
        target = "-" if g["target"] is None else f"{g['target']:.1f}x"
        med = "-" if g["median_ratio"] is None else f"{g['median_ratio']:.2f}x"
        worst = "-" if g["worst"] is None else f"{g['worst'][0]} {g['worst'][1]:.2f}x"
        print(f"  {key:<28} target {target:>5}  rows {g['rows']:>3}  meet {g['meets']:>3}  miss {g['misses']:>3}"
              f"  not run {g['not_run']:>2}  median {med:>6}  worst {worst}")


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
    run(QUICK if args.quick else FULL, backends, only, kinds, args.out, plot=not args.no_plot,
        threads=args.threads, extras=not args.no_extras)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_args(build_parser().parse_args(argv))
