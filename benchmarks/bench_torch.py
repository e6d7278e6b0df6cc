"""lossbridge on PyTorch vs torch itself: ratio tables (lossbridge time / native time).

Optimizers: one ``step()`` of Adam, AdamW and SGD-momentum on ~1M parameters in 10 tensors and
~10M parameters in 200 tensors, against ``torch.optim``'s default step (the eager baseline) and
its ``fused=True`` step (the fastest native mode). lossbridge modes: its default (the verified
native kernel where one matches the spec), the spec's update eagerly (``fused=False``) and through
``torch.compile`` (``fused=False, compile=True``).

Losses: forward + backward of ``sparse_categorical_crossentropy`` (10 classes), ``binary_crossentropy``
and ``mse`` at 1e3, 1e5 and 1e7 elements against ``torch.nn.functional``, eager and both compiled
(``torch.compile(fullgraph=True, dynamic=True)``).

One process, warm-up then the median of repeats. Run: ``python benchmarks/bench_torch.py``
(``--threads N`` sets torch's intra-op threads; default 1, steadier on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
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
}
SIZES = {"1M/10": (1_000_000, 10), "10M/200": (10_000_000, 200)}


def _median(fn: Callable[[], Any], *, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _params(total: int, count: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(total // count, generator=gen)) for _ in range(count)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def bench_optimizers(repeats: int, emit: Callable[[tuple[str, ...]], None]) -> None:
    for name, (native_cls, kw) in OPTIMIZERS.items():
        spec_name = name.split("-")[0]
        cls = lossbridge.get(spec_name, backend="torch", convention="torch")
        for size, (total, count) in SIZES.items():
            params = _params(total, count)
            t = {}
            for label, make, options in (
                ("torch", native_cls, {}),
                ("torch fused", native_cls, {"fused": True}),
                ("lb", cls, {}),
                ("lb spec eager", cls, {"fused": False}),
                ("lb spec compiled", cls, {"fused": False, "compile": True}),
            ):
                opt = make(params, **options, **kw)
                t[label] = _median(opt.step, warmup=2, repeats=repeats)
            fastest_native = min(t["torch"], t["torch fused"])
            fastest_lb = min(t["lb"], t["lb spec compiled"])
            emit((
                name,
                size,
                f"{t['torch'] * 1e3:.1f}",
                f"{t['torch fused'] * 1e3:.1f}",
                f"{t['lb'] / t['torch']:.2f}",
                f"{t['lb spec eager'] / t['torch']:.2f}",
                f"{t['lb spec compiled'] / t['torch']:.2f}",
                f"{fastest_lb / fastest_native:.2f}",
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


def bench_losses(repeats: int, emit: Callable[[tuple[str, ...]], None]) -> None:
    compiled: dict[str, tuple[Any, Any]] = {}
    for exp in (3, 5, 7):
        for name, (ours, native, (pred, target)) in _loss_cases(10**exp).items():
            if name not in compiled:
                compiled[name] = (
                    torch.compile(ours, fullgraph=True, dynamic=True),
                    torch.compile(native, fullgraph=True, dynamic=True),
                )
            pred = pred.requires_grad_()
            reps = repeats if exp < 7 else 3
            t = {
                label: _median(_fwd_bwd(fn, pred, target), warmup=2, repeats=reps)
                for label, fn in (("ours", ours), ("native", native), ("ours c", compiled[name][0]),
                                  ("native c", compiled[name][1]))
            }
            emit((
                name,
                f"1e{exp}",
                f"{t['native'] * 1e3:.3f}",
                f"{t['ours'] / t['native']:.2f}",
                f"{t['native c'] * 1e3:.3f}",
                f"{t['ours c'] / t['native c']:.2f}",
            ))


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); ratio = lossbridge / torch\n")
    print("Optimizer step (ms for torch; ratios vs torch.optim's default step; last: fastest vs fastest)")
    header = ("optimizer", "params/tensors", "torch ms", "fused ms", "lb", "lb eager", "lb compiled",
              "fastest")
    bench_optimizers(args.repeats, _table(header))
    print("\nLoss forward+backward (ms for torch.nn.functional; ratios lossbridge / torch)")
    header = ("loss", "elements", "F eager ms", "eager", "F compiled ms", "compiled")
    bench_losses(args.repeats, _table(header))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
