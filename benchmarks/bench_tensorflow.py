"""TensorFlow backend speed as ratios to Keras's own classes (lossbridge time / native time).

Optimizers: Adam, AdamW and SGD with momentum (all ``convention="keras"``), one ``apply`` step on
~1M parameters in 10 variables and ~10M parameters in 200 variables, inside ``tf.function``
(graph) and with ``jit_compile=True`` (XLA). Losses: forward + backward (GradientTape) of a
batch, in a ``tf.function``. One process; warm-up, then the median of repeats, with lossbridge
and native runs interleaved so machine load affects both alike. Targets: <= 1.0x with XLA,
<= 1.3x in graph mode. Not a test: nothing here asserts a time.

    python benchmarks/bench_tensorflow.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import lossbridge

OPTIMIZERS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "adam": (
        lambda: lossbridge.get("adam", backend="tensorflow", convention="keras"),
        lambda: keras.optimizers.Adam(),
    ),
    "adamw": (
        lambda: lossbridge.get("adamw", backend="tensorflow", convention="keras"),
        lambda: keras.optimizers.AdamW(),
    ),
    "sgd-momentum": (
        lambda: lossbridge.get("sgd", backend="tensorflow", convention="keras", momentum=0.9),
        lambda: keras.optimizers.SGD(momentum=0.9),
    ),
}

LOSSES: dict[str, tuple[Callable[[], Any], Callable[[], Any], str, str]] = {
    # name: (lossbridge, native, y_true kind, y_pred kind)
    "mse": (
        lambda: lossbridge.get("mse", backend="tensorflow", convention="keras"),
        lambda: keras.losses.MeanSquaredError(),
        "real",
        "real",
    ),
    "huber": (
        lambda: lossbridge.get("huber", backend="tensorflow", convention="keras"),
        lambda: keras.losses.Huber(),
        "real",
        "real",
    ),
    "binary_crossentropy": (
        lambda: lossbridge.get(
            "binary_crossentropy", backend="tensorflow", convention="keras", from_logits=True
        ),
        lambda: keras.losses.BinaryCrossentropy(from_logits=True),
        "binary",
        "real",
    ),
    "categorical_crossentropy": (
        lambda: lossbridge.get(
            "categorical_crossentropy", backend="tensorflow", convention="keras", from_logits=True
        ),
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
        "one_hot",
        "real",
    ),
    "sparse_categorical_crossentropy": (
        lambda: lossbridge.get(
            "sparse_categorical_crossentropy", backend="tensorflow", convention="keras", from_logits=True
        ),
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "index",
        "real",
    ),
}


def _median_seconds(fn: Callable[[], Any], repeats: int, inner: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def _interleaved(
    fns: tuple[Callable[[], Any], Callable[[], Any]], repeats: int, inner: int
) -> tuple[float, float]:
    for fn in fns:  # warm-up: trace, compile, first allocations
        for _ in range(3):
            fn()
    ours, native = [], []
    for _ in range(repeats):
        ours.append(_median_seconds(fns[0], 1, inner))
        native.append(_median_seconds(fns[1], 1, inner))
    return statistics.median(ours), statistics.median(native)


def _optimizer_step(make: Callable[[], Any], n_params: int, n_vars: int, jit: bool) -> Callable[[], Any]:
    rng = np.random.default_rng(0)
    size = n_params // n_vars
    variables = [keras.Variable(rng.normal(size=size).astype("float32")) for _ in range(n_vars)]
    grads = [tf.constant(rng.normal(size=size).astype("float32")) for _ in range(n_vars)]
    opt = make()
    opt.build(variables)
    step = tf.function(lambda: opt.apply(grads, variables), jit_compile=jit)
    return lambda: step()


def bench_optimizers(sizes: list[tuple[int, int]], repeats: int, inner: int) -> list[tuple[str, ...]]:
    rows = []
    for name, (ours, native) in OPTIMIZERS.items():
        for n_params, n_vars in sizes:
            for mode, jit in (("graph", False), ("xla", True)):
                fns = (
                    _optimizer_step(ours, n_params, n_vars, jit),
                    _optimizer_step(native, n_params, n_vars, jit),
                )
                t_ours, t_native = _interleaved(fns, repeats, max(2, inner * 1_000_000 // n_params))
                rows.append(
                    (
                        name,
                        f"{n_params / 1e6:.0f}M/{n_vars}",
                        mode,
                        f"{t_ours * 1e3:.2f}",
                        f"{t_native * 1e3:.2f}",
                        f"{t_ours / t_native:.2f}x",
                    )
                )
                print(" | ".join(rows[-1]), flush=True)
    return rows


def _loss_inputs(kind_true: str, batch: int, classes: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, size=batch)
    y_true = {
        "real": rng.normal(size=(batch, classes)),
        "binary": rng.integers(0, 2, size=(batch, classes)).astype("float32"),
        "one_hot": np.eye(classes)[labels],
        "index": labels,
    }[kind_true]
    y_pred = rng.normal(size=(batch, classes))
    y_true = tf.constant(y_true if kind_true == "index" else np.asarray(y_true, "float32"))
    return y_true, tf.constant(y_pred.astype("float32"))


def _loss_step(loss: Any, y_true: Any, y_pred: Any, jit: bool) -> Callable[[], Any]:
    @tf.function(jit_compile=jit)
    def step() -> Any:
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            value = loss(y_true, y_pred)
        return value, tape.gradient(value, y_pred)

    return lambda: step()


def bench_losses(batch: int, classes: int, repeats: int, inner: int) -> list[tuple[str, ...]]:
    rows = []
    for name, (ours, native, kind_true, _) in LOSSES.items():
        y_true, y_pred = _loss_inputs(kind_true, batch, classes)
        for mode, jit in (("graph", False), ("xla", True)):
            fns = (_loss_step(ours(), y_true, y_pred, jit), _loss_step(native(), y_true, y_pred, jit))
            t_ours, t_native = _interleaved(fns, repeats, inner)
            rows.append(
                (
                    name,
                    f"{batch}x{classes}",
                    mode,
                    f"{t_ours * 1e3:.3f}",
                    f"{t_native * 1e3:.3f}",
                    f"{t_ours / t_native:.2f}x",
                )
            )
            print(" | ".join(rows[-1]), flush=True)
    return rows


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"\n{title}", line(header), sep, *(line(r) for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description="lossbridge TensorFlow backend: ratios to keras")
    parser.add_argument("--quick", action="store_true", help="1M parameters only, fewer repeats")
    parser.add_argument("--only", choices=("optimizers", "losses"), help="run one half of the table")
    args = parser.parse_args()
    sizes = [(1_000_000, 10)] if args.quick else [(1_000_000, 10), (10_000_000, 200)]
    repeats, inner = (3, 5) if args.quick else (5, 10)
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, {os.cpu_count()} cpu(s)")
    opt_rows = bench_optimizers(sizes, repeats, inner) if args.only != "losses" else []
    loss_rows = bench_losses(4096, 100, repeats, inner) if args.only != "optimizers" else []
    print(
        _table(
            "Optimizer step (ms) - ratio lossbridge/keras",
            ("optimizer", "params/vars", "mode", "lossbridge", "keras", "ratio"),
            opt_rows,
        )
    )
    print(
        _table(
            "Loss forward+backward (ms) - ratio lossbridge/keras",
            ("loss", "batch", "mode", "lossbridge", "keras", "ratio"),
            loss_rows,
        )
    )


if __name__ == "__main__":
    main()
