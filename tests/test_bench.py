"""The catalog benchmark command (``python -m benchmarks``, ``lossbridge bench``): its report's structure.

Speed is never asserted: these run ``--quick`` on one spec and check what the report holds. The NumPy
backend needs no framework (this file runs in the core environment); the torch run is skipped where
torch is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = {
    "backend", "spec", "kind", "mode", "size", "native", "convention", "lossbridge_s", "native_s", "ratio",
    "target", "meets", "peak_mb_lossbridge", "peak_mb_native", "agree", "status", "reason", "cause", "needed",
    "explained", "ratio_spread", "within_spread",
}


def _bench(*args: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "bench.png").stat().st_size > 0
    return json.loads((out / "bench.json").read_text())


def _check_report(report: dict, backend: str) -> list[dict]:
    assert {"timestamp", "machine", "settings", "targets", "rows", "summary", "seconds", "warnings",
            "reasons"} <= set(report)
    for group in report["summary"].values():
        assert {"rows", "meets", "misses", "explained", "unexplained", "not_run"} <= set(group)
        assert group["misses"] == group["explained"] + group["unexplained"]
    machine = report["machine"]
    assert machine["cpu_count"] >= 1 and isinstance(machine["cpu_model"], str)
    for package in ("python", "numpy", "torch", "tensorflow", "jax", "optax", "keras"):
        assert package in machine["versions"]
    rows = report["rows"]
    assert rows, "no rows"
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["backend"] == backend and row["spec"] == "mse"
        assert row["status"] == "ok", row["reason"]
        assert row["lossbridge_s"] > 0 and row["native_s"] > 0
        assert row["ratio"] == pytest.approx(row["lossbridge_s"] / row["native_s"])
        assert row["agree"] is True
    return rows


def test_quick_numpy_run_writes_the_report_and_the_plot(tmp_path: Path) -> None:
    report = _bench("--quick", "--only", "mse", "--backend", "numpy", out=tmp_path)
    rows = _check_report(report, "numpy")
    assert [r["size"] for r in rows] == ["1e3"]
    assert rows[0]["peak_mb_lossbridge"] is not None  # NumPy peak memory is measured (tracemalloc)
    assert rows[0]["target"] is None and rows[0]["meets"] is None  # no native framework: no target
    assert set(report["summary"]) == {"numpy/loss/eager"}
    cost = report["import"]  # issue 14 item 6: measured and reported, never asserted as a time
    assert cost["target_seconds"] == 0.15 and cost["frameworks_after_get"] == {}
    assert isinstance(cost["meets"], bool) and cost["seconds_over_numpy"] == sorted(cost["all_seconds"])[2]


def test_lossbridge_bench_runs_the_same_command(tmp_path: Path) -> None:
    pytest.importorskip("rich")
    proc = subprocess.run(
        [sys.executable, "-m", "lossbridge", "bench", "--quick", "--only", "mse", "--backend", "numpy",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_report(json.loads((tmp_path / "bench.json").read_text()), "numpy")


def test_unknown_spec_or_backend_is_a_usage_error(tmp_path: Path) -> None:
    for args in (("--only", "no_such_loss"), ("--backend", "no_such_backend")):
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--quick", *args, "--out", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "benchmarks:" in proc.stderr


def test_quick_torch_run_compares_against_torch_nn(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    report = _bench("--quick", "--only", "mse", "--backend", "torch", "--kind", "loss", out=tmp_path)
    rows = _check_report(report, "torch")
    assert {r["native"] for r in rows} == {"torch.nn.MSELoss"}
    assert {r["mode"] for r in rows} == {"eager"} and rows[0]["target"] == 1.3


# ---------------------------------------------------------------------------------------------
# per-row reasons (benchmarks/reasons/*.toml)


@pytest.fixture
def bench() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import benchmarks._catalog_bench as bench

    return bench


REASON = """
[[row]]
backend = "torch"
kind = "loss"
mode = "eager"
spec = "mse"
sizes = ["1e5"]
cause = "measured: 3 kernels against 1"
needed = "one fused kernel"
"""


def _rows(bench: Any) -> list[Any]:
    def row(spec: str, size: str, ratio: float, mode: str = "eager") -> Any:
        r = bench.Row("torch", spec, "loss", mode, size)
        return r.finish(ratio, 1.0)

    return [row("mse", "1e3", 1.0), row("mse", "1e5", 2.0), row("mae", "1e5", 2.0), row("huber", "1e5", 1.1)]


def test_reasons_attach_to_missed_rows_and_unexplained_rows_are_marked(bench: Any, tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(REASON)
    reasons = bench.load_reasons(tmp_path, {"mse", "mae", "huber"})
    assert [(r.file, r.entry, r.sizes) for r in reasons] == [("a.toml", 1, ("1e5",))]
    rows = _rows(bench)
    warnings = bench.attach_reasons(rows, reasons, {("torch", "loss", "mse"), ("torch", "loss", "mae")})
    assert warnings == []
    by = {(r.spec, r.size): r for r in rows}
    assert by["mse", "1e5"].explained is True and by["mse", "1e5"].cause == "measured: 3 kernels against 1"
    assert by["mse", "1e5"].needed == "one fused kernel"
    assert by["mse", "1e3"].meets and by["mse", "1e3"].explained is None and by["mse", "1e3"].cause == ""
    assert by["mae", "1e5"].explained is False and by["mae", "1e5"].cause == ""
    groups = bench.summary(rows)["torch/loss/eager"]
    assert (groups["meets"], groups["explained"], groups["unexplained"]) == (2, 1, 1)


def test_a_miss_inside_the_runs_own_spread_is_marked_and_counted_apart(bench: Any) -> None:
    rows = _rows(bench)  # mae 1e5 and mse 1e5 miss their 1.3x target; neither has an entry here
    rows[2].finish(2.0, 1.0, (1.2, 1.25, 1.9, 2.0, 2.1))  # lower quartile 1.25 <= 1.3: not separable from it
    rows[1].finish(2.0, 1.0, (1.8, 1.9, 2.0, 2.1, 2.2))  # lower quartile 1.9: a real miss
    bench.attach_reasons(rows, [], set())
    inside, outside = rows[2], rows[1]
    assert inside.ratio_spread == [1.25, 2.0] and inside.within_spread is True and inside.explained is True
    assert "quartiles 1.250-2.000x" in inside.cause and inside.needed
    assert outside.within_spread is None and outside.explained is False
    group = bench.summary(rows)["torch/loss/eager"]
    assert (group["explained"], group["within_spread"], group["unexplained"]) == (1, 1, 1)


def test_reason_without_sizes_covers_every_size_and_a_second_match_is_a_warning(bench: Any, tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(REASON.replace('sizes = ["1e5"]\n', ""))
    (tmp_path / "b.toml").write_text(REASON)
    rows = _rows(bench)
    rows[0].finish(3.0, 1.0)  # mse 1e3 now misses too
    warnings = bench.attach_reasons(rows, bench.load_reasons(tmp_path), {("torch", "loss", "mse")})
    assert all(r.explained for r in rows if r.spec == "mse")
    assert [(w["kind"], w["file"], w["entry"]) for w in warnings] == [("duplicate", "b.toml", 1)]


def test_stale_reasons_are_warnings_only_inside_the_runs_scope(bench: Any, tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        REASON.replace('"mse"', '"huber"')  # huber 1e5 meets its target now
        + REASON.replace('"mse"', '"mae"').replace('"1e5"', '"1e7"')  # mae: no 1e7 row measured: out of scope
        + REASON.replace('"mse"', '"poisson"')  # poisson ran but has no row of that mode and size
        + REASON.replace('"mse"', '"kl_divergence"')  # kl_divergence was not in this run
    )
    rows = _rows(bench)
    rows.append(bench.Row("torch", "poisson", "loss", "compiled", "1e5").finish(2.0, 1.0))
    ran = {("torch", "loss", n) for n in ("mse", "mae", "huber", "poisson")}
    warnings = bench.attach_reasons(rows, bench.load_reasons(tmp_path), ran)
    assert [(w["kind"], w["entry"]) for w in warnings] == [("stale", 1), ("stale", 3)]
    assert "meets its target" in warnings[0]["message"] and "a.toml entry 1" in warnings[0]["message"]
    assert "matches no row" in warnings[1]["message"]
    quick = bench.attach_reasons(_rows(bench), bench.load_reasons(tmp_path), ran, every_size=False)
    assert [(w["kind"], w["entry"]) for w in quick] == [("stale", 1), ("stale", 3)]  # both name their sizes
    (tmp_path / "a.toml").write_text(REASON.replace('"mse"', '"huber"').replace('sizes = ["1e5"]\n', ""))
    assert bench.attach_reasons(_rows(bench), bench.load_reasons(tmp_path), ran, every_size=False) == []
    assert len(bench.attach_reasons(_rows(bench), bench.load_reasons(tmp_path), ran)) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[row]\nbackend = 1", "not valid TOML"),
        ("title = 'x'\n" + REASON, "unknown top-level key"),
        (REASON.replace("needed =", "neded ="), "entry 1 (spec 'mse'): unknown key(s) ['neded']"),
        (REASON + REASON.replace('cause = "measured: 3 kernels against 1"\n', ""), "entry 2 (spec 'mse'): missing"),
        (REASON.replace('mode = "eager"', 'mode = "fast"'), "mode = 'fast' is not one of"),
        (REASON.replace('"mse"', '"MSELoss"'), "spec 'MSELoss' is not a catalog name"),
        (REASON.replace('["1e5"]', '"1e5"'), "sizes must be a non-empty list"),
        (REASON.replace('"one fused kernel"', '""'), "needed must be a non-empty string"),
    ],
)
def test_malformed_reason_files_name_the_file_and_entry(bench: Any, tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "broken.toml").write_text(text)
    with pytest.raises(bench.ReasonsError, match=r"broken\.toml") as info:
        bench.load_reasons(tmp_path, {"mse"})
    assert message in str(info.value)


def test_the_real_reason_files_parse(bench: Any) -> None:
    import lossbridge

    reasons = bench.load_reasons(bench.REASONS_DIR, {e.name for e in lossbridge.catalog()})
    for r in reasons:
        assert r.cause and r.needed and (r.backend, r.kind, r.mode) in set(bench.TARGETS) | {
            ("numpy", "loss", "eager")
        }, r.where


def test_a_malformed_reason_file_stops_the_command(tmp_path: Path) -> None:
    (tmp_path / "reasons").mkdir()
    (tmp_path / "reasons" / "x.toml").write_text(REASON.replace("needed =", "neded ="))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "mse", "--backend", "numpy", "--no-plot",
         "--reasons", str(tmp_path / "reasons"), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "x.toml entry 1" in proc.stderr and "neded" in proc.stderr
    assert not (tmp_path / "out" / "bench.json").exists()


def test_state_bytes_counts_each_storage_once_and_skips_params_and_grads(bench: Any) -> None:
    torch = pytest.importorskip("torch")
    params = [torch.nn.Parameter(torch.ones(10)), torch.nn.Parameter(torch.ones(6))]
    for p in params:
        p.grad = torch.ones_like(p)
    opt = torch.optim.Adam(params, lr=1e-3)
    opt.step()
    floats = 2 * (10 + 6) * 4  # exp_avg and exp_avg_sq
    steps = sum(opt.state[p]["step"].untyped_storage().nbytes() for p in params)
    assert bench.state_bytes(opt, params) == floats + steps
    flat = torch.zeros(16)  # per-parameter views of one flat buffer: one storage
    for p, view in zip(params, (flat[:10], flat[10:]), strict=True):
        opt.state[p] = {"buf": view}
    assert bench.state_bytes(opt, params) == 16 * 4


def test_quick_torch_transform_row_times_the_torch_function(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    report = _bench("--quick", "--only", "clip", "--backend", "torch", "--kind", "optimizer", "--no-extras",
                    out=tmp_path)
    (row,) = report["rows"]
    assert row["native"] == "torch.nn.utils.clip_grad_value_" and row["status"] == "ok", row["reason"]
    assert row["agree"] is True and row["lossbridge_s"] > 0 and row["native_s"] > 0
    assert row["explained"] is (None if row["meets"] else bool(row["cause"]))


# ---------------------------------------------------------------------------------------------
# memory and state rows on JAX and TensorFlow (unit-level: tiny sizes, never the 4096 x 32000 rows)


def test_memory_and_state_targets_and_reason_modes_cover_jax_and_tensorflow(bench: Any, tmp_path: Path) -> None:
    for backend in ("jax", "tensorflow"):
        assert bench.TARGETS[(backend, "loss", "memory")] == 1.0
        assert bench.TARGETS[(backend, "optimizer", "state")] == 1.0
        for kind, mode in (("loss", "memory"), ("optimizer", "state")):
            text = REASON.replace('"torch"', f'"{backend}"').replace('"loss"', f'"{kind}"')
            (tmp_path / "a.toml").write_text(text.replace('"eager"', f'"{mode}"'))
            (reason,) = bench.load_reasons(tmp_path, {"mse"})
            assert (reason.backend, reason.kind, reason.mode) == (backend, kind, mode)


def test_memory_slack_is_per_backend_and_state_bytes_are_exact(bench: Any) -> None:
    def row(backend: str, mode: str, ours: float, native: float) -> Any:
        return bench.Row(backend, "mse", "loss" if mode == "memory" else "optimizer", mode, "1e7").finish_memory(
            ours, native)

    assert row("jax", "memory", 10.5, 10.0).meets is False  # XLA's analysis is exact: no slack
    assert row("tensorflow", "memory", 10.5, 10.0).meets is True  # allocator chunks: 1 MB slack
    assert row("torch", "memory", 10.5, 10.0).meets is True
    assert row("jax", "state", 4 / 2**20, 0.0).meets is False and row("jax", "state", 4 / 2**20, 0.0).ratio is None
    assert row("tensorflow", "state", 1.0, 1.0).meets is True


def test_memory_shape_and_inputs_use_the_torch_table_sizes_without_sampling_them(bench: Any) -> None:
    import lossbridge
    from lossbridge.registry import default_registry

    scce = lossbridge.spec("sparse_categorical_crossentropy")
    assert bench.memory_shape(scce) == (4096, 32000, "4096x32000")
    assert bench.memory_shape(lossbridge.spec("mse")) == (1_000_000, 10, "1e7")
    arrays = bench._memory_arrays(scce, "optax", {}, default_registry().backend("numpy"), 4096, 32000, 8)
    assert sorted((x.shape[0], shape) for x, _, _, shape in arrays) == [(8, (4096,)), (8, (4096, 32000))]
    x = np.arange(6.0).reshape(3, 2)
    assert bench._tiled(x, (7, 2)).tolist() == np.concatenate([x, x, x])[:7].tolist()


def test_jax_extra_bytes_is_temp_plus_output_of_the_compiled_step(bench: Any) -> None:
    pytest.importorskip("optax")
    import jax
    import jax.numpy as jnp
    import optax

    import lossbridge

    args = [jax.ShapeDtypeStruct((100, 10), jnp.float32)] * 2
    native = bench.jax_extra_bytes(optax.losses.squared_error, args, (0,))
    ours = bench.jax_extra_bytes(lossbridge.get("mse", backend="jax", convention="optax"), args, (0,))
    grad = 100 * 10 * 4  # the gradient is an output on both sides; the value is 4 bytes more
    assert native >= grad + 4 and ours >= grad + 4
    assert native < 4 * grad and ours < 4 * grad  # an elementwise loss keeps at most a few input-sized buffers


def test_jax_state_bytes_sum_the_optax_state_leaves(bench: Any) -> None:
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    params = [jnp.zeros((10, 3)), jnp.zeros(6)]
    assert bench.pytree_bytes(optax.adam(1e-3).init(params)) == 2 * (30 + 6) * 4 + 4  # mu, nu, int32 count
    assert bench.pytree_bytes(optax.sgd(1e-3).init(params)) == 0


def test_tensorflow_peak_and_variable_bytes(bench: Any) -> None:
    tf = pytest.importorskip("tensorflow")
    import keras

    x = tf.constant(np.ones((1000, 100), np.float32))
    step = bench._tf_loss_step(tf, lambda a: a * a, False, (0,))
    extra = bench.tf_peak_extra_mb(step, [x])
    assert 1000 * 100 * 4 / 2**20 <= extra < 64  # at least the gradient, at most a few input-sized buffers
    variables = [keras.Variable(np.zeros((10, 3), np.float32)), keras.Variable(np.zeros(6, np.float32))]
    opt = keras.optimizers.Adam(1e-3)
    opt.build(variables)
    slots = 2 * (30 + 6) * 4  # m and v
    assert bench.optimizer_variable_bytes(opt, variables) == slots + 8 + 4  # int64 iterations, float32 lr


def test_quick_jax_optimizer_run_has_a_state_row(tmp_path: Path) -> None:
    pytest.importorskip("optax")
    report = _bench("--quick", "--only", "adam", "--backend", "jax", "--kind", "optimizer", "--no-extras",
                    out=tmp_path)
    rows = {r["mode"]: r for r in report["rows"]}
    assert set(rows) == {"jit", "state"} and rows["state"]["size"] == rows["jit"]["size"] == "0.1M/10"
    state = rows["state"]
    assert set(state) == ROW_KEYS and state["status"] == "ok" and state["target"] == 1.0
    assert state["lossbridge_s"] is None and state["native_s"] is None
    assert state["peak_mb_native"] * 2**20 == pytest.approx(2 * 100_000 * 4 + 4)  # optax.adam: mu, nu, count
    assert state["ratio"] == pytest.approx(state["peak_mb_lossbridge"] / state["peak_mb_native"])
    assert "jax/optimizer/state" in report["summary"]
