"""lossbridge on PyTorch vs torch itself: ratio tables (lossbridge time / native time).

Optimizers: one ``step()`` of every optimizer torch.optim also has (Adam, AdamW, SGD-momentum,
RMSprop, Adagrad, NAdam, RAdam, Adamax, Adadelta) on ~1M parameters in 10 tensors, ~10M in 200 and
~100k in 1000 (small tensors), against ``torch.optim``'s default step (on a CPU: the single-tensor
loop), its ``foreach=True`` step and its ``fused=True`` step where it has one. lossbridge modes: its
default (the verified native kernel where one matches the spec), the spec's update eagerly
(``fused=False``: an elementwise spec runs once per flat group of small tensors, large tensors run
tensor by tensor), the eager path without flat groups (list updates for small tensors: the path before
flat groups), the same forced tensor by tensor (the path before list updates) and through
``torch.compile`` (``fused=False, compile=True``: flat groups, one fused kernel per group or per batch
of large tensors; ``--no-compile`` skips it). ``--optimizers adam,sgd-momentum`` runs some of them.

Losses: forward + backward of ``sparse_categorical_crossentropy`` (10 classes), ``binary_crossentropy``
and ``mse`` at 1e3, 1e5 and 1e7 elements against ``torch.nn.functional``, eager (value checks on, and
``validate=False``) and both compiled (``torch.compile(fullgraph=True, dynamic=True)``).

One process, warm-up then the median of repeats (``--clock cpu``, the default, times the thread's
CPU time, steady on a shared machine; ``--clock wall`` times wall-clock). Run:
``python benchmarks/bench_torch.py`` (``--threads N`` sets torch's intra-op threads; default 1;
``--only optimizers|losses|memory`` runs one table; ``--no-compile`` skips the compiled modes).

Memory: peak extra resident memory of sparse cross-entropy forward + backward on 4096x32000 float32
logits, lossbridge and ``F.cross_entropy`` each in a fresh process.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

import lossbridge

OPTIMIZERS = {
    "adam": (torch.optim.Adam, {"lr": 1e-3}),
    "adamw": (torch.optim.AdamW, {"lr": 1e-3}),
    "sgd-momentum": (torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 1e-3}),
    "adagrad": (torch.optim.Adagrad, {"lr": 1e-3}),
    "nadam": (torch.optim.NAdam, {"lr": 1e-3}),
    "radam": (torch.optim.RAdam, {"lr": 1e-3}),
    "adamax": (torch.optim.Adamax, {"lr": 1e-3}),
    "adadelta": (torch.optim.Adadelta, {"lr": 1.0}),
}
SIZES = {"1M/10": (1_000_000, 10), "10M/200": (10_000_000, 200), "100k/1000": (100_000, 1000)}
_CLOCK: Callable[[], float] = time.thread_time


def _median(fn: Callable[[], Any], *, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = _CLOCK()
        fn()
        times.append(_CLOCK() - start)
    return statistics.median(times)


def _params(total: int, count: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(total // count, generator=gen)) for _ in range(count)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def _has_fused(native_cls: type) -> bool:
    try:
        native_cls([torch.nn.Parameter(torch.zeros(1))], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def bench_optimizers(
    repeats: int, emit: Callable[[tuple[str, ...]], None], *, compile_: bool, only: list[str] | None = None
) -> None:
    for name, (native_cls, kw) in OPTIMIZERS.items():
        if only and name not in only:
            continue
        spec_name = name.split("-")[0]
        cls = lossbridge.get(spec_name, backend="torch", convention="torch")
        per_tensor = type(cls.__name__, (cls,), {"_group_mode": "off"})  # the loop before list updates
        no_flat = type(cls.__name__, (cls,), {"_flat_ok": False})  # the eager path before flat groups
        fused = _has_fused(native_cls)
        for size, (total, count) in SIZES.items():
            params = _params(total, count)
            modes: list[tuple[str, Any, dict[str, Any]]] = [
                ("torch", native_cls, {}),
                ("torch foreach", native_cls, {"foreach": True}),
                ("lb", cls, {}),
                ("lb spec eager", cls, {"fused": False}),
                ("lb no-flat", no_flat, {"fused": False}),
                ("lb per-tensor", per_tensor, {"fused": False}),
            ]
            if fused:
                modes.append(("torch fused", native_cls, {"fused": True}))
            if compile_:
                modes.append(("lb spec compiled", cls, {"fused": False, "compile": True}))
            t = {}
            for label, make, options in modes:
                opt = make(params, **options, **kw)
                t[label] = _median(opt.step, warmup=3 if "compiled" in label else 2, repeats=repeats)
            base, each = t["torch"], t["torch foreach"]
            native_best = min(base, each, t.get("torch fused", base))
            ours_best = min(t["lb"], t["lb spec eager"], t.get("lb spec compiled", t["lb"]))
            compiled = t.get("lb spec compiled")
            emit((
                name,
                size,
                f"{base * 1e3:.1f}",
                f"{each * 1e3:.1f}",
                f"{t['torch fused'] * 1e3:.1f}" if fused else "-",
                f"{t['lb'] / base:.2f}",
                f"{t['lb spec eager'] / base:.2f}",
                f"{t['lb spec eager'] / each:.2f}",
                f"{t['lb no-flat'] / base:.2f}",
                f"{t['lb per-tensor'] / base:.2f}",
                f"{compiled / base:.2f}" if compiled is not None else "-",
                f"{ours_best / native_best:.2f}",
            ))


# Native functions wrapped in plain Python functions of their own: each gets its own Dynamo cache.
def _native_cce(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(pred, target)


def _native_bce(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy(pred, target)


def _native_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target)


def _loss_cases(n: int) -> dict[str, tuple[Any, Callable[..., torch.Tensor], tuple[torch.Tensor, ...]]]:
    gen = torch.Generator().manual_seed(0)
    rows = max(n // 10, 1)
    return {
        "sparse_cce": (
            lossbridge.get("sparse_categorical_crossentropy", backend="torch", convention="torch"),
            _native_cce,
            (torch.randn(rows, 10, generator=gen), torch.randint(0, 10, (rows,), generator=gen)),
        ),
        "bce": (
            lossbridge.get("binary_crossentropy", backend="torch", convention="torch"),
            _native_bce,
            (torch.rand(n, generator=gen) * 0.98 + 0.01, torch.randint(0, 2, (n,), generator=gen).float()),
        ),
        "mse": (
            lossbridge.get("mse", backend="torch", convention="torch"),
            _native_mse,
            (torch.randn(n, generator=gen), torch.randn(n, generator=gen)),
        ),
    }


def _fwd_bwd(fn: Callable[..., torch.Tensor], pred: torch.Tensor, target: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        pred.grad = None
        fn(pred, target).backward()

    return run


def bench_losses(repeats: int, emit: Callable[[tuple[str, ...]], None], *, compile_: bool = True) -> None:
    # every lossbridge loss module shares one ``forward`` code object: three losses at three sizes
    # (the batch size is specialized at the time of writing) exceed Dynamo's default limit of 8 graphs
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 32)
    compiled: dict[str, tuple[Any, Any]] = {}
    for exp in (3, 5, 7):
        for name, (ours, native, (pred, target)) in _loss_cases(10**exp).items():
            if compile_ and name not in compiled:
                compiled[name] = (
                    torch.compile(ours, fullgraph=True, dynamic=True),
                    torch.compile(native, fullgraph=True, dynamic=True),
                )
            pred = pred.requires_grad_()
            reps = repeats if exp < 7 else 3
            modes = (("ours c", compiled[name][0]), ("native c", compiled[name][1])) if compile_ else ()
            unchecked = copy.copy(ours)
            unchecked.validate = False
            t = {
                label: _median(_fwd_bwd(fn, pred, target), warmup=2, repeats=reps)
                for label, fn in (("ours", ours), ("unchecked", unchecked), ("native", native), *modes)
            }
            emit((
                name,
                f"1e{exp}",
                f"{t['native'] * 1e3:.3f}",
                f"{t['ours'] / t['native']:.2f}",
                f"{t['unchecked'] / t['native']:.2f}",
                f"{t['native c'] * 1e3:.3f}" if compile_ else "-",
                f"{t['ours c'] / t['native c']:.2f}" if compile_ else "-",
            ))


def _peak_extra_mb(which: str, rows: int, classes: int) -> float:
    """Peak resident memory added by one sparse cross-entropy forward + backward (this process, MB).

    Run in a fresh process per measurement (``ru_maxrss`` only grows): the logits and labels exist
    and both paths are warmed up on a small batch before the baseline is read.
    """
    import resource

    gen = torch.Generator().manual_seed(0)
    ours = lossbridge.get("sparse_categorical_crossentropy", backend="torch", convention="torch")
    fn = ours if which == "ours" else _native_cce
    small = torch.randn(8, classes, generator=gen, requires_grad=True)
    fn(small, torch.randint(0, classes, (8,), generator=gen)).backward()
    logits = torch.randn(rows, classes, generator=gen).requires_grad_()
    labels = torch.randint(0, classes, (rows,), generator=gen)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn(logits, labels).backward()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024


def bench_memory(emit: Callable[[tuple[str, ...]], None], rows: int = 4096, classes: int = 32000) -> None:
    """Peak extra memory of sparse cross-entropy forward + backward, each path in its own process."""
    import subprocess
    import sys

    peaks = {}
    for which in ("native", "ours"):
        code = (f"import sys; sys.path.insert(0, {__file__.rsplit('/', 1)[0]!r}); import bench_torch; "
                f"print(bench_torch._peak_extra_mb({which!r}, {rows}, {classes}))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peaks[which] = float(out.stdout.strip().splitlines()[-1])
    logits_mb = rows * classes * 4 / 2**20
    emit(("sparse_cce", f"{rows}x{classes}", f"{logits_mb:.0f}", f"{peaks['native']:.0f}", f"{peaks['ours']:.0f}",
          f"{peaks['ours'] / peaks['native']:.2f}"))


def _table(header: tuple[str, ...]) -> Callable[[tuple[str, ...]], None]:
    """Print ``header`` and return a function printing one row under it, as soon as it is measured."""
    widths = [max(len(h), 8) for h in header]

    def emit(cells: tuple[str, ...]) -> None:
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)), flush=True)

    emit(header)
    emit(tuple("-" * w for w in widths))
    return emit


def main() -> None:
    """Print both ratio tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--only", choices=("optimizers", "losses", "memory"), default=None)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile modes")
    parser.add_argument("--optimizers", default=None, help="comma-separated names of OPTIMIZERS to run")
    args = parser.parse_args()
    global _CLOCK
    _CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.clock} clock; "
          "ratio = lossbridge / torch\n")
    if args.only in (None, "optimizers"):
        print("Optimizer step (ms for torch's default, foreach and fused steps; ratios vs torch's default step "
              "unless marked /foreach; last: fastest vs fastest)")
        header = ("optimizer", "params/tensors", "torch ms", "foreach ms", "fused ms", "lb", "lb eager",
                  "eager/foreach", "lb no-flat", "lb per-tensor", "lb compiled", "fastest")
        only = args.optimizers.split(",") if args.optimizers else None
        bench_optimizers(args.repeats, _table(header), compile_=not args.no_compile, only=only)
    if args.only in (None, "losses"):
        print("\nLoss forward+backward (ms for torch.nn.functional; ratios lossbridge / torch)")
        header = ("loss", "elements", "F eager ms", "eager", "unchecked", "F compiled ms", "compiled")
        bench_losses(args.repeats, _table(header), compile_=not args.no_compile)
    if args.only in (None, "memory"):
        print("\nPeak extra memory of loss forward+backward (MB, float32; ratio lossbridge / torch)")
        bench_memory(_table(("loss", "logits", "logits MB", "F MB", "lb MB", "ratio")))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
