"""JAX benchmark: lossbridge vs Optax, as time ratios (lossbridge / native; <= 1.0 is the target).

Optimizers: one ``jax.jit``-compiled ``update`` + ``optax.apply_updates`` step of Adam, AdamW and
SGD-momentum (lossbridge under ``convention="optax"``, so both compute the same numbers) on
parameter trees of about 1M and 10M float32 parameters in 10 to 200 leaves. Losses: a jitted
forward+backward (``jax.value_and_grad`` of the mean loss) against the ``optax.losses``
equivalent. One process; each row is warmed up (compiled) first, then lossbridge and native
repeats are interleaved and the median of each is taken.

Run: ``python benchmarks/bench_jax.py`` (about a minute on 2 cores; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossbridge


def _median_ratio(
    ours: Callable[[], Any], native: Callable[[], Any], repeats: int
) -> tuple[float, float, float]:
    """Median seconds of each callable (interleaved), and their ratio."""
    for fn in (ours, native):
        jax.block_until_ready(fn())
    t_ours, t_native = [], []
    for _ in range(repeats):
        for fn, out in ((ours, t_ours), (native, t_native)):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            out.append(time.perf_counter() - start)
    a, b = statistics.median(t_ours), statistics.median(t_native)
    return a, b, a / b


def _tree(total: int, leaves: int, seed: int) -> list[jax.Array]:
    rng = np.random.default_rng(seed)
    size = total // leaves
    rows = max(1, int(np.sqrt(size)))
    return [jnp.asarray(rng.normal(size=(rows, size // rows)), jnp.float32) for _ in range(leaves)]


def _step_runner(tx: optax.GradientTransformation, params: Any, grads: Any, steps: int) -> Callable[[], Any]:
    @jax.jit
    def step(params: Any, state: Any) -> tuple[Any, Any]:
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    carry = {"params": params, "state": tx.init(params)}

    def run() -> Any:
        for _ in range(steps):
            carry["params"], carry["state"] = step(carry["params"], carry["state"])
        return carry["params"]

    return run


OPTIMIZERS: list[tuple[str, dict[str, Any], Callable[[], optax.GradientTransformation]]] = [
    ("adam", {"lr": 1e-3}, lambda: optax.adam(1e-3)),
    ("adamw", {"lr": 1e-3}, lambda: optax.adamw(1e-3)),
    ("sgd", {"lr": 1e-2, "momentum": 0.9}, lambda: optax.sgd(1e-2, momentum=0.9)),
]


def bench_optimizers(sizes: list[tuple[int, int]], repeats: int, steps: int) -> list[tuple[str, ...]]:
    """One row per optimizer and tree size."""
    rows = []
    for total, leaves in sizes:
        params, grads = _tree(total, leaves, 0), _tree(total, leaves, 1)
        count = sum(p.size for p in params)
        for name, hyper, native in OPTIMIZERS:
            ours_tx = lossbridge.get(name, backend="jax", convention="optax", **hyper)
            a, b, ratio = _median_ratio(
                _step_runner(ours_tx, params, grads, steps),
                _step_runner(native(), params, grads, steps),
                repeats,
            )
            label = f"{name} step, {count / 1e6:.1f}M params / {leaves} leaves"
            rows.append((label, f"optax.{name}", a / steps, b / steps, ratio))
    return rows


def _loss_inputs(kind: str, rng: np.random.Generator, n: int, c: int) -> tuple[Any, Any]:
    logits = jnp.asarray(rng.normal(size=(n, c)), jnp.float32)
    if kind == "index":
        return logits, jnp.asarray(rng.integers(0, c, size=n), jnp.int32)
    if kind == "sign":
        return logits, jnp.asarray(2 * rng.integers(0, 2, size=(n, c)) - 1, jnp.float32)
    if kind == "binary":
        return logits, jnp.asarray(rng.integers(0, 2, size=(n, c)), jnp.float32)
    if kind == "simplex":
        p = np.exp(rng.normal(size=(n, c)))
        return logits, jnp.asarray(p / p.sum(-1, keepdims=True), jnp.float32)
    return logits, jnp.asarray(rng.normal(size=(n, c)), jnp.float32)


LOSSES: list[tuple[str, dict[str, Any], str, str, Callable[..., Any]]] = [
    ("mse", {}, "real", "squared_error", optax.losses.squared_error),
    ("huber", {}, "real", "huber_loss", optax.losses.huber_loss),
    (
        "binary_crossentropy",
        {"from_logits": True},
        "binary",
        "sigmoid_binary_cross_entropy",
        optax.losses.sigmoid_binary_cross_entropy,
    ),
    (
        "categorical_crossentropy",
        {"from_logits": True},
        "simplex",
        "softmax_cross_entropy",
        optax.losses.softmax_cross_entropy,
    ),
    (
        "sparse_categorical_crossentropy",
        {"from_logits": True},
        "index",
        "softmax_cross_entropy_with_integer_labels",
        optax.losses.softmax_cross_entropy_with_integer_labels,
    ),
    ("hinge", {}, "sign", "hinge_loss", optax.losses.hinge_loss),
    ("multiclass_hinge", {}, "index", "multiclass_hinge_loss", optax.losses.multiclass_hinge_loss),
]


def _fwd_bwd(fn: Callable[[Any, Any], Any], pred: Any, target: Any, reps: int) -> Callable[[], Any]:
    grad = jax.jit(jax.value_and_grad(lambda p, t: jnp.mean(fn(p, t))))

    def run() -> Any:
        out = None
        for _ in range(reps):
            out = grad(pred, target)
        return out

    return run


def bench_losses(n: int, c: int, repeats: int, reps: int) -> list[tuple[str, ...]]:
    """One row per loss: jitted value_and_grad of the mean over an (n, c) batch."""
    rows, rng = [], np.random.default_rng(0)
    registered = {e.name for e in lossbridge.catalog(kind="loss")}
    for name, params, kind, native_name, native in LOSSES:
        if name not in registered:
            continue
        pred, target = _loss_inputs(kind, rng, n, c)
        ours = lossbridge.get(name, backend="jax", convention="optax", **params)
        a, b, ratio = _median_ratio(
            _fwd_bwd(ours, pred, target, reps), _fwd_bwd(native, pred, target, reps), repeats
        )
        rows.append((f"{name} fwd+bwd, ({n}, {c})", f"optax.losses.{native_name}", a / reps, b / reps, ratio))
    return rows


def _print(rows: list[tuple[Any, ...]]) -> None:
    print(f"{'benchmark':<48} {'native':<52} {'lossbridge':>11} {'native':>11} {'ratio':>7}")
    for label, native, a, b, ratio in rows:
        print(f"{label:<48} {native:<52} {a * 1e3:>9.3f}ms {b * 1e3:>9.3f}ms {ratio:>6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--only", choices=("optimizers", "losses"), help="run one half of the table")
    args = parser.parse_args()
    if args.quick:
        sizes, repeats, steps, n, c = [(10_000, 10)], 3, 2, 256, 10
    else:
        sizes, repeats, steps, n, c = (
            [(1_000_000, 10), (1_000_000, 200), (10_000_000, 10), (10_000_000, 200)],
            9,
            5,
            4096,
            100,
        )
    print(f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].platform}, float32")
    rows = bench_optimizers(sizes, repeats, steps) if args.only != "losses" else []
    _print(rows + (bench_losses(n, c, repeats, steps * 4) if args.only != "optimizers" else []))


if __name__ == "__main__":
    main()
